#include "memory/working_set.hpp"

#include "core/backend.hpp"
#include "core/error.hpp"
#include "memory/buffer.hpp"

#include <iterator>
#include <string>

namespace grey::memory {

WorkingSetCache::WorkingSetCache(const Backend& backend, uint32_t device_in_backend, uint64_t capacity_bytes)
    : backend_(backend), device_(device_in_backend), capacity_(capacity_bytes) {}

WorkingSetCache::~WorkingSetCache() {
    while (!entries_.empty()) free_entry(entries_.begin());
}

bool WorkingSetCache::settle(Entry& entry, bool wait) noexcept {
    if (entry.ready == nullptr) return true;
    bool stream_failed = false;
    try {
        if (wait)
            backend_.event_synchronize(entry.ready);
        else if (!backend_.event_query(entry.ready))
            return false;
    } catch (...) {
        // The stream failed at or before the fill: the copy may not hold the buffer's bytes.
        stream_failed = true;
    }
    if (!stream_failed && entry.source.check) {
        try {
            entry.failure = entry.source.check();
        } catch (const Error& e) {
            entry.failure = e;
        } catch (...) {
            entry.failure = Error(GREY_ERROR_INTERNAL, "checking an async fill of the working set failed");
        }
    }
    entry.fill_failed = stream_failed || entry.failure.has_value();
    backend_.event_destroy(entry.ready);
    entry.ready = nullptr;
    entry.source = FillSource{};
    return true;
}

void WorkingSetCache::set_pending(const grey_buffer* owner, grey_backend_event* ready, FillSource source) noexcept {
    Entry& entry = entries_.at(owner);
    entry.ready = ready;
    entry.source = std::move(source);
}

grey_backend_event* WorkingSetCache::pending_event(const grey_buffer* owner) {
    const auto found = entries_.find(owner);
    if (found == entries_.end() || settle(found->second)) return nullptr;
    return found->second.ready;
}

bool WorkingSetCache::fill_pending(const grey_buffer* owner) { return pending_event(owner) != nullptr; }

std::optional<Error> WorkingSetCache::fill_failure(const grey_buffer* owner) {
    const auto found = entries_.find(owner);
    if (found == entries_.end() || !settle(found->second)) return std::nullopt;
    return found->second.failure;
}

void WorkingSetCache::settle_all(bool wait_all, const grey_backend_stream* wait_for) noexcept {
    for (auto& [owner, entry] : entries_)
        (void)settle(entry, wait_all || (wait_for != nullptr && entry.ready != nullptr && entry.source.stream == wait_for));
}

void WorkingSetCache::count(uint64_t tenant, bool hit) {
    (hit ? hits_ : misses_) += 1;
    auto& t = by_tenant_[tenant];
    (hit ? t.hits : t.misses) += 1;
}

grey_backend_buffer* WorkingSetCache::pin(const grey_buffer* owner, uint64_t size, const std::function<void(grey_backend_buffer*)>& fill) {
    if (auto found = entries_.find(owner); found != entries_.end()) {
        // A copy whose fill failed is made again once nothing maps it.
        if (settle(found->second) && found->second.fill_failed) {
            if (found->second.pins > 0 && found->second.failure) throw *found->second.failure;
            if (found->second.pins > 0)
                fail(GREY_ERROR_INVALID_ARGUMENT, "the working-set copy of this buffer was filled on a stream that failed, and it is still mapped; "
                                                  "unmap every mapping of it, then map it again");
            free_entry(found);
            return pin(owner, size, fill);
        }
        ++found->second.pins;
        recency_.splice(recency_.begin(), recency_, found->second.recency);
        count(owner->traits.tenant, true);
        return found->second.copy;
    }
    if (size > capacity_)
        fail(GREY_ERROR_OUT_OF_MEMORY, "the buffer of " + std::to_string(size) + " bytes is larger than the working-set cache of " +
                                           std::to_string(capacity_) + " bytes (memory.cache.working_set_mb)");
    uint64_t pinned = 0;
    // A copy still being filled on a stream is as good as pinned.
    for (auto& [o, e] : entries_)
        if (e.pins > 0 || !settle(e)) pinned += e.size;
    if (pinned + size > capacity_)
        fail(GREY_ERROR_OUT_OF_MEMORY, "the working-set cache of " + std::to_string(capacity_) + " bytes has " + std::to_string(pinned) +
                                           " bytes of mapped copies (or copies a stream still fills), leaving too little for " + std::to_string(size) +
                                           " more; unmap buffers or raise memory.cache.working_set_mb");
    // Least recently used, unpinned copies go first; most recently used first when this buffer's own
    // copy was freed for room before (the maps cycle over more than the cache).
    const bool cycling = evicted_.count(owner) != 0;
    forget_evicted(owner);
    // Frees the copy at `it` unless it is pinned or still being filled; the iterator must not be used after.
    auto evict_if_unpinned = [&](std::list<const grey_buffer*>::iterator it) {
        const auto entry = entries_.find(*it);
        if (entry->second.pins > 0 || !settle(entry->second)) return false;
        remember_evicted(entry->first);
        free_entry(entry);  // unlinks it from recency_
        return true;
    };
    if (cycling) {
        for (auto it = recency_.begin(); bytes_ + size > capacity_ && it != recency_.end();) evict_if_unpinned(it++);
    } else {
        for (auto it = recency_.end(); bytes_ + size > capacity_ && it != recency_.begin();) {
            const auto candidate = std::prev(it);
            // Kept: step back past it. Freed: `it` (its successor) stays, and now follows its predecessor.
            if (!evict_if_unpinned(candidate)) it = candidate;
        }
    }
    grey_backend_buffer* copy = backend_.buffer_alloc(device_, size);
    try {
        fill(copy);
        recency_.push_front(owner);
        try {
            entries_.emplace(owner, Entry{copy, size, owner->traits.tenant, 1, recency_.begin()});
        } catch (...) {
            recency_.pop_front();
            throw;
        }
    } catch (...) {
        backend_.buffer_free(copy);
        throw;
    }
    bytes_ += size;
    count(owner->traits.tenant, false);
    return copy;
}

void WorkingSetCache::unpin(const grey_buffer* owner) noexcept {
    const auto found = entries_.find(owner);
    if (found == entries_.end() || found->second.pins == 0) return;
    // A copy whose fill is known to have failed goes with its last mapping: nothing is to read it again.
    if (--found->second.pins == 0 && found->second.ready == nullptr && found->second.fill_failed) free_entry(found);
}

void WorkingSetCache::drop(const grey_buffer* owner) noexcept {
    forget_evicted(owner);  // the buffer goes away (its address may be another's next) or becomes raw
    const auto found = entries_.find(owner);
    if (found != entries_.end()) free_entry(found);
}

void WorkingSetCache::remember_evicted(const grey_buffer* owner) {
    forget_evicted(owner);
    evicted_by_age_.emplace(++evictions_, owner);
    evicted_.emplace(owner, evictions_);
    if (evicted_.size() > kRemembered) forget_evicted(evicted_by_age_.begin()->second);
}

void WorkingSetCache::forget_evicted(const grey_buffer* owner) noexcept {
    if (const auto found = evicted_.find(owner); found != evicted_.end()) {
        evicted_by_age_.erase(found->second);
        evicted_.erase(found);
    }
}

void WorkingSetCache::free_entry(std::map<const grey_buffer*, Entry>::iterator entry) noexcept {
    // A stream may still write the copy: wait for it (its failure belongs to that stream, and what the
    // fill's check finds is reported by the check).
    (void)settle(entry->second, true);
    backend_.buffer_free(entry->second.copy);
    bytes_ -= entry->second.size;
    recency_.erase(entry->second.recency);
    entries_.erase(entry);
}

WorkingSetCache::Counts WorkingSetCache::tenant_counts(uint64_t tenant) const {
    Counts counts;
    if (const auto found = by_tenant_.find(tenant); found != by_tenant_.end()) counts = found->second;
    counts.bytes = 0;
    for (const auto& [owner, entry] : entries_)
        if (entry.tenant == tenant) counts.bytes += entry.size;
    return counts;
}

}  // namespace grey::memory
