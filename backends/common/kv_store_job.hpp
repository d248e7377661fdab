// The members of grey_backend_kv_store_job that came after its first form (dtype, first_non_finite), as
// every plugin reads them: a runtime built before them passed a shorter struct, meaning F32 values it
// had checked itself. Header-only: plugins compile it in.
#pragma once

#include "grey_backend.h"

#include <cstddef>
#include <cstdint>

namespace grey::backend {

struct KvStoreExtras {
    grey_dtype dtype = GREY_DTYPE_F32;
    uint64_t* first_non_finite = nullptr;  // NULL: the runtime checked the values
};

inline KvStoreExtras kv_store_extras(const grey_backend_kv_store_job& job) {
    if (job.struct_size < offsetof(grey_backend_kv_store_job, first_non_finite) + sizeof job.first_non_finite) return {};
    return {job.dtype, job.first_non_finite};
}

}  // namespace grey::backend
