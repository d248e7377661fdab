// The best-fit suballocator behind the GPU pools: policy, merging, statistics and failure consistency.
#include "common/suballocator.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

using grey::backend::Suballocator;

namespace {
constexpr uint64_t kAlign = 256;
constexpr uint64_t kMiB = 1ull << 20;
}  // namespace

TEST(Suballocator, RefusesBadAlignment) {
    EXPECT_THROW(Suballocator(0), std::invalid_argument);
    EXPECT_THROW(Suballocator(384), std::invalid_argument);
}

TEST(Suballocator, EmptyHasNothing) {
    Suballocator s(kAlign);
    EXPECT_FALSE(s.allocate(1).has_value());
    EXPECT_EQ(s.growth_needed(1), kAlign);
    EXPECT_EQ(s.growth_needed(1000), 1024u);
    EXPECT_TRUE(s.consistent());
}

TEST(Suballocator, RoundsToAlignmentAndCountsBytes) {
    Suballocator s(kAlign);
    s.grow(2 * kMiB);
    const auto a = s.allocate(1);
    const auto b = s.allocate(257);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, 0u);
    EXPECT_EQ(*b, kAlign);
    EXPECT_EQ(s.block_size(*b), 512u);
    const auto st = s.stats();
    EXPECT_EQ(st.allocated_bytes, 768u);
    EXPECT_EQ(st.free_bytes, 2 * kMiB - 768);
    EXPECT_EQ(st.largest_free_bytes, 2 * kMiB - 768);
    EXPECT_EQ(st.allocation_count, 2u);
    EXPECT_DOUBLE_EQ(st.fragmentation, 0.0);
    EXPECT_TRUE(s.consistent());
}

TEST(Suballocator, PicksTheSmallestHoleThatFits) {
    Suballocator s(kAlign);
    s.grow(64 * 1024);
    // Blocks: [A 4K][B 1K][C 4K][D 2K][E 4K][rest]; free B and D to make holes of 1K and 2K.
    const auto a = s.allocate(4096), b = s.allocate(1024), c = s.allocate(4096), d = s.allocate(2048), e = s.allocate(4096);
    ASSERT_TRUE(a && b && c && d && e);
    ASSERT_TRUE(s.release(*b));
    ASSERT_TRUE(s.release(*d));
    // 1.5K fits the 2K hole and the big tail; best fit takes the 2K hole.
    EXPECT_EQ(s.allocate(1536), *d);
    // 1K goes into the 1K hole exactly.
    EXPECT_EQ(s.allocate(1024), *b);
    EXPECT_TRUE(s.consistent());
}

TEST(Suballocator, MergesFreeNeighboursBothWays) {
    Suballocator s(kAlign);
    s.grow(8 * kAlign);
    const auto a = s.allocate(kAlign), b = s.allocate(kAlign), c = s.allocate(kAlign);
    ASSERT_TRUE(a && b && c);
    ASSERT_TRUE(s.release(*a));
    ASSERT_TRUE(s.release(*c));  // merges with the free tail
    EXPECT_EQ(s.stats().largest_free_bytes, 6 * kAlign);
    ASSERT_TRUE(s.release(*b));  // merges with both sides: one block again
    const auto st = s.stats();
    EXPECT_EQ(st.largest_free_bytes, 8 * kAlign);
    EXPECT_EQ(st.free_bytes, 8 * kAlign);
    EXPECT_DOUBLE_EQ(st.fragmentation, 0.0);
    EXPECT_EQ(s.allocate(8 * kAlign), 0u);
    EXPECT_TRUE(s.consistent());
}

TEST(Suballocator, FragmentationIsOneMinusLargestOverFree) {
    Suballocator s(kAlign);
    s.grow(4 * kAlign);
    const auto a = s.allocate(kAlign), b = s.allocate(kAlign), c = s.allocate(kAlign), d = s.allocate(kAlign);
    ASSERT_TRUE(a && b && c && d);
    ASSERT_TRUE(s.release(*a));
    ASSERT_TRUE(s.release(*c));
    // Two free blocks of 256: largest 256 of 512 free.
    EXPECT_DOUBLE_EQ(s.stats().fragmentation, 0.5);
    EXPECT_FALSE(s.allocate(2 * kAlign).has_value());  // no single hole fits, though 512 are free
    EXPECT_EQ(s.growth_needed(2 * kAlign), 2 * kAlign);  // the tail is allocated (d)
}

TEST(Suballocator, GrowthCountsAFreeTail) {
    Suballocator s(kAlign);
    s.grow(4 * kAlign);
    ASSERT_TRUE(s.allocate(kAlign));
    // 3 blocks free at the end: a request of 5 needs only 2 more.
    EXPECT_EQ(s.growth_needed(5 * kAlign), 2 * kAlign);
    s.grow(2 * kAlign);
    EXPECT_EQ(s.stats().largest_free_bytes, 5 * kAlign);
    EXPECT_EQ(s.allocate(5 * kAlign), kAlign);
    EXPECT_TRUE(s.consistent());
}

TEST(Suballocator, FailedRequestsChangeNothing) {
    Suballocator s(kAlign);
    s.grow(kMiB);
    ASSERT_TRUE(s.allocate(1000));
    const auto before = s.stats();
    EXPECT_FALSE(s.allocate(2 * kMiB).has_value());
    EXPECT_FALSE(s.allocate(UINT64_MAX).has_value());
    EXPECT_FALSE(s.growth_needed(UINT64_MAX).has_value());
    EXPECT_FALSE(s.release(12345));  // not a block start
    EXPECT_FALSE(s.release(kMiB - kAlign));  // inside the free tail
    const auto after = s.stats();
    EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);
    EXPECT_EQ(after.largest_free_bytes, before.largest_free_bytes);
    EXPECT_EQ(after.allocation_count, before.allocation_count);
    EXPECT_TRUE(s.consistent());
}

TEST(Suballocator, DoubleReleaseIsRefused) {
    Suballocator s(kAlign);
    s.grow(kMiB);
    const auto a = s.allocate(100);
    ASSERT_TRUE(a);
    EXPECT_TRUE(s.release(*a));
    EXPECT_FALSE(s.release(*a));
    EXPECT_TRUE(s.consistent());
}

TEST(Suballocator, RandomWorkloadStaysConsistentAndNeverOverlaps) {
    std::mt19937_64 rng(std::random_device{}());
    Suballocator s(kAlign);
    std::map<uint64_t, uint64_t> live;  // offset -> requested size
    for (int step = 0; step < 20000; ++step) {
        if (live.empty() || rng() % 3 != 0) {
            const uint64_t size = 1 + rng() % (64 * 1024);
            auto offset = s.allocate(size);
            if (!offset) {
                s.grow(*s.growth_needed(size) + kAlign * (rng() % 8));
                offset = s.allocate(size);
            }
            ASSERT_TRUE(offset.has_value());
            ASSERT_EQ(*offset % kAlign, 0u);
            // No overlap with the neighbours on either side.
            auto next = live.lower_bound(*offset);
            if (next != live.end()) {
                ASSERT_LE(*offset + size, next->first);
            }
            if (next != live.begin()) {
                auto prev = std::prev(next);
                ASSERT_LE(prev->first + prev->second, *offset);
            }
            live[*offset] = size;
        } else {
            auto it = live.begin();
            std::advance(it, static_cast<long>(rng() % live.size()));
            ASSERT_TRUE(s.release(it->first));
            live.erase(it);
        }
        if (step % 1000 == 0) {
            ASSERT_TRUE(s.consistent());
        }
    }
    for (const auto& [offset, size] : live) ASSERT_TRUE(s.release(offset));
    const auto st = s.stats();
    EXPECT_EQ(st.allocated_bytes, 0u);
    EXPECT_EQ(st.largest_free_bytes, st.capacity_bytes);  // everything merged back into one block
    EXPECT_TRUE(s.consistent());
}
