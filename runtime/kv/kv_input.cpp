#include "kv/kv_input.hpp"

#include "common/numeric.hpp"
#include "core/error.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace grey::kv {

std::vector<float> to_floats(const void* data, uint64_t count, grey_dtype dtype) {
    std::vector<float> out(count);
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (uint64_t i = 0; i < count; ++i) {
        if (dtype == GREY_DTYPE_F32) {
            std::memcpy(&out[i], bytes + 4 * i, 4);
        } else {
            uint16_t bits;
            std::memcpy(&bits, bytes + 2 * i, 2);
            out[i] = dtype == GREY_DTYPE_BF16 ? common::bf16_to_f32(bits) : common::f16_to_f32(bits);
        }
    }
    return out;
}

uint64_t first_non_finite(std::span<const float> values) {
    const auto at = std::find_if_not(values.begin(), values.end(), [](float x) { return std::isfinite(x); });
    return at == values.end() ? UINT64_MAX : static_cast<uint64_t>(at - values.begin());
}

std::vector<float> finite_floats(const void* data, uint64_t count, grey_dtype dtype, const char* what) {
    std::vector<float> out = to_floats(data, count, dtype);
    if (const uint64_t bad = first_non_finite(out); bad != UINT64_MAX)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + "[" + std::to_string(bad) + "] is not finite (NaN or infinity)");
    return out;
}

}  // namespace grey::kv
