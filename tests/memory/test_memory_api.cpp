// grey_buffer_checksum and grey_device_memory_stats_get through grey.h, on the host backend.
#include "common/checksum.hpp"
#include "grey.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace {

struct Context {
    Context() {
        grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
        options.backends = "host";
        EXPECT_EQ(grey_context_create(&options, &context), GREY_OK) << grey_last_error();
    }
    ~Context() { grey_context_destroy(context); }
    grey_context* context = nullptr;
};

std::vector<std::byte> random_bytes(size_t n) {
    std::mt19937_64 rng(std::random_device{}());
    std::vector<std::byte> out(n);
    for (auto& b : out) b = static_cast<std::byte>(rng());
    return out;
}

}  // namespace

TEST(MemoryApi, ChecksumMatchesTheDefinition) {
    Context c;
    grey_buffer* buffer = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 0, 10000, &buffer), GREY_OK);
    const auto data = random_bytes(10000);
    ASSERT_EQ(grey_buffer_write(buffer, 0, data.data(), data.size()), GREY_OK);
    uint64_t sum = 0;
    ASSERT_EQ(grey_buffer_checksum(buffer, 123, 5000, &sum), GREY_OK);
    // The definition in grey.h, written out independently of checksum.hpp.
    uint64_t expected = 0;
    for (uint64_t i = 0; i < 5000; ++i)
        expected += (static_cast<uint64_t>(data[123 + i]) + 1) * (i * 0x9E3779B97F4A7C15ull + 0xD6E8FEB86659FD93ull);
    EXPECT_EQ(sum, expected);
    // Offset-independent, and piecewise sums add up.
    EXPECT_EQ(grey::common::checksum_accumulate(grey::common::checksum_accumulate(0, std::as_bytes(std::span(data).subspan(123, 2000)), 0),
                                                 std::as_bytes(std::span(data).subspan(2123, 3000)), 2000),
              expected);
    ASSERT_EQ(grey_buffer_checksum(buffer, 0, 0, &sum), GREY_OK);
    EXPECT_EQ(sum, 0u);
    grey_buffer_destroy(buffer);
}

TEST(MemoryApi, ChecksumSeesSwapsAndZeros) {
    Context c;
    grey_buffer* buffer = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 0, 64, &buffer), GREY_OK);
    std::vector<unsigned char> bytes(64, 0);
    ASSERT_EQ(grey_buffer_write(buffer, 0, bytes.data(), 64), GREY_OK);
    uint64_t zeros = 0, fewer = 0;
    ASSERT_EQ(grey_buffer_checksum(buffer, 0, 64, &zeros), GREY_OK);
    ASSERT_EQ(grey_buffer_checksum(buffer, 0, 63, &fewer), GREY_OK);
    EXPECT_NE(zeros, 0u);
    EXPECT_NE(zeros, fewer);
    bytes[3] = 1;
    bytes[9] = 2;
    ASSERT_EQ(grey_buffer_write(buffer, 0, bytes.data(), 64), GREY_OK);
    uint64_t a = 0, b = 0;
    ASSERT_EQ(grey_buffer_checksum(buffer, 0, 64, &a), GREY_OK);
    std::swap(bytes[3], bytes[9]);
    ASSERT_EQ(grey_buffer_write(buffer, 0, bytes.data(), 64), GREY_OK);
    ASSERT_EQ(grey_buffer_checksum(buffer, 0, 64, &b), GREY_OK);
    EXPECT_NE(a, b);
    grey_buffer_destroy(buffer);
}

TEST(MemoryApi, ChecksumRefusesBadArguments) {
    Context c;
    grey_buffer* buffer = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 0, 100, &buffer), GREY_OK);
    uint64_t sum = 77;
    EXPECT_EQ(grey_buffer_checksum(buffer, 50, 51, &sum), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("outside the buffer of 100 bytes"), std::string::npos) << grey_last_error();
    EXPECT_EQ(grey_buffer_checksum(buffer, UINT64_MAX, 2, &sum), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_checksum(nullptr, 0, 1, &sum), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_checksum(buffer, 0, 1, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(sum, 77u);  // untouched on failure
    grey_buffer_destroy(buffer);
}

TEST(MemoryApi, HostStatsCountLiveBuffers) {
    Context c;
    grey_memory_stats stats{};
    stats.struct_size = sizeof stats;
    ASSERT_EQ(grey_device_memory_stats_get(c.context, 0, &stats), GREY_OK) << grey_last_error();
    const uint64_t base_count = stats.allocation_count, base_bytes = stats.allocated_bytes;
    grey_buffer* a = nullptr;
    grey_buffer* b = nullptr;
    ASSERT_EQ(grey_buffer_create(c.context, 0, 100, &a), GREY_OK);
    ASSERT_EQ(grey_buffer_create(c.context, 0, 1000, &b), GREY_OK);
    ASSERT_EQ(grey_device_memory_stats_get(c.context, 0, &stats), GREY_OK);
    EXPECT_EQ(stats.allocation_count, base_count + 2);
    EXPECT_EQ(stats.allocated_bytes, base_bytes + 128 + 1024);  // rounded to 64 bytes
    EXPECT_EQ(stats.free_bytes, 0u);
    EXPECT_EQ(stats.fragmentation, 0.0);
    grey_buffer_destroy(a);
    grey_buffer_destroy(b);
    ASSERT_EQ(grey_device_memory_stats_get(c.context, 0, &stats), GREY_OK);
    EXPECT_EQ(stats.allocation_count, base_count);
}

TEST(MemoryApi, StatsRefuseBadArguments) {
    Context c;
    grey_memory_stats stats{};
    stats.struct_size = 4;
    EXPECT_EQ(grey_device_memory_stats_get(c.context, 0, &stats), GREY_ERROR_INVALID_ARGUMENT);
    stats.struct_size = sizeof stats;
    EXPECT_EQ(grey_device_memory_stats_get(c.context, 99, &stats), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_device_memory_stats_get(nullptr, 0, &stats), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_device_memory_stats_get(c.context, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
}
