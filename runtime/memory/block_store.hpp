// A device's store of deduplicated blocks: each distinct block of a sharing domain is stored once, in
// its own device allocation, and refcounted by the buffers that hold it. Blocks are found by an xxh3
// hash seeded with a random salt of their domain (so hashes say nothing across domains) and then
// compared byte for byte with the stored copy: a hash collision never merges different data. Not
// synchronised: the memory tiers call it under their mutex.
#pragma once

#include "grey_backend.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

namespace grey {
class Backend;
}

namespace grey::memory {

struct SharedBlock {
    grey_backend_buffer* storage = nullptr;
    uint32_t size = 0;
    uint64_t domain = 0;
    uint64_t hash = 0;
    uint64_t references = 0;
};

// The block hash: bytes and a seed in, 64 bits out. Tests replace it to force collisions.
using BlockHash = std::function<uint64_t(std::span<const std::byte> bytes, uint64_t seed)>;
uint64_t xxh3_block_hash(std::span<const std::byte> bytes, uint64_t seed) noexcept;

class SharedBlockStore {
public:
    // `hash` must outlive the store.
    SharedBlockStore(const Backend& backend, uint32_t device_in_backend, const BlockHash& hash);
    ~SharedBlockStore();
    SharedBlockStore(const SharedBlockStore&) = delete;
    SharedBlockStore& operator=(const SharedBlockStore&) = delete;

    // A reference to the stored block of `domain` equal to `bytes`, storing it when there is none.
    SharedBlock* acquire(uint64_t domain, std::span<const std::byte> bytes);
    // Drops one reference; the block is freed with its last.
    void release(SharedBlock* block) noexcept;

    [[nodiscard]] uint64_t stored_bytes() const noexcept { return stored_bytes_; }
    [[nodiscard]] uint64_t block_count() const noexcept { return block_count_; }
    // Hash matches whose bytes differed (kept apart), since the store was made.
    [[nodiscard]] uint64_t collisions() const noexcept { return collisions_; }

private:
    uint64_t salt(uint64_t domain);

    const Backend& backend_;
    uint32_t device_;
    const BlockHash& hash_;
    std::unordered_map<uint64_t, uint64_t> salts_;
    // (domain, hash) -> the stored blocks with that hash (more than one only after a collision).
    std::map<std::pair<uint64_t, uint64_t>, std::vector<std::unique_ptr<SharedBlock>>> index_;
    uint64_t stored_bytes_ = 0;
    uint64_t block_count_ = 0;
    uint64_t collisions_ = 0;
    std::vector<std::byte> compare_;  // staging for the byte comparison
};

}  // namespace grey::memory
