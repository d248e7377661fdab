// A fake libnvidia-ml.so.1 reporting an H100-like device, for the CUDA backend's CI tests.
//   FAKE_NVML_FAIL        "name:code,...": those functions return that nvmlReturn_t (4 = no permission)
//   FAKE_NVML_FIELD_FAIL  "fieldId:code,...": nvmlDeviceGetFieldValues fails those fields alone
//   FAKE_NVML_POWER_FILE  the device's power management limit (decimal mW; absent: 700000), kept in this
//                         file so that it outlives the process as a real one does; every successful
//                         nvmlDeviceSetPowerManagementLimit also appends "set <mW>" to <file>.log, the
//                         history the tests read. Without the variable nothing is kept and sets fail.
// Built with FAKE_NVML_OLD: an older NVML that has only the original names (no nvmlInit_v2, no
// _v2 memory info, no ClocksEventReasons, no TemperatureV) and lacks nvmlDeviceGetPowerUsage and
// nvmlDeviceGetFieldValues altogether, so the backend's fallbacks and "symbol missing" paths run.
#include "../../../backends/cuda/nvml_api.hpp"
#include "fake_common.hpp"

#include <cstdio>
#include <fstream>

using namespace grey::cuda::nvml;

namespace {

Device the_device() { return reinterpret_cast<Device>(static_cast<uintptr_t>(0xD0)); }

#define FAKE_NVML_FAIL(name)                                                                      \
    if (auto forced = fake::forced_failure("FAKE_NVML_FAIL", name)) return *forced

Return check(Device d) { return d == the_device() ? kSuccess : 2 /* NVML_ERROR_INVALID_ARGUMENT */; }

Return fill_memory(unsigned long long& total, unsigned long long& free, unsigned long long& used) {
    total = 81559ull << 20;
    used = 531ull << 20;
    free = total - used;
    return kSuccess;
}

}  // namespace

#define EXPORT extern "C" __attribute__((visibility("default")))

#if !defined(FAKE_NVML_OLD)
EXPORT Return nvmlInit_v2() {
    FAKE_NVML_FAIL("nvmlInit_v2");
    return kSuccess;
}
EXPORT Return nvmlDeviceGetHandleByPciBusId_v2(const char* bus, Device* d) {
    FAKE_NVML_FAIL("nvmlDeviceGetHandleByPciBusId_v2");
    if (std::string(bus) != "0000:3b:00.0") return kErrorNotFound;
    *d = the_device();
    return kSuccess;
}
EXPORT Return nvmlDeviceGetMemoryInfo_v2(Device d, MemoryV2* m) {
    FAKE_NVML_FAIL("nvmlDeviceGetMemoryInfo_v2");
    if (m->version != kMemoryV2Version) return kErrorArgumentVersionMismatch;
    m->reserved = 0;
    return check(d) ? check(d) : fill_memory(m->total, m->free, m->used);
}
EXPORT Return nvmlDeviceGetCurrentClocksEventReasons(Device d, unsigned long long* bits) {
    FAKE_NVML_FAIL("nvmlDeviceGetCurrentClocksEventReasons");
    *bits = kEventGpuIdle | kEventSwPowerCap | 0x400;  // 0x400: a reason libgrey does not know
    return check(d);
}
EXPORT Return nvmlDeviceGetTemperatureV(Device d, TemperatureV1* t) {
    FAKE_NVML_FAIL("nvmlDeviceGetTemperatureV");
    if (t->version != kTemperatureV1Version) return kErrorArgumentVersionMismatch;
    t->temperature = 35;
    return check(d);
}
EXPORT Return nvmlDeviceGetPowerUsage(Device d, unsigned int* mw) {
    FAKE_NVML_FAIL("nvmlDeviceGetPowerUsage");
    *mw = 70123;
    return check(d);
}
EXPORT Return nvmlDeviceGetPowerManagementLimit(Device d, unsigned int* mw) {
    FAKE_NVML_FAIL("nvmlDeviceGetPowerManagementLimit");
    unsigned int limit = 700000;
    if (const char* file = std::getenv("FAKE_NVML_POWER_FILE")) std::ifstream(file) >> limit;
    *mw = limit;
    return check(d);
}
EXPORT Return nvmlDeviceSetPowerManagementLimit(Device d, unsigned int mw) {
    FAKE_NVML_FAIL("nvmlDeviceSetPowerManagementLimit");
    if (check(d)) return check(d);
    const char* file = std::getenv("FAKE_NVML_POWER_FILE");
    if (file == nullptr) return kErrorNotSupported;
    if (mw < 200000 || mw > 700000) return kErrorInvalidArgument;  // the constraints reported below
    std::ofstream(file, std::ios::trunc) << mw;
    std::ofstream(std::string(file) + ".log", std::ios::app) << "set " << mw << "\n";
    return kSuccess;
}
EXPORT Return nvmlDeviceGetFieldValues(Device d, int count, FieldValue* values) {
    FAKE_NVML_FAIL("nvmlDeviceGetFieldValues");
    if (check(d)) return check(d);
    for (int i = 0; i < count; ++i) {
        FieldValue& v = values[i];
        const std::string id = std::to_string(v.fieldId);
        if (auto forced = fake::forced_failure("FAKE_NVML_FIELD_FAIL", id.c_str())) {
            v.nvmlReturn = *forced;
            continue;
        }
        v.nvmlReturn = kSuccess;
        switch (v.fieldId) {
            case kFieldMemoryTemp: v.valueType = kValueUnsignedInt; v.value.uiVal = 41; break;
            case kFieldPerfPolicyPower: v.valueType = kValueUnsignedLongLong; v.value.ullVal = 1000000; break;
            case kFieldPerfPolicyThermal: v.valueType = kValueUnsignedLongLong; v.value.ullVal = 2000; break;
            case kFieldPerfPolicySyncBoost: v.valueType = kValueUnsignedLongLong; v.value.ullVal = 0; break;
            default: v.nvmlReturn = kErrorNotSupported;
        }
    }
    return kSuccess;
}
#else
EXPORT Return nvmlInit() {
    FAKE_NVML_FAIL("nvmlInit");
    return kSuccess;
}
EXPORT Return nvmlDeviceGetHandleByPciBusId(const char* bus, Device* d) {
    if (std::string(bus) != "0000:3b:00.0") return kErrorNotFound;
    *d = the_device();
    return kSuccess;
}
EXPORT Return nvmlDeviceGetCurrentClocksThrottleReasons(Device d, unsigned long long* bits) {
    *bits = kEventSwThermal;
    return check(d);
}
EXPORT Return nvmlDeviceGetTemperature(Device d, int sensor, unsigned int* t) {
    if (sensor != kTemperatureGpu) return kErrorNotSupported;
    *t = 36;
    return check(d);
}
#endif

EXPORT Return nvmlShutdown() { return kSuccess; }

EXPORT const char* nvmlErrorString(Return r) {
    switch (r) {
        case kSuccess: return "Success";
        case kErrorNotSupported: return "Not Supported";
        case kErrorNoPermission: return "Insufficient Permissions";
        case kErrorNotFound: return "Not Found";
        case 9: return "Driver Not Loaded";
        default: return "Unknown Error";
    }
}

EXPORT Return nvmlSystemGetDriverVersion(char* text, unsigned int length) {
    FAKE_NVML_FAIL("nvmlSystemGetDriverVersion");
    std::snprintf(text, length, "580.159.04");
    return kSuccess;
}

EXPORT Return nvmlDeviceGetMemoryInfo(Device d, Memory* m) {
    FAKE_NVML_FAIL("nvmlDeviceGetMemoryInfo");
    return check(d) ? check(d) : fill_memory(m->total, m->free, m->used);
}

EXPORT Return nvmlDeviceGetMaxClockInfo(Device d, int type, unsigned int* mhz) {
    FAKE_NVML_FAIL("nvmlDeviceGetMaxClockInfo");
    *mhz = type == kClockMem ? 2619 : 1980;
    return check(d);
}

EXPORT Return nvmlDeviceGetClockInfo(Device d, int type, unsigned int* mhz) {
    FAKE_NVML_FAIL("nvmlDeviceGetClockInfo");
    *mhz = type == kClockMem ? 2619 : type == kClockSm ? 1755 : 1750;
    return check(d);
}

EXPORT Return nvmlDeviceGetEnforcedPowerLimit(Device d, unsigned int* mw) {
    FAKE_NVML_FAIL("nvmlDeviceGetEnforcedPowerLimit");
    *mw = 700000;
    return check(d);
}

EXPORT Return nvmlDeviceGetPowerManagementDefaultLimit(Device d, unsigned int* mw) {
    FAKE_NVML_FAIL("nvmlDeviceGetPowerManagementDefaultLimit");
    *mw = 700000;
    return check(d);
}

EXPORT Return nvmlDeviceGetPowerManagementLimitConstraints(Device d, unsigned int* min, unsigned int* max) {
    FAKE_NVML_FAIL("nvmlDeviceGetPowerManagementLimitConstraints");
    *min = 200000;
    *max = 700000;
    return check(d);
}

EXPORT Return nvmlDeviceGetTemperatureThreshold(Device d, int which, unsigned int* celsius) {
    FAKE_NVML_FAIL("nvmlDeviceGetTemperatureThreshold");
    switch (which) {
        case kThresholdShutdown: *celsius = 92; break;
        case kThresholdSlowdown: *celsius = 89; break;
        case kThresholdGpuMax: *celsius = 87; break;
        case kThresholdMemMax: *celsius = 95; break;
        default: return kErrorNotSupported;
    }
    return check(d);
}

EXPORT Return nvmlDeviceGetCurrPcieLinkGeneration(Device d, unsigned int* v) {
    FAKE_NVML_FAIL("nvmlDeviceGetCurrPcieLinkGeneration");
    *v = 5;
    return check(d);
}
EXPORT Return nvmlDeviceGetMaxPcieLinkGeneration(Device d, unsigned int* v) {
    FAKE_NVML_FAIL("nvmlDeviceGetMaxPcieLinkGeneration");
    *v = 5;
    return check(d);
}
EXPORT Return nvmlDeviceGetCurrPcieLinkWidth(Device d, unsigned int* v) {
    FAKE_NVML_FAIL("nvmlDeviceGetCurrPcieLinkWidth");
    *v = 8;
    return check(d);
}
EXPORT Return nvmlDeviceGetMaxPcieLinkWidth(Device d, unsigned int* v) {
    FAKE_NVML_FAIL("nvmlDeviceGetMaxPcieLinkWidth");
    *v = 16;
    return check(d);
}

EXPORT Return nvmlDeviceGetTotalEnergyConsumption(Device d, unsigned long long* mj) {
    FAKE_NVML_FAIL("nvmlDeviceGetTotalEnergyConsumption");
    *mj = 123456789;
    return check(d);
}

EXPORT Return nvmlDeviceGetUtilizationRates(Device d, Utilization* u) {
    FAKE_NVML_FAIL("nvmlDeviceGetUtilizationRates");
    u->gpu = 7;
    u->memory = 3;
    return check(d);
}
