// C entry points of grey.h's "Sealed buffers and memory tiers".
#include "core/context.hpp"
#include "core/error.hpp"
#include "memory/buffer.hpp"
#include "memory/tiers.hpp"

#include <string>


extern "C" {

const char* grey_residency_name(grey_residency value) {
    switch (grey::raw_enum(value)) {
        case GREY_RESIDENCY_RAW: return "raw";
        case GREY_RESIDENCY_DEDUPLICATED: return "deduplicated";
        case GREY_RESIDENCY_COMPRESSED_DEVICE: return "compressed_device";
        case GREY_RESIDENCY_COMPRESSED_HOST: return "compressed_host";
        default: return nullptr;
    }
}

const char* grey_codec_name(grey_codec value) {
    switch (grey::raw_enum(value)) {
        case GREY_CODEC_DEFAULT: return "default";
        case GREY_CODEC_LZ4: return "lz4";
        case GREY_CODEC_ZSTD: return "zstd";
        case GREY_CODEC_FLOAT: return "float";
        case GREY_CODEC_BITMASK: return "bitmask";
        default: return nullptr;
    }
}

const char* grey_map_access_name(grey_map_access value) {
    switch (grey::raw_enum(value)) {
        case GREY_MAP_READ: return "read";
        case GREY_MAP_WRITE: return "write";
        default: return nullptr;
    }
}

grey_status grey_buffer_create_with_options(grey_context* context, const grey_buffer_options* options, grey_buffer** out_buffer) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_buffer, "out_buffer");
        grey::require_non_null(options, "options");
        const grey_buffer_options defaults = GREY_BUFFER_OPTIONS_INIT;
        const grey_buffer_options o = grey::read_input_struct(options, defaults, "options");
        const int64_t dtype = grey::raw_enum(o.dtype);
        if (dtype < GREY_DTYPE_F32 || dtype > GREY_DTYPE_OTHER)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "options->dtype " + std::to_string(dtype) + " is not a grey_dtype value");
        if (o.source_bytes != 0 && o.source_bytes < o.size_bytes)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "options->source_bytes (" + std::to_string(o.source_bytes) + ") is below size_bytes (" +
                                                        std::to_string(o.size_bytes) + "): a quantized buffer replaces a larger tensor; 0 means none");
        *out_buffer = grey::create_buffer(*context, o);
    });
}

grey_status grey_buffer_seal(grey_buffer* buffer) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        buffer->context->tiers->seal(*buffer);
    });
}

grey_status grey_buffer_info_get(const grey_buffer* buffer, grey_buffer_info* out_info) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        grey::require_non_null(out_info, "out_info");
        grey_buffer_info info{};
        info.struct_size = sizeof info;
        buffer->context->tiers->info(*buffer, info);
        grey::copy_out_struct(info, out_info, sizeof(grey_buffer_info), "out_info");
    });
}

grey_status grey_buffer_compress(grey_buffer* buffer, grey_residency residency, grey_codec codec) {
    return grey::abi_guard([&] {
        grey::require_non_null(buffer, "buffer");
        buffer->context->tiers->change(*buffer, residency, codec);
    });
}

grey_status grey_memory_compact(grey_context* context, uint32_t device, const grey_compact_policy* policy, grey_compact_result* out_result) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        (void)context->device(device);
        const grey_compact_policy p = grey::read_input_struct(policy, context->tiers->configured_policy(), "policy");
        if (out_result != nullptr) grey::require_struct_size(*out_result, sizeof(grey_compact_result), "out_result");
        const grey_compact_result result = context->tiers->compact(device, p, true);
        if (out_result != nullptr) grey::copy_out_struct(result, out_result, sizeof(grey_compact_result), "out_result");
    });
}

grey_status grey_device_memory_stats_tenant_get(grey_context* context, uint32_t device, uint64_t tenant, grey_memory_stats* out_stats) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_stats, "out_stats");
        (void)context->device(device);
        grey_memory_stats stats{};
        stats.struct_size = sizeof stats;
        context->tiers->stats(device, &tenant, stats);
        grey::copy_out_struct(stats, out_stats, sizeof(grey_memory_stats), "out_stats");
    });
}

}  // extern "C"
