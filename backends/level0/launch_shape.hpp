// The number of work groups for a grid-stride kernel of kernels/opencl: enough for `work` units at
// `per_group` units a group, at least one, and at most `max_groups` (past that each work item loops).
#pragma once

#include <algorithm>
#include <cstdint>

namespace grey::level0 {

inline uint32_t group_count(uint64_t work, uint64_t per_group, uint32_t max_groups) {
    return static_cast<uint32_t>(std::clamp<uint64_t>((work + per_group - 1) / per_group, 1, max_groups));
}

}  // namespace grey::level0
