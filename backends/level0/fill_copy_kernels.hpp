// How the Level Zero backend launches kernels/opencl/grey_fill_copy.cl: the names, the work-group size
// and the number of groups for a range. Shared with the test that runs the same SPIR-V through OpenCL on
// the CPU (tests/level0), so both launch it alike.
#pragma once

#include "level0/launch_shape.hpp"

#include <cstdint>

namespace grey::level0 {

inline constexpr const char* kFillKernelName = "grey_fill";
inline constexpr const char* kCopyKernelName = "grey_copy";
inline constexpr uint32_t kFillCopyGroupSize = 256;
// The kernels are grid-stride loops: past this many groups each work item takes more of the range.
inline constexpr uint32_t kFillCopyMaxGroups = 4096;

// Groups for `n` bytes: about 16 bytes (one 16-byte word) per work item, at least one group.
inline uint32_t fill_copy_group_count(uint64_t n) { return group_count(n, uint64_t{kFillCopyGroupSize} * 16, kFillCopyMaxGroups); }

}  // namespace grey::level0
