#include "detect/fields.hpp"

#include "core/error.hpp"

#include <cstddef>
#include <cstring>
#include <vector>

namespace grey::detect {
namespace {

#define SPEC(F, member, kind, unit) \
    FieldInfo { F, kind, GREY_FIELD_GROUP_SPEC, offsetof(grey_device_spec, member), #member, unit }
#define TELE(F, member, kind, unit) \
    FieldInfo { F, kind, GREY_FIELD_GROUP_TELEMETRY, offsetof(grey_device_telemetry, member), #member, unit }

constexpr grey_field_kind U64 = GREY_FIELD_KIND_U64;
constexpr grey_field_kind F64 = GREY_FIELD_KIND_F64;
constexpr grey_field_kind TXT = GREY_FIELD_KIND_TEXT;

const FieldInfo kFields[] = {
    SPEC(GREY_FIELD_NAME, name, TXT, ""),
    SPEC(GREY_FIELD_UUID, uuid, TXT, ""),
    SPEC(GREY_FIELD_PCI_BUS_ID, pci_bus_id, TXT, ""),
    SPEC(GREY_FIELD_ARCHITECTURE, architecture, TXT, ""),
    SPEC(GREY_FIELD_COMPUTE_CAPABILITY, compute_capability, TXT, ""),
    SPEC(GREY_FIELD_DRIVER_VERSION, driver_version, TXT, ""),
    SPEC(GREY_FIELD_RUNTIME_VERSION, runtime_version, TXT, ""),
    SPEC(GREY_FIELD_MEMORY_TOTAL_BYTES, memory_total_bytes, U64, "bytes"),
    SPEC(GREY_FIELD_MEMORY_FREE_BYTES, memory_free_bytes, U64, "bytes"),
    SPEC(GREY_FIELD_MEMORY_BUS_WIDTH_BITS, memory_bus_width_bits, U64, "bits"),
    SPEC(GREY_FIELD_MEMORY_CLOCK_MAX_MHZ, memory_clock_max_mhz, U64, "MHz"),
    SPEC(GREY_FIELD_PEAK_MEMORY_BANDWIDTH_GBPS, peak_memory_bandwidth_gbps, F64, "GB/s"),
    SPEC(GREY_FIELD_L2_CACHE_BYTES, l2_cache_bytes, U64, "bytes"),
    SPEC(GREY_FIELD_COMPUTE_UNITS, compute_units, U64, "units"),
    SPEC(GREY_FIELD_GRAPHICS_CLOCK_MAX_MHZ, graphics_clock_max_mhz, U64, "MHz"),
    SPEC(GREY_FIELD_POWER_LIMIT_MW, power_limit_mw, U64, "mW"),
    SPEC(GREY_FIELD_POWER_LIMIT_DEFAULT_MW, power_limit_default_mw, U64, "mW"),
    SPEC(GREY_FIELD_POWER_LIMIT_MIN_MW, power_limit_min_mw, U64, "mW"),
    SPEC(GREY_FIELD_POWER_LIMIT_MAX_MW, power_limit_max_mw, U64, "mW"),
    SPEC(GREY_FIELD_TEMPERATURE_SLOWDOWN_C, temperature_slowdown_c, F64, "C"),
    SPEC(GREY_FIELD_TEMPERATURE_SHUTDOWN_C, temperature_shutdown_c, F64, "C"),
    SPEC(GREY_FIELD_TEMPERATURE_GPU_MAX_C, temperature_gpu_max_c, F64, "C"),
    SPEC(GREY_FIELD_TEMPERATURE_MEMORY_MAX_C, temperature_memory_max_c, F64, "C"),
    SPEC(GREY_FIELD_PCIE_GENERATION_CURRENT, pcie_generation_current, U64, "generation"),
    SPEC(GREY_FIELD_PCIE_GENERATION_MAX, pcie_generation_max, U64, "generation"),
    SPEC(GREY_FIELD_PCIE_WIDTH_CURRENT, pcie_width_current, U64, "lanes"),
    SPEC(GREY_FIELD_PCIE_WIDTH_MAX, pcie_width_max, U64, "lanes"),
    TELE(GREY_FIELD_TEMPERATURE_C, temperature_c, F64, "C"),
    TELE(GREY_FIELD_MEMORY_TEMPERATURE_C, memory_temperature_c, F64, "C"),
    TELE(GREY_FIELD_POWER_DRAW_MW, power_draw_mw, U64, "mW"),
    TELE(GREY_FIELD_ENERGY_TOTAL_MJ, energy_total_mj, U64, "mJ"),
    TELE(GREY_FIELD_GRAPHICS_CLOCK_MHZ, graphics_clock_mhz, U64, "MHz"),
    TELE(GREY_FIELD_SM_CLOCK_MHZ, sm_clock_mhz, U64, "MHz"),
    TELE(GREY_FIELD_MEMORY_CLOCK_MHZ, memory_clock_mhz, U64, "MHz"),
    TELE(GREY_FIELD_UTILIZATION_PERCENT, utilization_percent, U64, "%"),
    TELE(GREY_FIELD_MEMORY_UTILIZATION_PERCENT, memory_utilization_percent, U64, "%"),
    TELE(GREY_FIELD_MEMORY_USED_BYTES, memory_used_bytes, U64, "bytes"),
    TELE(GREY_FIELD_THROTTLE_REASONS, throttle_reasons, U64, "bitmask"),
    TELE(GREY_FIELD_THROTTLE_TIME_POWER_NS, throttle_time_power_ns, U64, "ns"),
    TELE(GREY_FIELD_THROTTLE_TIME_THERMAL_NS, throttle_time_thermal_ns, U64, "ns"),
    TELE(GREY_FIELD_THROTTLE_TIME_SYNC_BOOST_NS, throttle_time_sync_boost_ns, U64, "ns"),
};
#undef SPEC
#undef TELE

static_assert(std::size(kFields) == GREY_FIELD_COUNT, "every grey_field needs a row in kFields");

// The state and source sit at the same place after the value in every field struct.
size_t state_offset(grey_field_kind kind) {
    switch (kind) {
        case GREY_FIELD_KIND_U64: return offsetof(grey_field_u64, state);
        case GREY_FIELD_KIND_F64: return offsetof(grey_field_f64, state);
        default: return offsetof(grey_field_text, state);
    }
}
size_t source_offset(grey_field_kind kind) {
    switch (kind) {
        case GREY_FIELD_KIND_U64: return offsetof(grey_field_u64, source);
        case GREY_FIELD_KIND_F64: return offsetof(grey_field_f64, source);
        default: return offsetof(grey_field_text, source);
    }
}

}  // namespace

std::span<const FieldInfo> fields() { return kFields; }

const FieldInfo& field_info(int64_t raw) {
    if (raw < 0 || raw >= static_cast<int64_t>(std::size(kFields)))
        fail(GREY_ERROR_INVALID_ARGUMENT, "field " + std::to_string(raw) + " is not a grey_field of this version");
    return kFields[static_cast<size_t>(raw)];
}

grey_field_state& field_state(void* group_struct, const FieldInfo& info) {
    return *reinterpret_cast<grey_field_state*>(static_cast<char*>(group_struct) + info.offset + state_offset(info.kind));
}

grey_source& field_source(void* group_struct, const FieldInfo& info) {
    return *reinterpret_cast<grey_source*>(static_cast<char*>(group_struct) + info.offset + source_offset(info.kind));
}

void clear_field_value(void* group_struct, const FieldInfo& info) {
    char* value = static_cast<char*>(group_struct) + info.offset;
    std::memset(value, 0, state_offset(info.kind));
}

}  // namespace grey::detect

extern "C" grey_status grey_field_describe(grey_field field, grey_field_desc* out_desc) {
    return grey::abi_guard([&] {
        grey::require_non_null(out_desc, "out_desc");
        const auto& info = grey::detect::field_info(grey::raw_enum(field));
        grey_field_desc desc{};
        desc.struct_size = sizeof desc;
        desc.field = info.field;
        desc.kind = info.kind;
        desc.group = info.group;
        desc.offset = info.offset;
        desc.key = info.key;
        desc.unit = info.unit;
        grey::copy_out_struct(desc, out_desc, sizeof(grey_field_desc), "out_desc");
    });
}

extern "C" const char* grey_throttle_reason_name(uint32_t bit) {
    switch (bit) {
        case GREY_THROTTLE_IDLE: return "idle";
        case GREY_THROTTLE_APPLICATION_CLOCKS: return "application_clocks";
        case GREY_THROTTLE_SW_POWER_CAP: return "sw_power_cap";
        case GREY_THROTTLE_HW_SLOWDOWN: return "hw_slowdown";
        case GREY_THROTTLE_SYNC_BOOST: return "sync_boost";
        case GREY_THROTTLE_SW_THERMAL: return "sw_thermal";
        case GREY_THROTTLE_HW_THERMAL: return "hw_thermal";
        case GREY_THROTTLE_HW_POWER_BRAKE: return "hw_power_brake";
        case GREY_THROTTLE_DISPLAY_CLOCKS: return "display_clocks";
        case GREY_THROTTLE_OTHER: return "other";
        default: return nullptr;
    }
}
