// A plugin whose kv_store predates grey_backend_kv_store_job's dtype and first_non_finite (the kvlegacy
// test plugin: no GREY_BACKEND_CAP_KV_STORE_CHECKED): host arrays still go in, checked and converted by
// the runtime; K/V in its device buffers are refused as unsupported before anything changes.
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

TEST(KvLegacyPlugin, HostArraysGoInAndDeviceBuffersAreRefusedAsUnsupported) {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backend_dir = GREY_TEST_PLUGIN_DIR "/kv";
    options.backends = "kvlegacy";
    auto context = grey::test::make_context(options);
    const uint32_t device = grey::test::last_device_of(context.get(), "kvlegacy");
    ASSERT_NE(device, 0u) << "the plugin's fake GPUs come after the host device";

    grey_kv_cache_config config = GREY_KV_CACHE_CONFIG_INIT;
    config.layers = 1;
    config.kv_heads = 1;
    config.head_dim = 16;
    config.tokens_per_block = 4;
    config.capacity_bytes = 1u << 20;
    grey_kv_cache* cache = nullptr;
    ASSERT_EQ(grey_kv_cache_create(context.get(), device, &config, &cache), GREY_OK) << grey_last_error();
    uint64_t sequence = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache, 0, &sequence), GREY_OK);

    // BF16 host arrays: converted and checked by the runtime, stored as F32 by the plugin.
    const std::vector<int32_t> ids{1, 2, 3};
    std::vector<uint16_t> halves(2 * 3 * 16, 0x3F80);  // 1.0
    const uint64_t bytes = 3 * 16 * 2;
    ASSERT_EQ(grey_kv_append(cache, sequence, ids.data(), 3, GREY_DTYPE_BF16, halves.data(), halves.data() + 48, bytes), GREY_OK)
        << grey_last_error();
    std::vector<float> keys(3 * 16), values(3 * 16);
    ASSERT_EQ(grey_kv_gather(cache, sequence, 0, keys.data(), values.data(), keys.size() * 4), GREY_OK);
    EXPECT_EQ(keys, std::vector<float>(48, 1.0f));

    // The same K/V in one of its buffers: refused, naming the backend and the way that works.
    grey_buffer* buffer = nullptr;
    ASSERT_EQ(grey_buffer_create(context.get(), device, 2 * bytes, &buffer), GREY_OK);
    ASSERT_EQ(grey_buffer_write(buffer, 0, halves.data(), 2 * bytes), GREY_OK);
    const std::vector<int32_t> more{4, 5, 6};
    EXPECT_EQ(grey_kv_append_buffer(cache, sequence, more.data(), 3, GREY_DTYPE_BF16, buffer, 0, buffer, bytes, bytes), GREY_ERROR_UNSUPPORTED);
    EXPECT_NE(std::strstr(grey_last_error(), "kvlegacy"), nullptr) << grey_last_error();
    EXPECT_NE(std::strstr(grey_last_error(), "host arrays"), nullptr) << grey_last_error();
    ASSERT_EQ(grey_kv_reserve(cache, sequence, more.data(), 3, nullptr), GREY_OK);
    EXPECT_EQ(grey_kv_write_layer_buffer(cache, sequence, 0, GREY_DTYPE_BF16, buffer, 0, buffer, bytes, bytes), GREY_ERROR_UNSUPPORTED);
    // The reservation is still open and takes the host-array write.
    EXPECT_EQ(grey_kv_write_layer(cache, sequence, 0, GREY_DTYPE_BF16, halves.data(), halves.data() + 48, bytes), GREY_OK) << grey_last_error();
    uint64_t length = 0;
    ASSERT_EQ(grey_kv_sequence_length(cache, sequence, &length), GREY_OK);
    EXPECT_EQ(length, 6u);
    grey_buffer_destroy(buffer);
    grey_kv_cache_destroy(cache);
}

}  // namespace
