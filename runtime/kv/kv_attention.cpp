// The host reference of decode attention and gather: reads each stored value where it lies (window
// form or quantized codes), accumulates in float64 and writes float32.
#include "core/error.hpp"
#include "kv/kv_cache.hpp"

#include <cmath>
#include <string>
#include <vector>

namespace grey::kv {

float KvCache::value_at(const KvSequence& seq, int value_half, uint32_t layer, uint32_t head, uint64_t position,
                        uint32_t channel) const {
    const uint64_t per_block = shape_.tokens_per_block;
    const KvBlock& block = blocks_.at(seq.table[position / per_block]);
    return load_value(shape_, block, value_half, layer, head, static_cast<uint32_t>(position % per_block), channel);
}

void KvCache::attend(const grey_kv_attend_params& params, std::span<const uint64_t> sequences, std::span<const float> queries,
                     std::span<float> output) const {
    std::lock_guard lock(mutex_);
    std::vector<const KvSequence*> batch;
    batch.reserve(sequences.size());
    for (const uint64_t id : sequences) {
        const KvSequence& seq = find(id);
        if (seq.length == 0) fail(GREY_ERROR_INVALID_ARGUMENT, "sequence " + std::to_string(id) + " is empty: there is nothing to attend to");
        batch.push_back(&seq);
    }
    const uint32_t dim = shape_.head_dim;
    const uint32_t group = params.query_heads / shape_.kv_heads;
    const double scale = params.scale != 0.0f ? static_cast<double>(params.scale) : 1.0 / std::sqrt(static_cast<double>(dim));
    std::vector<double> scores;
    std::vector<double> accumulated(dim);
    for (size_t b = 0; b < batch.size(); ++b) {
        const KvSequence& seq = *batch[b];
        const uint64_t start = params.sliding_window != 0 && seq.length > params.sliding_window ? seq.length - params.sliding_window : 0;
        scores.resize(seq.length - start);
        for (uint32_t qh = 0; qh < params.query_heads; ++qh) {
            const uint32_t head = qh / group;
            const float* q = queries.data() + (b * params.query_heads + qh) * uint64_t{dim};
            double top = -INFINITY;
            for (uint64_t p = start; p < seq.length; ++p) {
                double dot = 0;
                for (uint32_t c = 0; c < dim; ++c) dot += static_cast<double>(q[c]) * value_at(seq, 0, params.layer, head, p, c);
                scores[p - start] = dot * scale;
                top = std::max(top, scores[p - start]);
            }
            double total = 0;
            std::fill(accumulated.begin(), accumulated.end(), 0.0);
            for (uint64_t p = start; p < seq.length; ++p) {
                const double weight = std::exp(scores[p - start] - top);
                total += weight;
                for (uint32_t c = 0; c < dim; ++c) accumulated[c] += weight * value_at(seq, 1, params.layer, head, p, c);
            }
            float* out = output.data() + (b * params.query_heads + qh) * uint64_t{dim};
            for (uint32_t c = 0; c < dim; ++c) out[c] = static_cast<float>(accumulated[c] / total);
        }
    }
}

void KvCache::gather(uint64_t sequence, uint32_t layer, std::span<float> keys, std::span<float> values) const {
    std::lock_guard lock(mutex_);
    const KvSequence& seq = find(sequence);
    const uint64_t row = uint64_t{shape_.kv_heads} * shape_.head_dim;
    if (keys.size() != seq.length * row)
        fail(GREY_ERROR_INVALID_ARGUMENT, "kv_bytes is " + std::to_string(keys.size() * 4) + "; sequence " + std::to_string(sequence) +
                                              " of " + std::to_string(seq.length) + " tokens takes " + std::to_string(seq.length * row * 4));
    for (uint64_t p = 0; p < seq.length; ++p)
        for (uint32_t head = 0; head < shape_.kv_heads; ++head)
            for (uint32_t c = 0; c < shape_.head_dim; ++c) {
                keys[p * row + uint64_t{head} * shape_.head_dim + c] = value_at(seq, 0, layer, head, p, c);
                values[p * row + uint64_t{head} * shape_.head_dim + c] = value_at(seq, 1, layer, head, p, c);
            }
}

}  // namespace grey::kv
