#include "quant/measure.hpp"

#include "common/dtype.hpp"
#include "common/quant_text.hpp"
#include "core/error.hpp"

#include <cmath>
#include <cstring>
#include <limits>

namespace grey::quant {

grey_quant_report make_report(const common::ErrorSums& sums, uint64_t bytes, grey_quant_calibration calibration) {
    grey_quant_report r{};
    r.struct_size = sizeof r;
    r.calibration = calibration;
    r.elements = sums.elements;
    r.bytes = bytes;
    r.bits_per_weight = sums.elements == 0 ? 0.0 : 8.0 * static_cast<double>(bytes) / static_cast<double>(sums.elements);
    r.sum_squared_error = sums.sum_squared_error;
    r.sum_squared_signal = sums.sum_squared_signal;
    r.max_abs_err = sums.max_abs_error;
    r.rel_rmse = sums.sum_squared_signal > 0.0 ? std::sqrt(sums.sum_squared_error / sums.sum_squared_signal) : 0.0;
    r.sqnr_db = sums.sum_squared_error > 0.0 ? 10.0 * std::log10(sums.sum_squared_signal / sums.sum_squared_error)
                                             : std::numeric_limits<double>::infinity();
    return r;
}

std::vector<float> to_f32(grey_dtype dtype, std::span<const std::byte> bytes, uint64_t elements) {
    std::vector<float> out(elements);
    common::float_input_to_f32(bytes, dtype, out);
    for (uint64_t i = 0; i < elements; ++i)
        if (!std::isfinite(out[i])) fail(GREY_ERROR_INVALID_ARGUMENT, common::non_finite_message(i, std::isnan(out[i])));
    return out;
}

}  // namespace grey::quant
