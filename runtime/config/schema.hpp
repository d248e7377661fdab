// The configuration schema: every key of the product's YAML, its type, its range and its value in
// each profile. docs/config.md documents the same table; tests check the two agree.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace grey::config {

enum class ValueType { Boolean, Integer, Real, Text, Choice };

using Value = std::variant<bool, int64_t, double, std::string>;

enum class Profile { Conservative = 0, Balanced = 1, Aggressive = 2 };

struct KeySpec {
    std::string_view path;          // "memory.compression.algorithm"
    ValueType type;
    double min = 0;                 // Integer and Real: inclusive range
    double max = 0;
    std::vector<std::string_view> choices;  // Choice: the accepted spellings
    Value defaults[3];              // by Profile
    std::string_view help;
    // What reads the key and acts on it ("the governor"); empty while libgrey accepts the key but
    // nothing acts on it yet, which config show, config init and docs/config.md say.
    std::string_view acted_on_by = {};
};

std::span<const KeySpec> schema();
// The words every surface uses for a key nothing acts on yet.
inline constexpr std::string_view kNotYetActedOn = "accepted, not yet acted on";
const KeySpec* find_key(std::string_view path);
bool is_section(std::string_view path);  // "memory", "memory.compression", ...

bool parse_profile(std::string_view name, Profile& out);
std::string_view profile_name(Profile profile);

std::string_view type_name(ValueType type);
// Parses the textual form of a value for `key`; on failure returns false and explains in `problem`.
bool parse_value(const KeySpec& key, std::string_view text, Value& out, std::string& problem);
std::string format_value(const Value& value);

}  // namespace grey::config
