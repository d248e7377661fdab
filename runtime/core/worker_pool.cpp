#include "core/worker_pool.hpp"

#include <sched.h>

#include <algorithm>
#include <system_error>
#include <utility>

namespace grey {

size_t usable_cores() noexcept {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    if (sched_getaffinity(0, sizeof mask, &mask) == 0)
        if (const int count = CPU_COUNT(&mask); count > 0) return static_cast<size_t>(count);
    return std::max(1u, std::thread::hardware_concurrency());
}


WorkerPool::WorkerPool(size_t threads) {
    if (threads == 0) threads = usable_cores();
    for (size_t t = 1; t < threads; ++t) {
        try {
            helpers_.emplace_back([this](std::stop_token stop) { helper_loop(std::move(stop)); });
        } catch (const std::system_error&) {
            break;
        }
    }
}

WorkerPool::~WorkerPool() {
    for (auto& helper : helpers_) helper.request_stop();
    helpers_.clear();  // joins
}

void WorkerPool::take_blocks() {
    std::unique_lock lock(mutex_);
    while (next_ < blocks_) {
        const size_t b = next_++;
        lock.unlock();
        try {
            call_(body_, b * block_, std::min(n_, (b + 1) * block_));
        } catch (...) {
            lock.lock();
            if (!error_) error_ = std::current_exception();
            next_ = blocks_;
            break;
        }
        lock.lock();
    }
}

void WorkerPool::helper_loop(std::stop_token stop) {
    uint64_t seen = 0;
    std::unique_lock lock(mutex_);
    for (;;) {
        // A helper that wakes after the job closed waits for the next one: the caller never waits for
        // a helper that has not started (on a busy machine that could take milliseconds).
        if (!wake_.wait(lock, stop, [&] { return open_ && generation_ != seen; })) return;
        seen = generation_;
        ++working_;
        lock.unlock();
        take_blocks();
        lock.lock();
        --working_;
        idle_.notify_all();
    }
}

void WorkerPool::post_job(size_t n, size_t block, Call call, const void* body) {
    block = std::max<size_t>(block, 1);
    {
        const std::lock_guard lock(mutex_);
        call_ = call;
        body_ = body;
        n_ = n;
        block_ = block;
        blocks_ = (n + block - 1) / block;
        next_ = 0;
        error_ = nullptr;
        open_ = blocks_ > 0 && !helpers_.empty();
        ++generation_;
    }
    if (open_) wake_.notify_all();
}

bool WorkerPool::take(size_t b) {
    const std::lock_guard lock(mutex_);
    if (next_ != b || b >= blocks_) return false;
    ++next_;
    return true;
}

void WorkerPool::wait() {
    take_blocks();
    std::unique_lock lock(mutex_);
    open_ = false;
    idle_.wait(lock, [&] { return working_ == 0; });
    call_ = nullptr;
    body_ = nullptr;
    if (std::exception_ptr error = std::exchange(error_, nullptr)) std::rethrow_exception(error);
}

}  // namespace grey
