// The safetensors and GGUF readers and writers: round trips, every truncation, and malformed headers.
#include "core/error.hpp"
#include "error_capture.hpp"
#include "model/dtype.hpp"
#include "model/model_file.hpp"
#include "test_support.hpp"

#include <cstring>
#include <functional>
#include <sstream>

namespace {

using grey::test::message_of;
using grey::test::status_of;

using namespace grey::model;

std::vector<std::byte> as_bytes(const std::string& s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    return {p, p + s.size()};
}

template <typename T>
std::vector<std::byte> raw(const std::vector<T>& values) {
    const auto* p = reinterpret_cast<const std::byte*>(values.data());
    return {p, p + values.size() * sizeof(T)};
}

struct Fixture {
    std::vector<std::byte> f32 = raw(std::vector<float>{1.0f, -2.5f, 3.25f, 0.0f, 1e-3f, 7.0f});
    std::vector<std::byte> f16 = raw(std::vector<uint16_t>{0x3C00, 0xC000, 0x7BFF, 0x0001});
    std::vector<std::byte> bf16 = raw(std::vector<uint16_t>{0x3F80, 0xC020});
    std::vector<std::byte> q8 = std::vector<std::byte>(34 * 2, std::byte{7});
    std::vector<std::byte> q4_0 = std::vector<std::byte>(18, std::byte{0x5A});
    std::vector<std::byte> q4_1 = std::vector<std::byte>(20 * 4, std::byte{0xA5});

    std::vector<TensorToWrite> plain() const {
        return {{"a.weight", GREY_DTYPE_F32, 0, {2, 3}, f32}, {"b", GREY_DTYPE_F16, 0, {4}, f16}, {"c.bias", GREY_DTYPE_BF16, 0, {1, 2}, bf16}};
    }
    std::vector<TensorToWrite> gguf_tensors() const {
        auto t = plain();
        t.push_back({"q8", GREY_DTYPE_Q8_0, 0, {64}, q8});
        t.push_back({"q40", GREY_DTYPE_Q4_0, 0, {1, 32}, q4_0});
        t.push_back({"q41", GREY_DTYPE_Q4_1, 0, {2, 2, 32}, q4_1});
        return t;
    }
};

GgufValue scalar(GgufType type, uint64_t bits, std::size_t size) {
    GgufValue v;
    v.type = type;
    v.bytes.assign(reinterpret_cast<const char*>(&bits), size);
    return v;
}

// One entry of every GGUF metadata type, arrays of numbers, of strings and of arrays included.
std::vector<MetadataEntry> every_metadata_type() {
    std::vector<MetadataEntry> m;
    m.push_back({"general.architecture", GgufValue::text("bert")});
    m.push_back({"u8", scalar(GgufType::u8, 200, 1)});
    m.push_back({"i8", scalar(GgufType::i8, 0xF0, 1)});
    m.push_back({"u16", scalar(GgufType::u16, 60000, 2)});
    m.push_back({"i16", scalar(GgufType::i16, 0x8001, 2)});
    m.push_back({"u32", GgufValue::u32(4000000000u)});
    m.push_back({"i32", scalar(GgufType::i32, 0xFFFFFFFE, 4)});
    m.push_back({"f32", scalar(GgufType::f32, 0x40490FDB, 4)});
    m.push_back({"bool", scalar(GgufType::boolean, 1, 1)});
    m.push_back({"u64", scalar(GgufType::u64, 0x123456789ABCDEFull, 8)});
    m.push_back({"i64", scalar(GgufType::i64, 0xFFFFFFFFFFFFFFFFull, 8)});
    m.push_back({"f64", scalar(GgufType::f64, 0x400921FB54442D18ull, 8)});
    GgufValue numbers;
    numbers.type = GgufType::array;
    numbers.element_type = GgufType::i32;
    numbers.count = 3;
    numbers.bytes = std::string("\x01\x00\x00\x00\x02\x00\x00\x00\xFF\xFF\xFF\xFF", 12);
    m.push_back({"tokenizer.ggml.token_type", numbers});
    const std::vector<GgufValue> tokens = {GgufValue::text("[CLS]"), GgufValue::text("")};
    const GgufValue strings = GgufValue::array(GgufType::string, tokens);
    m.push_back({"tokenizer.ggml.tokens", strings});
    const std::vector<GgufValue> arrays = {numbers, strings};
    m.push_back({"nested", GgufValue::array(GgufType::array, arrays)});
    return m;
}

std::string write_to_string(bool gguf, const std::vector<MetadataEntry>& metadata, const std::vector<TensorToWrite>& tensors) {
    std::ostringstream out;
    if (gguf)
        write_gguf(out, metadata, tensors);
    else
        write_safetensors(out, metadata, tensors);
    return out.str();
}

void expect_same_tensors(const ModelFile& model, const std::vector<TensorToWrite>& tensors) {
    ASSERT_EQ(model.tensors.size(), tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const auto& got = model.tensors[i];
        EXPECT_EQ(got.name, tensors[i].name);
        EXPECT_EQ(got.dtype, tensors[i].dtype) << got.name;
        EXPECT_EQ(got.shape, tensors[i].shape) << got.name;
        ASSERT_EQ(got.data.size(), tensors[i].data.size()) << got.name;
        EXPECT_EQ(std::memcmp(got.data.data(), tensors[i].data.data(), got.data.size()), 0) << got.name;
    }
}

}  // namespace

TEST(Safetensors, RoundTripKeepsTensorsAndMetadata) {
    Fixture f;
    const std::vector<MetadataEntry> meta = {{"format", GgufValue::text("pt")}, {"note", GgufValue::text("ünïcode")}};
    const auto bytes = as_bytes(write_to_string(false, meta, f.plain()));
    uint64_t header = 0;
    std::memcpy(&header, bytes.data(), 8);
    EXPECT_EQ((8 + header) % 8, 0u) << "data must start 8-aligned";
    const ModelFile model = parse_model(bytes);
    EXPECT_EQ(model.format, GREY_MODEL_FORMAT_SAFETENSORS);
    expect_same_tensors(model, f.plain());
    ASSERT_EQ(model.metadata.size(), 2u);
    EXPECT_EQ(model.metadata[1].value.bytes, "ünïcode");
}

TEST(Safetensors, WriterRefusesWhatTheFormatCannotHold) {
    Fixture f;
    EXPECT_EQ(status_of([&] { write_to_string(false, {}, {{"q", GREY_DTYPE_Q8_0, 0, {32}, std::span(f.q8).first(34)}}); }), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([&] { write_to_string(false, {}, {{"a", GREY_DTYPE_F32, 0, {5}, f.f32}}); }), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([&] { write_to_string(false, {{"n", GgufValue::u32(1)}}, f.plain()); }), GREY_ERROR_INVALID_ARGUMENT);
}

TEST(Gguf, RoundTripKeepsEveryMetadataTypeAndTensorType) {
    Fixture f;
    const auto metadata = every_metadata_type();
    const auto bytes = as_bytes(write_to_string(true, metadata, f.gguf_tensors()));
    const ModelFile model = parse_model(bytes);
    EXPECT_EQ(model.format, GREY_MODEL_FORMAT_GGUF);
    EXPECT_EQ(model.gguf_version, 3u);
    expect_same_tensors(model, f.gguf_tensors());
    ASSERT_EQ(model.metadata.size(), metadata.size());
    for (std::size_t i = 0; i < metadata.size(); ++i) {
        EXPECT_EQ(model.metadata[i].key, metadata[i].key);
        EXPECT_EQ(model.metadata[i].value.type, metadata[i].value.type) << metadata[i].key;
        EXPECT_EQ(model.metadata[i].value.bytes, metadata[i].value.bytes) << metadata[i].key;
        EXPECT_EQ(model.metadata[i].value.count, metadata[i].value.count) << metadata[i].key;
    }
    const auto nested = gguf_array_items(model.metadata.back().value);
    ASSERT_EQ(nested.size(), 2u);
    EXPECT_EQ(gguf_array_items(nested[0]).size(), 3u);
    EXPECT_EQ(gguf_array_items(nested[1])[0].bytes, "[CLS]");
    EXPECT_EQ(gguf_array_items(nested[1])[1].bytes, "");
    for (const auto& t : model.tensors)
        EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data.data()) % 32, reinterpret_cast<uintptr_t>(bytes.data()) % 32) << "tensor data are 32-aligned";
}

// Every proper prefix of a valid file is a truncated file: each must be refused as corrupt, and none
// may read past its end (ASan watches that).
TEST(ModelFiles, EveryTruncationIsRefusedAsCorrupt) {
    Fixture f;
    for (const bool gguf : {false, true}) {
        const std::string whole = write_to_string(gguf, gguf ? every_metadata_type() : std::vector<MetadataEntry>{},
                                                  gguf ? f.gguf_tensors() : f.plain());
        for (std::size_t length = 0; length < whole.size(); ++length) {
            // A heap copy of exactly `length` bytes, so that any over-read lands outside the allocation.
            auto copy = std::make_unique<std::byte[]>(length);
            std::memcpy(copy.get(), whole.data(), length);
            const auto status = status_of([&] { (void)(gguf ? parse_gguf({copy.get(), length}) : parse_safetensors({copy.get(), length})); });
            // GGUF pads after the last tensor: cutting only padding leaves a complete file.
            if (status == GREY_OK && gguf && length >= whole.size() - 32) continue;
            ASSERT_EQ(status, GREY_ERROR_CORRUPT) << (gguf ? "GGUF" : "safetensors") << " cut to " << length << " of " << whole.size();
        }
    }
}

TEST(Safetensors, MalformedHeadersAreNamed) {
    const auto file = [](const std::string& header, std::size_t data_bytes) {
        std::string s(8, '\0');
        const uint64_t n = header.size();
        std::memcpy(s.data(), &n, 8);
        return as_bytes(s + header + std::string(data_bytes, '\0'));
    };
    const auto corrupt_message = [](const std::vector<std::byte>& bytes) {
        const auto m = message_of([&] { (void)parse_safetensors(bytes); });
        EXPECT_EQ(status_of([&] { (void)parse_safetensors(bytes); }), GREY_ERROR_CORRUPT);
        return m;
    };
    EXPECT_NE(corrupt_message(file("{not json", 0)).find("not valid JSON"), std::string::npos);
    EXPECT_NE(corrupt_message(file("[1]", 0)).find("not a JSON object"), std::string::npos);
    EXPECT_NE(corrupt_message(file(R"({"t":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", 4)).find("unknown dtype 'F33'"), std::string::npos);
    EXPECT_NE(corrupt_message(file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4)).find("need 8"), std::string::npos);
    EXPECT_NE(corrupt_message(file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 2)).find("do not lie inside"), std::string::npos);
    EXPECT_NE(corrupt_message(file(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4)).find("non-negative"), std::string::npos);
    EXPECT_NE(corrupt_message(file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})", 4)).find("overflows"),
              std::string::npos);
    EXPECT_NE(corrupt_message(file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8))
                  .find("overlap"),
              std::string::npos);
    EXPECT_NE(corrupt_message(file(R"({"__metadata__":{"k":1}})", 0)).find("not a string"), std::string::npos);
    std::string huge(8, '\0');
    const uint64_t claim = ~0ull;
    std::memcpy(huge.data(), &claim, 8);
    EXPECT_NE(corrupt_message(as_bytes(huge)).find("100 MB"), std::string::npos);
}

TEST(Gguf, MalformedHeadersAreNamed) {
    Fixture f;
    const std::string good = write_to_string(true, {}, {{"t", GREY_DTYPE_F32, 0, {6}, f.f32}});
    const auto patched = [&](std::size_t offset, const void* value, std::size_t size) {
        std::string s = good;
        std::memcpy(s.data() + offset, value, size);
        return as_bytes(s);
    };
    const auto message = [](const std::vector<std::byte>& bytes) { return message_of([&] { (void)parse_gguf(bytes); }); };
    const uint32_t bad_magic = 0x12345678, version1 = 1;
    const uint64_t many = 1ull << 60;
    EXPECT_NE(message(patched(0, &bad_magic, 4)).find("magic"), std::string::npos);
    EXPECT_EQ(status_of([&] { (void)parse_gguf(patched(4, &version1, 4)); }), GREY_ERROR_UNSUPPORTED);
    const uint64_t some = 1000;
    EXPECT_NE(message(patched(8, &many, 8)).find("1152921504606846976 tensors (at most 1048576)"), std::string::npos);
    EXPECT_NE(message(patched(8, &some, 8)).find("1000 tensors, more than the file holds"), std::string::npos);
    EXPECT_NE(message(patched(16, &many, 8)).find("metadata entries"), std::string::npos);
    EXPECT_NE(message(patched(16, &some, 8)).find("1000 metadata entries, more than the file holds"), std::string::npos);
    // Tensor info layout here: name length (8) + "t" (1) at 24, rank at 33, ne0 at 37, type at 45, offset at 49.
    const uint32_t rank5 = 5, type_unknown = 99, type_q8 = 8;
    const uint64_t offset_misaligned = 4, offset_past = 4096, ne_huge = 1ull << 40;
    EXPECT_NE(message(patched(33, &rank5, 4)).find("5 dimensions"), std::string::npos);
    EXPECT_NE(message(patched(45, &type_unknown, 4)).find("unknown ggml type 99"), std::string::npos);
    EXPECT_NE(message(patched(45, &type_q8, 4)).find("not a multiple of the block size 32"), std::string::npos);
    EXPECT_NE(message(patched(49, &offset_misaligned, 8)).find("not a multiple of the alignment"), std::string::npos);
    EXPECT_NE(message(patched(49, &offset_past, 8)).find("data section"), std::string::npos);
    EXPECT_NE(message(patched(37, &ne_huge, 8)).find("data section"), std::string::npos);
}

TEST(Gguf, ArraysLongerThanTheFileAreRefusedBeforeAllocating) {
    std::ostringstream out;
    const auto put = [&](const auto& v) { out.write(reinterpret_cast<const char*>(&v), sizeof v); };
    put(uint32_t{0x46554747});
    put(uint32_t{3});
    put(uint64_t{0});
    put(uint64_t{1});
    put(uint64_t{1});
    out << "k";
    put(uint32_t{9});   // array
    put(uint32_t{8});   // of strings
    put(uint64_t{1ull << 40});
    const auto bytes = as_bytes(out.str());
    EXPECT_EQ(status_of([&] { (void)parse_gguf(bytes); }), GREY_ERROR_CORRUPT);
    EXPECT_NE(message_of([&] { (void)parse_gguf(bytes); }).find("more than the file holds"), std::string::npos);
}

TEST(ModelApi, OpenListWriteAndReopenThroughTheCApi) {
    grey::test::TempDir dir;
    Fixture f;
    const auto path = dir.path() / "in.gguf";
    {
        std::ofstream(path, std::ios::binary) << write_to_string(true, every_metadata_type(), f.gguf_tensors());
    }
    grey_model* model = nullptr;
    ASSERT_EQ(grey_model_create(path.c_str(), &model), GREY_OK) << grey_last_error();
    uint64_t count = 0;
    ASSERT_EQ(grey_model_tensor_count(model, &count), GREY_OK);
    ASSERT_EQ(count, 6u);
    grey_model_tensor t{};
    t.struct_size = sizeof t;
    ASSERT_EQ(grey_model_tensor_get(model, 5, &t), GREY_OK);
    EXPECT_STREQ(t.name, "q41");
    EXPECT_EQ(t.desc->dtype, GREY_DTYPE_Q4_1);
    EXPECT_EQ(t.file_type, 3u);
    EXPECT_EQ(t.desc->rank, 3u);
    EXPECT_EQ(t.desc->shape[0], 2u);
    EXPECT_EQ(t.desc->shape[2], 32u);
    EXPECT_EQ(t.size_bytes, 80u);
    EXPECT_EQ(grey_model_tensor_get(model, 6, &t), GREY_ERROR_INVALID_ARGUMENT);

    grey_model_writer* writer = nullptr;
    ASSERT_EQ(grey_model_writer_create(GREY_MODEL_FORMAT_GGUF, &writer), GREY_OK);
    ASSERT_EQ(grey_model_writer_copy_metadata(writer, model), GREY_OK);
    ASSERT_EQ(grey_model_writer_set_metadata(writer, "general.architecture", "minilm"), GREY_OK);
    for (uint64_t i = 0; i < count; ++i) {
        ASSERT_EQ(grey_model_tensor_get(model, i, &t), GREY_OK);
        ASSERT_EQ(grey_model_writer_add_tensor(writer, t.name, t.desc, t.file_type, t.data, t.size_bytes), GREY_OK) << grey_last_error();
    }
    EXPECT_EQ(grey_model_writer_add_tensor(writer, "q41", t.desc, 0, t.data, t.size_bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_model_writer_add_tensor(writer, "short", t.desc, 0, t.data, t.size_bytes - 1), GREY_ERROR_INVALID_ARGUMENT);
    const auto copy = dir.path() / "out.gguf";
    ASSERT_EQ(grey_model_writer_write(writer, copy.c_str()), GREY_OK) << grey_last_error();
    grey_model_writer_destroy(writer);
    grey_model_destroy(model);

    ASSERT_EQ(grey_model_create(copy.c_str(), &model), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_model_tensor_count(model, &count), GREY_OK);
    EXPECT_EQ(count, 6u);
    grey_model_destroy(model);

    EXPECT_EQ(grey_model_create((dir.path() / "missing.safetensors").c_str(), &model), GREY_ERROR_NOT_FOUND);
    const auto junk = dir.write("junk.safetensors", "\x05\x00\x00\x00\x00\x00\x00\x00{}");
    EXPECT_EQ(grey_model_create(junk.c_str(), &model), GREY_ERROR_CORRUPT);
    EXPECT_NE(std::string(grey_last_error()).find("junk.safetensors"), std::string::npos) << grey_last_error();
    grey_model_destroy(nullptr);
}
