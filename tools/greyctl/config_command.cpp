// greyctl config show | validate | init
#include "commands.hpp"
#include "exit_codes.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <unistd.h>
#include <vector>

namespace greyctl {
namespace {

// The effective configuration of a profile as a file a user can keep and edit: a header naming the
// profile, then grey_config_to_yaml's text, which loads back to the same values.
std::string profile_file_text(const std::string& profile) {
    grey_config* raw = nullptr;
    check(grey_config_create(profile.c_str(), &raw));
    ConfigPtr cfg(raw);
    return "# libgrey configuration: the " + profile + " profile, as written by `greyctl config init --profile " + profile +
           "`.\n# Every key is described in libgrey's docs/config.md. Use it with `greyctl --config FILE`, the\n"
           "# context option config_path, or grey_config_load_file().\n" +
           read_text([&](char* b, size_t n, size_t* len) { return grey_config_to_yaml(cfg.get(), b, n, len); });
}

std::string value_of(const grey_config* config, const char* key) {
    return read_text([&](char* b, size_t n, size_t* len) { return grey_config_get(config, key, b, n, len); });
}

// The keys `config` sets to something other than `profile`'s value that nothing acts on yet: a file that
// asks for them is valid, but gets nothing from them, and its author should know.
std::vector<std::string> inert_keys_set(const grey_config* config, const std::string& profile) {
    grey_config* raw = nullptr;
    check(grey_config_create(profile.c_str(), &raw));
    ConfigPtr defaults(raw);
    std::vector<std::string> keys;
    for (uint32_t i = 0; i < grey_config_key_count(); ++i) {
        const char* key = grey_config_key_name(i);
        if (grey_config_key_acted_on_by(i) == nullptr && value_of(config, key) != value_of(defaults.get(), key)) keys.emplace_back(key);
    }
    return keys;
}

// Every key with its textual value: the keys and values of the bindings' Config.to_dict().
nlohmann::ordered_json config_json(const grey_config* config) {
    nlohmann::ordered_json out = nlohmann::ordered_json::object();
    for (uint32_t i = 0; i < grey_config_key_count(); ++i) out[grey_config_key_name(i)] = value_of(config, grey_config_key_name(i));
    return out;
}

}  // namespace

void add_config_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
    auto* config = app.add_subcommand("config", "Show or validate configuration");
    config->require_subcommand(1);

    auto* show = config->add_subcommand("show", "Print the effective configuration as YAML");
    struct ShowOptions {
        std::string profile;
        bool as_json = false;
    };
    auto show_options = std::make_shared<ShowOptions>();
    show->add_option("--profile", show_options->profile, "Profile to show (overrides the global --profile)")
        ->check(CLI::IsMember({"conservative", "balanced", "aggressive"}));
    add_json_flag(*show, show_options->as_json, "Print {\"KEY\": \"VALUE\", ...}: every key with its value as text");
    show->callback([&global, &run, show_options] {
        run = [&global, show_options] {
            grey_config* raw = nullptr;
            check(grey_config_create(show_options->profile.empty() ? global.profile.c_str() : show_options->profile.c_str(), &raw));
            ConfigPtr cfg(raw);
            if (!global.config_path.empty()) check(grey_config_load_file(cfg.get(), global.config_path.c_str()));
            if (!global.no_env) check(grey_config_apply_env(cfg.get()));
            if (show_options->as_json) {
                std::cout << config_json(cfg.get()).dump(2) << "\n";
                return 0;
            }
            std::cout << read_text([&](char* b, size_t n, size_t* len) { return grey_config_to_yaml(cfg.get(), b, n, len); });
            return 0;
        };
    });

    auto* validate = config->add_subcommand("validate", "Check a YAML configuration file; exit 0 if valid, 1 if not");
    struct ValidateOptions {
        std::string file;
        bool as_json = false;
    };
    auto v = std::make_shared<ValidateOptions>();
    validate->add_option("FILE", v->file, "The file to check")->required();
    add_json_flag(*validate, v->as_json, "Print {\"file\", \"valid\", \"problems\", \"inert_keys\"}");
    validate->callback([&global, &run, v] {
        run = [&global, v] {
            grey_config* raw = nullptr;
            check(grey_config_create(global.profile.c_str(), &raw));
            ConfigPtr cfg(raw);
            const grey_status status = grey_config_load_file(cfg.get(), v->file.c_str());
            // GREY_ERROR_CONFIG is the verdict (the file's problems); a file that cannot be read is not.
            if (status != GREY_OK && status != GREY_ERROR_CONFIG) check(status);
            const std::string problems = status == GREY_OK ? "" : grey_last_error();
            const std::vector<std::string> inert = status == GREY_OK ? inert_keys_set(cfg.get(), global.profile) : std::vector<std::string>{};
            if (v->as_json) {
                std::cout << nlohmann::ordered_json{{"file", v->file}, {"valid", status == GREY_OK}, {"problems", problems}, {"inert_keys", inert}}.dump(2)
                          << "\n";
                return code_of(status == GREY_OK ? Exit::ok : Exit::check_failed);
            }
            if (status != GREY_OK) {
                std::cerr << "invalid: " << problems << "\n";
                return code_of(Exit::check_failed);
            }
            std::cout << v->file << ": valid\n";
            for (const std::string& key : inert)
                std::cerr << "note: " << key << " is accepted, not yet acted on: its value changes nothing\n";
            return 0;
        };
    });

    auto* init = config->add_subcommand("init", "Write a profile's configuration to a file to start from");
    struct InitOptions {
        std::string profile;
        std::string output = "grey.yaml";
        bool force = false;
        bool as_json = false;
    };
    auto init_options = std::make_shared<InitOptions>();
    init->add_option("--profile", init_options->profile, "Profile to write (default: the global --profile)")
        ->check(CLI::IsMember({"conservative", "balanced", "aggressive"}));
    init->add_option("-o,--output", init_options->output, "File to write, or - for standard output")->capture_default_str();
    init->add_flag("--force", init_options->force, "Replace the file if it exists");
    add_json_flag(*init, init_options->as_json, "Print {\"file\", \"profile\"} (with -o -: {\"profile\", \"yaml\"})");
    init->callback([&global, &run, init_options] {
        run = [&global, init_options] {
            const std::string profile = init_options->profile.empty() ? global.profile : init_options->profile;
            const std::string text = profile_file_text(profile);
            if (init_options->output == "-") {
                if (init_options->as_json) std::cout << nlohmann::ordered_json{{"profile", profile}, {"yaml", text}}.dump(2) << "\n";
                else std::cout << text;
                return 0;
            }
            write_new_text_file(init_options->output, text, init_options->force);
            if (init_options->as_json) std::cout << nlohmann::ordered_json{{"file", init_options->output}, {"profile", profile}}.dump(2) << "\n";
            else std::cout << init_options->output << ": the " << profile << " profile\n";
            return 0;
        };
    });
}

}  // namespace greyctl
