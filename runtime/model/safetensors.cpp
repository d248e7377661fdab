// safetensors: an 8-byte little-endian header length, a JSON header mapping each tensor name to
// {dtype, shape, data_offsets: [begin, end]} (offsets relative to the end of the header) plus an optional
// "__metadata__" object of strings, then the data. See https://github.com/huggingface/safetensors.
#include "model/byte_cursor.hpp"
#include "model/dtype.hpp"
#include "model/model_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace grey::model {
namespace {

using json = nlohmann::ordered_json;

// The reference implementation refuses headers above 100 MB; so do we, before parsing anything.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

[[noreturn]] void corrupt(const std::string& what) { fail(GREY_ERROR_CORRUPT, "safetensors: " + what); }

uint64_t unsigned_field(const json& value, const std::string& what) {
    if (!value.is_number_unsigned()) {
        if (value.is_number_integer() && value.get<int64_t>() >= 0) return value.get<uint64_t>();
        corrupt(what + " is not a non-negative integer");
    }
    return value.get<uint64_t>();
}

}  // namespace

ModelFile parse_safetensors(std::span<const std::byte> bytes) {
    ByteCursor cursor(bytes, "safetensors");
    const auto header_length = cursor.read<uint64_t>("the header length");
    if (header_length > kMaxHeaderBytes) cursor.corrupt("the header claims " + std::to_string(header_length) + " bytes (more than the 100 MB limit)");
    const auto header_text = cursor.read_text(header_length, "the JSON header");
    const auto data = bytes.subspan(cursor.offset());

    json header;
    try {
        header = json::parse(header_text.begin(), header_text.end());
    } catch (const json::exception& e) {
        corrupt(std::string("the header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) corrupt("the header is not a JSON object");

    ModelFile model;
    model.format = GREY_MODEL_FORMAT_SAFETENSORS;
    struct Extent {
        uint64_t begin, end;
        std::size_t tensor;
    };
    std::vector<Extent> extents;
    for (const auto& [name, entry] : header.items()) {
        if (name == "__metadata__") {
            if (!entry.is_object()) corrupt("__metadata__ is not an object");
            for (const auto& [key, value] : entry.items()) {
                if (!value.is_string()) corrupt("__metadata__[\"" + key + "\"] is not a string");
                model.metadata.push_back({key, GgufValue::text(value.get<std::string>())});
            }
            continue;
        }
        const std::string what = "tensor '" + name + "'";
        if (!entry.is_object()) corrupt(what + " is not an object");
        const auto dtype_it = entry.find("dtype");
        const auto shape_it = entry.find("shape");
        const auto offsets_it = entry.find("data_offsets");
        if (dtype_it == entry.end() || !dtype_it->is_string()) corrupt(what + " has no dtype string");
        if (shape_it == entry.end() || !shape_it->is_array()) corrupt(what + " has no shape array");
        if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) corrupt(what + " has no data_offsets pair");
        const auto dtype = safetensors_dtype(dtype_it->get<std::string>());
        if (!dtype) corrupt(what + " has unknown dtype '" + dtype_it->get<std::string>() + "'");
        if (shape_it->size() > GREY_TENSOR_MAX_RANK)
            corrupt(what + " has " + std::to_string(shape_it->size()) + " dimensions (at most " + std::to_string(GREY_TENSOR_MAX_RANK) + ")");

        Tensor tensor;
        tensor.name = name;
        tensor.dtype = *dtype;
        for (const auto& d : *shape_it) tensor.shape.push_back(unsigned_field(d, what + "'s shape"));
        const uint64_t begin = unsigned_field((*offsets_it)[0], what + "'s first data offset");
        const uint64_t end = unsigned_field((*offsets_it)[1], what + "'s second data offset");
        if (begin > end || end > data.size())
            corrupt(what + "'s data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + ") do not lie inside the " +
                    std::to_string(data.size()) + " data bytes");
        const uint64_t expected = tensor_bytes(*storage_of(*dtype), tensor.shape, GREY_ERROR_CORRUPT, "safetensors: " + what);
        if (end - begin != expected)
            corrupt(what + " has " + std::to_string(end - begin) + " data bytes; its dtype and shape need " + std::to_string(expected));
        tensor.data = data.subspan(begin, end - begin);
        extents.push_back({begin, end, model.tensors.size()});
        model.tensors.push_back(std::move(tensor));
    }
    // Tensors must not share bytes: a writer that overlaps them has produced a broken file.
    std::sort(extents.begin(), extents.end(), [](const Extent& a, const Extent& b) { return a.begin < b.begin; });
    for (std::size_t i = 1; i < extents.size(); ++i)
        if (extents[i].begin < extents[i - 1].end)
            corrupt("tensors '" + model.tensors[extents[i - 1].tensor].name + "' and '" + model.tensors[extents[i].tensor].name + "' overlap");
    // File order is data order, whatever order the JSON header lists them in.
    std::vector<Tensor> ordered;
    ordered.reserve(extents.size());
    for (const auto& e : extents) ordered.push_back(std::move(model.tensors[e.tensor]));
    model.tensors = std::move(ordered);
    return model;
}

uint32_t check_safetensors_tensor(const TensorToWrite& t) {
    const auto name = safetensors_name(t.dtype);
    const char* type = dtype_name(t.dtype);
    if (!name) fail(GREY_ERROR_INVALID_ARGUMENT, "safetensors has no dtype for tensor '" + t.name + "' (" + (type ? type : "unknown") + ")");
    if (t.name == "__metadata__") fail(GREY_ERROR_INVALID_ARGUMENT, "a safetensors tensor cannot be called __metadata__");
    const uint64_t expected = tensor_bytes(*storage_of(t.dtype), t.shape, GREY_ERROR_INVALID_ARGUMENT, "tensor '" + t.name + "'");
    if (expected != t.data.size())
        fail(GREY_ERROR_INVALID_ARGUMENT, "tensor '" + t.name + "' has " + std::to_string(t.data.size()) + " bytes; its shape needs " + std::to_string(expected));
    return 0;
}

void write_safetensors(std::ostream& out, std::span<const MetadataEntry> metadata, std::span<const TensorToWrite> tensors) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        auto& meta = header["__metadata__"] = nlohmann::ordered_json::object();
        for (const auto& entry : metadata) {
            if (entry.value.type != GgufType::string)
                fail(GREY_ERROR_INVALID_ARGUMENT, "safetensors metadata holds only strings; '" + entry.key + "' is not one");
            meta[entry.key] = entry.value.bytes;
        }
    }
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        check_safetensors_tensor(t);
        if (header.contains(t.name)) fail(GREY_ERROR_INVALID_ARGUMENT, "tensor name '" + t.name + "' is used twice");
        header[t.name] = {{"dtype", std::string(*safetensors_name(t.dtype))}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.data.size()}}};
        offset += t.data.size();
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // the format pads the header so that data start 8-aligned
    const uint64_t length = text.size();
    out.write(reinterpret_cast<const char*>(&length), sizeof length);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : tensors) out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size()));
    if (!out) fail(GREY_ERROR_IO, "writing the safetensors file failed");
}

}  // namespace grey::model
