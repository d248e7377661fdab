// The device side of one element's code: encoding with a parameter set (common/quant_coding.hpp's
// Coding) and decoding with its smaller decoding half, for every format.
#pragma once

#include "quant_tables.cuh"

namespace {

// encode_integer spells out stores_minimum(format) for the SASS it was measured with: through the
// function, nvcc orders grey_quant_search's instructions differently. This keeps the two from drifting.
constexpr bool subtract_rule_matches() {
    for (int format = kInt8; format <= kQ4_1; ++format)
        if ((format == kInt4 || format == kQ4_1) != stores_minimum(format)) return false;
    return true;
}
static_assert(subtract_rule_matches(), "encode_integer's e_sub rule must be common/quant_coding.hpp's stores_minimum");

// The stored code of one element of an integer format: a byte (int8 as two's complement) or a nibble
// before packing. make_coding fixes which of the affine terms are zero for each format, and those are
// left out: x - 0 is x, and v + 0 differs from v only for v = -0, which rounds to the same code. With
// the format a compile-time constant, an int8 element costs a multiply, the rounding (an add toward
// zero and a truncating conversion) and the clamp.
__device__ __forceinline__ uint32_t encode_integer(int format, const Coding& c, float x) {
    const bool subtracts = format == kInt4 || format == kQ4_1;  // e_sub: the group's minimum (stores_minimum)
    const bool adds = grey::common::truncates(format);       // e_add: 8.5 and 0.5, then truncation
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
__device__ __forceinline__ uint32_t encode(int format, const Coding& c, float x, const Tables& t) {
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

__device__ __forceinline__ Decoding decoding_of(const Coding& c) { return {c.d_sub, c.d_mul, c.d_add, c.scale}; }

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


}  // namespace
