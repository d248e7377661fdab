// The KV cache's block operations on one AMD device (the kv_store, kv_compress and kv_attend slots): the
// kernels of kernels/cuda/kv_cache.cu as an AMD code object (module "kv", hip_kernels.hpp), launched by
// the plan the CUDA plugin launches too (backends/common/kv_plan.hpp) through hipModuleLaunchKernel on
// the null stream, with scratch from the device's pool. Synchronous, as the slots are: each returns when
// the device has finished.
#pragma once

#include "common/chunk_pool.hpp"
#include "common/kv_plan.hpp"
#include "hip/hip_kernels.hpp"

#include <array>
#include <span>

namespace grey::hip {

class KvKernels {
public:
    // Loads the "kv" code object for `target` into the current device and finds its twenty kernels;
    // throws KernelsUnavailable (no object for the target, or the runtime lacks the occupancy query that
    // sizes attention's split) or HipError (a module the runtime refuses, a kernel missing from it).
    KvKernels(const HipRuntime& hip, std::string_view target, int ordinal);

    [[nodiscard]] api::Function function(backend::kv::Kernel kernel) const { return functions_[static_cast<size_t>(kernel)]; }
    [[nodiscard]] unsigned int compute_units() const noexcept { return compute_units_; }

private:
    Module module_;
    std::array<api::Function, backend::kv::kKernelCount> functions_{};
    unsigned int compute_units_ = 0;
};

// Throws std::domain_error (unsupported) or std::invalid_argument naming what the kernels do not take.
void kv_check_layout(const common::KvLayout& layout, uint32_t query_heads);

// Each with the device current and `k` loaded; `pool` gives the job's scratch (its tables, attention's
// partial results), which goes back before the call returns, failed or not.
void kv_store(const HipRuntime& hip, const KvKernels& k, backend::ChunkPool& pool, const common::KvLayout& layout,
              const backend::kv::StoreInput& input, std::span<const uint64_t> blocks, std::span<const uint32_t> slots);
void kv_compress(const HipRuntime& hip, const KvKernels& k, backend::ChunkPool& pool, const common::KvLayout& layout,
                 std::span<const uint64_t> sources, std::span<const uint64_t> destinations);
void kv_attend(const HipRuntime& hip, const KvKernels& k, backend::ChunkPool& pool, const common::KvLayout& layout,
               const backend::kv::AttendTables& tables, uint32_t layer, uint32_t query_heads, float scale, uint64_t queries, uint64_t output);

}  // namespace grey::hip
