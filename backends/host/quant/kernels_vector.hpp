// Constants the vector kernels share (AVX2 and AVX-512 compute the same things on wider registers),
// derived from common/numeric.hpp's definitions so that nothing is written twice.
//
// fp8 on the bits: a magnitude at or above the smallest normal rounds to nearest even on its float32
// bits (add half an fp8 step minus one, plus the last kept bit, then drop the bits fp8 has no room for);
// its exponent is then rebased from float32's bias to fp8's, and a carry out of the mantissa moves to
// the next binade by itself. Below the smallest normal the code is the number of subnormal steps,
// rounded to nearest even (the conversion's default rounding). Codes above the largest finite one
// saturate to it (infinity included); a NaN takes the NaN code; the sign bit is put back last.
#pragma once

#include "common/numeric.hpp"
#include "grey.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <type_traits>

namespace grey::host::quant {

// The formats the fused group kernels (Kernels::quantize_groups and dequantize_groups) take, made a
// compile-time constant: body(std::integral_constant<int, format>{}). One list for every instruction set.
template <class Body>
decltype(auto) with_group_format(int format, Body&& body) {
    switch (format) {
        case GREY_QUANT_INT4: return body(std::integral_constant<int, GREY_QUANT_INT4>{});
        case GREY_QUANT_INT4_SYM: return body(std::integral_constant<int, GREY_QUANT_INT4_SYM>{});
        case GREY_QUANT_NF4: return body(std::integral_constant<int, GREY_QUANT_NF4>{});
        case GREY_QUANT_Q8_0: return body(std::integral_constant<int, GREY_QUANT_Q8_0>{});
        case GREY_QUANT_Q4_0: return body(std::integral_constant<int, GREY_QUANT_Q4_0>{});
        case GREY_QUANT_Q4_1: return body(std::integral_constant<int, GREY_QUANT_Q4_1>{});
        default: std::abort();  // the quantizer offers these kernels only these formats
    }
}

// roundf(v) = trunc(v + copysign(kHalfBelow, v)), kHalfBelow the largest float below 0.5: where the
// fraction is below a half the sum stays below the next integer (it is at least one ulp of v plus
// 2^-25 short of it, more than half an ulp of the sum); where it is a half or more the sum rounds up to
// it or past it. Checked against roundf for every float32 but the NaNs (whose codes are 0 anyway).
inline constexpr float kHalfBelow = 0x1.fffffep-2f;

struct Fp8Encoding {
    int dropped_bits;       // float32 mantissa bits fp8 drops
    int32_t round_bias;     // half a step minus one
    int32_t rebias;         // (127 - fp8 bias) << mantissa bits
    float min_normal;       // the smallest normal magnitude
    float subnormal_scale;  // magnitude * this = subnormal steps
    int32_t max_code;
    int32_t nan_code;
};

inline Fp8Encoding fp8_encoding(int format) {
    const grey::common::Fp8Traits t = grey::common::fp8_traits(format);
    const int dropped = 23 - t.mantissa_bits;
    return {dropped,
            (int32_t{1} << (dropped - 1)) - 1,
            (127 - t.exponent_bias) << t.mantissa_bits,
            std::ldexp(1.0f, 1 - t.exponent_bias),
            std::ldexp(1.0f, t.mantissa_bits - (1 - t.exponent_bias)),
            static_cast<int32_t>(t.max_finite_code),
            static_cast<int32_t>(t.nan_code)};
}

// fp8 decoding on the bits: a normal code's exponent and mantissa shift into float32's places and the
// exponent is rebased; a subnormal is its mantissa times the smallest step; e5m2's infinity keeps its
// sign; NaN codes give the quiet NaN 0x7FC00000 (fp8_to_f32's); the sign bit is put back last.
struct Fp8Decoding {
    int shift;               // mantissa bits float32 has beyond fp8's
    int32_t rebias;          // (127 - fp8 bias) << 23
    float subnormal_step;    // 2^(1 - bias - mantissa bits)
    int32_t infinity_code;   // e5m2's magnitude 0x7C; 0x100 (never) for e4m3
    int32_t first_nan_code;  // magnitudes from here on are NaN
};

inline Fp8Decoding fp8_decoding(int format) {
    const grey::common::Fp8Traits t = grey::common::fp8_traits(format);
    const bool e4m3 = format == GREY_QUANT_FP8_E4M3;
    return {23 - t.mantissa_bits, (127 - t.exponent_bias) << 23, std::ldexp(1.0f, 1 - t.exponent_bias - t.mantissa_bits),
            e4m3 ? 0x100 : 0x7C, e4m3 ? 0x7F : 0x7D};
}

// The 15 decision points between neighbouring NF4 levels, as nf4_code compares with them.
struct Nf4Midpoints {
    std::array<float, 15> values;
};

inline const Nf4Midpoints& nf4_midpoints() {
    static const Nf4Midpoints m = [] {
        Nf4Midpoints r{};
        for (int c = 1; c < 16; ++c) r.values[c - 1] = grey::common::nf4_midpoint(grey::common::kNf4Levels[c - 1], grey::common::kNf4Levels[c]);
        return r;
    }();
    return m;
}

// NF4's midpoints placed in 32 buckets of the normalized value v (its place in fma(v, 16, 16), clamped to
// [0, 31] with a NaN at 0, truncated): non-decreasing in v, and at most one midpoint a bucket for these
// levels. A vector path then codes v with one table read and one comparison (`below` of its bucket, plus
// one if v lies above the bucket's midpoint), where a search over the midpoints takes four dependent
// ones; the comparison is made on v itself, so the codes are nf4_code's. The GPU's encoder does the same
// (kernels/cuda/quant_tables.cuh).
struct Nf4Buckets {
    std::array<float, 32> midpoint;  // the midpoint inside the bucket, or +inf where there is none
    std::array<int32_t, 32> below;   // how many midpoints lie in lower buckets
    bool exact = true;               // false if a bucket held two midpoints: the table cannot be used
};

inline int32_t nf4_bucket(float v) {
    const float t = std::fmaf(v, 16.0f, 16.0f);
    return std::isnan(t) ? 0 : static_cast<int32_t>(std::clamp(t, 0.0f, 31.0f));
}

inline const Nf4Buckets& nf4_buckets() {
    static const Nf4Buckets table = [] {
        Nf4Buckets b{};
        b.midpoint.fill(std::numeric_limits<float>::infinity());
        for (const float m : nf4_midpoints().values) {
            const int32_t k = nf4_bucket(m);
            if (b.midpoint[k] != std::numeric_limits<float>::infinity()) b.exact = false;
            b.midpoint[k] = m;
            for (int32_t above = k + 1; above < 32; ++above) ++b.below[above];
        }
        return b;
    }();
    return table;
}

}  // namespace grey::host::quant
