// Work in flight on a buffer: what keeps the background scan (and compaction) from moving a buffer that
// queued work still reads or writes. An _async call holds an AsyncUse from before its checks until its
// work is enqueued; then, on a backend stream, an event of the buffer's recorded on that stream stands
// for the work until it completes (memory/tiers.hpp, busy_locked). A synchronous call that works on a
// buffer's raw memory without the tier lock (quantization) holds one for its whole length.
#pragma once

#include <initializer_list>
#include <vector>

struct grey_buffer;
struct grey_stream;

namespace grey::memory {

class AsyncUse {
public:
    // Counts the call as enqueuing on each buffer (nullptrs are skipped): no buffer moves until it ends.
    AsyncUse(grey_stream& stream, std::initializer_list<const grey_buffer*> buffers);
    // For synchronous work: the buffers stay where they are until the guard ends.
    explicit AsyncUse(std::initializer_list<const grey_buffer*> buffers);
    // Records the use on the stream when enqueued() was called; in any case ends the enqueuing.
    ~AsyncUse();
    AsyncUse(const AsyncUse&) = delete;
    AsyncUse& operator=(const AsyncUse&) = delete;
    // The work is on the stream.
    void enqueued() noexcept { enqueued_ = true; }

private:
    grey_stream* stream_ = nullptr;
    std::vector<const grey_buffer*> buffers_;
    bool enqueued_ = false;
};

}  // namespace grey::memory
