// The KV cache through the C API from C++ with owning handles and exceptions: a cache of int4 blocks
// behind a bf16 window, a 40-token prompt and three decode steps appended to one sequence, a fork that
// grows on its own while the original is truncated, decode attention over both (4 query heads on 2 KV
// heads), K/V gathered back and compared with what was appended, and the cache's statistics.
//
//   c++ -std=c++20 -Iinclude samples/cpp/kv.cpp -Lbuild/default/lib -Wl,-rpath,$PWD/build/default/lib -lgrey
//   ./a.out
//
// K, V and queries come from the LCG of samples/c/quantize.c, whose values are exact in float32, so every
// kv sample in samples/ prints the same lines.
#include <grey.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr uint32_t kLayers = 2, kKvHeads = 2, kHeadDim = 64, kQueryHeads = 4, kRow = kKvHeads * kHeadDim;

void check(grey_status status, const char* what) {
    if (status != GREY_OK) throw std::runtime_error(std::string(what) + " failed: " + grey_last_error());
}

template <typename T, void (*Destroy)(T*)>
struct Deleter {
    void operator()(T* p) const noexcept { Destroy(p); }
};
using Context = std::unique_ptr<grey_context, Deleter<grey_context, grey_context_destroy>>;
using Cache = std::unique_ptr<grey_kv_cache, Deleter<grey_kv_cache, grey_kv_cache_destroy>>;

// The synthetic stand-in: an LCG whose values are exact in float32, so every language makes the same.
class Synthetic {
public:
    std::vector<float> next(size_t n) {
        std::vector<float> values(n);
        for (auto& v : values) {
            state_ = state_ * 1664525u + 1013904223u;
            v = (static_cast<float>(state_ >> 8) / 16777216.0f - 0.5f) / 16.0f;
        }
        return values;
    }

private:
    uint32_t state_ = 12345u;
};

// What a sequence was given: layer 0 of every token appended, [token][kv_head][head_dim].
struct Appended {
    std::vector<float> keys, values;
    [[nodiscard]] uint32_t tokens() const { return static_cast<uint32_t>(keys.size() / kRow); }
};

// Appends n tokens (ids from first_id) with fresh K/V, [layer][token][kv_head][head_dim], and records layer 0.
void append(grey_kv_cache* cache, uint64_t sequence, int32_t first_id, uint32_t n, Synthetic& synthetic, Appended& record) {
    std::vector<int32_t> ids(n);
    for (uint32_t i = 0; i < n; ++i) ids[i] = first_id + static_cast<int32_t>((i * 7919u) % 30000u);
    const auto keys = synthetic.next(size_t{kLayers} * n * kRow), values = synthetic.next(size_t{kLayers} * n * kRow);
    check(grey_kv_append(cache, sequence, ids.data(), n, GREY_DTYPE_F32, keys.data(), values.data(), keys.size() * sizeof(float)),
          "grey_kv_append");
    record.keys.insert(record.keys.end(), keys.begin(), keys.begin() + size_t{n} * kRow);  // layer 0 is the first n rows
    record.values.insert(record.values.end(), values.begin(), values.begin() + size_t{n} * kRow);
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    return worst;
}

uint64_t length_of(grey_kv_cache* cache, uint64_t sequence) {
    uint64_t length = 0;
    check(grey_kv_sequence_length(cache, sequence, &length), "grey_kv_sequence_length");
    return length;
}

grey_kv_stats stats_of(grey_kv_cache* cache) {
    grey_kv_stats stats{};
    stats.struct_size = sizeof stats;
    check(grey_kv_cache_stats_get(cache, &stats), "grey_kv_cache_stats_get");
    return stats;
}

void run(grey_context* context) {
    grey_kv_cache_config config = GREY_KV_CACHE_CONFIG_INIT;
    config.layers = kLayers;
    config.kv_heads = kKvHeads;
    config.head_dim = kHeadDim;
    config.tokens_per_block = 16;
    config.window_tokens = 16;
    config.format = GREY_KV_INT4;
    config.group_size = 32;
    config.capacity_bytes = 1u << 20;
    grey_kv_cache* raw = nullptr;
    check(grey_kv_cache_create(context, 0, &config, &raw), "grey_kv_cache_create");
    const Cache cache(raw);
    std::printf("kv cache: %u layers, %u KV heads, head_dim %u, blocks of %u tokens, the newest %u in bf16, older ones %s (V groups of %u)\n",
                kLayers, kKvHeads, kHeadDim, config.tokens_per_block, config.window_tokens, grey_kv_format_name(config.format),
                config.group_size);

    Synthetic synthetic;
    Appended a;
    uint64_t seq_a = 0, seq_b = 0;
    check(grey_kv_sequence_create(cache.get(), 0, &seq_a), "grey_kv_sequence_create");
    append(cache.get(), seq_a, 101, 40, synthetic, a);  // the prompt
    for (int32_t step = 0; step < 3; ++step) append(cache.get(), seq_a, 2000 + step, 1, synthetic, a);
    std::printf("kv append: sequence A holds %llu tokens (a 40-token prompt, then 3 decode steps)\n",
                static_cast<unsigned long long>(length_of(cache.get(), seq_a)));

    check(grey_kv_sequence_fork(cache.get(), seq_a, &seq_b), "grey_kv_sequence_fork");
    Appended b = a;
    append(cache.get(), seq_b, 3000, 2, synthetic, b);
    check(grey_kv_sequence_truncate(cache.get(), seq_a, 38), "grey_kv_sequence_truncate");
    std::printf("kv fork: sequence B holds %llu tokens (A's 43 and 2 of its own), A truncated to %llu\n",
                static_cast<unsigned long long>(length_of(cache.get(), seq_b)), static_cast<unsigned long long>(length_of(cache.get(), seq_a)));

    const uint64_t batch[2] = {seq_a, seq_b};
    const auto queries = synthetic.next(size_t{2} * kQueryHeads * kHeadDim);
    std::vector<float> output(queries.size());
    grey_kv_attend_params params = GREY_KV_ATTEND_PARAMS_INIT;
    params.layer = 1;
    params.query_heads = kQueryHeads;
    check(grey_kv_attend(cache.get(), &params, batch, 2, queries.data(), output.data(), queries.size() * sizeof(float)), "grey_kv_attend");
    double sum = 0, squares = 0;
    for (const float x : output) {
        sum += x;
        squares += static_cast<double>(x) * x;
    }
    std::printf("kv attend: layer 1, %u query heads on %u KV heads, batch of A and B: output sum %.6f, sum of squares %.6f\n", kQueryHeads,
                kKvHeads, sum, squares);

    std::vector<float> keys(b.keys.size()), values(b.values.size());
    check(grey_kv_gather(cache.get(), seq_b, 0, keys.data(), values.data(), keys.size() * sizeof(float)), "grey_kv_gather");
    std::printf("kv gather: B layer 0, %u tokens: largest difference from what was appended K %.6f, V %.6f\n", b.tokens(),
                max_abs_difference(keys, b.keys), max_abs_difference(values, b.values));

    const grey_kv_stats stats = stats_of(cache.get());
    std::printf("kv stats: %u sequences, %llu tokens, %llu blocks (%llu quantized), %llu bytes, %.2f bytes per token, compression ratio %.4f\n",
                stats.sequences, static_cast<unsigned long long>(stats.tokens), static_cast<unsigned long long>(stats.blocks_used),
                static_cast<unsigned long long>(stats.blocks_compressed), static_cast<unsigned long long>(stats.bytes_used), stats.bytes_per_token,
                stats.compression_ratio);

    check(grey_kv_sequence_free(cache.get(), seq_a), "grey_kv_sequence_free");
    check(grey_kv_sequence_free(cache.get(), seq_b), "grey_kv_sequence_free");
    const grey_kv_stats after = stats_of(cache.get());
    std::printf("kv free: %u sequences, %llu full blocks kept as cached prefixes\n", after.sequences,
                static_cast<unsigned long long>(after.blocks_cached));
}

}  // namespace

int main() {
    try {
        grey_context* raw = nullptr;
        check(grey_context_create(nullptr, &raw), "grey_context_create");
        const Context context(raw);
        run(context.get());
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "kv: " << e.what() << "\n";
        return 1;
    }
}
