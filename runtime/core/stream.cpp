// The C entry points of "Streams and events (since 0.2)" in grey.h, apart from the async operations
// (memory/buffer_async.cpp, quant/quant_api.cpp) and host memory (memory/host_alloc.cpp).
#include "core/stream.hpp"

#include "core/context.hpp"
#include "memory/buffer.hpp"
#include "memory/tiers.hpp"

#include <memory>
#include <string>

namespace grey {

void log_synchronous(grey_stream& stream) {
    if (stream.said_synchronous) return;
    stream.said_synchronous = true;
    stream.context->logger.debug("backend '" + stream.backend->name() +
                                 "' has no streams: work enqueued on its streams runs when it is enqueued, on the calling thread");
}

void drain_backend_stream(grey_stream& stream) {
    try {
        stream.backend->stream_synchronize(stream.handle);
    } catch (const Error& e) {
        if (!stream.kept.has_value()) stream.kept = e;
    }
}

void keep_fill_failure(grey_stream& stream, bool stream_goes) {
    std::optional<Error> failure = stream.context->tiers->take_fill_failure(stream, stream_goes);
    if (!failure.has_value()) return;
    std::lock_guard lock(stream.mutex);
    if (!stream.kept.has_value()) stream.kept = std::move(failure);
}

grey_stream& stream_for(grey_stream* stream, const grey_buffer& buffer, const char* call) {
    require_non_null(stream, "stream");
    if (stream->context != buffer.context) fail(GREY_ERROR_INVALID_ARGUMENT, std::string(call) + ": the stream belongs to another context than the buffer");
    if (stream->device != buffer.device)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(call) + ": the stream is on device " + std::to_string(stream->device) +
                                              " and the buffer on device " + std::to_string(buffer.device));
    stream->carried_work.store(true);
    return *stream;
}

void destroy_stream_untracked(grey_stream* stream) noexcept {
    std::unique_ptr<grey_stream> owned(stream);
    // Destroying waits for the work; its failure has no caller left, so it is logged.
    std::optional<Error> failure = std::move(owned->kept);
    if (owned->handle != nullptr) {
        bool finished = false;
        try {
            // A wrapper waits only for libgrey's own operations: a native stream it merely made wait for
            // an event may be blocked behind work the host must not wait for here.
            if (!owned->wraps_native || owned->carried_work.load()) owned->backend->stream_synchronize(owned->handle);
            finished = true;
        } catch (const Error& e) {
            failure = e;
        } catch (const std::exception& e) {
            failure = Error(GREY_ERROR_INTERNAL, e.what());
        }
        // An async map's decode found faulty once the stream ran it is kept like the stream's own; after
        // this no fill queued on the stream is left to report to it (a new stream may take its address).
        try {
            std::optional<Error> fill_failure = owned->context->tiers->take_fill_failure(*owned, true);
            if (!failure.has_value()) failure = std::move(fill_failure);
        } catch (...) {
        }
        // Buffers' records of work on this stream end with it, once that work is known to be done (a
        // wrapper that carried none has no records); after a failed wait they stay until the buffer goes.
        owned->context->tiers->forget_stream(owned->handle, finished);
        owned->backend->stream_destroy(owned->handle);
    }
    if (failure.has_value())
        owned->context->logger.warning(std::string("a stream was destroyed keeping an error no synchronize returned: ") + failure->what());
}

void destroy_event_untracked(grey_event* event) noexcept {
    std::unique_ptr<grey_event> owned(event);
    if (owned->handle != nullptr) owned->backend->event_destroy(owned->handle);
}

namespace {

// Hands a new stream to its context's tracking and to the caller; frees its backend stream if tracking fails.
grey_stream* track_stream(std::unique_ptr<grey_stream> stream) {
    try {
        stream->context->track(stream.get());
    } catch (...) {
        if (stream->handle != nullptr) stream->backend->stream_destroy(stream->handle);
        throw;
    }
    return stream.release();
}

grey_event& recorded(grey_event* event, const char* what) {
    require_non_null(event, what);
    if (!event->recorded.load())
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + " has never been recorded (grey_event_record it on a stream first)");
    return *event;
}

void throw_kept(std::mutex& mutex, std::optional<Error>& kept, bool forget) {
    std::lock_guard lock(mutex);
    if (!kept.has_value()) return;
    const Error failure = *kept;
    if (forget) kept.reset();
    throw failure;
}

}  // namespace
}  // namespace grey

extern "C" {

grey_status grey_stream_create(grey_context* context, uint32_t device, grey_stream** out_stream) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_stream, "out_stream");
        grey::Device& dev = context->device(device);
        auto stream = std::make_unique<grey_stream>(context, device, dev.backend, nullptr);
        if (dev.backend->has_streams()) stream->handle = dev.backend->stream_create(dev.index_in_backend);
        *out_stream = grey::track_stream(std::move(stream));
    });
}

void grey_stream_destroy(grey_stream* stream) {
    if (stream == nullptr) return;
    stream->context->untrack(stream);
    grey::destroy_stream_untracked(stream);
}

grey_status grey_stream_synchronize(grey_stream* stream) {
    return grey::abi_guard([&] {
        grey::require_non_null(stream, "stream");
        if (stream->handle != nullptr) stream->backend->stream_synchronize(stream->handle);
        grey::keep_fill_failure(*stream, false);
        grey::throw_kept(stream->mutex, stream->kept, true);
    });
}

grey_status grey_stream_query(grey_stream* stream, uint32_t* out_done) {
    return grey::abi_guard([&] {
        grey::require_non_null(stream, "stream");
        grey::require_non_null(out_done, "out_done");
        if (stream->handle != nullptr && !stream->backend->stream_query(stream->handle)) {
            *out_done = 0;
            return;
        }
        grey::keep_fill_failure(*stream, false);
        grey::throw_kept(stream->mutex, stream->kept, true);
        *out_done = 1;
    });
}

grey_status grey_stream_native_handle(grey_stream* stream, grey_memory_kind* out_kind, uint64_t* out_handle) {
    return grey::abi_guard([&] {
        grey::require_non_null(stream, "stream");
        grey::require_non_null(out_kind, "out_kind");
        grey::require_non_null(out_handle, "out_handle");
        grey_memory_kind kind = GREY_MEMORY_HOST;
        uint64_t handle = 0;
        if (stream->handle == nullptr || !stream->backend->stream_native_handle(stream->handle, kind, handle))
            grey::fail(GREY_ERROR_UNSUPPORTED, "grey_stream_native_handle: the stream is on device " + std::to_string(stream->device) + " of backend '" +
                                                   stream->backend->name() + "', which has no native streams (" +
                                                   (stream->handle == nullptr ? "its async work runs when it is enqueued"
                                                                              : "its streams are libgrey's own") + ")");
        *out_kind = kind;
        *out_handle = handle;
    });
}

grey_status grey_stream_wrap_native(grey_context* context, uint32_t device, grey_memory_kind kind, uint64_t native_handle,
                                    grey_stream** out_stream) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_stream, "out_stream");
        grey::Device& dev = context->device(device);
        const char* kind_name = grey_memory_kind_name(kind);
        if (kind_name == nullptr)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "grey_stream_wrap_native: memory kind " + std::to_string(static_cast<int>(kind)) + " does not exist");
        auto stream = std::make_unique<grey_stream>(context, device, dev.backend, nullptr);
        stream->wraps_native = true;
        if (dev.backend->has_streams()) stream->handle = dev.backend->stream_wrap_native(dev.index_in_backend, kind, native_handle);
        if (stream->handle == nullptr)
            grey::fail(GREY_ERROR_UNSUPPORTED, "grey_stream_wrap_native: device " + std::to_string(device) + " of backend '" + dev.backend->name() +
                                                   "' has no native streams to wrap (" + kind_name + " stream " + std::to_string(native_handle) + ")");
        *out_stream = grey::track_stream(std::move(stream));
    });
}

grey_status grey_event_create(grey_context* context, uint32_t device, grey_event** out_event) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_event, "out_event");
        grey::Device& dev = context->device(device);
        auto event = std::make_unique<grey_event>(context, device, dev.backend, nullptr);
        if (dev.backend->has_streams()) event->handle = dev.backend->event_create(dev.index_in_backend);
        try {
            context->track(event.get());
        } catch (...) {
            if (event->handle != nullptr) dev.backend->event_destroy(event->handle);
            throw;
        }
        *out_event = event.release();
    });
}

void grey_event_destroy(grey_event* event) {
    if (event == nullptr) return;
    event->context->untrack(event);
    grey::destroy_event_untracked(event);
}

grey_status grey_event_record(grey_event* event, grey_stream* stream) {
    return grey::abi_guard([&] {
        grey::require_non_null(event, "event");
        grey::require_non_null(stream, "stream");
        if (event->context != stream->context) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "grey_event_record: the event and the stream belong to different contexts");
        if (event->device != stream->device)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "grey_event_record: the event is on device " + std::to_string(event->device) +
                                                        " and the stream on device " + std::to_string(stream->device));
        // The failure of work the runtime ran itself is known now; a backend's arrives through its event.
        std::optional<grey::Error> kept;
        {
            std::lock_guard lock(stream->mutex);
            kept = stream->kept;
        }
        if (stream->handle != nullptr) stream->backend->event_record(event->handle, stream->handle);
        std::lock_guard lock(event->mutex);
        event->recorded_at = std::chrono::steady_clock::now();
        event->failure = std::move(kept);
        event->recorded.store(true);
    });
}

grey_status grey_stream_wait_event(grey_stream* stream, grey_event* event) {
    return grey::abi_guard([&] {
        grey::require_non_null(stream, "stream");
        grey::recorded(event, "event");
        if (event->context != stream->context)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "grey_stream_wait_event: the event and the stream belong to different contexts");
        if (stream->handle != nullptr && event->backend == stream->backend) {
            stream->backend->stream_wait_event(stream->handle, event->handle);
            return;
        }
        // Work on a stream without backend streams runs at enqueue, and a stream cannot wait inside
        // another backend: the wait happens here. The event's failure belongs to its own stream.
        if (event->handle == nullptr) return;
        try {
            event->backend->event_synchronize(event->handle);
        } catch (const grey::Error&) {
        }
    });
}

grey_status grey_event_synchronize(grey_event* event) {
    return grey::abi_guard([&] {
        grey_event& e = grey::recorded(event, "event");
        if (e.handle != nullptr) e.backend->event_synchronize(e.handle);
        grey::throw_kept(e.mutex, e.failure, false);
    });
}

grey_status grey_event_query(grey_event* event, uint32_t* out_done) {
    return grey::abi_guard([&] {
        grey_event& e = grey::recorded(event, "event");
        grey::require_non_null(out_done, "out_done");
        if (e.handle != nullptr && !e.backend->event_query(e.handle)) {
            *out_done = 0;
            return;
        }
        grey::throw_kept(e.mutex, e.failure, false);
        *out_done = 1;
    });
}

grey_status grey_event_elapsed_ms(grey_event* start, grey_event* end, double* out_ms) {
    return grey::abi_guard([&] {
        grey_event& first = grey::recorded(start, "start");
        grey_event& second = grey::recorded(end, "end");
        grey::require_non_null(out_ms, "out_ms");
        if (first.context != second.context || first.device != second.device)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "grey_event_elapsed_ms: the two events must be on one device of one context (start on device " +
                                                        std::to_string(first.device) + ", end on device " + std::to_string(second.device) + ")");
        if (first.handle != nullptr) {
            *out_ms = first.backend->event_elapsed_ms(first.handle, second.handle);
            return;
        }
        std::chrono::steady_clock::time_point from, to;
        {
            std::lock_guard lock(first.mutex);
            from = first.recorded_at;
        }
        {
            std::lock_guard lock(second.mutex);
            to = second.recorded_at;
        }
        *out_ms = std::chrono::duration<double, std::milli>(to - from).count();
    });
}

}  // extern "C"
