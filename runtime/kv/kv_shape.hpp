// The validated shape and policy of a KV cache (grey_kv_cache_config after defaults): the block layout
// the backends share (common/kv_layout.hpp, which computes every size and offset) and the policy that
// only the runtime needs.
#pragma once

#include "common/kv_layout.hpp"
#include "grey.h"

#include <cstdint>

namespace grey::kv {

struct KvShape : common::KvLayout {
    uint64_t window_tokens = 0;  // UINT64_MAX: keep everything in window form
    grey_dtype window_dtype = GREY_DTYPE_BF16;
    uint64_t capacity_bytes = 0;
};

// Applies defaults and checks every field; throws grey::Error naming the field.
KvShape validated_shape(const grey_kv_cache_config& config);

}  // namespace grey::kv
