#include "kv/kv_cache.hpp"

#include "core/error.hpp"
#include "kv/prefix_hash.hpp"

#include <string>

namespace grey::kv {

KvSequence& KvCache::find(uint64_t sequence) {
    auto it = sequences_.find(sequence);
    if (it == sequences_.end())
        fail(GREY_ERROR_NOT_FOUND, "sequence " + std::to_string(sequence) + " does not exist in this cache (never created, or freed)");
    return it->second;
}

const KvSequence& KvCache::find(uint64_t sequence) const { return const_cast<KvCache*>(this)->find(sequence); }

uint64_t KvCache::add_block(KvBlock block) {
    const uint64_t id = next_block_++;
    block.references = 1;
    bytes_used_ += block.bytes();
    blocks_.emplace(id, std::move(block));
    return id;
}

void KvCache::reference(uint64_t id) {
    KvBlock& block = blocks_.at(id);
    if (block.references++ == 0) {
        auto position = cached_position_.find(id);
        if (position != cached_position_.end()) {
            cached_lru_.erase(position->second);
            cached_position_.erase(position);
        }
    }
}

void KvCache::release(uint64_t id) {
    KvBlock& block = blocks_.at(id);
    if (--block.references > 0) return;
    if (block.named) {  // kept for prefix sharing until evicted
        cached_lru_.push_back(id);
        cached_position_[id] = std::prev(cached_lru_.end());
        return;
    }
    bytes_used_ -= block.bytes();
    blocks_.erase(id);
}

void KvCache::make_room(uint64_t bytes) {
    const auto fits = [&] { return bytes <= shape_.capacity_bytes && bytes_used_ <= shape_.capacity_bytes - bytes; };
    uint64_t reclaimable = 0;
    for (const uint64_t id : cached_lru_) reclaimable += blocks_.at(id).bytes();
    if (!(bytes <= shape_.capacity_bytes && bytes_used_ - reclaimable <= shape_.capacity_bytes - bytes))
        fail(GREY_ERROR_OUT_OF_MEMORY, "the KV cache is full: " + std::to_string(bytes) + " more bytes are needed, " +
                                           std::to_string(bytes_used_ - reclaimable) + " of " + std::to_string(shape_.capacity_bytes) +
                                           " are held by live sequences; free or truncate sequences, or create a larger cache");
    while (!fits()) {
        const uint64_t id = cached_lru_.front();
        cached_lru_.pop_front();
        cached_position_.erase(id);
        KvBlock& block = blocks_.at(id);
        prefix_index_.erase(block.hash);
        bytes_used_ -= block.bytes();
        blocks_.erase(id);
        ++evictions_;
    }
}

uint64_t KvCache::create_sequence(uint64_t salt) {
    std::lock_guard lock(mutex_);
    const uint64_t id = next_sequence_++;
    sequences_[id].salt = salt;
    return id;
}

uint64_t KvCache::fork(uint64_t sequence) {
    std::lock_guard lock(mutex_);
    KvSequence copy = find(sequence);
    const uint64_t id = next_sequence_;
    sequences_.emplace(id, copy);
    ++next_sequence_;
    for (const uint64_t block : copy.table) reference(block);
    return id;
}

void KvCache::truncate(uint64_t sequence, uint64_t tokens) {
    std::lock_guard lock(mutex_);
    KvSequence& seq = find(sequence);
    if (tokens > seq.length)
        fail(GREY_ERROR_INVALID_ARGUMENT, "cannot truncate sequence " + std::to_string(sequence) + " of " + std::to_string(seq.length) +
                                              " tokens to " + std::to_string(tokens) + ": truncation only shortens");
    const uint64_t per_block = shape_.tokens_per_block;
    const uint64_t keep = (tokens + per_block - 1) / per_block;
    while (seq.table.size() > keep) {
        release(seq.table.back());
        seq.table.pop_back();
    }
    seq.length = tokens;
}

void KvCache::free_sequence(uint64_t sequence) {
    std::lock_guard lock(mutex_);
    KvSequence& seq = find(sequence);
    for (auto it = seq.table.rbegin(); it != seq.table.rend(); ++it) release(*it);  // children first: parents stay longer in LRU
    sequences_.erase(sequence);
}

uint64_t KvCache::length(uint64_t sequence) const {
    std::lock_guard lock(mutex_);
    return find(sequence).length;
}

// The block the next token goes into, copied first when it is shared, named, quantized or holds tokens
// past the sequence's end (copy on write).
uint64_t KvCache::writable_last_block(KvSequence& seq) {
    const uint32_t per_block = shape_.tokens_per_block;
    const auto used = static_cast<uint32_t>(seq.length % per_block);
    if (used == 0) {
        seq.table.push_back(add_block(make_dense_block(shape_)));
        return seq.table.back();
    }
    const uint64_t id = seq.table.back();
    KvBlock& block = blocks_.at(id);
    if (block.references == 1 && !block.named && !block.quantized() && block.filled == used) return id;
    KvBlock copy = make_dense_block(shape_);
    for (uint32_t layer = 0; layer < shape_.layers; ++layer)
        for (uint32_t head = 0; head < shape_.kv_heads; ++head)
            for (uint32_t t = 0; t < used; ++t)
                for (uint32_t c = 0; c < shape_.head_dim; ++c)
                    for (int half = 0; half < 2; ++half)
                        store_value(shape_, copy, half, layer, head, t, c, load_value(shape_, block, half, layer, head, t, c));
    copy.tokens.assign(block.tokens.begin(), block.tokens.begin() + used);
    copy.filled = used;
    const uint64_t copy_id = add_block(std::move(copy));
    release(id);
    seq.table.back() = copy_id;
    return copy_id;
}

// Names a block that has just filled; shares an identical cached block instead when there is one.
void KvCache::finish_block(KvSequence& seq) {
    const uint64_t id = seq.table.back();
    KvBlock& block = blocks_.at(id);
    const uint64_t parent = seq.table.size() >= 2 ? blocks_.at(seq.table[seq.table.size() - 2]).hash : 0;
    block.parent_hash = parent;
    block.salt = seq.salt;
    block.hash = block_hash(parent, block.tokens, seq.salt);
    auto found = prefix_index_.find(block.hash);
    if (found == prefix_index_.end()) {
        prefix_index_.emplace(block.hash, id);
        block.named = true;
        return;
    }
    const KvBlock& cached = blocks_.at(found->second);
    if (cached.salt != block.salt || cached.parent_hash != parent || cached.tokens != block.tokens) return;  // a collision: stay private
    const uint64_t shared = found->second;
    reference(shared);
    release(id);
    seq.table.back() = shared;
    ++prefix_hits_;
}

void KvCache::quantize_old_blocks(KvSequence& seq) {
    if (shape_.window_tokens == UINT64_MAX || seq.length <= shape_.window_tokens) return;
    const uint64_t old_blocks = (seq.length - shape_.window_tokens) / shape_.tokens_per_block;
    for (uint64_t i = old_blocks; i-- > 0;) {
        KvBlock& block = blocks_.at(seq.table[i]);
        if (block.quantized()) continue;
        if (block.filled != shape_.tokens_per_block) continue;
        bytes_used_ -= block.bytes();
        quantize_block(shape_, block);
        bytes_used_ += block.bytes();
    }
}

void KvCache::append(uint64_t sequence, std::span<const int32_t> tokens, std::span<const float> keys, std::span<const float> values) {
    std::lock_guard lock(mutex_);
    KvSequence& seq = find(sequence);
    const uint64_t per_block = shape_.tokens_per_block;
    const uint64_t n = tokens.size();
    const uint64_t used = seq.length % per_block;
    uint64_t new_blocks = 0;
    uint64_t rest = n;
    if (used != 0) {
        const KvBlock& last = blocks_.at(seq.table.back());
        if (!(last.references == 1 && !last.named && !last.quantized() && last.filled == used)) ++new_blocks;
        rest -= std::min<uint64_t>(rest, per_block - used);
    }
    new_blocks += (rest + per_block - 1) / per_block;
    const uint64_t dense = shape_.dense_block_bytes();
    if (new_blocks > UINT64_MAX / dense) fail(GREY_ERROR_OUT_OF_MEMORY, "appending " + std::to_string(n) + " tokens needs more bytes than exist");
    make_room(new_blocks * dense);

    const uint64_t row = uint64_t{shape_.kv_heads} * shape_.head_dim;
    for (uint64_t i = 0; i < n; ++i) {
        const uint64_t id = writable_last_block(seq);
        KvBlock& block = blocks_.at(id);
        const auto t = static_cast<uint32_t>(seq.length % per_block);
        for (uint32_t layer = 0; layer < shape_.layers; ++layer)
            for (uint32_t head = 0; head < shape_.kv_heads; ++head)
                for (uint32_t c = 0; c < shape_.head_dim; ++c) {
                    const uint64_t at = (layer * n + i) * row + uint64_t{head} * shape_.head_dim + c;
                    store_value(shape_, block, 0, layer, head, t, c, keys[at]);
                    store_value(shape_, block, 1, layer, head, t, c, values[at]);
                }
        block.tokens.push_back(tokens[i]);
        block.filled = t + 1;
        ++seq.length;
        if (block.filled == per_block) finish_block(seq);
    }
    quantize_old_blocks(seq);
}

grey_kv_stats KvCache::stats() const {
    std::lock_guard lock(mutex_);
    grey_kv_stats s{};
    s.struct_size = sizeof s;
    s.sequences = static_cast<uint32_t>(sequences_.size());
    for (const auto& [id, seq] : sequences_) s.tokens += seq.length;
    uint64_t stored_tokens = 0;
    for (const auto& [id, block] : blocks_) {
        stored_tokens += block.filled;
        if (block.quantized()) ++s.blocks_compressed;
    }
    s.blocks_used = blocks_.size();
    s.blocks_cached = cached_lru_.size();
    s.bytes_used = bytes_used_;
    s.capacity_bytes = shape_.capacity_bytes;
    s.blocks_free = bytes_used_ < shape_.capacity_bytes ? (shape_.capacity_bytes - bytes_used_) / shape_.dense_block_bytes() : 0;
    s.prefix_hits = prefix_hits_;
    s.evictions = evictions_;
    if (stored_tokens > 0 && bytes_used_ > 0) {
        const double dense_per_token = static_cast<double>(shape_.dense_block_bytes()) / shape_.tokens_per_block;
        s.bytes_per_token = static_cast<double>(bytes_used_) / static_cast<double>(stored_tokens);
        s.compression_ratio = dense_per_token * static_cast<double>(stored_tokens) / static_cast<double>(bytes_used_);
    }
    return s;
}

}  // namespace grey::kv
