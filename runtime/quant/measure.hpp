// Quantization error against a float64 reference (docs/architecture.md, "Honest measurement").
#pragma once

#include "grey.h"

#include <span>

namespace grey::quant {

// Accumulates sum x^2, sum (x - y)^2 and max |x - y| in float64; `x` is the reference.
struct ErrorTotals {
    double sum_squared_signal = 0.0;
    double sum_squared_error = 0.0;
    double max_abs_error = 0.0;
    uint64_t elements = 0;

    void add(std::span<const float> x, std::span<const float> y);
};

// Fills the error fields of a report (elements, rel_rmse, sqnr_db, max_abs_err, the two sums) and the
// size fields from `bytes`.
grey_quant_report make_report(const ErrorTotals& totals, uint64_t bytes, grey_quant_calibration calibration);

}  // namespace grey::quant
