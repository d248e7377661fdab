// AVX-512 (F, BW, VL) versions of the primitives in kernels.hpp: the AVX2 computations on sixteen lanes,
// with masked loads and stores for the tail instead of a scalar loop (a masked-off lane is neither read
// nor written, so a tail costs one more iteration and gives the same bits). Compiled with target
// attributes, as the AVX2 file is; avx512_kernels() hands them out only when the CPU and the operating
// system support them.
#include "host/quant/kernels.hpp"

#include "host/quant/kernels_vector.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GREY_HAVE_AVX512_PATH 1
// GCC 12's AVX-512 headers make their "undefined" registers by self-initialisation (GCC bug 105593),
// which its own uninitialised-use warnings then flag wherever an intrinsic is inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>

namespace grey::host::quant {

#if defined(GREY_HAVE_AVX512_PATH)
namespace {

#define GREY_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c")))

// The lanes of a 16-lane step that lie before n - i.
GREY_AVX512 __mmask16 lanes(std::size_t i, std::size_t n) {
    const std::size_t left = n - i;
    return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

GREY_AVX512 float absmax(const float* x, std::size_t n) {
    __m512 acc = _mm512_setzero_ps();
    for (std::size_t i = 0; i < n; i += 16) acc = _mm512_max_ps(acc, _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes(i, n), x + i)));
    return _mm512_reduce_max_ps(acc);
}

GREY_AVX512 void minmax(const float* x, std::size_t n, float* out_min, float* out_max) {
    __m512 lo = _mm512_set1_ps(INFINITY), hi = _mm512_set1_ps(-INFINITY);
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        lo = _mm512_mask_min_ps(lo, k, lo, v);
        hi = _mm512_mask_max_ps(hi, k, hi, v);
    }
    const float l = _mm512_reduce_min_ps(lo), h = _mm512_reduce_max_ps(hi);
    // Which zero a sequential scan keeps depends on the order it meets them (see the AVX2 version).
    if (l == 0.0f || h == 0.0f) return scalar_kernels().minmax(x, n, out_min, out_max);
    *out_min = l;
    *out_max = h;
}

// The first `count` lanes of a 32- or 64-lane byte step (every lane from 32 or 64 on).
GREY_AVX512 __mmask32 first32(std::size_t count) { return count >= 32 ? 0xFFFFFFFFu : (1u << count) - 1u; }
GREY_AVX512 __mmask64 first64(std::size_t count) { return count >= 64 ? ~__mmask64{0} : (__mmask64{1} << count) - 1; }

// Codes into and out of a 16-lane step. Whole steps use plain loads and stores: the codes pass from one
// kernel to the next through a small buffer, and a masked store's bytes do not forward to the load that
// follows (it waits until the store has retired), which cost more than the arithmetic.
GREY_AVX512 __m128i load_codes(const void* at, __mmask16 k) {
    return k == 0xFFFF ? _mm_loadu_si128(static_cast<const __m128i*>(at)) : _mm_maskz_loadu_epi8(k, at);
}
GREY_AVX512 void store_codes(void* at, __mmask16 k, __m512i codes) {
    if (k == 0xFFFF)
        _mm_storeu_si128(static_cast<__m128i*>(at), _mm512_cvtepi32_epi8(codes));
    else
        _mm512_mask_cvtepi32_storeu_epi8(at, k, codes);
}

// roundf in registers, as in the AVX2 version.
GREY_AVX512 __m512 round_half_away(__m512 v) {
    const __m512 truncated = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 sign_mask = _mm512_set1_ps(-0.0f);
    const __m512 fraction = _mm512_abs_ps(_mm512_sub_ps(v, truncated));
    const __m512 step = _mm512_or_ps(_mm512_and_ps(v, sign_mask), _mm512_set1_ps(1.0f));
    const __mmask16 needs_step = _mm512_cmp_ps_mask(fraction, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    return _mm512_mask_add_ps(truncated, needs_step, truncated, step);
}

GREY_AVX512 void encode(const float* x, std::size_t n, const EncodeSpec& spec, int8_t* out) {
    const __m512 subtract = _mm512_set1_ps(spec.subtract), multiply = _mm512_set1_ps(spec.multiply), add = _mm512_set1_ps(spec.add);
    const __m512 lo = _mm512_set1_ps(static_cast<float>(spec.lo)), hi = _mm512_set1_ps(static_cast<float>(spec.hi));
    const bool nearest = spec.rounding == Rounding::nearest_away;
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        // Separate multiply and add: a fused multiply-add would round once and differ from the scalar path.
        const __m512 scaled = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), subtract), multiply);
        const __m512 v = _mm512_add_ps(scaled, add);
        __m512 r = nearest ? round_half_away(v) : _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
        r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, r, _CMP_ORD_Q), r);  // NaN codes 0, as in the scalar path
        r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
        store_codes(out + i, k, _mm512_cvttps_epi32(r));
    }
}

GREY_AVX512 void decode(const int8_t* q, std::size_t n, const DecodeSpec& spec, float* out) {
    const __m512 subtract = _mm512_set1_ps(spec.subtract), multiply = _mm512_set1_ps(spec.multiply), add = _mm512_set1_ps(spec.add);
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(load_codes(q + i, k)));
        _mm512_mask_storeu_ps(out + i, k, _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(v, subtract), multiply), add));
    }
}

GREY_AVX512 void decode_table(const uint8_t* codes, std::size_t n, const float* table, float scale, float* out) {
    const __m512 s = _mm512_set1_ps(scale);
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        const __m512i index = _mm512_cvtepu8_epi32(load_codes(codes + i, k));
        const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, index, table, 4);
        _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(v, s));
    }
}

GREY_AVX512 void decode_table16(const uint8_t* codes, std::size_t n, const float* table, float scale, float* out) {
    const __m512 s = _mm512_set1_ps(scale), levels = _mm512_loadu_ps(table);
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        const __m512i index = _mm512_cvtepu8_epi32(load_codes(codes + i, k));
        _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(_mm512_permutexvar_ps(index, levels), s));
    }
}

// fp8_to_f32 times the scale on sixteen lanes (kernels_vector.hpp says how).
GREY_AVX512 void decode_fp8(const uint8_t* codes, std::size_t n, const float*, int format, float scale, float* out) {
    const Fp8Decoding d = fp8_decoding(format);
    const __m512 s = _mm512_set1_ps(scale), step = _mm512_set1_ps(d.subnormal_step);
    const __m512i magnitude_mask = _mm512_set1_epi32(0x7F), rebias = _mm512_set1_epi32(d.rebias);
    const __m512i infinity_code = _mm512_set1_epi32(d.infinity_code), first_nan = _mm512_set1_epi32(d.first_nan_code);
    const __m512i infinity = _mm512_set1_epi32(0x7F800000), nan = _mm512_set1_epi32(0x7FC00000);
    const __m512i mantissa_mask = _mm512_set1_epi32((1 << (23 - d.shift)) - 1), exponent_mask = _mm512_set1_epi32(0x7F & ~((1 << (23 - d.shift)) - 1));
    const __m128i shift = _mm_cvtsi32_si128(d.shift);
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        const __m512i c = _mm512_cvtepu8_epi32(load_codes(codes + i, k));
        const __m512i sign = _mm512_slli_epi32(_mm512_andnot_si512(magnitude_mask, c), 24);
        const __m512i magnitude = _mm512_and_si512(c, magnitude_mask);
        const __m512i normal = _mm512_add_epi32(_mm512_sll_epi32(magnitude, shift), rebias);
        const __m512 subnormal = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(magnitude, mantissa_mask)), step);
        __m512i bits = _mm512_mask_blend_epi32(_mm512_testn_epi32_mask(magnitude, exponent_mask), normal, _mm512_castps_si512(subnormal));
        bits = _mm512_mask_blend_epi32(_mm512_cmpeq_epi32_mask(magnitude, infinity_code), bits, infinity);
        bits = _mm512_or_si512(bits, sign);
        bits = _mm512_mask_blend_epi32(_mm512_cmpge_epi32_mask(magnitude, first_nan), bits, nan);  // NaN codes: no sign
        _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(_mm512_castsi512_ps(bits), s));
    }
}

GREY_AVX512 void f16_to_f32(const uint16_t* in, std::size_t n, float* out) {
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        _mm512_mask_storeu_ps(out + i, k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, in + i)));
    }
}

// f32_to_fp8 on sixteen lanes, on the bits (kernels_vector.hpp says how).
GREY_AVX512 void encode_fp8(const float* x, std::size_t n, float inverse, int format, int8_t* out) {
    const Fp8Encoding e = fp8_encoding(format);
    const __m512 inv = _mm512_set1_ps(inverse), min_normal = _mm512_set1_ps(e.min_normal), subnormal_scale = _mm512_set1_ps(e.subnormal_scale);
    const __m512i round_bias = _mm512_set1_epi32(e.round_bias), rebias = _mm512_set1_epi32(e.rebias), one = _mm512_set1_epi32(1);
    const __m512i max_code = _mm512_set1_epi32(e.max_code), nan_code = _mm512_set1_epi32(e.nan_code);
    const __m128i shift = _mm_cvtsi32_si128(e.dropped_bits);
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv);
        const __m512 magnitude = _mm512_abs_ps(v);
        const __m512i bits = _mm512_castps_si512(magnitude);
        const __m512i odd = _mm512_and_si512(_mm512_srl_epi32(bits, shift), one);
        const __m512i normal = _mm512_sub_epi32(_mm512_srl_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(round_bias, odd)), shift), rebias);
        const __m512i subnormal = _mm512_cvtps_epi32(_mm512_mul_ps(magnitude, subnormal_scale));
        __m512i code = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(magnitude, min_normal, _CMP_LT_OQ), normal, subnormal);
        code = _mm512_min_epi32(code, max_code);
        code = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), code, nan_code);
        code = _mm512_or_si512(code, _mm512_srli_epi32(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN)), 24));
        store_codes(out + i, k, code);
    }
}

// nf4_code on sixteen lanes: one added for each midpoint a product lies above.
GREY_AVX512 void encode_nf4(const float* x, std::size_t n, float inverse, int8_t* out) {
    const Nf4Midpoints& m = nf4_midpoints();
    const __m512 inv = _mm512_set1_ps(inverse);
    const __m512i one = _mm512_set1_epi32(1);
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv);
        __m512i code = _mm512_setzero_si512();
        for (const float midpoint : m.values)
            code = _mm512_mask_add_epi32(code, _mm512_cmp_ps_mask(v, _mm512_set1_ps(midpoint), _CMP_GT_OQ), code, one);
        store_codes(out + i, k, code);
    }
}

// Two blocks a register: each 32-byte half's low 16 codes under its high 16 (kernels_avx2.cpp's packing).
GREY_AVX512 void pack_ggml_nibbles(const int8_t* codes, std::size_t blocks, uint8_t* out, std::size_t stride) {
    const __m512i low_nibble = _mm512_set1_epi8(0x0F);
    std::size_t b = 0;
    for (; b + 2 <= blocks; b += 2, codes += 64, out += 2 * stride) {
        const __m512i c = _mm512_and_si512(_mm512_loadu_si512(codes), low_nibble);
        // 128-bit lanes: 0 and 2 hold the blocks' first halves, 1 and 3 their second.
        const __m512i first = _mm512_shuffle_i64x2(c, c, _MM_SHUFFLE(2, 0, 2, 0));
        const __m512i second = _mm512_shuffle_i64x2(c, c, _MM_SHUFFLE(3, 1, 3, 1));
        const __m512i packed = _mm512_or_si512(first, _mm512_slli_epi16(second, 4));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_castsi512_si128(packed));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + stride), _mm512_extracti32x4_epi32(packed, 1));
    }
    if (b < blocks) scalar_kernels().pack_ggml_nibbles(codes, blocks - b, out, stride);
}

// 64 codes a step, kernels_avx2.cpp's arithmetic; a tail's missing codes load as zeros and are kept
// zero by the masked add, so an odd count's last byte has a zero high nibble.
GREY_AVX512 void pack_nibble_pairs(const int8_t* codes, std::size_t n, int bias, uint8_t* out) {
    const __m512i b = _mm512_set1_epi8(static_cast<char>(bias)), low_nibble = _mm512_set1_epi8(0x0F);
    for (std::size_t i = 0; i < n; i += 64) {
        const std::size_t left = n - i;
        const __mmask64 k = first64(left);
        // Unmasked where whole (load_codes says why).
        const __m512i c = _mm512_and_si512(_mm512_maskz_add_epi8(k, left >= 64 ? _mm512_loadu_si512(codes + i) : _mm512_maskz_loadu_epi8(k, codes + i), b), low_nibble);
        const __m256i packed = _mm512_cvtepi16_epi8(_mm512_or_si512(c, _mm512_srli_epi16(c, 4)));
        _mm256_mask_storeu_epi8(out + i / 2, first32((left + 1) / 2), packed);
    }
}

GREY_AVX512 void unpack_nibble_pairs(const uint8_t* packed, std::size_t n, int bias, int8_t* codes) {
    const __m512i b = _mm512_set1_epi8(static_cast<char>(bias)), low_nibble = _mm512_set1_epi16(0x000F), high_nibble = _mm512_set1_epi16(0x0F00);
    for (std::size_t i = 0; i < n; i += 64) {
        const std::size_t left = n - i;
        const __m512i v = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(first32((left + 1) / 2), packed + i / 2));
        const __m512i pair = _mm512_or_si512(_mm512_and_si512(v, low_nibble), _mm512_and_si512(_mm512_slli_epi16(v, 4), high_nibble));
        const __m512i c = _mm512_sub_epi8(pair, b);
        // Unmasked where whole (load_codes says why).
        if (left >= 64)
            _mm512_storeu_si512(codes + i, c);
        else if (left == 32)
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + i), _mm512_castsi512_si256(c));
        else
            _mm512_mask_storeu_epi8(codes + i, first64(left), c);
    }
}

GREY_AVX512 uint32_t max_magnitude32(const std::byte* bits, std::size_t n) {
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i top = _mm512_setzero_si512();
    for (std::size_t i = 0; i < n; i += 16) top = _mm512_max_epu32(top, _mm512_and_si512(_mm512_maskz_loadu_epi32(lanes(i, n), bits + 4 * i), magnitude));
    return _mm512_reduce_max_epu32(top);
}

GREY_AVX512 uint16_t max_magnitude16(const std::byte* bits, std::size_t n) {
    const __m512i magnitude = _mm512_set1_epi16(0x7FFF);
    __m512i top = _mm512_setzero_si512();
    for (std::size_t i = 0; i < n; i += 32) {
        top = _mm512_max_epu16(top, _mm512_and_si512(_mm512_maskz_loadu_epi16(first32(n - i), bits + 2 * i), magnitude));
    }
    // The 16-bit maxima widened to 32 bits, then one reduction.
    const __m512i wide = _mm512_max_epu32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(top)), _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(top, 1)));
    return static_cast<uint16_t>(_mm512_reduce_max_epu32(wide));
}

// The eight lanes of common::ErrorSums in one register each (kernels_avx2.cpp's note on the maximum).
GREY_AVX512 void error_lanes(const float* x, const float* y, std::size_t n, double* signal8, double* error8, double* max_abs_error) {
    __m512d signal = _mm512_loadu_pd(signal8), error = _mm512_loadu_pd(error8), peak = _mm512_set1_pd(*max_abs_error);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m512d xv = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
        const __m512d e = _mm512_sub_pd(xv, _mm512_cvtps_pd(_mm256_loadu_ps(y + i)));
        signal = _mm512_add_pd(signal, _mm512_mul_pd(xv, xv));
        error = _mm512_add_pd(error, _mm512_mul_pd(e, e));
        peak = _mm512_max_pd(_mm512_abs_pd(e), peak);
    }
    _mm512_storeu_pd(signal8, signal);
    _mm512_storeu_pd(error8, error);
    alignas(64) double peaks[8];
    _mm512_store_pd(peaks, peak);
    *max_abs_error = *std::max_element(peaks, peaks + 8);
    if (i < n) scalar_kernels().error_lanes(x + i, y + i, n - i, signal8, error8, max_abs_error);
}

constexpr Kernels kAvx512{"avx512",   absmax,     minmax,     encode,     decode,            decode_table,      decode_table16,
                          decode_fp8, f16_to_f32, encode_fp8, encode_nf4, pack_ggml_nibbles, pack_nibble_pairs, unpack_nibble_pairs,
                          max_magnitude32, max_magnitude16, error_lanes};

}  // namespace

const Kernels* avx512_kernels() noexcept {
    // libgcc's CPU model checks that the operating system saves the AVX-512 registers (XCR0) before it
    // reports these features.
    return (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("f16c"))
               ? &kAvx512
               : nullptr;
}

#else

const Kernels* avx512_kernels() noexcept { return nullptr; }

#endif

}  // namespace grey::host::quant
