// The host's element-wise quantization primitives, in a scalar version (the reference) and vector
// versions (AVX2, AVX-512) chosen at run time from what the CPU reports. Each primitive is exact element
// by element (one IEEE multiply, one add, a defined rounding, no fused multiply-add), so every version
// gives bit-identical codes and values; only the speed differs. Format logic (quantizer.cpp) is written
// once on top of them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace grey::host::quant {

enum class Rounding : uint32_t {
    nearest_away,  // C's roundf: halves away from zero (what ggml and numpy's np_roundf in gguf do)
    truncate,      // C's (int) cast: toward zero (ggml's Q4_0 and Q4_1)
};

// q = clamp(round((x - subtract) * multiply + add), lo, hi)
struct EncodeSpec {
    float subtract;
    float multiply;
    float add;
    Rounding rounding;
    int32_t lo;
    int32_t hi;
};

// y = (float(q) - subtract) * multiply + add
struct DecodeSpec {
    float subtract;
    float multiply;
    float add;
};

struct Kernels {
    const char* name;  // "scalar", "avx2", "avx512"
    float (*absmax)(const float* x, std::size_t n);
    void (*minmax)(const float* x, std::size_t n, float* out_min, float* out_max);
    void (*encode)(const float* x, std::size_t n, const EncodeSpec& spec, int8_t* out);
    void (*decode)(const int8_t* q, std::size_t n, const DecodeSpec& spec, float* out);
    // out[i] = table[codes[i]] * scale
    void (*decode_table)(const uint8_t* codes, std::size_t n, const float* table, float scale, float* out);
    // The same for a table of 16 (NF4's levels) and codes below 16: a permute in registers, no gather.
    void (*decode_table16)(const uint8_t* codes, std::size_t n, const float* table, float scale, float* out);
    // out[i] = fp8_to_f32(codes[i], format) * scale, where `table` holds the format's 256 values: the
    // scalar path reads them, the vector paths build each value from the code's bits (no gather). A NaN
    // code gives fp8_to_f32's quiet NaN 0x7FC00000 whatever the scale: a product of two NaNs would give
    // either one by the order of its operands, which no compiler keeps.
    void (*decode_fp8)(const uint8_t* codes, std::size_t n, const float* table, int format, float scale, float* out);
    void (*f16_to_f32)(const uint16_t* in, std::size_t n, float* out);
    // out[i] = the fp8 code (GREY_QUANT_FP8_E4M3 or _E5M2) of x[i] * inverse: common/numeric.hpp's
    // f32_to_fp8, round to nearest even, saturating, a NaN product coded NaN with its sign.
    void (*encode_fp8)(const float* x, std::size_t n, float inverse, int format, int8_t* out);
    // out[i] = the NF4 code of x[i] * inverse: common/numeric.hpp's nf4_code (the number of midpoints
    // between levels the product lies above; a NaN product codes 0).
    void (*encode_nf4)(const float* x, std::size_t n, float inverse, int8_t* out);
    // ggml's 4-bit packing of `blocks` blocks of 32 codes (each 0..15, `codes` holding them in order):
    // block b's byte j at out[b * stride + j] = codes[32b + j] | codes[32b + j + 16] << 4, j < 16.
    void (*pack_ggml_nibbles)(const int8_t* codes, std::size_t blocks, uint8_t* out, std::size_t stride);
    // libgrey's planar 4-bit packing of n codes, neighbours in a byte: out[i] = (codes[2i] + bias) & 15 |
    // ((codes[2i + 1] + bias) & 15) << 4; for an odd n the last byte holds its one code, high nibble 0.
    void (*pack_nibble_pairs)(const int8_t* codes, std::size_t n, int bias, uint8_t* out);
    // The reverse, n codes from the low nibble of packed[0] on: codes[2i] = (packed[i] & 15) - bias,
    // codes[2i + 1] = (packed[i] >> 4) - bias.
    void (*unpack_nibble_pairs)(const uint8_t* packed, std::size_t n, int bias, int8_t* codes);
    // The largest magnitude's bits among n float32 (or fp16/bf16) values read from `bits` (no alignment
    // needed): max(word & 0x7FFFFFFF) (or & 0x7FFF); 0 for n = 0. At or above the exponent's all-ones
    // pattern a value is an infinity or a NaN.
    uint32_t (*max_magnitude32)(const std::byte* bits, std::size_t n);
    uint16_t (*max_magnitude16)(const std::byte* bits, std::size_t n);
    // common::ErrorSums::accumulate_lanes: x[i] and y[i], i < n, into lane i % 8 of the three sums.
    void (*error_lanes)(const float* x, const float* y, std::size_t n, double* signal8, double* error8, double* max_abs_error);
    // Round to nearest of `groups` consecutive whole groups of `length` values each (x: the first
    // group's first value; `length` a multiple of 32, and 32 for the ggml formats), every group's
    // statistics, parameters (common::make_coding at alpha 1) and codes made in one visit while it is in
    // the cache, 16 groups' parameters at a time in vector registers. Writes what quantize() stores:
    // INT4, INT4_SYM and NF4: the codes in neighbour pairs (pack_nibble_pairs) from `codes` on, the fp16
    // scale bits to scales[2g..] (NF4: the float32 scale to scales[4g..]) and INT4's fp16 minimum to
    // mins[2g..]; Q8_0, Q4_0 and Q4_1: block g, header and codes, at codes + g * its block bytes. Returns
    // the largest magnitude's bits among the values read (max_magnitude32's), from the same scan as the
    // statistics: the bytes are quantize()'s when every value is finite (below 0x7F800000) and, for the
    // formats with fp16 parameters, at most 65504 in magnitude (0x477FE000: so that none overflows);
    // otherwise they are meaningless, for the caller to discard (any input is safe to read and write).
    // nullptr in a set without it (the scalar reference): quantize() then takes its primitives one by one.
    uint32_t (*quantize_groups)(int format, const float* x, std::size_t groups, std::size_t length, uint8_t* codes, std::byte* scales,
                                std::byte* mins);
    // The reverse for the same formats and layout, any bytes: `groups` whole groups decoded to `out`, the
    // bits of unpacking the codes and decoding each group with decode (NF4: decode_table16) from the
    // parameters as dequantize reads them back. nullptr where a set has none.
    void (*dequantize_groups)(int format, const uint8_t* codes, const std::byte* scales, const std::byte* mins, std::size_t groups,
                              std::size_t length, float* out);
    // The same decoders writing with non-temporal (streaming) stores; nullptr in a set without them.
    const struct StreamingKernels* streaming;
    // Round to nearest INT8 (and INT8_TOKEN) of `runs` consecutive runs of `length` values from x, each
    // with its own scale: run r's largest magnitude (max_magnitude32's bits), its coding (common::make_coding
    // at alpha 1 from that absmax), its codes (encode's, from that coding) to codes[r * length ..] and its
    // float32 scale to scales[4r ..] (any alignment), one run after another while the values ahead are
    // asked for. Returns the largest magnitude's bits among all the values: the bytes are quantize()'s when
    // every value is finite (below 0x7F800000), and meaningless otherwise, for the caller to discard.
    // `stream`: the codes' whole 64-byte lines written with non-temporal stores (the same bytes; fenced
    // before the call returns), for output too large to be read back from the caches. nullptr in a set
    // without it: quantize() then takes its primitives one by one.
    uint32_t (*quantize_int8_runs)(const float* x, std::size_t runs, std::size_t length, int8_t* codes, std::byte* scales, bool stream);
};

// decode, decode_fp8, decode_table16 and dequantize_groups with the same arguments and the same bits,
// writing whole 64-byte lines of the output with non-temporal (streaming) stores and only the partial
// lines at either end with ordinary ones: a line written whole is not read from memory first
// (read-for-ownership), a third of a large dequantization's traffic. The lines bypass the caches, so this
// pays only for output too large to be read back from them. Streaming stores are weakly ordered: fence
// must run before the writer reports the output written (a chunk of a parallel job, its end).
struct StreamingKernels {
    void (*decode)(const int8_t* q, std::size_t n, const DecodeSpec& spec, float* out);
    void (*decode_table16)(const uint8_t* codes, std::size_t n, const float* table, float scale, float* out);
    void (*decode_fp8)(const uint8_t* codes, std::size_t n, const float* table, int format, float scale, float* out);
    void (*dequantize_groups)(int format, const uint8_t* codes, const std::byte* scales, const std::byte* mins, std::size_t groups,
                              std::size_t length, float* out);
    void (*fence)();
};

const Kernels& scalar_kernels() noexcept;
// nullptr when the CPU lacks AVX2 or F16C (or the compiler could not build the path).
const Kernels* avx2_kernels() noexcept;
// nullptr when the CPU (or the operating system, which must save the registers) lacks AVX-512 F, BW
// and VL, or the compiler could not build the path.
const Kernels* avx512_kernels() noexcept;
// The fastest set this CPU runs.
const Kernels& best_kernels() noexcept;

}  // namespace grey::host::quant
