// What a CUDA device needs for memory and kernels: its primary context, a stream, an event, the pool
// and the kernels of the embedded fatbin. Created on a device's first memory operation, so detection
// alone never creates a context (which costs time and device memory).
#pragma once

#include "cuda/driver.hpp"
#include "cuda/pool.hpp"
#include "cuda/quant_args.h"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <tuple>

namespace grey::cuda {

// The quantization kernels' families: each kernels/cuda/quant_<family>.cu is its own fatbin and module.
enum class QuantFamily { blocks, q8_0, grouped, rows, global, search, dequantize, measure, ragged };

// The embedded fatbins (fatbin_embed.cpp): fill/copy/checksum, each quantization family, the KV cache's.
std::span<const unsigned char> kernel_fatbin();
std::span<const unsigned char> quant_kernel_fatbin(QuantFamily family);
std::span<const unsigned char> kv_kernel_fatbin();
std::span<const unsigned char> codec_kernel_fatbin();

class PrimaryContext {
public:
    PrimaryContext(const Driver& driver, CUdevice device);
    ~PrimaryContext();
    PrimaryContext(const PrimaryContext&) = delete;
    PrimaryContext& operator=(const PrimaryContext&) = delete;
    [[nodiscard]] CUcontext get() const noexcept { return context_; }

private:
    const Driver& driver_;
    CUdevice device_;
    CUcontext context_ = nullptr;
};

class Stream {
public:
    explicit Stream(const Driver& driver);  // in the current context
    ~Stream();
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;
    [[nodiscard]] CUstream get() const noexcept { return stream_; }

private:
    const Driver& driver_;
    CUstream stream_ = nullptr;
};

class Event {
public:
    Event(const Driver& driver, unsigned int flags);  // in the current context
    ~Event();
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;
    [[nodiscard]] CUevent get() const noexcept { return event_; }

private:
    const Driver& driver_;
    CUevent event_ = nullptr;
};

// Page-locked host memory (cuMemAllocHost): device-to-host copies into it need no staging.
class PinnedHost {
public:
    PinnedHost(const Driver& driver, size_t size);  // in the current context
    ~PinnedHost();
    PinnedHost(const PinnedHost&) = delete;
    PinnedHost& operator=(const PinnedHost&) = delete;
    [[nodiscard]] void* get() const noexcept { return pointer_; }

private:
    const Driver& driver_;
    void* pointer_ = nullptr;
};

// A fatbin loaded into the current context.
class Module {
public:
    Module(const Driver& driver, std::span<const unsigned char> image, const char* what);
    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    [[nodiscard]] CUfunction function(const char* name) const;

private:
    const Driver& driver_;
    CUmodule module_ = nullptr;
};

struct Kernels {
    explicit Kernels(const Driver& driver);  // loads the fatbin into the current context

    Module module;
    CUfunction fill;
    CUfunction copy;
    CUfunction checksum;
};

// The quantization kernels of kernels/cuda/quant_*.cu, a module per family.
struct QuantKernels {
    explicit QuantKernels(const Driver& driver);

    Module blocks_module, q8_0_module, grouped_module, rows_module, global_module, search_module, dequantize_module, measure_module,
        ragged_module;
    CUfunction blocks;     // a lane per 32 elements (aligned tensors)
    CUfunction q8_0;       // Q8_0, elements in registers (aligned tensors)
    CUfunction grouped8;   // eight elements a thread
    CUfunction grouped16;  // sixteen
    CUfunction rows;
    CUfunction absmax;
    CUfunction params;     // grey_quant_param_sets
    CUfunction encode;
    CUfunction search;
    CUfunction dequant;
    CUfunction dequant_fast;  // aligned tensors, 32-bit indices
    CUfunction measure;       // the error report, on the device
    CUfunction ragged;          // rows with a ragged last group: quantize (RTN and MSE)
    CUfunction dequant_ragged;  // ... dequantize
    CUfunction measure_ragged;  // ... the error report
};

// The KV cache's kernels (kernels/cuda/kv_cache.cu).
struct KvKernels {
    // `shared_optin`: the most dynamic shared memory a block may ask for on the device, which the
    // tensor-core attention is allowed (its staging buffers pass the default 48 KiB).
    KvKernels(const Driver& driver, int shared_optin);

    Module module;
    CUfunction store;
    CUfunction compress;
    CUfunction compress_warps;
    CUfunction combine;
    // attend_split[i][j]: 2^i channels a lane, 2^j query heads a thread block.
    CUfunction attend_split[4][4];
    // attend_mma[i][j]: head_dim up to 64 << i, 2^j query heads a thread block.
    CUfunction attend_mma[2][3];
    // The dynamic shared memory compress may take (the opt-in limit less its static shared memory).
    unsigned int compress_staging_limit = 0;
};

// The container decoder and the deduplication hash (kernels/cuda/codec_decode.cu).
struct CodecKernels {
    explicit CodecKernels(const Driver& driver);
    Module module;
    CUfunction decode;
    CUfunction block_hash;
};

// A launch's grid.
struct Grid {
    unsigned int x = 1, y = 1, z = 1;
};

class DeviceRuntime {
public:
    DeviceRuntime(const Driver& driver, CUdevice device, uint64_t memory_bytes);
    ~DeviceRuntime();
    DeviceRuntime(const DeviceRuntime&) = delete;
    DeviceRuntime& operator=(const DeviceRuntime&) = delete;

    [[nodiscard]] CUcontext context() const noexcept { return context_.get(); }
    [[nodiscard]] const Driver& driver() const noexcept { return driver_; }
    [[nodiscard]] VmmPool& pool() noexcept { return *pool_; }
    [[nodiscard]] CUstream stream() const noexcept { return stream_->get(); }

    // Asynchronous copies on the device's stream; the caller keeps host memory alive until finish().
    void copy_to_device_async(CUdeviceptr destination, const void* source, uint64_t size);
    void copy_to_host_async(void* destination, CUdeviceptr source, uint64_t size);
    void copy_on_device_async(CUdeviceptr destination, CUdeviceptr source, uint64_t size);
    // Kernel launches on the stream.
    void fill_async(CUdeviceptr destination, uint8_t value, uint64_t size);
    void kernel_copy_async(CUdeviceptr destination, CUdeviceptr source, uint64_t size);
    // Waits for everything enqueued so far, through the device's event.
    void finish();
    // Waits for the stream and ignores errors: for cleaning up after a failure, before memory the
    // queued work uses is given back.
    void drain() noexcept;
    // Runs `enqueue` (work queued on the device's stream) and waits for it. If anything throws once work
    // may be queued, the stream is drained first, so that the scratch the work uses goes back to the pool
    // (and host memory it reads to its owner) only after the stream is done with it.
    template <typename Enqueue>
    void run_to_completion(Enqueue&& enqueue) {
        try {
            enqueue();
            finish();
        } catch (...) {
            drain();
            throw;
        }
    }

    // Synchronous operations, serialised per device (they share the stream and the checksum slot).
    void write(CUdeviceptr destination, const void* source, uint64_t size);
    void read(void* destination, CUdeviceptr source, uint64_t size);
    void copy(CUdeviceptr destination, CUdeviceptr source, uint64_t size);
    void fill(CUdeviceptr destination, uint8_t value, uint64_t size);
    [[nodiscard]] uint64_t checksum(CUdeviceptr source, uint64_t size);

    // Streams of the caller's (grey_stream, device_streams.cpp): the operations above enqueued on
    // `stream` and not waited for. Each makes the device's context current for the call; none takes the
    // device's lock, as none touches the device's own stream or slots.
    [[nodiscard]] CUstream create_stream();
    void destroy_stream(CUstream stream) noexcept;
    // Events (timed ones for grey_event_elapsed_ms).
    // `timed`: grey_event_elapsed_ms can be asked of it; an untimed event costs less to record.
    [[nodiscard]] CUevent create_event(bool timed = true);
    void destroy_event(CUevent event) noexcept;
    void write_on(CUstream stream, CUdeviceptr destination, const void* source, uint64_t size);
    // `task(data)` on a driver thread once the stream reaches it (cuLaunchHostFunc).
    void host_task_on(CUstream stream, void (*task)(void*), void* data);
    void read_on(CUstream stream, void* destination, CUdeviceptr source, uint64_t size);
    void copy_on(CUstream stream, CUdeviceptr destination, CUdeviceptr source, uint64_t size);
    void fill_on(CUstream stream, CUdeviceptr destination, uint8_t value, uint64_t size);
    // `slot`: 8 bytes of device memory the stream owns, where the kernel sums before *out receives it.
    void checksum_on(CUstream stream, CUdeviceptr slot, CUdeviceptr source, uint64_t size, uint64_t* out);
    // With the device's context current (in_context, exclusive): a fill, and a launch of any shape, on
    // `stream`.
    void enqueue_fill(CUstream stream, CUdeviceptr destination, uint8_t value, uint64_t size);
    void launch_on(CUstream stream, CUfunction function, unsigned int blocks, unsigned int threads, unsigned int shared_bytes, void** params);
    void launch_on(CUstream stream, CUfunction function, Grid grid, unsigned int threads, unsigned int shared_bytes, void** params);
    // A driver call made with the device's context current.
    template <typename Call>
    decltype(auto) in_context(Call&& call) {
        ContextScope scope(driver_, context_.get());
        return call(driver_);
    }

    // Device memory free and total, as the driver sees it.
    void memory_info(uint64_t& free, uint64_t& total);

    // Runs `work` with the device's stream to itself and its context current: the synchronous
    // operations above take the same lock, so a multi-kernel job is never interleaved with them.
    template <typename Work>
    decltype(auto) exclusive(Work&& work) {
        std::lock_guard lock(mutex_);
        ContextScope scope(driver_, context_.get());
        return work();
    }

    // Inside exclusive(): the quantization kernels (loaded on first use, so that memory-only users never
    // pay for them), and a launch of any shape on the stream.
    const QuantKernels& quant_kernels();
    // Device memory for the flags the quantization kernels raise on bad input (a grey_qk_flags, all ~0
    // between jobs), and pinned host memory: a grey_qk_flags to read them back into, and a uint32 the
    // kernels set to 1 when they flag, so that a job reads the flags back only then. Made with the kernels.
    [[nodiscard]] CUdeviceptr quant_flags() const noexcept { return quant_flags_slot_; }
    [[nodiscard]] grey_qk_flags* quant_flags_host() const noexcept { return &quant_host().flags; }
    [[nodiscard]] volatile uint32_t* quant_noticed_host() const noexcept { return &quant_host().noticed; }
    [[nodiscard]] CUdeviceptr quant_noticed() const noexcept { return quant_noticed_device_; }
    void launch(CUfunction function, unsigned int blocks, unsigned int threads, unsigned int shared_bytes, void** params);
    void launch(CUfunction function, Grid grid, unsigned int threads, unsigned int shared_bytes, void** params);
    // Inside exclusive(): the KV cache's kernels, loaded on first use.
    const KvKernels& kv_kernels();
    // Inside exclusive(): the codec kernels, loaded on first use.
    const CodecKernels& codec_kernels();
    // How many blocks of `threads` threads (and `shared_bytes` dynamic shared memory) of `function` fit on
    // the device at once: a grid of that size runs in one wave. Thread-safe (streams launch concurrently).
    [[nodiscard]] unsigned int resident_blocks(CUfunction function, unsigned int threads, unsigned int shared_bytes);
    [[nodiscard]] unsigned int multiprocessors() const noexcept { return multiprocessors_; }
    // Whether decode attention runs on the tensor cores (grey_kv_attend_mma): compute capability 8.0 or
    // later, unless GREY_CUDA_KV_TENSOR_CORES=0 asks for grey_kv_attend_split (to compare the two).
    [[nodiscard]] bool kv_tensor_cores() const noexcept { return kv_tensor_cores_; }

private:
    void launch(CUfunction function, uint64_t size, void** params);
    void launch_sized_on(CUstream stream, CUfunction function, uint64_t size, void** params);
    struct QuantHost {
        grey_qk_flags flags;
        uint32_t noticed;
    };
    [[nodiscard]] QuantHost& quant_host() const noexcept { return *static_cast<QuantHost*>(quant_flag_host_->get()); }

    const Driver& driver_;
    PrimaryContext context_;
    std::unique_ptr<VmmPool> pool_;
    std::unique_ptr<Stream> stream_;
    std::unique_ptr<Event> done_;
    std::unique_ptr<Kernels> kernels_;
    std::unique_ptr<QuantKernels> quant_kernels_;
    std::unique_ptr<KvKernels> kv_kernels_;
    std::unique_ptr<CodecKernels> codec_kernels_;
    CUdeviceptr checksum_slot_ = 0;  // 8 bytes from the pool for the checksum kernel's sum
    CUdeviceptr quant_flags_slot_ = 0;
    std::unique_ptr<PinnedHost> quant_flag_host_;
    CUdeviceptr quant_noticed_device_ = 0;  // the device's address of quant_host().noticed
    // resident_blocks answers, by function, block size and shared memory (asking the driver each launch
    // costs microseconds).
    std::map<std::tuple<CUfunction, unsigned int, unsigned int>, unsigned int> resident_blocks_;  // guarded by occupancy_mutex_
    std::mutex occupancy_mutex_;
    unsigned int multiprocessors_ = 0;
    unsigned int max_blocks_ = 0;
    int shared_optin_ = 0;
    bool kv_tensor_cores_ = false;
    std::mutex mutex_;
};

}  // namespace grey::cuda
