// What every quantization kernel file of this directory includes first: the argument block shared with
// the backend (quant_args.h), the coding rules and conversions of common/ (written once for the host
// reference and these kernels), short names for the formats, and the dispatch from run-time values to
// compile-time constants.
//
// Every float operation of the kernels is an explicit round-to-nearest intrinsic (__fmul_rn, __fadd_rn,
// ..., or common/hostdevice.h's wrappers of them), which the compiler never contracts into a fused
// multiply-add, and the fatbins are built with -fmad=false, -prec-div=true and -ftz=false as a second
// guard (backends/cuda/CMakeLists.txt): every format then gives the host reference's bits (the
// conformance rule, docs/architecture.md).
#pragma once

#include "quant_args.h"

#include "common/numeric.hpp"
#include "common/quant_coding.hpp"

#include <stdint.h>

namespace {

using grey::common::Coding;
using grey::common::Stats;
using grey::common::bf16_to_f32;
using grey::common::f16_to_f32;
using grey::common::f32_to_bf16;
using grey::common::f32_to_f16;
using grey::common::f32_to_fp8;
using grey::common::fp8_to_f32;
using grey::common::is_four_bit;
using grey::common::is_fp8;
using grey::common::is_ggml;
using grey::common::kHardwareFp8;
using grey::common::make_coding;
using grey::common::overflows;
using grey::common::stores_minimum;

// The formats as template arguments: grey.h's values under short names.
enum : int {
    kInt8 = GREY_QUANT_INT8, kInt8Token = GREY_QUANT_INT8_TOKEN, kInt4 = GREY_QUANT_INT4, kInt4Sym = GREY_QUANT_INT4_SYM,
    kFp8E4M3 = GREY_QUANT_FP8_E4M3, kFp8E5M2 = GREY_QUANT_FP8_E5M2, kNf4 = GREY_QUANT_NF4, kQ8_0 = GREY_QUANT_Q8_0,
    kQ4_0 = GREY_QUANT_Q4_0, kQ4_1 = GREY_QUANT_Q4_1
};

__device__ __forceinline__ uint64_t global_thread() { return static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ uint64_t grid_threads() { return static_cast<uint64_t>(gridDim.x) * blockDim.x; }

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
