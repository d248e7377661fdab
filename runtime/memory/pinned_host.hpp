// Page-locked host memory the memory tiers take from a device's backend (its host_alloc slot): the budget
// that bounds the bytes of host-tier containers held pinned on a device (memory.compression.pinned_host_mb),
// and the small, reused staging of the job tables that the device's decoder uploads on a stream.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace grey {
class Backend;
}

namespace grey::memory {

// The bytes of host-tier containers held pinned on one device, against a cap. Shared by the containers,
// which give their bytes back when they go (a fill still copying from one may keep it past the tiers).
class PinnedBudget {
public:
    explicit PinnedBudget(uint64_t cap_bytes) noexcept : cap_(cap_bytes) {}
    // Takes `bytes` when they fit under the cap; false (nothing taken) otherwise.
    [[nodiscard]] bool take(uint64_t bytes) noexcept;
    void give_back(uint64_t bytes) noexcept;

private:
    const uint64_t cap_;
    std::atomic<uint64_t> held_{0};
};

// `size` bytes of page-locked memory from the backend's host_alloc (free it with its host_free), or
// nullptr where pinning is refused (no slot, the driver's limit): the caller then holds the same bytes in
// pageable memory.
void* pinned_or_null(const Backend& backend, uint32_t device_in_backend, uint64_t size);

// Host memory for the job tables a decode queued on a stream uploads (codec_decode_async_staged): the
// stream's copy reads it after the call, so it is held with the fill until the stream is past it, then
// reused. Page-locked from the backend where it can be (the upload is then a DMA that waits for nothing),
// plain aligned memory otherwise. Made with std::make_shared: a chunk taken keeps its staging alive.
class TableStaging : public std::enable_shared_from_this<TableStaging> {
public:
    TableStaging(const Backend& backend, uint32_t device_in_backend) noexcept : backend_(backend), device_(device_in_backend) {}
    ~TableStaging();
    TableStaging(const TableStaging&) = delete;
    TableStaging& operator=(const TableStaging&) = delete;

    // At least `size` bytes, aligned to 64, back to the staging's free chunks when the last copy of the
    // pointer goes.
    [[nodiscard]] std::shared_ptr<void> take(uint64_t size);

private:
    struct Chunk {
        void* memory = nullptr;
        uint64_t size = 0;
        bool pinned = false;
    };
    void give_back(Chunk chunk) noexcept;
    void free_chunk(const Chunk& chunk) const noexcept;

    static constexpr uint64_t kMinimumChunk = 4096;
    static constexpr size_t kFreeChunks = 8;  // kept for reuse; more are freed

    const Backend& backend_;
    const uint32_t device_;
    std::mutex mutex_;
    std::vector<Chunk> free_;
};

}  // namespace grey::memory
