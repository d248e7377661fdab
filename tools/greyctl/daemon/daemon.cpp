#include "daemon.hpp"

#include "control_socket.hpp"
#include "http_server.hpp"
#include "metrics.hpp"
#include "request_fields.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace greyctl::daemon {
namespace {

using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

std::string timestamp() {
    char text[32] = {};
    const std::time_t now = std::time(nullptr);
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    return text;
}

std::string config_text(const grey_config* config, const char* key) {
    return read_text([&](char* b, size_t n, size_t* len) { return grey_config_get(config, key, b, n, len); });
}

// Tenants are created by name on first use over the control socket; this bounds what clients can make
// the daemon hold (and the size of /status and /metrics).
constexpr size_t kMaxTenants = 256;

// What one control connection holds: tickets admitted through it, released when it goes away.
struct ClientSession final : Session {
    std::map<uint64_t, grey_tenant*> tickets;
    ~ClientSession() override {
        // A ticket may already be gone (the daemon is stopping and dropped its tenants); nothing to undo then.
        for (const auto& [ticket, tenant] : tickets)
            if (grey_govern_release(tenant, ticket, 0) != GREY_OK) continue;
    }
};

class Daemon {
public:
    Daemon(const GlobalOptions& global, const DaemonOptions& options, const RunPaths& paths) : global_(global), options_(options), paths_(paths) {}

    void start();
    void serve_until_signalled();
    void shutdown();

private:
    void log(const std::string& level, const std::string& message);
    void audit(const std::string& type, const json& payload);
    json status();
    json device_json(uint32_t index);
    void collect_loop();
    void health_check();
    json handle(const json& request, Session& session);
    json emergency_stop(const std::string& reason, bool restored);
    void restore_power_limits_left_by_a_dead_daemon();
    json power_limits_held();
    json clear_stop();
    json reload();
    grey_tenant* tenant(const std::string& name, uint32_t priority);

    GlobalOptions global_;
    DaemonOptions options_;
    RunPaths paths_;
    ContextPtr context_;
    GovernorPtr governor_;
    AuditLogPtr audit_;
    std::string audit_problem_;
    std::string proof_dir_;
    int health_interval_s_ = 30;
    std::string bind_address_;
    int port_ = 0;
    Clock::time_point started_ = Clock::now();

    std::mutex mutex_;  // tenants, telemetry cache, health, stop record, log
    std::map<std::string, TenantPtr> tenants_;
    std::vector<json> telemetry_;  // per device, refreshed by the collector
    json health_ = {{"ok", true}, {"checks", 0}, {"last_check", nullptr}, {"problems", json::array()}};
    json stop_ = {{"active", false}, {"reason", ""}, {"since", nullptr}, {"count", 0}};

    std::unique_ptr<HttpServer> http_;
    std::unique_ptr<ControlServer> control_;
    std::atomic<bool> exit_{false};
    std::atomic<bool> reload_{false};
    std::thread collector_;
    uint64_t last_steps_ = UINT64_MAX;  // the collector thread's own
};

void Daemon::log(const std::string& level, const std::string& message) {
    std::lock_guard lock(mutex_);
    std::fprintf(stderr, "%s greyd %s: %s\n", timestamp().c_str(), level.c_str(), message.c_str());
    std::fflush(stderr);
}

void Daemon::audit(const std::string& type, const json& payload) {
    if (!audit_) return;
    if (grey_audit_append(audit_.get(), type.c_str(), payload.dump().c_str(), nullptr) != GREY_OK)
        log("ERROR", "audit log: cannot record " + type + ": " + grey_last_error());
}

void Daemon::start() {
    context_ = open_context(global_, "");
    const grey_config* config = grey_context_config(context_.get());
    port_ = options_.port != 0 ? options_.port : std::stoi(config_text(config, "daemon.port"));
    health_interval_s_ = std::stoi(config_text(config, "daemon.health_check_interval_s"));
    proof_dir_ = config_text(config, "daemon.proof_artifact_dir");
    bind_address_ = options_.bind;

    grey_governor_options g = GREY_GOVERNOR_OPTIONS_INIT;
    g.sample_period_ms = options_.sample_period_ms;
    g.power_limit_mw = options_.power_limit_mw;

    if (!options_.no_audit) {
        const std::string log_path = options_.audit_log.empty() ? proof_dir_ + "/audit.log" : options_.audit_log;
        const std::string key_path = options_.audit_key.empty() ? proof_dir_ + "/audit.key.writer" : options_.audit_key;
        audit_ = open_audit_log(log_path, key_path);  // throws: a daemon that should audit and cannot does not start
    }

    uint32_t devices = 0;
    check(grey_device_count(context_.get(), &devices));
    telemetry_.assign(devices, json::object());

    // Limits a previous greyd set and could not restore (it was killed) are put back before anything else.
    restore_power_limits_left_by_a_dead_daemon();
    grey_governor* governor = nullptr;
    check(grey_governor_create(context_.get(), &g, &governor));
    governor_.reset(governor);
    if (const json held = power_limits_held(); !held.empty()) {
        // Written at once, so that a greyd killed from here on has its limits put back at its next start.
        std::ofstream(paths_.dir + "/power-limits.json") << held.dump() << "\n";
        audit("greyd.power_limit", {{"held", held}});
        log("WARNING", "holding power limits at the operator's request (--power-limit-w): " + held.dump());
    }

    // An emergency stop outlives the daemon: it holds until someone clears it.
    if (std::ifstream marker(paths_.dir + "/emergency-stop"); marker) {
        std::string reason((std::istreambuf_iterator<char>(marker)), std::istreambuf_iterator<char>());
        emergency_stop(reason.empty() ? "restored from a previous run" : reason, true);
    }

    const sockaddr_storage address = listen_address(bind_address_, static_cast<uint16_t>(port_));
    if (!is_loopback(address))
        log("WARNING", "serving the read-only pages on " + bind_address_ + ", not on loopback: whoever reaches it reads telemetry, tenant names and the audit head (docs/security.md)");
    // Nothing but these pages: control is never offered over HTTP (docs/security.md, "Daemon").
    http_ = std::make_unique<HttpServer>(std::map<std::string, PageHandler>{
        {"/healthz",
         [this] {
             std::lock_guard lock(mutex_);
             const bool ok = health_["ok"].get<bool>();
             return HttpReply{ok ? 200u : 503u, "text/plain", ok ? "ok\n" : "unhealthy: " + health_["problems"].dump() + "\n"};
         }},
        {"/status", [this] { return HttpReply{200, "application/json", status().dump(2) + "\n"}; }},
        {"/metrics", [this] { return HttpReply{200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(status())}; }},
    });
    try {
        http_->start(address);
    } catch (const std::exception& e) {
        throw std::runtime_error("cannot listen on " + bind_address_ + ":" + std::to_string(port_) + ": " + e.what());
    }

    control_ = std::make_unique<ControlServer>(
        paths_.socket, [this](const json& r, Session& s) { return handle(r, s); }, [] { return std::make_unique<ClientSession>(); });
    control_->start();
    collector_ = std::thread([this] { collect_loop(); });
    audit("greyd.start", {{"pid", getpid()}, {"http", bind_address_ + ":" + std::to_string(port_)}, {"version", grey_version_string()}});
    log("INFO", "serving http://" + bind_address_ + ":" + std::to_string(port_) + " (healthz, status, metrics); control socket " + paths_.socket);
}

json Daemon::device_json(uint32_t index) {
    grey_device_spec spec{};
    spec.struct_size = sizeof spec;
    json d = {{"index", index}};
    json memory_total = nullptr;
    if (grey_device_spec_get(context_.get(), index, &spec) == GREY_OK) {
        d["backend"] = spec.backend;
        d["name"] = spec.name.state == GREY_FIELD_OK ? json(spec.name.value) : json(nullptr);
        if (spec.memory_total_bytes.state == GREY_FIELD_OK) memory_total = spec.memory_total_bytes.value;
    } else {
        d["backend"] = "";
        d["name"] = nullptr;
    }
    {
        std::lock_guard lock(mutex_);
        d["telemetry"] = telemetry_[index];
    }
    grey_govern_device_state s{};
    s.struct_size = sizeof s;
    if (grey_governor_device_state_get(governor_.get(), index, &s) == GREY_OK) {
        d["governor"] = {{"mode", grey_govern_mode_name(s.mode)},
                         {"temperature_known", s.temperature_known != 0},
                         {"temperature_c", s.temperature_known ? json(s.temperature_c) : json(nullptr)},
                         {"slope_c_per_s", s.temperature_known ? json(s.slope_c_per_s) : json(nullptr)},
                         {"predicted_c", s.temperature_known ? json(s.predicted_c) : json(nullptr)},
                         {"duty", s.duty},
                         {"batch_scale", s.batch_scale},
                         {"max_level", s.max_level == UINT32_MAX ? json("all") : json(s.max_level)},
                         {"waiting", s.waiting},
                         {"running", s.running},
                         {"admitted_count", s.admitted_count},
                         {"admitted_cost_ns", s.admitted_cost_ns},
                         {"paced_ns", s.paced_ns},
                         {"hot_ns", s.hot_ns},
                         {"unknown_ns", s.unknown_ns},
                         {"stopped_ns", s.stopped_ns},
                         {"mode_changes", s.mode_changes},
                         {"yield_requests", s.yield_requests},
                         {"power_limit_held_mw", s.power_limit_held_mw != 0 ? json(s.power_limit_held_mw) : json(nullptr)},
                         {"power_limit_restore_mw", s.power_limit_held_mw != 0 ? json(s.power_limit_restore_mw) : json(nullptr)}};
    }
    // Memory as the device measures it (every process's use). greyd's own context allocates nothing, so
    // its pool statistics would be zeros by construction and are not shown. The effective memory
    // multiplier (logical / physical bytes, of the memory tiers) is not measured anywhere yet: without
    // sealed, deduplicated or compressed buffers there is nothing to measure, so it is null, never 1.
    d["memory"] = {{"used_bytes", d["telemetry"].value("memory_used_bytes", json(nullptr))},
                   {"total_bytes", memory_total},
                   {"multiplier", nullptr}};
    return d;
}

json Daemon::status() {
    grey_governor_state g{};
    g.struct_size = sizeof g;
    check(grey_governor_state_get(governor_.get(), &g));
    json devices = json::array();
    for (uint32_t i = 0; i < g.device_count; ++i) devices.push_back(device_json(i));
    json tenants = json::array();
    uint32_t count = 0;
    check(grey_governor_tenant_count(governor_.get(), &count));
    for (uint32_t i = 0; i < count; ++i) {
        grey_tenant_stats t{};
        t.struct_size = sizeof t;
        if (grey_governor_tenant_stats_get(governor_.get(), i, &t) != GREY_OK) continue;  // removed meanwhile
        tenants.push_back({{"name", t.name},          {"priority", t.priority},         {"weight", t.weight},
                           {"admitted_count", t.admitted_count}, {"admitted_cost_ns", t.admitted_cost_ns},
                           {"actual_cost_ns", t.actual_cost_ns}, {"waited_total_ns", t.waited_total_ns},
                           {"wait_max_ns", t.wait_max_ns},       {"timeouts", t.timeouts},           {"refused_stopped", t.refused_stopped},
                           {"yield_requests", t.yield_requests}, {"waiting", t.waiting},             {"running", t.running}});
    }
    json audit = {{"enabled", audit_ != nullptr}};
    if (audit_) {
        grey_audit_log_info info{};
        info.struct_size = sizeof info;
        if (grey_audit_log_info_get(audit_.get(), &info) == GREY_OK) {
            audit["records"] = info.records;
            audit["epoch"] = info.epoch;
            audit["head"] = hex(info.head_hash, sizeof info.head_hash);
        }
    } else {
        audit["reason"] = options_.no_audit ? "started with --no-audit" : audit_problem_;
    }
    const double uptime = std::chrono::duration<double>(Clock::now() - started_).count();
    json doc = {{"daemon",
                 {{"pid", getpid()},
                  {"version", grey_version_string()},
                  {"revision", grey_build_revision()},
                  {"uptime_s", uptime},
                  {"http", bind_address_ + ":" + std::to_string(port_)},
                  {"run_dir", paths_.dir},
                  {"control_refused", control_ ? control_->refused() : 0}}},
                {"governor",
                 {{"steps", g.steps},
                  {"thermal_enabled", g.thermal_enabled != 0},
                  {"target_temp_c", g.target_temp_c},
                  {"max_temp_c", g.max_temp_c},
                  {"strategy", g.proactive ? "proactive" : "reactive"},
                  {"priority_levels", g.priority_levels},
                  {"fairness_enabled", g.fairness_enabled != 0},
                  {"preemption_allowed", g.preemption_allowed != 0}}},
                {"devices", devices},
                {"tenants", tenants},
                {"audit", audit}};
    std::lock_guard lock(mutex_);
    doc["emergency_stop"] = stop_;
    doc["health"] = health_;
    return doc;
}

void Daemon::collect_loop() {
    auto next_health = Clock::now();
    while (!exit_.load()) {
        for (uint32_t i = 0; i < telemetry_.size(); ++i) {
            grey_device_telemetry t{};
            t.struct_size = sizeof t;
            json reading = json::object();
            if (grey_device_telemetry_get(context_.get(), i, &t) == GREY_OK) {
                reading["timestamp_ns"] = t.timestamp_ns;
                for (uint32_t f = 0; f < GREY_FIELD_COUNT; ++f) {
                    grey_field_desc desc{};
                    desc.struct_size = sizeof desc;
                    if (grey_field_describe(static_cast<grey_field>(f), &desc) != GREY_OK || desc.group != GREY_FIELD_GROUP_TELEMETRY) continue;
                    const auto* base = reinterpret_cast<const unsigned char*>(&t) + desc.offset;
                    if (desc.kind == GREY_FIELD_KIND_F64) {
                        const auto* v = reinterpret_cast<const grey_field_f64*>(base);
                        reading[desc.key] = v->state == GREY_FIELD_OK ? json(v->value) : json(nullptr);
                    } else if (desc.kind == GREY_FIELD_KIND_U64) {
                        const auto* v = reinterpret_cast<const grey_field_u64*>(base);
                        reading[desc.key] = v->state == GREY_FIELD_OK ? json(v->value) : json(nullptr);
                    }
                }
                if (t.throttle_reasons.state == GREY_FIELD_OK) {
                    json reasons = json::array();
                    for (uint32_t bit = 0; bit < 31; ++bit)
                        if ((t.throttle_reasons.value >> bit) & 1u)
                            if (const char* name = grey_throttle_reason_name(1u << bit)) reasons.push_back(name);
                    reading["throttle_reasons"] = reasons;
                }
            }
            std::lock_guard lock(mutex_);
            telemetry_[i] = reading;
        }
        if (Clock::now() >= next_health) {
            health_check();
            next_health = Clock::now() + std::chrono::seconds(health_interval_s_);
        }
        if (reload_.exchange(false)) (void)reload();
        for (int i = 0; i < 10 && !exit_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

// Every device answers a telemetry query, the governor is stepping, and the audit log accepts records.
void Daemon::health_check() {
    json problems = json::array();
    for (uint32_t i = 0; i < telemetry_.size(); ++i) {
        grey_device_telemetry t{};
        t.struct_size = sizeof t;
        if (grey_device_telemetry_get(context_.get(), i, &t) != GREY_OK)
            problems.push_back("device " + std::to_string(i) + ": telemetry failed: " + grey_last_error());
    }
    grey_governor_state g{};
    g.struct_size = sizeof g;
    if (grey_governor_state_get(governor_.get(), &g) != GREY_OK) problems.push_back(std::string("governor: ") + grey_last_error());
    else if (last_steps_ != UINT64_MAX && g.steps == last_steps_) problems.push_back("governor: no control step since the last check");
    last_steps_ = g.steps;
    if (audit_ && grey_audit_flush(audit_.get()) != GREY_OK) problems.push_back(std::string("audit log: ") + grey_last_error());
    std::lock_guard lock(mutex_);
    health_["ok"] = problems.empty();
    health_["checks"] = health_["checks"].get<uint64_t>() + 1;
    health_["last_check"] = timestamp();
    health_["problems"] = problems;
    if (!problems.empty()) std::fprintf(stderr, "%s greyd WARNING: health check: %s\n", timestamp().c_str(), problems.dump().c_str());
}

json Daemon::emergency_stop(const std::string& reason, bool restored) {
    const json held = power_limits_held();
    // The governor stops every gate, then restores the power limits it set; a failed restore leaves the
    // stop in force and is reported here, never hidden.
    std::string restore_problem;
    if (grey_governor_emergency_stop(governor_.get(), reason.c_str()) != GREY_OK) {
        restore_problem = grey_last_error();
        grey_governor_state state{};
        state.struct_size = sizeof state;
        check(grey_governor_state_get(governor_.get(), &state));
        if (state.stopped == 0) throw std::runtime_error("emergency stop failed: " + restore_problem);
    }
    {
        std::lock_guard lock(mutex_);
        stop_["active"] = true;
        stop_["reason"] = reason;
        stop_["since"] = timestamp();
        stop_["count"] = stop_["count"].get<uint64_t>() + 1;
    }
    std::ofstream(paths_.dir + "/emergency-stop") << reason;
    // What greyd had changed on the devices: the power limits it held (--power-limit-w), now restored.
    // (greyctl apply does not exist yet; its recorded changes are to be undone here too.)
    json reverted = json::array();
    for (const json& h : held)
        reverted.push_back({{"device", h["device"]}, {"power_limit_mw", h["restore_mw"]}, {"ok", restore_problem.empty()}});
    if (restore_problem.empty()) std::remove((paths_.dir + "/power-limits.json").c_str());
    json record = {{"reason", reason}, {"restored_at_start", restored}, {"reverted", reverted}};
    if (!restore_problem.empty()) record["revert_error"] = restore_problem;
    audit("greyd.emergency_stop", record);
    log("WARNING", "EMERGENCY STOP: no work is admitted on any device (" + reason + ")" +
                       (reverted.empty() ? "" : "; power limits restored: " + reverted.dump()) +
                       (restore_problem.empty() ? "" : "; RESTORING FAILED: " + restore_problem));
    json answer = {{"ok", true}, {"reverted", reverted}};
    if (!restore_problem.empty()) answer["revert_error"] = restore_problem;
    return answer;
}

// The limits the governor holds now: [{device, held_mw, restore_mw}], empty without --power-limit-w.
json Daemon::power_limits_held() {
    json held = json::array();
    for (uint32_t i = 0; i < telemetry_.size(); ++i) {
        grey_govern_device_state s{};
        s.struct_size = sizeof s;
        if (governor_ && grey_governor_device_state_get(governor_.get(), i, &s) == GREY_OK && s.power_limit_held_mw != 0)
            held.push_back({{"device", i}, {"held_mw", s.power_limit_held_mw}, {"restore_mw", s.power_limit_restore_mw}});
    }
    return held;
}

void Daemon::restore_power_limits_left_by_a_dead_daemon() {
    const std::string path = paths_.dir + "/power-limits.json";
    std::ifstream in(path);
    if (!in) return;
    const json left = json::parse(in, nullptr, false);
    json restored = json::array();
    std::string problems;
    if (left.is_array()) {
        for (const json& h : left) {
            if (!h.is_object() || !h.contains("device") || !h["device"].is_number_unsigned() || !h.contains("restore_mw") ||
                !h["restore_mw"].is_number_unsigned())
                continue;
            const auto device = h["device"].get<uint32_t>();
            const auto limit = h["restore_mw"].get<uint64_t>();
            if (grey_device_power_limit_set(context_.get(), device, limit, nullptr) == GREY_OK)
                restored.push_back({{"device", device}, {"power_limit_mw", limit}});
            else
                problems += "device " + std::to_string(device) + ": " + grey_last_error() + "; ";
        }
    } else {
        problems = path + " is not a JSON array";
    }
    if (!problems.empty())
        throw std::runtime_error("a previous greyd died holding power limits, and restoring them failed: " + problems +
                                 "(restore them by hand, then remove " + path + ")");
    std::remove(path.c_str());
    audit("greyd.power_limit_restored", {{"restored", restored}, {"reason", "a previous greyd exited without restoring them"}});
    log("WARNING", "restored the power limits a previous greyd left: " + restored.dump());
}

json Daemon::clear_stop() {
    check(grey_governor_resume(governor_.get()));
    {
        std::lock_guard lock(mutex_);
        stop_["active"] = false;
        stop_["reason"] = "";
        stop_["since"] = nullptr;
    }
    std::remove((paths_.dir + "/emergency-stop").c_str());
    audit("greyd.emergency_clear", json::object());
    log("WARNING", "emergency stop cleared: admitting work again");
    return {{"ok", true}};
}

json Daemon::reload() {
    grey_config* raw = nullptr;
    check(grey_config_create(global_.profile.c_str(), &raw));
    ConfigPtr config(raw);
    if (!global_.config_path.empty() && grey_config_load_file(config.get(), global_.config_path.c_str()) != GREY_OK) {
        const std::string why = grey_last_error();
        log("ERROR", "reload refused, the configuration in force is kept: " + why);
        return {{"ok", false}, {"error", why}};
    }
    if (!global_.no_env) check(grey_config_apply_env(config.get()));
    check(grey_governor_configure(governor_.get(), config.get()));
    audit("greyd.reload", {{"config", global_.config_path}});
    log("INFO", "configuration reloaded");
    return {{"ok", true}};
}

grey_tenant* Daemon::tenant(const std::string& name, uint32_t priority) {
    std::lock_guard lock(mutex_);
    if (auto it = tenants_.find(name); it != tenants_.end()) return it->second.get();
    if (tenants_.size() >= kMaxTenants)
        throw std::invalid_argument("greyd already has " + std::to_string(kMaxTenants) + " tenants, its limit: no new tenant '" + name + "'");
    grey_tenant_options o = GREY_TENANT_OPTIONS_INIT;
    o.name = name.c_str();
    o.priority = priority;
    grey_tenant* t = nullptr;
    check(grey_tenant_create(governor_.get(), &o, &t));
    tenants_.emplace(name, t);
    return t;
}

json Daemon::handle(const json& request, Session& session) {
    auto& client = static_cast<ClientSession&>(session);
    const std::string command = request["command"].get<std::string>();
    constexpr size_t kNameBytes = GREY_NAME_MAX - 1;
    if (command == "status" || command == "shutdown" || command == "clear_stop" || command == "reload") {
        const RequestFields none(request, {});
        if (command == "status") return {{"ok", true}, {"status", status()}};
        if (command == "clear_stop") return clear_stop();
        if (command == "reload") return reload();
        exit_ = true;
        return {{"ok", true}};
    }
    if (command == "emergency_stop") {
        const RequestFields f(request, {"reason"});
        return emergency_stop(f.text("reason", GREY_REASON_MAX - 1, "emergency stop requested"), false);
    }
    if (command == "set_weight") {
        const RequestFields f(request, {"tenant", "weight"});
        const std::string name = f.text("tenant", kNameBytes);
        const double weight = f.number("weight");
        if (!std::isfinite(weight) || weight <= 0) return {{"ok", false}, {"error", "set_weight: 'weight' must be finite and > 0"}};
        grey_tenant* t = tenant(name, 0);
        if (grey_tenant_set_weight(t, weight) != GREY_OK) return {{"ok", false}, {"error", grey_last_error()}};
        audit("greyd.tenant_weight", {{"tenant", name}, {"weight", weight}});
        return {{"ok", true}};
    }
    if (command == "admit") {
        const RequestFields f(request, {"tenant", "device", "cost_ns", "timeout_ms", "priority"});
        const std::string name = f.text("tenant", kNameBytes);
        const auto device = static_cast<uint32_t>(f.count("device", UINT32_MAX, 0));
        const uint64_t cost_ns = f.count("cost_ns", UINT64_MAX, 0);
        const uint64_t timeout_ms = f.count("timeout_ms", UINT64_MAX, 60'000);
        const auto priority = static_cast<uint32_t>(f.count("priority", UINT32_MAX, 0));
        if (device >= telemetry_.size())  // checked here too, so that a refused request creates no tenant
            return {{"ok", false}, {"error", "admit: device index " + std::to_string(device) + " is out of range (greyd has " +
                                                 std::to_string(telemetry_.size()) + " device(s))"}};
        grey_tenant* t = tenant(name, priority);
        grey_admission a{};
        a.struct_size = sizeof a;
        const grey_status s = grey_govern_admit(t, device, cost_ns, timeout_ms > UINT64_MAX / 1'000'000 ? GREY_WAIT_FOREVER : timeout_ms * 1'000'000, &a);
        if (s != GREY_OK) return {{"ok", false}, {"status", grey_status_string(s)}, {"error", grey_last_error()}};
        client.tickets[a.ticket] = t;
        return {{"ok", true}, {"ticket", a.ticket}, {"waited_ns", a.waited_ns}, {"duty", a.duty}, {"batch_scale", a.batch_scale}};
    }
    if (command == "release") {
        const RequestFields f(request, {"ticket", "actual_ns"});
        const uint64_t ticket = f.count("ticket", UINT64_MAX);
        const uint64_t actual_ns = f.count("actual_ns", UINT64_MAX, 0);
        auto it = client.tickets.find(ticket);
        if (it == client.tickets.end()) return {{"ok", false}, {"error", "ticket " + std::to_string(ticket) + " was not admitted on this connection"}};
        const grey_status s = grey_govern_release(it->second, ticket, actual_ns);
        client.tickets.erase(it);
        if (s != GREY_OK) return {{"ok", false}, {"error", grey_last_error()}};
        return {{"ok", true}};
    }
    return {{"ok", false}, {"error", "unknown command " + json(command).dump()}};
}

void Daemon::serve_until_signalled() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    const timespec tick{0, 200'000'000};
    while (!exit_.load()) {
        const int sig = sigtimedwait(&signals, nullptr, &tick);
        if (sig == SIGHUP) reload_ = true;
        else if (sig == SIGTERM || sig == SIGINT) exit_ = true;
    }
}

void Daemon::shutdown() {
    exit_ = true;
    log("INFO", "shutting down");
    if (http_) http_->stop();
    // Waiting admissions are refused (a stop), then control connections close and release their tickets.
    // (The stop also restores the power limits the governor held; the file saying so goes only once it has.)
    if (governor_ && grey_governor_emergency_stop(governor_.get(), "greyd is shutting down") != GREY_OK)
        log("ERROR", std::string("at shutdown: ") + grey_last_error());
    else if (governor_)
        std::remove((paths_.dir + "/power-limits.json").c_str());
    if (control_) control_->stop();
    if (collector_.joinable()) collector_.join();
    if (audit_) {
        const json summary = status();
        audit("greyd.stop", {{"uptime_s", summary["daemon"]["uptime_s"]}, {"health_checks", summary["health"]["checks"]},
                             {"emergency_stops", summary["emergency_stop"]["count"]}});
        // The session as a proof artifact: what was admitted, to whom, and what the governor did.
        const json artifact = {{"format", "grey-proof v1"}, {"command", "greyd"}, {"created", timestamp()},
                               {"libgrey", {{"version", grey_version_string()}, {"revision", grey_build_revision()}}},
                               {"results", {{"devices", summary["devices"]}, {"tenants", summary["tenants"]}, {"health", summary["health"]},
                                            {"emergency_stop", summary["emergency_stop"]}}}};
        const std::string text = artifact.dump(2) + "\n";
        try {
            const std::string id = read_text([&](char* b, size_t n, size_t* len) {
                return grey_proof_write(audit_.get(), proof_dir_.c_str(), text.c_str(), b, n, len);
            });
            log("INFO", "session proof artifact " + proof_dir_ + "/" + id + ".json");
        } catch (const std::exception& e) {
            log("ERROR", std::string("cannot write the session proof artifact: ") + e.what());
        }
    }
    for (auto& [name, t] : tenants_) t.reset();
    governor_.reset();
}

}  // namespace

int run_daemon(const GlobalOptions& global, const DaemonOptions& options, const RunPaths& paths,
               const std::function<void(const std::string&)>& ready) {
    // Signals are taken by sigtimedwait in this thread alone: block them before any thread starts.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    Daemon daemon(global, options, paths);
    try {
        daemon.start();
    } catch (const std::exception& e) {
        ready(e.what());
        daemon.shutdown();
        return 1;
    }
    ready("");
    daemon.serve_until_signalled();
    daemon.shutdown();
    return 0;
}

}  // namespace greyctl::daemon
