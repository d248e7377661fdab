// What a GPU backend launches for the KV cache's block operations (the kv_store, kv_compress and kv_attend
// slots), decided once for every vendor that runs kernels/cuda/kv_cache.cu (CUDA as it is, HIP through
// kernels/hip/cuda_compat.h): which kernel, the grids, threads and dynamic shared memory, the argument
// blocks of kernels/cuda/kv_args.h, the tables copied to device scratch, and attention's split along the
// sequences. Nothing here names a vendor type: the run_* templates carry a job out through a thin
// per-vendor launcher (cuLaunchKernel, hipModuleLaunchKernel), which alone knows how kernels are found,
// how scratch memory is taken and how many thread blocks fit on its device at once.
#pragma once

#include "common/kv_layout.hpp"
#include "common/kv_store_job.hpp"
#include "cuda/kv_args.h"
#include "grey_backend.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace grey::backend::kv {

// The kernels of kv_cache.cu: four by name, then the sixteen attention variants,
// grey_kv_attend_split_<2^cpl_log>_<2^gc_log> at index kFirstSplit + cpl_log * 4 + gc_log. Every vendor
// has these kKernelCount. CUDA's module has six more after them, the tensor-core attention
// grey_kv_attend_mma_<4 << ks_log>_<2^gc_log> at kFirstMma + ks_log * 3 + gc_log.
enum class Kernel : uint8_t { store, compress, compress_warps, combine };
inline constexpr size_t kFirstSplit = 4;
inline constexpr size_t kKernelCount = kFirstSplit + 16;
inline constexpr size_t kFirstMma = kKernelCount;
inline constexpr size_t kMmaKernelCount = 6;
// The attention variant of 2^cpl_log channels a lane and 2^gc_log query heads a thread block (each 0..3).
Kernel split_kernel(int cpl_log, int gc_log);
// The tensor-core variant for head_dim up to 64 (ks_log 0) or 128 (1) and 2^gc_log query heads (0..2).
Kernel mma_kernel(int ks_log, int gc_log);
const char* kernel_name(Kernel kernel);  // "grey_kv_store", "grey_kv_attend_split_4_8", "grey_kv_attend_mma_8_4"

// Threads of a block of every kernel but attention's.
inline constexpr unsigned int kThreads = 256;

struct Grid {
    unsigned int x = 1, y = 1, z = 1;
};

struct Launch {
    Kernel kernel = Kernel::store;
    Grid grid;
    unsigned int threads = 0;
    unsigned int shared_bytes = 0;
};

// Throws std::domain_error naming what the attention kernels do not take (head_dim, a block too large
// for their 32-bit bit offsets; `vendor` names the kernels in the message: "CUDA", "HIP"), and
// std::invalid_argument when query_heads is not a multiple of kv_heads.
void check_layout(const common::KvLayout& layout, uint32_t query_heads, const char* vendor);

// grey_kv_store: a thread per element, or per chunk where grey_kvk_store_takes_chunks(args), in a
// grid-stride loop.
Launch store_launch(const grey_kvk_store_args& args);
// Whether grey_kv_compress stages each slice in shared memory (grey_kvk_compress_args::staged) where a
// thread block may take `limit` bytes of dynamic shared memory: where a slice fits, up to
// kCompressStagingMost bytes (a slice of 64 rows of head_dim 256): with the kernel's static shared memory
// that is 88 KiB a thread block, two on a multiprocessor of 228 KiB (sm_90), one of 164 KiB (sm_80).
inline constexpr uint64_t kCompressStagingMost = 64 * 1024;
bool compress_staged(const common::KvLayout& layout, uint64_t limit);
// Whether a layout's blocks are compressed by grey_kv_compress_warps (a warp per K or V of a slice): where
// a block holds at most kCompressWarpsMostRows tokens. Measured on an H100 (bench/RESULTS.md): at
// 16-token blocks it takes 40% less time than grey_kv_compress, at 64-token blocks more than twice as
// long (a warp's 16 KiB of a slice is more than it keeps in flight, and a launch has a quarter of the warps).
inline constexpr uint32_t kCompressWarpsMostRows = 16;
bool compress_by_warps(const common::KvLayout& layout);
// The compression of `count` blocks. By warps (compress_by_warps): a warp for each of the job's (block,
// slice, K or V) units, eight to a thread block, up to kCompressGridMost thread blocks (whose warps loop
// past the grid). Otherwise grey_kv_compress: a thread block for each of the job's (block, slice) pairs,
// up to the `resident` thread blocks the device holds at once with a slice's shared memory where it
// stages (each then loops over the pairs past the grid), up to kCompressGridMost where it does not.
// Throws std::domain_error for a layout the kernels do not take (check_layout refuses it first).
inline constexpr uint64_t kCompressGridMost = 65535;
Launch compress_launch(const common::KvLayout& layout, size_t count, bool staged, uint64_t resident);

// A job's block tables (grey_backend_kv_attend_job), per sequence.
struct AttendTables {
    std::span<const uint64_t> blocks;  // device addresses, bit 0 set for a quantized block
    std::span<const uint64_t> table_offsets, first, last;
};

// Everything about an attention job that does not depend on the device (fit_stages then asks it).
struct AttendShape {
    uint32_t group = 0;         // query heads per KV head
    uint32_t group_chunks = 0;  // thread blocks per KV head (each takes `gc` query heads)
    bool tensor_cores = false;  // grey_kv_attend_mma (ks_log, gc_log) rather than grey_kv_attend_split (cpl_log, gc_log)
    int cpl_log = 0, ks_log = 0, gc_log = 0;
    uint64_t longest = 1;  // the most blocks a sequence of the batch spans
    uint64_t pairs = 0;    // thread blocks per split: batch x kv_heads x group_chunks
    unsigned int shared_bytes = 0;
    uint32_t stages = 0;  // grey_kv_attend_mma: staging buffers a warp (GREY_KVK_MMA_STAGES until fit_stages)
    std::vector<grey_kvk_sequence> sequences;

    [[nodiscard]] Kernel split() const { return tensor_cores ? mma_kernel(ks_log, gc_log) : split_kernel(cpl_log, gc_log); }
    [[nodiscard]] static constexpr unsigned int split_threads() { return GREY_KVK_ATTEND_WARPS * GREY_KVK_WARP_LANES; }
};
// `tensor_cores`: the vendor has grey_kv_attend_mma (taken for head_dim up to GREY_KVK_MMA_MAX_HEAD_DIM).
AttendShape attend_shape(const common::KvLayout& layout, const AttendTables& tables, uint32_t query_heads, bool tensor_cores = false);
// The tensor-core kernel with GREY_KVK_MMA_FEWER_STAGES staging buffers a warp where that lets more of
// its thread blocks be resident at once: rows of 8 bits at head_dim 128 take about 78 KiB a thread block
// with three buffers, two thread blocks on a multiprocessor of 228 KiB where two buffers leave room for
// three. `resident(shared_bytes)` answers the device's resident thread blocks of the shape's kernel;
// returns that for the shape as fitted.
template <typename Resident>
uint64_t fit_stages(AttendShape& shape, const common::KvLayout& layout, Resident&& resident) {
    const uint64_t most = resident(shape.shared_bytes);
    if (!shape.tensor_cores) return most;
    const uint32_t gc = 1u << shape.gc_log;
    const unsigned int fewer_bytes = grey_kvk_mma_shared_layout(&layout, gc, GREY_KVK_MMA_FEWER_STAGES).total;
    const uint64_t with_fewer = resident(fewer_bytes);
    if (with_fewer <= most) return most;
    shape.stages = GREY_KVK_MMA_FEWER_STAGES;
    shape.shared_bytes = fewer_bytes;
    return with_fewer;
}
// Splits along each sequence: one wave, as many thread blocks as are resident on the device at once
// (`resident`, for the split kernel at its block size and shared memory) shared out along the sequences
// (a second, partial wave would leave most of the device idle while it runs), at most one per block of
// the longest sequence and 1024.
uint32_t attend_splits(const AttendShape& shape, uint64_t resident);
// The split kernel's, then the combining kernel's launch.
std::array<Launch, 2> attend_launches(const common::KvLayout& layout, const AttendShape& shape, uint32_t splits, uint32_t query_heads);
// Bytes of the partial results: [batch][query_heads][splits][head_dim + 2] floats.
uint64_t attend_partials_bytes(const common::KvLayout& layout, const AttendShape& shape, uint32_t splits, uint32_t query_heads);
// An attention job's device memory as one piece: the sequences' table from its start, then the block
// table (`blocks` addresses) at blocks_at, then the partial results at partials_at, 16-byte aligned.
struct AttendScratch {
    uint64_t blocks_at = 0, partials_at = 0, bytes = 0;
};
AttendScratch attend_scratch(const common::KvLayout& layout, const AttendShape& shape, uint64_t blocks, uint32_t splits, uint32_t query_heads);

// --- The jobs, carried out through `vendor`, which provides
//   scratch(bytes) -> S                        device memory kept until S goes (or, for work queued on a
//                                              stream, until the stream has passed it); S::get() its address
//   upload(address, host, bytes)               a copy to the device, ordered before the launches after it
//                                              (the host memory stays the caller's until finish(), or the
//                                              call's end where the vendor stages the copy)
//   download(host, address, bytes)             a copy to the host, ordered after the launches before it,
//                                              done when finish() returns
//   tensor_cores()                             whether grey_kv_attend_mma may be launched
//   compress_staging_limit()                   dynamic shared memory grey_kv_compress may take for
//                                              staging (0: it reads the blocks in place)
//   resident_blocks(Kernel, threads, shared)   thread blocks of the kernel resident on the device at once
//   launch(Kernel, Grid, threads, shared, void** params)
//   finish()                                   waits until the job's work is done (nothing, for work queued
//                                              on a caller's stream)
//   run(body)                                  runs body(); a vendor whose queued work could outlive a
//                                              failure (and the scratch it uses) waits for it there
// and throws what they throw. Scratch is taken before run(), so it is given back only after it.

// What a store reads: the layers, and K and V at device addresses, [layer_count][tokens][kv_heads][head_dim]
// values of `dtype`; with `first_non_finite`, checked as grey_backend_kv_store_job says.
struct StoreInput {
    uint32_t layer_first = 0, layer_count = 0;
    uint64_t keys = 0, values = 0;
    grey_dtype dtype = GREY_DTYPE_F32;
    uint64_t* first_non_finite = nullptr;
};
// A kv_store job's input at the device addresses `keys` and `values` (the members a runtime older than
// dtype and first_non_finite leaves out read as F32, checked).
StoreInput store_input(const grey_backend_kv_store_job& job, uint64_t keys, uint64_t values);

template <typename Vendor, typename Address>
void run_store(Vendor& vendor, const common::KvLayout& layout, const StoreInput& input, std::span<const Address> blocks,
               std::span<const uint32_t> slots) {
    static_assert(sizeof(Address) == sizeof(uint64_t), "device addresses are 64-bit");
    const uint32_t dtype = kv_store_dtype_code(input.dtype);
    if (input.first_non_finite != nullptr) *input.first_non_finite = UINT64_MAX;
    if (blocks.empty()) return;
    auto block_table = vendor.scratch(blocks.size_bytes());
    auto slot_table = vendor.scratch(slots.size_bytes());
    auto found = vendor.scratch(input.first_non_finite != nullptr ? sizeof(uint64_t) : 0);
    vendor.run([&] {
        grey_kvk_store_args args{};
        args.layout = layout;
        args.keys = input.keys;
        args.values = input.values;
        vendor.upload(block_table.get(), blocks.data(), blocks.size_bytes());
        args.blocks = block_table.get();
        vendor.upload(slot_table.get(), slots.data(), slots.size_bytes());
        args.slots = slot_table.get();
        args.tokens = static_cast<uint32_t>(blocks.size());
        args.layer_first = input.layer_first;
        args.layer_count = input.layer_count;
        args.dtype = dtype;
        if (input.first_non_finite != nullptr) {
            vendor.upload(found.get(), input.first_non_finite, sizeof(uint64_t));
            args.non_finite = found.get();
        }
        void* params[] = {&args};
        const Launch l = store_launch(args);
        vendor.launch(l.kernel, l.grid, l.threads, l.shared_bytes, params);
        if (input.first_non_finite != nullptr) vendor.download(input.first_non_finite, found.get(), sizeof(uint64_t));
        vendor.finish();
    });
}

template <typename Vendor, typename Address>
void run_compress(Vendor& vendor, const common::KvLayout& layout, std::span<const Address> sources, std::span<const Address> destinations) {
    static_assert(sizeof(Address) == sizeof(uint64_t), "device addresses are 64-bit");
    if (sources.empty()) return;
    auto from = vendor.scratch(sources.size_bytes());
    auto to = vendor.scratch(destinations.size_bytes());
    vendor.run([&] {
        grey_kvk_compress_args args{};
        args.layout = layout;
        vendor.upload(from.get(), sources.data(), sources.size_bytes());
        args.sources = from.get();
        vendor.upload(to.get(), destinations.data(), destinations.size_bytes());
        args.destinations = to.get();
        args.count = static_cast<uint32_t>(sources.size());
        const bool staged = !compress_by_warps(layout) && compress_staged(layout, vendor.compress_staging_limit());
        args.staged = staged ? 1u : 0u;
        const uint64_t resident =
            staged ? vendor.resident_blocks(Kernel::compress, GREY_KVK_COMPRESS_THREADS, static_cast<unsigned int>(grey_kvk_compress_slice_bytes(&layout))) : 0;
        void* params[] = {&args};
        const Launch l = compress_launch(layout, sources.size(), staged, resident);
        vendor.launch(l.kernel, l.grid, l.threads, l.shared_bytes, params);
        vendor.finish();
    });
}

// Decode attention (grey_backend_kv_attend_job) with queries and output F32 at device addresses. `vendor`
// names the kernels in check_layout's messages.
template <typename Vendor>
void run_attend(Vendor& vendor, const char* vendor_name, const common::KvLayout& layout, const AttendTables& tables, uint32_t layer,
                uint32_t query_heads, float scale, uint64_t queries, uint64_t output) {
    check_layout(layout, query_heads, vendor_name);
    if (tables.first.empty()) return;
    AttendShape shape = attend_shape(layout, tables, query_heads, vendor.tensor_cores());
    const uint64_t resident = fit_stages(shape, layout, [&](unsigned int shared_bytes) {
        return vendor.resident_blocks(shape.split(), AttendShape::split_threads(), shared_bytes);
    });
    const uint32_t splits = attend_splits(shape, resident);
    const AttendScratch at = attend_scratch(layout, shape, tables.blocks.size(), splits, query_heads);
    auto scratch = vendor.scratch(at.bytes);
    vendor.run([&] {
        const uint64_t base = scratch.get();
        grey_kvk_attend_args args{};
        args.layout = layout;
        vendor.upload(base, shape.sequences.data(), shape.sequences.size() * sizeof(grey_kvk_sequence));
        args.sequences = base;
        vendor.upload(base + at.blocks_at, tables.blocks.data(), tables.blocks.size_bytes());
        args.blocks = base + at.blocks_at;
        args.queries = queries;
        args.output = output;
        args.partials = base + at.partials_at;
        args.layer = layer;
        args.query_heads = query_heads;
        args.group = shape.group;
        args.group_chunks = shape.group_chunks;
        args.splits = splits;
        args.scale_log2 = scale * 1.4426950408889634f;
        args.stage_bytes = shape.tensor_cores ? grey_kvk_mma_stage_bytes(&layout) : 0;
        args.stages = shape.stages;
        void* params[] = {&args};
        for (const Launch& l : attend_launches(layout, shape, splits, query_heads)) vendor.launch(l.kernel, l.grid, l.threads, l.shared_bytes, params);
        vendor.finish();
    });
}

}  // namespace grey::backend::kv
