#include "common/kv_plan.hpp"

#include "common/kv_store_job.hpp"

#include <stdexcept>
#include <string>

namespace grey::backend::kv {

namespace {

constexpr const char* kNames[kKernelCount] = {
    "grey_kv_store",           "grey_kv_compress",        "grey_kv_compress_warps",  "grey_kv_attend_combine",
    "grey_kv_attend_split_1_1", "grey_kv_attend_split_1_2", "grey_kv_attend_split_1_4", "grey_kv_attend_split_1_8",
    "grey_kv_attend_split_2_1", "grey_kv_attend_split_2_2", "grey_kv_attend_split_2_4", "grey_kv_attend_split_2_8",
    "grey_kv_attend_split_4_1", "grey_kv_attend_split_4_2", "grey_kv_attend_split_4_4", "grey_kv_attend_split_4_8",
    "grey_kv_attend_split_8_1", "grey_kv_attend_split_8_2", "grey_kv_attend_split_8_4", "grey_kv_attend_split_8_8"};
constexpr const char* kMmaNames[kMmaKernelCount] = {"grey_kv_attend_mma_4_1", "grey_kv_attend_mma_4_2", "grey_kv_attend_mma_4_4",
                                                    "grey_kv_attend_mma_8_1", "grey_kv_attend_mma_8_2", "grey_kv_attend_mma_8_4"};

// Thread blocks for `threads` threads of kThreads each: at least one, at most 65535 (the kernels loop).
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

Kernel split_kernel(int cpl_log, int gc_log) {
    if (cpl_log < 0 || cpl_log > 3 || gc_log < 0 || gc_log > 3) throw std::logic_error("no KV attention kernel of that shape");
    return static_cast<Kernel>(kFirstSplit + static_cast<size_t>(cpl_log) * 4 + static_cast<size_t>(gc_log));
}

Kernel mma_kernel(int ks_log, int gc_log) {
    if (ks_log < 0 || ks_log > 1 || gc_log < 0 || gc_log > 2) throw std::logic_error("no tensor-core KV attention kernel of that shape");
    return static_cast<Kernel>(kFirstMma + static_cast<size_t>(ks_log) * 3 + static_cast<size_t>(gc_log));
}

StoreInput store_input(const grey_backend_kv_store_job& job, uint64_t keys, uint64_t values) {
    static_assert(GREY_KVK_F32 == 0 && GREY_KVK_F16 == 1 && GREY_KVK_BF16 == 2, "kv_store_dtype_code's codes");
    const KvStoreExtras extras = kv_store_extras(job);
    return {job.layer_first, job.layer_count, keys, values, extras.dtype, extras.first_non_finite};
}

const char* kernel_name(Kernel kernel) {
    const auto index = static_cast<size_t>(kernel);
    return index < kKernelCount ? kNames[index] : kMmaNames[index - kFirstMma];
}

void check_layout(const common::KvLayout& l, uint32_t query_heads, const char* vendor) {
    if (l.head_dim % GREY_KVK_HEAD_DIM_STEP != 0 || l.head_dim > GREY_KVK_MAX_HEAD_DIM)
        throw std::domain_error("the KV cache kernels take head_dim a multiple of " + std::to_string(GREY_KVK_HEAD_DIM_STEP) + " up to " +
                                std::to_string(GREY_KVK_MAX_HEAD_DIM) + ", not " + std::to_string(l.head_dim));
    // The kernels address a block's bits in 32 bits.
    if (common::kv_dense_block_bytes(l) >= (uint64_t{1} << 29))
        throw std::domain_error("a KV block of " + std::to_string(common::kv_dense_block_bytes(l)) + " bytes is larger than the " + vendor +
                                " kernels address (512 MiB): lower tokens_per_block");
    if (query_heads == 0 || query_heads % l.kv_heads != 0)
        throw std::invalid_argument("query_heads " + std::to_string(query_heads) + " is not a multiple of kv_heads " + std::to_string(l.kv_heads));
}

Launch store_launch(const grey_kvk_store_args& args) {
    const uint64_t elements = uint64_t{args.layer_count} * args.tokens * args.layout.kv_heads * args.layout.head_dim;
    return {Kernel::store, {blocks_for(grey_kvk_store_takes_chunks(&args) ? elements / GREY_KVK_CHUNK : elements), 1, 1}, kThreads, 0};
}

bool compress_staged(const common::KvLayout& layout, uint64_t limit) {
    return grey_kvk_compress_slice_bytes(&layout) <= std::min(limit, kCompressStagingMost);
}

bool compress_by_warps(const common::KvLayout& layout) { return layout.tokens_per_block <= kCompressWarpsMostRows; }

Launch compress_launch(const common::KvLayout& layout, size_t count, bool staged, uint64_t resident) {
    if (!grey_kvk_compress_takes(&layout))
        throw std::domain_error("the KV compression kernel takes head_dim a multiple of " + std::to_string(GREY_KVK_CHUNK) + " up to " +
                                std::to_string(GREY_KVK_COMPRESS_MAX_HEAD_DIM) + ", not " + std::to_string(layout.head_dim));
    if (compress_by_warps(layout)) {
        constexpr uint64_t warps = uint64_t{GREY_KVK_COMPRESS_THREADS} / GREY_KVK_WARP_LANES;
        const uint64_t units = uint64_t{layout.layers} * layout.kv_heads * 2 * count;
        return {Kernel::compress_warps, {static_cast<unsigned int>(std::clamp<uint64_t>((units + warps - 1) / warps, 1, kCompressGridMost)), 1, 1},
                GREY_KVK_COMPRESS_THREADS, 0};
    }
    const uint64_t pairs = uint64_t{layout.layers} * layout.kv_heads * count;
    const uint64_t most = staged ? std::max<uint64_t>(resident, 1) : kCompressGridMost;
    const auto shared = static_cast<unsigned int>(staged ? grey_kvk_compress_slice_bytes(&layout) : 0);
    return {Kernel::compress, {static_cast<unsigned int>(std::clamp<uint64_t>(pairs, 1, most)), 1, 1}, GREY_KVK_COMPRESS_THREADS, shared};
}

AttendShape attend_shape(const common::KvLayout& layout, const AttendTables& tables, uint32_t query_heads, bool tensor_cores) {
    const size_t batch = tables.first.size();
    const uint32_t dim = layout.head_dim;
    AttendShape s;
    s.group = query_heads / layout.kv_heads;
    // The tensor-core kernel stages quantized blocks and reads window-form ones in place, which is slower
    // than the SIMT kernel on them: it takes jobs whose blocks are mostly quantized.
    const auto quantized = static_cast<size_t>(std::count_if(tables.blocks.begin(), tables.blocks.end(), [](uint64_t b) { return (b & 1u) != 0; }));
    s.tensor_cores = tensor_cores && dim <= GREY_KVK_MMA_MAX_HEAD_DIM && 2 * quantized >= tables.blocks.size();
    const uint32_t per_block_heads = std::min<uint32_t>(s.group, s.tensor_cores ? uint32_t{GREY_KVK_MMA_MAX_QUERY_GROUP} : uint32_t{GREY_KVK_MAX_QUERY_GROUP});
    s.gc_log = log2_ceiling(per_block_heads);
    s.cpl_log = log2_ceiling((dim + GREY_KVK_WARP_LANES - 1) / GREY_KVK_WARP_LANES);
    const uint32_t gc = 1u << s.gc_log;
    s.group_chunks = (s.group + gc - 1) / gc;
    s.sequences.resize(batch);
    for (size_t b = 0; b < batch; ++b) {
        s.sequences[b] = {tables.first[b], tables.last[b], tables.table_offsets[b]};
        const uint64_t blocks = (tables.last[b] + layout.tokens_per_block - 1) / layout.tokens_per_block - tables.first[b] / layout.tokens_per_block;
        s.longest = std::max(s.longest, blocks);
    }
    s.pairs = batch * layout.kv_heads * s.group_chunks;
    constexpr uint32_t warps = GREY_KVK_ATTEND_WARPS, lanes = GREY_KVK_WARP_LANES;
    if (s.tensor_cores) {
        s.ks_log = grey_kvk_mma_k_steps(dim) == 4 ? 0 : 1;
        s.stages = GREY_KVK_MMA_STAGES;
        s.shared_bytes = grey_kvk_mma_shared_layout(&layout, gc, s.stages).total;
        return s;
    }
    // kv_cache.cu's attend_split: the queries and each warp's [dim][gc] scratch, each warp's softmax
    // weights ([lanes][gc]), the fp8 table, and each warp's (max, sum) per query head.
    s.shared_bytes = static_cast<unsigned int>(sizeof(float) * (dim * gc * (1 + warps) + warps * lanes * gc + 256 + warps * gc * 2));
    return s;
}

uint32_t attend_splits(const AttendShape& shape, uint64_t resident) {
    return static_cast<uint32_t>(std::clamp<uint64_t>(resident / shape.pairs, 1, std::min<uint64_t>(shape.longest, 1024)));
}

std::array<Launch, 2> attend_launches(const common::KvLayout& layout, const AttendShape& shape, uint32_t splits, uint32_t query_heads) {
    const auto batch = static_cast<unsigned int>(shape.sequences.size());
    const uint32_t lanes = GREY_KVK_WARP_LANES;
    return {Launch{shape.split(), {splits, layout.kv_heads * shape.group_chunks, batch}, AttendShape::split_threads(), shape.shared_bytes},
            // A thread block per (sequence, query head), a thread per channel (whole warps).
            Launch{Kernel::combine, {batch * query_heads, 1, 1}, (layout.head_dim + lanes - 1) / lanes * lanes, 0}};
}

uint64_t attend_partials_bytes(const common::KvLayout& layout, const AttendShape& shape, uint32_t splits, uint32_t query_heads) {
    return shape.sequences.size() * query_heads * uint64_t{splits} * (layout.head_dim + 2) * sizeof(float);
}

AttendScratch attend_scratch(const common::KvLayout& layout, const AttendShape& shape, uint64_t blocks, uint32_t splits, uint32_t query_heads) {
    const auto aligned = [](uint64_t bytes) { return (bytes + 15) / 16 * 16; };
    AttendScratch at;
    at.blocks_at = aligned(shape.sequences.size() * sizeof(grey_kvk_sequence));
    at.partials_at = at.blocks_at + aligned(blocks * sizeof(uint64_t));
    at.bytes = at.partials_at + attend_partials_bytes(layout, shape, splits, query_heads);
    return at;
}

}  // namespace grey::backend::kv
