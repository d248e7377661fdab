#include "memory/pinned_host.hpp"

#include "core/backend.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdlib>

namespace grey::memory {

bool PinnedBudget::take(uint64_t bytes, bool container) noexcept {
    std::lock_guard lock(mutex_);
    if (bytes > cap_ || held_ > cap_ - bytes) return false;
    if (container && (bytes > cap_ - reserve_ || held_containers_ > cap_ - reserve_ - bytes)) return false;
    held_ += bytes;
    if (container) held_containers_ += bytes;
    return true;
}

void PinnedBudget::give_back(uint64_t bytes, bool container) noexcept {
    std::lock_guard lock(mutex_);
    held_ -= bytes;
    if (container) held_containers_ -= bytes;
}

void* pinned_or_null(const Backend& backend, uint32_t device_in_backend, uint64_t size) {
    try {
        return backend.host_alloc(device_in_backend, size);
    } catch (const Error&) {
        return nullptr;
    }
}

TableStaging::~TableStaging() {
    // Taken chunks keep the staging alive, so only free ones are left.
    release_free();
}

std::shared_ptr<void> TableStaging::take(uint64_t size) { return take_chunk(size, false); }

std::shared_ptr<void> TableStaging::take_pinned(uint64_t size) { return take_chunk(size, true); }

TableStaging::Chunk TableStaging::pin(uint64_t wanted) {
    Chunk chunk;
    chunk.size = wanted;
    if (!budget_ || !budget_->take_for_staging(wanted)) return chunk;
    chunk.memory = pinned_or_null(backend_, device_, wanted);
    if (chunk.memory == nullptr) {
        budget_->give_back_staging(wanted);
        return chunk;
    }
    chunk.pinned = true;
    pinned_bytes_.fetch_add(wanted);
    return chunk;
}

std::shared_ptr<void> TableStaging::take_chunk(uint64_t size, bool pinned_only) {
    const uint64_t wanted = std::bit_ceil(std::max(size, kMinimumChunk));
    Chunk chunk;
    {
        std::lock_guard lock(mutex_);
        const auto found =
            std::find_if(free_.begin(), free_.end(), [&](const Chunk& c) { return c.size >= wanted && (c.pinned || !pinned_only); });
        if (found != free_.end()) {
            chunk = *found;
            free_.erase(found);
        }
    }
    if (chunk.memory == nullptr) {
        chunk = pin(wanted);
        // The budget may be held by free pinned chunks too small for this: they go, and the pin is tried again.
        if (chunk.memory == nullptr && release_free_pinned()) chunk = pin(wanted);
        if (chunk.memory == nullptr) {
            if (pinned_only) return nullptr;
            // Pinning refused: plain memory holds the table as well; only its upload may be staged by the driver.
            chunk.memory = std::aligned_alloc(64, wanted);
            if (chunk.memory == nullptr)
                fail(GREY_ERROR_OUT_OF_MEMORY, "cannot allocate " + std::to_string(wanted) + " bytes of host memory for a decoder's job table");
        }
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

void TableStaging::release_free() noexcept {
    std::vector<Chunk> chunks;
    {
        std::lock_guard lock(mutex_);
        chunks.swap(free_);
    }
    for (const Chunk& chunk : chunks) free_chunk(chunk);
}

bool TableStaging::release_free_pinned() noexcept {
    std::array<Chunk, kFreeChunks> pinned{};  // free_ never holds more
    size_t count = 0;
    {
        std::lock_guard lock(mutex_);
        std::erase_if(free_, [&](const Chunk& c) {
            if (!c.pinned || count == pinned.size()) return false;
            pinned[count++] = c;
            return true;
        });
    }
    for (size_t i = 0; i < count; ++i) free_chunk(pinned[i]);
    return count > 0;
}

void TableStaging::free_chunk(const Chunk& chunk) noexcept {
    if (chunk.pinned) {
        backend_.host_free(chunk.memory);
        pinned_bytes_.fetch_sub(chunk.size);
        budget_->give_back_staging(chunk.size);
    } else {
        std::free(chunk.memory);
    }
}

}  // namespace grey::memory
