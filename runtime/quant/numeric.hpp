// Scalar conversions between float32 and the narrow float types libgrey stores (fp16, bf16, fp8 e4m3 and
// e5m2) plus the NF4 code book. Header-only and free of runtime dependencies, so that every backend (and
// a GPU backend's host-side tests) computes exactly the same bits as the host reference.
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

namespace grey::quant {

// float32 -> IEEE binary16, round to nearest even, overflow to infinity, NaN kept quiet. This is the
// branch-light formulation ggml and the FP16 library use; it gives the same bits as F16C's
// vcvtps2ph with _MM_FROUND_TO_NEAREST_INT and as numpy's astype(float16).
inline uint16_t f32_to_f16(float value) noexcept {
    const float scale_to_inf = 0x1.0p+112f;
    const float scale_to_zero = 0x1.0p-110f;
    float base = (std::fabs(value) * scale_to_inf) * scale_to_zero;
    const uint32_t w = std::bit_cast<uint32_t>(value);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = std::bit_cast<float>((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = std::bit_cast<uint32_t>(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

// False for the fp16 infinities and NaNs: a scale that overflowed in f32_to_f16.
constexpr bool f16_is_finite(uint16_t half) noexcept { return (half & 0x7C00u) != 0x7C00u; }

// IEEE binary16 -> float32, exact for every input (subnormals included).
inline float f16_to_f32(uint16_t half) noexcept {
    const uint32_t w = static_cast<uint32_t>(half) << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    const float normalized = std::bit_cast<float>((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    const float denormalized = std::bit_cast<float>((two_w >> 17) | (126u << 23)) - 0.5f;
    const uint32_t result = sign | (two_w < (1u << 27) ? std::bit_cast<uint32_t>(denormalized) : std::bit_cast<uint32_t>(normalized));
    return std::bit_cast<float>(result);
}

inline float bf16_to_f32(uint16_t value) noexcept { return std::bit_cast<float>(static_cast<uint32_t>(value) << 16); }

// float32 -> bfloat16, round to nearest even (as PyTorch and ggml do), NaN kept quiet.
inline uint16_t f32_to_bf16(float value) noexcept {
    const uint32_t bits = std::bit_cast<uint32_t>(value);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
    return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

// The two OCP 8-bit float formats. E4M3 is the "fn" variant (no infinities, 0x7F/0xFF are NaN,
// largest finite 448); E5M2 follows IEEE (largest finite 57344).
enum class Fp8Kind { e4m3, e5m2 };

struct Fp8Traits {
    int mantissa_bits;
    int exponent_bias;
    uint8_t max_finite_code;  // without the sign bit
    uint8_t nan_code;
    float max_finite;
};

constexpr Fp8Traits fp8_traits(Fp8Kind kind) noexcept {
    return kind == Fp8Kind::e4m3 ? Fp8Traits{3, 7, 0x7E, 0x7F, 448.0f} : Fp8Traits{2, 15, 0x7B, 0x7E, 57344.0f};
}

// float32 -> fp8, round to nearest even, saturating to the largest finite value (a scaled quantizer
// never wants an infinity), NaN to NaN.
inline uint8_t f32_to_fp8(float value, Fp8Kind kind) noexcept {
    const Fp8Traits t = fp8_traits(kind);
    const uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
    if (std::isnan(value)) return static_cast<uint8_t>(sign | t.nan_code);
    const float magnitude = std::fabs(value);
    if (magnitude >= t.max_finite) return static_cast<uint8_t>(sign | t.max_finite_code);
    const int min_normal_exponent = 1 - t.exponent_bias;
    int exponent = 0;
    std::frexp(magnitude, &exponent);
    exponent -= 1;  // magnitude = 1.m * 2^exponent
    if (magnitude == 0.0f || exponent < min_normal_exponent) {
        // Subnormal: a multiple of 2^(min_normal_exponent - mantissa_bits). Rounding may carry into the
        // smallest normal, whose code is the next integer, so the encoding stays right.
        const float steps = std::nearbyint(std::ldexp(magnitude, t.mantissa_bits - min_normal_exponent));
        return static_cast<uint8_t>(sign | static_cast<uint8_t>(steps));
    }
    float mantissa = std::nearbyint(std::ldexp(magnitude, t.mantissa_bits - exponent)) - std::ldexp(1.0f, t.mantissa_bits);
    if (mantissa >= std::ldexp(1.0f, t.mantissa_bits)) {
        mantissa = 0.0f;
        exponent += 1;
    }
    const unsigned code = (static_cast<unsigned>(exponent + t.exponent_bias) << t.mantissa_bits) | static_cast<unsigned>(mantissa);
    return static_cast<uint8_t>(sign | (code > t.max_finite_code ? t.max_finite_code : code));
}

inline float fp8_to_f32(uint8_t code, Fp8Kind kind) noexcept {
    const Fp8Traits t = fp8_traits(kind);
    const float sign = (code & 0x80) ? -1.0f : 1.0f;
    const unsigned magnitude = code & 0x7Fu;
    const unsigned exponent_field = magnitude >> t.mantissa_bits;
    const unsigned mantissa = magnitude & ((1u << t.mantissa_bits) - 1u);
    if (kind == Fp8Kind::e4m3 && magnitude == 0x7F) return std::nanf("");
    if (kind == Fp8Kind::e5m2 && exponent_field == 31) return mantissa == 0 ? sign * INFINITY : std::nanf("");
    if (exponent_field == 0) return sign * std::ldexp(static_cast<float>(mantissa), 1 - t.exponent_bias - t.mantissa_bits);
    return sign * std::ldexp(1.0f + std::ldexp(static_cast<float>(mantissa), -t.mantissa_bits),
                             static_cast<int>(exponent_field) - t.exponent_bias);
}

// Every fp8 code's value, for table-driven dequantization.
inline std::array<float, 256> fp8_table(Fp8Kind kind) noexcept {
    std::array<float, 256> table{};
    for (unsigned c = 0; c < 256; ++c) table[c] = fp8_to_f32(static_cast<uint8_t>(c), kind);
    return table;
}

// NF4 (QLoRA, Dettmers et al. 2023): the 16 quantiles of a standard normal, scaled to [-1, 1], exactly as
// bitsandbytes stores them.
inline constexpr std::array<float, 16> kNf4Levels = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
    0.7229568362236023f, 1.0f};

// The NF4 code nearest to `normalized` (in [-1, 1]); ties go to the lower code.
inline uint8_t nf4_code(float normalized) noexcept {
    uint8_t code = 0;
    for (uint8_t c = 1; c < 16; ++c) {
        const float midpoint = 0.5f * (kNf4Levels[c - 1] + kNf4Levels[c]);
        if (normalized > midpoint) code = c;
    }
    return code;
}

}  // namespace grey::quant
