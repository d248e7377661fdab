// GGUF (versions 2 and 3, little-endian): magic "GGUF", u32 version, u64 tensor count, u64 metadata
// count, the metadata key/value pairs, the tensor infos (name, u32 rank, u64 ne[rank] innermost first,
// u32 ggml type, u64 offset into the data section), padding to general.alignment (default 32), then the
// data section. See ggml's docs/gguf.md.
#include "model/byte_cursor.hpp"
#include "model/dtype.hpp"
#include "model/model_file.hpp"

#include <algorithm>
#include <set>

namespace grey::model {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;        // nested arrays deeper than this are refused, not recursed into

bool is_known_type(uint32_t raw) noexcept { return raw <= static_cast<uint32_t>(GgufType::f64); }

std::string read_string(ByteCursor& in, const char* what) {
    const auto length = in.read<uint64_t>(what);
    return std::string(in.read_text(length, what));
}

GgufValue read_value(ByteCursor& in, GgufType type, const std::string& key, int depth) {
    GgufValue value;
    value.type = type;
    if (type == GgufType::string) {
        value.bytes = read_string(in, "a metadata string");
        return value;
    }
    if (type != GgufType::array) {
        const auto raw = in.take(gguf_scalar_size(type), "a metadata value");
        value.bytes.assign(reinterpret_cast<const char*>(raw.data()), raw.size());
        if (type == GgufType::boolean && value.bytes[0] != 0 && value.bytes[0] != 1)
            in.corrupt("metadata '" + key + "' is a bool holding " + std::to_string(static_cast<unsigned char>(value.bytes[0])));
        return value;
    }
    if (depth >= kMaxArrayDepth) in.corrupt("metadata '" + key + "' nests arrays deeper than " + std::to_string(kMaxArrayDepth));
    const auto element_raw = in.read<uint32_t>("an array's element type");
    if (!is_known_type(element_raw)) in.corrupt("metadata '" + key + "' is an array of unknown type " + std::to_string(element_raw));
    value.element_type = static_cast<GgufType>(element_raw);
    value.count = in.read<uint64_t>("an array's length");
    const uint32_t element_size = gguf_scalar_size(value.element_type);
    if (element_size != 0) {
        uint64_t total = 0;
        if (__builtin_mul_overflow(value.count, uint64_t{element_size}, &total) || total > in.remaining())
            in.corrupt("metadata '" + key + "' claims " + std::to_string(value.count) + " array elements, more than the file holds");
        const auto raw = in.take(total, "array elements");
        value.bytes.assign(reinterpret_cast<const char*>(raw.data()), raw.size());
        if (value.element_type == GgufType::boolean)
            for (char b : value.bytes)
                if (b != 0 && b != 1) in.corrupt("metadata '" + key + "' is a bool array holding a value other than 0 or 1");
        return value;
    }
    // Strings and arrays take at least 8 bytes each (their length): refuse counts the file cannot hold
    // before reserving memory for them.
    if (value.count > in.remaining() / 8)
        in.corrupt("metadata '" + key + "' claims " + std::to_string(value.count) + " array elements, more than the file holds");
    value.items.reserve(value.count);
    for (uint64_t i = 0; i < value.count; ++i) value.items.push_back(read_value(in, value.element_type, key, depth + 1));
    return value;
}

void write_bytes(std::ostream& out, const void* data, std::size_t size) { out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size)); }
template <typename T>
void write_pod(std::ostream& out, T value) {
    write_bytes(out, &value, sizeof value);
}
void write_string(std::ostream& out, const std::string& text) {
    write_pod<uint64_t>(out, text.size());
    write_bytes(out, text.data(), text.size());
}

void write_value(std::ostream& out, const GgufValue& value, const std::string& key) {
    if (value.type == GgufType::string) return write_string(out, value.bytes);
    if (value.type != GgufType::array) {
        if (value.bytes.size() != gguf_scalar_size(value.type)) fail(GREY_ERROR_INVALID_ARGUMENT, "metadata '" + key + "' has the wrong number of bytes for its type");
        return write_bytes(out, value.bytes.data(), value.bytes.size());
    }
    write_pod<uint32_t>(out, static_cast<uint32_t>(value.element_type));
    write_pod<uint64_t>(out, value.count);
    if (const uint32_t size = gguf_scalar_size(value.element_type); size != 0) {
        if (value.bytes.size() != value.count * size) fail(GREY_ERROR_INVALID_ARGUMENT, "metadata '" + key + "' array has the wrong number of bytes");
        return write_bytes(out, value.bytes.data(), value.bytes.size());
    }
    if (value.items.size() != value.count) fail(GREY_ERROR_INVALID_ARGUMENT, "metadata '" + key + "' array has the wrong number of items");
    for (const auto& item : value.items) write_value(out, item, key);
}

uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

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

ModelFile parse_gguf(std::span<const std::byte> bytes) {
    ByteCursor in(bytes, "GGUF");
    if (in.read<uint32_t>("the magic") != kMagic) in.corrupt("the file does not start with the GGUF magic");
    ModelFile model;
    model.format = GREY_MODEL_FORMAT_GGUF;
    model.gguf_version = in.read<uint32_t>("the version");
    if (model.gguf_version != 2 && model.gguf_version != 3)
        fail(GREY_ERROR_UNSUPPORTED, "GGUF: version " + std::to_string(model.gguf_version) + " is not supported (only 2 and 3)");
    const auto tensor_count = in.read<uint64_t>("the tensor count");
    const auto kv_count = in.read<uint64_t>("the metadata count");
    // The smallest key/value is 13 bytes (empty key, type, one byte); the smallest tensor info 24.
    if (kv_count > in.remaining() / 13) in.corrupt("the header claims " + std::to_string(kv_count) + " metadata entries, more than the file holds");
    if (tensor_count > in.remaining() / 24) in.corrupt("the header claims " + std::to_string(tensor_count) + " tensors, more than the file holds");

    uint32_t alignment = kDefaultAlignment;
    std::set<std::string> keys;
    model.metadata.reserve(kv_count);
    for (uint64_t i = 0; i < kv_count; ++i) {
        std::string key = read_string(in, "a metadata key");
        if (!keys.insert(key).second) in.corrupt("metadata key '" + key + "' appears twice");
        const auto type_raw = in.read<uint32_t>("a metadata type");
        if (!is_known_type(type_raw)) in.corrupt("metadata '" + key + "' has unknown type " + std::to_string(type_raw));
        GgufValue value = read_value(in, static_cast<GgufType>(type_raw), key, 0);
        if (key == "general.alignment") {
            if (value.type != GgufType::u32) in.corrupt("general.alignment is not a u32");
            alignment = static_cast<uint32_t>(value.as_unsigned());
            if (alignment == 0 || (alignment & (alignment - 1)) != 0) in.corrupt("general.alignment " + std::to_string(alignment) + " is not a power of two");
        }
        model.metadata.push_back({std::move(key), std::move(value)});
    }

    struct Info {
        uint64_t offset;
        uint64_t size;
    };
    std::vector<Info> infos;
    std::set<std::string> names;
    model.tensors.reserve(tensor_count);
    for (uint64_t i = 0; i < tensor_count; ++i) {
        Tensor tensor;
        tensor.name = read_string(in, "a tensor name");
        if (!names.insert(tensor.name).second) in.corrupt("tensor name '" + tensor.name + "' appears twice");
        const std::string what = "tensor '" + tensor.name + "'";
        const auto rank = in.read<uint32_t>("a tensor's rank");
        if (rank > kMaxDims) in.corrupt(what + " has " + std::to_string(rank) + " dimensions (GGUF allows at most 4)");
        tensor.shape.resize(rank);
        for (uint32_t d = 0; d < rank; ++d) tensor.shape[rank - 1 - d] = in.read<uint64_t>("a tensor dimension");
        tensor.file_type = in.read<uint32_t>("a tensor type");
        const auto type = ggml_type(tensor.file_type);
        if (!type) in.corrupt(what + " has unknown ggml type " + std::to_string(tensor.file_type));
        tensor.dtype = type->dtype;
        const uint64_t size = tensor_bytes({type->block_elements, type->block_bytes}, tensor.shape, GREY_ERROR_CORRUPT, "GGUF: " + what);
        const auto offset = in.read<uint64_t>("a tensor offset");
        if (offset % alignment != 0) in.corrupt(what + "'s offset " + std::to_string(offset) + " is not a multiple of the alignment " + std::to_string(alignment));
        infos.push_back({offset, size});
        model.tensors.push_back(std::move(tensor));
    }

    const uint64_t data_start = align_up(in.offset(), alignment);
    if (data_start > bytes.size() && !model.tensors.empty()) in.corrupt("the data section starts past the end of the file");
    const uint64_t data_size = data_start <= bytes.size() ? bytes.size() - data_start : 0;
    for (std::size_t i = 0; i < model.tensors.size(); ++i) {
        const auto [offset, size] = infos[i];
        if (offset > data_size || size > data_size - offset)
            in.corrupt("tensor '" + model.tensors[i].name + "' claims bytes [" + std::to_string(offset) + ", +" + std::to_string(size) +
                       ") of a data section of " + std::to_string(data_size) + " bytes");
        model.tensors[i].data = bytes.subspan(data_start + offset, size);
    }
    return model;
}

uint32_t check_gguf_tensor(const TensorToWrite& t) {
    if (t.shape.size() > kMaxDims) fail(GREY_ERROR_INVALID_ARGUMENT, "tensor '" + t.name + "' has more than 4 dimensions, which GGUF cannot hold");
    const std::optional<uint32_t> file_type = t.dtype == GREY_DTYPE_OTHER ? std::optional<uint32_t>(t.file_type) : ggml_type_of(t.dtype);
    const auto type = file_type ? ggml_type(*file_type) : std::nullopt;
    const char* name = dtype_name(t.dtype);
    if (!type) fail(GREY_ERROR_INVALID_ARGUMENT, "GGUF has no type for tensor '" + t.name + "' (" + (name ? name : "unknown") + ")");
    const uint64_t size = tensor_bytes({type->block_elements, type->block_bytes}, t.shape, GREY_ERROR_INVALID_ARGUMENT, "tensor '" + t.name + "'");
    if (size != t.data.size())
        fail(GREY_ERROR_INVALID_ARGUMENT, "tensor '" + t.name + "' has " + std::to_string(t.data.size()) + " bytes; its shape needs " + std::to_string(size));
    return type->id;
}

void write_gguf(std::ostream& out, std::span<const MetadataEntry> metadata, std::span<const TensorToWrite> tensors) {
    uint32_t alignment = kDefaultAlignment;
    for (const auto& entry : metadata)
        if (entry.key == "general.alignment") alignment = static_cast<uint32_t>(entry.value.as_unsigned());
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) fail(GREY_ERROR_INVALID_ARGUMENT, "general.alignment must be a power of two");

    write_pod<uint32_t>(out, kMagic);
    write_pod<uint32_t>(out, 3);
    write_pod<uint64_t>(out, tensors.size());
    write_pod<uint64_t>(out, metadata.size());
    for (const auto& entry : metadata) {
        write_string(out, entry.key);
        write_pod<uint32_t>(out, static_cast<uint32_t>(entry.value.type));
        write_value(out, entry.value, entry.key);
    }
    uint64_t offset = 0;
    std::set<std::string> names;
    for (const auto& t : tensors) {
        if (!names.insert(t.name).second) fail(GREY_ERROR_INVALID_ARGUMENT, "tensor name '" + t.name + "' is used twice");
        const uint32_t type = check_gguf_tensor(t);
        write_string(out, t.name);
        write_pod<uint32_t>(out, static_cast<uint32_t>(t.shape.size()));
        for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) write_pod<uint64_t>(out, *d);
        write_pod<uint32_t>(out, type);
        write_pod<uint64_t>(out, offset);
        offset = align_up(offset + t.data.size(), alignment);
    }
    const std::string padding(alignment, '\0');
    const auto pad_to_alignment = [&] {
        const auto position = static_cast<uint64_t>(out.tellp());
        write_bytes(out, padding.data(), align_up(position, alignment) - position);
    };
    pad_to_alignment();
    for (const auto& t : tensors) {
        write_bytes(out, t.data.data(), t.data.size());
        pad_to_alignment();
    }
    if (!out) fail(GREY_ERROR_IO, "writing the GGUF file failed");
}

ModelFile parse_model(std::span<const std::byte> bytes) {
    if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) return parse_gguf(bytes);
    return parse_safetensors(bytes);
}

}  // namespace grey::model
