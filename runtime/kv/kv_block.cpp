#include "kv/kv_block.hpp"

#include "common/numeric.hpp"

#include <algorithm>

namespace grey::kv {
namespace {

uint16_t to_window(const KvShape& shape, float value) {
    return shape.window_dtype == GREY_DTYPE_BF16 ? common::f32_to_bf16(value) : common::f32_to_f16(value);
}

float from_window(const KvShape& shape, uint16_t bits) {
    return shape.window_dtype == GREY_DTYPE_BF16 ? common::bf16_to_f32(bits) : common::f16_to_f32(bits);
}

}  // namespace

KvBlock make_dense_block(const KvShape& shape) {
    KvBlock block;
    block.dense.assign(2 * shape.block_elements(), 0);
    block.tokens.reserve(shape.tokens_per_block);
    return block;
}

void store_value(const KvShape& shape, KvBlock& block, int value_half, uint32_t layer, uint32_t head, uint32_t token,
                 uint32_t channel, float value) {
    block.dense[value_half * shape.block_elements() + shape.dense_index(layer, head, token, channel)] = to_window(shape, value);
}

float load_value(const KvShape& shape, const KvBlock& block, int value_half, uint32_t layer, uint32_t head, uint32_t token,
                 uint32_t channel) {
    if (!block.quantized())
        return from_window(shape, block.dense[value_half * shape.block_elements() + shape.dense_index(layer, head, token, channel)]);
    const uint64_t elements = shape.block_elements();
    if (value_half == 0) {
        const uint64_t index = shape.k_code_index(layer, head, token, channel);
        return common::kv_decode(common::kv_code_at(block.codes.data(), index, shape.format),
                                 block.params[shape.k_param_index(layer, head, channel)], shape.format);
    }
    const uint8_t* v_codes = block.codes.data() + common::kv_code_bytes(elements, shape.format);
    const uint64_t index = shape.dense_index(layer, head, token, channel);
    return common::kv_decode(common::kv_code_at(v_codes, index, shape.format),
                             block.params[shape.k_param_count() + shape.v_param_index(layer, head, token, channel)], shape.format);
}

void quantize_block(const KvShape& shape, KvBlock& block) {
    const uint64_t elements = shape.block_elements();
    const uint64_t k_code_bytes = common::kv_code_bytes(elements, shape.format);
    std::vector<common::KvGroupParams> params(shape.k_param_count() + shape.v_param_count());
    std::vector<uint8_t> codes(2 * k_code_bytes, 0);
    const uint32_t tokens = shape.tokens_per_block;
    const uint32_t group = shape.group_size;
    for (uint32_t layer = 0; layer < shape.layers; ++layer) {
        for (uint32_t head = 0; head < shape.kv_heads; ++head) {
            // K: one group per channel, over the block's tokens (KIVI's per-channel keys).
            for (uint32_t channel = 0; channel < shape.head_dim; ++channel) {
                float lo = load_value(shape, block, 0, layer, head, 0, channel), hi = lo;
                for (uint32_t t = 1; t < tokens; ++t) {
                    const float x = load_value(shape, block, 0, layer, head, t, channel);
                    lo = std::min(lo, x);
                    hi = std::max(hi, x);
                }
                const auto p = common::kv_group_params(lo, hi, shape.format);
                params[shape.k_param_index(layer, head, channel)] = p;
                for (uint32_t t = 0; t < tokens; ++t)
                    common::kv_put_code(codes.data(), shape.k_code_index(layer, head, t, channel), shape.format,
                                        common::kv_encode(load_value(shape, block, 0, layer, head, t, channel), p, shape.format));
            }
            // V: groups of `group` channels within each token (KIVI's per-token values).
            for (uint32_t t = 0; t < tokens; ++t) {
                for (uint32_t start = 0; start < shape.head_dim; start += group) {
                    const uint32_t end = std::min(shape.head_dim, start + group);
                    float lo = load_value(shape, block, 1, layer, head, t, start), hi = lo;
                    for (uint32_t c = start + 1; c < end; ++c) {
                        const float x = load_value(shape, block, 1, layer, head, t, c);
                        lo = std::min(lo, x);
                        hi = std::max(hi, x);
                    }
                    const auto p = common::kv_group_params(lo, hi, shape.format);
                    params[shape.k_param_count() + shape.v_param_index(layer, head, t, start)] = p;
                    for (uint32_t c = start; c < end; ++c)
                        common::kv_put_code(codes.data() + k_code_bytes, shape.dense_index(layer, head, t, c), shape.format,
                                            common::kv_encode(load_value(shape, block, 1, layer, head, t, c), p, shape.format));
                }
            }
        }
    }
    block.params = std::move(params);
    block.codes = std::move(codes);
    block.dense.clear();
    block.dense.shrink_to_fit();
}

}  // namespace grey::kv
