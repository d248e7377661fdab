// What an open model sees when its file changes underneath it. The model is a private read-only
// mapping of the file, checked once when opened: replacing the file by rename never affects it; bytes
// written into the file in place show through; truncating it makes the pages past the new end raise
// SIGBUS when touched (a known limit, docs/security.md "Files that change while libgrey reads them").
#include "child_process.hpp"
#include "test_support.hpp"

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;

// A safetensors file holding one F32 tensor "w" of `count` elements, all equal to `value`.
void write_model(const fs::path& path, float value, uint64_t count = 4096) {
    const std::vector<float> data(count, value);
    grey_model_writer* writer = nullptr;
    ASSERT_EQ(grey_model_writer_create(GREY_MODEL_FORMAT_SAFETENSORS, &writer), GREY_OK);
    grey_tensor_desc desc = GREY_TENSOR_DESC_INIT;
    desc.dtype = GREY_DTYPE_F32;
    desc.rank = 1;
    desc.shape[0] = count;
    EXPECT_EQ(grey_model_writer_add_tensor(writer, "w", &desc, 0, data.data(), count * sizeof(float)), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_model_writer_write(writer, path.c_str()), GREY_OK) << grey_last_error();
    grey_model_writer_destroy(writer);
}

struct Opened {
    grey_model* model = nullptr;
    grey_model_tensor tensor{};
    explicit Opened(const fs::path& path) {
        EXPECT_EQ(grey_model_create(path.c_str(), &model), GREY_OK) << grey_last_error();
        tensor.struct_size = sizeof tensor;
        if (model != nullptr) {
            EXPECT_EQ(grey_model_tensor_get(model, 0, &tensor), GREY_OK);
        }
    }
    ~Opened() { grey_model_destroy(model); }
    Opened(const Opened&) = delete;
    Opened& operator=(const Opened&) = delete;
    [[nodiscard]] float first() const { return static_cast<const float*>(tensor.data)[0]; }
    [[nodiscard]] float last() const { return static_cast<const float*>(tensor.data)[tensor.size_bytes / sizeof(float) - 1]; }
};

// A model file of 1.0s, written afresh for each test.
class ModelFileChanges : public ::testing::Test {
protected:
    void SetUp() override { write_model(path, 1.0f); }
    grey::test::TempDir dir;
    const fs::path path = dir.path() / "m.safetensors";
};

}  // namespace

// How a host replaces a model file safely: the new file is written beside it and renamed over it
// (as libgrey's writers and greyctl quantize do). An open model keeps the old bytes, before and after
// its pages are dropped.
TEST_F(ModelFileChanges, ReplacingTheFileByRenameLeavesAnOpenModelUnchanged) {
    const Opened opened(path);
    ASSERT_NE(opened.model, nullptr);
    write_model(dir.path() / "next.safetensors", 2.0f);
    fs::rename(dir.path() / "next.safetensors", path);
    EXPECT_EQ(opened.first(), 1.0f);
    ASSERT_EQ(grey_model_tensor_evict(opened.model, 0), GREY_OK);
    EXPECT_EQ(opened.last(), 1.0f);
}

// The mapping is not a snapshot: bytes written into the file in place are what the tensor then holds.
// Names, shapes and offsets were read when the model was opened and do not change.
TEST_F(ModelFileChanges, BytesWrittenInPlaceShowThrough) {
    const Opened opened(path);
    ASSERT_NE(opened.model, nullptr);
    const float two = 2.0f;
    const int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    const auto offset = static_cast<off_t>(fs::file_size(path) - sizeof two);
    ASSERT_EQ(::pwrite(fd, &two, sizeof two, offset), static_cast<ssize_t>(sizeof two));
    ::close(fd);
    EXPECT_EQ(opened.last(), 2.0f);
    EXPECT_STREQ(opened.tensor.name, "w");
}

// The known limit: a file truncated while open leaves pages with no bytes behind them, and touching
// one raises SIGBUS, which ends the process unless the host handles it. (The child restores the
// default action, which a sanitizer would otherwise replace with its own report.)
TEST_F(ModelFileChanges, KnownLimitTruncatingAnOpenModelRaisesSigbus) {
    const auto child = grey::test::run_in_child([&] {
        const Opened opened(path);
        if (opened.model == nullptr) return 1;
        if (opened.first() != 1.0f) return 2;
        if (::truncate(path.c_str(), 0) != 0) return 3;
        std::signal(SIGBUS, SIG_DFL);
        volatile float touched = opened.last();
        (void)touched;
        return 0;
    });
    EXPECT_FALSE(child.exited) << "exit code " << child.exit_code;
    EXPECT_EQ(child.signal, SIGBUS);
}
