// The parts of a plugin's entry point and slots that do not depend on the vendor: the version check
// the entry point makes, handing the vtable to a loader that may know fewer slots, and statistics of a
// device whose pool does not exist yet. Header-only: plugins compile it in.
#pragma once

#include "grey_backend.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace grey::backend {

// Whether the loader speaks this plugin's ABI and has room for at least the slots every plugin fills.
inline bool loader_accepts(uint32_t host_abi_version, const grey_backend_vtable* out) {
    return host_abi_version == GREY_BACKEND_ABI_VERSION && out != nullptr && out->struct_size >= GREY_BACKEND_VTABLE_MIN_SIZE;
}

// Copies `vt` into the loader's vtable, no more bytes than the loader has room for (an older loader
// knows fewer slots), with struct_size saying how many were copied.
inline void publish_vtable(grey_backend_vtable vt, grey_backend_vtable* out) {
    const uint32_t room = out->struct_size < sizeof vt ? out->struct_size : static_cast<uint32_t>(sizeof vt);
    vt.struct_size = room;
    std::memcpy(out, &vt, room);
}

// Every member after struct_size zeroed: the statistics of a pool that holds nothing.
inline void clear_stats(grey_memory_stats& out) {
    const uint32_t size = out.struct_size;
    out = grey_memory_stats{};
    out.struct_size = size;
}

// A quantization job enqueued on a stream of `device`: both tensors on that device, and no error report
// (grey_backend.h: job->error is NULL on a stream). The runtime checks both; a slot does not rely on it.
// A template, so that grey_backend_buffer (each plugin's own) is complete where it is instantiated.
template <typename Job>
void require_stream_job(uint32_t device, const Job& job) {
    for (const auto* m : {&job.plain, &job.quantized})
        if (m->buffer != nullptr && m->buffer->device != device)
            throw std::invalid_argument("a quantization enqueued on a stream of device " + std::to_string(device) + " names a buffer of device " +
                                        std::to_string(m->buffer->device));
    if (job.error != nullptr) throw std::invalid_argument("a quantization enqueued on a stream measures no error (job->error must be NULL)");
}

}  // namespace grey::backend
