// Splits independent work over the machine's cores for the audit log's bulk operations (verifying a
// whole log, Merkle roots over it). Threads are started per call and joined before it returns: a
// verification takes milliseconds at least, so a pool kept alive between calls would buy nothing.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace grey::audit {

// Calls body(begin, end) for consecutive blocks of `block` items covering [0, n), on up to
// hardware_concurrency threads, the caller's among them; blocks are handed out one at a time, so a core
// that another job slows down takes fewer. The first exception a block throws is rethrown here, after
// every thread has stopped.
template <typename Body>
void parallel_blocks(size_t n, size_t block, const Body& body) {
    const size_t blocks = (n + block - 1) / block;
    const size_t threads = std::min<size_t>({std::max(1u, std::thread::hardware_concurrency()), blocks, 64});
    std::atomic<size_t> next{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto run = [&] {
        try {
            for (size_t b = next.fetch_add(1); b < blocks; b = next.fetch_add(1)) body(b * block, std::min(n, (b + 1) * block));
        } catch (...) {
            const std::lock_guard lock(error_mutex);
            if (!error) error = std::current_exception();
            next = blocks;
        }
    };
    {
        std::vector<std::jthread> helpers;
        for (size_t t = 1; t < threads; ++t) {
            try {
                helpers.emplace_back(run);
            } catch (const std::system_error&) {
                break;  // fewer threads than asked for only makes it slower
            }
        }
        run();
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace grey::audit
