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

// Modules and launches (hipModule_t, hipFunction_t and hipStream_t are opaque pointers).
inline constexpr Error kErrorInvalidImage = 200;
inline constexpr Error kErrorNoBinaryForGpu = 209;
inline constexpr Error kErrorNotFound = 500;
using Module = struct ModuleHandle*;
using Function = struct FunctionHandle*;
using Stream = struct StreamHandle*;
using ModuleLoadDataFn = Error (*)(Module*, const void*);
using ModuleUnloadFn = Error (*)(Module);
using ModuleGetFunctionFn = Error (*)(Function*, Module, const char*);
using ModuleLaunchKernelFn = Error (*)(Function, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int,
                                       unsigned int, Stream, void**, void**);
// Streams and events (hipEvent_t is an opaque pointer too). hipErrorNotReady is a query's "not yet".
inline constexpr Error kErrorNotReady = 600;
using Event = struct EventHandle*;
using StreamCreateFn = Error (*)(Stream*);
using StreamFn = Error (*)(Stream);  // hipStreamDestroy, hipStreamSynchronize, hipStreamQuery
using StreamWaitEventFn = Error (*)(Stream, Event, unsigned int);
using EventCreateFn = Error (*)(Event*);
using EventFn = Error (*)(Event);  // hipEventDestroy, hipEventSynchronize, hipEventQuery
using EventRecordFn = Error (*)(Event, Stream);
using EventElapsedTimeFn = Error (*)(float*, Event, Event);
using MemcpyAsyncFn = Error (*)(void*, const void*, size_t, int, Stream);
using MemsetAsyncFn = Error (*)(void*, int, size_t, Stream);
// hipModuleOccupancyMaxActiveBlocksPerMultiprocessor(numBlocks, function, blockSize, dynSharedMemPerBlk)
using ModuleOccupancyFn = Error (*)(int*, Function, int, size_t);

// The start of hipDeviceProp_t as ROCm 5 defines it, which ROCm 6 and 7 keep as hipDeviceProp_tR0000 for
// the symbols hipGetDevicePropertiesR0000 and (the ROCm 5 name) hipGetDeviceProperties. Only
// gcnArchName is read; the offset is the one Debian's ROCm 5.2.3 header gives (offsetof, checked when
// this was written), and the full struct is 792 bytes there: callers pass kDevicePropBytes of room.
inline constexpr size_t kDevicePropGcnArchNameOffset = 396;
inline constexpr size_t kDevicePropGcnArchNameBytes = 256;
inline constexpr size_t kDevicePropBytes = 4096;
using GetDevicePropertiesFn = Error (*)(void*, int);

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

// The library's own version (rsmi_version_t, the same in every release): which layout the two structs
// below have.
struct Version {
    uint32_t major, minor, patch;
    const char* build;
};
using VersionFn = Status (*)(Version*);

// rsmi_frequencies_t and rsmi_pcie_bandwidth_t. Up to librocm_smi64 5 (Debian's 5.2.3 header): no
// has_deep_sleep and 32 entries; from 6 on: has_deep_sleep first and 33 entries. Frequencies in Hz,
// PCIe transfer rates in transfers per second, `current` the index of the present one.
template <int kEntries, bool kDeepSleep>
struct Frequencies;
template <int kEntries>
struct Frequencies<kEntries, false> {
    uint32_t num_supported, current;
    uint64_t frequency[kEntries];
};
template <int kEntries>
struct Frequencies<kEntries, true> {
    bool has_deep_sleep;
    uint32_t num_supported, current;
    uint64_t frequency[kEntries];
};
using FrequenciesV5 = Frequencies<32, false>;
using FrequenciesV6 = Frequencies<33, true>;
template <typename F, int kEntries>
struct PcieBandwidth {
    F transfer_rate;
    uint32_t lanes[kEntries];
};
using PcieBandwidthV5 = PcieBandwidth<FrequenciesV5, 32>;
using PcieBandwidthV6 = PcieBandwidth<FrequenciesV6, 33>;
static_assert(sizeof(FrequenciesV5) == 264 && sizeof(FrequenciesV6) == 280, "rsmi_frequencies_t as the headers lay it out");

// rsmi_clk_type_t
inline constexpr int kClockSystem = 0;
inline constexpr int kClockMemory = 4;
using ClockFn = Status (*)(uint32_t, int, void*);         // rsmi_dev_gpu_clk_freq_get
using PcieBandwidthFn = Status (*)(uint32_t, void*);      // rsmi_dev_pci_bandwidth_get
using ThrottleStatusFn = Status (*)(uint32_t, uint64_t*);  // rsmi_dev_metrics_indep_throttle_status_get (ROCm 6.1 on)

}  // namespace grey::hip::rsmi
