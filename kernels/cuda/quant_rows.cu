// grey_quant_rows: RTN for INT8 / INT8_TOKEN / FP8 when each run (a row) owns its scale, a block per
// row. Rows of up to blockDim * 4 * kChunks elements stay in registers between finding the maximum and
// encoding, so the row is read from memory once.
#include "quant_params.cuh"
#include "quant_reduce.cuh"

namespace {

// The absolute maximum over the block (every thread gets it) with one barrier: `scratch` holds a float
// per warp and alternates between two arrays from one row to the next, so that a row's writes never
// meet the previous row's reads.
__device__ __forceinline__ float block_max_once(float m, float* scratch) {
    m = max_tile(m, 32);
    if ((threadIdx.x & 31u) == 0) scratch[threadIdx.x / 32] = m;
    __syncthreads();
    float result = 0.0f;
    for (unsigned int w = 0; w < blockDim.x / 32; ++w) result = fmaxf(result, scratch[w]);
    return result;
}

// FP8 codes two at a time (one cvt.rn.satfinite...x2 where encode takes two conversions and two NaN
// tests): the same bytes as encode whenever neither product x * e_mul is NaN. That holds for a whole
// row once e_mul is finite, since the rows kernels only keep the codes of rows whose elements are all
// finite (any other element fails the job).
__device__ __forceinline__ bool packs_fp8_pairs(int format, const Coding& c) {
    return kHardwareFp8 && is_fp8(format) && isfinite(c.e_mul);
}

__device__ __forceinline__ uint32_t fp8_pair(float low, float high, const Coding& c, int format) {
    if constexpr (kHardwareFp8) {
        const float2 scaled = make_float2(__fmul_rn(low, c.e_mul), __fmul_rn(high, c.e_mul));
        return __nv_cvt_float2_to_fp8x2(scaled, __NV_SATFINITE, format == kFp8E4M3 ? __NV_E4M3 : __NV_E5M2);
    } else {
        return f32_to_fp8(__fmul_rn(low, c.e_mul), format) | (f32_to_fp8(__fmul_rn(high, c.e_mul), format) << 8);
    }
}

// Rows of up to blockDim * 4 * kChunks elements, held in registers between finding the maximum and
// encoding; the block's next row is loaded while this one is encoded, so that its loads are in flight
// through the reduction and the stores.
template <int kChunks>
__device__ __forceinline__ void rows_in_registers(const grey_qk_args& a, const Tables& tables, float (*scratch)[32]) {
    const uint64_t L = a.run_length;
    float v[kChunks][4], next[kChunks][4];
    const auto load_row = [&](uint64_t r, float (&w)[kChunks][4]) {
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
            const uint64_t i = 4 * (threadIdx.x + static_cast<uint64_t>(blockDim.x) * c);
            if (i < L) load4(a, r * L + i, w[c]);
        }
    };
    uint64_t r = blockIdx.x;
    if (r < a.param_count) load_row(r, v);
    for (int parity = 0; r < a.param_count; r += gridDim.x, parity ^= 1) {
        if (r + gridDim.x < a.param_count) load_row(r + gridDim.x, next);
        const uint64_t first = r * L;
        float m = 0.0f;
        bool finite = true;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
            const uint64_t i = 4 * (threadIdx.x + static_cast<uint64_t>(blockDim.x) * c);
            if (i < L) {
#pragma unroll
                for (int k = 0; k < 4; ++k) {
                    finite = finite && isfinite(v[c][k]);
                    m = fmaxf(m, fabsf(v[c][k]));
                }
            }
        }
        if (!finite) {  // rare; unrolled, since an array indexed at run time would live in local memory
#pragma unroll
            for (int c = 0; c < kChunks; ++c) {
                const uint64_t i = 4 * (threadIdx.x + static_cast<uint64_t>(blockDim.x) * c);
                if (i < L)
#pragma unroll
                    for (int k = 0; k < 4; ++k) note_if_not_finite(a, first + i + k, v[c][k]);
            }
        }
        const Stats s{block_max_once(m, scratch[parity]), 0.0f, 0.0f, 0.0f};
        const Coding coding = make_coding(a.format, s, 1.0f);
        if (threadIdx.x == 0) store_params(a, r, coding);
        const bool pairs = packs_fp8_pairs(a.format, coding);
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
            const uint64_t i = 4 * (threadIdx.x + static_cast<uint64_t>(blockDim.x) * c);
            if (i < L) {
                uint32_t word;
                if (pairs) {
                    word = fp8_pair(v[c][0], v[c][1], coding, a.format) | (fp8_pair(v[c][2], v[c][3], coding, a.format) << 16);
                } else {
                    uint32_t q[4];
#pragma unroll
                    for (int k = 0; k < 4; ++k) q[k] = encode(a.format, coding, v[c][k], tables);
                    word = pack_bytes(q);
                }
                store_u32(a.quantized + first + i, word);
            }
        }
#pragma unroll
        for (int c = 0; c < kChunks; ++c)
#pragma unroll
            for (int k = 0; k < 4; ++k) v[c][k] = next[c][k];
    }
}

// Any other row: the maximum in a first pass, the codes in a second that reads the row again.
__device__ __forceinline__ void rows_two_pass(const grey_qk_args& a, const Tables& tables, float (*scratch)[32]) {
    const uint64_t L = a.run_length;
    int parity = 0;
    for (uint64_t r = blockIdx.x; r < a.param_count; r += gridDim.x, parity ^= 1) {
        const uint64_t first = r * L;
        float m = 0.0f;
        for (uint64_t i = threadIdx.x; i < L; i += blockDim.x) {
            const float v = load_element(a, first + i);
            note_if_not_finite(a, first + i, v);
            m = fmaxf(m, fabsf(v));
        }
        const Stats s{block_max_once(m, scratch[parity]), 0.0f, 0.0f, 0.0f};
        const Coding coding = make_coding(a.format, s, 1.0f);
        if (threadIdx.x == 0) store_params(a, r, coding);
        for (uint64_t i = threadIdx.x; i < L; i += blockDim.x)
            reinterpret_cast<unsigned char*>(a.quantized)[first + i] =
                static_cast<unsigned char>(encode(a.format, coding, load_element(a, first + i), tables));
    }
}

}  // namespace

extern "C" __global__ void __launch_bounds__(256, 3) grey_quant_rows(grey_qk_args a) {
    __shared__ Tables tables;
    __shared__ float scratch[2][32];
    build_tables(a.format, kEncodeTables, tables);
    const uint64_t L = a.run_length;
    // Sixteen floats a thread, and sixteen more for the next row, keep the kernel at three resident
    // blocks per multiprocessor; longer rows take the two-pass path (their second read mostly hits L2).
    with_dtype(a.dtype, [&]<int kDtype>() {
        // The format and the plain type as compile-time constants: the per-element branches fold away.
        const auto run = [&]<int kFormat>() {
            grey_qk_args b = a;
            b.format = kFormat;
            b.dtype = kDtype;
            if (L % 4 == 0 && L <= 16ull * blockDim.x) rows_in_registers<4>(b, tables, scratch);
            else rows_two_pass(b, tables, scratch);
        };
        switch (a.format) {
            case kInt8: run.template operator()<kInt8>(); break;
            case kInt8Token: run.template operator()<kInt8Token>(); break;
            case kFp8E4M3: run.template operator()<kFp8E4M3>(); break;
            default: run.template operator()<kFp8E5M2>(); break;
        }
    });
}
