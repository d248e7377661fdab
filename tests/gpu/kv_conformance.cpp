// The KV cache on a GPU against the same cache on the host device (the reference): identical appends
// (ragged chunks, shared prompt prefixes, every other sequence written a layer at a time; the GPU's from
// host arrays and from GPU buffers of F32, BF16 and F16) into both, then every stored value compared bit for bit
// through grey_kv_gather (the device's token writes and block quantization must give the host's bytes)
// and decode attention compared with the host's float64 result, for every format, group size and window
// setting, GQA ratios 1/4/8, contexts from 1 token to 128k, ragged batches and sliding windows, with K
// stored as appended and rotated (GREY_KV_HADAMARD_K).
//
//   grey_gpu_kv_conformance [--quick] [--backend-dir DIR]
#include "gpu_check.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

namespace {

using gpu_check::check;
using gpu_check::ok;

struct CacheDeleter {
    void operator()(grey_kv_cache* c) const { grey_kv_cache_destroy(c); }
};
using Cache = std::unique_ptr<grey_kv_cache, CacheDeleter>;

Cache make_cache(grey_context* context, uint32_t device, const grey_kv_cache_config& config) {
    grey_kv_cache* cache = nullptr;
    if (!ok(grey_kv_cache_create(context, device, &config, &cache))) return nullptr;
    return Cache(cache);
}

uint32_t host_device(grey_context* context) {
    uint32_t count = 0;
    if (!ok(grey_device_count(context, &count))) return 0;
    for (uint32_t d = 0; d < count; ++d) {
        grey_device_spec spec{};
        spec.struct_size = sizeof spec;
        if (ok(grey_device_spec_get(context, d, &spec)) && spec.type == GREY_DEVICE_CPU) return d;
    }
    return 0;
}

struct Case {
    uint32_t layers, kv_heads, head_dim, tokens_per_block, window, group;
    grey_kv_format format;
    uint32_t ratio;  // query heads per KV head
    std::vector<uint32_t> lengths;  // per sequence
    uint32_t sliding_window;
    uint32_t flags = 0;  // GREY_KV_HADAMARD_K: K rotated by the kernels' fast Walsh-Hadamard transform
};

std::string describe(const Case& c) {
    std::string lengths;
    for (const uint32_t n : c.lengths) lengths += (lengths.empty() ? "" : ",") + std::to_string(n);
    return std::string(grey_kv_format_name(c.format)) + " layers " + std::to_string(c.layers) + " heads " + std::to_string(c.kv_heads) +
           "x" + std::to_string(c.ratio) + " dim " + std::to_string(c.head_dim) + " block " + std::to_string(c.tokens_per_block) +
           " window " + (c.window == GREY_KV_WINDOW_ALL ? std::string("all") : std::to_string(c.window)) + " group " +
           std::to_string(c.group) + " lengths " + lengths + (c.sliding_window != 0 ? " sliding " + std::to_string(c.sliding_window) : "") +
           ((c.flags & GREY_KV_HADAMARD_K) != 0 ? " hadamard-k" : "");
}

// Keys with outlier channels (as real keys have), values plain normal.
void fill_kv(std::mt19937_64& rng, const Case& c, uint32_t tokens, std::vector<float>& keys, std::vector<float>& values) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const size_t count = size_t{c.layers} * tokens * c.kv_heads * c.head_dim;
    keys.resize(count);
    values.resize(count);
    for (size_t i = 0; i < count; ++i) {
        const uint32_t channel = static_cast<uint32_t>(i % c.head_dim);
        keys[i] = normal(rng) * (channel % 17 == 3 ? 12.0f : 1.0f) + (channel % 5 == 0 ? 2.0f : 0.0f);
        values[i] = normal(rng);
    }
}

// x as F16 bits, the mantissa truncated (fill_kv's values stay below 65504; magnitudes under 2^-14 go to zero).
uint16_t f16_bits(float x) {
    uint32_t b;
    std::memcpy(&b, &x, 4);
    const auto sign = static_cast<uint16_t>((b >> 16) & 0x8000u);
    const int exponent = static_cast<int>((b >> 23) & 0xFFu) - 127 + 15;
    if (exponent <= 0) return sign;
    if (exponent >= 31) return static_cast<uint16_t>(sign | 0x7BFFu);
    return static_cast<uint16_t>(sign | (exponent << 10) | ((b >> 13) & 0x3FFu));
}

// `x` as the bytes of `dtype` (BF16 and F16 truncated).
std::vector<uint8_t> encoded(const std::vector<float>& x, grey_dtype dtype) {
    std::vector<uint8_t> out(x.size() * (dtype == GREY_DTYPE_F32 ? 4 : 2));
    for (size_t i = 0; i < x.size(); ++i) {
        if (dtype == GREY_DTYPE_F32) {
            std::memcpy(out.data() + 4 * i, &x[i], 4);
            continue;
        }
        uint32_t b;
        std::memcpy(&b, &x[i], 4);
        const auto half = dtype == GREY_DTYPE_BF16 ? static_cast<uint16_t>(b >> 16) : f16_bits(x[i]);
        std::memcpy(out.data() + 2 * i, &half, 2);
    }
    return out;
}

// One chunk of K/V ([layer][token][head][dim]) into both caches, appended whole or (`by_layer`) reserved
// and written a layer at a time, last layer first. The host cache reads host arrays; the GPU cache the
// same arrays (form 0) or a GPU buffer holding them at an offset (grey_kv_append_buffer and
// grey_kv_write_layer_buffer): BF16 for an append and F16 for layer writes (form 1), F32 (form 2).
bool write_chunk(grey_context* context, uint32_t gpu, grey_kv_cache* on_gpu, grey_kv_cache* on_host, uint64_t g, uint64_t h, const Case& c,
                 const std::vector<int32_t>& ids, const std::vector<float>& keys, const std::vector<float>& values, bool by_layer, int form) {
    const auto chunk = static_cast<uint32_t>(ids.size());
    const grey_dtype dtype = form == 1 ? (by_layer ? GREY_DTYPE_F16 : GREY_DTYPE_BF16) : GREY_DTYPE_F32;
    const std::vector<uint8_t> k = encoded(keys, dtype), v = encoded(values, dtype);
    const uint64_t pad = 8, bytes = k.size();
    grey_buffer* buffer = nullptr;
    bool done = form == 0 || (ok(grey_buffer_create(context, gpu, pad + 2 * bytes, &buffer)) && ok(grey_buffer_write(buffer, pad, k.data(), bytes)) &&
                              ok(grey_buffer_write(buffer, pad + bytes, v.data(), bytes)));
    if (!by_layer) {
        done = done && ok(grey_kv_append(on_host, h, ids.data(), chunk, dtype, k.data(), v.data(), bytes)) &&
               ok(form == 0 ? grey_kv_append(on_gpu, g, ids.data(), chunk, dtype, k.data(), v.data(), bytes)
                            : grey_kv_append_buffer(on_gpu, g, ids.data(), chunk, dtype, buffer, pad, buffer, pad + bytes, bytes));
    } else {
        done = done && ok(grey_kv_reserve(on_gpu, g, ids.data(), chunk, nullptr)) && ok(grey_kv_reserve(on_host, h, ids.data(), chunk, nullptr));
        const uint64_t layer_bytes = bytes / c.layers;
        for (uint32_t l = c.layers; done && l-- > 0;) {
            const uint64_t at = l * layer_bytes;
            done = ok(grey_kv_write_layer(on_host, h, l, dtype, k.data() + at, v.data() + at, layer_bytes)) &&
                   ok(form == 0 ? grey_kv_write_layer(on_gpu, g, l, dtype, k.data() + at, v.data() + at, layer_bytes)
                                : grey_kv_write_layer_buffer(on_gpu, g, l, dtype, buffer, pad + at, buffer, pad + bytes + at, layer_bytes));
        }
    }
    grey_buffer_destroy(buffer);
    return done;
}

void run_case(grey_context* context, uint32_t gpu, uint32_t host, const Case& c, std::mt19937_64& rng) {
    const std::string name = describe(c);
    grey_kv_cache_config config = GREY_KV_CACHE_CONFIG_INIT;
    config.layers = c.layers;
    config.kv_heads = c.kv_heads;
    config.head_dim = c.head_dim;
    config.tokens_per_block = c.tokens_per_block;
    config.window_tokens = c.window;
    config.format = c.format;
    config.group_size = c.group;
    config.flags = c.flags;
    uint64_t total = 0;
    for (const uint32_t n : c.lengths) total += n;
    const uint64_t dense_block = 4ull * c.layers * c.kv_heads * c.tokens_per_block * c.head_dim;
    config.capacity_bytes = (total / c.tokens_per_block + 2 * c.lengths.size() + 4) * dense_block;
    Cache on_gpu = make_cache(context, gpu, config);
    Cache on_host = make_cache(context, host, config);
    check(on_gpu != nullptr && on_host != nullptr, name + ": caches created");
    if (!on_gpu || !on_host) return;

    // Sequence 0 is written first; every other sequence begins with its first tokens (the same ids and
    // K/V) for a while, so prefix sharing happens on both sides, then goes its own way.
    std::vector<uint64_t> gpu_ids, host_ids;
    std::vector<int32_t> first_ids;
    std::vector<float> first_keys, first_values;
    bool appended = true;
    for (size_t s = 0; s < c.lengths.size() && appended; ++s) {
        uint64_t g = 0, h = 0;
        appended = ok(grey_kv_sequence_create(on_gpu.get(), 7, &g)) && ok(grey_kv_sequence_create(on_host.get(), 7, &h));
        gpu_ids.push_back(g);
        host_ids.push_back(h);
        uint32_t done = 0, chunks = 0;
        const uint32_t shared = s == 0 ? 0 : std::min<uint32_t>(c.lengths[s], static_cast<uint32_t>(rng() % (c.lengths[0] + 1)));
        while (appended && done < c.lengths[s]) {
            uint32_t chunk = 1 + static_cast<uint32_t>(rng() % (c.lengths[s] > 4000 ? 4096 : 48));
            chunk = std::min(chunk, c.lengths[s] - done);
            if (done < shared) chunk = std::min(chunk, shared - done);
            std::vector<int32_t> ids(chunk);
            std::vector<float> keys, values;
            if (done < shared) {  // a copy of sequence 0's tokens done .. done + chunk
                const size_t row = size_t{c.kv_heads} * c.head_dim;
                keys.resize(size_t{c.layers} * chunk * row);
                values.resize(keys.size());
                for (uint32_t l = 0; l < c.layers; ++l)
                    for (uint32_t i = 0; i < chunk; ++i) {
                        const size_t from = (size_t{l} * c.lengths[0] + done + i) * row, to = (size_t{l} * chunk + i) * row;
                        std::copy_n(first_keys.begin() + from, row, keys.begin() + to);
                        std::copy_n(first_values.begin() + from, row, values.begin() + to);
                    }
                std::copy_n(first_ids.begin() + done, chunk, ids.begin());
            } else {
                fill_kv(rng, c, chunk, keys, values);
                for (auto& id : ids) id = static_cast<int32_t>(rng() % 32000);
            }
            // Odd sequences a layer at a time; chunk after chunk from host arrays, then GPU buffers.
            appended = write_chunk(context, gpu, on_gpu.get(), on_host.get(), g, h, c, ids, keys, values, s % 2 == 1, static_cast<int>(chunks++ % 3));
            if (s == 0) {  // kept whole, [layer][token][head][dim], for the sequences that copy its beginning
                const size_t row = size_t{c.kv_heads} * c.head_dim;
                first_keys.resize(size_t{c.layers} * c.lengths[0] * row);
                first_values.resize(first_keys.size());
                for (uint32_t l = 0; l < c.layers; ++l) {
                    std::copy_n(keys.begin() + size_t{l} * chunk * row, chunk * row, first_keys.begin() + (size_t{l} * c.lengths[0] + done) * row);
                    std::copy_n(values.begin() + size_t{l} * chunk * row, chunk * row, first_values.begin() + (size_t{l} * c.lengths[0] + done) * row);
                }
                first_ids.insert(first_ids.end(), ids.begin(), ids.end());
            }
            done += chunk;
        }
    }
    check(appended, name + ": every append accepted on both devices");
    if (!appended) return;

    grey_kv_stats gpu_stats{}, host_stats{};
    gpu_stats.struct_size = host_stats.struct_size = sizeof gpu_stats;
    // Read before check() composes its message from them.
    const bool have_stats = ok(grey_kv_cache_stats_get(on_gpu.get(), &gpu_stats)) && ok(grey_kv_cache_stats_get(on_host.get(), &host_stats));
    check(have_stats && gpu_stats.bytes_used == host_stats.bytes_used && gpu_stats.blocks_compressed == host_stats.blocks_compressed &&
              gpu_stats.prefix_hits == host_stats.prefix_hits,
          name + ": same blocks, bytes and prefix hits (" + std::to_string(gpu_stats.bytes_used) + " bytes, " +
              std::to_string(gpu_stats.blocks_compressed) + " quantized, " + std::to_string(gpu_stats.prefix_hits) + " shared)");

    // Every stored value, bit for bit.
    bool same = true;
    for (size_t s = 0; s < c.lengths.size() && same; ++s)
        for (uint32_t layer : {0u, c.layers - 1}) {
            const size_t count = size_t{c.lengths[s]} * c.kv_heads * c.head_dim;
            std::vector<float> gk(count), gv(count), hk(count), hv(count);
            const uint64_t bytes = count * sizeof(float);
            same = same && ok(grey_kv_gather(on_gpu.get(), gpu_ids[s], layer, gk.data(), gv.data(), bytes)) &&
                   ok(grey_kv_gather(on_host.get(), host_ids[s], layer, hk.data(), hv.data(), bytes)) &&
                   std::memcmp(gk.data(), hk.data(), bytes) == 0 && std::memcmp(gv.data(), hv.data(), bytes) == 0;
        }
    check(same, name + ": gathered K/V identical to the host's, bit for bit");

    // Decode attention for the whole ragged batch.
    const uint32_t query_heads = c.kv_heads * c.ratio;
    const size_t io = c.lengths.size() * query_heads * c.head_dim;
    std::vector<float> queries(io), gpu_out(io), host_out(io);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (auto& q : queries) q = normal(rng);
    for (uint32_t layer : {0u, c.layers - 1}) {
        grey_kv_attend_params params = GREY_KV_ATTEND_PARAMS_INIT;
        params.layer = layer;
        params.query_heads = query_heads;
        params.sliding_window = c.sliding_window;
        const auto batch = static_cast<uint32_t>(c.lengths.size());
        const uint64_t bytes = io * sizeof(float);
        const bool ran = ok(grey_kv_attend(on_gpu.get(), &params, gpu_ids.data(), batch, queries.data(), gpu_out.data(), bytes)) &&
                         ok(grey_kv_attend(on_host.get(), &params, host_ids.data(), batch, queries.data(), host_out.data(), bytes));
        double worst = 0;
        for (size_t i = 0; i < io; ++i)
            worst = std::max(worst, std::fabs(static_cast<double>(gpu_out[i]) - host_out[i]) / (1.0 + std::fabs(host_out[i])));
        check(ran && worst <= 2e-4, name + " layer " + std::to_string(layer) + ": attention within 2e-4 of the float64 reference (worst " +
                                        std::to_string(worst) + ")");
        // The buffer form: the queries in a GPU buffer, the output into another at an offset, bit for bit
        // what grey_kv_attend gave.
        grey_buffer *query_buffer = nullptr, *output_buffer = nullptr;
        std::vector<float> buffered(io);
        const bool same_output = ran && ok(grey_buffer_create(context, gpu, bytes, &query_buffer)) &&
                                 ok(grey_buffer_create(context, gpu, bytes + 16, &output_buffer)) &&
                                 ok(grey_buffer_write(query_buffer, 0, queries.data(), bytes)) &&
                                 ok(grey_kv_attend_buffer(on_gpu.get(), &params, gpu_ids.data(), batch, query_buffer, 0, output_buffer, 16, bytes)) &&
                                 ok(grey_buffer_read(output_buffer, 16, buffered.data(), bytes)) &&
                                 std::memcmp(buffered.data(), gpu_out.data(), bytes) == 0;
        // The same queued on a stream of the caller's, into an output cleared first.
        grey_stream* stream = nullptr;
        std::vector<float> queued(io);
        const bool same_queued = same_output && ok(grey_stream_create(context, gpu, &stream)) &&
                                 ok(grey_buffer_fill(output_buffer, 0, 0, bytes + 16)) &&
                                 ok(grey_kv_attend_async(on_gpu.get(), &params, gpu_ids.data(), batch, query_buffer, 0, output_buffer, 16, bytes,
                                                         stream)) &&
                                 ok(grey_stream_synchronize(stream)) && ok(grey_buffer_read(output_buffer, 16, queued.data(), bytes)) &&
                                 std::memcmp(queued.data(), gpu_out.data(), bytes) == 0;
        grey_stream_destroy(stream);
        grey_buffer_destroy(query_buffer);
        grey_buffer_destroy(output_buffer);
        check(same_output, name + " layer " + std::to_string(layer) + ": grey_kv_attend_buffer on GPU buffers gives grey_kv_attend's output");
        check(same_queued, name + " layer " + std::to_string(layer) + ": grey_kv_attend_async on a stream gives grey_kv_attend's output");
    }
}

void bad_input(grey_context* context, uint32_t gpu) {
    grey_kv_cache_config config = GREY_KV_CACHE_CONFIG_INIT;
    config.layers = 1;
    config.kv_heads = 2;
    config.head_dim = 40;  // not a multiple of 16
    config.tokens_per_block = 16;
    config.capacity_bytes = 1u << 20;
    grey_kv_cache* cache = nullptr;
    check(grey_kv_cache_create(context, gpu, &config, &cache) == GREY_ERROR_UNSUPPORTED && cache == nullptr,
          "head_dim 40 on the GPU: GREY_ERROR_UNSUPPORTED naming head_dim");
    config.head_dim = 48;  // a multiple of 16 but no power of two: refused when K is to be rotated
    config.flags = GREY_KV_HADAMARD_K;
    check(grey_kv_cache_create(context, gpu, &config, &cache) == GREY_ERROR_INVALID_ARGUMENT && cache == nullptr,
          "head_dim 48 with GREY_KV_HADAMARD_K on the GPU: GREY_ERROR_INVALID_ARGUMENT");
    config.flags = 0;
    config.head_dim = 64;
    Cache good = make_cache(context, gpu, config);
    check(good != nullptr, "head_dim 64 on the GPU: created");
    if (!good) return;
    uint64_t seq = 0;
    std::vector<int32_t> ids(5, 1);
    std::vector<float> kv(5 * 2 * 64, 0.5f);
    check(ok(grey_kv_sequence_create(good.get(), 0, &seq)) &&
              ok(grey_kv_append(good.get(), seq, ids.data(), 5, GREY_DTYPE_F32, kv.data(), kv.data(), kv.size() * 4)),
          "a small append");
    // K/V in a GPU buffer holding a NaN or an infinity: the kernel finds the first, the call names it and
    // stores nothing; the same call with the value mended goes through.
    std::vector<uint16_t> halves(2 * kv.size(), 0x3F00);  // BF16 0.5: keys, then values
    halves[kv.size() + 317] = 0x7FC0;                       // values[317]: NaN
    halves[kv.size() + 401] = 0xFF80;                       // values[401]: -infinity
    const uint64_t half_bytes = kv.size() * 2;
    grey_buffer* input = nullptr;
    uint64_t length = 0;
    const bool made = ok(grey_buffer_create(context, gpu, 2 * half_bytes, &input)) && ok(grey_buffer_write(input, 0, halves.data(), 2 * half_bytes));
    check(made && grey_kv_append_buffer(good.get(), seq, ids.data(), 5, GREY_DTYPE_BF16, input, 0, input, half_bytes, half_bytes) ==
                      GREY_ERROR_INVALID_ARGUMENT &&
              std::strstr(grey_last_error(), "values[317]") != nullptr && ok(grey_kv_sequence_length(good.get(), seq, &length)) && length == 5,
          "a NaN in GPU-buffer values: GREY_ERROR_INVALID_ARGUMENT naming values[317], nothing appended");
    halves[kv.size() + 317] = halves[kv.size() + 401] = 0x3F00;
    halves[3] = 0x7F80;  // keys[3]: infinity
    check(made && ok(grey_buffer_write(input, 0, halves.data(), 2 * half_bytes)) && ok(grey_kv_reserve(good.get(), seq, ids.data(), 5, nullptr)) &&
              grey_kv_write_layer_buffer(good.get(), seq, 0, GREY_DTYPE_BF16, input, 0, input, half_bytes, half_bytes) == GREY_ERROR_INVALID_ARGUMENT &&
              std::strstr(grey_last_error(), "keys[3]") != nullptr,
          "an infinity in GPU-buffer keys of a layer write: GREY_ERROR_INVALID_ARGUMENT naming keys[3]");
    halves[3] = 0x3F00;
    check(made && ok(grey_buffer_write(input, 0, halves.data(), 2 * half_bytes)) &&
              ok(grey_kv_write_layer_buffer(good.get(), seq, 0, GREY_DTYPE_BF16, input, 0, input, half_bytes, half_bytes)) &&
              ok(grey_kv_sequence_length(good.get(), seq, &length)) && length == 10,
          "the layer written again with finite values: committed");
    grey_buffer_destroy(input);
    grey_kv_attend_params params = GREY_KV_ATTEND_PARAMS_INIT;
    params.query_heads = 3;
    std::vector<float> q(3 * 64, 0.1f), out(3 * 64);
    check(grey_kv_attend(good.get(), &params, &seq, 1, q.data(), out.data(), q.size() * 4) == GREY_ERROR_INVALID_ARGUMENT,
          "query_heads 3 over 2 KV heads: GREY_ERROR_INVALID_ARGUMENT");
    params.query_heads = 2;
    std::vector<float> q2(2 * 64, 0.1f), out2(2 * 64);
    check(ok(grey_kv_attend(good.get(), &params, &seq, 1, q2.data(), out2.data(), q2.size() * 4)) && std::fabs(out2[0] - 0.5f) < 1e-3f,
          "the cache still answers after the refusals");
}

}  // namespace

int main(int argc, char** argv) {
    return gpu_check::run(argc, argv, "kv conformance", false,
                          [](grey_context* context, uint32_t gpu, const grey_device_spec&, const gpu_check::Options& options, std::mt19937_64& rng) {
                              const uint32_t host = host_device(context);
                              bad_input(context, gpu);
                              std::vector<Case> cases;
                              const grey_kv_format formats[] = {GREY_KV_INT8, GREY_KV_INT4, GREY_KV_INT2, GREY_KV_FP8_E4M3};
                              for (const auto format : formats) {
                                  cases.push_back({2, 2, 128, 16, 32, 32, format, 4, {300, 1, 17, 77}, 0});
                                  if (options.quick) continue;
                                  cases.push_back({1, 2, 64, 64, 16, 64, format, 1, {1000, 130, 64}, 0});
                                  cases.push_back({1, 1, 80, 32, 0, 128, format, 8, {700, 33}, 100});
                                  cases.push_back({2, 2, 256, 16, 128, 32, format, 4, {400, 200}, 0});
                                  cases.push_back({1, 4, 96, 16, GREY_KV_WINDOW_ALL, 32, format, 2, {150, 3}, 0});
                                  cases.push_back({1, 2, 128, 128, 128, 128, format, 8, {3000, 2500, 1}, 1000});
                              }
                              // K rotated (GREY_KV_HADAMARD_K): every power-of-two head_dim the kernels take
                              // (16 .. 256: a warp's registers hold 1 .. 8 values a lane), stored bits and
                              // attention against the host.
                              for (const auto format : formats) {
                                  cases.push_back({2, 2, 128, 16, 32, 32, format, 4, {300, 1, 17, 77}, 0, GREY_KV_HADAMARD_K});
                                  if (options.quick) continue;
                                  cases.push_back({1, 2, 16, 64, 16, 32, format, 1, {500, 130}, 0, GREY_KV_HADAMARD_K});
                                  cases.push_back({1, 1, 32, 32, 0, 32, format, 8, {700, 33}, 100, GREY_KV_HADAMARD_K});
                                  cases.push_back({1, 2, 64, 64, 16, 64, format, 2, {1000, 64, 1}, 0, GREY_KV_HADAMARD_K});
                                  cases.push_back({2, 2, 256, 16, 128, 32, format, 4, {400, 200}, 0, GREY_KV_HADAMARD_K});
                              }
                              if (!options.quick) cases.push_back({1, 1, 64, 64, 128, 32, GREY_KV_INT4, 4, {131072, 5000}, 0});
                              if (!options.quick)
                                  cases.push_back({1, 1, 128, 64, 128, 32, GREY_KV_INT2, 8, {32768, 7}, 0, GREY_KV_HADAMARD_K});
                              for (const Case& c : cases) run_case(context, gpu, host, c, rng);
                          });
}
