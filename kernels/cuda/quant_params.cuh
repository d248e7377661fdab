// Where the quantization kernels store and read parameter sets (the layout of docs/quantization.md), and
// how they report bad input back to the backend: each flag keeps the lowest index found (grey_qk_flags).
#pragma once

#include "quant_codec.cuh"
#include "quant_memory.cuh"

namespace {

using grey::common::ggml_block_bytes;
using grey::common::ggml_header_bytes;

__device__ __forceinline__ grey_qk_flags* flags_of(const grey_qk_args& a) { return reinterpret_cast<grey_qk_flags*>(a.flags); }

// Keeps the lowest index in one of the job's flags, and tells the host there is one to read.
__device__ __forceinline__ void flag_lowest(const grey_qk_args& a, uint64_t* flag, uint64_t i) {
    atomicMin(reinterpret_cast<unsigned long long*>(flag), static_cast<unsigned long long>(i));
    *reinterpret_cast<volatile uint32_t*>(a.noticed) = 1u;
}

// Element i is NaN or infinite.
__device__ __forceinline__ void flag_not_finite(const grey_qk_args& a, uint64_t i) { flag_lowest(a, &flags_of(a)->non_finite, i); }

// The scale group that begins at element `first` overflowed.
__device__ __forceinline__ void flag_overflow(const grey_qk_args& a, uint64_t first) { flag_lowest(a, &flags_of(a)->overflow, first); }

__device__ __forceinline__ void note_if_not_finite(const grey_qk_args& a, uint64_t i, float v) {
    if (!isfinite(v)) {
        flag_not_finite(a, i);
        if (isnan(v)) flag_lowest(a, &flags_of(a)->nan, i);
    }
}

// Where planar formats keep parameter set p, and ggml blocks their header.
__device__ __forceinline__ void store_params(const grey_qk_args& a, uint64_t p, const Coding& c) {
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
        case kQ8_0: store_u16(a.quantized + grey::common::kQ8_0BlockBytes * p, c.scale16); break;
        case kQ4_0: store_u16(a.quantized + grey::common::kQ4_0BlockBytes * p, c.scale16); break;
        default:  // kQ4_1
            store_u16(a.quantized + grey::common::kQ4_1BlockBytes * p, c.scale16);
            store_u16(a.quantized + grey::common::kQ4_1BlockBytes * p + 2, c.min16);
            break;
    }
}

// store_params, flagging a set whose fp16 parameters overflowed. The formats with fp16 parameters are
// grouped, so set p is run p.
__device__ __forceinline__ void store_checked_params(const grey_qk_args& a, uint64_t p, const Coding& c) {
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
        case kQ8_0: c.mul = f16_to_f32(load_u16<kAligned>(a.quantized + grey::common::kQ8_0BlockBytes * p)); break;
        case kQ4_0:
            c.sub = 8.0f;
            c.mul = f16_to_f32(load_u16<kAligned>(a.quantized + grey::common::kQ4_0BlockBytes * p));
            break;
        default:  // kQ4_1
            c.mul = f16_to_f32(load_u16<kAligned>(a.quantized + grey::common::kQ4_1BlockBytes * p));
            c.add = f16_to_f32(load_u16<kAligned>(a.quantized + grey::common::kQ4_1BlockBytes * p + 2));
            break;
    }
    return c;
}


}  // namespace
