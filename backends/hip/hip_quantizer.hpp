// Quantize and dequantize on one AMD device: the kernels of kernels/cuda/quant_*.cu as AMD code objects
// (one module per family, hip_kernels.hpp), launched by the plan CUDA launches too
// (backends/common/quant_plan.hpp) through hipModuleLaunchKernel on the null stream. Synchronous, as
// the HIP plugin's other slots: a job has finished when its call returns.
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

// Both with the device current and `k` loaded. quantize throws std::invalid_argument with the host
// backend's message when the input holds a NaN or infinity (the destination may have been written) and
// fills job.error when it is set.
void quantize(const HipRuntime& hip, const QuantKernels& k, backend::ChunkPool& pool, const QuantFlags& flags, const grey_backend_quant_job& job,
              uint64_t source, uint64_t destination);
void dequantize(const HipRuntime& hip, const QuantKernels& k, const grey_backend_quant_job& job, uint64_t source, uint64_t destination);

}  // namespace grey::hip
