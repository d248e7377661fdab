// The C entry points of "Tensors and model files (since 0.1)" in grey.h.
#include "core/error.hpp"
#include "model/dtype.hpp"
#include "model/mapped_file.hpp"
#include "model/model_file.hpp"
#include "core/tensor_desc.hpp"

#include <algorithm>
#include <fstream>
#include <memory>

struct grey_model {
    explicit grey_model(const char* path) : file(path), contents(grey::model::parse_model(file.bytes())) {}
    grey::model::MappedFile file;
    grey::model::ModelFile contents;  // views into `file`
};

struct grey_model_writer {
    grey_model_format format;
    std::vector<grey::model::MetadataEntry> metadata;
    struct OwnedTensor {
        grey::model::TensorToWrite description;
        std::vector<std::byte> bytes;
    };
    std::vector<std::unique_ptr<OwnedTensor>> tensors;
};

namespace {

const grey_model& checked_model(const grey_model* model) {
    grey::require_non_null(model, "model");
    return *model;
}

grey_model_writer& checked_writer(grey_model_writer* writer) {
    grey::require_non_null(writer, "writer");
    return *writer;
}

void check_format(grey_model_format format) {
    const int64_t raw = grey::raw_enum(format);
    if (raw != GREY_MODEL_FORMAT_SAFETENSORS && raw != GREY_MODEL_FORMAT_GGUF)
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, "format " + std::to_string(raw) + " is not a grey_model_format");
}

}  // namespace

extern "C" {

const char* grey_dtype_name(grey_dtype dtype) { return grey::model::dtype_name(grey::raw_enum(dtype)); }

grey_status grey_tensor_bytes(const grey_tensor_desc* desc, uint64_t* out_bytes) {
    return grey::abi_guard([&] {
        grey::require_non_null(desc, "desc");
        const auto shape = grey::checked_shape(*desc);
        const auto storage = grey::model::storage_of(grey::raw_enum(desc->dtype));
        if (!storage) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "GREY_DTYPE_OTHER has no size libgrey knows");
        const uint64_t bytes = grey::model::tensor_bytes(*storage, shape, GREY_ERROR_INVALID_ARGUMENT, "the tensor");
        grey::require_non_null(out_bytes, "out_bytes");
        *out_bytes = bytes;
    });
}

grey_status grey_model_open(const char* path, grey_model** out_model) {
    return grey::abi_guard([&] {
        grey::require_non_null(path, "path");
        grey::require_non_null(out_model, "out_model");
        try {
            auto model = std::make_unique<grey_model>(path);
            *out_model = model.release();
        } catch (const grey::Error& e) {
            grey::fail(e.status(), std::string(path) + ": " + e.what());  // name the file in every message
        }
    });
}

void grey_model_destroy(grey_model* model) { std::unique_ptr<grey_model>{model}.reset(); }

grey_status grey_model_format_get(const grey_model* model, grey_model_format* out_format) {
    return grey::abi_guard([&] {
        const auto& m = checked_model(model);
        grey::require_non_null(out_format, "out_format");
        *out_format = m.contents.format;
    });
}

grey_status grey_model_tensor_count(const grey_model* model, uint64_t* out_count) {
    return grey::abi_guard([&] {
        const auto& m = checked_model(model);
        grey::require_non_null(out_count, "out_count");
        *out_count = m.contents.tensors.size();
    });
}

grey_status grey_model_tensor_get(const grey_model* model, uint64_t index, grey_model_tensor* out_tensor) {
    return grey::abi_guard([&] {
        const auto& m = checked_model(model);
        if (index >= m.contents.tensors.size())
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "tensor index " + std::to_string(index) + " is out of range (the model has " +
                                                        std::to_string(m.contents.tensors.size()) + ")");
        const auto& t = m.contents.tensors[index];
        grey_model_tensor info{};
        info.struct_size = sizeof info;
        info.file_type = t.file_type;
        info.name = t.name.c_str();
        info.data = t.data.data();
        info.size_bytes = t.data.size();
        info.desc = GREY_TENSOR_DESC_INIT;
        info.desc.dtype = t.dtype;
        info.desc.rank = static_cast<uint32_t>(t.shape.size());
        std::copy(t.shape.begin(), t.shape.end(), info.desc.shape);
        grey::copy_out_struct(info, out_tensor, sizeof(grey_model_tensor), "out_tensor");
    });
}

grey_status grey_model_writer_create(grey_model_format format, grey_model_writer** out_writer) {
    return grey::abi_guard([&] {
        check_format(format);
        grey::require_non_null(out_writer, "out_writer");
        *out_writer = std::make_unique<grey_model_writer>(grey_model_writer{format, {}, {}}).release();
    });
}

void grey_model_writer_destroy(grey_model_writer* writer) { std::unique_ptr<grey_model_writer>{writer}.reset(); }

grey_status grey_model_writer_copy_metadata(grey_model_writer* writer, const grey_model* source) {
    return grey::abi_guard([&] {
        auto& w = checked_writer(writer);
        const auto& m = checked_model(source);
        auto merged = w.metadata;
        for (const auto& entry : m.contents.metadata) {
            const auto same = std::find_if(merged.begin(), merged.end(), [&](const auto& e) { return e.key == entry.key; });
            if (same != merged.end())
                same->value = entry.value;
            else
                merged.push_back(entry);
        }
        w.metadata = std::move(merged);
    });
}

grey_status grey_model_writer_set_metadata(grey_model_writer* writer, const char* key, const char* value) {
    return grey::abi_guard([&] {
        auto& w = checked_writer(writer);
        grey::require_non_null(key, "key");
        grey::require_non_null(value, "value");
        auto entry = grey::model::MetadataEntry{key, grey::model::GgufValue::text(value)};
        const auto same = std::find_if(w.metadata.begin(), w.metadata.end(), [&](const auto& e) { return e.key == entry.key; });
        if (same != w.metadata.end())
            *same = std::move(entry);
        else
            w.metadata.push_back(std::move(entry));
    });
}

grey_status grey_model_writer_add_tensor(grey_model_writer* writer, const char* name, const grey_tensor_desc* desc, uint32_t file_type,
                                         const void* data, uint64_t size_bytes) {
    return grey::abi_guard([&] {
        auto& w = checked_writer(writer);
        grey::require_non_null(name, "name");
        grey::require_non_null(desc, "desc");
        const auto shape = grey::checked_shape(*desc);
        if (size_bytes != 0) grey::require_non_null(data, "data");
        auto owned = std::make_unique<grey_model_writer::OwnedTensor>();
        const auto* bytes = static_cast<const std::byte*>(data);
        owned->bytes.assign(bytes, bytes + size_bytes);
        owned->description = {name, desc->dtype, file_type, shape, owned->bytes};
        // Check type and size now, so that the mistake is reported where it was made.
        if (w.format == GREY_MODEL_FORMAT_GGUF)
            grey::model::check_gguf_tensor(owned->description);
        else
            grey::model::check_safetensors_tensor(owned->description);
        for (const auto& t : w.tensors)
            if (t->description.name == owned->description.name)
                grey::fail(GREY_ERROR_INVALID_ARGUMENT, std::string("tensor name '") + name + "' is used twice");
        w.tensors.push_back(std::move(owned));
    });
}

grey_status grey_model_writer_write(grey_model_writer* writer, const char* path) {
    return grey::abi_guard([&] {
        auto& w = checked_writer(writer);
        grey::require_non_null(path, "path");
        std::vector<grey::model::TensorToWrite> tensors;
        tensors.reserve(w.tensors.size());
        for (const auto& t : w.tensors) tensors.push_back(t->description);
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        if (!out) grey::fail(GREY_ERROR_IO, std::string("cannot open '") + path + "' for writing");
        if (w.format == GREY_MODEL_FORMAT_GGUF)
            grey::model::write_gguf(out, w.metadata, tensors);
        else
            grey::model::write_safetensors(out, w.metadata, tensors);
        out.close();
        if (!out) grey::fail(GREY_ERROR_IO, std::string("writing '") + path + "' failed");
    });
}

}  // extern "C"
