// The C entry points of "KV cache (since 0.2)" in grey.h: argument checks, input conversion to float,
// and the calls into KvCache, each inside abi_guard.
#include "common/dtype.hpp"
#include "core/context.hpp"
#include "core/stream.hpp"
#include "core/error.hpp"
#include "kv/kv_cache.hpp"
#include "memory/async_use.hpp"
#include "memory/buffer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

struct grey_kv_cache {
    grey_kv_cache(grey_context* owner, uint32_t index, const grey::kv::KvShape& shape, const grey::Device& dev)
        : context(owner), device(index), cache(shape, *dev.backend, dev.index_in_backend) {}
    // Where the cache was made (the context, and the device's index in it): buffers given to the cache
    // must be of the same.
    grey_context* context;
    uint32_t device;
    grey::kv::KvCache cache;
};

namespace grey::kv {
namespace {

KvCache& checked(grey_kv_cache* cache) {
    require_non_null(cache, "cache");
    return cache->cache;
}
const KvCache& checked(const grey_kv_cache* cache) {
    require_non_null(cache, "cache");
    return cache->cache;
}

uint64_t checked_product(std::initializer_list<uint64_t> factors, const char* what) {
    uint64_t product = 1;
    for (const uint64_t f : factors)
        if (__builtin_mul_overflow(product, f, &product)) fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + " overflows 64 bits");
    return product;
}

// Host K or V of `dtype` as finite floats.
std::vector<float> finite_floats(const void* data, uint64_t count, grey_dtype dtype, const char* what) {
    std::vector<float> out(count);
    common::float_input_to_f32({static_cast<const std::byte*>(data), count * common::float_input_size(dtype)}, dtype, out);
    if (const auto bad = std::find_if_not(out.begin(), out.end(), [](float x) { return std::isfinite(x); }); bad != out.end())
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + "[" + std::to_string(bad - out.begin()) + "] is not finite (NaN or infinity)");
    return out;
}

// The values each of K and V hold for `layers` x `tokens` tokens, with dtype and kv_bytes checked.
uint64_t checked_kv_values(grey_dtype dtype, uint64_t kv_bytes, uint64_t layers, uint64_t tokens, const KvShape& shape) {
    if (!common::is_float_input(dtype))
        fail(GREY_ERROR_INVALID_ARGUMENT, "dtype must be GREY_DTYPE_F32, F16 or BF16, not " + std::to_string(raw_enum(dtype)));
    const uint64_t count = checked_product({layers, tokens, shape.kv_heads, shape.head_dim}, "the K/V size");
    const uint64_t needed = checked_product({count, common::float_input_size(dtype)}, "the K/V size");
    if (kv_bytes != needed)
        fail(GREY_ERROR_INVALID_ARGUMENT, "kv_bytes is " + std::to_string(kv_bytes) + "; " + std::to_string(tokens) + " tokens of " + std::to_string(layers) +
                                              " layers x " + std::to_string(shape.kv_heads) + " KV heads x head_dim " + std::to_string(shape.head_dim) +
                                              " take " + std::to_string(needed));
    return count;
}

// The tokens a layer write of kv_bytes holds (the size is then checked against the reservation).
uint64_t layer_write_tokens(grey_dtype dtype, uint64_t kv_bytes, const KvShape& shape) {
    const uint64_t row_bytes =
        checked_product({shape.kv_heads, shape.head_dim, common::is_float_input(dtype) ? common::float_input_size(dtype) : 1}, "a token's K");
    if (kv_bytes % row_bytes != 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, "kv_bytes is " + std::to_string(kv_bytes) + ", not a whole number of tokens of " + std::to_string(row_bytes) +
                                              " bytes (kv_heads x head_dim values)");
    return kv_bytes / row_bytes;
}

// Host K and V of `layers` x `tokens` tokens, checked (dtype, size, finite values) and converted to float.
std::pair<std::vector<float>, std::vector<float>> checked_kv(const void* keys, const void* values, grey_dtype dtype, uint64_t kv_bytes,
                                                             uint64_t layers, uint64_t tokens, const KvShape& shape) {
    require_non_null(keys, "keys");
    require_non_null(values, "values");
    const uint64_t count = checked_kv_values(dtype, kv_bytes, layers, tokens, shape);
    return {finite_floats(keys, count, dtype, "keys"), finite_floats(values, count, dtype, "values")};
}

// The checks both attend calls make; returns how many F32 values the queries (and the output) hold.
uint64_t checked_attend(const KvShape& shape, const grey_kv_attend_params* params, const uint64_t* sequences, uint32_t batch,
                        uint64_t io_bytes) {
    require_non_null(params, "params");
    require_non_null(sequences, "sequences");
    if (params->struct_size < sizeof(grey_kv_attend_params))
        fail(GREY_ERROR_INVALID_ARGUMENT, "params->struct_size is " + std::to_string(params->struct_size) + "; start from GREY_KV_ATTEND_PARAMS_INIT");
    if (batch == 0) fail(GREY_ERROR_INVALID_ARGUMENT, "batch is 0: attend for at least one sequence");
    if (params->layer >= shape.layers)
        fail(GREY_ERROR_INVALID_ARGUMENT, "params->layer is " + std::to_string(params->layer) + "; the cache has " + std::to_string(shape.layers) + " layers");
    if (params->query_heads == 0 || params->query_heads % shape.kv_heads != 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, "params->query_heads is " + std::to_string(params->query_heads) + "; it must be a non-zero multiple of the cache's " +
                                              std::to_string(shape.kv_heads) + " KV heads");
    if (!std::isfinite(params->scale) || params->scale < 0.0f)
        fail(GREY_ERROR_INVALID_ARGUMENT, "params->scale must be finite and >= 0 (0 means 1/sqrt(head_dim))");
    if (params->reserved0 != 0) fail(GREY_ERROR_INVALID_ARGUMENT, "params->reserved0 must be 0");
    const uint64_t count = checked_product({batch, params->query_heads, shape.head_dim}, "the query size");
    const uint64_t needed = checked_product({count, 4}, "the query size");
    if (io_bytes != needed)
        fail(GREY_ERROR_INVALID_ARGUMENT, "io_bytes is " + std::to_string(io_bytes) + "; " + std::to_string(batch) + " x " +
                                              std::to_string(params->query_heads) + " query heads x head_dim " + std::to_string(shape.head_dim) +
                                              " F32 take " + std::to_string(needed));
    return count;
}

// A buffer given to the cache: of its context and device, `bytes` at `offset` inside it, the offset a
// multiple of the size of the `dtype` values it holds.
void check_cache_buffer(const grey_kv_cache& cache, const grey_buffer& buffer, uint64_t offset, uint64_t bytes, grey_dtype dtype, const char* what) {
    if (buffer.context != cache.context)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + " is a buffer of another context than the cache's");
    if (buffer.device != cache.device)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + " is on device " + std::to_string(buffer.device) + "; the cache is on device " +
                                              std::to_string(cache.device));
    check_range(buffer, offset, bytes, what);
    if (const uint32_t size = common::float_input_size(dtype); offset % size != 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string(what) + ": offset " + std::to_string(offset) + " is not a multiple of " + std::to_string(size) + " (" +
                                              common::dtype_name(dtype) + " values are read aligned)");
}

// K and V in buffers given to the cache (kv_bytes each, dtype already checked), raw, as the backend reads them.
KvInput checked_input(const grey_kv_cache& cache, grey_dtype dtype, const grey_buffer* keys, uint64_t keys_offset, const grey_buffer* values,
                      uint64_t values_offset, uint64_t kv_bytes) {
    require_non_null(keys, "keys");
    require_non_null(values, "values");
    check_cache_buffer(cache, *keys, keys_offset, kv_bytes, dtype, "keys");
    check_cache_buffer(cache, *values, values_offset, kv_bytes, dtype, "values");
    return {{raw_handle(*keys, "keys"), nullptr, keys_offset, kv_bytes}, {raw_handle(*values, "values"), nullptr, values_offset, kv_bytes}, dtype};
}

// The checks of the attend calls with the queries and the output in buffers.
void check_attend_buffers(const grey_kv_cache& cache, const grey_kv_attend_params* params, const uint64_t* sequences, uint32_t batch,
                          const grey_buffer* queries, uint64_t queries_offset, const grey_buffer* output, uint64_t output_offset,
                          uint64_t io_bytes) {
    (void)checked_attend(cache.cache.shape(), params, sequences, batch, io_bytes);
    require_non_null(queries, "queries");
    require_non_null(output, "output");
    check_cache_buffer(cache, *queries, queries_offset, io_bytes, GREY_DTYPE_F32, "queries");
    check_cache_buffer(cache, *output, output_offset, io_bytes, GREY_DTYPE_F32, "output");
    check_writable(*output, "output");
    if (ranges_overlap(*queries, queries_offset, *output, output_offset, io_bytes))
        fail(GREY_ERROR_INVALID_ARGUMENT, "queries and output overlap in one buffer");
}

// The backend's view of the queries and the output, once their buffers are held in place (the queries
// checked raw again under that guard).
std::pair<grey_backend_memory, grey_backend_memory> attend_memory(const grey_buffer* queries, uint64_t queries_offset, const grey_buffer* output,
                                                                  uint64_t output_offset, uint64_t io_bytes) {
    return {grey_backend_memory{raw_handle(*queries, "queries"), nullptr, queries_offset, io_bytes},
            grey_backend_memory{output->handle, nullptr, output_offset, io_bytes}};
}

}  // namespace
}  // namespace grey::kv

extern "C" {

grey_status grey_kv_cache_create(grey_context* context, uint32_t device, const grey_kv_cache_config* config, grey_kv_cache** out_cache) {
    return grey::abi_guard([&] {
        grey::require_non_null(context, "context");
        grey::require_non_null(config, "config");
        grey::require_non_null(out_cache, "out_cache");
        const grey::kv::KvShape shape = grey::kv::validated_shape(*config);
        const grey::Device& dev = context->device(device);
        if (!dev.backend->has_kv())
            grey::fail(GREY_ERROR_UNSUPPORTED, "device " + std::to_string(device) + " is on the " + dev.backend->name() +
                                                   " backend, which has no KV cache operations; create the cache on a device of another backend");
        if (shape.hadamard_k != 0 && !dev.backend->has(GREY_BACKEND_CAP_KV_HADAMARD_K))
            grey::fail(GREY_ERROR_UNSUPPORTED, "config->flags has GREY_KV_HADAMARD_K, which the " + dev.backend->name() +
                                                   " backend of device " + std::to_string(device) + " does not implement");
        *out_cache = std::make_unique<grey_kv_cache>(context, device, shape, dev).release();
    });
}

void grey_kv_cache_destroy(grey_kv_cache* cache) { delete cache; }

grey_status grey_kv_sequence_create(grey_kv_cache* cache, uint64_t tenant_salt, uint64_t* out_sequence) {
    return grey::abi_guard([&] {
        auto& kv = grey::kv::checked(cache);
        grey::require_non_null(out_sequence, "out_sequence");
        *out_sequence = kv.create_sequence(tenant_salt);
    });
}

grey_status grey_kv_sequence_fork(grey_kv_cache* cache, uint64_t sequence, uint64_t* out_sequence) {
    return grey::abi_guard([&] {
        auto& kv = grey::kv::checked(cache);
        grey::require_non_null(out_sequence, "out_sequence");
        *out_sequence = kv.fork(sequence);
    });
}

grey_status grey_kv_sequence_truncate(grey_kv_cache* cache, uint64_t sequence, uint64_t tokens) {
    return grey::abi_guard([&] { grey::kv::checked(cache).truncate(sequence, tokens); });
}

grey_status grey_kv_sequence_free(grey_kv_cache* cache, uint64_t sequence) {
    return grey::abi_guard([&] { grey::kv::checked(cache).free_sequence(sequence); });
}

grey_status grey_kv_sequence_length(const grey_kv_cache* cache, uint64_t sequence, uint64_t* out_tokens) {
    return grey::abi_guard([&] {
        const auto& kv = grey::kv::checked(cache);
        grey::require_non_null(out_tokens, "out_tokens");
        *out_tokens = kv.length(sequence);
    });
}

grey_status grey_kv_append(grey_kv_cache* cache, uint64_t sequence, const int32_t* token_ids, uint32_t n_tokens, grey_dtype dtype,
                           const void* keys, const void* values, uint64_t kv_bytes) {
    return grey::abi_guard([&] {
        auto& kv = grey::kv::checked(cache);
        grey::require_non_null(token_ids, "token_ids");
        if (n_tokens == 0) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "n_tokens is 0: append at least one token");
        const auto& shape = kv.shape();
        const auto [k, v] = grey::kv::checked_kv(keys, values, dtype, kv_bytes, shape.layers, n_tokens, shape);
        kv.append(sequence, std::span(token_ids, n_tokens), k, v);
    });
}

grey_status grey_kv_append_buffer(grey_kv_cache* cache, uint64_t sequence, const int32_t* token_ids, uint32_t n_tokens, grey_dtype dtype,
                                  const grey_buffer* keys, uint64_t keys_offset, const grey_buffer* values, uint64_t values_offset,
                                  uint64_t kv_bytes) {
    return grey::abi_guard([&] {
        auto& kv = grey::kv::checked(cache);
        grey::require_non_null(token_ids, "token_ids");
        if (n_tokens == 0) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "n_tokens is 0: append at least one token");
        const auto& shape = kv.shape();
        (void)grey::kv::checked_kv_values(dtype, kv_bytes, shape.layers, n_tokens, shape);
        const grey::kv::KvInput input = grey::kv::checked_input(*cache, dtype, keys, keys_offset, values, values_offset, kv_bytes);
        // The buffers stay where they are for the call (the background scan moves sealed ones).
        grey::memory::AsyncUse use({keys, values});
        kv.append(sequence, std::span(token_ids, n_tokens), input);
    });
}

grey_status grey_kv_reserve(grey_kv_cache* cache, uint64_t sequence, const int32_t* token_ids, uint32_t n_tokens, uint32_t* out_cached_tokens) {
    return grey::abi_guard([&] {
        auto& kv = grey::kv::checked(cache);
        grey::require_non_null(token_ids, "token_ids");
        if (n_tokens == 0) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "n_tokens is 0: reserve at least one token");
        const uint64_t cached = kv.reserve(sequence, std::span(token_ids, n_tokens));
        if (out_cached_tokens != nullptr) *out_cached_tokens = static_cast<uint32_t>(cached);
    });
}

grey_status grey_kv_write_layer(grey_kv_cache* cache, uint64_t sequence, uint32_t layer, grey_dtype dtype, const void* keys,
                                const void* values, uint64_t kv_bytes) {
    return grey::abi_guard([&] {
        auto& kv = grey::kv::checked(cache);
        const auto& shape = kv.shape();
        const uint64_t tokens = grey::kv::layer_write_tokens(dtype, kv_bytes, shape);
        const auto [k, v] = grey::kv::checked_kv(keys, values, dtype, kv_bytes, 1, tokens, shape);
        kv.write_layer(sequence, layer, k, v);
    });
}

grey_status grey_kv_write_layer_buffer(grey_kv_cache* cache, uint64_t sequence, uint32_t layer, grey_dtype dtype, const grey_buffer* keys,
                                       uint64_t keys_offset, const grey_buffer* values, uint64_t values_offset, uint64_t kv_bytes) {
    return grey::abi_guard([&] {
        auto& kv = grey::kv::checked(cache);
        const auto& shape = kv.shape();
        (void)grey::kv::checked_kv_values(dtype, kv_bytes, 1, grey::kv::layer_write_tokens(dtype, kv_bytes, shape), shape);
        const grey::kv::KvInput input = grey::kv::checked_input(*cache, dtype, keys, keys_offset, values, values_offset, kv_bytes);
        grey::memory::AsyncUse use({keys, values});
        kv.write_layer(sequence, layer, input);
    });
}

grey_status grey_kv_attend(grey_kv_cache* cache, const grey_kv_attend_params* params, const uint64_t* sequences, uint32_t batch,
                           const float* queries, float* output, uint64_t io_bytes) {
    return grey::abi_guard([&] {
        auto& kv = grey::kv::checked(cache);
        const uint64_t count = grey::kv::checked_attend(kv.shape(), params, sequences, batch, io_bytes);
        grey::require_non_null(queries, "queries");
        grey::require_non_null(output, "output");
        std::vector<float> result(count);
        kv.attend(*params, std::span(sequences, batch), std::span(queries, count), result);
        std::memcpy(output, result.data(), io_bytes);
    });
}

grey_status grey_kv_attend_buffer(grey_kv_cache* cache, const grey_kv_attend_params* params, const uint64_t* sequences, uint32_t batch,
                                  const grey_buffer* queries, uint64_t queries_offset, grey_buffer* output, uint64_t output_offset,
                                  uint64_t io_bytes) {
    return grey::abi_guard([&] {
        auto& kv = grey::kv::checked(cache);
        grey::kv::check_attend_buffers(*cache, params, sequences, batch, queries, queries_offset, output, output_offset, io_bytes);
        // The buffers stay where they are for the call (the background scan moves sealed ones).
        grey::memory::AsyncUse use({queries, output});
        const auto [from, to] = grey::kv::attend_memory(queries, queries_offset, output, output_offset, io_bytes);
        kv.attend(*params, std::span(sequences, batch), from, to);
    });
}

grey_status grey_kv_attend_async(grey_kv_cache* cache, const grey_kv_attend_params* params, const uint64_t* sequences, uint32_t batch,
                                 const grey_buffer* queries, uint64_t queries_offset, grey_buffer* output, uint64_t output_offset,
                                 uint64_t io_bytes, grey_stream* stream) {
    return grey::abi_guard([&] {
        auto& kv = grey::kv::checked(cache);
        grey::kv::check_attend_buffers(*cache, params, sequences, batch, queries, queries_offset, output, output_offset, io_bytes);
        grey_stream& s = grey::stream_for(stream, *queries, "grey_kv_attend_async");
        // The buffers are not moved from here until the work is queued, and then not until it has run.
        grey::memory::AsyncUse use(s, {queries, output});
        const auto [from, to] = grey::kv::attend_memory(queries, queries_offset, output, output_offset, io_bytes);
        const std::span<const uint64_t> batch_sequences(sequences, batch);
        // Queued, the cache's checks of the sequences (unknown, empty) fail the call itself. Run at enqueue
        // instead, a failure would be the stream's: the sequences are checked first then.
        const bool queued = s.handle != nullptr && queries->backend->has_kv_attend_async();
        if (!queued) kv.check_attend(*params, batch_sequences);
        grey::submit(
            s, [&](grey_backend_stream* handle) { kv.attend_async(*params, batch_sequences, from, to, handle); },
            [&] { kv.attend(*params, batch_sequences, from, to); }, queued);
        use.enqueued();
    });
}

grey_status grey_kv_gather(grey_kv_cache* cache, uint64_t sequence, uint32_t layer, float* keys, float* values, uint64_t kv_bytes) {
    return grey::abi_guard([&] {
        auto& kv = grey::kv::checked(cache);
        grey::require_non_null(keys, "keys");
        grey::require_non_null(values, "values");
        if (layer >= kv.shape().layers)
            grey::fail(GREY_ERROR_INVALID_ARGUMENT, "layer is " + std::to_string(layer) + "; the cache has " + std::to_string(kv.shape().layers) + " layers");
        if (kv_bytes % 4 != 0) grey::fail(GREY_ERROR_INVALID_ARGUMENT, "kv_bytes is " + std::to_string(kv_bytes) + ", not a whole number of F32 values");
        kv.gather(sequence, layer, std::span(keys, kv_bytes / 4), std::span(values, kv_bytes / 4));
    });
}

grey_status grey_kv_cache_stats_get(const grey_kv_cache* cache, grey_kv_stats* out_stats) {
    return grey::abi_guard([&] {
        const auto& kv = grey::kv::checked(cache);
        grey::require_non_null(out_stats, "out_stats");
        grey::copy_out_struct(kv.stats(), out_stats, sizeof(grey_kv_stats), "out_stats");
    });
}

}  // extern "C"
