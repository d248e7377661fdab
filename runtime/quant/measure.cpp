#include "quant/measure.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace grey::quant {

void ErrorTotals::add(std::span<const float> x, std::span<const float> y) {
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double reference = x[i];
        const double error = reference - static_cast<double>(y[i]);
        sum_squared_signal += reference * reference;
        sum_squared_error += error * error;
        max_abs_error = std::max(max_abs_error, std::fabs(error));
    }
    elements += x.size();
}

grey_quant_report make_report(const ErrorTotals& totals, uint64_t bytes, grey_quant_calibration calibration) {
    grey_quant_report r{};
    r.struct_size = sizeof r;
    r.calibration = calibration;
    r.elements = totals.elements;
    r.bytes = bytes;
    r.bits_per_weight = totals.elements == 0 ? 0.0 : 8.0 * static_cast<double>(bytes) / static_cast<double>(totals.elements);
    r.sum_squared_error = totals.sum_squared_error;
    r.sum_squared_signal = totals.sum_squared_signal;
    r.max_abs_err = totals.max_abs_error;
    r.rel_rmse = totals.sum_squared_signal > 0.0 ? std::sqrt(totals.sum_squared_error / totals.sum_squared_signal) : 0.0;
    r.sqnr_db = totals.sum_squared_error > 0.0 ? 10.0 * std::log10(totals.sum_squared_signal / totals.sum_squared_error)
                                                : std::numeric_limits<double>::infinity();
    return r;
}

}  // namespace grey::quant
