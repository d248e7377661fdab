// grey_model_dequantize (grey.h, "Whole models"): reads the metadata convention grey_model_quantize
// writes and restores each quantized tensor in its original shape, one tensor at a time, streaming
// into a safetensors file so that memory holds one restored tensor, not the model.
#include "core/error.hpp"
#include "core/mapped_file.hpp"
#include "model/model_file.hpp"
#include "model/model_writer.hpp"
#include "quant/format.hpp"
#include "quant/model_api_support.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <unordered_map>
#include <vector>

namespace grey::quant {
namespace {

constexpr std::string_view quant_prefix = "grey.quant.";

// How to restore one tensor: its parameters and original shape; nothing when it is copied as it is.
struct Restore {
    grey_quant_params params{};
    std::vector<uint64_t> shape;
};

grey_quant_params named(const std::string& format, const std::string& where) {
    for (const auto& n : named_params()) {
        if (format != n.name) continue;
        grey_quant_params params = GREY_QUANT_PARAMS_INIT;
        params.format = n.format;
        params.group_size = n.group_size;
        return params;
    }
    fail(GREY_ERROR_CORRUPT, where + ": unknown format '" + format + "'");
}

// Parses a grey.quant.<name> entry and checks it against the tensor it describes.
Restore described(const model::Tensor& tensor, const std::string& text) {
    const std::string where = std::string(quant_prefix) + tensor.name;
    try {
        const auto d = nlohmann::json::parse(text);
        Restore r;
        r.params = named(d.at("format").get<std::string>(), where);
        const auto calibration = d.at("calibration").get<std::string>();
        if (calibration != "rtn" && calibration != "mse") fail(GREY_ERROR_CORRUPT, where + ": unknown calibration '" + calibration + "'");
        r.params.calibration = calibration == "mse" ? GREY_CALIBRATION_MSE : GREY_CALIBRATION_RTN;
        r.params.axis = d.at("axis").get<int32_t>();
        r.params.group_size = d.at("group_size").get<uint32_t>();
        r.shape = d.at("shape").get<std::vector<uint64_t>>();
        if (r.shape.empty() || r.shape.size() > GREY_TENSOR_MAX_RANK)
            fail(GREY_ERROR_CORRUPT, where + ": a shape of " + std::to_string(r.shape.size()) + " dimensions");
        uint64_t bytes = 0;
        try {
            bytes = make_layout(r.shape, r.params).bytes;
        } catch (const Error& e) {
            fail(GREY_ERROR_CORRUPT, where + ": " + e.what());
        }
        if ((tensor.dtype != GREY_DTYPE_U8 && tensor.dtype != GREY_DTYPE_I8) || tensor.shape.size() != 1 || tensor.data.size() != bytes)
            fail(GREY_ERROR_CORRUPT, where + ": the tensor is not the " + std::to_string(bytes) + " bytes (U8 or I8) its description needs");
        return r;
    } catch (const nlohmann::json::exception& e) {
        fail(GREY_ERROR_CORRUPT, where + " is not the description grey_model_quantize writes: " + e.what());
    }
}

// ggml's own block types (a GGUF quantized to q8_0, q4_0 or q4_1) restore without metadata.
std::optional<Restore> ggml_blocks(const model::Tensor& tensor) {
    const char* format = tensor.dtype == GREY_DTYPE_Q8_0 ? "q8_0" : tensor.dtype == GREY_DTYPE_Q4_0 ? "q4_0" : tensor.dtype == GREY_DTYPE_Q4_1 ? "q4_1" : nullptr;
    if (format == nullptr) return std::nullopt;
    return Restore{named(format, tensor.name), tensor.shape};
}

std::vector<std::byte> dequantized(const Restore& r, std::span<const std::byte> bytes, grey_dtype dtype, const std::string& name) {
    grey_tensor_desc desc = GREY_TENSOR_DESC_INIT;
    desc.dtype = dtype;
    desc.rank = static_cast<uint32_t>(r.shape.size());
    std::copy(r.shape.begin(), r.shape.end(), desc.shape);
    uint64_t elements = 1;
    for (const uint64_t n : r.shape) elements *= n;
    std::vector<std::byte> out(elements * (dtype == GREY_DTYPE_F32 ? 4 : 2));
    const grey_status status = grey_dequantize(&desc, &r.params, bytes.data(), bytes.size(), out.data(), out.size());
    if (status != GREY_OK) fail(status, "tensor " + name + ": " + grey_last_error());
    return out;
}

void dequantize_model(const std::string& input, const std::string& output, const grey_model_dequant_options& options) {
    const int64_t dtype = raw_enum(options.dtype);
    if (dtype != GREY_DTYPE_F32 && dtype != GREY_DTYPE_F16 && dtype != GREY_DTYPE_BF16)
        fail(GREY_ERROR_INVALID_ARGUMENT, "options->dtype must be GREY_DTYPE_F32, F16 or BF16, not " + std::to_string(dtype));
    if (options.reserved0 != 0) fail(GREY_ERROR_INVALID_ARGUMENT, "options->reserved0 must be 0");
    if (output.size() < 12 || output.compare(output.size() - 12, 12, ".safetensors") != 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, "the output path must end in .safetensors: " + output);
    require_output_is_not_input(input, output);
    std::optional<MappedFile> file;
    std::optional<model::ModelFile> contents;
    try {
        file.emplace(input, "model file");
        contents.emplace(model::parse_model(file->bytes()));
    } catch (const Error& e) {
        fail(e.status(), input + ": " + e.what());  // name the file in every message
    }

    std::unordered_map<std::string, std::string> descriptions;  // tensor name -> its grey.quant.* text
    model::ModelWriter writer(GREY_MODEL_FORMAT_SAFETENSORS);
    for (const auto& entry : contents->metadata) {
        const bool described_tensor = entry.key.starts_with(quant_prefix);
        if (described_tensor) {
            if (entry.value.type != model::GgufType::string) fail(GREY_ERROR_CORRUPT, input + ": " + entry.key + " is not a string");
            descriptions.emplace(entry.key.substr(quant_prefix.size()), entry.value.bytes);
        } else if (entry.key != "grey.quantization" && contents->format == GREY_MODEL_FORMAT_SAFETENSORS) {
            writer.set_metadata(entry);
        }
    }
    std::vector<std::optional<Restore>> restores;
    size_t restored = 0;
    for (const auto& t : contents->tensors) {
        std::optional<Restore> r;
        if (const auto it = descriptions.find(t.name); it != descriptions.end()) {
            r = described(t, it->second);
            descriptions.erase(it);
        } else {
            r = ggml_blocks(t);
        }
        restored += r.has_value();
        if (r) writer.declare_tensor(t.name, options.dtype, 0, r->shape);
        else writer.declare_tensor(t.name, t.dtype, t.file_type, t.shape);
        restores.push_back(std::move(r));
    }
    if (!descriptions.empty())
        fail(GREY_ERROR_CORRUPT, input + ": metadata " + std::string(quant_prefix) + descriptions.begin()->first + " describes a tensor the file does not have");
    if (restored == 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, input + " holds no tensor libgrey quantized (no grey.quant.* description, no Q8_0, Q4_0 or Q4_1 "
                                                  "tensor): nothing to dequantize");
    writer.open(output, options.replace != 0 ? model::ModelOutput::Replace::yes : model::ModelOutput::Replace::no);
    uint64_t total_bytes = 0;
    for (const auto& t : contents->tensors) total_bytes += t.data.size();
    Progress progress(options.progress, options.progress_user, total_bytes, input);
    for (size_t i = 0; i < contents->tensors.size(); ++i) {
        const auto& t = contents->tensors[i];
        if (restores[i]) writer.write_tensor(i, dequantized(*restores[i], t.data, options.dtype, t.name));
        else writer.write_tensor(i, t.data);
        file->evict(t.data);
        progress.tensor_done(t.data.size(), t.name.c_str());
    }
    writer.finish();
}

}  // namespace
}  // namespace grey::quant

extern "C" {

grey_status grey_model_dequantize(const char* input_path, const char* output_path, const grey_model_dequant_options* options) {
    return grey::abi_guard([&] {
        grey::require_non_null(input_path, "input_path");
        grey::require_non_null(output_path, "output_path");
        const grey_model_dequant_options defaults = GREY_MODEL_DEQUANT_OPTIONS_INIT;
        grey::quant::dequantize_model(input_path, output_path, grey::quant::options_or_default(options, defaults, "options"));
    });
}

}  // extern "C"
