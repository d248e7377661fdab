// A vendor library opened at run time from a list of candidate sonames (they drift between releases:
// libamdhip64.so.5/.6/.7), tried in order, the last normally the unversioned name. Plugins never link
// their vendor libraries, so one build runs on any machine.
#pragma once

#include <span>
#include <stdexcept>
#include <string>

namespace grey::backend {

// None of the candidates could be opened. The message names them all and the last dlopen error.
class VendorLibraryMissing : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

class VendorLibrary {
public:
    // `what` names the library in the message: "the HIP runtime is not installed: ...".
    VendorLibrary(std::span<const char* const> candidates, const char* what);
    ~VendorLibrary();
    VendorLibrary(const VendorLibrary&) = delete;
    VendorLibrary& operator=(const VendorLibrary&) = delete;

    // The candidate that was opened.
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    // dlsym, or NULL.
    [[nodiscard]] void* symbol(const char* symbol) const noexcept;

private:
    void* handle_ = nullptr;
    std::string name_;
};

}  // namespace grey::backend
