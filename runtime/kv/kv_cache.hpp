// The KV cache behind grey_kv_cache: the blocks (buffers of the cache's backend) with their byte
// accounting against capacity, the prefix index and LRU of cached blocks, and the sequences' block
// tables. What happens to a block's bytes (writing tokens, quantizing, attention) is the backend's
// kv_* ops; the cache decides which blocks, and names and shares them. Every public method takes the
// cache's lock; a method that throws leaves the cache as it was (checks come before changes).
#pragma once

#include "kv/kv_block.hpp"
#include "kv/kv_shape.hpp"
#include "kv/queued_reads.hpp"

#include "core/backend.hpp"

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace grey::kv {

// Tokens reserved at the end of a sequence whose layers are being written one by one: where each goes
// (nothing for the leading tokens found whole in the prefix cache) and which layers are written.
struct KvReservation {
    uint64_t cached = 0;  // leading tokens that share cached blocks: their writes are skipped
    std::vector<grey_backend_buffer*> targets;  // the others' blocks ...
    std::vector<uint32_t> slots;                // ... and slots in them
    std::vector<bool> written;                  // per layer
    uint32_t layers_written = 0;
    size_t first_block = 0;  // the table index of the first block the reservation touches
    [[nodiscard]] uint64_t tokens() const { return cached + targets.size(); }
};

// K and V in memory of the cache's backend and device, [layer][token][kv_head][head_dim] values of
// `dtype` (F32, F16 or BF16) for every token of the call, those found in the prefix cache included; not
// yet checked for NaN and infinity (the backend's store checks them).
struct KvInput {
    grey_backend_memory keys{};
    grey_backend_memory values{};
    grey_dtype dtype = GREY_DTYPE_F32;
};

struct KvSequence {
    uint64_t salt = 0;
    uint64_t length = 0;  // tokens with every layer written
    std::vector<uint64_t> table;  // block ids, in token order (reserved tokens' blocks included)
    // The table's first blocks, all quantized: where quantize_old_blocks looks from, so that an append to
    // a long sequence does not visit every block before its window again. Only the last block can be
    // replaced by a window-form copy (writable_block), and a shortened sequence's last blocks go, so
    // shorten keeps it at most the full blocks left.
    uint64_t quantized_blocks = 0;
    std::optional<KvReservation> reserved;
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
    // The same from device memory (sizes checked by the caller); a NaN or infinity there appends nothing.
    void append(uint64_t sequence, std::span<const int32_t> tokens, const KvInput& input);
    // Reserves tokens for per-layer writes; returns how many leading ones were found in the prefix cache.
    uint64_t reserve(uint64_t sequence, std::span<const int32_t> tokens);
    // One layer of the reserved tokens, [token][kv_head][head_dim]; the last layer commits them.
    void write_layer(uint64_t sequence, uint32_t layer, std::span<const float> keys, std::span<const float> values);
    // The same from device memory; a NaN or infinity there leaves the layer unwritten.
    void write_layer(uint64_t sequence, uint32_t layer, const KvInput& input);
    // Queries and output in host memory (copied through a buffer of the cache's device), or in memory of
    // the cache's backend and device (F32, [batch][query_heads][head_dim], sizes checked by the caller).
    void attend(const grey_kv_attend_params& params, std::span<const uint64_t> sequences, std::span<const float> queries,
                std::span<float> output) const;
    void attend(const grey_kv_attend_params& params, std::span<const uint64_t> sequences, const grey_backend_memory& queries,
                const grey_backend_memory& output) const;
    // Throws what attend would for these sequences (unknown, empty), and does nothing.
    void check_attend(const grey_kv_attend_params& params, std::span<const uint64_t> sequences) const;
    // attend from device memory, queued on `stream` of the cache's device (the backend's kv_attend_async, which the caller
    // has checked it has): the blocks read stay as they are until the stream has passed the work.
    void attend_async(const grey_kv_attend_params& params, std::span<const uint64_t> sequences, const grey_backend_memory& queries,
                      const grey_backend_memory& output, grey_backend_stream* stream);
    void gather(uint64_t sequence, uint32_t layer, std::span<float> keys, std::span<float> values) const;
    grey_kv_stats stats() const;
    const KvShape& shape() const { return shape_; }

private:
    // The block tables of the latest attention job's sequences, kept while no sequence's blocks and no
    // block's memory change (tables_version_): a decode step attends to the same sequences once a layer,
    // and their tables run to thousands of blocks (32k tokens in 16-token blocks for each of 8 sequences).
    struct AttendTables {
        uint64_t version = UINT64_MAX;
        std::vector<uint64_t> sequences;
        std::vector<uint64_t> offsets;
        std::vector<grey_backend_buffer*> blocks;
        std::vector<uint8_t> quantized;
        std::vector<uint64_t> addresses;  // empty where a block's memory has no address
    };
    // An attention job, pointing into its first and last tokens and the kept tables (the cache's lock held
    // while it is made and used).
    struct AttendJob {
        std::vector<uint64_t> first, last;
        grey_backend_kv_attend_job job{};
    };
    void make_attend_job(const grey_kv_attend_params& params, std::span<const uint64_t> sequences, const grey_backend_memory& queries,
                         const grey_backend_memory& output, AttendJob& out) const;
    KvSequence& find(uint64_t sequence);
    const KvSequence& find(uint64_t sequence) const;
    KvBlock new_dense_block();
    // The capacity the blocks leave (0 while they pass it, as a compression's copies briefly may).
    [[nodiscard]] uint64_t unused_capacity() const;
    // Memory for a block of `bytes`: kept memory of that size, else a new buffer, for which kept memory
    // of other sizes is freed as far as the capacity needs.
    BlockMemory block_memory(uint64_t bytes);
    // The memory of a block the cache drops (its bytes already out of bytes_used_), kept where the blocks
    // and the kept memory stay within the capacity, else freed; once the attention queued on streams is done.
    void drop_memory(BlockMemory memory);
    // A block's bytes, read back to the host.
    std::vector<uint8_t> read_block(const KvBlock& block) const;
    uint64_t add_block(KvBlock block);
    void release(uint64_t id);
    void reference(uint64_t id);
    void make_room(uint64_t bytes);
    // The block that the token at `position` (the sequence's blocks hold position - 1 last) goes into.
    uint64_t writable_block(KvSequence& sequence, uint64_t position);
    KvReservation& reserve_locked(KvSequence& sequence, std::span<const int32_t> tokens);
    // Reserves, stores with `store(reservation)` and commits; a store that throws drops the reservation.
    template <typename Store>
    void append_locked(uint64_t sequence, std::span<const int32_t> tokens, Store&& store);
    // The sequence whose open reservation layer `layer` (`values` values of K, and of V) is written to, checked.
    KvSequence& sequence_to_write(uint64_t sequence, uint32_t layer, uint64_t values);
    void layer_written(KvSequence& sequence, uint32_t layer);
    // Writes layers first.. of the reserved tokens that are not cached (`keys`/`values` or `input`
    // [layer][reserved token][kv_head][head_dim], the cached tokens included).
    void store_reserved(const KvReservation& reservation, uint32_t first, uint32_t count, std::span<const float> keys,
                        std::span<const float> values);
    void store_reserved(const KvReservation& reservation, uint32_t first, uint32_t count, const KvInput& input);
    // The backend's kv_store of those layers from `input` [count][skip + the reservation's own tokens]
    // [kv_head][head_dim] (the leading `skip` tokens of each layer not written). With `check` the backend
    // checks the values, and a NaN or infinity fails naming its index in `input`.
    void store_jobs(const KvReservation& reservation, uint32_t first, uint32_t count, const KvInput& input, uint64_t skip, bool check);
    // K/V in device memory go to a backend whose kv_store checks them itself; others are refused
    // (GREY_ERROR_UNSUPPORTED) before anything changes.
    void require_checked_store() const;
    void commit(KvSequence& sequence);
    // Drops a reservation and the blocks only it used.
    void cancel(KvSequence& sequence);
    [[nodiscard]] KvSequence& idle(uint64_t sequence, const char* doing);
    void finish_block(KvSequence& sequence, size_t index);
    // Drops the tokens from `tokens` on (no more than its length), once the attention queued on streams is done.
    void shorten(KvSequence& sequence, uint64_t tokens);
    void quantize_old_blocks(KvSequence& sequence);

    KvShape shape_;
    const Backend& backend_;
    uint32_t device_;
    mutable std::mutex mutex_;
    std::unordered_map<uint64_t, KvBlock> blocks_;
    std::unordered_map<uint64_t, KvSequence> sequences_;
    std::unordered_map<uint64_t, uint64_t> prefix_index_;  // hash -> block id
    std::list<uint64_t> cached_lru_;  // blocks no sequence holds, least recently used first (KvBlock::cached)
    uint64_t cached_bytes_ = 0;  // of the blocks in cached_lru_: what evicting them all would give back
    uint64_t next_block_ = 1;
    uint64_t next_sequence_ = 1;
    uint64_t bytes_used_ = 0;
    uint64_t prefix_hits_ = 0;
    uint64_t evictions_ = 0;
    SpareBlocks spare_;  // after blocks_: freed first, with nothing referring to it
    uint64_t tables_version_ = 0;           // changes with any sequence's blocks or any block's memory
    mutable AttendTables attend_tables_;    // guarded by mutex_
    // Attention queued on streams (attend_async), settled before block memory is freed, reused or
    // rewritten. Last: destroying the cache waits for it before any block memory goes.
    QueuedReads queued_;
};

}  // namespace grey::kv
