// The worker pool (the context's, and the audit log's): every block of a job runs exactly once, whatever
// the number of threads and however jobs follow each other; an exception stops the job and reaches the
// caller; callers sharing one pool each get their job done; 0 threads means every usable core.
#include "core/worker_pool.hpp"

#include <gtest/gtest.h>

#include <sched.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

namespace grey {
namespace {

TEST(WorkerPool, EveryBlockRunsOnceInEveryJob) {
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

TEST(WorkerPool, TheFirstExceptionReachesTheCaller) {
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
TEST(WorkerPool, ACallerTakesWhatNoHelperHasStarted) {
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

TEST(WorkerPool, ZeroMeansEveryCoreTheProcessMayRunOn) {
    WorkerPool pool(0);
    EXPECT_EQ(pool.threads(), usable_cores());
    cpu_set_t mask;
    ASSERT_EQ(sched_getaffinity(0, sizeof mask, &mask), 0);
    EXPECT_EQ(usable_cores(), static_cast<size_t>(CPU_COUNT(&mask)));
    // Narrowed to one CPU (as taskset does), the count follows; restored afterwards.
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &mask)) {
            CPU_SET(cpu, &one);
            break;
        }
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    EXPECT_EQ(usable_cores(), 1u);
    WorkerPool narrow(0);
    EXPECT_EQ(narrow.threads(), 1u);
    ASSERT_EQ(sched_setaffinity(0, sizeof mask, &mask), 0);
}

// Callers on several threads share one pool through run_shared: one job at a time has the helpers,
// the others run theirs on their own thread; every block of every job runs once, and a job run from
// inside a block (nested) runs inline instead of waiting for the pool it holds.
TEST(WorkerPool, CallersOnSeveralThreadsShareThePool) {
    WorkerPool pool(3);
    constexpr size_t kCallers = 4, kRounds = 40, n = 300;
    std::vector<std::thread> callers;
    std::atomic<int> wrong{0};
    for (size_t c = 0; c < kCallers; ++c)
        callers.emplace_back([&] {
            for (size_t round = 0; round < kRounds; ++round) {
                std::vector<std::atomic<int>> runs(n);
                pool.run_shared(n, 7, [&](size_t begin, size_t end) {
                    for (size_t i = begin; i < end; ++i) ++runs[i];
                    if (begin == 0) {
                        std::atomic<size_t> inner{0};
                        pool.run_shared(10, 3, [&](size_t b, size_t e) { inner += e - b; });
                        if (inner.load() != 10) ++wrong;
                    }
                });
                for (size_t i = 0; i < n; ++i)
                    if (runs[i].load() != 1) ++wrong;
            }
        });
    for (auto& caller : callers) caller.join();
    EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace grey
