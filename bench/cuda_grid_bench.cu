// Which launch shape lets a streaming kernel reach cudaMemcpy's bandwidth: the measurements behind the
// grids and unrolling that backends/cuda/quantizer.cpp gives the fast quantization kernels.
//
// Every kernel here is a stripped-down copy of a real one (a plain copy; int8 per-row and int4 group-128
// dequantization to F32, as grey_dequant_fast does them; Q8_0 quantization of F32, as grey_quant_q8_0
// does it), launched two ways: a resident grid (as many
// blocks as fit on the device at once, looping over the tensor) and a spread grid (a block for every
// pass of the loop). Each is timed with CUDA events (median of 15 runs, 1 GiB of F32 output) beside
// cudaMemcpy device to device in the same run, and printed as bytes moved a second and as a ratio to it.
//
//   build/gpu/bin/grey_bench_cuda_grid        (built with -DGREY_BUILD_BENCH=ON and the CUDA backend)
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

void check(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return;
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
}

constexpr uint32_t kElements = 1u << 28;
constexpr uint32_t kRowLength = 4096;  // int8: a scale per row
constexpr uint32_t kGroup = 128;       // int4: a scale and a zero point per group

struct Tensors {
    const unsigned char* codes;
    const float* row_scale;
    const __half* group_mul;
    const __half* group_add;
    float* out;
    uint32_t n;
};

enum Format { kInt8Rows, kInt4Groups };

template <bool kStreaming>
__device__ __forceinline__ void store4(float* at, float4 v) {
    if (kStreaming) __stcs(reinterpret_cast<float4*>(at), v);
    else *reinterpret_cast<float4*>(at) = v;
}

// grey_dequant_fast's shape: chunks of four elements, kUnroll chunks a thread a pass, a block's chunks
// contiguous, a lane's stores 16 bytes each and a warp's contiguous.
template <Format kFormat, int kUnroll, bool kStreaming>
__global__ void __launch_bounds__(256) dequant_chunked(Tensors t) {
    const uint32_t chunks = t.n / 4, span = kUnroll * blockDim.x;
    for (uint32_t base = blockIdx.x * span + threadIdx.x; base < chunks; base += gridDim.x * span) {
        uint32_t codes[kUnroll];
        float mul[kUnroll], add[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const uint32_t c = base + u * blockDim.x;
            if (c >= chunks) continue;
            if (kFormat == kInt8Rows) {
                codes[u] = *reinterpret_cast<const uint32_t*>(t.codes + 4ull * c);
                mul[u] = t.row_scale[4 * c / kRowLength];
                add[u] = 0.0f;
            } else {
                const uint32_t h = *reinterpret_cast<const uint16_t*>(t.codes + 2ull * c);
                codes[u] = (h & 0xFu) | ((h & 0xF0u) << 4) | ((h & 0xF00u) << 8) | ((h & 0xF000u) << 12);
                mul[u] = __half2float(t.group_mul[4 * c / kGroup]);
                add[u] = __half2float(t.group_add[4 * c / kGroup]);
            }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const uint32_t c = base + u * blockDim.x;
            if (c >= chunks) continue;
            float y[4];
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                const uint32_t q = (codes[u] >> (8 * k)) & 0xFFu;
                const float value = kFormat == kInt8Rows ? static_cast<float>(static_cast<int8_t>(q)) : static_cast<float>(q);
                y[k] = __fadd_rn(__fmul_rn(value, mul[u]), add[u]);
            }
            store4<kStreaming>(t.out + 4ull * c, make_float4(y[0], y[1], y[2], y[3]));
        }
    }
}

// The other obvious shape: eight consecutive elements a thread (one 8- or 4-byte code load, two
// adjacent 16-byte stores), so that a warp's store instruction covers 1 KiB at a 32-byte stride.
template <Format kFormat>
__global__ void __launch_bounds__(256) dequant_eight_a_thread(Tensors t) {
    const uint32_t pieces = t.n / 8;
    for (uint32_t p = blockIdx.x * blockDim.x + threadIdx.x; p < pieces; p += gridDim.x * blockDim.x) {
        const uint32_t first = 8 * p;
        uint32_t chunk_codes[2];
        float mul, add = 0.0f;
        if (kFormat == kInt8Rows) {
            const uint2 v = *reinterpret_cast<const uint2*>(t.codes + first);
            chunk_codes[0] = v.x;
            chunk_codes[1] = v.y;
            mul = t.row_scale[first / kRowLength];
        } else {
            const uint32_t v = *reinterpret_cast<const uint32_t*>(t.codes + first / 2);
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const uint32_t n = (v >> (16 * h)) & 0xFFFFu;
                chunk_codes[h] = (n & 0xFu) | ((n & 0xF0u) << 4) | ((n & 0xF00u) << 8) | ((n & 0xF000u) << 12);
            }
            mul = __half2float(t.group_mul[first / kGroup]);
            add = __half2float(t.group_add[first / kGroup]);
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float y[4];
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                const uint32_t q = (chunk_codes[h] >> (8 * k)) & 0xFFu;
                const float value = kFormat == kInt8Rows ? static_cast<float>(static_cast<int8_t>(q)) : static_cast<float>(q);
                y[k] = __fadd_rn(__fmul_rn(value, mul), add);
            }
            store4<false>(t.out + first + 4 * h, make_float4(y[0], y[1], y[2], y[3]));
        }
    }
}

// grey_quant_q8_0's shape for F32: a lane takes kPerLane consecutive elements a step (one or two
// neighbouring 16-byte loads), so 32 / kPerLane lanes hold a block of 32, with 8 loads a lane in
// flight; the absolute maximum by shuffles, an fp16 scale, and the 34-byte blocks staged in shared
// memory and stored 16 bytes a lane. grey_quant_q8_0 takes 8 elements a lane.
template <int kPerLane>
__global__ void __launch_bounds__(256) q8_0_registers(const float* in, unsigned char* out, uint32_t blocks) {
    constexpr int kPieces = kPerLane / 4, kSteps = 8 / kPieces;
    constexpr uint32_t kLanesPerBlock = 32 / kPerLane, kWarpBlocks = kSteps * 32 / kLanesPerBlock;
    __shared__ __align__(16) unsigned char staged[8][kWarpBlocks * 34];
    const uint32_t lane = threadIdx.x & 31u, warp = threadIdx.x / 32;
    const uint32_t passes = (blocks + kWarpBlocks - 1) / kWarpBlocks;
    for (uint32_t pass = blockIdx.x * 8 + warp; pass < passes; pass += gridDim.x * 8) {
        const uint32_t first = pass * kWarpBlocks;
        float4 v[kSteps][kPieces];
#pragma unroll
        for (int u = 0; u < kSteps; ++u)
#pragma unroll
            for (int h = 0; h < kPieces; ++h) v[u][h] = reinterpret_cast<const float4*>(in + 32ull * first)[kPieces * (32 * u + lane) + h];
#pragma unroll
        for (int u = 0; u < kSteps; ++u) {
            float m = 0.0f;
#pragma unroll
            for (int h = 0; h < kPieces; ++h) m = fmaxf(m, fmaxf(fmaxf(fabsf(v[u][h].x), fabsf(v[u][h].y)), fmaxf(fabsf(v[u][h].z), fabsf(v[u][h].w))));
            for (uint32_t offset = kLanesPerBlock / 2; offset > 0; offset /= 2) m = fmaxf(m, __shfl_xor_sync(0xFFFFFFFFu, m, offset, kLanesPerBlock));
            const float d = __fdiv_rn(m, 127.0f);
            const float id = d != 0.0f ? __frcp_rn(d) : 0.0f;
            const uint32_t slot = 32 * u + lane;
            unsigned char* at = staged[warp] + 34 * (slot / kLanesPerBlock);
            if (slot % kLanesPerBlock == 0) *reinterpret_cast<uint16_t*>(at) = __half_as_ushort(__float2half_rn(d));
#pragma unroll
            for (int h = 0; h < kPieces; ++h) {
                const float x[4] = {v[u][h].x, v[u][h].y, v[u][h].z, v[u][h].w};
                uint32_t word = 0;
#pragma unroll
                for (int k = 0; k < 4; ++k) word |= (static_cast<uint32_t>(static_cast<int32_t>(roundf(__fmul_rn(x[k], id)))) & 0xFFu) << (8 * k);
                uint16_t* codes = reinterpret_cast<uint16_t*>(at + 2 + kPerLane * (slot % kLanesPerBlock) + 4 * h);
                codes[0] = static_cast<uint16_t>(word);
                codes[1] = static_cast<uint16_t>(word >> 16);
            }
        }
        __syncwarp();
        for (uint32_t p = lane; p < kWarpBlocks * 34 / 16; p += 32)
            reinterpret_cast<uint4*>(out + 34ull * first)[p] = reinterpret_cast<const uint4*>(staged[warp])[p];
        __syncwarp();
    }
}

__global__ void __launch_bounds__(256) copy_kernel(const float4* in, float4* out, uint32_t count) {
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) out[i] = in[i];
}

__global__ void __launch_bounds__(256) fill_kernel(float4* out, uint32_t count) {
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) out[i] = make_float4(1, 2, 3, 4);
}

class Timer {
public:
    Timer() {
        check(cudaEventCreate(&start_), "cudaEventCreate");
        check(cudaEventCreate(&stop_), "cudaEventCreate");
    }
    ~Timer() {
        cudaEventDestroy(start_);
        cudaEventDestroy(stop_);
    }
    template <typename F>
    float median_ms(F&& enqueue, int repeat = 15) {
        enqueue();  // warm-up
        check(cudaDeviceSynchronize(), "warm-up");
        std::vector<float> times;
        for (int r = 0; r < repeat; ++r) {
            cudaEventRecord(start_);
            enqueue();
            cudaEventRecord(stop_);
            check(cudaEventSynchronize(stop_), "kernel");
            float ms = 0;
            cudaEventElapsedTime(&ms, start_, stop_);
            times.push_back(ms);
        }
        check(cudaGetLastError(), "launch");
        std::sort(times.begin(), times.end());
        return times[times.size() / 2];
    }

private:
    cudaEvent_t start_{}, stop_{};
};

template <typename Kernel>
unsigned int resident_grid(Kernel kernel, int multiprocessors) {
    int per_multiprocessor = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_multiprocessor, kernel, 256, 0), "occupancy");
    return static_cast<unsigned int>(per_multiprocessor * multiprocessors);
}

}  // namespace

int main() {
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    const int sms = prop.multiProcessorCount;
    std::printf("%s, %d multiprocessors; %u elements, medians of 15 runs\n", prop.name, sms, kElements);

    unsigned char* codes = nullptr;
    float *row_scale = nullptr, *in = nullptr, *out = nullptr;
    __half *group_mul = nullptr, *group_add = nullptr;
    check(cudaMalloc(&codes, kElements), "cudaMalloc");
    check(cudaMalloc(&row_scale, kElements / kRowLength * sizeof(float)), "cudaMalloc");
    check(cudaMalloc(&group_mul, kElements / kGroup * sizeof(__half)), "cudaMalloc");
    check(cudaMalloc(&group_add, kElements / kGroup * sizeof(__half)), "cudaMalloc");
    check(cudaMalloc(&in, 4ull * kElements), "cudaMalloc");
    check(cudaMalloc(&out, 4ull * kElements), "cudaMalloc");
    check(cudaMemset(codes, 0x35, kElements), "cudaMemset");
    check(cudaMemset(row_scale, 0x3c, kElements / kRowLength * sizeof(float)), "cudaMemset");
    check(cudaMemset(group_mul, 0x3c, kElements / kGroup * sizeof(__half)), "cudaMemset");
    check(cudaMemset(group_add, 0x00, kElements / kGroup * sizeof(__half)), "cudaMemset");
    check(cudaMemset(in, 0x3c, 4ull * kElements), "cudaMemset");

    Timer timer;
    const double memcpy_ms = timer.median_ms([&] { cudaMemcpyAsync(out, in, 4ull * kElements, cudaMemcpyDeviceToDevice); });
    const double memcpy_gbs = 8.0 * kElements / (memcpy_ms * 1e6);
    std::printf("%-52s %8s  %s\n", "", "GB/s", "x memcpy");
    auto report = [&](const char* name, double bytes, double ms) {
        const double gbs = bytes / (ms * 1e6);
        std::printf("%-52s %8.1f  %.3f\n", name, gbs, gbs / memcpy_gbs);
    };
    report("cudaMemcpy device to device", 8.0 * kElements, memcpy_ms);

    const uint32_t vectors = kElements / 4;
    const unsigned int spread_vectors = (vectors + 255) / 256;
    report("copy, resident grid", 8.0 * kElements,
           timer.median_ms([&] { copy_kernel<<<resident_grid(copy_kernel, sms), 256>>>((const float4*)in, (float4*)out, vectors); }));
    report("copy, spread grid", 8.0 * kElements,
           timer.median_ms([&] { copy_kernel<<<spread_vectors, 256>>>((const float4*)in, (float4*)out, vectors); }));
    report("writes only, resident grid", 4.0 * kElements,
           timer.median_ms([&] { fill_kernel<<<resident_grid(fill_kernel, sms), 256>>>((float4*)out, vectors); }));
    report("writes only, spread grid", 4.0 * kElements, timer.median_ms([&] { fill_kernel<<<spread_vectors, 256>>>((float4*)out, vectors); }));

    const Tensors t{codes, row_scale, group_mul, group_add, out, kElements};
    auto chunked = [&]<Format kFormat, int kUnroll, bool kStreaming>(const char* label, double bytes) {
        const auto kernel = dequant_chunked<kFormat, kUnroll, kStreaming>;
        const unsigned int spread = (vectors + kUnroll * 256 - 1) / (kUnroll * 256);
        char name[96];
        std::snprintf(name, sizeof name, "%s, %d chunk%s a pass%s, resident grid", label, kUnroll, kUnroll > 1 ? "s" : "",
                      kStreaming ? ", .cs stores" : "");
        report(name, bytes, timer.median_ms([&] { kernel<<<resident_grid(kernel, sms), 256>>>(t); }));
        std::snprintf(name, sizeof name, "%s, %d chunk%s a pass%s, spread grid", label, kUnroll, kUnroll > 1 ? "s" : "",
                      kStreaming ? ", .cs stores" : "");
        report(name, bytes, timer.median_ms([&] { kernel<<<spread, 256>>>(t); }));
    };
    auto eight = [&]<Format kFormat>(const char* label, double bytes) {
        const auto kernel = dequant_eight_a_thread<kFormat>;
        char name[96];
        std::snprintf(name, sizeof name, "%s, 8 elements a thread, spread grid", label);
        report(name, bytes, timer.median_ms([&] { kernel<<<(kElements / 8 + 255) / 256, 256>>>(t); }));
    };
    auto dequantization = [&]<Format kFormat>(const char* label, double bytes) {  // bytes: codes read, output written
        chunked.operator()<kFormat, 1, false>(label, bytes);
        chunked.operator()<kFormat, 2, false>(label, bytes);
        chunked.operator()<kFormat, 2, true>(label, bytes);
        chunked.operator()<kFormat, 4, false>(label, bytes);
        chunked.operator()<kFormat, 4, true>(label, bytes);
        eight.operator()<kFormat>(label, bytes);
    };
    dequantization.operator()<kInt8Rows>("int8 rows -> F32", 5.0 * kElements);
    dequantization.operator()<kInt4Groups>("int4 g128 -> F32", 4.5 * kElements);
    auto q8_0 = [&]<int kPerLane>() {  // bytes: the F32 read, the 34-byte blocks written
        const auto kernel = q8_0_registers<kPerLane>;
        const uint32_t blocks = kElements / 32;
        const double bytes = 4.0 * kElements + 34.0 * blocks;
        char name[96];
        std::snprintf(name, sizeof name, "F32 -> q8_0, %d elements a lane, resident grid", kPerLane);
        report(name, bytes, timer.median_ms([&] { kernel<<<resident_grid(kernel, sms), 256>>>(in, reinterpret_cast<unsigned char*>(out), blocks); }));
        std::snprintf(name, sizeof name, "F32 -> q8_0, %d elements a lane, spread grid", kPerLane);
        report(name, bytes, timer.median_ms([&] { kernel<<<blocks / (8 * 32), 256>>>(in, reinterpret_cast<unsigned char*>(out), blocks); }));
    };
    q8_0.operator()<4>();
    q8_0.operator()<8>();
    cudaFree(codes);
    cudaFree(row_scale);
    cudaFree(group_mul);
    cudaFree(group_add);
    cudaFree(in);
    cudaFree(out);
    return 0;
}
