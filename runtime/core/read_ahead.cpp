#include "core/read_ahead.hpp"

#include <algorithm>

namespace grey {

ReadAhead::ReadAhead(const MappedFile& file, std::vector<std::span<const std::byte>> ranges, uint64_t window)
    : file_(file), ranges_(std::move(ranges)), before_(ranges_.size() + 1, 0), window_(window) {
    for (std::size_t i = 0; i < ranges_.size(); ++i) before_[i + 1] = before_[i] + ranges_[i].size();
    thread_ = std::jthread([this](const std::stop_token& stop) { ask(stop); });
}

void ReadAhead::at(std::size_t current) {
    {
        const std::scoped_lock lock(mutex_);
        current_ = std::max(current_, current);
    }
    moved_.notify_one();
}

void ReadAhead::ask(const std::stop_token& stop) {
    // Asked for in pieces so that a stop (the reader is done or failed) is seen within one piece's wait.
    constexpr std::size_t piece = 8 << 20;
    for (std::size_t next = 0; next < ranges_.size(); ++next) {
        {
            std::unique_lock lock(mutex_);
            if (!moved_.wait(lock, stop, [&] { return before_[next] - before_[std::min(current_, next)] < window_; })) return;
            next = std::max(next, current_);  // the reader has passed these already
            if (next >= ranges_.size()) return;
        }
        const std::span<const std::byte> range = ranges_[next];
        for (std::size_t at = 0; at < range.size() && !stop.stop_requested(); at += piece)
            file_.prefetch(range.subspan(at, std::min(piece, range.size() - at)));
    }
}

}  // namespace grey
