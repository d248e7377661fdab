#include "plan/yaml_reader.hpp"

#include "core/error.hpp"
#include "core/regular_file.hpp"

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace grey::plan {

YamlReader::YamlReader(const std::string& path, const char* what) : origin_(path) {
    const auto bytes = read_regular_file(path, what, SizeLimit{64u << 20, GREY_ERROR_CONFIG});
    try {
        root_ = YAML::Load(std::string(bytes.begin(), bytes.end()));
    } catch (const YAML::Exception& e) {
        fail(GREY_ERROR_CONFIG, path + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
    }
}

void YamlReader::problem(const YAML::Node& node, const std::string& path, const std::string& text) {
    const int line = node.IsDefined() ? node.Mark().line + 1 : 0;
    problems_.push_back(origin_ + ":" + std::to_string(std::max(line, 1)) + ": " + (path.empty() ? "(document)" : path) + ": " + text);
}

bool YamlReader::check_map(const YAML::Node& map, const std::string& path, std::initializer_list<const char*> allowed) {
    if (!map.IsMap()) {
        problem(map, path, "expected a mapping");
        return false;
    }
    for (const auto& item : map) {
        const std::string key = item.first.Scalar();
        if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }))
            problem(item.first, path.empty() ? key : path + "." + key, "unknown key");
    }
    return true;
}

namespace {
std::string join(const std::string& path, const char* key) { return path.empty() ? std::string(key) : path + "." + key; }
}  // namespace

std::string YamlReader::text(const YAML::Node& map, const std::string& path, const char* key, const char* fallback) {
    const YAML::Node node = map[key];
    if (!node.IsDefined()) {
        if (fallback == nullptr) problem(map, join(path, key), "missing");
        return fallback != nullptr ? fallback : "";
    }
    if (!node.IsScalar()) {
        problem(node, join(path, key), "expected a string");
        return "";
    }
    return node.Scalar();
}

uint64_t YamlReader::unsigned_integer(const YAML::Node& map, const std::string& path, const char* key, const uint64_t* fallback) {
    const YAML::Node node = map[key];
    if (!node.IsDefined()) {
        if (fallback == nullptr) problem(map, join(path, key), "missing");
        return fallback != nullptr ? *fallback : 0;
    }
    const std::string s = node.IsScalar() ? node.Scalar() : "";
    if (s.empty() || s.size() > 20 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        problem(node, join(path, key), "expected a non-negative integer, got '" + s + "'");
        return 0;
    }
    errno = 0;
    const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
    if (errno == ERANGE) problem(node, join(path, key), "'" + s + "' is too large");
    return v;
}

double YamlReader::number(const YAML::Node& map, const std::string& path, const char* key, double low, double high, const double* fallback) {
    const YAML::Node node = map[key];
    if (!node.IsDefined()) {
        if (fallback == nullptr) problem(map, join(path, key), "missing");
        return fallback != nullptr ? *fallback : 0;
    }
    const std::string s = node.IsScalar() ? node.Scalar() : "";
    char* end = nullptr;
    const double v = s.empty() ? NAN : std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v)) {
        problem(node, join(path, key), "expected a number, got '" + s + "'");
        return 0;
    }
    if (v < low || v > high) {
        char range[96];
        std::snprintf(range, sizeof range, "%g is out of range [%g, %g]", v, low, high);
        problem(node, join(path, key), range);
    }
    return v;
}

void YamlReader::finish() const {
    if (problems_.empty()) return;
    std::string message = problems_.size() == 1 ? problems_.front() : std::to_string(problems_.size()) + " problems:";
    if (problems_.size() > 1)
        for (const auto& p : problems_) message += "\n  " + p;
    fail(GREY_ERROR_CONFIG, message);
}

}  // namespace grey::plan
