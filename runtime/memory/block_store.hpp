// A device's store of deduplicated blocks: each distinct block of a sharing domain is stored once and
// refcounted by the buffers that hold it. Blocks are found by an xxh3 hash seeded with a random salt of
// their domain (so hashes say nothing across domains) and then compared byte for byte with the stored
// copy: a hash collision never merges different data. The hash is computed on the host from the bytes
// (acquire) or by the device where the bytes lie (acquire_hashed, with the backend's block_hashes slot and
// the same seed): both give the same value, so a block stored by either way is found by the other. A stored block is held raw in its own device
// allocation, or compressed (an LT-Block container of one block, with its checksum) in device or host
// memory: compressing a block shared by several buffers saves its bytes once for all of them. Not
// synchronised: the memory tiers call it under their mutex.
#pragma once

#include "codec/container.hpp"
#include "common/codec_decode.hpp"
#include "grey.h"
#include "grey_backend.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

namespace grey {
class Backend;
}

namespace grey::memory {

struct SharedBlock {
    // RAW: `storage` holds the block's bytes; COMPRESSED_DEVICE: `storage` holds its container;
    // COMPRESSED_HOST: `host_container` holds it.
    grey_residency tier = GREY_RESIDENCY_RAW;
    grey_codec codec = GREY_CODEC_DEFAULT;     // a compressed block's codec
    grey_backend_buffer* storage = nullptr;
    std::vector<std::byte> host_container;
    uint64_t stored_size = 0;                  // bytes held: `size` raw, the container's size compressed
    grey_codec left_raw_by = GREY_CODEC_DEFAULT;  // a raw block's last codec that did not make it smaller
    // COMPRESSED_DEVICE in a codec a device decodes: its container's one block as a device job (the
    // payload's offset in `storage`), so that a map decodes all such blocks of a buffer in one call.
    std::optional<common::CodecBlockJob> device_job;
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

    // A reference to the stored block of `domain` equal to `bytes`, storing it (raw) when there is none.
    SharedBlock* acquire(uint64_t domain, std::span<const std::byte> bytes);
    // The same for a block whose hash (seeded with seed(domain)) the caller has: `incoming` gives its
    // bytes and is called only when a stored block of that hash and size is there to compare with (so
    // bytes that live in device memory cross to the host only then); `store` makes the storage of a new
    // block (raw, `size` bytes) when none is equal.
    SharedBlock* acquire_hashed(uint64_t domain, uint64_t hash, uint32_t size, const std::function<std::span<const std::byte>()>& incoming,
                                const std::function<grey_backend_buffer*()>& store);
    // The seed of the block hashes of `domain` (its salt, drawn at its first use).
    uint64_t seed(uint64_t domain);
    // Drops one reference; the block is freed with its last.
    void release(SharedBlock* block) noexcept;

    // Reads `out.size()` bytes of `block` at `offset`, decoding a compressed block (its checksum checked:
    // GREY_ERROR_CORRUPT, never wrong bytes).
    void read(const SharedBlock& block, uint64_t offset, std::span<std::byte> out);
    // Holds `block` compressed in `tier` (COMPRESSED_DEVICE or COMPRESSED_HOST) with `options`, recorded
    // as `codec`. True when it changed the block; false when the block is held so already, or when the
    // container would not be smaller than the block (it is then left as it is, and a raw block remembers
    // `codec`, so that it is not tried again with it). On failure the block is unchanged.
    bool compress(SharedBlock& block, grey_residency tier, grey_codec codec, const codec::EncodeOptions& options);

    // The sizes of the stored blocks (as if raw), and the bytes they hold in device and host memory.
    [[nodiscard]] uint64_t stored_bytes() const noexcept { return stored_bytes_; }
    [[nodiscard]] uint64_t device_bytes() const noexcept { return device_bytes_; }
    [[nodiscard]] uint64_t host_bytes() const noexcept { return host_bytes_; }
    [[nodiscard]] uint64_t block_count() const noexcept { return block_count_; }
    // Hash matches whose bytes differed (kept apart), since the store was made.
    [[nodiscard]] uint64_t collisions() const noexcept { return collisions_; }

private:
    // Frees what `block` holds and takes it out of the byte counts.
    void free_storage(SharedBlock& block) noexcept;

    const Backend& backend_;
    uint32_t device_;
    const BlockHash& hash_;
    std::unordered_map<uint64_t, uint64_t> salts_;
    // (domain, hash) -> the stored blocks with that hash (more than one only after a collision).
    std::map<std::pair<uint64_t, uint64_t>, std::vector<std::unique_ptr<SharedBlock>>> index_;
    uint64_t stored_bytes_ = 0;
    uint64_t device_bytes_ = 0;
    uint64_t host_bytes_ = 0;
    uint64_t block_count_ = 0;
    uint64_t collisions_ = 0;
    std::vector<std::byte> compare_;  // staging for the byte comparison
};

}  // namespace grey::memory
