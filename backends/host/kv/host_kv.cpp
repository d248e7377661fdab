#include "host/kv/host_kv.hpp"

#include "common/dtype.hpp"
#include "common/numeric.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace grey::host {

std::span<const float> kv_input_floats(std::span<const std::byte> bytes, grey_dtype dtype, std::vector<float>& storage) {
    if (!common::is_float_input(dtype))
        throw std::invalid_argument("the K/V to store must be F32, F16 or BF16, not dtype " + std::to_string(static_cast<int>(dtype)));
    // F32 lies aligned in the buffer (the runtime checks the offset): read in place, as before the dtype existed.
    if (dtype == GREY_DTYPE_F32) return {reinterpret_cast<const float*>(bytes.data()), bytes.size() / sizeof(float)};
    storage.resize(bytes.size() / 2);
    common::float_input_to_f32(bytes, dtype, storage);
    return storage;
}

uint64_t kv_first_non_finite(std::span<const float> keys, std::span<const float> values) {
    const auto finite = [](float x) { return std::isfinite(x); };
    if (const auto k = std::find_if_not(keys.begin(), keys.end(), finite); k != keys.end()) return static_cast<uint64_t>(k - keys.begin());
    if (const auto v = std::find_if_not(values.begin(), values.end(), finite); v != values.end())
        return keys.size() + static_cast<uint64_t>(v - values.begin());
    return UINT64_MAX;
}

void kv_store(const common::KvLayout& l, uint32_t layer_first, uint32_t layer_count, const float* keys, const float* values,
              std::span<uint8_t* const> blocks, std::span<const uint32_t> slots) {
    const uint64_t tokens = blocks.size();
    const uint64_t row = uint64_t{l.kv_heads} * l.head_dim;
    const uint64_t half = common::kv_block_elements(l);
    std::vector<float> key(l.head_dim);
    for (uint64_t i = 0; i < tokens; ++i) {
        auto* dense = reinterpret_cast<uint16_t*>(blocks[i]);
        for (uint32_t k = 0; k < layer_count; ++k)
            for (uint32_t head = 0; head < l.kv_heads; ++head) {
                const uint64_t from = (k * tokens + i) * row + uint64_t{head} * l.head_dim;
                std::copy_n(keys + from, l.head_dim, key.begin());
                if (l.hadamard_k != 0) common::kv_hadamard_rotate(key.data(), l.head_dim);
                for (uint32_t c = 0; c < l.head_dim; ++c) {
                    const uint64_t to = common::kv_dense_index(l, layer_first + k, head, slots[i], c);
                    dense[to] = common::kv_to_window(l, key[c]);
                    dense[half + to] = common::kv_to_window(l, values[from + c]);
                }
            }
    }
}

void kv_compress(const common::KvLayout& l, const uint8_t* dense, uint8_t* out) {
    auto* params = reinterpret_cast<common::KvGroupParams*>(out);
    const uint64_t param_count = common::kv_k_param_count(l) + common::kv_v_param_count(l);
    for (uint64_t i = 0; i < param_count; ++i) params[i] = common::kv_group_params_at(l, dense, i);
    const uint64_t code_bytes = common::kv_half_code_bytes(l);
    for (int half = 0; half < 2; ++half) {
        uint8_t* codes = out + (half == 0 ? common::kv_k_codes_offset(l) : common::kv_v_codes_offset(l));
        for (uint64_t i = 0; i < code_bytes; ++i) codes[i] = common::kv_code_byte_at(l, dense, params, half, i);
    }
}

void kv_attend(const common::KvLayout& l, const KvAttendBlocks& b, uint32_t layer, uint32_t query_heads, float scale, const float* queries,
               float* output) {
    const uint32_t dim = l.head_dim;
    const uint32_t group = query_heads / l.kv_heads;
    const uint64_t per_block = l.tokens_per_block;
    std::vector<double> scores;
    std::vector<double> accumulated(dim), query(dim);
    for (size_t s = 0; s + 1 < b.table_offsets.size(); ++s) {
        const uint64_t first = b.first[s], last = b.last[s];
        const auto value = [&](int half, uint32_t head, uint64_t position, uint32_t channel) {
            const uint64_t block = b.table_offsets[s] + position / per_block;
            return static_cast<double>(common::kv_value(l, b.blocks[block], b.quantized[block] != 0, half, layer, head,
                                                        static_cast<uint32_t>(position % per_block), channel));
        };
        scores.resize(last - first);
        for (uint32_t qh = 0; qh < query_heads; ++qh) {
            const uint32_t head = qh / group;
            const float* q = queries + (s * query_heads + qh) * uint64_t{dim};
            std::copy_n(q, dim, query.begin());
            // K is stored rotated: the query is rotated the same way (in float64), which keeps q.k.
            if (l.hadamard_k != 0) common::kv_hadamard_rotate(query.data(), dim);
            double top = -INFINITY;
            for (uint64_t p = first; p < last; ++p) {
                double dot = 0;
                for (uint32_t c = 0; c < dim; ++c) dot += query[c] * value(0, head, p, c);
                scores[p - first] = dot * static_cast<double>(scale);
                top = std::max(top, scores[p - first]);
            }
            double total = 0;
            std::fill(accumulated.begin(), accumulated.end(), 0.0);
            for (uint64_t p = first; p < last; ++p) {
                const double weight = std::exp(scores[p - first] - top);
                total += weight;
                for (uint32_t c = 0; c < dim; ++c) accumulated[c] += weight * value(1, head, p, c);
            }
            float* out = output + (s * query_heads + qh) * uint64_t{dim};
            for (uint32_t c = 0; c < dim; ++c) out[c] = static_cast<float>(accumulated[c] / total);
        }
    }
}

}  // namespace grey::host
