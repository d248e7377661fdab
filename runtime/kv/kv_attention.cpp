// Decode attention (the backend's kv_attend over the sequences' block tables) and gather (the blocks
// read back and decoded on the host by common/kv_layout.hpp's rule).
#include "core/error.hpp"
#include "kv/kv_cache.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace grey::kv {

void KvCache::attend(const grey_kv_attend_params& params, std::span<const uint64_t> sequences, std::span<const float> queries,
                     std::span<float> output) const {
    BlockMemory io(backend_, device_, queries.size_bytes() + output.size_bytes());
    backend_.buffer_write(io.get(), 0, queries.data(), queries.size_bytes());
    attend(params, sequences, grey_backend_memory{io.get(), nullptr, 0, queries.size_bytes()},
           grey_backend_memory{io.get(), nullptr, queries.size_bytes(), output.size_bytes()});
    backend_.buffer_read(io.get(), queries.size_bytes(), output.data(), output.size_bytes());
}

void KvCache::make_attend_job(const grey_kv_attend_params& params, std::span<const uint64_t> sequences, const grey_backend_memory& queries,
                              const grey_backend_memory& output, AttendJob& out) const {
    const auto batch = static_cast<uint32_t>(sequences.size());
    AttendTables& tables = attend_tables_;
    const bool kept = tables.version == tables_version_ && std::ranges::equal(tables.sequences, sequences);
    if (!kept) {
        tables.version = UINT64_MAX;  // until the tables below are whole
        tables.sequences.assign(sequences.begin(), sequences.end());
        tables.offsets.assign(1, 0);
        tables.blocks.clear();
        tables.quantized.clear();
        tables.addresses.clear();
    }
    out.first.resize(batch);
    out.last.resize(batch);
    bool addressed = true;
    for (uint32_t b = 0; b < batch; ++b) {
        const KvSequence& seq = find(sequences[b]);
        // Reserved tokens count once this layer of theirs is written.
        out.last[b] = seq.length + (seq.reserved && seq.reserved->written[params.layer] ? seq.reserved->tokens() : 0);
        if (out.last[b] == 0)
            fail(GREY_ERROR_INVALID_ARGUMENT, "sequence " + std::to_string(sequences[b]) + " is empty: there is nothing to attend to");
        out.first[b] = params.sliding_window != 0 && out.last[b] > params.sliding_window ? out.last[b] - params.sliding_window : 0;
        if (kept) continue;
        for (const uint64_t id : seq.table) {
            const KvBlock& block = blocks_.at(id);
            tables.blocks.push_back(block.memory.get());
            tables.quantized.push_back(block.quantized ? 1 : 0);
            addressed = addressed && block.memory.address() != 0;
            if (addressed) tables.addresses.push_back(block.memory.address() | (block.quantized ? 1u : 0u));
        }
        tables.offsets.push_back(tables.blocks.size());
    }
    if (!kept) {
        if (!addressed) tables.addresses.clear();
        tables.version = tables_version_;
    }
    grey_backend_kv_attend_job& job = out.job;
    job.struct_size = sizeof job;
    job.batch = batch;
    job.layout = &shape_;
    job.layer = params.layer;
    job.query_heads = params.query_heads;
    job.scale = params.scale != 0.0f ? params.scale : 1.0f / std::sqrt(static_cast<float>(shape_.head_dim));
    job.first = out.first.data();
    job.last = out.last.data();
    job.table_offsets = tables.offsets.data();
    job.blocks = tables.blocks.data();
    job.quantized = tables.quantized.data();
    job.addresses = tables.addresses.empty() ? nullptr : tables.addresses.data();
    job.queries = queries;
    job.output = output;
}

void KvCache::attend(const grey_kv_attend_params& params, std::span<const uint64_t> sequences, const grey_backend_memory& queries,
                     const grey_backend_memory& output) const {
    std::lock_guard lock(mutex_);
    AttendJob job;
    make_attend_job(params, sequences, queries, output, job);
    backend_.kv_attend(job.job);
}

void KvCache::check_attend(const grey_kv_attend_params& params, std::span<const uint64_t> sequences) const {
    std::lock_guard lock(mutex_);
    AttendJob job;
    make_attend_job(params, sequences, {}, {}, job);
}

void KvCache::attend_async(const grey_kv_attend_params& params, std::span<const uint64_t> sequences, const grey_backend_memory& queries,
                           const grey_backend_memory& output, grey_backend_stream* stream) {
    std::lock_guard lock(mutex_);
    AttendJob job;
    make_attend_job(params, sequences, queries, output, job);
    queued_.enqueue(stream, GREY_BACKEND_KV_ATTEND_STAGING_BYTES(job.job.batch, attend_tables_.blocks.size()),
                    [&](void* staging) { backend_.kv_attend_async(stream, job.job, staging); });
}

void KvCache::gather(uint64_t sequence, uint32_t layer, std::span<float> keys, std::span<float> values) const {
    std::lock_guard lock(mutex_);
    const KvSequence& seq = find(sequence);
    const uint64_t row = uint64_t{shape_.kv_heads} * shape_.head_dim;
    if (keys.size() != seq.length * row)
        fail(GREY_ERROR_INVALID_ARGUMENT, "kv_bytes is " + std::to_string(keys.size() * 4) + "; sequence " + std::to_string(sequence) +
                                              " of " + std::to_string(seq.length) + " tokens takes " + std::to_string(seq.length * row * 4));
    const uint64_t per_block = shape_.tokens_per_block;
    std::vector<double> key(shape_.head_dim);
    for (size_t index = 0; index < seq.table.size(); ++index) {
        const KvBlock& block = blocks_.at(seq.table[index]);
        const std::vector<uint8_t> bytes = read_block(block);
        const uint64_t end = std::min<uint64_t>(seq.length, (index + 1) * per_block);
        for (uint64_t p = index * per_block; p < end; ++p) {
            const auto t = static_cast<uint32_t>(p - index * per_block);
            for (uint32_t head = 0; head < shape_.kv_heads; ++head) {
                const uint64_t at = p * row + uint64_t{head} * shape_.head_dim;
                for (uint32_t c = 0; c < shape_.head_dim; ++c) {
                    key[c] = common::kv_value(shape_, bytes.data(), block.quantized, 0, layer, head, t, c);
                    values[at + c] = common::kv_value(shape_, bytes.data(), block.quantized, 1, layer, head, t, c);
                }
                // A rotated K is given back as it was appended: the rotation is its own inverse.
                if (shape_.hadamard_k != 0) common::kv_hadamard_rotate(key.data(), shape_.head_dim);
                for (uint32_t c = 0; c < shape_.head_dim; ++c) keys[at + c] = static_cast<float>(key[c]);
            }
        }
    }
}

}  // namespace grey::kv
