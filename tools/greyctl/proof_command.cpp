// greyctl proof list | show ID | verify FILE, and the artifact writer behind every --proof flag.
#include "commands.hpp"
#include "exit_codes.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace greyctl {
namespace {

using json = nlohmann::ordered_json;

// Reads a regular file of at most `limit` bytes; nullopt (and `why`) for anything else. Opened with
// O_NONBLOCK, so that a FIFO put in its place cannot block the command, and checked before any read.
std::optional<std::string> read_regular_file(const std::string& path, size_t limit, std::string& why) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        why = std::strerror(errno);
        return std::nullopt;
    }
    std::string text;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) why = "not a regular file";
    else if (static_cast<uint64_t>(st.st_size) > limit) why = "larger than " + std::to_string(limit) + " bytes";
    char chunk[65536];
    for (ssize_t n = 0; why.empty() && (n = ::read(fd, chunk, sizeof chunk)) != 0;) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) why = std::strerror(errno);
        else if (text.size() + static_cast<size_t>(n) > limit) why = "larger than " + std::to_string(limit) + " bytes";
        else text.append(chunk, static_cast<size_t>(n));
    }
    ::close(fd);
    if (!why.empty()) return std::nullopt;
    return text;
}

constexpr size_t max_artifact_size = 16u << 20;
// As deep as libgrey lets an artifact nest when it records one (grey_proof_write).
constexpr int max_artifact_depth = 64;

// An artifact's JSON, or a discarded value when it is not a document libgrey would have recorded:
// malformed, nested deeper than max_artifact_depth, or with a key repeated in one object.
json parse_artifact(const std::string& text) {
    std::vector<std::set<std::string>> keys;  // one set per open container
    const json::parser_callback_t strict = [&keys](int depth, json::parse_event_t event, json& parsed) {
        switch (event) {
            case json::parse_event_t::object_start:
            case json::parse_event_t::array_start:
                if (depth >= max_artifact_depth) throw std::runtime_error("nested too deep");
                keys.emplace_back();
                break;
            case json::parse_event_t::object_end:
            case json::parse_event_t::array_end: keys.pop_back(); break;
            case json::parse_event_t::key:
                if (!keys.back().insert(parsed.get<std::string>()).second) throw std::runtime_error("repeated key");
                break;
            case json::parse_event_t::value: break;
        }
        return true;
    };
    try {
        return json::parse(text, strict);
    } catch (const std::exception&) {
        return json(json::value_t::discarded);
    }
}

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

json machine_identity() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::string why;
    const std::string machine_id = trimmed(read_regular_file("/etc/machine-id", 4096, why).value_or(""));
    return {{"hostname", host}, {"machine_id", machine_id.empty() ? json(nullptr) : json(machine_id)}};
}

int run_list(const std::string& dir, bool as_json) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(dir)) {
        if (as_json) std::cout << json{{"directory", dir}, {"artifacts", json::array()}}.dump(2) << "\n";
        else std::printf("no proof artifacts (directory %s does not exist)\n", dir.c_str());
        return 0;
    }
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir))
        if (entry.path().extension() == ".json") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    if (!as_json) std::printf("%-16s  %-20s  %s\n", "ID", "CREATED", "COMMAND");
    json artifacts = json::array();
    for (const auto& file : files) {
        std::string why;
        const auto artifact = parse_artifact(read_regular_file(file.string(), max_artifact_size, why).value_or(""));
        // Whatever the file holds, the listing goes on: fields of the wrong type show as "?".
        const bool object = artifact.is_object();
        const std::string created = object && artifact.contains("created") && artifact["created"].is_string() ? artifact["created"].get<std::string>() : "?";
        std::string command = "?";
        json command_line = nullptr;  // JSON: null when unreadable, as "?" in the table
        if (object && artifact.contains("command_line") && artifact["command_line"].is_array()) {
            command.clear();
            command_line = json::array();
            for (const auto& arg : artifact["command_line"]) {
                command += (command.empty() ? "" : " ") + (arg.is_string() ? arg.get<std::string>() : "?");
                command_line.push_back(arg.is_string() ? json(arg) : json(nullptr));
            }
        }
        if (as_json)
            artifacts.push_back({{"id", file.stem().string()}, {"created", created == "?" ? json(nullptr) : json(created)}, {"command_line", command_line}});
        else
            std::printf("%-16s  %-20s  %s\n", file.stem().c_str(), created.c_str(), command.c_str());
    }
    if (as_json) std::cout << json{{"directory", dir}, {"artifacts", artifacts}}.dump(2) << "\n";
    return 0;
}

int run_verify(const std::string& file, const std::string& log, const std::string& key, bool as_json) {
    grey_proof_report report{};
    report.struct_size = sizeof report;
    grey_audit_report log_report{};
    log_report.struct_size = sizeof log_report;
    check(grey_proof_verify(log.c_str(), key.c_str(), file.c_str(), &report, &log_report));
    if (as_json) {
        // The keys of the bindings' ProofReport.to_dict().
        std::cout << json{{"verified", report.verified != 0},
                          {"record", report.verified != 0 ? json(report.record) : json(nullptr)},
                          {"sha256", hex(report.sha256, sizeof report.sha256)},
                          {"log", audit_report_json(log_report)}}
                         .dump(2)
                  << "\n";
        return code_of(report.verified != 0 ? Exit::ok : Exit::check_failed);
    }
    if (report.verified != 0) {
        std::printf("verified: %s (sha256 %s) is recorded in %s as record %llu, and the log is intact\n", file.c_str(),
                    hex(report.sha256, 32).c_str(), log.c_str(), static_cast<unsigned long long>(report.record));
        return 0;
    }
    if (log_report.cause != GREY_AUDIT_INTACT)
        std::printf("NOT VERIFIED: the audit log is %s: %s\n", grey_audit_cause_name(log_report.cause), log_report.detail);
    else
        std::printf("NOT VERIFIED: no record in the intact log holds sha256 %s: the artifact was changed or never logged\n",
                    hex(report.sha256, 32).c_str());
    return code_of(Exit::check_failed);
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
        bool as_json = false;
    };
    auto o = std::make_shared<Options>();

    auto* list = proof->add_subcommand("list", "List the artifacts in the proof directory");
    list->add_option("--dir", o->dir, "Proof directory (default: daemon.proof_artifact_dir)");
    add_json_flag(*list, o->as_json, "Print {\"directory\", \"artifacts\": [{\"id\", \"created\", \"command_line\"}...]}");
    list->callback([&global, &run, o] { run = [&global, o] { return run_list(o->dir.empty() ? proof_directory(global) : o->dir, o->as_json); }; });

    auto* show = proof->add_subcommand("show", "Print one artifact");
    show->add_option("ID", o->id, "Artifact id (as proof list prints it)")->required();
    show->add_option("--dir", o->dir, "Proof directory (default: daemon.proof_artifact_dir)");
    add_json_flag(*show, o->as_json, "Print {\"id\", \"path\", \"artifact\"} (the artifact parsed)");
    show->callback([&global, &run, o] {
        run = [&global, o] {
            const std::string path = (o->dir.empty() ? proof_directory(global) : o->dir) + "/" + o->id + ".json";
            if (!std::filesystem::exists(path)) throw CommandError(Exit::bad_input, "no artifact " + path);
            std::string why;
            const auto text = read_regular_file(path, max_artifact_size, why);
            if (!text) throw CommandError(Exit::bad_input, "cannot show " + path + ": " + why);
            if (!o->as_json) {
                std::cout << *text;
                return 0;
            }
            const json artifact = parse_artifact(*text);
            if (artifact.is_discarded()) throw CommandError(Exit::bad_input, "cannot show " + path + " as JSON: it is not a JSON document libgrey would have recorded");
            std::cout << json{{"id", o->id}, {"path", path}, {"artifact", artifact}}.dump(2) << "\n";
            return 0;
        };
    });

    auto* verify = proof->add_subcommand("verify", "Check that an artifact is unchanged and recorded in an intact log");
    verify->add_option("FILE", o->file, "Artifact file")->required();
    verify->add_option("--log", o->log, "Audit log (default: <daemon.proof_artifact_dir>/audit.log)");
    verify->add_option("--key", o->key, "Verifier key")->required();
    add_json_flag(*verify, o->as_json, "Print the verdict as JSON (the keys of the bindings' proof report)");
    verify->callback([&global, &run, o] {
        run = [&global, o] { return run_verify(o->file, o->log.empty() ? proof_directory(global) + "/audit.log" : o->log, o->key, o->as_json); };
    });
}

}  // namespace greyctl
