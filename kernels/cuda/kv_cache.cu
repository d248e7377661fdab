// The KV cache's kernels: writing tokens into window-form blocks, quantizing full blocks byte for byte
// as the host backend does (both call common/kv_layout.hpp's rule), and decode attention read directly
// from window-form and quantized blocks, split along each sequence as flash-decoding does and merged by
// a second kernel.
//
// Attention: a thread block takes one sequence, one KV head, up to GC of the query heads that read it,
// and an equal share of the sequence's blocks; its warps take every fourth block. In a block, each lane
// takes a token for the scores (a whole row of K codes, 16-byte aligned), then each lane takes CPL
// channels for the values. A quantized block's K is decoded through its per-channel parameters folded
// into the query (q * scale per channel, plus the sum of q * minimum), so a score costs one multiply-add
// per code. Scores are kept in base 2 (the scale carries log2(e)). The file is compiled with
// -fmad=false, so the accumulations spell their fused multiply-adds out (fmaf).
//
// A cache that rotates K (GREY_KV_HADAMARD_K) stores K rotated (a warp's in-register fast Walsh-Hadamard
// transform in grey_kv_store) and attention rotates the queries in shared memory before any score.
//
// A "warp" here is a logical group of kLanes (32) consecutive threads, never the hardware's: every lane
// and warp index is taken modulo kLanes, and every shuffle names width kLanes, so no lane reads outside
// its group. On CUDA that is the warp itself (the width is the default one spelled out). The HIP backend
// compiles this file for AMD targets (kernels/hip/cuda_compat.h), where a wave64 wavefront (gfx90a,
// gfx942) holds two such groups and a wave32 one (gfx1100) one: the groups stay independent, and the
// warp-synchronous steps (__syncwarp around the shared scratch of one group) hold because a wavefront
// runs its lanes in lock step.
#include "kv_args.h"

#include <stdint.h>

using namespace grey::common;

namespace {

// The lanes of the kernels' logical warp (see above).
constexpr uint32_t kLanes = GREY_KVK_WARP_LANES;

__device__ __forceinline__ uint64_t grid_index() { return uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; }
__device__ __forceinline__ uint64_t grid_stride() { return uint64_t{gridDim.x} * blockDim.x; }

__device__ __forceinline__ float warp_sum(float x) {
    for (int offset = GREY_KVK_WARP_LANES / 2; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset, GREY_KVK_WARP_LANES);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
    for (int offset = GREY_KVK_WARP_LANES / 2; offset > 0; offset /= 2)
        x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, offset, GREY_KVK_WARP_LANES));
    return x;
}

// One row of K (head_dim = 32 * E values, or 16 with E = 1 on the low half-warp) rotated by
// common/kv_hadamard.hpp's transform in a warp's registers, lane L holding elements L * E .. L * E + E - 1:
// stages shorter than E within a lane, longer ones across lanes by shuffles. Every element goes through
// the host's butterflies in the host's order, so the rotated row has the host's bits.
template <int E>
__device__ __forceinline__ void rotate_row(float (&x)[E], uint32_t lane, uint32_t dim) {
#pragma unroll
    for (uint32_t h = 1; h < static_cast<uint32_t>(E); h *= 2)
#pragma unroll
        for (uint32_t j = 0; j < static_cast<uint32_t>(E); ++j)
            if ((j & h) == 0) {
                const float lower = x[j], upper = x[j + h];
                x[j] = kv_hadamard_butterfly(lane * E + j, h, lower, upper);
                x[j + h] = kv_hadamard_butterfly(lane * E + j + h, h, upper, lower);
            }
    for (uint32_t h = E; h < dim; h *= 2)
#pragma unroll
        for (uint32_t j = 0; j < static_cast<uint32_t>(E); ++j) {
            const float partner = __shfl_xor_sync(0xffffffffu, x[j], static_cast<int>(h / E), GREY_KVK_WARP_LANES);
            x[j] = kv_hadamard_butterfly(lane * E + j, h, x[j], partner);
        }
    const float scale = kv_hadamard_scale(dim);
#pragma unroll
    for (int j = 0; j < E; ++j) x[j] = mul_rn(x[j], scale);
}

// Element i of a store's K or V, converted as the host converts it (common/numeric.hpp).
__device__ __forceinline__ float store_input(uint64_t address, uint64_t i, uint32_t dtype) {
    if (dtype == GREY_KVK_F32) return reinterpret_cast<const float*>(address)[i];
    const uint32_t bits = reinterpret_cast<const uint16_t*>(address)[i];
    return dtype == GREY_KVK_BF16 ? bf16_to_f32(bits) : f16_to_f32(bits);
}

// Folds the index of a NaN or infinity read into the job's first one (when it asks for the check).
__device__ __forceinline__ void note_non_finite(const grey_kvk_store_args& a, float x, uint64_t index) {
    if (a.non_finite != 0 && !isfinite(x)) atomicMin(reinterpret_cast<unsigned long long*>(a.non_finite), static_cast<unsigned long long>(index));
}

// grey_kv_store for a cache that rotates K: a warp per (layer, token, head) row.
template <int E>
__device__ void store_rotated(const grey_kvk_store_args& a) {
    const KvLayout& l = a.layout;
    const uint64_t rows = uint64_t{a.layer_count} * a.tokens * l.kv_heads;
    const uint64_t half = kv_block_elements(l);
    const uint64_t total = rows * l.head_dim;
    const auto* blocks = reinterpret_cast<const uint64_t*>(a.blocks);
    const auto* slots = reinterpret_cast<const uint32_t*>(a.slots);
    const uint32_t lane = threadIdx.x % kLanes;
    const uint32_t c0 = lane * E;
    const bool active = c0 < l.head_dim;
    // Whole warps step together (the shuffles need every lane), so the loop bound is the warp's.
    for (uint64_t r = grid_index() / kLanes; r < rows; r += grid_stride() / kLanes) {
        const auto head = static_cast<uint32_t>(r % l.kv_heads);
        const uint64_t rest = r / l.kv_heads;
        const auto token = static_cast<uint32_t>(rest % a.tokens);
        const auto layer = static_cast<uint32_t>(rest / a.tokens) + a.layer_first;
        const uint64_t from = r * l.head_dim + c0;
        float x[E];
#pragma unroll
        for (int j = 0; j < E; ++j) {
            x[j] = active ? store_input(a.keys, from + j, a.dtype) : 0.0f;
            if (active) note_non_finite(a, x[j], from + j);
        }
        rotate_row<E>(x, lane, l.head_dim);
        if (!active) continue;
        auto* dense = reinterpret_cast<uint16_t*>(blocks[token]);
        const uint64_t to = kv_dense_index(l, layer, head, slots[token], c0);
#pragma unroll
        for (int j = 0; j < E; ++j) {
            const float v = store_input(a.values, from + j, a.dtype);
            note_non_finite(a, v, total + from + j);
            dense[to + j] = kv_to_window(l, x[j]);
            dense[half + to + j] = kv_to_window(l, v);
        }
    }
}

// The GREY_KVK_CHUNK elements of a store's K or V from element `from` (a multiple of the chunk, the input
// 16-byte aligned), read in 16-byte loads and converted as store_input converts them.
__device__ __forceinline__ void store_chunk_input(uint64_t address, uint64_t from, uint32_t dtype, float (&x)[GREY_KVK_CHUNK]) {
    if (dtype == GREY_KVK_F32) {
        const auto* wide = reinterpret_cast<const float4*>(address) + from / 4;
        const float4 low = wide[0], high = wide[1];
        x[0] = low.x, x[1] = low.y, x[2] = low.z, x[3] = low.w;
        x[4] = high.x, x[5] = high.y, x[6] = high.z, x[7] = high.w;
        return;
    }
    const uint4 w = reinterpret_cast<const uint4*>(address)[from / GREY_KVK_CHUNK];
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const uint32_t low = words[j] & 0xffffu, high = words[j] >> 16;
        x[2 * j] = dtype == GREY_KVK_BF16 ? bf16_to_f32(low) : f16_to_f32(low);
        x[2 * j + 1] = dtype == GREY_KVK_BF16 ? bf16_to_f32(high) : f16_to_f32(high);
    }
}

// GREY_KVK_CHUNK values in window form, one 16-byte store.
__device__ __forceinline__ void store_window_chunk(const KvLayout& l, uint16_t* to, const float (&x)[GREY_KVK_CHUNK]) {
    uint32_t words[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) words[j] = uint32_t{kv_to_window(l, x[2 * j])} | uint32_t{kv_to_window(l, x[2 * j + 1])} << 16;
    *reinterpret_cast<uint4*>(to) = make_uint4(words[0], words[1], words[2], words[3]);
}

// grey_kv_store a chunk of a row a thread (head_dim a multiple of the chunk, K and V 16-byte aligned, K not
// rotated): the same values as the element loop, read and written 16 bytes at a time. Index is uint32_t
// where the job's chunks fit in it, so that the row's position costs 32-bit divisions.
template <typename Index>
__device__ void store_chunks(const grey_kvk_store_args& a) {
    const KvLayout& l = a.layout;
    const uint32_t chunks = l.head_dim / GREY_KVK_CHUNK;
    const uint64_t total = uint64_t{a.layer_count} * a.tokens * l.kv_heads * l.head_dim;
    const Index count = static_cast<Index>(total / GREY_KVK_CHUNK);
    const uint64_t half = kv_block_elements(l);
    const auto* blocks = reinterpret_cast<const uint64_t*>(a.blocks);
    const auto* slots = reinterpret_cast<const uint32_t*>(a.slots);
    for (Index i = static_cast<Index>(grid_index()); i < count; i += static_cast<Index>(grid_stride())) {
        const Index row = i / chunks;
        const auto channel = static_cast<uint32_t>(i % chunks) * GREY_KVK_CHUNK;
        const auto head = static_cast<uint32_t>(row % l.kv_heads);
        const Index rest = row / l.kv_heads;
        const auto token = static_cast<uint32_t>(rest % a.tokens);
        const auto layer = static_cast<uint32_t>(rest / a.tokens) + a.layer_first;
        const uint64_t from = uint64_t{i} * GREY_KVK_CHUNK;
        float k[GREY_KVK_CHUNK], v[GREY_KVK_CHUNK];
        store_chunk_input(a.keys, from, a.dtype, k);
        store_chunk_input(a.values, from, a.dtype, v);
#pragma unroll
        for (uint32_t j = 0; j < GREY_KVK_CHUNK; ++j) {
            note_non_finite(a, k[j], from + j);
            note_non_finite(a, v[j], total + from + j);
        }
        auto* dense = reinterpret_cast<uint16_t*>(blocks[token]);
        const uint64_t to = kv_dense_index(l, layer, head, slots[token], channel);
        store_window_chunk(l, dense + to, k);
        store_window_chunk(l, dense + half + to, v);
    }
}

}  // namespace

// Launched with a thread per element, or per chunk where store_chunks applies (the launch plan asks
// grey_kvk_store_takes_chunks, as this does; blocks are 16-byte aligned); a cache that rotates K (head_dim
// a power of two from 16 to 256, as the backend checks) takes a warp per row of the same launch instead.
extern "C" __global__ void grey_kv_store(grey_kvk_store_args a) {
    const KvLayout& l = a.layout;
    if (l.hadamard_k != 0) {
        switch (l.head_dim) {
            case 16:
            case 32: store_rotated<1>(a); return;
            case 64: store_rotated<2>(a); return;
            case 128: store_rotated<4>(a); return;
            default: store_rotated<8>(a); return;
        }
    }
    if (grey_kvk_store_takes_chunks(&a)) {
        const uint64_t chunks = uint64_t{a.layer_count} * a.tokens * l.kv_heads * (l.head_dim / GREY_KVK_CHUNK);
        if (chunks + grid_stride() <= UINT32_MAX) store_chunks<uint32_t>(a);
        else store_chunks<uint64_t>(a);
        return;
    }
    const uint64_t total = uint64_t{a.layer_count} * a.tokens * l.kv_heads * l.head_dim;
    const uint64_t half = kv_block_elements(l);
    const auto* blocks = reinterpret_cast<const uint64_t*>(a.blocks);
    const auto* slots = reinterpret_cast<const uint32_t*>(a.slots);
    for (uint64_t i = grid_index(); i < total; i += grid_stride()) {
        const auto channel = static_cast<uint32_t>(i % l.head_dim);
        uint64_t rest = i / l.head_dim;
        const auto head = static_cast<uint32_t>(rest % l.kv_heads);
        rest /= l.kv_heads;
        const auto token = static_cast<uint32_t>(rest % a.tokens);
        const auto layer = static_cast<uint32_t>(rest / a.tokens) + a.layer_first;
        auto* dense = reinterpret_cast<uint16_t*>(blocks[token]);
        const uint64_t to = kv_dense_index(l, layer, head, slots[token], channel);
        const float k = store_input(a.keys, i, a.dtype), v = store_input(a.values, i, a.dtype);
        note_non_finite(a, k, i);
        note_non_finite(a, v, total + i);
        dense[to] = kv_to_window(l, k);
        dense[half + to] = kv_to_window(l, v);
    }
}

namespace {

constexpr uint32_t kChunk = GREY_KVK_CHUNK, kCompressThreads = GREY_KVK_COMPRESS_THREADS;

// A window-form chunk (kChunk values, 16 bytes at a 16-byte aligned address) as floats.
__device__ __forceinline__ void window_chunk(const KvLayout& l, const uint16_t* from, float (&x)[kChunk]) {
    const uint4 w = *reinterpret_cast<const uint4*>(from);
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        x[2 * j] = kv_from_window(l, static_cast<uint16_t>(words[j] & 0xffffu));
        x[2 * j + 1] = kv_from_window(l, static_cast<uint16_t>(words[j] >> 16));
    }
}

// The codes of a chunk of format KIND, packed as kv_put_code packs them, at code `index` (a multiple of
// the chunk) of a half's codes: one store of 8, 4 or 2 bytes. `encoders[j * stride]` codes value j.
template <uint32_t KIND>
__device__ __forceinline__ void encode_chunk(const float (&x)[kChunk], const KvEncoder* encoders, uint32_t stride, uint8_t* codes, uint64_t index) {
    constexpr uint32_t bits = kv_code_bits(KIND);
    uint32_t low = 0, high = 0;  // codes 0-3 and 4-7 (bytes): both halves in `low` for 4 and 2 bits
#pragma unroll
    for (uint32_t j = 0; j < kChunk; ++j) {
        const uint32_t code = kv_encode(x[j], encoders[j * stride], KIND);
        if (bits == 8) (j < 4 ? low : high) |= code << (j % 4 * 8);
        else low |= code << (j * bits);
    }
    uint8_t* to = codes + index * bits / 8;
    if constexpr (bits == 8) *reinterpret_cast<uint2*>(to) = make_uint2(low, high);
    else if constexpr (bits == 4) *reinterpret_cast<uint32_t*>(to) = low;
    else *reinterpret_cast<uint16_t*>(to) = static_cast<uint16_t>(low);
}

__device__ __forceinline__ void extend(float& lo, float& hi, float x) { lo = fminf(lo, x), hi = fmaxf(hi, x); }

// The padding before each code area of a quantized block, zeroed as the host backend zeroes it: its
// bytes first, first + stride, ... (a thread block's threads, or a warp's lanes).
__device__ __forceinline__ void zero_code_padding(const KvLayout& l, uint8_t* out, uint32_t first, uint32_t stride) {
    const uint64_t params_end = kv_params_bytes(l), k_end = kv_k_codes_offset(l) + kv_half_code_bytes(l);
    const uint64_t k_pad = kv_k_codes_offset(l) - params_end, v_pad = kv_v_codes_offset(l) - k_end;
    for (uint64_t i = first; i < k_pad + v_pad; i += stride) out[i < k_pad ? params_end + i : k_end + (i - k_pad)] = 0;
}

// One (layer, head) slice of a block: `rows` rows of `chunks` chunks in each half.
//  - K: thread (part, chunk) takes chunk `chunk` of rows part, part + parts, ... (threads past
//    parts * chunks idle): its channels' extremes over those rows, gathered per channel in shared memory
//    into the channel's parameters, then the rows again (from cache) for their codes.
//  - V: `lanes` consecutive threads take a (row, group), each every lanes-th chunk of the group; their
//    extremes meet by shuffles, and each thread then codes its chunks. lanes (a power of two, at most the
//    group's chunks) is as large as keeps every thread busy when the slice has few (row, group) pairs.
// The extremes are taken in another order than the host's, which gives the same parameters:
// kv_group_params makes them independent of the order. KIND is l.format, a constant of each instance so
// that no value's coding tests it.
template <uint32_t KIND>
__device__ void compress_slice(const KvLayout& l, const uint16_t* keys, const uint16_t* values, uint8_t* out, uint32_t slice, float* lo_shared,
                               float* hi_shared, KvEncoder* k_encoders) {
    const uint32_t dim = l.head_dim, rows = l.tokens_per_block, chunks = dim / kChunk, parts = kCompressThreads / chunks;
    const uint32_t chunk = threadIdx.x % chunks, part = threadIdx.x / chunks, used_parts = min(parts, rows);
    const uint64_t first = uint64_t{slice} * rows * dim;  // the slice's first code in a half
    auto* params = reinterpret_cast<KvGroupParams*>(out);

    float lo[kChunk], hi[kChunk];
#pragma unroll
    for (uint32_t j = 0; j < kChunk; ++j) lo[j] = INFINITY, hi[j] = -INFINITY;
    if (part < used_parts) {
#pragma unroll 4
        for (uint32_t r = part; r < rows; r += parts) {
            float x[kChunk];
            window_chunk(l, keys + r * dim + chunk * kChunk, x);
#pragma unroll
            for (uint32_t j = 0; j < kChunk; ++j) extend(lo[j], hi[j], x[j]);
        }
#pragma unroll
        for (uint32_t j = 0; j < kChunk; j += 4) {  // 16 bytes a store: scalar ones, a chunk (32 bytes) apart, conflict 8 ways
            *reinterpret_cast<float4*>(lo_shared + part * dim + chunk * kChunk + j) = make_float4(lo[j], lo[j + 1], lo[j + 2], lo[j + 3]);
            *reinterpret_cast<float4*>(hi_shared + part * dim + chunk * kChunk + j) = make_float4(hi[j], hi[j + 1], hi[j + 2], hi[j + 3]);
        }
    }
    __syncthreads();
    for (uint32_t c = threadIdx.x; c < dim; c += kCompressThreads) {
        float low = lo_shared[c], high = hi_shared[c];
        for (uint32_t p = 1; p < used_parts; ++p) low = fminf(low, lo_shared[p * dim + c]), high = fmaxf(high, hi_shared[p * dim + c]);
        const KvGroupParams p = kv_group_params(low, high, KIND);
        params[uint64_t{slice} * dim + c] = p;
        k_encoders[c] = kv_encoder(p);
    }
    __syncthreads();
    if (part < used_parts) {
        KvEncoder encoders[kChunk];
#pragma unroll
        for (uint32_t j = 0; j < kChunk; ++j) encoders[j] = k_encoders[chunk * kChunk + j];
#pragma unroll 1
        for (uint32_t r = part; r < rows; r += parts) {
            float x[kChunk];
            window_chunk(l, keys + r * dim + chunk * kChunk, x);
            encode_chunk<KIND>(x, encoders, 1, out + kv_k_codes_offset(l), first + r * dim + chunk * kChunk);
        }
    }

    const uint32_t groups = kv_v_groups(l), per_group = l.group_size / kChunk, pairs = rows * groups;
    uint32_t lanes = 1;
    while (lanes * 2 <= per_group && pairs * lanes * 2 <= kCompressThreads) lanes *= 2;
    const uint32_t lane = threadIdx.x % lanes;
    KvGroupParams* v_params = params + kv_k_param_count(l) + uint64_t{slice} * pairs;
    // Whole warps step together (the shuffles need every lane of a group of `lanes`), so the bound is the
    // thread block's.
    for (uint32_t base = 0; base < pairs * lanes; base += kCompressThreads) {
        const uint32_t pair = (base + threadIdx.x) / lanes;
        const bool active = pair < pairs;
        const uint32_t r = active ? pair / groups : 0, group = active ? pair % groups : 0;
        const uint32_t end = min((group + 1) * per_group, chunks);
        const uint16_t* row = values + r * dim;
        float low = INFINITY, high = -INFINITY;
        for (uint32_t c = group * per_group + lane; active && c < end; c += lanes) {
            float x[kChunk];
            window_chunk(l, row + c * kChunk, x);
#pragma unroll
            for (uint32_t j = 0; j < kChunk; ++j) extend(low, high, x[j]);
        }
        for (uint32_t offset = 1; offset < lanes; offset *= 2) {
            low = fminf(low, __shfl_xor_sync(0xffffffffu, low, static_cast<int>(offset), GREY_KVK_WARP_LANES));
            high = fmaxf(high, __shfl_xor_sync(0xffffffffu, high, static_cast<int>(offset), GREY_KVK_WARP_LANES));
        }
        if (!active) continue;
        const KvGroupParams p = kv_group_params(low, high, KIND);
        if (lane == 0) v_params[pair] = p;
        const KvEncoder e = kv_encoder(p);
        for (uint32_t c = group * per_group + lane; c < end; c += lanes) {
            float x[kChunk];
            window_chunk(l, row + c * kChunk, x);
            encode_chunk<KIND>(x, &e, 0, out + kv_v_codes_offset(l), first + r * dim + c * kChunk);
        }
    }
    // No barrier at the end: the next slice writes the shared arrays only after every thread has passed
    // this slice's barriers, which follow every read of lo_shared and hi_shared, and its own first
    // barrier, which follows every read of k_encoders here.
}

// `bytes` (a multiple of 16, at 16-byte aligned addresses) copied into shared memory by the thread block,
// each thread a 16-byte piece at a time: on CUDA asynchronously (cp.async, all in flight at once until
// staged_wait), elsewhere by plain loads and stores.
__device__ __forceinline__ void stage_copy(uint8_t* to, const uint8_t* from, uint64_t bytes) {
    for (uint64_t i = uint64_t{threadIdx.x} * 16u; i < bytes; i += uint64_t{kCompressThreads} * 16u) {
#if defined(GREY_HIP)
        *reinterpret_cast<uint4*>(to + i) = *reinterpret_cast<const uint4*>(from + i);
#else
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(static_cast<uint32_t>(__cvta_generic_to_shared(to + i))), "l"(from + i)
                     : "memory");
#endif
    }
}
// Waits until this thread's copies are done (the thread block's barrier after it makes every thread's
// visible).
__device__ __forceinline__ void staged_wait() {
#if !defined(GREY_HIP)
    asm volatile("cp.async.wait_all;" ::: "memory");
#endif
}

}  // namespace

// The quantized form of window-form blocks, byte for byte as the host backend writes it, in one pass
// (head_dim a multiple of the chunk, at most GREY_KVK_COMPRESS_MAX_HEAD_DIM; blocks 16-byte aligned).
// A thread block takes the job's (block, slice) pairs blockIdx.x, blockIdx.x + gridDim.x, ... in turn,
// each as compress_slice shares it out. Staged (grey_kvk_compress_args), it first copies the slice's K
// and V into shared memory, every read in flight at once, and codes them from there: the two passes over
// K and the one over V then read global memory once, and a few thread blocks a multiprocessor keep more
// of it in flight (a slice of 16 rows is only 8 KiB). At most 48 registers a thread: five thread blocks a
// multiprocessor (left to itself the compiler takes 114, which leaves room for two).
extern "C" __global__ void __launch_bounds__(GREY_KVK_COMPRESS_THREADS, 5) grey_kv_compress(grey_kvk_compress_args a) {
    // [part][channel] K extremes: parts * head_dim <= kCompressThreads * kChunk.
    __shared__ __align__(16) float lo[kCompressThreads * kChunk], hi[kCompressThreads * kChunk];
    __shared__ KvEncoder k_encoders[GREY_KVK_COMPRESS_MAX_HEAD_DIM];
    static_assert(sizeof lo + sizeof hi + sizeof k_encoders == GREY_KVK_COMPRESS_STATIC_SHARED, "kv_args.h states the static shared memory");
    extern __shared__ uint4 staged[];  // one slice (grey_kvk_compress_slice_bytes) when a.staged
    const KvLayout& l = a.layout;
    const uint32_t slices = l.layers * l.kv_heads;
    const uint64_t half = kv_block_elements(l), slice_elements = uint64_t{l.tokens_per_block} * l.head_dim;
    const uint64_t pairs = uint64_t{a.count} * slices;
    for (uint64_t p = blockIdx.x; p < pairs; p += gridDim.x) {
        const uint64_t b = p / slices;
        const auto slice = static_cast<uint32_t>(p % slices);
        const uint16_t* keys = reinterpret_cast<const uint16_t*>(reinterpret_cast<const uint64_t*>(a.sources)[b]) + slice * slice_elements;
        const uint16_t* values = keys + half;
        if (a.staged != 0) {
            auto* copy = reinterpret_cast<uint16_t*>(staged);
            stage_copy(reinterpret_cast<uint8_t*>(copy), reinterpret_cast<const uint8_t*>(keys), slice_elements * 2);
            stage_copy(reinterpret_cast<uint8_t*>(copy + slice_elements), reinterpret_cast<const uint8_t*>(values), slice_elements * 2);
            staged_wait();
            __syncthreads();
            keys = copy;
            values = copy + slice_elements;
        }
        auto* out = reinterpret_cast<uint8_t*>(reinterpret_cast<const uint64_t*>(a.destinations)[b]);
        if (slice == 0) zero_code_padding(l, out, threadIdx.x, kCompressThreads);
        switch (l.format) {  // one instance of compress_slice a format, so that no value's coding tests it
            case kv_int8: compress_slice<kv_int8>(l, keys, values, out, slice, lo, hi, k_encoders); break;
            case kv_int4: compress_slice<kv_int4>(l, keys, values, out, slice, lo, hi, k_encoders); break;
            case kv_int2: compress_slice<kv_int2>(l, keys, values, out, slice, lo, hi, k_encoders); break;
            default: compress_slice<kv_fp8_e4m3>(l, keys, values, out, slice, lo, hi, k_encoders); break;
        }
        if (a.staged != 0) __syncthreads();  // every thread is done with the copy before the next slice's
    }
}

// grey_kv_compress_warps: the same bytes as grey_kv_compress, a warp per K or V of a slice, with no shared
// memory and no barrier. Where a slice is a few rows (16-token blocks: 4 KiB of K, as much of V) that
// takes fewer instructions than sharing the slice among a thread block; with longer blocks a warp's
// share outgrows what it keeps in flight, and the plan (backends/common/kv_plan.hpp) launches
// grey_kv_compress instead.
namespace {
namespace by_warp {


// A chunk of window form: kChunk 16-bit values, two to a word, value 2j in the low half of word j.
struct WindowChunk {
    uint32_t w[kChunk / 2];
};

__device__ __forceinline__ WindowChunk load_chunk(const uint16_t* __restrict__ from) {
    const uint4 v = *reinterpret_cast<const uint4*>(from);
    return {{v.x, v.y, v.z, v.w}};
}

// Values 2j and 2j + 1 of a chunk as floats.
template <bool BF16>
__device__ __forceinline__ float low_value(uint32_t word) {
    if constexpr (BF16) return __uint_as_float(word << 16);
    else return f16_to_f32(word & 0xffffu);
}
template <bool BF16>
__device__ __forceinline__ float high_value(uint32_t word) {
    if constexpr (BF16) return __uint_as_float(word & 0xffff0000u);
    else return f16_to_f32(word >> 16);
}
template <bool BF16>
__device__ __forceinline__ void chunk_values(const WindowChunk& c, float (&x)[kChunk]) {
#pragma unroll
    for (uint32_t j = 0; j < kChunk / 2; ++j) x[2 * j] = low_value<BF16>(c.w[j]), x[2 * j + 1] = high_value<BF16>(c.w[j]);
}

// The smaller (or with LARGER, the larger) of each pair of window-form values, two at a time: one
// instruction on CUDA (sm_80 on), whose min and max, like fminf and fmaxf, take a number over a NaN. The
// order of -0 and +0 does not matter: kv_group_params counts both as +0.
template <bool BF16, bool LARGER>
__device__ __forceinline__ uint32_t pair_pick(uint32_t a, uint32_t b) {
#if defined(GREY_HIP)
    const auto pick = [](float x, float y) { return LARGER ? fmaxf(x, y) : fminf(x, y); };
    const auto back = [](float x) { return uint32_t{BF16 ? f32_to_bf16(x) : f32_to_f16(x)}; };
    return back(pick(low_value<BF16>(a), low_value<BF16>(b))) | back(pick(high_value<BF16>(a), high_value<BF16>(b))) << 16;
#else
    uint32_t d;
    if constexpr (BF16 && LARGER) asm("max.bf16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    else if constexpr (BF16) asm("min.bf16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    else if constexpr (LARGER) asm("max.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    else asm("min.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
#endif
}
template <bool BF16>
__device__ __forceinline__ uint32_t pair_min(uint32_t a, uint32_t b) { return pair_pick<BF16, false>(a, b); }
template <bool BF16>
__device__ __forceinline__ uint32_t pair_max(uint32_t a, uint32_t b) { return pair_pick<BF16, true>(a, b); }
// Both halves of a word +infinity (the start of a minimum) or -infinity (of a maximum).
template <bool BF16>
constexpr uint32_t kPairInfinity = BF16 ? 0x7f807f80u : 0x7c007c00u;
template <bool BF16>
constexpr uint32_t kPairNegativeInfinity = BF16 ? 0xff80ff80u : 0xfc00fc00u;

// The code of `x`: kv_encode's, bit for bit. For the integer kinds the clamp comes before the rounding
// (the same codes: rounding is monotonic and the bounds are integers, and fmaxf takes 0 over a NaN
// either way), and the rounding is the addition of 1.5 * 2^23, whose sum keeps the nearest integer, ties
// to even, in its low mantissa bits: the code plus kMagicBits.
constexpr float kMagic = 12582912.0f;
constexpr uint32_t kMagicBits = 0x4b400000u;
template <uint32_t KIND>
__device__ __forceinline__ uint32_t code_word(float x, KvEncoder e) {
    if constexpr (KIND == kv_fp8_e4m3) {
        return kv_encode(x, e, KIND);
    } else {
        constexpr float levels = static_cast<float>((1u << kv_code_bits(KIND)) - 1u);
        return __float_as_uint(__fadd_rn(fminf(fmaxf(mul_rn(sub_rn(x, e.minimum), e.inverse), 0.0f), levels), kMagic));
    }
}

// The codes of a chunk of format KIND, packed as kv_put_code packs them, at code `index` (a multiple of
// the chunk) of a half's codes: one store of 8, 4 or 2 bytes. `encoders[j * stride]` codes value j. The
// integer kinds' words (code + kMagicBits) are summed at their codes' places: the magic parts, a constant,
// come off at the end and the codes, which never carry into each other, remain.
template <uint32_t KIND>
__device__ __forceinline__ void encode_chunk(const float (&x)[kChunk], const KvEncoder* encoders, uint32_t stride, uint8_t* __restrict__ codes,
                                             uint64_t index) {
    constexpr uint32_t bits = kv_code_bits(KIND);
    uint32_t low = 0, high = 0;  // codes 0-3 and 4-7 (bytes): both halves in `low` for 4 and 2 bits
    if constexpr (KIND == kv_fp8_e4m3) {
#pragma unroll
        for (uint32_t j = 0; j < kChunk; ++j) (j < 4 ? low : high) |= code_word<KIND>(x[j], encoders[j * stride]) << (j % 4 * 8);
    } else {
        constexpr uint32_t per_word = 32 / bits < kChunk ? 32 / bits : kChunk;
        constexpr uint32_t magic = [] {
            uint32_t m = 0;
            for (uint32_t j = 0; j < per_word; ++j) m += kMagicBits << (j * bits);
            return m;
        }();
#pragma unroll
        for (uint32_t j = 0; j < kChunk; ++j) {
            const uint32_t word = code_word<KIND>(x[j], encoders[j * stride]) << (j % per_word * bits);
            if (j < per_word) low += word;
            else high += word;
        }
        low -= magic;
        high -= magic;
    }
    uint8_t* to = codes + index * bits / 8;
    if constexpr (bits == 8) *reinterpret_cast<uint2*>(to) = make_uint2(low, high);
    else if constexpr (bits == 4) *reinterpret_cast<uint32_t*>(to) = low;
    else *reinterpret_cast<uint16_t*>(to) = static_cast<uint16_t>(low);
}

// How a warp's lanes cover a slice's rows of `chunks` chunks: a row is cut into spans of at most kLanes
// chunks, and each step of the warp takes `items` (row, span) items, lane (item, column) the chunk
// `column` of its item's span. Rows of 16 chunks (head_dim 128) are two to a step; lanes past
// items * span (a span that does not divide kLanes) idle.
struct CompressLanes {
    uint32_t chunks, span, spans, items, item, column;

    __device__ CompressLanes(uint32_t head_dim, uint32_t lane) : chunks(head_dim / kChunk) {
        span = min(chunks, kLanes);
        spans = (chunks + span - 1) / span;
        items = kLanes / span;
        item = lane / span;
        column = lane % span;
    }
};

// Combines the values of the `items` lanes at this lane's column with `op`, so that each holds the
// result (every lane of the warp calls it: the shuffles need them all).
template <typename Op>
__device__ __forceinline__ uint32_t across_items(uint32_t v, const CompressLanes& s, uint32_t lane, Op op) {
    for (uint32_t offset = 1; offset < s.items; offset *= 2) {
        const bool has = s.item + offset < s.items;
        const uint32_t other = __shfl_sync(0xffffffffu, v, static_cast<int>(has ? lane + offset * s.span : lane), GREY_KVK_WARP_LANES);
        v = op(v, other);
    }
    return s.items > 1 ? __shfl_sync(0xffffffffu, v, static_cast<int>(s.item < s.items ? s.column : lane), GREY_KVK_WARP_LANES) : v;
}

// K of one (layer, head) slice of a block, a warp: K's groups are its channels over the block's rows, so
// a lane keeps the extremes of its chunk's eight channels over the rows of its item, the items' meet by
// shuffles, and the lane then codes those rows (a second read, mostly from cache).
template <uint32_t KIND, bool BF16>
__device__ void compress_keys(const KvLayout& l, const uint16_t* __restrict__ keys, uint8_t* __restrict__ out, uint32_t slice, uint32_t lane) {
    const CompressLanes s(l.head_dim, lane);
    const uint32_t dim = l.head_dim, rows = l.tokens_per_block;
    const uint64_t first = uint64_t{slice} * rows * dim;  // the slice's first code in a half
    uint8_t* codes = out + kv_k_codes_offset(l);
    for (uint32_t start = 0; start < s.chunks; start += s.span) {
        const uint32_t chunk = start + s.column;
        const bool active = s.item < s.items && chunk < s.chunks;
        uint32_t lo[kChunk / 2], hi[kChunk / 2];
#pragma unroll
        for (uint32_t w = 0; w < kChunk / 2; ++w) lo[w] = kPairInfinity<BF16>, hi[w] = kPairNegativeInfinity<BF16>;
        if (active) {
#pragma unroll 8
            for (uint32_t r = s.item; r < rows; r += s.items) {
                const WindowChunk c = load_chunk(keys + r * dim + chunk * kChunk);
#pragma unroll
                for (uint32_t w = 0; w < kChunk / 2; ++w) lo[w] = pair_min<BF16>(lo[w], c.w[w]), hi[w] = pair_max<BF16>(hi[w], c.w[w]);
            }
        }
#pragma unroll
        for (uint32_t w = 0; w < kChunk / 2; ++w) {
            lo[w] = across_items(lo[w], s, lane, [](uint32_t a, uint32_t b) { return pair_min<BF16>(a, b); });
            hi[w] = across_items(hi[w], s, lane, [](uint32_t a, uint32_t b) { return pair_max<BF16>(a, b); });
        }
        if (!active) continue;
        // The chunk's eight parameter pairs (16 bytes a store, by item 0) and encoders.
        auto* to = reinterpret_cast<float4*>(reinterpret_cast<KvGroupParams*>(out) + uint64_t{slice} * dim + chunk * kChunk);
        KvEncoder encoders[kChunk];
#pragma unroll
        for (uint32_t w = 0; w < kChunk / 2; ++w) {
            const KvGroupParams even = kv_group_params(low_value<BF16>(lo[w]), low_value<BF16>(hi[w]), KIND);
            const KvGroupParams odd = kv_group_params(high_value<BF16>(lo[w]), high_value<BF16>(hi[w]), KIND);
            if (s.item == 0) to[w] = make_float4(even.scale, even.minimum, odd.scale, odd.minimum);
            encoders[2 * w] = kv_encoder(even), encoders[2 * w + 1] = kv_encoder(odd);
        }
#pragma unroll 4
        for (uint32_t r = s.item; r < rows; r += s.items) {
            float x[kChunk];
            chunk_values<BF16>(load_chunk(keys + r * dim + chunk * kChunk), x);
            encode_chunk<KIND>(x, encoders, 1, codes, first + r * dim + chunk * kChunk);
        }
    }
}

// V of one slice, a warp: V's groups are group_size channels of a row, so a step's lanes take a chunk
// each of `items` rows (or row spans), the lanes of a group meet by shuffles, and each codes its chunk.
// A group's chunks lie in one span: spans are kLanes chunks (256 channels) or the whole row, and a group
// of 32, 64 or 128 channels either divides 256 or is clipped to the row.
template <uint32_t KIND, bool BF16>
__device__ void compress_values(const KvLayout& l, const uint16_t* __restrict__ values, uint8_t* __restrict__ out, uint32_t slice, uint32_t lane) {
    const CompressLanes s(l.head_dim, lane);
    const uint32_t dim = l.head_dim, rows = l.tokens_per_block, per_group = l.group_size / kChunk, groups = kv_v_groups(l);
    const uint64_t first = uint64_t{slice} * rows * dim;
    uint8_t* codes = out + kv_v_codes_offset(l);
    KvGroupParams* params = reinterpret_cast<KvGroupParams*>(out) + kv_k_param_count(l) + uint64_t{slice} * rows * groups;
    // This lane's place in its group (the span's start is a multiple of the group), the group's chunks,
    // and the group's index within the span.
    const uint32_t place = s.column % per_group, group_in_span = s.column / per_group;
    const uint32_t group_chunks = min(per_group, s.span - (s.column - place));
    const uint32_t total = rows * s.spans;
    struct Item {
        uint32_t row, span, chunk;
        bool active;
    };
    const auto item_at = [&](uint32_t i) {  // (row, span) item i: this lane's chunk of it
        const uint32_t row = s.spans == 1 ? i : i / s.spans, span = s.spans == 1 ? 0 : i % s.spans, chunk = span * s.span + s.column;
        return Item{row, span, chunk, s.item < s.items && i < total && chunk < s.chunks};
    };
    // kBatch steps' chunks are loaded before any of them is coded, so that a lane has that many loads in
    // flight (a loop of shuffles is not unrolled by every compiler).
    constexpr uint32_t kBatch = 2;
    for (uint32_t base = 0; base < total; base += kBatch * s.items) {
        WindowChunk chunks[kBatch];
#pragma unroll
        for (uint32_t k = 0; k < kBatch; ++k) {
            const Item it = item_at(base + k * s.items + s.item);
            chunks[k] = it.active ? load_chunk(values + it.row * dim + it.chunk * kChunk)
                                  : WindowChunk{{kPairInfinity<BF16>, kPairInfinity<BF16>, kPairInfinity<BF16>, kPairInfinity<BF16>}};
        }
#pragma unroll
        for (uint32_t k = 0; k < kBatch; ++k) {
            const Item it = item_at(base + k * s.items + s.item);
            const WindowChunk& c = chunks[k];
            uint32_t lo = pair_min<BF16>(pair_min<BF16>(c.w[0], c.w[1]), pair_min<BF16>(c.w[2], c.w[3]));
            uint32_t hi = it.active ? pair_max<BF16>(pair_max<BF16>(c.w[0], c.w[1]), pair_max<BF16>(c.w[2], c.w[3])) : kPairNegativeInfinity<BF16>;
            // The group's lanes: this one and the next (within - place - 1), all in the same item.
            const uint32_t within = it.active ? min(group_chunks, s.chunks - (it.chunk - place)) : 1;
            for (uint32_t offset = 1; offset < per_group; offset *= 2) {
                const int from = static_cast<int>(place + offset < within ? lane + offset : lane);
                const uint32_t other_lo = __shfl_sync(0xffffffffu, lo, from, GREY_KVK_WARP_LANES);
                const uint32_t other_hi = __shfl_sync(0xffffffffu, hi, from, GREY_KVK_WARP_LANES);
                lo = pair_min<BF16>(lo, other_lo);
                hi = pair_max<BF16>(hi, other_hi);
            }
            if (per_group > 1) {
                const int leader = static_cast<int>(it.active ? lane - place : lane);
                lo = __shfl_sync(0xffffffffu, lo, leader, GREY_KVK_WARP_LANES);
                hi = __shfl_sync(0xffffffffu, hi, leader, GREY_KVK_WARP_LANES);
            }
            if (!it.active) continue;
            const KvGroupParams p =
                kv_group_params(fminf(low_value<BF16>(lo), high_value<BF16>(lo)), fmaxf(low_value<BF16>(hi), high_value<BF16>(hi)), KIND);
            if (place == 0) params[uint64_t{it.row} * groups + it.span * (s.span / per_group) + group_in_span] = p;
            const KvEncoder e = kv_encoder(p);
            float x[kChunk];
            chunk_values<BF16>(c, x);
            encode_chunk<KIND>(x, &e, 0, codes, first + uint64_t{it.row} * dim + it.chunk * kChunk);
        }
    }
}

// A unit's window form asked for into L2 at once, a 128-byte line a lane, so that its loads, a few in
// flight a lane, wait on L2 rather than on memory.
__device__ __forceinline__ void prefetch_unit(const uint16_t* from, uint64_t bytes, uint32_t lane) {
#if !defined(GREY_HIP)
    for (uint64_t i = uint64_t{lane} * 128; i < bytes; i += kLanes * 128)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(reinterpret_cast<const uint8_t*>(from) + i));
#endif
}

// The warps of a launch take the job's (block, slice, half) units in turn, unit u = (b * slices + slice)
// * 2 + half: K and V of a slice go to neighbouring warps.
template <uint32_t KIND, bool BF16>
__device__ void compress_units(const grey_kvk_compress_args& a) {
    const KvLayout& l = a.layout;
    const uint32_t lane = threadIdx.x % kLanes;
    const uint64_t per_block = uint64_t{l.layers} * l.kv_heads * 2, units = per_block * a.count;
    const uint64_t step = grid_stride() / kLanes;
    const uint64_t half = kv_block_elements(l), slice_elements = uint64_t{l.tokens_per_block} * l.head_dim;
    const auto* sources = reinterpret_cast<const uint64_t*>(a.sources);
    const auto* destinations = reinterpret_cast<const uint64_t*>(a.destinations);
    // (b, within) of unit u, stepped without dividing again.
    uint64_t u = grid_index() / kLanes, b = u / per_block, within = u % per_block;
    const uint64_t step_blocks = step / per_block, step_within = step % per_block;
    for (; u < units; u += step) {
        const auto slice = static_cast<uint32_t>(within / 2);
        const auto* block = reinterpret_cast<const uint16_t*>(sources[b]);
        auto* out = reinterpret_cast<uint8_t*>(destinations[b]);
        const uint16_t* window = block + (within % 2 == 0 ? 0 : half) + slice * slice_elements;
        prefetch_unit(window, slice_elements * 2, lane);
        if (within % 2 == 0) {
            if (slice == 0) zero_code_padding(l, out, lane, kLanes);
            compress_keys<KIND, BF16>(l, window, out, slice, lane);
        } else {
            compress_values<KIND, BF16>(l, window, out, slice, lane);
        }
        b += step_blocks, within += step_within;
        if (within >= per_block) within -= per_block, ++b;
    }
}

template <bool BF16>
__device__ void compress_units_of_format(const grey_kvk_compress_args& a) {
    switch (a.layout.format) {  // one instance a format, so that no value's coding tests it
        case kv_int8: compress_units<kv_int8, BF16>(a); break;
        case kv_int4: compress_units<kv_int4, BF16>(a); break;
        case kv_int2: compress_units<kv_int2, BF16>(a); break;
        default: compress_units<kv_fp8_e4m3, BF16>(a); break;
    }
}

}  // namespace by_warp
}  // namespace

extern "C" __global__ void __launch_bounds__(GREY_KVK_COMPRESS_THREADS, 4) grey_kv_compress_warps(grey_kvk_compress_args a) {
    if (a.layout.window_bf16 != 0) by_warp::compress_units_of_format<true>(a);
    else by_warp::compress_units_of_format<false>(a);
}

namespace {

// The value a code stands for before its group's scale and minimum: the code itself for the integer
// formats, the fp8 number for e4m3 (through a table in shared memory).
struct CodeValues {
    const float* fp8;  // 256 entries, or nullptr
    __device__ __forceinline__ float operator()(uint32_t code) const { return fp8 != nullptr ? fp8[code] : static_cast<float>(code); }
};

// A stored element of BITS bits as a float before scale and minimum: a window-form value (16) or a code.
template <int BITS>
__device__ __forceinline__ float element(uint32_t bits, bool bf16, CodeValues values) {
    if constexpr (BITS == 16) return bf16 ? bf16_to_f32(bits) : f16_to_f32(bits);
    else return values(bits);
}

// Adds q[c] * x to s[g] for each of the GC query heads; q is [channel][GC] in shared memory (every lane
// reads the same address: a broadcast).
template <int GC>
__device__ __forceinline__ void dot_step(const float* q, uint32_t channel, float x, float (&s)[GC]) {
    if constexpr (GC % 4 == 0) {
#pragma unroll
        for (int g = 0; g < GC; g += 4) {
            const float4 v = *reinterpret_cast<const float4*>(q + channel * GC + g);
            s[g] = fmaf(v.x, x, s[g]);
            s[g + 1] = fmaf(v.y, x, s[g + 1]);
            s[g + 2] = fmaf(v.z, x, s[g + 2]);
            s[g + 3] = fmaf(v.w, x, s[g + 3]);
        }
    } else {
#pragma unroll
        for (int g = 0; g < GC; ++g) s[g] = fmaf(q[channel * GC + g], x, s[g]);
    }
}

// The 32 / BITS elements of `word` (channels first, first..) into the scores.
template <int BITS, int GC>
__device__ __forceinline__ void score_word(uint32_t word, uint32_t first, const float* q, bool bf16, CodeValues values, float (&s)[GC]) {
    constexpr uint32_t per_word = 32 / BITS, mask = (1u << BITS) - 1u;
#pragma unroll
    for (uint32_t j = 0; j < per_word; ++j) dot_step<GC>(q, first + j, element<BITS>((word >> (j * BITS)) & mask, bf16, values), s);
}

// One token's scores against the GC query heads: its row of K (`dim` elements of BITS bits, the row a
// whole number of 32-bit words) read 16 bytes at a time when the row allows it, else 4.
template <int BITS, int GC>
__device__ __forceinline__ void score_row(const uint8_t* row, uint32_t dim, const float* q, bool bf16, CodeValues values, float (&s)[GC]) {
    constexpr uint32_t per_word = 32 / BITS;
    const uint32_t words = dim / per_word;
    if (words % 4 == 0 && reinterpret_cast<uintptr_t>(row) % 16 == 0) {
        const auto* wide = reinterpret_cast<const uint4*>(row);
#pragma unroll 4
        for (uint32_t w = 0; w < words / 4; ++w) {
            const uint4 v = wide[w];
            score_word<BITS, GC>(v.x, (4 * w) * per_word, q, bf16, values, s);
            score_word<BITS, GC>(v.y, (4 * w + 1) * per_word, q, bf16, values, s);
            score_word<BITS, GC>(v.z, (4 * w + 2) * per_word, q, bf16, values, s);
            score_word<BITS, GC>(v.w, (4 * w + 3) * per_word, q, bf16, values, s);
        }
    } else {
        const auto* narrow = reinterpret_cast<const uint32_t*>(row);
#pragma unroll 4
        for (uint32_t w = 0; w < words; ++w) score_word<BITS, GC>(narrow[w], w * per_word, q, bf16, values, s);
    }
}

// The CPL elements of BITS bits that start at bit `bit` of `area` (aligned to their total size, at most
// 16 bytes), unpacked.
template <int BITS, int CPL>
__device__ __forceinline__ void load_elements(const uint8_t* area, uint32_t bit, uint32_t (&out)[CPL]) {
    constexpr int total = BITS * CPL;
    constexpr uint32_t mask = (1u << BITS) - 1u;
    const uint8_t* p = area + bit / 8;
    if constexpr (total <= 32) {
        uint32_t word;
        if constexpr (total <= 8) word = static_cast<uint32_t>(*p) >> (bit & 7u);
        else if constexpr (total == 16) word = *reinterpret_cast<const uint16_t*>(p);
        else word = *reinterpret_cast<const uint32_t*>(p);
#pragma unroll
        for (int j = 0; j < CPL; ++j) out[j] = (word >> (j * BITS)) & mask;
    } else {
        constexpr int words = total / 32, per_word = 32 / BITS;
        uint32_t w[words];
        if constexpr (words == 2) {
            const uint2 v = *reinterpret_cast<const uint2*>(p);
            w[0] = v.x;
            w[1] = v.y;
        } else {
            const uint4 v = *reinterpret_cast<const uint4*>(p);
            w[0] = v.x;
            w[1] = v.y;
            w[2] = v.z;
            w[3] = v.w;
        }
#pragma unroll
        for (int j = 0; j < CPL; ++j) out[j] = (w[j / per_word] >> ((j % per_word) * BITS)) & mask;
    }
}

// What a warp needs to read one block's slice (layer, head): where its K and V rows start, in bits from
// the block's start, and the parameters of a quantized block.
struct Slice {
    const uint8_t* block;
    uint32_t k_bits;      // the first K row
    uint32_t v_bits;      // the first V row
    uint32_t row_bits;    // a row's size
    const KvGroupParams* k_params;  // this slice's K parameters ([channel]); quantized only
    const KvGroupParams* v_params;  // this slice's V parameters ([token][group]); quantized only
};

template <int BITS>
__device__ __forceinline__ Slice slice_of(const KvLayout& l, const uint8_t* block, uint32_t layer, uint32_t head) {
    const uint32_t slice = layer * l.kv_heads + head;
    const uint32_t first = slice * l.tokens_per_block * l.head_dim;  // the slice's first element
    Slice s;
    s.block = block;
    s.row_bits = l.head_dim * BITS;
    if constexpr (BITS == 16) {
        s.k_bits = first * 16;
        s.v_bits = static_cast<uint32_t>((kv_block_elements(l) + first) * 16);
        s.k_params = s.v_params = nullptr;
    } else {
        s.k_bits = static_cast<uint32_t>(kv_k_codes_offset(l) * 8) + first * BITS;
        s.v_bits = static_cast<uint32_t>(kv_v_codes_offset(l) * 8) + first * BITS;
        const auto* params = kv_params(l, block);
        s.k_params = params + slice * l.head_dim;
        s.v_params = params + kv_k_param_count(l) + slice * l.tokens_per_block * kv_v_groups(l);
    }
    return s;
}

// One block's tokens lo..hi-1 into a warp's online softmax. BITS: 16 for a window-form block, else the
// code width.
template <int BITS, int CPL, int GC>
__device__ void attend_block(const KvLayout& l, const Slice& slice, uint32_t lo, uint32_t hi, const float* q_shared, float* warp_q,
                             float* warp_p, float scale_log2, CodeValues values, uint32_t lane, float (&m)[GC], float (&sum)[GC],
                             float (&acc)[GC][CPL]) {
    constexpr uint32_t kValueBatch = 8;
    const uint32_t dim = l.head_dim;
    const bool bf16 = l.window_bf16 != 0;
    float bias[GC];
#pragma unroll
    for (int g = 0; g < GC; ++g) bias[g] = 0.0f;
    const float* qk = q_shared;
    if constexpr (BITS != 16) {
        // K's per-channel parameters folded into the query: q.k = sum q*scale*code + sum q*minimum.
        for (uint32_t c = lane; c < dim; c += kLanes) {
            const KvGroupParams p = slice.k_params[c];
#pragma unroll
            for (int g = 0; g < GC; ++g) {
                warp_q[c * GC + g] = q_shared[c * GC + g] * p.scale;
                bias[g] = fmaf(q_shared[c * GC + g], p.minimum, bias[g]);
            }
        }
#pragma unroll
        for (int g = 0; g < GC; ++g) bias[g] = warp_sum(bias[g]);
        __syncwarp();
        qk = warp_q;
    }
    const uint32_t c0 = lane * CPL;
    const uint32_t v_group = c0 / l.group_size;
    const uint32_t v_groups = kv_v_groups(l);
    for (uint32_t t0 = lo; t0 < hi; t0 += kLanes) {
        const uint32_t t = t0 + lane;
        const bool valid = t < hi;
        float s[GC];
#pragma unroll
        for (int g = 0; g < GC; ++g) s[g] = bias[g];
        if (valid) score_row<BITS, GC>(slice.block + (slice.k_bits + t * slice.row_bits) / 8, dim, qk, bf16, values, s);
#pragma unroll
        for (int g = 0; g < GC; ++g) {
            const float score = valid ? s[g] * scale_log2 : -INFINITY;
            const float top = fmaxf(m[g], warp_max(score));
            const float rescale = exp2f(m[g] - top);  // 0 while m is still -inf
            const float p = valid ? exp2f(score - top) : 0.0f;
            sum[g] = fmaf(sum[g], rescale, warp_sum(p));
            m[g] = top;
#pragma unroll
            for (int j = 0; j < CPL; ++j) acc[g][j] *= rescale;
            warp_p[lane * GC + g] = p;
        }
        __syncwarp();
        // The values, a batch of tokens' loads issued before any is used.
        const uint32_t count = min(kLanes, hi - t0);
        if (c0 < dim) {
            for (uint32_t k = 0; k < count; k += kValueBatch) {
                uint32_t raw[kValueBatch][CPL];
                KvGroupParams params[kValueBatch];
#pragma unroll
                for (uint32_t u = 0; u < kValueBatch; ++u) {
                    const uint32_t token = t0 + min(k + u, count - 1);
                    load_elements<BITS, CPL>(slice.block, slice.v_bits + token * slice.row_bits + c0 * BITS, raw[u]);
                    if constexpr (BITS != 16) params[u] = slice.v_params[token * v_groups + v_group];
                }
#pragma unroll
                for (uint32_t u = 0; u < kValueBatch; ++u) {
                    if (k + u >= count) break;
                    float v[CPL];
#pragma unroll
                    for (int j = 0; j < CPL; ++j) {
                        v[j] = element<BITS>(raw[u][j], bf16, values);
                        if constexpr (BITS != 16) v[j] = fmaf(v[j], params[u].scale, params[u].minimum);
                    }
#pragma unroll
                    for (int g = 0; g < GC; ++g) {
                        const float p = warp_p[(k + u) * GC + g];
#pragma unroll
                        for (int j = 0; j < CPL; ++j) acc[g][j] = fmaf(p, v[j], acc[g][j]);
                    }
                }
            }
        }
        __syncwarp();
    }
    __syncwarp();  // warp_q is rewritten by the next quantized block
}

// The GC queries in shared memory ([dim][GC]) rotated as K was stored (a fast Walsh-Hadamard transform
// over the whole thread block, a butterfly a thread per stage), so that q.k is the unrotated product.
template <int GC>
__device__ void rotate_queries(float* q, uint32_t dim) {
    for (uint32_t h = 1; h < dim; h *= 2) {
        for (uint32_t i = threadIdx.x; i < dim / 2 * GC; i += blockDim.x) {
            const uint32_t pair = i / GC, g = i % GC;
            const uint32_t lower = pair / h * 2 * h + pair % h;
            const float a = q[lower * GC + g], b = q[(lower + h) * GC + g];
            q[lower * GC + g] = add_rn(a, b);
            q[(lower + h) * GC + g] = sub_rn(a, b);
        }
        __syncthreads();
    }
    const float scale = kv_hadamard_scale(dim);
    for (uint32_t i = threadIdx.x; i < dim * GC; i += blockDim.x) q[i] = mul_rn(q[i], scale);
    __syncthreads();
}

// What a thread block of an attention launch takes: a sequence (blockIdx.z), a KV head and up to GC of
// the query heads that read it (blockIdx.y), and an equal share of the sequence's blocks (blockIdx.x).
struct AttendShare {
    uint32_t sequence, head, g_count, q_first;
    grey_kvk_sequence seq;
    uint64_t begin, end;  // the blocks, as indices into the sequence's table
};

template <int GC>
__device__ AttendShare attend_share(const grey_kvk_attend_args& a) {
    AttendShare s;
    s.sequence = blockIdx.z;
    s.head = blockIdx.y / a.group_chunks;
    const uint32_t g_first = (blockIdx.y % a.group_chunks) * GC;
    s.g_count = min(static_cast<uint32_t>(GC), a.group - g_first);
    s.q_first = s.head * a.group + g_first;
    s.seq = reinterpret_cast<const grey_kvk_sequence*>(a.sequences)[s.sequence];
    const uint32_t per_block = a.layout.tokens_per_block;
    const uint64_t first_block = s.seq.first / per_block, end_block = (s.seq.last + per_block - 1) / per_block;
    const uint64_t share = (end_block - first_block + a.splits - 1) / a.splits;
    s.begin = first_block + blockIdx.x * share;
    s.end = s.begin + share < end_block ? s.begin + share : end_block;
    return s;
}

template <int CPL, int GC>
__device__ void attend_split(const grey_kvk_attend_args& a) {
    constexpr uint32_t kWarps = GREY_KVK_ATTEND_WARPS;
    const KvLayout& l = a.layout;
    const uint32_t dim = l.head_dim, per_block = l.tokens_per_block;
    const uint32_t warp = threadIdx.x / kLanes, lane = threadIdx.x % kLanes;
    const AttendShare share = attend_share<GC>(a);
    const uint32_t sequence = share.sequence, head = share.head, g_count = share.g_count, q_first = share.q_first;
    const grey_kvk_sequence seq = share.seq;

    extern __shared__ float shared[];
    float* q_shared = shared;                                           // [dim][GC]
    float* warp_q = q_shared + dim * GC * (1 + warp);                   // [dim][GC]: q * K scale; later the accumulator
    float* warp_p = shared + dim * GC * (1 + kWarps) + warp * kLanes * GC;  // [kLanes][GC]: a chunk's softmax weights
    float* fp8 = shared + dim * GC * (1 + kWarps) + kWarps * kLanes * GC;   // 256
    float* warp_stats = fp8 + 256;                                      // [kWarps][GC][2]: max, sum

    const auto* queries = reinterpret_cast<const float*>(a.queries);
    for (uint32_t i = threadIdx.x; i < dim * GC; i += blockDim.x) {
        const uint32_t c = i / GC, g = i % GC;
        q_shared[i] = g < g_count ? queries[(uint64_t{sequence} * a.query_heads + q_first + g) * dim + c] : 0.0f;
    }
    const bool is_fp8 = l.format == kv_fp8_e4m3;
    for (uint32_t i = threadIdx.x; i < 256; i += blockDim.x) fp8[i] = is_fp8 ? fp8_to_f32(i, GREY_QUANT_FP8_E4M3) : 0.0f;
    __syncthreads();
    if (l.hadamard_k != 0) rotate_queries<GC>(q_shared, dim);
    const CodeValues values{is_fp8 ? fp8 : nullptr};

    const uint64_t begin = share.begin, end = share.end;
    const auto* table = reinterpret_cast<const uint64_t*>(a.blocks) + seq.table_offset;
    const uint32_t c0 = lane * CPL;
    const uint32_t code_bits = kv_code_bits(l.format);

    float m[GC], sum[GC], acc[GC][CPL];
#pragma unroll
    for (int g = 0; g < GC; ++g) {
        m[g] = -INFINITY;
        sum[g] = 0.0f;
#pragma unroll
        for (int j = 0; j < CPL; ++j) acc[g][j] = 0.0f;
    }

    for (uint64_t b = begin + warp; b < end; b += kWarps) {
        const uint64_t entry = table[b];
        const auto* block = reinterpret_cast<const uint8_t*>(entry & ~uint64_t{1});
        const uint64_t base = b * per_block;
        const uint32_t lo = seq.first > base ? static_cast<uint32_t>(seq.first - base) : 0u;
        const uint64_t remaining = seq.last - base;
        const uint32_t hi = remaining < per_block ? static_cast<uint32_t>(remaining) : per_block;
        const float sl = a.scale_log2;
        if ((entry & 1u) == 0)
            attend_block<16, CPL, GC>(l, slice_of<16>(l, block, a.layer, head), lo, hi, q_shared, warp_q, warp_p, sl, values, lane, m, sum, acc);
        else if (code_bits == 8)
            attend_block<8, CPL, GC>(l, slice_of<8>(l, block, a.layer, head), lo, hi, q_shared, warp_q, warp_p, sl, values, lane, m, sum, acc);
        else if (code_bits == 4)
            attend_block<4, CPL, GC>(l, slice_of<4>(l, block, a.layer, head), lo, hi, q_shared, warp_q, warp_p, sl, values, lane, m, sum, acc);
        else
            attend_block<2, CPL, GC>(l, slice_of<2>(l, block, a.layer, head), lo, hi, q_shared, warp_q, warp_p, sl, values, lane, m, sum, acc);
    }

    // The warps' states into shared memory (each warp's accumulator over its warp_q), merged per channel.
    __syncwarp();
    if (c0 < dim) {
#pragma unroll
        for (int g = 0; g < GC; ++g)
#pragma unroll
            for (int j = 0; j < CPL; ++j)
                if (c0 + j < dim) warp_q[(c0 + j) * GC + g] = acc[g][j];
    }
    if (lane == 0) {
#pragma unroll
        for (int g = 0; g < GC; ++g) {
            warp_stats[(warp * GC + g) * 2] = m[g];
            warp_stats[(warp * GC + g) * 2 + 1] = sum[g];
        }
    }
    __syncthreads();
    auto* partials = reinterpret_cast<float*>(a.partials);
    for (uint32_t i = threadIdx.x; i < dim * GC; i += blockDim.x) {
        const uint32_t c = i / GC, g = i % GC;
        if (g >= g_count) continue;
        float top = -INFINITY;
        for (uint32_t w = 0; w < kWarps; ++w) top = fmaxf(top, warp_stats[(w * GC + g) * 2]);
        float total = 0.0f, value = 0.0f;
        if (top != -INFINITY) {
            for (uint32_t w = 0; w < kWarps; ++w) {
                const float weight = exp2f(warp_stats[(w * GC + g) * 2] - top);
                total = fmaf(warp_stats[(w * GC + g) * 2 + 1], weight, total);
                value = fmaf(shared[dim * GC * (1 + w) + c * GC + g], weight, value);
            }
        }
        float* out = partials + ((uint64_t{sequence} * a.query_heads + q_first + g) * a.splits + blockIdx.x) * (dim + 2);
        out[c] = value;
        if (c == 0) {
            out[dim] = top;
            out[dim + 1] = total;
        }
    }
}

}  // namespace

#define GREY_KV_ATTEND_SPLIT(cpl, gc)                                                        \
    extern "C" __global__ void __launch_bounds__(GREY_KVK_ATTEND_WARPS * GREY_KVK_WARP_LANES) \
        grey_kv_attend_split_##cpl##_##gc(grey_kvk_attend_args a) {                         \
        attend_split<cpl, gc>(a);                                                            \
    }
#define GREY_KV_ATTEND_SPLITS(cpl) \
    GREY_KV_ATTEND_SPLIT(cpl, 1)   \
    GREY_KV_ATTEND_SPLIT(cpl, 2)   \
    GREY_KV_ATTEND_SPLIT(cpl, 4)   \
    GREY_KV_ATTEND_SPLIT(cpl, 8)
GREY_KV_ATTEND_SPLITS(1)
GREY_KV_ATTEND_SPLITS(2)
GREY_KV_ATTEND_SPLITS(4)
GREY_KV_ATTEND_SPLITS(8)

// One thread block per (sequence, query head), a thread per channel: the splits' partial results merged.
extern "C" __global__ void grey_kv_attend_combine(grey_kvk_attend_args a) {
    const uint32_t dim = a.layout.head_dim;
    const uint32_t c = threadIdx.x;
    if (c >= dim) return;
    const auto* partials = reinterpret_cast<const float*>(a.partials) + uint64_t{blockIdx.x} * a.splits * (dim + 2);
    float top = -INFINITY;
    for (uint32_t s = 0; s < a.splits; ++s) top = fmaxf(top, partials[s * (dim + 2) + dim]);
    float total = 0.0f, value = 0.0f;
    for (uint32_t s = 0; s < a.splits; ++s) {
        const float* part = partials + s * (dim + 2);
        if (part[dim] == -INFINITY) continue;
        const float weight = exp2f(part[dim] - top);
        total = fmaf(part[dim + 1], weight, total);
        value = fmaf(part[c], weight, value);
    }
    reinterpret_cast<float*>(a.output)[uint64_t{blockIdx.x} * dim + c] = value / total;
}

#if !defined(GREY_HIP)
#include "kv_attend_mma.cuh"
#endif
