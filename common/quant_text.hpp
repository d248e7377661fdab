// The words every backend uses when it refuses a quantization input, and the formats' names: one
// spelling, so that the same bad tensor gives the same message on the host and on a GPU (the
// conformance programs compare them). Host C++ only.
#pragma once

#include "common/quant_coding.hpp"

#include <array>
#include <cstdint>
#include <string>

#include "grey.h"

namespace grey::common {

// "int8", "int4", ... (grey_quant_format_name); nullptr for a value outside grey_quant_format.
inline const char* format_name(int64_t format) noexcept {
    static constexpr std::array<const char*, 10> kNames = {"int8", "int8-token", "int4", "int4-sym", "fp8-e4m3",
                                                           "fp8-e5m2", "nf4", "q8_0", "q4_0", "q4_1"};
    return format >= 0 && format < static_cast<int64_t>(kNames.size()) ? kNames[static_cast<std::size_t>(format)] : nullptr;
}

// The refusal for a scale group (elements first .. first + group_size - 1) whose fp16 scale or minimum
// would overflow.
inline std::string f16_overflow_message(int format, uint64_t first, uint64_t group_size) {
    const char* name = format_name(format);
    return "elements " + std::to_string(first) + " to " + std::to_string(first + group_size - 1) + " (one scale group) are too large for " +
           (name != nullptr ? name : "the format") + ": its fp16 " + (stores_minimum(format) ? "scale or minimum" : "scale") +
           " would pass 65504, the largest fp16 value; int8, fp8 and nf4 keep fp32 scales";
}

// The refusal for element `index`, NaN when `is_nan`, infinite otherwise.
inline std::string non_finite_message(uint64_t index, bool is_nan) {
    return "element " + std::to_string(index) + " is " + (is_nan ? "NaN" : "infinite") + "; only finite values can be quantized";
}

}  // namespace grey::common
