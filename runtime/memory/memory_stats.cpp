// C entry point for the device memory statistics of grey.h.
#include "core/context.hpp"
#include "core/error.hpp"
#include "memory/tiers.hpp"

#include <cstddef>

extern "C" {

grey_status grey_device_memory_stats_get(grey_context* context, uint32_t device, grey_memory_stats* out_stats) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_stats, "out_stats");
        grey::Device& dev = context->device(device);
        grey_memory_stats stats{};
        stats.struct_size = sizeof stats;
        dev.backend->memory_stats(dev.index_in_backend, stats);
        stats.struct_size = sizeof stats;
        context->tiers->stats(device, nullptr, stats);
        // A caller compiled against 0.1 knows the members before logical_bytes only.
        grey::copy_out_struct(stats, out_stats, offsetof(grey_memory_stats, logical_bytes), "out_stats");
    });
}

}  // extern "C"
