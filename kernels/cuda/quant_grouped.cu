// grey_quant_grouped8 and grey_quant_grouped16: RTN for the grouped formats (INT4, INT4_SYM, NF4, Q8_0,
// Q4_0, Q4_1) at any alignment, one pass over memory. Each group of G elements is handled by a tile of
// G/kPerThread threads holding kPerThread elements each (so the per-group work, the parameter choice and
// the reductions, is shared by many elements). Whole warps iterate together (the shuffles need every
// lane), with tiles past the last group masked out.
#include "quant_params.cuh"
#include "quant_reduce.cuh"

namespace {

// kFormat and kDtype are compile-time constants (see with_dtype), so the per-element branches on them
// fold away.
template <int kPerThread, int kFormat, int kDtype>
__device__ __forceinline__ void quantize_groups(grey_qk_args a, const Tables& tables) {
    a.format = kFormat;
    a.dtype = kDtype;
    const int tile = static_cast<int>(a.run_length) / kPerThread;
    const uint64_t groups = a.param_count;
    const uint32_t lane = threadIdx.x % tile;
    const uint64_t tiles_in_grid = grid_threads() / tile;
    const uint64_t warp_first_tile = (global_thread() - (threadIdx.x & 31u)) / tile;
    const uint64_t tile_in_warp = (threadIdx.x & 31u) / tile;
    for (uint64_t base = warp_first_tile; base < groups; base += tiles_in_grid) {
        const uint64_t g = base + tile_in_warp;
        const bool active = g < groups;
        const uint64_t first = g * a.run_length + kPerThread * lane;
        float v[kPerThread] = {};
        if (active) {
            load_elements<kPerThread>(a, first, v);
#pragma unroll
            for (int k = 0; k < kPerThread; ++k) note_if_not_finite(a, first + k, v[k]);
        }
        Stats s{0.0f, INFINITY, -INFINITY, 0.0f};
        if (stores_minimum(a.format)) {
            group_min_max<kPerThread>(v, kPerThread * lane, tile, s);
        } else {
            float m = 0.0f;
#pragma unroll
            for (int k = 0; k < kPerThread; ++k) m = fmaxf(m, fabsf(v[k]));
            s.absmax = max_tile(m, tile);
            if (a.format == kQ4_0) {
                Pick first_peak{0.0f, 0xFFFFFFFFu};
#pragma unroll
                for (int k = kPerThread - 1; k >= 0; --k)
                    if (fabsf(v[k]) == s.absmax) first_peak = Pick{v[k], kPerThread * lane + k};
                // The smallest index wins; values differ only in sign, so compare indices alone.
                for (int offset = tile / 2; offset > 0; offset /= 2) {
                    const float value = __shfl_xor_sync(0xFFFFFFFFu, first_peak.value, offset, tile);
                    const uint32_t index = __shfl_xor_sync(0xFFFFFFFFu, first_peak.index, offset, tile);
                    if (index < first_peak.index) first_peak = Pick{value, index};
                }
                s.peak = first_peak.value;
            }
        }
        const Coding c = make_coding(a.format, s, 1.0f);
        uint32_t q[kPerThread];
#pragma unroll
        for (int k = 0; k < kPerThread; ++k) q[k] = encode(a.format, c, v[k], tables);

        constexpr int kWords = kPerThread / 4;  // codes as bytes, four to a word
        if (a.format == kQ8_0) {
            if (active) {
                const uint64_t codes = a.quantized + g * 34 + 2 + kPerThread * lane;
                if (lane == 0) store_checked_params(a, g, c);
#pragma unroll
                for (int w = 0; w < kWords; ++w) store_u32(codes + 4 * w, pack_bytes(q + 4 * w));
            }
        } else if (is_ggml(a.format)) {
            // ggml packs byte j of a block as code j | code j+16 << 4: the lanes holding codes 0-15 take
            // codes 16-31 from the lanes `half` further on.
            constexpr int kHalf = 16 / kPerThread;
            const uint64_t codes = a.quantized + g * ggml_block_bytes(a.format) + ggml_header_bytes(a.format) + kPerThread * lane;
            if (active && lane == 0) store_checked_params(a, g, c);
#pragma unroll
            for (int w = 0; w < kWords; ++w) {
                const uint32_t word = pack_bytes(q + 4 * w);
                const uint32_t upper = __shfl_down_sync(0xFFFFFFFFu, word, kHalf, tile);
                if (active && lane < kHalf) store_u32(codes + 4 * w, (word & 0x0F0F0F0Fu) | ((upper & 0x0F0F0F0Fu) << 4));
            }
        } else if (active) {
#pragma unroll
            for (int w = 0; w < kPerThread / 8; ++w) store_u32(a.quantized + first / 2 + 4 * w, pack_nibbles(q + 8 * w));
            if (lane == 0) store_checked_params(a, g, c);
        }
    }
}

}  // namespace

// Two entry points so that each gets its own register allocation. Q8_0 and Q4_0 (codes in 34- and
// 18-byte blocks, only 2-byte aligned) run faster with eight elements a thread; the rest with sixteen.
extern "C" __global__ void grey_quant_grouped8(grey_qk_args a) {
    __shared__ Tables tables;
    build_tables(a.format, kEncodeTables, tables);
    with_dtype(a.dtype, [&]<int kDtype>() {
        if (a.format == kQ8_0) quantize_groups<8, kQ8_0, kDtype>(a, tables);
        else quantize_groups<8, kQ4_0, kDtype>(a, tables);
    });
}

extern "C" __global__ void grey_quant_grouped16(grey_qk_args a) {
    __shared__ Tables tables;
    build_tables(a.format, kEncodeTables, tables);
    with_dtype(a.dtype, [&]<int kDtype>() {
        switch (a.format) {
            case kInt4: quantize_groups<16, kInt4, kDtype>(a, tables); break;
            case kInt4Sym: quantize_groups<16, kInt4Sym, kDtype>(a, tables); break;
            case kNf4: quantize_groups<16, kNf4, kDtype>(a, tables); break;
            default: quantize_groups<16, kQ4_1, kDtype>(a, tables); break;
        }
    });
}

