/* The KV cache's quantization rule, written once for the host reference and the device kernels: the
 * codes of one group of values (KIVI's asymmetric min/scale rule for 8, 4 and 2 bits; a symmetric
 * absmax scale for fp8 e4m3), how codes are packed into bytes, and how a code decodes. Includes nothing
 * from runtime/ or backends/. */
#ifndef GREY_COMMON_KV_CODING_HPP
#define GREY_COMMON_KV_CODING_HPP

#include "common/hostdevice.h"
#include "common/numeric.hpp"

#include <stdint.h>

namespace grey::common {

/* The values of grey_kv_format. */
enum KvCodeKind : uint32_t { kv_int8 = 0, kv_int4 = 1, kv_int2 = 2, kv_fp8_e4m3 = 3 };

GREY_FN_FORCE constexpr uint32_t kv_code_bits(uint32_t kind) { return kind == kv_int4 ? 4u : kind == kv_int2 ? 2u : 8u; }

/* A group's decoding parameters: value = minimum + code * scale (integer kinds), or
 * value = fp8(code) * scale (fp8, minimum 0). */
struct KvGroupParams {
    float scale;
    float minimum;
};

/* The bytes that `codes` codes of `kind` take, packed (codes never straddle a byte). */
GREY_FN_FORCE uint64_t kv_code_bytes(uint64_t codes, uint32_t kind) {
    const uint64_t per_byte = 8u / kv_code_bits(kind);
    return (codes + per_byte - 1) / per_byte;
}

GREY_FN_FORCE uint32_t kv_code_at(const uint8_t* codes, uint64_t index, uint32_t kind) {
    const uint32_t bits = kv_code_bits(kind);
    const uint64_t per_byte = 8u / bits;
    const uint32_t shift = static_cast<uint32_t>(index % per_byte) * bits;
    return (codes[index / per_byte] >> shift) & ((1u << bits) - 1u);
}

/* Ors `code` into place: the packed bytes start zeroed. */
GREY_FN_FORCE void kv_put_code(uint8_t* codes, uint64_t index, uint32_t kind, uint32_t code) {
    const uint32_t bits = kv_code_bits(kind);
    const uint64_t per_byte = 8u / bits;
    const uint32_t shift = static_cast<uint32_t>(index % per_byte) * bits;
    codes[index / per_byte] = static_cast<uint8_t>(codes[index / per_byte] | (code << shift));
}

/* The parameters for values whose minimum is `lo` and maximum `hi`. Zero is taken as +0 however signed, so
 * that the parameters do not depend on the order in which the extremes were found (fminf and fmaxf may
 * return either zero of a -0/+0 pair). */
GREY_FN KvGroupParams kv_group_params(float lo, float hi, uint32_t kind) {
    lo = add_rn(lo, 0.0f);
    hi = add_rn(hi, 0.0f);
    KvGroupParams p{0.0f, 0.0f};
    if (kind == kv_fp8_e4m3) {
        const float absmax = fmaxf(fabsf(lo), fabsf(hi));
        p.scale = absmax > 0.0f ? div_rn(absmax, 448.0f) : 0.0f;
        return p;
    }
    const float levels = static_cast<float>((1u << kv_code_bits(kind)) - 1u);
    p.minimum = lo;
    p.scale = div_rn(sub_rn(hi, lo), levels);
    return p;
}

/* A group's parameters readied for coding its values: the reciprocal of the scale, taken once, so that a
 * value's code costs a multiplication. `inverse` 0: every code is 0 (a zero or non-finite scale); else
 * finite (a subnormal scale's reciprocal is clamped to the largest float). */
struct KvEncoder {
    float minimum;
    float inverse;
};

GREY_FN KvEncoder kv_encoder(KvGroupParams p) {
    KvEncoder e{p.minimum, 0.0f};
    if (p.scale == 0.0f || !(p.scale < 3.0e38f)) return e;
    e.inverse = fminf(div_rn(1.0f, p.scale), 3.40282347e38f);
    return e;
}

/* The code of `value`: (value - minimum) * (1 / scale) rounded to nearest even and clamped to the codes
 * (integer kinds), or the fp8 number nearest value * (1 / scale). */
GREY_FN_FORCE uint32_t kv_encode(float value, KvEncoder e, uint32_t kind) {
    if (kind == kv_fp8_e4m3) return e.inverse == 0.0f ? 0u : f32_to_fp8(mul_rn(value, e.inverse), GREY_QUANT_FP8_E4M3);
    const float levels = static_cast<float>((1u << kv_code_bits(kind)) - 1u);
    // fmaxf first: it takes 0 over the NaN of an infinite window value times a zero inverse.
    const float q = fminf(fmaxf(rintf(mul_rn(sub_rn(value, e.minimum), e.inverse)), 0.0f), levels);
    return static_cast<uint32_t>(q);
}

GREY_FN uint32_t kv_encode(float value, KvGroupParams p, uint32_t kind) { return kv_encode(value, kv_encoder(p), kind); }

GREY_FN float kv_decode(uint32_t code, KvGroupParams p, uint32_t kind) {
    if (kind == kv_fp8_e4m3) return mul_rn(fp8_to_f32(code, GREY_QUANT_FP8_E4M3), p.scale);
    return add_rn(p.minimum, mul_rn(static_cast<float>(code), p.scale));
}

}  // namespace grey::common

#endif
