// greyctl daemon start|stop|status|logs|reload|tenant-weight, and greyctl emergency-stop.
#include "../commands.hpp"
#include "../exit_codes.hpp"
#include "control_socket.hpp"
#include "daemon.hpp"
#include "run_dir.hpp"

#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <thread>
#include <unistd.h>
#include <deque>

namespace greyctl {
namespace {

using daemon::json;

struct DaemonCommandOptions {
    std::string run_dir;
    daemon::DaemonOptions daemon;
    bool foreground = false;
    bool as_json = false;
    bool clear = false;
    std::string reason = "emergency stop requested with greyctl";
    std::string tenant;
    double weight = 1.0;
    int lines = 50;
    double power_limit_w = 0;
};

// Starts the daemon: in this process (--foreground, for systemd), or detached with its log in the run
// directory, returning once it serves or has failed.
int start(const GlobalOptions& global, const DaemonCommandOptions& o) {
    const daemon::RunPaths paths = daemon::run_paths(o.run_dir);
    daemon::prepare_run_dir(paths);
    if (o.foreground) {
        daemon::PidLock lock(paths.pid_file);
        std::string problem;
        const int code = daemon::run_daemon(global, o.daemon, paths, [&](const std::string& why) { problem = why; });
        if (!problem.empty()) throw CommandError(Exit::failed, "greyd could not start: " + problem);
        return code_of(code == 0 ? Exit::ok : Exit::failed);
    }
    if (const pid_t pid = daemon::running_pid(paths.pid_file); pid != 0)
        throw CommandError(Exit::failed, "greyd is already running (pid " + std::to_string(pid) + ", lock " + paths.pid_file + ")");
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    const pid_t child = fork();
    if (child < 0) throw std::runtime_error("fork failed");
    if (child == 0) {
        ::close(report[0]);
        setsid();
        if (fork() != 0) _exit(0);
        auto tell = [&](const std::string& problem) {
            const std::string text = problem.empty() ? std::string("ok") : problem;
            (void)!::write(report[1], text.data(), text.size());
            ::close(report[1]);
        };
        try {
            daemon::PidLock lock(paths.pid_file);
            const int null_fd = ::open("/dev/null", O_RDONLY);
            const int log_fd = ::open(paths.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            if (null_fd >= 0) dup2(null_fd, 0);
            if (log_fd >= 0) {
                dup2(log_fd, 1);
                dup2(log_fd, 2);
            }
            _exit(daemon::run_daemon(global, o.daemon, paths, tell));
        } catch (const std::exception& e) {
            tell(e.what());
            _exit(1);
        }
    }
    ::close(report[1]);
    std::string answer;
    char chunk[512];
    ssize_t n;
    while ((n = ::read(report[0], chunk, sizeof chunk)) > 0) answer.append(chunk, static_cast<size_t>(n));
    ::close(report[0]);
    if (answer != "ok")
        throw CommandError(Exit::failed, "greyd could not start: " + (answer.empty() ? std::string("it exited without saying why (see its log)") : answer));
    const pid_t pid = daemon::running_pid(paths.pid_file);
    if (o.as_json) std::cout << json{{"started", true}, {"pid", pid}, {"log", paths.log}}.dump(2) << "\n";
    else std::printf("greyd started (pid %d); log %s\n", static_cast<int>(pid), paths.log.c_str());
    return 0;
}

json ask(const DaemonCommandOptions& o, const json& request) {
    const daemon::RunPaths paths = daemon::run_paths(o.run_dir);
    if (daemon::running_pid(paths.pid_file) == 0) throw CommandError(Exit::unavailable, "greyd is not running (no lock held on " + paths.pid_file + ")");
    return daemon::control_request(paths.socket, request);
}

// Throws when greyd refused the request; with --json prints `result` once it did not.
int answered(const DaemonCommandOptions& o, const json& answer, const json& result = {{"ok", true}}) {
    if (!answer.value("ok", false)) throw CommandError(Exit::failed, "greyd: " + answer.value("error", std::string("refused")));
    if (o.as_json) std::cout << result.dump(2) << "\n";
    return 0;
}

int stop(const DaemonCommandOptions& o) {
    const daemon::RunPaths paths = daemon::run_paths(o.run_dir);
    const pid_t pid = daemon::running_pid(paths.pid_file);
    if (pid == 0) {
        if (o.as_json) std::cout << json{{"stopped", false}, {"pid", nullptr}}.dump(2) << "\n";
        else std::printf("greyd is not running\n");
        return 0;
    }
    const json answer = daemon::control_request(paths.socket, {{"command", "shutdown"}});
    if (!answer.value("ok", false)) throw CommandError(Exit::failed, "greyd: " + answer.value("error", std::string("refused")));
    for (int i = 0; i < 300 && daemon::running_pid(paths.pid_file) != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (daemon::running_pid(paths.pid_file) != 0)
        throw CommandError(Exit::failed, "greyd (pid " + std::to_string(pid) + ") did not stop within 30 s");
    if (o.as_json) std::cout << json{{"stopped", true}, {"pid", pid}}.dump(2) << "\n";
    else std::printf("greyd stopped (pid %d)\n", static_cast<int>(pid));
    return 0;
}

int status(const DaemonCommandOptions& o) {
    const daemon::RunPaths paths = daemon::run_paths(o.run_dir);
    if (daemon::running_pid(paths.pid_file) == 0) {
        if (o.as_json) std::printf("{\"running\": false}\n");
        else std::printf("greyd is not running\n");
        return code_of(Exit::unavailable);
    }
    const json answer = ask(o, {{"command", "status"}});
    if (!answer.value("ok", false)) throw CommandError(Exit::failed, "greyd: " + answer.value("error", std::string("refused")));
    const json& s = answer["status"];
    if (o.as_json) {
        json out = s;
        out["running"] = true;
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    std::printf("greyd running: pid %d, http://%s, up %.0f s\n", s["daemon"]["pid"].get<int>(), s["daemon"]["http"].get<std::string>().c_str(),
                s["daemon"]["uptime_s"].get<double>());
    if (s["emergency_stop"]["active"].get<bool>())
        std::printf("EMERGENCY STOP in force since %s: %s (clear with: greyctl emergency-stop --clear)\n",
                    s["emergency_stop"]["since"].get<std::string>().c_str(), s["emergency_stop"]["reason"].get<std::string>().c_str());
    else
        std::printf("emergency stop: not in force\n");
    std::printf("health: %s (%s)\n", s["health"]["ok"].get<bool>() ? "ok" : "PROBLEMS", s["health"]["problems"].dump().c_str());
    for (const json& d : s["devices"]) {
        const json& g = d["governor"];
        std::printf("device %d (%s): %s, duty %.2f, waiting %llu, running %llu, temperature %s\n", d["index"].get<int>(),
                    d["backend"].get<std::string>().c_str(), g["mode"].get<std::string>().c_str(), g["duty"].get<double>(),
                    static_cast<unsigned long long>(g["waiting"].get<uint64_t>()), static_cast<unsigned long long>(g["running"].get<uint64_t>()),
                    g["temperature_c"].is_number() ? (std::to_string(g["temperature_c"].get<double>()) + " C").c_str() : "unknown");
    }
    for (const json& t : s["tenants"])
        std::printf("tenant %s: weight %g, priority %u, admitted %llu (%.3f s), waited %.3f s\n", t["name"].get<std::string>().c_str(),
                    t["weight"].get<double>(), t["priority"].get<unsigned>(), static_cast<unsigned long long>(t["admitted_count"].get<uint64_t>()),
                    t["admitted_cost_ns"].get<double>() * 1e-9, t["waited_total_ns"].get<double>() * 1e-9);
    return 0;
}

int logs(const DaemonCommandOptions& o) {
    const daemon::RunPaths paths = daemon::run_paths(o.run_dir);
    std::ifstream in(paths.log);
    if (!in)
        throw CommandError(Exit::bad_input, "no log at " + paths.log + " (a daemon run in the foreground logs to its standard error, e.g. the journal)");
    std::deque<std::string> tail;
    for (std::string line; std::getline(in, line);) {
        tail.push_back(line);
        if (static_cast<int>(tail.size()) > o.lines) tail.pop_front();
    }
    if (o.as_json) std::cout << json{{"log", paths.log}, {"lines", tail}}.dump(2) << "\n";
    else
        for (const auto& line : tail) std::printf("%s\n", line.c_str());
    return 0;
}

void add_location(CLI::App* command, DaemonCommandOptions& o) {
    command->add_option("--run-dir", o.run_dir, "greyd's run directory (default $XDG_RUNTIME_DIR/grey, /run/grey for root, else /tmp/grey-UID)");
}

void add_json(CLI::App* command, DaemonCommandOptions& o, const char* what) { add_json_flag(*command, o.as_json, what); }

}  // namespace

void add_daemon_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
    auto o = std::make_shared<DaemonCommandOptions>();
    auto* d = app.add_subcommand("daemon", "Run and control greyd, the governor daemon");
    d->require_subcommand(1);

    auto* start_cmd = d->add_subcommand("start", "Start greyd (in the background unless --foreground)");
    add_location(start_cmd, *o);
    start_cmd->add_flag("--foreground", o->foreground, "Run in this process, logging to standard error (for systemd)");
    start_cmd->add_option("--bind", o->daemon.bind, "HTTP address (default 127.0.0.1: loopback only)");
    start_cmd->add_option("--port", o->daemon.port, "HTTP port (default daemon.port)")->check(CLI::Range(1, 65535));
    start_cmd->add_option("--audit-log", o->daemon.audit_log, "Audit log (default <daemon.proof_artifact_dir>/audit.log)");
    start_cmd->add_option("--audit-key", o->daemon.audit_key, "Writer key (default <daemon.proof_artifact_dir>/audit.key.writer)");
    start_cmd->add_flag("--no-audit", o->daemon.no_audit, "Run without an audit log: stops, reloads and weights are then only logged");
    start_cmd->add_option("--sample-period-ms", o->daemon.sample_period_ms, "Telemetry period of the governor")->check(CLI::Range(1, 60000));
    start_cmd->add_option("--power-limit-w", o->power_limit_w,
                          "Opt in to holding every GPU at this power limit (watts) while greyd runs; the previous limits are "
                          "restored on emergency stop and exit (default: never touch power limits)")
        ->check(CLI::Range(1.0, 100000.0));
    add_json(start_cmd, *o, "Print {\"started\", \"pid\", \"log\"} once greyd serves");
    start_cmd->callback([&global, &run, o] {
        o->daemon.power_limit_mw = static_cast<uint64_t>(o->power_limit_w * 1000.0 + 0.5);
        run = [&global, o] { return start(global, *o); };
    });

    auto* stop_cmd = d->add_subcommand("stop", "Stop greyd and wait until it has exited");
    add_location(stop_cmd, *o);
    add_json(stop_cmd, *o, "Print {\"stopped\", \"pid\"}");
    stop_cmd->callback([&run, o] { run = [o] { return stop(*o); }; });

    auto* status_cmd = d->add_subcommand("status", "Show greyd's state: devices, governor, tenants, emergency stop (exit 3 when not running)");
    add_location(status_cmd, *o);
    add_json(status_cmd, *o, "Print the /status document (with \"running\")");
    status_cmd->callback([&run, o] { run = [o] { return status(*o); }; });

    auto* logs_cmd = d->add_subcommand("logs", "Print the end of greyd's log");
    add_location(logs_cmd, *o);
    logs_cmd->add_option("-n,--lines", o->lines, "Lines to print (default 50)")->check(CLI::Range(1, 1000000));
    add_json(logs_cmd, *o, "Print {\"log\", \"lines\": [...]}");
    logs_cmd->callback([&run, o] { run = [o] { return logs(*o); }; });

    auto* reload_cmd = d->add_subcommand("reload", "Re-read the configuration (thermal.*, scheduling.*)");
    add_location(reload_cmd, *o);
    add_json(reload_cmd, *o, "Print {\"ok\": true} once greyd has reloaded");
    reload_cmd->callback([&run, o] { run = [o] { return answered(*o, ask(*o, {{"command", "reload"}})); }; });

    auto* weight_cmd = d->add_subcommand("tenant-weight", "Set a tenant's weight");
    add_location(weight_cmd, *o);
    weight_cmd->add_option("TENANT", o->tenant, "Tenant name")->required();
    weight_cmd->add_option("WEIGHT", o->weight, "Weight (> 0)")->required();
    add_json(weight_cmd, *o, "Print {\"ok\", \"tenant\", \"weight\"}");
    weight_cmd->callback([&run, o] {
        run = [o] {
            return answered(*o, ask(*o, {{"command", "set_weight"}, {"tenant", o->tenant}, {"weight", o->weight}}),
                            {{"ok", true}, {"tenant", o->tenant}, {"weight", o->weight}});
        };
    });

    auto* stop_all = app.add_subcommand("emergency-stop", "Stop admitting work on every device at once (through greyd); --clear ends it");
    add_location(stop_all, *o);
    stop_all->add_flag("--clear", o->clear, "End the emergency stop");
    stop_all->add_option("--reason", o->reason, "Recorded in the audit log and shown by daemon status");
    add_json(stop_all, *o, "Print {\"ok\", \"emergency_stop\"} (whether one is now in force)");
    stop_all->callback([&run, o] {
        run = [o] {
            const json answer = ask(*o, o->clear ? json{{"command", "clear_stop"}} : json{{"command", "emergency_stop"}, {"reason", o->reason}});
            const int code = answered(*o, answer, {{"ok", true}, {"emergency_stop", !o->clear}});
            if (!o->as_json)
                std::printf(o->clear ? "emergency stop cleared: greyd admits work again\n"
                                     : "EMERGENCY STOP: greyd admits no work on any device until 'greyctl emergency-stop --clear'\n");
            return code;
        };
    });
}

}  // namespace greyctl
