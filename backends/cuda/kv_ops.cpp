#include "cuda/kv_ops.hpp"

#include "cuda/kv_args.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace grey::cuda {
namespace {

constexpr unsigned int kThreads = 256;

// Copies `values` into device scratch memory, which the caller keeps until the work that reads it is done.
template <typename T>
CUdeviceptr upload(DeviceRuntime& device, PoolScratch& scratch, std::span<const T> values) {
    device.copy_to_device_async(scratch.get(), values.data(), values.size_bytes());
    return scratch.get();
}

unsigned int blocks_for(uint64_t threads) {
    return static_cast<unsigned int>(std::clamp<uint64_t>((threads + kThreads - 1) / kThreads, 1, 65535));
}

// log2 of the smallest power of two >= n (n in 1..8).
int log2_ceiling(uint32_t n) {
    int log = 0;
    while ((1u << log) < n) ++log;
    return log;
}

}  // namespace

void kv_check_layout(const common::KvLayout& l, uint32_t query_heads) {
    if (l.head_dim % GREY_KVK_HEAD_DIM_STEP != 0 || l.head_dim > GREY_KVK_MAX_HEAD_DIM)
        throw std::domain_error("the KV cache kernels take head_dim a multiple of " + std::to_string(GREY_KVK_HEAD_DIM_STEP) + " up to " +
                                std::to_string(GREY_KVK_MAX_HEAD_DIM) + ", not " + std::to_string(l.head_dim));
    // The kernels address a block's bits in 32 bits.
    if (common::kv_dense_block_bytes(l) >= (uint64_t{1} << 29))
        throw std::domain_error("a KV block of " + std::to_string(common::kv_dense_block_bytes(l)) +
                                " bytes is larger than the CUDA kernels address (512 MiB): lower tokens_per_block");
    if (query_heads == 0 || query_heads % l.kv_heads != 0)
        throw std::invalid_argument("query_heads " + std::to_string(query_heads) + " is not a multiple of kv_heads " + std::to_string(l.kv_heads));
}

void kv_store(DeviceRuntime& device, const common::KvLayout& layout, uint32_t layer_first, uint32_t layer_count, CUdeviceptr keys,
              CUdeviceptr values, std::span<const CUdeviceptr> blocks, std::span<const uint32_t> slots) {
    if (blocks.empty()) return;
    device.exclusive([&] {
        PoolScratch block_table(device.pool(), blocks.size_bytes()), slot_table(device.pool(), slots.size_bytes());
        grey_kvk_store_args args{};
        args.layout = layout;
        args.keys = keys;
        args.values = values;
        args.blocks = upload(device, block_table, blocks);
        args.slots = upload(device, slot_table, slots);
        args.tokens = static_cast<uint32_t>(blocks.size());
        args.layer_first = layer_first;
        args.layer_count = layer_count;
        void* params[] = {&args};
        const uint64_t elements = uint64_t{layer_count} * blocks.size() * layout.kv_heads * layout.head_dim;
        device.launch(device.kv_kernels().store, blocks_for(elements), kThreads, 0, params);
        device.finish();
    });
}

void kv_compress(DeviceRuntime& device, const common::KvLayout& layout, std::span<const CUdeviceptr> sources,
                 std::span<const CUdeviceptr> destinations) {
    if (sources.empty()) return;
    device.exclusive([&] {
        PoolScratch from(device.pool(), sources.size_bytes()), to(device.pool(), destinations.size_bytes());
        grey_kvk_compress_args args{};
        args.layout = layout;
        args.sources = upload(device, from, sources);
        args.destinations = upload(device, to, destinations);
        args.count = static_cast<uint32_t>(sources.size());
        void* params[] = {&args};
        const unsigned int per_job = static_cast<unsigned int>(std::min<size_t>(sources.size(), 65535));
        const KvKernels& k = device.kv_kernels();
        const uint64_t param_count = common::kv_k_param_count(layout) + common::kv_v_param_count(layout);
        device.launch(k.params, Grid{blocks_for(param_count), per_job, 1}, kThreads, 0, params);
        device.launch(k.codes, Grid{blocks_for(2 * common::kv_half_code_bytes(layout)), per_job, 1}, kThreads, 0, params);
        device.finish();
    });
}

void kv_attend(DeviceRuntime& device, const common::KvLayout& layout, const KvAttendTables& tables, uint32_t layer,
               uint32_t query_heads, float scale, CUdeviceptr queries, CUdeviceptr output) {
    kv_check_layout(layout, query_heads);
    const size_t batch = tables.first.size();
    if (batch == 0) return;
    const uint32_t dim = layout.head_dim;
    const uint32_t group = query_heads / layout.kv_heads;
    const uint32_t per_block_heads = std::min<uint32_t>(group, GREY_KVK_MAX_QUERY_GROUP);
    const int gc_log = log2_ceiling(per_block_heads);
    const int cpl_log = log2_ceiling((dim + 31) / 32);
    const uint32_t gc = 1u << gc_log;
    const uint32_t group_chunks = (group + gc - 1) / gc;

    std::vector<grey_kvk_sequence> sequences(batch);
    uint64_t longest = 1;
    for (size_t b = 0; b < batch; ++b) {
        sequences[b] = {tables.first[b], tables.last[b], tables.table_offsets[b]};
        const uint64_t blocks = (tables.last[b] + layout.tokens_per_block - 1) / layout.tokens_per_block - tables.first[b] / layout.tokens_per_block;
        longest = std::max(longest, blocks);
    }
    const uint64_t pairs = batch * layout.kv_heads * group_chunks;
    constexpr uint32_t warps = GREY_KVK_ATTEND_WARPS;
    const auto shared = static_cast<unsigned int>(sizeof(float) * (dim * gc * (1 + warps) + warps * 32 * gc + 256 + warps * gc * 2));

    device.exclusive([&] {
        const KvKernels& k = device.kv_kernels();
        const CUfunction split_kernel = k.attend_split[cpl_log][gc_log];
        // One wave: as many thread blocks as fit on the device at once, shared out along the sequences
        // (a second, partial wave would leave most of the device idle while it runs).
        const uint64_t resident = device.resident_blocks(split_kernel, warps * 32, shared);
        const auto splits = static_cast<uint32_t>(std::clamp<uint64_t>(resident / pairs, 1, std::min<uint64_t>(longest, 1024)));
        PoolScratch sequence_table(device.pool(), sequences.size() * sizeof(grey_kvk_sequence));
        PoolScratch block_table(device.pool(), tables.blocks.size_bytes());
        PoolScratch partials(device.pool(), batch * query_heads * uint64_t{splits} * (dim + 2) * sizeof(float));
        grey_kvk_attend_args args{};
        args.layout = layout;
        args.sequences = upload(device, sequence_table, std::span<const grey_kvk_sequence>(sequences));
        args.blocks = upload(device, block_table, tables.blocks);
        args.queries = queries;
        args.output = output;
        args.partials = partials.get();
        args.layer = layer;
        args.query_heads = query_heads;
        args.group = group;
        args.group_chunks = group_chunks;
        args.splits = splits;
        args.scale_log2 = scale * 1.4426950408889634f;
        void* params[] = {&args};
        device.launch(split_kernel, Grid{splits, layout.kv_heads * group_chunks, static_cast<unsigned int>(batch)},
                      warps * 32, shared, params);
        device.launch(k.combine, Grid{static_cast<unsigned int>(batch * query_heads), 1, 1}, (dim + 31) / 32 * 32, 0, params);
        device.finish();
    });
}

}  // namespace grey::cuda
