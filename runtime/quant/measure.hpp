// Quantization error against a float64 reference (docs/architecture.md, "Honest measurement"): the
// report grey.h returns, from the sums of common/quant_error.hpp, wherever those were taken.
#pragma once

#include "common/quant_error.hpp"
#include "grey.h"

#include <cstddef>
#include <span>
#include <vector>

namespace grey::quant {

// Fills the error fields of a report (elements, rel_rmse, sqnr_db, max_abs_err, the two sums) and the
// size fields from `bytes`.
grey_quant_report make_report(const common::ErrorSums& sums, uint64_t bytes, grey_quant_calibration calibration);

// The plain tensor (F32, F16 or BF16) as float32, F16 and BF16 widened exactly. A NaN or infinity fails
// with GREY_ERROR_INVALID_ARGUMENT naming its index.
std::vector<float> to_f32(grey_dtype dtype, std::span<const std::byte> bytes, uint64_t elements);

}  // namespace grey::quant
