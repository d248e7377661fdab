// AVX-512 (F, BW, VL) versions of the primitives in kernels.hpp: the AVX2 computations on sixteen lanes,
// with masked loads and stores for the tail instead of a scalar loop (a masked-off lane is neither read
// nor written, so a tail costs one more iteration and gives the same bits). Compiled with target
// attributes, as the AVX2 file is; avx512_kernels() hands them out only when the CPU and the operating
// system support them.
#include "host/quant/kernels.hpp"

#include "common/quant_coding.hpp"
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
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace grey::host::quant {

#if defined(GREY_HAVE_AVX512_PATH)
namespace {

#define GREY_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c")))

// The lanes of a 16-lane step that lie before n - i.
GREY_AVX512 __mmask16 lanes(std::size_t i, std::size_t n) {
    const std::size_t left = n - i;
    return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

// The range reductions keep independent maxima (and minima) over whole steps with plain loads, so that
// one maximum's latency does not bound the loop, and combine them at the end: for the values they are
// given (no NaN: the quantizer refuses it first) the largest is the largest in any order, and a zero's
// sign is settled by the scalar scan below.
GREY_AVX512 float absmax(const float* x, std::size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    std::size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_max_ps(a0, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
        a1 = _mm512_max_ps(a1, _mm512_abs_ps(_mm512_loadu_ps(x + i + 16)));
        a2 = _mm512_max_ps(a2, _mm512_abs_ps(_mm512_loadu_ps(x + i + 32)));
        a3 = _mm512_max_ps(a3, _mm512_abs_ps(_mm512_loadu_ps(x + i + 48)));
    }
    for (; i < n; i += 16) a0 = _mm512_max_ps(a0, _mm512_abs_ps(_mm512_maskz_loadu_ps(lanes(i, n), x + i)));
    return _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(a0, a1), _mm512_max_ps(a2, a3)));
}

GREY_AVX512 void minmax(const float* x, std::size_t n, float* out_min, float* out_max) {
    __m512 lo = _mm512_set1_ps(INFINITY), hi = _mm512_set1_ps(-INFINITY), lo1 = lo, hi1 = hi;
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 v = _mm512_loadu_ps(x + i), w = _mm512_loadu_ps(x + i + 16);
        lo = _mm512_min_ps(lo, v);
        hi = _mm512_max_ps(hi, v);
        lo1 = _mm512_min_ps(lo1, w);
        hi1 = _mm512_max_ps(hi1, w);
    }
    for (; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        lo = _mm512_mask_min_ps(lo, k, lo, v);
        hi = _mm512_mask_max_ps(hi, k, hi, v);
    }
    const float l = _mm512_reduce_min_ps(_mm512_min_ps(lo, lo1)), h = _mm512_reduce_max_ps(_mm512_max_ps(hi, hi1));
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

// v + copysign(kHalfBelow, v), whose truncation is roundf(v) (kernels_vector.hpp says why); the encoders
// leave the truncation to the conversion to integers.
GREY_AVX512 __m512 add_half_away(__m512 v) {
    return _mm512_add_ps(v, _mm512_or_ps(_mm512_and_ps(v, _mm512_set1_ps(-0.0f)), _mm512_set1_ps(kHalfBelow)));
}

// encode's codes of sixteen values (32-bit lanes, whose low bytes are the codes); kShifted: with the
// subtract and add (x - 0 and v + 0 change no code, so encode leaves them out where both are zero).
// Rounding is the conversion's truncation after the clamp: lo and hi are integers, so truncating the
// clamped value equals clamping the truncated one, and no separate round is needed. A NaN passes both
// clamps (each returns its second operand when one is NaN) and converts to 0x80000000, whose low byte is
// the 0 the scalar path gives it.
template <bool kShifted>
GREY_AVX512 inline __m512i encode16(__m512 x, __m512 subtract, __m512 multiply, __m512 add, __m512 lo, __m512 hi, bool nearest) {
    // Separate multiply and add: a fused multiply-add would round once and differ from the scalar path.
    __m512 v = _mm512_mul_ps(kShifted ? _mm512_sub_ps(x, subtract) : x, multiply);
    if constexpr (kShifted) v = _mm512_add_ps(v, add);
    if (nearest) v = add_half_away(v);
    return _mm512_cvttps_epi32(_mm512_min_ps(hi, _mm512_max_ps(lo, v)));
}

template <bool kShifted>
GREY_AVX512 void encode_with(const float* x, std::size_t n, const EncodeSpec& spec, int8_t* out) {
    const __m512 subtract = _mm512_set1_ps(spec.subtract), multiply = _mm512_set1_ps(spec.multiply), add = _mm512_set1_ps(spec.add);
    const __m512 lo = _mm512_set1_ps(static_cast<float>(spec.lo)), hi = _mm512_set1_ps(static_cast<float>(spec.hi));
    const bool nearest = spec.rounding == Rounding::nearest_away;
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {  // whole steps: plain loads and stores (load_codes says why)
        const __m512i c0 = encode16<kShifted>(_mm512_loadu_ps(x + i), subtract, multiply, add, lo, hi, nearest);
        const __m512i c1 = encode16<kShifted>(_mm512_loadu_ps(x + i + 16), subtract, multiply, add, lo, hi, nearest);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi32_epi8(c0));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i + 16), _mm512_cvtepi32_epi8(c1));
    }
    for (; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        store_codes(out + i, k, encode16<kShifted>(_mm512_maskz_loadu_ps(k, x + i), subtract, multiply, add, lo, hi, nearest));
    }
}

GREY_AVX512 void encode(const float* x, std::size_t n, const EncodeSpec& spec, int8_t* out) {
    if (spec.subtract == 0.0f && spec.add == 0.0f)
        encode_with<false>(x, n, spec, out);
    else
        encode_with<true>(x, n, spec, out);
}

// quantize_int8_runs (kernels.hpp) asks for the values 16 KiB ahead of those it reads, one line in four,
// into the second-level cache: the L2 then streams the rest, and the loads in flight do not wait on the
// first-level cache's few miss buffers. Measured on the Zen 4 guest of bench/RESULTS.md against asking
// for every line (into L1 or L2), for the next run only, or none.
constexpr std::size_t kAheadFloats = 4096;

// The largest magnitude's bits (max_magnitude32's) of x[begin, end), asking for what lies ahead up to
// x[total].
GREY_AVX512 uint32_t scan_int8_run(const float* x, std::size_t begin, std::size_t end, std::size_t total) {
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i t0 = _mm512_setzero_si512(), t1 = t0, t2 = t0, t3 = t0;
    std::size_t i = begin;
    for (; i + 64 <= end; i += 64) {
        if (i + kAheadFloats < total) _mm_prefetch(reinterpret_cast<const char*>(x + i + kAheadFloats), _MM_HINT_T1);
        t0 = _mm512_max_epu32(t0, _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + i)), magnitude));
        t1 = _mm512_max_epu32(t1, _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + i + 16)), magnitude));
        t2 = _mm512_max_epu32(t2, _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + i + 32)), magnitude));
        t3 = _mm512_max_epu32(t3, _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(x + i + 48)), magnitude));
    }
    for (; i < end; i += 16) t0 = _mm512_max_epu32(t0, _mm512_and_si512(_mm512_castps_si512(_mm512_maskz_loadu_ps(lanes(i, end), x + i)), magnitude));
    return _mm512_reduce_max_epu32(_mm512_max_epu32(_mm512_max_epu32(t0, t1), _mm512_max_epu32(t2, t3)));
}

// INT8's code of x (32-bit lanes) for the multiplier make_coding gives the absmax of the values it comes
// from: encode16 without the clamp to [-127, 127], which such values never pass. The multiplier is
// RN(1 / RN(absmax / 127)), finite and above zero (quantize_int8_runs codes the other runs apart), so
// |x| * multiply stays within 127 (1 + 2^-20): each of the three roundings errs by at most 2^-24 of its
// result, but the scale's by up to 2^-150 / scale where it is subnormal, under 2^-21.9 down to 2.94e-39,
// below which 1 / scale overflows and the multiplier is 0. Half added away from zero, that stays below
// 127.5 and truncates to 127 at most, as the clamp would give.
GREY_AVX512 inline __m512i int8_code(__m512 x, __m512 multiply) { return _mm512_cvttps_epi32(add_half_away(_mm512_mul_ps(x, multiply))); }

// Four steps of codes (within [-127, 127]: the saturating packs keep them) as 64 bytes in order.
GREY_AVX512 inline __m512i pack_codes(__m512i c0, __m512i c1, __m512i c2, __m512i c3) {
    // The packs interleave the four steps' 128-bit lanes: dword 4k + j of the result holds step j's lane k.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    return _mm512_permutexvar_epi32(order, _mm512_packs_epi16(_mm512_packs_epi32(c0, c1), _mm512_packs_epi32(c2, c3)));
}

// The codes of x[begin, begin + n) to out[0, n) (see int8_code for `multiply`), asking ahead up to
// x[total]. Streaming: the whole 64-byte lines of the output with non-temporal stores, the partial ones at
// either end with ordinary (masked) ones.
// out[from, to) from x[from, to), sixteen at a time with masked loads and stores.
GREY_AVX512 void encode_int8_masked(const float* x, std::size_t from, std::size_t to, __m512 multiply, int8_t* out) {
    for (std::size_t j = from; j < to; j += 16) {
        const __mmask16 k = lanes(j, to);
        _mm512_mask_cvtepi32_storeu_epi8(out + j, k, int8_code(_mm512_maskz_loadu_ps(k, x + j), multiply));
    }
}

GREY_AVX512 void encode_int8_run(const float* x, std::size_t begin, std::size_t n, std::size_t total, float multiply, int8_t* out, bool stream) {
    const __m512 m = _mm512_set1_ps(multiply);
    std::size_t j = 0;
    if (stream) {  // up to the first line boundary
        j = std::min(n, static_cast<std::size_t>((64 - reinterpret_cast<uintptr_t>(out) % 64) % 64));
        encode_int8_masked(x + begin, 0, j, m, out);
    }
    for (; j + 64 <= n; j += 64) {
        const std::size_t i = begin + j;
        if (i + kAheadFloats < total) _mm_prefetch(reinterpret_cast<const char*>(x + i + kAheadFloats), _MM_HINT_T1);
        const __m512i codes = pack_codes(int8_code(_mm512_loadu_ps(x + i), m), int8_code(_mm512_loadu_ps(x + i + 16), m),
                                         int8_code(_mm512_loadu_ps(x + i + 32), m), int8_code(_mm512_loadu_ps(x + i + 48), m));
        if (stream)
            _mm512_stream_si512(reinterpret_cast<__m512i*>(out + j), codes);
        else
            _mm512_storeu_si512(out + j, codes);
    }
    encode_int8_masked(x + begin, j, n, m, out);
}

GREY_AVX512 uint32_t quantize_int8_runs(const float* x, std::size_t runs, std::size_t length, int8_t* codes, std::byte* scales, bool stream) {
    const std::size_t total = runs * length;
    uint32_t largest = 0;
    for (std::size_t r = 0; r < runs; ++r) {
        const std::size_t begin = r * length;
        const uint32_t top = scan_int8_run(x, begin, begin + length, total);
        largest = std::max(largest, top);
        grey::common::Stats s{};
        s.absmax = std::bit_cast<float>(top);
        const grey::common::Coding c = grey::common::make_coding(GREY_QUANT_INT8, s, 1.0f);
        std::memcpy(scales + 4 * r, &c.scale, 4);
        if (c.e_mul > 0.0f)
            encode_int8_run(x, begin, length, total, c.e_mul, codes + begin, stream);
        else  // 0 (an infinity, or a scale whose reciprocal overflows) or NaN: every product 0 or NaN, code 0
            std::memset(codes + begin, 0, length);
    }
    if (stream) _mm_sfence();  // before the caller reports the codes written
    return largest;
}

// The first k lanes (k at most 16... or more: all).
GREY_AVX512 inline __mmask16 below(std::size_t k) { return k >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << k) - 1u); }

// Writes consecutive 16-float vectors to consecutive floats from `out` on (4-byte aligned, any offset
// from a cache line) a whole 64-byte line at a time: each line is the last `shift` values of the vector
// before and the first 16 - shift of this one (one two-register permute), written with a streaming
// store, except the partial lines at either end (masked ordinary stores, which leave the neighbours'
// floats alone). The caller fences (StreamingKernels::fence).
class LineWriter {
public:
    GREY_AVX512 explicit LineWriter(float* out)
        : shift_(static_cast<unsigned>(reinterpret_cast<uintptr_t>(out) % 64 / 4)),
          line_(reinterpret_cast<float*>(reinterpret_cast<uintptr_t>(out) & ~uintptr_t{63})),  // (not out - shift: before the array)
          index_(_mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(16 - static_cast<int>(shift_)))),
          carry_(_mm512_setzero_ps()),
          ours_(static_cast<__mmask16>(0xFFFFu << shift_)) {}

    // The next 16 values.
    GREY_AVX512 void put(__m512 v) {
        const __m512 line = _mm512_permutex2var_ps(carry_, index_, v);  // lane l: (carry, v)[l + 16 - shift]
        if (ours_ == 0xFFFF) {
            _mm512_stream_ps(line_, line);
        } else {
            _mm512_mask_storeu_ps(line_, ours_, line);  // the first line, begun before `out`
            ours_ = 0xFFFF;
        }
        line_ += 16;
        carry_ = v;
    }
    // The last `count` values (0 to 16), in v's first lanes; the writer is spent.
    GREY_AVX512 void finish(__m512 v, std::size_t count) {
        const std::size_t left = shift_ + count;  // values from line_ on: the carry's `shift`, then v's
        _mm512_mask_storeu_ps(line_, static_cast<__mmask16>(ours_ & below(left)), _mm512_permutex2var_ps(carry_, index_, v));
        if (left > 16) _mm512_mask_storeu_ps(line_ + 16, below(left - 16), _mm512_permutex2var_ps(v, index_, v));
    }

private:
    unsigned shift_;  // `out`'s offset from its line, in floats
    float* line_;     // the next line to write
    __m512i index_;
    __m512 carry_;    // the vector before
    __mmask16 ours_;  // the lanes of the next line that lie in the output
};

// Where the element-wise decoders put step i's lanes k (all but the last step's are whole): ordinary
// masked stores, or a LineWriter's streaming ones.
template <bool kStream>
class DecodeOut;

template <>
class DecodeOut<false> {
public:
    GREY_AVX512 DecodeOut(float* out, std::size_t) : out_(out) {}
    GREY_AVX512 void put(std::size_t i, __mmask16 k, __m512 v) { _mm512_mask_storeu_ps(out_ + i, k, v); }
    GREY_AVX512 void done() {}

private:
    float* out_;
};

template <>
class DecodeOut<true> {
public:
    GREY_AVX512 DecodeOut(float* out, std::size_t n) : writer_(out), n_(n) {}
    GREY_AVX512 void put(std::size_t i, __mmask16, __m512 v) {
        if (i + 16 <= n_)
            writer_.put(v);
        else
            writer_.finish(v, n_ - i);
    }
    GREY_AVX512 void done() {
        if (n_ % 16 == 0) writer_.finish(_mm512_setzero_ps(), 0);
    }

private:
    LineWriter writer_;
    std::size_t n_;
};

template <bool kStream>
GREY_AVX512 void decode_to(const int8_t* q, std::size_t n, const DecodeSpec& spec, float* out) {
    const __m512 subtract = _mm512_set1_ps(spec.subtract), multiply = _mm512_set1_ps(spec.multiply), add = _mm512_set1_ps(spec.add);
    DecodeOut<kStream> to(out, n);
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(load_codes(q + i, k)));
        to.put(i, k, _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(v, subtract), multiply), add));
    }
    to.done();
}
GREY_AVX512 void decode(const int8_t* q, std::size_t n, const DecodeSpec& spec, float* out) { decode_to<false>(q, n, spec, out); }

GREY_AVX512 void decode_table(const uint8_t* codes, std::size_t n, const float* table, float scale, float* out) {
    const __m512 s = _mm512_set1_ps(scale);
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        const __m512i index = _mm512_cvtepu8_epi32(load_codes(codes + i, k));
        const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, index, table, 4);
        _mm512_mask_storeu_ps(out + i, k, _mm512_mul_ps(v, s));
    }
}

template <bool kStream>
GREY_AVX512 void decode_table16_to(const uint8_t* codes, std::size_t n, const float* table, float scale, float* out) {
    const __m512 s = _mm512_set1_ps(scale), levels = _mm512_loadu_ps(table);
    DecodeOut<kStream> to(out, n);
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        const __m512i index = _mm512_cvtepu8_epi32(load_codes(codes + i, k));
        to.put(i, k, _mm512_mul_ps(_mm512_permutexvar_ps(index, levels), s));
    }
    to.done();
}
GREY_AVX512 void decode_table16(const uint8_t* codes, std::size_t n, const float* table, float scale, float* out) {
    decode_table16_to<false>(codes, n, table, scale, out);
}

// fp8_to_f32 times the scale on sixteen lanes (kernels_vector.hpp says how).
template <bool kStream>
GREY_AVX512 void decode_fp8_to(const uint8_t* codes, std::size_t n, int format, float scale, float* out) {
    const Fp8Decoding d = fp8_decoding(format);
    const __m512 s = _mm512_set1_ps(scale), step = _mm512_set1_ps(d.subnormal_step);
    const __m512i magnitude_mask = _mm512_set1_epi32(0x7F), rebias = _mm512_set1_epi32(d.rebias);
    const __m512i infinity_code = _mm512_set1_epi32(d.infinity_code), first_nan = _mm512_set1_epi32(d.first_nan_code);
    const __m512i infinity = _mm512_set1_epi32(0x7F800000), nan = _mm512_set1_epi32(0x7FC00000);
    const __m512i mantissa_mask = _mm512_set1_epi32((1 << (23 - d.shift)) - 1), exponent_mask = _mm512_set1_epi32(0x7F & ~((1 << (23 - d.shift)) - 1));
    const __m128i shift = _mm_cvtsi32_si128(d.shift);
    DecodeOut<kStream> to(out, n);
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
        const __m512 product = _mm512_mul_ps(_mm512_castsi512_ps(bits), s);
        // NaN codes after the product: the quiet NaN whatever the scale (kernels.hpp), no sign.
        to.put(i, k, _mm512_mask_blend_ps(_mm512_cmpge_epi32_mask(magnitude, first_nan), product, _mm512_castsi512_ps(nan)));
    }
    to.done();
}
GREY_AVX512 void decode_fp8(const uint8_t* codes, std::size_t n, const float*, int format, float scale, float* out) {
    decode_fp8_to<false>(codes, n, format, scale, out);
}

GREY_AVX512 void f16_to_f32(const uint16_t* in, std::size_t n, float* out) {
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        _mm512_mask_storeu_ps(out + i, k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, in + i)));
    }
}

// Sixteen fp8 codes (32-bit lanes) of x * inverse; kDropped: the float32 mantissa bits the format drops
// (e4m3 20, e5m2 21), an immediate shift.
template <int kDropped>
GREY_AVX512 inline __m512i fp8_code16(__m512 x, __m512 inv, const Fp8Encoding& e) {
    const __m512 v = _mm512_mul_ps(x, inv);
    const __m512 magnitude = _mm512_abs_ps(v);
    const __m512i bits = _mm512_castps_si512(magnitude);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, kDropped), _mm512_set1_epi32(1));
    const __m512i normal = _mm512_sub_epi32(_mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(e.round_bias), odd)), kDropped),
                                            _mm512_set1_epi32(e.rebias));
    const __m512i subnormal = _mm512_cvtps_epi32(_mm512_mul_ps(magnitude, _mm512_set1_ps(e.subnormal_scale)));
    __m512i code = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(magnitude, _mm512_set1_ps(e.min_normal), _CMP_LT_OQ), normal, subnormal);
    code = _mm512_min_epi32(code, _mm512_set1_epi32(e.max_code));
    code = _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), code, _mm512_set1_epi32(e.nan_code));
    return _mm512_or_si512(code, _mm512_srli_epi32(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(INT32_MIN)), 24));
}

template <int kDropped>
GREY_AVX512 void encode_fp8_with(const float* x, std::size_t n, float inverse, const Fp8Encoding& e, int8_t* out) {
    const __m512 inv = _mm512_set1_ps(inverse);
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32) {  // whole steps: plain loads and stores
        const __m512i c0 = fp8_code16<kDropped>(_mm512_loadu_ps(x + i), inv, e), c1 = fp8_code16<kDropped>(_mm512_loadu_ps(x + i + 16), inv, e);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi32_epi8(c0));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i + 16), _mm512_cvtepi32_epi8(c1));
    }
    for (; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        store_codes(out + i, k, fp8_code16<kDropped>(_mm512_maskz_loadu_ps(k, x + i), inv, e));
    }
}

// f32_to_fp8 on sixteen lanes, on the bits (kernels_vector.hpp says how).
GREY_AVX512 void encode_fp8(const float* x, std::size_t n, float inverse, int format, int8_t* out) {
    const Fp8Encoding e = fp8_encoding(format);
    if (e.dropped_bits == 20)
        encode_fp8_with<20>(x, n, inverse, e, out);
    else if (e.dropped_bits == 21)
        encode_fp8_with<21>(x, n, inverse, e, out);
    else
        std::abort();  // the two fp8 formats drop 20 and 21 bits
}

// nf4_buckets() in registers, sixteen buckets a register.
struct Nf4BucketLanes {
    __m512 midpoint_lo, midpoint_hi;
    __m512i below_lo, below_hi;
};

GREY_AVX512 inline Nf4BucketLanes nf4_bucket_lanes() {
    const Nf4Buckets& b = nf4_buckets();
    return {_mm512_loadu_ps(b.midpoint.data()), _mm512_loadu_ps(b.midpoint.data() + 16), _mm512_loadu_si512(b.below.data()),
            _mm512_loadu_si512(b.below.data() + 16)};
}

// nf4_code of the products v, by their buckets (Nf4Buckets): nf4_bucket's steps, where max returns its
// second operand (0) for a NaN.
GREY_AVX512 inline __m512i nf4_code_of(__m512 v, const Nf4BucketLanes& t) {
    __m512 place = _mm512_fmadd_ps(v, _mm512_set1_ps(16.0f), _mm512_set1_ps(16.0f));
    place = _mm512_min_ps(_mm512_max_ps(place, _mm512_setzero_ps()), _mm512_set1_ps(31.0f));
    const __m512i bucket = _mm512_cvttps_epi32(place);
    const __m512 midpoint = _mm512_permutex2var_ps(t.midpoint_lo, bucket, t.midpoint_hi);
    const __m512i below = _mm512_permutex2var_epi32(t.below_lo, bucket, t.below_hi);
    return _mm512_mask_add_epi32(below, _mm512_cmp_ps_mask(v, midpoint, _CMP_GT_OQ), below, _mm512_set1_epi32(1));
}

GREY_AVX512 void encode_nf4(const float* x, std::size_t n, float inverse, int8_t* out) {
    const __m512 inv = _mm512_set1_ps(inverse);
    const Nf4BucketLanes buckets = nf4_bucket_lanes();
    for (std::size_t i = 0; i < n; i += 16) {
        const __mmask16 k = lanes(i, n);
        store_codes(out + i, k, nf4_code_of(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv), buckets));
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
    // Four independent maxima over whole 64-lane steps with plain loads (the scan reads whole tensors and
    // is bound by how many loads are in flight), then the tail masked; an integer maximum in any order.
    __m512i t0 = _mm512_setzero_si512(), t1 = t0, t2 = t0, t3 = t0;
    std::size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const std::byte* at = bits + 4 * i;
        t0 = _mm512_max_epu32(t0, _mm512_and_si512(_mm512_loadu_si512(at), magnitude));
        t1 = _mm512_max_epu32(t1, _mm512_and_si512(_mm512_loadu_si512(at + 64), magnitude));
        t2 = _mm512_max_epu32(t2, _mm512_and_si512(_mm512_loadu_si512(at + 128), magnitude));
        t3 = _mm512_max_epu32(t3, _mm512_and_si512(_mm512_loadu_si512(at + 192), magnitude));
    }
    for (; i < n; i += 16) t0 = _mm512_max_epu32(t0, _mm512_and_si512(_mm512_maskz_loadu_epi32(lanes(i, n), bits + 4 * i), magnitude));
    return _mm512_reduce_max_epu32(_mm512_max_epu32(_mm512_max_epu32(t0, t1), _mm512_max_epu32(t2, t3)));
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

// quantize_groups (kernels.hpp): sixteen groups at a time. Each group's statistics are those of absmax
// and minmax above (the largest and smallest values, found in another order); the sixteen
// groups' parameters are then made together, make_coding's steps lane by lane (IEEE multiply, subtract
// and divide; F16C's round-to-nearest-even conversions, which give common/numeric.hpp's f32_to_f16 bits
// for every finite value, and the caller guarantees finite ones where fp16 is stored); and each group is
// coded with encode()'s arithmetic and packed from registers, with no code buffer between kernels. The
// one difference from encode: no NaN check, as a finite value at most 65504 times a finite multiplier
// cannot make one (NF4 codes a NaN product 0 by its comparisons, as encode_nf4 does). NF4 takes any
// input, but a NaN makes its group's statistics depend on the order of the maxima (as in absmax): the
// quantizer refuses NaN before it quantizes.

// common::inverse on sixteen lanes: 1/d, 0 for d = 0 and where the reciprocal is infinite.
GREY_AVX512 __m512 inverse16(__m512 d) {
    const __m512 r = _mm512_div_ps(_mm512_set1_ps(1.0f), d);
    const __mmask16 finite = static_cast<__mmask16>(~_mm512_fpclass_ps_mask(r, 0x18));  // 0x08 +inf, 0x10 -inf
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_UQ) & finite, r);
}
GREY_AVX512 __m256i to_f16(__m512 v) { return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }

// The statistics of sixteen groups, one lane each, without a reduction per group: each group's
// statistic is first kept in a register of sixteen partial results (the extremes of its lanes, over its
// whole 32-lane steps), and the sixteen registers are then folded in a tree of four levels, each level
// halving the lanes that hold one group's partial result and doubling the groups a register holds
// (256-bit halves, then 128-bit quarters, then pairs, then single lanes): 15 folds of two shuffles and
// one minimum or maximum for the batch, instead of 16 reductions of four shuffles each and the scalar
// stores between them. The extremes are those of absmax and minmax above in another order, which gives
// the same values (integers; floats without NaN, whose zero's sign is settled by the scalar scan); a NaN
// shows in the magnitude bits instead (quantize_groups' return value).
struct MinPs {
    GREY_AVX512 __m512i operator()(__m512i a, __m512i b) const { return _mm512_castps_si512(_mm512_min_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(b))); }
};
struct MaxPs {
    GREY_AVX512 __m512i operator()(__m512i a, __m512i b) const { return _mm512_castps_si512(_mm512_max_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(b))); }
};
struct MaxEpu32 {
    GREY_AVX512 __m512i operator()(__m512i a, __m512i b) const { return _mm512_max_epu32(a, b); }
};

// Two groups' sixteen partials into eight each: a's in the low 256 bits, b's in the high.
template <class Op>
GREY_AVX512 inline __m512i fold_halves(__m512i a, __m512i b) {
    return Op{}(_mm512_shuffle_i64x2(a, b, 0x44), _mm512_shuffle_i64x2(a, b, 0xEE));  // quarters (a0 a1 b0 b1), (a2 a3 b2 b3)
}
// Two registers of two groups' eight partials into one of four groups' four, one 128-bit quarter a group:
// a's groups in quarters 0 and 1, b's in 2 and 3.
template <class Op>
GREY_AVX512 inline __m512i fold_quarters(__m512i a, __m512i b) {
    return Op{}(_mm512_shuffle_i64x2(a, b, 0x88), _mm512_shuffle_i64x2(a, b, 0xDD));  // quarters (a0 a2 b0 b2), (a1 a3 b1 b3)
}
// Four groups' statistics (sixteen partials each) into one register, group i's four partials in quarter i.
template <class Op>
GREY_AVX512 inline __m512i fold4(__m512i g0, __m512i g1, __m512i g2, __m512i g3) {
    return fold_quarters<Op>(fold_halves<Op>(g0, g1), fold_halves<Op>(g2, g3));
}
// Two registers of fold4 into one of eight groups' two partials: quarter q's 64-bit halves folded, so
// that it holds two partials of a's group q, then two of b's.
template <class Op>
GREY_AVX512 inline __m512i fold_pairs(__m512i a, __m512i b) {
    return Op{}(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}
// Sixteen groups' statistics from four registers of fold4 (groups 0-3, 4-7, 8-11, 12-15): their pairs
// folded, then their 32-bit lanes, which leaves group 4r + q in lane 4q + r; the permute puts group g in
// lane g.
template <class Op>
GREY_AVX512 inline __m512i fold16(__m512i d0, __m512i d1, __m512i d2, __m512i d3) {
    const __m512 e0 = _mm512_castsi512_ps(fold_pairs<Op>(d0, d1)), e1 = _mm512_castsi512_ps(fold_pairs<Op>(d2, d3));
    const __m512i f = Op{}(_mm512_castps_si512(_mm512_shuffle_ps(e0, e1, 0x88)), _mm512_castps_si512(_mm512_shuffle_ps(e0, e1, 0xDD)));
    return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), f);
}

// A group's sixteen partial minima and maxima over its whole 32-lane steps, and its values' magnitude
// bits into `top` (an integer maximum, which a NaN reaches; the float extremes pass a NaN by).
struct Range16 {
    __m512i lo, hi;
};
GREY_AVX512 inline Range16 group_range16(const float* x, std::size_t n, __m512i& top) {
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
    __m512 lo = _mm512_set1_ps(INFINITY), hi = _mm512_set1_ps(-INFINITY);
    for (std::size_t i = 0; i < n; i += 32) {
        const __m512 v = _mm512_loadu_ps(x + i), w = _mm512_loadu_ps(x + i + 16);
        lo = _mm512_min_ps(lo, _mm512_min_ps(v, w));
        hi = _mm512_max_ps(hi, _mm512_max_ps(v, w));
        top = _mm512_max_epu32(top, _mm512_max_epu32(_mm512_and_si512(_mm512_castps_si512(v), magnitude), _mm512_and_si512(_mm512_castps_si512(w), magnitude)));
    }
    return {_mm512_castps_si512(lo), _mm512_castps_si512(hi)};
}
// A group's sixteen partial magnitude maxima (bits) over its whole 32-lane steps.
GREY_AVX512 inline __m512i group_magnitude16(const float* x, std::size_t n) {
    const __m512i magnitude = _mm512_set1_epi32(0x7FFFFFFF);
    __m512i top = _mm512_setzero_si512();
    for (std::size_t i = 0; i < n; i += 32)
        top = _mm512_max_epu32(top, _mm512_max_epu32(_mm512_and_si512(_mm512_loadu_si512(x + i), magnitude),
                                                      _mm512_and_si512(_mm512_loadu_si512(x + i + 16), magnitude)));
    return top;
}

// minmax() of `count` (at most 16) groups of `length`, group g's in lane g of lo and hi (unused lanes 0),
// the magnitude bits of every value read folded into `top`. kLength: `length` known when compiled (0:
// not), so that the loops unroll into registers.
template <std::size_t kLength>
GREY_AVX512 inline void batch_minmax(const float* x, std::size_t count, std::size_t length, __m512i& top, __m512& lo, __m512& hi) {
    if constexpr (kLength != 0) length = kLength;
    __m512i dlo[4], dhi[4];
#pragma GCC unroll 4
    for (std::size_t q = 0; q < 4; ++q) {
        Range16 r[4];
#pragma GCC unroll 4
        for (std::size_t i = 0; i < 4; ++i) {
            const std::size_t g = 4 * q + i;
            r[i] = g < count ? group_range16(x + g * length, length, top) : Range16{_mm512_setzero_si512(), _mm512_setzero_si512()};
        }
        dlo[q] = fold4<MinPs>(r[0].lo, r[1].lo, r[2].lo, r[3].lo);
        dhi[q] = fold4<MaxPs>(r[0].hi, r[1].hi, r[2].hi, r[3].hi);
    }
    lo = _mm512_castsi512_ps(fold16<MinPs>(dlo[0], dlo[1], dlo[2], dlo[3]));
    hi = _mm512_castsi512_ps(fold16<MaxPs>(dhi[0], dhi[1], dhi[2], dhi[3]));
    // Which zero a sequential scan keeps depends on the order it meets them (minmax above): such a
    // group's extremes come from the scalar scan.
    const __mmask16 zero = (_mm512_cmp_ps_mask(lo, _mm512_setzero_ps(), _CMP_EQ_OQ) | _mm512_cmp_ps_mask(hi, _mm512_setzero_ps(), _CMP_EQ_OQ)) &
                           lanes(0, count);
    if (zero != 0) {
        alignas(64) float l[16], h[16];
        _mm512_store_ps(l, lo);
        _mm512_store_ps(h, hi);
        for (std::size_t g = 0; g < count; ++g)
            if ((zero >> g) & 1u) scalar_kernels().minmax(x + g * length, length, &l[g], &h[g]);
        lo = _mm512_load_ps(l);
        hi = _mm512_load_ps(h);
    }
}

// The bits of the largest magnitude of `count` (at most 16) groups of `length`, group g's in lane g
// (unused lanes 0); kLength as in batch_minmax. Unrolled only where the length is known: unrolled, the
// loops over longer groups of unknown length ran slower (int4-sym-g128: 4.8 -> 7.4 ms CPU a tensor on
// one thread, AVX-512, measured under load), and a flat array of sixteen also lost a few per cent
// there, while the minimum and maximum above gain either way.
template <std::size_t kLength>
GREY_AVX512 inline __m512i batch_magnitude(const float* x, std::size_t count, std::size_t length) {
    if constexpr (kLength != 0) {
        __m512i m[16];
#pragma GCC unroll 16
        for (std::size_t g = 0; g < 16; ++g) m[g] = g < count ? group_magnitude16(x + g * kLength, kLength) : _mm512_setzero_si512();
        return fold16<MaxEpu32>(fold4<MaxEpu32>(m[0], m[1], m[2], m[3]), fold4<MaxEpu32>(m[4], m[5], m[6], m[7]),
                                fold4<MaxEpu32>(m[8], m[9], m[10], m[11]), fold4<MaxEpu32>(m[12], m[13], m[14], m[15]));
    } else {
        __m512i d[4];
        for (std::size_t q = 0; q < 4; ++q) {
            __m512i m[4];
            for (std::size_t i = 0; i < 4; ++i) {
                const std::size_t g = 4 * q + i;
                m[i] = g < count ? group_magnitude16(x + g * length, length) : _mm512_setzero_si512();
            }
            d[q] = fold4<MaxEpu32>(m[0], m[1], m[2], m[3]);
        }
        return fold16<MaxEpu32>(d[0], d[1], d[2], d[3]);
    }
}

// encode()'s codes of 16 values for a group's subtract (kSubtract), multiplier and add (kAdd), before
// the narrowing: round (half away or toward zero), then clamp. The rounding's truncation is the
// conversion's, after the clamp: the bounds are integers, so that gives what clamping the truncated value
// gives (a NaN meets the clamps in the same operand order as before, so it codes lo as it did).
template <bool kSubtract, bool kAdd, bool kNearest>
GREY_AVX512 inline __m512i code16(__m512 x, __m512 subtract, __m512 multiply, __m512 add, __m512 lo, __m512 hi) {
    __m512 v = _mm512_mul_ps(kSubtract ? _mm512_sub_ps(x, subtract) : x, multiply);
    if constexpr (kAdd) v = _mm512_add_ps(v, add);
    if constexpr (kNearest) v = add_half_away(v);
    return _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(v, lo), hi));
}

// code16 for the formats whose codes start at 0 (lo 0: INT4, Q4_0, Q4_1), in fewer steps and the same
// codes: the bounds are integers, so clamping before the conversion's truncation gives what clamping the
// truncated value gives, and the rounding's truncation is the conversion's own; half away from zero adds
// kHalfBelow without its sign, since a value below zero codes 0 whichever way it rounds (and a NaN
// codes 0 either way: the maximum with 0 gives its second operand).
template <bool kSubtract, bool kAdd, bool kNearest>
GREY_AVX512 inline __m512i code16_from_zero(__m512 x, __m512 subtract, __m512 multiply, __m512 add, __m512 hi) {
    __m512 v = _mm512_mul_ps(kSubtract ? _mm512_sub_ps(x, subtract) : x, multiply);
    if constexpr (kAdd) v = _mm512_add_ps(v, add);
    if constexpr (kNearest) v = _mm512_add_ps(v, _mm512_set1_ps(kHalfBelow));
    return _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), hi));
}

// Thirty-two codes 0..15 (32-bit lanes, c0's sixteen first) as sixteen bytes of neighbour pairs, code 2i
// in the low nibble: the even and the odd codes gathered by two permutes, then one narrowing (instead of
// a narrowing of each register's 64-bit pairs and an unpack).
GREY_AVX512 inline __m128i pair32(__m512i c0, __m512i c1) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i low = _mm512_permutex2var_epi32(c0, even, c1), high = _mm512_permutex2var_epi32(c0, odd, c1);
    return _mm512_cvtepi32_epi8(_mm512_or_si512(low, _mm512_slli_epi32(high, 4)));
}

// encode_nf4's codes of 16 values.
GREY_AVX512 inline __m512i nf4_code16(__m512 x, __m512 inverse, const Nf4BucketLanes& buckets) { return nf4_code_of(_mm512_mul_ps(x, inverse), buckets); }

// kLength: the group length when known when compiled (32, the commonest and shortest, where the per-group
// work weighs most), else 0.
template <int kFormat, std::size_t kLength>
GREY_AVX512 uint32_t quantize_groups_of(const float* x, std::size_t groups, std::size_t length, uint8_t* codes, std::byte* scales, std::byte* mins) {
    if constexpr (kLength != 0) length = kLength;
    constexpr bool kGgml = grey::common::is_ggml(kFormat);
    constexpr bool kMinMax = grey::common::stores_minimum(kFormat);
    const std::size_t block_bytes = grey::common::ggml_block_bytes(kFormat);
    const Nf4BucketLanes buckets = nf4_bucket_lanes();
    const __m512 one = _mm512_set1_ps(1.0f);  // make_coding's alpha
    __m512i top = _mm512_setzero_si512();  // the magnitude bits of every value read
    for (std::size_t g0 = 0; g0 < groups; g0 += 16, x += 16 * length) {
        const std::size_t count = std::min<std::size_t>(16, groups - g0);
        const __mmask16 in_batch = lanes(0, count);
        // Statistics: absmax (Q4_0: its peak) or minimum and maximum, group g's in lane g; unused lanes 0.
        __m512 stat_a, stat_b = _mm512_setzero_ps();
        if constexpr (kMinMax) {
            batch_minmax<kLength>(x, count, length, top, stat_a, stat_b);
        } else {
            const __m512i bits = batch_magnitude<kLength>(x, count, length);
            top = _mm512_max_epu32(top, bits);
            stat_a = _mm512_castsi512_ps(bits);
            if constexpr (kFormat == GREY_QUANT_Q4_0) {  // the first value of that magnitude, with its sign
                alignas(64) float first[16];
                _mm512_store_ps(first, stat_a);
                for (std::size_t g = 0; g < count; ++g) {
                    const float* group = x + g * length;
                    const __m512 v0 = _mm512_loadu_ps(group), v1 = _mm512_loadu_ps(group + 16);
                    const __m512 mv = _mm512_set1_ps(first[g]);
                    const __mmask16 k0 = _mm512_cmp_ps_mask(_mm512_abs_ps(v0), mv, _CMP_EQ_OQ);
                    const __mmask16 k1 = _mm512_cmp_ps_mask(_mm512_abs_ps(v1), mv, _CMP_EQ_OQ);
                    // Both candidates, then a select without a branch (which half holds it is a coin toss).
                    const __m128 in_first = _mm512_castps512_ps128(_mm512_maskz_compress_ps(k0, v0));
                    const __m128 in_second = _mm512_castps512_ps128(_mm512_maskz_compress_ps(k1, v1));
                    first[g] = _mm_cvtss_f32(_mm_mask_mov_ps(in_second, static_cast<__mmask8>(k0 != 0), in_first));
                }
                stat_a = _mm512_load_ps(first);
            }
        }
        // make_coding at alpha 1, sixteen groups at once.
        const __m512 a = _mm512_mul_ps(stat_a, one), b = _mm512_mul_ps(stat_b, one);
        alignas(64) float e_sub[16] = {}, e_mul[16];
        alignas(32) uint16_t scale16[16], min16[16] = {};
        if constexpr (kFormat == GREY_QUANT_INT4_SYM) {
            const __m256i s = to_f16(_mm512_div_ps(a, _mm512_set1_ps(7.0f)));
            _mm256_store_si256(reinterpret_cast<__m256i*>(scale16), s);
            _mm512_store_ps(e_mul, inverse16(_mm512_cvtph_ps(s)));
        } else if constexpr (kFormat == GREY_QUANT_INT4) {
            const __m256i mh = to_f16(a);
            const __m512 m = _mm512_cvtph_ps(mh);
            const __m256i s = to_f16(_mm512_div_ps(_mm512_sub_ps(b, m), _mm512_set1_ps(15.0f)));
            _mm256_store_si256(reinterpret_cast<__m256i*>(scale16), s);
            _mm256_store_si256(reinterpret_cast<__m256i*>(min16), mh);
            _mm512_store_ps(e_sub, m);
            _mm512_store_ps(e_mul, inverse16(_mm512_cvtph_ps(s)));
        } else if constexpr (kFormat == GREY_QUANT_NF4) {
            _mm512_mask_storeu_ps(scales + 4 * g0, in_batch, a);
            _mm512_store_ps(e_mul, inverse16(a));
        } else if constexpr (kFormat == GREY_QUANT_Q8_0 || kFormat == GREY_QUANT_Q4_0) {
            const __m512 d = _mm512_div_ps(a, _mm512_set1_ps(kFormat == GREY_QUANT_Q8_0 ? 127.0f : -8.0f));
            _mm256_store_si256(reinterpret_cast<__m256i*>(scale16), to_f16(d));
            _mm512_store_ps(e_mul, inverse16(d));
        } else {  // Q4_1
            const __m512 d = _mm512_div_ps(_mm512_sub_ps(b, a), _mm512_set1_ps(15.0f));
            _mm256_store_si256(reinterpret_cast<__m256i*>(scale16), to_f16(d));
            _mm256_store_si256(reinterpret_cast<__m256i*>(min16), to_f16(a));
            _mm512_store_ps(e_sub, a);
            _mm512_store_ps(e_mul, inverse16(d));
        }
        if constexpr (kFormat == GREY_QUANT_INT4 || kFormat == GREY_QUANT_INT4_SYM) {
            _mm256_mask_storeu_epi16(scales + 2 * g0, in_batch, _mm256_load_si256(reinterpret_cast<const __m256i*>(scale16)));
            if constexpr (kFormat == GREY_QUANT_INT4)
                _mm256_mask_storeu_epi16(mins + 2 * g0, in_batch, _mm256_load_si256(reinterpret_cast<const __m256i*>(min16)));
        }
        // The codes, group by group.
        for (std::size_t g = 0; g < count; ++g) {
            const float* group = x + g * length;
            const __m512 subtract = _mm512_set1_ps(e_sub[g]), multiply = _mm512_set1_ps(e_mul[g]);
            if constexpr (kGgml) {
                uint8_t* block = codes + (g0 + g) * block_bytes;
                std::memcpy(block, &scale16[g], 2);
                if constexpr (kFormat == GREY_QUANT_Q4_1) std::memcpy(block + 2, &min16[g], 2);
                const __m512 x0 = _mm512_loadu_ps(group), x1 = _mm512_loadu_ps(group + 16);
                if constexpr (kFormat == GREY_QUANT_Q8_0) {
                    const __m512 lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
                    const __m512i c0 = code16<false, false, true>(x0, subtract, multiply, subtract, lo, hi);
                    const __m512i c1 = code16<false, false, true>(x1, subtract, multiply, subtract, lo, hi);
                    _mm_storeu_si128(reinterpret_cast<__m128i*>(block + 2), _mm512_cvtepi32_epi8(c0));
                    _mm_storeu_si128(reinterpret_cast<__m128i*>(block + 18), _mm512_cvtepi32_epi8(c1));
                } else {
                    constexpr bool kQ40 = kFormat == GREY_QUANT_Q4_0;
                    const __m512 add = _mm512_set1_ps(kQ40 ? 8.5f : 0.5f), hi = _mm512_set1_ps(15.0f);
                    const __m512i c0 = code16_from_zero<!kQ40, true, false>(x0, subtract, multiply, add, hi);
                    const __m512i c1 = code16_from_zero<!kQ40, true, false>(x1, subtract, multiply, add, hi);
                    _mm_storeu_si128(reinterpret_cast<__m128i*>(block + grey::common::ggml_header_bytes(kFormat)), _mm512_cvtepi32_epi8(_mm512_or_si512(c0, _mm512_slli_epi32(c1, 4))));
                }
            } else {
                uint8_t* out = codes + (g0 + g) * (length / 2);
                for (std::size_t i = 0; i < length; i += 32) {
                    const __m512 x0 = _mm512_loadu_ps(group + i), x1 = _mm512_loadu_ps(group + i + 16);
                    __m512i c0, c1;
                    if constexpr (kFormat == GREY_QUANT_NF4) {
                        c0 = nf4_code16(x0, multiply, buckets);
                        c1 = nf4_code16(x1, multiply, buckets);
                    } else if constexpr (kFormat == GREY_QUANT_INT4) {
                        const __m512 hi = _mm512_set1_ps(15.0f);
                        c0 = code16_from_zero<true, false, true>(x0, subtract, multiply, subtract, hi);
                        c1 = code16_from_zero<true, false, true>(x1, subtract, multiply, subtract, hi);
                    } else {  // INT4_SYM: codes -8..7, stored plus 8
                        const __m512 lo = _mm512_set1_ps(-8.0f), hi = _mm512_set1_ps(7.0f);
                        const __m512i bias = _mm512_set1_epi32(8);
                        c0 = _mm512_add_epi32(code16<false, false, true>(x0, subtract, multiply, subtract, lo, hi), bias);
                        c1 = _mm512_add_epi32(code16<false, false, true>(x1, subtract, multiply, subtract, lo, hi), bias);
                    }
                    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i / 2), pair32(c0, c1));
                }
            }
        }
    }
    return _mm512_reduce_max_epu32(top);
}

GREY_AVX512 uint32_t quantize_groups(int format, const float* x, std::size_t groups, std::size_t length, uint8_t* codes, std::byte* scales,
                                     std::byte* mins) {
    return with_group_format(format, [&](auto f) {
        return length == 32 ? quantize_groups_of<f.value, 32>(x, groups, length, codes, scales, mins)
                            : quantize_groups_of<f.value, 0>(x, groups, length, codes, scales, mins);
    });
}

// dequantize_groups (kernels.hpp): decode()'s arithmetic ((q - subtract) * multiply + add, each step
// rounded, the add kept even where it adds zero: it turns -0 into +0) on codes unpacked in registers,
// each group's parameters read as load_coding reads them (common/numeric.hpp's f16_to_f32).
template <int kFormat, bool kStream>
GREY_AVX512 void dequantize_groups_of(const uint8_t* codes, const std::byte* scales, const std::byte* mins, std::size_t groups, std::size_t length,
                                      float* out) {
    // The groups' values are consecutive: one writer over them all, or ordinary stores.
    [[maybe_unused]] LineWriter writer(out);
    const auto store = [&](float* at, __m512 v) GREY_AVX512 {
        if constexpr (kStream)
            writer.put(v);
        else
            _mm512_storeu_ps(at, v);
    };
    const __m128i low_nibble = _mm_set1_epi8(0x0F);
    const __m512 levels = _mm512_loadu_ps(grey::common::kNf4Levels);
    const auto f16_at = [](const void* at) {
        uint16_t h;
        std::memcpy(&h, at, 2);
        return grey::common::f16_to_f32(h);
    };
    for (std::size_t g = 0; g < groups; ++g, out += length) {
        if constexpr (kFormat == GREY_QUANT_Q8_0 || kFormat == GREY_QUANT_Q4_0 || kFormat == GREY_QUANT_Q4_1) {
            const std::size_t block_bytes = grey::common::ggml_block_bytes(kFormat);
            const uint8_t* block = codes + g * block_bytes;
            const __m512 subtract = _mm512_set1_ps(kFormat == GREY_QUANT_Q4_0 ? 8.0f : 0.0f), multiply = _mm512_set1_ps(f16_at(block));
            const __m512 add = _mm512_set1_ps(kFormat == GREY_QUANT_Q4_1 ? f16_at(block + 2) : 0.0f);
            __m512i c0, c1;
            if constexpr (kFormat == GREY_QUANT_Q8_0) {
                c0 = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2)));
                c1 = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 18)));
            } else {
                const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + grey::common::ggml_header_bytes(kFormat)));
                c0 = _mm512_cvtepu8_epi32(_mm_and_si128(qs, low_nibble));
                c1 = _mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(qs, 4), low_nibble));
            }
            store(out, _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(c0), subtract), multiply), add));
            store(out + 16, _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(c1), subtract), multiply), add));
        } else {
            const uint8_t* packed = codes + g * (length / 2);
            __m512 multiply, add = _mm512_setzero_ps();
            if constexpr (kFormat == GREY_QUANT_NF4) {
                float scale;
                std::memcpy(&scale, scales + 4 * g, 4);
                multiply = _mm512_set1_ps(scale);
            } else {
                multiply = _mm512_set1_ps(f16_at(scales + 2 * g));
                if constexpr (kFormat == GREY_QUANT_INT4) add = _mm512_set1_ps(f16_at(mins + 2 * g));
            }
            for (std::size_t i = 0; i < length; i += 32) {
                const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed + i / 2));
                const __m128i lo = _mm_and_si128(b, low_nibble), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low_nibble);
                __m512i c0 = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)), c1 = _mm512_cvtepu8_epi32(_mm_unpackhi_epi8(lo, hi));
                if constexpr (kFormat == GREY_QUANT_NF4) {
                    store(out + i, _mm512_mul_ps(_mm512_permutexvar_ps(c0, levels), multiply));
                    store(out + i + 16, _mm512_mul_ps(_mm512_permutexvar_ps(c1, levels), multiply));
                } else {
                    if constexpr (kFormat == GREY_QUANT_INT4_SYM) {
                        c0 = _mm512_sub_epi32(c0, _mm512_set1_epi32(8));
                        c1 = _mm512_sub_epi32(c1, _mm512_set1_epi32(8));
                    }
                    const __m512 zero = _mm512_setzero_ps();  // decode's subtract for these formats
                    store(out + i, _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(c0), zero), multiply), add));
                    store(out + i + 16, _mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(c1), zero), multiply), add));
                }
            }
        }
    }
    if constexpr (kStream) writer.finish(_mm512_setzero_ps(), 0);
}

GREY_AVX512 void dequantize_groups(int format, const uint8_t* codes, const std::byte* scales, const std::byte* mins, std::size_t groups,
                                   std::size_t length, float* out) {
    with_group_format(format, [&](auto f) { dequantize_groups_of<f.value, false>(codes, scales, mins, groups, length, out); });
}

// StreamingKernels (kernels.hpp): the decoders above through a LineWriter.
GREY_AVX512 void decode_streaming(const int8_t* q, std::size_t n, const DecodeSpec& spec, float* out) { decode_to<true>(q, n, spec, out); }
GREY_AVX512 void decode_table16_streaming(const uint8_t* codes, std::size_t n, const float* table, float scale, float* out) {
    decode_table16_to<true>(codes, n, table, scale, out);
}
GREY_AVX512 void decode_fp8_streaming(const uint8_t* codes, std::size_t n, const float*, int format, float scale, float* out) {
    decode_fp8_to<true>(codes, n, format, scale, out);
}
GREY_AVX512 void dequantize_groups_streaming(int format, const uint8_t* codes, const std::byte* scales, const std::byte* mins, std::size_t groups,
                                             std::size_t length, float* out) {
    with_group_format(format, [&](auto f) { dequantize_groups_of<f.value, true>(codes, scales, mins, groups, length, out); });
}
GREY_AVX512 void fence() { _mm_sfence(); }

constexpr StreamingKernels kAvx512Streaming{decode_streaming, decode_table16_streaming, decode_fp8_streaming, dequantize_groups_streaming, fence};

constexpr Kernels kAvx512{"avx512",   absmax,     minmax,     encode,     decode,            decode_table,      decode_table16,
                          decode_fp8, f16_to_f32, encode_fp8, encode_nf4, pack_ggml_nibbles, pack_nibble_pairs, unpack_nibble_pairs,
                          max_magnitude32, max_magnitude16, error_lanes, quantize_groups, dequantize_groups, &kAvx512Streaming,
                          quantize_int8_runs};

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
