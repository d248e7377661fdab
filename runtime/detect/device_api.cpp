// C entry points for device enumeration, specs, telemetry and field reasons.
#include "core/context.hpp"
#include "core/error.hpp"
#include "detect/fields.hpp"

#include <cstdio>
#include <cstring>

namespace {

using grey::detect::FieldInfo;

struct ReasonSink {
    std::map<grey_field, std::string>* reasons;
    static void set(void* data, grey_field field, const char* reason) {
        auto* sink = static_cast<ReasonSink*>(data);
        if (static_cast<size_t>(field) < GREY_FIELD_COUNT && reason != nullptr) (*sink->reasons)[field] = reason;
    }
};

// Query protocol shared by spec and telemetry: every field of the group starts UNSUPPORTED, the backend
// fills what it can, and afterwards no field may be unavailable without a reason or carry a stale value.
template <typename Struct, typename Query>
void query_group(grey_context& context, uint32_t index, grey_field_group group, Struct& out, Query&& query) {
    grey::Device& device = context.device(index);
    std::memset(&out, 0, sizeof out);
    out.struct_size = sizeof out;
    for (const FieldInfo& info : grey::detect::fields())
        if (info.group == group) grey::detect::field_state(&out, info) = GREY_FIELD_UNSUPPORTED;

    std::map<grey_field, std::string> reasons;
    ReasonSink sink{&reasons};
    const grey_field_reasons callback{&sink, &ReasonSink::set};
    query(device, out, callback);
    out.struct_size = sizeof out;

    std::lock_guard lock(device.mutex);
    for (const FieldInfo& info : grey::detect::fields()) {
        if (info.group != group) continue;
        auto& state = grey::detect::field_state(&out, info);
        if (const int64_t raw = grey::raw_enum(state); raw < GREY_FIELD_OK || raw > GREY_FIELD_NOT_APPLICABLE) state = GREY_FIELD_UNSUPPORTED;
        if (state == GREY_FIELD_OK) {
            device.reasons.erase(info.field);
            continue;
        }
        grey::detect::clear_field_value(&out, info);
        grey::detect::field_source(&out, info) = GREY_SOURCE_NONE;
        auto it = reasons.find(info.field);
        device.reasons[info.field] = it != reasons.end() ? it->second
                                                         : "backend '" + device.backend->name() + "' does not report this field";
    }
}

}  // namespace

extern "C" {

grey_status grey_device_count(const grey_context* context, uint32_t* out_count) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_count, "out_count");
        *out_count = static_cast<uint32_t>(context->devices.size());
    });
}

grey_status grey_device_spec_get(grey_context* context, uint32_t device, grey_device_spec* out_spec) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_spec, "out_spec");
        grey_device_spec spec;
        query_group(*context, device, GREY_FIELD_GROUP_SPEC, spec, [](grey::Device& d, grey_device_spec& s, const grey_field_reasons& r) {
            d.backend->device_spec(d.index_in_backend, s, r);
            s.backend_device_index = d.index_in_backend;
            std::snprintf(s.backend, sizeof s.backend, "%s", d.backend->name().c_str());
        });
        grey::copy_out_struct(spec, out_spec, sizeof(grey_device_spec), "out_spec");
    });
}

grey_status grey_device_telemetry_get(grey_context* context, uint32_t device, grey_device_telemetry* out_telemetry) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(out_telemetry, "out_telemetry");
        grey_device_telemetry telemetry;
        query_group(*context, device, GREY_FIELD_GROUP_TELEMETRY, telemetry,
                    [](grey::Device& d, grey_device_telemetry& t, const grey_field_reasons& r) {
                        d.backend->device_telemetry(d.index_in_backend, t, r);
                    });
        grey::copy_out_struct(telemetry, out_telemetry, sizeof(grey_device_telemetry), "out_telemetry");
    });
}

grey_status grey_device_field_reason(grey_context* context, uint32_t device, grey_field field, char* buffer,
                                     size_t buffer_size, size_t* out_length) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        const grey_field checked = grey::detect::field_info(grey::raw_enum(field)).field;
        grey::Device& dev = context->device(device);
        std::string reason;
        {
            std::lock_guard lock(dev.mutex);
            if (auto it = dev.reasons.find(checked); it != dev.reasons.end()) reason = it->second;
        }
        grey::copy_out_text(reason, buffer, buffer_size, out_length);
    });
}

}  // extern "C"
