#include "level0/kv_launch.hpp"

#include "common/kv_store_job.hpp"
#include "level0/launch_shape.hpp"

#include <stdexcept>
#include <string>

namespace grey::level0 {

namespace gc = grey::common;

void kv_check_layout(const gc::KvLayout& l, uint32_t query_heads) {
    const auto refuse = [](const std::string& what) { throw std::domain_error("the Level Zero KV kernels do not take " + what); };
    if (l.layers == 0 || l.kv_heads == 0 || l.head_dim == 0 || l.tokens_per_block == 0)
        refuse("a layout with a zero dimension (layers " + std::to_string(l.layers) + ", kv_heads " + std::to_string(l.kv_heads) + ", head_dim " +
               std::to_string(l.head_dim) + ", tokens_per_block " + std::to_string(l.tokens_per_block) + ")");
    if (l.group_size == 0 || l.group_size > l.head_dim)
        refuse("V groups of " + std::to_string(l.group_size) + " channels in a head_dim of " + std::to_string(l.head_dim));
    if (l.format > gc::kv_fp8_e4m3) refuse("KV format " + std::to_string(l.format) + ", which is not a grey_kv_format");
    if (l.hadamard_k != 0 && !gc::kv_is_power_of_two(l.head_dim))
        refuse("a rotated K (GREY_KV_HADAMARD_K) with head_dim " + std::to_string(l.head_dim) + ", which is not a power of two");
    if (query_heads == 0 || query_heads % l.kv_heads != 0)
        throw std::invalid_argument("query_heads " + std::to_string(query_heads) + " is not a multiple of kv_heads " + std::to_string(l.kv_heads));
}

uint32_t kv_group_count(uint64_t items) { return group_count(items, kKvGroupSize, kKvMaxGroups); }

grey_kvl0_store_args kv_store_args(const gc::KvLayout& layout, uint32_t layer_first, uint32_t layer_count, uint32_t tokens, uint64_t keys,
                                   uint64_t values, uint64_t block_table, uint64_t slot_table, uint64_t rotated, grey_dtype dtype,
                                   uint64_t checks) {
    static_assert(GREY_KVL0_F32 == 0 && GREY_KVL0_F16 == 1 && GREY_KVL0_BF16 == 2, "kv_store_dtype_code's codes");
    grey_kvl0_store_args a{};
    a.dtype = backend::kv_store_dtype_code(dtype);
    a.checks = checks;
    a.layout = layout;
    a.keys = keys;
    a.values = values;
    a.blocks = block_table;
    a.slots = slot_table;
    a.rotated = rotated;
    a.tokens = tokens;
    a.layer_first = layer_first;
    a.layer_count = layer_count;
    return a;
}

uint64_t kv_store_items(const grey_kvl0_store_args& a) { return uint64_t{a.layer_count} * a.tokens * a.layout.kv_heads; }

uint64_t kv_store_rotated_bytes(const gc::KvLayout& layout, uint32_t layer_count, uint32_t tokens) {
    if (layout.hadamard_k == 0) return 0;
    return uint64_t{layer_count} * tokens * layout.kv_heads * layout.head_dim * sizeof(float);
}

uint64_t kv_store_checks_bytes(const grey_kvl0_store_args& a) { return kv_store_items(a) * 2 * sizeof(uint32_t); }

uint64_t kv_store_first_non_finite(const grey_kvl0_store_args& a, std::span<const uint32_t> checks) {
    const uint64_t rows = kv_store_items(a);
    for (int part = 0; part < 2; ++part)
        for (uint64_t r = 0; r < rows; ++r)
            if (const uint32_t channel = checks[2 * r + part]; channel != UINT32_MAX)
                return (part == 0 ? 0 : rows * a.layout.head_dim) + r * a.layout.head_dim + channel;
    return UINT64_MAX;
}

grey_kvl0_compress_args kv_compress_args(const gc::KvLayout& layout, uint32_t count, uint64_t source_table, uint64_t destination_table) {
    grey_kvl0_compress_args a{};
    a.layout = layout;
    a.sources = source_table;
    a.destinations = destination_table;
    a.count = count;
    return a;
}

uint64_t kv_params_items(const grey_kvl0_compress_args& a) {
    const gc::KvLayout& l = a.layout;
    // Every parameter set, and every padding byte before the two code areas.
    const uint64_t padding = gc::kv_k_codes_offset(l) - gc::kv_params_bytes(l) +
                             (gc::kv_v_codes_offset(l) - gc::kv_k_codes_offset(l) - gc::kv_half_code_bytes(l));
    return uint64_t{a.count} * (gc::kv_k_param_count(l) + gc::kv_v_param_count(l) + padding);
}

uint64_t kv_codes_items(const grey_kvl0_compress_args& a) { return uint64_t{a.count} * 2 * gc::kv_half_code_bytes(a.layout); }

std::vector<uint64_t> kv_block_entries(std::span<const uint64_t> addresses, std::span<const uint8_t> quantized) {
    std::vector<uint64_t> entries(addresses.size());
    for (size_t i = 0; i < addresses.size(); ++i) {
        // Pool blocks are aligned far beyond 2 bytes, which leaves bit 0 free for the flag.
        if ((addresses[i] & 1u) != 0) throw std::logic_error("a KV block at an odd device address");
        entries[i] = addresses[i] | (quantized[i] != 0 ? 1u : 0u);
    }
    return entries;
}

std::vector<grey_kvl0_sequence> kv_sequences(std::span<const uint64_t> first, std::span<const uint64_t> last,
                                             std::span<const uint64_t> table_offsets) {
    std::vector<grey_kvl0_sequence> sequences(first.size());
    for (size_t b = 0; b < first.size(); ++b) sequences[b] = {first[b], last[b], table_offsets[b]};
    return sequences;
}

grey_kvl0_attend_args kv_attend_args(const gc::KvLayout& layout, uint32_t batch, uint32_t layer, uint32_t query_heads, float scale,
                                     uint64_t sequence_table, uint64_t block_table, uint64_t queries, uint64_t output, uint64_t rotated) {
    grey_kvl0_attend_args a{};
    a.layout = layout;
    a.sequences = sequence_table;
    a.blocks = block_table;
    a.queries = queries;
    a.output = output;
    a.rotated = rotated;
    a.batch = batch;
    a.layer = layer;
    a.query_heads = query_heads;
    a.group = query_heads / layout.kv_heads;
    a.scale = scale;
    return a;
}

uint64_t kv_attend_items(const grey_kvl0_attend_args& a) { return uint64_t{a.batch} * a.query_heads; }

uint64_t kv_attend_rotated_bytes(const gc::KvLayout& layout, uint32_t batch, uint32_t query_heads) {
    if (layout.hadamard_k == 0) return 0;
    return uint64_t{batch} * query_heads * layout.head_dim * sizeof(float);
}

}  // namespace grey::level0
