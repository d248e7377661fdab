// The Level Zero backend's parts that need no loader: what a missing loader says, and the chunk pool's
// policy over host memory standing in for device memory.
#include "common/chunk_pool.hpp"
#include "level0/ze_library.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

using grey::backend::ChunkPool;

namespace {

// Chunks from a counter of fake addresses; `limit` bytes in all.
struct FakeDevice {
    uint64_t limit = 1ull << 30;
    uint64_t used = 0;
    uint64_t next = 1ull << 40;
    std::map<uint64_t, uint64_t> chunks;

    ChunkPool pool() {
        return ChunkPool(
            [this](uint64_t bytes) {
                if (used + bytes > limit) throw grey::backend::PoolOutOfMemory("fake: no memory");
                used += bytes;
                const uint64_t address = next;
                next += bytes + (1ull << 30);  // chunks are not contiguous
                chunks.emplace(address, bytes);
                return address;
            },
            [this](uint64_t address) {
                used -= chunks.at(address);
                chunks.erase(address);
            });
    }
};

}  // namespace

TEST(Level0Loader, AMissingLoaderNamesEveryCandidate) {
    const char* candidates[] = {"libgrey-test-no-such-loader.so.1", "libgrey-test-no-such-loader.so"};
    try {
        grey::level0::ZeLibrary ze(candidates);
        FAIL() << "a loader that does not exist was opened";
    } catch (const grey::level0::ZeUnavailable& e) {
        const std::string why = e.what();
        EXPECT_NE(why.find("the Level Zero loader is not installed"), std::string::npos) << why;
        EXPECT_NE(why.find("libgrey-test-no-such-loader.so.1"), std::string::npos) << why;
        EXPECT_NE(why.find("libgrey-test-no-such-loader.so:"), std::string::npos) << why;
    }
}

TEST(Level0Loader, ResultNamesAreSpelledOut) {
    EXPECT_EQ(grey::level0::result_name(ZE_RESULT_ERROR_INSUFFICIENT_PERMISSIONS), "ZE_RESULT_ERROR_INSUFFICIENT_PERMISSIONS");
    EXPECT_EQ(grey::level0::result_name(static_cast<ze_result_t>(0x7abc0001)), "ze_result_t 0x7abc0001");
}

TEST(Level0ChunkPool, BuffersNeverSpanChunksAndFreedBlocksAreReused) {
    FakeDevice device;
    {
        ChunkPool pool = device.pool();
        const uint64_t a = pool.allocate(40 << 20);
        const uint64_t b = pool.allocate(40 << 20);  // does not fit the first chunk's 24 MiB
        EXPECT_EQ(device.chunks.size(), 2u);
        EXPECT_EQ(a % ChunkPool::kAlignment, 0u);
        EXPECT_EQ(device.chunks.count(a), 1u);
        EXPECT_EQ(device.chunks.count(b), 1u);
        // The smallest free block that fits: the 24 MiB tail of a chunk.
        const uint64_t c = pool.allocate(20 << 20);
        EXPECT_EQ(device.chunks.size(), 2u);
        pool.release(a);
        EXPECT_EQ(pool.allocate(40 << 20), a);
        grey_memory_stats s{};
        pool.stats(s);
        EXPECT_EQ(s.committed_bytes, 128u << 20);
        EXPECT_EQ(s.allocated_bytes, 100u << 20);
        EXPECT_EQ(s.allocation_count, 3u);
        EXPECT_EQ(s.growth_count, 2u);
        EXPECT_EQ(s.largest_free_bytes, 24u << 20);
        EXPECT_THROW(pool.release(c + 1), std::invalid_argument);
        EXPECT_THROW(pool.release(12345), std::invalid_argument);
        EXPECT_THROW((void)pool.allocate(0), std::invalid_argument);
    }
    EXPECT_TRUE(device.chunks.empty()) << "the pool gives every chunk back when it goes";
}

TEST(Level0ChunkPool, OutOfMemoryNamesTheSizesAndChangesNothing) {
    FakeDevice device;
    device.limit = 100 << 20;
    ChunkPool pool = device.pool();
    (void)pool.allocate(1 << 20);
    try {
        (void)pool.allocate(70 << 20);
        FAIL() << "no memory for a second chunk";
    } catch (const grey::backend::PoolOutOfMemory& e) {
        const std::string why = e.what();
        EXPECT_NE(why.find("73400320 bytes needs a new chunk of 134217728 bytes"), std::string::npos) << why;
        EXPECT_NE(why.find("fake: no memory"), std::string::npos) << why;
    }
    grey_memory_stats s{};
    pool.stats(s);
    EXPECT_EQ(s.committed_bytes, 64u << 20);
    EXPECT_EQ(s.allocation_count, 1u);
    EXPECT_EQ(s.growth_count, 1u);
}
