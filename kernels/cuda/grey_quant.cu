// The CUDA backend's quantization kernels. They follow the host reference (backends/host/quant) operation
// for operation, so that every format gives the same bits on both (the conformance rule, docs/architecture.md):
// every float operation is an explicit round-to-nearest intrinsic (__fmul_rn, __fadd_rn, ...), which
// the compiler never contracts into a fused multiply-add, and the fatbin is built with -fmad=false,
// -prec-div=true and -ftz=false as a second guard. The narrow-float conversions are ports of
// runtime/quant/numeric.hpp, or the hardware's where it rounds and saturates identically (fp16; fp8 on
// sm_89 and later), with the NaN corners patched, so that every corner agrees.
//
// Paths (backends/cuda/quantizer.cpp chooses):
//   grey_quant_grouped8/16  RTN, formats whose groups of 32/64/128 each own a parameter set: a tile of
//                       group/16 (or /8) threads loads the group once, reduces its statistics with shuffles,
//                       encodes and stores. One pass over memory.
//   grey_quant_rows     RTN, INT8/INT8_TOKEN/FP8 when each run (a row) owns its scale: a block per row
//                       finds the absolute maximum and encodes the row, held in registers when it fits.
//   grey_quant_absmax + grey_quant_params + grey_quant_encode
//                       RTN for scales shared by runs that are not neighbours (per-channel on an inner
//                       axis, per-tensor), or rows too long for one block.
//   grey_quant_search + grey_quant_encode
//                       MSE calibration: one thread per parameter set runs the host's search exactly.
//   grey_dequant        every format: eight elements a thread.
//   grey_quant_blocks, grey_quant_q8_0, grey_dequant_fast
//                       the same for tensors that start 16-byte aligned with fewer than 2^31 elements
//                       (the end of this file): 32-bit indices and no alignment checks; the first
//                       (4-bit grouped formats) keeps three passes a warp in flight through cp.async
//                       staging, the second (Q8_0) keeps a warp's elements in registers, eight 16-byte
//                       loads a lane, and both it and the third run a block for every pass.
//
// Every kernel reads and writes through helpers that check alignment, so callers' offsets may be odd.
#include "quant_args.h"

#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <stdint.h>

namespace {

enum : int { kInt8 = 0, kInt8Token = 1, kInt4 = 2, kInt4Sym = 3, kFp8E4M3 = 4, kFp8E5M2 = 5, kNf4 = 6, kQ8_0 = 7, kQ4_0 = 8, kQ4_1 = 9 };

// ------------------------------------------------------------------------------------------------
// Scalar conversions: ports of runtime/quant/numeric.hpp.

// The hardware conversion (cvt.rn.f16.f32) rounds to nearest even and overflows to infinity, which is
// numeric.hpp's rule for every non-NaN input; a NaN becomes numeric.hpp's quiet NaN with its sign
// (0x7E00), where the hardware would give 0x7FFF.
__device__ __forceinline__ uint16_t f32_to_f16(float value) {
    if (isnan(value)) return static_cast<uint16_t>(((__float_as_uint(value) >> 16) & 0x8000u) | 0x7E00u);
    return __half_as_ushort(__float2half_rn(value));
}

// Exact for every input, as numeric.hpp's f16_to_f32.
__device__ __forceinline__ float f16_to_f32(uint32_t half) { return __half2float(__ushort_as_half(static_cast<unsigned short>(half))); }

__device__ __forceinline__ float bf16_to_f32(uint32_t value) { return __uint_as_float(value << 16); }

__device__ __forceinline__ uint16_t f32_to_bf16(float value) {
    const uint32_t bits = __float_as_uint(value);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
    return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

struct Fp8Traits {
    int mantissa_bits;
    int exponent_bias;
    uint32_t max_finite_code;
    uint32_t nan_code;
    float max_finite;
};

__device__ __forceinline__ Fp8Traits fp8_traits(int format) {
    return format == kFp8E4M3 ? Fp8Traits{3, 7, 0x7E, 0x7F, 448.0f} : Fp8Traits{2, 15, 0x7B, 0x7E, 57344.0f};
}

// sm_89 and later convert between fp8 and wider floats in hardware (cvt with e4m3 / e5m2); every fp8
// path below takes the conversion there and a port of numeric.hpp or the table elsewhere.
#if __CUDA_ARCH__ >= 890
constexpr bool kHardwareFp8 = true;
#else
constexpr bool kHardwareFp8 = false;
#endif

__device__ uint32_t f32_to_fp8(float value, int format) {
    // The hardware conversion (cvt.rn.satfinite) rounds to nearest even and saturates to the largest
    // finite value, which is numeric.hpp's rule for every non-NaN input, infinities included; NaN keeps
    // the host's encoding (its sign and the format's NaN code).
    if (kHardwareFp8 && !isnan(value))
        return __nv_cvt_float_to_fp8(value, __NV_SATFINITE, format == kFp8E4M3 ? __NV_E4M3 : __NV_E5M2);
    const Fp8Traits t = fp8_traits(format);
    const uint32_t sign = signbit(value) ? 0x80u : 0x00u;
    if (isnan(value)) return sign | t.nan_code;
    const float magnitude = fabsf(value);
    if (magnitude >= t.max_finite) return sign | t.max_finite_code;
    const int min_normal_exponent = 1 - t.exponent_bias;
    int exponent = 0;
    frexpf(magnitude, &exponent);
    exponent -= 1;
    if (magnitude == 0.0f || exponent < min_normal_exponent) {
        const float steps = nearbyintf(ldexpf(magnitude, t.mantissa_bits - min_normal_exponent));
        return sign | static_cast<uint32_t>(steps);
    }
    float mantissa = __fsub_rn(nearbyintf(ldexpf(magnitude, t.mantissa_bits - exponent)), ldexpf(1.0f, t.mantissa_bits));
    if (mantissa >= ldexpf(1.0f, t.mantissa_bits)) {
        mantissa = 0.0f;
        exponent += 1;
    }
    const uint32_t code = (static_cast<uint32_t>(exponent + t.exponent_bias) << t.mantissa_bits) | static_cast<uint32_t>(mantissa);
    return sign | (code > t.max_finite_code ? t.max_finite_code : code);
}

__device__ float fp8_to_f32(uint32_t code, int format) {
    const Fp8Traits t = fp8_traits(format);
    const float sign = (code & 0x80u) ? -1.0f : 1.0f;
    const uint32_t magnitude = code & 0x7Fu;
    const uint32_t exponent_field = magnitude >> t.mantissa_bits;
    const uint32_t mantissa = magnitude & ((1u << t.mantissa_bits) - 1u);
    if (format == kFp8E4M3 && magnitude == 0x7F) return __int_as_float(0x7FC00000);
    if (format == kFp8E5M2 && exponent_field == 31) return mantissa == 0 ? __fmul_rn(sign, __int_as_float(0x7F800000)) : __int_as_float(0x7FC00000);
    if (exponent_field == 0) return __fmul_rn(sign, ldexpf(static_cast<float>(mantissa), 1 - t.exponent_bias - t.mantissa_bits));
    return __fmul_rn(sign, ldexpf(__fadd_rn(1.0f, ldexpf(static_cast<float>(mantissa), -t.mantissa_bits)),
                                  static_cast<int>(exponent_field) - t.exponent_bias));
}

__constant__ float kNf4Levels[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
    0.7229568362236023f, 1.0f};

// The NF4 code nearest to `normalized` is the number of midpoints below it (ties go to the lower code,
// as numeric.hpp's linear scan does; a NaN gets code 0). Midpoints lie at least 0.08 apart, so cutting
// [-1, 1] into 33 buckets of width 1/16 puts at most one in each bucket, and a code costs one table
// read and one comparison, where a binary search over the midpoints took four dependent reads: NF4
// quantization went from 0.88 of memcpy to 0.96 on an H200. The bucket only chooses the table entry:
// the comparison is made on `normalized` itself, so the codes stay exact.
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

// Per-block tables in shared memory. A format reads one of them, so they share their space: fp8 code
// values (for decoding), or NF4's levels (decoding) and buckets (encoding). Appending the buckets
// instead (grey_quant_blocks: 25,936 bytes of shared memory a block, against 25,600 now) cost every
// format of grey_quant_blocks a fifth of its speed on an H200, 0.96 -> 0.79 of memcpy for Q8_0
// (measured three times; the occupancy calculation gives eight blocks a multiprocessor either way, and
// the cause was not found).
struct Tables {
    union {
        float fp8[256];
        struct {
            float levels[16];  // in shared memory: the constant cache serialises lanes that read different codes
            Nf4Bucket buckets[kNf4Buckets];
        } nf4;
    };
};

// Which tables a kernel reads. Each kernel builds only those: the bucket loop alone raised the
// dequantizers from 32 to 40 registers, and a table build is paid by every block of a spread grid.
enum : unsigned { kEncodeTables = 1, kDecodeTables = 2 };

// Every thread of the block must call this (it synchronises the block).
__device__ void build_tables(int format, unsigned uses, Tables& t);

// ------------------------------------------------------------------------------------------------
// Parameter sets: ports of make_coding and the element encoders of backends/host/quant.

struct Stats {
    float absmax;
    float min;
    float max;
    float peak;  // Q4_0: the first element whose magnitude is absmax, with its sign
};

// __frcp_rn is the correctly rounded 1/d, so it equals the IEEE division 1.0f / d bit for bit. An
// overflowing reciprocal gives 0, as on the host (backends/host/quant/quantizer.cpp says why).
__device__ __forceinline__ float inverse(float d) {
    const float r = d != 0.0f ? __frcp_rn(d) : 0.0f;
    return isinf(r) ? 0.0f : r;
}
__host__ __device__ constexpr bool uses_minmax(int format) { return format == kInt4 || format == kQ4_1; }
__host__ __device__ constexpr bool is_fp8(int format) { return format == kFp8E4M3 || format == kFp8E5M2; }
__host__ __device__ constexpr bool is_ggml(int format) { return format == kQ8_0 || format == kQ4_0 || format == kQ4_1; }
__host__ __device__ constexpr bool is_four_bit(int format) {
    return format == kInt4 || format == kInt4Sym || format == kNf4 || format == kQ4_0 || format == kQ4_1;
}

__device__ grey_qk_coding make_coding(int format, const Stats& s, float alpha) {
    grey_qk_coding c{};
    switch (format) {
        case kInt8: case kInt8Token:
            c.scale = __fdiv_rn(__fmul_rn(s.absmax, alpha), 127.0f);
            c.e_mul = inverse(c.scale); c.lo = -127; c.hi = 127;
            c.d_mul = c.scale;
            break;
        case kInt4Sym: {
            c.scale16 = f32_to_f16(__fdiv_rn(__fmul_rn(s.absmax, alpha), 7.0f));
            const float d = f16_to_f32(c.scale16);
            c.e_mul = inverse(d); c.lo = -8; c.hi = 7;
            c.d_mul = d;
            break;
        }
        case kInt4: {
            c.min16 = f32_to_f16(__fmul_rn(s.min, alpha));
            const float m = f16_to_f32(c.min16);
            c.scale16 = f32_to_f16(__fdiv_rn(__fsub_rn(__fmul_rn(s.max, alpha), m), 15.0f));
            const float d = f16_to_f32(c.scale16);
            c.e_sub = m; c.e_mul = inverse(d); c.lo = 0; c.hi = 15;
            c.d_mul = d; c.d_add = m;
            break;
        }
        case kFp8E4M3: case kFp8E5M2:
            c.scale = __fdiv_rn(__fmul_rn(s.absmax, alpha), fp8_traits(format).max_finite);
            c.e_mul = inverse(c.scale);
            break;
        case kNf4:
            c.scale = __fmul_rn(s.absmax, alpha);
            c.e_mul = inverse(c.scale);
            break;
        case kQ8_0: {
            const float d = __fdiv_rn(__fmul_rn(s.absmax, alpha), 127.0f);
            c.scale16 = f32_to_f16(d);
            c.e_mul = inverse(d); c.lo = -128; c.hi = 127;
            c.d_mul = f16_to_f32(c.scale16);
            break;
        }
        case kQ4_0: {
            const float d = __fdiv_rn(__fmul_rn(s.peak, alpha), -8.0f);
            c.scale16 = f32_to_f16(d);
            c.e_mul = inverse(d); c.e_add = 8.5f; c.lo = 0; c.hi = 15;
            c.d_sub = 8.0f; c.d_mul = f16_to_f32(c.scale16);
            break;
        }
        default: {  // kQ4_1
            const float lo = __fmul_rn(s.min, alpha), hi = __fmul_rn(s.max, alpha);
            const float d = __fdiv_rn(__fsub_rn(hi, lo), 15.0f);
            c.scale16 = f32_to_f16(d);
            c.min16 = f32_to_f16(lo);
            c.e_sub = lo; c.e_mul = inverse(d); c.e_add = 0.5f; c.lo = 0; c.hi = 15;
            c.d_mul = f16_to_f32(c.scale16); c.d_add = f16_to_f32(c.min16);
            break;
        }
    }
    return c;
}

// The stored code of one element of an integer format: a byte (int8 as two's complement) or a nibble
// before packing. make_coding fixes which of the affine terms are zero for each format, and those are
// left out: x - 0 is x, and v + 0 differs from v only for v = -0, which rounds to the same code. With
// the format a compile-time constant, an int8 element costs a multiply, the rounding (an add toward
// zero and a truncating conversion) and the clamp.
__device__ __forceinline__ uint32_t encode_integer(int format, const grey_qk_coding& c, float x) {
    const bool subtracts = format == kInt4 || format == kQ4_1;  // e_sub: the group's minimum
    const bool adds = format == kQ4_0 || format == kQ4_1;       // e_add: 8.5 and 0.5, then truncation
    const float v = subtracts ? __fmul_rn(__fsub_rn(x, c.e_sub), c.e_mul) : __fmul_rn(x, c.e_mul);
    const float r = adds ? truncf(__fadd_rn(v, c.e_add)) : roundf(v);
    // Clamping the integer equals clamping the float (std::clamp's order) and converting: r is whole or
    // infinite, and a NaN converts to 0, the code the host's encoders give it.
    int32_t q = static_cast<int32_t>(r);
    q = q < c.lo ? c.lo : (c.hi < q ? c.hi : q);
    if (format == kInt4Sym) q += 8;  // INT4_SYM stores q + 8
    return static_cast<uint32_t>(q) & 0xFFu;
}

// The stored code of one element of any format.
__device__ __forceinline__ uint32_t encode(int format, const grey_qk_coding& c, float x, const Tables& t) {
    if (is_fp8(format)) return f32_to_fp8(__fmul_rn(x, c.e_mul), format);
    if (format == kNf4) return nf4_code(__fmul_rn(x, c.e_mul), t.nf4.buckets);
    return encode_integer(format, c, x);
}

// The decoding half of a parameter set: all dequantization needs (kept small, since dequantization
// holds several at once in registers).
struct Decoding {
    float sub, mul, add;
    float scale;  // fp8 and NF4
};

__device__ __forceinline__ Decoding decoding_of(const grey_qk_coding& c) { return {c.d_sub, c.d_mul, c.d_add, c.scale}; }

// The value of a code: fp8 and NF4 through their tables, the rest through the affine decode. Only Q4_0
// subtracts (8); for the others q - 0 is q (q is a whole number, never -0). The add stays even where it
// is zero: it turns a product of -0 into +0, as the host's does.
__device__ __forceinline__ float decode(int format, const Decoding& c, uint32_t code, const Tables& t) {
    if (is_fp8(format)) return __fmul_rn(t.fp8[code], c.scale);
    if (format == kNf4) return __fmul_rn(t.nf4.levels[code], c.scale);
    const int32_t q = (format == kInt4Sym) ? static_cast<int32_t>(code) - 8
                      : (format == kInt8 || format == kInt8Token || format == kQ8_0) ? static_cast<int32_t>(static_cast<int8_t>(code))
                                                                                         : static_cast<int32_t>(code);
    const float value = format == kQ4_0 ? __fsub_rn(static_cast<float>(q), c.sub) : static_cast<float>(q);
    return __fadd_rn(__fmul_rn(value, c.mul), c.add);
}

// ------------------------------------------------------------------------------------------------
// Memory access. Buffers come from the pool well aligned, but callers' offsets need not be: every
// vector access checks its address and falls back to bytes.

__device__ __forceinline__ bool aligned(uint64_t address, uint64_t to) { return (address & (to - 1)) == 0; }

__device__ __forceinline__ uint32_t element_bytes(int dtype) { return dtype == GREY_QK_F32 ? 4u : 2u; }

__device__ __forceinline__ float load_element(const grey_qk_args& a, uint64_t i) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(a.plain);
    if (a.dtype == GREY_QK_F32) {
        const uint64_t at = a.plain + 4 * i;
        if (aligned(at, 4)) return *reinterpret_cast<const float*>(at);
        const uint32_t bits = p[4 * i] | (p[4 * i + 1] << 8) | (p[4 * i + 2] << 16) | (static_cast<uint32_t>(p[4 * i + 3]) << 24);
        return __uint_as_float(bits);
    }
    const uint64_t at = a.plain + 2 * i;
    const uint32_t h = aligned(at, 2) ? *reinterpret_cast<const uint16_t*>(at) : (p[2 * i] | (p[2 * i + 1] << 8));
    return a.dtype == GREY_QK_F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

// Four consecutive elements from `i` (a multiple of 4), in one 16- or 8-byte load where aligned.
__device__ __forceinline__ void load4(const grey_qk_args& a, uint64_t i, float v[4]) {
    const uint64_t at = a.plain + i * element_bytes(a.dtype);
    if (a.dtype == GREY_QK_F32 && aligned(at, 16)) {
        const float4 f = *reinterpret_cast<const float4*>(at);
        v[0] = f.x; v[1] = f.y; v[2] = f.z; v[3] = f.w;
    } else if (a.dtype != GREY_QK_F32 && aligned(at, 8)) {
        const uint2 h = *reinterpret_cast<const uint2*>(at);
        const uint32_t halves[4] = {h.x & 0xFFFFu, h.x >> 16, h.y & 0xFFFFu, h.y >> 16};
        for (int k = 0; k < 4; ++k) v[k] = a.dtype == GREY_QK_F16 ? f16_to_f32(halves[k]) : bf16_to_f32(halves[k]);
    } else {
        for (int k = 0; k < 4; ++k) v[k] = load_element(a, i + k);
    }
}

__device__ __forceinline__ void store_element(const grey_qk_args& a, uint64_t i, float value) {
    unsigned char* p = reinterpret_cast<unsigned char*>(a.plain);
    if (a.dtype == GREY_QK_F32) {
        const uint64_t at = a.plain + 4 * i;
        if (aligned(at, 4)) {
            *reinterpret_cast<float*>(at) = value;
        } else {
            const uint32_t bits = __float_as_uint(value);
            for (int k = 0; k < 4; ++k) p[4 * i + k] = static_cast<unsigned char>(bits >> (8 * k));
        }
        return;
    }
    const uint32_t h = a.dtype == GREY_QK_F16 ? f32_to_f16(value) : f32_to_bf16(value);
    const uint64_t at = a.plain + 2 * i;
    if (aligned(at, 2)) {
        *reinterpret_cast<uint16_t*>(at) = static_cast<uint16_t>(h);
    } else {
        p[2 * i] = static_cast<unsigned char>(h);
        p[2 * i + 1] = static_cast<unsigned char>(h >> 8);
    }
}

// Little-endian stores of 1..4 bytes at any address: one access when aligned.
__device__ __forceinline__ void store_u32(uint64_t at, uint32_t value) {
    if (aligned(at, 4)) {
        *reinterpret_cast<uint32_t*>(at) = value;
    } else if (aligned(at, 2)) {
        reinterpret_cast<uint16_t*>(at)[0] = static_cast<uint16_t>(value);
        reinterpret_cast<uint16_t*>(at)[1] = static_cast<uint16_t>(value >> 16);
    } else {
        for (int k = 0; k < 4; ++k) reinterpret_cast<unsigned char*>(at)[k] = static_cast<unsigned char>(value >> (8 * k));
    }
}

__device__ __forceinline__ void store_u16(uint64_t at, uint32_t value) {
    if (aligned(at, 2)) {
        *reinterpret_cast<uint16_t*>(at) = static_cast<uint16_t>(value);
    } else {
        reinterpret_cast<unsigned char*>(at)[0] = static_cast<unsigned char>(value);
        reinterpret_cast<unsigned char*>(at)[1] = static_cast<unsigned char>(value >> 8);
    }
}

// kAligned: the caller knows the address is aligned (the fast paths), so no check is made.
template <bool kAligned = false>
__device__ __forceinline__ uint32_t load_u32(uint64_t at) {
    if (kAligned || aligned(at, 4)) return *reinterpret_cast<const uint32_t*>(at);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(at);
    return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

template <bool kAligned = false>
__device__ __forceinline__ uint32_t load_u16(uint64_t at) {
    if (kAligned || aligned(at, 2)) return *reinterpret_cast<const uint16_t*>(at);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(at);
    return p[0] | (p[1] << 8);
}

__device__ __forceinline__ grey_qk_flags* flags_of(const grey_qk_args& a) { return reinterpret_cast<grey_qk_flags*>(a.flags); }

// Keeps the lowest index in one of the job's flags, and tells the host there is one to read.
__device__ __forceinline__ void flag_lowest(const grey_qk_args& a, uint64_t* flag, uint64_t i) {
    atomicMin(reinterpret_cast<unsigned long long*>(flag), static_cast<unsigned long long>(i));
    *reinterpret_cast<volatile uint32_t*>(a.noticed) = 1u;
}

// Element i is NaN or infinite.
__device__ __forceinline__ void flag_not_finite(const grey_qk_args& a, uint64_t i) { flag_lowest(a, &flags_of(a)->non_finite, i); }

// An infinite fp16 scale or minimum: the group's values are too large for the format (the formats
// with fp32 scales leave both at 0).
__device__ __forceinline__ bool overflows(const grey_qk_coding& c) { return (c.scale16 & 0x7C00u) == 0x7C00u || (c.min16 & 0x7C00u) == 0x7C00u; }

// The scale group that begins at element `first` overflowed.
__device__ __forceinline__ void flag_overflow(const grey_qk_args& a, uint64_t first) { flag_lowest(a, &flags_of(a)->overflow, first); }

__device__ __forceinline__ void note_if_not_finite(const grey_qk_args& a, uint64_t i, float v) {
    if (!isfinite(v)) flag_not_finite(a, i);
}

// Where planar formats keep parameter set p, and ggml blocks their header.
__device__ __forceinline__ void store_params(const grey_qk_args& a, uint64_t p, const grey_qk_coding& c) {
    const uint64_t params = a.quantized + a.codes_bytes;
    switch (a.format) {
        case kInt8: case kInt8Token: case kFp8E4M3: case kFp8E5M2: case kNf4:
            store_u32(params + 4 * p, __float_as_uint(c.scale));
            break;
        case kInt4Sym:
            store_u16(params + 2 * p, c.scale16);
            break;
        case kInt4:
            store_u16(params + 2 * p, c.scale16);
            store_u16(params + 2 * a.param_count + 2 * p, c.min16);
            break;
        case kQ8_0: store_u16(a.quantized + 34 * p, c.scale16); break;
        case kQ4_0: store_u16(a.quantized + 18 * p, c.scale16); break;
        default:  // kQ4_1
            store_u16(a.quantized + 20 * p, c.scale16);
            store_u16(a.quantized + 20 * p + 2, c.min16);
            break;
    }
}

// store_params, flagging a set whose fp16 parameters overflowed. The formats with fp16 parameters are
// grouped, so set p is run p.
__device__ __forceinline__ void store_checked_params(const grey_qk_args& a, uint64_t p, const grey_qk_coding& c) {
    if (overflows(c)) flag_overflow(a, p * a.run_length);
    store_params(a, p, c);
}

// Reads back the decoding half of parameter set p (load_coding of the host quantizer).
template <bool kAligned = false>
__device__ __forceinline__ Decoding load_params(const grey_qk_args& a, uint64_t p) {
    Decoding c{0.0f, 0.0f, 0.0f, 0.0f};
    const uint64_t params = a.quantized + a.codes_bytes;
    switch (a.format) {
        case kInt8: case kInt8Token:
            c.scale = __uint_as_float(load_u32<kAligned>(params + 4 * p));
            c.mul = c.scale;
            break;
        case kFp8E4M3: case kFp8E5M2: case kNf4:
            c.scale = __uint_as_float(load_u32<kAligned>(params + 4 * p));
            break;
        case kInt4Sym: c.mul = f16_to_f32(load_u16<kAligned>(params + 2 * p)); break;
        case kInt4:
            c.mul = f16_to_f32(load_u16<kAligned>(params + 2 * p));
            c.add = f16_to_f32(load_u16<kAligned>(params + 2 * a.param_count + 2 * p));
            break;
        case kQ8_0: c.mul = f16_to_f32(load_u16<kAligned>(a.quantized + 34 * p)); break;
        case kQ4_0:
            c.sub = 8.0f;
            c.mul = f16_to_f32(load_u16<kAligned>(a.quantized + 18 * p));
            break;
        default:  // kQ4_1
            c.mul = f16_to_f32(load_u16<kAligned>(a.quantized + 20 * p));
            c.add = f16_to_f32(load_u16<kAligned>(a.quantized + 20 * p + 2));
            break;
    }
    return c;
}

__device__ __forceinline__ uint64_t ggml_block_bytes(int format) { return format == kQ8_0 ? 34 : format == kQ4_0 ? 18 : 20; }
__device__ __forceinline__ uint64_t ggml_header_bytes(int format) { return format == kQ4_1 ? 4 : 2; }

__device__ void build_tables(int format, unsigned uses, Tables& t) {
    const bool fp8_values = is_fp8(format) && (uses & kDecodeTables);
    const bool nf4_levels = format == kNf4 && (uses & kDecodeTables);
    const bool nf4_buckets = format == kNf4 && (uses & kEncodeTables);
    // Most formats read no table: they skip the barrier too (safe, since the whole block has one format).
    if (!fp8_values && !nf4_levels && !nf4_buckets) return;
    if (fp8_values)
        for (uint32_t c = threadIdx.x; c < 256; c += blockDim.x) t.fp8[c] = fp8_to_f32(c, format);
    if (nf4_levels)
        for (uint32_t k = threadIdx.x; k < 16; k += blockDim.x) t.nf4.levels[k] = kNf4Levels[k];
    if (nf4_buckets)
        for (uint32_t k = threadIdx.x; k < kNf4Buckets; k += blockDim.x) {
            Nf4Bucket b{INFINITY, 0};
#pragma unroll 1
            for (int m = 0; m < 15; ++m) {
                const float midpoint = __fmul_rn(0.5f, __fadd_rn(kNf4Levels[m], kNf4Levels[m + 1]));
                const uint32_t bucket = nf4_bucket(midpoint);
                if (bucket < k) ++b.below;
                if (bucket == k) b.midpoint = midpoint;
            }
            t.nf4.buckets[k] = b;
        }
    __syncthreads();
}

// Which parameter set element i uses, and where it lies in its run. Shifts and 32-bit divisions where
// the geometry allows: 64-bit division is a long subroutine on the GPU.
struct Position {
    uint64_t set;
    uint64_t offset;  // inside the run
};

__device__ __forceinline__ Position locate(const grey_qk_args& a, uint64_t i) {
    uint64_t run;
    if (a.run_shift >= 0) run = i >> a.run_shift;
    else if (a.elements <= 0xFFFFFFFFull) run = static_cast<uint32_t>(i) / static_cast<uint32_t>(a.run_length);
    else run = i / a.run_length;
    const uint64_t offset = i - run * a.run_length;
    uint64_t set;
    if (a.sets_are_runs) set = run;
    else if (a.param_count == 1) set = 0;
    else if (run <= 0xFFFFFFFFull && a.param_count <= 0xFFFFFFFFull) set = static_cast<uint32_t>(run) % static_cast<uint32_t>(a.param_count);
    else set = run % a.param_count;
    return {set, offset};
}

// Moves a Position one element on.
__device__ __forceinline__ void advance(const grey_qk_args& a, Position& at) {
    if (++at.offset == a.run_length) {
        at.offset = 0;
        at.set = at.set + 1 == a.param_count ? 0 : at.set + 1;
    }
}

// (value, index) reductions that keep the first of equal values, as a sequential scan does: +0 and -0
// compare equal, and which one a scan keeps decides a stored fp16 bit.
struct Pick {
    float value;
    uint32_t index;
};

template <bool kMin>
__device__ __forceinline__ Pick better(Pick a, Pick b) {
    const bool b_wins = kMin ? (b.value < a.value) : (a.value < b.value);
    if (b_wins) return b;
    if (a.value == b.value && b.index < a.index) return b;  // ties: the earlier element
    return a;
}

template <bool kMin>
__device__ __forceinline__ Pick reduce_tile(Pick p, int tile) {
    for (int offset = tile / 2; offset > 0; offset /= 2) {
        Pick other{__shfl_xor_sync(0xFFFFFFFFu, p.value, offset, tile), __shfl_xor_sync(0xFFFFFFFFu, p.index, offset, tile)};
        p = better<kMin>(p, other);
    }
    return p;
}

__device__ __forceinline__ uint64_t global_thread() { return static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ uint64_t grid_threads() { return static_cast<uint64_t>(gridDim.x) * blockDim.x; }

}  // namespace

// ------------------------------------------------------------------------------------------------
// Block and tile reductions.

namespace {

// Whole warps iterate together in the grouped kernel, so every shuffle below has all 32 lanes present;
// `tile` lanes (a power of two up to 32) reduce among themselves.
__device__ __forceinline__ float max_tile(float v, int tile) {
    for (int offset = tile / 2; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xFFFFFFFFu, v, offset, tile));
    return v;
}

__device__ __forceinline__ float min_tile(float v, int tile) {
    for (int offset = tile / 2; offset > 0; offset /= 2) v = fminf(v, __shfl_xor_sync(0xFFFFFFFFu, v, offset, tile));
    return v;
}

// The minimum and maximum of a group whose tile lanes hold kCount elements each, `first` being this
// lane's first element in the group. A zero extreme: which zero (+0 or -0) a sequential scan keeps is
// the first one met, and it decides a stored fp16 bit. Rare, so the index-aware reduction runs only then.
template <int kCount>
__device__ __forceinline__ void group_min_max(const float* v, uint32_t first, int tile, Stats& s) {
    float lo = v[0], hi = v[0];
#pragma unroll
    for (int k = 1; k < kCount; ++k) {
        lo = fminf(lo, v[k]);
        hi = fmaxf(hi, v[k]);
    }
    s.min = min_tile(lo, tile);
    s.max = max_tile(hi, tile);
    if (__any_sync(0xFFFFFFFFu, s.min == 0.0f || s.max == 0.0f)) {
        Pick first_lo{v[0], first}, first_hi{v[0], first};
#pragma unroll
        for (int k = 1; k < kCount; ++k) {
            first_lo = better<true>(first_lo, Pick{v[k], first + k});
            first_hi = better<false>(first_hi, Pick{v[k], first + k});
        }
        s.min = reduce_tile<true>(first_lo, tile).value;
        s.max = reduce_tile<false>(first_hi, tile).value;
    }
}

template <int kCount>
__device__ __forceinline__ void load_elements(const grey_qk_args& a, uint64_t first, float* v) {
#pragma unroll
    for (int k = 0; k < kCount; k += 4) load4(a, first + k, v + k);
}

__device__ __forceinline__ uint32_t pack_bytes(const uint32_t* q) { return q[0] | (q[1] << 8) | (q[2] << 16) | (q[3] << 24); }
__device__ __forceinline__ uint32_t pack_nibbles(const uint32_t* q) {
    uint32_t word = 0;
#pragma unroll
    for (int k = 0; k < 8; ++k) word |= (q[k] & 0x0Fu) << (4 * k);
    return word;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// RTN, grouped formats (INT4, INT4_SYM, NF4, Q8_0, Q4_0, Q4_1): each group of G elements is handled by a
// tile of G/kPerThread threads holding kPerThread elements each (so the per-group work, the parameter
// choice and the reductions, is shared by many elements). Whole warps iterate together (the shuffles need
// every lane), with tiles past the last group masked out.
namespace {

// kFormat and kDtype are compile-time constants (see with_constants), so the per-element branches on
// them fold away.
template <int kPerThread, int kFormat, int kDtype>
__device__ __forceinline__ void quantize_groups(grey_qk_args a, const Tables& tables) {
    a.format = kFormat;
    a.dtype = kDtype;
    const int tile = static_cast<int>(a.run_length) / kPerThread;
    const uint64_t groups = a.param_count;
    const uint32_t lane = threadIdx.x % tile;
    const uint64_t tiles_in_grid = grid_threads() / tile;
    const uint64_t warp_first_tile = (global_thread() - (threadIdx.x & 31u)) / tile;
    const uint64_t tile_in_warp = (threadIdx.x & 31u) / tile;
    for (uint64_t base = warp_first_tile; base < groups; base += tiles_in_grid) {
        const uint64_t g = base + tile_in_warp;
        const bool active = g < groups;
        const uint64_t first = g * a.run_length + kPerThread * lane;
        float v[kPerThread] = {};
        if (active) {
            load_elements<kPerThread>(a, first, v);
#pragma unroll
            for (int k = 0; k < kPerThread; ++k) note_if_not_finite(a, first + k, v[k]);
        }
        Stats s{0.0f, INFINITY, -INFINITY, 0.0f};
        if (uses_minmax(a.format)) {
            group_min_max<kPerThread>(v, kPerThread * lane, tile, s);
        } else {
            float m = 0.0f;
#pragma unroll
            for (int k = 0; k < kPerThread; ++k) m = fmaxf(m, fabsf(v[k]));
            s.absmax = max_tile(m, tile);
            if (a.format == kQ4_0) {
                Pick first_peak{0.0f, 0xFFFFFFFFu};
#pragma unroll
                for (int k = kPerThread - 1; k >= 0; --k)
                    if (fabsf(v[k]) == s.absmax) first_peak = Pick{v[k], kPerThread * lane + k};
                // The smallest index wins; values differ only in sign, so compare indices alone.
                for (int offset = tile / 2; offset > 0; offset /= 2) {
                    const float value = __shfl_xor_sync(0xFFFFFFFFu, first_peak.value, offset, tile);
                    const uint32_t index = __shfl_xor_sync(0xFFFFFFFFu, first_peak.index, offset, tile);
                    if (index < first_peak.index) first_peak = Pick{value, index};
                }
                s.peak = first_peak.value;
            }
        }
        const grey_qk_coding c = make_coding(a.format, s, 1.0f);
        uint32_t q[kPerThread];
#pragma unroll
        for (int k = 0; k < kPerThread; ++k) q[k] = encode(a.format, c, v[k], tables);

        constexpr int kWords = kPerThread / 4;  // codes as bytes, four to a word
        if (a.format == kQ8_0) {
            if (active) {
                const uint64_t codes = a.quantized + g * 34 + 2 + kPerThread * lane;
                if (lane == 0) store_checked_params(a, g, c);
#pragma unroll
                for (int w = 0; w < kWords; ++w) store_u32(codes + 4 * w, pack_bytes(q + 4 * w));
            }
        } else if (is_ggml(a.format)) {
            // ggml packs byte j of a block as code j | code j+16 << 4: the lanes holding codes 0-15 take
            // codes 16-31 from the lanes `half` further on.
            constexpr int kHalf = 16 / kPerThread;
            const uint64_t codes = a.quantized + g * ggml_block_bytes(a.format) + ggml_header_bytes(a.format) + kPerThread * lane;
            if (active && lane == 0) store_checked_params(a, g, c);
#pragma unroll
            for (int w = 0; w < kWords; ++w) {
                const uint32_t word = pack_bytes(q + 4 * w);
                const uint32_t upper = __shfl_down_sync(0xFFFFFFFFu, word, kHalf, tile);
                if (active && lane < kHalf) store_u32(codes + 4 * w, (word & 0x0F0F0F0Fu) | ((upper & 0x0F0F0F0Fu) << 4));
            }
        } else if (active) {
#pragma unroll
            for (int w = 0; w < kPerThread / 8; ++w) store_u32(a.quantized + first / 2 + 4 * w, pack_nibbles(q + 8 * w));
            if (lane == 0) store_checked_params(a, g, c);
        }
    }
}

}  // namespace

// Calls body.template operator()<kDtype>() with the plain type as a compile-time constant.
template <typename Body>
__device__ __forceinline__ void with_dtype(int dtype, Body&& body) {
    if (dtype == GREY_QK_F32) body.template operator()<GREY_QK_F32>();
    else if (dtype == GREY_QK_F16) body.template operator()<GREY_QK_F16>();
    else body.template operator()<GREY_QK_BF16>();
}

// Calls body.template operator()<kFormat>() with the format as a compile-time constant.
template <typename Body>
__device__ __forceinline__ void with_format(int format, Body&& body) {
    switch (format) {
        case kInt8: body.template operator()<kInt8>(); break;
        case kInt8Token: body.template operator()<kInt8Token>(); break;
        case kInt4: body.template operator()<kInt4>(); break;
        case kInt4Sym: body.template operator()<kInt4Sym>(); break;
        case kFp8E4M3: body.template operator()<kFp8E4M3>(); break;
        case kFp8E5M2: body.template operator()<kFp8E5M2>(); break;
        case kNf4: body.template operator()<kNf4>(); break;
        case kQ8_0: body.template operator()<kQ8_0>(); break;
        case kQ4_0: body.template operator()<kQ4_0>(); break;
        default: body.template operator()<kQ4_1>(); break;
    }
}

// Two entry points so that each gets its own register allocation. Q8_0 and Q4_0 (codes in 34- and
// 18-byte blocks, only 2-byte aligned) run faster with eight elements a thread; the rest with sixteen.
extern "C" __global__ void grey_quant_grouped8(grey_qk_args a) {
    __shared__ Tables tables;
    build_tables(a.format, kEncodeTables, tables);
    with_dtype(a.dtype, [&]<int kDtype>() {
        if (a.format == kQ8_0) quantize_groups<8, kQ8_0, kDtype>(a, tables);
        else quantize_groups<8, kQ4_0, kDtype>(a, tables);
    });
}

extern "C" __global__ void grey_quant_grouped16(grey_qk_args a) {
    __shared__ Tables tables;
    build_tables(a.format, kEncodeTables, tables);
    with_dtype(a.dtype, [&]<int kDtype>() {
        switch (a.format) {
            case kInt4: quantize_groups<16, kInt4, kDtype>(a, tables); break;
            case kInt4Sym: quantize_groups<16, kInt4Sym, kDtype>(a, tables); break;
            case kNf4: quantize_groups<16, kNf4, kDtype>(a, tables); break;
            default: quantize_groups<16, kQ4_1, kDtype>(a, tables); break;
        }
    });
}

// RTN, INT8 / INT8_TOKEN / FP8 with one scale per run (a row): a block per row. Rows of up to
// blockDim * 4 * kChunks elements stay in registers between finding the maximum and encoding, so the
// row is read from memory once.
namespace {

// The absolute maximum over the block (every thread gets it) with one barrier: `scratch` holds a float
// per warp and alternates between two arrays from one row to the next, so that a row's writes never
// meet the previous row's reads.
__device__ __forceinline__ float block_max_once(float m, float* scratch) {
    m = max_tile(m, 32);
    if ((threadIdx.x & 31u) == 0) scratch[threadIdx.x / 32] = m;
    __syncthreads();
    float result = 0.0f;
    for (unsigned int w = 0; w < blockDim.x / 32; ++w) result = fmaxf(result, scratch[w]);
    return result;
}

// FP8 codes two at a time (one cvt.rn.satfinite...x2 where encode takes two conversions and two NaN
// tests): the same bytes as encode whenever neither product x * e_mul is NaN. That holds for a whole
// row once e_mul is finite, since the rows kernels only keep the codes of rows whose elements are all
// finite (any other element fails the job).
__device__ __forceinline__ bool packs_fp8_pairs(int format, const grey_qk_coding& c) {
    return kHardwareFp8 && is_fp8(format) && isfinite(c.e_mul);
}

__device__ __forceinline__ uint32_t fp8_pair(float low, float high, const grey_qk_coding& c, int format) {
    if constexpr (kHardwareFp8) {
        const float2 scaled = make_float2(__fmul_rn(low, c.e_mul), __fmul_rn(high, c.e_mul));
        return __nv_cvt_float2_to_fp8x2(scaled, __NV_SATFINITE, format == kFp8E4M3 ? __NV_E4M3 : __NV_E5M2);
    } else {
        return f32_to_fp8(__fmul_rn(low, c.e_mul), format) | (f32_to_fp8(__fmul_rn(high, c.e_mul), format) << 8);
    }
}

// Rows of up to blockDim * 4 * kChunks elements, held in registers between finding the maximum and
// encoding; the block's next row is loaded while this one is encoded, so that its loads are in flight
// through the reduction and the stores.
template <int kChunks>
__device__ __forceinline__ void rows_in_registers(const grey_qk_args& a, const Tables& tables, float (*scratch)[32]) {
    const uint64_t L = a.run_length;
    float v[kChunks][4], next[kChunks][4];
    const auto load_row = [&](uint64_t r, float (&w)[kChunks][4]) {
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
            const uint64_t i = 4 * (threadIdx.x + static_cast<uint64_t>(blockDim.x) * c);
            if (i < L) load4(a, r * L + i, w[c]);
        }
    };
    uint64_t r = blockIdx.x;
    if (r < a.param_count) load_row(r, v);
    for (int parity = 0; r < a.param_count; r += gridDim.x, parity ^= 1) {
        if (r + gridDim.x < a.param_count) load_row(r + gridDim.x, next);
        const uint64_t first = r * L;
        float m = 0.0f;
        bool finite = true;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
            const uint64_t i = 4 * (threadIdx.x + static_cast<uint64_t>(blockDim.x) * c);
            if (i < L) {
#pragma unroll
                for (int k = 0; k < 4; ++k) {
                    finite = finite && isfinite(v[c][k]);
                    m = fmaxf(m, fabsf(v[c][k]));
                }
            }
        }
        if (!finite) {  // rare; unrolled, since an array indexed at run time would live in local memory
#pragma unroll
            for (int c = 0; c < kChunks; ++c) {
                const uint64_t i = 4 * (threadIdx.x + static_cast<uint64_t>(blockDim.x) * c);
                if (i < L)
#pragma unroll
                    for (int k = 0; k < 4; ++k) note_if_not_finite(a, first + i + k, v[c][k]);
            }
        }
        const Stats s{block_max_once(m, scratch[parity]), 0.0f, 0.0f, 0.0f};
        const grey_qk_coding coding = make_coding(a.format, s, 1.0f);
        if (threadIdx.x == 0) store_params(a, r, coding);
        const bool pairs = packs_fp8_pairs(a.format, coding);
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
            const uint64_t i = 4 * (threadIdx.x + static_cast<uint64_t>(blockDim.x) * c);
            if (i < L) {
                uint32_t word;
                if (pairs) {
                    word = fp8_pair(v[c][0], v[c][1], coding, a.format) | (fp8_pair(v[c][2], v[c][3], coding, a.format) << 16);
                } else {
                    uint32_t q[4];
#pragma unroll
                    for (int k = 0; k < 4; ++k) q[k] = encode(a.format, coding, v[c][k], tables);
                    word = pack_bytes(q);
                }
                store_u32(a.quantized + first + i, word);
            }
        }
#pragma unroll
        for (int c = 0; c < kChunks; ++c)
#pragma unroll
            for (int k = 0; k < 4; ++k) v[c][k] = next[c][k];
    }
}

// Any other row: the maximum in a first pass, the codes in a second that reads the row again.
__device__ __forceinline__ void rows_two_pass(const grey_qk_args& a, const Tables& tables, float (*scratch)[32]) {
    const uint64_t L = a.run_length;
    int parity = 0;
    for (uint64_t r = blockIdx.x; r < a.param_count; r += gridDim.x, parity ^= 1) {
        const uint64_t first = r * L;
        float m = 0.0f;
        for (uint64_t i = threadIdx.x; i < L; i += blockDim.x) {
            const float v = load_element(a, first + i);
            note_if_not_finite(a, first + i, v);
            m = fmaxf(m, fabsf(v));
        }
        const Stats s{block_max_once(m, scratch[parity]), 0.0f, 0.0f, 0.0f};
        const grey_qk_coding coding = make_coding(a.format, s, 1.0f);
        if (threadIdx.x == 0) store_params(a, r, coding);
        for (uint64_t i = threadIdx.x; i < L; i += blockDim.x)
            reinterpret_cast<unsigned char*>(a.quantized)[first + i] =
                static_cast<unsigned char>(encode(a.format, coding, load_element(a, first + i), tables));
    }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256, 3) grey_quant_rows(grey_qk_args a) {
    __shared__ Tables tables;
    __shared__ float scratch[2][32];
    build_tables(a.format, kEncodeTables, tables);
    const uint64_t L = a.run_length;
    // Sixteen floats a thread, and sixteen more for the next row, keep the kernel at three resident
    // blocks per multiprocessor; longer rows take the two-pass path (their second read mostly hits L2).
    with_dtype(a.dtype, [&]<int kDtype>() {
        // The format and the plain type as compile-time constants: the per-element branches fold away.
        const auto run = [&]<int kFormat>() {
            grey_qk_args b = a;
            b.format = kFormat;
            b.dtype = kDtype;
            if (L % 4 == 0 && L <= 16ull * blockDim.x) rows_in_registers<4>(b, tables, scratch);
            else rows_two_pass(b, tables, scratch);
        };
        switch (a.format) {
            case kInt8: run.template operator()<kInt8>(); break;
            case kInt8Token: run.template operator()<kInt8Token>(); break;
            case kFp8E4M3: run.template operator()<kFp8E4M3>(); break;
            default: run.template operator()<kFp8E5M2>(); break;
        }
    });
}

// Global statistics for INT8 / INT8_TOKEN / FP8: the absolute maximum of every parameter set, as float
// bits (non-negative floats order as their bits), through shared memory when the sets fit there.
// Threads take consecutive stretches of elements, so a per-tensor or per-row scale costs one atomic per
// stretch, not per element.
extern "C" __global__ void grey_quant_absmax(grey_qk_args a) {
    extern __shared__ unsigned int shared_max[];
    const bool in_shared = a.param_count <= 8192;
    if (in_shared) {
        for (uint64_t p = threadIdx.x; p < a.param_count; p += blockDim.x) shared_max[p] = 0;
        __syncthreads();
    }
    unsigned int* global_max = reinterpret_cast<unsigned int*>(a.absmax_bits);
    const uint64_t stretch = 16;
    for (uint64_t start = global_thread() * stretch; start < a.elements; start += grid_threads() * stretch) {
        const uint64_t end = start + stretch < a.elements ? start + stretch : a.elements;
        Position at = locate(a, start);
        float m = 0.0f;
        for (uint64_t i = start; i < end; ++i) {
            const float v = load_element(a, i);
            note_if_not_finite(a, i, v);
            m = fmaxf(m, fabsf(v));
            if (at.offset + 1 == a.run_length || i + 1 == end) {  // the set changes after i, or the stretch ends
                if (in_shared) atomicMax(&shared_max[at.set], __float_as_uint(m));
                else atomicMax(&global_max[at.set], __float_as_uint(m));
                m = 0.0f;
            }
            advance(a, at);
        }
    }
    if (in_shared) {
        __syncthreads();
        for (uint64_t p = threadIdx.x; p < a.param_count; p += blockDim.x)
            if (shared_max[p] != 0) atomicMax(&global_max[p], shared_max[p]);
    }
}

// The parameter sets of the global path, from the statistics grey_quant_absmax gathered.
extern "C" __global__ void grey_quant_params(grey_qk_args a) {
    const unsigned int* absmax = reinterpret_cast<const unsigned int*>(a.absmax_bits);
    grey_qk_coding* codings = reinterpret_cast<grey_qk_coding*>(a.codings);
    for (uint64_t p = global_thread(); p < a.param_count; p += grid_threads()) {
        const Stats s{__uint_as_float(absmax[p]), 0.0f, 0.0f, 0.0f};
        codings[p] = make_coding(a.format, s, 1.0f);
        store_checked_params(a, p, codings[p]);
    }
}

// MSE calibration, one thread per parameter set: the host's search (choose_codings and refine_int4 of
// backends/host/quant/quantizer.cpp) operation for operation, in the same order, so that the sums in
// float64 and therefore every choice come out the same.
namespace {

__device__ float clip_alpha(int format, int i) {
    const float step = is_four_bit(format) ? 0.02f : 0.005f;
    return __fsub_rn(1.0f, __fmul_rn(step, static_cast<float>(i)));
}

__device__ int clip_steps(int format) { return is_four_bit(format) ? 25 : 20; }

__device__ __forceinline__ double squared(float x, float y) {
    const double e = __dsub_rn(static_cast<double>(x), static_cast<double>(y));
    return __dmul_rn(e, e);
}

// Sum over the runs of parameter set p of (x - decode(encode(x)))^2, each run summed from zero first.
__device__ double set_error(const grey_qk_args& a, uint64_t p, const grey_qk_coding& c, const Tables& t) {
    double total = 0.0;
    for (uint64_t r = p; r < a.elements / a.run_length; r += a.param_count) {
        double run_error = 0.0;
        for (uint64_t i = r * a.run_length; i < (r + 1) * a.run_length; ++i) {
            const float x = load_element(a, i);
            run_error = __dadd_rn(run_error, squared(x, decode(a.format, decoding_of(c), encode(a.format, c, x, t), t)));
        }
        total = __dadd_rn(total, run_error);
    }
    return total;
}

__device__ grey_qk_coding int4_coding(float scale, float min) {
    grey_qk_coding c{};
    c.scale16 = f32_to_f16(scale);
    c.min16 = f32_to_f16(min);
    const float d = f16_to_f32(c.scale16), m = f16_to_f32(c.min16);
    c.e_sub = m; c.e_mul = inverse(d); c.lo = 0; c.hi = 15;
    c.d_mul = d; c.d_add = m;
    return c;
}

__device__ grey_qk_coding refine_int4(const grey_qk_args& a, uint64_t g, grey_qk_coding best, double best_error, const Tables& t) {
    const uint64_t first = g * a.run_length, n_elements = a.run_length;
    for (int iteration = 0; iteration < 4; ++iteration) {
        double sq = 0, sx = 0, sqq = 0, sqx = 0;
        for (uint64_t i = first; i < first + n_elements; ++i) {
            const float x = load_element(a, i);
            const double q = static_cast<double>(static_cast<int32_t>(encode(a.format, best, x, t)));
            sq = __dadd_rn(sq, q);
            sx = __dadd_rn(sx, static_cast<double>(x));
            sqq = __dadd_rn(sqq, __dmul_rn(q, q));
            sqx = __dadd_rn(sqx, __dmul_rn(q, static_cast<double>(x)));
        }
        const double n = static_cast<double>(n_elements);
        const double denominator = __dsub_rn(__dmul_rn(n, sqq), __dmul_rn(sq, sq));
        if (denominator <= 0.0) break;  // every code equal: nothing to fit
        const double scale = __ddiv_rn(__dsub_rn(__dmul_rn(n, sqx), __dmul_rn(sq, sx)), denominator);
        const double min = __ddiv_rn(__dsub_rn(sx, __dmul_rn(scale, sq)), n);
        const grey_qk_coding candidate = int4_coding(__double2float_rn(scale), __double2float_rn(min));
        double error = 0.0;
        for (uint64_t i = first; i < first + n_elements; ++i) {
            const float x = load_element(a, i);
            error = __dadd_rn(error, squared(x, decode(a.format, decoding_of(candidate), encode(a.format, candidate, x, t), t)));
        }
        if (!(error < best_error)) break;
        best = candidate;
        best_error = error;
    }
    return best;
}

}  // namespace

extern "C" __global__ void grey_quant_search(grey_qk_args a) {
    __shared__ Tables tables;
    build_tables(a.format, kEncodeTables | kDecodeTables, tables);
    grey_qk_coding* codings = reinterpret_cast<grey_qk_coding*>(a.codings);
    const uint64_t runs = a.elements / a.run_length;
    for (uint64_t p = global_thread(); p < a.param_count; p += grid_threads()) {
        Stats s{0.0f, INFINITY, -INFINITY, 0.0f};
        for (uint64_t r = p; r < runs; r += a.param_count) {
            const uint64_t first = r * a.run_length;
            float lo = INFINITY, hi = -INFINITY, m = 0.0f;
            for (uint64_t i = first; i < first + a.run_length; ++i) {
                const float v = load_element(a, i);
                note_if_not_finite(a, i, v);
                lo = v < lo ? v : lo;  // std::min / std::max keep the first of equal values
                hi = hi < v ? v : hi;
                m = fabsf(v) > m ? fabsf(v) : m;
            }
            if (uses_minmax(a.format)) {
                s.min = lo < s.min ? lo : s.min;
                s.max = s.max < hi ? hi : s.max;
            } else {
                s.absmax = s.absmax < m ? m : s.absmax;
                if (a.format == kQ4_0)
                    for (uint64_t i = first; i < first + a.run_length; ++i)
                        if (fabsf(load_element(a, i)) == m) {
                            s.peak = load_element(a, i);
                            break;
                        }
            }
        }
        grey_qk_coding best = make_coding(a.format, s, 1.0f);
        double best_error = INFINITY;
        for (int i = 0; i <= clip_steps(a.format); ++i) {
            const grey_qk_coding c = make_coding(a.format, s, clip_alpha(a.format, i));
            const double error = set_error(a, p, c, tables);
            if (error < best_error) {
                best_error = error;
                best = c;
            }
        }
        if (a.format == kInt4) best = refine_int4(a, p, best, best_error, tables);
        codings[p] = best;
        store_checked_params(a, p, best);
    }
}

// Encodes with the parameter sets in a.codings (global and MSE paths). Planar formats: a thread per four
// elements; ggml blocks: a thread per block (whose header was stored with its parameter set).
extern "C" __global__ void grey_quant_encode(grey_qk_args a) {
    __shared__ Tables tables;
    build_tables(a.format, kEncodeTables, tables);
    const grey_qk_coding* codings = reinterpret_cast<const grey_qk_coding*>(a.codings);
    unsigned char* out = reinterpret_cast<unsigned char*>(a.quantized);
    if (is_ggml(a.format)) {
        for (uint64_t b = global_thread(); b < a.param_count; b += grid_threads()) {
            const grey_qk_coding c = codings[b];
            unsigned char* codes = out + b * ggml_block_bytes(a.format) + ggml_header_bytes(a.format);
            for (uint64_t j = 0; j < 32; ++j) {
                const uint32_t q = encode(a.format, c, load_element(a, 32 * b + j), tables);
                if (a.format == kQ8_0 || j < 16) codes[j] = static_cast<unsigned char>(q);
                else codes[j - 16] |= static_cast<unsigned char>(q << 4);  // Q4: code j+16 in the high nibble
            }
        }
        return;
    }
    const bool four_bit = is_four_bit(a.format);
    const uint64_t chunks = (a.elements + 3) / 4;
    for (uint64_t chunk = global_thread(); chunk < chunks; chunk += grid_threads()) {
        const uint64_t first = 4 * chunk;
        const uint64_t count = a.elements - first < 4 ? a.elements - first : 4;
        // Loops over k stay unrolled with constant indices: an array indexed at run time would live in
        // local memory.
        float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (count == 4) {
            load4(a, first, v);
        } else {
#pragma unroll
            for (int k = 0; k < 4; ++k)
                if (k < count) v[k] = load_element(a, first + k);
        }
        Position at = locate(a, first);
        uint32_t q[4] = {0, 0, 0, 0};
#pragma unroll
        for (int k = 0; k < 4; ++k)
            if (k < count) {
                q[k] = encode(a.format, codings[at.set], v[k], tables);
                advance(a, at);
            }
        if (four_bit) {  // element counts of 4-bit formats are multiples of their groups
            store_u16(a.quantized + first / 2, q[0] | (q[1] << 4) | (q[2] << 8) | (q[3] << 12));
        } else if (count == 4) {
            store_u32(a.quantized + first, pack_bytes(q));
        } else {
#pragma unroll
            for (int k = 0; k < 4; ++k)
                if (k < count) out[first + k] = static_cast<unsigned char>(q[k]);
        }
    }
}

// Dequantization of every format. A thread takes four elements at a time, so that a warp's loads and
// stores cover contiguous memory (512 bytes of F32 per store instruction), and two such chunks per
// iteration, whose loads are all issued before any is decoded.
namespace {

constexpr int kDequantUnroll = 2;

// The stored codes of elements first .. first+3 (fewer at the tensor's end).
__device__ __forceinline__ void load_codes4(const grey_qk_args& a, uint64_t first, uint64_t count, uint32_t* codes) {
    if (is_ggml(a.format)) {  // blocks of 32: four elements lie inside one block
        const uint64_t block = a.quantized + (first / 32) * ggml_block_bytes(a.format);
        const uint32_t j = first % 32;
        if (a.format == kQ8_0) {
            const uint32_t bytes = load_u32(block + 2 + j);
#pragma unroll
            for (int k = 0; k < 4; ++k) codes[k] = (bytes >> (8 * k)) & 0xFFu;
        } else {
            const uint32_t bytes = load_u32(block + ggml_header_bytes(a.format) + (j % 16));
            const int shift = j < 16 ? 0 : 4;
#pragma unroll
            for (int k = 0; k < 4; ++k) codes[k] = (bytes >> (8 * k + shift)) & 0x0Fu;
        }
    } else if (is_four_bit(a.format)) {  // counts are multiples of 32: whole chunks only
        const uint32_t bytes = load_u16(a.quantized + first / 2);
#pragma unroll
        for (int k = 0; k < 4; ++k) codes[k] = (bytes >> (4 * k)) & 0x0Fu;
    } else if (count == 4) {
        const uint32_t bytes = load_u32(a.quantized + first);
#pragma unroll
        for (int k = 0; k < 4; ++k) codes[k] = (bytes >> (8 * k)) & 0xFFu;
    } else {
#pragma unroll
        for (int k = 0; k < 4; ++k)
            codes[k] = k < count ? reinterpret_cast<const unsigned char*>(a.quantized)[first + k] : 0u;
    }
}

__device__ __forceinline__ void store4(const grey_qk_args& a, uint64_t first, uint64_t count, const float* y) {
    const uint64_t at = a.plain + first * element_bytes(a.dtype);
    if (count == 4 && a.dtype == GREY_QK_F32 && aligned(at, 16)) {
        *reinterpret_cast<float4*>(at) = make_float4(y[0], y[1], y[2], y[3]);
    } else if (count == 4 && a.dtype != GREY_QK_F32 && aligned(at, 8)) {
        uint32_t h[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) h[k] = a.dtype == GREY_QK_F16 ? f32_to_f16(y[k]) : f32_to_bf16(y[k]);
        *reinterpret_cast<uint2*>(at) = make_uint2(h[0] | (h[1] << 16), h[2] | (h[3] << 16));
    } else {
#pragma unroll
        for (int k = 0; k < 4; ++k)
            if (k < count) store_element(a, first + k, y[k]);
    }
}

}  // namespace

namespace {

// The loop for one format and one output type, both compile-time constants: the per-element branches
// on them fold away, and the loads of the next chunks can be scheduled before this one's stores.
template <int kFormat, int kDtype>
__device__ __forceinline__ void dequant_loop(grey_qk_args a, const Tables& tables) {
    a.format = kFormat;
    a.dtype = kDtype;
    const uint64_t chunks = (a.elements + 3) / 4;
    const uint64_t stride = grid_threads();
    for (uint64_t base = global_thread(); base < chunks; base += kDequantUnroll * stride) {
        uint32_t codes[kDequantUnroll][4];
        Decoding coding[kDequantUnroll];
        Position at[kDequantUnroll];
        uint64_t count[kDequantUnroll];
#pragma unroll
        for (int u = 0; u < kDequantUnroll; ++u) {
            const uint64_t chunk = base + u * stride;
            const uint64_t first = 4 * chunk;
            count[u] = chunk < chunks ? (a.elements - first < 4 ? a.elements - first : 4) : 0;
            if (count[u] == 0) continue;
            load_codes4(a, first, count[u], codes[u]);
            at[u] = locate(a, first);
            coding[u] = load_params(a, at[u].set);
        }
#pragma unroll
        for (int u = 0; u < kDequantUnroll; ++u) {
            if (count[u] == 0) continue;
            float y[4];
            if (count[u] == 4 && at[u].offset + 4 <= a.run_length) {  // one parameter set for all four
#pragma unroll
                for (int k = 0; k < 4; ++k) y[k] = decode(kFormat, coding[u], codes[u][k], tables);
            } else {
#pragma unroll
                for (int k = 0; k < 4; ++k)
                    if (k < count[u]) {
                        y[k] = decode(kFormat, load_params(a, at[u].set), codes[u][k], tables);
                        advance(a, at[u]);
                    }
            }
            store4(a, 4 * (base + u * stride), count[u], y);
        }
    }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256, 4) grey_dequant(grey_qk_args a) {
    __shared__ Tables tables;
    build_tables(a.format, kDecodeTables, tables);
    with_dtype(a.dtype, [&]<int kDtype>() { with_format(a.format, [&]<int kFormat>() { dequant_loop<kFormat, kDtype>(a, tables); }); });
}

// ------------------------------------------------------------------------------------------------
// Fast paths. quantizer.cpp takes them when both tensors start 16-byte aligned (pool buffers do), the
// element count fits 32-bit indices and, for dequantization, every four consecutive elements share a
// parameter set. The kernels then make no alignment checks, index in 32 bits and divide through
// multipliers, so that what is left per element is the encode or decode itself: the general kernels
// above spent three quarters of their instructions on addressing (measured on an H200: about 30
// instructions an element, DRAM 47-60% busy).

namespace {

// n / d for n < 2^31, through the multiplier and shift the host computed for d (exact: see
// grey::cuda::divider_for).
__device__ __forceinline__ uint32_t divide(uint32_t n, uint64_t multiplier, int32_t shift) {
    return static_cast<uint32_t>((static_cast<uint64_t>(n) * multiplier) >> shift);
}

// The parameter set of planar element i.
__device__ __forceinline__ uint32_t set_of(const grey_qk_args& a, uint32_t i) {
    const uint32_t run = a.run_shift >= 0 ? i >> a.run_shift : divide(i, a.run_multiplier, a.run_mshift);
    if (a.sets_are_runs) return run;
    if (a.param_count == 1) return 0;
    return run - divide(run, a.set_multiplier, a.set_mshift) * static_cast<uint32_t>(a.param_count);
}

// The codes of chunk c (elements 4c .. 4c+3) of a dequantization, byte k holding element k's: the ggml
// formats and the 8-bit planar ones.
template <int kFormat>
__device__ __forceinline__ uint32_t chunk_codes(const grey_qk_args& a, uint32_t c) {
    if (is_ggml(kFormat)) {
        const uint64_t block = a.quantized + static_cast<uint64_t>(c >> 3) * ggml_block_bytes(kFormat);
        const uint32_t j = (c & 7u) * 4;  // the chunk's first element in its block of 32
        // Q8_0 and Q4_0 blocks (34 and 18 bytes) keep their codes 2-byte aligned; Q4_1's are 4-byte aligned.
        const uint64_t at = block + ggml_header_bytes(kFormat) + (kFormat == kQ8_0 ? j : (j & 15u));
        const uint32_t bytes = kFormat == kQ4_1 ? load_u32<true>(at) : load_u16<true>(at) | (load_u16<true>(at + 2) << 16);
        if (kFormat == kQ8_0) return bytes;
        return (bytes >> (j < 16 ? 0 : 4)) & 0x0F0F0F0Fu;  // codes j+16.. are the high nibbles of bytes j..
    }
    return load_u32<true>(a.quantized + 4ull * c);  // 8-bit planar codes (the 4-bit ones: dequant_fast_planar4)
}

// Four planar nibbles (low first), one to a byte.
__device__ __forceinline__ uint32_t spread_nibbles(uint32_t n) {
    return (n & 0xFu) | ((n & 0xF0u) << 4) | ((n & 0xF00u) << 8) | ((n & 0xF000u) << 12);
}

// Streaming stores (st.global.cs): the output is not read again by this kernel, and marking it so
// measured up to 1% faster on an H200 (bench/cuda_grid_bench.cu).
template <int kDtype>
__device__ __forceinline__ void store4_aligned(uint64_t plain, uint32_t c, const float* y) {
    if (kDtype == GREY_QK_F32) {
        __stcs(reinterpret_cast<float4*>(plain + 16ull * c), make_float4(y[0], y[1], y[2], y[3]));
    } else {
        uint32_t h[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) h[k] = kDtype == GREY_QK_F16 ? f32_to_f16(y[k]) : f32_to_bf16(y[k]);
        __stcs(reinterpret_cast<uint2*>(plain + 8ull * c), make_uint2(h[0] | (h[1] << 16), h[2] | (h[3] << 16)));
    }
}

// Decodes chunk c's four codes (byte k holding element k's) and stores the four values.
template <int kFormat, int kDtype>
__device__ __forceinline__ void decode_chunk(const grey_qk_args& a, uint32_t c, uint32_t codes, const Decoding& coding, const Tables& tables) {
    float y[4];
    // Every fp8 value is an fp16 value, so the hardware conversion through fp16 (two codes an
    // instruction) gives the table's floats (a NaN code gives a NaN either way), and grey_dequant_fast
    // builds no table there: FP8 dequantization went from 0.954-0.958 of memcpy to 0.963-0.965 on an H200.
    if constexpr (kHardwareFp8 && is_fp8(kFormat)) {
        const auto kind = kFormat == kFp8E4M3 ? __NV_E4M3 : __NV_E5M2;
        const __half2_raw low = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(codes & 0xFFFFu), kind);
        const __half2_raw high = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(codes >> 16), kind);
        const uint32_t halves[4] = {low.x, low.y, high.x, high.y};
#pragma unroll
        for (int k = 0; k < 4; ++k) y[k] = __fmul_rn(f16_to_f32(halves[k]), coding.scale);
    } else {
#pragma unroll
        for (int k = 0; k < 4; ++k) y[k] = decode(kFormat, coding, (codes >> (8 * k)) & 0xFFu, tables);
    }
    store4_aligned<kDtype>(a.plain, c, y);
}

// Chunks of four elements, the warp's covering contiguous memory (a 16-byte store a lane), and
// kFastUnroll chunks a thread in flight: their code and parameter loads are all issued before the
// first decode. quantizer.cpp launches a block for every kFastUnroll * blockDim chunks.
template <int kFormat, int kDtype>
__device__ __forceinline__ void dequant_fast_loop(grey_qk_args a, const Tables& tables) {
    constexpr int kFastUnroll = GREY_QK_DEQUANT_FAST_CHUNKS;
    a.format = kFormat;
    a.dtype = kDtype;
    const uint32_t chunks = static_cast<uint32_t>(a.elements / 4);
    // A block takes kFastUnroll * blockDim consecutive chunks at a time, so that its stores fill one
    // contiguous stretch of memory (8 KiB of F32) rather than pieces a grid apart.
    const uint32_t span = kFastUnroll * blockDim.x;
    for (uint32_t base = blockIdx.x * span + threadIdx.x; base < chunks; base += gridDim.x * span) {
        uint32_t codes[kFastUnroll] = {};
        Decoding coding[kFastUnroll] = {};
#pragma unroll
        for (int u = 0; u < kFastUnroll; ++u) {
            const uint32_t c = base + u * blockDim.x;
            if (c >= chunks) continue;
            codes[u] = chunk_codes<kFormat>(a, c);
            coding[u] = load_params<true>(a, is_ggml(kFormat) ? c >> 3 : set_of(a, 4 * c));
        }
#pragma unroll
        for (int u = 0; u < kFastUnroll; ++u) {
            const uint32_t c = base + u * blockDim.x;
            if (c < chunks) decode_chunk<kFormat, kDtype>(a, c, codes[u], coding[u], tables);
        }
    }
}

// The planar 4-bit formats (INT4, INT4_SYM, NF4), whose chunk has 2 bytes of codes: a warp takes
// kUnroll * 32 consecutive chunks, loads their codes a 4-byte word a lane (128 bytes a warp
// instruction, where loading each chunk's own 2 bytes gives 64) and hands each lane its chunk's half
// word with a shuffle.
template <int kFormat, int kDtype>
__device__ __forceinline__ void dequant_fast_planar4(grey_qk_args a, const Tables& tables) {
    constexpr int kUnroll = GREY_QK_DEQUANT_FAST_CHUNKS;
    static_assert(kUnroll % 2 == 0, "a word holds two chunks");
    a.format = kFormat;
    a.dtype = kDtype;
    const uint32_t chunks = static_cast<uint32_t>(a.elements / 4);
    const uint32_t lane = threadIdx.x & 31u;
    const uint32_t span = kUnroll * blockDim.x;
    // Whole warps iterate together (the shuffles need every lane); `first` is a multiple of 64, so every
    // word is 4-byte aligned.
    for (uint32_t first = blockIdx.x * span + (threadIdx.x & ~31u) * kUnroll; first < chunks; first += gridDim.x * span) {
        uint32_t words[kUnroll / 2];
#pragma unroll
        for (int h = 0; h < kUnroll / 2; ++h) {
            const uint32_t pair = first + 64 * h + 2 * lane;  // the word's first chunk
            words[h] = pair + 1 < chunks ? load_u32<true>(a.quantized + 2ull * pair)
                       : pair < chunks   ? load_u16<true>(a.quantized + 2ull * pair)
                                         : 0u;
        }
        Decoding coding[kUnroll] = {};
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const uint32_t c = first + 32 * u + lane;
            if (c < chunks) coding[u] = load_params<true>(a, set_of(a, 4 * c));
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            // Chunk first + 32u + lane is half (lane % 2) of word (u / 2) of lane 16 (u % 2) + lane / 2.
            const uint32_t word = __shfl_sync(0xFFFFFFFFu, words[u / 2], 16 * (u % 2) + lane / 2);
            const uint32_t c = first + 32 * u + lane;
            if (c < chunks) decode_chunk<kFormat, kDtype>(a, c, spread_nibbles((word >> (16 * (lane & 1u))) & 0xFFFFu), coding[u], tables);
        }
    }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256) grey_dequant_fast(grey_qk_args a) {
    __shared__ Tables tables;
    build_tables(a.format, kHardwareFp8 && is_fp8(a.format) ? 0u : kDecodeTables, tables);  // decode_chunk converts fp8 in hardware
    with_dtype(a.dtype, [&]<int kDtype>() {
        with_format(a.format, [&]<int kFormat>() {
            if constexpr (is_four_bit(kFormat) && !is_ggml(kFormat)) dequant_fast_planar4<kFormat, kDtype>(a, tables);
            else dequant_fast_loop<kFormat, kDtype>(a, tables);
        });
    });
}

// RTN for the 4-bit grouped formats, one lane per 32 consecutive elements: a Q4_0 or Q4_1 block, or a
// slice of an INT4 / INT4_SYM / NF4 group of 32, 64 or 128 (a tile of 1, 2 or 4 lanes). Thirty-two
// elements a lane keep 128 bytes of loads in flight per thread and spread the per-group work
// (reductions, parameters) thinly; Q4_0 and Q4_1 pack their nibbles without crossing lanes.
namespace {

// A warp's 32 slices pass through shared memory on the way in (and, for the ggml formats, on the way
// out): every global access of the warp then covers contiguous memory, 512 bytes an instruction, where
// a lane reading its own 128 bytes would touch 32 cache lines an instruction and keep L1 busy
// (measured: L1 80%, L2 81%, DRAM 66%). A slice takes 128 bytes (8 pieces of 16; F16 and BF16 use the
// first 4), with piece w of slice s at position w ^ (s % 8), so that eight lanes reading piece w of
// their own slices hit eight different bank groups.
//
// Each warp has kStages staging areas: while it encodes the slices in one, the next passes' slices are
// on their way into the others (cp.async), so that a warp's loads stay in flight while it computes.
// Measured on an H200 against a single area loaded synchronously: two areas took the 4-bit formats
// from 0.83-0.88 of memcpy to 0.91-0.93 and NF4 from 0.79 to 0.86-0.88; a third area (with two warps a
// block, so that it fits the 48 KiB of static shared memory) took Q8_0, Q4_0 and Q4_1 from 0.92-0.93
// to 0.96-0.98. (Q8_0 has since moved to grey_quant_q8_0 below, which keeps its elements in registers.)
constexpr int kStagedWarps = GREY_QK_BLOCKS_THREADS / 32;
constexpr int kStages = 3;
constexpr int kSlicePieces = 8;

struct BlockStaging {
    uint4 pieces[kStagedWarps][kStages][32 * kSlicePieces];
};

__device__ __forceinline__ uint32_t staged_piece(uint32_t slice, uint32_t piece) { return slice * kSlicePieces + (piece ^ (slice % 8)); }

__device__ __forceinline__ void copy16_async(uint4* to_shared, const uint4* from_global) {
    const auto to = static_cast<uint32_t>(__cvta_generic_to_shared(to_shared));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(to), "l"(from_global) : "memory");
}

// Closes the group of copies this thread issued since the last commit (possibly none).
__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void wait_copies() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Starts copying the warp's 32 slices from `base` into `staging`, and commits them as one group.
template <int kDtype>
__device__ __forceinline__ void stage32_async(uint64_t plain, uint32_t base, uint32_t slices, uint4* staging) {
    constexpr int kPieces = kDtype == GREY_QK_F32 ? 8 : 4;  // 16-byte pieces of a slice of 32 elements
    const uint32_t lane = threadIdx.x & 31u;
    const uint4* source = reinterpret_cast<const uint4*>(plain) + static_cast<uint64_t>(base) * kPieces;
#pragma unroll
    for (int w = 0; w < kPieces; ++w) {
        const uint32_t piece = 32 * w + lane;  // the warp's w-th 512 contiguous bytes
        const uint32_t slice = piece / kPieces;
        if (base + slice < slices) copy16_async(staging + staged_piece(slice, piece % kPieces), source + piece);
    }
    commit_copies();
}

// The elements of a 16-byte piece: 4 F32 or 8 F16/BF16.
template <int kDtype>
__device__ __forceinline__ void unpack16(const uint4& h, float* v) {
    if (kDtype == GREY_QK_F32) {
        v[0] = __uint_as_float(h.x); v[1] = __uint_as_float(h.y); v[2] = __uint_as_float(h.z); v[3] = __uint_as_float(h.w);
    } else {
        const uint32_t words[4] = {h.x, h.y, h.z, h.w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
            v[2 * k] = kDtype == GREY_QK_F16 ? f16_to_f32(words[k] & 0xFFFFu) : bf16_to_f32(words[k] & 0xFFFFu);
            v[2 * k + 1] = kDtype == GREY_QK_F16 ? f16_to_f32(words[k] >> 16) : bf16_to_f32(words[k] >> 16);
        }
    }
}

// The lane's slice, once the warp's copies into `staging` have landed (the caller waited for them).
template <int kDtype>
__device__ __forceinline__ void unstage32(const uint4* staging, float* v) {
    constexpr int kPieces = kDtype == GREY_QK_F32 ? 8 : 4;
    __syncwarp();  // every lane's copies are complete, not only this lane's
    const uint32_t lane = threadIdx.x & 31u;
#pragma unroll
    for (int w = 0; w < kPieces; ++w) unpack16<kDtype>(staging[staged_piece(lane, w)], v + (32 / kPieces) * w);
    __syncwarp();  // the area is free again: for the ggml output, then for the next pass's copies
}

__device__ __forceinline__ void store_u16_at(unsigned char* at, uint32_t value) { *reinterpret_cast<uint16_t*>(at) = static_cast<uint16_t>(value); }
__device__ __forceinline__ void store_u32_at(unsigned char* at, uint32_t value) { *reinterpret_cast<uint32_t*>(at) = value; }

// A Q4_0 or Q4_1 block (18 bytes, 2-byte aligned, or 20) at `at`: byte j holds code j and, in its high
// nibble, code j + 16.
template <int kFormat>
__device__ __forceinline__ void write_q4_block(unsigned char* at, const grey_qk_coding& c, const float* v, const Tables& tables) {
    uint32_t bytes[16];
#pragma unroll
    for (int j = 0; j < 16; ++j) bytes[j] = encode(kFormat, c, v[j], tables) | (encode(kFormat, c, v[j + 16], tables) << 4);
    if (kFormat == kQ4_0) {
        store_u16_at(at, c.scale16);
#pragma unroll
        for (int p = 0; p < 8; ++p) store_u16_at(at + 2 + 2 * p, bytes[2 * p] | (bytes[2 * p + 1] << 8));
    } else {  // Q4_1: 4-byte aligned
        store_u32_at(at, c.scale16 | (c.min16 << 16));
#pragma unroll
        for (int w = 0; w < 4; ++w) store_u32_at(at + 4 + 4 * w, pack_bytes(bytes + 4 * w));
    }
}

template <int kFormat, int kDtype>
__device__ __forceinline__ void quantize_blocks(grey_qk_args a, const Tables& tables, BlockStaging& staging) {
    a.format = kFormat;
    a.dtype = kDtype;
    const uint32_t slices = static_cast<uint32_t>(a.elements / 32);
    const int tile = static_cast<int>(a.run_length / 32);
    const uint32_t lane = threadIdx.x & 31u;
    const uint32_t in_group = (lane % static_cast<uint32_t>(tile)) * 32;  // the slice's first element in its group
    uint4 (&areas)[kStages][32 * kSlicePieces] = staging.pieces[threadIdx.x / 32];
    const uint32_t stride = gridDim.x * blockDim.x;
    const uint32_t first = blockIdx.x * blockDim.x + (threadIdx.x & ~31u);
    // Every pass commits one group of copies, empty past the end, so that the wait below always leaves
    // exactly the kStages - 1 newest in flight.
    const auto stage = [&](uint32_t pass_base, uint4* area) {
        if (pass_base < slices) stage32_async<kDtype>(a.plain, pass_base, slices, area);
        else commit_copies();
    };
#pragma unroll
    for (int k = 0; k < kStages - 1; ++k) stage(first + k * stride, areas[k]);
    // Whole warps iterate together: the tile reductions and the staging need every lane.
    int current = 0;  // the area this pass reads; the one before it (free again) takes the pass kStages - 1 ahead
    for (uint32_t base = first; base < slices; base += stride, current = current == kStages - 1 ? 0 : current + 1) {
        const uint32_t slice = base + lane;
        const bool active = slice < slices;
        stage(base + (kStages - 1) * stride, areas[current == 0 ? kStages - 1 : current - 1]);
        wait_copies<kStages - 1>();
        uint4* mine = areas[current];
        float v[32];
        unstage32<kDtype>(mine, v);
        if (!active) {
#pragma unroll
            for (int k = 0; k < 32; ++k) v[k] = 0.0f;
        }
        bool finite = true;
#pragma unroll
        for (int k = 0; k < 32; ++k) finite = finite && isfinite(v[k]);
        if (!finite) {  // rare; unrolled, since an array indexed at run time would live in local memory
#pragma unroll
            for (int k = 0; k < 32; ++k) note_if_not_finite(a, 32ull * slice + k, v[k]);
        }

        Stats s{0.0f, INFINITY, -INFINITY, 0.0f};
        if (uses_minmax(kFormat)) {
            group_min_max<32>(v, in_group, tile, s);
        } else {
            float m = 0.0f;
#pragma unroll
            for (int k = 0; k < 32; ++k) m = fmaxf(m, fabsf(v[k]));
            s.absmax = max_tile(m, tile);
            if (kFormat == kQ4_0) {  // blocks of 32: the lane holds the whole block; the first peak wins
                s.peak = v[31];
#pragma unroll
                for (int k = 30; k >= 0; --k)
                    if (fabsf(v[k]) == s.absmax) s.peak = v[k];
            }
        }
        const grey_qk_coding c = make_coding(kFormat, s, 1.0f);
        // Rare (values too large for fp16 parameters). Carrying a marker through the loop instead, to flag
        // once at the end, spilled more: measured no faster.
        if (active && overflows(c)) flag_overflow(a, (slice / static_cast<uint32_t>(tile)) * a.run_length);

        if constexpr (is_ggml(kFormat)) {
            constexpr uint32_t kBlockBytes = kFormat == kQ4_0 ? 18 : 20;
            unsigned char* out = reinterpret_cast<unsigned char*>(a.quantized) + static_cast<uint64_t>(base) * kBlockBytes;
            if (base + 32 <= slices) {  // a whole warp: blocks into shared memory, then out in 16-byte pieces
                unsigned char* bytes = reinterpret_cast<unsigned char*>(mine);
                write_q4_block<kFormat>(bytes + lane * kBlockBytes, c, v, tables);
                __syncwarp();
                // 32 blocks are 576 or 640 bytes: whole pieces, 16-byte aligned (base is a multiple of 32).
                for (uint32_t piece = lane; piece < 2 * kBlockBytes; piece += 32)
                    reinterpret_cast<uint4*>(out)[piece] = mine[piece];
                __syncwarp();
            } else if (active) {
                write_q4_block<kFormat>(out + lane * kBlockBytes, c, v, tables);
            }
            continue;
        }
        if (!active) continue;
        // Planar nibbles, low nibble first: 16 bytes a lane, the warp's 512 contiguous.
        uint32_t words[4];
#pragma unroll
        for (int w = 0; w < 4; ++w) {
            uint32_t word = 0;
#pragma unroll
            for (int k = 0; k < 8; ++k) word |= encode(kFormat, c, v[8 * w + k], tables) << (4 * k);
            words[w] = word;
        }
        *reinterpret_cast<uint4*>(a.quantized + 16ull * slice) = make_uint4(words[0], words[1], words[2], words[3]);
        if (in_group == 0) store_params(a, slice / static_cast<uint32_t>(tile), c);
    }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(GREY_QK_BLOCKS_THREADS, 8) grey_quant_blocks(grey_qk_args a) {
    __shared__ Tables tables;
    __shared__ BlockStaging staging;
    build_tables(a.format, kEncodeTables, tables);
    with_dtype(a.dtype, [&]<int kDtype>() {
        switch (a.format) {
            case kInt4: quantize_blocks<kInt4, kDtype>(a, tables, staging); break;
            case kInt4Sym: quantize_blocks<kInt4Sym, kDtype>(a, tables, staging); break;
            case kNf4: quantize_blocks<kNf4, kDtype>(a, tables, staging); break;
            case kQ4_0: quantize_blocks<kQ4_0, kDtype>(a, tables, staging); break;
            default: quantize_blocks<kQ4_1, kDtype>(a, tables, staging); break;
        }
    });
}

// RTN for Q8_0, both tensors 16-byte aligned: the elements stay in registers. A lane takes eight
// consecutive elements a step (two neighbouring 16-byte loads of F32, one of F16 or BF16), so four
// neighbouring lanes hold a block of 32 and find its absolute maximum with two shuffles, and the
// per-block work (the division, the reciprocal, the fp16 scale) is shared by eight elements a lane. A
// lane keeps GREY_QK_Q8_LOADS 16-byte loads in flight; a warp's steps cover contiguous memory, and its
// blocks pass through shared memory on the way out, so that they leave as whole 16-byte pieces (34-byte
// blocks are only 2-byte aligned). Measured on an H200 (bench/RESULTS.md), F32: 1.03 of memcpy, where
// four elements a lane (eight lanes a block, three shuffles) reached 0.98 and the cp.async staging of
// grey_quant_blocks 0.96.
namespace {

constexpr int kQ8PerLane = 8;        // elements a lane a step
constexpr uint32_t kQ8LanesPerBlock = 32 / kQ8PerLane;
constexpr uint32_t kQ8StepBlocks = 32 / kQ8LanesPerBlock;  // blocks a warp a step

template <int kDtype>
constexpr int kQ8Pieces = kDtype == GREY_QK_F32 ? 2 : 1;   // 16-byte loads a lane a step
template <int kDtype>
constexpr int kQ8Steps = GREY_QK_Q8_LOADS / kQ8Pieces<kDtype>;

// The largest warp pass (F16 and BF16, whose steps take one load), in bytes of output.
constexpr uint32_t kQ8BlockBytes = 34;  // the fp16 scale, then 32 codes
constexpr uint32_t kQ8StagedBytes = GREY_QK_Q8_LOADS * kQ8StepBlocks * kQ8BlockBytes;

// Whether the element or elements of a 32-bit word are finite (an exponent not all ones), from the bits:
// one test a word on the common path, the elements unpacked only when it fails.
template <int kDtype>
__device__ __forceinline__ bool words_finite(uint32_t word) {
    if (kDtype == GREY_QK_F32) return (word & 0x7F800000u) != 0x7F800000u;
    const uint32_t exponents = kDtype == GREY_QK_F16 ? 0x7C007C00u : 0x7F807F80u;
    return __vcmpeq2(word & exponents, exponents) == 0;
}

template <int kDtype>
__device__ __forceinline__ void quantize_q8_0(grey_qk_args a, unsigned char* staged) {
    constexpr int kPieces = kQ8Pieces<kDtype>;
    constexpr int kSteps = kQ8Steps<kDtype>;
    constexpr int kPerPiece = kQ8PerLane / kPieces;
    constexpr uint32_t kWarpBlocks = kSteps * kQ8StepBlocks;
    static_assert(kWarpBlocks == GREY_QK_Q8_WARP_BLOCKS(kDtype == GREY_QK_F32), "quantizer.cpp sizes the grid by this");
    a.format = kQ8_0;
    a.dtype = kDtype;
    const uint32_t blocks = static_cast<uint32_t>(a.elements / 32);
    const uint32_t lane = threadIdx.x & 31u;
    const uint32_t warps = blockDim.x / 32;
    const uint32_t passes = (blocks + kWarpBlocks - 1) / kWarpBlocks;
    const uint4* plain = reinterpret_cast<const uint4*>(a.plain);
    // Whole warps iterate together: the shuffles need every lane.
    for (uint32_t pass = blockIdx.x * warps + threadIdx.x / 32; pass < passes; pass += gridDim.x * warps) {
        const uint32_t first = pass * kWarpBlocks;
        const bool whole = first + kWarpBlocks <= blocks;
        // Step u of lane l holds the pass's elements 8 (32u + l) .. +7, of block (32u + l) / 4.
        uint4 raw[kSteps][kPieces];
#pragma unroll
        for (int u = 0; u < kSteps; ++u) {
            const uint32_t slot = 32 * u + lane;
            const bool inside = whole || first + slot / kQ8LanesPerBlock < blocks;
#pragma unroll
            for (int h = 0; h < kPieces; ++h)
                raw[u][h] = inside ? plain[static_cast<uint64_t>(first) * kQ8LanesPerBlock * kPieces + kPieces * slot + h]
                                   : make_uint4(0, 0, 0, 0);
        }
        bool finite = true;
#pragma unroll
        for (int u = 0; u < kSteps; ++u)
#pragma unroll
            for (int h = 0; h < kPieces; ++h)
                finite = finite && words_finite<kDtype>(raw[u][h].x) && words_finite<kDtype>(raw[u][h].y) &&
                         words_finite<kDtype>(raw[u][h].z) && words_finite<kDtype>(raw[u][h].w);
        if (!finite) {  // rare: one test for the pass, the search for the element only then
#pragma unroll
            for (int u = 0; u < kSteps; ++u)
#pragma unroll
                for (int h = 0; h < kPieces; ++h) {
                    float v[kPerPiece];
                    unpack16<kDtype>(raw[u][h], v);
#pragma unroll
                    for (int k = 0; k < kPerPiece; ++k)
                        note_if_not_finite(a, 32ull * first + kQ8PerLane * (32 * u + lane) + kPerPiece * h + k, v[k]);
                }
        }
        int overflowed = -1;  // the lane's first step whose block overflowed: its lowest such block
#pragma unroll
        for (int u = 0; u < kSteps; ++u) {
            const uint32_t slot = 32 * u + lane;
            float v[kQ8PerLane];
#pragma unroll
            for (int h = 0; h < kPieces; ++h) unpack16<kDtype>(raw[u][h], v + kPerPiece * h);
            float m = 0.0f;
#pragma unroll
            for (int k = 0; k < kQ8PerLane; ++k) m = fmaxf(m, fabsf(v[k]));
            const grey_qk_coding c = make_coding(kQ8_0, Stats{max_tile(m, kQ8LanesPerBlock), INFINITY, -INFINITY, 0.0f}, 1.0f);
            const bool leads = slot % kQ8LanesPerBlock == 0;  // the block's first lane writes its scale
            if (overflowed < 0 && leads && overflows(c)) overflowed = u;
            unsigned char* at = staged + kQ8BlockBytes * (slot / kQ8LanesPerBlock);
            if (leads) store_u16_at(at, c.scale16);
#pragma unroll
            for (int k = 0; k < kQ8PerLane; k += 2)
                store_u16_at(at + 2 + kQ8PerLane * (slot % kQ8LanesPerBlock) + k,
                             encode_integer(kQ8_0, c, v[k]) | (encode_integer(kQ8_0, c, v[k + 1]) << 8));
        }
        // Rare. Blocks past the end hold zeros, which never overflow.
        if (overflowed >= 0) flag_overflow(a, 32ull * (first + (32 * static_cast<uint32_t>(overflowed) + lane) / kQ8LanesPerBlock));
        __syncwarp();
        unsigned char* out = reinterpret_cast<unsigned char*>(a.quantized) + uint64_t{kQ8BlockBytes} * first;
        if (whole) {  // first is a multiple of 32 blocks, whose 1088 bytes are whole 16-byte pieces
            for (uint32_t piece = lane; piece < kWarpBlocks * kQ8BlockBytes / 16; piece += 32)
                reinterpret_cast<uint4*>(out)[piece] = reinterpret_cast<const uint4*>(staged)[piece];
        } else {
            for (uint32_t byte = lane; byte < (blocks - first) * kQ8BlockBytes; byte += 32) out[byte] = staged[byte];
        }
        __syncwarp();  // the area is free for the next pass
    }
}

}  // namespace

// Four blocks a multiprocessor, so at most 64 registers: left alone, the compiler gives the kernel 76
// (98 for the four-elements-a-lane version, which then ran at 0.69 of memcpy with two blocks).
extern "C" __global__ void __launch_bounds__(GREY_QK_Q8_THREADS, 4) grey_quant_q8_0(grey_qk_args a) {
    __shared__ __align__(16) unsigned char staged[GREY_QK_Q8_THREADS / 32][kQ8StagedBytes];
    with_dtype(a.dtype, [&]<int kDtype>() { quantize_q8_0<kDtype>(a, staged[threadIdx.x / 32]); });
}
