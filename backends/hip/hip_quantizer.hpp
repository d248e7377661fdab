// Quantize and dequantize on one AMD device: the kernels of kernels/cuda/quant_*.cu as AMD code objects
// (one module per family, hip_kernels.hpp), launched by the plan CUDA launches too
// (backends/common/quant_plan.hpp) through hipModuleLaunchKernel. One enqueue function per direction
// launches a job's kernels on a stream and waits for nothing; the synchronous slots enqueue on the null
// stream and then wait (quantize, dequantize), the stream slots enqueue on the caller's stream and leave
// the check to the stream's journal (hip_quant_journal.hpp).
#pragma once

#include "common/chunk_pool.hpp"
#include "common/quant_plan.hpp"
#include "hip/hip_kernels.hpp"

#include <array>
#include <memory>

namespace grey::hip {

// The quantization kernels, loaded into the current device for its target.
class QuantKernels {
public:
    // Loads every family's code object for `target` and finds its kernels; throws KernelsUnavailable (no
    // object for the target, or the runtime lacks the occupancy query) or HipError (a module the
    // runtime refuses, a kernel missing from its module).
    QuantKernels(const HipRuntime& hip, std::string_view target, int ordinal);

    [[nodiscard]] api::Function function(backend::quant::Kernel kernel) const { return functions_[static_cast<size_t>(kernel)]; }
    [[nodiscard]] unsigned int compute_units() const noexcept { return compute_units_; }

private:
    std::array<std::unique_ptr<Module>, backend::quant::kFamilyCount> modules_;
    std::array<api::Function, backend::quant::kKernelCount> functions_{};
    unsigned int compute_units_ = 0;
};

// The device memory a device's quantize jobs share: a grey_qk_flags the kernels lower (~0 between jobs)
// and the uint32 they set when they do (0 between jobs), taken from the pool with the kernels.
struct QuantFlags {
    uint64_t flags = 0;
    uint64_t noticed = 0;
};

// The kernels of a job launched on `stream` (nullptr: the null stream), in order with the stream's other
// work; nothing is waited for or read back. With the device current and `k` loaded; the tensors and
// `targets` must stay valid until the stream has run the work. Throws HipError (a failed launch: kernels
// before it may be queued), std::domain_error (a layout feature this code does not know) or
// std::invalid_argument (a plain dtype other than F32/F16/BF16) before anything is queued.
void enqueue_quantize(const HipRuntime& hip, const QuantKernels& k, api::Stream stream, const grey_backend_quant_job& job, uint64_t source,
                      uint64_t destination, const backend::quant::Targets& targets);
void enqueue_dequantize(const HipRuntime& hip, const QuantKernels& k, api::Stream stream, const grey_backend_quant_job& job, uint64_t source,
                        uint64_t destination);
// The kernels of a plan already made (backend::quant::plan_quantize or plan_dequantize), as above.
void enqueue_plan(const HipRuntime& hip, const QuantKernels& k, api::Stream stream, backend::quant::Plan& plan);

// Both with the device current and `k` loaded. quantize throws std::invalid_argument with the host
// backend's message when the input holds a NaN or infinity (the destination may have been written) and
// fills job.error when it is set.
void quantize(const HipRuntime& hip, const QuantKernels& k, backend::ChunkPool& pool, const QuantFlags& flags, const grey_backend_quant_job& job,
              uint64_t source, uint64_t destination);
void dequantize(const HipRuntime& hip, const QuantKernels& k, const grey_backend_quant_job& job, uint64_t source, uint64_t destination);

}  // namespace grey::hip
