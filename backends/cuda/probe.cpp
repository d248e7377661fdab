#include "cuda/probe.hpp"

#include "common/clock.hpp"
#include "common/fields.hpp"

#include <array>
#include <cstdio>
#include <ctime>
#include <optional>

namespace grey::cuda {

using backend::mark;
using backend::set_f64;
using backend::set_text;
using backend::set_u64;

std::string architecture_name(int major, int minor) {
    switch (major) {
        case 7: return minor == 5 ? "Turing" : "Volta";
        case 8: return minor == 9 ? "Ada" : "Ampere";
        case 9: return "Hopper";
        case 10:
        case 11:
        case 12: return "Blackwell";
        default: return "";
    }
}

double peak_bandwidth_gbps(uint64_t memory_clock_mhz, uint64_t bus_width_bits) {
    return 2.0 * static_cast<double>(memory_clock_mhz) * 1e6 * static_cast<double>(bus_width_bits) / 8.0 / 1e9;
}

void attach_nvml(const Driver&, const Nvml* nvml, const std::string& nvml_unavailable, DeviceIdentity& identity) {
    if (nvml == nullptr) {
        identity.nvml_unavailable = nvml_unavailable;
        return;
    }
    if (nvml->device_get_handle_by_pci_bus_id == nullptr) {
        identity.nvml_unavailable = nvml->missing("nvmlDeviceGetHandleByPciBusId_v2 (and nvmlDeviceGetHandleByPciBusId)");
        return;
    }
    nvml::Device handle = nullptr;
    if (const auto r = nvml->device_get_handle_by_pci_bus_id(identity.pci_bus_id.c_str(), &handle); r != nvml::kSuccess) {
        identity.nvml_unavailable = nvml->describe(r, "nvmlDeviceGetHandleByPciBusId_v2") + " for PCI bus id " + identity.pci_bus_id;
        return;
    }
    identity.nvml = handle;
}

namespace {

// One query's shared inputs, and the calls that mark a field when its source cannot answer.
struct Reader {
    const Driver& driver;
    const Nvml* nvml;
    const DeviceIdentity& id;
    const grey_field_reasons* reasons;

    // Calls an NVML function if NVML and the symbol are there; marks `field` otherwise, or when the
    // call fails (NVML_ERROR_NO_PERMISSION -> permission denied, anything else -> unsupported).
    template <typename Field, typename Fn, typename Call>
    bool nvml_call(Field& field, grey_field fid, const char* name, Fn fn, Call&& call) const {
        if (id.nvml == nullptr) {
            mark(field, fid, GREY_FIELD_UNSUPPORTED, reasons, id.nvml_unavailable);
            return false;
        }
        if (fn == nullptr) {
            mark(field, fid, GREY_FIELD_UNSUPPORTED, reasons, nvml->missing(name));
            return false;
        }
        const nvml::Return r = call();
        if (r == nvml::kSuccess) return true;
        mark(field, fid, r == nvml::kErrorNoPermission ? GREY_FIELD_PERMISSION_DENIED : GREY_FIELD_UNSUPPORTED, reasons,
             nvml->describe(r, name));
        return false;
    }

    // A value read successfully but 0 means "not reported" for these fields (a clock, a limit).
    template <typename Field>
    void set_nonzero(Field& field, grey_field fid, uint64_t value, grey_source source, const char* what) const {
        if (value == 0) {
            mark(field, fid, GREY_FIELD_UNSUPPORTED, reasons, std::string(what) + " reported 0, which means the device does not report it");
            return;
        }
        if constexpr (std::is_same_v<Field, grey_field_f64>) set_f64(field, static_cast<double>(value), source);
        else set_u64(field, value, source);
    }

    std::optional<int> attribute(CUdevice_attribute attribute, grey_field_u64* field, grey_field fid, const char* what) const {
        int value = 0;
        if (CUresult r = driver.cuDeviceGetAttribute(&value, attribute, id.device); r != CUDA_SUCCESS) {
            if (field != nullptr)
                mark(*field, fid, GREY_FIELD_UNSUPPORTED, reasons, "CUDA driver: " + driver.describe(r, "cuDeviceGetAttribute") + " (" + what + ")");
            return std::nullopt;
        }
        return value;
    }

    // NVML memory info: the _v2 struct (which separates reserved memory), else the original.
    template <typename Field>
    std::optional<nvml::MemoryV2> memory(Field& field, grey_field fid) const {
        nvml::MemoryV2 m{};
        m.version = nvml::kMemoryV2Version;
        if (nvml != nullptr && nvml->device_get_memory_info_v2 != nullptr && id.nvml != nullptr) {
            if (nvml_call(field, fid, "nvmlDeviceGetMemoryInfo_v2", nvml->device_get_memory_info_v2,
                          [&] { return nvml->device_get_memory_info_v2(id.nvml, &m); }))
                return m;
            if (field.state == GREY_FIELD_PERMISSION_DENIED) return std::nullopt;
        }
        nvml::Memory v1{};
        if (!nvml_call(field, fid, "nvmlDeviceGetMemoryInfo_v2 and nvmlDeviceGetMemoryInfo",
                       nvml != nullptr ? nvml->device_get_memory_info : nullptr,
                       [&] { return nvml->device_get_memory_info(id.nvml, &v1); }))
            return std::nullopt;
        m.total = v1.total;
        m.free = v1.free;
        m.used = v1.used;
        return m;
    }
};

std::string format_uuid(const CUuuid& uuid) {
    const auto* b = reinterpret_cast<const unsigned char*>(uuid.bytes);
    char text[64];
    std::snprintf(text, sizeof text, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                  b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return text;
}

std::string cuda_version_text(int version) { return std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10); }

std::optional<double> field_number(const nvml::FieldValue& v) {
    switch (v.valueType) {
        case nvml::kValueDouble: return v.value.dVal;
        case nvml::kValueUnsignedInt: return static_cast<double>(v.value.uiVal);
        case nvml::kValueUnsignedLong: return static_cast<double>(v.value.ulVal);
        case nvml::kValueUnsignedLongLong: return static_cast<double>(v.value.ullVal);
        case nvml::kValueSignedLongLong: return static_cast<double>(v.value.sllVal);
        case nvml::kValueSignedInt: return static_cast<double>(v.value.siVal);
        case nvml::kValueUnsignedShort: return static_cast<double>(v.value.usVal);
        default: return std::nullopt;
    }
}

std::optional<uint64_t> field_u64(const nvml::FieldValue& v) {
    switch (v.valueType) {
        case nvml::kValueUnsignedInt: return v.value.uiVal;
        case nvml::kValueUnsignedLong: return v.value.ulVal;
        case nvml::kValueUnsignedLongLong: return v.value.ullVal;
        case nvml::kValueSignedLongLong: return v.value.sllVal < 0 ? std::nullopt : std::optional<uint64_t>(static_cast<uint64_t>(v.value.sllVal));
        case nvml::kValueSignedInt: return v.value.siVal < 0 ? std::nullopt : std::optional<uint64_t>(static_cast<uint64_t>(v.value.siVal));
        case nvml::kValueUnsignedShort: return v.value.usVal;
        default: return std::nullopt;
    }
}

uint64_t map_throttle_reasons(uint64_t nvml_bits) {
    struct Bit {
        uint64_t nvml;
        uint32_t grey;
    };
    static constexpr Bit kMap[] = {
        {nvml::kEventGpuIdle, GREY_THROTTLE_IDLE},
        {nvml::kEventApplicationsClocks, GREY_THROTTLE_APPLICATION_CLOCKS},
        {nvml::kEventSwPowerCap, GREY_THROTTLE_SW_POWER_CAP},
        {nvml::kEventHwSlowdown, GREY_THROTTLE_HW_SLOWDOWN},
        {nvml::kEventSyncBoost, GREY_THROTTLE_SYNC_BOOST},
        {nvml::kEventSwThermal, GREY_THROTTLE_SW_THERMAL},
        {nvml::kEventHwThermal, GREY_THROTTLE_HW_THERMAL},
        {nvml::kEventHwPowerBrake, GREY_THROTTLE_HW_POWER_BRAKE},
        {nvml::kEventDisplayClock, GREY_THROTTLE_DISPLAY_CLOCKS},
    };
    uint64_t out = 0;
    uint64_t known = 0;
    for (const Bit& b : kMap) {
        known |= b.nvml;
        if ((nvml_bits & b.nvml) != 0) out |= b.grey;
    }
    if ((nvml_bits & ~known) != 0) out |= GREY_THROTTLE_OTHER;
    return out;
}

}  // namespace

void fill_spec(const Driver& driver, const Nvml* nvml, const DeviceIdentity& id, const DriverMemoryInfo& memory_info,
               grey_device_spec& spec, const grey_field_reasons* reasons) {
    const Reader rd{driver, nvml, id, reasons};
    spec.vendor = GREY_VENDOR_NVIDIA;
    spec.type = GREY_DEVICE_GPU;

    char name[256] = {};
    if (CUresult r = driver.cuDeviceGetName(name, sizeof name - 1, id.device); r == CUDA_SUCCESS)
        set_text(spec.name, name, GREY_SOURCE_CUDA_DRIVER);
    else
        mark(spec.name, GREY_FIELD_NAME, GREY_FIELD_UNSUPPORTED, reasons, "CUDA driver: " + driver.describe(r, "cuDeviceGetName"));

    CUuuid uuid{};
    if (CUresult r = driver.cuDeviceGetUuid(&uuid, id.device); r == CUDA_SUCCESS)
        set_text(spec.uuid, format_uuid(uuid), GREY_SOURCE_CUDA_DRIVER);
    else
        mark(spec.uuid, GREY_FIELD_UUID, GREY_FIELD_UNSUPPORTED, reasons, "CUDA driver: " + driver.describe(r, "cuDeviceGetUuid"));

    if (!id.pci_bus_id.empty()) set_text(spec.pci_bus_id, id.pci_bus_id, GREY_SOURCE_CUDA_DRIVER);
    else mark(spec.pci_bus_id, GREY_FIELD_PCI_BUS_ID, GREY_FIELD_UNSUPPORTED, reasons, "CUDA driver: cuDeviceGetPCIBusId gave no bus id");

    const auto major = rd.attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, nullptr, GREY_FIELD_COMPUTE_CAPABILITY, "compute capability");
    const auto minor = rd.attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, nullptr, GREY_FIELD_COMPUTE_CAPABILITY, "compute capability");
    if (major && minor) {
        set_text(spec.compute_capability, std::to_string(*major) + "." + std::to_string(*minor), GREY_SOURCE_CUDA_DRIVER);
        if (const std::string arch = architecture_name(*major, *minor); !arch.empty())
            set_text(spec.architecture, arch, GREY_SOURCE_TABLE);
        else
            mark(spec.architecture, GREY_FIELD_ARCHITECTURE, GREY_FIELD_UNSUPPORTED, reasons,
                 "compute capability " + std::to_string(*major) + "." + std::to_string(*minor) + " is not in libgrey's architecture table");
    } else {
        const std::string why = "CUDA driver: cuDeviceGetAttribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR/MINOR) failed";
        mark(spec.compute_capability, GREY_FIELD_COMPUTE_CAPABILITY, GREY_FIELD_UNSUPPORTED, reasons, why);
        mark(spec.architecture, GREY_FIELD_ARCHITECTURE, GREY_FIELD_UNSUPPORTED, reasons, why);
    }

    char driver_version[96] = {};
    if (rd.nvml_call(spec.driver_version, GREY_FIELD_DRIVER_VERSION, "nvmlSystemGetDriverVersion",
                     nvml != nullptr ? nvml->system_get_driver_version : nullptr,
                     [&] { return nvml->system_get_driver_version(driver_version, sizeof driver_version - 1); }))
        set_text(spec.driver_version, driver_version, GREY_SOURCE_NVML);
    set_text(spec.runtime_version, cuda_version_text(driver.version()), GREY_SOURCE_CUDA_DRIVER);

    // Total and free memory from NVML where it answers: its total counts the whole memory, as
    // nvidia-smi does; the driver's total (used where NVML cannot say) leaves out what it reserves.
    std::optional<nvml::MemoryV2> memory;
    if (id.nvml != nullptr) memory = rd.memory(spec.memory_free_bytes, GREY_FIELD_MEMORY_FREE_BYTES);
    if (memory) {
        rd.set_nonzero(spec.memory_total_bytes, GREY_FIELD_MEMORY_TOTAL_BYTES, memory->total, GREY_SOURCE_NVML, "NVML memory total");
        set_u64(spec.memory_free_bytes, memory->free, GREY_SOURCE_NVML);
    } else {
        size_t total = 0;
        if (CUresult r = driver.cuDeviceTotalMem(&total, id.device); r == CUDA_SUCCESS)
            rd.set_nonzero(spec.memory_total_bytes, GREY_FIELD_MEMORY_TOTAL_BYTES, total, GREY_SOURCE_CUDA_DRIVER, "cuDeviceTotalMem");
        else
            mark(spec.memory_total_bytes, GREY_FIELD_MEMORY_TOTAL_BYTES, GREY_FIELD_UNSUPPORTED, reasons,
                 "CUDA driver: " + driver.describe(r, "cuDeviceTotalMem"));
        if (spec.memory_free_bytes.state != GREY_FIELD_PERMISSION_DENIED) {
            uint64_t free = 0, all = 0;
            std::string why;
            if (memory_info && memory_info(free, all, why)) set_u64(spec.memory_free_bytes, free, GREY_SOURCE_CUDA_DRIVER);
            else mark(spec.memory_free_bytes, GREY_FIELD_MEMORY_FREE_BYTES, GREY_FIELD_UNSUPPORTED, reasons, why);
        }
    }

    if (auto width = rd.attribute(CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, &spec.memory_bus_width_bits,
                                  GREY_FIELD_MEMORY_BUS_WIDTH_BITS, "memory bus width"))
        rd.set_nonzero(spec.memory_bus_width_bits, GREY_FIELD_MEMORY_BUS_WIDTH_BITS, static_cast<uint64_t>(*width),
                       GREY_SOURCE_CUDA_DRIVER, "CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH");

    // The maximum memory clock: NVML's, else the driver attribute (kHz).
    unsigned int mem_clock = 0;
    if (rd.nvml_call(spec.memory_clock_max_mhz, GREY_FIELD_MEMORY_CLOCK_MAX_MHZ, "nvmlDeviceGetMaxClockInfo",
                     nvml != nullptr ? nvml->device_get_max_clock_info : nullptr,
                     [&] { return nvml->device_get_max_clock_info(id.nvml, nvml::kClockMem, &mem_clock); })) {
        rd.set_nonzero(spec.memory_clock_max_mhz, GREY_FIELD_MEMORY_CLOCK_MAX_MHZ, mem_clock, GREY_SOURCE_NVML, "nvmlDeviceGetMaxClockInfo(MEM)");
    } else if (auto khz = rd.attribute(CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, nullptr, GREY_FIELD_MEMORY_CLOCK_MAX_MHZ, "memory clock");
               khz && *khz > 0) {
        set_u64(spec.memory_clock_max_mhz, static_cast<uint64_t>(*khz) / 1000, GREY_SOURCE_CUDA_DRIVER);
    }
    if (spec.memory_clock_max_mhz.state == GREY_FIELD_OK && spec.memory_bus_width_bits.state == GREY_FIELD_OK)
        set_f64(spec.peak_memory_bandwidth_gbps, peak_bandwidth_gbps(spec.memory_clock_max_mhz.value, spec.memory_bus_width_bits.value),
                GREY_SOURCE_DERIVED);
    else
        mark(spec.peak_memory_bandwidth_gbps, GREY_FIELD_PEAK_MEMORY_BANDWIDTH_GBPS, GREY_FIELD_UNSUPPORTED, reasons,
             "derived from memory_clock_max_mhz and memory_bus_width_bits, and one of them is unavailable");

    if (auto l2 = rd.attribute(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, &spec.l2_cache_bytes, GREY_FIELD_L2_CACHE_BYTES, "L2 size"))
        rd.set_nonzero(spec.l2_cache_bytes, GREY_FIELD_L2_CACHE_BYTES, static_cast<uint64_t>(*l2), GREY_SOURCE_CUDA_DRIVER,
                       "CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE");
    // SMs from the driver: NVML's "cores" are CUDA cores, not multiprocessors.
    if (auto sms = rd.attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, &spec.compute_units, GREY_FIELD_COMPUTE_UNITS, "SM count"))
        rd.set_nonzero(spec.compute_units, GREY_FIELD_COMPUTE_UNITS, static_cast<uint64_t>(*sms), GREY_SOURCE_CUDA_DRIVER,
                       "CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT");

    unsigned int gr_clock = 0;
    if (rd.nvml_call(spec.graphics_clock_max_mhz, GREY_FIELD_GRAPHICS_CLOCK_MAX_MHZ, "nvmlDeviceGetMaxClockInfo",
                     nvml != nullptr ? nvml->device_get_max_clock_info : nullptr,
                     [&] { return nvml->device_get_max_clock_info(id.nvml, nvml::kClockGraphics, &gr_clock); }))
        rd.set_nonzero(spec.graphics_clock_max_mhz, GREY_FIELD_GRAPHICS_CLOCK_MAX_MHZ, gr_clock, GREY_SOURCE_NVML,
                       "nvmlDeviceGetMaxClockInfo(GRAPHICS)");

    unsigned int limit = 0;
    if (rd.nvml_call(spec.power_limit_mw, GREY_FIELD_POWER_LIMIT_MW, "nvmlDeviceGetEnforcedPowerLimit",
                     nvml != nullptr ? nvml->device_get_enforced_power_limit : nullptr,
                     [&] { return nvml->device_get_enforced_power_limit(id.nvml, &limit); }))
        rd.set_nonzero(spec.power_limit_mw, GREY_FIELD_POWER_LIMIT_MW, limit, GREY_SOURCE_NVML, "nvmlDeviceGetEnforcedPowerLimit");
    unsigned int default_limit = 0;
    if (rd.nvml_call(spec.power_limit_default_mw, GREY_FIELD_POWER_LIMIT_DEFAULT_MW, "nvmlDeviceGetPowerManagementDefaultLimit",
                     nvml != nullptr ? nvml->device_get_power_default_limit : nullptr,
                     [&] { return nvml->device_get_power_default_limit(id.nvml, &default_limit); }))
        rd.set_nonzero(spec.power_limit_default_mw, GREY_FIELD_POWER_LIMIT_DEFAULT_MW, default_limit, GREY_SOURCE_NVML,
                       "nvmlDeviceGetPowerManagementDefaultLimit");
    unsigned int min_limit = 0, max_limit = 0;
    if (rd.nvml_call(spec.power_limit_min_mw, GREY_FIELD_POWER_LIMIT_MIN_MW, "nvmlDeviceGetPowerManagementLimitConstraints",
                     nvml != nullptr ? nvml->device_get_power_limit_constraints : nullptr,
                     [&] { return nvml->device_get_power_limit_constraints(id.nvml, &min_limit, &max_limit); })) {
        rd.set_nonzero(spec.power_limit_min_mw, GREY_FIELD_POWER_LIMIT_MIN_MW, min_limit, GREY_SOURCE_NVML,
                       "nvmlDeviceGetPowerManagementLimitConstraints(min)");
        rd.set_nonzero(spec.power_limit_max_mw, GREY_FIELD_POWER_LIMIT_MAX_MW, max_limit, GREY_SOURCE_NVML,
                       "nvmlDeviceGetPowerManagementLimitConstraints(max)");
    } else {
        spec.power_limit_max_mw.state = spec.power_limit_min_mw.state;
        mark(spec.power_limit_max_mw, GREY_FIELD_POWER_LIMIT_MAX_MW, spec.power_limit_min_mw.state, reasons,
             id.nvml == nullptr ? id.nvml_unavailable
             : nvml->device_get_power_limit_constraints == nullptr
                 ? nvml->missing("nvmlDeviceGetPowerManagementLimitConstraints")
                 : std::string("NVML: nvmlDeviceGetPowerManagementLimitConstraints failed (see power_limit_min_mw)"));
    }

    struct Threshold {
        grey_field_f64* field;
        grey_field fid;
        int which;
        const char* name;
    };
    const Threshold thresholds[] = {
        {&spec.temperature_slowdown_c, GREY_FIELD_TEMPERATURE_SLOWDOWN_C, nvml::kThresholdSlowdown, "nvmlDeviceGetTemperatureThreshold(SLOWDOWN)"},
        {&spec.temperature_shutdown_c, GREY_FIELD_TEMPERATURE_SHUTDOWN_C, nvml::kThresholdShutdown, "nvmlDeviceGetTemperatureThreshold(SHUTDOWN)"},
        {&spec.temperature_gpu_max_c, GREY_FIELD_TEMPERATURE_GPU_MAX_C, nvml::kThresholdGpuMax, "nvmlDeviceGetTemperatureThreshold(GPU_MAX)"},
        {&spec.temperature_memory_max_c, GREY_FIELD_TEMPERATURE_MEMORY_MAX_C, nvml::kThresholdMemMax, "nvmlDeviceGetTemperatureThreshold(MEM_MAX)"},
    };
    for (const Threshold& t : thresholds) {
        unsigned int celsius = 0;
        if (rd.nvml_call(*t.field, t.fid, t.name, nvml != nullptr ? nvml->device_get_temperature_threshold : nullptr,
                         [&] { return nvml->device_get_temperature_threshold(id.nvml, t.which, &celsius); }))
            rd.set_nonzero(*t.field, t.fid, celsius, GREY_SOURCE_NVML, t.name);
    }

    struct Link {
        grey_field_u64* field;
        grey_field fid;
        nvml::Return (*const* fn)(nvml::Device, unsigned int*);
        const char* name;
    };
    if (nvml != nullptr) {
        const Link links[] = {
            {&spec.pcie_generation_current, GREY_FIELD_PCIE_GENERATION_CURRENT, &nvml->device_get_curr_pcie_link_generation, "nvmlDeviceGetCurrPcieLinkGeneration"},
            {&spec.pcie_generation_max, GREY_FIELD_PCIE_GENERATION_MAX, &nvml->device_get_max_pcie_link_generation, "nvmlDeviceGetMaxPcieLinkGeneration"},
            {&spec.pcie_width_current, GREY_FIELD_PCIE_WIDTH_CURRENT, &nvml->device_get_curr_pcie_link_width, "nvmlDeviceGetCurrPcieLinkWidth"},
            {&spec.pcie_width_max, GREY_FIELD_PCIE_WIDTH_MAX, &nvml->device_get_max_pcie_link_width, "nvmlDeviceGetMaxPcieLinkWidth"},
        };
        for (const Link& l : links) {
            unsigned int value = 0;
            if (rd.nvml_call(*l.field, l.fid, l.name, *l.fn, [&] { return (*l.fn)(id.nvml, &value); }))
                rd.set_nonzero(*l.field, l.fid, value, GREY_SOURCE_NVML, l.name);
        }
    } else {
        mark(spec.pcie_generation_current, GREY_FIELD_PCIE_GENERATION_CURRENT, GREY_FIELD_UNSUPPORTED, reasons, id.nvml_unavailable);
        mark(spec.pcie_generation_max, GREY_FIELD_PCIE_GENERATION_MAX, GREY_FIELD_UNSUPPORTED, reasons, id.nvml_unavailable);
        mark(spec.pcie_width_current, GREY_FIELD_PCIE_WIDTH_CURRENT, GREY_FIELD_UNSUPPORTED, reasons, id.nvml_unavailable);
        mark(spec.pcie_width_max, GREY_FIELD_PCIE_WIDTH_MAX, GREY_FIELD_UNSUPPORTED, reasons, id.nvml_unavailable);
    }
}

void fill_telemetry(const Driver& driver, const Nvml* nvml, const DeviceIdentity& id, const DriverMemoryInfo& memory_info,
                    grey_device_telemetry& t, const grey_field_reasons* reasons) {
    const Reader rd{driver, nvml, id, reasons};
    t.timestamp_ns = grey::common::monotonic_ns();

    // GPU temperature: nvmlDeviceGetTemperatureV (CUDA 12.5+), else the deprecated nvmlDeviceGetTemperature.
    nvml::TemperatureV1 temp{};
    temp.version = nvml::kTemperatureV1Version;
    temp.sensorType = nvml::kTemperatureGpu;
    unsigned int legacy_temp = 0;
    if (nvml != nullptr && nvml->device_get_temperature_v != nullptr) {
        if (rd.nvml_call(t.temperature_c, GREY_FIELD_TEMPERATURE_C, "nvmlDeviceGetTemperatureV", nvml->device_get_temperature_v,
                         [&] { return nvml->device_get_temperature_v(id.nvml, &temp); }))
            set_f64(t.temperature_c, temp.temperature, GREY_SOURCE_NVML);
    } else if (rd.nvml_call(t.temperature_c, GREY_FIELD_TEMPERATURE_C, "nvmlDeviceGetTemperatureV and nvmlDeviceGetTemperature",
                            nvml != nullptr ? nvml->device_get_temperature : nullptr,
                            [&] { return nvml->device_get_temperature(id.nvml, nvml::kTemperatureGpu, &legacy_temp); })) {
        set_f64(t.temperature_c, legacy_temp, GREY_SOURCE_NVML);
    }

    unsigned int power = 0;
    if (rd.nvml_call(t.power_draw_mw, GREY_FIELD_POWER_DRAW_MW, "nvmlDeviceGetPowerUsage", nvml != nullptr ? nvml->device_get_power_usage : nullptr,
                     [&] { return nvml->device_get_power_usage(id.nvml, &power); }))
        set_u64(t.power_draw_mw, power, GREY_SOURCE_NVML);
    unsigned long long energy = 0;
    if (rd.nvml_call(t.energy_total_mj, GREY_FIELD_ENERGY_TOTAL_MJ, "nvmlDeviceGetTotalEnergyConsumption",
                     nvml != nullptr ? nvml->device_get_total_energy_consumption : nullptr,
                     [&] { return nvml->device_get_total_energy_consumption(id.nvml, &energy); }))
        set_u64(t.energy_total_mj, energy, GREY_SOURCE_NVML);

    struct Clock {
        grey_field_u64* field;
        grey_field fid;
        int type;
        const char* name;
    };
    const Clock clocks[] = {
        {&t.graphics_clock_mhz, GREY_FIELD_GRAPHICS_CLOCK_MHZ, nvml::kClockGraphics, "nvmlDeviceGetClockInfo(GRAPHICS)"},
        {&t.sm_clock_mhz, GREY_FIELD_SM_CLOCK_MHZ, nvml::kClockSm, "nvmlDeviceGetClockInfo(SM)"},
        {&t.memory_clock_mhz, GREY_FIELD_MEMORY_CLOCK_MHZ, nvml::kClockMem, "nvmlDeviceGetClockInfo(MEM)"},
    };
    for (const Clock& c : clocks) {
        unsigned int mhz = 0;
        if (rd.nvml_call(*c.field, c.fid, c.name, nvml != nullptr ? nvml->device_get_clock_info : nullptr,
                         [&] { return nvml->device_get_clock_info(id.nvml, c.type, &mhz); }))
            rd.set_nonzero(*c.field, c.fid, mhz, GREY_SOURCE_NVML, c.name);
    }

    nvml::Utilization util{};
    if (rd.nvml_call(t.utilization_percent, GREY_FIELD_UTILIZATION_PERCENT, "nvmlDeviceGetUtilizationRates",
                     nvml != nullptr ? nvml->device_get_utilization_rates : nullptr,
                     [&] { return nvml->device_get_utilization_rates(id.nvml, &util); })) {
        set_u64(t.utilization_percent, util.gpu, GREY_SOURCE_NVML);
        set_u64(t.memory_utilization_percent, util.memory, GREY_SOURCE_NVML);
    } else {
        t.memory_utilization_percent.state = t.utilization_percent.state;
        mark(t.memory_utilization_percent, GREY_FIELD_MEMORY_UTILIZATION_PERCENT, t.utilization_percent.state, reasons,
             id.nvml == nullptr ? id.nvml_unavailable : std::string("NVML: nvmlDeviceGetUtilizationRates did not answer (see utilization_percent)"));
    }

    if (auto m = rd.memory(t.memory_used_bytes, GREY_FIELD_MEMORY_USED_BYTES)) {
        set_u64(t.memory_used_bytes, m->used, GREY_SOURCE_NVML);
    } else if (t.memory_used_bytes.state != GREY_FIELD_PERMISSION_DENIED) {
        uint64_t free = 0, total = 0;
        std::string why;
        if (memory_info && memory_info(free, total, why)) set_u64(t.memory_used_bytes, total - free, GREY_SOURCE_CUDA_DRIVER);
        else mark(t.memory_used_bytes, GREY_FIELD_MEMORY_USED_BYTES, GREY_FIELD_UNSUPPORTED, reasons, why);
    }

    unsigned long long bits = 0;
    if (rd.nvml_call(t.throttle_reasons, GREY_FIELD_THROTTLE_REASONS,
                     "nvmlDeviceGetCurrentClocksEventReasons and nvmlDeviceGetCurrentClocksThrottleReasons",
                     nvml != nullptr ? nvml->device_get_clocks_event_reasons : nullptr,
                     [&] { return nvml->device_get_clocks_event_reasons(id.nvml, &bits); }))
        set_u64(t.throttle_reasons, map_throttle_reasons(bits), GREY_SOURCE_NVML);

    // Memory temperature and the cumulative time each limiter held the clocks back, in one call.
    std::array<nvml::FieldValue, 4> values{};
    values[0].fieldId = nvml::kFieldMemoryTemp;
    values[1].fieldId = nvml::kFieldPerfPolicyPower;
    values[2].fieldId = nvml::kFieldPerfPolicyThermal;
    values[3].fieldId = nvml::kFieldPerfPolicySyncBoost;
    grey_field_u64 probe{};
    const bool answered = rd.nvml_call(probe, GREY_FIELD_MEMORY_TEMPERATURE_C, "nvmlDeviceGetFieldValues",
                                       nvml != nullptr ? nvml->device_get_field_values : nullptr,
                                       [&] { return nvml->device_get_field_values(id.nvml, static_cast<int>(values.size()), values.data()); });
    struct Counter {
        grey_field_u64* field;
        grey_field fid;
        const char* name;
    };
    const Counter counters[] = {
        {&t.throttle_time_power_ns, GREY_FIELD_THROTTLE_TIME_POWER_NS, "NVML_FI_DEV_PERF_POLICY_POWER"},
        {&t.throttle_time_thermal_ns, GREY_FIELD_THROTTLE_TIME_THERMAL_NS, "NVML_FI_DEV_PERF_POLICY_THERMAL"},
        {&t.throttle_time_sync_boost_ns, GREY_FIELD_THROTTLE_TIME_SYNC_BOOST_NS, "NVML_FI_DEV_PERF_POLICY_SYNC_BOOST"},
    };
    if (!answered) {
        // nvml_call marked `probe` under the memory temperature's id; the others get the same state.
        t.memory_temperature_c.state = probe.state;
        std::string why = id.nvml == nullptr ? id.nvml_unavailable
                          : nvml->device_get_field_values == nullptr ? nvml->missing("nvmlDeviceGetFieldValues")
                                                                     : std::string("NVML: nvmlDeviceGetFieldValues failed");
        mark(t.memory_temperature_c, GREY_FIELD_MEMORY_TEMPERATURE_C, probe.state, reasons, why);
        for (const Counter& c : counters) mark(*c.field, c.fid, probe.state, reasons, why);
        return;
    }
    auto field_failed = [&](const nvml::FieldValue& v, const char* name) {
        return std::string("field ") + name + ": " + nvml->describe(v.nvmlReturn, "nvmlDeviceGetFieldValues");
    };
    auto field_state = [](const nvml::FieldValue& v) {
        return v.nvmlReturn == nvml::kErrorNoPermission ? GREY_FIELD_PERMISSION_DENIED : GREY_FIELD_UNSUPPORTED;
    };
    if (values[0].nvmlReturn != nvml::kSuccess) {
        mark(t.memory_temperature_c, GREY_FIELD_MEMORY_TEMPERATURE_C, field_state(values[0]), reasons, field_failed(values[0], "NVML_FI_DEV_MEMORY_TEMP"));
    } else if (auto celsius = field_number(values[0]); celsius && *celsius > 0) {
        set_f64(t.memory_temperature_c, *celsius, GREY_SOURCE_NVML);
    } else {
        mark(t.memory_temperature_c, GREY_FIELD_MEMORY_TEMPERATURE_C, GREY_FIELD_UNSUPPORTED, reasons,
             "NVML: field NVML_FI_DEV_MEMORY_TEMP reported no temperature (0 or an unknown value type): the device has no memory sensor");
    }
    for (size_t i = 0; i < std::size(counters); ++i) {
        const nvml::FieldValue& v = values[i + 1];
        if (v.nvmlReturn != nvml::kSuccess) {
            mark(*counters[i].field, counters[i].fid, field_state(v), reasons, field_failed(v, counters[i].name));
        } else if (auto ns = field_u64(v)) {
            set_u64(*counters[i].field, *ns, GREY_SOURCE_NVML);
        } else {
            mark(*counters[i].field, counters[i].fid, GREY_FIELD_UNSUPPORTED, reasons,
                 std::string("NVML: field ") + counters[i].name + " has value type " + std::to_string(v.valueType) + ", not a counter");
        }
    }
}

}  // namespace grey::cuda
