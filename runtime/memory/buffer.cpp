#include "memory/buffer.hpp"

#include "common/checksum.hpp"

#include "core/context.hpp"
#include "core/error.hpp"
#include "core/stream.hpp"
#include "memory/tiers.hpp"

#include <algorithm>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace grey {

void destroy_buffer_untracked(grey_buffer* buffer) noexcept {
    std::unique_ptr<grey_buffer> owned(buffer);
    owned->context->tiers->remove(*owned);
    if (owned->handle != nullptr) owned->backend->buffer_free(owned->handle);
}

void check_writable(const grey_buffer& buffer, const char* what) {
    if (buffer.sealed.load())
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + ": the buffer is sealed, and a sealed buffer is immutable "
                                                              "(grey_buffer_map_access with GREY_MAP_WRITE gives a private writable copy)");
}

grey_backend_buffer* raw_handle(const grey_buffer& buffer, const char* what) {
    // An unsealed buffer is always raw; a sealed one may be moving, so ask the tiers.
    return buffer.sealed.load() ? buffer.context->tiers->raw_handle(buffer, what) : buffer.handle;
}

void check_range(const grey_buffer& buffer, uint64_t offset, uint64_t size, const char* what) {
    if (offset > buffer.size || size > buffer.size - offset)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + ": range [" + std::to_string(offset) + ", " + std::to_string(offset) +
                                              " + " + std::to_string(size) + ") lies outside the buffer of " +
                                              std::to_string(buffer.size) + " bytes");
}

bool ranges_overlap(const grey_buffer& a, uint64_t a_offset, const grey_buffer& b, uint64_t b_offset, uint64_t size) {
    return &a == &b && a_offset < b_offset + size && b_offset < a_offset + size;
}

void check_copy(const grey_buffer& destination, uint64_t destination_offset, const grey_buffer& source, uint64_t source_offset,
                uint64_t size, const std::string& call) {
    check_range(destination, destination_offset, size, (call + " destination").c_str());
    check_range(source, source_offset, size, (call + " source").c_str());
    if (ranges_overlap(destination, destination_offset, source, source_offset, size))
        fail(GREY_ERROR_INVALID_ARGUMENT, call + ": source and destination ranges overlap");
}

namespace {

// Cross-device copies, sealed sources and backends without a copy slot go through host memory in
// bounded steps.
constexpr uint64_t kStagingBytes = 8ull << 20;

// Reads a range of any buffer: an unsealed one directly, a sealed one through the tiers (which decode
// whatever its residency holds).
void read_range(const grey_buffer& buffer, uint64_t offset, std::span<std::byte> out) {
    if (buffer.sealed.load())
        buffer.context->tiers->read(buffer, offset, out);
    else
        buffer.backend->buffer_read(buffer.handle, offset, out.data(), out.size());
}

}  // namespace

void map_buffer(grey_buffer& buffer, grey_map_access access, grey_buffer_mapping* out_mapping, grey_stream* stream) {
    require_non_null(out_mapping, "out_mapping");
    if (out_mapping->struct_size < sizeof(grey_buffer_mapping))
        fail(GREY_ERROR_INVALID_ARGUMENT, "out_mapping->struct_size is " + std::to_string(out_mapping->struct_size) +
                                              "; set it to sizeof(grey_buffer_mapping)");
    grey_buffer_mapping mapping{};
    mapping.struct_size = sizeof mapping;
    std::optional<Error> failure;
    if (buffer.sealed.load()) {
        if (stream != nullptr)
            failure = buffer.context->tiers->map_async(buffer, access, mapping, *stream);
        else
            buffer.context->tiers->map(buffer, access, mapping);
    } else {
        // Unsealed, and so raw: mapped at once, on a stream too.
        buffer.backend->buffer_map(buffer.handle, mapping);
        buffer.map_count.fetch_add(1);
    }
    mapping.size_bytes = buffer.size;
    if (failure.has_value()) {
        // Reported as a failure of work on the stream: at its next synchronize, query, or event record.
        std::lock_guard lock(stream->mutex);
        if (!stream->kept.has_value()) stream->kept = Error(failure->status(), std::string("grey_buffer_map_async: ") + failure->what());
    }
    copy_out_struct(mapping, out_mapping, sizeof(grey_buffer_mapping), "out_mapping");
}

grey_buffer* create_buffer(grey_context& context, const grey_buffer_options& options) {
    if (options.size_bytes == 0) fail(GREY_ERROR_INVALID_ARGUMENT, "size_bytes must be greater than 0");
    Device& dev = context.device(options.device);
    auto buffer = std::make_unique<grey_buffer>(&context, options.device, dev.backend, nullptr, options.size_bytes);
    buffer->traits = {options.tenant, options.sharing_domain, options.source_bytes, options.dtype};
    buffer->handle = dev.backend->buffer_alloc(dev.index_in_backend, options.size_bytes);
    try {
        context.track(buffer.get());
    } catch (...) {
        dev.backend->buffer_free(buffer->handle);
        throw;
    }
    try {
        context.tiers->add(*buffer);
    } catch (...) {
        context.untrack(buffer.get());
        dev.backend->buffer_free(buffer->handle);
        throw;
    }
    return buffer.release();
}

}  // namespace grey

extern "C" {

grey_status grey_buffer_create(grey_context* context, uint32_t device, uint64_t size_bytes, grey_buffer** out_buffer) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_buffer, "out_buffer");
        grey_buffer_options options = GREY_BUFFER_OPTIONS_INIT;
        options.device = device;
        options.size_bytes = size_bytes;
        *out_buffer = grey::create_buffer(*context, options);
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
        grey::check_writable(*buffer, "grey_buffer_write");
        buffer->backend->buffer_write(buffer->handle, offset, source, size_bytes);
    });
}

grey_status grey_buffer_read(const grey_buffer* buffer, uint64_t offset, void* destination, uint64_t size_bytes) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        if (size_bytes == 0) return;
        grey::require_non_null(destination, "destination");
        grey::check_range(*buffer, offset, size_bytes, "grey_buffer_read");
        grey::read_range(*buffer, offset, std::span(static_cast<std::byte*>(destination), size_bytes));
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
        grey::check_writable(*destination, "grey_buffer_copy destination");
        if (size_bytes == 0) return;
        if (destination->backend == source->backend && destination->device == source->device && destination->backend->has_buffer_copy() &&
            !source->sealed.load()) {
            destination->backend->buffer_copy(destination->handle, destination_offset, source->handle, source_offset, size_bytes);
            return;
        }
        std::vector<std::byte> staging(std::min(size_bytes, grey::kStagingBytes));
        for (uint64_t done = 0; done < size_bytes;) {
            const uint64_t step = std::min<uint64_t>(staging.size(), size_bytes - done);
            grey::read_range(*source, source_offset + done, std::span(staging.data(), step));
            destination->backend->buffer_write(destination->handle, destination_offset + done, staging.data(), step);
            done += step;
        }
    });
}

grey_status grey_buffer_fill(grey_buffer* buffer, uint64_t offset, uint8_t value, uint64_t size_bytes) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        grey::check_range(*buffer, offset, size_bytes, "grey_buffer_fill");
        grey::check_writable(*buffer, "grey_buffer_fill");
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
        if (buffer->backend->has_buffer_checksum() && !buffer->sealed.load()) {
            *out_checksum = buffer->backend->buffer_checksum(buffer->handle, offset, size_bytes);
            return;
        }
        // No device-side checksum: read the range back in bounded steps and sum it here.
        std::vector<std::byte> staging(std::min(size_bytes, grey::kStagingBytes));
        uint64_t sum = 0;
        for (uint64_t done = 0; done < size_bytes;) {
            const uint64_t step = std::min<uint64_t>(staging.size(), size_bytes - done);
            grey::read_range(*buffer, offset + done, std::span(staging.data(), step));
            sum = grey::common::checksum_accumulate(sum, std::span(staging.data(), step), done);
            done += step;
        }
        *out_checksum = sum;
    });
}

grey_status grey_buffer_map(grey_buffer* buffer, grey_buffer_mapping* out_mapping) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        grey::map_buffer(*buffer, buffer->sealed.load() ? GREY_MAP_READ : GREY_MAP_WRITE, out_mapping, nullptr);
    });
}

grey_status grey_buffer_map_access(grey_buffer* buffer, grey_map_access access, grey_buffer_mapping* out_mapping) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        if (grey_map_access_name(access) == nullptr)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "access " + std::to_string(grey::raw_enum(access)) + " is not a grey_map_access value");
        grey::map_buffer(*buffer, access, out_mapping, nullptr);
    });
}

grey_status grey_buffer_unmap(grey_buffer* buffer) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        if (buffer->sealed.load()) {
            buffer->context->tiers->unmap(*buffer);
            return;
        }
        // Decrement only from a positive count, so that an unmatched unmap is refused rather than wrapping.
        uint32_t count = buffer->map_count.load();
        do {
            if (count == 0) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "grey_buffer_unmap: the buffer is not mapped");
        } while (!buffer->map_count.compare_exchange_weak(count, count - 1));
    });
}

}  // extern "C"
