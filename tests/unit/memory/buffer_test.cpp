#include "test_support.hpp"

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

using grey::test::make_context;

namespace {
using grey::test::BufferPtr;
using grey::test::random_bytes;

BufferPtr make_buffer(grey_context* context, uint32_t device, uint64_t size) {
    grey_buffer* raw = nullptr;
    EXPECT_EQ(grey_buffer_create(context, device, size, &raw), GREY_OK) << grey_last_error();
    return BufferPtr(raw);
}

// The fake plugin's first device, so copies between backends can be tested without a GPU.
uint32_t fake_device(grey_context* context) {
    uint32_t count = 0;
    EXPECT_EQ(grey_device_count(context, &count), GREY_OK);
    for (uint32_t d = 0; d < count; ++d) {
        grey_device_spec spec{};
        spec.struct_size = sizeof spec;
        EXPECT_EQ(grey_device_spec_get(context, d, &spec), GREY_OK);
        if (std::string(spec.backend) == "fake") return d;
    }
    ADD_FAILURE() << "fake backend not loaded";
    return 0;
}

grey_context_options with_fake() {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backend_dir = GREY_TEST_PLUGIN_DIR;
    options.backends = "fake";
    return options;
}
}  // namespace

TEST(Buffer, WriteReadRoundTripOnTheHost) {
    auto context = make_context(grey::test::host_only_options());
    const auto data = random_bytes(100003, 1);
    auto buffer = make_buffer(context.get(), 0, data.size());
    ASSERT_EQ(grey_buffer_write(buffer.get(), 0, data.data(), data.size()), GREY_OK);
    std::vector<uint8_t> back(data.size(), 0xEE);
    ASSERT_EQ(grey_buffer_read(buffer.get(), 0, back.data(), back.size()), GREY_OK);
    EXPECT_EQ(back, data);
    uint64_t size = 0;
    uint32_t device = 7;
    ASSERT_EQ(grey_buffer_size(buffer.get(), &size), GREY_OK);
    ASSERT_EQ(grey_buffer_device(buffer.get(), &device), GREY_OK);
    EXPECT_EQ(size, data.size());
    EXPECT_EQ(device, 0u);
}

TEST(Buffer, FillAndCopyWithOffsets) {
    auto context = make_context(grey::test::host_only_options());
    auto a = make_buffer(context.get(), 0, 4096);
    auto b = make_buffer(context.get(), 0, 4096);
    ASSERT_EQ(grey_buffer_fill(a.get(), 0, 0x11, 4096), GREY_OK);
    ASSERT_EQ(grey_buffer_fill(a.get(), 100, 0x22, 50), GREY_OK);
    ASSERT_EQ(grey_buffer_fill(b.get(), 0, 0x00, 4096), GREY_OK);
    ASSERT_EQ(grey_buffer_copy(b.get(), 1000, a.get(), 90, 70), GREY_OK);
    std::vector<uint8_t> out(4096);
    ASSERT_EQ(grey_buffer_read(b.get(), 0, out.data(), out.size()), GREY_OK);
    for (size_t i = 0; i < out.size(); ++i) {
        uint8_t expected = 0;
        if (i >= 1000 && i < 1070) expected = (i - 1000 + 90 >= 100 && i - 1000 + 90 < 150) ? 0x22 : 0x11;
        ASSERT_EQ(out[i], expected) << i;
    }
    // Copy within one buffer: disjoint ranges work, overlapping ones are refused.
    EXPECT_EQ(grey_buffer_copy(a.get(), 0, a.get(), 2048, 1024), GREY_OK);
    EXPECT_EQ(grey_buffer_copy(a.get(), 0, a.get(), 512, 1024), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("overlap"), std::string::npos);
}

TEST(Buffer, RangesAndArgumentsAreChecked) {
    auto context = make_context(grey::test::host_only_options());
    auto buffer = make_buffer(context.get(), 0, 64);
    uint8_t bytes[128] = {};
    EXPECT_EQ(grey_buffer_write(buffer.get(), 60, bytes, 8), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("outside the buffer of 64 bytes"), std::string::npos) << grey_last_error();
    EXPECT_EQ(grey_buffer_read(buffer.get(), UINT64_MAX, bytes, 2), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_write(buffer.get(), 8, bytes, UINT64_MAX - 4), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_write(buffer.get(), 0, nullptr, 4), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_write(buffer.get(), 0, nullptr, 0), GREY_OK) << "an empty write is a no-op";
    EXPECT_EQ(grey_buffer_fill(buffer.get(), 0, 1, 65), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_read(nullptr, 0, bytes, 1), GREY_ERROR_INVALID_ARGUMENT);

    grey_buffer* out = reinterpret_cast<grey_buffer*>(0x1);
    EXPECT_EQ(grey_buffer_create(context.get(), 0, 0, &out), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_create(context.get(), 5, 16, &out), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_create(context.get(), 0, UINT64_MAX, &out), GREY_ERROR_OUT_OF_MEMORY);
    EXPECT_NE(std::string(grey_last_error()).find("18446744073709551615 bytes"), std::string::npos) << grey_last_error();
    EXPECT_EQ(out, reinterpret_cast<grey_buffer*>(0x1)) << "out-parameters are untouched on failure";
    grey_buffer_destroy(nullptr);
}

TEST(Buffer, CopiesAcrossBackendsStageThroughTheHost) {
    auto context = make_context(with_fake());
    const uint32_t fake = fake_device(context.get());
    const size_t n = (9u << 20) + 12345;  // larger than one staging step
    const auto data = random_bytes(n, 2);
    auto host = make_buffer(context.get(), 0, n);
    auto device = make_buffer(context.get(), fake, n);
    auto device2 = make_buffer(context.get(), fake, n);
    ASSERT_EQ(grey_buffer_write(host.get(), 0, data.data(), n), GREY_OK);
    ASSERT_EQ(grey_buffer_copy(device.get(), 0, host.get(), 0, n), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_copy(device2.get(), 0, device.get(), 0, n), GREY_OK) << "no copy slot: staged";
    ASSERT_EQ(grey_buffer_fill(device.get(), 0, 0x5A, 16), GREY_OK) << "no fill slot: staged";
    std::vector<uint8_t> back(n);
    ASSERT_EQ(grey_buffer_read(device2.get(), 0, back.data(), n), GREY_OK);
    EXPECT_EQ(back, data);
    ASSERT_EQ(grey_buffer_read(device.get(), 0, back.data(), 32), GREY_OK);
    for (int i = 0; i < 16; ++i) EXPECT_EQ(back[i], 0x5A);
    EXPECT_EQ(back[16], data[16]);
}

TEST(Buffer, DeviceOutOfMemoryNamesTheSizes) {
    auto context = make_context(with_fake());
    grey_buffer* out = nullptr;
    EXPECT_EQ(grey_buffer_create(context.get(), fake_device(context.get()), 3ull << 30, &out), GREY_ERROR_OUT_OF_MEMORY);
    EXPECT_NE(std::string(grey_last_error()).find("requested 3221225472 bytes"), std::string::npos) << grey_last_error();
    EXPECT_EQ(out, nullptr);
}

TEST(Buffer, BuffersLeftAtContextDestructionAreFreedAndLogged) {
    grey::test::LogCapture log;
    grey_context_options options = grey::test::host_only_options();
    options.log_callback = &grey::test::LogCapture::callback;
    options.log_user = &log;
    grey_context* context = nullptr;
    ASSERT_EQ(grey_context_create(&options, &context), GREY_OK);
    grey_buffer* leaked = nullptr;
    ASSERT_EQ(grey_buffer_create(context, 0, 1024, &leaked), GREY_OK);
    grey_context_destroy(context);  // under ASan, a leak or double free here fails the test
    EXPECT_TRUE(log.contains("1 buffer(s) were not destroyed"));
}

TEST(Buffer, MappingAHostBufferGivesItsOwnMemory) {
    auto context = make_context(grey::test::host_only_options());
    const auto data = random_bytes(4099, 3);
    auto buffer = make_buffer(context.get(), 0, data.size());
    ASSERT_EQ(grey_buffer_write(buffer.get(), 0, data.data(), data.size()), GREY_OK);
    grey_buffer_mapping mapping{};
    mapping.struct_size = sizeof mapping;
    ASSERT_EQ(grey_buffer_map(buffer.get(), &mapping), GREY_OK) << grey_last_error();
    EXPECT_EQ(mapping.struct_size, sizeof mapping);
    EXPECT_EQ(mapping.kind, GREY_MEMORY_HOST);
    EXPECT_EQ(mapping.size_bytes, data.size());
    EXPECT_EQ(mapping.vendor_device, 0);
    EXPECT_EQ(mapping.reserved0, 0u);
    ASSERT_NE(mapping.address, 0u);
    EXPECT_EQ(mapping.address % 64, 0u) << "host buffers are aligned for vector loads";
    // The address is the buffer's memory: what was written is there, and writes through it are read back.
    auto* bytes = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(mapping.address));
    EXPECT_TRUE(std::equal(data.begin(), data.end(), bytes));
    bytes[17] = static_cast<uint8_t>(~data[17]);
    uint8_t back = 0;
    ASSERT_EQ(grey_buffer_read(buffer.get(), 17, &back, 1), GREY_OK);
    EXPECT_EQ(back, static_cast<uint8_t>(~data[17]));

    // Mappings nest; each needs its unmap, and one more is refused.
    grey_buffer_mapping again{};
    again.struct_size = sizeof again;
    ASSERT_EQ(grey_buffer_map(buffer.get(), &again), GREY_OK);
    EXPECT_EQ(again.address, mapping.address);
    EXPECT_EQ(grey_buffer_unmap(buffer.get()), GREY_OK);
    EXPECT_EQ(grey_buffer_unmap(buffer.get()), GREY_OK);
    EXPECT_EQ(grey_buffer_unmap(buffer.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_STREQ(grey_last_error(), "grey_buffer_unmap: the buffer is not mapped");
}

TEST(Buffer, MappingChecksItsArgumentsAndSaysWhenABackendCannotMap) {
    auto context = make_context(with_fake());
    auto host = make_buffer(context.get(), 0, 64);
    grey_buffer_mapping mapping{};
    mapping.struct_size = 8;
    mapping.address = 42;
    EXPECT_EQ(grey_buffer_map(host.get(), &mapping), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("out_mapping->struct_size is 8"), std::string::npos) << grey_last_error();
    EXPECT_EQ(mapping.address, 42u) << "out-parameters are untouched on failure";
    EXPECT_EQ(grey_buffer_unmap(host.get()), GREY_ERROR_INVALID_ARGUMENT) << "the refused map left no mapping";
    EXPECT_EQ(grey_buffer_map(nullptr, &mapping), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_map(host.get(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_unmap(nullptr), GREY_ERROR_INVALID_ARGUMENT);

    // The fake plugin's vtable has no buffer_map slot.
    auto device = make_buffer(context.get(), fake_device(context.get()), 64);
    mapping.struct_size = sizeof mapping;
    EXPECT_EQ(grey_buffer_map(device.get(), &mapping), GREY_ERROR_UNSUPPORTED);
    EXPECT_NE(std::string(grey_last_error()).find("backend 'fake' cannot map buffers"), std::string::npos) << grey_last_error();
    EXPECT_EQ(mapping.address, 42u);
    EXPECT_EQ(grey_buffer_unmap(device.get()), GREY_ERROR_INVALID_ARGUMENT);
}
