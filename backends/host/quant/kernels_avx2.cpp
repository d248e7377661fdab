// AVX2 versions of the primitives in kernels.hpp. Compiled with target attributes rather than -mavx2,
// so that nothing else in this file (or an inline function it instantiates) can use AVX2 on a CPU
// without it; avx2_kernels() hands them out only when the CPU reports AVX2 and F16C.
#include "host/quant/kernels.hpp"

#include "common/quant_coding.hpp"
#include "host/quant/kernels_vector.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GREY_HAVE_AVX2_PATH 1
#include <immintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace grey::host::quant {

#if defined(GREY_HAVE_AVX2_PATH)
namespace {

#define GREY_AVX2 __attribute__((target("avx2,f16c")))

GREY_AVX2 float horizontal_max(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

GREY_AVX2 float horizontal_min(__m256 v) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

// Four maxima, so that one's latency does not bound the loop: for values without NaN (the quantizer
// refuses those first) the largest is the largest in any order.
GREY_AVX2 float absmax(const float* x, std::size_t n) {
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    __m256 acc = _mm256_setzero_ps(), a1 = acc, a2 = acc, a3 = acc;
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc = _mm256_max_ps(acc, _mm256_andnot_ps(sign_mask, _mm256_loadu_ps(x + i)));
        a1 = _mm256_max_ps(a1, _mm256_andnot_ps(sign_mask, _mm256_loadu_ps(x + i + 8)));
        a2 = _mm256_max_ps(a2, _mm256_andnot_ps(sign_mask, _mm256_loadu_ps(x + i + 16)));
        a3 = _mm256_max_ps(a3, _mm256_andnot_ps(sign_mask, _mm256_loadu_ps(x + i + 24)));
    }
    acc = _mm256_max_ps(_mm256_max_ps(acc, a1), _mm256_max_ps(a2, a3));
    for (; i + 8 <= n; i += 8) acc = _mm256_max_ps(acc, _mm256_andnot_ps(sign_mask, _mm256_loadu_ps(x + i)));
    float m = horizontal_max(acc);
    for (; i < n; ++i) m = std::max(m, std::fabs(x[i]));
    return m;
}

GREY_AVX2 void minmax(const float* x, std::size_t n, float* out_min, float* out_max) {
    __m256 lo = _mm256_set1_ps(INFINITY), hi = _mm256_set1_ps(-INFINITY), lo1 = lo, hi1 = hi;
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {  // two minima and maxima (absmax says why)
        const __m256 v = _mm256_loadu_ps(x + i), w = _mm256_loadu_ps(x + i + 8);
        lo = _mm256_min_ps(lo, v);
        hi = _mm256_max_ps(hi, v);
        lo1 = _mm256_min_ps(lo1, w);
        hi1 = _mm256_max_ps(hi1, w);
    }
    lo = _mm256_min_ps(lo, lo1);
    hi = _mm256_max_ps(hi, hi1);
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        lo = _mm256_min_ps(lo, v);
        hi = _mm256_max_ps(hi, v);
    }
    float l = horizontal_min(lo), h = horizontal_max(hi);
    for (; i < n; ++i) {
        l = std::min(l, x[i]);
        h = std::max(h, x[i]);
    }
    // Which zero (+0 or -0) a sequential scan keeps depends on the order it meets them; the scalar
    // path (and ggml) keep the first. Stored as fp16 the two differ in a bit, so defer to that scan.
    if (l == 0.0f || h == 0.0f) return scalar_kernels().minmax(x, n, out_min, out_max);
    *out_min = l;
    *out_max = h;
}

GREY_AVX2 void encode(const float* x, std::size_t n, const EncodeSpec& spec, int8_t* out) {
    const __m256 subtract = _mm256_set1_ps(spec.subtract), multiply = _mm256_set1_ps(spec.multiply), add = _mm256_set1_ps(spec.add);
    const __m256 lo = _mm256_set1_ps(static_cast<float>(spec.lo)), hi = _mm256_set1_ps(static_cast<float>(spec.hi));
    const bool nearest = spec.rounding == Rounding::nearest_away;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        // Separate multiply and add: a fused multiply-add would round once and differ from the scalar path.
        const __m256 scaled = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), subtract), multiply);
        const __m256 v = _mm256_add_ps(scaled, add);
        // roundf(v) = trunc(v + copysign(kHalfBelow, v)) (kernels_vector.hpp), the truncation being the
        // conversion's after the clamp: lo and hi are integers, so truncating the clamped value equals
        // clamping the truncated one.
        __m256 r = nearest ? _mm256_add_ps(v, _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(kHalfBelow))) : v;
        r = _mm256_and_ps(r, _mm256_cmp_ps(r, r, _CMP_ORD_Q));  // NaN codes 0, as in the scalar path
        r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
        const __m256i q32 = _mm256_cvttps_epi32(r);
        const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q32), _mm256_extracti128_si256(q32, 1));
        const __m128i q8 = _mm_packs_epi16(q16, q16);
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), q8);
    }
    if (i < n) scalar_kernels().encode(x + i, n - i, spec, out + i);
}

GREY_AVX2 void decode(const int8_t* q, std::size_t n, const DecodeSpec& spec, float* out) {
    const __m256 subtract = _mm256_set1_ps(spec.subtract), multiply = _mm256_set1_ps(spec.multiply), add = _mm256_set1_ps(spec.add);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + i));
        const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8));
        const __m256 scaled = _mm256_mul_ps(_mm256_sub_ps(v, subtract), multiply);
        _mm256_storeu_ps(out + i, _mm256_add_ps(scaled, add));
    }
    if (i < n) scalar_kernels().decode(q + i, n - i, spec, out + i);
}

GREY_AVX2 void decode_table(const uint8_t* codes, std::size_t n, const float* table, float scale, float* out) {
    const __m256 s = _mm256_set1_ps(scale);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i c8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i));
        const __m256 v = _mm256_i32gather_ps(table, _mm256_cvtepu8_epi32(c8), 4);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(v, s));
    }
    if (i < n) scalar_kernels().decode_table(codes + i, n - i, table, scale, out + i);
}

GREY_AVX2 void decode_table16(const uint8_t* codes, std::size_t n, const float* table, float scale, float* out) {
    const __m256 s = _mm256_set1_ps(scale), low = _mm256_loadu_ps(table), high = _mm256_loadu_ps(table + 8);
    const __m256i seven = _mm256_set1_epi32(7);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i index = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i)));
        // Each permute uses the index's low three bits; the fourth picks the half.
        const __m256 upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(index, seven));
        const __m256 v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(low, index), _mm256_permutevar8x32_ps(high, index), upper);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(v, s));
    }
    if (i < n) scalar_kernels().decode_table16(codes + i, n - i, table, scale, out + i);
}

// fp8_to_f32 times the scale on eight lanes (kernels_vector.hpp says how).
GREY_AVX2 void decode_fp8(const uint8_t* codes, std::size_t n, const float* table, int format, float scale, float* out) {
    const Fp8Decoding d = fp8_decoding(format);
    const __m256 s = _mm256_set1_ps(scale), step = _mm256_set1_ps(d.subnormal_step);
    const __m256i magnitude_mask = _mm256_set1_epi32(0x7F), rebias = _mm256_set1_epi32(d.rebias), zero = _mm256_setzero_si256();
    const __m256i infinity_code = _mm256_set1_epi32(d.infinity_code), last_number = _mm256_set1_epi32(d.first_nan_code - 1);
    const __m256i infinity = _mm256_set1_epi32(0x7F800000), nan = _mm256_set1_epi32(0x7FC00000);
    const __m128i shift = _mm_cvtsi32_si128(d.shift);
    const __m256i mantissa_mask = _mm256_set1_epi32((1 << (23 - d.shift)) - 1);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + i)));
        const __m256i sign = _mm256_slli_epi32(_mm256_andnot_si256(magnitude_mask, c), 24);
        const __m256i magnitude = _mm256_and_si256(c, magnitude_mask);
        const __m256i normal = _mm256_add_epi32(_mm256_sll_epi32(magnitude, shift), rebias);
        const __m256 subnormal = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(magnitude, mantissa_mask)), step);
        const __m256i is_subnormal = _mm256_cmpeq_epi32(_mm256_srl_epi32(_mm256_sll_epi32(magnitude, shift), _mm_cvtsi32_si128(23)), zero);
        __m256i bits = _mm256_blendv_epi8(normal, _mm256_castps_si256(subnormal), is_subnormal);
        bits = _mm256_blendv_epi8(bits, infinity, _mm256_cmpeq_epi32(magnitude, infinity_code));
        bits = _mm256_or_si256(bits, sign);
        const __m256 product = _mm256_mul_ps(_mm256_castsi256_ps(bits), s);
        // NaN codes after the product: the quiet NaN whatever the scale (kernels.hpp), no sign.
        _mm256_storeu_ps(out + i, _mm256_blendv_ps(product, _mm256_castsi256_ps(nan), _mm256_castsi256_ps(_mm256_cmpgt_epi32(magnitude, last_number))));
    }
    if (i < n) scalar_kernels().decode_fp8(codes + i, n - i, table, format, scale, out + i);
}

GREY_AVX2 void f16_to_f32(const uint16_t* in, std::size_t n, float* out) {
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i))));
    if (i < n) scalar_kernels().f16_to_f32(in + i, n - i, out + i);
}

// f32_to_fp8 on eight lanes, on the bits (kernels_vector.hpp says how).
GREY_AVX2 void encode_fp8(const float* x, std::size_t n, float inverse, int format, int8_t* out) {
    const Fp8Encoding e = fp8_encoding(format);
    const __m256 inv = _mm256_set1_ps(inverse), sign_mask = _mm256_set1_ps(-0.0f);
    const __m256 min_normal = _mm256_set1_ps(e.min_normal), subnormal_scale = _mm256_set1_ps(e.subnormal_scale);
    const __m256i round_bias = _mm256_set1_epi32(e.round_bias), rebias = _mm256_set1_epi32(e.rebias);
    const __m256i max_code = _mm256_set1_epi32(e.max_code), nan_code = _mm256_set1_epi32(e.nan_code), one = _mm256_set1_epi32(1);
    const __m128i shift = _mm_cvtsi32_si128(e.dropped_bits);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), inv);
        const __m256 magnitude = _mm256_andnot_ps(sign_mask, v);
        const __m256i bits = _mm256_castps_si256(magnitude);
        const __m256i odd = _mm256_and_si256(_mm256_srl_epi32(bits, shift), one);
        const __m256i normal = _mm256_sub_epi32(_mm256_srl_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(round_bias, odd)), shift), rebias);
        const __m256i subnormal = _mm256_cvtps_epi32(_mm256_mul_ps(magnitude, subnormal_scale));
        __m256i code = _mm256_blendv_epi8(normal, subnormal, _mm256_castps_si256(_mm256_cmp_ps(magnitude, min_normal, _CMP_LT_OQ)));
        code = _mm256_min_epi32(code, max_code);
        code = _mm256_blendv_epi8(code, nan_code, _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
        code = _mm256_or_si256(code, _mm256_srli_epi32(_mm256_castps_si256(_mm256_and_ps(v, sign_mask)), 24));
        const __m128i q16 = _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), _mm_packus_epi16(q16, q16));
    }
    if (i < n) scalar_kernels().encode_fp8(x + i, n - i, inverse, format, out + i);
}

// nf4_code on eight lanes: the count of midpoints each product lies above (a compare is -1 where true).
GREY_AVX2 void encode_nf4(const float* x, std::size_t n, float inverse, int8_t* out) {
    const Nf4Midpoints& m = nf4_midpoints();
    const __m256 inv = _mm256_set1_ps(inverse);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), inv);
        __m256i code = _mm256_setzero_si256();
        for (const float midpoint : m.values)
            code = _mm256_sub_epi32(code, _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_set1_ps(midpoint), _CMP_GT_OQ)));
        const __m128i q16 = _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), _mm_packus_epi16(q16, q16));
    }
    if (i < n) scalar_kernels().encode_nf4(x + i, n - i, inverse, out + i);
}

// A block's 32 codes in one register: the low half's nibbles under the high half's (each code fits in
// its low nibble, so a 16-bit shift moves nothing across bytes).
GREY_AVX2 void pack_ggml_nibbles(const int8_t* codes, std::size_t blocks, uint8_t* out, std::size_t stride) {
    const __m128i low_nibble = _mm_set1_epi8(0x0F);
    for (std::size_t b = 0; b < blocks; ++b, codes += 32, out += stride) {
        const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes));
        const __m128i first = _mm_and_si128(_mm256_castsi256_si128(c), low_nibble);
        const __m128i second = _mm_and_si128(_mm256_extracti128_si256(c, 1), low_nibble);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_or_si128(first, _mm_slli_epi16(second, 4)));
    }
}

// 32 codes a step: each pair's two bytes, masked to their nibbles, become one 16-bit lane a | b << 8,
// and (a | b << 8) | (a | b << 8) >> 4 holds a | b << 4 in its low byte; the tail goes to the scalar loop.
GREY_AVX2 void pack_nibble_pairs(const int8_t* codes, std::size_t n, int bias, uint8_t* out) {
    const __m256i b = _mm256_set1_epi8(static_cast<char>(bias)), low_nibble = _mm256_set1_epi8(0x0F), low_byte = _mm256_set1_epi16(0x00FF);
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i c = _mm256_and_si256(_mm256_add_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + i)), b), low_nibble);
        const __m256i packed = _mm256_and_si256(_mm256_or_si256(c, _mm256_srli_epi16(c, 4)), low_byte);
        // packus narrows within each 128-bit lane: the two lanes' eight bytes are joined by the permute.
        const __m256i narrowed = _mm256_permute4x64_epi64(_mm256_packus_epi16(packed, packed), _MM_SHUFFLE(3, 1, 2, 0));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i / 2), _mm256_castsi256_si128(narrowed));
    }
    if (i < n) scalar_kernels().pack_nibble_pairs(codes + i, n - i, bias, out + i / 2);
}

// 32 codes from 16 bytes a step: each byte widened to a 16-bit lane b, whose low byte (b & 15) and high
// byte (b >> 4) are the pair in order.
GREY_AVX2 void unpack_nibble_pairs(const uint8_t* packed, std::size_t n, int bias, int8_t* codes) {
    const __m256i b = _mm256_set1_epi8(static_cast<char>(bias)), low_nibble = _mm256_set1_epi16(0x000F), high_nibble = _mm256_set1_epi16(0x0F00);
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + i / 2)));
        const __m256i pair = _mm256_or_si256(_mm256_and_si256(v, low_nibble), _mm256_and_si256(_mm256_slli_epi16(v, 4), high_nibble));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + i), _mm256_sub_epi8(pair, b));
    }
    if (i < n) scalar_kernels().unpack_nibble_pairs(packed + i / 2, n - i, bias, codes + i);
}

// The largest magnitude's bits, 32 bytes of words a step; the tail goes to the scalar loop.
template <typename Word>
GREY_AVX2 Word max_magnitude(const std::byte* bits, std::size_t n) {
    constexpr std::size_t kLanes = 32 / sizeof(Word);
    const __m256i magnitude = _mm256_set1_epi32(sizeof(Word) == 4 ? 0x7FFFFFFF : 0x7FFF7FFF);
    __m256i top = _mm256_setzero_si256();
    std::size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const __m256i v = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bits + sizeof(Word) * i)), magnitude);
        top = sizeof(Word) == 4 ? _mm256_max_epu32(top, v) : _mm256_max_epu16(top, v);
    }
    alignas(32) Word lanes[kLanes];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), top);
    const Word tail = sizeof(Word) == 4 ? static_cast<Word>(scalar_kernels().max_magnitude32(bits + 4 * i, n - i))
                                        : static_cast<Word>(scalar_kernels().max_magnitude16(bits + 2 * i, n - i));
    return std::max(*std::max_element(lanes, lanes + kLanes), tail);
}
GREY_AVX2 uint32_t max_magnitude32(const std::byte* bits, std::size_t n) { return max_magnitude<uint32_t>(bits, n); }
GREY_AVX2 uint16_t max_magnitude16(const std::byte* bits, std::size_t n) { return max_magnitude<uint16_t>(bits, n); }

// Lanes 0-3 and 4-7 of common::ErrorSums in two registers; the maximum ignores a NaN error as the
// scalar comparison does (MAXPD returns its second operand when either is NaN).
GREY_AVX2 void error_lanes(const float* x, const float* y, std::size_t n, double* signal8, double* error8, double* max_abs_error) {
    __m256d signal_low = _mm256_loadu_pd(signal8), signal_high = _mm256_loadu_pd(signal8 + 4);
    __m256d error_low = _mm256_loadu_pd(error8), error_high = _mm256_loadu_pd(error8 + 4);
    __m256d peak = _mm256_set1_pd(*max_abs_error);
    const __m256d sign_mask = _mm256_set1_pd(-0.0);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_loadu_ps(x + i), yv = _mm256_loadu_ps(y + i);
        const __m256d x_low = _mm256_cvtps_pd(_mm256_castps256_ps128(xv)), x_high = _mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1));
        const __m256d e_low = _mm256_sub_pd(x_low, _mm256_cvtps_pd(_mm256_castps256_ps128(yv)));
        const __m256d e_high = _mm256_sub_pd(x_high, _mm256_cvtps_pd(_mm256_extractf128_ps(yv, 1)));
        signal_low = _mm256_add_pd(signal_low, _mm256_mul_pd(x_low, x_low));
        signal_high = _mm256_add_pd(signal_high, _mm256_mul_pd(x_high, x_high));
        error_low = _mm256_add_pd(error_low, _mm256_mul_pd(e_low, e_low));
        error_high = _mm256_add_pd(error_high, _mm256_mul_pd(e_high, e_high));
        peak = _mm256_max_pd(_mm256_andnot_pd(sign_mask, e_low), peak);
        peak = _mm256_max_pd(_mm256_andnot_pd(sign_mask, e_high), peak);
    }
    _mm256_storeu_pd(signal8, signal_low);
    _mm256_storeu_pd(signal8 + 4, signal_high);
    _mm256_storeu_pd(error8, error_low);
    _mm256_storeu_pd(error8 + 4, error_high);
    alignas(32) double peaks[4];
    _mm256_store_pd(peaks, peak);
    *max_abs_error = std::max(std::max(peaks[0], peaks[1]), std::max(peaks[2], peaks[3]));
    if (i < n) scalar_kernels().error_lanes(x + i, y + i, n - i, signal8, error8, max_abs_error);
}

// quantize_groups (kernels.hpp): eight groups at a time. Their statistics come from absmax and minmax
// above; their parameters are made together, make_coding's steps lane by lane (IEEE arithmetic and
// F16C's round-to-nearest-even conversions, which give common/numeric.hpp's f32_to_f16 bits for the
// finite values the caller guarantees where fp16 is stored); each group is then coded and packed by the
// primitives above, through a code buffer the size of one group, without a call through the table.

// common::inverse on eight lanes: 1/d, 0 for d = 0 and where the reciprocal is infinite.
GREY_AVX2 __m256 inverse8(__m256 d) {
    const __m256 r = _mm256_div_ps(_mm256_set1_ps(1.0f), d);
    const __m256 infinite = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), r), _mm256_set1_ps(INFINITY), _CMP_EQ_OQ);
    const __m256 nonzero = _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_NEQ_UQ);
    return _mm256_and_ps(_mm256_andnot_ps(infinite, nonzero), r);
}
GREY_AVX2 __m128i to_f16(__m256 v) { return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

template <int kFormat>
GREY_AVX2 uint32_t quantize_groups_of(const float* x, std::size_t groups, std::size_t length, uint8_t* codes, std::byte* scales, std::byte* mins) {
    constexpr bool kGgml = grey::common::is_ggml(kFormat);
    constexpr bool kMinMax = grey::common::stores_minimum(kFormat);
    const std::size_t block_bytes = grey::common::ggml_block_bytes(kFormat);
    constexpr std::size_t kMaxGroup = 4096;  // longer groups go a piece at a time below
    alignas(32) int8_t buffer[kMaxGroup];
    const __m256 one = _mm256_set1_ps(1.0f);  // make_coding's alpha
    uint32_t largest = 0;
    for (std::size_t g0 = 0; g0 < groups; g0 += 8, x += 8 * length) {
        const std::size_t count = std::min<std::size_t>(8, groups - g0);
        alignas(32) float first[8] = {}, second[8] = {};
        for (std::size_t g = 0; g < count; ++g) {
            const float* group = x + g * length;
            // The largest magnitude's bits (max_magnitude32): absmax for finite values, and a NaN's bits
            // above every number's wherever one is (quantize_groups' return value).
            const uint32_t bits = max_magnitude32(reinterpret_cast<const std::byte*>(group), length);
            largest = std::max(largest, bits);
            if constexpr (kMinMax) {
                minmax(group, length, &first[g], &second[g]);
            } else {
                const float m = std::bit_cast<float>(bits);
                first[g] = m;
                if constexpr (kFormat == GREY_QUANT_Q4_0) {  // the first value of that magnitude, with its sign (none when m is NaN)
                    const float* peak = std::find_if(group, group + length, [m](float v) { return std::fabs(v) == m; });
                    if (peak != group + length) first[g] = *peak;
                }
            }
        }
        const __m256 a = _mm256_mul_ps(_mm256_load_ps(first), one), b = _mm256_mul_ps(_mm256_load_ps(second), one);
        alignas(32) float e_sub[8] = {}, e_mul[8], scale32[8];
        alignas(16) uint16_t scale16[8], min16[8] = {};
        if constexpr (kFormat == GREY_QUANT_INT4_SYM) {
            const __m128i s = to_f16(_mm256_div_ps(a, _mm256_set1_ps(7.0f)));
            _mm_store_si128(reinterpret_cast<__m128i*>(scale16), s);
            _mm256_store_ps(e_mul, inverse8(_mm256_cvtph_ps(s)));
        } else if constexpr (kFormat == GREY_QUANT_INT4) {
            const __m128i mh = to_f16(a);
            const __m256 m = _mm256_cvtph_ps(mh);
            const __m128i s = to_f16(_mm256_div_ps(_mm256_sub_ps(b, m), _mm256_set1_ps(15.0f)));
            _mm_store_si128(reinterpret_cast<__m128i*>(scale16), s);
            _mm_store_si128(reinterpret_cast<__m128i*>(min16), mh);
            _mm256_store_ps(e_sub, m);
            _mm256_store_ps(e_mul, inverse8(_mm256_cvtph_ps(s)));
        } else if constexpr (kFormat == GREY_QUANT_NF4) {
            _mm256_store_ps(scale32, a);
            _mm256_store_ps(e_mul, inverse8(a));
        } else if constexpr (kFormat == GREY_QUANT_Q8_0 || kFormat == GREY_QUANT_Q4_0) {
            const __m256 d = _mm256_div_ps(a, _mm256_set1_ps(kFormat == GREY_QUANT_Q8_0 ? 127.0f : -8.0f));
            _mm_store_si128(reinterpret_cast<__m128i*>(scale16), to_f16(d));
            _mm256_store_ps(e_mul, inverse8(d));
        } else {  // Q4_1
            const __m256 d = _mm256_div_ps(_mm256_sub_ps(b, a), _mm256_set1_ps(15.0f));
            _mm_store_si128(reinterpret_cast<__m128i*>(scale16), to_f16(d));
            _mm_store_si128(reinterpret_cast<__m128i*>(min16), to_f16(a));
            _mm256_store_ps(e_sub, a);
            _mm256_store_ps(e_mul, inverse8(d));
        }
        for (std::size_t g = 0; g < count; ++g) {
            const float* group = x + g * length;
            const std::size_t r = g0 + g;
            if constexpr (kGgml) {
                uint8_t* block = codes + r * block_bytes;
                std::memcpy(block, &scale16[g], 2);
                if constexpr (kFormat == GREY_QUANT_Q4_1) std::memcpy(block + 2, &min16[g], 2);
                if constexpr (kFormat == GREY_QUANT_Q8_0) {
                    encode(group, 32, EncodeSpec{0.0f, e_mul[g], 0.0f, Rounding::nearest_away, -128, 127}, reinterpret_cast<int8_t*>(block + 2));
                } else {
                    constexpr bool kQ40 = kFormat == GREY_QUANT_Q4_0;
                    encode(group, 32, EncodeSpec{e_sub[g], e_mul[g], kQ40 ? 8.5f : 0.5f, Rounding::truncate, 0, 15}, buffer);
                    pack_ggml_nibbles(buffer, 1, block + grey::common::ggml_header_bytes(kFormat), block_bytes);
                }
            } else {
                if constexpr (kFormat == GREY_QUANT_NF4) std::memcpy(scales + 4 * r, &scale32[g], 4);
                if constexpr (kFormat == GREY_QUANT_INT4 || kFormat == GREY_QUANT_INT4_SYM) std::memcpy(scales + 2 * r, &scale16[g], 2);
                if constexpr (kFormat == GREY_QUANT_INT4) std::memcpy(mins + 2 * r, &min16[g], 2);
                const int bias = kFormat == GREY_QUANT_INT4_SYM ? 8 : 0;
                const EncodeSpec spec{e_sub[g], e_mul[g], 0.0f, Rounding::nearest_away, kFormat == GREY_QUANT_INT4_SYM ? -8 : 0, kFormat == GREY_QUANT_INT4_SYM ? 7 : 15};
                for (std::size_t i = 0; i < length; i += kMaxGroup) {
                    const std::size_t n = std::min(kMaxGroup, length - i);
                    if constexpr (kFormat == GREY_QUANT_NF4)
                        encode_nf4(group + i, n, e_mul[g], buffer);
                    else
                        encode(group + i, n, spec, buffer);
                    pack_nibble_pairs(buffer, n, bias, codes + r * (length / 2) + i / 2);
                }
            }
        }
    }
    return largest;
}

GREY_AVX2 uint32_t quantize_groups(int format, const float* x, std::size_t groups, std::size_t length, uint8_t* codes, std::byte* scales,
                                   std::byte* mins) {
    return with_group_format(format, [&](auto f) { return quantize_groups_of<f.value>(x, groups, length, codes, scales, mins); });
}

// dequantize_groups (kernels.hpp): decode()'s arithmetic ((q - subtract) * multiply + add, each step
// rounded, the add kept where it adds zero: it turns -0 into +0) on codes unpacked in registers, eight
// lanes a step; NF4 through decode_table16's permutes; each group's parameters read as load_coding reads
// them (common/numeric.hpp's f16_to_f32).
// Sixteen codes (bytes of `c`) of a group decoded to `to`, eight lanes at a time.
template <int kFormat>
GREY_AVX2 inline void decode_codes16(__m128i c, __m256 subtract, __m256 multiply, __m256 add, __m256 low_levels, __m256 high_levels, float* to) {
    for (int h = 0; h < 2; ++h) {
        const __m128i part = h == 0 ? c : _mm_srli_si128(c, 8);
        __m256 v;
        if constexpr (kFormat == GREY_QUANT_NF4) {
            const __m256i index = _mm256_cvtepu8_epi32(part);
            const __m256 upper = _mm256_castsi256_ps(_mm256_cmpgt_epi32(index, _mm256_set1_epi32(7)));
            v = _mm256_mul_ps(_mm256_blendv_ps(_mm256_permutevar8x32_ps(low_levels, index), _mm256_permutevar8x32_ps(high_levels, index), upper), multiply);
        } else {
            __m256i q = kFormat == GREY_QUANT_Q8_0 ? _mm256_cvtepi8_epi32(part) : _mm256_cvtepu8_epi32(part);
            if constexpr (kFormat == GREY_QUANT_INT4_SYM) q = _mm256_sub_epi32(q, _mm256_set1_epi32(8));
            v = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(q), subtract), multiply), add);
        }
        _mm256_storeu_ps(to + 8 * h, v);
    }
}

template <int kFormat>
GREY_AVX2 void dequantize_groups_of(const uint8_t* codes, const std::byte* scales, const std::byte* mins, std::size_t groups, std::size_t length,
                                    float* out) {
    const __m128i low_nibble = _mm_set1_epi8(0x0F);
    const __m256 low_levels = _mm256_loadu_ps(grey::common::kNf4Levels), high_levels = _mm256_loadu_ps(grey::common::kNf4Levels + 8);
    const auto f16_at = [](const void* at) {
        uint16_t h;
        std::memcpy(&h, at, 2);
        return grey::common::f16_to_f32(h);
    };
    for (std::size_t g = 0; g < groups; ++g, out += length) {
        if constexpr (kFormat == GREY_QUANT_Q8_0 || kFormat == GREY_QUANT_Q4_0 || kFormat == GREY_QUANT_Q4_1) {
            const std::size_t block_bytes = grey::common::ggml_block_bytes(kFormat);
            const uint8_t* block = codes + g * block_bytes;
            const __m256 subtract = _mm256_set1_ps(kFormat == GREY_QUANT_Q4_0 ? 8.0f : 0.0f), multiply = _mm256_set1_ps(f16_at(block));
            const __m256 add = _mm256_set1_ps(kFormat == GREY_QUANT_Q4_1 ? f16_at(block + 2) : 0.0f);
            if constexpr (kFormat == GREY_QUANT_Q8_0) {
                decode_codes16<kFormat>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2)), subtract, multiply, add, low_levels, high_levels, out);
                decode_codes16<kFormat>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 18)), subtract, multiply, add, low_levels, high_levels, out + 16);
            } else {
                const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + grey::common::ggml_header_bytes(kFormat)));
                decode_codes16<kFormat>(_mm_and_si128(qs, low_nibble), subtract, multiply, add, low_levels, high_levels, out);
                decode_codes16<kFormat>(_mm_and_si128(_mm_srli_epi16(qs, 4), low_nibble), subtract, multiply, add, low_levels, high_levels, out + 16);
            }
        } else {
            const uint8_t* packed = codes + g * (length / 2);
            __m256 multiply, add = _mm256_setzero_ps();
            const __m256 subtract = _mm256_setzero_ps();  // decode's subtract for these formats
            if constexpr (kFormat == GREY_QUANT_NF4) {
                float scale;
                std::memcpy(&scale, scales + 4 * g, 4);
                multiply = _mm256_set1_ps(scale);
            } else {
                multiply = _mm256_set1_ps(f16_at(scales + 2 * g));
                if constexpr (kFormat == GREY_QUANT_INT4) add = _mm256_set1_ps(f16_at(mins + 2 * g));
            }
            for (std::size_t i = 0; i < length; i += 32) {
                const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + i / 2));
                const __m128i lo = _mm_and_si128(b, low_nibble), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low_nibble);
                decode_codes16<kFormat>(_mm_unpacklo_epi8(lo, hi), subtract, multiply, add, low_levels, high_levels, out + i);
                decode_codes16<kFormat>(_mm_unpackhi_epi8(lo, hi), subtract, multiply, add, low_levels, high_levels, out + i + 16);
            }
        }
    }
}

GREY_AVX2 void dequantize_groups(int format, const uint8_t* codes, const std::byte* scales, const std::byte* mins, std::size_t groups,
                                 std::size_t length, float* out) {
    with_group_format(format, [&](auto f) { dequantize_groups_of<f.value>(codes, scales, mins, groups, length, out); });
}

constexpr Kernels kAvx2{"avx2",     absmax,     minmax,     encode,     decode,            decode_table,      decode_table16,
                        decode_fp8, f16_to_f32, encode_fp8, encode_nf4, pack_ggml_nibbles, pack_nibble_pairs, unpack_nibble_pairs,
                        max_magnitude32, max_magnitude16, error_lanes, quantize_groups, dequantize_groups, nullptr, nullptr};

}  // namespace

const Kernels* avx2_kernels() noexcept {
    // __builtin_cpu_supports reads what the CPU reported at start-up; the answer never changes.
    return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) ? &kAvx2 : nullptr;
}

#else

const Kernels* avx2_kernels() noexcept { return nullptr; }

#endif

}  // namespace grey::host::quant
