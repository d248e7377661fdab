// The element-wise pieces of the Level Zero quantization kernels (grey_quant.clcpp, grey_quant_mse.clcpp),
// in C++ for OpenCL: reading and writing the tensors a byte at a time, and encoding and decoding one
// element exactly as the host's scalar kernels (backends/host/quant/kernels_scalar.cpp) do, on the
// coding rules of common/quant_coding.hpp.
#pragma once

#pragma OPENCL EXTENSION __cl_clang_function_pointers : enable  // grey.h declares callback types

#include "common/numeric.hpp"
#include "common/quant_coding.hpp"
#include "kernels/opencl/quant_args.h"

namespace {

namespace gc = grey::common;
using gc::Coding;

uint32_t load_u16(const global uchar* p) { return uint32_t{p[0]} | uint32_t{p[1]} << 8; }
uint32_t load_u32(const global uchar* p) { return load_u16(p) | load_u16(p + 2) << 16; }
void store_u16(global uchar* p, uint32_t v) {
    p[0] = static_cast<uchar>(v);
    p[1] = static_cast<uchar>(v >> 8);
}
void store_u32(global uchar* p, uint32_t v) {
    store_u16(p, v);
    store_u16(p + 2, v >> 16);
}

// Element e of the plain tensor as float32: F16 and BF16 widened exactly.
float load_plain(const global uchar* plain, int dtype, uint64_t e) {
    if (dtype == GREY_QL0_F32) return as_float(load_u32(plain + 4 * e));
    const uint32_t bits = load_u16(plain + 2 * e);
    return dtype == GREY_QL0_F16 ? gc::f16_to_f32(bits) : gc::bf16_to_f32(bits);
}

void store_plain(global uchar* plain, int dtype, uint64_t e, float v) {
    if (dtype == GREY_QL0_F32) store_u32(plain + 4 * e, as_uint(v));
    else store_u16(plain + 2 * e, dtype == GREY_QL0_F16 ? gc::f32_to_f16(v) : gc::f32_to_bf16(v));
}

// std::min and std::max as the host's scalar scan applies them: the earlier of two equal values stays
// (so the first of -0 and +0 is the one kept).
float keep_min(float kept, float v) { return v < kept ? v : kept; }
float keep_max(float kept, float v) { return kept < v ? v : kept; }

uint64_t set_of_run(const grey_quant_layout& layout, uint64_t r) { return r % layout.param_count; }

bool planar_four_bit(int format) { return format == GREY_QUANT_INT4 || format == GREY_QUANT_INT4_SYM || format == GREY_QUANT_NF4; }

// The code of one element: backends/host/quant/kernels_scalar.cpp's encode, encode_fp8 and encode_nf4.
int32_t encode(int format, const Coding& c, float x) {
    if (gc::is_fp8(format)) return static_cast<int32_t>(static_cast<int8_t>(gc::f32_to_fp8(gc::mul_rn(x, c.e_mul), format)));
    if (format == GREY_QUANT_NF4) return static_cast<int32_t>(gc::nf4_code(gc::mul_rn(x, c.e_mul)));
    const float scaled = gc::mul_rn(gc::sub_rn(x, c.e_sub), c.e_mul);
    const float v = gc::add_rn(scaled, c.e_add);
    const float r = gc::truncates(format) ? trunc(v) : round(v);  // OpenCL's round: halves away from zero, as C's
    if (isnan(r)) return 0;
    const float lo = static_cast<float>(c.lo), hi = static_cast<float>(c.hi);
    return static_cast<int32_t>(r < lo ? lo : hi < r ? hi : r);  // std::clamp
}

// The parameter set p that grey_quant_encode (with the host) stored: backends/host/quant's load_coding.
Coding stored_coding(const grey_quant_layout& layout, const global uchar* q, uint64_t p) {
    Coding c{};
    const global uchar* params = q + layout.codes_bytes;
    const global uchar* block = q + gc::ggml_block_bytes(layout.format) * p;
    switch (layout.format) {
        case GREY_QUANT_INT8: case GREY_QUANT_INT8_TOKEN:
            c.scale = as_float(load_u32(params + 4 * p));
            c.d_mul = c.scale;
            break;
        case GREY_QUANT_FP8_E4M3: case GREY_QUANT_FP8_E5M2: case GREY_QUANT_NF4:
            c.scale = as_float(load_u32(params + 4 * p));
            break;
        case GREY_QUANT_INT4_SYM: c.d_mul = gc::f16_to_f32(load_u16(params + 2 * p)); break;
        case GREY_QUANT_INT4:
            c.d_mul = gc::f16_to_f32(load_u16(params + 2 * p));
            c.d_add = gc::f16_to_f32(load_u16(params + 2 * layout.param_count + 2 * p));
            break;
        case GREY_QUANT_Q8_0: c.d_mul = gc::f16_to_f32(load_u16(block)); break;
        case GREY_QUANT_Q4_0:
            c.d_sub = 8.0f;
            c.d_mul = gc::f16_to_f32(load_u16(block));
            break;
        default:  // GREY_QUANT_Q4_1 (the backend launches known formats only)
            c.d_mul = gc::f16_to_f32(load_u16(block));
            c.d_add = gc::f16_to_f32(load_u16(block + 2));
            break;
    }
    return c;
}

// The code of element e as a signed value (4-bit symmetric codes unbiased) or an unsigned table index.
int32_t code_of(const grey_quant_layout& layout, const global uchar* q, uint64_t e) {
    const int format = layout.format;
    if (gc::is_ggml(format)) {
        const global uchar* block = q + gc::ggml_block_bytes(format) * (e / gc::kGgmlBlockElements);
        const uint32_t j = static_cast<uint32_t>(e % gc::kGgmlBlockElements);
        if (format == GREY_QUANT_Q8_0) return static_cast<int32_t>(static_cast<char>(block[2 + j]));
        const global uchar* qs = block + gc::ggml_header_bytes(format);  // q[j] | q[j + 16] << 4
        return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
    }
    if (planar_four_bit(format)) {
        uint64_t byte = e / 2, nibble = e % 2;
        if (grey_quant_layout_has_rows(&layout)) {  // every row's codes start on a byte
            const uint64_t in_row = e % layout.row_length;
            byte = (e / layout.row_length) * grey_quant_layout_row_bytes(&layout) + in_row / 2;
            nibble = in_row % 2;
        }
        const int32_t code = nibble == 0 ? (q[byte] & 0x0F) : (q[byte] >> 4);
        return code - (format == GREY_QUANT_INT4_SYM ? 8 : 0);
    }
    if (gc::is_fp8(format)) return q[e];
    return static_cast<int32_t>(static_cast<char>(q[e]));
}

// backends/host/quant/kernels_scalar.cpp's decode, decode_fp8 (its table holds fp8_to_f32) and
// decode_table16 (NF4's levels).
float decode(int format, const Coding& c, int32_t code) {
    if (gc::is_fp8(format)) return gc::mul_rn(gc::fp8_to_f32(static_cast<uint32_t>(code), format), c.scale);
    if (format == GREY_QUANT_NF4) return gc::mul_rn(gc::kNf4Levels[code], c.scale);
    const float scaled = gc::mul_rn(gc::sub_rn(static_cast<float>(code), c.d_sub), c.d_mul);
    return gc::add_rn(scaled, c.d_add);
}

}  // namespace
