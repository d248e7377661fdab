// The per-block tables the quantization kernels read from shared memory: fp8 code values (decoding), and
// NF4's levels (decoding) and buckets (encoding), all built from common/numeric.hpp's conversions and
// levels, so they hold the host's values.
#pragma once

#include "quant_base.cuh"

namespace {

// The NF4 code nearest to `normalized` is the number of midpoints below it (ties go to the lower code,
// as common/numeric.hpp's linear scan does; a NaN gets code 0). Midpoints lie at least 0.08 apart, so
// cutting [-1, 1] into 33 buckets of width 1/16 puts at most one in each bucket, and a code costs one
// table read and one comparison, where a binary search over the midpoints takes four dependent reads
// (bench/RESULTS.md, "CUDA kernel design", has what that was worth). The bucket only chooses the table entry: the comparison is
// made on `normalized` itself, so the codes stay exact.
struct Nf4Bucket {
    float midpoint;  // the midpoint inside the bucket, or +inf where there is none
    uint32_t below;  // how many midpoints lie in lower buckets
};
constexpr int kNf4Buckets = 33;

// Non-decreasing in `normalized`, infinities and out-of-range values included (the saturation clamps
// them to [0, 1], a NaN to 0); build_tables places each midpoint with this same function, which is
// what makes "the midpoints of lower buckets are below every value of this bucket" hold exactly.
__device__ __forceinline__ uint32_t nf4_bucket(float normalized) {
    const float unit = __saturatef(__fmaf_rn(normalized, 0.5f, 0.5f));
    // Adding 1.5 * 2^23 rounds unit * 32 to a whole number and leaves it in the low mantissa bits.
    return __float_as_uint(__fmaf_rn(unit, 32.0f, 12582912.0f)) - 0x4B400000u;
}

__device__ __forceinline__ uint32_t nf4_code(float normalized, const Nf4Bucket* buckets) {
    const Nf4Bucket b = buckets[nf4_bucket(normalized)];
    return b.below + (normalized > b.midpoint ? 1u : 0u);
}

// A format reads one of the tables, so they share their space. The buckets are not appended after the
// other tables: a larger shared footprint slowed every format of grey_quant_blocks down, for a cause not
// found (bench/RESULTS.md, "CUDA kernel design").
struct Tables {
    union {
        float fp8[256];
        struct {
            float levels[16];  // in shared memory: the constant cache serialises lanes that read different codes
            Nf4Bucket buckets[kNf4Buckets];
        } nf4;
    };
};

// Which tables a kernel reads. Each kernel builds only those: the bucket loop alone raises the
// dequantizers' register count, and a table build is paid by every block of a spread grid.
enum : unsigned { kEncodeTables = 1, kDecodeTables = 2 };

// Every thread of the block must call this (it synchronises the block).
__device__ void build_tables(int format, unsigned uses, Tables& t) {
    const bool fp8_values = is_fp8(format) && (uses & kDecodeTables);
    const bool nf4_levels = format == kNf4 && (uses & kDecodeTables);
    const bool nf4_buckets = format == kNf4 && (uses & kEncodeTables);
    // Most formats read no table: they skip the barrier too (safe, since the whole block has one format).
    if (!fp8_values && !nf4_levels && !nf4_buckets) return;
    if (fp8_values)
        for (uint32_t c = threadIdx.x; c < 256; c += blockDim.x) t.fp8[c] = fp8_to_f32(c, format);
    if (nf4_levels)
        for (uint32_t k = threadIdx.x; k < 16; k += blockDim.x) t.nf4.levels[k] = grey::common::kNf4Levels[k];
    if (nf4_buckets)
        for (uint32_t k = threadIdx.x; k < kNf4Buckets; k += blockDim.x) {
            Nf4Bucket b{INFINITY, 0};
#pragma unroll 1
            for (int m = 0; m < 15; ++m) {
                const float midpoint = grey::common::nf4_midpoint(grey::common::kNf4Levels[m], grey::common::kNf4Levels[m + 1]);
                const uint32_t bucket = nf4_bucket(midpoint);
                if (bucket < k) ++b.below;
                if (bucket == k) b.midpoint = midpoint;
            }
            t.nf4.buckets[k] = b;
        }
    __syncthreads();
}

}  // namespace
