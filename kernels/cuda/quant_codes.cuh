// Reading stored codes back, four elements at a time at any alignment: shared by dequantization and the
// error measurement, which decode the same codes the same way.
#pragma once

#include "quant_params.cuh"

namespace {

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

}  // namespace
