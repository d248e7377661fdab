// Attention a KV cache queued on callers' streams (grey_kv_attend_async): until a stream has passed such
// work, the blocks it reads must keep their bytes and their memory, and the host staging its tables were
// uploaded from must stay untouched. Each queued call holds an event recorded behind its work and that
// staging; the cache waits for all of them (settle) before it frees, reuses or rewrites block memory, and
// reuses an entry (its event and staging) once the event has completed.
#pragma once

#include "core/backend.hpp"

#include <cstdint>
#include <deque>
#include <vector>

namespace grey::kv {

class QueuedReads {
public:
    QueuedReads(const Backend& backend, uint32_t device) noexcept : backend_(backend), device_(device) {}
    // Waits for the queued work, then gives the events and the staging back.
    ~QueuedReads();
    QueuedReads(const QueuedReads&) = delete;
    QueuedReads& operator=(const QueuedReads&) = delete;

    // Calls `enqueue(staging)` with host staging of at least `staging_bytes` (aligned to 64), then records
    // an event behind it on `stream`. If enqueue throws, what it may have queued still reads the staging:
    // the entry is kept until the stream has passed it all the same.
    template <typename Enqueue>
    void enqueue(grey_backend_stream* stream, uint64_t staging_bytes, Enqueue&& enqueue) {
        Entry entry = take(staging_bytes);
        try {
            enqueue(entry.staging);
        } catch (...) {
            keep_behind(stream, std::move(entry));
            throw;
        }
        keep_behind(stream, std::move(entry));
    }

    // Waits until every stream has passed the work queued so far. A failure of that work belongs to its
    // stream (grey_stream_synchronize reports it), not to the caller.
    void settle() noexcept;
    [[nodiscard]] bool idle() const noexcept { return in_flight_.empty(); }

private:
    struct Entry {
        grey_backend_event* event = nullptr;
        void* staging = nullptr;
        uint64_t size = 0;
        bool pinned = false;  // from the backend's host_alloc; otherwise std::aligned_alloc
    };
    // An entry whose work is done (or a new one), with staging of `bytes` or more.
    Entry take(uint64_t bytes);
    // Records `entry`'s event behind the work queued on `stream` and keeps the entry until it completes;
    // where the record fails, waits for the stream instead.
    void keep_behind(grey_backend_stream* stream, Entry entry);
    // Whether the event has completed (a failure it reports is its stream's: it counts as completed).
    [[nodiscard]] bool completed(grey_backend_event* event) const noexcept;
    void free_entry(Entry& entry) noexcept;

    const Backend& backend_;
    uint32_t device_;
    std::deque<Entry> in_flight_;  // in the order queued
    std::vector<Entry> done_;
};

}  // namespace grey::kv
