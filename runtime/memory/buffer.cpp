#include "memory/buffer.hpp"

#include "common/checksum.hpp"

#include "core/context.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <memory>
#include <span>
#include <vector>

namespace grey {

void destroy_buffer_untracked(grey_buffer* buffer) noexcept {
    std::unique_ptr<grey_buffer> owned(buffer);
    owned->backend->buffer_free(owned->handle);
}

void check_range(const grey_buffer& buffer, uint64_t offset, uint64_t size, const char* what) {
    if (offset > buffer.size || size > buffer.size - offset)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + ": range [" + std::to_string(offset) + ", " + std::to_string(offset) +
                                              " + " + std::to_string(size) + ") lies outside the buffer of " +
                                              std::to_string(buffer.size) + " bytes");
}

void check_copy(const grey_buffer& destination, uint64_t destination_offset, const grey_buffer& source, uint64_t source_offset,
                uint64_t size, const std::string& call) {
    check_range(destination, destination_offset, size, (call + " destination").c_str());
    check_range(source, source_offset, size, (call + " source").c_str());
    if (&destination == &source && destination_offset < source_offset + size && source_offset < destination_offset + size)
        fail(GREY_ERROR_INVALID_ARGUMENT, call + ": source and destination ranges overlap");
}

namespace {

// Cross-device copies and backends without a copy slot go through host memory in bounded steps.
constexpr uint64_t kStagingBytes = 8ull << 20;

}  // namespace
}  // namespace grey

extern "C" {

grey_status grey_buffer_create(grey_context* context, uint32_t device, uint64_t size_bytes, grey_buffer** out_buffer) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_buffer, "out_buffer");
        if (size_bytes == 0) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "size_bytes must be greater than 0");
        grey::Device& dev = context->device(device);
        auto buffer = std::make_unique<grey_buffer>(context, device, dev.backend, nullptr, size_bytes);
        buffer->handle = dev.backend->buffer_alloc(dev.index_in_backend, size_bytes);
        try {
            context->track(buffer.get());
        } catch (...) {
            dev.backend->buffer_free(buffer->handle);
            throw;
        }
        *out_buffer = buffer.release();
    });
}

void grey_buffer_destroy(grey_buffer* buffer) {
    if (buffer == nullptr) return;
    buffer->context->untrack(buffer);
    grey::destroy_buffer_untracked(buffer);
}

grey_status grey_buffer_size(const grey_buffer* buffer, uint64_t* out_size) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        grey::require_non_null(out_size, "out_size");
        *out_size = buffer->size;
    });
}

grey_status grey_buffer_device(const grey_buffer* buffer, uint32_t* out_device) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        grey::require_non_null(out_device, "out_device");
        *out_device = buffer->device;
    });
}

grey_status grey_buffer_write(grey_buffer* buffer, uint64_t offset, const void* source, uint64_t size_bytes) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        if (size_bytes == 0) return;
        grey::require_non_null(source, "source");
        grey::check_range(*buffer, offset, size_bytes, "grey_buffer_write");
        buffer->backend->buffer_write(buffer->handle, offset, source, size_bytes);
    });
}

grey_status grey_buffer_read(const grey_buffer* buffer, uint64_t offset, void* destination, uint64_t size_bytes) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        if (size_bytes == 0) return;
        grey::require_non_null(destination, "destination");
        grey::check_range(*buffer, offset, size_bytes, "grey_buffer_read");
        buffer->backend->buffer_read(buffer->handle, offset, destination, size_bytes);
    });
}

grey_status grey_buffer_copy(grey_buffer* destination, uint64_t destination_offset, const grey_buffer* source,
                             uint64_t source_offset, uint64_t size_bytes) {
    return grey::abi_guard([&] {
        grey::require_non_null(destination, "destination");
        grey::require_non_null(source, "source");
        if (destination->context != source->context)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "grey_buffer_copy: the two buffers belong to different contexts");
        grey::check_copy(*destination, destination_offset, *source, source_offset, size_bytes, "grey_buffer_copy");
        if (size_bytes == 0) return;
        if (destination->backend == source->backend && destination->device == source->device && destination->backend->has_buffer_copy()) {
            destination->backend->buffer_copy(destination->handle, destination_offset, source->handle, source_offset, size_bytes);
            return;
        }
        std::vector<std::byte> staging(std::min(size_bytes, grey::kStagingBytes));
        for (uint64_t done = 0; done < size_bytes;) {
            const uint64_t step = std::min<uint64_t>(staging.size(), size_bytes - done);
            source->backend->buffer_read(source->handle, source_offset + done, staging.data(), step);
            destination->backend->buffer_write(destination->handle, destination_offset + done, staging.data(), step);
            done += step;
        }
    });
}

grey_status grey_buffer_fill(grey_buffer* buffer, uint64_t offset, uint8_t value, uint64_t size_bytes) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        grey::check_range(*buffer, offset, size_bytes, "grey_buffer_fill");
        if (size_bytes == 0) return;
        if (buffer->backend->has_buffer_fill()) {
            buffer->backend->buffer_fill(buffer->handle, offset, value, size_bytes);
            return;
        }
        std::vector<std::byte> block(std::min(size_bytes, grey::kStagingBytes), std::byte{value});
        for (uint64_t done = 0; done < size_bytes;) {
            const uint64_t step = std::min<uint64_t>(block.size(), size_bytes - done);
            buffer->backend->buffer_write(buffer->handle, offset + done, block.data(), step);
            done += step;
        }
    });
}

grey_status grey_buffer_checksum(const grey_buffer* buffer, uint64_t offset, uint64_t size_bytes, uint64_t* out_checksum) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        grey::require_non_null(out_checksum, "out_checksum");
        grey::check_range(*buffer, offset, size_bytes, "grey_buffer_checksum");
        if (size_bytes == 0) {
            *out_checksum = 0;
            return;
        }
        if (buffer->backend->has_buffer_checksum()) {
            *out_checksum = buffer->backend->buffer_checksum(buffer->handle, offset, size_bytes);
            return;
        }
        // No device-side checksum: read the range back in bounded steps and sum it here.
        std::vector<std::byte> staging(std::min(size_bytes, grey::kStagingBytes));
        uint64_t sum = 0;
        for (uint64_t done = 0; done < size_bytes;) {
            const uint64_t step = std::min<uint64_t>(staging.size(), size_bytes - done);
            buffer->backend->buffer_read(buffer->handle, offset + done, staging.data(), step);
            sum = grey::common::checksum_accumulate(sum, std::span(staging.data(), step), done);
            done += step;
        }
        *out_checksum = sum;
    });
}

grey_status grey_buffer_map(grey_buffer* buffer, grey_buffer_mapping* out_mapping) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        grey::require_non_null(out_mapping, "out_mapping");
        if (out_mapping->struct_size < sizeof(grey_buffer_mapping))
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "out_mapping->struct_size is " + std::to_string(out_mapping->struct_size) +
                                                        "; set it to sizeof(grey_buffer_mapping)");
        grey_buffer_mapping mapping{};
        mapping.struct_size = sizeof mapping;
        buffer->backend->buffer_map(buffer->handle, mapping);
        mapping.size_bytes = buffer->size;
        buffer->map_count.fetch_add(1);
        grey::copy_out_struct(mapping, out_mapping, sizeof(grey_buffer_mapping), "out_mapping");
    });
}

grey_status grey_buffer_unmap(grey_buffer* buffer) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        // Decrement only from a positive count, so that an unmatched unmap is refused rather than wrapping.
        uint32_t count = buffer->map_count.load();
        do {
            if (count == 0) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "grey_buffer_unmap: the buffer is not mapped");
        } while (!buffer->map_count.compare_exchange_weak(count, count - 1));
    });
}

}  // extern "C"
