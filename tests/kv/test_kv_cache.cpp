// Cache, sequence, fork, truncate and prefix-sharing semantics, tenant isolation, capacity, and bad
// arguments: each failure names the problem and leaves the cache usable.
#include "kv_test_support.hpp"

#include <algorithm>
#include <cstring>
#include <string>

using namespace kvtest;

namespace {

std::vector<float> gather_keys(grey_kv_cache* cache, uint64_t seq, const grey_kv_cache_config& c, uint32_t layer = 0) {
    uint64_t length = 0;
    EXPECT_EQ(grey_kv_sequence_length(cache, seq, &length), GREY_OK);
    std::vector<float> k(length * c.kv_heads * c.head_dim), v(k.size());
    EXPECT_EQ(grey_kv_gather(cache, seq, layer, k.data(), v.data(), k.size() * 4), GREY_OK) << grey_last_error();
    return k;
}

grey_kv_cache_config uncompressed_config() {
    auto c = small_config();
    c.window_tokens = GREY_KV_WINDOW_ALL;
    return c;
}

// The bytes of one window-form block of `c` (every layer's K and V in 16 bits).
uint64_t window_block_bytes(const grey_kv_cache_config& c) { return 2ull * c.layers * c.kv_heads * c.tokens_per_block * c.head_dim * 2; }

// Appends the 12 tokens iota_tokens(12) (three blocks of uncompressed_config) to a sequence of salt 0 and
// frees it, leaving the blocks cached.
void leave_three_cached_blocks(grey_kv_cache* cache, const grey_kv_cache_config& c, uint32_t seed) {
    uint64_t sequence = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache, 0, &sequence), GREY_OK);
    ASSERT_EQ(append(cache, sequence, iota_tokens(12), random_kv(c, 12, seed)), GREY_OK);
    ASSERT_EQ(grey_kv_sequence_free(cache, sequence), GREY_OK);
    ASSERT_EQ(stats(cache).blocks_cached, 3u);
}

}  // namespace

TEST(KvCache, SequenceLifecycle) {
    auto context = make_context();
    const auto c = small_config();
    auto cache = make_cache(context.get(), c);
    uint64_t seq = 0, length = 7;
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 1, &seq), GREY_OK);
    ASSERT_EQ(grey_kv_sequence_length(cache.get(), seq, &length), GREY_OK);
    EXPECT_EQ(length, 0u);
    ASSERT_EQ(append(cache.get(), seq, iota_tokens(6), random_kv(c, 6, 1)), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_kv_sequence_length(cache.get(), seq, &length), GREY_OK);
    EXPECT_EQ(length, 6u);
    ASSERT_EQ(grey_kv_sequence_truncate(cache.get(), seq, 3), GREY_OK);
    ASSERT_EQ(grey_kv_sequence_length(cache.get(), seq, &length), GREY_OK);
    EXPECT_EQ(length, 3u);
    EXPECT_EQ(grey_kv_sequence_truncate(cache.get(), seq, 4), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(grey_last_error(), "only shortens"), nullptr);
    ASSERT_EQ(grey_kv_sequence_free(cache.get(), seq), GREY_OK);
    EXPECT_EQ(grey_kv_sequence_free(cache.get(), seq), GREY_ERROR_NOT_FOUND);
    EXPECT_NE(std::strstr(grey_last_error(), "does not exist"), nullptr);
    EXPECT_EQ(append(cache.get(), seq, iota_tokens(1), random_kv(c, 1, 2)), GREY_ERROR_NOT_FOUND);
    EXPECT_EQ(grey_kv_sequence_length(cache.get(), 12345, &length), GREY_ERROR_NOT_FOUND);
    const auto s = stats(cache.get());
    EXPECT_EQ(s.sequences, 0u);
    EXPECT_EQ(s.blocks_used, s.blocks_cached);  // only named full blocks may stay, as cached prefixes
}

TEST(KvCache, TruncateThenAppendRewritesTheTail) {
    auto context = make_context();
    const auto c = uncompressed_config();
    auto cache = make_cache(context.get(), c);
    uint64_t seq = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &seq), GREY_OK);
    const auto first = random_kv(c, 6, 3);
    ASSERT_EQ(append(cache.get(), seq, iota_tokens(6), first), GREY_OK);
    ASSERT_EQ(grey_kv_sequence_truncate(cache.get(), seq, 2), GREY_OK);
    const auto second = random_kv(c, 3, 4);
    ASSERT_EQ(append(cache.get(), seq, iota_tokens(3, 500), second), GREY_OK);
    const auto k = gather_keys(cache.get(), seq, c);
    const size_t row = size_t{c.kv_heads} * c.head_dim;
    ASSERT_EQ(k.size(), 5 * row);
    EXPECT_NEAR(k[0], first.keys[0], 0.01f);
    EXPECT_NEAR(k[2 * row], second.keys[0], 0.02f);  // layer 0, token 0 of the second append
}

// Appends one token at a time, as decoding does: every full block that leaves the window is quantized at
// once, none later than that, also after a truncation into the quantized blocks (whose last block goes
// back to window form when it is written again) and in a fork.
TEST(KvCache, DecodeStepsQuantizeEachBlockAsItLeavesTheWindow) {
    auto context = make_context();
    const auto c = small_config();  // blocks of 4 tokens, a window of 8
    auto cache = make_cache(context.get(), c);
    const auto old_blocks = [&](uint64_t length) { return length > c.window_tokens ? (length - c.window_tokens) / c.tokens_per_block : 0; };
    uint64_t seq = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &seq), GREY_OK);
    for (uint32_t length = 1; length <= 40; ++length) {
        ASSERT_EQ(append(cache.get(), seq, iota_tokens(1, static_cast<int32_t>(length)), random_kv(c, 1, length)), GREY_OK) << grey_last_error();
        ASSERT_EQ(stats(cache.get()).blocks_compressed, old_blocks(length)) << length << " tokens";
    }
    // Tokens 18 and 19 go: block 4 (tokens 16-19) stays quantized until it is written again; blocks 5-7,
    // full and named, stay as cached prefixes (quantized, and counted: four of them from here on, with
    // block 4's quantized form once the sequence writes a window-form copy of it).
    ASSERT_EQ(grey_kv_sequence_truncate(cache.get(), seq, 18), GREY_OK);
    EXPECT_EQ(stats(cache.get()).blocks_compressed, 8u);
    ASSERT_EQ(append(cache.get(), seq, iota_tokens(1, 500), random_kv(c, 1, 500)), GREY_OK) << grey_last_error();
    constexpr uint64_t kCached = 4;
    EXPECT_EQ(stats(cache.get()).blocks_compressed, 4 + kCached) << "block 4 copied to window form for its new token";
    for (uint32_t length = 20; length <= 36; ++length) {
        ASSERT_EQ(append(cache.get(), seq, iota_tokens(1, static_cast<int32_t>(600 + length)), random_kv(c, 1, 600 + length)), GREY_OK);
        ASSERT_EQ(stats(cache.get()).blocks_compressed, std::max<uint64_t>(4, old_blocks(length)) + kCached) << length << " tokens after the truncation";
    }
    // A fork shares every block; its own appends quantize blocks as they leave its window, the shared
    // ones included.
    uint64_t forked = 0;
    ASSERT_EQ(grey_kv_sequence_fork(cache.get(), seq, &forked), GREY_OK);
    for (uint32_t length = 37; length <= 44; ++length)
        ASSERT_EQ(append(cache.get(), forked, iota_tokens(1, static_cast<int32_t>(700 + length)), random_kv(c, 1, 700 + length)), GREY_OK);
    EXPECT_EQ(stats(cache.get()).blocks_compressed, old_blocks(44) + kCached);
}

TEST(KvCache, ForkCopiesTheLastBlockOnWrite) {
    auto context = make_context();
    const auto c = uncompressed_config();
    auto cache = make_cache(context.get(), c);
    uint64_t a = 0, b = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 7, &a), GREY_OK);
    ASSERT_EQ(append(cache.get(), a, iota_tokens(6), random_kv(c, 6, 5)), GREY_OK);
    const auto before = gather_keys(cache.get(), a, c);
    ASSERT_EQ(grey_kv_sequence_fork(cache.get(), a, &b), GREY_OK);
    EXPECT_EQ(stats(cache.get()).blocks_used, 2u);  // shared, nothing copied yet
    ASSERT_EQ(append(cache.get(), b, iota_tokens(1, 900), random_kv(c, 1, 6)), GREY_OK);
    EXPECT_EQ(stats(cache.get()).blocks_used, 3u);  // b's last block was copied
    EXPECT_EQ(gather_keys(cache.get(), a, c), before);
    auto forked = gather_keys(cache.get(), b, c);
    forked.resize(before.size());
    EXPECT_EQ(forked, before);
    ASSERT_EQ(append(cache.get(), a, iota_tokens(1, 901), random_kv(c, 1, 7)), GREY_OK);
    uint64_t length = 0;
    ASSERT_EQ(grey_kv_sequence_length(cache.get(), b, &length), GREY_OK);
    EXPECT_EQ(length, 7u);
    EXPECT_EQ(grey_kv_sequence_fork(cache.get(), 999, &b), GREY_ERROR_NOT_FOUND);
}

TEST(KvCache, IdenticalPrefixesShareBlocks) {
    auto context = make_context();
    const auto c = uncompressed_config();
    auto cache = make_cache(context.get(), c);
    uint64_t a = 0, b = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 42, &a), GREY_OK);
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 42, &b), GREY_OK);
    ASSERT_EQ(append(cache.get(), a, iota_tokens(9), random_kv(c, 9, 8)), GREY_OK);
    ASSERT_EQ(append(cache.get(), b, iota_tokens(9), random_kv(c, 9, 9)), GREY_OK);
    const auto s = stats(cache.get());
    EXPECT_EQ(s.prefix_hits, 2u);
    EXPECT_EQ(s.blocks_used, 4u);  // two shared full blocks and two private last blocks
    // The shared tokens read what the first sequence stored (identical prefixes are assumed to give
    // identical K/V).
    const auto ka = gather_keys(cache.get(), a, c), kb = gather_keys(cache.get(), b, c);
    const size_t row = size_t{c.kv_heads} * c.head_dim;
    EXPECT_TRUE(std::equal(ka.begin(), ka.begin() + 8 * row, kb.begin()));
    // A different token in the second block breaks sharing from there on.
    uint64_t d = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 42, &d), GREY_OK);
    auto tokens = iota_tokens(8);
    tokens[5] = -1;
    ASSERT_EQ(append(cache.get(), d, tokens, random_kv(c, 8, 10)), GREY_OK);
    EXPECT_EQ(stats(cache.get()).prefix_hits, 3u);
}

TEST(KvCache, TenantsNeverShareAcrossSalts) {
    auto context = make_context();
    const auto c = uncompressed_config();
    auto cache = make_cache(context.get(), c);
    uint64_t a = 0, b = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 1, &a), GREY_OK);
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 2, &b), GREY_OK);
    const auto kv_a = random_kv(c, 8, 11), kv_b = random_kv(c, 8, 12);
    ASSERT_EQ(append(cache.get(), a, iota_tokens(8), kv_a), GREY_OK);
    ASSERT_EQ(append(cache.get(), b, iota_tokens(8), kv_b), GREY_OK);
    const auto s = stats(cache.get());
    EXPECT_EQ(s.prefix_hits, 0u);
    EXPECT_EQ(s.blocks_used, 4u);
    const auto kb = gather_keys(cache.get(), b, c);
    EXPECT_NEAR(kb[0], kv_b.keys[0], 0.02f);
    EXPECT_NE(kb, gather_keys(cache.get(), a, c));
    // Also after tenant 1's sequence is freed and its blocks are only cached.
    ASSERT_EQ(grey_kv_sequence_free(cache.get(), a), GREY_OK);
    uint64_t b2 = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 2, &b2), GREY_OK);
    ASSERT_EQ(append(cache.get(), b2, iota_tokens(8), kv_a), GREY_OK);
    EXPECT_EQ(stats(cache.get()).prefix_hits, 2u);  // from tenant 2's own blocks
    EXPECT_EQ(gather_keys(cache.get(), b2, c), kb);
}

TEST(KvCache, CapacityEvictsCachedPrefixesThenFailsCleanly) {
    auto context = make_context();
    auto c = uncompressed_config();
    const uint64_t block_bytes = window_block_bytes(c);
    c.capacity_bytes = 3 * block_bytes;
    auto cache = make_cache(context.get(), c);
    uint64_t a = 0, b = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &a), GREY_OK);
    ASSERT_EQ(append(cache.get(), a, iota_tokens(12), random_kv(c, 12, 13)), GREY_OK);
    EXPECT_EQ(stats(cache.get()).blocks_free, 0u);
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &b), GREY_OK);
    EXPECT_EQ(append(cache.get(), b, iota_tokens(1, 7000), random_kv(c, 1, 14)), GREY_ERROR_OUT_OF_MEMORY);
    EXPECT_NE(std::strstr(grey_last_error(), "full"), nullptr) << grey_last_error();
    uint64_t length = 9;
    ASSERT_EQ(grey_kv_sequence_length(cache.get(), b, &length), GREY_OK);
    EXPECT_EQ(length, 0u);
    ASSERT_EQ(grey_kv_sequence_free(cache.get(), a), GREY_OK);
    EXPECT_EQ(stats(cache.get()).blocks_cached, 3u);
    ASSERT_EQ(append(cache.get(), b, iota_tokens(5, 7000), random_kv(c, 5, 15)), GREY_OK) << grey_last_error();
    const auto s = stats(cache.get());
    EXPECT_EQ(s.evictions, 2u);
    EXPECT_EQ(s.blocks_used, 3u);
    // Room beyond what could ever fit.
    EXPECT_EQ(append(cache.get(), b, iota_tokens(100), random_kv(c, 100, 16)), GREY_ERROR_OUT_OF_MEMORY);
    ASSERT_EQ(grey_kv_sequence_length(cache.get(), b, &length), GREY_OK);
    EXPECT_EQ(length, 5u);
}

TEST(KvCache, EvictionTakesTheLeastRecentlyReleasedPrefixFirst) {
    auto context = make_context();
    auto c = uncompressed_config();  // blocks of 4 tokens
    c.capacity_bytes = 3 * window_block_bytes(c);
    auto cache = make_cache(context.get(), c);
    uint64_t a = 0, b = 0, again = 0, d = 0, e = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &a), GREY_OK);
    ASSERT_EQ(append(cache.get(), a, iota_tokens(4, 0), random_kv(c, 4, 31)), GREY_OK);
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &b), GREY_OK);
    ASSERT_EQ(append(cache.get(), b, iota_tokens(4, 100), random_kv(c, 4, 32)), GREY_OK);
    ASSERT_EQ(grey_kv_sequence_free(cache.get(), a), GREY_OK);
    ASSERT_EQ(grey_kv_sequence_free(cache.get(), b), GREY_OK);
    // a's block, taken back by a prefix hit and released again, is now the more recently used.
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &again), GREY_OK);
    ASSERT_EQ(append(cache.get(), again, iota_tokens(4, 0), random_kv(c, 4, 31)), GREY_OK);
    EXPECT_EQ(stats(cache.get()).prefix_hits, 1u);
    ASSERT_EQ(grey_kv_sequence_free(cache.get(), again), GREY_OK);
    EXPECT_EQ(stats(cache.get()).blocks_cached, 2u);
    // Two new blocks where one is free: b's block goes.
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &d), GREY_OK);
    ASSERT_EQ(append(cache.get(), d, iota_tokens(8, 500), random_kv(c, 8, 33)), GREY_OK) << grey_last_error();
    EXPECT_EQ(stats(cache.get()).evictions, 1u);
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &e), GREY_OK);
    ASSERT_EQ(append(cache.get(), e, iota_tokens(4, 0), random_kv(c, 4, 31)), GREY_OK);
    const auto s = stats(cache.get());
    EXPECT_EQ(s.prefix_hits, 2u);  // a's block was kept
    EXPECT_EQ(s.evictions, 1u);
    EXPECT_EQ(s.blocks_cached, 0u);
}

TEST(KvCache, CachedBlocksTakenBackByAPrefixHitAreNoLongerRoomToEvict) {
    auto context = make_context();
    auto c = uncompressed_config();  // blocks of 4 tokens
    const uint64_t block_bytes = window_block_bytes(c);
    c.capacity_bytes = 5 * block_bytes;
    auto cache = make_cache(context.get(), c);
    uint64_t b = 0, d = 0, e = 0;
    ASSERT_NO_FATAL_FAILURE(leave_three_cached_blocks(cache.get(), c, 21));
    // The same first 8 tokens: two cached blocks are held again, one stays cached.
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &b), GREY_OK);
    ASSERT_EQ(append(cache.get(), b, iota_tokens(8), random_kv(c, 8, 22)), GREY_OK);
    EXPECT_EQ(stats(cache.get()).prefix_hits, 2u);
    EXPECT_EQ(stats(cache.get()).blocks_cached, 1u);
    // Three new blocks: room for them by evicting the one block still cached.
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &d), GREY_OK);
    ASSERT_EQ(append(cache.get(), d, iota_tokens(12, 500), random_kv(c, 12, 23)), GREY_OK) << grey_last_error();
    EXPECT_EQ(stats(cache.get()).evictions, 1u);
    EXPECT_EQ(stats(cache.get()).blocks_cached, 0u);
    // Nothing is left to evict: the two blocks b took back are not room.
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &e), GREY_OK);
    EXPECT_EQ(append(cache.get(), e, iota_tokens(4, 900), random_kv(c, 4, 24)), GREY_ERROR_OUT_OF_MEMORY);
    EXPECT_NE(std::strstr(grey_last_error(), (std::to_string(5 * block_bytes) + " of " + std::to_string(5 * block_bytes)).c_str()), nullptr)
        << grey_last_error();
    const auto s = stats(cache.get());
    EXPECT_EQ(s.evictions, 1u);
    EXPECT_EQ(s.blocks_used, 5u);
}

TEST(KvCache, AFullCacheKeepsThePrefixAnAppendSharesAndGivesItBackWhenThereIsNoRoom) {
    auto context = make_context();
    auto c = uncompressed_config();  // blocks of 4 tokens
    const uint64_t block_bytes = window_block_bytes(c);
    c.capacity_bytes = 3 * block_bytes;
    auto cache = make_cache(context.get(), c);
    uint64_t b = 0;
    ASSERT_NO_FATAL_FAILURE(leave_three_cached_blocks(cache.get(), c, 31));
    // The first 8 tokens again, and 8 new ones: the 2 shared blocks and 2 new ones do not fit in 3.
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &b), GREY_OK);
    auto tokens = iota_tokens(8);
    const auto more = iota_tokens(8, 700);
    tokens.insert(tokens.end(), more.begin(), more.end());
    EXPECT_EQ(append(cache.get(), b, tokens, random_kv(c, 16, 32)), GREY_ERROR_OUT_OF_MEMORY);
    auto s = stats(cache.get());
    EXPECT_EQ(s.prefix_hits, 0u) << "the hits are given back";
    EXPECT_EQ(s.blocks_cached, 3u);
    EXPECT_EQ(s.evictions, 0u);
    uint64_t length = 9;
    ASSERT_EQ(grey_kv_sequence_length(cache.get(), b, &length), GREY_OK);
    EXPECT_EQ(length, 0u);
    // The first 8 tokens alone: both blocks shared, nothing evicted to make room for them.
    ASSERT_EQ(append(cache.get(), b, iota_tokens(8), random_kv(c, 8, 33)), GREY_OK) << grey_last_error();
    s = stats(cache.get());
    EXPECT_EQ(s.prefix_hits, 2u);
    EXPECT_EQ(s.evictions, 0u);
    EXPECT_EQ(s.blocks_cached, 1u);
    EXPECT_EQ(s.blocks_used, 3u);
    // One new block takes the room of the one still cached.
    ASSERT_EQ(append(cache.get(), b, iota_tokens(4, 700), random_kv(c, 4, 34)), GREY_OK) << grey_last_error();
    s = stats(cache.get());
    EXPECT_EQ(s.evictions, 1u);
    EXPECT_EQ(s.blocks_used, 3u);
    ASSERT_EQ(grey_kv_sequence_length(cache.get(), b, &length), GREY_OK);
    EXPECT_EQ(length, 12u);
}

TEST(KvCache, OldBlocksAreQuantized) {
    auto context = make_context();
    const auto c = small_config();  // window 8, blocks of 4, int4
    auto cache = make_cache(context.get(), c);
    uint64_t a = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &a), GREY_OK);
    ASSERT_EQ(append(cache.get(), a, iota_tokens(16), random_kv(c, 16, 17)), GREY_OK);
    const auto s = stats(cache.get());
    EXPECT_EQ(s.blocks_compressed, 2u);
    EXPECT_GT(s.compression_ratio, 1.0);
    EXPECT_EQ(s.tokens, 16u);
}

// The memory of blocks the cache drops (compressed out of the window form, evicted, freed) is kept for its
// next blocks, but the cache's blocks and what it keeps never hold more than its capacity, and all of it
// goes back with the cache.
TEST(KvCache, DroppedBlockMemoryIsReusedWithinTheCapacity) {
    auto context = make_context();
    auto c = small_config();  // window 8, blocks of 4, int4
    c.capacity_bytes = 12 * window_block_bytes(c);
    const auto device_memory = [&] {
        grey_memory_stats m{};
        m.struct_size = sizeof m;
        EXPECT_EQ(grey_device_memory_stats_get(context.get(), 0, &m), GREY_OK) << grey_last_error();
        return m;
    };
    const grey_memory_stats before = device_memory();
    {
        auto cache = make_cache(context.get(), c);
        for (uint64_t fill = 0; fill < 6; ++fill) {  // each under a new salt: evicts the fill before's cached blocks
            uint64_t sequence = 0;
            ASSERT_EQ(grey_kv_sequence_create(cache.get(), fill + 1, &sequence), GREY_OK);
            for (int32_t first = 0; first < 40; first += 8)
                ASSERT_EQ(append(cache.get(), sequence, iota_tokens(8, first), random_kv(c, 8, 30 + fill)), GREY_OK) << grey_last_error();
            const grey_memory_stats now = device_memory();
            const uint64_t buffers = now.allocation_count - before.allocation_count;
            EXPECT_GT(buffers, 0u);
            EXPECT_LE(now.allocated_bytes - before.allocated_bytes, c.capacity_bytes + 64 * buffers) << "fill " << fill;
            EXPECT_GT(stats(cache.get()).blocks_compressed, 0u);
            ASSERT_EQ(grey_kv_sequence_free(cache.get(), sequence), GREY_OK);
        }
        EXPECT_GT(stats(cache.get()).evictions, 0u);
    }
    EXPECT_EQ(device_memory().allocation_count, before.allocation_count) << "the blocks and the kept memory went back with the cache";
}

TEST(KvCache, BadArgumentsAreRefusedAndLeaveTheCacheUsable) {
    auto context = make_context();
    const auto c = small_config();
    grey_kv_cache* raw = nullptr;
    EXPECT_EQ(grey_kv_cache_create(nullptr, 0, &c, &raw), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_kv_cache_create(context.get(), 0, nullptr, &raw), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_kv_cache_create(context.get(), 99, &c, &raw), GREY_ERROR_INVALID_ARGUMENT);
    auto bad = c;
    bad.head_dim = 0;
    EXPECT_EQ(grey_kv_cache_create(context.get(), 0, &bad, &raw), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(grey_last_error(), "head_dim"), nullptr);
    bad = c;
    bad.group_size = 48;
    EXPECT_EQ(grey_kv_cache_create(context.get(), 0, &bad, &raw), GREY_ERROR_INVALID_ARGUMENT);
    bad = c;
    bad.capacity_bytes = 10;
    EXPECT_EQ(grey_kv_cache_create(context.get(), 0, &bad, &raw), GREY_ERROR_INVALID_ARGUMENT);
    bad = c;
    bad.flags = 0x4;
    EXPECT_EQ(grey_kv_cache_create(context.get(), 0, &bad, &raw), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(grey_last_error(), "flags"), nullptr);
    bad = c;
    bad.flags = GREY_KV_HADAMARD_K;
    bad.head_dim = 48;  // the Walsh-Hadamard transform needs a power of two
    EXPECT_EQ(grey_kv_cache_create(context.get(), 0, &bad, &raw), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(grey_last_error(), "power of two"), nullptr);
    EXPECT_NE(std::strstr(grey_last_error(), "head_dim is 48"), nullptr);
    EXPECT_EQ(raw, nullptr);
    bad = c;
    bad.tokens_per_block = 1;  // a quantized block would be larger than its window form
    bad.format = GREY_KV_INT8;
    EXPECT_EQ(grey_kv_cache_create(context.get(), 0, &bad, &raw), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(grey_last_error(), "tokens_per_block"), nullptr);
    bad.window_tokens = GREY_KV_WINDOW_ALL;  // ... which does not matter when nothing is quantized
    ASSERT_EQ(grey_kv_cache_create(context.get(), 0, &bad, &raw), GREY_OK);
    grey_kv_cache_destroy(raw);
    raw = nullptr;
    bad = c;
    bad.window_dtype = GREY_DTYPE_F32;
    EXPECT_EQ(grey_kv_cache_create(context.get(), 0, &bad, &raw), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(raw, nullptr);

    auto cache = make_cache(context.get(), c);
    uint64_t seq = 0;
    ASSERT_EQ(grey_kv_sequence_create(cache.get(), 0, &seq), GREY_OK);
    const auto kv = random_kv(c, 2, 18);
    const auto tokens = iota_tokens(2);
    const uint64_t bytes = kv.keys.size() * 4;
    EXPECT_EQ(grey_kv_append(nullptr, seq, tokens.data(), 2, GREY_DTYPE_F32, kv.keys.data(), kv.values.data(), bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_kv_append(cache.get(), seq, nullptr, 2, GREY_DTYPE_F32, kv.keys.data(), kv.values.data(), bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_kv_append(cache.get(), seq, tokens.data(), 0, GREY_DTYPE_F32, kv.keys.data(), kv.values.data(), bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_kv_append(cache.get(), seq, tokens.data(), 2, GREY_DTYPE_F32, kv.keys.data(), kv.values.data(), bytes - 4), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(grey_last_error(), "kv_bytes"), nullptr);
    EXPECT_EQ(grey_kv_append(cache.get(), seq, tokens.data(), UINT32_MAX, GREY_DTYPE_F32, kv.keys.data(), kv.values.data(), bytes), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_kv_append(cache.get(), seq, tokens.data(), 2, GREY_DTYPE_Q8_0, kv.keys.data(), kv.values.data(), bytes), GREY_ERROR_INVALID_ARGUMENT);
    auto nan_kv = kv;
    nan_kv.values[5] = NAN;
    EXPECT_EQ(append(cache.get(), seq, tokens, nan_kv), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(grey_last_error(), "values[5]"), nullptr);
    EXPECT_EQ(grey_kv_sequence_create(cache.get(), 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    grey_kv_stats small{};
    small.struct_size = 8;
    EXPECT_EQ(grey_kv_cache_stats_get(cache.get(), &small), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_kv_gather(cache.get(), seq, 5, nullptr, nullptr, 0), GREY_ERROR_INVALID_ARGUMENT);
    uint64_t length = 9;
    ASSERT_EQ(grey_kv_sequence_length(cache.get(), seq, &length), GREY_OK);
    EXPECT_EQ(length, 0u);
    EXPECT_EQ(append(cache.get(), seq, tokens, kv), GREY_OK) << grey_last_error();
    grey_kv_cache_destroy(nullptr);
}
