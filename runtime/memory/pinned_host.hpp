// Page-locked host memory the memory tiers take from a device's backend (its host_alloc slot): the budget
// that bounds every such byte on a device (memory.compression.pinned_host_mb), and the small, reused
// staging that work queued on a stream reads (the decoder's job tables, pieces of pageable containers).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace grey {
class Backend;
}

namespace grey::memory {

// The page-locked bytes the memory tiers hold on one device, against a cap (memory.compression.pinned_host_mb):
// host-tier containers, and the staging of async maps (job tables, pieces of pageable containers). The
// containers may take the cap less a reserve (a quarter of it, at most kStagingReserve), which is left
// for the staging, so that containers filling their part never leave a map without staging. Shared by the
// containers and the staging, which give their bytes back when they go (a fill still copying from one
// may keep it past the tiers).
class PinnedBudget {
public:
    static constexpr uint64_t kStagingReserve = 16ull << 20;
    explicit PinnedBudget(uint64_t cap_bytes) noexcept : cap_(cap_bytes), reserve_(std::min(cap_bytes / 4, kStagingReserve)) {}
    // Takes `bytes` for a container when the containers' bytes stay within the cap less the staging
    // reserve and all bytes within the cap; for staging, when all bytes stay within the cap. False
    // (nothing taken) otherwise.
    [[nodiscard]] bool take_for_container(uint64_t bytes) noexcept { return take(bytes, true); }
    [[nodiscard]] bool take_for_staging(uint64_t bytes) noexcept { return take(bytes, false); }
    void give_back_container(uint64_t bytes) noexcept { give_back(bytes, true); }
    void give_back_staging(uint64_t bytes) noexcept { give_back(bytes, false); }
    [[nodiscard]] uint64_t staging_reserve() const noexcept { return reserve_; }

private:
    bool take(uint64_t bytes, bool container) noexcept;
    void give_back(uint64_t bytes, bool container) noexcept;
    const uint64_t cap_;
    const uint64_t reserve_;
    std::mutex mutex_;
    uint64_t held_ = 0;             // guarded by mutex_: every pinned byte
    uint64_t held_containers_ = 0;  // guarded by mutex_: the containers' among them
};

// `size` bytes of page-locked memory from the backend's host_alloc (free it with its host_free), or
// nullptr where pinning is refused (no slot, the driver's limit): the caller then holds the same bytes in
// pageable memory.
void* pinned_or_null(const Backend& backend, uint32_t device_in_backend, uint64_t size);

// Host memory that work queued on a stream reads after the call: the job tables a decode uploads
// (codec_decode_async_staged), and the pieces of a pageable host-tier container copied to the device on
// the stream (Tiers::stage_host_container_locked). It is held with the fill until the stream is past it,
// then reused. Page-locked from the backend where it can be and where the device's PinnedBudget has room
// (the upload is then a DMA that waits for nothing), counted there for as long as it is held; plain
// aligned memory otherwise. Made with std::make_shared: a chunk taken keeps its staging alive.
class TableStaging : public std::enable_shared_from_this<TableStaging> {
public:
    TableStaging(const Backend& backend, uint32_t device_in_backend, std::shared_ptr<PinnedBudget> budget) noexcept
        : backend_(backend), device_(device_in_backend), budget_(std::move(budget)) {}
    ~TableStaging();
    TableStaging(const TableStaging&) = delete;
    TableStaging& operator=(const TableStaging&) = delete;

    // At least `size` bytes, aligned to 64, back to the staging's free chunks when the last copy of the
    // pointer goes.
    [[nodiscard]] std::shared_ptr<void> take(uint64_t size);
    // The same, but page-locked only: an empty pointer when no pinned memory can be had (no host_alloc
    // slot, the driver's limit, or the budget full), for work that must not read pageable memory.
    [[nodiscard]] std::shared_ptr<void> take_pinned(uint64_t size);
    // Page-locked bytes held now, taken or free (grey_memory_stats.pinned_host_bytes counts them).
    [[nodiscard]] uint64_t pinned_bytes() const noexcept { return pinned_bytes_.load(); }

private:
    struct Chunk {
        void* memory = nullptr;
        uint64_t size = 0;
        bool pinned = false;
    };
    std::shared_ptr<void> take_chunk(uint64_t size, bool pinned_only);
    // `wanted` bytes of pinned memory counted against the budget; a chunk with no memory when refused.
    Chunk pin(uint64_t wanted);
    void give_back(Chunk chunk) noexcept;
    void free_chunk(const Chunk& chunk) noexcept;
    // Frees the free chunks (their pinned bytes go back to the budget); the pinned ones only, saying
    // whether there were any.
    void release_free() noexcept;
    bool release_free_pinned() noexcept;

    static constexpr uint64_t kMinimumChunk = 4096;
    static constexpr size_t kFreeChunks = 8;  // kept for reuse; more are freed

    const Backend& backend_;
    const uint32_t device_;
    const std::shared_ptr<PinnedBudget> budget_;  // nullptr: nothing is pinned
    std::atomic<uint64_t> pinned_bytes_{0};
    std::mutex mutex_;
    std::vector<Chunk> free_;
};

}  // namespace grey::memory
