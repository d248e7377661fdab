// The host's element-wise quantization primitives, in a scalar and an AVX2 version. Each primitive is
// exact element by element (one IEEE multiply, one add, a defined rounding, no fused multiply-add), so
// both versions give bit-identical codes and values; only the speed differs. Format logic
// (quantizer.cpp) is written once on top of them.
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
    const char* name;  // "scalar", "avx2"
    float (*absmax)(const float* x, std::size_t n);
    void (*minmax)(const float* x, std::size_t n, float* out_min, float* out_max);
    void (*encode)(const float* x, std::size_t n, const EncodeSpec& spec, int8_t* out);
    void (*decode)(const int8_t* q, std::size_t n, const DecodeSpec& spec, float* out);
    // out[i] = table[codes[i]] * scale
    void (*decode_table)(const uint8_t* codes, std::size_t n, const float* table, float scale, float* out);
    void (*f16_to_f32)(const uint16_t* in, std::size_t n, float* out);
};

const Kernels& scalar_kernels() noexcept;
// nullptr when the CPU lacks AVX2 or F16C (or the compiler could not build the path).
const Kernels* avx2_kernels() noexcept;
// The fastest set this CPU runs.
const Kernels& best_kernels() noexcept;

}  // namespace grey::host::quant
