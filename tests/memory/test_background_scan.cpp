// The background scan of memory.deduplication.scan_interval_ms on the host backend: it compacts idle
// sealed buffers with the configured policy, never a buffer that is mapped, has an async map pending or
// async work queued or being enqueued on it, stops when its context is destroyed, and is off at 0. The
// tests wait on conditions with a generous bound and never assert timings. Label streams: the tsan
// preset runs these too.
#include "test_support.hpp"

#include "core/context.hpp"
#include "memory/async_use.hpp"
#include "memory/buffer.hpp"
#include "memory/tiers.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

struct BufferDeleter {
    void operator()(grey_buffer* b) const noexcept { grey_buffer_destroy(b); }
};
using BufferPtr = std::unique_ptr<grey_buffer, BufferDeleter>;

// A context with the scan every `interval_ms` and the given policy keys (YAML lines under memory:).
grey::test::ContextPtr scan_context(int interval_ms, const std::string& extra = "") {
    const std::string path = ::testing::TempDir() + "grey_scan_" + std::to_string(::getpid()) + ".yaml";
    std::ofstream(path) << "memory:\n  deduplication:\n    enabled: true\n    block_size_kb: 4\n    scan_interval_ms: " << interval_ms
                        << "\n  compression:\n    enabled: true\n    algorithm: lz4\n" << extra;
    grey_context_options options = grey::test::host_only_options();
    options.config_path = path.c_str();
    options.log_level = GREY_LOG_OFF;
    auto context = grey::test::make_context(options);
    std::remove(path.c_str());
    return context;
}

std::vector<uint8_t> compressible(size_t n, uint8_t salt) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i / 3) % 5 + salt);
    return v;
}

BufferPtr sealed(grey_context* context, const std::vector<uint8_t>& data) {
    grey_buffer* raw = nullptr;
    EXPECT_EQ(grey_buffer_create(context, 0, data.size(), &raw), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_buffer_write(raw, 0, data.data(), data.size()), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_buffer_seal(raw), GREY_OK) << grey_last_error();
    return BufferPtr(raw);
}

grey_residency residency_of(const grey_buffer* buffer) {
    grey_buffer_info info{};
    info.struct_size = sizeof info;
    EXPECT_EQ(grey_buffer_info_get(buffer, &info), GREY_OK) << grey_last_error();
    return info.residency;
}

// Polls `done` until it holds or a generous bound passes (a bound for a hung scan, not a timing claim).
bool eventually(const std::function<bool()>& done) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!done()) {
        if (std::chrono::steady_clock::now() > give_up) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

// Waits for two more complete passes of the scan: whatever was idle at the call has been looked at.
void two_more_passes(grey_context* context) {
    const uint64_t start = context->tiers->scan_passes();
    ASSERT_TRUE(eventually([&] { return context->tiers->scan_passes() >= start + 2; })) << "the scan stopped running";
}

std::vector<uint8_t> read_all(const grey_buffer* buffer, size_t n) {
    std::vector<uint8_t> out(n);
    EXPECT_EQ(grey_buffer_read(buffer, 0, out.data(), n), GREY_OK) << grey_last_error();
    return out;
}

}  // namespace

TEST(BackgroundScan, CompactsAnIdleBufferAndNeverAMappedOne) {
    auto context = scan_context(1);
    ASSERT_TRUE(context->tiers->scanning());
    const auto idle_data = compressible(64 * 1024, 1), mapped_data = compressible(64 * 1024, 2);
    auto mapped = sealed(context.get(), mapped_data);
    grey_buffer_mapping mapping{};
    mapping.struct_size = sizeof mapping;
    ASSERT_EQ(grey_buffer_map(mapped.get(), &mapping), GREY_OK) << grey_last_error();
    // The scan may have moved it between the seal and the map; from the map on it stays where it is.
    const grey_residency when_mapped = residency_of(mapped.get());
    auto idle = sealed(context.get(), idle_data);
    ASSERT_TRUE(eventually([&] { return residency_of(idle.get()) != GREY_RESIDENCY_RAW; }))
        << "still " << grey_residency_name(residency_of(idle.get()));
    EXPECT_EQ(read_all(idle.get(), idle_data.size()), idle_data);
    two_more_passes(context.get());
    EXPECT_EQ(residency_of(mapped.get()), when_mapped) << "a mapped buffer is never moved";
    const auto* bytes = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(mapping.address));
    EXPECT_TRUE(std::equal(mapped_data.begin(), mapped_data.end(), bytes));
    ASSERT_EQ(grey_buffer_unmap(mapped.get()), GREY_OK);
    // Unmapped, it is idle: the scan takes it too (if it had not before the map).
    EXPECT_EQ(read_all(mapped.get(), mapped_data.size()), mapped_data);
    // Two identical buffers end up sharing their blocks, or compressed; either way every byte is right.
    auto twin = sealed(context.get(), idle_data);
    ASSERT_TRUE(eventually([&] { return residency_of(twin.get()) != GREY_RESIDENCY_RAW; }));
    EXPECT_EQ(read_all(twin.get(), idle_data.size()), idle_data);
}

// An async call between its checks and its queued work (another thread's, here held open) keeps the
// buffer in place; so does an async map whose fill the stream has not reached.
TEST(BackgroundScan, NeverMovesABufferWithAsyncWorkInFlight) {
    auto context = scan_context(1);
    const auto data = compressible(32 * 1024, 3);
    grey_buffer* raw = nullptr;
    ASSERT_EQ(grey_buffer_create(context.get(), 0, data.size(), &raw), GREY_OK);
    BufferPtr held(raw);
    ASSERT_EQ(grey_buffer_write(raw, 0, data.data(), data.size()), GREY_OK);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(context.get(), 0, &stream), GREY_OK);
    {
        // Held from before the seal, so that the scan cannot have moved it already.
        grey::memory::AsyncUse use(*stream, {held.get()});
        ASSERT_EQ(grey_buffer_seal(raw), GREY_OK);
        auto witness = sealed(context.get(), compressible(32 * 1024, 4));
        ASSERT_TRUE(eventually([&] { return residency_of(witness.get()) != GREY_RESIDENCY_RAW; }));
        two_more_passes(context.get());
        EXPECT_EQ(residency_of(held.get()), GREY_RESIDENCY_RAW) << "a buffer with an async call enqueuing is never moved";
    }
    ASSERT_TRUE(eventually([&] { return residency_of(held.get()) != GREY_RESIDENCY_RAW; }));
    EXPECT_EQ(read_all(held.get(), data.size()), data);
    grey_stream_destroy(stream);
}

// grey_buffer_compress on a buffer that a call on another thread is using (here held open) waits for the
// call to end before it moves the buffer, and grey_memory_compact leaves that buffer alone; with no scan,
// nothing else moves it.
TEST(Residency, ACallUsingTheBufferIsWaitedForByCompressAndSkippedByCompact) {
    auto context = scan_context(0);
    const auto data = compressible(32 * 1024, 5);
    auto buffer = sealed(context.get(), data);
    std::atomic<bool> compressed{false};
    std::thread compressor;
    {
        grey::memory::AsyncUse use({buffer.get()});
        grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
        policy.deduplicate = 1;
        grey_compact_result result{};
        result.struct_size = sizeof result;
        ASSERT_EQ(grey_memory_compact(context.get(), 0, &policy, &result), GREY_OK) << grey_last_error();
        EXPECT_EQ(result.buffers_skipped, 1u);
        EXPECT_EQ(residency_of(buffer.get()), GREY_RESIDENCY_RAW);
        compressor = std::thread([&] {
            EXPECT_EQ(grey_buffer_compress(buffer.get(), GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_LZ4), GREY_OK) << grey_last_error();
            compressed = true;
        });
        // No promise of how long to wait for something that must not happen: a tenth of a second.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        EXPECT_FALSE(compressed.load()) << "grey_buffer_compress moved a buffer a call was still using";
        EXPECT_EQ(residency_of(buffer.get()), GREY_RESIDENCY_RAW);
    }
    compressor.join();
    EXPECT_TRUE(compressed.load());
    EXPECT_EQ(residency_of(buffer.get()), GREY_RESIDENCY_COMPRESSED_HOST);
    EXPECT_EQ(read_all(buffer.get(), data.size()), data);
}

// Compaction takes the tier lock one buffer at a time: buffers created, sealed, read and destroyed by
// other threads between its moves are passed over or moved whole, and every byte read is right (ASan and
// tsan watch the memory the moves free).
TEST(Residency, CompactionBetweenOtherThreadsCreatingAndDestroyingBuffers) {
    auto context = scan_context(1);
    std::atomic<bool> stop{false}, wrong{false};
    std::thread compactor([&] {
        grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
        policy.deduplicate = 1;
        policy.compress = 1;
        policy.tier = GREY_RESIDENCY_COMPRESSED_HOST;
        policy.codec = GREY_CODEC_LZ4;
        while (!stop.load())
            if (grey_memory_compact(context.get(), 0, &policy, nullptr) != GREY_OK) wrong = true;
    });
    std::vector<std::thread> workers;
    for (uint8_t t = 0; t < 2; ++t)
        workers.emplace_back([&, t] {
            for (uint8_t round = 0; round < 40 && !wrong.load(); ++round) {
                std::vector<std::vector<uint8_t>> data;
                std::vector<BufferPtr> buffers;
                for (uint8_t i = 0; i < 3; ++i) {
                    data.push_back(compressible(8 * 1024 + 512 * i, static_cast<uint8_t>(t * 64 + round + i)));
                    buffers.push_back(sealed(context.get(), data.back()));
                }
                for (size_t i = 0; i < buffers.size(); ++i)
                    if (read_all(buffers[i].get(), data[i].size()) != data[i]) wrong = true;
            }  // destroyed while the compactor may be between two of them
        });
    for (auto& w : workers) w.join();
    stop = true;
    compactor.join();
    EXPECT_FALSE(wrong.load()) << "a compaction failed, or a buffer read back other bytes";
}

// Streams read sealed buffers, and map them, without pause while the scan moves them in between:
// every byte read is right (ASan and tsan watch the memory the scan frees).
TEST(BackgroundScan, StreamsReadAndMapWhileTheScanMovesBuffers) {
    auto context = scan_context(1);
    std::vector<std::vector<uint8_t>> data;
    std::vector<BufferPtr> buffers;
    for (uint8_t i = 0; i < 4; ++i) {
        data.push_back(compressible(48 * 1024, static_cast<uint8_t>(10 + i)));
        buffers.push_back(sealed(context.get(), data.back()));
    }
    std::atomic<bool> wrong{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&, t] {
            grey_stream* stream = nullptr;
            ASSERT_EQ(grey_stream_create(context.get(), 0, &stream), GREY_OK);
            std::vector<uint8_t> out(48 * 1024);
            for (int round = 0; round < 60; ++round) {
                const size_t i = static_cast<size_t>(t + round) % buffers.size();
                if (round % 2 == 0) {
                    // Raw or moved by the scan, the buffer reads on the stream (a moved one is brought back
                    // first), unless it was moved and the other thread has it mapped: refused, saying so.
                    if (grey_buffer_read_async(buffers[i].get(), 0, out.data(), out.size(), stream) != GREY_OK) {
                        ASSERT_NE(std::string(grey_last_error()).find("time(s); it is brought back to raw memory for this call only when unmapped"),
                                  std::string::npos)
                            << grey_last_error();
                        continue;
                    }
                    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
                    if (out != data[i]) wrong = true;
                } else {
                    grey_buffer_mapping m{};
                    m.struct_size = sizeof m;
                    ASSERT_EQ(grey_buffer_map_async(buffers[i].get(), GREY_MAP_READ, &m, stream), GREY_OK) << grey_last_error();
                    ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
                    const auto* bytes = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(m.address));
                    if (!std::equal(data[i].begin(), data[i].end(), bytes)) wrong = true;
                    ASSERT_EQ(grey_buffer_unmap(buffers[i].get()), GREY_OK);
                }
            }
            grey_stream_destroy(stream);
        });
    for (auto& t : threads) t.join();
    EXPECT_FALSE(wrong.load());
    for (size_t i = 0; i < buffers.size(); ++i) EXPECT_EQ(read_all(buffers[i].get(), data[i].size()), data[i]);
}

TEST(BackgroundScan, IsOffAtZeroAndWhenThePolicyDoesNothing) {
    EXPECT_FALSE(scan_context(0)->tiers->scanning());
    auto idle = scan_context(5, "");
    EXPECT_TRUE(idle->tiers->scanning());
    const std::string path = ::testing::TempDir() + "grey_scan_off_" + std::to_string(::getpid()) + ".yaml";
    std::ofstream(path) << "memory:\n  deduplication:\n    enabled: false\n    scan_interval_ms: 5\n  compression:\n    enabled: false\n";
    grey_context_options options = grey::test::host_only_options();
    options.config_path = path.c_str();
    auto off = grey::test::make_context(options);
    std::remove(path.c_str());
    EXPECT_FALSE(off->tiers->scanning()) << "neither deduplication nor compression: nothing to scan for";
}

TEST(BackgroundScan, ANegativeIntervalIsRefusedNamingTheKey) {
    const std::string path = ::testing::TempDir() + "grey_scan_bad_" + std::to_string(::getpid()) + ".yaml";
    std::ofstream(path) << "memory:\n  deduplication:\n    scan_interval_ms: -5\n";
    grey_context_options options = grey::test::host_only_options();
    options.config_path = path.c_str();
    grey_context* context = nullptr;
    EXPECT_NE(grey_context_create(&options, &context), GREY_OK);
    EXPECT_EQ(context, nullptr);
    EXPECT_NE(std::string(grey_last_error()).find("memory.deduplication.scan_interval_ms"), std::string::npos) << grey_last_error();
    std::remove(path.c_str());
}

// Destroying a context stops its scan, also with buffers left for the context to free: no hang.
TEST(BackgroundScan, StopsWhenTheContextIsDestroyed) {
    for (int i = 0; i < 5; ++i) {
        auto context = scan_context(1);
        for (uint8_t b = 0; b < 3; ++b) (void)sealed(context.get(), compressible(16 * 1024, b)).release();
        if (i % 2 == 0) two_more_passes(context.get());
    }
}

// Quantization reads a sealed source's raw memory, synchronously and on a stream, while the scan may
// move it: each call either gives the bytes of an unsealed source or is refused (the source is no
// longer raw); never anything else.
TEST(BackgroundScan, QuantizingASealedSourceWhileTheScanRuns) {
    auto context = scan_context(1);
    constexpr uint64_t kRows = 8, kCols = 256;
    std::vector<float> x(kRows * kCols);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i % 17) - 8) * 0.25f;
    grey_tensor_desc desc = GREY_TENSOR_DESC_INIT;
    desc.dtype = GREY_DTYPE_F32;
    desc.rank = 2;
    desc.shape[0] = kRows;
    desc.shape[1] = kCols;
    grey_quant_params params = GREY_QUANT_PARAMS_INIT;
    ASSERT_EQ(grey_quant_params_from_name("q8_0", &params), GREY_OK);
    uint64_t quantized_bytes = 0;
    ASSERT_EQ(grey_quant_size(&desc, &params, &quantized_bytes), GREY_OK);
    std::vector<uint8_t> bytes(x.size() * sizeof(float));
    std::memcpy(bytes.data(), x.data(), bytes.size());
    grey_buffer *plain = nullptr, *out = nullptr;
    ASSERT_EQ(grey_buffer_create(context.get(), 0, bytes.size(), &plain), GREY_OK);
    ASSERT_EQ(grey_buffer_create(context.get(), 0, quantized_bytes, &out), GREY_OK);
    BufferPtr plain_owner(plain), out_owner(out);
    ASSERT_EQ(grey_buffer_write(plain, 0, bytes.data(), bytes.size()), GREY_OK);
    ASSERT_EQ(grey_quantize_buffer(&desc, plain, 0, &params, out, 0, nullptr), GREY_OK) << grey_last_error();
    const auto expected = read_all(out, quantized_bytes);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(context.get(), 0, &stream), GREY_OK);
    for (int round = 0; round < 40; ++round) {
        auto source = sealed(context.get(), bytes);
        for (int call = 0; call < 4; ++call) {
            ASSERT_EQ(grey_buffer_fill(out, 0, 0, quantized_bytes), GREY_OK);
            // Wherever the scan left the source, the call brings it back to raw memory and quantizes it.
            grey_status status = call % 2 == 0 ? grey_quantize_buffer(&desc, source.get(), 0, &params, out, 0, nullptr)
                                               : grey_quantize_buffer_async(&desc, source.get(), 0, &params, out, 0, stream);
            if (status == GREY_OK && call % 2 == 1) status = grey_stream_synchronize(stream);
            ASSERT_EQ(status, GREY_OK) << grey_last_error() << " (round " << round << " call " << call << ")";
            EXPECT_EQ(read_all(out, quantized_bytes), expected) << "round " << round << " call " << call;
        }
    }
    grey_stream_destroy(stream);
}

// A destroyed stream's work is done: the buffers' records of it (a backend event each, which keep a
// buffer from moving) end with the stream instead of holding their events until the buffer goes.
TEST(BackgroundScan, DestroyingAStreamEndsTheBuffersRecordsOfIt) {
    auto context = scan_context(0);  // no scan thread: the records are read here without racing it
    const auto data = compressible(8192, 3);
    auto buffer = sealed(context.get(), data);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(context.get(), 0, &stream), GREY_OK) << grey_last_error();
    std::vector<uint8_t> out(data.size());
    ASSERT_EQ(grey_buffer_read_async(buffer.get(), 0, out.data(), out.size(), stream), GREY_OK) << grey_last_error();
    EXPECT_EQ(buffer->in_flight.size(), 1u) << "the read is recorded against the stream";
    grey_stream_destroy(stream);
    EXPECT_TRUE(buffer->in_flight.empty()) << "the record ended with the stream";
    EXPECT_EQ(out, data);
}

// Stored blocks shared by several buffers are compressed, and moved between the tiers, while other
// threads read, map, create and destroy buffers holding them: every byte read is right, and a block is
// freed with its last holder (ASan and tsan watch the memory the moves free).
TEST(Residency, SharedStoredBlocksCompressWhileOtherThreadsReadMapAndDestroyTheirHolders) {
    // No background scan: one running between the kept buffers' creations would find the first sharing
    // nothing yet and give it a container of its own, as it should, and the end state would vary.
    auto context = scan_context(0);
    const auto shared = compressible(5 * 4096 + 700, 3);
    std::vector<BufferPtr> keep;
    for (int i = 0; i < 3; ++i) keep.push_back(sealed(context.get(), shared));
    std::atomic<bool> stop{false}, wrong{false};
    std::thread compactor([&] {
        grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
        policy.compress = 1;
        for (uint32_t round = 0; !stop.load(); ++round) {
            policy.tier = round % 2 == 0 ? GREY_RESIDENCY_COMPRESSED_HOST : GREY_RESIDENCY_COMPRESSED_DEVICE;
            policy.codec = round % 3 == 0 ? GREY_CODEC_ZSTD : GREY_CODEC_LZ4;
            if (grey_memory_compact(context.get(), 0, &policy, nullptr) != GREY_OK) wrong = true;
        }
    });
    std::vector<std::thread> workers;
    for (int t = 0; t < 2; ++t)
        workers.emplace_back([&, t] {
            for (int round = 0; round < 30 && !wrong.load(); ++round) {
                // Buffers of their own that share the kept buffers' blocks, destroyed at the end of the round.
                std::vector<BufferPtr> mine;
                for (int i = 0; i < 2; ++i) mine.push_back(sealed(context.get(), shared));
                const grey_buffer* kept = keep[static_cast<size_t>(t + round) % keep.size()].get();
                for (const grey_buffer* b : {kept, static_cast<const grey_buffer*>(mine[0].get())})
                    if (read_all(b, shared.size()) != shared) wrong = true;
                grey_buffer_mapping m{};
                m.struct_size = sizeof m;
                if (grey_buffer_map(mine[1].get(), &m) != GREY_OK) {
                    wrong = true;
                    continue;
                }
                const auto* bytes = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(m.address));
                if (!std::equal(shared.begin(), shared.end(), bytes)) wrong = true;
                if (grey_buffer_unmap(mine[1].get()) != GREY_OK) wrong = true;
                if (round % 5 == 0) {
                    // Copy on write of a holder while the blocks may be moving.
                    if (grey_buffer_map_access(mine[0].get(), GREY_MAP_WRITE, &m) != GREY_OK) {
                        wrong = true;
                        continue;
                    }
                    if (!std::equal(shared.begin(), shared.end(), reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(m.address))))
                        wrong = true;
                    if (grey_buffer_unmap(mine[0].get()) != GREY_OK) wrong = true;
                }
            }
        });
    for (auto& w : workers) w.join();
    stop = true;
    compactor.join();
    EXPECT_FALSE(wrong.load()) << "a compaction, read or map failed, or read back other bytes";
    grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
    policy.compress = 1;
    ASSERT_EQ(grey_memory_compact(context.get(), 0, &policy, nullptr), GREY_OK) << grey_last_error();
    grey_memory_stats stats{};
    stats.struct_size = sizeof stats;
    ASSERT_EQ(grey_device_memory_stats_get(context.get(), 0, &stats), GREY_OK);
    EXPECT_EQ(stats.buffers_by_residency[GREY_RESIDENCY_DEDUPLICATED], keep.size()) << "the kept buffers still share";
    EXPECT_GT(stats.saved_compression_bytes, 0u) << "their stored blocks are compressed";
    for (const auto& b : keep) EXPECT_EQ(read_all(b.get(), shared.size()), shared);
    keep.clear();
    ASSERT_EQ(grey_device_memory_stats_get(context.get(), 0, &stats), GREY_OK);
    EXPECT_EQ(stats.shared_blocks, 0u) << "every stored block went with its last holder";
    EXPECT_EQ(stats.physical_bytes, stats.cache_bytes);
}
