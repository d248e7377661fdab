// Runs a piece of a test in a forked child, for what must be measured or bounded apart from the test
// process: peak memory (the child's own high-water mark) and calls that might never return.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace grey::test {

struct ChildResult {
    bool exited = false;       // false: killed by a signal (a crash, or the time limit)
    int exit_code = -1;
    int signal = 0;
    uint64_t peak_rss_bytes = 0;  // the child's largest resident set (file-backed pages included)
};

// Forks, runs `body` in the child (its return value is the exit code; it must not throw), and waits at
// most `seconds` for it: SIGALRM kills a child that is still running then.
inline ChildResult run_in_child(const std::function<int()>& body, unsigned seconds = 60) {
    const pid_t pid = ::fork();
    if (pid < 0) {
        ADD_FAILURE() << "fork failed";
        return {};
    }
    if (pid == 0) {
        ::alarm(seconds);
        int code = 111;
        try {
            code = body();
        } catch (...) {
            code = 112;
        }
        ::_exit(code);
    }
    int status = 0;
    struct rusage usage {};
    ::wait4(pid, &status, 0, &usage);
    ChildResult result;
    result.exited = WIFEXITED(status);
    result.exit_code = result.exited ? WEXITSTATUS(status) : -1;
    result.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    result.peak_rss_bytes = static_cast<uint64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
    return result;
}

}  // namespace grey::test
