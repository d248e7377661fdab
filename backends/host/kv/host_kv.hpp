// The host backend's KV-cache block operations (the kv_store, kv_compress and kv_attend slots) on block
// memory the slots have already resolved to host pointers: the reference every GPU backend's KV kernels
// are checked against, written for clarity, attention accumulated in float64.
#pragma once

#include "common/kv_layout.hpp"
#include "grey.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace grey::host {

// A kv_store job's K or V (F32, F16 or BF16 `bytes`) as F32: the bytes themselves when they are F32,
// else converted as the runtime converts host K/V into `storage`. Another dtype throws
// std::invalid_argument.
std::span<const float> kv_input_floats(std::span<const std::byte> bytes, grey_dtype dtype, std::vector<float>& storage);
// The index of the first NaN or infinity of keys, then of values (numbered on from keys.size()), or
// UINT64_MAX: grey_backend_kv_store_job.first_non_finite.
uint64_t kv_first_non_finite(std::span<const float> keys, std::span<const float> values);

// Token i of `keys`/`values` (F32 [layer_count][tokens][kv_heads][head_dim]) into slot slots[i] of the
// window-form block blocks[i], layers layer_first.. .
void kv_store(const common::KvLayout& layout, uint32_t layer_first, uint32_t layer_count, const float* keys, const float* values,
              std::span<uint8_t* const> blocks, std::span<const uint32_t> slots);

// The quantized form of the window-form block `dense` into `out` (kv_compressed_block_bytes).
void kv_compress(const common::KvLayout& layout, const uint8_t* dense, uint8_t* out);

struct KvAttendBlocks {
    std::span<const uint8_t* const> blocks;  // every sequence's blocks, in token order
    std::span<const uint8_t> quantized;
    std::span<const uint64_t> table_offsets;  // batch + 1
    std::span<const uint64_t> first, last;    // per sequence, the tokens attended
};

// Decode attention (grey_backend_kv_attend_job) with `queries` and `output` F32 [batch][query_heads][head_dim].
void kv_attend(const common::KvLayout& layout, const KvAttendBlocks& blocks, uint32_t layer, uint32_t query_heads, float scale,
               const float* queries, float* output);

}  // namespace grey::host
