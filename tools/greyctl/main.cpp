// greyctl: the command-line front end of libgrey.
#include "commands.hpp"
#include "grey_api.hpp"

#include <cstdio>
#include <iostream>

int main(int argc, char** argv) {
    CLI::App app{"greyctl: detect GPUs, quantize models, govern work and prove measurements with libgrey"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("greyctl ") + grey_version_string() + " (libgrey " + grey_version_string() +
                                          ", revision " + grey_build_revision() + ")");

    greyctl::GlobalOptions global;
    global.command_line.assign(argv, argv + argc);
    app.add_option("--config", global.config_path, "YAML configuration file overlaid on the profile");
    app.add_option("--profile", global.profile, "Configuration profile")
        ->check(CLI::IsMember({"conservative", "balanced", "aggressive"}));
    app.add_option("--backend-dir", global.backend_dir, "Directory searched first for backend plugins");
    app.add_option("--log-level", global.log_level, "Least severe libgrey message printed")
        ->check(CLI::IsMember({"DEBUG", "INFO", "WARNING", "ERROR", "OFF"}, CLI::ignore_case));
    app.add_flag("--no-env", global.no_env, "Ignore GREY_* environment variables");

    greyctl::Runner run;
    greyctl::add_detect_command(app, global, run);
    greyctl::add_config_command(app, global, run);
    greyctl::add_quantize_command(app, global, run);
    greyctl::add_dequantize_command(app, run);
    greyctl::add_audit_command(app, global, run);
    greyctl::add_proof_command(app, global, run);
    greyctl::add_daemon_command(app, global, run);
    greyctl::add_validate_command(app, global, run);
    greyctl::add_plan_command(app, global, run);
    greyctl::add_apply_command(app, global, run);
    greyctl::add_simulate_ram_command(app, global, run);
    greyctl::add_help_command(app, run);

    if (const auto message = greyctl::unknown_command(app, {argv + 1, argv + argc})) {
        std::fprintf(stderr, "%s\n", message->c_str());
        return 2;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;  // usage errors exit 2, as the docs promise
    }
    try {
        return run ? run() : 2;
    } catch (const greyctl::ApiError& e) {
        std::fprintf(stderr, "greyctl: %s: %s\n", grey_status_string(e.status), e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "greyctl: %s\n", e.what());
        return 1;
    }
}
