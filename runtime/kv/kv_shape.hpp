// The validated shape and policy of a KV cache (grey_kv_cache_config after defaults), and the sizes and
// element offsets of a block in window form and in quantized form. One place computes them so that the
// codec, the pool's accounting and attention agree.
#pragma once

#include "grey.h"

#include <cstdint>

namespace grey::kv {

struct KvShape {
    uint32_t layers = 0;
    uint32_t kv_heads = 0;
    uint32_t head_dim = 0;
    uint32_t tokens_per_block = 0;
    uint64_t window_tokens = 0;  // UINT64_MAX: keep everything in window form
    grey_dtype window_dtype = GREY_DTYPE_BF16;
    uint32_t format = 0;  // grey_kv_format
    uint32_t group_size = 0;  // V's groups along head_dim, already clipped to head_dim
    uint64_t capacity_bytes = 0;

    // Elements of K (or of V) in one block: layers x kv_heads x tokens x head_dim.
    [[nodiscard]] uint64_t block_elements() const {
        return uint64_t{layers} * kv_heads * tokens_per_block * head_dim;
    }
    [[nodiscard]] uint32_t v_groups() const { return (head_dim + group_size - 1) / group_size; }
    // Window form: K then V, 16-bit each.
    [[nodiscard]] uint64_t dense_block_bytes() const { return 2 * block_elements() * 2; }
    // Quantized form: K has one group per (layer, head, channel), V one per (layer, head, token, group).
    [[nodiscard]] uint64_t k_param_count() const { return uint64_t{layers} * kv_heads * head_dim; }
    [[nodiscard]] uint64_t v_param_count() const { return uint64_t{layers} * kv_heads * tokens_per_block * v_groups(); }
    [[nodiscard]] uint64_t compressed_block_bytes() const;

    // Index of (layer, head, token in block, channel) in a window-form half (K or V).
    [[nodiscard]] uint64_t dense_index(uint32_t layer, uint32_t head, uint32_t token, uint32_t channel) const {
        return ((uint64_t{layer} * kv_heads + head) * tokens_per_block + token) * head_dim + channel;
    }
    // K codes are channel-major (a channel's tokens are one group); V codes token-major.
    [[nodiscard]] uint64_t k_code_index(uint32_t layer, uint32_t head, uint32_t token, uint32_t channel) const {
        return ((uint64_t{layer} * kv_heads + head) * head_dim + channel) * tokens_per_block + token;
    }
    [[nodiscard]] uint64_t k_param_index(uint32_t layer, uint32_t head, uint32_t channel) const {
        return (uint64_t{layer} * kv_heads + head) * head_dim + channel;
    }
    [[nodiscard]] uint64_t v_param_index(uint32_t layer, uint32_t head, uint32_t token, uint32_t channel) const {
        return ((uint64_t{layer} * kv_heads + head) * tokens_per_block + token) * v_groups() + channel / group_size;
    }
};

// Applies defaults and checks every field; throws grey::Error naming the field.
KvShape validated_shape(const grey_kv_cache_config& config);

}  // namespace grey::kv
