// grey_host_alloc's memory: pinned by the device's backend when it has a host_alloc slot, plain aligned
// host memory otherwise.
#pragma once

namespace grey {
class Backend;

// Frees memory from grey_host_alloc; `backend` is the one that pinned it, or nullptr.
void free_host_memory(void* memory, const Backend* backend) noexcept;
}  // namespace grey
