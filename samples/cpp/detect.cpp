// Lists every device libgrey sees: name, memory and compute units, through the C API from C++ with
// owning handles and exceptions.
//
//   c++ -std=c++20 -Iinclude samples/cpp/detect.cpp -Lbuild/default/lib -Wl,-rpath,$PWD/build/default/lib -lgrey
#include <grey.h>

#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

namespace {

struct ContextDeleter {
    void operator()(grey_context* c) const noexcept { grey_context_destroy(c); }
};
using Context = std::unique_ptr<grey_context, ContextDeleter>;

void check(grey_status status, const char* what) {
    if (status != GREY_OK) throw std::runtime_error(std::string(what) + " failed: " + grey_last_error());
}

std::string or_dash(const grey_field_u64& field) {
    return field.state == GREY_FIELD_OK ? std::to_string(field.value) : "-";
}

}  // namespace

int main() try {
    grey_context* raw = nullptr;
    check(grey_context_create(nullptr, &raw), "grey_context_create");
    Context context(raw);

    uint32_t count = 0;
    check(grey_device_count(context.get(), &count), "grey_device_count");
    std::cout << "libgrey " << grey_version_string() << ": " << count << " device(s)\n";
    for (uint32_t i = 0; i < count; ++i) {
        grey_device_spec spec{};
        spec.struct_size = sizeof spec;
        check(grey_device_spec_get(context.get(), i, &spec), "grey_device_spec_get");
        std::cout << "device " << i << ": " << (spec.name.state == GREY_FIELD_OK ? spec.name.value : "-") << ", memory "
                  << or_dash(spec.memory_total_bytes) << " bytes, " << or_dash(spec.compute_units) << " compute units\n";
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "detect: " << e.what() << "\n";
    return 1;
}
