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

TEST(AuditWorkerPool, ZeroMeansOnePerCore) {
    WorkerPool pool(0);
    EXPECT_EQ(pool.threads(), std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace
}  // namespace grey::audit
