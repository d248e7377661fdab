// safetensors: an 8-byte little-endian header length, a JSON header mapping each tensor name to
// {dtype, shape, data_offsets: [begin, end]} (offsets relative to the end of the header) plus an optional
// "__metadata__" object of strings, then the data. See https://github.com/huggingface/safetensors.
//
// The header is read as a stream of JSON events, never built as a tree: each tensor is checked as it
// is read, a key given twice is refused (a tree keeps the last one silently), and no shape, nesting or
// count in the header costs memory beyond the tensors it describes.
#include "model/byte_cursor.hpp"
#include "model/dtype.hpp"
#include "model/model_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>
#include <unordered_set>

namespace grey::model {
namespace {

using json = nlohmann::json;

// The reference implementation refuses headers above 100 MB; so do we, before parsing anything.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
// The format nests three levels (header, tensor, shape); fields it does not define are skipped, but
// only to this depth (the reference implementation's JSON parser stops at 128).
constexpr std::size_t kMaxDepth = 64;

[[noreturn]] void corrupt(const std::string& what) { fail(GREY_ERROR_CORRUPT, "safetensors: " + what); }

std::string limit_text(uint64_t limit) { return "(at most " + std::to_string(limit) + ")"; }

// Receives the JSON parser's events (nlohmann::json's SAX interface) and builds the tensor list.
class HeaderReader {
public:
    HeaderReader(std::span<const std::byte> data, const ReadLimits& limits) : data_(data), limits_(limits) {}

    bool start_object(std::size_t) { return open(Kind::object); }
    bool start_array(std::size_t) { return open(Kind::array); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    bool key(std::string& k) {
        switch (stack_.back()) {
            case Place::top: top_key(k); break;
            case Place::tensor:
                if (!entry_.fields.insert(k).second) corrupt("tensor '" + entry_.name + "' has '" + k + "' twice");
                break;
            case Place::metadata: metadata_key(k); break;
            default: break;  // inside a skipped value
        }
        key_ = std::move(k);
        return true;
    }
    bool string(std::string& s) {
        const Place at = scalar(Kind::string);
        if (at == Place::tensor && key_ == "dtype") entry_.dtype = std::move(s);
        if (at == Place::metadata) model_.metadata.push_back({key_, GgufValue::text(std::move(s))});
        return true;
    }
    bool number_unsigned(uint64_t n) {
        const Place at = scalar(Kind::number);
        if (at == Place::shape) add_dimension(n);
        if (at == Place::offsets) add_offset(n);
        return true;
    }
    bool number_integer(int64_t n) {
        if (n >= 0) return number_unsigned(static_cast<uint64_t>(n));
        return not_a_count(scalar(Kind::other));
    }
    bool number_float(double, const std::string&) { return not_a_count(scalar(Kind::other)); }
    bool boolean(bool) { return not_a_count(scalar(Kind::other)); }
    bool null() { return not_a_count(scalar(Kind::other)); }
    bool binary(json::binary_t&) { return not_a_count(scalar(Kind::other)); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
        corrupt(std::string("the header is not valid JSON: ") + e.what());
    }

    ModelFile finish() {
        // Tensors must not share bytes: a writer that overlaps them has produced a broken file.
        std::stable_sort(extents_.begin(), extents_.end(), [](const Extent& a, const Extent& b) { return a.begin < b.begin; });
        for (std::size_t i = 1; i < extents_.size(); ++i)
            if (extents_[i].begin < extents_[i - 1].end)
                corrupt("tensors '" + model_.tensors[extents_[i - 1].tensor].name + "' and '" + model_.tensors[extents_[i].tensor].name + "' overlap");
        // File order is data order, whatever order the JSON header lists them in.
        std::vector<Tensor> ordered;
        ordered.reserve(extents_.size());
        for (const auto& e : extents_) ordered.push_back(std::move(model_.tensors[e.tensor]));
        model_.tensors = std::move(ordered);
        return std::move(model_);
    }

private:
    enum class Place { top, tensor, metadata, shape, offsets, skipped };
    enum class Kind { object, array, string, number, other };

    struct Entry {
        std::string name;
        std::optional<std::string> dtype;
        std::optional<std::vector<uint64_t>> shape;
        std::optional<std::vector<uint64_t>> offsets;
        std::unordered_set<std::string> fields;
    };
    struct Extent {
        uint64_t begin, end;
        std::size_t tensor;
    };

    [[nodiscard]] std::string what() const { return "tensor '" + entry_.name + "'"; }

    void top_key(const std::string& k) {
        const bool metadata = k == "__metadata__";
        if (!metadata && k.size() > GREY_MODEL_NAME_MAX)
            corrupt("a tensor name of " + std::to_string(k.size()) + " bytes " + limit_text(GREY_MODEL_NAME_MAX));
        if (!top_keys_.insert(k).second) corrupt(metadata ? "__metadata__ appears twice" : "tensor '" + k + "' appears twice");
        if (!metadata && ++tensor_count_ > limits_.max_tensors) corrupt("the header lists more than " + std::to_string(limits_.max_tensors) + " tensors");
    }

    void metadata_key(const std::string& k) {
        if (k.size() > GREY_MODEL_NAME_MAX) corrupt("a __metadata__ key of " + std::to_string(k.size()) + " bytes " + limit_text(GREY_MODEL_NAME_MAX));
        if (!metadata_keys_.insert(k).second) corrupt("__metadata__ key '" + k + "' appears twice");
        if (metadata_keys_.size() > limits_.max_metadata_entries)
            corrupt("the header has more than " + std::to_string(limits_.max_metadata_entries) + " __metadata__ entries");
    }

    // Where a value of `kind` that starts now belongs, refusing it where the format wants another kind.
    Place place_value(Kind kind) {
        if (stack_.empty()) {
            if (kind != Kind::object) corrupt("the header is not a JSON object");
            return Place::top;
        }
        const bool container = kind == Kind::object || kind == Kind::array;
        switch (stack_.back()) {
            case Place::top:
                if (key_ == "__metadata__") {
                    if (kind != Kind::object) corrupt("__metadata__ is not an object");
                    return Place::metadata;
                }
                if (kind != Kind::object) corrupt("tensor '" + key_ + "' is not an object");
                entry_ = Entry{key_, {}, {}, {}, {}};
                return Place::tensor;
            case Place::tensor:
                if (key_ == "dtype" && kind != Kind::string) corrupt(what() + " has no dtype string");
                if (key_ == "shape") {
                    if (kind != Kind::array) corrupt(what() + " has no shape array");
                    entry_.shape.emplace();
                    return Place::shape;
                }
                if (key_ == "data_offsets") {
                    if (kind != Kind::array) corrupt(what() + " has no data_offsets pair");
                    entry_.offsets.emplace();
                    return Place::offsets;
                }
                return container ? Place::skipped : Place::tensor;
            case Place::metadata:
                if (kind != Kind::string) corrupt("__metadata__[\"" + key_ + "\"] is not a string");
                return Place::metadata;
            case Place::shape:
            case Place::offsets:
                if (kind != Kind::number) not_a_count(stack_.back());
                return stack_.back();
            case Place::skipped: return Place::skipped;
        }
        return Place::skipped;
    }

    bool open(Kind kind) {
        const Place place = place_value(kind);
        if (stack_.size() >= kMaxDepth) corrupt("the header nests deeper than " + std::to_string(kMaxDepth) + " levels");
        stack_.push_back(place);
        return true;
    }

    bool close() {
        const Place closed = stack_.back();
        stack_.pop_back();
        if (closed == Place::tensor) add_tensor();
        return true;
    }

    // A scalar value: checked against where it stands; returns that place.
    Place scalar(Kind kind) {
        place_value(kind);
        return stack_.empty() ? Place::top : stack_.back();
    }

    bool not_a_count(Place at) {
        if (at == Place::shape) corrupt(what() + "'s shape is not a non-negative integer");
        if (at == Place::offsets) corrupt(what() + "'s data offset is not a non-negative integer");
        return true;
    }

    void add_dimension(uint64_t n) {
        if (entry_.shape->size() == GREY_TENSOR_MAX_RANK) corrupt(what() + " has more than " + std::to_string(GREY_TENSOR_MAX_RANK) + " dimensions");
        entry_.shape->push_back(n);
    }

    void add_offset(uint64_t n) {
        if (entry_.offsets->size() == 2) corrupt(what() + " has more than two data_offsets");
        entry_.offsets->push_back(n);
    }

    void add_tensor() {
        if (!entry_.dtype) corrupt(what() + " has no dtype string");
        if (!entry_.shape) corrupt(what() + " has no shape array");
        if (!entry_.offsets || entry_.offsets->size() != 2) corrupt(what() + " has no data_offsets pair");
        const auto dtype = safetensors_dtype(*entry_.dtype);
        if (!dtype) corrupt(what() + " has unknown dtype '" + *entry_.dtype + "'");
        const uint64_t begin = (*entry_.offsets)[0], end = (*entry_.offsets)[1];
        if (begin > end || end > data_.size())
            corrupt(what() + "'s data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + ") do not lie inside the " +
                    std::to_string(data_.size()) + " data bytes");
        const uint64_t expected = tensor_bytes(*storage_of(*dtype), *entry_.shape, GREY_ERROR_CORRUPT, "safetensors: " + what());
        if (end - begin != expected)
            corrupt(what() + " has " + std::to_string(end - begin) + " data bytes; its dtype and shape need " + std::to_string(expected));
        extents_.push_back({begin, end, model_.tensors.size()});
        model_.tensors.push_back({std::move(entry_.name), *dtype, 0, std::move(*entry_.shape), data_.subspan(begin, end - begin)});
        entry_ = {};
    }

    std::span<const std::byte> data_;
    ReadLimits limits_;
    std::vector<Place> stack_;
    std::string key_;  // the key of the value that comes next, in the innermost object
    Entry entry_;      // the tensor being read
    std::unordered_set<std::string> top_keys_, metadata_keys_;
    uint64_t tensor_count_ = 0;
    std::vector<Extent> extents_;
    ModelFile model_;
};

}  // namespace

ModelFile parse_safetensors(std::span<const std::byte> bytes, const ReadLimits& limits) {
    ByteCursor cursor(bytes, "safetensors");
    const auto header_length = cursor.read<uint64_t>("the header length");
    if (header_length > kMaxHeaderBytes) cursor.corrupt("the header claims " + std::to_string(header_length) + " bytes (more than the 100 MB limit)");
    const auto header_text = cursor.read_text(header_length, "the JSON header");
    HeaderReader reader(bytes.subspan(cursor.offset()), limits);
    if (!json::sax_parse(header_text.begin(), header_text.end(), &reader, json::input_format_t::json, true))
        corrupt("the header is not valid JSON");
    return reader.finish();
}

DeclaredTensor declare_safetensors_tensor(std::string name, grey_dtype dtype, std::vector<uint64_t> shape) {
    const char* type = dtype_name(dtype);
    if (!safetensors_name(dtype)) fail(GREY_ERROR_INVALID_ARGUMENT, "safetensors has no dtype for tensor '" + name + "' (" + (type ? type : "unknown") + ")");
    if (name == "__metadata__") fail(GREY_ERROR_INVALID_ARGUMENT, "a safetensors tensor cannot be called __metadata__");
    if (shape.size() > GREY_TENSOR_MAX_RANK) fail(GREY_ERROR_INVALID_ARGUMENT, "tensor '" + name + "' has more than " + std::to_string(GREY_TENSOR_MAX_RANK) + " dimensions");
    const uint64_t size = tensor_bytes(*storage_of(dtype), shape, GREY_ERROR_INVALID_ARGUMENT, "tensor '" + name + "'");
    return {std::move(name), dtype, 0, std::move(shape), size};
}

FileLayout layout_safetensors(std::span<const MetadataEntry> metadata, std::span<const DeclaredTensor> tensors) {
    if (metadata.size() > GREY_MODEL_METADATA_MAX)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::to_string(metadata.size()) + " metadata entries " + limit_text(GREY_MODEL_METADATA_MAX));
    if (tensors.size() > GREY_MODEL_TENSORS_MAX) fail(GREY_ERROR_INVALID_ARGUMENT, std::to_string(tensors.size()) + " tensors " + limit_text(GREY_MODEL_TENSORS_MAX));
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        auto& meta = header["__metadata__"] = nlohmann::ordered_json::object();
        for (const auto& entry : metadata) {
            if (entry.value.type != GgufType::string)
                fail(GREY_ERROR_INVALID_ARGUMENT, "safetensors metadata holds only strings; '" + entry.key + "' is not one");
            if (entry.key.size() > GREY_MODEL_NAME_MAX) fail(GREY_ERROR_INVALID_ARGUMENT, "a metadata key of " + std::to_string(entry.key.size()) + " bytes is too long");
            if (meta.contains(entry.key)) fail(GREY_ERROR_INVALID_ARGUMENT, "metadata key '" + entry.key + "' is used twice");
            meta[entry.key] = entry.value.bytes;
        }
    }
    FileLayout layout;
    uint64_t offset = 0;
    std::vector<uint64_t> relative;
    relative.reserve(tensors.size());
    for (const auto& t : tensors) {
        if (header.contains(t.name)) fail(GREY_ERROR_INVALID_ARGUMENT, "tensor name '" + t.name + "' is used twice");
        header[t.name] = {{"dtype", std::string(*safetensors_name(t.dtype))}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.size_bytes}}};
        relative.push_back(offset);
        if (__builtin_add_overflow(offset, t.size_bytes, &offset)) fail(GREY_ERROR_INVALID_ARGUMENT, "the tensors' bytes add up to more than a 64-bit size");
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& e) {  // a name or value that is not UTF-8
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string("safetensors holds only UTF-8 names and metadata: ") + e.what());
    }
    text.append((8 - text.size() % 8) % 8, ' ');  // the format pads the header so that data start 8-aligned
    const uint64_t length = text.size();
    layout.header.assign(reinterpret_cast<const char*>(&length), sizeof length);
    layout.header += text;
    for (const uint64_t r : relative) layout.offsets.push_back(layout.header.size() + r);
    layout.size = layout.header.size() + offset;
    return layout;
}

void write_safetensors(std::ostream& out, std::span<const MetadataEntry> metadata, std::span<const TensorToWrite> tensors) {
    write_laid_out(out, layout_safetensors(metadata, declare_all(GREY_MODEL_FORMAT_SAFETENSORS, tensors)), tensors);
}

}  // namespace grey::model
