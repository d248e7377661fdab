#include "config/config.hpp"

#include "core/error.hpp"
#include "core/regular_file.hpp"
#include "core/text.hpp"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <set>
#include <sstream>
#include <vector>

namespace grey::config {

Config::Config(Profile profile) : profile_(profile) {
    for (const auto& key : schema()) values_.emplace(std::string(key.path), key.defaults[static_cast<int>(profile)]);
}

const Value& Config::get(std::string_view key) const {
    auto it = values_.find(key);
    if (it == values_.end()) fail(GREY_ERROR_NOT_FOUND, "unknown configuration key '" + std::string(key) + "'");
    return it->second;
}

std::string Config::cross_check() const {
    const double target = get_real("thermal.target_temp_c");
    const double max = get_real("thermal.max_temp_c");
    if (target >= max)
        return "thermal.target_temp_c (" + format_value(target) + ") must be below thermal.max_temp_c (" +
               format_value(max) + ")";
    return {};
}

void Config::set(std::string_view key_path, std::string_view text) {
    const KeySpec* key = find_key(key_path);
    if (key == nullptr) fail(GREY_ERROR_CONFIG, std::string(key_path) + ": unknown key");
    Value value;
    std::string problem;
    if (!parse_value(*key, text, value, problem)) fail(GREY_ERROR_CONFIG, std::string(key_path) + ": " + problem);
    Config candidate = *this;
    candidate.values_[std::string(key_path)] = std::move(value);
    if (auto cross = candidate.cross_check(); !cross.empty()) fail(GREY_ERROR_CONFIG, cross);
    *this = std::move(candidate);
}

namespace {

struct Walker {
    std::string_view origin;
    std::map<std::string, Value, std::less<>>& values;
    std::vector<std::string> problems;
    std::set<std::string> seen;

    void report(const YAML::Node& node, const std::string& path, const std::string& problem) {
        std::ostringstream out;
        out << origin << ':' << node.Mark().line + 1 << ": " << (path.empty() ? "(document)" : path) << ": " << problem;
        problems.push_back(out.str());
    }

    void walk_map(const YAML::Node& map, const std::string& prefix) {
        for (const auto& entry : map) {
            const YAML::Node& key_node = entry.first;
            if (!key_node.IsScalar()) {
                report(key_node, prefix, "keys must be plain words");
                continue;
            }
            if (std::string nul = nul_byte_problem(key_node.Scalar(), "a key"); !nul.empty()) {
                report(key_node, prefix, nul);
                continue;
            }
            const std::string path = prefix.empty() ? key_node.Scalar() : prefix + "." + key_node.Scalar();
            const YAML::Node& value = entry.second;
            if (!seen.insert(path).second) {
                report(key_node, path, "duplicate key");
                continue;
            }
            if (is_section(path)) {
                if (value.IsMap()) walk_map(value, path);
                else if (!value.IsNull()) report(value, path, "expected a section (a mapping of keys)");
                continue;
            }
            const KeySpec* key = find_key(path);
            if (key == nullptr) {
                report(key_node, path, "unknown key");
                continue;
            }
            leaf(*key, value, path);
        }
    }

    void leaf(const KeySpec& key, const YAML::Node& node, const std::string& path) {
        if (!node.IsScalar()) {
            report(node, path, std::string("expected ") + std::string(type_name(key.type)) + ", got a " +
                                   (node.IsMap() ? "mapping" : node.IsSequence() ? "list" : "null value"));
            return;
        }
        // A quoted scalar is a string in YAML: "75" is not a number, "true" is not a boolean.
        const bool quoted = node.Tag() == "!";
        const bool wants_text = key.type == ValueType::Text || key.type == ValueType::Choice;
        if (quoted && !wants_text) {
            report(node, path, std::string("expected ") + std::string(type_name(key.type)) + ", got the string \"" +
                                   node.Scalar() + "\"");
            return;
        }
        Value value;
        std::string problem;
        if (!parse_value(key, node.Scalar(), value, problem)) {
            report(node, path, problem);
            return;
        }
        values[path] = std::move(value);
    }
};

}  // namespace

void Config::load_yaml(std::string_view yaml, std::string_view origin) {
    YAML::Node root;
    try {
        root = YAML::Load(std::string(yaml));
    } catch (const YAML::Exception& e) {
        fail(GREY_ERROR_CONFIG, std::string(origin) + ":" + std::to_string(e.mark.line + 1) + ": YAML syntax error: " + e.msg);
    }
    if (root.IsNull()) return;  // an empty file changes nothing
    Config candidate = *this;
    Walker walker{origin, candidate.values_, {}};
    if (!root.IsMap()) walker.report(root, "", "the top level must be a mapping of sections");
    else walker.walk_map(root, "");
    if (walker.problems.empty())
        if (auto cross = candidate.cross_check(); !cross.empty()) walker.problems.push_back(std::string(origin) + ": " + cross);
    if (!walker.problems.empty()) {
        std::string message = walker.problems.size() == 1 ? walker.problems.front()
                                                           : std::to_string(walker.problems.size()) + " problems:";
        if (walker.problems.size() > 1)
            for (const auto& p : walker.problems) message += "\n  " + p;
        fail(GREY_ERROR_CONFIG, message);
    }
    *this = std::move(candidate);
}

void Config::load_file(const std::string& path) {
    const std::vector<uint8_t> text = read_regular_file(path, "config file", {GREY_CONFIG_FILE_MAX, GREY_ERROR_CONFIG});
    load_yaml({reinterpret_cast<const char*>(text.data()), text.size()}, path);
}

void Config::apply_env(const EnvLookup& getenv_fn) {
    Config candidate = *this;
    if (const char* path = getenv_fn("GREY_CONFIG_PATH"); path != nullptr && *path != '\0') candidate.load_file(path);
    static constexpr std::pair<const char*, const char*> overrides[] = {
        {"GREY_LOG_LEVEL", "daemon.log_level"},
        {"GREY_DRY_RUN", "safety.dry_run_default"},
        {"GREY_GPU_INDEX", "detection.gpu_index"},
        {"GREY_DAEMON_PORT", "daemon.port"},
    };
    for (const auto& [variable, key] : overrides) {
        const char* text = getenv_fn(variable);
        if (text == nullptr) continue;
        std::string value = text;
        if (std::string_view(variable) == "GREY_LOG_LEVEL")
            for (auto& c : value) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (std::string_view(variable) == "GREY_DRY_RUN") {
            if (value == "1") value = "true";
            else if (value == "0") value = "false";
        }
        try {
            candidate.set(key, value);
        } catch (const Error& e) {
            fail(GREY_ERROR_CONFIG, std::string("environment ") + variable + "=" + text + ": " + e.what());
        }
    }
    *this = std::move(candidate);
}

std::string Config::to_yaml() const {
    YAML::Emitter out;
    out << YAML::BeginMap;
    std::vector<std::string> open;  // the sections currently open, outermost first
    for (const auto& key : schema()) {
        std::vector<std::string> parts;
        std::string_view rest = key.path;
        for (size_t dot; (dot = rest.find('.')) != std::string_view::npos; rest.remove_prefix(dot + 1))
            parts.emplace_back(rest.substr(0, dot));
        size_t common = 0;
        while (common < open.size() && common < parts.size() && open[common] == parts[common]) ++common;
        for (size_t i = open.size(); i > common; --i) out << YAML::EndMap;
        open.resize(common);
        for (size_t i = common; i < parts.size(); ++i) {
            out << YAML::Key << parts[i] << YAML::Value << YAML::BeginMap;
            open.push_back(parts[i]);
        }
        out << YAML::Key << std::string(rest) << YAML::Value;
        const Value& v = get(key.path);
        if (std::holds_alternative<std::string>(v)) out << YAML::DoubleQuoted << std::get<std::string>(v);
        else out << format_value(v);
        if (key.acted_on_by.empty()) out << YAML::Comment(std::string(kNotYetActedOn));
    }
    for (size_t i = 0; i < open.size(); ++i) out << YAML::EndMap;
    out << YAML::EndMap;
    return std::string(out.c_str()) + "\n";
}

}  // namespace grey::config
