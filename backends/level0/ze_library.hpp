// The Level Zero loader (libze_loader.so.1), opened at run time. The core entry points the backend
// cannot work without are resolved up front: one missing means the backend is not offered. Sysman's
// entry points are resolved one by one: a missing one leaves its pointer NULL and the fields it feeds
// are marked unsupported with its name. ze_api.h and zes_api.h (Debian's libze-dev) are included for
// their types and constants only; nothing links the loader.
//
// Sysman is reached through the core device handle (API 1.4 has no zesInit), which the Level Zero
// specification allows only when ZES_ENABLE_SYSMAN=1 is in the environment when zeInit runs: the
// constructor sets it unless the process already chose a value, and a "0" there is respected (the
// Sysman fields then say so).
#pragma once

#include "common/vendor_library.hpp"

#include <level_zero/ze_api.h>
#include <level_zero/zes_api.h>

#include <span>
#include <stdexcept>
#include <string>

namespace grey::level0 {

// A failed Level Zero call: the function and the ze_result_t, by name.
class ZeError : public std::runtime_error {
public:
    ZeError(ze_result_t result, std::string message) : std::runtime_error(std::move(message)), result_(result) {}
    [[nodiscard]] ze_result_t result() const noexcept { return result_; }

private:
    ze_result_t result_;
};

// The loader cannot be used at all: no library, a missing core entry point, or zeInit failed.
class ZeUnavailable : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

// "ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY", or "ze_result_t 0x7ffffffe" for a code this table lacks.
std::string result_name(ze_result_t result);

// The sonames tried in order: the loader's current major version, then the development symlink.
inline constexpr const char* kLoaderCandidates[] = {"libze_loader.so.1", "libze_loader.so"};

#define GREY_ZE_CORE_FUNCTIONS(X)                                                                        \
    X(zeInit) X(zeDriverGet) X(zeDriverGetApiVersion) X(zeDriverGetProperties) X(zeDeviceGet)            \
    X(zeDeviceGetProperties) X(zeDeviceGetMemoryProperties) X(zeDeviceGetCacheProperties)                \
    X(zeContextCreate) X(zeContextDestroy) X(zeMemAllocDevice) X(zeMemFree)                              \
    X(zeCommandListCreateImmediate) X(zeCommandListDestroy) X(zeCommandListAppendMemoryCopy)             \
    X(zeCommandListAppendMemoryFill) X(zeModuleCreate) X(zeModuleDestroy) X(zeModuleBuildLogGetString)            \
    X(zeModuleBuildLogDestroy) X(zeKernelCreate) X(zeKernelDestroy) X(zeKernelSetGroupSize)              \
    X(zeKernelSetArgumentValue) X(zeKernelSetIndirectAccess) X(zeCommandListAppendLaunchKernel)                                      \
    X(zeCommandListCreate) X(zeCommandListClose) X(zeCommandQueueCreate) X(zeCommandQueueDestroy)        \
    X(zeCommandQueueExecuteCommandLists) X(zeCommandQueueSynchronize) X(zeEventPoolCreate)               \
    X(zeEventPoolDestroy) X(zeEventCreate) X(zeEventDestroy) X(zeCommandListAppendSignalEvent)           \
    X(zeCommandListAppendWaitOnEvents) X(zeCommandListAppendEventReset) X(zeEventHostSynchronize)        \
    X(zeEventQueryStatus)

#define GREY_ZES_FUNCTIONS(X)                                                                            \
    X(zesDeviceGetProperties) X(zesDevicePciGetProperties) X(zesDevicePciGetState)                       \
    X(zesDeviceEnumMemoryModules) X(zesMemoryGetProperties) X(zesMemoryGetState) X(zesMemoryGetBandwidth) \
    X(zesDeviceEnumFrequencyDomains) X(zesFrequencyGetProperties) X(zesFrequencyGetState)                \
    X(zesDeviceEnumPowerDomains) X(zesPowerGetProperties) X(zesPowerGetEnergyCounter) X(zesPowerGetLimits) \
    X(zesPowerSetLimits)                                                                                 \
    X(zesDeviceEnumTemperatureSensors) X(zesTemperatureGetProperties) X(zesTemperatureGetState)

class ZeLibrary {
public:
    // Opens the first of `candidates` that dlopen finds, resolves the entry points and calls
    // zeInit(ZE_INIT_FLAG_GPU_ONLY). Throws ZeUnavailable naming what is missing.
    explicit ZeLibrary(std::span<const char* const> candidates = kLoaderCandidates);
    ZeLibrary(const ZeLibrary&) = delete;
    ZeLibrary& operator=(const ZeLibrary&) = delete;

    [[nodiscard]] const std::string& library_name() const noexcept { return library_.name(); }
    // Why Sysman cannot be used at all ("" when it can): ZES_ENABLE_SYSMAN was set to something else.
    [[nodiscard]] const std::string& sysman_disabled() const noexcept { return sysman_disabled_; }

    // "Level Zero: zeMemAllocDevice failed: ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY".
    [[nodiscard]] static std::string describe(ze_result_t result, const char* call);
    // Whether the loader exports the Sysman entry point `name` (one of GREY_ZES_FUNCTIONS).
    [[nodiscard]] bool has(const char* name) const noexcept { return library_.symbol(name) != nullptr; }
    // "Level Zero: zesPowerGetEnergyCounter not found in libze_loader.so.1".
    [[nodiscard]] std::string missing(const char* name) const;
    // Throws ZeError unless `result` is ZE_RESULT_SUCCESS.
    static void check(ze_result_t result, const char* call) {
        if (result != ZE_RESULT_SUCCESS) throw ZeError(result, describe(result, call));
    }

#define GREY_ZE_DECLARE(name) decltype(&::name) name = nullptr;
    GREY_ZE_CORE_FUNCTIONS(GREY_ZE_DECLARE)
    GREY_ZES_FUNCTIONS(GREY_ZE_DECLARE)
#undef GREY_ZE_DECLARE

private:
    backend::VendorLibrary library_;
    std::string sysman_disabled_;
};

}  // namespace grey::level0
