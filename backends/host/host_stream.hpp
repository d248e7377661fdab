// Streams and events of the host backend: one worker thread per stream runs its work in order, so the
// host device has the semantics a GPU stream has (grey_backend.h, "Streams and events").
#pragma once

#include "grey.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace grey::host {

// An error a piece of work found: its status and the message it gave through set_error.
struct Failure {
    grey_status status;
    std::string message;
};

// One record of an event: completes when its stream reaches it, carrying the stream's kept failure then.
class Signal {
public:
    void complete(std::optional<Failure> failure);
    // Waits for completion; returns the failure the stream had kept at that point.
    std::optional<Failure> wait();
    [[nodiscard]] bool done();
    // When it completed; waits for completion first.
    std::chrono::steady_clock::time_point completed_at();

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    bool done_ = false;
    std::chrono::steady_clock::time_point at_{};
    std::optional<Failure> failure_;
};

// The failure a slot reports through set_error while it runs on a stream's worker thread is caught here
// (the host's set_error would put it in the worker's own grey_last_error(), where no caller reads it).
// Returns false on any other thread.
bool capture_failure(grey_status status, const std::string& message);

class Stream {
public:
    // Work returns a status; its message, when not OK, arrives through capture_failure.
    using Work = std::function<grey_status()>;

    Stream();
    // Runs the work already enqueued, then stops the worker.
    ~Stream();
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    void enqueue(Work work);
    // Completes `signal` when the stream reaches this point.
    void enqueue_record(std::shared_ptr<Signal> signal);
    // Work after this point waits for `signal`.
    void enqueue_wait(std::shared_ptr<Signal> signal);
    // Blocks until idle; returns the kept failure and forgets it.
    std::optional<Failure> synchronize();
    // Whether idle; when idle, returns the kept failure (forgetting it) through `failure`.
    bool query(std::optional<Failure>& failure);

private:
    // Items run with the stream's kept failure at hand (a record reads it).
    using Item = std::function<void(std::optional<Failure>& kept)>;
    void push(Item item);
    void run();

    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<Item> queue_;
    bool busy_ = false;
    bool stopping_ = false;
    std::optional<Failure> kept_;  // guarded by mutex_, written only by the worker
    std::thread worker_;
};

}  // namespace grey::host
