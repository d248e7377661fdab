#include "hip/hip_kv.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace grey::hip {

namespace kv = backend::kv;

KvKernels::KvKernels(const HipRuntime& hip, std::string_view target, int ordinal) : module_(hip, code_object_for("kv", target)) {
    if (hip.module_occupancy == nullptr)
        throw KernelsUnavailable("no KV cache kernels: " + hip.missing("hipModuleOccupancyMaxActiveBlocksPerMultiprocessor"));
    int units = 0;
    hip.check(hip.device_get_attribute(&units, api::kAttributeMultiprocessorCount, ordinal), "hipDeviceGetAttribute(compute units)");
    compute_units_ = static_cast<unsigned int>(std::max(1, units));
    for (size_t i = 0; i < kv::kKernelCount; ++i) functions_[i] = module_.function(kv::kernel_name(static_cast<kv::Kernel>(i)));
}

namespace {

// The HIP launcher of kv::run_*: the null stream, which orders the synchronous table copies before the
// launches. A failed launch or occupancy query names its kernel.
struct HipKvLauncher {
    const HipRuntime& hip;
    const KvKernels& k;
    backend::ChunkPool& pool;

    [[nodiscard]] backend::ChunkScratch scratch(uint64_t bytes) const { return backend::ChunkScratch(pool, bytes); }
    // grey_kv_attend_mma is CUDA's alone (mma.sync); HIP keeps grey_kv_attend_split.
    [[nodiscard]] static bool tensor_cores() { return false; }
    // The compression reads its slices in place: staging them in LDS takes plain loads on HIP (no
    // asynchronous copy in kv_cache.cu's HIP build), which would only add a pass through shared memory.
    [[nodiscard]] static uint64_t compress_staging_limit() { return 0; }
    void upload(uint64_t destination, const void* source, uint64_t bytes) const {
        hip.check(hip.mem_copy(reinterpret_cast<void*>(destination), source, bytes, api::kMemcpyHostToDevice), "hipMemcpy");
    }
    // hipMemcpy waits for the launches before it on the null stream.
    void download(void* destination, uint64_t source, uint64_t bytes) const {
        hip.check(hip.mem_copy(destination, reinterpret_cast<const void*>(source), bytes, api::kMemcpyDeviceToHost), "hipMemcpy");
    }
    [[nodiscard]] uint64_t resident_blocks(kv::Kernel kernel, unsigned int threads, unsigned int shared_bytes) const {
        int per_unit = 0;
        if (const api::Error e = hip.module_occupancy(&per_unit, k.function(kernel), static_cast<int>(threads), shared_bytes); e != api::kSuccess)
            throw HipError(e, hip.describe(e, "hipModuleOccupancyMaxActiveBlocksPerMultiprocessor") + " (" + kv::kernel_name(kernel) + ")");
        return uint64_t{k.compute_units()} * static_cast<unsigned int>(std::max(1, per_unit));
    }
    void launch(kv::Kernel kernel, kv::Grid grid, unsigned int threads, unsigned int shared_bytes, void** params) const {
        if (const api::Error e = hip.module_launch_kernel(k.function(kernel), grid.x, grid.y, grid.z, threads, 1, 1, shared_bytes, nullptr, params,
                                                          nullptr);
            e != api::kSuccess)
            throw HipError(e, hip.describe(e, "hipModuleLaunchKernel") + " (" + kv::kernel_name(kernel) + ")");
    }
    void finish() const { hip.check(hip.device_synchronize(), "hipDeviceSynchronize"); }
    template <typename Body>
    void run(Body&& body) const {
        drained_on_failure(hip, std::forward<Body>(body));
    }
};

}  // namespace

void kv_check_layout(const common::KvLayout& layout, uint32_t query_heads) { kv::check_layout(layout, query_heads, "HIP"); }

void kv_store(const HipRuntime& hip, const KvKernels& k, backend::ChunkPool& pool, const common::KvLayout& layout, const kv::StoreInput& input,
              std::span<const uint64_t> blocks, std::span<const uint32_t> slots) {
    HipKvLauncher launcher{hip, k, pool};
    kv::run_store(launcher, layout, input, blocks, slots);
}

void kv_compress(const HipRuntime& hip, const KvKernels& k, backend::ChunkPool& pool, const common::KvLayout& layout,
                 std::span<const uint64_t> sources, std::span<const uint64_t> destinations) {
    HipKvLauncher launcher{hip, k, pool};
    kv::run_compress(launcher, layout, sources, destinations);
}

void kv_attend(const HipRuntime& hip, const KvKernels& k, backend::ChunkPool& pool, const common::KvLayout& layout,
               const backend::kv::AttendTables& tables, uint32_t layer, uint32_t query_heads, float scale, uint64_t queries, uint64_t output) {
    HipKvLauncher launcher{hip, k, pool};
    kv::run_attend(launcher, "HIP", layout, tables, layer, query_heads, scale, queries, output);
}

}  // namespace grey::hip
