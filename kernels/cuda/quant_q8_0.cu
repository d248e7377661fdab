// grey_quant_q8_0: RTN for Q8_0 on tensors that start 16-byte aligned with fewer than 2^31 elements,
// the elements kept in registers.
#include "quant_params.cuh"
#include "quant_reduce.cuh"

// RTN for Q8_0, both tensors 16-byte aligned: the elements stay in registers. A lane takes eight
// consecutive elements a step (two neighbouring 16-byte loads of F32, one of F16 or BF16), so four
// neighbouring lanes hold a block of 32 and find its absolute maximum with two shuffles, and the
// per-block work (the division, the reciprocal, the fp16 scale) is shared by eight elements a lane. A
// lane keeps GREY_QK_Q8_LOADS 16-byte loads in flight; a warp's steps cover contiguous memory, and its
// blocks pass through shared memory on the way out, so that they leave as whole 16-byte pieces (34-byte
// blocks are only 2-byte aligned). This beat four elements a lane (eight lanes a block, three shuffles)
// and grey_quant_blocks' cp.async staging (bench/RESULTS.md, "CUDA kernel design").
namespace {

constexpr int kQ8PerLane = 8;        // elements a lane a step
constexpr uint32_t kQ8LanesPerBlock = 32 / kQ8PerLane;
constexpr uint32_t kQ8StepBlocks = 32 / kQ8LanesPerBlock;  // blocks a warp a step

template <int kDtype>
constexpr int kQ8Pieces = kDtype == GREY_QK_F32 ? 2 : 1;   // 16-byte loads a lane a step
template <int kDtype>
constexpr int kQ8Steps = GREY_QK_Q8_LOADS / kQ8Pieces<kDtype>;

// The largest warp pass (F16 and BF16, whose steps take one load), in bytes of output.
constexpr uint32_t kQ8BlockBytes = grey::common::kQ8_0BlockBytes;  // the fp16 scale, then 32 codes
constexpr uint32_t kQ8StagedBytes = GREY_QK_Q8_LOADS * kQ8StepBlocks * kQ8BlockBytes;

// Whether the element or elements of a 32-bit word are finite (an exponent not all ones), from the bits:
// one test a word on the common path, the elements unpacked only when it fails.
template <int kDtype>
__device__ __forceinline__ bool words_finite(uint32_t word) {
    if (kDtype == GREY_QK_F32) return (word & 0x7F800000u) != 0x7F800000u;
    const uint32_t exponents = kDtype == GREY_QK_F16 ? 0x7C007C00u : 0x7F807F80u;
    return __vcmpeq2(word & exponents, exponents) == 0;
}

template <int kDtype>
__device__ __forceinline__ void quantize_q8_0(grey_qk_args a, unsigned char* staged) {
    constexpr int kPieces = kQ8Pieces<kDtype>;
    constexpr int kSteps = kQ8Steps<kDtype>;
    constexpr int kPerPiece = kQ8PerLane / kPieces;
    constexpr uint32_t kWarpBlocks = kSteps * kQ8StepBlocks;
    static_assert(kWarpBlocks == GREY_QK_Q8_WARP_BLOCKS(kDtype == GREY_QK_F32), "quantizer.cpp sizes the grid by this");
    a.format = kQ8_0;
    a.dtype = kDtype;
    const uint32_t blocks = static_cast<uint32_t>(a.elements / 32);
    const uint32_t lane = threadIdx.x & 31u;
    const uint32_t warps = blockDim.x / 32;
    const uint32_t passes = (blocks + kWarpBlocks - 1) / kWarpBlocks;
    const uint4* plain = reinterpret_cast<const uint4*>(a.plain);
    // Whole warps iterate together: the shuffles need every lane.
    for (uint32_t pass = blockIdx.x * warps + threadIdx.x / 32; pass < passes; pass += gridDim.x * warps) {
        const uint32_t first = pass * kWarpBlocks;
        const bool whole = first + kWarpBlocks <= blocks;
        // Step u of lane l holds the pass's elements 8 (32u + l) .. +7, of block (32u + l) / 4.
        uint4 raw[kSteps][kPieces];
#pragma unroll
        for (int u = 0; u < kSteps; ++u) {
            const uint32_t slot = 32 * u + lane;
            const bool inside = whole || first + slot / kQ8LanesPerBlock < blocks;
#pragma unroll
            for (int h = 0; h < kPieces; ++h)
                raw[u][h] = inside ? plain[static_cast<uint64_t>(first) * kQ8LanesPerBlock * kPieces + kPieces * slot + h]
                                   : make_uint4(0, 0, 0, 0);
        }
        bool finite = true;
#pragma unroll
        for (int u = 0; u < kSteps; ++u)
#pragma unroll
            for (int h = 0; h < kPieces; ++h)
                finite = finite && words_finite<kDtype>(raw[u][h].x) && words_finite<kDtype>(raw[u][h].y) &&
                         words_finite<kDtype>(raw[u][h].z) && words_finite<kDtype>(raw[u][h].w);
        if (!finite) {  // rare: one test for the pass, the search for the element only then
#pragma unroll
            for (int u = 0; u < kSteps; ++u)
#pragma unroll
                for (int h = 0; h < kPieces; ++h) {
                    float v[kPerPiece];
                    unpack16<kDtype>(raw[u][h], v);
#pragma unroll
                    for (int k = 0; k < kPerPiece; ++k)
                        note_if_not_finite(a, 32ull * first + kQ8PerLane * (32 * u + lane) + kPerPiece * h + k, v[k]);
                }
        }
        int overflowed = -1;  // the lane's first step whose block overflowed: its lowest such block
#pragma unroll
        for (int u = 0; u < kSteps; ++u) {
            const uint32_t slot = 32 * u + lane;
            float v[kQ8PerLane];
#pragma unroll
            for (int h = 0; h < kPieces; ++h) unpack16<kDtype>(raw[u][h], v + kPerPiece * h);
            float m = 0.0f;
#pragma unroll
            for (int k = 0; k < kQ8PerLane; ++k) m = fmaxf(m, fabsf(v[k]));
            const Coding c = make_coding(kQ8_0, Stats{max_tile(m, kQ8LanesPerBlock), INFINITY, -INFINITY, 0.0f}, 1.0f);
            const bool leads = slot % kQ8LanesPerBlock == 0;  // the block's first lane writes its scale
            if (overflowed < 0 && leads && overflows(c)) overflowed = u;
            unsigned char* at = staged + kQ8BlockBytes * (slot / kQ8LanesPerBlock);
            if (leads) store_u16_at(at, c.scale16);
#pragma unroll
            for (int k = 0; k < kQ8PerLane; k += 2)
                store_u16_at(at + 2 + kQ8PerLane * (slot % kQ8LanesPerBlock) + k,
                             encode_integer(kQ8_0, c, v[k]) | (encode_integer(kQ8_0, c, v[k + 1]) << 8));
        }
        // Rare. Blocks past the end hold zeros, which never overflow.
        if (overflowed >= 0) flag_overflow(a, 32ull * (first + (32 * static_cast<uint32_t>(overflowed) + lane) / kQ8LanesPerBlock));
        __syncwarp();
        unsigned char* out = reinterpret_cast<unsigned char*>(a.quantized) + uint64_t{kQ8BlockBytes} * first;
        if (whole) {  // first is a multiple of 32 blocks, whose 1088 bytes are whole 16-byte pieces
            for (uint32_t piece = lane; piece < kWarpBlocks * kQ8BlockBytes / 16; piece += 32)
                reinterpret_cast<uint4*>(out)[piece] = reinterpret_cast<const uint4*>(staged)[piece];
        } else {
            for (uint32_t byte = lane; byte < (blocks - first) * kQ8BlockBytes; byte += 32) out[byte] = staged[byte];
        }
        __syncwarp();  // the area is free for the next pass
    }
}

}  // namespace

// Four blocks a multiprocessor, so at most 64 registers: left alone, the compiler gives the kernel more,
// and fewer resident blocks leave memory idle.
extern "C" __global__ void __launch_bounds__(GREY_QK_Q8_THREADS, 4) grey_quant_q8_0(grey_qk_args a) {
    __shared__ __align__(16) unsigned char staged[GREY_QK_Q8_THREADS / 32][kQ8StagedBytes];
    with_dtype(a.dtype, [&]<int kDtype>() { quantize_q8_0<kDtype>(a, staged[threadIdx.x / 32]); });
}
