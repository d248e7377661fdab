#include "kv/kv_shape.hpp"

#include "core/error.hpp"

#include <string>

namespace grey::kv {
namespace {

void require_range(uint64_t value, uint64_t low, uint64_t high, const char* field) {
    if (value < low || value > high)
        fail(GREY_ERROR_INVALID_ARGUMENT, std::string("config->") + field + " is " + std::to_string(value) + "; it must be " +
                                              std::to_string(low) + ".." + std::to_string(high));
}

}  // namespace

KvShape validated_shape(const grey_kv_cache_config& config) {
    if (config.struct_size < sizeof(grey_kv_cache_config))
        fail(GREY_ERROR_INVALID_ARGUMENT, "config->struct_size is " + std::to_string(config.struct_size) +
                                              "; start from GREY_KV_CACHE_CONFIG_INIT");
    KvShape shape{};
    require_range(config.layers, 1, 4096, "layers");
    require_range(config.kv_heads, 1, 4096, "kv_heads");
    require_range(config.head_dim, 1, 1024, "head_dim");
    shape.layers = config.layers;
    shape.kv_heads = config.kv_heads;
    shape.head_dim = config.head_dim;
    shape.tokens_per_block = config.tokens_per_block == 0 ? 16 : config.tokens_per_block;
    require_range(shape.tokens_per_block, 1, 1024, "tokens_per_block");
    shape.window_tokens = config.window_tokens == 0                    ? 128
                          : config.window_tokens == GREY_KV_WINDOW_ALL ? UINT64_MAX
                                                                       : config.window_tokens;
    if (config.window_dtype != GREY_DTYPE_BF16 && config.window_dtype != GREY_DTYPE_F16)
        fail(GREY_ERROR_INVALID_ARGUMENT, "config->window_dtype must be GREY_DTYPE_BF16 or GREY_DTYPE_F16, not " +
                                              std::to_string(static_cast<int64_t>(config.window_dtype)));
    shape.window_dtype = config.window_dtype;
    shape.window_bf16 = config.window_dtype == GREY_DTYPE_BF16 ? 1u : 0u;
    const auto format = static_cast<uint32_t>(config.format);
    if (format > GREY_KV_FP8_E4M3)
        fail(GREY_ERROR_INVALID_ARGUMENT, "config->format " + std::to_string(format) + " is not a grey_kv_format");
    shape.format = format;
    const uint32_t group = config.group_size == 0 ? 32 : config.group_size;
    if (group != 32 && group != 64 && group != 128)
        fail(GREY_ERROR_INVALID_ARGUMENT, "config->group_size is " + std::to_string(config.group_size) + "; it must be 32, 64 or 128 (or 0)");
    shape.group_size = group < shape.head_dim ? group : shape.head_dim;
    if ((config.flags & ~GREY_KV_HADAMARD_K) != 0)
        fail(GREY_ERROR_INVALID_ARGUMENT, "config->flags holds unknown bits " + std::to_string(config.flags & ~GREY_KV_HADAMARD_K));
    if ((config.flags & GREY_KV_HADAMARD_K) != 0) {
        // The fast Walsh-Hadamard transform is defined for powers of two only.
        if (!common::kv_is_power_of_two(shape.head_dim))
            fail(GREY_ERROR_INVALID_ARGUMENT, "config->flags has GREY_KV_HADAMARD_K, which needs head_dim a power of two, and head_dim is " +
                                                  std::to_string(shape.head_dim));
        shape.hadamard_k = 1;
    }
    shape.capacity_bytes = config.capacity_bytes;
    if (shape.capacity_bytes < common::kv_dense_block_bytes(shape))
        fail(GREY_ERROR_INVALID_ARGUMENT, "config->capacity_bytes is " + std::to_string(config.capacity_bytes) +
                                              "; one block in window form takes " + std::to_string(common::kv_dense_block_bytes(shape)));
    // Quantizing must save memory, or the byte accounting against capacity (checked when a block is
    // added, not when it is quantized) would not hold: per-channel K costs one group per channel.
    if (shape.window_tokens != UINT64_MAX && common::kv_compressed_block_bytes(shape) >= common::kv_dense_block_bytes(shape))
        fail(GREY_ERROR_INVALID_ARGUMENT, "a quantized block would take " + std::to_string(common::kv_compressed_block_bytes(shape)) +
                                              " bytes, no fewer than the " + std::to_string(common::kv_dense_block_bytes(shape)) +
                                              " of its window form: raise tokens_per_block (K has one scale and minimum per channel per block)");
    return shape;
}

}  // namespace grey::kv
