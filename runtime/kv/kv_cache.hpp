// The KV cache behind grey_kv_cache: the blocks (buffers of the cache's backend) with their byte
// accounting against capacity, the prefix index and LRU of cached blocks, and the sequences' block
// tables. What happens to a block's bytes (writing tokens, quantizing, attention) is the backend's
// kv_* ops; the cache decides which blocks, and names and shares them. Every public method takes the
// cache's lock; a method that throws leaves the cache as it was (checks come before changes).
#pragma once

#include "kv/kv_block.hpp"
#include "kv/kv_shape.hpp"

#include "core/backend.hpp"

#include <cstdint>
#include <list>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

namespace grey::kv {

struct KvSequence {
    uint64_t salt = 0;
    uint64_t length = 0;
    std::vector<uint64_t> table;  // block ids, in token order
};

class KvCache {
public:
    // Blocks are buffers of `device` (an index within `backend`), which must implement the kv_* slots.
    KvCache(const KvShape& shape, const Backend& backend, uint32_t device);

    uint64_t create_sequence(uint64_t salt);
    uint64_t fork(uint64_t sequence);
    void truncate(uint64_t sequence, uint64_t tokens);
    void free_sequence(uint64_t sequence);
    uint64_t length(uint64_t sequence) const;
    // `keys`/`values` already converted to float, [layer][token][kv_head][head_dim].
    void append(uint64_t sequence, std::span<const int32_t> tokens, std::span<const float> keys, std::span<const float> values);
    void attend(const grey_kv_attend_params& params, std::span<const uint64_t> sequences, std::span<const float> queries,
                std::span<float> output) const;
    void gather(uint64_t sequence, uint32_t layer, std::span<float> keys, std::span<float> values) const;
    grey_kv_stats stats() const;
    const KvShape& shape() const { return shape_; }

private:
    KvSequence& find(uint64_t sequence);
    const KvSequence& find(uint64_t sequence) const;
    KvBlock new_dense_block() const;
    // A block's bytes, read back to the host.
    std::vector<uint8_t> read_block(const KvBlock& block) const;
    uint64_t add_block(KvBlock block);
    void release(uint64_t id);
    void reference(uint64_t id);
    void make_room(uint64_t bytes);
    uint64_t writable_last_block(KvSequence& sequence);
    void finish_block(KvSequence& sequence, size_t index);
    // Drops the tokens from `tokens` on (no more than its length).
    void shorten(KvSequence& sequence, uint64_t tokens);
    void quantize_old_blocks(KvSequence& sequence);

    KvShape shape_;
    const Backend& backend_;
    uint32_t device_;
    mutable std::mutex mutex_;
    std::unordered_map<uint64_t, KvBlock> blocks_;
    std::unordered_map<uint64_t, KvSequence> sequences_;
    std::unordered_map<uint64_t, uint64_t> prefix_index_;  // hash -> block id
    std::list<uint64_t> cached_lru_;  // blocks no sequence holds, least recently used first
    std::unordered_map<uint64_t, std::list<uint64_t>::iterator> cached_position_;
    uint64_t next_block_ = 1;
    uint64_t next_sequence_ = 1;
    uint64_t bytes_used_ = 0;
    uint64_t prefix_hits_ = 0;
    uint64_t evictions_ = 0;
};

}  // namespace grey::kv
