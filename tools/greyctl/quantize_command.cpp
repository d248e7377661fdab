// greyctl quantize: quantize every eligible tensor of a safetensors or GGUF file, report the error of
// each against a float64 reference, and optionally write the result as safetensors or GGUF.
#include "commands.hpp"

#include <nlohmann/json.hpp>
#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace greyctl {
namespace {

using json = nlohmann::ordered_json;

struct QuantizeOptions {
    std::string input;
    std::string format;
    std::vector<std::string> skip;
    std::string calibration = "rtn";
    std::string output;
    std::string backend = "host";
    bool as_json = false;
    bool force = false;        // replace an existing --output
    bool allow_empty = false;  // succeed (and write) when nothing can be quantized
};

// The command line takes the names grey.h defines (grey_quant_params_from_name), so greyctl, the
// bindings and the samples spell every format the same way.
std::vector<std::string> format_names() {
    std::vector<std::string> names;
    for (uint32_t i = 0; i < grey_quant_name_count(); ++i) names.emplace_back(grey_quant_name_at(i));
    return names;
}

struct ModelDeleter {
    void operator()(grey_model* m) const noexcept { grey_model_destroy(m); }
};
struct WriterDeleter {
    void operator()(grey_model_writer* w) const noexcept { grey_model_writer_destroy(w); }
};
struct BufferDeleter {
    void operator()(grey_buffer* b) const noexcept { grey_buffer_destroy(b); }
};
using BufferPtr = std::unique_ptr<grey_buffer, BufferDeleter>;

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_text(const grey_tensor_desc& d) {
    std::string out = "[";
    for (uint32_t i = 0; i < d.rank; ++i) out += (i ? "," : "") + std::to_string(d.shape[i]);
    return out + "]";
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// A progress bar on stderr, drawn only when stderr is a terminal.
class Progress {
public:
    explicit Progress(uint64_t total) : total_(total), enabled_(isatty(fileno(stderr)) != 0 && total > 0) {}
    ~Progress() {
        if (enabled_) std::fprintf(stderr, "\r\033[K");
    }
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;
    void step(uint64_t done, const char* name) const {
        if (!enabled_) return;
        constexpr int kWidth = 30;
        const int filled = static_cast<int>(kWidth * done / total_);
        std::fprintf(stderr, "\r\033[K[%.*s%*s] %llu/%llu %.40s", filled, "##############################", kWidth - filled, "",
                     static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_), name);
        std::fflush(stderr);
    }

private:
    uint64_t total_;
    bool enabled_;
};

// Runs the quantization on a backend's device buffers rather than host memory.
struct DeviceRunner {
    ContextPtr context;
    uint32_t device = 0;

    grey_quant_report run(const grey_tensor_desc& desc, const grey_model_tensor& t, const grey_quant_params& params,
                          std::vector<unsigned char>& out) const {
        grey_buffer *source = nullptr, *destination = nullptr;
        check(grey_buffer_create(context.get(), device, t.size_bytes, &source));
        BufferPtr source_owner(source);
        check(grey_buffer_create(context.get(), device, out.size(), &destination));
        BufferPtr destination_owner(destination);
        check(grey_buffer_write(source, 0, t.data, t.size_bytes));
        grey_quant_report report{};
        report.struct_size = sizeof report;
        check(grey_quantize_buffer(&desc, source, 0, &params, destination, 0, &report));
        check(grey_buffer_read(destination, 0, out.data(), out.size()));
        return report;
    }
};

std::optional<DeviceRunner> open_backend(const GlobalOptions& global, const std::string& backend) {
    if (backend == "host") return std::nullopt;  // host memory, no context needed
    DeviceRunner runner{open_context(global, backend)};
    uint32_t count = 0;
    check(grey_device_count(runner.context.get(), &count));
    for (uint32_t d = 0; d < count; ++d) {
        grey_device_spec spec{};
        spec.struct_size = sizeof spec;
        check(grey_device_spec_get(runner.context.get(), d, &spec));
        if (backend == spec.backend) {
            runner.device = d;
            return runner;
        }
    }
    std::string reason = "no device";
    uint32_t reports = 0;
    check(grey_backend_count(runner.context.get(), &reports));
    for (uint32_t i = 0; i < reports; ++i) {
        grey_backend_info info{};
        info.struct_size = sizeof info;
        check(grey_backend_info_get(runner.context.get(), i, &info));
        if (backend == info.name) reason = info.reason;
    }
    throw ApiError(GREY_ERROR_UNSUPPORTED, "the " + backend + " backend is not available: " + reason);
}

// --skip patterns, in RE2 syntax: matching takes time linear in the name, whatever the pattern, and
// never recurses (ECMAScript engines backtrack, exponentially on some patterns, and std::regex's
// recursion overflowed the stack on a 50,000-character name).
std::vector<std::unique_ptr<RE2>> compile_patterns(const std::vector<std::string>& patterns) {
    std::vector<std::unique_ptr<RE2>> compiled;
    for (const auto& pattern : patterns) {
        auto re = std::make_unique<RE2>(pattern, RE2::Quiet);
        if (!re->ok()) throw ApiError(GREY_ERROR_INVALID_ARGUMENT, "--skip '" + pattern + "' is not a valid regular expression: " + re->error());
        compiled.push_back(std::move(re));
    }
    return compiled;
}

// Refuses an output that would replace the input (the same file by any path: symlink, hard link) or,
// without --force, any existing file. The writer refuses a file that appears meanwhile, atomically.
void check_output_path(const QuantizeOptions& o) {
    struct stat input {}, output {};
    if (::stat(o.output.c_str(), &output) == 0 && ::stat(o.input.c_str(), &input) == 0 && input.st_dev == output.st_dev &&
        input.st_ino == output.st_ino)
        throw ApiError(GREY_ERROR_INVALID_ARGUMENT, "--output '" + o.output + "' is the input file ('" + o.input + "')");
    if (!o.force && ::lstat(o.output.c_str(), &output) == 0)
        throw ApiError(GREY_ERROR_IO, "'" + o.output + "' already exists; pass --force to replace it");
}

// What happens to one tensor, decided for every tensor before anything is written (the streaming
// writer needs every tensor's type and size first).
struct TensorPlan {
    grey_model_tensor tensor{};      // its data point into the mapped input
    std::optional<std::string> kept;  // why it keeps its precision; empty when it is quantized
    uint64_t quantized_bytes = 0;
};

TensorPlan plan_tensor(const grey_model* model, uint64_t index, const grey_quant_params& params, const std::vector<std::unique_ptr<RE2>>& skip) {
    TensorPlan plan;
    plan.tensor.struct_size = sizeof plan.tensor;
    check(grey_model_tensor_get(model, index, &plan.tensor));
    const grey_dtype dtype = plan.tensor.desc.dtype;
    if (dtype != GREY_DTYPE_F32 && dtype != GREY_DTYPE_F16 && dtype != GREY_DTYPE_BF16) {
        plan.kept = std::string("not a float tensor (") + grey_dtype_name(dtype) + ")";
        return plan;
    }
    for (const auto& re : skip)
        if (RE2::PartialMatch(plan.tensor.name, *re)) {
            plan.kept = "--skip";
            return plan;
        }
    if (plan.tensor.desc.rank < 2) {
        plan.kept = "one-dimensional (bias or norm)";
        return plan;
    }
    if (grey_quant_size(&plan.tensor.desc, &params, &plan.quantized_bytes) != GREY_OK) plan.kept = grey_last_error();
    return plan;
}

// What the output holds for a quantized tensor: ggml's own type for q8_0/q4_0/q4_1 in GGUF, otherwise
// a byte tensor of libgrey's layout, described by the metadata entry grey.quant.<name>.
grey_tensor_desc stored_desc(const TensorPlan& plan, const grey_quant_params& params, grey_model_format output_format) {
    grey_tensor_desc stored = plan.tensor.desc;
    if (output_format == GREY_MODEL_FORMAT_GGUF && params.format == GREY_QUANT_Q8_0) stored.dtype = GREY_DTYPE_Q8_0;
    else if (output_format == GREY_MODEL_FORMAT_GGUF && params.format == GREY_QUANT_Q4_0) stored.dtype = GREY_DTYPE_Q4_0;
    else if (output_format == GREY_MODEL_FORMAT_GGUF && params.format == GREY_QUANT_Q4_1) stored.dtype = GREY_DTYPE_Q4_1;
    else {
        stored = GREY_TENSOR_DESC_INIT;
        stored.dtype = output_format == GREY_MODEL_FORMAT_GGUF ? GREY_DTYPE_I8 : GREY_DTYPE_U8;
        stored.rank = 1;
        stored.shape[0] = plan.quantized_bytes;
    }
    return stored;
}

// The grouped formats' rows (docs/quantization.md, "Rows and groups"): rows = the first dimension, a
// row = the rest, groups of `group` along it, the last one holding `ragged_tail` elements when that is
// not 0. Written beside the shape so that a reader restores the layout without deriving it.
void add_row_layout(json& description, const grey_tensor_desc& desc, const grey_quant_params& params) {
    uint64_t group = 0;
    if (params.format == GREY_QUANT_INT4 || params.format == GREY_QUANT_INT4_SYM) group = params.group_size == 0 ? 128 : params.group_size;
    else if (params.format == GREY_QUANT_NF4) group = 64;  // grey.h: NF4 blocks of 64
    if (group == 0) return;
    uint64_t elements = 1;
    for (uint32_t i = 0; i < desc.rank; ++i) elements *= desc.shape[i];
    const uint64_t rows = desc.rank >= 2 ? desc.shape[0] : 1;
    const uint64_t row_length = elements / rows;
    description["rows"] = rows;
    description["row_length"] = row_length;
    description["group"] = group;
    description["ragged_tail"] = row_length % group;
}

std::string nothing_to_quantize(const QuantizeOptions& o, const std::vector<TensorPlan>& plans) {
    std::map<std::string, uint64_t> reasons;
    for (const auto& p : plans) ++reasons[*p.kept];
    std::string kept;
    for (const auto& [why, n] : reasons) kept += (kept.empty() ? "" : "; ") + std::to_string(n) + " " + why;
    return "nothing to quantize in " + o.input + ": none of its " + std::to_string(plans.size()) +
           " tensors is a float tensor of two or more dimensions that " + o.format + " can hold" + (kept.empty() ? "" : " (kept: " + kept + ")") +
           "; is it quantized already? --allow-empty runs (and writes) it anyway";
}

// Opens the streaming writer: metadata (as the one-shot writer had it: the input's, grey.quantization,
// then one grey.quant.<name> per tensor stored as bytes) and every tensor's declaration.
std::unique_ptr<grey_model_writer, WriterDeleter> open_writer(const QuantizeOptions& o, const grey_model* model, grey_model_format input_format,
                                                               grey_model_format output_format, const grey_quant_params& params,
                                                               const std::vector<TensorPlan>& plans) {
    grey_model_writer* raw_writer = nullptr;
    check(grey_model_writer_create(output_format, &raw_writer));
    std::unique_ptr<grey_model_writer, WriterDeleter> writer(raw_writer);
    // safetensors metadata holds only strings: carry GGUF metadata over only to GGUF.
    if (output_format == GREY_MODEL_FORMAT_GGUF || input_format == GREY_MODEL_FORMAT_SAFETENSORS)
        check(grey_model_writer_copy_metadata(writer.get(), model));
    check(grey_model_writer_set_metadata(writer.get(), "grey.quantization", (o.format + ", calibration " + o.calibration).c_str()));
    for (const auto& p : plans) {
        if (p.kept) {
            check(grey_model_writer_declare_tensor(writer.get(), p.tensor.name, &p.tensor.desc, p.tensor.file_type, nullptr));
            continue;
        }
        const grey_tensor_desc stored = stored_desc(p, params, output_format);
        if (stored.dtype == GREY_DTYPE_I8 || stored.dtype == GREY_DTYPE_U8) {
            json description = {{"format", o.format}, {"calibration", o.calibration}, {"dtype", grey_dtype_name(p.tensor.desc.dtype)},
                                {"shape", json::parse(shape_text(p.tensor.desc))}, {"axis", params.axis}, {"group_size", params.group_size}};
            add_row_layout(description, p.tensor.desc, params);
            check(grey_model_writer_set_metadata(writer.get(), ("grey.quant." + std::string(p.tensor.name)).c_str(), description.dump().c_str()));
        }
        check(grey_model_writer_declare_tensor(writer.get(), p.tensor.name, &stored, 0, nullptr));
    }
    grey_model_write_options options = GREY_MODEL_WRITE_OPTIONS_INIT;
    options.replace = o.force ? 1u : 0u;
    check(grey_model_writer_open(writer.get(), o.output.c_str(), &options));
    return writer;
}

int run_quantize(const GlobalOptions& global, const QuantizeOptions& o) {
    grey_quant_params params = GREY_QUANT_PARAMS_INIT;
    check(grey_quant_params_from_name(o.format.c_str(), &params));
    params.calibration = o.calibration == "mse" ? GREY_CALIBRATION_MSE : GREY_CALIBRATION_RTN;
    const auto skip = compile_patterns(o.skip);
    std::optional<grey_model_format> output_format;
    if (!o.output.empty()) {
        if (ends_with(o.output, ".gguf"))
            output_format = GREY_MODEL_FORMAT_GGUF;
        else if (ends_with(o.output, ".safetensors"))
            output_format = GREY_MODEL_FORMAT_SAFETENSORS;
        else
            throw ApiError(GREY_ERROR_INVALID_ARGUMENT, "--output must end in .gguf or .safetensors: " + o.output);
        check_output_path(o);
    }
    const auto device = open_backend(global, o.backend);

    grey_model* raw_model = nullptr;
    check(grey_model_open(o.input.c_str(), &raw_model));
    const std::unique_ptr<grey_model, ModelDeleter> model(raw_model);
    grey_model_format input_format{};
    check(grey_model_format_get(model.get(), &input_format));
    uint64_t count = 0;
    check(grey_model_tensor_count(model.get(), &count));
    std::vector<TensorPlan> plans;
    for (uint64_t i = 0; i < count; ++i) plans.push_back(plan_tensor(model.get(), i, params, skip));
    if (!o.allow_empty && std::all_of(plans.begin(), plans.end(), [](const TensorPlan& p) { return p.kept.has_value(); }))
        throw std::runtime_error(nothing_to_quantize(o, plans));
    const auto writer = output_format ? open_writer(o, model.get(), input_format, *output_format, params, plans) : nullptr;

    // One tensor at a time: quantized into a buffer reused for every tensor, written, and its input
    // pages dropped, so that memory holds the largest tensor and its quantized form, not the model.
    json rows = json::array();
    std::vector<std::pair<std::string, std::string>> kept;  // name, why
    double sum_error = 0, sum_signal = 0, max_err = 0;
    uint64_t elements = 0, bytes_in = 0, bytes_out = 0;
    std::vector<unsigned char> quantized;
    const Progress progress(count);
    for (uint64_t i = 0; i < count; ++i) {
        const grey_model_tensor& t = plans[i].tensor;
        const std::string name = t.name;
        progress.step(i, t.name);
        if (plans[i].kept) {
            kept.emplace_back(name, *plans[i].kept);
            if (writer) check(grey_model_writer_write_tensor(writer.get(), i, t.data, t.size_bytes));
            check(grey_model_tensor_evict(model.get(), i));
            continue;
        }
        quantized.resize(plans[i].quantized_bytes);
        grey_quant_report r{};
        r.struct_size = sizeof r;
        try {
            if (device)
                r = device->run(t.desc, t, params, quantized);
            else
                check(grey_quantize(&t.desc, t.data, t.size_bytes, &params, quantized.data(), quantized.size(), &r));
        } catch (const ApiError& e) {  // a NaN, or values too large for the format: name the tensor (--skip keeps it)
            throw ApiError(e.status, "tensor " + name + ": " + e.what());
        }
        check(grey_model_tensor_evict(model.get(), i));
        rows.push_back({{"name", name}, {"format", o.format}, {"elements", r.elements}, {"bits_per_weight", r.bits_per_weight},
                        {"rel_rmse", r.rel_rmse}, {"sqnr_db", number_or_null(r.sqnr_db)}, {"max_abs_err", r.max_abs_err}});
        sum_error += r.sum_squared_error;
        sum_signal += r.sum_squared_signal;
        max_err = std::max(max_err, r.max_abs_err);
        elements += r.elements;
        bytes_in += t.size_bytes;
        bytes_out += r.bytes;
        if (writer) check(grey_model_writer_write_tensor(writer.get(), i, quantized.data(), quantized.size()));
    }
    if (writer) check(grey_model_writer_finish(writer.get()));

    const double rel_rmse = sum_signal > 0 ? std::sqrt(sum_error / sum_signal) : 0.0;
    const double sqnr = sum_error > 0 ? 10.0 * std::log10(sum_signal / sum_error) : INFINITY;
    const double bits = elements ? 8.0 * static_cast<double>(bytes_out) / static_cast<double>(elements) : 0.0;
    if (o.as_json) {
        const json out = {{"tensors", rows},
                          {"total", {{"elements", elements}, {"bits_per_weight", bits}, {"rel_rmse", rel_rmse}, {"sqnr_db", number_or_null(sqnr)},
                                     {"bytes_in", bytes_in}, {"bytes_out", bytes_out}}}};
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    std::printf("%-50s %-13s %10s %6s %9s %8s %11s\n", "tensor", "format", "elements", "bits", "rel_rmse", "sqnr_dB", "max_abs_err");
    for (const auto& row : rows)
        std::printf("%-50s %-13s %10llu %6.3f %9.5f %8.2f %11.3e\n", row["name"].get<std::string>().c_str(), o.format.c_str(),
                    static_cast<unsigned long long>(row["elements"].get<uint64_t>()), row["bits_per_weight"].get<double>(),
                    row["rel_rmse"].get<double>(), row["sqnr_db"].is_null() ? INFINITY : row["sqnr_db"].get<double>(),
                    row["max_abs_err"].get<double>());
    std::printf("%-50s %-13s %10llu %6.3f %9.5f %8.2f %11.3e\n", "total", o.format.c_str(), static_cast<unsigned long long>(elements), bits,
                rel_rmse, sqnr, max_err);
    std::printf("%zu tensor(s) quantized (%llu -> %llu bytes, calibration %s); %zu kept in their precision\n", rows.size(),
                static_cast<unsigned long long>(bytes_in), static_cast<unsigned long long>(bytes_out), o.calibration.c_str(), kept.size());
    std::map<std::string, std::vector<std::string>> kept_by_reason;
    for (const auto& [name, why] : kept) kept_by_reason[why].push_back(name);
    for (const auto& [why, names] : kept_by_reason)
        std::printf("  kept %zu: %s (%s%s)\n", names.size(), why.c_str(), names.front().c_str(), names.size() > 1 ? ", ..." : "");
    if (writer) std::printf("wrote %s\n", o.output.c_str());
    return 0;
}

}  // namespace

void add_quantize_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
    auto* cmd = app.add_subcommand("quantize", "Quantize a safetensors or GGUF model and report the error of every tensor");
    auto options = std::make_shared<QuantizeOptions>();
    // The library checks the input (and says what is wrong with it: missing, not a regular file, malformed).
    cmd->add_option("--input", options->input, "safetensors or GGUF file")->required();
    cmd->add_option("--format", options->format, "Quantization format")->required()->check(CLI::IsMember(format_names()));
    cmd->add_option("--skip", options->skip, "Keep tensors whose name matches this regular expression (RE2 syntax, repeatable)");
    cmd->add_option("--calibration", options->calibration, "Scale choice: rtn (round to nearest from absmax) or mse (clipping search)")
        ->check(CLI::IsMember({"rtn", "mse"}));
    cmd->add_option("--output", options->output, "Write the quantized model (.gguf or .safetensors)");
    cmd->add_option("--backend", options->backend, "Where the kernels run")->check(CLI::IsMember({"host", "cuda"}));
    cmd->add_flag("--json", options->as_json, "Print JSON instead of a table");
    cmd->add_flag("--force", options->force, "Replace --output if it exists (never when it is the input)");
    cmd->add_flag("--allow-empty", options->allow_empty, "Succeed, and write --output, even when no tensor can be quantized");
    cmd->callback([&global, &run, options] { run = [&global, options] { return run_quantize(global, *options); }; });
}

}  // namespace greyctl
