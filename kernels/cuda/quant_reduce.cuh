// Reductions across the lanes of a tile (a power of two up to 32 lanes of one warp). Whole warps
// iterate together in the kernels that use them, so every shuffle has all 32 lanes present.
#pragma once

#include "quant_base.cuh"

namespace {

// (value, index) reductions that keep the first of equal values, as a sequential scan does: +0 and -0
// compare equal, and which one a scan keeps decides a stored fp16 bit.
struct Pick {
    float value;
    uint32_t index;
};

template <bool kMin>
__device__ __forceinline__ Pick better(Pick a, Pick b) {
    const bool b_wins = kMin ? (b.value < a.value) : (a.value < b.value);
    if (b_wins) return b;
    if (a.value == b.value && b.index < a.index) return b;  // ties: the earlier element
    return a;
}

template <bool kMin>
__device__ __forceinline__ Pick reduce_tile(Pick p, int tile) {
    for (int offset = tile / 2; offset > 0; offset /= 2) {
        Pick other{__shfl_xor_sync(0xFFFFFFFFu, p.value, offset, tile), __shfl_xor_sync(0xFFFFFFFFu, p.index, offset, tile)};
        p = better<kMin>(p, other);
    }
    return p;
}

__device__ __forceinline__ float max_tile(float v, int tile) {
    for (int offset = tile / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, offset, tile));
    return v;
}

__device__ __forceinline__ float min_tile(float v, int tile) {
    for (int offset = tile / 2; offset > 0; offset /= 2) v = fminf(v, __shfl_xor_sync(0xFFFFFFFFu, v, offset, tile));
    return v;
}

// The minimum and maximum of a group whose tile lanes hold kCount elements each, `first` being this
// lane's first element in the group. A zero extreme: which zero (+0 or -0) a sequential scan keeps is
// the first one met, and it decides a stored fp16 bit. Rare, so the index-aware reduction runs only then.
template <int kCount>
__device__ __forceinline__ void group_min_max(const float* v, uint32_t first, int tile, Stats& s) {
    float lo = v[0], hi = v[0];
#pragma unroll
    for (int k = 1; k < kCount; ++k) {
        lo = fminf(lo, v[k]);
        hi = fmaxf(hi, v[k]);
    }
    s.min = min_tile(lo, tile);
    s.max = max_tile(hi, tile);
    if (__any_sync(0xFFFFFFFFu, s.min == 0.0f || s.max == 0.0f)) {
        Pick first_lo{v[0], first}, first_hi{v[0], first};
#pragma unroll
        for (int k = 1; k < kCount; ++k) {
            first_lo = better<true>(first_lo, Pick{v[k], first + k});
            first_hi = better<false>(first_hi, Pick{v[k], first + k});
        }
        s.min = reduce_tile<true>(first_lo, tile).value;
        s.max = reduce_tile<false>(first_hi, tile).value;
    }
}

// Adds a thread's error sums (common/quant_error.hpp's) into the job's grey_qk_error: each warp's sums
// with shuffles, then one lane's double atomics. Every lane of the warp must call it.
__device__ __forceinline__ void add_error_sums(grey_qk_error* out, double signal, double error, double largest) {
    for (int offset = 16; offset > 0; offset /= 2) {
        signal += __shfl_down_sync(0xFFFFFFFFu, signal, offset);
        error += __shfl_down_sync(0xFFFFFFFFu, error, offset);
        largest = fmax(largest, __shfl_down_sync(0xFFFFFFFFu, largest, offset));
    }
    if ((threadIdx.x & 31u) == 0) {
        atomicAdd(&out->sum_squared_signal, signal);
        atomicAdd(&out->sum_squared_error, error);
        atomicMax(reinterpret_cast<unsigned long long*>(&out->max_abs_error_bits), static_cast<unsigned long long>(__double_as_longlong(largest)));
    }
}

}  // namespace
