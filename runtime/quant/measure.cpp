#include "quant/measure.hpp"

#include "common/numeric.hpp"
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
    if (dtype == GREY_DTYPE_F32) {
        std::memcpy(out.data(), bytes.data(), elements * sizeof(float));
    } else {
        for (uint64_t i = 0; i < elements; ++i) {
            uint16_t half = 0;
            std::memcpy(&half, bytes.data() + 2 * i, 2);
            out[i] = dtype == GREY_DTYPE_F16 ? common::f16_to_f32(half) : common::bf16_to_f32(half);
        }
    }
    for (uint64_t i = 0; i < elements; ++i)
        if (!std::isfinite(out[i])) fail(GREY_ERROR_INVALID_ARGUMENT, common::non_finite_message(i, std::isnan(out[i])));
    return out;
}

}  // namespace grey::quant
