// The quantization error of a tensor against its reference, accumulated in float64 (docs/architecture.md,
// "Honest measurement"): sum x^2, sum (x - y)^2 and max |x - y|, x the reference. Written once for the
// host backend and the CUDA measurement kernel (kernels/cuda/quant_measure.cu), which sums the same
// terms in another order: max_abs_error is then exact, and each sum within 2 n 2^-53 of the host's,
// relative (the bound of recursive summation of n non-negative terms, for either order).
#pragma once

#include "common/hostdevice.h"
#include "common/quant_coding.hpp"

#include <stdint.h>

namespace grey::common {

struct ErrorSums {
    double sum_squared_signal = 0.0;
    double sum_squared_error = 0.0;
    double max_abs_error = 0.0;
    uint64_t elements = 0;

    // The sums of one element, `x` the reference and `y` its approximation (`elements` is left alone).
    GREY_FN_FORCE void accumulate(float x, float y) {
        const double reference = static_cast<double>(x);
        sum_squared_signal = dadd_rn(sum_squared_signal, dmul_rn(reference, reference));
        sum_squared_error = dadd_rn(sum_squared_error, squared_error(x, y));
        const double error = fabs(dsub_rn(reference, static_cast<double>(y)));
        max_abs_error = max_abs_error < error ? error : max_abs_error;
    }

    // `x` and `y` hold `n` elements each.
    GREY_FN void add(const float* x, const float* y, uint64_t n) {
        for (uint64_t i = 0; i < n; ++i) accumulate(x[i], y[i]);
        elements += n;
    }
};

}  // namespace grey::common
