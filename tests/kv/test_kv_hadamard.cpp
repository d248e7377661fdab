// GREY_KV_HADAMARD_K: the transform of common/kv_hadamard.hpp against the matrix it stands for, and a
// cache that rotates K storing something else than one that does not (V untouched), giving K back through
// gather, and keeping that through fork, copy on write and truncation.
#include "common/kv_hadamard.hpp"
#include "kv_test_support.hpp"

#include <bit>
#include <cstring>

using namespace kvtest;

namespace {

// H[i][j] = (-1)^popcount(i & j) / sqrt(n).
std::vector<double> by_matrix(const std::vector<double>& x) {
    const auto n = static_cast<uint32_t>(x.size());
    std::vector<double> y(n, 0.0);
    for (uint32_t i = 0; i < n; ++i)
        for (uint32_t j = 0; j < n; ++j) y[i] += (std::popcount(i & j) % 2 == 0 ? 1.0 : -1.0) * x[j];
    for (auto& v : y) v /= std::sqrt(static_cast<double>(n));
    return y;
}

std::vector<float> gathered_keys(grey_kv_cache* cache, uint64_t seq, uint32_t layer, size_t count, std::vector<float>* values = nullptr) {
    std::vector<float> k(count), v(count);
    EXPECT_EQ(grey_kv_gather(cache, seq, layer, k.data(), v.data(), count * 4), GREY_OK) << grey_last_error();
    if (values != nullptr) *values = v;
    return k;
}

}  // namespace

TEST(KvHadamard, FastTransformIsTheNormalizedWalshHadamardMatrix) {
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (uint32_t n : {1u, 2u, 8u, 16u, 64u, 128u, 256u}) {
        std::vector<float> xf(n);
        for (auto& x : xf) x = normal(rng);
        std::vector<double> xd(xf.begin(), xf.end());
        const auto expected = by_matrix(xd);
        grey::common::kv_hadamard_rotate(xd.data(), n);
        grey::common::kv_hadamard_rotate(xf.data(), n);
        for (uint32_t i = 0; i < n; ++i) {
            EXPECT_NEAR(xd[i], expected[i], 1e-12) << "n " << n << " element " << i;
            EXPECT_NEAR(xf[i], expected[i], 1e-5) << "n " << n << " element " << i;
        }
        grey::common::kv_hadamard_rotate(xd.data(), n);  // its own inverse
        for (uint32_t i = 0; i < n; ++i) EXPECT_NEAR(xd[i], by_matrix(expected)[i], 1e-12);
    }
    EXPECT_EQ(grey::common::kv_hadamard_scale(64), 0.125f);
    EXPECT_FLOAT_EQ(grey::common::kv_hadamard_scale(128), static_cast<float>(1.0 / std::sqrt(128.0)));
}

TEST(KvHadamard, RotatedCacheStoresKRotatedAndGivesItBack) {
    auto context = make_context();
    auto plain_config = small_config();
    plain_config.format = GREY_KV_INT4;
    auto rotated_config = plain_config;
    rotated_config.flags = GREY_KV_HADAMARD_K;
    auto plain = make_cache(context.get(), plain_config);
    auto rotated = make_cache(context.get(), rotated_config);
    // Keys with an outlier channel, as real keys have.
    auto kv = random_kv(plain_config, 20, 3);
    for (size_t i = 0; i < kv.keys.size(); i += plain_config.head_dim) kv.keys[i + 5] = kv.keys[i + 5] * 20.0f + 30.0f;
    uint64_t a = 0, b = 0;
    ASSERT_EQ(grey_kv_sequence_create(plain.get(), 0, &a), GREY_OK);
    ASSERT_EQ(grey_kv_sequence_create(rotated.get(), 0, &b), GREY_OK);
    ASSERT_EQ(append(plain.get(), a, iota_tokens(20), kv), GREY_OK) << grey_last_error();
    ASSERT_EQ(append(rotated.get(), b, iota_tokens(20), kv), GREY_OK) << grey_last_error();
    EXPECT_EQ(stats(plain.get()).bytes_used, stats(rotated.get()).bytes_used);  // rotation costs no bytes
    ASSERT_GT(stats(rotated.get()).blocks_compressed, 0u);

    const size_t row = size_t{plain_config.kv_heads} * plain_config.head_dim, count = 20 * row;
    for (uint32_t layer = 0; layer < plain_config.layers; ++layer) {
        std::vector<float> plain_v, rotated_v;
        const auto plain_k = gathered_keys(plain.get(), a, layer, count, &plain_v);
        const auto rotated_k = gathered_keys(rotated.get(), b, layer, count, &rotated_v);
        EXPECT_EQ(std::memcmp(plain_v.data(), rotated_v.data(), count * 4), 0) << "V is never rotated";
        EXPECT_NE(std::memcmp(plain_k.data(), rotated_k.data(), count * 4), 0) << "K quantized in another basis";
        // Both are K as appended, within the quantization error; tokens 12.. are still in the bf16 window.
        for (size_t i = 0; i < count; ++i) {
            const float input = kv.keys[layer * count + i];
            const double tolerance = i >= 12 * row ? 0.1 + 0.01 * std::fabs(input) : 12.0;
            EXPECT_NEAR(rotated_k[i], input, tolerance) << "layer " << layer << " index " << i;
        }
    }
}

TEST(KvHadamard, ForkTruncateAndCopyOnWriteKeepTheRotation) {
    auto context = make_context();
    auto c = small_config();
    c.flags = GREY_KV_HADAMARD_K;
    c.window_tokens = GREY_KV_WINDOW_ALL;  // bf16 only: gathered K is the input to bf16 rounding
    auto cache = make_cache(context.get(), c);
    uint64_t seq = 0, child = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 1, &seq), GREY_OK);
    const auto first = random_kv(c, 6, 11), more = random_kv(c, 3, 12);
    ASSERT_EQ(append(cache.get(), seq, iota_tokens(6), first), GREY_OK);
    ASSERT_EQ(grey_kv_sequence_fork(cache.get(), seq, &child), GREY_OK);
    ASSERT_EQ(append(cache.get(), child, iota_tokens(3, 500), more), GREY_OK);  // copies the shared last block
    ASSERT_EQ(grey_kv_sequence_truncate(cache.get(), seq, 5), GREY_OK);
    const size_t row = size_t{c.kv_heads} * c.head_dim;
    const auto parent_k = gathered_keys(cache.get(), seq, 1, 5 * row);
    const auto child_k = gathered_keys(cache.get(), child, 1, 9 * row);
    for (size_t i = 0; i < 5 * row; ++i) {
        const float input = first.keys[6 * row + i];
        EXPECT_NEAR(parent_k[i], input, 0.02 * (1.0 + std::fabs(input)));
        EXPECT_EQ(child_k[i], parent_k[i]);
    }
    for (size_t i = 0; i < 3 * row; ++i) EXPECT_NEAR(child_k[6 * row + i], more.keys[3 * row + i], 0.02 * (1.0 + std::fabs(more.keys[3 * row + i])));
}
