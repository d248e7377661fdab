// Per-layer writes (grey_kv_reserve, grey_kv_write_layer): the same stored values as an append of every
// layer at once, attention that sees a reserved token on the layers already written, prefix-cache hits
// reported at reservation, and every misuse refused with the cache left usable.
#include "kv_test_support.hpp"

#include <cstring>

using namespace kvtest;

namespace {

// Layer `layer` of `kv` ([layer][token][head][dim]) as grey_kv_write_layer takes it.
std::vector<float> layer_of(const std::vector<float>& all, const grey_kv_cache_config& c, uint32_t n, uint32_t layer) {
    const size_t size = size_t{n} * c.kv_heads * c.head_dim;
    return {all.begin() + layer * size, all.begin() + (layer + 1) * size};
}

grey_status write_layer(grey_kv_cache* cache, uint64_t seq, const grey_kv_cache_config& c, const Kv& kv, uint32_t n, uint32_t layer) {
    const auto k = layer_of(kv.keys, c, n, layer), v = layer_of(kv.values, c, n, layer);
    return grey_kv_write_layer(cache, seq, layer, GREY_DTYPE_F32, k.data(), v.data(), k.size() * sizeof(float));
}

std::vector<float> attend(grey_kv_cache* cache, uint64_t seq, const grey_kv_cache_config& c, uint32_t layer, const std::vector<float>& q) {
    grey_kv_attend_params params = GREY_KV_ATTEND_PARAMS_INIT;
    params.layer = layer;
    params.query_heads = c.kv_heads;
    std::vector<float> out(q.size());
    EXPECT_EQ(grey_kv_attend(cache, &params, &seq, 1, q.data(), out.data(), q.size() * 4), GREY_OK) << grey_last_error();
    return out;
}

}  // namespace

TEST(KvLayers, WritingLayerByLayerStoresWhatAnAppendStores) {
    auto context = make_context();
    const auto c = small_config();  // 2 layers, 4 tokens a block, window 8: blocks get quantized
    auto by_append = make_cache(context.get(), c), by_layer = make_cache(context.get(), c);
    const uint64_t a = new_sequence(by_append.get()), b = new_sequence(by_layer.get());
    uint32_t written = 0;
    for (const uint32_t n : {3u, 1u, 9u, 1u, 6u}) {
        const auto tokens = iota_tokens(n, static_cast<int32_t>(100 + written));
        const Kv kv = random_kv(c, n, 40 + n + written);
        ASSERT_EQ(append(by_append.get(), a, tokens, kv), GREY_OK) << grey_last_error();
        uint32_t cached = 99;
        ASSERT_EQ(grey_kv_reserve(by_layer.get(), b, tokens.data(), n, &cached), GREY_OK) << grey_last_error();
        EXPECT_EQ(cached, 0u);
        for (uint32_t layer = c.layers; layer-- > 0;) ASSERT_EQ(write_layer(by_layer.get(), b, c, kv, n, layer), GREY_OK) << grey_last_error();
        written += n;
    }
    for (uint32_t layer = 0; layer < c.layers; ++layer) {
        const auto x = gather(by_append.get(), a, c, layer), y = gather(by_layer.get(), b, c, layer);
        ASSERT_EQ(x.size(), y.size());
        EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * 4), 0) << "layer " << layer;
    }
    EXPECT_EQ(stats(by_append.get()).bytes_used, stats(by_layer.get()).bytes_used);
    EXPECT_EQ(stats(by_append.get()).blocks_compressed, stats(by_layer.get()).blocks_compressed);
}

TEST(KvLayers, AttentionSeesAReservedTokenOnItsWrittenLayersOnly) {
    auto context = make_context();
    const auto c = small_config();
    auto cache = make_cache(context.get(), c), reference = make_cache(context.get(), c);
    const uint64_t seq = new_sequence(cache.get()), ref = new_sequence(reference.get());
    const Kv prompt = random_kv(c, 6, 51), step = random_kv(c, 1, 52);
    ASSERT_EQ(append(cache.get(), seq, iota_tokens(6), prompt), GREY_OK);
    ASSERT_EQ(append(reference.get(), ref, iota_tokens(6), prompt), GREY_OK);
    const std::vector<float> q = random_kv(c, 1, 53).keys;  // layers x heads x dim values; the first heads x dim are the query
    const std::vector<float> query(q.begin(), q.begin() + c.kv_heads * c.head_dim);
    const auto before_layer1 = attend(cache.get(), seq, c, 1, query);

    const auto next = iota_tokens(1, 700);
    ASSERT_EQ(grey_kv_reserve(cache.get(), seq, next.data(), 1, nullptr), GREY_OK);
    ASSERT_EQ(write_layer(cache.get(), seq, c, step, 1, 0), GREY_OK);
    uint64_t length = 0;
    ASSERT_EQ(grey_kv_sequence_length(cache.get(), seq, &length), GREY_OK);
    EXPECT_EQ(length, 6u) << "reserved tokens join the sequence when every layer is written";
    const auto during_layer0 = attend(cache.get(), seq, c, 0, query);
    EXPECT_EQ(attend(cache.get(), seq, c, 1, query), before_layer1) << "layer 1 is not written: the token is not seen there";
    ASSERT_EQ(write_layer(cache.get(), seq, c, step, 1, 1), GREY_OK);
    ASSERT_EQ(grey_kv_sequence_length(cache.get(), seq, &length), GREY_OK);
    EXPECT_EQ(length, 7u);

    ASSERT_EQ(append(reference.get(), ref, next, step), GREY_OK);
    EXPECT_EQ(during_layer0, attend(reference.get(), ref, c, 0, query)) << "layer 0 saw the token before it was committed";
}

TEST(KvLayers, CachedPrefixBlocksAreReportedAndTheirWritesIgnored) {
    auto context = make_context();
    auto c = small_config();
    c.window_tokens = GREY_KV_WINDOW_ALL;
    auto cache = make_cache(context.get(), c);
    const uint64_t first = new_sequence(cache.get());
    const Kv prompt = random_kv(c, 8, 61);
    ASSERT_EQ(append(cache.get(), first, iota_tokens(8), prompt), GREY_OK);  // two full blocks of 4

    const uint64_t second = new_sequence(cache.get());
    const auto tokens = iota_tokens(10);  // the same 8, and 2 more
    uint32_t cached = 0;
    ASSERT_EQ(grey_kv_reserve(cache.get(), second, tokens.data(), 10, &cached), GREY_OK) << grey_last_error();
    EXPECT_EQ(cached, 8u);
    EXPECT_EQ(stats(cache.get()).prefix_hits, 2u);
    const Kv other = random_kv(c, 10, 62);  // different K/V for the cached tokens: ignored
    for (uint32_t layer = 0; layer < c.layers; ++layer) ASSERT_EQ(write_layer(cache.get(), second, c, other, 10, layer), GREY_OK);
    const size_t row = size_t{c.kv_heads} * c.head_dim;
    const auto mine = gather(cache.get(), second, c, 1), theirs = gather(cache.get(), first, c, 1);
    ASSERT_EQ(mine.size(), 2 * 10 * row);
    EXPECT_EQ(std::memcmp(mine.data(), theirs.data(), 8 * row * 4), 0) << "the cached tokens keep the stored keys";

    const uint64_t stranger = new_sequence(cache.get(), 2);  // another tenant: nothing is shared
    ASSERT_EQ(grey_kv_reserve(cache.get(), stranger, tokens.data(), 10, &cached), GREY_OK);
    EXPECT_EQ(cached, 0u);
}

TEST(KvLayers, MisuseIsRefusedAndTheCacheStaysUsable) {
    auto context = make_context();
    const auto c = small_config();
    auto cache = make_cache(context.get(), c);
    const uint64_t seq = new_sequence(cache.get());
    const Kv kv = random_kv(c, 2, 71);
    EXPECT_EQ(write_layer(cache.get(), seq, c, kv, 2, 0), GREY_ERROR_INVALID_ARGUMENT) << "no reservation";
    EXPECT_NE(std::string(grey_last_error()).find("grey_kv_reserve"), std::string::npos) << grey_last_error();

    const auto tokens = iota_tokens(2);
    ASSERT_EQ(grey_kv_reserve(cache.get(), seq, tokens.data(), 2, nullptr), GREY_OK);
    EXPECT_EQ(grey_kv_reserve(cache.get(), seq, tokens.data(), 2, nullptr), GREY_ERROR_INVALID_ARGUMENT) << "one reservation at a time";
    EXPECT_EQ(append(cache.get(), seq, tokens, kv), GREY_ERROR_INVALID_ARGUMENT);
    uint64_t fork = 0;
    EXPECT_EQ(grey_kv_sequence_fork(cache.get(), seq, &fork), GREY_ERROR_INVALID_ARGUMENT);
    const Kv wrong = random_kv(c, 3, 72);
    EXPECT_EQ(write_layer(cache.get(), seq, c, wrong, 3, 0), GREY_ERROR_INVALID_ARGUMENT) << "3 tokens for a reservation of 2";
    const auto k = layer_of(kv.keys, c, 2, 0);
    EXPECT_EQ(grey_kv_write_layer(cache.get(), seq, c.layers, GREY_DTYPE_F32, k.data(), k.data(), k.size() * 4), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_kv_write_layer(cache.get(), seq, 0, GREY_DTYPE_I8, k.data(), k.data(), k.size() * 4), GREY_ERROR_INVALID_ARGUMENT);
    ASSERT_EQ(write_layer(cache.get(), seq, c, kv, 2, 0), GREY_OK);
    EXPECT_EQ(write_layer(cache.get(), seq, c, kv, 2, 0), GREY_ERROR_INVALID_ARGUMENT) << "layer 0 twice";
    EXPECT_EQ(grey_kv_reserve(cache.get(), seq, tokens.data(), 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);

    // Truncating drops the reservation; the sequence takes new tokens afterwards.
    ASSERT_EQ(grey_kv_sequence_truncate(cache.get(), seq, 0), GREY_OK);
    ASSERT_EQ(append(cache.get(), seq, tokens, kv), GREY_OK) << grey_last_error();
    uint64_t length = 0;
    ASSERT_EQ(grey_kv_sequence_length(cache.get(), seq, &length), GREY_OK);
    EXPECT_EQ(length, 2u);
}
