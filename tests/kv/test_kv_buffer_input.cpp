// K/V from device memory (grey_kv_append_buffer, grey_kv_write_layer_buffer) on the host backend: the
// same stored bits as the host-array calls for F32, F16 and BF16 at any aligned offsets, prefix-cache
// hits whose K/V are not read, a NaN or infinity named by its index with nothing stored, and every bad
// buffer refused with the cache left usable.
#include "kv_test_support.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

using namespace kvtest;

namespace {

// x as the bytes of `dtype`: F32 as it is, BF16 truncated, F16 built from the float's fields (finite
// values stay in F16's normal range here, or go to zero), NaN and infinities kept.
std::vector<uint8_t> encoded(const std::vector<float>& x, grey_dtype dtype) {
    std::vector<uint8_t> out(x.size() * (dtype == GREY_DTYPE_F32 ? 4 : 2));
    for (size_t i = 0; i < x.size(); ++i) {
        uint32_t b;
        std::memcpy(&b, &x[i], 4);
        if (dtype == GREY_DTYPE_F32) {
            std::memcpy(out.data() + 4 * i, &b, 4);
            continue;
        }
        uint16_t half = static_cast<uint16_t>(b >> 16);
        if (dtype == GREY_DTYPE_F16) {
            const auto sign = static_cast<uint16_t>((b >> 16) & 0x8000u);
            const int exponent = static_cast<int>((b >> 23) & 0xFFu) - 127 + 15;
            if (!std::isfinite(x[i]))
                half = static_cast<uint16_t>(sign | 0x7C00u | (std::isnan(x[i]) ? 0x200u : 0u));
            else
                half = exponent <= 0 ? sign : static_cast<uint16_t>(sign | (exponent << 10) | ((b >> 13) & 0x3FFu));
        }
        std::memcpy(out.data() + 2 * i, &half, 2);
    }
    return out;
}

uint32_t width(grey_dtype dtype) { return dtype == GREY_DTYPE_F32 ? 4 : 2; }

// A buffer holding `keys` at `offset` and `values` right after them.
Buffer buffer_with(grey_context* context, uint64_t offset, const std::vector<uint8_t>& keys, const std::vector<uint8_t>& values) {
    Buffer buffer = make_buffer(context, offset + keys.size() + values.size());
    EXPECT_EQ(grey_buffer_write(buffer.get(), offset, keys.data(), keys.size()), GREY_OK);
    EXPECT_EQ(grey_buffer_write(buffer.get(), offset + keys.size(), values.data(), values.size()), GREY_OK);
    return buffer;
}

grey_status append_buffer(grey_kv_cache* cache, uint64_t seq, const std::vector<int32_t>& tokens, grey_dtype dtype, const Buffer& buffer,
                          uint64_t offset, uint64_t bytes) {
    return grey_kv_append_buffer(cache, seq, tokens.data(), static_cast<uint32_t>(tokens.size()), dtype, buffer.get(), offset, buffer.get(),
                                 offset + bytes, bytes);
}

// Every stored K and V of every layer of `seq`, as gathered.
std::vector<float> contents(grey_kv_cache* cache, uint64_t seq, const grey_kv_cache_config& c) {
    std::vector<float> all;
    for (uint32_t layer = 0; layer < c.layers; ++layer) {
        const std::vector<float> one = gather(cache, seq, c, layer);
        all.insert(all.end(), one.begin(), one.end());
    }
    return all;
}

uint64_t length_of(grey_kv_cache* cache, uint64_t seq) {
    uint64_t length = 0;
    EXPECT_EQ(grey_kv_sequence_length(cache, seq, &length), GREY_OK);
    return length;
}

bool names(const char* words) { return std::strstr(grey_last_error(), words) != nullptr; }

}  // namespace

TEST(KvBufferInput, AppendFromABufferStoresWhatAHostAppendStores) {
    auto context = make_context();
    for (const grey_dtype dtype : {GREY_DTYPE_F32, GREY_DTYPE_F16, GREY_DTYPE_BF16})
        for (const uint32_t flags : {0u, static_cast<uint32_t>(GREY_KV_HADAMARD_K)}) {
            SCOPED_TRACE(std::string(grey_dtype_name(dtype)) + (flags != 0 ? " hadamard" : ""));
            auto c = small_config();  // 2 layers, 4 tokens a block, window 8: blocks get quantized
            c.flags = flags;
            auto from_host = make_cache(context.get(), c), from_buffer = make_cache(context.get(), c);
            const uint64_t a = new_sequence(from_host.get()), b = new_sequence(from_buffer.get());
            uint32_t written = 0;
            for (const uint32_t n : {3u, 1u, 9u, 1u, 6u}) {
                const auto tokens = iota_tokens(n, static_cast<int32_t>(300 + written));
                const Kv kv = random_kv(c, n, 70 + n + written);
                const auto k = encoded(kv.keys, dtype), v = encoded(kv.values, dtype);
                ASSERT_EQ(grey_kv_append(from_host.get(), a, tokens.data(), n, dtype, k.data(), v.data(), k.size()), GREY_OK) << grey_last_error();
                const uint64_t offset = 2 * width(dtype) * (n % 3);  // 0, or aligned offsets past the start
                const Buffer buffer = buffer_with(context.get(), offset, k, v);
                ASSERT_EQ(append_buffer(from_buffer.get(), b, tokens, dtype, buffer, offset, k.size()), GREY_OK) << grey_last_error();
                written += n;
            }
            EXPECT_EQ(contents(from_host.get(), a, c), contents(from_buffer.get(), b, c));
            EXPECT_EQ(stats(from_host.get()).bytes_used, stats(from_buffer.get()).bytes_used);
            EXPECT_EQ(stats(from_buffer.get()).blocks_compressed, 3u);
        }
}

TEST(KvBufferInput, LayerWritesFromBuffersStoreWhatHostLayerWritesStore) {
    auto context = make_context();
    const auto c = small_config();
    auto from_host = make_cache(context.get(), c), from_buffer = make_cache(context.get(), c);
    const uint64_t a = new_sequence(from_host.get()), b = new_sequence(from_buffer.get());
    uint32_t written = 0;
    for (const uint32_t n : {5u, 1u, 7u}) {
        const auto tokens = iota_tokens(n, static_cast<int32_t>(500 + written));
        const Kv kv = random_kv(c, n, 90 + n);
        const auto k = encoded(kv.keys, GREY_DTYPE_BF16), v = encoded(kv.values, GREY_DTYPE_BF16);
        const uint64_t layer_bytes = k.size() / c.layers;
        const Buffer buffer = buffer_with(context.get(), 6, k, v);
        ASSERT_EQ(grey_kv_reserve(from_host.get(), a, tokens.data(), n, nullptr), GREY_OK);
        ASSERT_EQ(grey_kv_reserve(from_buffer.get(), b, tokens.data(), n, nullptr), GREY_OK);
        for (uint32_t layer = c.layers; layer-- > 0;) {
            const uint64_t at = layer * layer_bytes;
            ASSERT_EQ(grey_kv_write_layer(from_host.get(), a, layer, GREY_DTYPE_BF16, k.data() + at, v.data() + at, layer_bytes), GREY_OK);
            ASSERT_EQ(grey_kv_write_layer_buffer(from_buffer.get(), b, layer, GREY_DTYPE_BF16, buffer.get(), 6 + at, buffer.get(),
                                                 6 + k.size() + at, layer_bytes),
                      GREY_OK)
                << grey_last_error();
        }
        written += n;
    }
    EXPECT_EQ(length_of(from_buffer.get(), b), written);
    EXPECT_EQ(contents(from_host.get(), a, c), contents(from_buffer.get(), b, c));
}

// Tokens found whole in the prefix cache are skipped in every layer (the store then reads each layer's
// own tokens from their offsets); their K/V are not read, so a NaN there is no error.
TEST(KvBufferInput, CachedPrefixTokensAreSkippedAndNotRead) {
    auto context = make_context();
    auto c = small_config();
    c.window_tokens = GREY_KV_WINDOW_ALL;
    auto cache = make_cache(context.get(), c), reference = make_cache(context.get(), c);
    const Kv prompt = random_kv(c, 8, 11);
    ASSERT_EQ(append(cache.get(), new_sequence(cache.get()), iota_tokens(8), prompt), GREY_OK);  // two full blocks, cached
    ASSERT_EQ(append(reference.get(), new_sequence(reference.get()), iota_tokens(8), prompt), GREY_OK);

    Kv longer = random_kv(c, 11, 12);  // tokens 0..10: 0..7 are cached
    longer.keys[5] = std::nanf("");      // layer 0, token 0: cached, never read
    const auto k = encoded(longer.keys, GREY_DTYPE_F32), v = encoded(longer.values, GREY_DTYPE_F32);
    const Buffer buffer = buffer_with(context.get(), 0, k, v);
    const uint64_t seq = new_sequence(cache.get()), ref = new_sequence(reference.get());
    ASSERT_EQ(append_buffer(cache.get(), seq, iota_tokens(11), GREY_DTYPE_F32, buffer, 0, k.size()), GREY_OK) << grey_last_error();
    EXPECT_EQ(stats(cache.get()).prefix_hits, 2u);
    ASSERT_EQ(append(reference.get(), ref, iota_tokens(11), longer), GREY_ERROR_INVALID_ARGUMENT)
        << "the host-array form checks every value before the prefix is looked up";
    Kv mended = longer;
    mended.keys[5] = 0.0f;
    ASSERT_EQ(append(reference.get(), ref, iota_tokens(11), mended), GREY_OK) << grey_last_error();
    EXPECT_EQ(contents(cache.get(), seq, c), contents(reference.get(), ref, c));

    // A NaN in a token that is not cached is named by its index in the caller's array, found in the
    // store of its own layer (layer 1, token 9, head 0, channel 7).
    Kv bad = random_kv(c, 11, 13);
    const size_t row = size_t{c.kv_heads} * c.head_dim, at = (11 + 9) * row + 7;
    bad.values[at] = std::nanf("");
    const Buffer with_nan = buffer_with(context.get(), 0, encoded(bad.keys, GREY_DTYPE_F32), encoded(bad.values, GREY_DTYPE_F32));
    const uint64_t third = new_sequence(cache.get());
    EXPECT_EQ(append_buffer(cache.get(), third, iota_tokens(11), GREY_DTYPE_F32, with_nan, 0, k.size()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(names(("values[" + std::to_string(at) + "] is not finite").c_str())) << grey_last_error();
    EXPECT_EQ(length_of(cache.get(), third), 0u);
}

TEST(KvBufferInput, ANonFiniteValueIsNamedAndNothingIsAppended) {
    auto context = make_context();
    const auto c = small_config();
    auto cache = make_cache(context.get(), c);
    const uint64_t seq = new_sequence(cache.get());
    ASSERT_EQ(append(cache.get(), seq, iota_tokens(6), random_kv(c, 6, 21)), GREY_OK);
    const auto before = contents(cache.get(), seq, c);
    const uint64_t bytes_before = stats(cache.get()).bytes_used;

    const uint32_t n = 7;  // fills the second block, opens a third
    const Kv kv = random_kv(c, n, 22);
    const size_t layer_values = size_t{n} * c.kv_heads * c.head_dim;
    for (const grey_dtype dtype : {GREY_DTYPE_F32, GREY_DTYPE_BF16, GREY_DTYPE_F16}) {
        for (const bool in_keys : {true, false}) {
            SCOPED_TRACE(std::string(grey_dtype_name(dtype)) + (in_keys ? " keys" : " values"));
            Kv bad = kv;
            const size_t at = layer_values + 3 * c.head_dim + 17;  // layer 1, token 1, head 1, channel 17
            (in_keys ? bad.keys : bad.values)[at] = in_keys ? INFINITY : std::nanf("");
            (in_keys ? bad.keys : bad.values)[at + 40] = std::nanf("");  // a later one: the first is named
            const auto k = encoded(bad.keys, dtype), v = encoded(bad.values, dtype);
            const Buffer buffer = buffer_with(context.get(), 4, k, v);
            EXPECT_EQ(append_buffer(cache.get(), seq, iota_tokens(n, 900), dtype, buffer, 4, k.size()), GREY_ERROR_INVALID_ARGUMENT);
            const std::string expected = std::string(in_keys ? "keys[" : "values[") + std::to_string(at) + "] is not finite";
            EXPECT_TRUE(names(expected.c_str())) << grey_last_error();
            EXPECT_EQ(length_of(cache.get(), seq), 6u);
            EXPECT_EQ(stats(cache.get()).bytes_used, bytes_before);
        }
    }
    EXPECT_EQ(contents(cache.get(), seq, c), before);
    const auto k = encoded(kv.keys, GREY_DTYPE_F32), v = encoded(kv.values, GREY_DTYPE_F32);
    const Buffer buffer = buffer_with(context.get(), 0, k, v);
    ASSERT_EQ(append_buffer(cache.get(), seq, iota_tokens(n, 900), GREY_DTYPE_F32, buffer, 0, k.size()), GREY_OK) << grey_last_error();
    EXPECT_EQ(length_of(cache.get(), seq), 13u);
}

TEST(KvBufferInput, ANonFiniteLayerWriteLeavesTheLayerUnwritten) {
    auto context = make_context();
    const auto c = small_config();
    auto cache = make_cache(context.get(), c);
    const uint64_t seq = new_sequence(cache.get());
    ASSERT_EQ(append(cache.get(), seq, iota_tokens(3), random_kv(c, 3, 31)), GREY_OK);
    const Kv step = random_kv(c, 2, 32);
    const size_t layer_values = size_t{2} * c.kv_heads * c.head_dim;
    std::vector<float> keys(step.keys.begin(), step.keys.begin() + static_cast<long>(layer_values));
    std::vector<float> values(step.values.begin(), step.values.begin() + static_cast<long>(layer_values));
    values[70] = -INFINITY;
    const auto tokens = iota_tokens(2, 40);
    ASSERT_EQ(grey_kv_reserve(cache.get(), seq, tokens.data(), 2, nullptr), GREY_OK);
    const Buffer bad = buffer_with(context.get(), 0, encoded(keys, GREY_DTYPE_F32), encoded(values, GREY_DTYPE_F32));
    const uint64_t bytes = layer_values * 4;
    EXPECT_EQ(grey_kv_write_layer_buffer(cache.get(), seq, 1, GREY_DTYPE_F32, bad.get(), 0, bad.get(), bytes, bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(names("values[70] is not finite")) << grey_last_error();
    values[70] = 0.25f;
    const Buffer good = buffer_with(context.get(), 0, encoded(keys, GREY_DTYPE_F32), encoded(values, GREY_DTYPE_F32));
    for (const uint32_t layer : {1u, 0u})
        ASSERT_EQ(grey_kv_write_layer_buffer(cache.get(), seq, layer, GREY_DTYPE_F32, good.get(), 0, good.get(), bytes, bytes), GREY_OK)
            << "layer " << layer << ": " << grey_last_error();
    EXPECT_EQ(length_of(cache.get(), seq), 5u);
}

TEST(KvBufferInput, BadBuffersAreRefusedAndTheCacheStaysUsable) {
    auto context = make_context();
    const auto c = small_config();
    auto cache = make_cache(context.get(), c);
    const uint64_t seq = new_sequence(cache.get());
    const Kv kv = random_kv(c, 2, 41);
    const auto k = encoded(kv.keys, GREY_DTYPE_BF16), v = encoded(kv.values, GREY_DTYPE_BF16);
    const uint64_t bytes = k.size();
    const Buffer buffer = buffer_with(context.get(), 2, k, v);
    const auto tokens = iota_tokens(2);
    const auto try_append = [&](grey_dtype dtype, const grey_buffer* keys, uint64_t keys_offset, const grey_buffer* values, uint64_t values_offset,
                                uint64_t size) {
        return grey_kv_append_buffer(cache.get(), seq, tokens.data(), 2, dtype, keys, keys_offset, values, values_offset, size);
    };
    grey_buffer* b = buffer.get();
    EXPECT_EQ(try_append(GREY_DTYPE_BF16, nullptr, 2, b, 2 + bytes, bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(names("keys")) << grey_last_error();
    EXPECT_EQ(try_append(GREY_DTYPE_BF16, b, 2, nullptr, 2 + bytes, bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(names("values")) << grey_last_error();
    EXPECT_EQ(try_append(GREY_DTYPE_BF16, b, 3, b, 2 + bytes, bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(names("keys: offset 3 is not a multiple of 2")) << grey_last_error();
    EXPECT_EQ(try_append(GREY_DTYPE_F32, b, 2, b, 2, bytes * 2), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(names("multiple of 4")) << grey_last_error();
    EXPECT_EQ(try_append(GREY_DTYPE_BF16, b, 2, b, 4 + bytes, bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(names("values: range")) << grey_last_error();
    EXPECT_EQ(try_append(GREY_DTYPE_BF16, b, 2, b, 2 + bytes, bytes - 2), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(names("kv_bytes")) << grey_last_error();
    EXPECT_EQ(try_append(GREY_DTYPE_I8, b, 2, b, 2 + bytes, bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(names("dtype")) << grey_last_error();
    EXPECT_EQ(grey_kv_append_buffer(cache.get(), seq, tokens.data(), 0, GREY_DTYPE_BF16, b, 2, b, 2 + bytes, bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_kv_append_buffer(cache.get(), 77, tokens.data(), 2, GREY_DTYPE_BF16, b, 2, b, 2 + bytes, bytes), GREY_ERROR_NOT_FOUND);
    auto other = make_context();
    const Buffer foreign = make_buffer(other.get(), bytes);
    EXPECT_EQ(try_append(GREY_DTYPE_BF16, foreign.get(), 0, b, 2 + bytes, bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(names("another context")) << grey_last_error();

    // Layer writes: no reservation, a size that is not the reservation's, a layer out of range.
    const uint64_t layer_bytes = bytes / c.layers;
    EXPECT_EQ(grey_kv_write_layer_buffer(cache.get(), seq, 0, GREY_DTYPE_BF16, b, 2, b, 2 + bytes, layer_bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(names("no reserved tokens")) << grey_last_error();
    ASSERT_EQ(grey_kv_reserve(cache.get(), seq, tokens.data(), 2, nullptr), GREY_OK);
    EXPECT_EQ(grey_kv_write_layer_buffer(cache.get(), seq, 0, GREY_DTYPE_BF16, b, 2, b, 2 + bytes, layer_bytes / 2), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_kv_write_layer_buffer(cache.get(), seq, 2, GREY_DTYPE_BF16, b, 2, b, 2 + bytes, layer_bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(names("layer is 2")) << grey_last_error();
    EXPECT_EQ(grey_kv_write_layer_buffer(cache.get(), seq, 0, GREY_DTYPE_BF16, b, 2, b, 2 + bytes, 3 * layer_bytes), GREY_ERROR_INVALID_ARGUMENT);

    // Still usable: the reservation is written from the same buffer, then an append follows.
    for (uint32_t layer = 0; layer < c.layers; ++layer)
        ASSERT_EQ(grey_kv_write_layer_buffer(cache.get(), seq, layer, GREY_DTYPE_BF16, b, 2 + layer * layer_bytes, b, 2 + bytes + layer * layer_bytes,
                                             layer_bytes),
                  GREY_OK)
            << grey_last_error();
    ASSERT_EQ(try_append(GREY_DTYPE_BF16, b, 2, b, 2 + bytes, bytes), GREY_OK) << grey_last_error();
    EXPECT_EQ(length_of(cache.get(), seq), 4u);
}
