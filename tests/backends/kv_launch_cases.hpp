// One set of KV-cache jobs chosen to take every launch path of the GPU backends' KV block operations
// (backends/common/kv_plan.hpp): token writes a whole append at a time and a layer at a time, blocks
// compressed as they leave the window (int4, int8, int2, fp8; bf16 and fp16 windows; K rotated), and
// decode attention over ragged batches of window-form and quantized blocks with GQA ratios 1 to 16,
// head_dim 16 to 256, a sliding window, and a split capped by the thread blocks resident at once. Run on a plugin over its fake driver with FAKE_KV_LAUNCH_LOG
// set, the log it leaves (tests/backends/fake_kv_kernels.hpp) is compared with kv_launch_plan.golden for CUDA
// and kv_launch_plan_hip.golden for HIP, which differ only in the compression of blocks longer than 16
// tokens (CUDA stages the slices in shared memory, HIP reads them in place). The same jobs run on the host device beside
// it, and the fake's host stand-in of the kernels must give what the host backend gives: the stored bytes
// (through grey_kv_gather) exactly, and attention to float rounding. That checks the plugin's plumbing
// (arguments, tables, addresses), never the kernels.
#pragma once

#include "grey.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace grey::test {

struct KvLaunchCase {
    uint32_t layers, kv_heads, head_dim, tokens_per_block, window;
    grey_dtype window_dtype;
    grey_kv_format format;
    uint32_t group, flags;
    uint32_t query_heads;
    std::vector<uint32_t> prefill;  // tokens appended to each sequence at once, then one decode step each
    uint32_t sliding_window;
};

inline const std::vector<KvLaunchCase>& kv_launch_cases() {
    static const std::vector<KvLaunchCase> cases = {
        {2, 2, 64, 16, 16, GREY_DTYPE_BF16, GREY_KV_INT4, 32, 0, 8, {40, 5}, 0},
        {1, 1, 128, 16, 16, GREY_DTYPE_F16, GREY_KV_INT8, 64, GREY_KV_HADAMARD_K, 1, {50}, 20},
        {1, 2, 256, 8, 8, GREY_DTYPE_BF16, GREY_KV_INT2, 128, 0, 32, {30, 17, 3}, 0},
        {2, 1, 16, 8, 8, GREY_DTYPE_BF16, GREY_KV_FP8_E4M3, 32, 0, 2, {20}, 0},
        // Mostly quantized blocks (CUDA's tensor-core attention takes these): GQA 4 with V groups of 32, and
        // GQA 8 (two thread blocks of four query heads) with K rotated, an fp16 window and a sliding window.
        {1, 2, 128, 16, 16, GREY_DTYPE_BF16, GREY_KV_INT4, 32, 0, 8, {200, 90}, 0},
        {1, 1, 64, 16, 16, GREY_DTYPE_F16, GREY_KV_INT2, 64, GREY_KV_HADAMARD_K, 8, {150}, 100},
        // More blocks than one wave of thread blocks takes: the split is capped by the resident count.
        {1, 8, 16, 8, GREY_KV_WINDOW_ALL, GREY_DTYPE_BF16, GREY_KV_INT8, 32, 0, 64, {720, 300}, 0},
        // Blocks of more than 16 tokens: compressed by grey_kv_compress (a thread block a slice, staged on
        // CUDA) where the shorter blocks above take grey_kv_compress_warps.
        {2, 2, 64, 32, 32, GREY_DTYPE_BF16, GREY_KV_INT4, 32, 0, 4, {100, 9}, 0},
    };
    return cases;
}

// Deterministic K/V (and queries) that differ per element: a small linear congruential generator.
inline std::vector<float> kv_test_values(size_t count, uint32_t seed) {
    std::vector<float> out(count);
    uint64_t state = 0x9E3779B97F4A7C15ull ^ seed;
    for (float& v : out) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        v = static_cast<float>(static_cast<int32_t>(state >> 40) % 2000) / 500.0f;
    }
    return out;
}

// What a case left on one device: every sequence's gathered K/V of every layer and the attention output.
struct KvCaseResult {
    std::vector<std::vector<float>> gathered;
    std::vector<float> attention;
};

// Runs `c` on `device` of `context`: the prefills, one decode step per sequence (from a device buffer), one sequence more written
// a layer at a time (last layer first), then attention over every sequence on the last layer and a gather
// of each. Failures are test failures.
inline KvCaseResult run_kv_case(grey_context* context, uint32_t device, const KvLaunchCase& c) {
    KvCaseResult result;
    grey_kv_cache_config config = GREY_KV_CACHE_CONFIG_INIT;
    config.layers = c.layers;
    config.kv_heads = c.kv_heads;
    config.head_dim = c.head_dim;
    config.tokens_per_block = c.tokens_per_block;
    config.window_tokens = c.window;
    config.window_dtype = c.window_dtype;
    config.format = c.format;
    config.group_size = c.group;
    config.flags = c.flags;
    config.capacity_bytes = 64ull << 20;
    grey_kv_cache* cache = nullptr;
    EXPECT_EQ(grey_kv_cache_create(context, device, &config, &cache), GREY_OK) << grey_last_error();
    if (cache == nullptr) return result;
    const uint64_t row = uint64_t{c.kv_heads} * c.head_dim;
    std::vector<uint64_t> sequences;
    uint32_t seed = 1;
    auto append = [&](uint64_t sequence, uint32_t tokens) {
        std::vector<int32_t> ids(tokens);
        for (uint32_t i = 0; i < tokens; ++i) ids[i] = static_cast<int32_t>(seed * 1000 + i);
        const std::vector<float> keys = kv_test_values(c.layers * tokens * row, seed++), values = kv_test_values(c.layers * tokens * row, seed++);
        EXPECT_EQ(grey_kv_append(cache, sequence, ids.data(), tokens, GREY_DTYPE_F32, keys.data(), values.data(), keys.size() * sizeof(float)), GREY_OK)
            << grey_last_error();
    };
    for (const uint32_t tokens : c.prefill) {
        uint64_t sequence = 0;
        EXPECT_EQ(grey_kv_sequence_create(cache, 7, &sequence), GREY_OK) << grey_last_error();
        sequences.push_back(sequence);
        append(sequence, tokens);
    }
    // The decode steps from a buffer of the device, in BF16 (grey_kv_append_buffer: the store converts
    // and checks them).
    for (const uint64_t sequence : sequences) {
        const int32_t id = static_cast<int32_t>(seed * 1000);
        std::vector<uint16_t> halves;
        for (const auto& part : {kv_test_values(c.layers * row, seed), kv_test_values(c.layers * row, seed + 1)})
            for (const float x : part) {
                uint32_t bits;
                std::memcpy(&bits, &x, 4);
                halves.push_back(static_cast<uint16_t>(bits >> 16));
            }
        seed += 2;
        const uint64_t bytes = c.layers * row * 2;
        grey_buffer* buffer = nullptr;
        EXPECT_EQ(grey_buffer_create(context, device, 2 * bytes, &buffer), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_buffer_write(buffer, 0, halves.data(), 2 * bytes), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_kv_append_buffer(cache, sequence, &id, 1, GREY_DTYPE_BF16, buffer, 0, buffer, bytes, bytes), GREY_OK) << grey_last_error();
        grey_buffer_destroy(buffer);
    }
    // A sequence written a layer at a time: the stores of one layer each (layer_first > 0 first).
    uint64_t layered = 0;
    EXPECT_EQ(grey_kv_sequence_create(cache, 7, &layered), GREY_OK) << grey_last_error();
    const uint32_t reserved = c.tokens_per_block + 3;
    std::vector<int32_t> ids(reserved);
    for (uint32_t i = 0; i < reserved; ++i) ids[i] = static_cast<int32_t>(900000 + i);
    EXPECT_EQ(grey_kv_reserve(cache, layered, ids.data(), reserved, nullptr), GREY_OK) << grey_last_error();
    for (uint32_t layer = c.layers; layer-- > 0;) {
        const std::vector<float> keys = kv_test_values(reserved * row, seed++), values = kv_test_values(reserved * row, seed++);
        EXPECT_EQ(grey_kv_write_layer(cache, layered, layer, GREY_DTYPE_F32, keys.data(), values.data(), keys.size() * sizeof(float)), GREY_OK)
            << grey_last_error();
    }
    sequences.push_back(layered);

    grey_kv_attend_params params = GREY_KV_ATTEND_PARAMS_INIT;
    params.layer = c.layers - 1;
    params.query_heads = c.query_heads;
    params.sliding_window = c.sliding_window;
    const std::vector<float> queries = kv_test_values(sequences.size() * c.query_heads * c.head_dim, 99);
    result.attention.assign(queries.size(), 0.0f);
    EXPECT_EQ(grey_kv_attend(cache, &params, sequences.data(), static_cast<uint32_t>(sequences.size()), queries.data(), result.attention.data(),
                             queries.size() * sizeof(float)),
              GREY_OK)
        << grey_last_error();
    for (const uint64_t sequence : sequences) {
        uint64_t length = 0;
        EXPECT_EQ(grey_kv_sequence_length(cache, sequence, &length), GREY_OK);
        for (uint32_t layer = 0; layer < c.layers; ++layer) {
            std::vector<float> keys(length * row), values(length * row);
            EXPECT_EQ(grey_kv_gather(cache, sequence, layer, keys.data(), values.data(), keys.size() * sizeof(float)), GREY_OK) << grey_last_error();
            keys.insert(keys.end(), values.begin(), values.end());
            result.gathered.push_back(std::move(keys));
        }
    }
    grey_kv_cache_destroy(cache);
    return result;
}

// Runs every case on `device` and on `host_device`, compares what each left, and returns what the fake
// logged at `log_path`.
inline std::string run_kv_launch_cases(grey_context* context, uint32_t device, uint32_t host_device, const std::string& log_path) {
    std::remove(log_path.c_str());
    for (const KvLaunchCase& c : kv_launch_cases()) {
        SCOPED_TRACE("head_dim " + std::to_string(c.head_dim) + " format " + std::to_string(c.format));
        const KvCaseResult gpu = run_kv_case(context, device, c);
        const KvCaseResult host = run_kv_case(context, host_device, c);
        EXPECT_EQ(gpu.gathered, host.gathered) << "the stored bytes differ from the host backend's";
        EXPECT_EQ(gpu.attention.size(), host.attention.size());
        for (size_t i = 0; i < std::min(gpu.attention.size(), host.attention.size()); ++i)
            EXPECT_NEAR(gpu.attention[i], host.attention[i], 1e-5 * (1.0 + std::fabs(host.attention[i]))) << "output element " << i;
    }
    std::ifstream log(log_path);
    std::stringstream text;
    text << log.rdbuf();
    return text.str();
}

}  // namespace grey::test
