// GGUF (versions 2 and 3, little-endian): magic "GGUF", u32 version, u64 tensor count, u64 metadata
// count, the metadata key/value pairs, the tensor infos (name, u32 rank, u64 ne[rank] innermost first,
// u32 ggml type, u64 offset into the data section), padding to general.alignment (default 32), then the
// data section. See ggml's docs/gguf.md.
#include "model/byte_cursor.hpp"
#include "model/dtype.hpp"
#include "model/model_file.hpp"

#include <algorithm>
#include <limits>
#include <numeric>
#include <sstream>
#include <unordered_set>

namespace grey::model {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;        // nested arrays deeper than this are refused, not recursed into
constexpr uint64_t kMaxDimension = std::numeric_limits<int64_t>::max();  // ne[] are int64 in the format
// The smallest encodings of what a count counts, to refuse counts the bytes left cannot hold before
// anything is reserved for them.
constexpr uint64_t kSmallestEntry = 8 + 4 + 1;            // an empty key, the type, a one-byte value
constexpr uint64_t kSmallestTensorInfo = 8 + 4 + 4 + 8;   // an empty name, rank 0, the type, the offset
constexpr uint64_t kSmallestString = 8;                   // its length
constexpr uint64_t kSmallestArray = 4 + 8;                // its element type and count

const std::string kAlignmentRule = "a power of two of at most " + std::to_string(GREY_MODEL_ALIGNMENT_MAX);

bool is_known_type(uint32_t raw) noexcept { return raw <= static_cast<uint32_t>(GgufType::f64); }
bool is_valid_alignment(uint64_t a) noexcept { return a != 0 && (a & (a - 1)) == 0 && a <= GREY_MODEL_ALIGNMENT_MAX; }
uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

// A key or tensor name: a GGUF string of at most GREY_MODEL_NAME_MAX bytes, as a view of the file.
std::string_view read_name(ByteCursor& in, const char* what) {
    const auto length = in.read<uint64_t>(what);
    if (length > GREY_MODEL_NAME_MAX)
        in.corrupt(std::string(what) + " of " + std::to_string(length) + " bytes (at most " + std::to_string(GREY_MODEL_NAME_MAX) + ")");
    return in.read_text(length, what);
}

// Checks `count` elements of an array of `element` without keeping them: lengths against the bytes
// left, booleans, inner arrays to kMaxArrayDepth. What was checked stays in the file's bytes.
void check_array_body(ByteCursor& in, GgufType element, uint64_t count, const std::string& key, int depth) {
    if (depth > kMaxArrayDepth) in.corrupt("metadata '" + key + "' nests arrays deeper than " + std::to_string(kMaxArrayDepth));
    const auto too_many = [&] { in.corrupt("metadata '" + key + "' claims " + std::to_string(count) + " array elements, more than the file holds"); };
    if (const uint32_t size = gguf_scalar_size(element); size != 0) {
        uint64_t total = 0;
        if (__builtin_mul_overflow(count, uint64_t{size}, &total) || total > in.remaining()) too_many();
        const auto raw = in.take(total, "array elements");
        if (element == GgufType::boolean)
            for (const std::byte b : raw)
                if (b != std::byte{0} && b != std::byte{1}) in.corrupt("metadata '" + key + "' is a bool array holding a value other than 0 or 1");
        return;
    }
    if (count > in.remaining() / (element == GgufType::string ? kSmallestString : kSmallestArray)) too_many();
    for (uint64_t i = 0; i < count; ++i) {
        if (element == GgufType::string) {
            (void)in.take(in.read<uint64_t>("a metadata string's length"), "a metadata string");
            continue;
        }
        const auto inner = in.read<uint32_t>("an array's element type");
        if (!is_known_type(inner)) in.corrupt("metadata '" + key + "' is an array of unknown type " + std::to_string(inner));
        check_array_body(in, static_cast<GgufType>(inner), in.read<uint64_t>("an array's length"), key, depth + 1);
    }
}

GgufValue read_value(ByteCursor& in, GgufType type, const std::string& key) {
    GgufValue value;
    value.type = type;
    if (type == GgufType::string) {
        value.bytes = in.read_text(in.read<uint64_t>("a metadata string's length"), "a metadata string");
        return value;
    }
    if (type != GgufType::array) {
        const auto raw = in.take(gguf_scalar_size(type), "a metadata value");
        value.bytes.assign(reinterpret_cast<const char*>(raw.data()), raw.size());
        if (type == GgufType::boolean && value.bytes[0] != 0 && value.bytes[0] != 1)
            in.corrupt("metadata '" + key + "' is a bool holding " + std::to_string(static_cast<unsigned char>(value.bytes[0])));
        return value;
    }
    const auto element_raw = in.read<uint32_t>("an array's element type");
    if (!is_known_type(element_raw)) in.corrupt("metadata '" + key + "' is an array of unknown type " + std::to_string(element_raw));
    value.element_type = static_cast<GgufType>(element_raw);
    value.count = in.read<uint64_t>("an array's length");
    const uint64_t start = in.offset();
    check_array_body(in, value.element_type, value.count, key, 1);
    const auto raw = in.since(start);
    value.bytes.assign(reinterpret_cast<const char*>(raw.data()), raw.size());
    return value;
}

void put_bytes(std::string& out, const void* data, std::size_t size) { out.append(static_cast<const char*>(data), size); }
template <typename T>
void put(std::string& out, T value) {
    put_bytes(out, &value, sizeof value);
}
void put_string(std::string& out, std::string_view text) {
    put<uint64_t>(out, text.size());
    out.append(text);
}

void put_value(std::string& out, const GgufValue& value, const std::string& key) {
    if (value.type == GgufType::string) return put_string(out, value.bytes);
    if (value.type != GgufType::array) {
        if (value.bytes.size() != gguf_scalar_size(value.type)) fail(GREY_ERROR_INVALID_ARGUMENT, "metadata '" + key + "' has the wrong number of bytes for its type");
        return put_bytes(out, value.bytes.data(), value.bytes.size());
    }
    // The encoded elements must be exactly `count` elements, so that the file reads back.
    ByteCursor check({reinterpret_cast<const std::byte*>(value.bytes.data()), value.bytes.size()}, "GGUF metadata '" + key + "'");
    try {
        check_array_body(check, value.element_type, value.count, key, 1);
    } catch (const Error& e) {
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string("the array's elements do not match its count: ") + e.what());
    }
    if (check.remaining() != 0) fail(GREY_ERROR_INVALID_ARGUMENT, "metadata '" + key + "' array has bytes past its elements");
    put<uint32_t>(out, static_cast<uint32_t>(value.element_type));
    put<uint64_t>(out, value.count);
    put_bytes(out, value.bytes.data(), value.bytes.size());
}

// general.alignment of metadata about to be written; GREY_ERROR_INVALID_ARGUMENT when it could not be
// read back.
uint32_t alignment_to_write(std::span<const MetadataEntry> metadata) {
    for (const auto& entry : metadata)
        if (entry.key == "general.alignment") {
            if (entry.value.type != GgufType::u32 || entry.value.bytes.size() != 4 || !is_valid_alignment(entry.value.as_unsigned()))
                fail(GREY_ERROR_INVALID_ARGUMENT, "general.alignment must be a u32, " + kAlignmentRule);
            return static_cast<uint32_t>(entry.value.as_unsigned());
        }
    return kDefaultAlignment;
}

}  // namespace

uint32_t gguf_scalar_size(GgufType type) noexcept {
    switch (type) {
        case GgufType::u8: case GgufType::i8: case GgufType::boolean: return 1;
        case GgufType::u16: case GgufType::i16: return 2;
        case GgufType::u32: case GgufType::i32: case GgufType::f32: return 4;
        case GgufType::u64: case GgufType::i64: case GgufType::f64: return 8;
        case GgufType::string: case GgufType::array: return 0;
    }
    return 0;
}

GgufValue GgufValue::text(std::string value) {
    GgufValue v;
    v.type = GgufType::string;
    v.bytes = std::move(value);
    return v;
}

GgufValue GgufValue::u32(uint32_t value) {
    GgufValue v;
    v.type = GgufType::u32;
    v.bytes.assign(reinterpret_cast<const char*>(&value), sizeof value);
    return v;
}

GgufValue GgufValue::array(GgufType element_type, std::span<const GgufValue> items) {
    GgufValue v;
    v.type = GgufType::array;
    v.element_type = element_type;
    v.count = items.size();
    for (const auto& item : items) {
        if (item.type != element_type) fail(GREY_ERROR_INVALID_ARGUMENT, "an array's items must all be of its element type");
        put_value(v.bytes, item, "(array item)");
    }
    return v;
}

std::vector<GgufValue> gguf_array_items(const GgufValue& array) {
    if (array.type != GgufType::array) fail(GREY_ERROR_INVALID_ARGUMENT, "the value is not an array");
    ByteCursor in({reinterpret_cast<const std::byte*>(array.bytes.data()), array.bytes.size()}, "GGUF array");
    std::vector<GgufValue> items;
    for (uint64_t i = 0; i < array.count; ++i) items.push_back(read_value(in, array.element_type, "(array item)"));
    return items;
}

uint64_t GgufValue::as_unsigned() const {
    uint64_t out = 0;
    switch (type) {
        case GgufType::u8: case GgufType::u16: case GgufType::u32: case GgufType::u64:
            std::memcpy(&out, bytes.data(), std::min<std::size_t>(bytes.size(), sizeof out));
            return out;
        default:
            fail(GREY_ERROR_CORRUPT, "GGUF: a metadata value expected to be an unsigned integer is not one");
    }
}

ModelFile parse_gguf(std::span<const std::byte> bytes, const ReadLimits& limits) {
    ByteCursor in(bytes, "GGUF");
    if (in.read<uint32_t>("the magic") != kMagic) in.corrupt("the file does not start with the GGUF magic");
    ModelFile model;
    model.format = GREY_MODEL_FORMAT_GGUF;
    model.gguf_version = in.read<uint32_t>("the version");
    if (model.gguf_version != 2 && model.gguf_version != 3)
        fail(GREY_ERROR_UNSUPPORTED, "GGUF: version " + std::to_string(model.gguf_version) + " is not supported (only 2 and 3)");
    const auto tensor_count = in.read<uint64_t>("the tensor count");
    const auto kv_count = in.read<uint64_t>("the metadata count");
    const auto check_count = [&](uint64_t count, uint64_t limit, uint64_t smallest, const char* what) {
        if (count > limit) in.corrupt("the header claims " + std::to_string(count) + " " + what + " (at most " + std::to_string(limit) + ")");
        if (count > in.remaining() / smallest) in.corrupt("the header claims " + std::to_string(count) + " " + what + ", more than the file holds");
    };
    check_count(kv_count, limits.max_metadata_entries, kSmallestEntry, "metadata entries");
    check_count(tensor_count, limits.max_tensors, kSmallestTensorInfo, "tensors");

    uint32_t alignment = kDefaultAlignment;
    std::unordered_set<std::string_view> keys;  // views of the file's bytes
    model.metadata.reserve(kv_count);
    for (uint64_t i = 0; i < kv_count; ++i) {
        const std::string_view key = read_name(in, "a metadata key");
        if (!keys.insert(key).second) in.corrupt("metadata key '" + std::string(key) + "' appears twice");
        const auto type_raw = in.read<uint32_t>("a metadata type");
        if (!is_known_type(type_raw)) in.corrupt("metadata '" + std::string(key) + "' has unknown type " + std::to_string(type_raw));
        GgufValue value = read_value(in, static_cast<GgufType>(type_raw), std::string(key));
        if (key == "general.alignment") {
            if (value.type != GgufType::u32) in.corrupt("general.alignment is not a u32");
            if (!is_valid_alignment(value.as_unsigned())) in.corrupt("general.alignment " + std::to_string(value.as_unsigned()) + " is not " + kAlignmentRule);
            alignment = static_cast<uint32_t>(value.as_unsigned());
        }
        model.metadata.push_back({std::string(key), std::move(value)});
    }

    struct Extent {
        uint64_t offset, size;
    };
    std::vector<Extent> extents;
    std::unordered_set<std::string_view> names;
    extents.reserve(tensor_count);
    model.tensors.reserve(tensor_count);
    for (uint64_t i = 0; i < tensor_count; ++i) {
        Tensor tensor;
        const std::string_view name = read_name(in, "a tensor name");
        if (!names.insert(name).second) in.corrupt("tensor name '" + std::string(name) + "' appears twice");
        tensor.name = name;
        const std::string what = "tensor '" + tensor.name + "'";
        const auto rank = in.read<uint32_t>("a tensor's rank");
        if (rank > kMaxDims) in.corrupt(what + " has " + std::to_string(rank) + " dimensions (GGUF allows at most 4)");
        tensor.shape.resize(rank);
        for (uint32_t d = 0; d < rank; ++d) {
            const auto ne = in.read<uint64_t>("a tensor dimension");
            if (ne > kMaxDimension) in.corrupt(what + " has a dimension of " + std::to_string(ne) + ", negative as GGUF's int64");
            tensor.shape[rank - 1 - d] = ne;
        }
        tensor.file_type = in.read<uint32_t>("a tensor type");
        const auto type = ggml_type(tensor.file_type);
        if (!type) in.corrupt(what + " has unknown ggml type " + std::to_string(tensor.file_type));
        tensor.dtype = type->dtype;
        const uint64_t size = tensor_bytes({type->block_elements, type->block_bytes}, tensor.shape, GREY_ERROR_CORRUPT, "GGUF: " + what);
        const auto offset = in.read<uint64_t>("a tensor offset");
        if (offset % alignment != 0) in.corrupt(what + "'s offset " + std::to_string(offset) + " is not a multiple of the alignment " + std::to_string(alignment));
        extents.push_back({offset, size});
        model.tensors.push_back(std::move(tensor));
    }

    const uint64_t data_start = align_up(in.offset(), alignment);
    if (data_start > bytes.size() && !model.tensors.empty()) in.corrupt("the data section starts past the end of the file");
    const uint64_t data_size = data_start <= bytes.size() ? bytes.size() - data_start : 0;
    for (std::size_t i = 0; i < model.tensors.size(); ++i) {
        const auto [offset, size] = extents[i];
        if (offset > data_size || size > data_size - offset)
            in.corrupt("tensor '" + model.tensors[i].name + "' claims bytes [" + std::to_string(offset) + ", +" + std::to_string(size) +
                       ") of a data section of " + std::to_string(data_size) + " bytes");
        model.tensors[i].data = bytes.subspan(data_start + offset, size);
    }
    // Tensors must not share bytes (the safetensors reader refuses that too). A tensor of no bytes
    // shares none, wherever it points.
    std::vector<std::size_t> order(extents.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::erase_if(order, [&](std::size_t i) { return extents[i].size == 0; });
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return extents[a].offset < extents[b].offset; });
    for (std::size_t k = 1; k < order.size(); ++k) {
        const auto& before = extents[order[k - 1]];
        if (extents[order[k]].offset < before.offset + before.size)
            in.corrupt("tensors '" + model.tensors[order[k - 1]].name + "' and '" + model.tensors[order[k]].name + "' overlap");
    }
    return model;
}

DeclaredTensor declare_gguf_tensor(std::string name, grey_dtype dtype, uint32_t file_type, std::vector<uint64_t> shape) {
    const std::string what = "tensor '" + name + "'";
    if (shape.size() > kMaxDims) fail(GREY_ERROR_INVALID_ARGUMENT, what + " has more than 4 dimensions, which GGUF cannot hold");
    for (const uint64_t d : shape)
        if (d > kMaxDimension) fail(GREY_ERROR_INVALID_ARGUMENT, what + " has a dimension of " + std::to_string(d) + ", more than GGUF's int64 holds");
    const std::optional<uint32_t> id = dtype == GREY_DTYPE_OTHER ? std::optional<uint32_t>(file_type) : ggml_type_of(dtype);
    const auto type = id ? ggml_type(*id) : std::nullopt;
    const char* type_name = dtype_name(dtype);
    if (!type) fail(GREY_ERROR_INVALID_ARGUMENT, "GGUF has no type for " + what + " (" + (type_name ? type_name : "unknown") + ")");
    const uint64_t size = tensor_bytes({type->block_elements, type->block_bytes}, shape, GREY_ERROR_INVALID_ARGUMENT, what);
    return {std::move(name), dtype, type->id, std::move(shape), size};
}

FileLayout layout_gguf(std::span<const MetadataEntry> metadata, std::span<const DeclaredTensor> tensors) {
    const uint32_t alignment = alignment_to_write(metadata);
    if (metadata.size() > GREY_MODEL_METADATA_MAX)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::to_string(metadata.size()) + " metadata entries (at most " + std::to_string(GREY_MODEL_METADATA_MAX) + ")");
    if (tensors.size() > GREY_MODEL_TENSORS_MAX)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::to_string(tensors.size()) + " tensors (at most " + std::to_string(GREY_MODEL_TENSORS_MAX) + ")");
    FileLayout layout;
    std::string& out = layout.header;
    put<uint32_t>(out, kMagic);
    put<uint32_t>(out, 3);
    put<uint64_t>(out, tensors.size());
    put<uint64_t>(out, metadata.size());
    std::unordered_set<std::string_view> keys;
    for (const auto& entry : metadata) {
        if (entry.key.size() > GREY_MODEL_NAME_MAX) fail(GREY_ERROR_INVALID_ARGUMENT, "a metadata key of " + std::to_string(entry.key.size()) + " bytes is too long");
        if (!keys.insert(entry.key).second) fail(GREY_ERROR_INVALID_ARGUMENT, "metadata key '" + entry.key + "' is used twice");
        put_string(out, entry.key);
        put<uint32_t>(out, static_cast<uint32_t>(entry.value.type));
        put_value(out, entry.value, entry.key);
    }
    std::vector<uint64_t> relative;
    relative.reserve(tensors.size());
    uint64_t offset = 0;
    std::unordered_set<std::string_view> names;
    for (const auto& t : tensors) {
        if (!names.insert(t.name).second) fail(GREY_ERROR_INVALID_ARGUMENT, "tensor name '" + t.name + "' is used twice");
        put_string(out, t.name);
        put<uint32_t>(out, static_cast<uint32_t>(t.shape.size()));
        for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) put<uint64_t>(out, *d);
        put<uint32_t>(out, t.file_type);
        put<uint64_t>(out, offset);
        relative.push_back(offset);
        if (t.size_bytes > std::numeric_limits<uint64_t>::max() - offset - alignment)
            fail(GREY_ERROR_INVALID_ARGUMENT, "the tensors' bytes add up to more than a 64-bit size");
        offset = align_up(offset + t.size_bytes, alignment);
    }
    out.append(align_up(out.size(), alignment) - out.size(), '\0');
    for (const uint64_t r : relative) layout.offsets.push_back(out.size() + r);
    layout.size = out.size() + offset;
    return layout;
}

void write_gguf(std::ostream& out, std::span<const MetadataEntry> metadata, std::span<const TensorToWrite> tensors) {
    write_laid_out(out, layout_gguf(metadata, declare_all(GREY_MODEL_FORMAT_GGUF, tensors)), tensors);
}

ModelFile parse_model(std::span<const std::byte> bytes) {
    if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) return parse_gguf(bytes);
    return parse_safetensors(bytes);
}

}  // namespace grey::model
