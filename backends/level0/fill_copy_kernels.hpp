// How the Level Zero backend launches kernels/opencl/grey_fill_copy.cl: the names, the work-group size
// and the number of groups for a range. Shared with the test that runs the same SPIR-V through OpenCL on
// the CPU (tests/level0), so both launch it alike.
#pragma once

#include <algorithm>
#include <cstdint>

namespace grey::level0 {

inline constexpr const char* kFillKernelName = "grey_fill";
inline constexpr const char* kCopyKernelName = "grey_copy";
inline constexpr uint32_t kFillCopyGroupSize = 256;
// The kernels are grid-stride loops: past this many groups each work item takes more of the range.
inline constexpr uint32_t kFillCopyMaxGroups = 4096;

// Groups for `n` bytes: about 16 bytes (one 16-byte word) per work item, at least one group.
inline uint32_t fill_copy_group_count(uint64_t n) {
    const uint64_t per_group = uint64_t{kFillCopyGroupSize} * 16;
    return static_cast<uint32_t>(std::clamp<uint64_t>((n + per_group - 1) / per_group, 1, kFillCopyMaxGroups));
}

}  // namespace grey::level0
