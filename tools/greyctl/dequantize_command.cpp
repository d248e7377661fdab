// greyctl dequantize: restore a full-precision safetensors file from a model libgrey quantized
// (grey_model_dequantize), so that it can be evaluated in any framework.
#include "commands.hpp"
#include "progress_display.hpp"

#include <cstdio>
#include <iostream>
#include <memory>
#include <sys/stat.h>

namespace greyctl {
namespace {

struct DequantizeOptions {
    std::string input;
    std::string output;
    std::string dtype = "f32";
    bool force = false;
    bool as_json = false;
    bool progress = false;
};

int run_dequantize(const DequantizeOptions& o) {
    struct stat existing {};
    if (!o.force && ::lstat(o.output.c_str(), &existing) == 0)
        throw ApiError(GREY_ERROR_INVALID_ARGUMENT, "'" + o.output + "' already exists; pass --force to replace it");
    grey_model_dequant_options options = GREY_MODEL_DEQUANT_OPTIONS_INIT;
    options.dtype = o.dtype == "bf16" ? GREY_DTYPE_BF16 : o.dtype == "f16" ? GREY_DTYPE_F16 : GREY_DTYPE_F32;
    options.replace = o.force ? 1u : 0u;
    ProgressDisplay progress("dequantize", o.progress || stderr_is_terminal());
    options.progress = &ProgressDisplay::callback;
    options.progress_user = &progress;
    check(grey_model_dequantize(o.input.c_str(), o.output.c_str(), &options));
    progress.finish(o.input, o.output);
    if (o.as_json) std::cout << nlohmann::ordered_json{{"input", o.input}, {"output", o.output}, {"dtype", o.dtype}}.dump(2) << "\n";
    else std::printf("wrote %s\n", o.output.c_str());
    return 0;
}

}  // namespace

void add_dequantize_command(CLI::App& app, Runner& run) {
    auto* cmd = app.add_subcommand("dequantize", "Restore a full-precision safetensors model from one libgrey quantized");
    auto options = std::make_shared<DequantizeOptions>();
    cmd->add_option("--input", options->input, "safetensors or GGUF file written by greyctl quantize")->required();
    cmd->add_option("--output", options->output, "The safetensors file to write")->required();
    cmd->add_option("--dtype", options->dtype, "Element type of the restored tensors")->check(CLI::IsMember({"f32", "f16", "bf16"}));
    cmd->add_flag("--force", options->force, "Replace --output if it exists (never when it is the input)");
    add_json_flag(*cmd, options->as_json, "Print {\"input\", \"output\", \"dtype\"}");
    cmd->add_flag("--progress", options->progress,
                  "Show bytes done and elapsed time on standard error, then sizes and time (the default when it is a terminal)");
    cmd->callback([&run, options] { run = [options] { return run_dequantize(*options); }; });
}

}  // namespace greyctl
