// The opaque grey_buffer of grey.h: a range of memory on one device, owned by its context.
#pragma once

#include "grey_backend.h"

#include <cstdint>

namespace grey {
class Backend;
}

struct grey_buffer {
    grey_context* context;
    uint32_t device;
    const grey::Backend* backend;
    grey_backend_buffer* handle;
    uint64_t size;
};

namespace grey {
// Frees the memory without touching the context's bookkeeping (the context calls this for leftovers).
void destroy_buffer_untracked(grey_buffer* buffer) noexcept;
}  // namespace grey
