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

#include <array>
#include <cmath>
#include <cstdint>

namespace grey::host::quant {

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

}  // namespace grey::host::quant
