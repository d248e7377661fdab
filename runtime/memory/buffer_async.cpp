// The _async buffer calls of grey.h ("Streams and events"): the synchronous calls' checks, then the work
// enqueued on the stream. On a backend without streams the work is the synchronous call itself, run at
// enqueue with its failure kept for the next synchronize (core/stream.hpp).
#include "core/backend.hpp"
#include "core/error.hpp"
#include "core/stream.hpp"
#include "memory/async_use.hpp"
#include "memory/buffer.hpp"

namespace grey {
namespace {

// Runs a synchronous grey.h call, turning its status back into grey::Error with its message.
void run_sync(grey_status status) {
    if (status != GREY_OK) fail(status, detail::last_error());
}

}  // namespace
}  // namespace grey

extern "C" {

grey_status grey_buffer_write_async(grey_buffer* buffer, uint64_t offset, const void* host_source, uint64_t size_bytes, grey_stream* stream) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        grey_stream& s = grey::stream_for(stream, *buffer, "grey_buffer_write_async");
        // From before the checks until the work is queued: the buffers are not moved meanwhile.
        grey::memory::AsyncUse use(s, {buffer});
        if (size_bytes == 0) return;
        grey::require_non_null(host_source, "host_source");
        grey::check_range(*buffer, offset, size_bytes, "grey_buffer_write_async");
        grey::check_writable(*buffer, "grey_buffer_write_async");
        grey::submit(
            s, [&](grey_backend_stream* h) { buffer->backend->buffer_write_async(h, buffer->handle, offset, host_source, size_bytes); },
            [&] { grey::run_sync(grey_buffer_write(buffer, offset, host_source, size_bytes)); });
        use.enqueued();
    });
}

grey_status grey_buffer_read_async(const grey_buffer* buffer, uint64_t offset, void* host_destination, uint64_t size_bytes, grey_stream* stream) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        grey_stream& s = grey::stream_for(stream, *buffer, "grey_buffer_read_async");
        // From before the checks until the work is queued: the buffers are not moved meanwhile.
        grey::memory::AsyncUse use(s, {buffer});
        if (size_bytes == 0) return;
        grey::require_non_null(host_destination, "host_destination");
        grey::check_range(*buffer, offset, size_bytes, "grey_buffer_read_async");
        (void)grey::raw_handle(*buffer, "grey_buffer_read_async");
        grey::submit(
            s, [&](grey_backend_stream* h) { buffer->backend->buffer_read_async(h, buffer->handle, offset, host_destination, size_bytes); },
            [&] { grey::run_sync(grey_buffer_read(buffer, offset, host_destination, size_bytes)); });
        use.enqueued();
    });
}

grey_status grey_buffer_copy_async(grey_buffer* destination, uint64_t destination_offset, const grey_buffer* source, uint64_t source_offset,
                                   uint64_t size_bytes, grey_stream* stream) {
    return grey::abi_guard([&] {
        grey::require_non_null(destination, "destination");
        grey::require_non_null(source, "source");
        grey_stream& s = grey::stream_for(stream, *destination, "grey_buffer_copy_async");
        // From before the checks until the work is queued: the buffers are not moved meanwhile.
        grey::memory::AsyncUse use(s, {destination, source});
        if (source->context != destination->context || source->device != destination->device)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "grey_buffer_copy_async: both buffers must be on the stream's device (grey_buffer_copy copies between devices)");
        grey::check_copy(*destination, destination_offset, *source, source_offset, size_bytes, "grey_buffer_copy_async");
        grey::check_writable(*destination, "grey_buffer_copy_async");
        (void)grey::raw_handle(*source, "grey_buffer_copy_async source");
        if (size_bytes == 0) return;
        grey::submit(
            s,
            [&](grey_backend_stream* h) {
                destination->backend->buffer_copy_async(h, destination->handle, destination_offset, source->handle, source_offset, size_bytes);
            },
            [&] { grey::run_sync(grey_buffer_copy(destination, destination_offset, source, source_offset, size_bytes)); });
        use.enqueued();
    });
}

grey_status grey_buffer_fill_async(grey_buffer* buffer, uint64_t offset, uint8_t value, uint64_t size_bytes, grey_stream* stream) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        grey_stream& s = grey::stream_for(stream, *buffer, "grey_buffer_fill_async");
        // From before the checks until the work is queued: the buffers are not moved meanwhile.
        grey::memory::AsyncUse use(s, {buffer});
        grey::check_range(*buffer, offset, size_bytes, "grey_buffer_fill_async");
        grey::check_writable(*buffer, "grey_buffer_fill_async");
        if (size_bytes == 0) return;
        grey::submit(
            s, [&](grey_backend_stream* h) { buffer->backend->buffer_fill_async(h, buffer->handle, offset, value, size_bytes); },
            [&] { grey::run_sync(grey_buffer_fill(buffer, offset, value, size_bytes)); });
        use.enqueued();
    });
}

grey_status grey_buffer_checksum_async(const grey_buffer* buffer, uint64_t offset, uint64_t size_bytes, uint64_t* checksum_destination,
                                       grey_stream* stream) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        grey_stream& s = grey::stream_for(stream, *buffer, "grey_buffer_checksum_async");
        // From before the checks until the work is queued: the buffers are not moved meanwhile.
        grey::memory::AsyncUse use(s, {buffer});
        grey::require_non_null(checksum_destination, "checksum_destination");
        grey::check_range(*buffer, offset, size_bytes, "grey_buffer_checksum_async");
        (void)grey::raw_handle(*buffer, "grey_buffer_checksum_async");
        // An empty range still goes through the stream (its checksum, 0, arrives in order with the rest).
        grey::submit(
            s,
            [&](grey_backend_stream* h) { buffer->backend->buffer_checksum_async(h, buffer->handle, offset, size_bytes, checksum_destination); },
            [&] { grey::run_sync(grey_buffer_checksum(buffer, offset, size_bytes, checksum_destination)); });
        use.enqueued();
    });
}

grey_status grey_buffer_map_async(grey_buffer* buffer, grey_map_access access, grey_buffer_mapping* out_mapping, grey_stream* stream) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        grey_stream& s = grey::stream_for(stream, *buffer, "grey_buffer_map_async");
        if (grey_map_access_name(access) == nullptr)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "grey_buffer_map_async: access " + std::to_string(grey::raw_enum(access)) +
                                                        " is not a grey_map_access value");
        // A device that cannot hand out addresses is refused now, as grey_buffer_map refuses it.
        if (!buffer->backend->has_buffer_map())
            grey::fail(GREY_ERROR_UNSUPPORTED, "grey_buffer_map_async: backend '" + buffer->backend->name() +
                                                   "' cannot map buffers (it has no buffer_map slot): copy through grey_buffer_read_async instead");
        grey::map_buffer(*buffer, access, out_mapping, &s);
    });
}

}  // extern "C"
