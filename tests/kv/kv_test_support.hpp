// Helpers shared by the KV cache tests: owners of the handles, a host cache of a given shape, and
// deterministic K/V for tokens.
#pragma once

#include "grey.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

namespace kvtest {

struct ContextDeleter {
    void operator()(grey_context* c) const { grey_context_destroy(c); }
};
struct CacheDeleter {
    void operator()(grey_kv_cache* c) const { grey_kv_cache_destroy(c); }
};
using Context = std::unique_ptr<grey_context, ContextDeleter>;
using Cache = std::unique_ptr<grey_kv_cache, CacheDeleter>;

inline Context make_context() {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    grey_context* context = nullptr;
    EXPECT_EQ(grey_context_create(&options, &context), GREY_OK) << grey_last_error();
    return Context(context);
}

inline grey_kv_cache_config small_config() {
    grey_kv_cache_config config = GREY_KV_CACHE_CONFIG_INIT;
    config.layers = 2;
    config.kv_heads = 2;
    config.head_dim = 32;
    config.tokens_per_block = 4;
    config.window_tokens = 8;
    config.capacity_bytes = 1u << 22;
    return config;
}

inline Cache make_cache(grey_context* context, const grey_kv_cache_config& config) {
    grey_kv_cache* cache = nullptr;
    EXPECT_EQ(grey_kv_cache_create(context, 0, &config, &cache), GREY_OK) << grey_last_error();
    return Cache(cache);
}

struct BufferDeleter {
    void operator()(grey_buffer* b) const { grey_buffer_destroy(b); }
};
using Buffer = std::unique_ptr<grey_buffer, BufferDeleter>;

// A buffer on the host device (0).
inline Buffer make_buffer(grey_context* context, uint64_t bytes) {
    grey_buffer* buffer = nullptr;
    EXPECT_EQ(grey_buffer_create(context, 0, bytes, &buffer), GREY_OK) << grey_last_error();
    return Buffer(buffer);
}

inline uint64_t new_sequence(grey_kv_cache* cache, uint64_t salt = 1) {
    uint64_t seq = 0;
    EXPECT_EQ(grey_kv_sequence_create(cache, salt, &seq), GREY_OK) << grey_last_error();
    return seq;
}

// K and V for `n` tokens of every layer, [layer][token][head][dim], from a seeded generator.
struct Kv {
    std::vector<float> keys, values;
};
inline Kv random_kv(const grey_kv_cache_config& c, uint32_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    Kv kv;
    const size_t count = size_t{c.layers} * n * c.kv_heads * c.head_dim;
    kv.keys.resize(count);
    kv.values.resize(count);
    for (auto& x : kv.keys) x = normal(rng);
    for (auto& x : kv.values) x = normal(rng);
    return kv;
}

inline grey_status append(grey_kv_cache* cache, uint64_t seq, const std::vector<int32_t>& tokens, const Kv& kv) {
    return grey_kv_append(cache, seq, tokens.data(), static_cast<uint32_t>(tokens.size()), GREY_DTYPE_F32, kv.keys.data(),
                          kv.values.data(), kv.keys.size() * sizeof(float));
}

inline grey_kv_stats stats(const grey_kv_cache* cache) {
    grey_kv_stats s{};
    s.struct_size = sizeof s;
    EXPECT_EQ(grey_kv_cache_stats_get(cache, &s), GREY_OK) << grey_last_error();
    return s;
}

// The stored K, then V, of `layer` of `seq` as gathered.
inline std::vector<float> gather(grey_kv_cache* cache, uint64_t seq, const grey_kv_cache_config& c, uint32_t layer) {
    uint64_t length = 0;
    EXPECT_EQ(grey_kv_sequence_length(cache, seq, &length), GREY_OK);
    std::vector<float> k(length * c.kv_heads * c.head_dim), v(k.size());
    EXPECT_EQ(grey_kv_gather(cache, seq, layer, k.data(), v.data(), k.size() * 4), GREY_OK) << grey_last_error();
    k.insert(k.end(), v.begin(), v.end());
    return k;
}

inline std::vector<int32_t> iota_tokens(uint32_t n, int32_t first = 100) {
    std::vector<int32_t> t(n);
    for (uint32_t i = 0; i < n; ++i) t[i] = first + static_cast<int32_t>(i);
    return t;
}

}  // namespace kvtest
