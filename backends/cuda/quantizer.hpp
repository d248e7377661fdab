// Quantize and dequantize jobs on one CUDA device: the backend's quantize/dequantize slots. The
// kernels (kernels/cuda/quant_*.cu) follow the host reference operation for operation, so the bytes
// equal the host backend's (the conformance rule, docs/architecture.md); the kernel path for a job's
// shape is chosen by the planner HIP shares (backends/common/quant_plan.hpp), and this file runs it on a
// CUDA stream.
#pragma once

#include "cuda/device_runtime.hpp"
#include "common/quant_plan.hpp"
#include "cuda/quant_args.h"
#include "grey_backend.h"

#include <cstdint>

namespace grey::cuda {

namespace quant = backend::quant;
// The planner's helpers, under the names this backend has always used (backends/common/quant_plan.hpp).
using quant::Divider;
using quant::divider_for;
using quant::facts_of;
using quant::QuantFacts;
using quant::throw_if_flagged;

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


}  // namespace grey::cuda
