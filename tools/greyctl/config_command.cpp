// greyctl config show | validate
#include "commands.hpp"

#include <iostream>

namespace greyctl {

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
            return 0;
        };
    });
}

}  // namespace greyctl
