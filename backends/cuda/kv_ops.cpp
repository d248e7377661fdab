// The KV cache's block operations on a CUDA device: the plan of backends/common/kv_plan.hpp (shared with
// the HIP backend) launched through cuLaunchKernel on the device's stream, with scratch from its pool.
#include "cuda/kv_ops.hpp"

#include <cstddef>
#include <cstring>

namespace grey::cuda {
namespace {

namespace kv = backend::kv;

// The CUDA launcher of kv::run_*: inside device.exclusive(), so the stream and the kernels are the job's.
// The table uploads are asynchronous on the stream, which orders them before the launches.
struct CudaKvLauncher {
    DeviceRuntime& device;

    [[nodiscard]] PoolScratch scratch(uint64_t bytes) const { return PoolScratch(device.pool(), bytes); }
    [[nodiscard]] bool tensor_cores() const { return device.kv_tensor_cores(); }
    [[nodiscard]] uint64_t compress_staging_limit() const { return device.kv_kernels().compress_staging_limit; }
    void upload(CUdeviceptr destination, const void* source, uint64_t bytes) const { device.copy_to_device_async(destination, source, bytes); }
    void download(void* destination, CUdeviceptr source, uint64_t bytes) const { device.copy_to_host_async(destination, source, bytes); }
    [[nodiscard]] CUfunction function(kv::Kernel kernel) const {
        const KvKernels& k = device.kv_kernels();
        switch (kernel) {
            case kv::Kernel::store: return k.store;
            case kv::Kernel::compress: return k.compress;
            case kv::Kernel::compress_warps: return k.compress_warps;
            case kv::Kernel::combine: return k.combine;
            default: {
                const auto index = static_cast<size_t>(kernel);
                if (index >= kv::kFirstMma) return k.attend_mma[(index - kv::kFirstMma) / 3][(index - kv::kFirstMma) % 3];
                const size_t split = index - kv::kFirstSplit;
                return k.attend_split[split / 4][split % 4];
            }
        }
    }
    [[nodiscard]] uint64_t resident_blocks(kv::Kernel kernel, unsigned int threads, unsigned int shared_bytes) const {
        return device.resident_blocks(function(kernel), threads, shared_bytes);
    }
    void launch(kv::Kernel kernel, kv::Grid grid, unsigned int threads, unsigned int shared_bytes, void** params) const {
        device.launch(function(kernel), Grid{grid.x, grid.y, grid.z}, threads, shared_bytes, params);
    }
    void finish() const { device.finish(); }
    template <typename Body>
    void run(Body&& body) const {
        body();
    }
};

// The launcher of attention queued on a caller's stream: scratch from the stream's journal, the table
// uploads staged in the runtime's host memory and queued on the stream, nothing waited for. Inside
// device.exclusive() (the kernels are loaded under it) and the journal's enqueue_with_scratch.
template <typename StreamScratch>
struct CudaKvStreamLauncher : CudaKvLauncher {
    CUstream stream;
    StreamScratch& stream_scratch;
    std::byte* staging;  // the next table's place

    struct Scratch {
        CUdeviceptr address;
        [[nodiscard]] CUdeviceptr get() const noexcept { return address; }
    };
    [[nodiscard]] Scratch scratch(uint64_t bytes) const { return {stream_scratch(bytes)}; }
    void upload(CUdeviceptr destination, const void* source, uint64_t bytes) {
        std::memcpy(staging, source, bytes);
        device.write_on(stream, destination, staging, bytes);
        staging += bytes;
    }
    void launch(kv::Kernel kernel, kv::Grid grid, unsigned int threads, unsigned int shared_bytes, void** params) const {
        device.launch_on(stream, function(kernel), Grid{grid.x, grid.y, grid.z}, threads, shared_bytes, params);
    }
    void finish() const {}
};

}  // namespace

void kv_check_layout(const common::KvLayout& layout, uint32_t query_heads) { kv::check_layout(layout, query_heads, "CUDA"); }

void kv_store(DeviceRuntime& device, const common::KvLayout& layout, const backend::kv::StoreInput& input, std::span<const CUdeviceptr> blocks,
              std::span<const uint32_t> slots) {
    device.exclusive([&] {
        CudaKvLauncher launcher{device};
        kv::run_store(launcher, layout, input, blocks, slots);
    });
}

void kv_compress(DeviceRuntime& device, const common::KvLayout& layout, std::span<const CUdeviceptr> sources,
                 std::span<const CUdeviceptr> destinations) {
    if (sources.empty()) return;
    device.exclusive([&] {
        CudaKvLauncher launcher{device};
        kv::run_compress(launcher, layout, sources, destinations);
    });
}

void kv_attend(DeviceRuntime& device, const common::KvLayout& layout, const KvAttendTables& tables, uint32_t layer,
               uint32_t query_heads, float scale, CUdeviceptr queries, CUdeviceptr output) {
    kv_check_layout(layout, query_heads);
    if (tables.first.empty()) return;
    device.exclusive([&] {
        CudaKvLauncher launcher{device};
        kv::run_attend(launcher, "CUDA", layout, tables, layer, query_heads, scale, queries, output);
    });
}

void kv_attend_on(DeviceRuntime& device, QuantJournal& journal, CUstream stream, const common::KvLayout& layout, const KvAttendTables& tables,
                  uint32_t layer, uint32_t query_heads, float scale, CUdeviceptr queries, CUdeviceptr output, void* staging) {
    // The staging holds the two tables run_attend uploads: the sequences' and the blocks'.
    static_assert(sizeof(grey_kvk_sequence) <= 32, "GREY_BACKEND_KV_ATTEND_STAGING_BYTES gives a sequence 32 bytes");
    kv_check_layout(layout, query_heads);
    if (tables.first.empty()) return;
    journal.enqueue_with_scratch([&](auto&& stream_scratch) {
        device.exclusive([&] {
            CudaKvStreamLauncher<decltype(stream_scratch)> launcher{{device}, stream, stream_scratch, static_cast<std::byte*>(staging)};
            kv::run_attend(launcher, "CUDA", layout, tables, layer, query_heads, scale, queries, output);
        });
    });
}

}  // namespace grey::cuda
