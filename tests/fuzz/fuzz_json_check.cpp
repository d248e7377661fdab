// libFuzzer target: the audit log's JSON check must agree with the nlohmann-based reference (what
// nlohmann::json::accept accepts, nested at most 64 deep, no key repeated in an object) on every input
// a C string can carry (no NUL byte).
#include "audit/json_check.hpp"
#include "json_reference.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (std::memchr(data, 0, size) != nullptr) return 0;
    const grey::audit::JsonCheck check = grey::audit::check_json(text);
    if ((check.verdict == grey::audit::JsonVerdict::Valid) != grey::audit::test::StrictJsonReference::accepts(text)) __builtin_trap();
    if (check.offset > size) __builtin_trap();
    return 0;
}
