// The opaque grey_buffer of grey.h: a range of memory on one device, owned by its context.
#pragma once

#include "grey_backend.h"

#include <atomic>
#include <cstdint>
#include <string>

namespace grey {
class Backend;
}

struct grey_buffer {
    grey_context* context;
    uint32_t device;
    const grey::Backend* backend;
    grey_backend_buffer* handle;
    uint64_t size;
    // Live grey_buffer_map calls not yet ended by grey_buffer_unmap.
    std::atomic<uint32_t> map_count{0};
};

namespace grey {
// Frees the memory without touching the context's bookkeeping (the context calls this for leftovers).
void destroy_buffer_untracked(grey_buffer* buffer) noexcept;
// Refuses a range outside the buffer, naming the call `what`.
void check_range(const grey_buffer& buffer, uint64_t offset, uint64_t size, const char* what);
// Refuses copy ranges outside their buffers, and overlapping ranges of one buffer.
void check_copy(const grey_buffer& destination, uint64_t destination_offset, const grey_buffer& source, uint64_t source_offset,
                uint64_t size, const std::string& call);
}  // namespace grey
