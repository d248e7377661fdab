// What an append or a layer write brings: K and V laid out [layer][token][kv_head][head_dim], either in
// host arrays (checked and converted to float here, before the cache is touched) or in memory of the
// cache's device, where the backend reads and checks them (KvInput).
#pragma once

#include "grey_backend.h"

#include <cstdint>
#include <span>
#include <vector>

namespace grey::kv {

// K and V in memory of the cache's backend and device, values of `dtype` (F32, F16 or BF16) for every
// token of the call, those found in the prefix cache included; not yet checked for NaN and infinity.
struct KvInput {
    grey_backend_memory keys{};
    grey_backend_memory values{};
    grey_dtype dtype = GREY_DTYPE_F32;
};

// `count` values of `dtype` (F32, F16 or BF16) at `data` (host memory) as floats.
std::vector<float> to_floats(const void* data, uint64_t count, grey_dtype dtype);
// The index of the first NaN or infinity of `values`, or UINT64_MAX.
uint64_t first_non_finite(std::span<const float> values);
// to_floats, where a NaN or infinity fails with GREY_ERROR_INVALID_ARGUMENT naming it as what[index].
std::vector<float> finite_floats(const void* data, uint64_t count, grey_dtype dtype, const char* what);

}  // namespace grey::kv
