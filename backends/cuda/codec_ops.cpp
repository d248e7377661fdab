#include "cuda/codec_ops.hpp"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace grey::cuda {
namespace {

// Warps (one per block of data) a thread block of each codec kernel: their __launch_bounds__.
constexpr unsigned int kDecodeWarpsPerBlock = 1;
constexpr unsigned int kHashWarpsPerBlock = 4;

unsigned int grid_for(uint64_t warps, unsigned int warps_per_block) {
    const uint64_t blocks = (warps + warps_per_block - 1) / warps_per_block;
    if (blocks > std::numeric_limits<int>::max()) throw std::length_error("too many blocks for one launch of the codec kernels");
    return static_cast<unsigned int>(blocks);
}

}  // namespace

void codec_decode(DeviceRuntime& device, CUdeviceptr output, std::span<const common::CodecBlockJob> jobs, std::span<uint32_t> faults) {
    if (jobs.empty()) return;
    device.exclusive([&] {
        const CodecKernels& kernels = device.codec_kernels();
        PoolScratch job_table(device.pool(), jobs.size_bytes());
        PoolScratch fault_table(device.pool(), faults.size_bytes());
        CUdeviceptr job_address = job_table.get(), fault_address = fault_table.get();
        auto count = static_cast<unsigned int>(jobs.size());
        void* params[] = {&output, &job_address, &count, &fault_address};
        device.run_to_completion([&] {
            device.copy_to_device_async(job_address, jobs.data(), jobs.size_bytes());
            device.launch(kernels.decode, grid_for(jobs.size(), kDecodeWarpsPerBlock), 32 * kDecodeWarpsPerBlock, 0, params);
            device.copy_to_host_async(faults.data(), fault_address, faults.size_bytes());
        });
    });
}

void codec_decode_on(DeviceRuntime& device, CUstream stream, CUdeviceptr output, std::span<const common::CodecBlockJob> jobs, CUdeviceptr faults,
                     CUdeviceptr job_table, void* staging) {
    if (jobs.empty()) return;
    if (staging != nullptr) {
        // The runtime keeps `staging` (page-locked where it could) until the stream is past the kernel:
        // the upload is a copy queued on the caller's stream ahead of the launch, waited for by nothing.
        std::memcpy(staging, jobs.data(), jobs.size_bytes());
        device.write_on(stream, job_table, staging, jobs.size_bytes());
    } else {
        // No staging of the runtime's: the table goes up synchronously, through the device's own stream
        // (which carries only the short synchronous operations, never the caller's work), so that the
        // host vector may go when this returns. An async upload from pageable memory would rely on the
        // driver staging it at once.
        device.write(job_table, jobs.data(), jobs.size_bytes());
    }
    device.exclusive([&] {
        const CodecKernels& kernels = device.codec_kernels();
        auto count = static_cast<unsigned int>(jobs.size());
        void* params[] = {&output, &job_table, &count, &faults};
        device.launch_on(stream, kernels.decode, grid_for(jobs.size(), kDecodeWarpsPerBlock), 32 * kDecodeWarpsPerBlock, 0, params);
    });
}

void block_hashes(DeviceRuntime& device, CUdeviceptr data, uint64_t size, uint32_t block_size, uint64_t seed, std::span<uint64_t> hashes) {
    if (size == 0) return;
    device.exclusive([&] {
        const CodecKernels& kernels = device.codec_kernels();
        PoolScratch hash_table(device.pool(), hashes.size_bytes());
        CUdeviceptr hash_address = hash_table.get();
        unsigned long long length = size, seed_value = seed;
        unsigned int block = block_size;
        void* params[] = {&data, &length, &block, &seed_value, &hash_address};
        device.run_to_completion([&] {
            device.launch(kernels.block_hash, grid_for(hashes.size(), kHashWarpsPerBlock), 32 * kHashWarpsPerBlock, 0, params);
            device.copy_to_host_async(hashes.data(), hash_address, hashes.size_bytes());
        });
    });
}

}  // namespace grey::cuda
