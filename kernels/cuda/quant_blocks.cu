// grey_quant_blocks: RTN for the 4-bit grouped formats on tensors that start 16-byte aligned with fewer
// than 2^31 elements: 32-bit indices, no alignment checks, and three passes a warp in flight through
// cp.async staging.
#include "quant_params.cuh"
#include "quant_reduce.cuh"

// RTN for the 4-bit grouped formats, one lane per 32 consecutive elements: a Q4_0 or Q4_1 block, or a
// slice of an INT4 / INT4_SYM / NF4 group of 32, 64 or 128 (a tile of 1, 2 or 4 lanes). Thirty-two
// elements a lane keep 128 bytes of loads in flight per thread and spread the per-group work
// (reductions, parameters) thinly; Q4_0 and Q4_1 pack their nibbles without crossing lanes.
namespace {

// A warp's 32 slices pass through shared memory on the way in (and, for the ggml formats, on the way
// out): every global access of the warp then covers contiguous memory, 512 bytes an instruction, where
// a lane reading its own 128 bytes would touch 32 cache lines an instruction and keep L1 busy. A slice takes 128 bytes (8 pieces of 16; F16 and BF16 use the
// first 4), with piece w of slice s at position w ^ (s % 8), so that eight lanes reading piece w of
// their own slices hit eight different bank groups.
//
// Each warp has kStages staging areas: while it encodes the slices in one, the next passes' slices are
// on their way into the others (cp.async), so that a warp's loads stay in flight while it computes.
// Three areas (with two warps a block, so that they fit the 48 KiB of static shared memory) beat one and
// two; bench/RESULTS.md ("CUDA kernel design") has the figures behind this file's choices.
constexpr int kStagedWarps = GREY_QK_BLOCKS_THREADS / 32;
constexpr int kStages = 3;
constexpr int kSlicePieces = 8;

struct BlockStaging {
    uint4 pieces[kStagedWarps][kStages][32 * kSlicePieces];
};

__device__ __forceinline__ uint32_t staged_piece(uint32_t slice, uint32_t piece) { return slice * kSlicePieces + (piece ^ (slice % 8)); }

#if defined(GREY_HIP)
// AMD GPUs (kernels/hip/cuda_compat.h): no cp.async, so the copy is an ordinary load and store, done
// when the call returns; commit and wait have nothing left to do. unstage32's __syncwarp still orders
// the lanes' stores before any lane reads them.
__device__ __forceinline__ void copy16_async(uint4* to_shared, const uint4* from_global) { *to_shared = *from_global; }
__device__ __forceinline__ void commit_copies() {}
template <int kPending>
__device__ __forceinline__ void wait_copies() {}
#else
__device__ __forceinline__ void copy16_async(uint4* to_shared, const uint4* from_global) {
    const auto to = static_cast<uint32_t>(__cvta_generic_to_shared(to_shared));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(to), "l"(from_global) : "memory");
}

// Closes the group of copies this thread issued since the last commit (possibly none).
__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Waits until at most kPending of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void wait_copies() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}
#endif

// Starts copying the warp's 32 slices from `base` into `staging`, and commits them as one group.
template <int kDtype>
__device__ __forceinline__ void stage32_async(uint64_t plain, uint32_t base, uint32_t slices, uint4* staging) {
    constexpr int kPieces = kDtype == GREY_QK_F32 ? 8 : 4;  // 16-byte pieces of a slice of 32 elements
    const uint32_t lane = threadIdx.x & 31u;
    const uint4* source = reinterpret_cast<const uint4*>(plain) + static_cast<uint64_t>(base) * kPieces;
#pragma unroll
    for (int w = 0; w < kPieces; ++w) {
        const uint32_t piece = 32 * w + lane;  // the warp's w-th 512 contiguous bytes
        const uint32_t slice = piece / kPieces;
        if (base + slice < slices) copy16_async(staging + staged_piece(slice, piece % kPieces), source + piece);
    }
    commit_copies();
}

// The elements of a 16-byte piece: 4 F32 or 8 F16/BF16.
// The lane's slice, once the warp's copies into `staging` have landed (the caller waited for them).
template <int kDtype>
__device__ __forceinline__ void unstage32(const uint4* staging, float* v) {
    constexpr int kPieces = kDtype == GREY_QK_F32 ? 8 : 4;
    __syncwarp();  // every lane's copies are complete, not only this lane's
    const uint32_t lane = threadIdx.x & 31u;
#pragma unroll
    for (int w = 0; w < kPieces; ++w) unpack16<kDtype>(staging[staged_piece(lane, w)], v + (32 / kPieces) * w);
    __syncwarp();  // the area is free again: for the ggml output, then for the next pass's copies
}


// A Q4_0 or Q4_1 block (18 bytes, 2-byte aligned, or 20) at `at`: byte j holds code j and, in its high
// nibble, code j + 16.
template <int kFormat>
__device__ __forceinline__ void write_q4_block(unsigned char* at, const Coding& c, const float* v, const Tables& tables) {
    uint32_t bytes[16];
#pragma unroll
    for (int j = 0; j < 16; ++j) bytes[j] = encode(kFormat, c, v[j], tables) | (encode(kFormat, c, v[j + 16], tables) << 4);
    if (kFormat == kQ4_0) {
        store_u16_at(at, c.scale16);
#pragma unroll
        for (int p = 0; p < 8; ++p) store_u16_at(at + 2 + 2 * p, bytes[2 * p] | (bytes[2 * p + 1] << 8));
    } else {  // Q4_1: 4-byte aligned
        store_u32_at(at, c.scale16 | (c.min16 << 16));
#pragma unroll
        for (int w = 0; w < 4; ++w) store_u32_at(at + 4 + 4 * w, pack_bytes(bytes + 4 * w));
    }
}

template <int kFormat, int kDtype>
__device__ __forceinline__ void quantize_blocks(grey_qk_args a, const Tables& tables, BlockStaging& staging) {
    a.format = kFormat;
    a.dtype = kDtype;
    const uint32_t slices = static_cast<uint32_t>(a.elements / 32);
    const int tile = static_cast<int>(a.run_length / 32);
    const uint32_t lane = threadIdx.x & 31u;
    const uint32_t in_group = (lane % static_cast<uint32_t>(tile)) * 32;  // the slice's first element in its group
    uint4 (&areas)[kStages][32 * kSlicePieces] = staging.pieces[threadIdx.x / 32];
    const uint32_t stride = gridDim.x * blockDim.x;
    const uint32_t first = blockIdx.x * blockDim.x + (threadIdx.x & ~31u);
    // Every pass commits one group of copies, empty past the end, so that the wait below always leaves
    // exactly the kStages - 1 newest in flight.
    const auto stage = [&](uint32_t pass_base, uint4* area) {
        if (pass_base < slices) stage32_async<kDtype>(a.plain, pass_base, slices, area);
        else commit_copies();
    };
#pragma unroll
    for (int k = 0; k < kStages - 1; ++k) stage(first + k * stride, areas[k]);
    // Whole warps iterate together: the tile reductions and the staging need every lane.
    int current = 0;  // the area this pass reads; the one before it (free again) takes the pass kStages - 1 ahead
    for (uint32_t base = first; base < slices; base += stride, current = current == kStages - 1 ? 0 : current + 1) {
        const uint32_t slice = base + lane;
        const bool active = slice < slices;
        stage(base + (kStages - 1) * stride, areas[current == 0 ? kStages - 1 : current - 1]);
        wait_copies<kStages - 1>();
        uint4* mine = areas[current];
        float v[32];
        unstage32<kDtype>(mine, v);
        if (!active) {
#pragma unroll
            for (int k = 0; k < 32; ++k) v[k] = 0.0f;
        }
        bool finite = true;
#pragma unroll
        for (int k = 0; k < 32; ++k) finite = finite && isfinite(v[k]);
        if (!finite) {  // rare; unrolled, since an array indexed at run time would live in local memory
#pragma unroll
            for (int k = 0; k < 32; ++k) note_if_not_finite(a, 32ull * slice + k, v[k]);
        }

        Stats s{0.0f, INFINITY, -INFINITY, 0.0f};
        if (stores_minimum(kFormat)) {
            group_min_max<32>(v, in_group, tile, s);
        } else {
            float m = 0.0f;
#pragma unroll
            for (int k = 0; k < 32; ++k) m = fmaxf(m, fabsf(v[k]));
            s.absmax = max_tile(m, tile);
            if (kFormat == kQ4_0) {  // blocks of 32: the lane holds the whole block; the first peak wins
                s.peak = v[31];
#pragma unroll
                for (int k = 30; k >= 0; --k)
                    if (fabsf(v[k]) == s.absmax) s.peak = v[k];
            }
        }
        const Coding c = make_coding(kFormat, s, 1.0f);
        // Rare (values too large for fp16 parameters). Carrying a marker through the loop instead, to flag
        // once at the end, spills more registers and gains nothing.
        if (active && overflows(c)) flag_overflow(a, (slice / static_cast<uint32_t>(tile)) * a.run_length);

        if constexpr (is_ggml(kFormat)) {
            constexpr uint32_t kBlockBytes = kFormat == kQ4_0 ? 18 : 20;
            unsigned char* out = reinterpret_cast<unsigned char*>(a.quantized) + static_cast<uint64_t>(base) * kBlockBytes;
            if (base + 32 <= slices) {  // a whole warp: blocks into shared memory, then out in 16-byte pieces
                unsigned char* bytes = reinterpret_cast<unsigned char*>(mine);
                write_q4_block<kFormat>(bytes + lane * kBlockBytes, c, v, tables);
                __syncwarp();
                // 32 blocks are 576 or 640 bytes: whole pieces, 16-byte aligned (base is a multiple of 32).
                for (uint32_t piece = lane; piece < 2 * kBlockBytes; piece += 32)
                    reinterpret_cast<uint4*>(out)[piece] = mine[piece];
                __syncwarp();
            } else if (active) {
                write_q4_block<kFormat>(out + lane * kBlockBytes, c, v, tables);
            }
            continue;
        }
        if (!active) continue;
        // Planar nibbles, low nibble first: 16 bytes a lane, the warp's 512 contiguous.
        uint32_t words[4];
#pragma unroll
        for (int w = 0; w < 4; ++w) {
            uint32_t word = 0;
#pragma unroll
            for (int k = 0; k < 8; ++k) word |= encode(kFormat, c, v[8 * w + k], tables) << (4 * k);
            words[w] = word;
        }
        *reinterpret_cast<uint4*>(a.quantized + 16ull * slice) = make_uint4(words[0], words[1], words[2], words[3]);
        if (in_group == 0) store_params(a, slice / static_cast<uint32_t>(tile), c);
    }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(GREY_QK_BLOCKS_THREADS, 8) grey_quant_blocks(grey_qk_args a) {
    __shared__ Tables tables;
    __shared__ BlockStaging staging;
    build_tables(a.format, kEncodeTables, tables);
    with_dtype(a.dtype, [&]<int kDtype>() {
        switch (a.format) {
            case kInt4: quantize_blocks<kInt4, kDtype>(a, tables, staging); break;
            case kInt4Sym: quantize_blocks<kInt4Sym, kDtype>(a, tables, staging); break;
            case kNf4: quantize_blocks<kNf4, kDtype>(a, tables, staging); break;
            case kQ4_0: quantize_blocks<kQ4_0, kDtype>(a, tables, staging); break;
            default: quantize_blocks<kQ4_1, kDtype>(a, tables, staging); break;
        }
    });
}
