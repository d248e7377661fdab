// libFuzzer target: the checkpoint parser. Whatever it accepts must print back to the same bytes.
#include "audit/checkpoint.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace grey::audit;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::string why;
    const auto checkpoint = parse_checkpoint(text, why);
    if (!checkpoint) {
        if (why.empty()) __builtin_trap();
        return 0;
    }
    if (checkpoint->text() != text) __builtin_trap();
    return 0;
}
