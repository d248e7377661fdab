// Threads that share out independent work: the context's pool (host quantization through the host
// backend's parallel_for service, sized by the host.threads key), and the audit log's bulk operations
// (sealing a group of records, one pool per log open; verifying a whole log, one pool per verification).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace grey {

// The cores this process may run on: its CPU affinity mask (taskset, cgroup cpusets), else
// std::thread::hardware_concurrency(); at least 1.
size_t usable_cores() noexcept;

class WorkerPool {
public:
    // `threads` run each job, the caller's among them; 0 means usable_cores(). Fewer run when the system
    // refuses to start more, which only makes jobs slower.
    explicit WorkerPool(size_t threads);
    ~WorkerPool();
    WorkerPool(const WorkerPool&) = delete;
    WorkerPool& operator=(const WorkerPool&) = delete;

    [[nodiscard]] size_t threads() const { return helpers_.size() + 1; }

    // Calls body(begin, end) for consecutive blocks of `block` items covering [0, n), handed out one at
    // a time, in order, to the calling thread and whichever helpers are free, so that a core another
    // job slows down takes fewer. Returns when every block is done; the first exception a block throws
    // is rethrown here, and the blocks not yet started are skipped. One job at a time: callers
    // serialise.
    template <typename Body>
    void run(size_t n, size_t block, const Body& body) {
        post(n, block, body);  // `body` lives until run returns, temporary or not
        take_blocks();
        wait();
    }

    // The same job in three steps, for a caller that has other work to do meanwhile: post() hands the
    // blocks to the helpers and returns at once; take(b) gives block b to the caller instead when no
    // thread has started it yet (blocks are handed out in order), so that a caller that needs a
    // block's result never waits for a helper that has not begun it; wait() runs the blocks nobody
    // took, waits for the helpers, and rethrows. `body` must outlive wait(): a named object, never a
    // temporary, which would be gone at the end of the statement that posts it (refused below).
    // run() for callers that share the pool without coordinating (several threads of a context): when
    // another caller's job holds the pool, the blocks run here, in order, on the calling thread, which
    // gives the same results for work whose outcome does not depend on the thread count. Nested calls
    // (a block that calls run_shared) therefore run inline too, never deadlock.
    template <typename Body>
    void run_shared(size_t n, size_t block, const Body& body) {
        // A flag rather than a mutex: a nested call on the owning thread must see "busy", and trying a
        // std::mutex the thread already holds is undefined.
        if (bool idle = false; busy_.compare_exchange_strong(idle, true, std::memory_order_acquire)) {
            const struct Release {
                std::atomic<bool>& busy;
                ~Release() { busy.store(false, std::memory_order_release); }
            } release{busy_};
            return run(n, block, body);
        }
        block = std::max<size_t>(block, 1);
        for (size_t begin = 0; begin < n; begin += block) body(begin, std::min(n, begin + block));
    }

    template <typename Body>
    void post(size_t n, size_t block, const Body& body) {
        post_job(n, block, [](const void* b, size_t begin, size_t end) { (*static_cast<const Body*>(b))(begin, end); }, &body);
    }
    template <typename Body>
    void post(size_t n, size_t block, const Body&& body) = delete;
    [[nodiscard]] bool take(size_t b);
    void wait();

private:
    using Call = void (*)(const void* body, size_t begin, size_t end);
    void post_job(size_t n, size_t block, Call call, const void* body);
    void take_blocks();
    void helper_loop(std::stop_token stop);

    std::atomic<bool> busy_{false};  // a run_shared caller's job has the helpers
    std::mutex mutex_;
    std::condition_variable_any wake_;  // a job was posted, or the pool is stopping
    std::condition_variable idle_;      // a helper left the job
    // The posted job; helpers join it only while it is open, and run_job waits for those that joined.
    Call call_ = nullptr;
    const void* body_ = nullptr;
    size_t n_ = 0;
    size_t block_ = 1;
    size_t blocks_ = 0;
    size_t next_ = 0;  // the next block to hand out
    bool open_ = false;
    uint64_t generation_ = 0;
    size_t working_ = 0;  // helpers in the job
    std::exception_ptr error_;
    std::vector<std::jthread> helpers_;  // last: stopped and joined first
};

}  // namespace grey
