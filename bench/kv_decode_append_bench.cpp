// The host cost of a decode step's append: one token appended to a sequence that already holds `context`
// tokens (one layer of a Llama-3-8B-shaped cache: 8 KV heads, head_dim 128, 16-token blocks, a 128-token
// window, int4), through grey.h on the host device. What the runtime does per call should not grow with
// the sequence: after the table, each context's time is printed as a ratio to the 1,024-token one's.
// Each benchmark appends 2,048 tokens one at a time after the fill, so a run ends at context + 2,048;
// every 16th append finishes a block and quantizes the one leaving the window, which on the host device
// is most of an append's time (the host backend codes the block value by value). The same binary
// measures another libgrey through LD_LIBRARY_PATH (it uses only the public API).
#include "grey.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <vector>

namespace {

constexpr uint32_t kHeads = 8, kHeadDim = 128, kBlock = 16, kWindow = 128, kSteps = 2048, kFillChunk = 4096;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "%s: %s\n", what, grey_last_error());
    std::exit(1);
}

grey_context* context() {
    static grey_context* c = [] {
        grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
        options.backends = "none_here";  // the host device alone
        options.log_level = GREY_LOG_OFF;
        grey_context* made = nullptr;
        if (grey_context_create(&options, &made) != GREY_OK) fail("grey_context_create");
        return made;
    }();
    return c;
}

// Seconds per append at each context (the last run of each), for the ratios printed after the table.
std::map<int64_t, double>& per_append() {
    static std::map<int64_t, double> m;
    return m;
}

void DecodeAppend(benchmark::State& state) {
    const auto context_tokens = static_cast<uint32_t>(state.range(0));
    grey_kv_cache_config config = GREY_KV_CACHE_CONFIG_INIT;
    config.layers = 1;
    config.kv_heads = kHeads;
    config.head_dim = kHeadDim;
    config.tokens_per_block = kBlock;
    config.window_tokens = kWindow;
    config.format = GREY_KV_INT4;
    config.capacity_bytes = 4ull * kHeads * kHeadDim * (context_tokens + kSteps + 2 * kBlock);  // every token in window form
    grey_kv_cache* raw = nullptr;
    if (grey_kv_cache_create(context(), 0, &config, &raw) != GREY_OK) fail("grey_kv_cache_create");
    const std::unique_ptr<grey_kv_cache, void (*)(grey_kv_cache*)> cache(raw, [](grey_kv_cache* c) { grey_kv_cache_destroy(c); });
    uint64_t sequence = 0;
    if (grey_kv_sequence_create(cache.get(), 0, &sequence) != GREY_OK) fail("grey_kv_sequence_create");

    const size_t row = size_t{kHeads} * kHeadDim;
    std::vector<float> keys(kFillChunk * row), values(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) keys[i] = static_cast<float>(i % 251) / 125.0f - 1.0f, values[i] = static_cast<float>(i % 241) / 120.0f - 1.0f;
    std::vector<int32_t> tokens(kFillChunk);
    int32_t next_token = 0;
    for (uint32_t filled = 0; filled < context_tokens;) {
        const uint32_t n = std::min(kFillChunk, context_tokens - filled);
        for (uint32_t i = 0; i < n; ++i) tokens[i] = next_token++;
        if (grey_kv_append(cache.get(), sequence, tokens.data(), n, GREY_DTYPE_F32, keys.data(), values.data(), uint64_t{n} * row * 4) != GREY_OK)
            fail("filling the sequence");
        filled += n;
    }
    const auto start = std::chrono::steady_clock::now();
    for (auto _ : state) {
        const int32_t token = next_token++;
        if (grey_kv_append(cache.get(), sequence, &token, 1, GREY_DTYPE_F32, keys.data() + (token % kFillChunk) * row,
                           values.data() + (token % kFillChunk) * row, row * 4) != GREY_OK) {
            state.SkipWithError(grey_last_error());
            break;
        }
    }
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    state.SetItemsProcessed(state.iterations());
    if (state.iterations() > 0) per_append()[state.range(0)] = took.count() / static_cast<double>(state.iterations());
}

}  // namespace

BENCHMARK(DecodeAppend)->Arg(1024)->Arg(32768)->Arg(131072)->Iterations(kSteps)->Unit(benchmark::kMicrosecond)->UseRealTime();

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    const auto& m = per_append();
    if (m.empty()) return 0;
    const double shortest = m.begin()->second;
    for (const auto& [tokens, seconds] : m)
        std::printf("%7lld tokens: %8.2f us an append = %.2fx the %lld-token sequence's\n", static_cast<long long>(tokens), seconds * 1e6,
                    seconds / shortest, static_cast<long long>(m.begin()->first));
    return 0;
}
