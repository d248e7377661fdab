#include "level0/probe.hpp"

#include "common/clock.hpp"
#include "common/fields.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace grey::level0 {

using backend::set_f64;
using backend::set_text;
using backend::set_u64;

uint64_t map_throttle_reasons(zes_freq_throttle_reason_flags_t flags) {
    struct Bit {
        uint32_t ze;
        uint32_t grey;
    };
    // PL1 and PL2 are the power limits the driver enforces (NVML's software power cap); PL4 (current)
    // is the hardware's own slowdown; the thermal limit is the firmware's, as NVML's software thermal
    // slowdown is; a power supply assertion is an external brake; a software frequency range is the
    // user's application clocks. A sub block's lower frequency has no counterpart.
    static constexpr Bit kMap[] = {
        {ZES_FREQ_THROTTLE_REASON_FLAG_AVE_PWR_CAP, GREY_THROTTLE_SW_POWER_CAP},
        {ZES_FREQ_THROTTLE_REASON_FLAG_BURST_PWR_CAP, GREY_THROTTLE_SW_POWER_CAP},
        {ZES_FREQ_THROTTLE_REASON_FLAG_CURRENT_LIMIT, GREY_THROTTLE_HW_SLOWDOWN},
        {ZES_FREQ_THROTTLE_REASON_FLAG_THERMAL_LIMIT, GREY_THROTTLE_SW_THERMAL},
        {ZES_FREQ_THROTTLE_REASON_FLAG_PSU_ALERT, GREY_THROTTLE_HW_POWER_BRAKE},
        {ZES_FREQ_THROTTLE_REASON_FLAG_SW_RANGE, GREY_THROTTLE_APPLICATION_CLOCKS},
    };
    uint64_t out = 0;
    uint32_t known = 0;
    for (const Bit& b : kMap) {
        known |= b.ze;
        if ((flags & b.ze) != 0) out |= b.grey;
    }
    if ((flags & ~known) != 0) out |= GREY_THROTTLE_OTHER;
    return out;
}

namespace {

struct Unavailable {
    grey_field_state state;
    std::string reason;
};

// One query's inputs, and the calls that mark a field when its source cannot answer.
struct Query {
    const ZeLibrary& ze;
    const DeviceIdentity& id;
    const grey_field_reasons* reasons;

    // Sysman works on the core device handle once ZES_ENABLE_SYSMAN=1 was set before zeInit.
    [[nodiscard]] zes_device_handle_t sysman() const { return reinterpret_cast<zes_device_handle_t>(id.device); }

    // Runs a Sysman call: no value when it answered, else why it did not.
    template <typename Fn, typename Call>
    std::optional<Unavailable> zes(const char* name, Fn fn, Call&& call) const {
        if (!ze.sysman_disabled().empty()) return Unavailable{GREY_FIELD_UNSUPPORTED, ze.sysman_disabled()};
        if (fn == nullptr) return Unavailable{GREY_FIELD_UNSUPPORTED, ze.missing(name)};
        const ze_result_t r = call();
        if (r == ZE_RESULT_SUCCESS) return std::nullopt;
        return Unavailable{r == ZE_RESULT_ERROR_INSUFFICIENT_PERMISSIONS ? GREY_FIELD_PERMISSION_DENIED : GREY_FIELD_UNSUPPORTED,
                           ZeLibrary::describe(r, name)};
    }

    template <typename Field>
    void mark(Field& field, grey_field fid, const Unavailable& why) const {
        backend::mark(field, fid, why.state, reasons, why.reason);
    }
    template <typename Field>
    void unsupported(Field& field, grey_field fid, const std::string& why) const {
        backend::mark(field, fid, GREY_FIELD_UNSUPPORTED, reasons, why);
    }

    // Level Zero says "unknown" with -1 (or 0 for a rate); such a value is not a reading.
    template <typename Field>
    void set_known(Field& field, grey_field fid, double value, const char* what) const {
        if (value <= 0) {
            unsupported(field, fid, std::string("Level Zero: ") + what + " reported " + std::to_string(static_cast<long long>(value)) +
                                        ", which means the driver does not know it");
            return;
        }
        if constexpr (std::is_same_v<Field, grey_field_f64>) set_f64(field, value, GREY_SOURCE_LEVEL_ZERO);
        else set_u64(field, static_cast<uint64_t>(value), GREY_SOURCE_LEVEL_ZERO);
    }
};

// The handles of one kind of Sysman component, or why there are none.
template <typename Handle>
struct Components {
    std::vector<Handle> handles;
    std::optional<Unavailable> why;
};

template <typename Handle, typename Fn>
Components<Handle> enumerate(const Query& q, const char* name, Fn fn, const char* what) {
    Components<Handle> out;
    uint32_t count = 0;
    if ((out.why = q.zes(name, fn, [&] { return fn(q.sysman(), &count, nullptr); }))) return out;
    out.handles.resize(count);
    if (count > 0 && (out.why = q.zes(name, fn, [&] { return fn(q.sysman(), &count, out.handles.data()); }))) return out;
    out.handles.resize(count);
    if (out.handles.empty()) out.why = Unavailable{GREY_FIELD_UNSUPPORTED, std::string("Level Zero: Sysman lists no ") + what};
    return out;
}

// The first component whose properties satisfy `wanted`, preferring one that covers the whole device
// (onSubdevice false) over a tile's.
template <typename Handle, typename Props, typename Getter, typename Wanted>
std::optional<std::pair<Handle, Props>> pick(const Query& q, const std::vector<Handle>& handles, zes_structure_type_t stype,
                                             const char* name, Getter getter, Wanted wanted, std::optional<Unavailable>& why) {
    std::optional<std::pair<Handle, Props>> found;
    for (Handle h : handles) {
        Props props{};
        props.stype = stype;
        if (auto failed = q.zes(name, getter, [&] { return getter(h, &props); })) {
            why = failed;
            continue;
        }
        if (!wanted(props)) continue;
        if (!found || (found->second.onSubdevice && !props.onSubdevice)) found = std::pair{h, props};
    }
    return found;
}

std::string format_uuid(const ze_device_uuid_t& uuid) {
    const uint8_t* b = uuid.id;
    char text[48];
    std::snprintf(text, sizeof text, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
                  b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return text;
}

grey_vendor vendor_of(uint32_t pci_vendor) {
    switch (pci_vendor) {
        case 0x8086: return GREY_VENDOR_INTEL;
        case 0x1002: return GREY_VENDOR_AMD;
        case 0x10de: return GREY_VENDOR_NVIDIA;
        default: return GREY_VENDOR_UNKNOWN;
    }
}

// The device-local memory modules: their sizes and free bytes summed, and their bandwidth.
struct MemoryModules {
    std::optional<Unavailable> why;  // for size and free
    uint64_t size = 0;
    uint64_t free = 0;
    std::optional<Unavailable> bandwidth_why;
    uint64_t max_bandwidth = 0;  // bytes per second
};

MemoryModules read_memory(const Query& q, bool with_bandwidth) {
    MemoryModules out;
    const auto modules = enumerate<zes_mem_handle_t>(q, "zesDeviceEnumMemoryModules", q.ze.zesDeviceEnumMemoryModules, "memory module");
    if (modules.why) {
        out.why = out.bandwidth_why = modules.why;
        return out;
    }
    bool any = false;
    for (zes_mem_handle_t m : modules.handles) {
        zes_mem_properties_t props{};
        props.stype = ZES_STRUCTURE_TYPE_MEM_PROPERTIES;
        if (auto why = q.zes("zesMemoryGetProperties", q.ze.zesMemoryGetProperties, [&] { return q.ze.zesMemoryGetProperties(m, &props); })) {
            out.why = out.bandwidth_why = why;
            return out;
        }
        if (props.location != ZES_MEM_LOC_DEVICE) continue;
        any = true;
        zes_mem_state_t state{};
        state.stype = ZES_STRUCTURE_TYPE_MEM_STATE;
        if (auto why = q.zes("zesMemoryGetState", q.ze.zesMemoryGetState, [&] { return q.ze.zesMemoryGetState(m, &state); })) {
            out.why = why;
        } else {
            out.size += state.size;
            out.free += state.free;
        }
        if (!with_bandwidth || out.bandwidth_why) continue;
        zes_mem_bandwidth_t bandwidth{};
        if (auto why = q.zes("zesMemoryGetBandwidth", q.ze.zesMemoryGetBandwidth, [&] { return q.ze.zesMemoryGetBandwidth(m, &bandwidth); }))
            out.bandwidth_why = why;
        else
            out.max_bandwidth += bandwidth.maxBandwidth;
    }
    if (!any) out.why = out.bandwidth_why = Unavailable{GREY_FIELD_UNSUPPORTED, "Level Zero: Sysman lists no device-local memory module"};
    return out;
}

using FreqDomain = std::optional<std::pair<zes_freq_handle_t, zes_freq_properties_t>>;

struct FrequencyDomains {
    std::optional<Unavailable> why;
    FreqDomain gpu;
    FreqDomain memory;
};

FrequencyDomains read_frequency_domains(const Query& q) {
    FrequencyDomains out;
    const auto domains = enumerate<zes_freq_handle_t>(q, "zesDeviceEnumFrequencyDomains", q.ze.zesDeviceEnumFrequencyDomains, "frequency domain");
    if ((out.why = domains.why)) return out;
    auto of_type = [&](zes_freq_domain_t type) {
        return pick<zes_freq_handle_t, zes_freq_properties_t>(q, domains.handles, ZES_STRUCTURE_TYPE_FREQ_PROPERTIES, "zesFrequencyGetProperties",
                                                              q.ze.zesFrequencyGetProperties,
                                                              [type](const zes_freq_properties_t& p) { return p.type == type; }, out.why);
    };
    out.gpu = of_type(ZES_FREQ_DOMAIN_GPU);
    out.memory = of_type(ZES_FREQ_DOMAIN_MEMORY);
    return out;
}

// Why a domain of one type is missing: the enumeration's failure, or that there is none of the type.
Unavailable no_domain(const std::optional<Unavailable>& why, const char* what) {
    return why ? *why : Unavailable{GREY_FIELD_UNSUPPORTED, std::string("Level Zero: Sysman lists no ") + what};
}

using PowerDomain = std::optional<std::pair<zes_pwr_handle_t, zes_power_properties_t>>;

PowerDomain read_power_domain(const Query& q, std::optional<Unavailable>& why) {
    const auto domains = enumerate<zes_pwr_handle_t>(q, "zesDeviceEnumPowerDomains", q.ze.zesDeviceEnumPowerDomains, "power domain");
    if ((why = domains.why)) return std::nullopt;
    return pick<zes_pwr_handle_t, zes_power_properties_t>(q, domains.handles, ZES_STRUCTURE_TYPE_POWER_PROPERTIES, "zesPowerGetProperties",
                                                          q.ze.zesPowerGetProperties, [](const zes_power_properties_t&) { return true; }, why);
}

using Sensor = std::optional<std::pair<zes_temp_handle_t, zes_temp_properties_t>>;

struct Sensors {
    std::optional<Unavailable> why;
    Sensor gpu;     // ZES_TEMP_SENSORS_GPU, else ZES_TEMP_SENSORS_GLOBAL
    Sensor memory;  // ZES_TEMP_SENSORS_MEMORY
};

Sensors read_sensors(const Query& q) {
    Sensors out;
    const auto sensors = enumerate<zes_temp_handle_t>(q, "zesDeviceEnumTemperatureSensors", q.ze.zesDeviceEnumTemperatureSensors, "temperature sensor");
    if ((out.why = sensors.why)) return out;
    auto of_type = [&](zes_temp_sensors_t type) {
        return pick<zes_temp_handle_t, zes_temp_properties_t>(q, sensors.handles, ZES_STRUCTURE_TYPE_TEMP_PROPERTIES, "zesTemperatureGetProperties",
                                                              q.ze.zesTemperatureGetProperties,
                                                              [type](const zes_temp_properties_t& p) { return p.type == type; }, out.why);
    };
    out.gpu = of_type(ZES_TEMP_SENSORS_GPU);
    if (!out.gpu) out.gpu = of_type(ZES_TEMP_SENSORS_GLOBAL);
    out.memory = of_type(ZES_TEMP_SENSORS_MEMORY);
    return out;
}

void fill_pci(const Query& q, grey_device_spec& spec) {
    zes_pci_properties_t pci{};
    pci.stype = ZES_STRUCTURE_TYPE_PCI_PROPERTIES;
    if (auto why = q.zes("zesDevicePciGetProperties", q.ze.zesDevicePciGetProperties,
                         [&] { return q.ze.zesDevicePciGetProperties(q.sysman(), &pci); })) {
        q.mark(spec.pci_bus_id, GREY_FIELD_PCI_BUS_ID, *why);
        q.mark(spec.pcie_generation_max, GREY_FIELD_PCIE_GENERATION_MAX, *why);
        q.mark(spec.pcie_width_max, GREY_FIELD_PCIE_WIDTH_MAX, *why);
    } else {
        char bus[32];
        std::snprintf(bus, sizeof bus, "%04x:%02x:%02x.%x", pci.address.domain, pci.address.bus, pci.address.device, pci.address.function);
        set_text(spec.pci_bus_id, bus, GREY_SOURCE_LEVEL_ZERO);
        q.set_known(spec.pcie_generation_max, GREY_FIELD_PCIE_GENERATION_MAX, pci.maxSpeed.gen, "zesDevicePciGetProperties maxSpeed.gen");
        q.set_known(spec.pcie_width_max, GREY_FIELD_PCIE_WIDTH_MAX, pci.maxSpeed.width, "zesDevicePciGetProperties maxSpeed.width");
    }
    zes_pci_state_t state{};
    state.stype = ZES_STRUCTURE_TYPE_PCI_STATE;
    if (auto why = q.zes("zesDevicePciGetState", q.ze.zesDevicePciGetState, [&] { return q.ze.zesDevicePciGetState(q.sysman(), &state); })) {
        q.mark(spec.pcie_generation_current, GREY_FIELD_PCIE_GENERATION_CURRENT, *why);
        q.mark(spec.pcie_width_current, GREY_FIELD_PCIE_WIDTH_CURRENT, *why);
    } else {
        q.set_known(spec.pcie_generation_current, GREY_FIELD_PCIE_GENERATION_CURRENT, state.speed.gen, "zesDevicePciGetState speed.gen");
        q.set_known(spec.pcie_width_current, GREY_FIELD_PCIE_WIDTH_CURRENT, state.speed.width, "zesDevicePciGetState speed.width");
    }
}

void fill_power_spec(const Query& q, grey_device_spec& spec) {
    std::optional<Unavailable> why;
    const PowerDomain domain = read_power_domain(q, why);
    if (!domain) {
        const Unavailable u = no_domain(why, "power domain");
        for (auto [field, fid] : {std::pair{&spec.power_limit_mw, GREY_FIELD_POWER_LIMIT_MW}, {&spec.power_limit_default_mw, GREY_FIELD_POWER_LIMIT_DEFAULT_MW},
                                  {&spec.power_limit_min_mw, GREY_FIELD_POWER_LIMIT_MIN_MW}, {&spec.power_limit_max_mw, GREY_FIELD_POWER_LIMIT_MAX_MW}})
            q.mark(*field, fid, u);
        return;
    }
    const zes_power_properties_t& props = domain->second;
    q.set_known(spec.power_limit_default_mw, GREY_FIELD_POWER_LIMIT_DEFAULT_MW, props.defaultLimit, "zesPowerGetProperties defaultLimit");
    q.set_known(spec.power_limit_min_mw, GREY_FIELD_POWER_LIMIT_MIN_MW, props.minLimit, "zesPowerGetProperties minLimit");
    q.set_known(spec.power_limit_max_mw, GREY_FIELD_POWER_LIMIT_MAX_MW, props.maxLimit, "zesPowerGetProperties maxLimit");
    zes_power_sustained_limit_t sustained{};
    if (auto failed = q.zes("zesPowerGetLimits", q.ze.zesPowerGetLimits,
                            [&] { return q.ze.zesPowerGetLimits(domain->first, &sustained, nullptr, nullptr); }))
        q.mark(spec.power_limit_mw, GREY_FIELD_POWER_LIMIT_MW, *failed);
    else if (!sustained.enabled)
        q.unsupported(spec.power_limit_mw, GREY_FIELD_POWER_LIMIT_MW, "Level Zero: zesPowerGetLimits reports the sustained power limit (PL1) disabled");
    else
        q.set_known(spec.power_limit_mw, GREY_FIELD_POWER_LIMIT_MW, sustained.power, "zesPowerGetLimits sustained.power");
}

void fill_temperature_spec(const Query& q, grey_device_spec& spec) {
    const Sensors sensors = read_sensors(q);
    if (sensors.gpu) q.set_known(spec.temperature_gpu_max_c, GREY_FIELD_TEMPERATURE_GPU_MAX_C, sensors.gpu->second.maxTemperature, "zesTemperatureGetProperties maxTemperature (GPU)");
    else q.mark(spec.temperature_gpu_max_c, GREY_FIELD_TEMPERATURE_GPU_MAX_C, no_domain(sensors.why, "GPU or global temperature sensor"));
    if (sensors.memory) q.set_known(spec.temperature_memory_max_c, GREY_FIELD_TEMPERATURE_MEMORY_MAX_C, sensors.memory->second.maxTemperature, "zesTemperatureGetProperties maxTemperature (memory)");
    else q.mark(spec.temperature_memory_max_c, GREY_FIELD_TEMPERATURE_MEMORY_MAX_C, no_domain(sensors.why, "memory temperature sensor"));
    // Sysman's thresholds are events the user configures, not the device's own slowdown or shutdown points.
    const std::string none = "Level Zero Sysman reports no slowdown or shutdown temperature (only each sensor's maximum, "
                             "temperature_gpu_max_c, and event thresholds a user sets)";
    q.unsupported(spec.temperature_slowdown_c, GREY_FIELD_TEMPERATURE_SLOWDOWN_C, none);
    q.unsupported(spec.temperature_shutdown_c, GREY_FIELD_TEMPERATURE_SHUTDOWN_C, none);
}

}  // namespace

void fill_spec(const ZeLibrary& ze, const DeviceIdentity& id, grey_device_spec& spec, const grey_field_reasons* reasons) {
    const Query q{ze, id, reasons};
    spec.type = GREY_DEVICE_GPU;

    ze_device_properties_t props{};
    props.stype = ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES;
    ZeLibrary::check(ze.zeDeviceGetProperties(id.device, &props), "zeDeviceGetProperties");
    spec.vendor = vendor_of(props.vendorId);
    set_text(spec.name, props.name, GREY_SOURCE_LEVEL_ZERO);
    set_text(spec.uuid, format_uuid(props.uuid), GREY_SOURCE_LEVEL_ZERO);
    // Xe cores: the sub-slices of all slices.
    q.set_known(spec.compute_units, GREY_FIELD_COMPUTE_UNITS, static_cast<double>(props.numSlices) * props.numSubslicesPerSlice,
                "zeDeviceGetProperties numSlices x numSubslicesPerSlice");
    q.unsupported(spec.architecture, GREY_FIELD_ARCHITECTURE, "libgrey has no table of Intel GPU architectures by PCI device id yet");
    q.unsupported(spec.compute_capability, GREY_FIELD_COMPUTE_CAPABILITY,
                  "Level Zero 1.4 reports no IP version (ZE_extension_device_ip_version is not read by this backend)");

    ze_api_version_t api{};
    if (const ze_result_t r = ze.zeDriverGetApiVersion(id.driver, &api); r == ZE_RESULT_SUCCESS)
        set_text(spec.runtime_version, std::to_string(ZE_MAJOR_VERSION(api)) + "." + std::to_string(ZE_MINOR_VERSION(api)), GREY_SOURCE_LEVEL_ZERO);
    else
        q.unsupported(spec.runtime_version, GREY_FIELD_RUNTIME_VERSION, ZeLibrary::describe(r, "zeDriverGetApiVersion"));

    // The driver's version as text from Sysman; the core API has only a number.
    zes_device_properties_t sysman_props{};
    sysman_props.stype = ZES_STRUCTURE_TYPE_DEVICE_PROPERTIES;
    const auto sysman_failed = q.zes("zesDeviceGetProperties", ze.zesDeviceGetProperties,
                                     [&] { return ze.zesDeviceGetProperties(q.sysman(), &sysman_props); });
    ze_driver_properties_t driver{};
    driver.stype = ZE_STRUCTURE_TYPE_DRIVER_PROPERTIES;
    if (!sysman_failed && sysman_props.driverVersion[0] != '\0')
        set_text(spec.driver_version, sysman_props.driverVersion, GREY_SOURCE_LEVEL_ZERO);
    else if (const ze_result_t r = ze.zeDriverGetProperties(id.driver, &driver); r == ZE_RESULT_SUCCESS)
        set_text(spec.driver_version, std::to_string(driver.driverVersion), GREY_SOURCE_LEVEL_ZERO);
    else
        q.unsupported(spec.driver_version, GREY_FIELD_DRIVER_VERSION, ZeLibrary::describe(r, "zeDriverGetProperties"));

    // Memory: sizes, bus width and clock from the core API; free bytes and bandwidth from Sysman.
    uint32_t count = 0;
    std::vector<ze_device_memory_properties_t> memories;
    if (ze_result_t r = ze.zeDeviceGetMemoryProperties(id.device, &count, nullptr); r == ZE_RESULT_SUCCESS && count > 0) {
        memories.resize(count);
        for (auto& m : memories) m.stype = ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES;
        r = ze.zeDeviceGetMemoryProperties(id.device, &count, memories.data());
        memories.resize(r == ZE_RESULT_SUCCESS ? count : 0);
    }
    uint64_t total = 0, bus_width = 0, clock = 0;
    for (const auto& m : memories) {
        total += m.totalSize;
        bus_width = std::max<uint64_t>(bus_width, m.maxBusWidth);
        clock = std::max<uint64_t>(clock, m.maxClockRate);
    }
    q.set_known(spec.memory_total_bytes, GREY_FIELD_MEMORY_TOTAL_BYTES, static_cast<double>(total), "zeDeviceGetMemoryProperties totalSize");
    q.set_known(spec.memory_bus_width_bits, GREY_FIELD_MEMORY_BUS_WIDTH_BITS, static_cast<double>(bus_width), "zeDeviceGetMemoryProperties maxBusWidth");
    q.set_known(spec.memory_clock_max_mhz, GREY_FIELD_MEMORY_CLOCK_MAX_MHZ, static_cast<double>(clock), "zeDeviceGetMemoryProperties maxClockRate");
    const MemoryModules modules = read_memory(q, true);
    if (modules.why) q.mark(spec.memory_free_bytes, GREY_FIELD_MEMORY_FREE_BYTES, *modules.why);
    else set_u64(spec.memory_free_bytes, modules.free, GREY_SOURCE_LEVEL_ZERO);
    // Peak bandwidth as Sysman states it; never derived from the clock, since Level Zero does not say
    // whether maxClockRate counts transfers or cycles.
    if (modules.bandwidth_why) q.mark(spec.peak_memory_bandwidth_gbps, GREY_FIELD_PEAK_MEMORY_BANDWIDTH_GBPS, *modules.bandwidth_why);
    else q.set_known(spec.peak_memory_bandwidth_gbps, GREY_FIELD_PEAK_MEMORY_BANDWIDTH_GBPS, static_cast<double>(modules.max_bandwidth) / 1e9, "zesMemoryGetBandwidth maxBandwidth");

    uint32_t caches = 0;
    std::vector<ze_device_cache_properties_t> cache_props;
    if (ze_result_t r = ze.zeDeviceGetCacheProperties(id.device, &caches, nullptr); r == ZE_RESULT_SUCCESS && caches > 0) {
        cache_props.resize(caches);
        for (auto& c : cache_props) c.stype = ZE_STRUCTURE_TYPE_DEVICE_CACHE_PROPERTIES;
        r = ze.zeDeviceGetCacheProperties(id.device, &caches, cache_props.data());
        cache_props.resize(r == ZE_RESULT_SUCCESS ? caches : 0);
    }
    uint64_t largest_cache = 0;
    for (const auto& c : cache_props) largest_cache = std::max<uint64_t>(largest_cache, c.cacheSize);
    q.set_known(spec.l2_cache_bytes, GREY_FIELD_L2_CACHE_BYTES, static_cast<double>(largest_cache), "zeDeviceGetCacheProperties cacheSize (last level)");

    const FrequencyDomains freq = read_frequency_domains(q);
    if (freq.gpu) q.set_known(spec.graphics_clock_max_mhz, GREY_FIELD_GRAPHICS_CLOCK_MAX_MHZ, freq.gpu->second.max, "zesFrequencyGetProperties max (GPU)");
    else q.set_known(spec.graphics_clock_max_mhz, GREY_FIELD_GRAPHICS_CLOCK_MAX_MHZ, props.coreClockRate, "zeDeviceGetProperties coreClockRate");

    fill_power_spec(q, spec);
    fill_temperature_spec(q, spec);
    fill_pci(q, spec);
}

void fill_telemetry(const ZeLibrary& ze, const DeviceIdentity& id, EnergyHistory& energy, grey_device_telemetry& t,
                    const grey_field_reasons* reasons) {
    const Query q{ze, id, reasons};
    t.timestamp_ns = grey::common::monotonic_ns();

    const Sensors sensors = read_sensors(q);
    auto read_temperature = [&](const Sensor& sensor, grey_field_f64& field, grey_field fid, const char* what) {
        if (!sensor) return q.mark(field, fid, no_domain(sensors.why, what));
        double celsius = 0;
        if (auto why = q.zes("zesTemperatureGetState", ze.zesTemperatureGetState, [&] { return ze.zesTemperatureGetState(sensor->first, &celsius); }))
            return q.mark(field, fid, *why);
        set_f64(field, celsius, GREY_SOURCE_LEVEL_ZERO);
    };
    read_temperature(sensors.gpu, t.temperature_c, GREY_FIELD_TEMPERATURE_C, "GPU or global temperature sensor");
    read_temperature(sensors.memory, t.memory_temperature_c, GREY_FIELD_MEMORY_TEMPERATURE_C, "memory temperature sensor");

    std::optional<Unavailable> power_why;
    const PowerDomain power = read_power_domain(q, power_why);
    zes_power_energy_counter_t counter{};
    std::optional<Unavailable> energy_why = power ? q.zes("zesPowerGetEnergyCounter", ze.zesPowerGetEnergyCounter,
                                                          [&] { return ze.zesPowerGetEnergyCounter(power->first, &counter); })
                                                  : no_domain(power_why, "power domain");
    if (energy_why) {
        q.mark(t.energy_total_mj, GREY_FIELD_ENERGY_TOTAL_MJ, *energy_why);
        q.mark(t.power_draw_mw, GREY_FIELD_POWER_DRAW_MW, *energy_why);
    } else {
        set_u64(t.energy_total_mj, counter.energy / 1000, GREY_SOURCE_LEVEL_ZERO);  // microjoules
        std::lock_guard lock(energy.mutex);
        if (energy.previous && counter.timestamp > energy.previous->timestamp && counter.energy >= energy.previous->energy)
            // uJ / us = W; x 1000 = mW.
            set_u64(t.power_draw_mw,
                    (counter.energy - energy.previous->energy) * 1000 / (counter.timestamp - energy.previous->timestamp), GREY_SOURCE_DERIVED);
        else
            q.unsupported(t.power_draw_mw, GREY_FIELD_POWER_DRAW_MW,
                          "Level Zero reports energy, not power: the draw is the energy used between two telemetry samples, "
                          "and this is the first (or the counter did not advance)");
        energy.previous = counter;
    }

    const FrequencyDomains freq = read_frequency_domains(q);
    auto read_clock = [&](const FreqDomain& domain, grey_field_u64& field, grey_field fid, const char* what,
                          zes_freq_state_t* out_state) -> bool {
        if (!domain) {
            q.mark(field, fid, no_domain(freq.why, what));
            return false;
        }
        zes_freq_state_t state{};
        state.stype = ZES_STRUCTURE_TYPE_FREQ_STATE;
        if (auto why = q.zes("zesFrequencyGetState", ze.zesFrequencyGetState, [&] { return ze.zesFrequencyGetState(domain->first, &state); })) {
            q.mark(field, fid, *why);
            return false;
        }
        q.set_known(field, fid, state.actual, "zesFrequencyGetState actual");
        if (out_state != nullptr) *out_state = state;
        return true;
    };
    zes_freq_state_t gpu_state{};
    if (read_clock(freq.gpu, t.graphics_clock_mhz, GREY_FIELD_GRAPHICS_CLOCK_MHZ, "GPU frequency domain", &gpu_state))
        set_u64(t.throttle_reasons, map_throttle_reasons(gpu_state.throttleReasons), GREY_SOURCE_LEVEL_ZERO);
    else
        q.mark(t.throttle_reasons, GREY_FIELD_THROTTLE_REASONS, Unavailable{t.graphics_clock_mhz.state, "Level Zero: zesFrequencyGetState of the GPU domain did not answer (see graphics_clock_mhz)"});
    read_clock(freq.memory, t.memory_clock_mhz, GREY_FIELD_MEMORY_CLOCK_MHZ, "memory frequency domain", nullptr);
    backend::mark(t.sm_clock_mhz, GREY_FIELD_SM_CLOCK_MHZ, GREY_FIELD_NOT_APPLICABLE, reasons,
                  "Level Zero has one GPU frequency domain, reported as graphics_clock_mhz");

    const MemoryModules modules = read_memory(q, false);
    if (modules.why) q.mark(t.memory_used_bytes, GREY_FIELD_MEMORY_USED_BYTES, *modules.why);
    else set_u64(t.memory_used_bytes, modules.size - std::min(modules.free, modules.size), GREY_SOURCE_LEVEL_ZERO);

    const std::string no_split = "Level Zero Sysman counts one throttle time for every reason together (zesFrequencyGetThrottleTime), "
                                 "not the time per reason";
    q.unsupported(t.throttle_time_power_ns, GREY_FIELD_THROTTLE_TIME_POWER_NS, no_split);
    q.unsupported(t.throttle_time_thermal_ns, GREY_FIELD_THROTTLE_TIME_THERMAL_NS, no_split);
    q.unsupported(t.throttle_time_sync_boost_ns, GREY_FIELD_THROTTLE_TIME_SYNC_BOOST_NS, no_split);
    const std::string no_activity = "not read by the Level Zero backend yet (zesEngineGetActivity and zesMemoryGetBandwidth counters "
                                    "need two samples)";
    q.unsupported(t.utilization_percent, GREY_FIELD_UTILIZATION_PERCENT, no_activity);
    q.unsupported(t.memory_utilization_percent, GREY_FIELD_MEMORY_UTILIZATION_PERCENT, no_activity);
}

}  // namespace grey::level0
