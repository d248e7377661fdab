// The CUDA driver API, opened at run time. libcuda.so.1 is loaded with dlopen and every entry point is
// resolved through cuGetProcAddress at one stated API version (kApiVersion), so the plugin has no
// link-time dependency on the driver and gets the same entry-point semantics whichever driver it meets.
// cuda.h is included for its types and constants only.
#pragma once

#include <cuda.h>

#include <stdexcept>
#include <string>

namespace grey::cuda {

// The CUDA version whose entry-point semantics are requested from cuGetProcAddress: 12.0. Every
// function below exists at 12.0 (the VMM API since 10.2), so a 12.x or 13.x driver serves them all.
inline constexpr int kApiVersion = 12000;

// A failed driver call: the function, the CUresult, its name and description.
class DriverError : public std::runtime_error {
public:
    DriverError(CUresult result, std::string message) : std::runtime_error(std::move(message)), result_(result) {}
    [[nodiscard]] CUresult result() const noexcept { return result_; }

private:
    CUresult result_;
};

// Thrown by Driver::open when the driver cannot be used at all (no library, no entry point).
class DriverUnavailable : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

#define GREY_CUDA_DRIVER_FUNCTIONS(X)                                                                 \
    X(cuInit) X(cuDriverGetVersion) X(cuDeviceGetCount) X(cuDeviceGet) X(cuDeviceGetName)             \
    X(cuDeviceGetAttribute) X(cuDeviceTotalMem) X(cuDeviceGetUuid) X(cuDeviceGetPCIBusId)             \
    X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease) X(cuCtxPushCurrent) X(cuCtxPopCurrent)   \
    X(cuCtxGetCurrent)                                                                                  \
    X(cuMemGetInfo) X(cuMemGetAllocationGranularity) X(cuMemAddressReserve) X(cuMemAddressFree)       \
    X(cuMemCreate) X(cuMemRelease) X(cuMemMap) X(cuMemUnmap) X(cuMemSetAccess) X(cuStreamCreate)      \
    X(cuStreamDestroy) X(cuStreamSynchronize) X(cuStreamQuery) X(cuStreamWaitEvent) X(cuStreamGetCtx) X(cuEventQuery) X(cuEventCreate) X(cuEventDestroy) X(cuEventRecord)     \
    X(cuEventSynchronize) X(cuEventElapsedTime) X(cuMemcpyHtoDAsync) X(cuMemcpyDtoHAsync) X(cuMemAllocHost) X(cuMemFreeHost) X(cuMemHostGetDevicePointer)             \
    X(cuMemcpyDtoDAsync) X(cuModuleLoadData) X(cuModuleUnload) X(cuModuleGetFunction)                 \
    X(cuLaunchKernel) X(cuLaunchHostFunc) X(cuFuncSetAttribute) X(cuOccupancyMaxActiveBlocksPerMultiprocessor) X(cuGetErrorName) X(cuGetErrorString)

class Driver {
public:
    // Opens `library` (normally "libcuda.so.1"), resolves every entry point and calls cuInit(0).
    // Throws DriverUnavailable naming what is missing.
    explicit Driver(const char* library);
    ~Driver();
    Driver(const Driver&) = delete;
    Driver& operator=(const Driver&) = delete;

    // The driver's CUDA version as the driver reports it (12080 for 12.8).
    [[nodiscard]] int version() const noexcept { return version_; }

    // "cuMemCreate failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)".
    [[nodiscard]] std::string describe(CUresult result, const char* call) const;
    // Throws DriverError unless `result` is CUDA_SUCCESS.
    void check(CUresult result, const char* call) const {
        if (result != CUDA_SUCCESS) throw DriverError(result, describe(result, call));
    }

#define GREY_CUDA_DECLARE(name) decltype(&::name) name = nullptr;
    GREY_CUDA_DRIVER_FUNCTIONS(GREY_CUDA_DECLARE)
#undef GREY_CUDA_DECLARE

private:
    void* library_ = nullptr;
    int version_ = 0;
};

// Makes a context current on this thread for a scope, and restores the previous one after. Nothing to do
// when it is current already: a framework's thread (PyTorch's, any CUDA runtime user's) has the device's
// primary context current, the one this backend uses, and a push and pop would cost every call two
// driver calls for nothing.
class ContextScope {
public:
    ContextScope(const Driver& driver, CUcontext context);
    ~ContextScope();
    ContextScope(const ContextScope&) = delete;
    ContextScope& operator=(const ContextScope&) = delete;

private:
    const Driver& driver_;
    bool pushed_ = false;
};

}  // namespace grey::cuda
