// The part of NVML's C API this backend uses: types, constants and function signatures, as nvml.h
// (CUDA 13) declares them. NVML is opened with dlopen, so only these declarations are needed, and the
// toolkit on a build machine need not ship nvml.h (the CUDA 13 toolkit here does not). Values are ABI:
// NVIDIA keeps them stable across driver versions.
#pragma once

#include <cstdint>

namespace grey::cuda::nvml {

using Return = int;          // nvmlReturn_t
using Device = struct DeviceOpaque*;  // nvmlDevice_t

inline constexpr Return kSuccess = 0;
inline constexpr Return kErrorUninitialized = 1;
inline constexpr Return kErrorInvalidArgument = 2;
inline constexpr Return kErrorNotSupported = 3;
inline constexpr Return kErrorNoPermission = 4;
inline constexpr Return kErrorNotFound = 6;
inline constexpr Return kErrorFunctionNotFound = 13;
inline constexpr Return kErrorGpuIsLost = 15;
inline constexpr Return kErrorArgumentVersionMismatch = 25;

// nvmlTemperatureSensors_t / nvmlTemperatureThresholds_t / nvmlClockType_t
inline constexpr int kTemperatureGpu = 0;
inline constexpr int kThresholdShutdown = 0;
inline constexpr int kThresholdSlowdown = 1;
inline constexpr int kThresholdMemMax = 2;
inline constexpr int kThresholdGpuMax = 3;
inline constexpr int kClockGraphics = 0;
inline constexpr int kClockSm = 1;
inline constexpr int kClockMem = 2;

// nvmlClocksEventReasons bits (same values as the older "throttle reasons").
inline constexpr uint64_t kEventGpuIdle = 0x1;
inline constexpr uint64_t kEventApplicationsClocks = 0x2;
inline constexpr uint64_t kEventSwPowerCap = 0x4;
inline constexpr uint64_t kEventHwSlowdown = 0x8;
inline constexpr uint64_t kEventSyncBoost = 0x10;
inline constexpr uint64_t kEventSwThermal = 0x20;
inline constexpr uint64_t kEventHwThermal = 0x40;
inline constexpr uint64_t kEventHwPowerBrake = 0x80;
inline constexpr uint64_t kEventDisplayClock = 0x100;

// Field ids for nvmlDeviceGetFieldValues. The perf-policy counters are cumulative nanoseconds; nvml.h
// defines NVML_FI_DEV_CLOCKS_EVENT_REASON_SW_POWER_CAP and _SYNC_BOOST as aliases of 74 and 76. The
// newer ids for the other limiters are numbered differently between headers and drivers of CUDA 13,
// so they are not used.
inline constexpr uint32_t kFieldPerfPolicyPower = 74;
inline constexpr uint32_t kFieldPerfPolicyThermal = 75;
inline constexpr uint32_t kFieldPerfPolicySyncBoost = 76;
inline constexpr uint32_t kFieldMemoryTemp = 82;

// nvmlValueType_t
inline constexpr int kValueDouble = 0;
inline constexpr int kValueUnsignedInt = 1;
inline constexpr int kValueUnsignedLong = 2;
inline constexpr int kValueUnsignedLongLong = 3;
inline constexpr int kValueSignedLongLong = 4;
inline constexpr int kValueSignedInt = 5;
inline constexpr int kValueUnsignedShort = 6;

struct Memory {  // nvmlMemory_t
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
};

struct MemoryV2 {  // nvmlMemory_v2_t
    unsigned int version;
    unsigned long long total;
    unsigned long long reserved;
    unsigned long long free;
    unsigned long long used;
};
// NVML_STRUCT_VERSION(Memory, 2): the struct's size with the version in the top byte.
inline constexpr unsigned int kMemoryV2Version = static_cast<unsigned int>(sizeof(MemoryV2)) | (2u << 24);

struct TemperatureV1 {  // nvmlTemperature_v1_t
    unsigned int version;
    int sensorType;
    int temperature;
};
inline constexpr unsigned int kTemperatureV1Version = static_cast<unsigned int>(sizeof(TemperatureV1)) | (1u << 24);

struct Utilization {  // nvmlUtilization_t
    unsigned int gpu;
    unsigned int memory;
};

union Value {  // nvmlValue_t
    double dVal;
    unsigned int uiVal;
    unsigned long ulVal;
    unsigned long long ullVal;
    long long sllVal;
    int siVal;
    unsigned short usVal;
};

struct FieldValue {  // nvmlFieldValue_t
    unsigned int fieldId;
    unsigned int scopeId;
    long long timestamp;
    long long latencyUsec;
    int valueType;
    Return nvmlReturn;
    Value value;
};

static_assert(sizeof(MemoryV2) == 40 && sizeof(TemperatureV1) == 12 && sizeof(FieldValue) == 40,
              "NVML struct layouts must match nvml.h");

}  // namespace grey::cuda::nvml
