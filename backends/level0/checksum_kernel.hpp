// How the Level Zero backend launches kernels/opencl/grey_checksum.cl: the work-group size, the number
// of groups for a range, and the kernel's name. Shared with the test that runs the same SPIR-V through
// OpenCL on the CPU (tests/level0), so both launch it alike.
#pragma once

#include "level0/launch_shape.hpp"

#include <cstdint>

namespace grey::level0 {

inline constexpr const char* kChecksumKernelName = "grey_checksum_partial";
inline constexpr uint32_t kChecksumGroupSize = 256;
// Enough groups to keep a GPU busy, few enough that the partial sums stay small (256 KiB at most).
inline constexpr uint32_t kChecksumMaxGroups = 128;

// Groups for `n` bytes: about 64 bytes per work item, at least one group.
inline uint32_t checksum_group_count(uint64_t n) { return group_count(n, uint64_t{kChecksumGroupSize} * 64, kChecksumMaxGroups); }

}  // namespace grey::level0
