// The fields of one control request (one JSON object from the control socket), read strictly: a field
// the command does not take, a field of the wrong type, a number out of range, or a string holding a
// NUL byte (which C would cut short) or longer than its limit is refused with std::invalid_argument
// naming the field, before the command does anything. Nothing falls back silently to a default.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

namespace greyctl::daemon {

class RequestFields {
public:
    // Refuses any member of `request` other than "command" and `fields`.
    RequestFields(const nlohmann::ordered_json& request, std::initializer_list<const char*> fields);

    // A string of 1..max_bytes bytes without NUL; `fallback` when absent (absent and no fallback: refused).
    [[nodiscard]] std::string text(const char* field, size_t max_bytes, std::optional<std::string> fallback = std::nullopt) const;
    // A non-negative integer up to `max`.
    [[nodiscard]] uint64_t count(const char* field, uint64_t max, std::optional<uint64_t> fallback = std::nullopt) const;
    // Any JSON number (the library judges its range).
    [[nodiscard]] double number(const char* field) const;

private:
    [[nodiscard]] const nlohmann::ordered_json* find(const char* field, bool has_fallback) const;

    const nlohmann::ordered_json& request_;
    std::string command_;
};

}  // namespace greyctl::daemon
