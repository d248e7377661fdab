// The streaming model writer (declare, open, write each tensor, finish): the same bytes as the one-shot
// writer, nothing at the path before finish, nothing left behind by a failure or a kill, no silent
// replacement.
#include "child_process.hpp"
#include "model/model_file.hpp"
#include "model/model_output.hpp"
#include "test_support.hpp"

#include <cstring>
#include <signal.h>
#include <sstream>

namespace {

using namespace grey::model;
namespace fs = std::filesystem;

struct WriterDeleter {
    void operator()(grey_model_writer* w) const noexcept { grey_model_writer_destroy(w); }
};
using WriterPtr = std::unique_ptr<grey_model_writer, WriterDeleter>;

WriterPtr make_writer(grey_model_format format) {
    grey_model_writer* w = nullptr;
    EXPECT_EQ(grey_model_writer_create(format, &w), GREY_OK) << grey_last_error();
    return WriterPtr(w);
}

using grey::test::desc_of;

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

std::vector<std::string> listing(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

// Three tensors of different sizes (the middle one not a multiple of the GGUF alignment), with
// patterned bytes.
struct Tensors {
    struct One {
        std::string name;
        grey_tensor_desc desc;
        std::vector<std::byte> bytes;
    };
    std::vector<One> all;
    Tensors() {
        all.push_back({"embed.weight", desc_of({3, 5}, GREY_DTYPE_F32), {}});
        all.push_back({"norm", desc_of({7}, GREY_DTYPE_F16), {}});
        all.push_back({"head.weight", desc_of({4, 33}, GREY_DTYPE_I8), {}});
        const std::size_t sizes[] = {60, 14, 132};
        for (std::size_t t = 0; t < all.size(); ++t) {
            all[t].bytes.resize(sizes[t]);
            for (std::size_t i = 0; i < sizes[t]; ++i) all[t].bytes[i] = static_cast<std::byte>(i * 7 + t * 31 + 1);
        }
    }
};

// The file the one-shot API writes for `tensors` (and a metadata entry), as the reference.
std::string one_shot(grey_model_format format, const Tensors& tensors, const fs::path& path) {
    auto w = make_writer(format);
    EXPECT_EQ(grey_model_writer_set_metadata(w.get(), "note", "streamed"), GREY_OK);
    for (const auto& t : tensors.all)
        EXPECT_EQ(grey_model_writer_add_tensor(w.get(), t.name.c_str(), &t.desc, 0, t.bytes.data(), t.bytes.size()), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_model_writer_write(w.get(), path.c_str()), GREY_OK) << grey_last_error();
    return read_file(path);
}

WriterPtr declared(grey_model_format format, const Tensors& tensors) {
    auto w = make_writer(format);
    EXPECT_EQ(grey_model_writer_set_metadata(w.get(), "note", "streamed"), GREY_OK);
    for (std::size_t i = 0; i < tensors.all.size(); ++i) {
        const auto& t = tensors.all[i];
        uint64_t index = 99;
        EXPECT_EQ(grey_model_writer_declare_tensor(w.get(), t.name.c_str(), &t.desc, 0, &index), GREY_OK) << grey_last_error();
        EXPECT_EQ(index, i);
    }
    return w;
}

}  // namespace

TEST(StreamingWriter, WritesTheBytesOfTheOneShotWriterInAnyOrderAndPieces) {
    grey::test::TempDir dir;
    const Tensors tensors;
    for (const auto format : {GREY_MODEL_FORMAT_GGUF, GREY_MODEL_FORMAT_SAFETENSORS}) {
        const std::string reference = one_shot(format, tensors, dir.path() / "reference");
        const auto path = dir.path() / "streamed";
        auto w = declared(format, tensors);
        ASSERT_EQ(grey_model_writer_open(w.get(), path.c_str(), nullptr), GREY_OK) << grey_last_error();
        // The last tensor first, then the first in three pieces, then the middle one.
        const auto& last = tensors.all[2].bytes;
        ASSERT_EQ(grey_model_writer_write_tensor(w.get(), 2, last.data(), last.size()), GREY_OK) << grey_last_error();
        const auto& first = tensors.all[0].bytes;
        for (const auto& [from, to] : {std::pair{0, 1}, std::pair{1, 40}, std::pair{40, 60}})
            ASSERT_EQ(grey_model_writer_write_tensor(w.get(), 0, first.data() + from, static_cast<uint64_t>(to - from)), GREY_OK) << grey_last_error();
        EXPECT_FALSE(fs::exists(path)) << "nothing is at the path before finish";
        ASSERT_EQ(grey_model_writer_write_tensor(w.get(), 1, tensors.all[1].bytes.data(), 14), GREY_OK);
        ASSERT_EQ(grey_model_writer_finish(w.get()), GREY_OK) << grey_last_error();
        EXPECT_EQ(read_file(path), reference) << (format == GREY_MODEL_FORMAT_GGUF ? "GGUF" : "safetensors");
        EXPECT_EQ(grey_model_writer_finish(w.get()), GREY_ERROR_INVALID_ARGUMENT) << "a finished writer is spent";
        fs::remove(path);
    }
}

TEST(StreamingWriter, ChecksEveryStepAndStaysUsableAfterAMistake) {
    grey::test::TempDir dir;
    const Tensors tensors;
    const auto path = dir.path() / "out.gguf";
    auto w = declared(GREY_MODEL_FORMAT_GGUF, tensors);
    const auto& bytes = tensors.all[0].bytes;
    EXPECT_EQ(grey_model_writer_write_tensor(w.get(), 0, bytes.data(), bytes.size()), GREY_ERROR_INVALID_ARGUMENT) << "not open yet";
    EXPECT_EQ(grey_model_writer_write(w.get(), path.c_str()), GREY_ERROR_INVALID_ARGUMENT) << "declared tensors have no bytes";
    EXPECT_NE(std::string(grey_last_error()).find("embed.weight"), std::string::npos) << grey_last_error();
    EXPECT_FALSE(fs::exists(path));
    ASSERT_EQ(grey_model_writer_open(w.get(), path.c_str(), nullptr), GREY_OK) << grey_last_error();
    const auto d = desc_of({1}, GREY_DTYPE_F32);
    const float one = 1.0f;
    EXPECT_EQ(grey_model_writer_declare_tensor(w.get(), "late", &d, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_model_writer_add_tensor(w.get(), "late", &d, 0, &one, 4), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_model_writer_set_metadata(w.get(), "late", "x"), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_model_writer_open(w.get(), path.c_str(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_model_writer_write_tensor(w.get(), 3, bytes.data(), 1), GREY_ERROR_INVALID_ARGUMENT) << "no tensor 3";
    ASSERT_EQ(grey_model_writer_write_tensor(w.get(), 0, bytes.data(), bytes.size() - 1), GREY_OK);
    EXPECT_EQ(grey_model_writer_write_tensor(w.get(), 0, bytes.data(), 2), GREY_ERROR_INVALID_ARGUMENT) << "one byte too many";
    EXPECT_EQ(grey_model_writer_finish(w.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("'embed.weight' has 59 of its 60 bytes"), std::string::npos) << grey_last_error();
    ASSERT_EQ(grey_model_writer_write_tensor(w.get(), 0, bytes.data() + 59, 1), GREY_OK);
    ASSERT_EQ(grey_model_writer_write_tensor(w.get(), 1, tensors.all[1].bytes.data(), 14), GREY_OK);
    ASSERT_EQ(grey_model_writer_write_tensor(w.get(), 2, tensors.all[2].bytes.data(), 132), GREY_OK);
    EXPECT_EQ(grey_model_writer_finish(w.get()), GREY_OK) << grey_last_error();
    EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"out.gguf"});
}

TEST(StreamingWriter, NeverReplacesAFileUnlessAsked) {
    grey::test::TempDir dir;
    const Tensors tensors;
    const auto path = dir.write("out.safetensors", "precious");
    auto w = declared(GREY_MODEL_FORMAT_SAFETENSORS, tensors);
    EXPECT_EQ(grey_model_writer_open(w.get(), path.c_str(), nullptr), GREY_ERROR_IO);
    EXPECT_NE(std::string(grey_last_error()).find(path.string() + "' already exists"), std::string::npos) << grey_last_error();

    // A file that appears while the output is being written is not replaced either.
    fs::remove(path);
    ASSERT_EQ(grey_model_writer_open(w.get(), path.c_str(), nullptr), GREY_OK) << grey_last_error();
    for (uint64_t i = 0; i < 3; ++i)
        ASSERT_EQ(grey_model_writer_write_tensor(w.get(), i, tensors.all[i].bytes.data(), tensors.all[i].bytes.size()), GREY_OK);
    dir.write("out.safetensors", "precious");
    EXPECT_EQ(grey_model_writer_finish(w.get()), GREY_ERROR_IO);
    EXPECT_NE(std::string(grey_last_error()).find("already exists"), std::string::npos) << grey_last_error();
    w.reset();
    EXPECT_EQ(read_file(path), "precious");
    EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"out.safetensors"}) << "no temporary file is left";

    auto replacing = declared(GREY_MODEL_FORMAT_SAFETENSORS, tensors);
    grey_model_write_options options = GREY_MODEL_WRITE_OPTIONS_INIT;
    options.replace = 1;
    ASSERT_EQ(grey_model_writer_open(replacing.get(), path.c_str(), &options), GREY_OK) << grey_last_error();
    for (uint64_t i = 0; i < 3; ++i)
        ASSERT_EQ(grey_model_writer_write_tensor(replacing.get(), i, tensors.all[i].bytes.data(), tensors.all[i].bytes.size()), GREY_OK);
    ASSERT_EQ(grey_model_writer_finish(replacing.get()), GREY_OK) << grey_last_error();
    EXPECT_EQ(read_file(path), one_shot(GREY_MODEL_FORMAT_SAFETENSORS, tensors, dir.path() / "reference"));
}

TEST(StreamingWriter, AnUnfinishedOutputLeavesNothingBehind) {
    grey::test::TempDir dir;
    const Tensors tensors;
    {
        auto w = declared(GREY_MODEL_FORMAT_GGUF, tensors);
        ASSERT_EQ(grey_model_writer_open(w.get(), (dir.path() / "dropped.gguf").c_str(), nullptr), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_model_writer_write_tensor(w.get(), 2, tensors.all[2].bytes.data(), 132), GREY_OK);
    }
    EXPECT_TRUE(listing(dir.path()).empty());
    // Killed half way: the temporary file has no name, so nothing is left.
    const auto child = grey::test::run_in_child([&] {
        auto w = declared(GREY_MODEL_FORMAT_GGUF, tensors);
        if (grey_model_writer_open(w.get(), (dir.path() / "killed.gguf").c_str(), nullptr) != GREY_OK) return 1;
        if (grey_model_writer_write_tensor(w.get(), 2, tensors.all[2].bytes.data(), 132) != GREY_OK) return 1;
        ::raise(SIGKILL);
        return 2;
    });
    EXPECT_EQ(child.signal, SIGKILL);
    EXPECT_TRUE(listing(dir.path()).empty()) << listing(dir.path()).front();
    // A directory that does not exist is named.
    auto w = declared(GREY_MODEL_FORMAT_GGUF, tensors);
    const auto missing = dir.path() / "no" / "such.gguf";
    EXPECT_EQ(grey_model_writer_open(w.get(), missing.c_str(), nullptr), GREY_ERROR_IO);
    EXPECT_NE(std::string(grey_last_error()).find(missing.string()), std::string::npos) << grey_last_error();
}

// Where the file system has no unnamed temporary files, a named one stands in, and goes the same way.
TEST(StreamingWriter, TheNamedTemporaryFileIsRemovedOrRenamed) {
    grey::test::TempDir dir;
    const auto path = dir.path() / "named.bin";
    {
        ModelOutput output(path, 64, ModelOutput::Replace::no, ModelOutput::Temporary::named);
        EXPECT_EQ(listing(dir.path()).size(), 1u) << "the temporary file is there while writing";
        EXPECT_EQ(listing(dir.path()).front().rfind(".named.bin.grey-", 0), 0u) << listing(dir.path()).front();
    }
    EXPECT_TRUE(listing(dir.path()).empty());
    ModelOutput output(path, 6, ModelOutput::Replace::no, ModelOutput::Temporary::named);
    const std::string text = "abcdef";
    output.write_at(0, {reinterpret_cast<const std::byte*>(text.data()), 6});
    output.commit();
    EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"named.bin"});
    EXPECT_EQ(read_file(path), text);
}

TEST(ModelEvict, TheBytesStayReadableAfterTheirPagesAreDropped) {
    grey::test::TempDir dir;
    const Tensors tensors;
    const auto path = dir.path() / "m.safetensors";
    one_shot(GREY_MODEL_FORMAT_SAFETENSORS, tensors, path);
    grey_model* model = nullptr;
    ASSERT_EQ(grey_model_create(path.c_str(), &model), GREY_OK) << grey_last_error();
    for (uint64_t i = 0; i < 3; ++i) {
        grey_model_tensor t{};
        t.struct_size = sizeof t;
        ASSERT_EQ(grey_model_tensor_get(model, i, &t), GREY_OK);
        ASSERT_EQ(grey_model_tensor_evict(model, i), GREY_OK) << grey_last_error();
        ASSERT_EQ(t.size_bytes, tensors.all[i].bytes.size());
        EXPECT_EQ(std::memcmp(t.data, tensors.all[i].bytes.data(), t.size_bytes), 0);
    }
    EXPECT_EQ(grey_model_tensor_evict(model, 3), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_model_tensor_evict(nullptr, 0), GREY_ERROR_INVALID_ARGUMENT);
    grey_model_destroy(model);
}
