// greyctl proof list | show ID | verify FILE, and the artifact writer behind every --proof flag.
#include "commands.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace greyctl {
namespace {

using json = nlohmann::ordered_json;

std::string read_small_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

json machine_identity() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    const std::string machine_id = trimmed(read_small_file("/etc/machine-id"));
    return {{"hostname", host}, {"machine_id", machine_id.empty() ? json(nullptr) : json(machine_id)}};
}

int run_list(const std::string& dir) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(dir)) {
        std::printf("no proof artifacts (directory %s does not exist)\n", dir.c_str());
        return 0;
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir))
        if (entry.path().extension() == ".json") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    std::printf("%-16s  %-20s  %s\n", "ID", "CREATED", "COMMAND");
    for (const auto& file : files) {
        const auto artifact = json::parse(read_small_file(file.string()), nullptr, false);
        const std::string created = artifact.is_object() && artifact.contains("created") ? artifact["created"].get<std::string>() : "?";
        std::string command = "?";
        if (artifact.is_object() && artifact.contains("command_line")) {
            command.clear();
            for (const auto& arg : artifact["command_line"]) command += (command.empty() ? "" : " ") + arg.get<std::string>();
        }
        std::printf("%-16s  %-20s  %s\n", file.stem().c_str(), created.c_str(), command.c_str());
    }
    return 0;
}

int run_verify(const std::string& file, const std::string& log, const std::string& key) {
    grey_proof_report report{};
    report.struct_size = sizeof report;
    check(grey_proof_verify(log.c_str(), key.c_str(), file.c_str(), &report));
    if (report.verified != 0) {
        std::printf("verified: %s (sha256 %s) is recorded in %s as record %llu, and the log is intact\n", file.c_str(),
                    hex(report.sha256, 32).c_str(), log.c_str(), static_cast<unsigned long long>(report.record));
        return 0;
    }
    if (report.log.cause != GREY_AUDIT_INTACT)
        std::printf("NOT VERIFIED: the audit log is %s: %s\n", grey_audit_cause_name(report.log.cause), report.log.detail);
    else
        std::printf("NOT VERIFIED: no record in the intact log holds sha256 %s: the artifact was changed or never logged\n",
                    hex(report.sha256, 32).c_str());
    return 1;
}

}  // namespace

std::string proof_directory(const GlobalOptions& global) {
    grey_config* raw = nullptr;
    check(grey_config_create(global.profile.c_str(), &raw));
    ConfigPtr config(raw);
    if (!global.config_path.empty()) check(grey_config_load_file(config.get(), global.config_path.c_str()));
    if (!global.no_env) check(grey_config_apply_env(config.get()));
    return read_text([&](char* b, size_t n, size_t* len) { return grey_config_get(config.get(), "daemon.proof_artifact_dir", b, n, len); });
}

void add_proof_options(CLI::App& command, ProofOptions& options) {
    command.add_flag("--proof", options.enabled, "Write a proof artifact and record its hash in the audit log");
    command.add_option("--audit-log", options.audit_log, "Audit log for --proof (default: <daemon.proof_artifact_dir>/audit.log)");
    command.add_option("--audit-key", options.audit_key, "Writer key for --proof (default: <daemon.proof_artifact_dir>/audit.key.writer)");
}

std::string write_proof_artifact(const GlobalOptions& global, const ProofOptions& options, const std::string& command,
                                 const std::vector<std::string>& input_files, const std::string& devices_json,
                                 const std::string& results_json) {
    const std::string dir = proof_directory(global);
    const std::string log_path = options.audit_log.empty() ? dir + "/audit.log" : options.audit_log;
    const std::string key_path = options.audit_key.empty() ? dir + "/audit.key.writer" : options.audit_key;
    json inputs = json::array();
    for (const auto& file : input_files) {
        uint8_t digest[32];
        check(grey_audit_sha256_file(file.c_str(), digest));
        inputs.push_back({{"path", file}, {"sha256", hex(digest, sizeof digest)}});
    }
    char created[32] = {};
    const std::time_t now = std::time(nullptr);
    std::strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    const json artifact = {{"format", "grey-proof v1"},
                           {"command", command},
                           {"command_line", global.command_line},
                           {"created", created},
                           {"inputs", inputs},
                           {"machine", machine_identity()},
                           {"devices", json::parse(devices_json)},
                           {"libgrey", {{"version", grey_version_string()}, {"revision", grey_build_revision()}}},
                           {"results", json::parse(results_json)}};
    AuditLogPtr log = open_audit_log(log_path, key_path);
    const std::string text = artifact.dump(2) + "\n";
    return read_text([&](char* b, size_t n, size_t* len) { return grey_proof_write(log.get(), dir.c_str(), text.c_str(), b, n, len); });
}

void add_proof_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
    auto* proof = app.add_subcommand("proof", "List, show and verify proof artifacts");
    proof->require_subcommand(1);
    struct Options {
        std::string id, file, log, key, dir;
    };
    auto o = std::make_shared<Options>();

    auto* list = proof->add_subcommand("list", "List the artifacts in the proof directory");
    list->add_option("--dir", o->dir, "Proof directory (default: daemon.proof_artifact_dir)");
    list->callback([&global, &run, o] { run = [&global, o] { return run_list(o->dir.empty() ? proof_directory(global) : o->dir); }; });

    auto* show = proof->add_subcommand("show", "Print one artifact");
    show->add_option("ID", o->id, "Artifact id (as proof list prints it)")->required();
    show->add_option("--dir", o->dir, "Proof directory (default: daemon.proof_artifact_dir)");
    show->callback([&global, &run, o] {
        run = [&global, o] {
            const std::string path = (o->dir.empty() ? proof_directory(global) : o->dir) + "/" + o->id + ".json";
            if (!std::filesystem::exists(path)) {
                std::fprintf(stderr, "greyctl: no artifact %s\n", path.c_str());
                return 1;
            }
            std::cout << read_small_file(path);
            return 0;
        };
    });

    auto* verify = proof->add_subcommand("verify", "Check that an artifact is unchanged and recorded in an intact log");
    verify->add_option("FILE", o->file, "Artifact file")->required();
    verify->add_option("--log", o->log, "Audit log (default: <daemon.proof_artifact_dir>/audit.log)");
    verify->add_option("--key", o->key, "Verifier key")->required();
    verify->callback([&global, &run, o] {
        run = [&global, o] { return run_verify(o->file, o->log.empty() ? proof_directory(global) + "/audit.log" : o->log, o->key); };
    });
}

}  // namespace greyctl
