// The host reference quantizer: every format of runtime/quant/format.hpp, on host memory, written once
// over the primitives of kernels.hpp (so the scalar and AVX2 paths give the same bits).
#pragma once

#include "host/quant/kernels.hpp"
#include "quant/format.hpp"

#include <cstddef>
#include <span>
#include <vector>

namespace grey::host::quant {

// The tensor as float32: F32 copied, F16 and BF16 widened exactly. A NaN or infinity fails with
// GREY_ERROR_INVALID_ARGUMENT naming its index.
std::vector<float> to_f32(grey_dtype dtype, std::span<const std::byte> source, uint64_t elements, const Kernels& kernels);
// The same values without a copy where there is nothing to convert (F32, 4-byte aligned): a view of
// `source`, or of `storage`, which receives the converted copy otherwise.
std::span<const float> as_f32(grey_dtype dtype, std::span<const std::byte> source, uint64_t elements, const Kernels& kernels,
                              std::vector<float>& storage);
// float32 -> F32, F16 or BF16 (round to nearest even).
void from_f32(std::span<const float> values, grey_dtype dtype, std::span<std::byte> destination);

// Writes plan.bytes bytes of quantized `x` (plan.elements values) to `out`.
void quantize(const grey::quant::Plan& plan, std::span<const float> x, std::span<std::byte> out, const Kernels& kernels);
// The reverse: plan.elements float32 values from plan.bytes bytes.
void dequantize(const grey::quant::Plan& plan, std::span<const std::byte> in, std::span<float> out, const Kernels& kernels);
// Elements first .. first + out.size() - 1 only; `first` and the count even, and whole blocks for the
// ggml formats (multiples of 32). Decoding a tensor in slices gives the bits of decoding it whole.
void dequantize_range(const grey::quant::Plan& plan, std::span<const std::byte> in, uint64_t first, std::span<float> out,
                      const Kernels& kernels);

}  // namespace grey::host::quant
