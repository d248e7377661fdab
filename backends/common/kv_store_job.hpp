// The members of grey_backend_kv_store_job that came after its first form (dtype, first_non_finite), as
// every plugin reads them: a runtime built before them passed a shorter struct, meaning F32 values it
// had checked itself. Header-only: plugins compile it in.
#pragma once

#include "grey_backend.h"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace grey::backend {

struct KvStoreExtras {
    grey_dtype dtype = GREY_DTYPE_F32;
    uint64_t* first_non_finite = nullptr;  // NULL: the runtime checked the values
};

inline KvStoreExtras kv_store_extras(const grey_backend_kv_store_job& job) {
    if (job.struct_size < offsetof(grey_backend_kv_store_job, first_non_finite) + sizeof job.first_non_finite) return {};
    return {job.dtype, job.first_non_finite};
}

// The element-type code every vendor's store kernel takes (kernels/cuda/kv_args.h's GREY_KVK_*,
// kernels/opencl/kv_args.h's GREY_KVL0_*: F32 0, F16 1, BF16 2). Another dtype throws std::invalid_argument.
inline uint32_t kv_store_dtype_code(grey_dtype dtype) {
    switch (dtype) {
        case GREY_DTYPE_F32: return 0;
        case GREY_DTYPE_F16: return 1;
        case GREY_DTYPE_BF16: return 2;
        default: throw std::invalid_argument("the K/V to store must be F32, F16 or BF16, not dtype " + std::to_string(static_cast<int>(dtype)));
    }
}

}  // namespace grey::backend
