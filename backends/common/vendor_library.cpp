#include "common/vendor_library.hpp"

#include <dlfcn.h>

namespace grey::backend {

VendorLibrary::VendorLibrary(std::span<const char* const> candidates, const char* what) {
    std::string tried, last_error;
    for (const char* candidate : candidates) {
        handle_ = dlopen(candidate, RTLD_NOW | RTLD_LOCAL);
        if (handle_ != nullptr) {
            name_ = candidate;
            return;
        }
        const char* why = dlerror();
        last_error = why != nullptr ? why : "unknown error";
        tried += std::string(tried.empty() ? "" : ", ") + candidate;
    }
    // Short enough for a loader report: the names, and only the last error (they are alike).
    throw VendorLibraryMissing(std::string(what) + " is not installed: dlopen found none of " + tried + " (last: " + last_error + ")");
}

VendorLibrary::~VendorLibrary() {
    if (handle_ != nullptr) dlclose(handle_);
}

void* VendorLibrary::symbol(const char* symbol) const noexcept { return dlsym(handle_, symbol); }

}  // namespace grey::backend
