// greyd: a context and a governor over every device, served on 127.0.0.1:<daemon.port> (/healthz,
// /status, /metrics) and controlled over the Unix socket of its run directory. Built on grey.h alone.
#pragma once

#include "../commands.hpp"
#include "run_dir.hpp"

#include <functional>
#include <string>

namespace greyctl::daemon {

struct DaemonOptions {
    std::string bind = "127.0.0.1";
    int port = 0;              // 0: daemon.port
    std::string audit_log;     // default <daemon.proof_artifact_dir>/audit.log
    std::string audit_key;     // default <daemon.proof_artifact_dir>/audit.key.writer
    bool no_audit = false;     // run without an audit log (emergency stops are then only logged)
    uint32_t sample_period_ms = 100;
    // The power-limit request path, off unless given (--power-limit-w): the governor asks every GPU to
    // hold this limit and greyd restores the previous one on an emergency stop, at exit, and at its next
    // start if it died holding one (<run dir>/power-limits.json).
    uint64_t power_limit_mw = 0;
};

// Runs the daemon in this process until SIGTERM, SIGINT or a shutdown request; SIGHUP reloads.
// `ready` is called once with an empty string when it serves, or with the reason it could not start.
// Returns the exit code.
int run_daemon(const GlobalOptions& global, const DaemonOptions& options, const RunPaths& paths,
               const std::function<void(const std::string& problem)>& ready);

}  // namespace greyctl::daemon
