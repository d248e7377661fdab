#include "memory/host_alloc.hpp"

#include "core/context.hpp"
#include "core/error.hpp"

#include <cstdlib>

namespace grey {
namespace {
constexpr uint64_t kHostAlignment = 64;
}  // namespace

void free_host_memory(void* memory, const Backend* backend) noexcept {
    if (backend != nullptr)
        backend->host_free(memory);
    else
        std::free(memory);
}

}  // namespace grey

extern "C" {

grey_status grey_host_alloc(grey_context* context, uint32_t device, uint64_t size_bytes, void** out_memory) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_memory, "out_memory");
        if (size_bytes == 0) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "size_bytes must be greater than 0");
        const grey::Device& dev = context->device(device);
        const grey::Backend* pinned_by = dev.backend;
        void* memory = dev.backend->host_alloc(dev.index_in_backend, size_bytes);
        if (memory == nullptr) {
            pinned_by = nullptr;
            const uint64_t rounded = (size_bytes + grey::kHostAlignment - 1) / grey::kHostAlignment * grey::kHostAlignment;
            if (rounded >= size_bytes) memory = std::aligned_alloc(grey::kHostAlignment, rounded);
            if (memory == nullptr)
                grey::fail(GREY_ERROR_OUT_OF_MEMORY, "grey_host_alloc: cannot allocate " + std::to_string(size_bytes) + " bytes of host memory");
        }
        try {
            context->track_host_memory(memory, pinned_by);
        } catch (...) {
            grey::free_host_memory(memory, pinned_by);
            throw;
        }
        *out_memory = memory;
    });
}

grey_status grey_host_free(grey_context* context, void* memory) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        if (memory == nullptr) return;
        const grey::Backend* backend = nullptr;
        if (!context->untrack_host_memory(memory, backend))
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "grey_host_free: the memory was not given by grey_host_alloc of this context (or was freed already)");
        grey::free_host_memory(memory, backend);
    });
}

}  // extern "C"
