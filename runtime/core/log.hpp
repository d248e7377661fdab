// Per-context logging: the host's callback if it gave one, stderr otherwise.
#pragma once

#include "grey.h"

#include <string_view>

namespace grey {

class Logger {
public:
    Logger(grey_log_level level, grey_log_fn callback, void* user) noexcept
        : level_(level), callback_(callback), user_(user) {}

    void set_level(grey_log_level level) noexcept { level_ = level; }
    [[nodiscard]] grey_log_level level() const noexcept { return level_; }
    [[nodiscard]] bool enabled(grey_log_level level) const noexcept { return level >= level_ && level < GREY_LOG_OFF; }

    void log(grey_log_level level, std::string_view message) const noexcept;
    void debug(std::string_view m) const noexcept { log(GREY_LOG_DEBUG, m); }
    void info(std::string_view m) const noexcept { log(GREY_LOG_INFO, m); }
    void warning(std::string_view m) const noexcept { log(GREY_LOG_WARNING, m); }
    void error(std::string_view m) const noexcept { log(GREY_LOG_ERROR, m); }

private:
    grey_log_level level_;
    grey_log_fn callback_;
    void* user_;
};

// Parses "DEBUG" / "info" / "Warning" ...; returns false for anything else.
bool parse_log_level(std::string_view text, grey_log_level& out) noexcept;

}  // namespace grey
