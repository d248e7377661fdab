// greyctl quantize: quantize every eligible tensor of a safetensors or GGUF file, report the error of
// each against a float64 reference, and optionally write the result as safetensors or GGUF. The
// policy (what is eligible, what is kept and why) is libgrey's: grey_model_quantize.
#include "commands.hpp"
#include "input_prefetch.hpp"
#include "progress_display.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <sys/stat.h>
#include <vector>

namespace greyctl {
namespace {

using json = nlohmann::ordered_json;

struct QuantizeOptions {
    std::string input;
    std::string format;
    std::vector<std::string> skip;
    std::vector<std::string> quantize;    // quantized even when the policy keeps them as critical layers
    std::vector<std::string> format_for;  // PATTERN=FORMAT
    bool quantize_critical = false;       // --no-keep-critical
    std::string calibration = "rtn";
    std::string output;
    std::string backend = "host";
    bool as_json = false;
    bool force = false;        // replace an existing --output
    bool allow_empty = false;  // succeed (and write) when nothing can be quantized
    bool progress = false;     // show progress even when standard error is not a terminal
};



// Refuses, without --force, an output that exists (the library refuses the input itself as output,
// and a file that appears meanwhile, atomically).
void check_output_path(const std::string& output, bool force) {
    struct stat existing {};
    if (!force && ::lstat(output.c_str(), &existing) == 0)
        throw ApiError(GREY_ERROR_INVALID_ARGUMENT, "'" + output + "' already exists; pass --force to replace it");
}

std::string lines(const std::vector<std::string>& items) {
    std::string text;
    for (const auto& item : items) text += item + "\n";
    return text;
}

// The report's JSON text, through the buffer protocol.
std::string result_json(const grey_model_quant_result* result) {
    size_t length = 0;
    std::string text(4096, '\0');
    if (grey_model_quant_result_json(result, text.data(), text.size(), &length) == GREY_ERROR_BUFFER_TOO_SMALL) {
        text.resize(length + 1);
        check(grey_model_quant_result_json(result, text.data(), text.size(), &length));
    }
    text.resize(length);
    return text;
}

void print_table(const QuantizeOptions& o, const json& report) {
    const auto& total = report["total"];
    double max_err = 0;
    std::printf("%-50s %-13s %10s %6s %9s %8s %11s\n", "tensor", "format", "elements", "bits", "rel_rmse", "sqnr_dB", "max_abs_err");
    for (const auto& row : report["tensors"]) {
        max_err = std::max(max_err, row["max_abs_err"].get<double>());
        std::printf("%-50s %-13s %10llu %6.3f %9.5f %8.2f %11.3e\n", row["name"].get<std::string>().c_str(), row["format"].get<std::string>().c_str(),
                    static_cast<unsigned long long>(row["elements"].get<uint64_t>()), row["bits_per_weight"].get<double>(),
                    row["rel_rmse"].get<double>(), row["sqnr_db"].is_null() ? INFINITY : row["sqnr_db"].get<double>(),
                    row["max_abs_err"].get<double>());
    }
    std::printf("%-50s %-13s %10llu %6.3f %9.5f %8.2f %11.3e\n", "total", o.format.c_str(), static_cast<unsigned long long>(total["elements"].get<uint64_t>()),
                total["bits_per_weight"].get<double>(), total["rel_rmse"].get<double>(), total["sqnr_db"].is_null() ? INFINITY : total["sqnr_db"].get<double>(),
                max_err);
    std::printf("%zu tensor(s) quantized (%llu -> %llu bytes, calibration %s); %zu kept in their precision\n", report["tensors"].size(),
                static_cast<unsigned long long>(total["bytes_in"].get<uint64_t>()), static_cast<unsigned long long>(total["bytes_out"].get<uint64_t>()),
                o.calibration.c_str(), report["kept"].size());
    std::map<std::string, std::vector<std::string>> kept_by_reason;
    for (const auto& k : report["kept"]) kept_by_reason[k["reason"].get<std::string>()].push_back(k["name"].get<std::string>());
    for (const auto& [why, names] : kept_by_reason)
        std::printf("  kept %zu: %s (%s%s)\n", names.size(), why.c_str(), names.front().c_str(), names.size() > 1 ? ", ..." : "");
    if (!o.output.empty()) std::printf("wrote %s\n", o.output.c_str());
}

int run_quantize(const GlobalOptions& global, const QuantizeOptions& o) {
    if (!o.output.empty()) check_output_path(o.output, o.force);
    // The disk reads the model while the backend's driver starts, instead of after.
    const InputPrefetch prefetch(o.input);
    // The device whose backend runs the kernels; the host device too: a context brings its worker pool
    // (host.threads of the configuration), and the library quantizes the mapped file where it lies.
    const auto device = open_backend_device(global, o.backend);
    const std::string keep = lines(o.skip), quantize = lines(o.quantize), overrides = lines(o.format_for);
    grey_model_quant_options options = GREY_MODEL_QUANT_OPTIONS_INIT;
    options.calibration = o.calibration == "mse" ? GREY_CALIBRATION_MSE : GREY_CALIBRATION_RTN;
    options.keep_critical = o.quantize_critical ? 0u : 1u;
    options.allow_empty = o.allow_empty ? 1u : 0u;
    options.replace = o.force ? 1u : 0u;
    options.keep_patterns = keep.c_str();
    options.quantize_patterns = quantize.c_str();
    options.format_overrides = overrides.c_str();
    options.context = device.context.get();
    options.device = device.device;
    ProgressDisplay progress("quantize", o.progress || stderr_is_terminal());
    options.progress = &ProgressDisplay::callback;
    options.progress_user = &progress;
    grey_model_quant_result* raw = nullptr;
    check(grey_model_quantize(o.input.c_str(), o.output.empty() ? nullptr : o.output.c_str(), o.format.c_str(), &options, &raw));
    progress.finish(o.input, o.output);
    const QuantResultPtr result(raw);
    const std::string text = result_json(result.get());
    const json report = json::parse(text);
    if (report["tensors"].empty()) std::fprintf(stderr, "greyctl: note: no tensor of %s was quantized (--allow-empty)\n", o.input.c_str());
    if (o.as_json)
        std::cout << text << "\n";
    else
        print_table(o, report);
    return 0;
}

}  // namespace

void add_quantize_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
    auto* cmd = app.add_subcommand("quantize", "Quantize a safetensors or GGUF model and report the error of every tensor");
    auto options = std::make_shared<QuantizeOptions>();
    // The library checks the input (and says what is wrong with it: missing, not a regular file, malformed).
    cmd->add_option("--input", options->input, "safetensors or GGUF file")->required();
    cmd->add_option("--format", options->format, "Quantization format")->required()->check(CLI::IsMember(quant_format_names()));
    cmd->add_option("--skip", options->skip, "Keep tensors whose name matches this regular expression (RE2 syntax, repeatable)");
    cmd->add_option("--quantize", options->quantize,
                    "Quantize tensors whose name matches this regular expression even when they are critical layers (RE2, repeatable)");
    cmd->add_option("--format-for", options->format_for, "PATTERN=FORMAT: quantize tensors whose name matches PATTERN in FORMAT (repeatable; the first match wins)");
    cmd->add_flag("--no-keep-critical", options->quantize_critical,
                  "Quantize the critical layers too (embeddings, output layer, norms, biases, first and last convolution)");
    cmd->add_option("--calibration", options->calibration, "Scale choice: rtn (round to nearest from absmax) or mse (clipping search)")
        ->check(CLI::IsMember({"rtn", "mse"}));
    cmd->add_option("--output", options->output, "Write the quantized model (.gguf or .safetensors)");
    // Any backend the loader finds (greyctl detect --debug lists them); the library says why one is not there.
    cmd->add_option("--backend", options->backend, "Where the kernels run: host, or a backend plugin such as cuda");
    add_json_flag(*cmd, options->as_json, "Print the report as JSON instead of a table");
    cmd->add_flag("--force", options->force, "Replace --output if it exists (never when it is the input)");
    cmd->add_flag("--allow-empty", options->allow_empty, "Succeed, and write --output, even when no tensor can be quantized");
    cmd->add_flag("--progress", options->progress,
                  "Show bytes done and elapsed time on standard error, then sizes and time (the default when it is a terminal)");
    cmd->callback([&global, &run, options] { run = [&global, options] { return run_quantize(global, *options); }; });
}

}  // namespace greyctl
