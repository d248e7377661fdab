// The quantization coding rules, written once for the host reference (backends/host/quant) and the CUDA
// kernels (kernels/cuda): which formats share which traits, how a scale group's statistics become its
// stored parameters (make_coding), the MSE clipping grid, INT4's least-squares refit, and the float64
// error sums. Both sides include this file; neither keeps a copy of any rule in it. The element loops
// around these rules differ (SIMD on the host, warps on the GPU) and are checked against each other by
// the conformance programs (tests/gpu).
#pragma once

#include "common/hostdevice.h"
#include "common/numeric.hpp"

#include <stdint.h>

#include "grey.h"

namespace grey::common {

// ------------------------------------------------------------------------------------------------
// Format traits. `format` is a grey_quant_format value.

GREY_FN_FORCE constexpr bool is_fp8(int format) { return format == GREY_QUANT_FP8_E4M3 || format == GREY_QUANT_FP8_E5M2; }
// llama.cpp's block formats: blocks of 32 elements, each with its parameters inline.
GREY_FN_FORCE constexpr bool is_ggml(int format) { return format == GREY_QUANT_Q8_0 || format == GREY_QUANT_Q4_0 || format == GREY_QUANT_Q4_1; }
GREY_FN_FORCE constexpr bool is_four_bit(int format) {
    return format == GREY_QUANT_INT4 || format == GREY_QUANT_INT4_SYM || format == GREY_QUANT_NF4 || format == GREY_QUANT_Q4_0 ||
           format == GREY_QUANT_Q4_1;
}
// The asymmetric formats (INT4, Q4_1): each group stores a minimum beside its scale, both chosen from
// the group's minimum and maximum.
GREY_FN_FORCE constexpr bool stores_minimum(int format) { return format == GREY_QUANT_INT4 || format == GREY_QUANT_Q4_1; }
// ggml's Q4_0 and Q4_1 round by adding 8.5 or 0.5 and truncating; every other integer format rounds
// to nearest, halves away from zero.
GREY_FN_FORCE constexpr bool truncates(int format) { return format == GREY_QUANT_Q4_0 || format == GREY_QUANT_Q4_1; }

// Elements in a ggml block, and the bytes of a block (its header, then its codes) for Q8_0, Q4_0 and Q4_1.
inline constexpr uint32_t kGgmlBlockElements = 32;
inline constexpr uint32_t kQ8_0BlockBytes = 34;  // fp16 scale, 32 int8 codes
inline constexpr uint32_t kQ4_0BlockBytes = 18;  // fp16 scale, 16 bytes of nibbles
inline constexpr uint32_t kQ4_1BlockBytes = 20;  // fp16 scale, fp16 minimum, 16 bytes of nibbles

// The bytes of a block of `format`, and of its header. Not constexpr on purpose: nvcc schedules the
// fast dequantization kernel differently when these fold in its front end, and the kernels are kept
// instruction for instruction as measured (bench/RESULTS.md); the constants above serve constant
// expressions.
GREY_FN_FORCE uint64_t ggml_block_bytes(int format) {
    return format == GREY_QUANT_Q8_0 ? kQ8_0BlockBytes : format == GREY_QUANT_Q4_0 ? kQ4_0BlockBytes : kQ4_1BlockBytes;
}
GREY_FN_FORCE uint64_t ggml_header_bytes(int format) { return format == GREY_QUANT_Q4_1 ? 4 : 2; }

// ------------------------------------------------------------------------------------------------
// Parameter sets.

// What the parameter choice needs to know about the elements sharing one parameter set.
struct Stats {
    float absmax;
    float min;
    float max;
    float peak;  // Q4_0: the first element whose magnitude is absmax, with its sign
};

// One scale group's parameters made concrete. Integer formats encode q = clamp(round((x - e_sub) * e_mul
// + e_add), lo, hi) (truncating where truncates(format)) and decode y = (q - d_sub) * d_mul + d_add; fp8
// and NF4 encode x * e_mul (e_mul = 1/scale) and decode through their tables times `scale`. A plain
// struct: the CUDA kernels keep arrays of it in device memory.
struct Coding {
    float e_sub, e_mul, e_add;
    int32_t lo, hi;
    float d_sub, d_mul, d_add;
    float scale;       // fp32 scale (INT8, FP8), NF4's absmax
    uint32_t scale16;  // fp16 bits of the stored scale (INT4, INT4_SYM, Q formats)
    uint32_t min16;    // fp16 bits of the stored min (INT4, Q4_1)
};

// The encoders' multiplier 1/d. A scale so small that its reciprocal overflows (a group whose values all
// lie below about 1e-36) gives 0, which encodes the group as zeros, an error below that size; an
// infinite multiplier would make NaN codes of its zeros (fp8) and saturate every other element. The
// device's __frcp_rn is the correctly rounded 1/d, so it equals the host's IEEE division bit for bit.
GREY_FN_FORCE float inverse(float d) {
#if defined(__CUDA_ARCH__)
    const float r = d != 0.0f ? __frcp_rn(d) : 0.0f;
#else
    const float r = d != 0.0f ? 1.0f / d : 0.0f;
#endif
    return isinf(r) ? 0.0f : r;
}

// The parameter set for `s` with the range shrunk to `alpha` of its extent (1 = round to nearest from the
// absolute maximum). For Q8_0/Q4_0/Q4_1 at alpha 1 this is ggml's quantize_row_*_ref step for step: the
// unrounded scale encodes, the fp16-rounded one is stored. INT4 encodes against the stored (fp16) min and
// scale, so that decoding sees what encoding saw. Formats outside grey_quant_format are treated as Q4_1:
// the caller has checked the format.
GREY_FN Coding make_coding(int format, const Stats& s, float alpha) {
    Coding c{};
    switch (format) {
        case GREY_QUANT_INT8: case GREY_QUANT_INT8_TOKEN:
            c.scale = div_rn(mul_rn(s.absmax, alpha), 127.0f);
            c.e_mul = inverse(c.scale); c.lo = -127; c.hi = 127;
            c.d_mul = c.scale;
            break;
        case GREY_QUANT_INT4_SYM: {
            c.scale16 = f32_to_f16(div_rn(mul_rn(s.absmax, alpha), 7.0f));
            const float d = f16_to_f32(c.scale16);
            c.e_mul = inverse(d); c.lo = -8; c.hi = 7;
            c.d_mul = d;
            break;
        }
        case GREY_QUANT_INT4: {
            c.min16 = f32_to_f16(mul_rn(s.min, alpha));
            const float m = f16_to_f32(c.min16);
            c.scale16 = f32_to_f16(div_rn(sub_rn(mul_rn(s.max, alpha), m), 15.0f));
            const float d = f16_to_f32(c.scale16);
            c.e_sub = m; c.e_mul = inverse(d); c.lo = 0; c.hi = 15;
            c.d_mul = d; c.d_add = m;
            break;
        }
        case GREY_QUANT_FP8_E4M3: case GREY_QUANT_FP8_E5M2:
            c.scale = div_rn(mul_rn(s.absmax, alpha), fp8_traits(format).max_finite);
            c.e_mul = inverse(c.scale);
            break;
        case GREY_QUANT_NF4:
            c.scale = mul_rn(s.absmax, alpha);
            c.e_mul = inverse(c.scale);
            break;
        case GREY_QUANT_Q8_0: {
            const float d = div_rn(mul_rn(s.absmax, alpha), 127.0f);
            c.scale16 = f32_to_f16(d);
            c.e_mul = inverse(d); c.lo = -128; c.hi = 127;
            c.d_mul = f16_to_f32(c.scale16);
            break;
        }
        case GREY_QUANT_Q4_0: {
            const float d = div_rn(mul_rn(s.peak, alpha), -8.0f);
            c.scale16 = f32_to_f16(d);
            c.e_mul = inverse(d); c.e_add = 8.5f; c.lo = 0; c.hi = 15;
            c.d_sub = 8.0f; c.d_mul = f16_to_f32(c.scale16);
            break;
        }
        default: {  // GREY_QUANT_Q4_1
            const float lo = mul_rn(s.min, alpha), hi = mul_rn(s.max, alpha);
            const float d = div_rn(sub_rn(hi, lo), 15.0f);
            c.scale16 = f32_to_f16(d);
            c.min16 = f32_to_f16(lo);
            c.e_sub = lo; c.e_mul = inverse(d); c.e_add = 0.5f; c.lo = 0; c.hi = 15;
            c.d_mul = f16_to_f32(c.scale16); c.d_add = f16_to_f32(c.min16);
            break;
        }
    }
    return c;
}

// An infinite (or NaN) fp16 scale or minimum, all exponent bits set: the group's values are too large
// for the format (the formats with fp32 scales leave both at 0). The refusal's words are f16_overflow_message (common/quant_text.hpp).
GREY_FN_FORCE bool overflows(const Coding& c) { return (c.scale16 & 0x7C00u) == 0x7C00u || (c.min16 & 0x7C00u) == 0x7C00u; }

// ------------------------------------------------------------------------------------------------
// MSE calibration.

// The clipping fractions the search tries are clip_alpha(format, 0 .. clip_steps(format)), largest first
// (ties keep the larger range): down to half the range in steps of 2% at 4 bits, down to 90% in steps of
// 0.5% at 8 bits, where the rounding error is small and only a light clip can pay for itself.
GREY_FN int clip_steps(int format) { return is_four_bit(format) ? 25 : 20; }
GREY_FN float clip_alpha(int format, int i) {
    const float step = is_four_bit(format) ? 0.02f : 0.005f;
    return sub_rn(1.0f, mul_rn(step, static_cast<float>(i)));
}

// (x - y)^2 in float64: the error of one element, as the search and the report sum it.
GREY_FN_FORCE double squared_error(float x, float y) {
    const double e = dsub_rn(static_cast<double>(x), static_cast<double>(y));
    return dmul_rn(e, e);
}

// INT4 (asymmetric) coding with a given scale and min, rounded to the fp16 values that are stored.
GREY_FN Coding int4_coding(float scale, float min) {
    Coding c{};
    c.scale16 = f32_to_f16(scale);
    c.min16 = f32_to_f16(min);
    const float d = f16_to_f32(c.scale16), m = f16_to_f32(c.min16);
    c.e_sub = m; c.e_mul = inverse(d); c.lo = 0; c.hi = 15;
    c.d_mul = d; c.d_add = m;
    return c;
}

// For one INT4 group whose codes q are fixed, the scale and min that minimise the squared error are a
// least-squares line fit of x against q, from the sums over the group's elements (in element order)
// sq = sum q, sx = sum x, sqq = sum q^2 and sqx = sum q x, all in float64. Each side keeps its own loop
// over the elements; the formulas are these. The denominator is n sqq - sq^2: at most 0 when every
// code was equal, and then there is nothing to fit.
GREY_FN_FORCE double int4_fit_denominator(double n, double sq, double sqq) { return dsub_rn(dmul_rn(n, sqq), dmul_rn(sq, sq)); }

// The fitted coding, for a positive `denominator`.
GREY_FN_FORCE Coding fit_int4(double n, double sq, double sx, double sqx, double denominator) {
    const double scale = ddiv_rn(dsub_rn(dmul_rn(n, sqx), dmul_rn(sq, sx)), denominator);
    const double min = ddiv_rn(dsub_rn(sx, dmul_rn(scale, sq)), n);
    return int4_coding(static_cast<float>(scale), static_cast<float>(min));
}

// The INT4 refit keeps going while it helps, at most this many times.
inline constexpr int kInt4RefitIterations = 4;

}  // namespace grey::common
