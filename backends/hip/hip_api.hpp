// The part of the HIP runtime API and ROCm SMI this backend uses, declared here because the plugin
// opens both with dlopen and must build where no ROCm headers are installed. Values are taken from
// Debian 12's hip_runtime_api.h (libamdhip64-dev 5.2.3) and rocm_smi.h (librocm-smi-dev 5.2.3);
// docs/backends.md lists them as not yet checked against ROCm 6 and 7 headers. Only calls whose
// arguments are plain integers or fixed C types are used: the structs that changed layout between
// ROCm releases (hipDeviceProp_t, rsmi_frequencies_t) are deliberately not read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace grey::hip::api {

using Error = int;  // hipError_t
inline constexpr Error kSuccess = 0;
inline constexpr Error kErrorOutOfMemory = 2;
inline constexpr Error kErrorNoDevice = 100;

// hipMemcpyKind
inline constexpr int kMemcpyHostToDevice = 1;
inline constexpr int kMemcpyDeviceToHost = 2;
inline constexpr int kMemcpyDeviceToDevice = 3;

// hipDeviceAttribute_t
inline constexpr int kAttributeClockRate = 5;             // kHz
inline constexpr int kAttributeL2CacheSize = 19;          // bytes
inline constexpr int kAttributeMemoryBusWidth = 59;       // bits
inline constexpr int kAttributeMemoryClockRate = 60;      // kHz
inline constexpr int kAttributeMultiprocessorCount = 63;  // compute units

using InitFn = Error (*)(unsigned int);
using GetDeviceCountFn = Error (*)(int*);
using DeviceGetNameFn = Error (*)(char*, int, int);
using DeviceGetAttributeFn = Error (*)(int*, int, int);
using DeviceTotalMemFn = Error (*)(size_t*, int);
using DeviceGetPCIBusIdFn = Error (*)(char*, int, int);
using SetDeviceFn = Error (*)(int);
using MemGetInfoFn = Error (*)(size_t*, size_t*);
using MallocFn = Error (*)(void**, size_t);
using FreeFn = Error (*)(void*);
using MemcpyFn = Error (*)(void*, const void*, size_t, int);
using MemsetFn = Error (*)(void*, int, size_t);
using DeviceSynchronizeFn = Error (*)();
using VersionFn = Error (*)(int*);
using GetErrorNameFn = const char* (*)(Error);
struct Uuid {  // hipUUID
    char bytes[16];
};
using DeviceGetUuidFn = Error (*)(Uuid*, int);

}  // namespace grey::hip::api

namespace grey::hip::rsmi {

using Status = int;  // rsmi_status_t
inline constexpr Status kSuccess = 0;
inline constexpr Status kNotSupported = 2;
inline constexpr Status kInvalidArgs = 1;
inline constexpr Status kPermission = 4;
inline constexpr Status kInputOutOfBounds = 7;

// rsmi_temperature_type_t / rsmi_temperature_metric_t / rsmi_memory_type_t / rsmi_sw_component_t
inline constexpr uint32_t kTempEdge = 0;
inline constexpr uint32_t kTempJunction = 1;
inline constexpr uint32_t kTempMemory = 2;
inline constexpr int kTempCurrent = 0;
inline constexpr int kTempCritical = 5;
inline constexpr int kTempEmergency = 7;
inline constexpr int kMemVram = 0;
inline constexpr int kComponentDriver = 0;

using InitFn = Status (*)(uint64_t);
using ShutDownFn = Status (*)();
using NumDevicesFn = Status (*)(uint32_t*);
using PciIdFn = Status (*)(uint32_t, uint64_t*);
using U64Fn = Status (*)(uint32_t, uint64_t*);                    // default power cap
using SensorU64Fn = Status (*)(uint32_t, uint32_t, uint64_t*);    // power cap, average power
using CapRangeFn = Status (*)(uint32_t, uint32_t, uint64_t*, uint64_t*);
using CapSetFn = Status (*)(uint32_t, uint32_t, uint64_t);
using EnergyFn = Status (*)(uint32_t, uint64_t*, float*, uint64_t*);
using TempFn = Status (*)(uint32_t, uint32_t, int, int64_t*);
using PercentFn = Status (*)(uint32_t, uint32_t*);
using MemoryFn = Status (*)(uint32_t, int, uint64_t*);
using VersionStrFn = Status (*)(int, char*, uint32_t);
using StatusStringFn = Status (*)(Status, const char**);

}  // namespace grey::hip::rsmi
