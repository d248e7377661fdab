#include "host/quant/kernels.hpp"

#include "common/numeric.hpp"
#include "common/quant_error.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace grey::host::quant {
namespace {

float absmax(const float* x, std::size_t n) {
    float m = 0.0f;
    for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
    return m;
}

void minmax(const float* x, std::size_t n, float* out_min, float* out_max) {
    float lo = INFINITY, hi = -INFINITY;
    for (std::size_t i = 0; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    *out_min = lo;
    *out_max = hi;
}

void encode(const float* x, std::size_t n, const EncodeSpec& spec, int8_t* out) {
    const float lo = static_cast<float>(spec.lo), hi = static_cast<float>(spec.hi);
    for (std::size_t i = 0; i < n; ++i) {
        const float scaled = (x[i] - spec.subtract) * spec.multiply;
        const float v = scaled + spec.add;
        const float r = spec.rounding == Rounding::nearest_away ? std::round(v) : std::trunc(v);
        // A NaN product codes 0, as the CUDA conversion gives. Finite input meets one only while the MSE
        // search tries a group too large for fp16 (an infinite difference times a zero multiplier).
        out[i] = std::isnan(r) ? int8_t{0} : static_cast<int8_t>(std::clamp(r, lo, hi));
    }
}

void decode(const int8_t* q, std::size_t n, const DecodeSpec& spec, float* out) {
    for (std::size_t i = 0; i < n; ++i) {
        const float scaled = (static_cast<float>(q[i]) - spec.subtract) * spec.multiply;
        out[i] = scaled + spec.add;
    }
}

void decode_table(const uint8_t* codes, std::size_t n, const float* table, float scale, float* out) {
    for (std::size_t i = 0; i < n; ++i) out[i] = table[codes[i]] * scale;
}

void f16_to_f32(const uint16_t* in, std::size_t n, float* out) {
    for (std::size_t i = 0; i < n; ++i) out[i] = grey::common::f16_to_f32(in[i]);
}

void decode_fp8(const uint8_t* codes, std::size_t n, const float* table, int, float scale, float* out) {
    for (std::size_t i = 0; i < n; ++i) {
        const float v = table[codes[i]];
        out[i] = std::isnan(v) ? v : v * scale;  // a NaN code's NaN whatever the scale (kernels.hpp)
    }
}

void encode_fp8(const float* x, std::size_t n, float inverse, int format, int8_t* out) {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<int8_t>(grey::common::f32_to_fp8(x[i] * inverse, format));
}

void encode_nf4(const float* x, std::size_t n, float inverse, int8_t* out) {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<int8_t>(grey::common::nf4_code(x[i] * inverse));
}

void pack_ggml_nibbles(const int8_t* codes, std::size_t blocks, uint8_t* out, std::size_t stride) {
    for (std::size_t b = 0; b < blocks; ++b, codes += 32, out += stride)
        for (int j = 0; j < 16; ++j) out[j] = static_cast<uint8_t>((codes[j] & 0x0F) | ((codes[j + 16] & 0x0F) << 4));
}

void pack_nibble_pairs(const int8_t* codes, std::size_t n, int bias, uint8_t* out) {
    const std::size_t pairs = n / 2;
    for (std::size_t i = 0; i < pairs; ++i)
        out[i] = static_cast<uint8_t>(((codes[2 * i] + bias) & 0x0F) | (((codes[2 * i + 1] + bias) & 0x0F) << 4));
    if (n % 2 != 0) out[pairs] = static_cast<uint8_t>((codes[n - 1] + bias) & 0x0F);
}

void unpack_nibble_pairs(const uint8_t* packed, std::size_t n, int bias, int8_t* codes) {
    for (std::size_t i = 0; i < n; ++i) codes[i] = static_cast<int8_t>(((i % 2 == 0) ? (packed[i / 2] & 0x0F) : (packed[i / 2] >> 4)) - bias);
}

template <typename Word>
Word max_magnitude(const std::byte* bits, std::size_t n) {
    constexpr Word kMagnitude = std::numeric_limits<Word>::max() >> 1;
    Word top = 0;
    for (std::size_t i = 0; i < n; ++i) {
        Word v;
        std::memcpy(&v, bits + i * sizeof v, sizeof v);
        top = std::max<Word>(top, v & kMagnitude);
    }
    return top;
}
uint32_t max_magnitude32(const std::byte* bits, std::size_t n) { return max_magnitude<uint32_t>(bits, n); }
uint16_t max_magnitude16(const std::byte* bits, std::size_t n) { return max_magnitude<uint16_t>(bits, n); }

void error_lanes(const float* x, const float* y, std::size_t n, double* signal8, double* error8, double* max_abs_error) {
    using grey::common::ErrorSums;
    ErrorSums::Lanes lanes;
    std::copy(signal8, signal8 + ErrorSums::kLanes, lanes.signal);
    std::copy(error8, error8 + ErrorSums::kLanes, lanes.error);
    lanes.max_abs_error = *max_abs_error;
    ErrorSums::accumulate_lanes(lanes, x, y, n);
    std::copy(lanes.signal, lanes.signal + ErrorSums::kLanes, signal8);
    std::copy(lanes.error, lanes.error + ErrorSums::kLanes, error8);
    *max_abs_error = lanes.max_abs_error;
}

constexpr Kernels kScalar{"scalar",   absmax,     minmax,     encode,     decode,            decode_table,      decode_table,
                          decode_fp8, f16_to_f32, encode_fp8, encode_nf4, pack_ggml_nibbles, pack_nibble_pairs, unpack_nibble_pairs,
                          max_magnitude32, max_magnitude16, error_lanes, nullptr, nullptr, nullptr, nullptr};

}  // namespace

const Kernels& scalar_kernels() noexcept { return kScalar; }

const Kernels& best_kernels() noexcept {
    if (const Kernels* avx512 = avx512_kernels()) return *avx512;
    if (const Kernels* avx2 = avx2_kernels()) return *avx2;
    return kScalar;
}

}  // namespace grey::host::quant
