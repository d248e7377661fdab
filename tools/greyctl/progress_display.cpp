#include "progress_display.hpp"

#include <csignal>
#include <cstdio>
#include <sys/stat.h>
#include <unistd.h>

namespace greyctl {
namespace {

// Set by SIGINT; a signal handler can touch nothing else safely, so this one flag is process-wide.
volatile std::sig_atomic_t interrupted = 0;

void on_interrupt(int) { interrupted = 1; }

std::string mib(uint64_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
    return text;
}

// The size of a file, or nothing when it cannot be read.
std::string file_size(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "?";
    return mib(static_cast<uint64_t>(st.st_size));
}

}  // namespace

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) != 0; }

ProgressDisplay::ProgressDisplay(std::string verb, bool enabled) : verb_(std::move(verb)), enabled_(enabled), terminal_(stderr_is_terminal()) {
    interrupted = 0;
    previous_handler_ = std::signal(SIGINT, on_interrupt);
}

ProgressDisplay::~ProgressDisplay() { std::signal(SIGINT, previous_handler_ == SIG_ERR ? SIG_DFL : previous_handler_); }

uint32_t ProgressDisplay::callback(uint64_t bytes_done, uint64_t bytes_total, const char* tensor, void* user) {
    return static_cast<ProgressDisplay*>(user)->report(bytes_done, bytes_total, tensor);
}

uint32_t ProgressDisplay::report(uint64_t bytes_done, uint64_t bytes_total, const char* tensor) {
    if (interrupted != 0) {
        if (enabled_ && terminal_) std::fputc('\n', stderr);
        return 1;  // the library stops and writes nothing
    }
    if (!enabled_) return 0;
    const auto now = std::chrono::steady_clock::now();
    const bool last = bytes_done == bytes_total && *tensor != '\0';
    if (!terminal_ && !last && now - last_line_ < std::chrono::milliseconds(500)) return 0;
    last_line_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double percent = bytes_total == 0 ? 100.0 : 100.0 * static_cast<double>(bytes_done) / static_cast<double>(bytes_total);
    std::fprintf(stderr, "%s[%5.1f%%] %s %s / %s, %.1f s  %-40.40s%s", terminal_ ? "\r" : "", percent, verb_.c_str(), mib(bytes_done).c_str(),
                 mib(bytes_total).c_str(), seconds, tensor, terminal_ && !last ? "" : "\n");
    std::fflush(stderr);
    return 0;
}

void ProgressDisplay::finish(const std::string& input, const std::string& output) {
    if (!enabled_) return;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "%s: input size  = %s (%s)\n", verb_.c_str(), file_size(input).c_str(), input.c_str());
    if (!output.empty()) std::fprintf(stderr, "%s: output size = %s (%s)\n", verb_.c_str(), file_size(output).c_str(), output.c_str());
    std::fprintf(stderr, "%s: total time  = %.2f ms\n", verb_.c_str(), ms);
}

}  // namespace greyctl
