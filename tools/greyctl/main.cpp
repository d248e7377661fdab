// greyctl: the command-line front end of libgrey.
#include "commands.hpp"
#include "exit_codes.hpp"
#include "grey_api.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <iostream>

namespace {

// Whether the command line asks for JSON: then an error is also printed as JSON on standard output, so a
// script reading it always gets a document.
bool json_requested(int argc, char** argv) {
    for (int i = 1; i < argc && std::strcmp(argv[i], "--") != 0; ++i)
        if (std::strcmp(argv[i], "--json") == 0) return true;
    return false;
}

// Every failure leaves through here: the message on standard error, and with --json
// {"error": {"class", "exit_code", "status", "message"}} on standard output.
int fail(greyctl::Exit code, const std::string& message, const char* status, bool as_json, const std::string& who = "greyctl") {
    std::fprintf(stderr, "%s: %s%s%s\n", who.c_str(), status != nullptr ? status : "", status != nullptr ? ": " : "", message.c_str());
    if (as_json) {
        const nlohmann::ordered_json error = {{"class", greyctl::exit_class(code).name},
                                              {"exit_code", greyctl::code_of(code)},
                                              {"status", status != nullptr ? nlohmann::ordered_json(status) : nlohmann::ordered_json(nullptr)},
                                              {"message", message}};
        std::cout << nlohmann::ordered_json{{"error", error}}.dump(2) << std::endl;
    }
    return greyctl::code_of(code);
}

}  // namespace

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
    greyctl::add_kv_bench_command(app, global, run);
    greyctl::add_help_command(app, run);
    app.footer(greyctl::exit_status_text());  // after the commands: on greyctl --help only, not on each command's

    const bool as_json = json_requested(argc, argv);
    if (const auto message = greyctl::unknown_command(app, {argv + 1, argv + argc})) {
        // The message names where the command was looked for ("greyctl audit: unknown command ...").
        return fail(greyctl::Exit::usage, message->substr(message->find(": ") + 2), nullptr, as_json, message->substr(0, message->find(": ")));
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
        if (!as_json) {
            app.exit(e);
            return greyctl::code_of(greyctl::Exit::usage);
        }
        return fail(greyctl::Exit::usage, e.what(), nullptr, true);
    }
    try {
        return run ? run() : greyctl::code_of(greyctl::Exit::usage);
    } catch (const greyctl::ApiError& e) {
        return fail(greyctl::exit_for(e.status), e.what(), grey_status_string(e.status), as_json);
    } catch (const greyctl::CommandError& e) {
        return fail(e.exit, e.what(), nullptr, as_json);
    } catch (const std::exception& e) {
        return fail(greyctl::Exit::failed, e.what(), nullptr, as_json);
    }
}
