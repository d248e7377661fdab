// Progress of a whole-model command (quantize, dequantize) on standard error: bytes done, percent, the
// tensor and the elapsed time, fed by grey.h's progress callback; then sizes and time at the end, as
// llama.cpp's quantize tool ends. On a terminal the line is redrawn in place; elsewhere (--progress into
// a file or pipe) a line is printed at most twice a second, and always at 100%. Ctrl-C while it runs
// cancels the call through the same callback, so the output file is never left half written.
#pragma once

#include "grey.h"

#include <chrono>
#include <cstdint>
#include <string>

namespace greyctl {

class ProgressDisplay {
public:
    // `enabled`: whether to draw anything (--progress, or standard error is a terminal); Ctrl-C cancels
    // either way while the object lives.
    ProgressDisplay(std::string verb, bool enabled);
    ~ProgressDisplay();
    ProgressDisplay(const ProgressDisplay&) = delete;
    ProgressDisplay& operator=(const ProgressDisplay&) = delete;

    // For the options struct: options.progress = &ProgressDisplay::callback; options.progress_user = this.
    static uint32_t callback(uint64_t bytes_done, uint64_t bytes_total, const char* tensor, void* user);

    // The closing lines: input and output file sizes and the time taken (output empty: none written).
    void finish(const std::string& input, const std::string& output);

private:
    uint32_t report(uint64_t bytes_done, uint64_t bytes_total, const char* tensor);

    std::string verb_;
    bool enabled_;
    bool terminal_;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last_line_{};
    void (*previous_handler_)(int) = nullptr;
};

// Whether progress is shown by default: standard error is a terminal.
bool stderr_is_terminal();

}  // namespace greyctl
