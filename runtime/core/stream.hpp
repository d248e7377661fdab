// The opaque grey_stream and grey_event of grey.h. A stream is a backend stream when the device's
// backend has streams (GREY_BACKEND_CAP_STREAMS); otherwise the runtime runs each piece of async work
// when it is enqueued and keeps its error for the next synchronize, so the semantics hold everywhere.
#pragma once

#include "core/error.hpp"
#include "grey_backend.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>

namespace grey {
class Backend;
}

struct grey_stream {
    grey_context* context;
    uint32_t device;
    const grey::Backend* backend;
    grey_backend_stream* handle;  // nullptr: work runs at enqueue
    std::mutex mutex;
    std::optional<grey::Error> kept;  // the first failure of work the runtime ran at enqueue; guarded by mutex
    bool said_synchronous = false;    // the debug line about running at enqueue was logged; guarded by mutex
    bool wraps_native = false;        // over the caller's vendor stream (grey_stream_wrap_native)
    // An operation was enqueued (not only event waits and records): destroying a wrapper waits for it.
    std::atomic<bool> carried_work{false};
};

struct grey_event {
    grey_context* context;
    uint32_t device;
    const grey::Backend* backend;
    grey_backend_event* handle;  // nullptr when the backend has no streams
    std::atomic<bool> recorded{false};
    std::mutex mutex;
    // Without backend events: when the latest record happened and the failure its stream kept then.
    std::chrono::steady_clock::time_point recorded_at{};
    std::optional<grey::Error> failure;
};

namespace grey {

// Checks that `stream` may carry work on `buffer` (same context and device).
grey_stream& stream_for(grey_stream* stream, const grey_buffer& buffer, const char* call);

// Logs once per stream, at debug level, that its backend has no streams (call with stream.mutex held).
void log_synchronous(grey_stream& stream);

// Waits for the backend stream's work, keeping its failure as the stream's (call with stream.mutex held).
void drain_backend_stream(grey_stream& stream);

// Keeps, as the stream's failure, what the memory tiers found wrong in the async decodes of maps
// queued on it that have run (memory::Tiers::take_fill_failure); call without stream.mutex held.
void keep_fill_failure(grey_stream& stream, bool stream_goes);

// Enqueues work on the stream: `enqueue(handle)` on a backend stream that can enqueue it; otherwise
// `run()` at once, after the stream's earlier work, keeping its failure for the next synchronize.
template <typename Enqueue, typename Run>
void submit(grey_stream& stream, Enqueue&& enqueue, Run&& run, bool backend_enqueues = true) {
    if (stream.handle != nullptr && backend_enqueues) {
        enqueue(stream.handle);
        return;
    }
    std::lock_guard lock(stream.mutex);
    if (stream.handle != nullptr)
        drain_backend_stream(stream);
    else
        log_synchronous(stream);
    try {
        run();
    } catch (const Error& e) {
        if (!stream.kept.has_value()) stream.kept = e;
    }
}

// Streams and events still alive when their context is destroyed (the context calls these).
void destroy_stream_untracked(grey_stream* stream) noexcept;
void destroy_event_untracked(grey_event* event) noexcept;

}  // namespace grey
