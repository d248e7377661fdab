// C entry point for setting a device's power limit (grey.h). Nothing in libgrey calls it on its own:
// only a host program, or a governor given power_limit_mw (docs/govern.md, "Power limit").
#include "core/context.hpp"
#include "core/error.hpp"

extern "C" {

grey_status grey_device_power_limit_set(grey_context* context, uint32_t device, uint64_t limit_mw, uint64_t* out_previous_mw) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        if (limit_mw == 0) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "limit_mw is 0: a power limit is a positive number of milliwatts");
        grey::Device& dev = context->device(device);
        const uint64_t previous = dev.backend->power_limit_set(dev.index_in_backend, limit_mw);
        if (out_previous_mw != nullptr) *out_previous_mw = previous;
    });
}

}  // extern "C"
