// grey_buffer_map_async on the host backend (streams on threads of libgrey) and on the fake plugin
// without streams: decoding into the working-set cache on a stream, hits, failures reported by the
// stream (cache too small, a corrupted block, copy on write refused), refusals of bad arguments, copies
// still being filled never evicted, and layers streamed through a cache smaller than the model. The
// tsan preset runs these too (label streams).
#include "test_support.hpp"

#include "core/context.hpp"
#include "memory/buffer.hpp"
#include "memory/host_container.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

struct BufferDeleter {
    void operator()(grey_buffer* b) const noexcept { grey_buffer_destroy(b); }
};
using BufferPtr = std::unique_ptr<grey_buffer, BufferDeleter>;
struct StreamDeleter {
    void operator()(grey_stream* s) const noexcept { grey_stream_destroy(s); }
};
using StreamPtr = std::unique_ptr<grey_stream, StreamDeleter>;
struct EventDeleter {
    void operator()(grey_event* e) const noexcept { grey_event_destroy(e); }
};
using EventPtr = std::unique_ptr<grey_event, EventDeleter>;

bool error_mentions(const std::string& text) { return std::string(grey_last_error()).find(text) != std::string::npos; }

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = static_cast<uint8_t>(rng() % 7);  // compressible, not constant
    return v;
}

// A context whose configuration gives 4 KiB blocks and a working-set cache of `cache_mb` MiB.
grey::test::ContextPtr context_with_cache(int cache_mb, const char* backends = "host") {
    const std::string path = ::testing::TempDir() + "grey_map_async_" + std::to_string(::getpid()) + ".yaml";
    // The background scan is off, so that every residency change is the test's own.
    std::ofstream(path) << "memory:\n  deduplication:\n    block_size_kb: 4\n    scan_interval_ms: 0\n  cache:\n    working_set_mb: " << cache_mb << "\n";
    grey_context_options options = grey::test::host_only_options();
    options.backends = backends;
    options.backend_dir = GREY_TEST_PLUGIN_DIR;
    options.config_path = path.c_str();
    options.log_level = GREY_LOG_OFF;
    auto context = grey::test::make_context(options);
    std::remove(path.c_str());
    return context;
}

BufferPtr compressed_buffer(grey_context* context, const std::vector<uint8_t>& data, grey_residency residency = GREY_RESIDENCY_COMPRESSED_HOST) {
    grey_buffer* raw = nullptr;
    EXPECT_EQ(grey_buffer_create(context, 0, data.size(), &raw), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_buffer_write(raw, 0, data.data(), data.size()), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_buffer_seal(raw), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_buffer_compress(raw, residency, GREY_CODEC_LZ4), GREY_OK) << grey_last_error();
    return BufferPtr(raw);
}

StreamPtr make_stream(grey_context* context, uint32_t device = 0) {
    grey_stream* s = nullptr;
    EXPECT_EQ(grey_stream_create(context, device, &s), GREY_OK) << grey_last_error();
    return StreamPtr(s);
}

grey_buffer_mapping empty_mapping() {
    grey_buffer_mapping m{};
    m.struct_size = sizeof m;
    return m;
}

bool holds(const grey_buffer_mapping& m, const std::vector<uint8_t>& data) {
    if (m.address == 0 || m.size_bytes != data.size()) return false;
    const auto* bytes = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(m.address));
    return std::equal(data.begin(), data.end(), bytes);
}

grey_memory_stats stats_of(grey_context* context) {
    grey_memory_stats stats{};
    stats.struct_size = sizeof stats;
    EXPECT_EQ(grey_device_memory_stats_get(context, 0, &stats), GREY_OK) << grey_last_error();
    return stats;
}

}  // namespace

TEST(MapAsync, DecodesIntoTheCacheOnTheStreamAndHitsLater) {
    for (const grey_residency residency : {GREY_RESIDENCY_COMPRESSED_HOST, GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_RESIDENCY_DEDUPLICATED}) {
        auto context = context_with_cache(4);
        const auto data = random_bytes(100000, 1);
        auto buffer = compressed_buffer(context.get(), data, residency);
        auto stream = make_stream(context.get());
        grey_buffer_mapping m = empty_mapping();
        ASSERT_EQ(grey_buffer_map_async(buffer.get(), GREY_MAP_READ, &m, stream.get()), GREY_OK) << grey_last_error();
        EXPECT_NE(m.address, 0u);
        EXPECT_EQ(m.kind, GREY_MEMORY_HOST);
        ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << grey_last_error();
        EXPECT_TRUE(holds(m, data)) << grey_residency_name(residency);
        grey_buffer_info info{};
        info.struct_size = sizeof info;
        ASSERT_EQ(grey_buffer_info_get(buffer.get(), &info), GREY_OK);
        EXPECT_EQ(info.cached, 1u);
        EXPECT_EQ(info.map_count, 1u);
        EXPECT_EQ(info.residency, residency) << "mapping never changes the residency";
        ASSERT_EQ(grey_buffer_unmap(buffer.get()), GREY_OK);
        // The copy stays: the next async map is a hit with the same bytes, and needs no fill.
        grey_buffer_mapping again = empty_mapping();
        ASSERT_EQ(grey_buffer_map_async(buffer.get(), GREY_MAP_READ, &again, stream.get()), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << grey_last_error();
        EXPECT_EQ(again.address, m.address);
        EXPECT_TRUE(holds(again, data));
        const auto stats = stats_of(context.get());
        EXPECT_EQ(stats.cache_misses, 1u);
        EXPECT_EQ(stats.cache_hits, 1u);
        ASSERT_EQ(grey_buffer_unmap(buffer.get()), GREY_OK);
        EXPECT_EQ(grey_buffer_unmap(buffer.get()), GREY_ERROR_INVALID_ARGUMENT);
    }
}

TEST(MapAsync, RawBuffersMapAtOnce) {
    auto context = context_with_cache(4);
    const auto data = random_bytes(5000, 2);
    grey_buffer* raw = nullptr;
    ASSERT_EQ(grey_buffer_create(context.get(), 0, data.size(), &raw), GREY_OK);
    BufferPtr buffer(raw);
    ASSERT_EQ(grey_buffer_write(raw, 0, data.data(), data.size()), GREY_OK);
    auto stream = make_stream(context.get());
    grey_buffer_mapping async = empty_mapping(), sync = empty_mapping();
    // Unsealed: mapped for writing, its own memory, usable without waiting for the stream.
    ASSERT_EQ(grey_buffer_map_async(raw, GREY_MAP_WRITE, &async, stream.get()), GREY_OK) << grey_last_error();
    EXPECT_TRUE(holds(async, data));
    ASSERT_EQ(grey_buffer_map(raw, &sync), GREY_OK);
    EXPECT_EQ(async.address, sync.address);
    ASSERT_EQ(grey_buffer_unmap(raw), GREY_OK);
    ASSERT_EQ(grey_buffer_unmap(raw), GREY_OK);
    // Sealed and still raw: the same, for reading; no cached copy.
    ASSERT_EQ(grey_buffer_seal(raw), GREY_OK);
    ASSERT_EQ(grey_buffer_map_async(raw, GREY_MAP_READ, &async, stream.get()), GREY_OK) << grey_last_error();
    EXPECT_EQ(async.address, sync.address);
    EXPECT_EQ(stats_of(context.get()).cache_bytes, 0u);
    ASSERT_EQ(grey_buffer_unmap(raw), GREY_OK);
    ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK);
}

TEST(MapAsync, BadArgumentsAreRefusedAtOnce) {
    auto context = context_with_cache(4);
    auto other = context_with_cache(4);
    const auto data = random_bytes(5000, 3);
    auto buffer = compressed_buffer(context.get(), data);
    auto stream = make_stream(context.get());
    auto foreign = make_stream(other.get());
    grey_buffer_mapping m = empty_mapping();
    m.address = 77;
    EXPECT_EQ(grey_buffer_map_async(nullptr, GREY_MAP_READ, &m, stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("buffer must not be NULL")) << grey_last_error();
    EXPECT_EQ(grey_buffer_map_async(buffer.get(), GREY_MAP_READ, &m, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("stream must not be NULL")) << grey_last_error();
    EXPECT_EQ(grey_buffer_map_async(buffer.get(), GREY_MAP_READ, nullptr, stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("out_mapping must not be NULL")) << grey_last_error();
    EXPECT_EQ(grey_buffer_map_async(buffer.get(), static_cast<grey_map_access>(9), &m, stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("access 9 is not a grey_map_access value")) << grey_last_error();
    EXPECT_EQ(grey_buffer_map_async(buffer.get(), GREY_MAP_READ, &m, foreign.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("another context")) << grey_last_error();
    grey_buffer_mapping small = empty_mapping();
    small.struct_size = 4;
    EXPECT_EQ(grey_buffer_map_async(buffer.get(), GREY_MAP_READ, &small, stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("out_mapping->struct_size is 4")) << grey_last_error();
    EXPECT_EQ(m.address, 77u) << "a refused call leaves the mapping untouched";
    EXPECT_EQ(grey_buffer_unmap(buffer.get()), GREY_ERROR_INVALID_ARGUMENT) << "nothing was mapped";
    EXPECT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << "refusals are not the stream's failures";
}

TEST(MapAsync, ACacheTooSmallFailsAtSynchronizeAndTheMappingStillTakesItsUnmap) {
    auto context = context_with_cache(1);
    const auto data = random_bytes(2u << 20, 4);  // 2 MiB, the cache 1 MiB
    auto buffer = compressed_buffer(context.get(), data);
    auto stream = make_stream(context.get());
    grey_buffer_mapping m = empty_mapping();
    ASSERT_EQ(grey_buffer_map_async(buffer.get(), GREY_MAP_READ, &m, stream.get()), GREY_OK) << grey_last_error();
    EXPECT_EQ(m.address, 0u);
    EXPECT_EQ(m.size_bytes, data.size());
    EventPtr after;
    {
        grey_event* e = nullptr;
        ASSERT_EQ(grey_event_create(context.get(), 0, &e), GREY_OK);
        after.reset(e);
    }
    ASSERT_EQ(grey_event_record(after.get(), stream.get()), GREY_OK);
    EXPECT_EQ(grey_event_synchronize(after.get()), GREY_ERROR_OUT_OF_MEMORY) << "an event recorded after the map reports it";
    EXPECT_EQ(grey_stream_synchronize(stream.get()), GREY_ERROR_OUT_OF_MEMORY);
    EXPECT_TRUE(error_mentions("grey_buffer_map_async")) << grey_last_error();
    EXPECT_TRUE(error_mentions("larger than the working-set cache")) << grey_last_error();
    EXPECT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << "reported once";
    ASSERT_EQ(grey_buffer_unmap(buffer.get()), GREY_OK);
    EXPECT_EQ(grey_buffer_unmap(buffer.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(stats_of(context.get()).cache_bytes, 0u);
}

TEST(MapAsync, ACorruptedBlockFailsAtSynchronizeNamingTheBlock) {
    auto context = context_with_cache(4);
    const auto data = random_bytes(5 * 4096, 5);
    auto buffer = compressed_buffer(context.get(), data);
    // Flip one byte near the end of the host container: the last block's payload (damaged in place, as a
    // bit flip in host memory would; the runtime itself never writes a container once made).
    const std::span<const std::byte> container = buffer->residency.host_container->bytes();
    ASSERT_FALSE(container.empty());
    const_cast<std::byte&>(container[container.size() - 3]) ^= std::byte{0x5A};
    auto stream = make_stream(context.get());
    grey_buffer_mapping m = empty_mapping();
    ASSERT_EQ(grey_buffer_map_async(buffer.get(), GREY_MAP_READ, &m, stream.get()), GREY_OK) << grey_last_error();
    EXPECT_EQ(m.address, 0u);
    uint32_t done = 0;
    EXPECT_EQ(grey_stream_query(stream.get(), &done), GREY_ERROR_CORRUPT) << "query reports it once the stream is idle";
    EXPECT_TRUE(error_mentions("grey_buffer_map_async: codec container: block 4 of 5")) << grey_last_error();
    ASSERT_EQ(grey_buffer_unmap(buffer.get()), GREY_OK);
    EXPECT_EQ(stats_of(context.get()).cache_bytes, 0u) << "no copy of corrupt bytes is kept";
}

TEST(MapAsync, CopyOnWriteOfABufferMappedForReadingFailsOnTheStream) {
    auto context = context_with_cache(4);
    const auto data = random_bytes(10000, 6);
    auto buffer = compressed_buffer(context.get(), data);
    auto stream = make_stream(context.get());
    grey_buffer_mapping reading = empty_mapping(), writing = empty_mapping();
    ASSERT_EQ(grey_buffer_map_access(buffer.get(), GREY_MAP_READ, &reading), GREY_OK);
    ASSERT_EQ(grey_buffer_map_async(buffer.get(), GREY_MAP_WRITE, &writing, stream.get()), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_stream_synchronize(stream.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("grey_buffer_map_async: the sealed buffer is mapped for reading 1 time(s)")) << grey_last_error();
    EXPECT_TRUE(holds(reading, data)) << "the reading mapping is untouched";
    ASSERT_EQ(grey_buffer_unmap(buffer.get()), GREY_OK);
    ASSERT_EQ(grey_buffer_unmap(buffer.get()), GREY_OK);
    // Unmapped, the same call copies on write: the buffer is raw, unsealed, writable through the mapping.
    ASSERT_EQ(grey_buffer_map_async(buffer.get(), GREY_MAP_WRITE, &writing, stream.get()), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << grey_last_error();
    EXPECT_TRUE(holds(writing, data));
    reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(writing.address))[0] = 0xAB;
    ASSERT_EQ(grey_buffer_unmap(buffer.get()), GREY_OK);
    uint8_t first = 0;
    ASSERT_EQ(grey_buffer_read(buffer.get(), 0, &first, 1), GREY_OK);
    EXPECT_EQ(first, 0xAB);
}

// Layer by layer through a cache that holds about two layers of eight: layer i+1 is mapped on the copy
// stream while layer i is read, as a model larger than the device runs. Every byte seen is right.
TEST(MapAsync, LayersStreamThroughACacheSmallerThanTheModel) {
    auto context = context_with_cache(1);
    constexpr size_t kLayers = 8, kLayerBytes = 400 * 1024;
    std::vector<std::vector<uint8_t>> data;
    std::vector<BufferPtr> layers;
    for (size_t i = 0; i < kLayers; ++i) {
        data.push_back(random_bytes(kLayerBytes, static_cast<uint32_t>(100 + i)));
        layers.push_back(compressed_buffer(context.get(), data.back()));
    }
    auto copy = make_stream(context.get());
    std::vector<grey_buffer_mapping> mapped(kLayers, empty_mapping());
    std::vector<EventPtr> ready;
    for (size_t i = 0; i < kLayers; ++i) {
        grey_event* e = nullptr;
        ASSERT_EQ(grey_event_create(context.get(), 0, &e), GREY_OK);
        ready.emplace_back(e);
    }
    auto prefetch = [&](size_t i) {
        ASSERT_EQ(grey_buffer_map_async(layers[i].get(), GREY_MAP_READ, &mapped[i], copy.get()), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_event_record(ready[i].get(), copy.get()), GREY_OK);
    };
    for (int pass = 0; pass < 2; ++pass) {
        prefetch(0);
        for (size_t i = 0; i < kLayers; ++i) {
            if (i + 1 < kLayers) prefetch(i + 1);
            ASSERT_EQ(grey_event_synchronize(ready[i].get()), GREY_OK) << grey_last_error();
            EXPECT_TRUE(holds(mapped[i], data[i])) << "pass " << pass << " layer " << i;
            ASSERT_EQ(grey_buffer_unmap(layers[i].get()), GREY_OK);
            EXPECT_LE(stats_of(context.get()).cache_bytes, 1u << 20);
        }
    }
    EXPECT_EQ(stats_of(context.get()).cache_misses, 2 * kLayers) << "room for two layers, one of them always mapped: every map misses";
}

// An early unmap, before the stream has filled the copy: the copy stays until the fill has run, and a
// map that needs its room waits for it rather than freeing memory the stream still writes.
TEST(MapAsync, ACopyBeingFilledIsNeverEvicted) {
    auto context = context_with_cache(1);
    const auto a = random_bytes(700 * 1024, 7), b = random_bytes(700 * 1024, 8);
    auto first = compressed_buffer(context.get(), a);
    auto second = compressed_buffer(context.get(), b);
    auto stream = make_stream(context.get());
    for (int round = 0; round < 20; ++round) {
        grey_buffer_mapping ma = empty_mapping(), mb = empty_mapping();
        ASSERT_EQ(grey_buffer_map_async(first.get(), GREY_MAP_READ, &ma, stream.get()), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_buffer_unmap(first.get()), GREY_OK);
        // Only one copy fits: the second map frees the first's once its fill has completed, or fails.
        const grey_status status = grey_buffer_map_access(second.get(), GREY_MAP_READ, &mb);
        if (status == GREY_OK) {
            EXPECT_TRUE(holds(mb, b));
            ASSERT_EQ(grey_buffer_unmap(second.get()), GREY_OK);
        } else {
            EXPECT_EQ(status, GREY_ERROR_OUT_OF_MEMORY);
            EXPECT_TRUE(error_mentions("copies a stream still fills")) << grey_last_error();
        }
        ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << grey_last_error();
    }
}

// Several threads map, read and unmap the same compressed buffers on their own streams at once.
TEST(MapAsync, ThreadsMapTheSameBuffersOnTheirOwnStreams) {
    auto context = context_with_cache(4);
    std::vector<std::vector<uint8_t>> data;
    std::vector<BufferPtr> buffers;
    for (uint32_t i = 0; i < 3; ++i) {
        data.push_back(random_bytes(300 * 1024, 200 + i));
        buffers.push_back(compressed_buffer(context.get(), data.back()));
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t)
        threads.emplace_back([&, t] {
            auto stream = make_stream(context.get());
            for (int round = 0; round < 10; ++round) {
                const size_t i = static_cast<size_t>(t + round) % buffers.size();
                grey_buffer_mapping m = empty_mapping();
                ASSERT_EQ(grey_buffer_map_async(buffers[i].get(), GREY_MAP_READ, &m, stream.get()), GREY_OK) << grey_last_error();
                ASSERT_EQ(grey_stream_synchronize(stream.get()), GREY_OK) << grey_last_error();
                EXPECT_TRUE(holds(m, data[i]));
                ASSERT_EQ(grey_buffer_unmap(buffers[i].get()), GREY_OK);
            }
        });
    for (auto& t : threads) t.join();
}

// A backend that cannot hand out addresses (the fake plugin, without streams either) is refused at once.
TEST(MapAsync, ABackendWithoutMappingsIsRefusedAtOnce) {
    auto context = context_with_cache(1, "fake");
    uint32_t count = 0;
    ASSERT_EQ(grey_device_count(context.get(), &count), GREY_OK);
    ASSERT_GE(count, 2u);  // the host, then the fake plugin's devices
    const auto data = random_bytes(20000, 9);
    grey_buffer* raw = nullptr;
    ASSERT_EQ(grey_buffer_create(context.get(), 1, data.size(), &raw), GREY_OK) << grey_last_error();
    BufferPtr buffer(raw);
    ASSERT_EQ(grey_buffer_write(raw, 0, data.data(), data.size()), GREY_OK);
    ASSERT_EQ(grey_buffer_seal(raw), GREY_OK);
    ASSERT_EQ(grey_buffer_compress(raw, GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_ZSTD), GREY_OK) << grey_last_error();
    auto stream = make_stream(context.get(), 1);
    grey_buffer_mapping m = empty_mapping();
    EXPECT_EQ(grey_buffer_map_async(raw, GREY_MAP_READ, &m, stream.get()), GREY_ERROR_UNSUPPORTED);
    EXPECT_TRUE(error_mentions("backend 'fake' cannot map buffers")) << grey_last_error();
    EXPECT_EQ(grey_buffer_unmap(raw), GREY_ERROR_INVALID_ARGUMENT) << "nothing was mapped";
    EXPECT_EQ(grey_stream_synchronize(stream.get()), GREY_OK);
}
