#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace greyctl {

// Options every command shares.
struct GlobalOptions {
    std::string config_path;
    std::string profile = "balanced";
    std::string backend_dir;
    std::string log_level = "WARNING";
    bool no_env = false;
};

// Each command registers its subcommand and sets `run` to what executes it; run returns the exit code.
using Runner = std::function<int()>;
void add_detect_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_config_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_quantize_command(CLI::App& app, const GlobalOptions& global, Runner& run);

}  // namespace greyctl

#include "grey_api.hpp"

namespace greyctl {
// Creates a context from the global options; `backends` as in grey_context_options (may be empty).
ContextPtr open_context(const GlobalOptions& global, const std::string& backends);
}  // namespace greyctl
