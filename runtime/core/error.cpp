#include "core/error.hpp"

#include <cstring>

namespace grey {
namespace detail {
namespace {
// The one piece of global mutable state the design allows (docs/architecture.md): the per-thread error message.
thread_local std::string t_last_error;
}  // namespace

void set_last_error(std::string message) noexcept {
    try {
        t_last_error = std::move(message);
    } catch (...) {
        t_last_error.clear();
    }
}
void clear_last_error() noexcept { t_last_error.clear(); }
const char* last_error() noexcept { return t_last_error.c_str(); }
}  // namespace detail

void copy_out_text(const std::string& text, char* buffer, size_t buffer_size, size_t* out_length) {
    require_non_null(out_length, "out_length");
    if (buffer == nullptr && buffer_size != 0) fail(GREY_ERROR_INVALID_ARGUMENT, "buffer is NULL but buffer_size is not 0");
    if (buffer_size < text.size() + 1) {
        *out_length = text.size();
        fail(GREY_ERROR_BUFFER_TOO_SMALL, "buffer holds " + std::to_string(buffer_size) + " bytes; " +
                                              std::to_string(text.size() + 1) + " are needed");
    }
    std::memcpy(buffer, text.c_str(), text.size() + 1);
    *out_length = text.size();
}

}  // namespace grey
