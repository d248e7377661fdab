#include "host/host_stream.hpp"

#include <utility>

namespace grey::host {
namespace {
// The stream whose worker runs on this thread, and the failure of the item it is running.
thread_local std::optional<Failure>* running_failure = nullptr;
}  // namespace

bool capture_failure(grey_status status, const std::string& message) {
    if (running_failure == nullptr) return false;
    if (!running_failure->has_value()) *running_failure = Failure{status, message};
    return true;
}

void Signal::complete(std::optional<Failure> failure) {
    {
        std::lock_guard lock(mutex_);
        done_ = true;
        at_ = std::chrono::steady_clock::now();
        failure_ = std::move(failure);
    }
    changed_.notify_all();
}

std::optional<Failure> Signal::wait() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return done_; });
    return failure_;
}

bool Signal::done() {
    std::lock_guard lock(mutex_);
    return done_;
}

std::chrono::steady_clock::time_point Signal::completed_at() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return done_; });
    return at_;
}

Stream::Stream() : worker_([this] { run(); }) {}

Stream::~Stream() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    worker_.join();
}

void Stream::push(Item item) {
    {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(item));
    }
    changed_.notify_all();
}

void Stream::enqueue(Work work) {
    push([work = std::move(work)](std::optional<Failure>& kept) {
        std::optional<Failure> failure;
        running_failure = &failure;
        const grey_status status = work();
        running_failure = nullptr;
        if (status != GREY_OK && !kept.has_value())
            kept = failure.has_value() ? std::move(failure) : Failure{status, std::string("host backend: ") + grey_status_string(status)};
    });
}

void Stream::enqueue_record(std::shared_ptr<Signal> signal) {
    push([signal = std::move(signal)](std::optional<Failure>& kept) { signal->complete(kept); });
}

void Stream::enqueue_wait(std::shared_ptr<Signal> signal) {
    push([signal = std::move(signal)](std::optional<Failure>&) { (void)signal->wait(); });
}

std::optional<Failure> Stream::synchronize() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return queue_.empty() && !busy_; });
    return std::exchange(kept_, std::nullopt);
}

bool Stream::query(std::optional<Failure>& failure) {
    std::lock_guard lock(mutex_);
    if (!queue_.empty() || busy_) return false;
    failure = std::exchange(kept_, std::nullopt);
    return true;
}

void Stream::run() {
    std::unique_lock lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return !queue_.empty() || stopping_; });
        // Stopping drains the queue first: destroying a stream waits for its work.
        if (queue_.empty()) return;
        Item item = std::move(queue_.front());
        queue_.pop_front();
        busy_ = true;
        std::optional<Failure> kept = kept_;
        lock.unlock();
        item(kept);
        lock.lock();
        if (!kept_.has_value() && kept.has_value()) kept_ = std::move(kept);
        busy_ = false;
        changed_.notify_all();
    }
}

}  // namespace grey::host
