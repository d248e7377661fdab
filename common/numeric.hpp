// Scalar conversions between float32 and the narrow float types libgrey stores (fp16, bf16, fp8 e4m3 and
// e5m2), and the NF4 code book: written once for the host and the CUDA kernels, so that every backend
// computes exactly the same bits as the host reference. On the device, fp16 (and fp8 from sm_89 on) use
// the hardware conversion where it rounds and saturates as the rule below does, with the NaN corners
// patched; everything else is the same source on both sides.
#pragma once

#include "common/hostdevice.h"

#if !defined(__OPENCL_CPP_VERSION__)  // OpenCL has its own math built in (common/hostdevice.h)
#include <math.h>
#include <stdint.h>

#include <bit>
#include <cmath>
#endif

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#endif

#include "grey.h"

namespace grey::common {

GREY_FN_FORCE uint32_t float_bits(float value) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(value);
#elif defined(__OPENCL_CPP_VERSION__)
    return as_uint(value);
#else
    return std::bit_cast<uint32_t>(value);
#endif
}

GREY_FN_FORCE float bits_float(uint32_t bits) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(bits);
#elif defined(__OPENCL_CPP_VERSION__)
    return as_float(bits);
#else
    return std::bit_cast<float>(bits);
#endif
}

// float32 -> IEEE binary16, round to nearest even, overflow to infinity, NaN kept quiet with its sign
// (0x7E00). The host's is the branch-light formulation ggml and the FP16 library use; it gives the same
// bits as F16C's vcvtps2ph with _MM_FROUND_TO_NEAREST_INT and as numpy's astype(float16). The device's
// hardware conversion (cvt.rn.f16.f32) follows the same rule for every non-NaN input; a NaN would come
// out as 0x7FFF, so it is patched.
GREY_FN_FORCE uint16_t f32_to_f16(float value) {
#if defined(__CUDA_ARCH__)
    if (isnan(value)) return static_cast<uint16_t>(((__float_as_uint(value) >> 16) & 0x8000u) | 0x7E00u);
    return __half_as_ushort(__float2half_rn(value));
#else
    const float scale_to_inf = 0x1.0p+112f;
    const float scale_to_zero = 0x1.0p-110f;
    float base = (fabsf(value) * scale_to_inf) * scale_to_zero;
    const uint32_t w = float_bits(value);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = bits_float((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = float_bits(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
#endif
}

// False for the fp16 infinities and NaNs (of the low 16 bits): a scale that overflowed in f32_to_f16.
GREY_FN_FORCE constexpr bool f16_is_finite(uint32_t bits) { return (bits & 0x7C00u) != 0x7C00u; }

// IEEE binary16 (the low 16 bits of `bits`) -> float32, exact for every input, subnormals included.
GREY_FN_FORCE float f16_to_f32(uint32_t bits) {
#if defined(__CUDA_ARCH__)
    return __half2float(__ushort_as_half(static_cast<unsigned short>(bits)));
#else
    const uint32_t w = bits << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    const float normalized = bits_float((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    const float denormalized = bits_float((two_w >> 17) | (126u << 23)) - 0.5f;
    const uint32_t result = sign | (two_w < (1u << 27) ? float_bits(denormalized) : float_bits(normalized));
    return bits_float(result);
#endif
}

// bfloat16 (the low 16 bits of `value`) -> float32: exact.
GREY_FN_FORCE float bf16_to_f32(uint32_t value) { return bits_float(value << 16); }

// float32 -> bfloat16, round to nearest even (as PyTorch and ggml do), NaN kept quiet.
GREY_FN_FORCE uint16_t f32_to_bf16(float value) {
    const uint32_t bits = float_bits(value);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
    return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

// The two OCP 8-bit float formats, named by their grey_quant_format. E4M3 is the "fn" variant (no
// infinities, 0x7F/0xFF are NaN, largest finite 448); E5M2 follows IEEE (largest finite 57344).
struct Fp8Traits {
    int mantissa_bits;
    int exponent_bias;
    uint32_t max_finite_code;  // without the sign bit
    uint32_t nan_code;
    float max_finite;
};

GREY_FN_FORCE Fp8Traits fp8_traits(int format) {
    return format == GREY_QUANT_FP8_E4M3 ? Fp8Traits{3, 7, 0x7E, 0x7F, 448.0f} : Fp8Traits{2, 15, 0x7B, 0x7E, 57344.0f};
}

// sm_89 and later convert between fp8 and wider floats in hardware (cvt with e4m3 / e5m2).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
inline constexpr bool kHardwareFp8 = true;
#else
inline constexpr bool kHardwareFp8 = false;
#endif

// float32 -> fp8 code (in the low 8 bits) of `format` (GREY_QUANT_FP8_E4M3 or _E5M2), round to nearest
// even, saturating to the largest finite value (a scaled quantizer never wants an infinity), NaN to NaN
// with its sign. The hardware conversion (cvt.rn.satfinite) follows the same rule for every non-NaN
// input, infinities included, so it is taken for those where the GPU has it.
GREY_FN uint32_t f32_to_fp8(float value, int format) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
    if (!isnan(value)) return __nv_cvt_float_to_fp8(value, __NV_SATFINITE, format == GREY_QUANT_FP8_E4M3 ? __NV_E4M3 : __NV_E5M2);
#endif
    const Fp8Traits t = fp8_traits(format);
    const uint32_t sign = signbit(value) ? 0x80u : 0x00u;
    if (isnan(value)) return sign | t.nan_code;
    const float magnitude = fabsf(value);
    if (magnitude >= t.max_finite) return sign | t.max_finite_code;
    const int min_normal_exponent = 1 - t.exponent_bias;
    int exponent = 0;
    frexpf(magnitude, &exponent);
    exponent -= 1;  // magnitude = 1.m * 2^exponent
    if (magnitude == 0.0f || exponent < min_normal_exponent) {
        // Subnormal: a multiple of 2^(min_normal_exponent - mantissa_bits). Rounding may carry into the
        // smallest normal, whose code is the next integer, so the encoding stays right.
        const float steps = nearbyintf(ldexpf(magnitude, t.mantissa_bits - min_normal_exponent));
        return sign | static_cast<uint32_t>(steps);
    }
    float mantissa = sub_rn(nearbyintf(ldexpf(magnitude, t.mantissa_bits - exponent)), ldexpf(1.0f, t.mantissa_bits));
    if (mantissa >= ldexpf(1.0f, t.mantissa_bits)) {
        mantissa = 0.0f;
        exponent += 1;
    }
    const uint32_t code = (static_cast<uint32_t>(exponent + t.exponent_bias) << t.mantissa_bits) | static_cast<uint32_t>(mantissa);
    return sign | (code > t.max_finite_code ? t.max_finite_code : code);
}

// The value of fp8 code `code` (its low 8 bits) of `format`; NaN codes give the quiet NaN 0x7FC00000.
GREY_FN float fp8_to_f32(uint32_t code, int format) {
    const Fp8Traits t = fp8_traits(format);
    const float sign = (code & 0x80u) ? -1.0f : 1.0f;
    const uint32_t magnitude = code & 0x7Fu;
    const uint32_t exponent_field = magnitude >> t.mantissa_bits;
    const uint32_t mantissa = magnitude & ((1u << t.mantissa_bits) - 1u);
    if (format == GREY_QUANT_FP8_E4M3 && magnitude == 0x7F) return bits_float(0x7FC00000u);
    if (format == GREY_QUANT_FP8_E5M2 && exponent_field == 31)
        return mantissa == 0 ? mul_rn(sign, bits_float(0x7F800000u)) : bits_float(0x7FC00000u);
    if (exponent_field == 0) return mul_rn(sign, ldexpf(static_cast<float>(mantissa), 1 - t.exponent_bias - t.mantissa_bits));
    return mul_rn(sign, ldexpf(add_rn(1.0f, ldexpf(static_cast<float>(mantissa), -t.mantissa_bits)),
                               static_cast<int>(exponent_field) - t.exponent_bias));
}

// NF4 (QLoRA, Dettmers et al. 2023): the 16 quantiles of a standard normal, scaled to [-1, 1], exactly as
// bitsandbytes stores them.
GREY_TABLE(float, kNf4Levels, 16) = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
    0.7229568362236023f, 1.0f};

// The decision point between two neighbouring NF4 levels: an element above it takes the upper code.
// The device reads the levels from constant memory, the host from the array above; both pass them here.
GREY_FN_FORCE float nf4_midpoint(float lower, float upper) { return mul_rn(0.5f, add_rn(lower, upper)); }

#if !defined(__CUDACC__)
// The NF4 code nearest to `normalized` (in [-1, 1]) by a scan of the midpoints; ties go to the lower
// code, a NaN to code 0. The reference the GPU's bucketed search (kernels/cuda/quant_tables.cuh) equals.
inline uint32_t nf4_code(float normalized) {
    uint32_t code = 0;
    for (int c = 1; c < 16; ++c)
        if (normalized > nf4_midpoint(kNf4Levels[c - 1], kNf4Levels[c])) code = static_cast<uint32_t>(c);
    return code;
}
#endif

}  // namespace grey::common
