// A validated configuration: profile defaults, overlaid by YAML files, the environment and explicit sets.
#pragma once

#include "config/schema.hpp"

#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace grey::config {

class Config {
public:
    explicit Config(Profile profile = Profile::Balanced);

    // Overlays YAML. All problems are collected; if there is any, throws GREY_ERROR_CONFIG listing
    // each as "origin:line: key: problem" and leaves the config unchanged.
    void load_yaml(std::string_view yaml, std::string_view origin);
    void load_file(const std::string& path);
    // GREY_CONFIG_PATH, GREY_LOG_LEVEL, GREY_DRY_RUN, GREY_GPU_INDEX, GREY_DAEMON_PORT. `getenv` is
    // injectable so tests need not touch the process environment.
    using EnvLookup = std::function<const char*(const char*)>;
    void apply_env(const EnvLookup& getenv_fn);

    void set(std::string_view key, std::string_view text);
    [[nodiscard]] const Value& get(std::string_view key) const;
    [[nodiscard]] std::string get_text(std::string_view key) const { return format_value(get(key)); }

    [[nodiscard]] bool get_bool(std::string_view key) const { return std::get<bool>(get(key)); }
    [[nodiscard]] int64_t get_int(std::string_view key) const { return std::get<int64_t>(get(key)); }
    [[nodiscard]] double get_real(std::string_view key) const { return std::get<double>(get(key)); }
    [[nodiscard]] const std::string& get_string(std::string_view key) const { return std::get<std::string>(get(key)); }

    [[nodiscard]] Profile profile() const noexcept { return profile_; }
    [[nodiscard]] std::string to_yaml() const;

private:
    // Rules that involve more than one key; returns a problem or "".
    [[nodiscard]] std::string cross_check() const;

    Profile profile_;
    std::map<std::string, Value, std::less<>> values_;
};

}  // namespace grey::config
