// grey_model_quantize's WriteBehind: tensors written on its thread land in order and intact (the file
// equals the one written on the calling thread), and a write that fails there fails the caller's next
// call with the writer's own status and message.
#include "core/error.hpp"
#include "quant/write_behind.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

namespace {

using grey::test::desc_of;
using WriterPtr = std::unique_ptr<grey_model_writer, void (*)(grey_model_writer*)>;

// A streaming writer of `tensors` F32 tensors of `elements` each, opened at `path`.
WriterPtr open_writer(const std::string& path, int tensors, uint64_t elements) {
    grey_model_writer* raw = nullptr;
    EXPECT_EQ(grey_model_writer_create(GREY_MODEL_FORMAT_SAFETENSORS, &raw), GREY_OK);
    WriterPtr writer(raw, grey_model_writer_destroy);
    const auto desc = desc_of({elements});
    for (int t = 0; t < tensors; ++t) {
        uint64_t index = 0;
        EXPECT_EQ(grey_model_writer_declare_tensor(raw, ("t" + std::to_string(t)).c_str(), &desc, 0, &index), GREY_OK) << grey_last_error();
    }
    EXPECT_EQ(grey_model_writer_open(raw, path.c_str(), nullptr), GREY_OK) << grey_last_error();
    return writer;
}

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(WriteBehind, WritesLandInOrderAsOnTheCallingThread) {
    const grey::test::TempDir dir;
    constexpr int kTensors = 9;
    constexpr uint64_t kElements = 5000;
    std::vector<std::vector<float>> data(kTensors, std::vector<float>(kElements));
    for (int t = 0; t < kTensors; ++t)
        for (uint64_t i = 0; i < kElements; ++i) data[t][i] = static_cast<float>(t * 100000 + static_cast<int>(i));
    const std::string direct = (dir.path() / "direct.safetensors").string(), behind = (dir.path() / "behind.safetensors").string();
    {
        auto writer = open_writer(direct, kTensors, kElements);
        for (int t = 0; t < kTensors; ++t) ASSERT_EQ(grey_model_writer_write_tensor(writer.get(), t, data[t].data(), kElements * 4), GREY_OK);
        ASSERT_EQ(grey_model_writer_finish(writer.get()), GREY_OK);
    }
    {
        auto writer = open_writer(behind, kTensors, kElements);
        grey::quant::WriteBehind write_behind(writer.get(), nullptr);
        for (int t = 0; t < kTensors; ++t) write_behind.submit(t, data[t].data(), kElements * 4, false);
        write_behind.wait();
        ASSERT_EQ(grey_model_writer_finish(writer.get()), GREY_OK);
    }
    EXPECT_EQ(file_bytes(behind), file_bytes(direct));
}

TEST(WriteBehind, AFailedWriteFailsTheNextCallWithTheWritersMessage) {
    const grey::test::TempDir dir;
    auto writer = open_writer((dir.path() / "w.safetensors").string(), 2, 4);
    grey::quant::WriteBehind write_behind(writer.get(), nullptr);
    const std::vector<float> too_long(8, 1.0f);
    write_behind.submit(0, too_long.data(), too_long.size() * 4, false);  // tensor 0 takes 16 bytes, not 32
    try {
        write_behind.wait();
        FAIL() << "the failed write was not reported";
    } catch (const grey::Error& e) {
        EXPECT_EQ(e.status(), GREY_ERROR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(e.what()).find("t0"), std::string::npos) << e.what();
    }
    // Reported once; the writer is still usable for what it allows.
    const std::vector<float> right(4, 2.0f);
    write_behind.submit(1, right.data(), right.size() * 4, false);
    EXPECT_NO_THROW(write_behind.wait());
}

}  // namespace
