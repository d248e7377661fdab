// Sealed buffers and the memory tiers (grey.h, "Sealed buffers and memory tiers") on the host backend and
// the fake plugin: immutability, every residency read back byte for byte, deduplication within a sharing
// domain only, forced hash collisions, copy on write, the working-set cache under pressure, accounting.
#include "test_support.hpp"

#include "core/context.hpp"
#include "codec/container.hpp"
#include "memory/buffer.hpp"
#include "memory/pinned_host.hpp"
#include "memory/tiers.hpp"

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include <unistd.h>

using grey::test::make_context;

namespace {

using grey::test::BufferPtr;
using grey::test::random_bytes;

// A context whose configuration sets the tiers' block size and cache (the YAML is written to a file).
grey::test::ContextPtr tier_context(const std::string& yaml, const char* backends = "host") {
    const std::string path = ::testing::TempDir() + "grey_tiers_" + std::to_string(::getpid()) + ".yaml";
    std::ofstream(path) << yaml;
    grey_context_options options = grey::test::host_only_options();
    options.backends = backends;
    options.backend_dir = GREY_TEST_PLUGIN_DIR;
    options.config_path = path.c_str();
    auto context = make_context(options);
    std::remove(path.c_str());
    return context;
}

// The background scan is off, so that every residency change is the test's own.
const char* const kSmallTiers = "memory:\n  deduplication:\n    block_size_kb: 4\n    scan_interval_ms: 0\n  cache:\n    working_set_mb: 1\n";

BufferPtr sealed_buffer(grey_context* context, const std::vector<uint8_t>& data, uint64_t tenant = 0, uint64_t domain = 0,
                        grey_dtype dtype = GREY_DTYPE_U8, uint32_t device = 0) {
    grey_buffer_options options = GREY_BUFFER_OPTIONS_INIT;
    options.device = device;
    options.size_bytes = data.size();
    options.tenant = tenant;
    options.sharing_domain = domain;
    options.dtype = dtype;
    grey_buffer* raw = nullptr;
    EXPECT_EQ(grey_buffer_create_with_options(context, &options, &raw), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_buffer_write(raw, 0, data.data(), data.size()), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_buffer_seal(raw), GREY_OK) << grey_last_error();
    return BufferPtr(raw);
}

std::vector<uint8_t> read_all(const grey_buffer* buffer, uint64_t size) {
    std::vector<uint8_t> out(size, 0xEE);
    EXPECT_EQ(grey_buffer_read(buffer, 0, out.data(), size), GREY_OK) << grey_last_error();
    return out;
}

grey_buffer_info info_of(const grey_buffer* buffer) {
    grey_buffer_info info{};
    info.struct_size = sizeof info;
    EXPECT_EQ(grey_buffer_info_get(buffer, &info), GREY_OK) << grey_last_error();
    return info;
}

grey_memory_stats stats_of(grey_context* context, uint32_t device = 0) {
    grey_memory_stats stats{};
    stats.struct_size = sizeof stats;
    EXPECT_EQ(grey_device_memory_stats_get(context, device, &stats), GREY_OK) << grey_last_error();
    return stats;
}

// Data that exercises every block kind: random blocks, zero blocks, one-value blocks, repeated blocks
// and a ragged end.
std::vector<uint8_t> mixed_data(size_t blocks, uint32_t seed) {
    std::vector<uint8_t> data = random_bytes(blocks * 4096 + 1234, seed);
    std::fill(data.begin() + 4096, data.begin() + 8192, uint8_t{0});
    for (size_t i = 8192; i < 12288; i += 4) {
        const float one = 0.5f;
        std::memcpy(&data[i], &one, 4);
    }
    std::copy(data.begin(), data.begin() + 4096, data.begin() + 3 * 4096);  // a block twice
    return data;
}

bool error_mentions(const std::string& needle) { return std::string(grey_last_error()).find(needle) != std::string::npos; }

}  // namespace

TEST(Tiers, SealedBuffersAreImmutable) {
    auto context = tier_context(kSmallTiers);
    const auto data = random_bytes(10000, 1);
    auto buffer = sealed_buffer(context.get(), data);
    uint8_t byte = 1;
    EXPECT_EQ(grey_buffer_write(buffer.get(), 0, &byte, 1), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("grey_buffer_write: the buffer is sealed")) << grey_last_error();
    EXPECT_EQ(grey_buffer_fill(buffer.get(), 0, 0, 10), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("sealed")) << grey_last_error();
    auto other = sealed_buffer(context.get(), data);
    EXPECT_EQ(grey_buffer_copy(buffer.get(), 0, other.get(), 0, 10), GREY_ERROR_INVALID_ARGUMENT);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(context.get(), 0, &stream), GREY_OK);
    EXPECT_EQ(grey_buffer_write_async(buffer.get(), 0, &byte, 1, stream), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_fill_async(buffer.get(), 0, 0, 1, stream), GREY_ERROR_INVALID_ARGUMENT);
    grey_stream_destroy(stream);
    EXPECT_EQ(read_all(buffer.get(), data.size()), data) << "a refused write changed nothing";
    EXPECT_EQ(grey_buffer_seal(buffer.get()), GREY_OK) << "sealing twice is a no-op";
    EXPECT_EQ(info_of(buffer.get()).sealed, 1u);

    // A buffer mapped (for writing) cannot be sealed under its mapping.
    grey_buffer* raw = nullptr;
    ASSERT_EQ(grey_buffer_create(context.get(), 0, 64, &raw), GREY_OK);
    BufferPtr mapped(raw);
    grey_buffer_mapping mapping{};
    mapping.struct_size = sizeof mapping;
    ASSERT_EQ(grey_buffer_map(mapped.get(), &mapping), GREY_OK);
    EXPECT_EQ(grey_buffer_seal(mapped.get()), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("unmap it first")) << grey_last_error();
    ASSERT_EQ(grey_buffer_unmap(mapped.get()), GREY_OK);
    EXPECT_EQ(grey_buffer_seal(mapped.get()), GREY_OK);
}

TEST(Tiers, EveryResidencyReadsBackEveryByte) {
    auto context = tier_context(kSmallTiers);
    const auto data = mixed_data(9, 2);
    std::vector<float> floats(30000);
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    for (auto& f : floats) f = normal(rng);
    std::vector<uint8_t> float_bytes(floats.size() * 4);
    std::memcpy(float_bytes.data(), floats.data(), float_bytes.size());
    struct Case {
        grey_residency residency;
        grey_codec codec;
    };
    const Case cases[] = {{GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT}, {GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_LZ4},
                          {GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_ZSTD},   {GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_ZSTD},
                          {GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_BITMASK},  {GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_FLOAT},
                          {GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_DEFAULT},  {GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT}};
    for (const auto& c : cases) {
        const bool as_floats = c.codec == GREY_CODEC_FLOAT;
        const auto& bytes = as_floats ? float_bytes : data;
        auto buffer = sealed_buffer(context.get(), bytes, 0, 0, as_floats ? GREY_DTYPE_F32 : GREY_DTYPE_U8);
        uint64_t checksum_before = 0, checksum_after = 0;
        ASSERT_EQ(grey_buffer_checksum(buffer.get(), 0, bytes.size(), &checksum_before), GREY_OK);
        ASSERT_EQ(grey_buffer_compress(buffer.get(), c.residency, c.codec), GREY_OK) << grey_last_error();
        const auto info = info_of(buffer.get());
        const std::string what = std::string(grey_residency_name(c.residency)) + "/" + grey_codec_name(c.codec);
        EXPECT_EQ(info.residency, c.residency) << what;
        EXPECT_EQ(read_all(buffer.get(), bytes.size()), bytes) << what;
        // Ranges that start and end inside blocks.
        std::mt19937 pick(4);
        for (int i = 0; i < 20; ++i) {
            const uint64_t offset = pick() % bytes.size(), size = 1 + pick() % (bytes.size() - offset);
            std::vector<uint8_t> part(size);
            ASSERT_EQ(grey_buffer_read(buffer.get(), offset, part.data(), size), GREY_OK) << what;
            ASSERT_TRUE(std::equal(part.begin(), part.end(), bytes.begin() + static_cast<long>(offset))) << what << " at " << offset;
        }
        ASSERT_EQ(grey_buffer_checksum(buffer.get(), 0, bytes.size(), &checksum_after), GREY_OK);
        EXPECT_EQ(checksum_after, checksum_before) << what;
        // Copying out of it works in every residency.
        grey_buffer* copy = nullptr;
        ASSERT_EQ(grey_buffer_create(context.get(), 0, bytes.size(), &copy), GREY_OK);
        BufferPtr owned(copy);
        ASSERT_EQ(grey_buffer_copy(copy, 0, buffer.get(), 0, bytes.size()), GREY_OK) << what;
        EXPECT_EQ(read_all(copy, bytes.size()), bytes) << what;
        if (c.residency == GREY_RESIDENCY_COMPRESSED_DEVICE || c.residency == GREY_RESIDENCY_COMPRESSED_HOST) {
            EXPECT_EQ(info.codec, c.codec == GREY_CODEC_DEFAULT ? GREY_CODEC_LZ4 : c.codec) << what << ": the default is the configured lz4";
        }
        // From there to deduplicated (decoding what it holds), and back to raw.
        ASSERT_EQ(grey_buffer_compress(buffer.get(), GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK) << what;
        EXPECT_EQ(read_all(buffer.get(), bytes.size()), bytes) << what << " -> deduplicated";
        ASSERT_EQ(grey_buffer_compress(buffer.get(), GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_OK);
        EXPECT_EQ(read_all(buffer.get(), bytes.size()), bytes) << what;
    }
}

TEST(Tiers, DeduplicationSharesWithinADomainOnly) {
    auto context = tier_context(kSmallTiers);
    const auto data = random_bytes(5 * 4096, 5);
    auto a = sealed_buffer(context.get(), data, 1, 7);
    auto b = sealed_buffer(context.get(), data, 2, 7);
    auto other_domain = sealed_buffer(context.get(), data, 3, 8);
    auto zeros = sealed_buffer(context.get(), std::vector<uint8_t>(3 * 4096 + 5, 0), 1, 7);
    grey_compact_result result{};
    result.struct_size = sizeof result;
    grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
    ASSERT_EQ(grey_memory_compact(context.get(), 0, &policy, &result), GREY_OK) << grey_last_error();
    EXPECT_EQ(result.buffers_examined, 4u);
    EXPECT_EQ(result.buffers_deduplicated, 4u);
    EXPECT_EQ(result.physical_bytes_before, 3 * data.size() + 3 * 4096 + 5);
    // Domain 7 stores the five blocks once; domain 8 its own five; the zeros nothing.
    EXPECT_EQ(result.physical_bytes_after, 2 * data.size());
    EXPECT_EQ(info_of(a.get()).shared_with_others, 5u);
    EXPECT_EQ(info_of(other_domain.get()).shared_with_others, 0u) << "never shared across domains";
    EXPECT_EQ(info_of(zeros.get()).constant_blocks, 4u);
    EXPECT_EQ(info_of(zeros.get()).physical_bytes, 0u);
    for (const auto* buffer : {a.get(), b.get(), other_domain.get()}) EXPECT_EQ(read_all(buffer, data.size()), data);
    EXPECT_EQ(read_all(zeros.get(), 3 * 4096 + 5), std::vector<uint8_t>(3 * 4096 + 5, 0));

    const auto stats = stats_of(context.get());
    EXPECT_EQ(stats.logical_bytes, 3 * data.size() + 3 * 4096 + 5);
    EXPECT_EQ(stats.physical_bytes, 2 * data.size());
    EXPECT_EQ(stats.saved_dedup_bytes, stats.logical_bytes - stats.physical_bytes);
    EXPECT_EQ(stats.shared_blocks, 10u);
    EXPECT_EQ(stats.constant_blocks, 4u);
    EXPECT_EQ(stats.buffers_by_residency[GREY_RESIDENCY_DEDUPLICATED], 4u);
    EXPECT_DOUBLE_EQ(stats.effective_multiplier, static_cast<double>(stats.logical_bytes) / static_cast<double>(stats.physical_bytes));

    // Per tenant: tenants 1 and 2 each carry half of the blocks they share; tenant 3 all of its own.
    grey_memory_stats t1{}, t3{};
    t1.struct_size = t3.struct_size = sizeof t1;
    ASSERT_EQ(grey_device_memory_stats_tenant_get(context.get(), 0, 1, &t1), GREY_OK);
    ASSERT_EQ(grey_device_memory_stats_tenant_get(context.get(), 0, 3, &t3), GREY_OK);
    EXPECT_EQ(t1.logical_bytes, data.size() + 3 * 4096 + 5);
    EXPECT_EQ(t1.physical_bytes, data.size() / 2);
    EXPECT_EQ(t1.buffer_count, 2u);
    EXPECT_EQ(t3.physical_bytes, data.size());
    EXPECT_EQ(t3.saved_dedup_bytes, 0u);
    EXPECT_EQ(t3.committed_bytes, 0u) << "pool figures are the device's, not a tenant's";

    // Releasing buffers frees the blocks with their last reference.
    a.reset();
    EXPECT_EQ(stats_of(context.get()).physical_bytes, 2 * data.size());
    b.reset();
    EXPECT_EQ(stats_of(context.get()).physical_bytes, data.size());
}

TEST(Tiers, AHashCollisionNeverMergesDifferentData) {
    auto context = tier_context(kSmallTiers);
    // Every block hashes alike: only the byte comparison keeps them apart.
    context->tiers->set_block_hash([](std::span<const std::byte>, uint64_t) { return uint64_t{42}; });
    const auto first = random_bytes(3 * 4096, 6), second = random_bytes(3 * 4096, 7);
    auto a = sealed_buffer(context.get(), first);
    auto b = sealed_buffer(context.get(), second);
    auto c = sealed_buffer(context.get(), first);
    const grey_compact_policy deduplicate_only = GREY_COMPACT_POLICY_INIT;
    ASSERT_EQ(grey_memory_compact(context.get(), 0, &deduplicate_only, nullptr), GREY_OK) << grey_last_error();
    EXPECT_EQ(read_all(a.get(), first.size()), first);
    EXPECT_EQ(read_all(b.get(), second.size()), second);
    EXPECT_EQ(read_all(c.get(), first.size()), first);
    EXPECT_GT(context->tiers->collisions(0), 0u);
    EXPECT_EQ(stats_of(context.get()).physical_bytes, 6u * 4096) << "equal blocks still shared, different ones kept apart";
    EXPECT_EQ(info_of(c.get()).shared_with_others, 3u);
    EXPECT_EQ(info_of(b.get()).shared_with_others, 0u);
}

TEST(Tiers, MappingForWritingCopiesASharedBuffer) {
    auto context = tier_context(kSmallTiers);
    const auto data = random_bytes(4 * 4096 + 100, 8);
    auto a = sealed_buffer(context.get(), data);
    auto b = sealed_buffer(context.get(), data);
    ASSERT_EQ(grey_memory_compact(context.get(), 0, nullptr, nullptr), GREY_OK);
    ASSERT_EQ(info_of(a.get()).shared_with_others, 5u);
    grey_buffer_mapping mapping{};
    mapping.struct_size = sizeof mapping;
    ASSERT_EQ(grey_buffer_map_access(a.get(), GREY_MAP_WRITE, &mapping), GREY_OK) << grey_last_error();
    const auto info = info_of(a.get());
    EXPECT_EQ(info.residency, GREY_RESIDENCY_RAW);
    EXPECT_EQ(info.sealed, 0u) << "a private copy is writable";
    auto* bytes = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(mapping.address));
    EXPECT_TRUE(std::equal(data.begin(), data.end(), bytes));
    bytes[5] ^= 0xFF;
    ASSERT_EQ(grey_buffer_unmap(a.get()), GREY_OK);
    uint8_t changed = 0;
    ASSERT_EQ(grey_buffer_read(a.get(), 5, &changed, 1), GREY_OK);
    EXPECT_EQ(changed, static_cast<uint8_t>(data[5] ^ 0xFF));
    EXPECT_EQ(read_all(b.get(), data.size()), data) << "the other sharer never sees the write";
    EXPECT_EQ(info_of(b.get()).shared_with_others, 0u);
    EXPECT_EQ(grey_buffer_write(a.get(), 0, data.data(), 1), GREY_OK);

    // A sealed buffer mapped for reading cannot be mapped for writing until unmapped.
    ASSERT_EQ(grey_buffer_map_access(b.get(), GREY_MAP_READ, &mapping), GREY_OK);
    EXPECT_EQ(grey_buffer_map_access(b.get(), GREY_MAP_WRITE, &mapping), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("unmap it before mapping it for writing")) << grey_last_error();
    ASSERT_EQ(grey_buffer_unmap(b.get()), GREY_OK);
}

TEST(Tiers, TheCacheEvictsLeastRecentlyUsedOrMostWhenMapsCycleAndNeverLosesData) {
    auto context = tier_context(kSmallTiers);  // a cache of 1 MiB
    std::vector<std::vector<uint8_t>> contents;
    std::vector<BufferPtr> buffers;
    for (uint32_t i = 0; i < 6; ++i) {
        contents.push_back(mixed_data(75, 10 + i));  // about 300 KiB each
        buffers.push_back(sealed_buffer(context.get(), contents.back()));
        ASSERT_EQ(grey_buffer_compress(buffers.back().get(), i % 2 ? GREY_RESIDENCY_COMPRESSED_HOST : GREY_RESIDENCY_COMPRESSED_DEVICE,
                                       GREY_CODEC_ZSTD),
                  GREY_OK);
    }
    const uint64_t capacity = 1u << 20;
    auto map_and_check = [&](size_t i) {
        grey_buffer_mapping mapping{};
        mapping.struct_size = sizeof mapping;
        ASSERT_EQ(grey_buffer_map(buffers[i].get(), &mapping), GREY_OK) << grey_last_error();
        EXPECT_EQ(mapping.size_bytes, contents[i].size());
        const auto* bytes = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(mapping.address));
        EXPECT_TRUE(std::equal(contents[i].begin(), contents[i].end(), bytes)) << "buffer " << i;
        ASSERT_EQ(grey_buffer_unmap(buffers[i].get()), GREY_OK);
    };
    // Three copies fit. Least recently used goes first: 0 is used again, so 1 makes room for 3.
    for (size_t i : {0, 1, 2, 0, 3}) map_and_check(i);
    EXPECT_EQ(info_of(buffers[1].get()).cached, 0u);
    for (size_t i : {0, 2, 3}) EXPECT_EQ(info_of(buffers[i].get()).cached, 1u) << "buffer " << i;
    auto stats = stats_of(context.get());
    EXPECT_EQ(stats.cache_misses, 4u);
    EXPECT_EQ(stats.cache_hits, 1u);
    for (const auto& b : buffers) ASSERT_EQ(grey_buffer_compress(b.get(), GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_OK);
    for (uint32_t i = 0; i < buffers.size(); ++i)  // back to compressed, the cache and its memory of evictions empty
        ASSERT_EQ(grey_buffer_compress(buffers[i].get(), i % 2 ? GREY_RESIDENCY_COMPRESSED_HOST : GREY_RESIDENCY_COMPRESSED_DEVICE,
                                       GREY_CODEC_ZSTD),
                  GREY_OK);
    EXPECT_EQ(stats_of(context.get()).cache_bytes, 0u);

    // A cyclic scan over six: least-recently-used would free exactly the copy needed next and never hit.
    // Once a buffer whose copy went for room comes back, the most recently used copy goes instead, so
    // every pass after the first hits on all but one of the three copies (the fewest misses possible).
    for (int round = 0; round < 3; ++round)
        for (size_t i = 0; i < buffers.size(); ++i) {
            map_and_check(i);
            EXPECT_LE(stats_of(context.get()).cache_bytes, capacity);
        }
    stats = stats_of(context.get());
    EXPECT_EQ(stats.cache_misses, 4u + 6 + 4 + 4);
    EXPECT_EQ(stats.cache_hits, 1u + 0 + 2 + 2);
    EXPECT_EQ(stats.cache_capacity_bytes, capacity);
    map_and_check(5);  // the most recently used is still there
    stats = stats_of(context.get());
    EXPECT_EQ(stats.cache_hits, 6u);
    EXPECT_DOUBLE_EQ(stats.cache_hit_rate, 6.0 / 24.0);
    for (size_t i : {1, 2, 5}) EXPECT_EQ(info_of(buffers[i].get()).cached, 1u) << "buffer " << i;
    EXPECT_EQ(info_of(buffers[0].get()).cached, 0u);

    // Mapped copies are pinned: three fill the cache, a fourth is refused until one is unmapped.
    grey_buffer_mapping held[3];
    for (size_t i = 0; i < 3; ++i) {
        held[i].struct_size = sizeof held[i];
        ASSERT_EQ(grey_buffer_map(buffers[i].get(), &held[i]), GREY_OK) << grey_last_error();
    }
    grey_buffer_mapping mapping{};
    mapping.struct_size = sizeof mapping;
    EXPECT_EQ(grey_buffer_map(buffers[3].get(), &mapping), GREY_ERROR_OUT_OF_MEMORY);
    EXPECT_TRUE(error_mentions("of mapped copies")) << grey_last_error();
    for (size_t i = 0; i < 3; ++i) {
        const auto* bytes = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(held[i].address));
        EXPECT_TRUE(std::equal(contents[i].begin(), contents[i].end(), bytes)) << "a mapped copy never moves";
    }
    EXPECT_EQ(grey_buffer_compress(buffers[0].get(), GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("never moved")) << grey_last_error();
    ASSERT_EQ(grey_buffer_unmap(buffers[0].get()), GREY_OK);
    map_and_check(3);
    ASSERT_EQ(grey_buffer_unmap(buffers[1].get()), GREY_OK);
    ASSERT_EQ(grey_buffer_unmap(buffers[2].get()), GREY_OK);
    for (size_t i = 0; i < buffers.size(); ++i) EXPECT_EQ(read_all(buffers[i].get(), contents[i].size()), contents[i]);

    // A buffer larger than the whole cache is refused, saying so.
    auto big = sealed_buffer(context.get(), std::vector<uint8_t>((1u << 20) + 1, 3));
    ASSERT_EQ(grey_buffer_compress(big.get(), GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK);
    EXPECT_EQ(grey_buffer_map(big.get(), &mapping), GREY_ERROR_OUT_OF_MEMORY);
    EXPECT_TRUE(error_mentions("larger than the working-set cache")) << grey_last_error();
}

TEST(Tiers, CompactionCompressesWhatDeduplicationCannotShare) {
    auto context = tier_context(kSmallTiers);
    // No block of `unique` occurs twice, so deduplication saves nothing there; its bytes take four
    // values, so zstd does.
    const auto shared = mixed_data(6, 20);
    auto unique = random_bytes(6 * 4096 + 17, 21);
    for (auto& byte : unique) byte &= 3;
    auto a = sealed_buffer(context.get(), shared);
    auto b = sealed_buffer(context.get(), shared);
    auto c = sealed_buffer(context.get(), unique);
    grey_buffer* raw = nullptr;
    ASSERT_EQ(grey_buffer_create(context.get(), 0, 100, &raw), GREY_OK);
    BufferPtr unsealed(raw);
    grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
    policy.compress = 1;
    policy.tier = GREY_RESIDENCY_COMPRESSED_HOST;
    policy.codec = GREY_CODEC_ZSTD;
    grey_compact_result result{};
    result.struct_size = sizeof result;
    ASSERT_EQ(grey_memory_compact(context.get(), 0, &policy, &result), GREY_OK) << grey_last_error();
    EXPECT_EQ(result.buffers_examined, 4u);
    EXPECT_EQ(result.buffers_skipped, 1u);
    EXPECT_EQ(result.buffers_deduplicated, 2u);
    EXPECT_EQ(result.buffers_compressed, 1u);
    EXPECT_EQ(info_of(c.get()).residency, GREY_RESIDENCY_COMPRESSED_HOST);
    EXPECT_EQ(info_of(a.get()).residency, GREY_RESIDENCY_DEDUPLICATED);
    EXPECT_EQ(info_of(unsealed.get()).residency, GREY_RESIDENCY_RAW);
    EXPECT_LT(result.physical_bytes_after, result.physical_bytes_before);
    EXPECT_EQ(read_all(c.get(), unique.size()), unique);
    const auto stats = stats_of(context.get());
    EXPECT_EQ(stats.physical_bytes, result.physical_bytes_after);
    EXPECT_GT(stats.physical_host_bytes, 0u);
    EXPECT_EQ(stats.physical_host_bytes, info_of(c.get()).physical_bytes);
    EXPECT_EQ(stats.saved_compression_bytes, unique.size() - stats.physical_host_bytes);
}

TEST(Tiers, StatisticsKeepOldCallersWorkingAndCountQuantization) {
    auto context = tier_context(kSmallTiers);
    grey_buffer_options options = GREY_BUFFER_OPTIONS_INIT;
    options.size_bytes = 1000;
    options.source_bytes = 4000;
    options.tenant = 9;
    grey_buffer* raw = nullptr;
    ASSERT_EQ(grey_buffer_create_with_options(context.get(), &options, &raw), GREY_OK) << grey_last_error();
    BufferPtr quantized(raw);
    // A caller built against 0.1 knows the struct up to `fragmentation`: it gets that, and nothing after.
    struct OldStats {
        grey_memory_stats head;
        unsigned char guard[64];
    } old{};
    std::memset(&old, 0xAB, sizeof old);
    old.head.struct_size = static_cast<uint32_t>(offsetof(grey_memory_stats, logical_bytes));
    ASSERT_EQ(grey_device_memory_stats_get(context.get(), 0, &old.head), GREY_OK) << grey_last_error();
    EXPECT_EQ(old.head.struct_size, offsetof(grey_memory_stats, logical_bytes));
    EXPECT_EQ(old.head.allocation_count, 1u);
    const auto* tail = reinterpret_cast<const unsigned char*>(&old.head) + offsetof(grey_memory_stats, logical_bytes);
    for (size_t i = 0; i < sizeof(grey_memory_stats) - offsetof(grey_memory_stats, logical_bytes); ++i)
        ASSERT_EQ(tail[i], 0xAB) << "byte " << i << " past the old struct was written";
    // One byte short of the old size is refused.
    old.head.struct_size -= 1;
    EXPECT_EQ(grey_device_memory_stats_get(context.get(), 0, &old.head), GREY_ERROR_INVALID_ARGUMENT);

    const auto stats = stats_of(context.get());
    EXPECT_EQ(stats.logical_bytes, 4000u);
    EXPECT_EQ(stats.physical_bytes, 1000u);
    EXPECT_EQ(stats.saved_quantization_bytes, 3000u);
    EXPECT_DOUBLE_EQ(stats.effective_multiplier, 4.0);
    EXPECT_EQ(stats.buffers_by_residency[GREY_RESIDENCY_RAW], 1u);
    grey_memory_stats tenant{};
    tenant.struct_size = sizeof tenant;
    ASSERT_EQ(grey_device_memory_stats_tenant_get(context.get(), 0, 9, &tenant), GREY_OK);
    EXPECT_EQ(tenant.saved_quantization_bytes, 3000u);
    ASSERT_EQ(grey_device_memory_stats_tenant_get(context.get(), 0, 10, &tenant), GREY_OK);
    EXPECT_EQ(tenant.logical_bytes, 0u);
    EXPECT_EQ(tenant.effective_multiplier, 0.0);
}

TEST(Tiers, BadInputIsRefusedWithItsReason) {
    auto context = tier_context(std::string(kSmallTiers) + "  compression:\n    algorithm: none\n");
    const auto data = random_bytes(5000, 30);
    grey_buffer* raw = nullptr;
    ASSERT_EQ(grey_buffer_create(context.get(), 0, data.size(), &raw), GREY_OK);
    BufferPtr unsealed(raw);
    EXPECT_EQ(grey_buffer_compress(unsealed.get(), GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("not sealed")) << grey_last_error();
    auto buffer = sealed_buffer(context.get(), data);
    EXPECT_EQ(grey_buffer_compress(buffer.get(), static_cast<grey_residency>(9), GREY_CODEC_DEFAULT), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("residency 9")) << grey_last_error();
    EXPECT_EQ(grey_buffer_compress(buffer.get(), GREY_RESIDENCY_COMPRESSED_HOST, static_cast<grey_codec>(77)), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("codec 77")) << grey_last_error();
    EXPECT_EQ(grey_buffer_compress(buffer.get(), GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_DEFAULT), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("memory.compression.algorithm is \"none\"")) << grey_last_error();
    EXPECT_EQ(grey_buffer_compress(buffer.get(), GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_FLOAT), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(info_of(buffer.get()).residency, GREY_RESIDENCY_RAW) << "a refused change leaves the buffer as it was";
    EXPECT_EQ(read_all(buffer.get(), data.size()), data);

    grey_buffer_mapping mapping{};
    mapping.struct_size = sizeof mapping;
    EXPECT_EQ(grey_buffer_map_access(buffer.get(), static_cast<grey_map_access>(5), &mapping), GREY_ERROR_INVALID_ARGUMENT);
    grey_buffer_options options = GREY_BUFFER_OPTIONS_INIT;
    options.size_bytes = 100;
    options.source_bytes = 50;
    EXPECT_EQ(grey_buffer_create_with_options(context.get(), &options, &raw), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("source_bytes (50) is below size_bytes (100)")) << grey_last_error();
    options.source_bytes = 0;
    options.dtype = static_cast<grey_dtype>(1000);
    EXPECT_EQ(grey_buffer_create_with_options(context.get(), &options, &raw), GREY_ERROR_INVALID_ARGUMENT);
    options = GREY_BUFFER_OPTIONS_INIT;
    options.size_bytes = 100;
    options.struct_size = 8;
    EXPECT_EQ(grey_buffer_create_with_options(context.get(), &options, &raw), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_create_with_options(context.get(), nullptr, &raw), GREY_ERROR_INVALID_ARGUMENT);
    grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
    policy.compress = 1;
    policy.tier = GREY_RESIDENCY_DEDUPLICATED;
    EXPECT_EQ(grey_memory_compact(context.get(), 0, &policy, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("policy->tier")) << grey_last_error();
    EXPECT_EQ(grey_memory_compact(context.get(), 99, nullptr, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_buffer_seal(nullptr), GREY_ERROR_INVALID_ARGUMENT);

    // The async calls and quantization work on raw memory: a moved buffer that is mapped is refused,
    // saying so; unmapped, it is brought back to raw memory (next test).
    ASSERT_EQ(grey_buffer_compress(buffer.get(), GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(context.get(), 0, &stream), GREY_OK);
    ASSERT_EQ(grey_buffer_map_access(buffer.get(), GREY_MAP_READ, &mapping), GREY_OK) << grey_last_error();
    uint8_t byte = 0;
    EXPECT_EQ(grey_buffer_read_async(buffer.get(), 0, &byte, 1, stream), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("mapped 1 time(s)")) << grey_last_error();
    ASSERT_EQ(grey_buffer_unmap(buffer.get()), GREY_OK);
    grey_stream_destroy(stream);
}

// The background scan compacts with a cut-off (the start of its interval): a buffer a call used since
// then is in steady use and stays as it is; grey_memory_compact has no cut-off.
TEST(Tiers, TheScanLeavesABufferUsedWithinItsIntervalAlone) {
    auto context = tier_context(kSmallTiers);
    const auto data = mixed_data(6, 23);
    auto buffer = sealed_buffer(context.get(), data);
    const grey_compact_policy policy = context->tiers->configured_policy();
    const auto before_use = std::chrono::steady_clock::now();
    std::vector<uint8_t> out(data.size());
    ASSERT_EQ(grey_buffer_read(buffer.get(), 0, out.data(), out.size()), GREY_OK);
    const auto after_use = std::chrono::steady_clock::now();
    grey_compact_result result = context->tiers->compact(0, policy, false, before_use);
    EXPECT_EQ(result.buffers_skipped, 1u);
    EXPECT_EQ(info_of(buffer.get()).residency, GREY_RESIDENCY_RAW) << "used since the cut-off";
    result = context->tiers->compact(0, policy, false, after_use);
    EXPECT_EQ(result.buffers_skipped, 0u);
    EXPECT_NE(info_of(buffer.get()).residency, GREY_RESIDENCY_RAW) << "not used since the cut-off";
    EXPECT_EQ(read_all(buffer.get(), data.size()), data);
}

TEST(Tiers, CallsOnDeviceMemoryBringAMovedBufferBackToRawMemory) {
    auto context = tier_context(kSmallTiers);
    const auto data = mixed_data(11, 40);
    grey_stream* stream = nullptr;
    ASSERT_EQ(grey_stream_create(context.get(), 0, &stream), GREY_OK);
    for (const grey_residency tier : {GREY_RESIDENCY_DEDUPLICATED, GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_RESIDENCY_COMPRESSED_HOST}) {
        auto buffer = sealed_buffer(context.get(), data);
        ASSERT_EQ(grey_buffer_compress(buffer.get(), tier, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
        std::vector<uint8_t> out(data.size());
        ASSERT_EQ(grey_buffer_read_async(buffer.get(), 0, out.data(), out.size(), stream), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
        EXPECT_EQ(out, data) << "tier " << tier;
        const grey_buffer_info info = info_of(buffer.get());
        EXPECT_EQ(info.residency, GREY_RESIDENCY_RAW) << "tier " << tier;
        EXPECT_EQ(info.sealed, 1u) << "still sealed, so the tiers may move it again";
    }
    grey_stream_destroy(stream);
}

TEST(Tiers, BuffersOfAPluginDeviceMoveThroughItsCopies) {
    // The fake plugin has no copy, fill, map or checksum slot: everything goes through reads and writes.
    auto context = tier_context(kSmallTiers, "fake");
    const uint32_t fake = grey::test::last_device_of(context.get(), "fake");
    ASSERT_NE(fake, 0u) << "the fake plugin did not load";
    const auto data = mixed_data(7, 40);
    auto a = sealed_buffer(context.get(), data, 0, 0, GREY_DTYPE_U8, fake);
    auto b = sealed_buffer(context.get(), data, 0, 0, GREY_DTYPE_U8, fake);
    auto on_host = sealed_buffer(context.get(), data);
    ASSERT_EQ(grey_memory_compact(context.get(), fake, nullptr, nullptr), GREY_OK) << grey_last_error();
    EXPECT_EQ(info_of(a.get()).residency, GREY_RESIDENCY_DEDUPLICATED);
    EXPECT_EQ(info_of(on_host.get()).residency, GREY_RESIDENCY_RAW) << "compaction acts on its device only";
    EXPECT_EQ(info_of(b.get()).shared_with_others, info_of(b.get()).shared_blocks);
    ASSERT_EQ(grey_buffer_compress(b.get(), GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_LZ4), GREY_OK) << grey_last_error();
    EXPECT_EQ(read_all(a.get(), data.size()), data);
    EXPECT_EQ(read_all(b.get(), data.size()), data);
    ASSERT_EQ(grey_buffer_compress(b.get(), GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
    EXPECT_EQ(read_all(b.get(), data.size()), data);
    // Across devices, out of a deduplicated buffer.
    grey_buffer* raw = nullptr;
    ASSERT_EQ(grey_buffer_create(context.get(), 0, data.size(), &raw), GREY_OK);
    BufferPtr copy(raw);
    ASSERT_EQ(grey_buffer_copy(copy.get(), 0, a.get(), 0, data.size()), GREY_OK) << grey_last_error();
    EXPECT_EQ(read_all(copy.get(), data.size()), data);
}

TEST(Tiers, BuffersLeftInEveryResidencyAreFreedWithTheContext) {
    auto context = tier_context(kSmallTiers);
    const auto data = mixed_data(5, 50);
    for (grey_residency r : {GREY_RESIDENCY_DEDUPLICATED, GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_RESIDENCY_COMPRESSED_HOST}) {
        grey_buffer* leaked = sealed_buffer(context.get(), data).release();
        ASSERT_EQ(grey_buffer_compress(leaked, r, GREY_CODEC_ZSTD), GREY_OK);
        grey_buffer_mapping mapping{};
        mapping.struct_size = sizeof mapping;
        ASSERT_EQ(grey_buffer_map(leaked, &mapping), GREY_OK);  // and mapped, in the cache
    }
    context.reset();  // under ASan, a leak or a double free here fails the test
}

// ---- Compressed stored blocks (the shared store of deduplicated buffers) ----

namespace {

// Blocks of 4 KiB: 0 compressible, 1 zeros, 2 one float value, 3 random (incompressible), 4 compressible
// (other bytes), 5 a copy of block 0, and a compressible ragged end of 1234 bytes.
std::vector<uint8_t> shared_store_data(uint32_t seed) {
    std::vector<uint8_t> data = random_bytes(6 * 4096 + 1234, seed);
    for (size_t i = 0; i < 4096; ++i) data[i] &= 3;
    std::fill(data.begin() + 4096, data.begin() + 8192, uint8_t{0});
    for (size_t i = 8192; i < 12288; i += 4) {
        const float one = 0.25f;
        std::memcpy(&data[i], &one, 4);
    }
    for (size_t i = 4 * 4096; i < 5 * 4096; ++i) data[i] &= 7;
    std::copy(data.begin(), data.begin() + 4096, data.begin() + 5 * 4096);
    for (size_t i = 6 * 4096; i < data.size(); ++i) data[i] &= 1;
    return data;
}

// What the store holds for the distinct stored blocks of `data` (blocks 0, 3, 4 and the ragged end),
// each compressed once with `codec`: on the device (the blocks compression does not make smaller) and
// in the compressed tier, and their sizes.
struct StoreBytes {
    uint64_t raw = 0, left_raw = 0, compressed = 0;
    uint64_t blocks = 0, compressed_blocks = 0;
};
uint64_t container_bytes(const std::vector<uint8_t>& data, size_t start, size_t size, grey::codec::CodecId codec) {
    grey::codec::EncodeOptions options;
    options.codec = codec;
    options.block_size = 4096;
    return grey::codec::encode(std::as_bytes(std::span(data).subspan(start, size)), options).size();
}

StoreBytes expected_store(const std::vector<uint8_t>& data, grey::codec::CodecId codec) {
    StoreBytes expected;
    for (const size_t start : {size_t{0}, size_t{3 * 4096}, size_t{4 * 4096}, size_t{6 * 4096}}) {
        const size_t size = std::min<size_t>(4096, data.size() - start);
        const uint64_t container = container_bytes(data, start, size, codec);
        expected.raw += size;
        ++expected.blocks;
        if (container < size) {
            expected.compressed += container;
            ++expected.compressed_blocks;
        } else {
            expected.left_raw += size;
        }
    }
    return expected;
}

void expect_every_byte(const grey_buffer* buffer, const std::vector<uint8_t>& data, const std::string& what) {
    EXPECT_EQ(read_all(buffer, data.size()), data) << what;
    // Ranges that start and end inside blocks, across block edges and in the ragged end.
    std::mt19937 pick(11);
    for (int i = 0; i < 40; ++i) {
        const uint64_t offset = pick() % data.size(), size = 1 + pick() % std::min<uint64_t>(9000, data.size() - offset);
        std::vector<uint8_t> part(size);
        ASSERT_EQ(grey_buffer_read(buffer, offset, part.data(), size), GREY_OK) << what << ": " << grey_last_error();
        ASSERT_TRUE(std::equal(part.begin(), part.end(), data.begin() + static_cast<long>(offset))) << what << " at " << offset;
    }
}

}  // namespace

// Compaction with compression compresses the stored blocks of buffers that share them, once for every
// holder; blocks compression does not make smaller stay raw; every figure follows from the containers.
TEST(Tiers, CompactionCompressesSharedStoredBlocksOnceAndCountsThemExactly) {
    auto context = tier_context(kSmallTiers);
    const auto data = shared_store_data(60);
    auto a = sealed_buffer(context.get(), data, 1, 7);
    auto b = sealed_buffer(context.get(), data, 2, 7);
    auto c = sealed_buffer(context.get(), data, 2, 7);
    // The same bytes in another domain but for block 5, so that it holds no block twice.
    auto other_data = data;
    for (size_t i = 5 * 4096; i < 6 * 4096; ++i) other_data[i] ^= 0x80;
    auto other_domain = sealed_buffer(context.get(), other_data, 3, 8);
    grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
    policy.compress = 1;
    policy.tier = GREY_RESIDENCY_COMPRESSED_HOST;
    policy.codec = GREY_CODEC_ZSTD;
    grey_compact_result result{};
    result.struct_size = sizeof result;
    ASSERT_EQ(grey_memory_compact(context.get(), 0, &policy, &result), GREY_OK) << grey_last_error();
    const StoreBytes store = expected_store(data, grey::codec::CodecId::zstd);
    ASSERT_EQ(store.blocks, 4u);
    ASSERT_EQ(store.compressed_blocks, 3u) << "blocks 0, 4 and the ragged end compress; the random block does not";
    // The buffer of the other domain shares nothing: it is compressed into a container of its own.
    EXPECT_EQ(info_of(other_domain.get()).residency, GREY_RESIDENCY_COMPRESSED_HOST);
    const uint64_t own_container = container_bytes(other_data, 0, other_data.size(), grey::codec::CodecId::zstd);
    EXPECT_EQ(info_of(other_domain.get()).physical_bytes, own_container);
    EXPECT_EQ(info_of(other_domain.get()).shared_with_others, 0u) << "blocks of two domains are never shared";
    for (const auto* buffer : {a.get(), b.get(), c.get()}) {
        const auto info = info_of(buffer);
        EXPECT_EQ(info.residency, GREY_RESIDENCY_DEDUPLICATED) << "a shared buffer keeps sharing";
        EXPECT_EQ(info.shared_blocks, 5u);
        EXPECT_EQ(info.constant_blocks, 2u);
        // Block 0 twice, each stored block counted whole as it is held.
        EXPECT_EQ(info.physical_bytes, store.left_raw + store.compressed + container_bytes(data, 0, 4096, grey::codec::CodecId::zstd));
    }
    // Counted once: a's compression compressed the blocks b and c hold too.
    EXPECT_EQ(result.buffers_deduplicated, 3u) << "the other domain's buffer went on to a container";
    EXPECT_EQ(result.buffers_compressed, 2u) << "a (whose blocks it compressed) and the other domain's buffer";
    EXPECT_EQ(result.physical_bytes_after, store.left_raw + store.compressed + own_container);

    const auto stats = stats_of(context.get());
    EXPECT_EQ(stats.physical_bytes, result.physical_bytes_after);
    EXPECT_EQ(stats.physical_device_bytes, store.left_raw);
    EXPECT_EQ(stats.physical_host_bytes, store.compressed + own_container);
    EXPECT_EQ(stats.shared_blocks, 4u);
    EXPECT_EQ(stats.logical_bytes, 4 * data.size());
    EXPECT_EQ(stats.saved_dedup_bytes, 3 * data.size() - store.raw);
    EXPECT_EQ(stats.saved_compression_bytes, (store.raw - store.left_raw - store.compressed) + (data.size() - own_container));
    EXPECT_EQ(stats.logical_bytes - stats.physical_bytes, stats.saved_dedup_bytes + stats.saved_compression_bytes);

    // Per tenant, a stored block held by k buffers counts 1/k: tenant 1 holds a third, tenant 2 two.
    grey_memory_stats t1{}, t2{};
    t1.struct_size = t2.struct_size = sizeof t1;
    ASSERT_EQ(grey_device_memory_stats_tenant_get(context.get(), 0, 1, &t1), GREY_OK);
    ASSERT_EQ(grey_device_memory_stats_tenant_get(context.get(), 0, 2, &t2), GREY_OK);
    EXPECT_EQ(t1.physical_host_bytes, static_cast<uint64_t>(std::llround(static_cast<double>(store.compressed) / 3)));
    EXPECT_EQ(t1.physical_device_bytes, static_cast<uint64_t>(std::llround(static_cast<double>(store.left_raw) / 3)));
    EXPECT_EQ(t2.physical_host_bytes, static_cast<uint64_t>(std::llround(2.0 * static_cast<double>(store.compressed) / 3)));
    EXPECT_EQ(t2.physical_device_bytes, static_cast<uint64_t>(std::llround(2.0 * static_cast<double>(store.left_raw) / 3)));
    EXPECT_EQ(t1.saved_compression_bytes, static_cast<uint64_t>(std::llround(static_cast<double>(store.raw) / 3)) - t1.physical_bytes);
    EXPECT_EQ(t1.logical_bytes, data.size());
    EXPECT_EQ(t1.logical_bytes - t1.physical_bytes, t1.saved_dedup_bytes + t1.saved_compression_bytes);

    for (const auto* buffer : {a.get(), b.get(), c.get()}) expect_every_byte(buffer, data, "after compaction");
    expect_every_byte(other_domain.get(), other_data, "its own container");
    // Mapped, the copy in the cache holds every byte.
    grey_buffer_mapping mapping{};
    mapping.struct_size = sizeof mapping;
    ASSERT_EQ(grey_buffer_map(b.get(), &mapping), GREY_OK) << grey_last_error();
    const auto* mapped = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(mapping.address));
    EXPECT_TRUE(std::equal(data.begin(), data.end(), mapped));
    ASSERT_EQ(grey_buffer_unmap(b.get()), GREY_OK);

    // A second pass has nothing left to do: the blocks are compressed once.
    ASSERT_EQ(grey_memory_compact(context.get(), 0, &policy, &result), GREY_OK) << grey_last_error();
    EXPECT_EQ(result.buffers_compressed, 0u);
    EXPECT_EQ(result.physical_bytes_after, result.physical_bytes_before);

    // Destroying the holders frees the blocks with their last reference (ASan sees a leak or a double free).
    a.reset();
    b.reset();
    EXPECT_EQ(stats_of(context.get()).physical_bytes, store.left_raw + store.compressed + own_container) << "c still holds every block";
    c.reset();
    const auto left = stats_of(context.get());
    EXPECT_EQ(left.shared_blocks, 0u);
    EXPECT_EQ(left.physical_bytes, own_container);
    EXPECT_EQ(left.saved_compression_bytes, data.size() - own_container);
}

// grey_buffer_compress of a deduplicated buffer that shares its blocks compresses them where they are, in
// the tier asked (moving them between tiers when asked again); every holder reads every byte, on the host
// backend and on the fake plugin, whose device memory is reached through its copies only.
TEST(Tiers, CompressingASharedBufferCompressesItsStoredBlocksInEveryTier) {
    for (const char* backends : {"host", "fake"}) {
        auto context = tier_context(kSmallTiers, backends);
        const uint32_t device = grey::test::last_device_of(context.get(), backends);
        const auto data = shared_store_data(61);
        auto a = sealed_buffer(context.get(), data, 0, 0, GREY_DTYPE_U8, device);
        auto b = sealed_buffer(context.get(), data, 0, 0, GREY_DTYPE_U8, device);
        ASSERT_EQ(grey_buffer_compress(a.get(), GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
        ASSERT_EQ(grey_buffer_compress(b.get(), GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
        // The fake plugin keeps no memory statistics: there the buffers' own figures are checked.
        const bool has_stats = std::string(backends) == "host";
        const uint64_t deduplicated = info_of(b.get()).physical_bytes;
        EXPECT_EQ(deduplicated, expected_store(data, grey::codec::CodecId::lz4).raw + 4096) << "block 0 counted twice";
        const std::string what = std::string(backends) + ": ";
        for (const auto& [tier, codec, id] : {std::tuple{GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_DEFAULT, grey::codec::CodecId::lz4},
                                              std::tuple{GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_ZSTD, grey::codec::CodecId::zstd},
                                              std::tuple{GREY_RESIDENCY_COMPRESSED_DEVICE, GREY_CODEC_ZSTD, grey::codec::CodecId::zstd}}) {
            const std::string step = what + grey_residency_name(tier) + "/" + grey_codec_name(codec);
            ASSERT_EQ(grey_buffer_compress(a.get(), tier, codec), GREY_OK) << step << ": " << grey_last_error();
            EXPECT_EQ(info_of(a.get()).residency, GREY_RESIDENCY_DEDUPLICATED) << step;
            EXPECT_EQ(info_of(b.get()).shared_with_others, 5u) << step << ": still shared";
            const StoreBytes store = expected_store(data, id);
            const uint64_t block0 = std::min<uint64_t>(4096, container_bytes(data, 0, 4096, id));
            EXPECT_EQ(info_of(b.get()).physical_bytes, store.left_raw + store.compressed + block0) << step;
            EXPECT_LT(info_of(b.get()).physical_bytes, deduplicated) << step;
            if (has_stats) {
                const auto stats = stats_of(context.get(), device);
                EXPECT_EQ(stats.physical_bytes - stats.cache_bytes, store.left_raw + store.compressed) << step;
                EXPECT_EQ(stats.physical_host_bytes, tier == GREY_RESIDENCY_COMPRESSED_HOST ? store.compressed : 0u) << step;
                EXPECT_EQ(stats.saved_compression_bytes, store.raw - store.left_raw - store.compressed) << step;
            }
            expect_every_byte(a.get(), data, step);
            expect_every_byte(b.get(), data, step);
            // Copied out, checksummed and mapped from the other holder.
            {
                grey_buffer* raw = nullptr;
                ASSERT_EQ(grey_buffer_create(context.get(), device, data.size(), &raw), GREY_OK);
                BufferPtr copy(raw);
                ASSERT_EQ(grey_buffer_copy(copy.get(), 0, b.get(), 0, data.size()), GREY_OK) << step << ": " << grey_last_error();
                EXPECT_EQ(read_all(copy.get(), data.size()), data) << step;
            }
            if (std::string(backends) == "host") {  // the fake plugin cannot map
                grey_buffer_mapping mapping{};
                mapping.struct_size = sizeof mapping;
                ASSERT_EQ(grey_buffer_map(b.get(), &mapping), GREY_OK) << step << ": " << grey_last_error();
                const auto* seen = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(mapping.address));
                EXPECT_TRUE(std::equal(data.begin(), data.end(), seen)) << step << ": the cached copy";
                ASSERT_EQ(grey_buffer_unmap(b.get()), GREY_OK);
            }
            ASSERT_EQ(grey_buffer_compress(b.get(), GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK) << step;
            EXPECT_EQ(info_of(b.get()).physical_bytes, store.left_raw + store.compressed + block0)
                << step << ": deduplicating again keeps the blocks as they are held";
        }
        // A buffer that shares nothing is still compressed into a container of its own.
        auto alone_data = data;
        for (size_t i = 5 * 4096; i < 6 * 4096; ++i) alone_data[i] ^= 0x80;  // block 5 no longer repeats block 0
        auto alone = sealed_buffer(context.get(), alone_data, 0, 5, GREY_DTYPE_U8, device);
        ASSERT_EQ(grey_buffer_compress(alone.get(), GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK);
        ASSERT_EQ(grey_buffer_compress(alone.get(), GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_LZ4), GREY_OK);
        EXPECT_EQ(info_of(alone.get()).residency, GREY_RESIDENCY_COMPRESSED_HOST) << what;
        EXPECT_EQ(read_all(alone.get(), alone_data.size()), alone_data) << what;
        // Back to raw: the buffer gets its bytes; the other holder keeps the compressed blocks.
        ASSERT_EQ(grey_buffer_compress(a.get(), GREY_RESIDENCY_RAW, GREY_CODEC_DEFAULT), GREY_OK) << grey_last_error();
        EXPECT_EQ(read_all(a.get(), data.size()), data) << what;
        expect_every_byte(b.get(), data, what + "after the other went raw");
        // The float codec refuses a buffer whose dtype it cannot take, changing nothing.
        EXPECT_EQ(grey_buffer_compress(a.get(), GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK);
        const uint64_t before = info_of(a.get()).physical_bytes;
        EXPECT_EQ(grey_buffer_compress(a.get(), GREY_RESIDENCY_COMPRESSED_HOST, GREY_CODEC_FLOAT), GREY_ERROR_INVALID_ARGUMENT) << what;
        EXPECT_TRUE(error_mentions("float codec")) << grey_last_error();
        EXPECT_EQ(info_of(a.get()).physical_bytes, before) << what;
    }
}

// Mapping a buffer whose stored blocks are compressed for writing still copies on write: it gets its
// bytes, raw and writable; the other holder keeps the compressed blocks, and never sees the write.
TEST(Tiers, MappingForWritingCopiesABufferWhoseStoredBlocksAreCompressed) {
    auto context = tier_context(kSmallTiers);
    const auto data = shared_store_data(62);
    auto a = sealed_buffer(context.get(), data);
    auto b = sealed_buffer(context.get(), data);
    grey_compact_policy policy = GREY_COMPACT_POLICY_INIT;
    policy.compress = 1;
    policy.codec = GREY_CODEC_LZ4;
    ASSERT_EQ(grey_memory_compact(context.get(), 0, &policy, nullptr), GREY_OK) << grey_last_error();
    const StoreBytes store = expected_store(data, grey::codec::CodecId::lz4);
    ASSERT_EQ(stats_of(context.get()).physical_bytes, store.left_raw + store.compressed);
    grey_buffer_mapping mapping{};
    mapping.struct_size = sizeof mapping;
    ASSERT_EQ(grey_buffer_map_access(a.get(), GREY_MAP_WRITE, &mapping), GREY_OK) << grey_last_error();
    EXPECT_EQ(info_of(a.get()).residency, GREY_RESIDENCY_RAW);
    EXPECT_EQ(info_of(a.get()).sealed, 0u);
    auto* bytes = reinterpret_cast<uint8_t*>(static_cast<uintptr_t>(mapping.address));
    EXPECT_TRUE(std::equal(data.begin(), data.end(), bytes)) << "the private copy holds every byte";
    bytes[7] ^= 0xFF;
    bytes[data.size() - 1] ^= 0xFF;
    ASSERT_EQ(grey_buffer_unmap(a.get()), GREY_OK);
    auto changed = data;
    changed[7] ^= 0xFF;
    changed[data.size() - 1] ^= 0xFF;
    EXPECT_EQ(read_all(a.get(), data.size()), changed);
    expect_every_byte(b.get(), data, "the other holder");
    const auto stats = stats_of(context.get());
    EXPECT_EQ(stats.physical_bytes, data.size() + store.left_raw + store.compressed) << "b alone holds the compressed blocks now";
    EXPECT_EQ(stats.saved_compression_bytes, store.raw - store.left_raw - store.compressed);
    EXPECT_EQ(info_of(b.get()).shared_with_others, 2u) << "only blocks 0 and 5, one stored block b holds twice";
}

// A damaged compressed stored block fails every read, copy and map of it with GREY_ERROR_CORRUPT naming
// the block, never with wrong bytes; the other blocks still read; a later compression leaves it alone.
TEST(Tiers, ACorruptedCompressedStoredBlockIsNamedNeverRead) {
    for (const grey_residency tier : {GREY_RESIDENCY_COMPRESSED_HOST, GREY_RESIDENCY_COMPRESSED_DEVICE}) {
        auto context = tier_context(kSmallTiers);
        const auto data = shared_store_data(63);
        auto a = sealed_buffer(context.get(), data);
        auto b = sealed_buffer(context.get(), data);
        ASSERT_EQ(grey_buffer_compress(a.get(), GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK);
        ASSERT_EQ(grey_buffer_compress(b.get(), GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_OK);
        ASSERT_EQ(grey_buffer_compress(a.get(), tier, GREY_CODEC_ZSTD), GREY_OK) << grey_last_error();
        // Block 4 of the buffers: flip a byte of its payload (the last byte of its container).
        grey::memory::SharedBlock& block = *b->residency.blocks.at(4).block;
        ASSERT_EQ(block.tier, tier);
        if (tier == GREY_RESIDENCY_COMPRESSED_HOST) {
            block.host_container.back() ^= std::byte{0x5A};
        } else {
            std::vector<std::byte> container(block.stored_size);
            b->backend->buffer_read(block.storage, 0, container.data(), container.size());
            container.back() ^= std::byte{0x5A};
            b->backend->buffer_write(block.storage, 0, container.data(), container.size());
        }
        const std::string what = grey_residency_name(tier);
        std::vector<uint8_t> out(data.size(), 0xEE);
        EXPECT_EQ(grey_buffer_read(b.get(), 0, out.data(), out.size()), GREY_ERROR_CORRUPT) << what;
        EXPECT_TRUE(error_mentions("stored block 4 of 7 of the buffer (bytes 16384..20480, " + what + " with zstd, held 2 time(s))"))
            << grey_last_error();
        EXPECT_TRUE(error_mentions("codec container: block 0 of 1")) << grey_last_error();
        EXPECT_EQ(grey_buffer_read(a.get(), 16384 + 10, out.data(), 1), GREY_ERROR_CORRUPT) << what;
        // The blocks around it read.
        EXPECT_EQ(grey_buffer_read(a.get(), 0, out.data(), 16384), GREY_OK) << grey_last_error();
        EXPECT_TRUE(std::equal(out.begin(), out.begin() + 16384, data.begin()));
        EXPECT_EQ(grey_buffer_read(a.get(), 20480, out.data(), data.size() - 20480), GREY_OK) << grey_last_error();
        EXPECT_TRUE(std::equal(out.begin(), out.begin() + static_cast<long>(data.size() - 20480), data.begin() + 20480));
        grey_buffer_mapping mapping{};
        mapping.struct_size = sizeof mapping;
        EXPECT_EQ(grey_buffer_map(b.get(), &mapping), GREY_ERROR_CORRUPT) << what;
        EXPECT_TRUE(error_mentions("stored block 4 of 7")) << grey_last_error();
        EXPECT_EQ(info_of(b.get()).map_count, 0u);
        EXPECT_EQ(stats_of(context.get()).cache_bytes, 0u) << "no copy of corrupt bytes is kept";
        EXPECT_EQ(grey_buffer_map_access(b.get(), GREY_MAP_WRITE, &mapping), GREY_ERROR_CORRUPT) << what;
        EXPECT_EQ(info_of(b.get()).residency, GREY_RESIDENCY_DEDUPLICATED) << "a failed copy on write leaves the buffer as it was";
        EXPECT_EQ(info_of(b.get()).sealed, 1u);
        // Deduplicating another buffer of the same bytes compares with the damaged block: refused, saying so.
        auto c = sealed_buffer(context.get(), data);
        EXPECT_EQ(grey_buffer_compress(c.get(), GREY_RESIDENCY_DEDUPLICATED, GREY_CODEC_DEFAULT), GREY_ERROR_CORRUPT) << what;
        EXPECT_TRUE(error_mentions("the stored block of the same hash (4096 bytes, held 2 time(s))")) << grey_last_error();
        EXPECT_EQ(info_of(c.get()).residency, GREY_RESIDENCY_RAW);
        EXPECT_EQ(read_all(c.get(), data.size()), data);
        EXPECT_EQ(block.references, 2u) << "the refused deduplication released what it took";
        // Moving the block to the other tier decodes it first: refused, the block left as it was.
        const grey_residency other = tier == GREY_RESIDENCY_COMPRESSED_HOST ? GREY_RESIDENCY_COMPRESSED_DEVICE : GREY_RESIDENCY_COMPRESSED_HOST;
        EXPECT_EQ(grey_buffer_compress(a.get(), other, GREY_CODEC_ZSTD), GREY_ERROR_CORRUPT) << what;
        EXPECT_TRUE(error_mentions("stored block 4 of 7")) << grey_last_error();
        EXPECT_EQ(block.tier, tier);
    }
}

// memory.compression.pinned_host_mb bounds every page-locked byte of a device's tiers: containers take at
// most the cap less a quarter of it (16 MiB at most), which stays for the staging of async maps; staging
// may take whatever the cap has left. A cap of 0 pins nothing.
TEST(PinnedBudget, ContainersLeaveAQuarterOfTheCapToStaging) {
    grey::memory::PinnedBudget budget(1 << 20);
    EXPECT_EQ(budget.staging_reserve(), 256u << 10);
    EXPECT_TRUE(budget.take_for_container(768 << 10));
    EXPECT_FALSE(budget.take_for_container(1)) << "the containers' part is full";
    EXPECT_TRUE(budget.take_for_staging(256 << 10));
    EXPECT_FALSE(budget.take_for_staging(1)) << "the cap is full";
    budget.give_back_container(768 << 10);
    EXPECT_TRUE(budget.take_for_staging(512 << 10)) << "staging may use what containers leave";
    EXPECT_FALSE(budget.take_for_container(512 << 10)) << "but every byte stays under the cap";
    EXPECT_TRUE(budget.take_for_container(256 << 10));
    budget.give_back_staging(768 << 10);
    budget.give_back_container(256 << 10);
    EXPECT_TRUE(budget.take_for_container(768 << 10)) << "all given back";

    EXPECT_EQ(grey::memory::PinnedBudget(4096ull << 20).staging_reserve(), 16u << 20);
    grey::memory::PinnedBudget none(0);
    EXPECT_FALSE(none.take_for_container(1));
    EXPECT_FALSE(none.take_for_staging(1));
    EXPECT_TRUE(none.take_for_staging(0));
}
