// The C entry points of "Tensors and model files (since 0.1)" in grey.h.
#include "core/error.hpp"
#include "core/tensor_desc.hpp"
#include "model/dtype.hpp"
#include "model/model_handle.hpp"
#include "model/model_writer.hpp"

#include <algorithm>
#include <memory>
#include <vector>

namespace {

// The description grey_model_tensor.desc points to.
grey_tensor_desc describe(const grey::model::Tensor& t) {
    grey_tensor_desc desc = GREY_TENSOR_DESC_INIT;
    desc.dtype = t.dtype;
    desc.rank = static_cast<uint32_t>(t.shape.size());
    std::copy(t.shape.begin(), t.shape.end(), desc.shape);
    return desc;
}

std::vector<grey_tensor_desc> describe_all(const grey::model::ModelFile& contents) {
    std::vector<grey_tensor_desc> descs;
    descs.reserve(contents.tensors.size());
    for (const auto& t : contents.tensors) descs.push_back(describe(t));
    return descs;
}

}  // namespace

grey_model::grey_model(const char* path)
    : file(path, "model file"), contents(grey::model::parse_model(file.bytes())), descs(describe_all(contents)) {}

struct grey_model_writer {
    grey::model::ModelWriter impl;
};

namespace {

const grey_model& checked_model(const grey_model* model) {
    grey::require_non_null(model, "model");
    return *model;
}

grey::model::ModelWriter& checked_writer(grey_model_writer* writer) {
    grey::require_non_null(writer, "writer");
    return writer->impl;
}

const grey::model::Tensor& checked_tensor(const grey_model& model, uint64_t index) {
    if (index >= model.contents.tensors.size())
        grey::fail(GREY_ERROR_INVALID_ARGUMENT, "tensor index " + std::to_string(index) + " is out of range (the model has " +
                                                    std::to_string(model.contents.tensors.size()) + ")");
    return model.contents.tensors[index];
}

std::span<const std::byte> host_bytes(const void* data, uint64_t size_bytes) {
    if (size_bytes != 0) grey::require_non_null(data, "data");
    return {static_cast<const std::byte*>(data), static_cast<std::size_t>(size_bytes)};
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

grey_status grey_model_create(const char* path, grey_model** out_model) {
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
        const grey_model& m = checked_model(model);
        const auto& t = checked_tensor(m, index);
        grey_model_tensor info{};
        info.struct_size = sizeof info;
        info.file_type = t.file_type;
        info.name = t.name.c_str();
        info.data = t.data.data();
        info.size_bytes = t.data.size();
        info.desc = &m.descs[index];
        grey::copy_out_struct(info, out_tensor, sizeof(grey_model_tensor), "out_tensor");
    });
}

grey_status grey_model_tensor_evict(const grey_model* model, uint64_t index) {
    return grey::abi_guard([&] {
        const auto& m = checked_model(model);
        m.file.evict(checked_tensor(m, index).data);
    });
}

grey_status grey_model_writer_create(grey_model_format format, grey_model_writer** out_writer) {
    return grey::abi_guard([&] {
        check_format(format);
        grey::require_non_null(out_writer, "out_writer");
        *out_writer = std::make_unique<grey_model_writer>(grey_model_writer{grey::model::ModelWriter(format)}).release();
    });
}

void grey_model_writer_destroy(grey_model_writer* writer) { std::unique_ptr<grey_model_writer>{writer}.reset(); }

grey_status grey_model_writer_copy_metadata(grey_model_writer* writer, const grey_model* source) {
    return grey::abi_guard([&] { checked_writer(writer).copy_metadata(checked_model(source).contents.metadata); });
}

grey_status grey_model_writer_set_metadata(grey_model_writer* writer, const char* key, const char* value) {
    return grey::abi_guard([&] {
        auto& w = checked_writer(writer);
        grey::require_non_null(key, "key");
        grey::require_non_null(value, "value");
        w.set_metadata({key, grey::model::GgufValue::text(value)});
    });
}

grey_status grey_model_writer_add_tensor(grey_model_writer* writer, const char* name, const grey_tensor_desc* desc, uint32_t file_type,
                                         const void* data, uint64_t size_bytes) {
    return grey::abi_guard([&] {
        auto& w = checked_writer(writer);
        grey::require_non_null(name, "name");
        grey::require_non_null(desc, "desc");
        auto shape = grey::checked_shape(*desc);
        (void)w.add_tensor(name, desc->dtype, file_type, std::move(shape), host_bytes(data, size_bytes));
    });
}

grey_status grey_model_writer_write(grey_model_writer* writer, const char* path) {
    return grey::abi_guard([&] {
        auto& w = checked_writer(writer);
        grey::require_non_null(path, "path");
        w.write_whole(path);
    });
}

grey_status grey_model_writer_declare_tensor(grey_model_writer* writer, const char* name, const grey_tensor_desc* desc, uint32_t file_type,
                                             uint64_t* out_index) {
    return grey::abi_guard([&] {
        auto& w = checked_writer(writer);
        grey::require_non_null(name, "name");
        grey::require_non_null(desc, "desc");
        auto shape = grey::checked_shape(*desc);
        const uint64_t index = w.declare_tensor(name, desc->dtype, file_type, std::move(shape));
        if (out_index != nullptr) *out_index = index;
    });
}

grey_status grey_model_writer_open(grey_model_writer* writer, const char* path, const grey_model_write_options* options) {
    return grey::abi_guard([&] {
        auto& w = checked_writer(writer);
        grey::require_non_null(path, "path");
        grey_model_write_options o = GREY_MODEL_WRITE_OPTIONS_INIT;
        if (options != nullptr) {
            if (options->struct_size < sizeof o)
                grey::fail(GREY_ERROR_INVALID_ARGUMENT, "options->struct_size is " + std::to_string(options->struct_size) +
                                                            "; set it with GREY_MODEL_WRITE_OPTIONS_INIT");
            o = *options;
        }
        w.open(path, o.replace != 0 ? grey::model::ModelOutput::Replace::yes : grey::model::ModelOutput::Replace::no);
    });
}

grey_status grey_model_writer_write_tensor(grey_model_writer* writer, uint64_t index, const void* data, uint64_t size_bytes) {
    return grey::abi_guard([&] { checked_writer(writer).write_tensor(index, host_bytes(data, size_bytes)); });
}

grey_status grey_model_writer_finish(grey_model_writer* writer) {
    return grey::abi_guard([&] { checked_writer(writer).finish(); });
}

}  // extern "C"
