// What both formats' writers share: declaring tensors (with the name limit) and putting a laid-out
// file into a stream.
#include "core/error.hpp"
#include "model/model_file.hpp"

#include <algorithm>

namespace grey::model {

DeclaredTensor declare_tensor(grey_model_format format, std::string name, grey_dtype dtype, uint32_t file_type, std::vector<uint64_t> shape) {
    if (name.size() > GREY_MODEL_NAME_MAX)
        fail(GREY_ERROR_INVALID_ARGUMENT,
             "a tensor name of " + std::to_string(name.size()) + " bytes is longer than the limit of " + std::to_string(GREY_MODEL_NAME_MAX));
    if (format == GREY_MODEL_FORMAT_GGUF) return declare_gguf_tensor(std::move(name), dtype, file_type, std::move(shape));
    return declare_safetensors_tensor(std::move(name), dtype, std::move(shape));
}

std::vector<DeclaredTensor> declare_all(grey_model_format format, std::span<const TensorToWrite> tensors) {
    std::vector<DeclaredTensor> declared;
    declared.reserve(tensors.size());
    for (const auto& t : tensors) {
        declared.push_back(declare_tensor(format, t.name, t.dtype, t.file_type, t.shape));
        if (declared.back().size_bytes != t.data.size())
            fail(GREY_ERROR_INVALID_ARGUMENT, "tensor '" + t.name + "' has " + std::to_string(t.data.size()) + " bytes; its shape needs " +
                                                  std::to_string(declared.back().size_bytes));
    }
    return declared;
}

FileLayout layout_file(grey_model_format format, std::span<const MetadataEntry> metadata, std::span<const DeclaredTensor> tensors) {
    return format == GREY_MODEL_FORMAT_GGUF ? layout_gguf(metadata, tensors) : layout_safetensors(metadata, tensors);
}

void write_laid_out(std::ostream& out, const FileLayout& layout, std::span<const TensorToWrite> tensors) {
    out.write(layout.header.data(), static_cast<std::streamsize>(layout.header.size()));
    uint64_t position = layout.header.size();
    const auto zeros_to = [&](uint64_t end) {
        static constexpr char kZeros[4096] = {};
        for (; position < end; position += std::min<uint64_t>(sizeof kZeros, end - position))
            out.write(kZeros, static_cast<std::streamsize>(std::min<uint64_t>(sizeof kZeros, end - position)));
    };
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        zeros_to(layout.offsets[i]);
        out.write(reinterpret_cast<const char*>(tensors[i].data.data()), static_cast<std::streamsize>(tensors[i].data.size()));
        position += tensors[i].data.size();
    }
    zeros_to(layout.size);
    if (!out) fail(GREY_ERROR_IO, "writing the model file failed");
}

}  // namespace grey::model
