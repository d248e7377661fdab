// greyd's run directory: the lock file that makes two daemons impossible, the control socket and the
// log. The directory is private (0700, owned by the daemon's user); anything else is refused, because
// whoever can write there could replace the socket.
#pragma once

#include <string>
#include <sys/types.h>

namespace greyctl::daemon {

struct RunPaths {
    std::string dir;
    std::string pid_file;  // holds the pid; locked (flock) for as long as the daemon runs
    std::string socket;    // control socket (0600)
    std::string log;       // the daemon's log when it runs in the background
};

// $XDG_RUNTIME_DIR/grey, /run/grey for root, else /tmp/grey-<uid>; `override` wins when not empty.
RunPaths run_paths(const std::string& override_dir);
// Creates the directory (0700) or checks an existing one; throws std::runtime_error with the reason.
void prepare_run_dir(const RunPaths& paths);

// The lock on the pid file. Taken once; released when the object goes (or the process ends).
class PidLock {
public:
    // Takes the lock and writes our pid, or throws std::runtime_error naming the running daemon's pid.
    explicit PidLock(const std::string& path);
    ~PidLock();
    PidLock(const PidLock&) = delete;
    PidLock& operator=(const PidLock&) = delete;
    // Writes `pid` (after a fork, the daemon's own).
    void write_pid(pid_t pid);

private:
    int fd_ = -1;
};

// The pid of the daemon holding the lock, or 0 when none holds it.
pid_t running_pid(const std::string& pid_file);

}  // namespace greyctl::daemon
