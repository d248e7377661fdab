#include "kv/queued_reads.hpp"

#include "core/error.hpp"
#include "memory/pinned_host.hpp"

#include <algorithm>
#include <cstdlib>
#include <new>
#include <utility>

namespace grey::kv {

QueuedReads::~QueuedReads() {
    settle();
    for (Entry& entry : done_) free_entry(entry);
}

bool QueuedReads::completed(grey_backend_event* event) const noexcept {
    try {
        return backend_.event_query(event);
    } catch (const Error&) {
        // A failure of the stream's work (reported once the event has completed) or of the driver: either
        // way there is nothing more to wait for here.
        return true;
    }
}

QueuedReads::Entry QueuedReads::take(uint64_t bytes) {
    // The oldest work first: a stream runs it in order, so the first entry not yet done ends the search.
    while (!in_flight_.empty() && completed(in_flight_.front().event)) {
        done_.push_back(in_flight_.front());
        in_flight_.pop_front();
    }
    Entry entry;
    const auto fits = std::find_if(done_.begin(), done_.end(), [&](const Entry& e) { return e.size >= bytes; });
    if (fits != done_.end()) {
        entry = *fits;
        done_.erase(fits);
        return entry;
    }
    if (!done_.empty()) {  // a reused event, with larger staging
        entry = done_.back();
        done_.pop_back();
        if (entry.pinned) backend_.host_free(entry.staging);
        else std::free(entry.staging);
        entry.staging = nullptr;
    }
    try {
        if (entry.event == nullptr) entry.event = backend_.event_create_untimed(device_);
        // Rounded up, so that tables that grow a little reuse it.
        const uint64_t size = std::max<uint64_t>(4096, (bytes + 4095) / 4096 * 4096);
        entry.staging = memory::pinned_or_null(backend_, device_, size);
        entry.pinned = entry.staging != nullptr;
        if (entry.staging == nullptr && (entry.staging = std::aligned_alloc(64, size)) == nullptr) throw std::bad_alloc();
        entry.size = size;
    } catch (...) {
        free_entry(entry);
        throw;
    }
    return entry;
}

void QueuedReads::keep_behind(grey_backend_stream* stream, Entry entry) {
    // Where the entry cannot be kept, the stream's work is waited for here instead.
    const auto wait_for_stream = [&] {
        try {
            backend_.stream_synchronize(stream);
        } catch (const Error&) {
            // The stream's own failure: its work has still run.
        }
    };
    try {
        // Room in done_ for every entry, so that take() and settle() never allocate to move one there.
        done_.reserve(done_.size() + in_flight_.size() + 1);
        in_flight_.push_back(entry);
    } catch (...) {
        wait_for_stream();
        free_entry(entry);
        throw;
    }
    try {
        backend_.event_record(entry.event, stream);
    } catch (...) {
        in_flight_.pop_back();
        wait_for_stream();
        done_.push_back(entry);
        throw;
    }
}

void QueuedReads::settle() noexcept {
    for (Entry& entry : in_flight_) {
        try {
            backend_.event_synchronize(entry.event);
        } catch (const Error&) {
            // As in completed(): the stream's failure, or the driver's; the wait is over.
        }
        done_.push_back(entry);
    }
    in_flight_.clear();
}

void QueuedReads::free_entry(Entry& entry) noexcept {
    if (entry.pinned) backend_.host_free(entry.staging);
    else std::free(entry.staging);
    if (entry.event != nullptr) backend_.event_destroy(entry.event);
    entry = Entry{};
}

}  // namespace grey::kv
