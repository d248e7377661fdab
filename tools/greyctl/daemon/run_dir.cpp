#include "run_dir.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <string>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace greyctl::daemon {
namespace {

std::string errno_text() { return std::strerror(errno); }

pid_t read_pid(int fd) {
    char text[32] = {};
    const ssize_t n = pread(fd, text, sizeof text - 1, 0);
    return n > 0 ? static_cast<pid_t>(std::strtol(text, nullptr, 10)) : 0;
}

}  // namespace

RunPaths run_paths(const std::string& override_dir) {
    RunPaths p;
    if (!override_dir.empty()) p.dir = override_dir;
    else if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && *xdg == '/') p.dir = std::string(xdg) + "/grey";
    else if (geteuid() == 0) p.dir = "/run/grey";
    else p.dir = "/tmp/grey-" + std::to_string(geteuid());
    p.pid_file = p.dir + "/greyd.pid";
    p.socket = p.dir + "/control.sock";
    p.log = p.dir + "/greyd.log";
    return p;
}

void prepare_run_dir(const RunPaths& paths) {
    if (mkdir(paths.dir.c_str(), 0700) != 0 && errno != EEXIST)
        throw std::runtime_error("cannot create run directory " + paths.dir + ": " + errno_text());
    struct stat st{};
    if (lstat(paths.dir.c_str(), &st) != 0) throw std::runtime_error("cannot inspect " + paths.dir + ": " + errno_text());
    if (!S_ISDIR(st.st_mode)) throw std::runtime_error(paths.dir + " is not a directory");
    if (st.st_uid != geteuid())
        throw std::runtime_error("run directory " + paths.dir + " belongs to uid " + std::to_string(st.st_uid) + ", not to this user (" +
                                 std::to_string(geteuid()) + ")");
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%03o", st.st_mode & 0777);
        throw std::runtime_error("run directory " + paths.dir + " is open to other users (mode " + mode + "); it must be 0700");
    }
}

PidLock::PidLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0) throw std::runtime_error("cannot open pid file " + path + ": " + errno_text());
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const pid_t other = read_pid(fd_);
        ::close(fd_);
        fd_ = -1;
        throw std::runtime_error("greyd is already running (pid " + std::to_string(other) + ", lock " + path + ")");
    }
    write_pid(getpid());
}

PidLock::~PidLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

void PidLock::write_pid(pid_t pid) {
    const std::string text = std::to_string(pid) + "\n";
    if (ftruncate(fd_, 0) != 0 || pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
        throw std::runtime_error("cannot write the pid file: " + errno_text());
}

pid_t running_pid(const std::string& pid_file) {
    const int fd = ::open(pid_file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return 0;
    pid_t pid = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK) pid = read_pid(fd);
    ::close(fd);
    return pid;
}

}  // namespace greyctl::daemon
