// grey_model_quantize (grey.h, "Whole models"): the policy's decisions for every tensor first (the
// streaming writer needs every tensor's type and size before it writes), then one tensor at a time:
// quantized into buffers reused for every tensor, written, and its input pages dropped, so that
// memory holds the largest tensor and its quantized form, not the model. The pages of the tensors
// that come next are on their way in from the file meanwhile, so the disk and the device (or the host's
// quantizer) work at the same time rather than in turn.
#include "core/context.hpp"
#include "core/error.hpp"
#include "core/read_ahead.hpp"
#include "core/worker_pool.hpp"
#include "model/model_handle.hpp"
#include "quant/format.hpp"
#include "quant/host_memory_quantize.hpp"
#include "quant/model_api_support.hpp"
#include "quant/model_policy.hpp"
#include "quant/staged_upload.hpp"
#include "quant/write_behind.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <exception>
#include <map>
#include <optional>
#include <span>
#include <vector>

struct grey_model_quant_result {
    std::string json;
};

namespace grey::quant {
namespace {

using json = nlohmann::ordered_json;

struct BufferCloser {
    void operator()(grey_buffer* b) const noexcept { grey_buffer_destroy(b); }
};
using BufferHandle = std::unique_ptr<grey_buffer, BufferCloser>;

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }


bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

grey_model_format output_format_of(const std::string& path) {
    if (ends_with(path, ".gguf")) return GREY_MODEL_FORMAT_GGUF;
    if (ends_with(path, ".safetensors")) return GREY_MODEL_FORMAT_SAFETENSORS;
    fail(GREY_ERROR_INVALID_ARGUMENT, "the output path must end in .gguf or .safetensors: " + path);
}

std::string text_or_empty(const char* text) { return text != nullptr ? text : ""; }

// A tensor of the input and what the policy decided for it.
struct Planned {
    grey_model_tensor tensor{};  // its data point into the mapped input
    TensorDecision decision;
};

std::vector<Planned> plan_model(const grey_model* model, const ModelPolicy& policy) {
    uint64_t count = 0;
    check_api(grey_model_tensor_count(model, &count));
    std::vector<Planned> planned(count);
    std::vector<PolicyTensor> seen(count);
    for (uint64_t i = 0; i < count; ++i) {
        planned[i].tensor.struct_size = sizeof(grey_model_tensor);
        check_api(grey_model_tensor_get(model, i, &planned[i].tensor));
        const grey_tensor_desc& d = *planned[i].tensor.desc;
        seen[i] = {planned[i].tensor.name, d.dtype, std::vector<uint64_t>(d.shape, d.shape + d.rank)};
    }
    auto decisions = policy.decide(seen);
    for (uint64_t i = 0; i < count; ++i) planned[i].decision = std::move(decisions[i]);
    return planned;
}

std::string nothing_to_quantize(const std::string& input, const std::string& format, const std::vector<Planned>& planned) {
    std::map<std::string, uint64_t> reasons;
    for (const auto& p : planned) ++reasons[*p.decision.kept];
    std::string kept;
    for (const auto& [why, n] : reasons) kept += (kept.empty() ? "" : "; ") + std::to_string(n) + " " + why;
    return "nothing to quantize in " + input + ": none of its " + std::to_string(planned.size()) +
           " tensors is a float tensor of two or more dimensions that " + format + " can hold and the policy lets quantize" +
           (kept.empty() ? "" : " (kept: " + kept + ")") +
           "; is it quantized already? An empty run (allow_empty, greyctl's --allow-empty) runs, and writes, it anyway";
}

json shape_json(const grey_tensor_desc& d) { return json(std::vector<uint64_t>(d.shape, d.shape + d.rank)); }

// The grouped formats' rows (docs/quantization.md, "Rows and groups"): rows = the first dimension, a
// row = the rest, groups of `group` along it, the last one holding `ragged_tail` elements when that is
// not 0. Written beside the shape so that a reader restores the layout without deriving it.
void add_row_layout(json& description, const grey_tensor_desc& desc, const grey_quant_params& params) {
    if (params.format != GREY_QUANT_INT4 && params.format != GREY_QUANT_INT4_SYM && params.format != GREY_QUANT_NF4) return;
    const std::span<const uint64_t> shape(desc.shape, desc.rank);
    const uint64_t group = make_layout(shape, params).run_length;
    uint64_t elements = 1;
    for (const uint64_t d : shape) elements *= d;
    const uint64_t rows = desc.rank >= 2 ? desc.shape[0] : 1;
    const uint64_t row_length = rows == 0 ? 0 : elements / rows;
    description["rows"] = rows;
    description["row_length"] = row_length;
    description["group"] = group;
    description["ragged_tail"] = group == 0 ? 0 : row_length % group;
}

// What the output holds for a quantized tensor: ggml's own type for q8_0/q4_0/q4_1 in GGUF, otherwise
// a byte tensor of libgrey's layout, described by the metadata entry grey.quant.<name>.
grey_tensor_desc stored_desc(const Planned& p, grey_model_format output_format) {
    grey_tensor_desc stored = *p.tensor.desc;
    const auto format = p.decision.params.format;
    if (output_format == GREY_MODEL_FORMAT_GGUF && format == GREY_QUANT_Q8_0) stored.dtype = GREY_DTYPE_Q8_0;
    else if (output_format == GREY_MODEL_FORMAT_GGUF && format == GREY_QUANT_Q4_0) stored.dtype = GREY_DTYPE_Q4_0;
    else if (output_format == GREY_MODEL_FORMAT_GGUF && format == GREY_QUANT_Q4_1) stored.dtype = GREY_DTYPE_Q4_1;
    else {
        stored = GREY_TENSOR_DESC_INIT;
        stored.dtype = output_format == GREY_MODEL_FORMAT_GGUF ? GREY_DTYPE_I8 : GREY_DTYPE_U8;
        stored.rank = 1;
        stored.shape[0] = p.decision.quantized_bytes;
    }
    return stored;
}

WriterHandle open_writer(const std::string& output, const grey_model* model, const std::string& format, const grey_model_quant_options& options,
                         const std::vector<Planned>& planned) {
    const grey_model_format output_format = output_format_of(output);
    grey_model_format input_format{};
    check_api(grey_model_format_get(model, &input_format));
    grey_model_writer* raw = nullptr;
    check_api(grey_model_writer_create(output_format, &raw));
    WriterHandle writer(raw);
    // safetensors metadata holds only strings: carry GGUF metadata over only to GGUF.
    if (output_format == GREY_MODEL_FORMAT_GGUF || input_format == GREY_MODEL_FORMAT_SAFETENSORS) check_api(grey_model_writer_copy_metadata(writer.get(), model));
    const std::string calibration = grey_quant_calibration_name(options.calibration);
    check_api(grey_model_writer_set_metadata(writer.get(), "grey.quantization", (format + ", calibration " + calibration).c_str()));
    for (const auto& p : planned) {
        if (p.decision.kept) {
            check_api(grey_model_writer_declare_tensor(writer.get(), p.tensor.name, p.tensor.desc, p.tensor.file_type, nullptr));
            continue;
        }
        const grey_tensor_desc stored = stored_desc(p, output_format);
        if (stored.dtype == GREY_DTYPE_I8 || stored.dtype == GREY_DTYPE_U8) {
            json description = {{"format", p.decision.format},        {"calibration", calibration},
                                {"dtype", grey_dtype_name(p.tensor.desc->dtype)}, {"shape", shape_json(*p.tensor.desc)},
                                {"axis", p.decision.params.axis},      {"group_size", p.decision.params.group_size}};
            add_row_layout(description, *p.tensor.desc, p.decision.params);
            check_api(grey_model_writer_set_metadata(writer.get(), ("grey.quant." + std::string(p.tensor.name)).c_str(), description.dump().c_str()));
        }
        check_api(grey_model_writer_declare_tensor(writer.get(), p.tensor.name, &stored, 0, nullptr));
    }
    grey_model_write_options write_options = GREY_MODEL_WRITE_OPTIONS_INIT;
    write_options.replace = options.replace != 0 ? 1u : 0u;
    check_api(grey_model_writer_open(writer.get(), output.c_str(), &write_options));
    return writer;
}

// Where the tensors are quantized: host memory (no context: on the calling thread), the mapped file
// itself through a context device's backend that takes host memory (the host device: on the context's
// worker pool), or two buffers on a context's device, made once for the largest tensor and reused, so
// that a model of thousands of tensors does not pay for an allocation and a free per tensor; the
// tensors reach the device through pinned chunks (StagedUpload).
class Quantizer {
public:
    Quantizer(const grey_model_quant_options& options, std::span<const Planned> planned) {
        if (options.context == nullptr) return;
        if (const Backend& backend = *options.context->device(options.device).backend; quantizes_host_memory(backend)) {
            host_backend_ = &backend;
            workers_ = options.context->workers.get();
            return;
        }
        uint64_t largest_source = 0, largest_result = 0;
        for (const Planned& p : planned) {
            if (p.decision.kept) continue;
            largest_source = std::max(largest_source, p.tensor.size_bytes);
            largest_result = std::max(largest_result, p.decision.quantized_bytes);
        }
        if (largest_source == 0) return;
        grey_buffer* raw = nullptr;
        check_api(grey_buffer_create(options.context, options.device, largest_source, &raw));
        source_.reset(raw);
        check_api(grey_buffer_create(options.context, options.device, std::max<uint64_t>(largest_result, 1), &raw));
        destination_.reset(raw);
        upload_.emplace(options.context, options.device, std::min(largest_source, StagedUpload::kChunkBytes));
    }

    grey_quant_report operator()(const grey_model_tensor& t, const grey_quant_params& params, std::vector<unsigned char>& out) {
        grey_quant_report report{};
        report.struct_size = sizeof report;
        if (host_backend_ != nullptr) {
            quantize_host_memory(*host_backend_, t.desc, t.data, t.size_bytes, &params, out.data(), out.size(), &report);
            return report;
        }
        if (!source_) {
            check_api(grey_quantize(t.desc, t.data, t.size_bytes, &params, out.data(), out.size(), &report));
            return report;
        }
        (*upload_)(source_.get(), 0, {static_cast<const std::byte*>(t.data), t.size_bytes});
        check_api(grey_quantize_buffer(t.desc, source_.get(), 0, &params, destination_.get(), 0, &report));
        check_api(grey_buffer_read(destination_.get(), 0, out.data(), out.size()));
        return report;
    }

    // Where the run of tensors quantized together from `first` (a tensor to quantize) ends: on the host
    // device, consecutive small ones, each of which would keep few of the pool's threads busy for a
    // short while, go to the pool together, a tensor to a thread; any other tensor goes alone.
    uint64_t run_end(std::span<const Planned> planned, uint64_t first) const {
        uint64_t end = first, bytes = 0;
        if (workers_ != nullptr && workers_->threads() > 1)
            for (; end < planned.size() && end - first < kRunTensors; ++end) {
                const Planned& p = planned[end];
                if (p.decision.kept || p.tensor.size_bytes >= kSmallTensorBytes || bytes + p.tensor.size_bytes > kRunBytes) break;
                bytes += p.tensor.size_bytes;
            }
        return std::max(end, first + 1);
    }

    // Quantizes the tensors `run` into outputs[i] (sized) with reports[i]; the first of them that fails, in
    // file order, fails the call with its name. The bytes are those of quantizing each alone.
    void run(std::span<const Planned> run, std::span<std::vector<unsigned char>> outputs, std::span<grey_quant_report> reports) {
        std::vector<std::exception_ptr> errors(run.size());
        const auto one = [&](size_t i) {
            try {
                reports[i] = (*this)(run[i].tensor, run[i].decision.params, outputs[i]);
            } catch (...) {
                errors[i] = std::current_exception();
            }
        };
        if (run.size() == 1) {
            one(0);
        } else {
            // A tensor a block: each one's own quantization then runs on its thread alone (the pool's
            // nested jobs run inline), with the bytes it gives on any number of threads.
            const auto body = [&](size_t begin, size_t end) {
                for (size_t i = begin; i < end; ++i) one(i);
            };
            workers_->run_shared(run.size(), 1, body);
        }
        for (size_t i = 0; i < run.size(); ++i) {
            if (!errors[i]) continue;
            try {
                std::rethrow_exception(errors[i]);
            } catch (const Error& e) {  // a NaN, or values too large for the format: name the tensor (a keep pattern keeps it)
                fail(e.status(), "tensor " + std::string(run[i].tensor.name) + ": " + e.what());
            }
        }
    }

private:
    static constexpr uint64_t kSmallTensorBytes = 4ull << 20;
    static constexpr uint64_t kRunBytes = 64ull << 20;
    static constexpr uint64_t kRunTensors = 1024;

    const Backend* host_backend_ = nullptr;
    WorkerPool* workers_ = nullptr;
    BufferHandle source_, destination_;
    std::optional<StagedUpload> upload_;
};

// The pages of the tensor being worked on and of those after it, this many bytes in all, on their way
// in from the file (core/read_ahead.hpp).
constexpr uint64_t read_ahead_bytes = 256ull << 20;

std::string quantize_model(const std::string& input, const char* output, const std::string& format, const grey_model_quant_options& options) {
    PolicyOptions policy_options;
    policy_options.format = format;
    policy_options.calibration = options.calibration;
    policy_options.keep_critical = options.keep_critical != 0;
    policy_options.keep_patterns = text_or_empty(options.keep_patterns);
    policy_options.quantize_patterns = text_or_empty(options.quantize_patterns);
    policy_options.format_overrides = text_or_empty(options.format_overrides);
    const int64_t calibration = raw_enum(options.calibration);
    if (calibration != GREY_CALIBRATION_RTN && calibration != GREY_CALIBRATION_MSE)
        fail(GREY_ERROR_INVALID_ARGUMENT, "options->calibration " + std::to_string(calibration) + " is not a grey_quant_calibration");
    const ModelPolicy policy(policy_options);
    if (output != nullptr) {
        output_format_of(output);
        require_output_is_not_input(input, output);
    }
    const ModelHandle model = open_model(input.c_str());
    const std::vector<Planned> planned = plan_model(model.get(), policy);
    if (options.allow_empty == 0 && std::all_of(planned.begin(), planned.end(), [](const Planned& p) { return p.decision.kept.has_value(); }))
        fail(GREY_ERROR_INVALID_ARGUMENT, nothing_to_quantize(input, format, planned));
    const WriterHandle writer = output != nullptr ? open_writer(output, model.get(), format, options, planned) : nullptr;

    json rows = json::array(), kept = json::array();
    double sum_error = 0, sum_signal = 0;
    uint64_t elements = 0, bytes_in = 0, bytes_out = 0;
    // Two sets of buffers: run k is quantized into one while the last tensor of run k - 1 is written
    // from the other.
    std::vector<std::vector<unsigned char>> quantized[2];
    // The file's first pages are asked for before the quantizer's buffers are made: the first buffer on
    // a GPU starts the device's context (a tenth of a second or more), which the disk can spend reading.
    std::vector<std::span<const std::byte>> tensor_bytes;
    tensor_bytes.reserve(planned.size());
    uint64_t total_bytes = 0;
    for (const Planned& p : planned) {
        tensor_bytes.emplace_back(static_cast<const std::byte*>(p.tensor.data), p.tensor.size_bytes);
        total_bytes += p.tensor.size_bytes;
    }
    ReadAhead read_ahead(model->file, std::move(tensor_bytes), read_ahead_bytes);
    Quantizer quantize_tensor(options, planned);
    std::optional<WriteBehind> write_behind;
    if (writer) write_behind.emplace(writer.get(), model.get());
    Progress progress(options.progress, options.progress_user, total_bytes, input);
    std::vector<grey_quant_report> reports;
    for (uint64_t i = 0, runs = 0; i < planned.size();) {
        read_ahead.at(i);
        if (const grey_model_tensor& t = planned[i].tensor; planned[i].decision.kept) {
            kept.push_back({{"name", t.name}, {"dtype", grey_dtype_name(t.desc->dtype) ? grey_dtype_name(t.desc->dtype) : "OTHER"},
                            {"shape", shape_json(*t.desc)}, {"reason", *planned[i].decision.kept}});
            if (write_behind)
                write_behind->submit(i, t.data, t.size_bytes, true);  // evicted once written
            else
                check_api(grey_model_tensor_evict(model.get(), i));
            progress.tensor_done(t.size_bytes, t.name);
            ++i;
            continue;
        }
        const uint64_t end = quantize_tensor.run_end(planned, i);
        std::vector<std::vector<unsigned char>>& outputs = quantized[runs++ % 2];
        outputs.resize(end - i);
        reports.assign(end - i, grey_quant_report{});
        for (uint64_t j = i; j < end; ++j) outputs[j - i].resize(planned[j].decision.quantized_bytes);
        quantize_tensor.run(std::span(planned).subspan(i, end - i), outputs, reports);
        for (uint64_t j = i; j < end; ++j) {
            const grey_model_tensor& t = planned[j].tensor;
            const grey_quant_report& r = reports[j - i];
            check_api(grey_model_tensor_evict(model.get(), j));
            rows.push_back({{"name", t.name}, {"format", planned[j].decision.format}, {"elements", r.elements}, {"bits_per_weight", r.bits_per_weight},
                            {"rel_rmse", r.rel_rmse}, {"sqnr_db", number_or_null(r.sqnr_db)}, {"max_abs_err", r.max_abs_err}});
            sum_error += r.sum_squared_error;
            sum_signal += r.sum_squared_signal;
            elements += r.elements;
            bytes_in += t.size_bytes;
            bytes_out += r.bytes;
            // submit waits for the write before it: the buffers of the run before this one are free
            // once this run's first tensor is submitted.
            if (write_behind) write_behind->submit(j, outputs[j - i].data(), outputs[j - i].size(), false);
            progress.tensor_done(t.size_bytes, t.name);
        }
        i = end;
    }
    if (write_behind) {
        write_behind->wait();
        write_behind.reset();
        check_api(grey_model_writer_finish(writer.get()));
    }

    const double rel_rmse = sum_signal > 0 ? std::sqrt(sum_error / sum_signal) : 0.0;
    const double sqnr = sum_error > 0 ? 10.0 * std::log10(sum_signal / sum_error) : INFINITY;
    const double bits = elements ? 8.0 * static_cast<double>(bytes_out) / static_cast<double>(elements) : 0.0;
    const json report = {{"format", format},
                         {"calibration", grey_quant_calibration_name(options.calibration)},
                         {"tensors", rows},
                         {"kept", kept},
                         {"total", {{"elements", elements}, {"bits_per_weight", bits}, {"rel_rmse", rel_rmse}, {"sqnr_db", number_or_null(sqnr)},
                                    {"bytes_in", bytes_in}, {"bytes_out", bytes_out}}}};
    return report.dump(2);
}

}  // namespace
}  // namespace grey::quant

extern "C" {

grey_status grey_model_quantize(const char* input_path, const char* output_path, const char* format, const grey_model_quant_options* options,
                                grey_model_quant_result** out_result) {
    return grey::abi_guard([&] {
        grey::require_non_null(input_path, "input_path");
        grey::require_non_null(format, "format");
        grey::require_non_null(out_result, "out_result");
        const grey_model_quant_options defaults = GREY_MODEL_QUANT_OPTIONS_INIT;
        const auto o = grey::quant::options_or_default(options, defaults, "options");
        auto result = std::make_unique<grey_model_quant_result>();
        result->json = grey::quant::quantize_model(input_path, output_path, format, o);
        *out_result = result.release();
    });
}

grey_status grey_model_quant_result_json(const grey_model_quant_result* result, char* buffer, size_t buffer_size, size_t* out_length) {
    return grey::abi_guard([&] {
        grey::require_non_null(result, "result");
        grey::copy_out_text(result->json, buffer, buffer_size, out_length);
    });
}

void grey_model_quant_result_destroy(grey_model_quant_result* result) { delete result; }

}  // extern "C"
