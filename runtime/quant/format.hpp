// The quantization formats' rules as the runtime applies them to a caller's request: the checks on
// grey_quant_params and the shape, and the layout (common/quant_layout.h) computed from them once per
// call and handed to the backend. docs/quantization.md draws the layout.
#pragma once

#include "common/quant_layout.h"
#include "grey.h"

#include <cstdint>
#include <span>

namespace grey::quant {

// Checks a caller's parameters and the tensor shape against them; GREY_ERROR_INVALID_ARGUMENT naming
// the rule that fails.
grey_quant_layout make_layout(std::span<const uint64_t> shape, const grey_quant_params& params);

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

}  // namespace grey::quant
