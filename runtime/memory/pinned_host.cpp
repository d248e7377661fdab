#include "memory/pinned_host.hpp"

#include "core/backend.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <bit>
#include <cstdlib>

namespace grey::memory {

bool PinnedBudget::take(uint64_t bytes) noexcept {
    uint64_t held = held_.load();
    do {
        if (bytes > cap_ || held > cap_ - bytes) return false;
    } while (!held_.compare_exchange_weak(held, held + bytes));
    return true;
}

void PinnedBudget::give_back(uint64_t bytes) noexcept { held_.fetch_sub(bytes); }

void* pinned_or_null(const Backend& backend, uint32_t device_in_backend, uint64_t size) {
    try {
        return backend.host_alloc(device_in_backend, size);
    } catch (const Error&) {
        return nullptr;
    }
}

TableStaging::~TableStaging() {
    // Taken chunks keep the staging alive, so only free ones are left.
    for (const Chunk& chunk : free_) free_chunk(chunk);
}

std::shared_ptr<void> TableStaging::take(uint64_t size) {
    const uint64_t wanted = std::bit_ceil(std::max(size, kMinimumChunk));
    Chunk chunk;
    {
        std::lock_guard lock(mutex_);
        const auto found = std::find_if(free_.begin(), free_.end(), [&](const Chunk& c) { return c.size >= wanted; });
        if (found != free_.end()) {
            chunk = *found;
            free_.erase(found);
        }
    }
    if (chunk.memory == nullptr) {
        chunk.size = wanted;
        chunk.memory = pinned_or_null(backend_, device_, wanted);
        chunk.pinned = chunk.memory != nullptr;
        // Pinning refused: plain memory holds the table as well; only its upload may be staged by the driver.
        if (chunk.memory == nullptr) chunk.memory = std::aligned_alloc(64, wanted);
        if (chunk.memory == nullptr) fail(GREY_ERROR_OUT_OF_MEMORY, "cannot allocate " + std::to_string(wanted) + " bytes of host memory for a decoder's job table");
    }
    std::shared_ptr<TableStaging> self;
    try {
        self = shared_from_this();
    } catch (...) {
        give_back(chunk);
        throw;
    }
    // Should the shared pointer fail to be made, it calls the deleter itself.
    return {chunk.memory, [self = std::move(self), chunk](void*) { self->give_back(chunk); }};
}

void TableStaging::give_back(Chunk chunk) noexcept {
    {
        std::lock_guard lock(mutex_);
        if (free_.size() < kFreeChunks) {
            try {
                free_.push_back(chunk);
                return;
            } catch (...) {  // no room to keep it: freed instead
            }
        }
    }
    free_chunk(chunk);
}

void TableStaging::free_chunk(const Chunk& chunk) const noexcept {
    if (chunk.pinned)
        backend_.host_free(chunk.memory);
    else
        std::free(chunk.memory);
}

}  // namespace grey::memory
