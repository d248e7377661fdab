// greyctl kv-bench: decode attention over a KV cache of a given shape, format and context on one device,
// timed, and its output compared with float64 attention over the same K/V before they were stored (the
// quantization's cost) and, on a device other than the host, with the host backend's float64 attention
// over a host cache holding the same data (the kernels' cost). K/V are generated from a seed (keys with
// outlier channels, as real keys have), a sequence at a time, so that nothing but the caches holds a
// whole context. Every figure printed is measured in the run; timings are medians of the calls made.
#include "commands.hpp"
#include "exit_codes.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace greyctl {
namespace {

using json = nlohmann::ordered_json;

struct KvBenchOptions {
    uint32_t layers = 1;
    uint32_t query_heads = 32;
    uint32_t kv_heads = 8;
    uint32_t head_dim = 128;
    std::string format = "int4";
    uint32_t group = 32;
    uint32_t window = 128;
    uint32_t block = 16;
    uint32_t context = 4096;
    uint32_t batch = 8;
    bool hadamard_k = false;
    std::string backend = "host";
    uint32_t iterations = 10;
    uint32_t warmup = 2;
    uint64_t seed = 1;
    bool as_json = false;
};

// "bf16" keeps every token in the bf16 window (nothing quantized); the others are grey_kv_format names.
const std::vector<std::string>& format_names() {
    static const std::vector<std::string> names = {"bf16", "int8", "int4", "int2", "fp8-e4m3"};
    return names;
}

grey_kv_cache_config config_of(const KvBenchOptions& o) {
    grey_kv_cache_config config = GREY_KV_CACHE_CONFIG_INIT;
    config.layers = o.layers;
    config.kv_heads = o.kv_heads;
    config.head_dim = o.head_dim;
    config.tokens_per_block = o.block;
    config.window_tokens = o.format == "bf16" ? GREY_KV_WINDOW_ALL : o.window;
    for (int f = GREY_KV_INT8; f <= GREY_KV_FP8_E4M3; ++f)
        if (o.format == grey_kv_format_name(static_cast<grey_kv_format>(f))) config.format = static_cast<grey_kv_format>(f);
    config.group_size = o.group;
    config.flags = o.hadamard_k ? GREY_KV_HADAMARD_K : 0u;
    // Room for every sequence's blocks in window form (the most they take before quantization), plus one.
    const uint64_t blocks = uint64_t{o.batch} * ((o.context + o.block - 1) / o.block) + 1;
    config.capacity_bytes = blocks * 4ull * o.layers * o.kv_heads * o.block * o.head_dim;
    return config;
}

KvCachePtr create_cache(grey_context* context, uint32_t device, const grey_kv_cache_config& config) {
    grey_kv_cache* cache = nullptr;
    check(grey_kv_cache_create(context, device, &config, &cache));
    return KvCachePtr(cache);
}

// Float64 decode attention of one sequence's queries over its layer-0 K/V, fed a chunk of tokens at a
// time (online softmax), so the whole context is never held.
class StreamingReference {
public:
    StreamingReference(const KvBenchOptions& o, const float* queries)
        : o_(o), queries_(queries), top_(o.query_heads, -INFINITY), total_(o.query_heads, 0.0),
          accumulated_(size_t{o.query_heads} * o.head_dim, 0.0) {}

    // `keys`/`values`: layer 0 of `tokens` tokens, [token][kv_head][head_dim].
    void add(const float* keys, const float* values, uint32_t tokens) {
        const uint32_t dim = o_.head_dim, group = o_.query_heads / o_.kv_heads;
        const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
        for (uint32_t h = 0; h < o_.query_heads; ++h) {
            const float* q = queries_ + size_t{h} * dim;
            double* acc = accumulated_.data() + size_t{h} * dim;
            for (uint32_t t = 0; t < tokens; ++t) {
                const size_t row = (size_t{t} * o_.kv_heads + h / group) * dim;
                double score = 0;
                for (uint32_t c = 0; c < dim; ++c) score += double{q[c]} * keys[row + c];
                score *= scale;
                const double top = std::max(top_[h], score);
                const double rescale = std::exp(top_[h] - top), weight = std::exp(score - top);
                total_[h] = total_[h] * rescale + weight;
                for (uint32_t c = 0; c < dim; ++c) acc[c] = acc[c] * rescale + weight * values[row + c];
                top_[h] = top;
            }
        }
    }

    [[nodiscard]] std::vector<double> output() const {
        std::vector<double> out(accumulated_.size());
        for (size_t i = 0; i < out.size(); ++i) out[i] = accumulated_[i] / total_[i / o_.head_dim];
        return out;
    }

private:
    const KvBenchOptions& o_;
    const float* queries_;
    std::vector<double> top_, total_, accumulated_;
};

// Relative RMS error, largest absolute error and mean cosine similarity of `got` against `want`, per
// output vector of head_dim values.
json error_json(const std::vector<float>& got, const std::vector<double>& want, uint32_t dim) {
    double error2 = 0, signal2 = 0, max_abs = 0, cosine_sum = 0;
    const size_t vectors = want.size() / dim;
    for (size_t v = 0; v < vectors; ++v) {
        double dot = 0, got2 = 0, want2 = 0;
        for (uint32_t c = 0; c < dim; ++c) {
            const double g = got[v * dim + c], w = want[v * dim + c];
            error2 += (g - w) * (g - w);
            signal2 += w * w;
            max_abs = std::max(max_abs, std::fabs(g - w));
            dot += g * w;
            got2 += g * g;
            want2 += w * w;
        }
        cosine_sum += got2 > 0 && want2 > 0 ? dot / std::sqrt(got2 * want2) : (got2 == want2 ? 1.0 : 0.0);
    }
    return {{"rel_rmse", signal2 > 0 ? std::sqrt(error2 / signal2) : std::sqrt(error2)},
            {"max_abs", max_abs},
            {"mean_cosine", vectors != 0 ? cosine_sum / static_cast<double>(vectors) : 1.0}};
}

std::vector<float> attend(grey_kv_cache* cache, const KvBenchOptions& o, const std::vector<uint64_t>& sequences, const std::vector<float>& queries) {
    grey_kv_attend_params params = GREY_KV_ATTEND_PARAMS_INIT;
    params.layer = 0;
    params.query_heads = o.query_heads;
    std::vector<float> output(queries.size());
    check(grey_kv_attend(cache, &params, sequences.data(), o.batch, queries.data(), output.data(), queries.size() * sizeof(float)));
    return output;
}

void print_kv_bench_report(const json& r) {
    const auto& shape = r["shape"];
    std::printf("kv-bench: %s device %u, %s%s (group %u, window %s, block %u), %u layer(s), %u query heads / %u KV heads, head_dim %u, "
                "context %u, batch %u\n",
                r["backend"].get<std::string>().c_str(), r["device"].get<uint32_t>(), r["format"].get<std::string>().c_str(),
                r["hadamard_k"].get<bool>() ? " + hadamard-k" : "", r["group"].get<uint32_t>(),
                r["window"].is_null() ? "all" : std::to_string(r["window"].get<uint32_t>()).c_str(), r["block"].get<uint32_t>(),
                shape["layers"].get<uint32_t>(), shape["query_heads"].get<uint32_t>(), shape["kv_heads"].get<uint32_t>(),
                shape["head_dim"].get<uint32_t>(), r["context"].get<uint32_t>(), r["batch"].get<uint32_t>());
    const auto& t = r["timing"];
    std::printf("  decode attention: median %.1f us per call (min %.1f, max %.1f; %u calls), %.2f GB/s of the %llu cache bytes a call reads\n",
                t["median_us"].get<double>(), t["min_us"].get<double>(), t["max_us"].get<double>(), t["calls"].get<uint32_t>(),
                t["gb_per_s"].get<double>(), static_cast<unsigned long long>(t["bytes_read_per_call"].get<uint64_t>()));
    const auto& c = r["cache"];
    std::printf("  cache: %llu bytes, %.1f bytes per token (all layers), %.3fx smaller than its bf16 window form, %llu of %llu blocks quantized\n",
                static_cast<unsigned long long>(c["bytes_used"].get<uint64_t>()), c["bytes_per_token"].get<double>(),
                c["compression_ratio"].get<double>(), static_cast<unsigned long long>(c["blocks_compressed"].get<uint64_t>()),
                static_cast<unsigned long long>(c["blocks_used"].get<uint64_t>()));
    const auto line = [](const char* what, const json& e) {
        std::printf("  %s: rel RMSE %.3e, max abs %.3e, mean cosine %.6f\n", what, e["rel_rmse"].get<double>(), e["max_abs"].get<double>(),
                    e["mean_cosine"].get<double>());
    };
    line("error vs float64 attention on the K/V before storing", r["error"]["vs_float64_input"]);
    if (!r["error"]["vs_host_reference"].is_null()) line("error vs the host backend's float64 attention on the same cache", r["error"]["vs_host_reference"]);
}

int run_kv_bench(const GlobalOptions& global, const KvBenchOptions& o) {
    if (o.query_heads % o.kv_heads != 0)
        throw CommandError(Exit::usage, "--query-heads " + std::to_string(o.query_heads) + " is not a multiple of --kv-heads " +
                                            std::to_string(o.kv_heads));
    BackendDevice target = open_backend_device(global, o.backend);
    grey_context* context = target.context.get();
    const grey_kv_cache_config config = config_of(o);
    KvCachePtr cache = create_cache(context, target.device, config);
    // On another device, a host cache of the same data: the reference the kernels are held to.
    KvCachePtr host_cache = o.backend != "host" ? create_cache(context, 0, config) : nullptr;

    const uint32_t dim = o.head_dim;
    std::mt19937_64 rng(o.seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> queries(size_t{o.batch} * o.query_heads * dim);
    for (auto& q : queries) q = normal(rng);

    std::vector<uint64_t> sequences(o.batch), host_sequences(o.batch);
    std::vector<double> reference;
    const uint32_t chunk_tokens = 256;
    const size_t row = size_t{o.kv_heads} * dim;
    for (uint32_t s = 0; s < o.batch; ++s) {
        // A salt per sequence: nothing is shared, every sequence's blocks are read.
        check(grey_kv_sequence_create(cache.get(), s, &sequences[s]));
        if (host_cache) check(grey_kv_sequence_create(host_cache.get(), s, &host_sequences[s]));
        StreamingReference exact(o, queries.data() + size_t{s} * o.query_heads * dim);
        for (uint32_t done = 0; done < o.context; done += chunk_tokens) {
            const uint32_t n = std::min(chunk_tokens, o.context - done);
            std::vector<float> keys(size_t{o.layers} * n * row), values(keys.size());
            for (size_t i = 0; i < keys.size(); ++i) {
                const auto channel = static_cast<uint32_t>(i % dim);
                keys[i] = normal(rng) * (channel % 17 == 3 ? 12.0f : 1.0f) + (channel % 5 == 0 ? 2.0f : 0.0f);
                values[i] = normal(rng);
            }
            std::vector<int32_t> ids(n);
            for (uint32_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(done + i);
            const uint64_t bytes = keys.size() * sizeof(float);
            check(grey_kv_append(cache.get(), sequences[s], ids.data(), n, GREY_DTYPE_F32, keys.data(), values.data(), bytes));
            if (host_cache)
                check(grey_kv_append(host_cache.get(), host_sequences[s], ids.data(), n, GREY_DTYPE_F32, keys.data(), values.data(), bytes));
            exact.add(keys.data(), values.data(), n);  // layer 0 comes first
        }
        const auto out = exact.output();
        reference.insert(reference.end(), out.begin(), out.end());
    }

    for (uint32_t i = 0; i < o.warmup; ++i) (void)attend(cache.get(), o, sequences, queries);
    std::vector<double> micros;
    std::vector<float> output;
    for (uint32_t i = 0; i < o.iterations; ++i) {
        const auto start = std::chrono::steady_clock::now();
        output = attend(cache.get(), o, sequences, queries);
        micros.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    }
    std::vector<double> sorted = micros;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted.size() % 2 == 1 ? sorted[sorted.size() / 2] : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);

    grey_kv_stats stats{};
    stats.struct_size = sizeof stats;
    check(grey_kv_cache_stats_get(cache.get(), &stats));
    // A call reads layer 0 of every block of every sequence: a layer's share of the blocks' bytes.
    const uint64_t bytes_read = stats.bytes_used / o.layers;
    json vs_host = nullptr;
    if (host_cache) vs_host = error_json(output, [&] {
        const auto host_output = attend(host_cache.get(), o, host_sequences, queries);
        return std::vector<double>(host_output.begin(), host_output.end());
    }(), dim);
    grey_device_spec spec{};
    spec.struct_size = sizeof spec;
    check(grey_device_spec_get(context, target.device, &spec));
    const json report = {
        {"backend", spec.backend},
        {"device", target.device},
        {"shape", {{"layers", o.layers}, {"query_heads", o.query_heads}, {"kv_heads", o.kv_heads}, {"head_dim", o.head_dim}}},
        {"format", o.format},
        {"hadamard_k", o.hadamard_k},
        {"group", o.group},
        {"window", o.format == "bf16" ? json(nullptr) : json(o.window)},
        {"block", o.block},
        {"context", o.context},
        {"batch", o.batch},
        {"seed", o.seed},
        {"timing",
         {{"calls", o.iterations},
          {"median_us", median},
          {"min_us", sorted.front()},
          {"max_us", sorted.back()},
          {"bytes_read_per_call", bytes_read},
          {"gb_per_s", median > 0 ? static_cast<double>(bytes_read) / (median * 1e3) : 0.0}}},
        {"cache",
         {{"bytes_used", stats.bytes_used},
          {"blocks_used", stats.blocks_used},
          {"blocks_compressed", stats.blocks_compressed},
          {"bytes_per_token", stats.bytes_per_token},
          {"compression_ratio", stats.compression_ratio}}},
        {"error",
         {{"vs_float64_input", error_json(output, reference, dim)},
          {"vs_host_reference", vs_host},
          {"reference", "float64 attention over the generated K/V before they were stored; vs_host_reference: the host "
                        "backend's float64 attention over a host cache of the same data (null on the host backend)"}}}};
    if (o.as_json)
        std::cout << report.dump(2) << "\n";
    else
        print_kv_bench_report(report);
    return 0;
}

}  // namespace

void add_kv_bench_command(CLI::App& app, const GlobalOptions& global, Runner& run) {
    auto o = std::make_shared<KvBenchOptions>();
    auto* cmd = app.add_subcommand("kv-bench", "Time decode attention over a quantized KV cache and measure its error against float64 "
                                               "attention on the same data");
    cmd->add_option("--layers", o->layers, "Layers of the cache (attention runs on layer 0; default 1)")->check(CLI::Range(1, 4096));
    cmd->add_option("--query-heads", o->query_heads, "Query heads, a multiple of --kv-heads (default 32)")->check(CLI::Range(1, 4096));
    cmd->add_option("--kv-heads", o->kv_heads, "KV heads (default 8)")->check(CLI::Range(1, 4096));
    cmd->add_option("--head-dim", o->head_dim, "Channels of a head (default 128)")->check(CLI::Range(1, 1024));
    cmd->add_option("--format", o->format, "Blocks older than the window: int8, int4 (default), int2, fp8-e4m3, or bf16 (nothing quantized)")
        ->check(CLI::IsMember(format_names()));
    cmd->add_option("--group", o->group, "V's group size along head_dim: 32 (default), 64 or 128")->check(CLI::IsMember({32u, 64u, 128u}));
    cmd->add_option("--window", o->window, "Newest tokens of a sequence kept in bf16 (default 128)")->check(CLI::Range(1u, 1u << 30));
    cmd->add_option("--block", o->block, "Tokens a block (default 16)")->check(CLI::Range(1, 1024));
    cmd->add_option("--context", o->context, "Tokens of every sequence (default 4096)")->check(CLI::Range(1u, 1u << 24));
    cmd->add_option("--batch", o->batch, "Sequences attended together (default 8)")->check(CLI::Range(1, 4096));
    cmd->add_flag("--hadamard-k", o->hadamard_k, "Rotate K by the normalized Walsh-Hadamard matrix before quantizing (head_dim a power of two)");
    cmd->add_option("--backend", o->backend, "Where the cache lives: host (default), or a backend plugin such as cuda");
    cmd->add_option("--iterations", o->iterations, "Timed calls (default 10)")->check(CLI::Range(1, 100000));
    cmd->add_option("--warmup", o->warmup, "Untimed calls first (default 2)")->check(CLI::Range(0, 100000));
    cmd->add_option("--seed", o->seed, "Seed of the generated K/V and queries (default 1)");
    add_json_flag(*cmd, o->as_json, "Print JSON instead of text");
    cmd->callback([&global, &run, o] { run = [&global, o] { return run_kv_bench(global, *o); }; });
}

}  // namespace greyctl
