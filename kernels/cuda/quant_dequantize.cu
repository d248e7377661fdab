// Dequantization of every format: grey_dequant at any alignment and size, grey_dequant_fast for tensors
// that start 16-byte aligned with fewer than 2^31 elements whose every four consecutive elements share a
// parameter set (backends/cuda/quantizer.cpp chooses).
#include "quant_codes.cuh"
#include "quant_position.cuh"

// Dequantization of every format. A thread takes four elements at a time, so that a warp's loads and
// stores cover contiguous memory (512 bytes of F32 per store instruction), and two such chunks per
// iteration, whose loads are all issued before any is decoded.
namespace {

constexpr int kDequantUnroll = 2;

__device__ __forceinline__ void store4(const grey_qk_args& a, uint64_t first, uint64_t count, const float* y) {
    const uint64_t at = a.plain + first * element_bytes(a.dtype);
    if (count == 4 && a.dtype == GREY_QK_F32 && aligned(at, 16)) {
        *reinterpret_cast<float4*>(at) = make_float4(y[0], y[1], y[2], y[3]);
    } else if (count == 4 && a.dtype != GREY_QK_F32 && aligned(at, 8)) {
        uint32_t h[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) h[k] = a.dtype == GREY_QK_F16 ? f32_to_f16(y[k]) : f32_to_bf16(y[k]);
        *reinterpret_cast<uint2*>(at) = make_uint2(h[0] | (h[1] << 16), h[2] | (h[3] << 16));
    } else {
#pragma unroll
        for (int k = 0; k < 4; ++k)
            if (k < count) store_element(a, first + k, y[k]);
    }
}

}  // namespace

namespace {

// The loop for one format and one output type, both compile-time constants: the per-element branches
// on them fold away, and the loads of the next chunks can be scheduled before this one's stores.
template <int kFormat, int kDtype>
__device__ __forceinline__ void dequant_loop(grey_qk_args a, const Tables& tables) {
    a.format = kFormat;
    a.dtype = kDtype;
    const uint64_t chunks = (a.elements + 3) / 4;
    const uint64_t stride = grid_threads();
    for (uint64_t base = global_thread(); base < chunks; base += kDequantUnroll * stride) {
        uint32_t codes[kDequantUnroll][4];
        Decoding coding[kDequantUnroll];
        Position at[kDequantUnroll];
        uint64_t count[kDequantUnroll];
#pragma unroll
        for (int u = 0; u < kDequantUnroll; ++u) {
            const uint64_t chunk = base + u * stride;
            const uint64_t first = 4 * chunk;
            count[u] = chunk < chunks ? (a.elements - first < 4 ? a.elements - first : 4) : 0;
            if (count[u] == 0) continue;
            load_codes4(a, first, count[u], codes[u]);
            at[u] = locate(a, first);
            coding[u] = load_params(a, at[u].set);
        }
#pragma unroll
        for (int u = 0; u < kDequantUnroll; ++u) {
            if (count[u] == 0) continue;
            float y[4];
            if (count[u] == 4 && at[u].offset + 4 <= a.run_length) {  // one parameter set for all four
#pragma unroll
                for (int k = 0; k < 4; ++k) y[k] = decode(kFormat, coding[u], codes[u][k], tables);
            } else {
#pragma unroll
                for (int k = 0; k < 4; ++k)
                    if (k < count[u]) {
                        y[k] = decode(kFormat, load_params(a, at[u].set), codes[u][k], tables);
                        advance(a, at[u]);
                    }
            }
            store4(a, 4 * (base + u * stride), count[u], y);
        }
    }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256, 4) grey_dequant(grey_qk_args a) {
    __shared__ Tables tables;
    build_tables(a.format, kDecodeTables, tables);
    with_dtype(a.dtype, [&]<int kDtype>() { with_format(a.format, [&]<int kFormat>() { dequant_loop<kFormat, kDtype>(a, tables); }); });
}

// ------------------------------------------------------------------------------------------------
// Fast paths. quantizer.cpp takes them when both tensors start 16-byte aligned (pool buffers do), the
// element count fits 32-bit indices and, for dequantization, every four consecutive elements share a
// parameter set. The kernels then make no alignment checks, index in 32 bits and divide through
// multipliers, so that what is left per element is the encode or decode itself: the general kernels
// above spend most of their instructions on addressing (bench/RESULTS.md, "CUDA kernel design").

namespace {

// The codes of chunk c (elements 4c .. 4c+3) of a dequantization, byte k holding element k's: the ggml
// formats and the 8-bit planar ones.
template <int kFormat>
__device__ __forceinline__ uint32_t chunk_codes(const grey_qk_args& a, uint32_t c) {
    if (is_ggml(kFormat)) {
        const uint64_t block = a.quantized + static_cast<uint64_t>(c >> 3) * ggml_block_bytes(kFormat);
        const uint32_t j = (c & 7u) * 4;  // the chunk's first element in its block of 32
        // Q8_0 and Q4_0 blocks (34 and 18 bytes) keep their codes 2-byte aligned; Q4_1's are 4-byte aligned.
        const uint64_t at = block + ggml_header_bytes(kFormat) + (kFormat == kQ8_0 ? j : (j & 15u));
        const uint32_t bytes = kFormat == kQ4_1 ? load_u32<true>(at) : load_u16<true>(at) | (load_u16<true>(at + 2) << 16);
        if (kFormat == kQ8_0) return bytes;
        return (bytes >> (j < 16 ? 0 : 4)) & 0x0F0F0F0Fu;  // codes j+16.. are the high nibbles of bytes j..
    }
    return load_u32<true>(a.quantized + 4ull * c);  // 8-bit planar codes (the 4-bit ones: dequant_fast_planar4)
}

// Four planar nibbles (low first), one to a byte.
__device__ __forceinline__ uint32_t spread_nibbles(uint32_t n) {
    return (n & 0xFu) | ((n & 0xF0u) << 4) | ((n & 0xF00u) << 8) | ((n & 0xF000u) << 12);
}

// Streaming stores (st.global.cs): the output is not read again by this kernel, and marking it so is
// measurably faster (bench/cuda_grid_bench.cu).
template <int kDtype>
__device__ __forceinline__ void store4_aligned(uint64_t plain, uint32_t c, const float* y) {
    if (kDtype == GREY_QK_F32) {
        __stcs(reinterpret_cast<float4*>(plain + 16ull * c), make_float4(y[0], y[1], y[2], y[3]));
    } else {
        uint32_t h[4];
#pragma unroll
        for (int k = 0; k < 4; ++k) h[k] = kDtype == GREY_QK_F16 ? f32_to_f16(y[k]) : f32_to_bf16(y[k]);
        __stcs(reinterpret_cast<uint2*>(plain + 8ull * c), make_uint2(h[0] | (h[1] << 16), h[2] | (h[3] << 16)));
    }
}

// Decodes chunk c's four codes (byte k holding element k's) and stores the four values.
template <int kFormat, int kDtype>
__device__ __forceinline__ void decode_chunk(const grey_qk_args& a, uint32_t c, uint32_t codes, const Decoding& coding, const Tables& tables) {
    float y[4];
    // Every fp8 value is an fp16 value, so the hardware conversion through fp16 (two codes an
    // instruction) gives the table's floats (a NaN code gives a NaN either way), and grey_dequant_fast
    // builds no table there, which is faster than the table (bench/RESULTS.md).
    if constexpr (kHardwareFp8 && is_fp8(kFormat)) {
        const auto kind = kFormat == kFp8E4M3 ? __NV_E4M3 : __NV_E5M2;
        const __half2_raw low = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(codes & 0xFFFFu), kind);
        const __half2_raw high = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(codes >> 16), kind);
        const uint32_t halves[4] = {low.x, low.y, high.x, high.y};
#pragma unroll
        for (int k = 0; k < 4; ++k) y[k] = __fmul_rn(f16_to_f32(halves[k]), coding.scale);
    } else {
#pragma unroll
        for (int k = 0; k < 4; ++k) y[k] = decode(kFormat, coding, (codes >> (8 * k)) & 0xFFu, tables);
    }
    store4_aligned<kDtype>(a.plain, c, y);
}

// Chunks of four elements, the warp's covering contiguous memory (a 16-byte store a lane), and
// kFastUnroll chunks a thread in flight: their code and parameter loads are all issued before the
// first decode. quantizer.cpp launches a block for every kFastUnroll * blockDim chunks.
template <int kFormat, int kDtype>
__device__ __forceinline__ void dequant_fast_loop(grey_qk_args a, const Tables& tables) {
    constexpr int kFastUnroll = GREY_QK_DEQUANT_FAST_CHUNKS;
    a.format = kFormat;
    a.dtype = kDtype;
    const uint32_t chunks = static_cast<uint32_t>(a.elements / 4);
    // A block takes kFastUnroll * blockDim consecutive chunks at a time, so that its stores fill one
    // contiguous stretch of memory (8 KiB of F32) rather than pieces a grid apart.
    const uint32_t span = kFastUnroll * blockDim.x;
    for (uint32_t base = blockIdx.x * span + threadIdx.x; base < chunks; base += gridDim.x * span) {
        uint32_t codes[kFastUnroll] = {};
        Decoding coding[kFastUnroll] = {};
#pragma unroll
        for (int u = 0; u < kFastUnroll; ++u) {
            const uint32_t c = base + u * blockDim.x;
            if (c >= chunks) continue;
            codes[u] = chunk_codes<kFormat>(a, c);
            coding[u] = load_params<true>(a, is_ggml(kFormat) ? c >> 3 : set_of(a, 4 * c));
        }
#pragma unroll
        for (int u = 0; u < kFastUnroll; ++u) {
            const uint32_t c = base + u * blockDim.x;
            if (c < chunks) decode_chunk<kFormat, kDtype>(a, c, codes[u], coding[u], tables);
        }
    }
}

// The planar 4-bit formats (INT4, INT4_SYM, NF4), whose chunk has 2 bytes of codes: a warp takes
// kUnroll * 32 consecutive chunks, loads their codes a 4-byte word a lane (128 bytes a warp
// instruction, where loading each chunk's own 2 bytes gives 64) and hands each lane its chunk's half
// word with a shuffle.
template <int kFormat, int kDtype>
__device__ __forceinline__ void dequant_fast_planar4(grey_qk_args a, const Tables& tables) {
    constexpr int kUnroll = GREY_QK_DEQUANT_FAST_CHUNKS;
    static_assert(kUnroll % 2 == 0, "a word holds two chunks");
    a.format = kFormat;
    a.dtype = kDtype;
    const uint32_t chunks = static_cast<uint32_t>(a.elements / 4);
    const uint32_t lane = threadIdx.x & 31u;
    const uint32_t span = kUnroll * blockDim.x;
    // Whole warps iterate together (the shuffles need every lane); `first` is a multiple of 64, so every
    // word is 4-byte aligned.
    for (uint32_t first = blockIdx.x * span + (threadIdx.x & ~31u) * kUnroll; first < chunks; first += gridDim.x * span) {
        uint32_t words[kUnroll / 2];
#pragma unroll
        for (int h = 0; h < kUnroll / 2; ++h) {
            const uint32_t pair = first + 64 * h + 2 * lane;  // the word's first chunk
            words[h] = pair + 1 < chunks ? load_u32<true>(a.quantized + 2ull * pair)
                       : pair < chunks   ? load_u16<true>(a.quantized + 2ull * pair)
                                         : 0u;
        }
        Decoding coding[kUnroll] = {};
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const uint32_t c = first + 32 * u + lane;
            if (c < chunks) coding[u] = load_params<true>(a, set_of(a, 4 * c));
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            // Chunk first + 32u + lane is half (lane % 2) of word (u / 2) of lane 16 (u % 2) + lane / 2.
            const uint32_t word = __shfl_sync(0xFFFFFFFFu, words[u / 2], 16 * (u % 2) + lane / 2);
            const uint32_t c = first + 32 * u + lane;
            if (c < chunks) decode_chunk<kFormat, kDtype>(a, c, spread_nibbles((word >> (16 * (lane & 1u))) & 0xFFFFu), coding[u], tables);
        }
    }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256) grey_dequant_fast(grey_qk_args a) {
    __shared__ Tables tables;
    build_tables(a.format, kHardwareFp8 && is_fp8(a.format) ? 0u : kDecodeTables, tables);  // decode_chunk converts fp8 in hardware
    with_dtype(a.dtype, [&]<int kDtype>() {
        with_format(a.format, [&]<int kFormat>() {
            if constexpr (is_four_bit(kFormat) && !is_ggml(kFormat)) dequant_fast_planar4<kFormat, kDtype>(a, tables);
            else dequant_fast_loop<kFormat, kDtype>(a, tables);
        });
    });
}
