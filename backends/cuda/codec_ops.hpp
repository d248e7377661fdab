// The codec slots of the CUDA backend (codec_decode, block_hashes) on one device: kernels/cuda/
// codec_decode.cu launched on the device's stream, jobs and results through scratch of its pool.
#pragma once

#include "common/codec_decode.hpp"
#include "cuda/device_runtime.hpp"

#include <cstdint>
#include <span>

namespace grey::cuda {

// Decodes `jobs` (payloads at their device addresses, outputs at offsets from `output`) and writes each
// block's fault bits to `faults`.
void codec_decode(DeviceRuntime& device, CUdeviceptr output, std::span<const common::CodecBlockJob> jobs, std::span<uint32_t> faults);

// The same enqueued on `stream` (not waited for): the jobs are uploaded to `job_table` first, and each
// block's fault bits go to faults[i] (device memory) when the stream runs the kernel. With `staging` (host
// memory for the jobs that outlives the stream's pass, codec_decode_async_staged) the upload is queued on
// `stream` too; without, it is made during the call.
void codec_decode_on(DeviceRuntime& device, CUstream stream, CUdeviceptr output, std::span<const common::CodecBlockJob> jobs, CUdeviceptr faults,
                     CUdeviceptr job_table, void* staging = nullptr);

// hashes[i]: XXH3-64 with `seed` of block i (`block_size` bytes, the last possibly fewer) of [data, data + size).
void block_hashes(DeviceRuntime& device, CUdeviceptr data, uint64_t size, uint32_t block_size, uint64_t seed, std::span<uint64_t> hashes);

}  // namespace grey::cuda
