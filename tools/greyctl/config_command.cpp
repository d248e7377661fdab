// greyctl config show | validate | init
#include "commands.hpp"

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

}  // namespace

void add_config_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
    auto* config = app.add_subcommand("config", "Show or validate configuration");
    config->require_subcommand(1);

    auto* show = config->add_subcommand("show", "Print the effective configuration as YAML");
    auto show_profile = std::make_shared<std::string>();
    show->add_option("--profile", *show_profile, "Profile to show (overrides the global --profile)")
        ->check(CLI::IsMember({"conservative", "balanced", "aggressive"}));
    show->callback([&global, &run, show_profile] {
        run = [&global, show_profile] {
            grey_config* raw = nullptr;
            check(grey_config_create(show_profile->empty() ? global.profile.c_str() : show_profile->c_str(), &raw));
            ConfigPtr cfg(raw);
            if (!global.config_path.empty()) check(grey_config_load_file(cfg.get(), global.config_path.c_str()));
            if (!global.no_env) check(grey_config_apply_env(cfg.get()));
            std::cout << read_text([&](char* b, size_t n, size_t* len) { return grey_config_to_yaml(cfg.get(), b, n, len); });
            return 0;
        };
    });

    auto* validate = config->add_subcommand("validate", "Check a YAML configuration file; exit 0 if valid, 1 if not");
    auto file = std::make_shared<std::string>();
    validate->add_option("FILE", *file, "The file to check")->required();
    validate->callback([&global, &run, file] {
        run = [&global, file] {
            grey_config* raw = nullptr;
            check(grey_config_create(global.profile.c_str(), &raw));
            ConfigPtr cfg(raw);
            if (grey_config_load_file(cfg.get(), file->c_str()) != GREY_OK) {
                std::cerr << "invalid: " << grey_last_error() << "\n";
                return 1;
            }
            std::cout << *file << ": valid\n";
            for (const std::string& key : inert_keys_set(cfg.get(), global.profile))
                std::cerr << "note: " << key << " is accepted, not yet acted on: its value changes nothing\n";
            return 0;
        };
    });

    auto* init = config->add_subcommand("init", "Write a profile's configuration to a file to start from");
    struct InitOptions {
        std::string profile;
        std::string output = "grey.yaml";
        bool force = false;
    };
    auto init_options = std::make_shared<InitOptions>();
    init->add_option("--profile", init_options->profile, "Profile to write (default: the global --profile)")
        ->check(CLI::IsMember({"conservative", "balanced", "aggressive"}));
    init->add_option("-o,--output", init_options->output, "File to write, or - for standard output")->capture_default_str();
    init->add_flag("--force", init_options->force, "Replace the file if it exists");
    init->callback([&global, &run, init_options] {
        run = [&global, init_options] {
            const std::string profile = init_options->profile.empty() ? global.profile : init_options->profile;
            const std::string text = profile_file_text(profile);
            if (init_options->output == "-") {
                std::cout << text;
                return 0;
            }
            write_new_text_file(init_options->output, text, init_options->force);
            std::cout << init_options->output << ": the " << profile << " profile\n";
            return 0;
        };
    });
}

}  // namespace greyctl
