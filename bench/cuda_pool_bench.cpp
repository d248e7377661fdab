// The CUDA backend's pool and copies against what a CUDA program would otherwise use, in one run:
//   1. alloc+free pair latency over a size mix 256 B .. 64 MiB: VmmPool, grey_buffer_create/destroy
//      (the public API: pool + buffer object + context bookkeeping), cudaMalloc+cudaFree, and a warm
//      cudaMallocAsync pool (host-side cost of the enqueued pair; the stream is synchronised between
//      timed blocks, outside the timing);
//   2. pool growth per 2 MiB chunk (each request maps exactly one new chunk), and a 128 MiB growth;
//   3. copy bandwidth: the backend's copy kernel and cuMemcpyDtoDAsync on pool memory, and cudaMemcpy
//      on cudaMalloc memory (D2D); H2D and D2H from pinned host memory, backend vs cudaMemcpy.
// Every latency is the median of blocks (block time / pairs in the block). Prints a Markdown table.
#include "cuda/device_runtime.hpp"
#include "grey.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

void cuda_check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) {
        std::fprintf(stderr, "%s failed: %s\n", what, cudaGetErrorString(e));
        std::exit(1);
    }
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

// Median over `blocks` of the time per pair of a block of `per_block` pairs, in microseconds.
double time_pairs(int blocks, int per_block, const std::vector<size_t>& sizes, const std::function<void(size_t)>& pair,
                  const std::function<void()>& between = {}) {
    std::vector<double> per_pair;
    size_t k = 0;
    for (int b = 0; b < blocks; ++b) {
        const auto t0 = Clock::now();
        for (int i = 0; i < per_block; ++i) pair(sizes[k++ % sizes.size()]);
        const auto t1 = Clock::now();
        if (between) between();
        per_pair.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / per_block);
    }
    return median(per_pair);
}

}  // namespace

int main() {
    cuda_check(cudaSetDevice(0), "cudaSetDevice");
    cuda_check(cudaFree(nullptr), "cudaFree(0) (context creation)");
    cudaDeviceProp prop{};
    cuda_check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    size_t free_bytes = 0, total_bytes = 0;
    cuda_check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");

    grey::cuda::Driver driver("libcuda.so.1");
    grey::cuda::DeviceRuntime runtime(driver, 0, total_bytes);
    grey::cuda::VmmPool& pool = runtime.pool();

    // The size mix: 256 B .. 64 MiB, log-uniform, shuffled; the same sequence for every allocator.
    std::mt19937_64 rng(12345);
    std::vector<size_t> sizes;
    for (int i = 0; i < 4096; ++i) {
        const double log2 = 8.0 + std::uniform_real_distribution<double>(0.0, 18.0)(rng);
        sizes.push_back(static_cast<size_t>(std::pow(2.0, log2)));
    }
    // Warm the pool so it holds the largest size (a pair then never maps memory).
    pool.release(pool.allocate(64u << 20));

    const double pool_us = time_pairs(400, 256, sizes, [&](size_t s) { pool.release(pool.allocate(s)); });

    grey_context* context = nullptr;
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backends = "cuda";
    if (grey_context_create(&options, &context) != GREY_OK) {
        std::fprintf(stderr, "grey_context_create: %s\n", grey_last_error());
        return 1;
    }
    uint32_t gpu = 0, count = 0;
    if (grey_device_count(context, &count) != GREY_OK) count = 0;
    for (uint32_t d = 0; d < count; ++d) {
        grey_device_spec spec{};
        spec.struct_size = sizeof spec;
        if (grey_device_spec_get(context, d, &spec) == GREY_OK && spec.type == GREY_DEVICE_GPU) {
            gpu = d;
            break;
        }
    }
    if (gpu == 0) {
        std::fprintf(stderr, "no CUDA device offered through grey.h\n");
        return 1;
    }
    {
        grey_buffer* warm = nullptr;
        if (grey_buffer_create(context, gpu, 64u << 20, &warm) != GREY_OK) return 1;
        grey_buffer_destroy(warm);
    }
    const double api_us = time_pairs(400, 256, sizes, [&](size_t s) {
        grey_buffer* b = nullptr;
        if (grey_buffer_create(context, gpu, s, &b) != GREY_OK) std::exit(1);
        grey_buffer_destroy(b);
    });

    const double malloc_us = time_pairs(40, 16, sizes, [&](size_t s) {
        void* p = nullptr;
        cuda_check(cudaMalloc(&p, s), "cudaMalloc");
        cuda_check(cudaFree(p), "cudaFree");
    });

    cudaStream_t stream{};
    cuda_check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    cudaMemPool_t mempool{};
    cuda_check(cudaDeviceGetDefaultMemPool(&mempool, 0), "cudaDeviceGetDefaultMemPool");
    uint64_t threshold = UINT64_MAX;  // keep freed memory in the pool: "warm"
    cuda_check(cudaMemPoolSetAttribute(mempool, cudaMemPoolAttrReleaseThreshold, &threshold), "cudaMemPoolSetAttribute");
    for (size_t s : sizes) {
        void* p = nullptr;
        cuda_check(cudaMallocAsync(&p, s, stream), "cudaMallocAsync");
        cuda_check(cudaFreeAsync(p, stream), "cudaFreeAsync");
    }
    cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    const double async_us = time_pairs(
        400, 256, sizes,
        [&](size_t s) {
            void* p = nullptr;
            cuda_check(cudaMallocAsync(&p, s, stream), "cudaMallocAsync");
            cuda_check(cudaFreeAsync(p, stream), "cudaFreeAsync");
        },
        [&] { cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize"); });

    // Growth: a fresh pool each trial; each 2 MiB request needs exactly one new chunk.
    std::vector<double> chunk_us;
    double bulk_us_per_chunk = 0;
    {
        for (int trial = 0; trial < 3; ++trial) {
            grey::cuda::VmmPool fresh(driver, 0, runtime.context(), total_bytes);
            const uint64_t chunk = fresh.granularity();
            std::vector<CUdeviceptr> held;
            for (int i = 0; i < 64; ++i) {
                const auto t0 = Clock::now();
                held.push_back(fresh.allocate(chunk));
                chunk_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
            }
            for (CUdeviceptr p : held) fresh.release(p);
        }
        std::vector<double> bulk;
        for (int trial = 0; trial < 5; ++trial) {
            grey::cuda::VmmPool fresh(driver, 0, runtime.context(), total_bytes);
            const auto t0 = Clock::now();
            const CUdeviceptr p = fresh.allocate(128u << 20);
            bulk.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / double((128u << 20) / fresh.granularity()));
            fresh.release(p);
        }
        bulk_us_per_chunk = median(bulk);
    }

    // Copies, 256 MiB each way, median of 20 after 3 warm-ups.
    const size_t n = 256u << 20;
    auto time_copy = [&](const std::function<void()>& body) {
        for (int i = 0; i < 3; ++i) body();
        std::vector<double> gbps;
        for (int i = 0; i < 20; ++i) {
            const auto t0 = Clock::now();
            body();
            gbps.push_back(double(n) / std::chrono::duration<double>(Clock::now() - t0).count() / 1e9);
        }
        return median(gbps);
    };
    const CUdeviceptr a = pool.allocate(n), b = pool.allocate(n);
    runtime.fill(a, 0x3C, n);
    void *ca = nullptr, *cb = nullptr, *pinned = nullptr;
    cuda_check(cudaMalloc(&ca, n), "cudaMalloc");
    cuda_check(cudaMalloc(&cb, n), "cudaMalloc");
    cuda_check(cudaMallocHost(&pinned, n), "cudaMallocHost");
    std::memset(pinned, 0x5A, n);
    const double d2d_kernel = time_copy([&] { runtime.copy(b, a, n); });
    const double d2d_engine = time_copy([&] {
        grey::cuda::ContextScope scope(driver, runtime.context());
        runtime.copy_on_device_async(b, a, n);
        runtime.finish();
    });
    // cudaMemcpy device-to-device returns before the copy completes: wait for it inside the timing.
    const double d2d_cuda = time_copy([&] {
        cuda_check(cudaMemcpy(cb, ca, n, cudaMemcpyDeviceToDevice), "cudaMemcpy D2D");
        cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    });
    const double h2d_grey = time_copy([&] { runtime.write(a, pinned, n); });
    const double h2d_cuda = time_copy([&] { cuda_check(cudaMemcpy(ca, pinned, n, cudaMemcpyHostToDevice), "cudaMemcpy H2D"); });
    const double d2h_grey = time_copy([&] { runtime.read(pinned, a, n); });
    const double d2h_cuda = time_copy([&] { cuda_check(cudaMemcpy(pinned, ca, n, cudaMemcpyDeviceToHost), "cudaMemcpy D2H"); });

    grey_memory_stats stats{};
    stats.struct_size = sizeof stats;
    pool.stats(stats);

    std::printf("\n## bench: %s (CC %d.%d, %zu MiB), driver API via libgrey, runtime %d\n\n", prop.name, prop.major, prop.minor,
                total_bytes >> 20, CUDART_VERSION);
    std::printf("| measurement | value | note |\n|---|---|---|\n");
    std::printf("| alloc+free pair, VmmPool (median) | %.3f us | size mix 256 B..64 MiB, 400 blocks x 256 pairs; goal <= 0.3 us: %s |\n", pool_us,
                pool_us <= 0.3 ? "met" : "MISSED");
    std::printf("| alloc+free pair, grey_buffer_create/destroy (median) | %.3f us | same mix, through grey.h |\n", api_us);
    std::printf("| alloc+free pair, cudaMalloc+cudaFree (median) | %.3f us | same mix, 40 blocks x 16 pairs |\n", malloc_us);
    std::printf("| alloc+free pair, warm cudaMallocAsync pool (median) | %.3f us | same mix, host cost of the enqueued pair |\n", async_us);
    std::printf("| pool growth per 2 MiB chunk (median of %zu) | %.1f us | one chunk mapped per request; goal <= 60 us: %s |\n", chunk_us.size(),
                median(chunk_us), median(chunk_us) <= 60.0 ? "met" : "MISSED");
    std::printf("| pool growth per 2 MiB chunk, one 128 MiB growth (median of 5) | %.1f us | |\n", bulk_us_per_chunk);
    std::printf("| D2D copy, backend copy kernel, pool memory | %.1f GB/s | 256 MiB; bytes copied / time (read+write traffic is twice this) |\n", d2d_kernel);
    std::printf("| D2D copy, cuMemcpyDtoDAsync, pool memory | %.1f GB/s | 256 MiB |\n", d2d_engine);
    std::printf("| D2D copy, cudaMemcpy, cudaMalloc memory | %.1f GB/s | 256 MiB |\n", d2d_cuda);
    std::printf("| H2D copy, backend (pinned host) | %.1f GB/s | 256 MiB |\n", h2d_grey);
    std::printf("| H2D copy, cudaMemcpy (pinned host) | %.1f GB/s | 256 MiB |\n", h2d_cuda);
    std::printf("| D2H copy, backend (pinned host) | %.1f GB/s | 256 MiB |\n", d2h_grey);
    std::printf("| D2H copy, cudaMemcpy (pinned host) | %.1f GB/s | 256 MiB |\n", d2h_cuda);
    std::printf("| pool after the run | reserved %llu, committed %llu, allocated %llu, largest free %llu, fragmentation %.4f | |\n",
                static_cast<unsigned long long>(stats.reserved_bytes), static_cast<unsigned long long>(stats.committed_bytes),
                static_cast<unsigned long long>(stats.allocated_bytes), static_cast<unsigned long long>(stats.largest_free_bytes),
                stats.fragmentation);

    pool.release(a);
    pool.release(b);
    cudaFree(ca);
    cudaFree(cb);
    cudaFreeHost(pinned);
    cudaStreamDestroy(stream);
    grey_context_destroy(context);
    return 0;
}
