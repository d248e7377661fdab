#pragma once

#include "grey.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace greyctl {

// Options every command shares.
struct GlobalOptions {
    std::string config_path;
    std::string profile = "balanced";
    std::string backend_dir;
    std::string log_level = "WARNING";
    bool no_env = false;
    std::vector<std::string> command_line;  // argv, recorded in proof artifacts
};

// The --json flag every command that prints results has: `description` says what it prints.
inline void add_json_flag(CLI::App& command, bool& flag, const std::string& description) { command.add_flag("--json", flag, description); }

// grey_audit_verify's report in the keys the bindings' to_dict()/ToMap() use (null where there is none).
nlohmann::ordered_json audit_report_json(const grey_audit_report& report);

// Each command registers its subcommand and sets `run` to what executes it; run returns the exit code.
using Runner = std::function<int()>;
void add_detect_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_config_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_quantize_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_dequantize_command(CLI::App& app, Runner& run);
void add_audit_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_proof_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_daemon_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_validate_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_plan_command(CLI::App& app, const GlobalOptions& global, Runner& run);
// `greyctl apply` and `greyctl rollback`.
void add_apply_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_simulate_ram_command(CLI::App& app, const GlobalOptions& global, Runner& run);
void add_kv_bench_command(CLI::App& app, const GlobalOptions& global, Runner& run);
// `greyctl help [COMMAND...]` and the hidden `greyctl man` (the manual page the build installs).
void add_help_command(CLI::App& app, Runner& run);

// The candidate nearest to `name` by edit distance, or "" when none is near enough to suggest.
std::string nearest_name(const std::string& name, const std::vector<std::string>& candidates);

// The exit codes, for the footer of `greyctl --help`.
std::string exit_status_text();

// When `args` (argv without the program) name a command or subcommand greyctl does not have: the message
// that says so and suggests the nearest one. Call after every command is added.
std::optional<std::string> unknown_command(const CLI::App& app, const std::vector<std::string>& args);

}  // namespace greyctl

#include "grey_api.hpp"

namespace greyctl {
// Whether a backend named in open_context's `backends` must load for the context to be created.
enum class BackendRequirement { named_must_load, report_only };

// Creates a context from the global options; `backends` as in grey_context_options (may be empty).
// Unless `requirement` says report_only, a named backend that does not load fails the call with the
// library's reason; report_only gives a context whose loader report says what happened instead.
ContextPtr open_context(const GlobalOptions& global, const std::string& backends,
                        BackendRequirement requirement = BackendRequirement::named_must_load);

// Writes `text` to `path` through a temporary file in the same directory and a rename, so a reader
// never sees half a file; an existing file is replaced only when `force` is set.
void write_new_text_file(const std::string& path, const std::string& text, bool force);
// A context and the first device of `backend` ("host": device 0, loading no plugin it was not asked for).
struct BackendDevice {
    ContextPtr context;
    uint32_t device = 0;
};
BackendDevice open_backend_device(const GlobalOptions& global, const std::string& backend);

// Where proof artifacts go: the configuration's daemon.proof_artifact_dir.
std::string proof_directory(const GlobalOptions& global);

// Options of a measuring command's --proof.
struct ProofOptions {
    bool enabled = false;
    std::string audit_log;  // default: <proof dir>/audit.log
    std::string audit_key;  // default: <proof dir>/audit.key.writer
};
void add_proof_options(CLI::App& command, ProofOptions& options);
// Writes a proof artifact (command line, input hashes, machine and devices, libgrey version and
// revision, `results`) into the proof directory and records its hash in the audit log; returns its id.
std::string write_proof_artifact(const GlobalOptions& global, const ProofOptions& options, const std::string& command,
                                 const std::vector<std::string>& input_files, const std::string& devices_json,
                                 const std::string& results_json);
}  // namespace greyctl
