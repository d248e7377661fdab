// The quantization formats' geometry: which elements share a scale, and where codes, scales and zero
// points lie in the quantized bytes. Every backend follows this layout (docs/quantization.md draws it).
//
// Elements are taken in row-major order. A "run" is a stretch of consecutive elements that share one
// parameter set (scale, and min for INT4); run r uses parameter set r % param_count. That one rule covers
// grouped formats (run = group, one set per run), per-channel scales on any axis (run = the elements
// inside one index of the axis, sets cycle through the channels) and per-tensor scales (one run).
#pragma once

#include "grey.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace grey::quant {

struct Plan {
    grey_quant_format format = GREY_QUANT_INT8;
    grey_quant_calibration calibration = GREY_CALIBRATION_RTN;
    uint64_t elements = 0;
    uint64_t run_length = 0;
    uint64_t param_count = 0;
    uint64_t codes_bytes = 0;  // planar formats: the codes, then the parameter arrays
    uint64_t bytes = 0;        // everything
    std::vector<uint64_t> shape;

    [[nodiscard]] uint64_t run_count() const noexcept { return run_length == 0 ? 0 : elements / run_length; }
    [[nodiscard]] bool is_ggml_block() const noexcept {
        return format == GREY_QUANT_Q8_0 || format == GREY_QUANT_Q4_0 || format == GREY_QUANT_Q4_1;
    }
};

// Checks a caller's descriptor (struct_size, rank, reserved fields) and returns its shape.
std::vector<uint64_t> checked_shape(const grey_tensor_desc& desc);
// Checks a caller's parameters and the tensor shape against them; GREY_ERROR_INVALID_ARGUMENT naming
// the rule that fails.
Plan make_plan(std::span<const uint64_t> shape, const grey_quant_params& params);

// "int8", "int4", ...; nullptr for an unknown value.
const char* format_name(int64_t format) noexcept;

// The named parameter sets of grey.h (grey_quant_params_from_name), in the order it lists them. Axis
// formats use axis 0; group_size is what the name says (0 for formats without a group choice).
struct NamedParams {
    const char* name;
    grey_quant_format format;
    uint32_t group_size;
};
std::span<const NamedParams> named_params() noexcept;

// The asymmetric formats (INT4, Q4_1): each group stores a minimum beside its scale, both chosen from
// the group's minimum and maximum.
constexpr bool stores_minimum(grey_quant_format format) noexcept { return format == GREY_QUANT_INT4 || format == GREY_QUANT_Q4_1; }

// The refusal for a scale group (elements first .. first + group_size - 1) whose fp16 scale or
// minimum would overflow: the same words from every backend.
std::string f16_overflow_message(grey_quant_format format, uint64_t first, uint64_t group_size);

// Plain element types a quantizer reads and a dequantizer writes.
bool is_float_input(grey_dtype dtype) noexcept;
uint32_t float_input_size(grey_dtype dtype) noexcept;

}  // namespace grey::quant
