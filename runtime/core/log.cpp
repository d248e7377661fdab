#include "core/log.hpp"

#include <cctype>
#include <cstdio>
#include <string>

namespace grey {

void Logger::log(grey_log_level level, std::string_view message) const noexcept {
    if (!enabled(level)) return;
    try {
        const std::string text(message);
        if (callback_ != nullptr) {
            callback_(level, text.c_str(), user_);
        } else {
            std::fprintf(stderr, "libgrey %s: %s\n", grey_log_level_name(level), text.c_str());
        }
    } catch (...) {
        // Logging must never fail the operation that logs.
    }
}

bool parse_log_level(std::string_view text, grey_log_level& out) noexcept {
    std::string upper;
    for (char c : text) upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    for (int level = GREY_LOG_DEBUG; level <= GREY_LOG_OFF; ++level) {
        if (upper == grey_log_level_name(static_cast<grey_log_level>(level))) {
            out = static_cast<grey_log_level>(level);
            return true;
        }
    }
    if (upper == "WARN") {
        out = GREY_LOG_WARNING;
        return true;
    }
    return false;
}

}  // namespace grey
