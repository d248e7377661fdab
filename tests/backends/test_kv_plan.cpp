// The KV-cache launch plan both GPU backends share (backends/common/kv_plan.hpp), on the host: kernel
// names, the attention variants' choice, the shared memory they ask for against both vendors' limits,
// the split along the sequences, and the layout checks. What the plugins launch from it is pinned by
// tests/backends/kv_launch_plan.golden (tests/cuda, tests/hip).
#include "common/kv_plan.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace kv = grey::backend::kv;

namespace {

grey::common::KvLayout layout(uint32_t head_dim, uint32_t kv_heads = 2, uint32_t tokens_per_block = 16) {
    grey::common::KvLayout l{};
    l.layers = 2;
    l.kv_heads = kv_heads;
    l.head_dim = head_dim;
    l.tokens_per_block = tokens_per_block;
    l.format = 1;
    l.group_size = 32;
    l.window_bf16 = 1;
    return l;
}

// What attend_shape picks for a job: the variant's name and thread blocks per KV head (tables of three
// blocks, one sequence of 40 tokens).
struct ShapeCase {
    uint32_t head_dim, query_heads;
    const char* kernel;
    uint32_t group_chunks;
};

void expect_shapes(const kv::AttendTables& tables, bool tensor_cores, std::initializer_list<ShapeCase> cases) {
    for (const ShapeCase& c : cases) {
        SCOPED_TRACE(c.kernel);
        const kv::AttendShape s = kv::attend_shape(layout(c.head_dim), tables, c.query_heads, tensor_cores);
        EXPECT_STREQ(kv::kernel_name(s.split()), c.kernel);
        EXPECT_EQ(s.group_chunks, c.group_chunks);
        EXPECT_EQ(s.longest, 3u);
        EXPECT_EQ(s.pairs, 2u * c.group_chunks);
    }
}

}  // namespace

TEST(KvPlan, EveryKernelHasItsNameInKvCacheCu) {
    EXPECT_STREQ(kv::kernel_name(kv::Kernel::store), "grey_kv_store");
    EXPECT_STREQ(kv::kernel_name(kv::Kernel::compress), "grey_kv_compress");
    EXPECT_STREQ(kv::kernel_name(kv::Kernel::compress_warps), "grey_kv_compress_warps");
    EXPECT_STREQ(kv::kernel_name(kv::Kernel::combine), "grey_kv_attend_combine");
    for (int c = 0; c < 4; ++c)
        for (int g = 0; g < 4; ++g)
            EXPECT_EQ(kv::kernel_name(kv::split_kernel(c, g)), "grey_kv_attend_split_" + std::to_string(1 << c) + "_" + std::to_string(1 << g));
    EXPECT_THROW((void)kv::split_kernel(4, 0), std::logic_error);
    for (int k = 0; k < 2; ++k)
        for (int g = 0; g < 3; ++g)
            EXPECT_EQ(kv::kernel_name(kv::mma_kernel(k, g)), "grey_kv_attend_mma_" + std::to_string(4 << k) + "_" + std::to_string(1 << g));
    EXPECT_THROW((void)kv::mma_kernel(2, 0), std::logic_error);
    EXPECT_THROW((void)kv::mma_kernel(0, 3), std::logic_error);
}

// Channels a lane from head_dim (a 32-lane warp over the row), query heads a thread block from the group
// (at most 8; larger groups take several thread blocks).
TEST(KvPlan, AttentionPicksTheVariantOfTheShape) {
    const std::vector<uint64_t> offsets{0, 3}, first{0}, last{40}, blocks(3, 0);
    const kv::AttendTables tables{blocks, offsets, first, last};
    expect_shapes(tables, false,
                  {{16, 2, "grey_kv_attend_split_1_1", 1}, {64, 8, "grey_kv_attend_split_2_4", 1}, {128, 6, "grey_kv_attend_split_4_4", 1},
                   {256, 32, "grey_kv_attend_split_8_8", 2}});
}

// With tensor cores (CUDA): k-steps from head_dim (up to 64 or up to 128), at most four query heads a
// thread block, for jobs whose blocks are mostly quantized; head_dim 256 and mostly window-form jobs keep
// the SIMT kernel.
TEST(KvPlan, TensorCoresTakeHeadDimUpTo128) {
    const std::vector<uint64_t> offsets{0, 3}, first{0}, last{40}, blocks{0x1001, 0x2001, 0x3000};
    const kv::AttendTables tables{blocks, offsets, first, last};
    expect_shapes(tables, true,
                  {{16, 2, "grey_kv_attend_mma_4_1", 1}, {64, 8, "grey_kv_attend_mma_4_4", 1}, {80, 4, "grey_kv_attend_mma_8_2", 1},
                   {128, 6, "grey_kv_attend_mma_8_4", 1}, {128, 16, "grey_kv_attend_mma_8_4", 2}, {256, 32, "grey_kv_attend_split_8_8", 2}});
    // A job of mostly window-form blocks (one of three quantized) stays on the SIMT kernel.
    const std::vector<uint64_t> mostly_window{0x1001, 0x2000, 0x3000};
    const kv::AttendTables window_tables{mostly_window, offsets, first, last};
    EXPECT_STREQ(kv::kernel_name(kv::attend_shape(layout(128), window_tables, 8, true).split()), "grey_kv_attend_split_4_4");
    // head_dim 128, int4, V groups of 32: four warps of three staging buffers of K and V rows (16 words
    // padded to 20), four tokens' V parameters and the K parameters, and eight k-steps of query
    // fragments; then the statistics.
    const grey::common::KvLayout l = layout(128);
    EXPECT_EQ(grey_kvk_mma_row_stride(16), 20u);
    EXPECT_EQ(grey_kvk_mma_row_stride(1), 4u);
    EXPECT_EQ(grey_kvk_mma_row_stride(12), 12u);
    EXPECT_EQ(grey_kvk_mma_row_stride(64), 68u);
    EXPECT_EQ(grey_kvk_mma_stage_bytes(&l), 2u * 16 * 20 * 4 + 16 * 4 * 8 + 128 * 8);
    const kv::AttendShape s = kv::attend_shape(l, tables, 8, true);
    EXPECT_EQ(s.shared_bytes, 128u * 4 * 4 + 4 * (3 * 4096 + 8 * 32 * 8) + 4 * 4 * (3 + 4) * 4);
    EXPECT_EQ(s.stages, 3u);
    const grey_kvk_mma_shared shared = grey_kvk_mma_shared_layout(&l, 4, 3);
    EXPECT_EQ(shared.warp_area, 128u * 4 * 4);
    EXPECT_EQ(shared.fragments, 3u * 4096);
    EXPECT_EQ(shared.warp_bytes, 3u * 4096 + 8 * 32 * 8);
    EXPECT_EQ(shared.stats, shared.warp_area + 4 * shared.warp_bytes);
    EXPECT_EQ(shared.stat_count, 3u + 4);
    EXPECT_EQ(shared.total, s.shared_bytes);
    // head_dim 64 takes four k-steps, and keeps sums for two V groups.
    EXPECT_EQ(grey_kvk_mma_k_steps(64), 4u);
    EXPECT_EQ(grey_kvk_mma_k_steps(80), 8u);
    EXPECT_EQ(grey_kvk_mma_groups(4), 2u);
    EXPECT_EQ(grey_kvk_mma_groups(8), 4u);
}

// Two staging buffers a warp instead of three where that holds more thread blocks at once, by the
// device's answer. The model below is an H100's: 228 KiB of shared memory a multiprocessor (1 KiB of it
// kept by each thread block) and three thread blocks at most by registers, 132 multiprocessors.
TEST(KvPlan, TensorCoresTakeTwoStagingBuffersWhereThatHoldsMoreThreadBlocks) {
    const std::vector<uint64_t> offsets{0, 3}, first{0}, last{40}, blocks{0x1001, 0x2001, 0x3001};
    const kv::AttendTables tables{blocks, offsets, first, last};
    int asked = 0;
    auto h100 = [&](unsigned int shared_bytes) {
        ++asked;
        return uint64_t{132} * std::min<uint64_t>(3, 228u * 1024 / (shared_bytes + 1024));
    };
    // int8 (format 0), head_dim 128, V groups of 128: rows of 32 words padded to 36.
    grey::common::KvLayout int8 = layout(128, 8, 64);
    int8.format = 0;
    int8.group_size = 128;
    const uint32_t stage = 2u * 16 * 36 * 4 + 16 * 1 * 8 + 128 * 8;
    EXPECT_EQ(grey_kvk_mma_stage_bytes(&int8), stage);
    kv::AttendShape s = kv::attend_shape(int8, tables, 32, true);
    const uint32_t statistics = 4u * 4 * (3 + 4) * 4, queries = 128u * 4 * 4, fragments = 8u * 32 * 8;
    EXPECT_EQ(s.shared_bytes, queries + 4 * (3 * stage + fragments) + statistics);  // 79,808: two a multiprocessor
    EXPECT_EQ(kv::fit_stages(s, int8, h100), 132u * 3);
    EXPECT_EQ(s.stages, 2u);
    EXPECT_EQ(s.shared_bytes, queries + 4 * (2 * stage + fragments) + statistics);
    EXPECT_EQ(s.shared_bytes, grey_kvk_mma_shared_layout(&int8, 4, 2).total);
    // Two buffers still hold a warp's results at the end: eight columns of head_dim floats.
    EXPECT_GE(grey_kvk_mma_shared_layout(&int8, 4, 2).fragments, 8u * 128 * 4);
    // int4 rows (16 words padded to 20) keep three buffers: three thread blocks either way.
    grey::common::KvLayout int4 = int8;
    int4.format = 1;
    s = kv::attend_shape(int4, tables, 32, true);
    const unsigned int three = s.shared_bytes;
    EXPECT_EQ(kv::fit_stages(s, int4, h100), 132u * 3);
    EXPECT_EQ(s.stages, 3u);
    EXPECT_EQ(s.shared_bytes, three);
    // The smallest staging buffers (2-bit rows, head_dim 16) still hold the results with two of them.
    grey::common::KvLayout int2 = layout(16);
    int2.format = 2;
    EXPECT_GE(grey_kvk_mma_shared_layout(&int2, 1, 2).fragments, 8u * 16 * 4);
    // The SIMT kernel has no staging buffers: one question, nothing changed.
    asked = 0;
    s = kv::attend_shape(layout(256), tables, 8, true);
    const unsigned int simt = s.shared_bytes;
    EXPECT_EQ(kv::fit_stages(s, layout(256), h100), 132u * 3);
    EXPECT_EQ(asked, 1);
    EXPECT_EQ(s.shared_bytes, simt);
}

// The largest variant's shared memory fits both vendors without asking for more: CUDA's 48 KiB default
// and the 64 KiB of LDS a workgroup has on gfx90a, gfx942 and gfx1100.
TEST(KvPlan, SharedMemoryFitsBothVendorsDefaults) {
    const std::vector<uint64_t> offsets{0, 1}, first{0}, last{1}, blocks(1, 0);
    const kv::AttendTables tables{blocks, offsets, first, last};
    const kv::AttendShape s = kv::attend_shape(layout(256), tables, 16);
    EXPECT_EQ(s.shared_bytes, 4u * (256 * 8 * 5 + 4 * 32 * 8 + 256 + 4 * 8 * 2));
    EXPECT_LE(s.shared_bytes, 48u * 1024);
    EXPECT_EQ(kv::AttendShape::split_threads(), 128u);
}

// One wave of thread blocks shared out along the sequences, at least one split, at most one a block of
// the longest sequence and 1024.
TEST(KvPlan, SplitsFillOneWave) {
    kv::AttendShape s;
    s.pairs = 16;
    s.longest = 100;
    EXPECT_EQ(kv::attend_splits(s, 132 * 16), 100u);
    s.longest = 4096;
    EXPECT_EQ(kv::attend_splits(s, 132 * 16), 132u);
    EXPECT_EQ(kv::attend_splits(s, 8), 1u);
    EXPECT_EQ(kv::attend_splits(s, uint64_t{1} << 40), 1024u);
}

TEST(KvPlan, LayoutsTheKernelsDoNotTakeAreNamed) {
    try {
        kv::check_layout(layout(24), 2, "HIP");
        ADD_FAILURE() << "head_dim 24 taken";
    } catch (const std::domain_error& e) {
        EXPECT_STREQ(e.what(), "the KV cache kernels take head_dim a multiple of 16 up to 256, not 24");
    }
    try {
        kv::check_layout(layout(256, 256, 1024), 256, "HIP");
        ADD_FAILURE() << "a 512 MiB block taken";
    } catch (const std::domain_error& e) {
        EXPECT_STREQ(e.what(), "a KV block of 536870912 bytes is larger than the HIP kernels address (512 MiB): lower tokens_per_block");
    }
    EXPECT_THROW(kv::check_layout(layout(64), 3, "CUDA"), std::invalid_argument);
    EXPECT_NO_THROW(kv::check_layout(layout(64), 4, "CUDA"));
}

TEST(KvPlan, CompressionCoversEveryBlockOfTheJob) {
    // Blocks of more than 16 tokens: a thread block per (block, slice) pair, for head_dim a multiple of 8
    // up to 1024: up to 65,535 of them reading the blocks in place, each looping past the grid.
    for (const uint32_t head_dim : {8u, 64u, 1024u}) {
        const kv::Launch launch = kv::compress_launch(layout(head_dim, 3, 17), 70000, false, 0);
        EXPECT_EQ(launch.kernel, kv::Kernel::compress);
        EXPECT_EQ(launch.grid.x, 65535u);
        EXPECT_EQ(launch.grid.y * launch.grid.z, 1u);
        EXPECT_EQ(launch.threads, static_cast<unsigned int>(GREY_KVK_COMPRESS_THREADS));
        EXPECT_EQ(launch.shared_bytes, 0u);
        EXPECT_EQ(kv::compress_launch(layout(head_dim, 3, 17), 2, false, 0).grid.x, 12u) << "two blocks of two layers of three heads";
    }
    // Up to 16 tokens: a warp per (block, slice, K or V) unit, eight to a thread block, no shared memory
    // (staged or not: the warps never stage).
    for (const uint32_t tokens : {1u, 16u}) {
        for (const uint32_t head_dim : {8u, 64u, 1024u}) {
            const kv::Launch launch = kv::compress_launch(layout(head_dim, 3, tokens), 70000, true, 528);
            EXPECT_EQ(launch.kernel, kv::Kernel::compress_warps);
            EXPECT_EQ(launch.grid.x, 65535u) << "840,000 units: the warps loop";
            EXPECT_EQ(launch.threads, static_cast<unsigned int>(GREY_KVK_COMPRESS_THREADS));
            EXPECT_EQ(launch.shared_bytes, 0u);
            EXPECT_EQ(kv::compress_launch(layout(head_dim, 3, tokens), 2, false, 0).grid.x, 3u) << "24 units";
            EXPECT_EQ(kv::compress_launch(layout(head_dim, 3, tokens), 3, false, 0).grid.x, 5u) << "36 units: the last thread block partly idle";
        }
    }
    EXPECT_TRUE(kv::compress_by_warps(layout(128)));
    EXPECT_FALSE(kv::compress_by_warps(layout(128, 2, 64)));
    for (const uint32_t head_dim : {12u, 1032u}) {
        try {
            (void)kv::compress_launch(layout(head_dim), 1, false, 0);
            ADD_FAILURE() << "head_dim " << head_dim << " taken";
        } catch (const std::domain_error& e) {
            EXPECT_EQ(std::string(e.what()), "the KV compression kernel takes head_dim a multiple of 8 up to 1024, not " + std::to_string(head_dim));
        }
    }
}

TEST(KvPlan, CompressionStagesASliceWhereItFits) {
    // A slice of 16 rows of head_dim 128 is 8 KiB of K and V; of 64 rows, 32 KiB.
    const auto small = layout(128), large = layout(128, 2, 64), larger = layout(256, 2, 64), largest = layout(1024, 2, 64);
    EXPECT_EQ(grey_kvk_compress_slice_bytes(&small), 8192u);
    EXPECT_TRUE(kv::compress_staged(small, 200 * 1024));
    EXPECT_TRUE(kv::compress_staged(large, 200 * 1024));
    EXPECT_TRUE(kv::compress_staged(larger, 200 * 1024)) << "64 KiB: kCompressStagingMost";
    EXPECT_FALSE(kv::compress_staged(largest, 200 * 1024));
    EXPECT_FALSE(kv::compress_staged(large, 30 * 1024)) << "the device's limit";
    EXPECT_FALSE(kv::compress_staged(small, 0)) << "a vendor that does not stage";
    // Staged, the grid is one wave of the thread blocks the device holds with that shared memory.
    const kv::Launch staged = kv::compress_launch(large, 1000, true, 528);
    EXPECT_EQ(staged.grid.x, 528u);
    EXPECT_EQ(staged.shared_bytes, 32768u);
    EXPECT_EQ(kv::compress_launch(large, 3, true, 528).grid.x, 12u) << "fewer pairs than the wave";
    EXPECT_EQ(kv::compress_launch(small, 1000, true, 528).shared_bytes, 0u) << "16-token blocks: by warps, in place";
}

TEST(KvPlan, StoresReadChunksWhereTheRowsAndTheInputAllowIt) {
    grey_kvk_store_args args{};
    args.layout = layout(64);
    args.tokens = 5;
    args.layer_count = 2;
    args.keys = 0x10000;
    args.values = 0x20010;
    EXPECT_EQ(kv::store_launch(args).grid.x, 1u) << "1,280 elements in 160 chunks: one thread block";
    args.layer_count = 40;  // 25,600 elements: 3,200 chunks
    EXPECT_EQ(kv::store_launch(args).grid.x, 13u);
    args.values += 2;  // V no longer 16-byte aligned: a thread per element
    EXPECT_EQ(kv::store_launch(args).grid.x, 100u);
    args.values -= 2;
    args.layout.hadamard_k = 1;  // rotated rows take the element grid (a warp per row)
    EXPECT_EQ(kv::store_launch(args).grid.x, 100u);
    args.layout.hadamard_k = 0;
    args.layout.head_dim = 60;  // rows of whole chunks only
    EXPECT_EQ(kv::store_launch(args).grid.x, 94u);
}
