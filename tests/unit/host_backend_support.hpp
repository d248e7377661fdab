// The host backend as white-box tests of the runtime use it: its vtable as its entry point fills it, for a
// test to replace slots of, and a grey::Backend started over such a vtable with quiet host services.
#pragma once

#include "backends/host/host_backend.hpp"
#include "core/backend.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <memory>

namespace grey::test {

inline grey_backend_vtable host_vtable() {
    grey_backend_vtable vt{};
    vt.struct_size = sizeof vt;
    EXPECT_EQ(grey::host::host_backend_entry(GREY_BACKEND_ABI_VERSION, &vt), GREY_OK);
    return vt;
}

// A backend named "host" of one device over `vt` (host_vtable() with slots replaced).
inline std::unique_ptr<grey::Backend> host_backend_over(const grey_backend_vtable& vt) {
    static grey_backend_host host = [] {
        grey_backend_host h{};
        h.struct_size = offsetof(grey_backend_host, parallel_for);
        h.abi_version = GREY_BACKEND_ABI_VERSION;
        h.log = [](void*, grey_log_level, const char*) {};
        h.set_error = [](void*, const char*) {};
        return h;
    }();
    void* state = nullptr;
    EXPECT_EQ(vt.init(&host, &state), GREY_OK);
    return std::make_unique<grey::Backend>("host", "", nullptr, vt, state, 1);
}

}  // namespace grey::test
