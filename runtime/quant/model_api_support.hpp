// What grey_model_quantize and grey_model_dequantize share: owning handles over the public model API
// (a whole-model call is built on the same calls a host program makes) and the output path's checks.
#pragma once

#include "core/error.hpp"
#include "grey.h"

#include <memory>
#include <string>

namespace grey::quant {

// Turns a failed grey.h call made from inside the library into the exception abi_guard reports.
inline void check_api(grey_status status) {
    if (status != GREY_OK) fail(status, grey_last_error());
}

struct ModelCloser {
    void operator()(grey_model* m) const noexcept { grey_model_destroy(m); }
};
struct WriterCloser {
    void operator()(grey_model_writer* w) const noexcept { grey_model_writer_destroy(w); }
};
using ModelHandle = std::unique_ptr<grey_model, ModelCloser>;
using WriterHandle = std::unique_ptr<grey_model_writer, WriterCloser>;

inline ModelHandle open_model(const char* path) {
    require_non_null(path, "input_path");
    grey_model* raw = nullptr;
    check_api(grey_model_create(path, &raw));
    return ModelHandle(raw);
}

// Refuses an output that is the input file by any name (symlink, hard link): writing it would replace
// the mapped input while it is read.
void require_output_is_not_input(const std::string& input, const std::string& output);

// The caller's progress callback of a whole-model call: told of every tensor done, in input bytes, and
// obeyed when it asks to stop (GREY_ERROR_CANCELLED, which abandons the output file).
class Progress {
public:
    Progress(grey_model_progress_callback callback, void* user, uint64_t total_bytes, std::string input)
        : callback_(callback), user_(user), total_(total_bytes), input_(std::move(input)) {
        report("");
    }
    void tensor_done(uint64_t bytes, const char* name) {
        done_ += bytes;
        report(name);
    }

private:
    void report(const char* name) {
        if (callback_ == nullptr || callback_(done_, total_, name, user_) == 0) return;
        fail(GREY_ERROR_CANCELLED, input_ + ": cancelled by the progress callback after " + std::to_string(done_) + " of " +
                                       std::to_string(total_) + " bytes" + (*name != '\0' ? " (tensor " + std::string(name) + ")" : "") +
                                       "; no output written");
    }

    grey_model_progress_callback callback_;
    void* user_;
    uint64_t total_;
    uint64_t done_ = 0;
    std::string input_;
};

template <typename Options>
Options options_or_default(const Options* given, const Options& defaults, const char* what) {
    if (given == nullptr) return defaults;
    if (given->struct_size < sizeof(Options))
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + "->struct_size is " + std::to_string(given->struct_size) +
                                              "; initialise it with its GREY_..._INIT macro");
    return *given;
}

}  // namespace grey::quant
