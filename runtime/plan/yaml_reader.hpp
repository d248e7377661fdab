// Reading a YAML document that has a fixed schema (devices files, plan.yaml) with errors that name the
// file and line: every problem is collected, and the call fails once with all of them.
#pragma once

#include "grey.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace grey::plan {

class YamlReader {
public:
    // Parses `path` (at most 64 MiB): a syntax error fails at once with GREY_ERROR_CONFIG, "FILE:LINE: ...".
    YamlReader(const std::string& path, const char* what);

    const YAML::Node& root() const noexcept { return root_; }
    // Records "FILE:LINE: PATH: problem".
    void problem(const YAML::Node& node, const std::string& path, const std::string& text);
    // Refuses keys of `map` not in `allowed`; false (and a problem) when `map` is not a mapping.
    bool check_map(const YAML::Node& map, const std::string& path, std::initializer_list<const char*> allowed);
    // A required (or, with `fallback`, optional) value of `map[key]`; a problem when absent or mistyped.
    std::string text(const YAML::Node& map, const std::string& path, const char* key, const char* fallback = nullptr);
    uint64_t unsigned_integer(const YAML::Node& map, const std::string& path, const char* key, const uint64_t* fallback = nullptr);
    double number(const YAML::Node& map, const std::string& path, const char* key, double low, double high, const double* fallback = nullptr);
    // Fails with GREY_ERROR_CONFIG listing every problem recorded, if any.
    void finish() const;
    bool ok() const noexcept { return problems_.empty(); }

private:
    std::string origin_;
    YAML::Node root_;
    std::vector<std::string> problems_;
};

}  // namespace grey::plan
