#include "level0/ze_library.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace grey::level0 {

std::string result_name(ze_result_t result) {
    switch (result) {
#define GREY_ZE_NAME(code) \
    case code: return #code;
        GREY_ZE_NAME(ZE_RESULT_SUCCESS)
        GREY_ZE_NAME(ZE_RESULT_NOT_READY)
        GREY_ZE_NAME(ZE_RESULT_ERROR_DEVICE_LOST)
        GREY_ZE_NAME(ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY)
        GREY_ZE_NAME(ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY)
        GREY_ZE_NAME(ZE_RESULT_ERROR_MODULE_BUILD_FAILURE)
        GREY_ZE_NAME(ZE_RESULT_ERROR_MODULE_LINK_FAILURE)
        GREY_ZE_NAME(ZE_RESULT_ERROR_DEVICE_REQUIRES_RESET)
        GREY_ZE_NAME(ZE_RESULT_ERROR_DEVICE_IN_LOW_POWER_STATE)
        GREY_ZE_NAME(ZE_RESULT_ERROR_INSUFFICIENT_PERMISSIONS)
        GREY_ZE_NAME(ZE_RESULT_ERROR_NOT_AVAILABLE)
        GREY_ZE_NAME(ZE_RESULT_ERROR_DEPENDENCY_UNAVAILABLE)
        GREY_ZE_NAME(ZE_RESULT_ERROR_UNINITIALIZED)
        GREY_ZE_NAME(ZE_RESULT_ERROR_UNSUPPORTED_VERSION)
        GREY_ZE_NAME(ZE_RESULT_ERROR_UNSUPPORTED_FEATURE)
        GREY_ZE_NAME(ZE_RESULT_ERROR_INVALID_ARGUMENT)
        GREY_ZE_NAME(ZE_RESULT_ERROR_INVALID_NULL_HANDLE)
        GREY_ZE_NAME(ZE_RESULT_ERROR_INVALID_NULL_POINTER)
        GREY_ZE_NAME(ZE_RESULT_ERROR_INVALID_SIZE)
        GREY_ZE_NAME(ZE_RESULT_ERROR_UNSUPPORTED_SIZE)
        GREY_ZE_NAME(ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT)
        GREY_ZE_NAME(ZE_RESULT_ERROR_INVALID_ENUMERATION)
        GREY_ZE_NAME(ZE_RESULT_ERROR_UNSUPPORTED_ENUMERATION)
        GREY_ZE_NAME(ZE_RESULT_ERROR_INVALID_NATIVE_BINARY)
        GREY_ZE_NAME(ZE_RESULT_ERROR_INVALID_KERNEL_NAME)
        GREY_ZE_NAME(ZE_RESULT_ERROR_UNKNOWN)
#undef GREY_ZE_NAME
        default: {
            char text[40];
            std::snprintf(text, sizeof text, "ze_result_t 0x%08x", static_cast<unsigned>(result));
            return text;
        }
    }
}

namespace {

backend::VendorLibrary open_loader(std::span<const char* const> candidates) try {
    return backend::VendorLibrary(candidates, "the Level Zero loader");
} catch (const backend::VendorLibraryMissing& e) {
    throw ZeUnavailable(e.what());
}

}  // namespace

ZeLibrary::ZeLibrary(std::span<const char* const> candidates) : library_(open_loader(candidates)) {
    auto resolve = [this](const char* name, bool required) -> void* {
        void* fn = library_.symbol(name);
        if (fn == nullptr && required) throw ZeUnavailable(library_.name() + " does not export " + name);
        return fn;
    };
#define GREY_ZE_RESOLVE_CORE(name) name = reinterpret_cast<decltype(name)>(resolve(#name, true));
#define GREY_ZE_RESOLVE_SYSMAN(name) name = reinterpret_cast<decltype(name)>(resolve(#name, false));
    GREY_ZE_CORE_FUNCTIONS(GREY_ZE_RESOLVE_CORE)
    GREY_ZES_FUNCTIONS(GREY_ZE_RESOLVE_SYSMAN)
#undef GREY_ZE_RESOLVE_CORE
#undef GREY_ZE_RESOLVE_SYSMAN
    // Must precede zeInit (see the header); an existing choice of the process is kept.
    setenv("ZES_ENABLE_SYSMAN", "1", 0);
    if (const char* sysman = std::getenv("ZES_ENABLE_SYSMAN"); sysman == nullptr || std::strcmp(sysman, "1") != 0)
        sysman_disabled_ = std::string("Level Zero Sysman is off: the process set ZES_ENABLE_SYSMAN=") + (sysman != nullptr ? sysman : "") +
                           " before libgrey started, and Sysman needs 1";
    if (const ze_result_t r = zeInit(ZE_INIT_FLAG_GPU_ONLY); r != ZE_RESULT_SUCCESS)
        throw ZeUnavailable("the Level Zero loader " + library_.name() + " found no usable GPU driver: " + describe(r, "zeInit"));
}

std::string ZeLibrary::describe(ze_result_t result, const char* call) {
    return std::string("Level Zero: ") + call + " failed: " + result_name(result);
}

std::string ZeLibrary::missing(const char* name) const { return std::string("Level Zero: ") + name + " not found in " + library_.name(); }

}  // namespace grey::level0
