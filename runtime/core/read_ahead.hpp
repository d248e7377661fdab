// Keeps the next stretch of a mapped file on its way in from the disk, ahead of a reader that walks a
// list of ranges of it in order (a model's tensors, front to back). Asking the kernel for pages waits
// while the disk's queue is full, so the asking happens on a thread of its own, never on the reader's;
// it stays at most `window` bytes ahead of the reader so that what it reads in is not pushed out of the
// page cache again before the reader gets there.
#pragma once

#include "core/mapped_file.hpp"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <stop_token>
#include <thread>
#include <vector>

namespace grey {

class ReadAhead {
public:
    // Starts asking for ranges[0] and those after it at once. `file` and the ranges (parts of its bytes())
    // must outlive this object.
    ReadAhead(const MappedFile& file, std::vector<std::span<const std::byte>> ranges, uint64_t window);
    ~ReadAhead() = default;  // the thread stops asking and is joined first (it is the last member)
    ReadAhead(const ReadAhead&) = delete;
    ReadAhead& operator=(const ReadAhead&) = delete;

    // The reader has moved on to ranges[current]: those before it leave the window. Returns at once.
    void at(std::size_t current);

private:
    void ask(const std::stop_token& stop);

    const MappedFile& file_;
    std::vector<std::span<const std::byte>> ranges_;
    std::vector<uint64_t> before_;  // before_[i]: the bytes of ranges_[0, i)
    uint64_t window_;
    std::mutex mutex_;
    std::condition_variable_any moved_;
    std::size_t current_ = 0;  // guarded by mutex_
    std::jthread thread_;      // last: starts once the members above are ready
};

}  // namespace grey
