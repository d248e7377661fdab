// libFuzzer target: the appender's JSON check must agree with nlohmann::json::accept, which it replaced,
// on every input a C string can carry (no NUL byte).
#include "audit/json_check.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (std::memchr(data, 0, size) != nullptr) return 0;
    if (grey::audit::valid_json(text) != nlohmann::json::accept(text)) __builtin_trap();
    return 0;
}
