// greyctl apply --plan FILE [--confirm]: makes a plan's changes (the governor's thermal thresholds in the
// configuration file, the model file quantized as planned) after a snapshot of what they replace, and
// records each apply in the audit log; greyctl rollback --list | --to ID puts a snapshot back within
// safety.rollback_window_s. Both honour safety.*: a dry run unless told otherwise, an explicit --confirm
// when consent is required, a snapshot before every change when backups are asked for. Neither ever
// changes a GPU's clocks or power limits.
#include "commands.hpp"
#include "exit_codes.hpp"
#include "snapshots.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>

namespace greyctl {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

struct ApplyOptions {
    std::string plan;
    bool confirm = false;
    std::string model_out;
    std::string state_dir;
    std::string audit_log;
    std::string audit_key;
    bool list = false;
    std::string to;
    bool as_json = false;
};

// The configuration apply edits and whose safety.* it honours: the profile, the --config file when it
// exists, and the environment unless --no-env.
ConfigPtr load_config(const GlobalOptions& global) {
    grey_config* raw = nullptr;
    check(grey_config_create(global.profile.c_str(), &raw));
    ConfigPtr config(raw);
    if (!global.config_path.empty() && fs::exists(global.config_path)) check(grey_config_load_file(config.get(), global.config_path.c_str()));
    if (!global.no_env) check(grey_config_apply_env(config.get()));
    return config;
}

std::string get(const grey_config* config, const char* key) {
    return read_text([&](char* b, size_t n, size_t* len) { return grey_config_get(config, key, b, n, len); });
}

std::string state_directory(const ApplyOptions& o) {
    if (!o.state_dir.empty()) return o.state_dir;
    if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && *xdg != '\0') return std::string(xdg) + "/libgrey";
    if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') return std::string(home) + "/.local/state/libgrey";
    throw ApiError(GREY_ERROR_INVALID_ARGUMENT, "no state directory: give --state-dir");
}

AuditLogPtr open_log(const GlobalOptions& global, const ApplyOptions& o) {
    const auto dir = [&] {
        // The configuration file apply is about to create does not exist yet: the profile's directory then.
        GlobalOptions existing = global;
        if (!existing.config_path.empty() && !fs::exists(existing.config_path)) existing.config_path.clear();
        return proof_directory(existing);
    };
    return open_audit_log(o.audit_log.empty() ? dir() + "/audit.log" : o.audit_log, o.audit_key.empty() ? dir() + "/audit.key.writer" : o.audit_key);
}

void audit(grey_audit_log* log, const char* type, const json& payload) {
    uint64_t sequence = 0;
    check(grey_audit_append(log, type, payload.dump().c_str(), &sequence));
}

// A tensor name as an RE2 pattern that matches it alone.
std::string exact(const std::string& name) { return "^\\Q" + name + "\\E$"; }

int run_apply(const GlobalOptions& global, const ApplyOptions& o) {
    grey_plan* raw = nullptr;
    check(grey_plan_load(o.plan.c_str(), &raw));
    const PlanPtr plan(raw);
    const json p = json::parse(read_text([&](char* b, size_t n, size_t* len) { return grey_plan_to_json(plan.get(), b, n, len); }));
    if (global.config_path.empty())
        throw CommandError(Exit::usage, "apply writes the governor's thresholds into the configuration: give --config FILE (created if missing)");
    const ConfigPtr config = load_config(global);
    const bool dry_run_default = get(config.get(), "safety.dry_run_default") == "true";
    const bool consent_required = get(config.get(), "safety.require_explicit_consent") == "true";
    const bool backup = get(config.get(), "safety.backup_before_enforce") == "true";
    const bool make_changes = o.confirm || (!dry_run_default && !consent_required);

    // The changes, described before any is made.
    json changes = json::array();
    std::vector<std::string> touched;
    double target = 0, max = 0;
    for (const auto& d : p["devices"])
        if (d["type"] == "gpu") {
            target = target == 0 ? d["thermal_target_c"].get<double>() : std::min(target, d["thermal_target_c"].get<double>());
            max = max == 0 ? d["thermal_max_c"].get<double>() : std::min(max, d["thermal_max_c"].get<double>());
        }
    std::string config_text;
    if (target > 0) {
        char t[32], m[32];
        std::snprintf(t, sizeof t, "%g", target);
        std::snprintf(m, sizeof m, "%g", max);
        const std::string old_target = get(config.get(), "thermal.target_temp_c"), old_max = get(config.get(), "thermal.max_temp_c");
        check(grey_config_set(config.get(), "thermal.target_temp_c", t));
        check(grey_config_set(config.get(), "thermal.max_temp_c", m));
        config_text = "# libgrey configuration, thermal thresholds set by greyctl apply --plan " + o.plan + "\n" +
                      read_text([&](char* b, size_t n, size_t* len) { return grey_config_to_yaml(config.get(), b, n, len); });
        changes.push_back({{"file", global.config_path}, {"change", "thermal.target_temp_c " + old_target + " -> " + t + ", thermal.max_temp_c " + old_max + " -> " + m}});
        touched.push_back(global.config_path);
    }
    std::string keep, format;
    size_t quantized = 0;
    for (const auto& t : p["tensors"]) {
        if (t["format"] == "as-stored") keep += exact(t["name"].get<std::string>()) + "\n";
        else format = t["format"].get<std::string>(), ++quantized;
    }
    const std::string model = p["model"]["path"].get<std::string>();
    std::string model_out = o.model_out;
    if (quantized > 0) {
        if (model_out.empty()) {
            const fs::path m(model);
            model_out = (m.parent_path() / (m.stem().string() + "." + format + m.extension().string())).string();
        }
        changes.push_back({{"file", model_out}, {"change", "write " + model + " with " + std::to_string(quantized) + " tensors quantized to " + format +
                                                              " (" + p["weights"]["file_bytes"].dump() + " -> " + p["weights"]["planned_bytes"].dump() + " bytes)"}});
        touched.push_back(model_out);
    }
    // --json: one document at the end, {"dry_run", "changes", "snapshot"}.
    const auto report = [&](const json& snapshot) {
        std::cout << json{{"dry_run", !make_changes}, {"consent_required", consent_required}, {"changes", changes}, {"snapshot", snapshot}}.dump(2)
                  << "\n";
        return 0;
    };
    if (!o.as_json) {
        for (const auto& c : changes)
            std::printf("%s %s: %s\n", make_changes ? "change" : "would change", c["file"].get<std::string>().c_str(), c["change"].get<std::string>().c_str());
        if (changes.empty()) std::printf("nothing to change\n");
    }
    if (!make_changes) {
        if (o.as_json) return report(nullptr);
        std::printf("dry run: nothing changed%s\n", consent_required ? "; pass --confirm to make these changes" : "");
        return 0;
    }
    if (changes.empty()) return o.as_json ? report(nullptr) : 0;

    const AuditLogPtr log = open_log(global, o);  // before any change: no change goes unrecorded
    std::string snapshot_id;
    std::unique_ptr<Snapshot> snapshot;
    if (backup) {
        snapshot = std::make_unique<Snapshot>(take_snapshot(state_directory(o), fs::absolute(o.plan).string(), touched));
        snapshot_id = snapshot->id;
    }
    try {
        if (!config_text.empty()) write_new_text_file(global.config_path, config_text, true);
        if (quantized > 0) {
            grey_model_quant_options options = GREY_MODEL_QUANT_OPTIONS_INIT;
            options.keep_patterns = keep.c_str();
            options.replace = 1;
            grey_model_quant_result* result = nullptr;
            check(grey_model_quantize(model.c_str(), model_out.c_str(), format.c_str(), &options, &result));
            grey_model_quant_result_destroy(result);
        }
    } catch (...) {
        if (snapshot) restore_snapshot(*snapshot);  // all or nothing
        throw;
    }
    uint8_t digest[32];
    check(grey_audit_sha256_file(o.plan.c_str(), digest));
    audit(log.get(), "plan.apply", {{"plan", fs::absolute(o.plan).string()}, {"plan_sha256", hex(digest, sizeof digest)},
                                    {"snapshot", snapshot_id.empty() ? json(nullptr) : json(snapshot_id)}, {"changes", changes}});
    if (o.as_json) return report(snapshot_id.empty() ? json(nullptr) : json(snapshot_id));
    if (snapshot) std::printf("applied; snapshot %s (greyctl rollback --to %s)\n", snapshot_id.c_str(), snapshot_id.c_str());
    else std::printf("applied; no snapshot (safety.backup_before_enforce is false)\n");
    return 0;
}

int run_rollback(const GlobalOptions& global, const ApplyOptions& o) {
    const ConfigPtr config = load_config(global);
    const int64_t window = std::stoll(get(config.get(), "safety.rollback_window_s"));
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    const auto snapshots = list_snapshots(state_directory(o));
    if (o.list) {
        json listed = json::array();
        for (const auto& s : snapshots) {
            char created[32];
            const std::time_t t = static_cast<std::time_t>(s.created);
            std::strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
            if (o.as_json) {
                listed.push_back({{"id", s.id}, {"created", created}, {"age_s", now - s.created}, {"restorable", now - s.created <= window},
                                  {"files", s.files.size()}, {"plan", s.plan}});
                continue;
            }
            std::printf("%s  %s  %llds ago  %s  %zu file(s)  %s\n", s.id.c_str(), created, static_cast<long long>(now - s.created),
                        now - s.created <= window ? "restorable" : "expired", s.files.size(), s.plan.c_str());
        }
        if (o.as_json) std::cout << json{{"snapshots", listed}}.dump(2) << "\n";
        else if (snapshots.empty()) std::printf("no snapshots\n");
        return 0;
    }
    const auto it = std::find_if(snapshots.begin(), snapshots.end(), [&](const Snapshot& s) { return s.id == o.to; });
    if (it == snapshots.end()) throw ApiError(GREY_ERROR_NOT_FOUND, "no snapshot '" + o.to + "' (greyctl rollback --list shows them)");
    if (now - it->created > window)
        throw ApiError(GREY_ERROR_INVALID_ARGUMENT, "snapshot " + o.to + " was taken " + std::to_string(now - it->created) +
                                                        " s ago, beyond safety.rollback_window_s (" + std::to_string(window) + " s); nothing restored");
    const AuditLogPtr log = open_log(global, o);
    restore_snapshot(*it);
    json files = json::array();
    for (const auto& f : it->files) files.push_back({{"file", f.path}, {"restored", f.existed ? "previous contents" : "removed"}});
    audit(log.get(), "plan.rollback", {{"snapshot", it->id}, {"plan", it->plan}, {"files", files}});
    if (o.as_json) std::cout << json{{"restored", it->id}, {"files", files}}.dump(2) << "\n";
    else std::printf("restored snapshot %s\n", it->id.c_str());
    return 0;
}

void add_state_options(CLI::App* cmd, ApplyOptions& o) {
    cmd->add_option("--state-dir", o.state_dir, "Where snapshots are kept (default: $XDG_STATE_HOME/libgrey or ~/.local/state/libgrey)");
    cmd->add_option("--audit-log", o.audit_log, "Audit log (default: <daemon.proof_artifact_dir>/audit.log)");
    cmd->add_option("--audit-key", o.audit_key, "Writer key (default: <daemon.proof_artifact_dir>/audit.key.writer)");
    add_json_flag(*cmd, o.as_json, "Print the outcome as one JSON document");
}

}  // namespace

void add_apply_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
    auto options = std::make_shared<ApplyOptions>();
    auto* apply = app.add_subcommand("apply", "Make a plan's changes (a dry run unless --confirm), after a snapshot");
    apply->add_option("--plan", options->plan, "The plan.yaml to apply")->required();
    apply->add_flag("--confirm", options->confirm, "Make the changes (safety.require_explicit_consent)");
    apply->add_option("--model-out", options->model_out, "Where the quantized model goes (default: beside the model, .FORMAT before the extension)");
    add_state_options(apply, *options);
    apply->callback([&run, &global, options] { run = [&global, options] { return run_apply(global, *options); }; });

    auto* rollback = app.add_subcommand("rollback", "List snapshots, or restore one within safety.rollback_window_s");
    auto* list = rollback->add_flag("--list", options->list, "List the snapshots");
    rollback->add_option("--to", options->to, "The snapshot to restore")->excludes(list);
    add_state_options(rollback, *options);
    rollback->callback([&run, &global, options] {
        if (!options->list && options->to.empty()) throw CLI::ValidationError("rollback", "give --list or --to ID");
        run = [&global, options] { return run_rollback(global, *options); };
    });
}

}  // namespace greyctl
