// A caller's grey_tensor_desc, checked: the one place that reads one, for the model and quantization
// calls alike.
#pragma once

#include "grey.h"

#include <cstdint>
#include <vector>

namespace grey {

// Checks `desc` (struct_size, rank, reserved fields, shape entries past rank, dtype) and returns its
// shape; GREY_ERROR_INVALID_ARGUMENT naming the member that fails.
std::vector<uint64_t> checked_shape(const grey_tensor_desc& desc);

}  // namespace grey
