// Quantize and dequantize jobs on one CUDA device: the backend's quantize/dequantize slots. The
// kernels (kernels/cuda/quant_*.cu) follow the host reference operation for operation, so the bytes
// equal the host backend's (the conformance rule, docs/architecture.md); this file chooses the kernel path for a job's shape and
// runs it on the device's stream.
#pragma once

#include "cuda/device_runtime.hpp"
#include "grey_backend.h"

#include <cstdint>

namespace grey::cuda {

// Exact division by d of every n below 2^31 on the GPU, as n / d = (n * multiplier) >> shift, with
// shift = 32 + ceil(log2 d) and multiplier = ceil(2^shift / d) (under 2^33, so n * multiplier fits 64
// bits; the error n * (multiplier * d - 2^shift) / (d * 2^shift) stays below 1/d). d in 1 .. 2^31.
struct Divider {
    uint64_t multiplier;
    int32_t shift;
};
Divider divider_for(uint64_t d);

// Quantizes the plain tensor at `source` into `destination` in job.layout, and measures the error into
// job.error when it is set (grey_quant_measure, on the device). A NaN or infinite input throws
// std::invalid_argument naming the first such element (the destination may have been written); a
// layout feature this backend does not know throws std::domain_error.
void quantize(DeviceRuntime& device, const grey_backend_quant_job& job, CUdeviceptr source, CUdeviceptr destination);

// Dequantizes the quantized form at `source` into job.plain_dtype at `destination`.
void dequantize(DeviceRuntime& device, const grey_backend_quant_job& job, CUdeviceptr source, CUdeviceptr destination);

}  // namespace grey::cuda
