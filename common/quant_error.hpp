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

    // The host's summation order (every host path, vector or scalar, on any number of threads): the
    // elements in pieces of kPiece from the first on; within a piece, element i into lane i % kLanes,
    // each lane a sequential sum from 0; the lanes combined pairwise, ((0+1)+(2+3))+((4+5)+(6+7)); the
    // pieces' sums added to the totals in order. Independent lanes let the sums run as vectors and
    // pieces let threads sum apart, where one sequential sum over the tensor was bound by the latency of
    // an addition per element; the result is still a sum of the same non-negative terms (the bound above).
    static constexpr uint64_t kPiece = 4096;
    static constexpr int kLanes = 8;

    struct Lanes {
        double signal[kLanes] = {};
        double error[kLanes] = {};
        double max_abs_error = 0.0;
    };

    // Elements `x`, `y` [0, n) of a piece whose first element lies at a multiple of kLanes (lane i % kLanes).
    GREY_FN static void accumulate_lanes(Lanes& lanes, const float* x, const float* y, uint64_t n) {
        for (uint64_t i = 0; i < n; ++i) {
            const double reference = static_cast<double>(x[i]);
            lanes.signal[i % kLanes] = dadd_rn(lanes.signal[i % kLanes], dmul_rn(reference, reference));
            lanes.error[i % kLanes] = dadd_rn(lanes.error[i % kLanes], squared_error(x[i], y[i]));
            const double error = fabs(dsub_rn(reference, static_cast<double>(y[i])));
            lanes.max_abs_error = lanes.max_abs_error < error ? error : lanes.max_abs_error;
        }
    }

    GREY_FN static double combine(const double (&lane)[kLanes]) {
        return dadd_rn(dadd_rn(dadd_rn(lane[0], lane[1]), dadd_rn(lane[2], lane[3])), dadd_rn(dadd_rn(lane[4], lane[5]), dadd_rn(lane[6], lane[7])));
    }

    // A piece of `n` elements summed into `lanes`, added after the pieces before it.
    GREY_FN void add_piece(const Lanes& lanes, uint64_t n) {
        sum_squared_signal = dadd_rn(sum_squared_signal, combine(lanes.signal));
        sum_squared_error = dadd_rn(sum_squared_error, combine(lanes.error));
        max_abs_error = max_abs_error < lanes.max_abs_error ? lanes.max_abs_error : max_abs_error;
        elements += n;
    }

    // `x` and `y` hold `n` elements each; pieces start at x[0], so a sum over slices of multiples of
    // kPiece equals the sum over the whole.
    GREY_FN void add(const float* x, const float* y, uint64_t n) {
        for (uint64_t first = 0; first < n; first += kPiece) {
            const uint64_t length = n - first < kPiece ? n - first : kPiece;
            Lanes lanes;
            accumulate_lanes(lanes, x + first, y + first, length);
            add_piece(lanes, length);
        }
    }
};

}  // namespace grey::common
