// The audit log's worker pool: every block of a job runs exactly once, whatever the number of threads
// and however jobs follow each other; an exception stops the job and reaches the caller.
#include "audit/worker_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace grey::audit {
namespace {

TEST(AuditWorkerPool, EveryBlockRunsOnceInEveryJob) {
    for (const size_t threads : {size_t{1}, size_t{2}, size_t{5}}) {
        WorkerPool pool(threads);
        EXPECT_EQ(pool.threads(), threads);
        // Many short jobs in a row: a helper that wakes late must not run a block of a finished job.
        for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{64}, size_t{1000}}) {
            for (int round = 0; round < 50; ++round) {
                std::vector<std::atomic<int>> runs(n);
                pool.run(n, 3, [&](size_t begin, size_t end) {
                    ASSERT_LT(begin, end);
                    ASSERT_LE(end, n);
                    for (size_t i = begin; i < end; ++i) ++runs[i];
                });
                for (size_t i = 0; i < n; ++i) ASSERT_EQ(runs[i].load(), 1) << threads << " threads, n " << n << ", item " << i;
            }
        }
    }
}

TEST(AuditWorkerPool, TheFirstExceptionReachesTheCaller) {
    WorkerPool pool(3);
    std::atomic<int> blocks{0};
    EXPECT_THROW(pool.run(100, 1,
                          [&](size_t begin, size_t) {
                              ++blocks;
                              if (begin == 10) throw std::runtime_error("block 10");
                          }),
                 std::runtime_error);
    EXPECT_LE(blocks.load(), 100);
    // The pool still works.
    std::atomic<size_t> sum{0};
    pool.run(10, 2, [&](size_t begin, size_t end) { sum += end - begin; });
    EXPECT_EQ(sum.load(), 10u);
}

// post/take/wait as the writer's sealing pipeline uses them: the caller takes each block in order
// unless a helper has it, and then waits for that block's result.
TEST(AuditWorkerPool, ACallerTakesWhatNoHelperHasStarted) {
    for (const size_t threads : {size_t{1}, size_t{2}, size_t{4}}) {
        WorkerPool pool(threads);
        for (int round = 0; round < 100; ++round) {
            constexpr size_t n = 500, block = 7, blocks = (n + block - 1) / block;
            std::vector<std::atomic<int>> runs(n);
            std::vector<std::atomic<uint8_t>> ready(blocks);
            const auto body = [&](size_t begin, size_t end) {
                for (size_t i = begin; i < end; ++i) ++runs[i];
                ready[begin / block].store(1);
                ready[begin / block].notify_one();
            };
            pool.post(n, block, body);
            for (size_t k = 0; k < blocks; ++k) {
                if (pool.take(k)) {
                    for (size_t i = k * block; i < std::min(n, (k + 1) * block); ++i) ++runs[i];
                } else {
                    ready[k].wait(0);
                }
                for (size_t i = k * block; i < std::min(n, (k + 1) * block); ++i) ASSERT_EQ(runs[i].load(), 1) << k;
            }
            EXPECT_FALSE(pool.take(blocks));
            pool.wait();
            for (size_t i = 0; i < n; ++i) ASSERT_EQ(runs[i].load(), 1) << i;
        }
    }
}

TEST(AuditWorkerPool, ZeroMeansOnePerCore) {
    WorkerPool pool(0);
    EXPECT_EQ(pool.threads(), std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace
}  // namespace grey::audit
