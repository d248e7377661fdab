// StagedUpload (grey_model_quantize's way onto a device): bytes of any length at any offset arrive whole
// through two pinned chunks reused in turn, on a device of the context's host backend and on a fake GPU
// of a plugin without streams (whose stream runs each copy as it is enqueued).
#include "quant/staged_upload.hpp"

#include "core/error.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace {

std::vector<std::byte> pattern(size_t n) {
    std::vector<std::byte> bytes(n);
    for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<std::byte>((i * 131 + i / 251) & 0xff);
    return bytes;
}

void check_uploads(grey_context* context, uint32_t device) {
    constexpr uint64_t chunk = 64 << 10;
    grey::quant::StagedUpload upload(context, device, chunk);
    // Shorter than a chunk, exactly one, two, and many with a ragged end, at offsets that are not aligned.
    for (const uint64_t size : {uint64_t{1}, uint64_t{1000}, chunk, 2 * chunk, 5 * chunk + 12345}) {
        for (const uint64_t offset : {uint64_t{0}, uint64_t{7}}) {
            grey_buffer* raw = nullptr;
            ASSERT_EQ(grey_buffer_create(context, device, offset + size + 3, &raw), GREY_OK) << grey_last_error();
            const std::unique_ptr<grey_buffer, decltype(&grey_buffer_destroy)> buffer(raw, grey_buffer_destroy);
            ASSERT_EQ(grey_buffer_fill(raw, 0, 0xAB, offset + size + 3), GREY_OK) << grey_last_error();
            const std::vector<std::byte> bytes = pattern(size);
            upload(raw, offset, bytes);
            std::vector<std::byte> back(offset + size + 3);
            ASSERT_EQ(grey_buffer_read(raw, 0, back.data(), back.size()), GREY_OK) << grey_last_error();
            for (uint64_t i = 0; i < offset; ++i) ASSERT_EQ(back[i], std::byte{0xAB}) << "before, size " << size;
            ASSERT_TRUE(std::equal(bytes.begin(), bytes.end(), back.begin() + static_cast<std::ptrdiff_t>(offset))) << "size " << size << " at " << offset;
            for (uint64_t i = offset + size; i < back.size(); ++i) ASSERT_EQ(back[i], std::byte{0xAB}) << "after, size " << size;
        }
    }
    upload(nullptr, 0, {});  // nothing to write: no call is made
}

// A context of the test plugin's two fake GPUs (devices 1 and 2; no streams).
grey::test::ContextPtr fake_gpus() {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backend_dir = GREY_TEST_PLUGIN_DIR;
    options.backends = "fake";
    return grey::test::make_context(options);
}

TEST(StagedUpload, EveryLengthArrivesWholeOnTheHostDevice) {
    const auto context = grey::test::make_context(grey::test::host_only_options());
    check_uploads(context.get(), 0);
}

TEST(StagedUpload, EveryLengthArrivesWholeOnADeviceWithoutStreams) {
    const auto context = fake_gpus();
    check_uploads(context.get(), 1);
}

TEST(StagedUpload, AFailedWriteIsReportedAndTheChunksStayUsable) {
    const auto context = fake_gpus();
    grey::quant::StagedUpload upload(context.get(), 1, 64 << 10);
    grey_buffer* raw = nullptr;
    ASSERT_EQ(grey_buffer_create(context.get(), 1, 1 << 20, &raw), GREY_OK) << grey_last_error();
    const std::unique_ptr<grey_buffer, decltype(&grey_buffer_destroy)> buffer(raw, grey_buffer_destroy);
    const std::vector<std::byte> bytes = pattern(13);
    // The fake device rejects a write of 13 bytes at offset 13 (work that fails when it runs).
    try {
        upload(raw, 13, bytes);
        FAIL() << "the rejected write was not reported";
    } catch (const grey::Error& e) {
        EXPECT_NE(std::string(e.what()).find("rejected a write of 13 bytes at offset 13"), std::string::npos) << e.what();
    }
    upload(raw, 0, bytes);
    std::vector<std::byte> back(13);
    ASSERT_EQ(grey_buffer_read(raw, 0, back.data(), back.size()), GREY_OK) << grey_last_error();
    EXPECT_EQ(back, bytes);
}

}  // namespace
