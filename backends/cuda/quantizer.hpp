// Quantize and dequantize jobs on one CUDA device: the backend's quantize/dequantize slots. The
// kernels (kernels/cuda/quant_*.cu) follow the host reference operation for operation, so the bytes
// equal the host backend's (the conformance rule, docs/architecture.md); this file chooses the kernel path for a job's shape and
// runs it on the device's stream.
#pragma once

#include "cuda/device_runtime.hpp"
#include "cuda/quant_args.h"
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
// layout feature this backend does not know throws std::domain_error. Waits on the device's stream.
void quantize(DeviceRuntime& device, const grey_backend_quant_job& job, CUdeviceptr source, CUdeviceptr destination);

// Dequantizes the quantized form at `source` into job.plain_dtype at `destination`.
void dequantize(DeviceRuntime& device, const grey_backend_quant_job& job, CUdeviceptr source, CUdeviceptr destination);

// The device memory a quantize job's kernels use beside its tensors.
struct QuantTargets {
    CUdeviceptr flags;    // a grey_qk_flags, every member ~0 before the job (the kernels lower them)
    CUdeviceptr noticed;  // a uint32 of mapped host memory the kernels set to 1 when they raise a flag
    CUdeviceptr scratch;  // quantize_scratch_bytes(...) bytes (unused when that is 0)
    CUdeviceptr error;    // a grey_qk_error to measure into, or 0: measure nothing
};

// The scratch the kernels of a quantize job need (0 on most paths).
uint64_t quantize_scratch_bytes(const DeviceRuntime& device, const grey_backend_quant_job& job, CUdeviceptr source, CUdeviceptr destination);

// Enqueue-only forms, for the device's stream and the caller's (quant_journal.hpp): the kernels of a job
// launched on `stream`, nothing waited for or read back. The device's context must be current and `k`
// loaded; the tensors and `targets` must stay valid until the stream has run the work.
void enqueue_quantize(DeviceRuntime& device, const QuantKernels& k, CUstream stream, const grey_backend_quant_job& job, CUdeviceptr source,
                      CUdeviceptr destination, const QuantTargets& targets);
void enqueue_dequantize(DeviceRuntime& device, const QuantKernels& k, CUstream stream, const grey_backend_quant_job& job, CUdeviceptr source,
                        CUdeviceptr destination);

// What naming a job's flagged input takes, copied from the job (which lives only for its call).
struct QuantFacts {
    grey_quant_format format;
    uint64_t run_length;
    uint64_t row_length;
    bool has_rows;
};
QuantFacts facts_of(const grey_backend_quant_job& job);

// Throws std::invalid_argument with the host backend's message when `found` holds a flag: the lowest
// non-finite element first, then the lowest overflowing group.
void throw_if_flagged(const grey_qk_flags& found, const QuantFacts& facts);

}  // namespace grey::cuda
