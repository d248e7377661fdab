/* The bytes of one KV-cache block, written once for the runtime, the host backend and the device kernels:
 * where each value of K and V lies in a block in window form (bf16/fp16) and in quantized form, how a
 * value is read back from either, and the quantization of a window-form block as per-group parameters
 * and packed code bytes, each computable on its own so that a kernel can compute them in parallel and
 * still write the host's bytes. docs/kv.md draws the layout. Includes nothing from runtime/ or backends/.
 *
 * A block holds tokens_per_block tokens of every layer and KV head.
 *  - Window form, K then V, each [layer][head][token][channel] of 16-bit values.
 *  - Quantized form: the parameters of K's groups ([layer][head][channel]: one group per channel over
 *    the block's tokens, KIVI's per-channel keys) and of V's ([layer][head][token][group]: groups of
 *    group_size channels within a token), then K's packed codes, then V's, both in the window form's
 *    order ([layer][head][token][channel]): a token's row of codes is contiguous, which is what decode
 *    attention reads.
 * With hadamard_k, every K row is stored rotated by the normalized Walsh-Hadamard matrix (window form
 * and quantized form alike): readers rotate the query (attention) or the row (gather) to match. */
#ifndef GREY_COMMON_KV_LAYOUT_HPP
#define GREY_COMMON_KV_LAYOUT_HPP

#include "common/kv_coding.hpp"
#include "common/kv_hadamard.hpp"

#include <stdint.h>

/* Plain data, so that it can cross the plugin boundary inside the backend's KV jobs. */
struct grey_kv_layout {
    uint32_t layers;
    uint32_t kv_heads;
    uint32_t head_dim;
    uint32_t tokens_per_block;
    uint32_t format;      /* grey_kv_format (grey::common::KvCodeKind) */
    uint32_t group_size;  /* V's groups along head_dim, already clipped to head_dim */
    uint32_t window_bf16; /* 1: the window form is bf16; 0: fp16 */
    uint32_t hadamard_k;  /* 1: K rows are stored rotated (common/kv_hadamard.hpp), in both forms */
};

namespace grey::common {

using KvLayout = grey_kv_layout;

/* Elements of K (or of V) in one block. */
GREY_FN_FORCE uint64_t kv_block_elements(const KvLayout& l) {
    return static_cast<uint64_t>(l.layers) * l.kv_heads * l.tokens_per_block * l.head_dim;
}
GREY_FN_FORCE uint32_t kv_v_groups(const KvLayout& l) { return (l.head_dim + l.group_size - 1) / l.group_size; }
GREY_FN_FORCE uint64_t kv_dense_block_bytes(const KvLayout& l) { return 4 * kv_block_elements(l); }
GREY_FN_FORCE uint64_t kv_k_param_count(const KvLayout& l) { return static_cast<uint64_t>(l.layers) * l.kv_heads * l.head_dim; }
GREY_FN_FORCE uint64_t kv_v_param_count(const KvLayout& l) {
    return static_cast<uint64_t>(l.layers) * l.kv_heads * l.tokens_per_block * kv_v_groups(l);
}
GREY_FN_FORCE uint64_t kv_params_bytes(const KvLayout& l) {
    return (kv_k_param_count(l) + kv_v_param_count(l)) * sizeof(KvGroupParams);
}
GREY_FN_FORCE uint64_t kv_half_code_bytes(const KvLayout& l) { return kv_code_bytes(kv_block_elements(l), l.format); }
/* The code areas start on 16 bytes, so that kernels can load rows of codes 16 bytes at a time. */
GREY_FN_FORCE uint64_t kv_round16(uint64_t bytes) { return (bytes + 15) / 16 * 16; }
GREY_FN_FORCE uint64_t kv_k_codes_offset(const KvLayout& l) { return kv_round16(kv_params_bytes(l)); }
GREY_FN_FORCE uint64_t kv_v_codes_offset(const KvLayout& l) { return kv_k_codes_offset(l) + kv_round16(kv_half_code_bytes(l)); }
GREY_FN_FORCE uint64_t kv_compressed_block_bytes(const KvLayout& l) { return kv_v_codes_offset(l) + kv_half_code_bytes(l); }

/* Index of (layer, head, token, channel) in a window-form half, and of its code in a quantized half. */
GREY_FN_FORCE uint64_t kv_dense_index(const KvLayout& l, uint32_t layer, uint32_t head, uint32_t token, uint32_t channel) {
    return ((static_cast<uint64_t>(layer) * l.kv_heads + head) * l.tokens_per_block + token) * l.head_dim + channel;
}
GREY_FN_FORCE uint64_t kv_k_param_index(const KvLayout& l, uint32_t layer, uint32_t head, uint32_t channel) {
    return (static_cast<uint64_t>(layer) * l.kv_heads + head) * l.head_dim + channel;
}
/* Counted from the start of all parameters (after K's). */
GREY_FN_FORCE uint64_t kv_v_param_index(const KvLayout& l, uint32_t layer, uint32_t head, uint32_t token, uint32_t channel) {
    return kv_k_param_count(l) + ((static_cast<uint64_t>(layer) * l.kv_heads + head) * l.tokens_per_block + token) * kv_v_groups(l) +
           channel / l.group_size;
}

GREY_FN_FORCE uint16_t kv_to_window(const KvLayout& l, float value) {
    return l.window_bf16 != 0 ? f32_to_bf16(value) : f32_to_f16(value);
}
GREY_FN_FORCE float kv_from_window(const KvLayout& l, uint16_t bits) { return l.window_bf16 != 0 ? bf16_to_f32(bits) : f16_to_f32(bits); }

GREY_FN_FORCE const KvGroupParams* kv_params(const KvLayout&, const uint8_t* block) {
    return reinterpret_cast<const KvGroupParams*>(block);
}

/* A value of K (`kv_half` 0) or V (1) of a block in window form (not `half`: a type in C++ for OpenCL). */
GREY_FN float kv_dense_value(const KvLayout& l, const uint8_t* block, int kv_half, uint32_t layer, uint32_t head, uint32_t token,
                             uint32_t channel) {
    const uint16_t* values = reinterpret_cast<const uint16_t*>(block);
    return kv_from_window(l, values[kv_half * kv_block_elements(l) + kv_dense_index(l, layer, head, token, channel)]);
}

/* A value as a block in either form stores it. */
GREY_FN float kv_value(const KvLayout& l, const uint8_t* block, bool quantized, int kv_half, uint32_t layer, uint32_t head,
                       uint32_t token, uint32_t channel) {
    if (!quantized) return kv_dense_value(l, block, kv_half, layer, head, token, channel);
    const KvGroupParams* params = kv_params(l, block);
    const uint8_t* codes = block + (kv_half == 0 ? kv_k_codes_offset(l) : kv_v_codes_offset(l));
    const KvGroupParams p = kv_half == 0 ? params[kv_k_param_index(l, layer, head, channel)] : params[kv_v_param_index(l, layer, head, token, channel)];
    return kv_decode(kv_code_at(codes, kv_dense_index(l, layer, head, token, channel), l.format), p, l.format);
}

/* Parameter set `index` (K's, then V's, as stored) of the quantized form of the window-form `dense`. */
GREY_FN KvGroupParams kv_group_params_at(const KvLayout& l, const uint8_t* dense, uint64_t index) {
    float lo, hi;
    if (index < kv_k_param_count(l)) {  // one K channel over the block's tokens
        const uint32_t channel = static_cast<uint32_t>(index % l.head_dim);
        const uint64_t slice = index / l.head_dim;
        const uint32_t head = static_cast<uint32_t>(slice % l.kv_heads), layer = static_cast<uint32_t>(slice / l.kv_heads);
        lo = hi = kv_dense_value(l, dense, 0, layer, head, 0, channel);
        for (uint32_t t = 1; t < l.tokens_per_block; ++t) {
            const float x = kv_dense_value(l, dense, 0, layer, head, t, channel);
            lo = fminf(lo, x);
            hi = fmaxf(hi, x);
        }
    } else {  // a group of V channels within one token
        const uint64_t v = index - kv_k_param_count(l);
        const uint32_t groups = kv_v_groups(l);
        const uint32_t start = static_cast<uint32_t>(v % groups) * l.group_size;
        const uint64_t row = v / groups;  // (layer, head, token)
        const uint32_t token = static_cast<uint32_t>(row % l.tokens_per_block);
        const uint64_t slice = row / l.tokens_per_block;
        const uint32_t head = static_cast<uint32_t>(slice % l.kv_heads), layer = static_cast<uint32_t>(slice / l.kv_heads);
        const uint32_t end = start + l.group_size < l.head_dim ? start + l.group_size : l.head_dim;
        lo = hi = kv_dense_value(l, dense, 1, layer, head, token, start);
        for (uint32_t c = start + 1; c < end; ++c) {
            const float x = kv_dense_value(l, dense, 1, layer, head, token, c);
            lo = fminf(lo, x);
            hi = fmaxf(hi, x);
        }
    }
    return kv_group_params(lo, hi, l.format);
}

/* Byte `index` of a half's packed codes (K's, `kv_half` 0, or V's) of the quantized form of `dense`, given
 * its parameters `params` (all of them, as kv_group_params_at gives them). */
GREY_FN uint8_t kv_code_byte_at(const KvLayout& l, const uint8_t* dense, const KvGroupParams* params, int kv_half, uint64_t byte) {
    const uint64_t per_byte = 8u / kv_code_bits(l.format);
    const uint64_t elements = kv_block_elements(l);
    uint32_t packed = 0;
    for (uint64_t k = 0; k < per_byte; ++k) {
        const uint64_t code_index = byte * per_byte + k;
        if (code_index >= elements) break;
        const auto channel = static_cast<uint32_t>(code_index % l.head_dim);
        const uint64_t row = code_index / l.head_dim;
        const auto token = static_cast<uint32_t>(row % l.tokens_per_block);
        const uint64_t slice = row / l.tokens_per_block;
        const auto head = static_cast<uint32_t>(slice % l.kv_heads), layer = static_cast<uint32_t>(slice / l.kv_heads);
        const KvGroupParams p = kv_half == 0 ? params[kv_k_param_index(l, layer, head, channel)]
                                             : params[kv_v_param_index(l, layer, head, token, channel)];
        const uint32_t code = kv_encode(kv_dense_value(l, dense, kv_half, layer, head, token, channel), p, l.format);
        packed |= code << (static_cast<uint32_t>(k) * kv_code_bits(l.format));
    }
    return static_cast<uint8_t>(packed);
}

}  // namespace grey::common

#endif
