#include "cuda/driver.hpp"

#include <dlfcn.h>

namespace grey::cuda {

namespace {

// cuGetProcAddress as CUDA 12.0 and later export it (cuGetProcAddress_v2), and as 11.3-11.8 did.
using GetProcAddressV2 = CUresult (*)(const char*, void**, int, cuuint64_t, CUdriverProcAddressQueryResult*);
using GetProcAddressV1 = CUresult (*)(const char*, void**, int, cuuint64_t);

}  // namespace

Driver::Driver(const char* library) {
    library_ = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (library_ == nullptr) {
        const char* why = dlerror();
        throw DriverUnavailable(std::string("the CUDA driver is not installed: dlopen(") + library + ") failed: " +
                                (why != nullptr ? why : "unknown error"));
    }
    try {
        auto v2 = reinterpret_cast<GetProcAddressV2>(dlsym(library_, "cuGetProcAddress_v2"));
        auto v1 = reinterpret_cast<GetProcAddressV1>(dlsym(library_, "cuGetProcAddress"));
        if (v2 == nullptr && v1 == nullptr)
            throw DriverUnavailable(std::string(library) +
                                    " exports neither cuGetProcAddress_v2 nor cuGetProcAddress (a driver older than CUDA 11.3)");
        auto resolve = [&](const char* name) -> void* {
            void* fn = nullptr;
            CUresult result = CUDA_ERROR_NOT_FOUND;
            if (v2 != nullptr) {
                CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
                result = v2(name, &fn, kApiVersion, CU_GET_PROC_ADDRESS_DEFAULT, &status);
                if (result == CUDA_SUCCESS && status != CU_GET_PROC_ADDRESS_SUCCESS) fn = nullptr;
            } else {
                result = v1(name, &fn, kApiVersion, CU_GET_PROC_ADDRESS_DEFAULT);
            }
            if (result != CUDA_SUCCESS || fn == nullptr)
                throw DriverUnavailable(std::string(library) + " does not provide " + name + " for CUDA " +
                                        std::to_string(kApiVersion / 1000) + "." + std::to_string(kApiVersion % 1000 / 10) +
                                        " (cuGetProcAddress returned " + std::to_string(static_cast<int>(result)) + ")");
            return fn;
        };
#define GREY_CUDA_RESOLVE(name) name = reinterpret_cast<decltype(name)>(resolve(#name));
        GREY_CUDA_DRIVER_FUNCTIONS(GREY_CUDA_RESOLVE)
#undef GREY_CUDA_RESOLVE
        if (CUresult r = cuInit(0); r != CUDA_SUCCESS) throw DriverUnavailable("the CUDA driver did not start: " + describe(r, "cuInit"));
        check(cuDriverGetVersion(&version_), "cuDriverGetVersion");
    } catch (...) {
        dlclose(library_);
        throw;
    }
}

Driver::~Driver() {
    // The driver keeps process-wide state and may run destructors of its own threads; closing it is
    // still correct because every context this backend retained has been released by now.
    if (library_ != nullptr) dlclose(library_);
}

std::string Driver::describe(CUresult result, const char* call) const {
    const char* name = nullptr;
    const char* text = nullptr;
    if (cuGetErrorName == nullptr || cuGetErrorName(result, &name) != CUDA_SUCCESS) name = nullptr;
    if (cuGetErrorString == nullptr || cuGetErrorString(result, &text) != CUDA_SUCCESS) text = nullptr;
    std::string out = std::string(call) + " failed: ";
    out += name != nullptr ? name : "CUresult " + std::to_string(static_cast<int>(result));
    if (text != nullptr) out += std::string(" (") + text + ")";
    return out;
}

ContextScope::ContextScope(const Driver& driver, CUcontext context) : driver_(driver) {
    CUcontext current = nullptr;
    if (driver_.cuCtxGetCurrent(&current) == CUDA_SUCCESS && current == context) return;
    driver_.check(driver_.cuCtxPushCurrent(context), "cuCtxPushCurrent");
    pushed_ = true;
}

ContextScope::~ContextScope() {
    if (!pushed_) return;
    CUcontext popped = nullptr;
    (void)driver_.cuCtxPopCurrent(&popped);
}

}  // namespace grey::cuda
