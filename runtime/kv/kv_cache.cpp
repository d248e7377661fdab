#include "kv/kv_cache.hpp"

#include "common/dtype.hpp"
#include "core/error.hpp"
#include "kv/prefix_hash.hpp"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace grey::kv {

KvCache::KvCache(const KvShape& shape, const Backend& backend, uint32_t device)
    : shape_(shape), backend_(backend), device_(device), queued_(backend, device) {
    // A job of no sequences asks only whether the backend's kernels take this layout.
    grey_backend_kv_attend_job probe{};
    probe.struct_size = sizeof probe;
    probe.layout = &shape_;
    probe.query_heads = shape_.kv_heads;
    backend_.kv_attend(probe);
}

KvBlock KvCache::new_dense_block() {
    KvBlock block(block_memory(common::kv_dense_block_bytes(shape_)));
    block.tokens.reserve(shape_.tokens_per_block);
    return block;
}

uint64_t KvCache::unused_capacity() const { return shape_.capacity_bytes - std::min(shape_.capacity_bytes, bytes_used_); }

BlockMemory KvCache::block_memory(uint64_t bytes) {
    if (std::optional<BlockMemory> kept = spare_.take(bytes)) return std::move(*kept);
    const uint64_t room = unused_capacity();
    spare_.trim(room - std::min(room, bytes));
    return BlockMemory(backend_, device_, bytes);
}

void KvCache::drop_memory(BlockMemory memory) {
    queued_.settle();  // attention queued on a stream may still read it
    if (spare_.bytes() + memory.size() <= unused_capacity()) spare_.keep(std::move(memory));
}

std::vector<uint8_t> KvCache::read_block(const KvBlock& block) const {
    std::vector<uint8_t> bytes(block.bytes());
    backend_.buffer_read(block.memory.get(), 0, bytes.data(), bytes.size());
    return bytes;
}

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
    if (block.references++ == 0 && block.cached) {
        cached_lru_.erase(*block.cached);
        block.cached.reset();
        cached_bytes_ -= block.bytes();
    }
}

void KvCache::release(uint64_t id) {
    KvBlock& block = blocks_.at(id);
    if (--block.references > 0) return;
    if (block.named) {  // kept for prefix sharing until evicted
        block.cached = cached_lru_.insert(cached_lru_.end(), id);
        cached_bytes_ += block.bytes();
        return;
    }
    bytes_used_ -= block.bytes();
    drop_memory(std::move(block.memory));
    blocks_.erase(id);
}

void KvCache::make_room(uint64_t bytes) {
    const auto fits = [&] { return bytes <= shape_.capacity_bytes && bytes_used_ <= shape_.capacity_bytes - bytes; };
    if (!(bytes <= shape_.capacity_bytes && bytes_used_ - cached_bytes_ <= shape_.capacity_bytes - bytes))
        fail(GREY_ERROR_OUT_OF_MEMORY, "the KV cache is full: " + std::to_string(bytes) + " more bytes are needed, " +
                                           std::to_string(bytes_used_ - cached_bytes_) + " of " + std::to_string(shape_.capacity_bytes) +
                                           " are held by live sequences; free or truncate sequences, or create a larger cache");
    while (!fits()) {
        if (cached_lru_.empty()) throw std::logic_error("the KV cache's cached bytes disagree with its cached blocks");
        const uint64_t id = cached_lru_.front();
        cached_lru_.pop_front();
        KvBlock& block = blocks_.at(id);
        prefix_index_.erase(block.hash);
        bytes_used_ -= block.bytes();
        cached_bytes_ -= block.bytes();
        drop_memory(std::move(block.memory));
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
    KvSequence copy = idle(sequence, "fork");
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
    seq.reserved.reset();  // the reserved tokens lie past `tokens`: shortening releases their blocks
    shorten(seq, tokens);
}

void KvCache::shorten(KvSequence& seq, uint64_t tokens) {
    ++tables_version_;
    queued_.settle();  // the slots from `tokens` on will be written again, and queued attention may read them
    const uint64_t per_block = shape_.tokens_per_block;
    const uint64_t keep = (tokens + per_block - 1) / per_block;
    while (seq.table.size() > keep) {
        release(seq.table.back());
        seq.table.pop_back();
    }
    seq.quantized_blocks = std::min(seq.quantized_blocks, tokens / per_block);
    seq.length = tokens;
}

void KvCache::free_sequence(uint64_t sequence) {
    std::lock_guard lock(mutex_);
    KvSequence& seq = find(sequence);
    for (auto it = seq.table.rbegin(); it != seq.table.rend(); ++it) release(*it);  // children first: parents stay longer in LRU
    ++tables_version_;
    sequences_.erase(sequence);
}

uint64_t KvCache::length(uint64_t sequence) const {
    std::lock_guard lock(mutex_);
    return find(sequence).length;
}

// The block the token at `position` goes into, copied first when it is shared, named, quantized or holds
// tokens past `position` (copy on write: the copy is made on the host, which is rare enough).
uint64_t KvCache::writable_block(KvSequence& seq, uint64_t position) {
    const uint32_t per_block = shape_.tokens_per_block;
    const auto used = static_cast<uint32_t>(position % per_block);
    if (used == 0) {
        seq.table.push_back(add_block(new_dense_block()));
        return seq.table.back();
    }
    const uint64_t id = seq.table.back();
    KvBlock& block = blocks_.at(id);
    if (block.references == 1 && !block.named && !block.quantized && block.filled == used) return id;
    const std::vector<uint8_t> source = read_block(block);
    std::vector<uint16_t> dense(2 * common::kv_block_elements(shape_), 0);
    const uint64_t half = common::kv_block_elements(shape_);
    for (uint32_t layer = 0; layer < shape_.layers; ++layer)
        for (uint32_t head = 0; head < shape_.kv_heads; ++head)
            for (uint32_t t = 0; t < used; ++t)
                for (uint32_t c = 0; c < shape_.head_dim; ++c)
                    for (int h = 0; h < 2; ++h)
                        dense[h * half + common::kv_dense_index(shape_, layer, head, t, c)] = common::kv_to_window(
                            shape_, common::kv_value(shape_, source.data(), block.quantized, h, layer, head, t, c));
    KvBlock copy = new_dense_block();
    backend_.buffer_write(copy.memory.get(), 0, dense.data(), dense.size() * sizeof(uint16_t));
    copy.tokens.assign(block.tokens.begin(), block.tokens.begin() + used);
    copy.filled = used;
    const uint64_t copy_id = add_block(std::move(copy));
    release(id);
    seq.table.back() = copy_id;
    return copy_id;
}

// Names block `index` of the sequence, which has just filled; shares an identical cached block instead
// when there is one.
void KvCache::finish_block(KvSequence& seq, size_t index) {
    ++tables_version_;
    const uint64_t id = seq.table[index];
    KvBlock& block = blocks_.at(id);
    const uint64_t parent = index >= 1 ? blocks_.at(seq.table[index - 1]).hash : 0;
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
    seq.table[index] = shared;
    ++prefix_hits_;
}

void KvCache::quantize_old_blocks(KvSequence& seq) {
    if (shape_.window_tokens == UINT64_MAX || seq.length <= shape_.window_tokens) return;
    const uint64_t old_blocks = (seq.length - shape_.window_tokens) / shape_.tokens_per_block;
    if (seq.quantized_blocks >= old_blocks) return;
    // Newest first, as the job lists them. `settled`: where the quantized leading blocks will end.
    std::vector<KvBlock*> sources;
    uint64_t settled = old_blocks;
    for (uint64_t i = old_blocks; i-- > seq.quantized_blocks;) {
        KvBlock& block = blocks_.at(seq.table[i]);
        if (block.quantized) continue;
        if (block.filled == shape_.tokens_per_block) sources.push_back(&block);
        else settled = i;
    }
    if (sources.empty()) {
        seq.quantized_blocks = settled;
        return;
    }
    std::vector<BlockMemory> compressed;
    ++tables_version_;
    std::vector<grey_backend_buffer*> from, to;
    for (KvBlock* block : sources) {
        compressed.push_back(block_memory(common::kv_compressed_block_bytes(shape_)));
        from.push_back(block->memory.get());
        to.push_back(compressed.back().get());
    }
    grey_backend_kv_compress_job job{};
    job.struct_size = sizeof job;
    job.count = static_cast<uint32_t>(sources.size());
    job.layout = &shape_;
    job.sources = from.data();
    job.destinations = to.data();
    backend_.kv_compress(job);
    for (size_t i = 0; i < sources.size(); ++i) {
        bytes_used_ -= sources[i]->bytes();
        sources[i]->memory = std::move(compressed[i]);
        sources[i]->quantized = true;
        bytes_used_ += sources[i]->bytes();
    }
    for (BlockMemory& dense : compressed) drop_memory(std::move(dense));  // the window form, swapped in
    seq.quantized_blocks = settled;
}

KvSequence& KvCache::idle(uint64_t sequence, const char* doing) {
    KvSequence& seq = find(sequence);
    if (seq.reserved)
        fail(GREY_ERROR_INVALID_ARGUMENT, "cannot " + std::string(doing) + " sequence " + std::to_string(sequence) + ": it has " +
                                              std::to_string(seq.reserved->tokens()) + " reserved tokens whose layers are not all written " +
                                              "(write them with grey_kv_write_layer, or drop them with grey_kv_sequence_truncate)");
    return seq;
}

// Takes the reserved tokens' places: whole blocks found in the prefix cache first (a block is named by its
// parent, its tokens and the salt, so only blocks that begin at a block boundary can be), then room for
// the rest, then blocks of this sequence's own. The prefix hits come before the room, so that making room
// cannot evict the very blocks the sequence would share; when there is no room they are given back.
KvReservation& KvCache::reserve_locked(KvSequence& seq, std::span<const int32_t> tokens) {
    ++tables_version_;
    const uint64_t per_block = shape_.tokens_per_block;
    const uint64_t n = tokens.size();
    const uint64_t used = seq.length % per_block;
    KvReservation r;
    r.written.assign(shape_.layers, false);
    r.first_block = seq.table.size() - (used != 0 ? 1 : 0);
    if (used == 0) {
        while (n - r.cached >= per_block) {
            const auto block_tokens = tokens.subspan(r.cached, per_block);
            const uint64_t parent = seq.table.empty() ? 0 : blocks_.at(seq.table.back()).hash;
            auto found = prefix_index_.find(block_hash(parent, block_tokens, seq.salt));
            if (found == prefix_index_.end()) break;
            const KvBlock& cached = blocks_.at(found->second);
            if (cached.salt != seq.salt || cached.parent_hash != parent || !std::ranges::equal(cached.tokens, block_tokens)) break;
            reference(found->second);
            seq.table.push_back(found->second);
            ++prefix_hits_;
            r.cached += per_block;
        }
    }
    try {
        uint64_t new_blocks = 0;
        uint64_t rest = n - r.cached;
        if (used != 0) {
            const KvBlock& last = blocks_.at(seq.table.back());
            if (!(last.references == 1 && !last.named && !last.quantized && last.filled == used)) ++new_blocks;
            rest -= std::min<uint64_t>(rest, per_block - used);
        }
        new_blocks += (rest + per_block - 1) / per_block;
        const uint64_t dense = common::kv_dense_block_bytes(shape_);
        if (new_blocks > UINT64_MAX / dense) fail(GREY_ERROR_OUT_OF_MEMORY, "reserving " + std::to_string(n) + " tokens needs more bytes than exist");
        make_room(new_blocks * dense);
    } catch (...) {
        for (uint64_t hit = 0; hit < r.cached / per_block; ++hit) {  // cached again, now the most recently used
            release(seq.table.back());
            seq.table.pop_back();
            --prefix_hits_;
        }
        throw;
    }
    // A block at a time: the tokens after the first of a block go into the block writable_block gave it.
    r.targets.reserve(n - r.cached);
    r.slots.reserve(n - r.cached);
    for (uint64_t i = r.cached; i < n;) {
        KvBlock& block = blocks_.at(writable_block(seq, seq.length + i));
        const auto first_slot = static_cast<uint32_t>((seq.length + i) % per_block);
        const auto count = static_cast<uint32_t>(std::min<uint64_t>(per_block - first_slot, n - i));
        for (uint32_t k = 0; k < count; ++k) {
            r.targets.push_back(block.memory.get());
            r.slots.push_back(first_slot + k);
        }
        block.tokens.insert(block.tokens.end(), tokens.begin() + static_cast<std::ptrdiff_t>(i), tokens.begin() + static_cast<std::ptrdiff_t>(i + count));
        block.filled = first_slot + count;
        i += count;
    }
    seq.reserved = std::move(r);
    return *seq.reserved;
}

void KvCache::store_reserved(const KvReservation& r, uint32_t first, uint32_t count, std::span<const float> keys, std::span<const float> values) {
    if (r.targets.empty()) return;
    const uint64_t row = uint64_t{shape_.kv_heads} * shape_.head_dim;
    const uint64_t tokens = r.tokens(), own = r.targets.size();
    // Only the tokens that are not cached cross to the device: [layer][own token][head][dim].
    std::vector<float> packed;
    if (r.cached != 0) {
        packed.resize(2 * count * own * row);
        for (uint32_t k = 0; k < count; ++k) {
            std::copy_n(keys.begin() + (k * tokens + r.cached) * row, own * row, packed.begin() + k * own * row);
            std::copy_n(values.begin() + (k * tokens + r.cached) * row, own * row, packed.begin() + (count + k) * own * row);
        }
        keys = std::span<const float>(packed).first(count * own * row);
        values = std::span<const float>(packed).subspan(count * own * row);
    }
    BlockMemory staged(backend_, device_, keys.size_bytes() + values.size_bytes());
    backend_.buffer_write(staged.get(), 0, keys.data(), keys.size_bytes());
    backend_.buffer_write(staged.get(), keys.size_bytes(), values.data(), values.size_bytes());
    const KvInput input{{staged.get(), nullptr, 0, keys.size_bytes()}, {staged.get(), nullptr, keys.size_bytes(), values.size_bytes()}, GREY_DTYPE_F32};
    store_jobs(r, first, count, input, 0, false);
}

void KvCache::store_reserved(const KvReservation& r, uint32_t first, uint32_t count, const KvInput& input) {
    if (r.targets.empty()) return;
    store_jobs(r, first, count, input, r.cached, true);
}

void KvCache::store_jobs(const KvReservation& r, uint32_t first, uint32_t count, const KvInput& input, uint64_t skip, bool check) {
    const uint64_t row = uint64_t{shape_.kv_heads} * shape_.head_dim;
    const uint64_t own = r.targets.size(), layer_tokens = skip + own;
    const uint64_t width = common::float_input_size(input.dtype);
    // The layers in one job when they lie back to back; a job a layer when each begins with skipped tokens.
    const uint32_t jobs = skip == 0 ? 1 : count, layers_a_job = skip == 0 ? count : 1;
    const uint64_t job_values = layers_a_job * own * row;
    for (uint32_t j = 0; j < jobs; ++j) {
        const uint64_t start = (j * layer_tokens + skip) * row * width;
        grey_backend_kv_store_job job{};
        job.struct_size = sizeof job;
        job.tokens = static_cast<uint32_t>(own);
        job.layout = &shape_;
        job.layer_first = first + j;
        job.layer_count = layers_a_job;
        job.keys = {input.keys.buffer, nullptr, input.keys.offset + start, job_values * width};
        job.values = {input.values.buffer, nullptr, input.values.offset + start, job_values * width};
        job.blocks = r.targets.data();
        job.slots = r.slots.data();
        job.dtype = input.dtype;
        uint64_t found = UINT64_MAX;
        if (check) job.first_non_finite = &found;
        backend_.kv_store(job);
        if (found == UINT64_MAX) continue;
        const bool key = found < job_values;
        const uint64_t at = key ? found : found - job_values;
        const uint64_t index = ((j + at / (own * row)) * layer_tokens + skip) * row + at % (own * row);
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(key ? "keys" : "values") + "[" + std::to_string(index) + "] is not finite (NaN or infinity)");
    }
}

void KvCache::commit(KvSequence& seq) {
    const KvReservation& r = *seq.reserved;
    seq.length += r.tokens();
    const size_t first_block = r.first_block;
    seq.reserved.reset();
    for (size_t index = first_block; index < seq.table.size(); ++index) {
        const KvBlock& block = blocks_.at(seq.table[index]);
        if (block.filled == shape_.tokens_per_block && !block.named) finish_block(seq, index);
    }
    quantize_old_blocks(seq);
}

void KvCache::cancel(KvSequence& seq) {
    seq.reserved.reset();
    shorten(seq, seq.length);
}

template <typename Store>
void KvCache::append_locked(uint64_t sequence, std::span<const int32_t> tokens, Store&& store) {
    KvSequence& seq = idle(sequence, "append to");
    const KvReservation& r = reserve_locked(seq, tokens);
    try {
        store(r);
    } catch (...) {
        cancel(seq);
        throw;
    }
    commit(seq);
}

void KvCache::append(uint64_t sequence, std::span<const int32_t> tokens, std::span<const float> keys, std::span<const float> values) {
    std::lock_guard lock(mutex_);
    append_locked(sequence, tokens, [&](const KvReservation& r) { store_reserved(r, 0, shape_.layers, keys, values); });
}

void KvCache::require_checked_store() const {
    if (!backend_.has(GREY_BACKEND_CAP_KV_STORE_CHECKED))
        fail(GREY_ERROR_UNSUPPORTED, "the " + backend_.name() +
                                         " backend's kv_store does not check K/V for NaN and infinity itself (GREY_BACKEND_CAP_KV_STORE_CHECKED): "
                                         "give them as host arrays (grey_kv_append, grey_kv_write_layer)");
}

void KvCache::append(uint64_t sequence, std::span<const int32_t> tokens, const KvInput& input) {
    require_checked_store();
    std::lock_guard lock(mutex_);
    append_locked(sequence, tokens, [&](const KvReservation& r) { store_reserved(r, 0, shape_.layers, input); });
}

uint64_t KvCache::reserve(uint64_t sequence, std::span<const int32_t> tokens) {
    std::lock_guard lock(mutex_);
    KvSequence& seq = idle(sequence, "reserve tokens in");
    return reserve_locked(seq, tokens).cached;
}

KvSequence& KvCache::sequence_to_write(uint64_t sequence, uint32_t layer, uint64_t values) {
    KvSequence& seq = find(sequence);
    if (!seq.reserved)
        fail(GREY_ERROR_INVALID_ARGUMENT, "sequence " + std::to_string(sequence) + " has no reserved tokens: call grey_kv_reserve first");
    const KvReservation& r = *seq.reserved;
    if (layer >= shape_.layers)
        fail(GREY_ERROR_INVALID_ARGUMENT, "layer is " + std::to_string(layer) + "; the cache has " + std::to_string(shape_.layers) + " layers");
    if (r.written[layer]) fail(GREY_ERROR_INVALID_ARGUMENT, "layer " + std::to_string(layer) + " of the reserved tokens is already written");
    const uint64_t needed = r.tokens() * shape_.kv_heads * shape_.head_dim;
    if (values != needed)
        fail(GREY_ERROR_INVALID_ARGUMENT, "the keys and values hold " + std::to_string(values) + " values; the " + std::to_string(r.tokens()) +
                                              " reserved tokens of one layer take " + std::to_string(needed));
    return seq;
}

void KvCache::layer_written(KvSequence& seq, uint32_t layer) {
    KvReservation& r = *seq.reserved;
    r.written[layer] = true;
    if (++r.layers_written == shape_.layers) commit(seq);
}

void KvCache::write_layer(uint64_t sequence, uint32_t layer, std::span<const float> keys, std::span<const float> values) {
    std::lock_guard lock(mutex_);
    KvSequence& seq = sequence_to_write(sequence, layer, keys.size());
    store_reserved(*seq.reserved, layer, 1, keys, values);
    layer_written(seq, layer);
}

void KvCache::write_layer(uint64_t sequence, uint32_t layer, const KvInput& input) {
    require_checked_store();
    std::lock_guard lock(mutex_);
    KvSequence& seq = sequence_to_write(sequence, layer, input.keys.size / common::float_input_size(input.dtype));
    store_reserved(*seq.reserved, layer, 1, input);
    layer_written(seq, layer);
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
        if (block.quantized) ++s.blocks_compressed;
    }
    s.blocks_used = blocks_.size();
    s.blocks_cached = cached_lru_.size();
    s.bytes_used = bytes_used_;
    s.capacity_bytes = shape_.capacity_bytes;
    s.blocks_free = bytes_used_ < shape_.capacity_bytes ? (shape_.capacity_bytes - bytes_used_) / common::kv_dense_block_bytes(shape_) : 0;
    s.prefix_hits = prefix_hits_;
    s.evictions = evictions_;
    if (stored_tokens > 0 && bytes_used_ > 0) {
        const double dense_per_token = static_cast<double>(common::kv_dense_block_bytes(shape_)) / shape_.tokens_per_block;
        s.bytes_per_token = static_cast<double>(bytes_used_) / static_cast<double>(stored_tokens);
        s.compression_ratio = dense_per_token * static_cast<double>(stored_tokens) / static_cast<double>(bytes_used_);
    }
    return s;
}

}  // namespace grey::kv
