// Hostile model files: every count, length and alignment a file claims is bounded, the memory a file
// costs follows its real size, and nothing in a file may be named twice or share bytes with another
// tensor. The large files are sparse: they take a few KiB of disk whatever size they claim.
#include "child_process.hpp"
#include "core/error.hpp"
#include "error_capture.hpp"
#include "model/model_file.hpp"
#include "model/model_writer.hpp"
#include "test_support.hpp"

#include <array>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <sstream>
#include <unistd.h>

namespace {

using grey::test::message_of;
using grey::test::status_of;

using namespace grey::model;

constexpr uint64_t kMiB = 1ull << 20;

std::span<const std::byte> view(const std::string& s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }

// GGUF v3 written field by field, so that a test can claim whatever it likes.
struct Gguf {
    std::string bytes;
    Gguf(uint64_t tensors, uint64_t entries) { u32(0x46554747).u32(3).u64(tensors).u64(entries); }
    Gguf& u32(uint32_t v) { return raw(&v, 4); }
    Gguf& u64(uint64_t v) { return raw(&v, 8); }
    Gguf& raw(const void* p, std::size_t n) {
        bytes.append(static_cast<const char*>(p), n);
        return *this;
    }
    Gguf& text(std::string_view s) {
        u64(s.size());
        bytes.append(s);
        return *this;
    }
    Gguf& entry_u32(std::string_view key, uint32_t value) { return text(key).u32(4).u32(value); }
    // A one-dimensional F32 tensor of `elements` at `offset` in the data section.
    Gguf& tensor(std::string_view name, uint64_t elements, uint64_t offset) { return text(name).u32(1).u64(elements).u32(0).u64(offset); }
    Gguf& pad_to(std::size_t alignment) {
        bytes.append((alignment - bytes.size() % alignment) % alignment, '\0');
        return *this;
    }
};

std::string safetensors(const std::string& header, std::size_t data_bytes = 0) {
    std::string s(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(s.data(), &n, 8);
    return s + header + std::string(data_bytes, '\0');
}

std::string gguf_message(const std::string& bytes) { return message_of([&] { (void)parse_gguf(view(bytes)); }); }
std::string safetensors_message(const std::string& bytes) { return message_of([&] { (void)parse_safetensors(view(bytes)); }); }

// `head` followed by zeros up to `size` bytes, as a sparse file.
std::filesystem::path sparse_file(const grey::test::TempDir& dir, const char* name, const std::string& head, uint64_t size) {
    const auto path = dir.write(name, head);
    EXPECT_EQ(::truncate(path.c_str(), static_cast<off_t>(size)), 0);
    return path;
}

}  // namespace

TEST(GgufLimits, AlignmentIsAPowerOfTwoNoLargerThanTheMaximum) {
    for (const uint32_t alignment : {1u << 31, 1u << 17, 3u, 0u}) {
        const auto message = gguf_message(Gguf(0, 1).entry_u32("general.alignment", alignment).bytes);
        EXPECT_NE(message.find("general.alignment " + std::to_string(alignment)), std::string::npos) << message;
    }
    EXPECT_NE(gguf_message(Gguf(0, 1).entry_u32("general.alignment", 1u << 31).bytes).find("at most 65536"), std::string::npos);
    EXPECT_EQ(status_of([] { (void)parse_gguf(view(Gguf(0, 1).entry_u32("general.alignment", GREY_MODEL_ALIGNMENT_MAX).bytes)); }), GREY_OK);
}

TEST(GgufLimits, TheWriterRefusesAnAlignmentItCouldNotReadBack) {
    const std::vector<TensorToWrite> none;
    for (const uint32_t alignment : {GREY_MODEL_ALIGNMENT_MAX * 2, 48u}) {
        std::ostringstream out;
        const std::vector<MetadataEntry> metadata = {{"general.alignment", GgufValue::u32(alignment)}};
        EXPECT_EQ(status_of([&] { write_gguf(out, metadata, none); }), GREY_ERROR_INVALID_ARGUMENT) << alignment;
        EXPECT_LT(out.str().size(), 4096u) << "nothing like the padding was written";
    }
    std::ostringstream out;
    const std::vector<MetadataEntry> text_alignment = {{"general.alignment", GgufValue::text("64")}};
    EXPECT_EQ(status_of([&] { write_gguf(out, text_alignment, none); }), GREY_ERROR_INVALID_ARGUMENT);
}

// A file of 4 GiB (sparse) that claims 307 M metadata entries or 100 M tensors: each would fit in the
// file's size at their smallest encoding, but is far beyond any real model; refused as corrupt, not
// attempted until memory runs out.
TEST(GgufLimits, CountsBeyondTheLimitsAreCorruptEvenInAFileLargeEnoughToHoldThem) {
    grey::test::TempDir dir;
    const auto entries = sparse_file(dir, "entries.gguf", Gguf(0, 307'000'000).bytes, 4ull << 30);
    const auto tensors = sparse_file(dir, "tensors.gguf", Gguf(100'000'000, 0).bytes, 4ull << 30);
    grey_model* model = nullptr;
    EXPECT_EQ(grey_model_create(entries.c_str(), &model), GREY_ERROR_CORRUPT) << grey_last_error();
    EXPECT_NE(std::string(grey_last_error()).find("307000000 metadata entries (at most 65536)"), std::string::npos) << grey_last_error();
    EXPECT_EQ(grey_model_create(tensors.c_str(), &model), GREY_ERROR_CORRUPT) << grey_last_error();
    EXPECT_NE(std::string(grey_last_error()).find("100000000 tensors (at most 1048576)"), std::string::npos) << grey_last_error();
    EXPECT_EQ(model, nullptr);
}

TEST(GgufLimits, SmallerLimitsCanBeAskedFor) {
    const ReadLimits limits{.max_tensors = 1, .max_metadata_entries = 1};
    const auto two_entries = Gguf(0, 2).entry_u32("a", 1).entry_u32("b", 2).bytes;
    EXPECT_NE(message_of([&] { (void)parse_gguf(view(two_entries), limits); }).find("2 metadata entries (at most 1)"), std::string::npos);
    const auto two_tensors = Gguf(2, 0).tensor("a", 8, 0).tensor("b", 8, 32).pad_to(32).bytes + std::string(64, '\0');
    EXPECT_NE(message_of([&] { (void)parse_gguf(view(two_tensors), limits); }).find("2 tensors (at most 1)"), std::string::npos);
    EXPECT_EQ(status_of([&] { (void)parse_gguf(view(two_tensors)); }), GREY_OK);
}

// 2^24 empty strings: 128 MiB of (sparse) file. Each used to cost a whole value object (1.2 GB in
// all); now an array of strings is kept as the bytes it was read from: the mapped file, plus at most
// one copy of its metadata.
TEST(GgufLimits, AnArrayOfStringsCostsMemoryInProportionToTheFile) {
    grey::test::TempDir dir;
    constexpr uint64_t count = 1ull << 24;
    const std::string head = Gguf(0, 1).text("tokenizer.ggml.tokens").u32(9).u32(8).u64(count).bytes;
    const uint64_t size = head.size() + count * 8;
    const auto path = sparse_file(dir, "strings.gguf", head, size);
    const auto child = grey::test::run_in_child([&] {
        grey_model* model = nullptr;
        const grey_status status = grey_model_create(path.c_str(), &model);
        grey_model_destroy(model);
        return static_cast<int>(status);
    });
    ASSERT_TRUE(child.exited) << "signal " << child.signal;
    EXPECT_EQ(child.exit_code, GREY_OK);
    EXPECT_LT(child.peak_rss_bytes, 2 * size + 96 * kMiB) << "the file is " << size / kMiB << " MiB";
}

TEST(GgufLimits, OverlappingTensorsAreRefused) {
    // Two tensors of 16 floats (64 bytes): at offsets 0 and 32 they share 32 bytes.
    const auto file = [](uint64_t second_offset) { return Gguf(2, 0).tensor("a", 16, 0).tensor("b", 16, second_offset).pad_to(32).bytes + std::string(128, '\0'); };
    EXPECT_EQ(status_of([&] { (void)parse_gguf(view(file(64))); }), GREY_OK);
    for (const uint64_t offset : {0, 32}) {
        const auto message = gguf_message(file(offset));
        EXPECT_NE(message.find("tensors 'a' and 'b' overlap"), std::string::npos) << offset << ": " << message;
    }
    // A tensor of no bytes shares none, wherever it points.
    const auto empty_inside = Gguf(2, 0).tensor("a", 16, 0).tensor("nothing", 0, 32).pad_to(32).bytes + std::string(64, '\0');
    EXPECT_EQ(status_of([&] { (void)parse_gguf(view(empty_inside)); }), GREY_OK);
}

TEST(GgufLimits, NamesAppearOnce) {
    EXPECT_NE(gguf_message(Gguf(0, 2).entry_u32("k", 1).entry_u32("k", 2).bytes).find("metadata key 'k' appears twice"), std::string::npos);
    const auto twice = Gguf(2, 0).tensor("t", 8, 0).tensor("t", 8, 32).pad_to(32).bytes + std::string(64, '\0');
    EXPECT_NE(gguf_message(twice).find("tensor name 't' appears twice"), std::string::npos);
}

TEST(GgufLimits, NamesAndKeysHaveABoundedLength) {
    const std::string longest(GREY_MODEL_NAME_MAX, 'n'), too_long(50'000, 'n');
    const auto tensor = [](const std::string& name) { return Gguf(1, 0).tensor(name, 8, 0).pad_to(32).bytes + std::string(32, '\0'); };
    EXPECT_EQ(status_of([&] { (void)parse_gguf(view(tensor(longest))); }), GREY_OK);
    EXPECT_NE(gguf_message(tensor(too_long)).find("a tensor name of 50000 bytes (at most 1024)"), std::string::npos) << gguf_message(tensor(too_long));
    EXPECT_NE(gguf_message(Gguf(0, 1).entry_u32(std::string(GREY_MODEL_NAME_MAX + 1, 'k'), 1).bytes).find("a metadata key of 1025 bytes"),
              std::string::npos);
    const std::vector<std::byte> data(32);
    std::ostringstream out;
    EXPECT_EQ(status_of([&] { write_gguf(out, {}, std::vector<TensorToWrite>{{too_long, GREY_DTYPE_F32, 0, {8}, data}}); }), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(status_of([&] { write_safetensors(out, {}, std::vector<TensorToWrite>{{too_long, GREY_DTYPE_F32, 0, {8}, data}}); }),
              GREY_ERROR_INVALID_ARGUMENT);
    const std::vector<MetadataEntry> long_key = {{too_long, GgufValue::text("v")}};
    EXPECT_EQ(status_of([&] { write_safetensors(out, long_key, {}); }), GREY_ERROR_INVALID_ARGUMENT);
}

// grey_model_create on `bytes` written to a file: its status, and its message (which must name the file).
std::pair<grey_status, std::string> open_bytes(const std::string& bytes, const char* name) {
    grey::test::TempDir dir;
    const auto path = dir.write(name, bytes);
    grey_model* model = nullptr;
    const grey_status status = grey_model_create(path.c_str(), &model);
    grey_model_destroy(model);
    std::string message = grey_last_error();
    EXPECT_EQ(message.rfind(path.string() + ": ", 0), 0u) << message;
    return {status, message};
}

// A C caller reads a name up to its first NUL byte: "w\0x" would read as "w", a shorter name than the
// file holds, and beside a tensor "w" as a second one of that name. Names and keys holding a NUL byte
// are refused, with the field and its offset.
TEST(NamesInFiles, GgufNamesAndKeysHoldingANulByteAreCorrupt) {
    using namespace std::string_literals;
    // The second tensor's name starts at byte 24 (the fixed header) + 18 (the entry "ok") + 33 (tensor "w").
    const auto tensors = Gguf(2, 1).entry_u32("ok", 1).tensor("w", 8, 0).tensor("w\0x"s, 8, 32).pad_to(32).bytes + std::string(64, '\0');
    const auto [status, message] = open_bytes(tensors, "tensor.gguf");
    EXPECT_EQ(status, GREY_ERROR_CORRUPT) << message;
    EXPECT_NE(message.find("a tensor name holds a NUL byte (byte 1 of 3)"), std::string::npos) << message;
    EXPECT_NE(message.find("(at byte 75 of "), std::string::npos) << message;

    const auto keys = Gguf(0, 2).entry_u32("ok", 1).entry_u32("general.\0name"s, 1).bytes;
    const auto [key_status, key_message] = open_bytes(keys, "key.gguf");
    EXPECT_EQ(key_status, GREY_ERROR_CORRUPT) << key_message;
    EXPECT_NE(key_message.find("a metadata key holds a NUL byte (byte 8 of 13)"), std::string::npos) << key_message;
    EXPECT_NE(key_message.find("(at byte 42 of "), std::string::npos) << key_message;
    // A metadata string value is text with a length, never a name: a NUL byte in one is kept.
    const auto value = Gguf(0, 1).text("general.name").u32(8).text("a\0b"s).bytes;
    EXPECT_EQ(status_of([&] { (void)parse_gguf(view(value)); }), GREY_OK);
}

TEST(NamesInFiles, SafetensorsNamesAndKeysHoldingANulByteAreCorrupt) {
    const std::string entry = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
    const std::string tensor_header = R"({"__metadata__":{"k":"v"},"w\u0000x":)" + entry + "}";
    const auto [status, message] = open_bytes(safetensors(tensor_header, 4), "tensor.safetensors");
    EXPECT_EQ(status, GREY_ERROR_CORRUPT) << message;
    EXPECT_NE(message.find("a tensor name holds a NUL byte (byte 1 of 3)"), std::string::npos) << message;
    EXPECT_NE(message.find("(at byte " + std::to_string(8 + tensor_header.find("\"w\\u")) + " of "), std::string::npos) << message;

    const std::string key_header = R"({"__metadata__":{"k":"v","\u0041\u0000":"v"}})";
    const auto [key_status, key_message] = open_bytes(safetensors(key_header), "key.safetensors");
    EXPECT_EQ(key_status, GREY_ERROR_CORRUPT) << key_message;
    EXPECT_NE(key_message.find("a __metadata__ key holds a NUL byte (byte 1 of 2)"), std::string::npos) << key_message;
    EXPECT_NE(key_message.find("(at byte " + std::to_string(8 + key_header.find("\"\\u0041")) + " of "), std::string::npos) << key_message;
    // Escaped quotes and backslashes before the NUL do not hide where the key starts.
    const std::string tricky = R"({"a\\\"\u0000":)" + entry + "}";
    EXPECT_NE(safetensors_message(safetensors(tricky, 4)).find("(at byte 9 of "), std::string::npos) << safetensors_message(safetensors(tricky, 4));
    // An unknown dtype is quoted in the message, unless a NUL byte in it would cut the message short.
    EXPECT_NE(safetensors_message(safetensors(R"({"w":{"dtype":"F32\u0000x","shape":[1],"data_offsets":[0,4]}})", 4))
                  .find("the dtype of tensor 'w' holds a NUL byte (byte 3 of 5)"),
              std::string::npos);
    // A __metadata__ value is text, never a name: a NUL byte in one is kept.
    EXPECT_EQ(status_of([&] { (void)parse_safetensors(view(safetensors(R"({"__metadata__":{"k":"a\u0000b"}})"))); }), GREY_OK);
}

TEST(NamesInFiles, TheWritersRefuseNamesHoldingANulByte) {
    using namespace std::string_literals;
    const std::vector<std::byte> data(32);
    const std::vector<TensorToWrite> tensor = {{"w\0x"s, GREY_DTYPE_F32, 0, {8}, data}};
    const std::vector<MetadataEntry> key = {{"general.\0name"s, GgufValue::text("v")}};
    for (const auto write : {write_gguf, write_safetensors}) {
        std::ostringstream out;
        EXPECT_EQ(status_of([&] { write(out, {}, tensor); }), GREY_ERROR_INVALID_ARGUMENT);
        EXPECT_NE(message_of([&] { write(out, {}, tensor); }).find("a tensor name holds a NUL byte"), std::string::npos);
        EXPECT_EQ(status_of([&] { write(out, key, {}); }), GREY_ERROR_INVALID_ARGUMENT);
        EXPECT_NE(message_of([&] { write(out, key, {}); }).find("a metadata key holds a NUL byte"), std::string::npos);
        EXPECT_TRUE(out.str().empty());
    }
    for (const auto format : {GREY_MODEL_FORMAT_GGUF, GREY_MODEL_FORMAT_SAFETENSORS}) {
        grey::model::ModelWriter writer(format);
        EXPECT_EQ(status_of([&] { (void)writer.declare_tensor("w\0x"s, GREY_DTYPE_F32, 0, {8}); }), GREY_ERROR_INVALID_ARGUMENT);
        EXPECT_EQ(status_of([&] { (void)writer.add_tensor("w\0x"s, GREY_DTYPE_F32, 0, {8}, data); }), GREY_ERROR_INVALID_ARGUMENT);
        EXPECT_EQ(status_of([&] { writer.set_metadata(key.front()); }), GREY_ERROR_INVALID_ARGUMENT);
        EXPECT_EQ(status_of([&] { writer.copy_metadata(key); }), GREY_ERROR_INVALID_ARGUMENT);
    }
}

TEST(GgufLimits, DimensionsAreSignedSixtyFourBitAsTheFormatSays) {
    // ne[0] = 2^63 with ne[1] = 0 is an empty tensor by the product, but no GGUF dimension may be negative.
    const auto bytes = Gguf(1, 0).text("t").u32(2).u64(1ull << 63).u64(0).u32(0).u64(0).pad_to(32).bytes;
    EXPECT_NE(gguf_message(bytes).find("dimension"), std::string::npos) << gguf_message(bytes);
}

TEST(SafetensorsLimits, DuplicateKeysAreRefused) {
    const std::string entry = R"({"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
    EXPECT_NE(safetensors_message(safetensors(R"({"t":)" + entry + R"(,"t":)" + entry + "}", 4)).find("tensor 't' appears twice"), std::string::npos);
    EXPECT_NE(safetensors_message(safetensors(R"({"__metadata__":{},"__metadata__":{}})")).find("__metadata__ appears twice"), std::string::npos);
    EXPECT_NE(safetensors_message(safetensors(R"({"__metadata__":{"k":"a","k":"b"}})")).find("__metadata__ key 'k' appears twice"),
              std::string::npos);
    const auto field_twice = safetensors(R"({"t":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}})", 4);
    EXPECT_NE(safetensors_message(field_twice).find("tensor 't' has 'dtype' twice"), std::string::npos) << safetensors_message(field_twice);
}

TEST(SafetensorsLimits, CountsLengthsAndDepthAreBounded) {
    const ReadLimits limits{.max_tensors = 2, .max_metadata_entries = 2};
    const std::string three_tensors = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                                      R"("c":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
    EXPECT_NE(message_of([&] { (void)parse_safetensors(view(safetensors(three_tensors, 12)), limits); }).find("more than 2 tensors"), std::string::npos);
    EXPECT_EQ(status_of([&] { (void)parse_safetensors(view(safetensors(three_tensors, 12))); }), GREY_OK);
    const std::string three_entries = R"({"__metadata__":{"a":"","b":"","c":""}})";
    EXPECT_NE(message_of([&] { (void)parse_safetensors(view(safetensors(three_entries)), limits); }).find("more than 2 __metadata__ entries"),
              std::string::npos);

    const std::string too_long(GREY_MODEL_NAME_MAX + 1, 'n');
    EXPECT_NE(safetensors_message(safetensors(R"({")" + too_long + R"(":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4))
                  .find("a tensor name of 1025 bytes (at most 1024)"),
              std::string::npos);
    EXPECT_NE(safetensors_message(safetensors(R"({"__metadata__":{")" + too_long + R"(":""}})")).find("a __metadata__ key of 1025 bytes"),
              std::string::npos);
    EXPECT_NE(safetensors_message(safetensors(R"({"t":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})", 4)).find("dimensions"),
              std::string::npos);
    EXPECT_NE(safetensors_message(safetensors(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}})", 4)).find("data_offsets"),
              std::string::npos);
    // A field the format does not define is ignored, but not to any depth.
    const std::string deep = R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":)" + std::string(100, '[') + std::string(100, ']') + "}}";
    EXPECT_NE(safetensors_message(safetensors(deep, 4)).find("nests deeper than"), std::string::npos) << safetensors_message(safetensors(deep, 4));
    const std::string shallow = R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":{"x":[1,[2]]}}})";
    EXPECT_EQ(status_of([&] { (void)parse_safetensors(view(safetensors(shallow, 4))); }), GREY_OK);
}

// A header that is one long shape (5 M dimensions, 10 MB) or one deep nesting (4 M levels) used to be
// built as a JSON tree first (hundreds of MB); now it is refused as it is read.
TEST(SafetensorsLimits, AHostileHeaderIsRefusedWithoutBuildingIt) {
    std::string long_shape = R"({"t":{"dtype":"F32","data_offsets":[0,4],"shape":[)";
    for (int i = 0; i < 5'000'000; ++i) long_shape += "0,";
    long_shape += "0]}}";
    const std::string deep = R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":)" + std::string(4'000'000, '[') +
                             std::string(4'000'000, ']') + "}}";
    for (const std::string* header : std::array<const std::string*, 2>{&long_shape, &deep}) {
        const std::string file = safetensors(*header, 4);
        // What a child of this process holds before it does anything (the sanitizers make it large).
        const uint64_t idle = grey::test::run_in_child([] { return 0; }).peak_rss_bytes;
        const auto child = grey::test::run_in_child([&] { return static_cast<int>(status_of([&] { (void)parse_safetensors(view(file)); })); });
        ASSERT_TRUE(child.exited) << "signal " << child.signal;
        EXPECT_EQ(child.exit_code, GREY_ERROR_CORRUPT);
        EXPECT_LT(child.peak_rss_bytes, idle + file.size() + 16 * kMiB) << "the header is " << header->size() / kMiB << " MiB";
    }
}

TEST(ModelOpen, OnlyRegularFilesAreRead) {
    grey::test::TempDir dir;
    const auto fifo = dir.path() / "model.fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    for (const auto& path : {fifo, dir.path(), std::filesystem::path("/dev/zero")}) {
        const auto child = grey::test::run_in_child(
            [&] {
                grey_model* model = nullptr;
                const grey_status status = grey_model_create(path.c_str(), &model);
                const std::string message = grey_last_error();
                const bool named = message.find("'" + path.string() + "' is not a regular file") != std::string::npos;
                return status == GREY_ERROR_INVALID_ARGUMENT && named ? 0 : 1;
            },
            10);
        EXPECT_TRUE(child.exited && child.exit_code == 0) << path << (child.exited ? ": wrong status or message" : ": did not return");
    }
}
