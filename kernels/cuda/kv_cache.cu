// The KV cache's kernels: writing tokens into window-form blocks, quantizing full blocks byte for byte
// as the host backend does (both call common/kv_layout.hpp's rule), and decode attention read directly
// from window-form and quantized blocks, split along each sequence as flash-decoding does and merged by
// a second kernel.
//
// Attention: a thread block takes one sequence, one KV head, up to GC of the query heads that read it,
// and an equal share of the sequence's blocks; its warps take every fourth block. In a block, each lane
// takes a token for the scores (a whole row of K codes, 16-byte aligned), then each lane takes CPL
// channels for the values. A quantized block's K is decoded through its per-channel parameters folded
// into the query (q * scale per channel, plus the sum of q * minimum), so a score costs one multiply-add
// per code. Scores are kept in base 2 (the scale carries log2(e)). The file is compiled with
// -fmad=false, so the accumulations spell their fused multiply-adds out (fmaf).
#include "kv_args.h"

#include <stdint.h>

using namespace grey::common;

namespace {

__device__ __forceinline__ uint64_t grid_index() { return uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; }
__device__ __forceinline__ uint64_t grid_stride() { return uint64_t{gridDim.x} * blockDim.x; }

__device__ __forceinline__ float warp_sum(float x) {
    for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
    for (int offset = 16; offset > 0; offset /= 2) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset));
    return x;
}

}  // namespace

extern "C" __global__ void grey_kv_store(grey_kvk_store_args a) {
    const KvLayout& l = a.layout;
    const uint64_t total = uint64_t{a.layer_count} * a.tokens * l.kv_heads * l.head_dim;
    const uint64_t half = kv_block_elements(l);
    const auto* keys = reinterpret_cast<const float*>(a.keys);
    const auto* values = reinterpret_cast<const float*>(a.values);
    const auto* blocks = reinterpret_cast<const uint64_t*>(a.blocks);
    const auto* slots = reinterpret_cast<const uint32_t*>(a.slots);
    for (uint64_t i = grid_index(); i < total; i += grid_stride()) {
        const auto channel = static_cast<uint32_t>(i % l.head_dim);
        uint64_t rest = i / l.head_dim;
        const auto head = static_cast<uint32_t>(rest % l.kv_heads);
        rest /= l.kv_heads;
        const auto token = static_cast<uint32_t>(rest % a.tokens);
        const auto layer = static_cast<uint32_t>(rest / a.tokens) + a.layer_first;
        auto* dense = reinterpret_cast<uint16_t*>(blocks[token]);
        const uint64_t to = kv_dense_index(l, layer, head, slots[token], channel);
        dense[to] = kv_to_window(l, keys[i]);
        dense[half + to] = kv_to_window(l, values[i]);
    }
}

// grid.y: the blocks of the job (looping when there are more than gridDim.y).
extern "C" __global__ void grey_kv_params(grey_kvk_compress_args a) {
    const KvLayout& l = a.layout;
    const uint64_t count = kv_k_param_count(l) + kv_v_param_count(l);
    const uint64_t params_end = kv_params_bytes(l), k_end = kv_k_codes_offset(l) + kv_half_code_bytes(l);
    const uint64_t k_pad = kv_k_codes_offset(l) - params_end, v_pad = kv_v_codes_offset(l) - k_end;
    for (uint32_t b = blockIdx.y; b < a.count; b += gridDim.y) {
        const auto* dense = reinterpret_cast<const uint8_t*>(reinterpret_cast<const uint64_t*>(a.sources)[b]);
        auto* out = reinterpret_cast<uint8_t*>(reinterpret_cast<const uint64_t*>(a.destinations)[b]);
        auto* params = reinterpret_cast<KvGroupParams*>(out);
        for (uint64_t i = grid_index(); i < count; i += grid_stride()) params[i] = kv_group_params_at(l, dense, i);
        // The padding before each code area, zeroed as the host backend zeroes it.
        for (uint64_t i = grid_index(); i < k_pad + v_pad; i += grid_stride()) out[i < k_pad ? params_end + i : k_end + (i - k_pad)] = 0;
    }
}

// After grey_kv_params (which wrote the parameters the codes read).
extern "C" __global__ void grey_kv_codes(grey_kvk_compress_args a) {
    const KvLayout& l = a.layout;
    const uint64_t half_bytes = kv_half_code_bytes(l);
    for (uint32_t b = blockIdx.y; b < a.count; b += gridDim.y) {
        const auto* dense = reinterpret_cast<const uint8_t*>(reinterpret_cast<const uint64_t*>(a.sources)[b]);
        auto* out = reinterpret_cast<uint8_t*>(reinterpret_cast<const uint64_t*>(a.destinations)[b]);
        const auto* params = reinterpret_cast<const KvGroupParams*>(out);
        for (uint64_t i = grid_index(); i < 2 * half_bytes; i += grid_stride()) {
            const int half = i < half_bytes ? 0 : 1;
            const uint64_t byte = half == 0 ? i : i - half_bytes;
            out[(half == 0 ? kv_k_codes_offset(l) : kv_v_codes_offset(l)) + byte] = kv_code_byte_at(l, dense, params, half, byte);
        }
    }
}

namespace {

// The value a code stands for before its group's scale and minimum: the code itself for the integer
// formats, the fp8 number for e4m3 (through a table in shared memory).
struct CodeValues {
    const float* fp8;  // 256 entries, or nullptr
    __device__ __forceinline__ float operator()(uint32_t code) const { return fp8 != nullptr ? fp8[code] : static_cast<float>(code); }
};

// Adds q[c] * x over the channels of one K row to s[g], for each of the GC query heads; q is [channel][GC]
// in shared memory (every lane reads the same address: a broadcast).
template <int GC>
__device__ __forceinline__ void dot_step(const float* q, uint32_t channel, float x, float (&s)[GC]) {
    if constexpr (GC % 4 == 0) {
#pragma unroll
        for (int g = 0; g < GC; g += 4) {
            const float4 v = *reinterpret_cast<const float4*>(q + channel * GC + g);
            s[g] = fmaf(v.x, x, s[g]);
            s[g + 1] = fmaf(v.y, x, s[g + 1]);
            s[g + 2] = fmaf(v.z, x, s[g + 2]);
            s[g + 3] = fmaf(v.w, x, s[g + 3]);
        }
    } else {
#pragma unroll
        for (int g = 0; g < GC; ++g) s[g] = fmaf(q[channel * GC + g], x, s[g]);
    }
}

// The scores of one token against the GC query heads: its row of K (codes, or window-form values) read
// 16 bytes at a time when the row allows it, else 4.
template <int GC>
__device__ void score_row(const KvLayout& l, const uint8_t* row, bool quantized, const float* q, CodeValues values, float (&s)[GC]) {
    const uint32_t bits = quantized ? kv_code_bits(l.format) : 16u;
    const uint32_t per_word = 32u / bits;
    const uint32_t mask = bits == 32u ? 0xffffffffu : (1u << bits) - 1u;
    const uint32_t words = l.head_dim * bits / 32u;
    const auto take = [&](uint32_t word, uint32_t w) {
#pragma unroll 8
        for (uint32_t j = 0; j < per_word; ++j) {
            const uint32_t code = (word >> (j * bits)) & mask;
            const float x = quantized ? values(code) : kv_from_window(l, static_cast<uint16_t>(code));
            dot_step<GC>(q, w * per_word + j, x, s);
        }
    };
    if (words % 4 == 0 && reinterpret_cast<uintptr_t>(row) % 16 == 0) {
        const auto* wide = reinterpret_cast<const uint4*>(row);
        for (uint32_t w = 0; w < words; w += 4) {
            const uint4 v = wide[w / 4];
            take(v.x, w);
            take(v.y, w + 1);
            take(v.z, w + 2);
            take(v.w, w + 3);
        }
    } else {
        const auto* narrow = reinterpret_cast<const uint32_t*>(row);
        for (uint32_t w = 0; w < words; ++w) take(narrow[w], w);
    }
}

// The CPL values of V at channels c0.. of one token, as stored.
template <int CPL>
__device__ __forceinline__ void value_row(const KvLayout& l, const uint8_t* block, bool quantized, uint32_t layer, uint32_t head,
                                          uint32_t token, uint32_t c0, CodeValues values, float (&v)[CPL]) {
    const uint64_t index = kv_dense_index(l, layer, head, token, c0);
    if (!quantized) {
        const auto* dense = reinterpret_cast<const uint16_t*>(block) + kv_block_elements(l) + index;
#pragma unroll
        for (int j = 0; j < CPL; ++j) v[j] = c0 + j < l.head_dim ? kv_from_window(l, dense[j]) : 0.0f;
        return;
    }
    const KvGroupParams p = kv_params(l, block)[kv_v_param_index(l, layer, head, token, c0)];
    const uint8_t* codes = block + kv_v_codes_offset(l);
#pragma unroll
    for (int j = 0; j < CPL; ++j)
        v[j] = c0 + j < l.head_dim ? fmaf(values(kv_code_at(codes, index + j, l.format)), p.scale, p.minimum) : 0.0f;
}

template <int CPL, int GC>
__device__ void attend_split(const grey_kvk_attend_args& a) {
    constexpr uint32_t kWarps = GREY_KVK_ATTEND_WARPS;
    const KvLayout& l = a.layout;
    const uint32_t dim = l.head_dim, per_block = l.tokens_per_block;
    const uint32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const uint32_t sequence = blockIdx.z;
    const uint32_t head = blockIdx.y / a.group_chunks;
    const uint32_t g_first = (blockIdx.y % a.group_chunks) * GC;
    const uint32_t g_count = min(static_cast<uint32_t>(GC), a.group - g_first);
    const uint32_t q_first = head * a.group + g_first;
    const grey_kvk_sequence seq = reinterpret_cast<const grey_kvk_sequence*>(a.sequences)[sequence];

    extern __shared__ float shared[];
    float* q_shared = shared;                                        // [dim][GC]
    float* warp_q = q_shared + dim * GC * (1 + warp);                // [dim][GC]: q * K scale; later the accumulator
    float* warp_p = shared + dim * GC * (1 + kWarps) + warp * 32 * GC;  // [32][GC]: a chunk's softmax weights
    float* fp8 = shared + dim * GC * (1 + kWarps) + kWarps * 32 * GC;  // 256
    float* warp_stats = fp8 + 256;                                   // [kWarps][GC][2]: max, sum

    const auto* queries = reinterpret_cast<const float*>(a.queries);
    for (uint32_t i = threadIdx.x; i < dim * GC; i += blockDim.x) {
        const uint32_t c = i / GC, g = i % GC;
        q_shared[i] = g < g_count ? queries[(uint64_t{sequence} * a.query_heads + q_first + g) * dim + c] : 0.0f;
    }
    const bool is_fp8 = l.format == kv_fp8_e4m3;
    for (uint32_t i = threadIdx.x; i < 256; i += blockDim.x) fp8[i] = is_fp8 ? fp8_to_f32(i, GREY_QUANT_FP8_E4M3) : 0.0f;
    __syncthreads();
    const CodeValues code_values{is_fp8 ? fp8 : nullptr};

    const uint64_t first_block = seq.first / per_block, end_block = (seq.last + per_block - 1) / per_block;
    const uint64_t share = (end_block - first_block + a.splits - 1) / a.splits;
    const uint64_t begin = first_block + blockIdx.x * share;
    const uint64_t end = begin + share < end_block ? begin + share : end_block;
    const auto* table = reinterpret_cast<const uint64_t*>(a.blocks) + seq.table_offset;
    const uint32_t c0 = lane * CPL;
    const uint32_t layer = a.layer;

    float m[GC], sum[GC], acc[GC][CPL];
#pragma unroll
    for (int g = 0; g < GC; ++g) {
        m[g] = -INFINITY;
        sum[g] = 0.0f;
#pragma unroll
        for (int j = 0; j < CPL; ++j) acc[g][j] = 0.0f;
    }

    for (uint64_t b = begin + warp; b < end; b += kWarps) {
        const uint64_t entry = table[b];
        const bool quantized = (entry & 1u) != 0;
        const auto* block = reinterpret_cast<const uint8_t*>(entry & ~uint64_t{1});
        const uint64_t base = b * per_block;
        const uint32_t lo = seq.first > base ? static_cast<uint32_t>(seq.first - base) : 0u;
        const uint64_t remaining = seq.last - base;
        const uint32_t hi = remaining < per_block ? static_cast<uint32_t>(remaining) : per_block;

        float bias[GC];
#pragma unroll
        for (int g = 0; g < GC; ++g) bias[g] = 0.0f;
        const float* qk = q_shared;
        if (quantized) {
            const KvGroupParams* params = kv_params(l, block);
            for (uint32_t c = lane; c < dim; c += 32) {
                const KvGroupParams p = params[kv_k_param_index(l, layer, head, c)];
#pragma unroll
                for (int g = 0; g < GC; ++g) {
                    warp_q[c * GC + g] = q_shared[c * GC + g] * p.scale;
                    bias[g] = fmaf(q_shared[c * GC + g], p.minimum, bias[g]);
                }
            }
#pragma unroll
            for (int g = 0; g < GC; ++g) bias[g] = warp_sum(bias[g]);
            __syncwarp();
            qk = warp_q;
        }
        const uint8_t* k_area = quantized ? block + kv_k_codes_offset(l) : block;
        const uint32_t k_bits = quantized ? kv_code_bits(l.format) : 16u;

        for (uint32_t t0 = lo; t0 < hi; t0 += 32) {
            const uint32_t t = t0 + lane;
            const bool valid = t < hi;
            float s[GC];
#pragma unroll
            for (int g = 0; g < GC; ++g) s[g] = bias[g];
            if (valid) score_row<GC>(l, k_area + kv_dense_index(l, layer, head, t, 0) * k_bits / 8, quantized, qk, code_values, s);
#pragma unroll
            for (int g = 0; g < GC; ++g) {
                const float score = valid ? s[g] * a.scale_log2 : -INFINITY;
                const float top = fmaxf(m[g], warp_max(score));
                const float rescale = exp2f(m[g] - top);  // 0 while m is still -inf
                const float p = valid ? exp2f(score - top) : 0.0f;
                sum[g] = fmaf(sum[g], rescale, warp_sum(p));
                m[g] = top;
#pragma unroll
                for (int j = 0; j < CPL; ++j) acc[g][j] *= rescale;
                warp_p[lane * GC + g] = p;
            }
            __syncwarp();
            const uint32_t count = min(32u, hi - t0);
            if (c0 < dim) {
                for (uint32_t k = 0; k < count; ++k) {
                    float v[CPL];
                    value_row<CPL>(l, block, quantized, layer, head, t0 + k, c0, code_values, v);
#pragma unroll
                    for (int g = 0; g < GC; ++g) {
                        const float p = warp_p[k * GC + g];
#pragma unroll
                        for (int j = 0; j < CPL; ++j) acc[g][j] = fmaf(p, v[j], acc[g][j]);
                    }
                }
            }
            __syncwarp();
        }
        __syncwarp();  // warp_q is rewritten by the next quantized block
    }

    // The warps' states into shared memory (each warp's accumulator over its warp_q), merged per channel.
    __syncwarp();
    if (c0 < dim) {
#pragma unroll
        for (int g = 0; g < GC; ++g)
#pragma unroll
            for (int j = 0; j < CPL; ++j)
                if (c0 + j < dim) warp_q[(c0 + j) * GC + g] = acc[g][j];
    }
    if (lane == 0) {
#pragma unroll
        for (int g = 0; g < GC; ++g) {
            warp_stats[(warp * GC + g) * 2] = m[g];
            warp_stats[(warp * GC + g) * 2 + 1] = sum[g];
        }
    }
    __syncthreads();
    auto* partials = reinterpret_cast<float*>(a.partials);
    for (uint32_t i = threadIdx.x; i < dim * GC; i += blockDim.x) {
        const uint32_t c = i / GC, g = i % GC;
        if (g >= g_count) continue;
        float top = -INFINITY;
        for (uint32_t w = 0; w < kWarps; ++w) top = fmaxf(top, warp_stats[(w * GC + g) * 2]);
        float total = 0.0f, value = 0.0f;
        if (top != -INFINITY) {
            for (uint32_t w = 0; w < kWarps; ++w) {
                const float weight = exp2f(warp_stats[(w * GC + g) * 2] - top);
                total = fmaf(warp_stats[(w * GC + g) * 2 + 1], weight, total);
                value = fmaf(shared[dim * GC * (1 + w) + c * GC + g], weight, value);
            }
        }
        float* out = partials + ((uint64_t{sequence} * a.query_heads + q_first + g) * a.splits + blockIdx.x) * (dim + 2);
        out[c] = value;
        if (c == 0) {
            out[dim] = top;
            out[dim + 1] = total;
        }
    }
}

}  // namespace

#define GREY_KV_ATTEND_SPLIT(cpl, gc)                                                        \
    extern "C" __global__ void __launch_bounds__(GREY_KVK_ATTEND_WARPS * 32)                  \
        grey_kv_attend_split_##cpl##_##gc(grey_kvk_attend_args a) {                         \
        attend_split<cpl, gc>(a);                                                            \
    }
#define GREY_KV_ATTEND_SPLITS(cpl) \
    GREY_KV_ATTEND_SPLIT(cpl, 1)   \
    GREY_KV_ATTEND_SPLIT(cpl, 2)   \
    GREY_KV_ATTEND_SPLIT(cpl, 4)   \
    GREY_KV_ATTEND_SPLIT(cpl, 8)
GREY_KV_ATTEND_SPLITS(1)
GREY_KV_ATTEND_SPLITS(2)
GREY_KV_ATTEND_SPLITS(4)
GREY_KV_ATTEND_SPLITS(8)

// One thread block per (sequence, query head), a thread per channel: the splits' partial results merged.
extern "C" __global__ void grey_kv_attend_combine(grey_kvk_attend_args a) {
    const uint32_t dim = a.layout.head_dim;
    const uint32_t c = threadIdx.x;
    if (c >= dim) return;
    const auto* partials = reinterpret_cast<const float*>(a.partials) + uint64_t{blockIdx.x} * a.splits * (dim + 2);
    float top = -INFINITY;
    for (uint32_t s = 0; s < a.splits; ++s) top = fmaxf(top, partials[s * (dim + 2) + dim]);
    float total = 0.0f, value = 0.0f;
    for (uint32_t s = 0; s < a.splits; ++s) {
        const float* part = partials + s * (dim + 2);
        if (part[dim] == -INFINITY) continue;
        const float weight = exp2f(part[dim] - top);
        total = fmaf(part[dim + 1], weight, total);
        value = fmaf(part[c], weight, value);
    }
    reinterpret_cast<float*>(a.output)[uint64_t{blockIdx.x} * dim + c] = value / total;
}
