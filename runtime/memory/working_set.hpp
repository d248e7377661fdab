// A device's working-set cache: dense device copies of mapped buffers that are not raw, within a fixed
// capacity. A copy is pinned while the buffer is mapped and never moved or freed then; unpinned copies
// stay for later maps (a hit) until room is needed, least recently used first — except when the buffer
// that needs the room was itself freed for room earlier: then the maps cycle over more than the cache
// holds (a model streamed layer by layer), where least-recently-used evicts exactly the copy needed
// next and never hits, so the most recently used unpinned copy goes instead (the one a cycle needs
// last), which keeps all but one of the cache's copies hitting on every pass. A copy is only ever a
// copy: freeing it loses nothing, since the buffer keeps its own residency. A copy that an async map
// fills on a stream is pending until the event recorded after the fill completes: it is never freed
// before (the stream still writes it, from host memory the entry keeps), and a map of it on another
// stream waits for that event. A fill decoded on the device carries a check of its fault bits, run
// when the fill is first seen complete (queried, waited for, or freed): a copy that fails it, like one
// whose stream failed, is never handed to a later map, and goes with its last unmap. Not synchronised:
// the memory tiers call it (and so the checks) under their mutex.
#pragma once

#include "core/error.hpp"
#include "grey_backend.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

struct grey_buffer;

namespace grey {
class Backend;
}

namespace grey::memory {

// Counts itself in an atomic counter for as long as it lives (moved, never copied): the memory tiers
// count the fills whose checks have not run yet without taking their lock.
class Counted {
public:
    Counted() = default;
    explicit Counted(std::atomic<uint64_t>& count) noexcept : count_(&count) { count_->fetch_add(1); }
    Counted(Counted&& other) noexcept : count_(std::exchange(other.count_, nullptr)) {}
    Counted& operator=(Counted&& other) noexcept {
        if (this != &other) {
            reset();
            count_ = std::exchange(other.count_, nullptr);
        }
        return *this;
    }
    Counted(const Counted&) = delete;
    Counted& operator=(const Counted&) = delete;
    ~Counted() { reset(); }

private:
    void reset() noexcept {
        if (count_ != nullptr) count_->fetch_sub(1);
        count_ = nullptr;
    }
    std::atomic<uint64_t>* count_ = nullptr;
};

class WorkingSetCache {
public:
    WorkingSetCache(const Backend& backend, uint32_t device_in_backend, uint64_t capacity_bytes);
    ~WorkingSetCache();
    WorkingSetCache(const WorkingSetCache&) = delete;
    WorkingSetCache& operator=(const WorkingSetCache&) = delete;

    // The copy of `owner`, pinned, counting a hit; or, on a miss, a new copy of `size` bytes that
    // `fill` writes, made after freeing unpinned copies as needed. GREY_ERROR_OUT_OF_MEMORY when `size`
    // exceeds the capacity or pinned copies leave too little room; the cache is then unchanged.
    grey_backend_buffer* pin(const grey_buffer* owner, uint64_t size, const std::function<void(grey_backend_buffer*)>& fill);
    void unpin(const grey_buffer* owner) noexcept;
    // What an async fill reads: host bytes, or device memory of the backend's (a container decoded on the
    // device), given back once the fill has completed.
    struct FillSource {
        std::vector<std::byte> host;
        std::unique_ptr<grey_backend_buffer, std::function<void(grey_backend_buffer*)>> device;
        // A host-tier buffer's container, copied to the device for its decoder to read, and the host
        // memory it is copied from (pinned: the stream's DMA reads it after the call), kept even if the
        // buffer changes residency or goes in the meantime.
        std::unique_ptr<grey_backend_buffer, std::function<void(grey_backend_buffer*)>> container;
        std::shared_ptr<const void> host_container;
        // Host memory the backend staged the decoder's job table in; the stream's upload reads it.
        std::shared_ptr<void> table;
        // A pageable container's copy queued in pieces: the pinned staging the stream copies through, and
        // what its host tasks read.
        std::shared_ptr<void> container_staging;
        std::shared_ptr<const void> container_pieces;
        // Called once, when the fill is seen complete and its stream kept no failure (before `device`
        // goes): what the copy turned out to lack (a block the device's decoder faulted on), which makes
        // the fill a failed one; nullopt when the copy holds the buffer's bytes.
        std::function<std::optional<Error>()> check;
        Counted check_pending;  // counts `check` among the tiers' unsettled checks until the fill is settled
        const grey_backend_stream* stream = nullptr;  // the stream the fill is queued on
    };
    // The copy of `owner` (just pinned) is being filled on a stream: `ready` (recorded after the fill,
    // owned by the cache from now on) completes when it is written, and `source` is kept until then.
    void set_pending(const grey_buffer* owner, grey_backend_event* ready, FillSource source) noexcept;
    // The event a user of `owner`'s pinned copy must wait for; nullptr when the copy is written.
    grey_backend_event* pending_event(const grey_buffer* owner);
    // True while an async fill of `owner`'s copy has not completed (the buffer must not move then).
    bool fill_pending(const grey_buffer* owner);
    // What its check found wrong with `owner`'s completed fill (nullopt: nothing, or still running).
    std::optional<Error> fill_failure(const grey_buffer* owner);
    // Settles every fill seen complete, running its check; waits first for every fill (`wait_all`) or
    // for those queued on `wait_for` (when not nullptr).
    void settle_all(bool wait_all, const grey_backend_stream* wait_for = nullptr) noexcept;
    // Frees the copy of `owner`, if any (the buffer goes away or becomes raw).
    void drop(const grey_buffer* owner) noexcept;

    [[nodiscard]] bool contains(const grey_buffer* owner) const { return entries_.count(owner) != 0; }
    [[nodiscard]] uint64_t bytes() const noexcept { return bytes_; }
    [[nodiscard]] uint64_t capacity() const noexcept { return capacity_; }
    struct Counts {
        uint64_t hits = 0;
        uint64_t misses = 0;
        uint64_t bytes = 0;
    };
    [[nodiscard]] Counts counts() const noexcept { return {hits_, misses_, bytes_}; }
    // The same for the copies and maps of one tenant's buffers.
    [[nodiscard]] Counts tenant_counts(uint64_t tenant) const;

private:
    struct Entry {
        grey_backend_buffer* copy = nullptr;
        uint64_t size = 0;
        uint64_t tenant = 0;
        uint32_t pins = 0;
        std::list<const grey_buffer*>::iterator recency;
        grey_backend_event* ready = nullptr;  // an async fill not yet seen complete
        FillSource source;                    // what that fill reads
        bool fill_failed = false;             // its stream reported a failure, or its check: the copy is not trusted
        std::optional<Error> failure;         // what the check found
    };
    // Forgets a completed fill's event and source, after running its check; false while the fill is
    // still running (with `wait`, it is waited for first).
    bool settle(Entry& entry, bool wait = false) noexcept;
    void free_entry(std::map<const grey_buffer*, Entry>::iterator entry) noexcept;
    void count(uint64_t tenant, bool hit);

    const Backend& backend_;
    uint32_t device_;
    uint64_t capacity_;
    std::map<const grey_buffer*, Entry> entries_;
    std::list<const grey_buffer*> recency_;  // most recently used first
    // Buffers whose copies were freed for room, by when (the count of such frees), the oldest forgotten
    // past kRemembered: a miss on one of them means the maps cycle over more than the cache.
    static constexpr size_t kRemembered = 4096;
    std::map<const grey_buffer*, uint64_t> evicted_;
    std::map<uint64_t, const grey_buffer*> evicted_by_age_;
    uint64_t evictions_ = 0;
    void remember_evicted(const grey_buffer* owner);
    void forget_evicted(const grey_buffer* owner) noexcept;
    uint64_t bytes_ = 0;
    uint64_t hits_ = 0;
    uint64_t misses_ = 0;
    std::map<uint64_t, Counts> by_tenant_;  // hits and misses only
};

}  // namespace grey::memory
