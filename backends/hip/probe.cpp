#include "hip/probe.hpp"

#include "common/clock.hpp"
#include "common/fields.hpp"
#include "hip/hip_kernels.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace grey::hip {

using backend::mark;
using backend::set_f64;
using backend::set_text;
using backend::set_u64;

std::optional<uint64_t> bdfid_of(const std::string& pci_bus_id) {
    unsigned domain = 0, bus = 0, device = 0, function = 0;
    if (std::sscanf(pci_bus_id.c_str(), "%x:%x:%x.%x", &domain, &bus, &device, &function) != 4) return std::nullopt;
    return (uint64_t{domain} << 32) | ((bus & 0xffu) << 8) | ((device & 0x1fu) << 3) | (function & 0x7u);
}

void attach_smi(const RocmSmi* smi, const std::string& smi_unavailable, DeviceIdentity& id) {
    if (smi == nullptr) {
        id.smi_unavailable = smi_unavailable;
        return;
    }
    const auto wanted = bdfid_of(id.pci_bus_id);
    uint32_t count = 0;
    if (const auto s = smi->num_monitor_devices(&count); s != rsmi::kSuccess) {
        id.smi_unavailable = smi->describe(s, "rsmi_num_monitor_devices");
        return;
    }
    for (uint32_t i = 0; wanted && i < count; ++i) {
        uint64_t bdfid = 0;
        // Bits 16-31 are reserved (newer releases put a partition id there): compare the address only.
        if (smi->dev_pci_id_get(i, &bdfid) == rsmi::kSuccess && (bdfid & ~uint64_t{0xffff0000}) == *wanted) {
            id.smi = i;
            return;
        }
    }
    id.smi_unavailable = "ROCm SMI: no device of its " + std::to_string(count) + " has PCI address " + id.pci_bus_id;
}

namespace {

struct Reader {
    const HipRuntime& hip;
    const RocmSmi* smi;
    const DeviceIdentity& id;
    const grey_field_reasons* reasons;

    // Calls a ROCm SMI function if the library, the device and the symbol are there; marks `field`
    // otherwise (RSMI_STATUS_PERMISSION -> permission denied, anything else -> unsupported).
    template <typename Field, typename Fn, typename Call>
    bool smi_call(Field& field, grey_field fid, const char* name, Fn fn, Call&& call) const {
        if (!id.smi) {
            mark(field, fid, GREY_FIELD_UNSUPPORTED, reasons, id.smi_unavailable);
            return false;
        }
        if (fn == nullptr) {
            mark(field, fid, GREY_FIELD_UNSUPPORTED, reasons, smi->missing(name));
            return false;
        }
        const rsmi::Status s = call();
        if (s == rsmi::kSuccess) return true;
        mark(field, fid, s == rsmi::kPermission ? GREY_FIELD_PERMISSION_DENIED : GREY_FIELD_UNSUPPORTED, reasons, smi->describe(s, name));
        return false;
    }

    // A HIP attribute; 0 means "not reported" for all of these.
    std::optional<uint64_t> attribute(grey_field_u64& field, grey_field fid, int attribute, const char* name) const {
        int value = 0;
        if (const api::Error e = hip.device_get_attribute(&value, attribute, id.ordinal); e != api::kSuccess) {
            mark(field, fid, GREY_FIELD_UNSUPPORTED, reasons, hip.describe(e, "hipDeviceGetAttribute") + " (" + name + ")");
            return std::nullopt;
        }
        if (value <= 0) {
            mark(field, fid, GREY_FIELD_UNSUPPORTED, reasons, std::string("HIP: ") + name + " reported " + std::to_string(value));
            return std::nullopt;
        }
        return static_cast<uint64_t>(value);
    }

    // A temperature of ROCm SMI in millidegrees, as degrees.
    void temperature(grey_field_f64& field, grey_field fid, uint32_t sensor, int metric, const char* name) const {
        int64_t millidegrees = 0;
        if (smi_call(field, fid, name, smi != nullptr ? smi->dev_temp_metric_get : nullptr,
                     [&] { return smi->dev_temp_metric_get(*id.smi, sensor, metric, &millidegrees); }))
            set_f64(field, static_cast<double>(millidegrees) / 1000.0, GREY_SOURCE_AMD_SMI);
    }

    // A clock's frequency list (rsmi_dev_gpu_clk_freq_get), or the PCIe link's (rsmi_dev_pci_bandwidth_get),
    // in the layout of the library's version: `read(entries)` gets the supported entries (at least one)
    // and the index of the present one. False, with `field` marked, when it cannot be read.
    template <typename Field, typename Read>
    bool frequency_list(Field& field, grey_field fid, const char* name, bool present, Read&& read) const {
        if (id.smi && smi->major_version == 0) {
            mark(field, fid, GREY_FIELD_UNSUPPORTED, reasons, std::string("cannot read ") + name + ": " + smi->version_unknown);
            return false;
        }
        const bool v6 = smi != nullptr && smi->major_version >= 6;
        uint32_t count = 0, current = 0, entries = 0;
        const bool ok = smi_call(field, fid, name, present ? reinterpret_cast<const void*>(1) : nullptr, [&] {
            return v6 ? read(rsmi::FrequenciesV6{}, count, current, entries) : read(rsmi::FrequenciesV5{}, count, current, entries);
        });
        if (!ok) return false;
        if (count == 0 || count > entries || current >= count) {
            mark(field, fid, GREY_FIELD_UNSUPPORTED, reasons,
                 std::string("ROCm SMI: ") + name + " gave " + std::to_string(count) + " entries, the present one " + std::to_string(current));
            return false;
        }
        return true;
    }

    // Runs `body` with this device current on the calling thread (HIP's device is per thread).
    template <typename Body>
    api::Error on_device(Body&& body) const {
        if (const api::Error e = hip.set_device(id.ordinal); e != api::kSuccess) return e;
        return body();
    }
};

// The architecture family of the gfx targets libgrey knows (AMD's LLVM AMDGPU target table).
const char* architecture_of(const std::string& target) {
    static constexpr std::pair<const char*, const char*> kFamilies[] = {
        {"gfx908", "CDNA"},    {"gfx90a", "CDNA 2"},  {"gfx940", "CDNA 3"},  {"gfx941", "CDNA 3"},  {"gfx942", "CDNA 3"},
        {"gfx950", "CDNA 4"},  {"gfx1030", "RDNA 2"}, {"gfx1100", "RDNA 3"}, {"gfx1101", "RDNA 3"}, {"gfx1102", "RDNA 3"},
        {"gfx1200", "RDNA 4"}, {"gfx1201", "RDNA 4"}};
    for (const auto& [gfx, family] : kFamilies)
        if (target == gfx) return family;
    return nullptr;
}

// The PCIe generation of a transfer rate in transfers per second (2.5 GT/s is generation 1).
std::optional<uint64_t> pcie_generation(uint64_t transfers_per_second) {
    static constexpr std::pair<uint64_t, uint64_t> kRates[] = {{64'000'000'000, 6}, {32'000'000'000, 5}, {16'000'000'000, 4},
                                                               {8'000'000'000, 3},  {5'000'000'000, 2},  {2'500'000'000, 1}};
    for (const auto& [rate, generation] : kRates)
        if (transfers_per_second >= rate) return generation;
    return std::nullopt;
}

// The kernel's ASIC-independent throttler bits (amdgpu_smu.h SMU_THROTTLER_*, as ROCm SMI passes them on)
// as grey_throttle_reason bits: bits 0-15 are power limits (PPT, SPL, FPPT, SPPT), 16-31 current limits
// (TDC, EDC, APCC), 32-43 temperature limits, 44-47 the VRHOT and PROCHOT signals, 56 and on others.
uint64_t throttle_reasons_of(uint64_t bits) {
    uint64_t reasons = 0;
    if ((bits & 0xFFFFull) != 0) reasons |= GREY_THROTTLE_SW_POWER_CAP;
    if ((bits & 0xFFFF0000ull) != 0) reasons |= GREY_THROTTLE_HW_SLOWDOWN;
    if ((bits & 0x0FFF00000000ull) != 0) reasons |= GREY_THROTTLE_SW_THERMAL;
    if ((bits & 0xF00000000000ull) != 0) reasons |= GREY_THROTTLE_HW_SLOWDOWN;
    if ((bits & 0xFFFF000000000000ull) != 0) reasons |= GREY_THROTTLE_OTHER;
    return reasons;
}

std::string hip_version_text(int version) {
    // HIP_VERSION = major * 10^7 + minor * 10^5 + patch.
    return std::to_string(version / 10000000) + "." + std::to_string(version / 100000 % 100);
}

}  // namespace

void fill_spec(const HipRuntime& hip, const RocmSmi* smi, const DeviceIdentity& id, grey_device_spec& spec, const grey_field_reasons* reasons) {
    const Reader rd{hip, smi, id, reasons};
    spec.vendor = GREY_VENDOR_AMD;
    spec.type = GREY_DEVICE_GPU;

    char name[256] = {};
    if (const api::Error e = hip.device_get_name(name, sizeof name - 1, id.ordinal); e == api::kSuccess)
        set_text(spec.name, name, GREY_SOURCE_HIP);
    else
        mark(spec.name, GREY_FIELD_NAME, GREY_FIELD_UNSUPPORTED, reasons, hip.describe(e, "hipDeviceGetName"));
    api::Uuid uuid{};
    if (hip.device_get_uuid == nullptr) {
        mark(spec.uuid, GREY_FIELD_UUID, GREY_FIELD_UNSUPPORTED, reasons, hip.missing("hipDeviceGetUuid"));
    } else if (const api::Error e = hip.device_get_uuid(&uuid, id.ordinal); e != api::kSuccess) {
        mark(spec.uuid, GREY_FIELD_UUID, GREY_FIELD_UNSUPPORTED, reasons, hip.describe(e, "hipDeviceGetUuid"));
    } else {
        // "GPU-" and the 16 bytes in hex. ROCm may fill them with ASCII characters (rocminfo prints
        // "GPU-" and 16 characters); this has not been checked on an AMD GPU (docs/backends.md).
        std::string text = "GPU-";
        for (char byte : uuid.bytes) {
            char hex[3];
            std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned char>(byte));
            text += hex;
        }
        set_text(spec.uuid, text, GREY_SOURCE_HIP);
    }
    if (!id.pci_bus_id.empty()) set_text(spec.pci_bus_id, id.pci_bus_id, GREY_SOURCE_HIP);
    else mark(spec.pci_bus_id, GREY_FIELD_PCI_BUS_ID, GREY_FIELD_UNSUPPORTED, reasons, "HIP: hipDeviceGetPCIBusId gave no bus id");
    // The gfx target (grey.h's compute capability on AMD), from hipDeviceProp_t.gcnArchName, and the
    // architecture family it belongs to.
    try {
        const std::string target(target_of(gcn_arch_name(hip, id.ordinal)));
        set_text(spec.compute_capability, target, GREY_SOURCE_HIP);
        if (const char* family = architecture_of(target); family != nullptr)
            set_text(spec.architecture, family, GREY_SOURCE_TABLE);
        else
            mark(spec.architecture, GREY_FIELD_ARCHITECTURE, GREY_FIELD_UNSUPPORTED, reasons, "the gfx target " + target + " is not in libgrey's table");
    } catch (const std::exception& e) {
        mark(spec.compute_capability, GREY_FIELD_COMPUTE_CAPABILITY, GREY_FIELD_UNSUPPORTED, reasons, e.what());
        mark(spec.architecture, GREY_FIELD_ARCHITECTURE, GREY_FIELD_UNSUPPORTED, reasons, e.what());
    }

    int version = 0;
    if (const api::Error e = hip.runtime_get_version(&version); e == api::kSuccess) set_text(spec.runtime_version, hip_version_text(version), GREY_SOURCE_HIP);
    else mark(spec.runtime_version, GREY_FIELD_RUNTIME_VERSION, GREY_FIELD_UNSUPPORTED, reasons, hip.describe(e, "hipRuntimeGetVersion"));
    char driver[128] = {};
    if (id.smi && smi->version_str_get != nullptr && smi->version_str_get(rsmi::kComponentDriver, driver, sizeof driver - 1) == rsmi::kSuccess &&
        driver[0] != '\0')
        set_text(spec.driver_version, driver, GREY_SOURCE_AMD_SMI);
    else if (const api::Error e = hip.driver_get_version(&version); e == api::kSuccess)
        set_text(spec.driver_version, std::to_string(version), GREY_SOURCE_HIP);
    else
        mark(spec.driver_version, GREY_FIELD_DRIVER_VERSION, GREY_FIELD_UNSUPPORTED, reasons, hip.describe(e, "hipDriverGetVersion"));

    size_t total = 0;
    if (const api::Error e = hip.device_total_mem(&total, id.ordinal); e == api::kSuccess && total > 0)
        set_u64(spec.memory_total_bytes, total, GREY_SOURCE_HIP);
    else
        mark(spec.memory_total_bytes, GREY_FIELD_MEMORY_TOTAL_BYTES, GREY_FIELD_UNSUPPORTED, reasons, hip.describe(e, "hipDeviceTotalMem"));
    size_t free = 0, all = 0;
    if (const api::Error e = rd.on_device([&] { return hip.mem_get_info(&free, &all); }); e == api::kSuccess)
        set_u64(spec.memory_free_bytes, free, GREY_SOURCE_HIP);
    else
        mark(spec.memory_free_bytes, GREY_FIELD_MEMORY_FREE_BYTES, GREY_FIELD_UNSUPPORTED, reasons, hip.describe(e, "hipMemGetInfo"));

    const auto width = rd.attribute(spec.memory_bus_width_bits, GREY_FIELD_MEMORY_BUS_WIDTH_BITS, api::kAttributeMemoryBusWidth,
                                    "hipDeviceAttributeMemoryBusWidth");
    if (width) set_u64(spec.memory_bus_width_bits, *width, GREY_SOURCE_HIP);
    const auto memory_khz = rd.attribute(spec.memory_clock_max_mhz, GREY_FIELD_MEMORY_CLOCK_MAX_MHZ, api::kAttributeMemoryClockRate,
                                         "hipDeviceAttributeMemoryClockRate");
    if (memory_khz) set_u64(spec.memory_clock_max_mhz, *memory_khz / 1000, GREY_SOURCE_HIP);
    if (width && memory_khz)
        // Two transfers per clock across the bus, as for CUDA (docs/backends.md says what this rests on).
        set_f64(spec.peak_memory_bandwidth_gbps, 2.0 * static_cast<double>(*memory_khz) * 1e3 * static_cast<double>(*width) / 8.0 / 1e9,
                GREY_SOURCE_DERIVED);
    else
        mark(spec.peak_memory_bandwidth_gbps, GREY_FIELD_PEAK_MEMORY_BANDWIDTH_GBPS, GREY_FIELD_UNSUPPORTED, reasons,
             "derived from memory_clock_max_mhz and memory_bus_width_bits, and one of them is unavailable");
    if (auto l2 = rd.attribute(spec.l2_cache_bytes, GREY_FIELD_L2_CACHE_BYTES, api::kAttributeL2CacheSize, "hipDeviceAttributeL2CacheSize"))
        set_u64(spec.l2_cache_bytes, *l2, GREY_SOURCE_HIP);
    if (auto cus = rd.attribute(spec.compute_units, GREY_FIELD_COMPUTE_UNITS, api::kAttributeMultiprocessorCount,
                                "hipDeviceAttributeMultiprocessorCount"))
        set_u64(spec.compute_units, *cus, GREY_SOURCE_HIP);
    if (auto khz = rd.attribute(spec.graphics_clock_max_mhz, GREY_FIELD_GRAPHICS_CLOCK_MAX_MHZ, api::kAttributeClockRate, "hipDeviceAttributeClockRate"))
        set_u64(spec.graphics_clock_max_mhz, *khz / 1000, GREY_SOURCE_HIP);

    // Power caps in microwatts.
    uint64_t cap = 0;
    if (rd.smi_call(spec.power_limit_mw, GREY_FIELD_POWER_LIMIT_MW, "rsmi_dev_power_cap_get", smi != nullptr ? smi->dev_power_cap_get : nullptr,
                    [&] { return smi->dev_power_cap_get(*id.smi, 0, &cap); }))
        set_u64(spec.power_limit_mw, cap / 1000, GREY_SOURCE_AMD_SMI);
    uint64_t default_cap = 0;
    if (rd.smi_call(spec.power_limit_default_mw, GREY_FIELD_POWER_LIMIT_DEFAULT_MW, "rsmi_dev_power_cap_default_get",
                    smi != nullptr ? smi->dev_power_cap_default_get : nullptr, [&] { return smi->dev_power_cap_default_get(*id.smi, &default_cap); }))
        set_u64(spec.power_limit_default_mw, default_cap / 1000, GREY_SOURCE_AMD_SMI);
    uint64_t max_cap = 0, min_cap = 0;
    if (rd.smi_call(spec.power_limit_min_mw, GREY_FIELD_POWER_LIMIT_MIN_MW, "rsmi_dev_power_cap_range_get",
                    smi != nullptr ? smi->dev_power_cap_range_get : nullptr, [&] { return smi->dev_power_cap_range_get(*id.smi, 0, &max_cap, &min_cap); })) {
        set_u64(spec.power_limit_min_mw, min_cap / 1000, GREY_SOURCE_AMD_SMI);
        set_u64(spec.power_limit_max_mw, max_cap / 1000, GREY_SOURCE_AMD_SMI);
    } else {
        mark(spec.power_limit_max_mw, GREY_FIELD_POWER_LIMIT_MAX_MW, spec.power_limit_min_mw.state, reasons,
             "ROCm SMI: rsmi_dev_power_cap_range_get did not answer (see power_limit_min_mw)");
    }

    // The hotspot's critical temperature is where the firmware starts throttling, its emergency one
    // where it shuts down; the edge sensor's critical value is the GPU's rated maximum.
    rd.temperature(spec.temperature_slowdown_c, GREY_FIELD_TEMPERATURE_SLOWDOWN_C, rsmi::kTempJunction, rsmi::kTempCritical,
                   "rsmi_dev_temp_metric_get(JUNCTION, CRITICAL)");
    rd.temperature(spec.temperature_shutdown_c, GREY_FIELD_TEMPERATURE_SHUTDOWN_C, rsmi::kTempJunction, rsmi::kTempEmergency,
                   "rsmi_dev_temp_metric_get(JUNCTION, EMERGENCY)");
    rd.temperature(spec.temperature_gpu_max_c, GREY_FIELD_TEMPERATURE_GPU_MAX_C, rsmi::kTempEdge, rsmi::kTempCritical,
                   "rsmi_dev_temp_metric_get(EDGE, CRITICAL)");
    rd.temperature(spec.temperature_memory_max_c, GREY_FIELD_TEMPERATURE_MEMORY_MAX_C, rsmi::kTempMemory, rsmi::kTempCritical,
                   "rsmi_dev_temp_metric_get(MEMORY, CRITICAL)");

    // The PCIe link: the rates and widths ROCm SMI lists, and which one is in use.
    uint64_t rate_now = 0, rate_max = 0, lanes_now = 0, lanes_max = 0;
    const bool link = rd.frequency_list(
        spec.pcie_generation_current, GREY_FIELD_PCIE_GENERATION_CURRENT, "rsmi_dev_pci_bandwidth_get",
        smi != nullptr && smi->dev_pci_bandwidth_get != nullptr, [&](auto f, uint32_t& count, uint32_t& current, uint32_t& entries) {
            rsmi::PcieBandwidth<decltype(f), sizeof f.frequency / sizeof f.frequency[0]> bandwidth{};
            const rsmi::Status status = smi->dev_pci_bandwidth_get(*id.smi, &bandwidth);
            count = bandwidth.transfer_rate.num_supported;
            current = bandwidth.transfer_rate.current;
            entries = sizeof f.frequency / sizeof f.frequency[0];
            if (status == rsmi::kSuccess && count <= entries && current < count) {
                rate_now = bandwidth.transfer_rate.frequency[current];
                lanes_now = bandwidth.lanes[current];
                for (uint32_t i = 0; i < count; ++i) {
                    rate_max = std::max(rate_max, bandwidth.transfer_rate.frequency[i]);
                    lanes_max = std::max<uint64_t>(lanes_max, bandwidth.lanes[i]);
                }
            }
            return status;
        });
    auto set_generation = [&](grey_field_u64& field, grey_field fid, uint64_t rate) {
        if (const auto generation = pcie_generation(rate)) set_u64(field, *generation, GREY_SOURCE_AMD_SMI);
        else mark(field, fid, GREY_FIELD_UNSUPPORTED, reasons, "ROCm SMI: PCIe transfer rate " + std::to_string(rate) + " T/s is no PCIe generation");
    };
    if (link) {
        set_generation(spec.pcie_generation_current, GREY_FIELD_PCIE_GENERATION_CURRENT, rate_now);
        set_generation(spec.pcie_generation_max, GREY_FIELD_PCIE_GENERATION_MAX, rate_max);
        set_u64(spec.pcie_width_current, lanes_now, GREY_SOURCE_AMD_SMI);
        set_u64(spec.pcie_width_max, lanes_max, GREY_SOURCE_AMD_SMI);
    } else {
        const std::string why = "ROCm SMI's PCIe link did not answer (see pcie_generation_current)";
        mark(spec.pcie_generation_max, GREY_FIELD_PCIE_GENERATION_MAX, spec.pcie_generation_current.state, reasons, why);
        mark(spec.pcie_width_current, GREY_FIELD_PCIE_WIDTH_CURRENT, spec.pcie_generation_current.state, reasons, why);
        mark(spec.pcie_width_max, GREY_FIELD_PCIE_WIDTH_MAX, spec.pcie_generation_current.state, reasons, why);
    }
}

void fill_telemetry(const HipRuntime& hip, const RocmSmi* smi, const DeviceIdentity& id, grey_device_telemetry& t,
                    const grey_field_reasons* reasons) {
    const Reader rd{hip, smi, id, reasons};
    t.timestamp_ns = grey::common::monotonic_ns();

    // The edge sensor, or the hotspot where the GPU has no edge sensor (MI200 and later).
    const Reader quiet{hip, smi, id, nullptr};  // the edge sensor's absence is no reason to report
    quiet.temperature(t.temperature_c, GREY_FIELD_TEMPERATURE_C, rsmi::kTempEdge, rsmi::kTempCurrent, "rsmi_dev_temp_metric_get(EDGE, CURRENT)");
    if (t.temperature_c.state != GREY_FIELD_OK)
        rd.temperature(t.temperature_c, GREY_FIELD_TEMPERATURE_C, rsmi::kTempJunction, rsmi::kTempCurrent,
                       "rsmi_dev_temp_metric_get(JUNCTION, CURRENT)");
    rd.temperature(t.memory_temperature_c, GREY_FIELD_MEMORY_TEMPERATURE_C, rsmi::kTempMemory, rsmi::kTempCurrent,
                   "rsmi_dev_temp_metric_get(MEMORY, CURRENT)");

    uint64_t power = 0;
    if (rd.smi_call(t.power_draw_mw, GREY_FIELD_POWER_DRAW_MW, "rsmi_dev_power_ave_get", smi != nullptr ? smi->dev_power_ave_get : nullptr,
                    [&] { return smi->dev_power_ave_get(*id.smi, 0, &power); }))
        set_u64(t.power_draw_mw, power / 1000, GREY_SOURCE_AMD_SMI);
    uint64_t counter = 0, timestamp = 0;
    float resolution_uj = 0;
    if (rd.smi_call(t.energy_total_mj, GREY_FIELD_ENERGY_TOTAL_MJ, "rsmi_dev_energy_count_get", smi != nullptr ? smi->dev_energy_count_get : nullptr,
                    [&] { return smi->dev_energy_count_get(*id.smi, &counter, &resolution_uj, &timestamp); }))
        set_u64(t.energy_total_mj, static_cast<uint64_t>(static_cast<double>(counter) * resolution_uj / 1000.0), GREY_SOURCE_AMD_SMI);

    uint32_t busy = 0;
    if (rd.smi_call(t.utilization_percent, GREY_FIELD_UTILIZATION_PERCENT, "rsmi_dev_busy_percent_get",
                    smi != nullptr ? smi->dev_busy_percent_get : nullptr, [&] { return smi->dev_busy_percent_get(*id.smi, &busy); }))
        set_u64(t.utilization_percent, busy, GREY_SOURCE_AMD_SMI);
    uint32_t memory_busy = 0;
    if (rd.smi_call(t.memory_utilization_percent, GREY_FIELD_MEMORY_UTILIZATION_PERCENT, "rsmi_dev_memory_busy_percent_get",
                    smi != nullptr ? smi->dev_memory_busy_percent_get : nullptr,
                    [&] { return smi->dev_memory_busy_percent_get(*id.smi, &memory_busy); }))
        set_u64(t.memory_utilization_percent, memory_busy, GREY_SOURCE_AMD_SMI);

    uint64_t used = 0;
    if (rd.smi_call(t.memory_used_bytes, GREY_FIELD_MEMORY_USED_BYTES, "rsmi_dev_memory_usage_get",
                    smi != nullptr ? smi->dev_memory_usage_get : nullptr, [&] { return smi->dev_memory_usage_get(*id.smi, rsmi::kMemVram, &used); })) {
        set_u64(t.memory_used_bytes, used, GREY_SOURCE_AMD_SMI);
    } else if (t.memory_used_bytes.state != GREY_FIELD_PERMISSION_DENIED) {
        size_t free = 0, total = 0;
        if (const api::Error e = rd.on_device([&] { return hip.mem_get_info(&free, &total); }); e == api::kSuccess)
            set_u64(t.memory_used_bytes, total - free, GREY_SOURCE_HIP);
    }

    // Clocks: the present entry of the system (shader) clock's and the memory clock's lists, in Hz.
    auto clock = [&](grey_field_u64& field, grey_field fid, int type, const char* name) {
        uint64_t hz = 0;
        if (rd.frequency_list(field, fid, name, smi != nullptr && smi->dev_gpu_clk_freq_get != nullptr,
                              [&](auto f, uint32_t& count, uint32_t& current, uint32_t& entries) {
                                  const rsmi::Status status = smi->dev_gpu_clk_freq_get(*id.smi, type, &f);
                                  count = f.num_supported;
                                  current = f.current;
                                  entries = sizeof f.frequency / sizeof f.frequency[0];
                                  if (status == rsmi::kSuccess && current < entries) hz = f.frequency[current];
                                  return status;
                              }))
            set_u64(field, hz / 1'000'000, GREY_SOURCE_AMD_SMI);
    };
    clock(t.graphics_clock_mhz, GREY_FIELD_GRAPHICS_CLOCK_MHZ, rsmi::kClockSystem, "rsmi_dev_gpu_clk_freq_get(SYS)");
    clock(t.sm_clock_mhz, GREY_FIELD_SM_CLOCK_MHZ, rsmi::kClockSystem, "rsmi_dev_gpu_clk_freq_get(SYS)");
    clock(t.memory_clock_mhz, GREY_FIELD_MEMORY_CLOCK_MHZ, rsmi::kClockMemory, "rsmi_dev_gpu_clk_freq_get(MEM)");

    uint64_t throttle_bits = 0;
    if (rd.smi_call(t.throttle_reasons, GREY_FIELD_THROTTLE_REASONS, "rsmi_dev_metrics_indep_throttle_status_get",
                    smi != nullptr ? smi->dev_metrics_indep_throttle_status_get : nullptr,
                    [&] { return smi->dev_metrics_indep_throttle_status_get(*id.smi, &throttle_bits); }))
        set_u64(t.throttle_reasons, throttle_reasons_of(throttle_bits), GREY_SOURCE_AMD_SMI);
    const std::string no_throttle_time = "ROCm SMI reports which limits hold the clocks back now, not for how long (no throttle times)";
    mark(t.throttle_time_power_ns, GREY_FIELD_THROTTLE_TIME_POWER_NS, GREY_FIELD_UNSUPPORTED, reasons, no_throttle_time);
    mark(t.throttle_time_thermal_ns, GREY_FIELD_THROTTLE_TIME_THERMAL_NS, GREY_FIELD_UNSUPPORTED, reasons, no_throttle_time);
    mark(t.throttle_time_sync_boost_ns, GREY_FIELD_THROTTLE_TIME_SYNC_BOOST_NS, GREY_FIELD_UNSUPPORTED, reasons, no_throttle_time);
}

}  // namespace grey::hip
