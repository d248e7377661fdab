// One block of the KV cache: the K and V of tokens_per_block tokens of every layer and head, in window
// form (bf16/fp16) or quantized (common/kv_coding.hpp), with what prefix sharing needs to name it.
#pragma once

#include "common/kv_coding.hpp"
#include "kv/kv_shape.hpp"

#include <cstdint>
#include <vector>

namespace grey::kv {

struct KvBlock {
    // Window form: K then V halves of shape.block_elements() 16-bit values each; empty when quantized.
    std::vector<uint16_t> dense;
    // Quantized form: the K groups' params then V's, and K's packed codes then V's.
    std::vector<common::KvGroupParams> params;
    std::vector<uint8_t> codes;
    uint32_t filled = 0;  // tokens written
    uint32_t references = 0;  // sequences whose block table holds it
    bool named = false;  // full and entered in the prefix index under `hash`
    uint64_t hash = 0;
    uint64_t parent_hash = 0;
    uint64_t salt = 0;
    std::vector<int32_t> tokens;  // the ids of the filled tokens (the hash is checked against them)

    [[nodiscard]] bool quantized() const { return dense.empty(); }
    [[nodiscard]] uint64_t bytes() const { return dense.size() * 2 + params.size() * sizeof(common::KvGroupParams) + codes.size(); }
};

// A new, empty block in window form.
KvBlock make_dense_block(const KvShape& shape);

// Stores one value (already a finite float) of K (`value_half` 0) or V (1) in a window-form block.
void store_value(const KvShape& shape, KvBlock& block, int value_half, uint32_t layer, uint32_t head, uint32_t token,
                 uint32_t channel, float value);

// The value as stored, in either form.
float load_value(const KvShape& shape, const KvBlock& block, int value_half, uint32_t layer, uint32_t head, uint32_t token,
                 uint32_t channel);

// Quantizes a full window-form block in place (the host reference of the backend's "compress a block").
void quantize_block(const KvShape& shape, KvBlock& block);

}  // namespace grey::kv
