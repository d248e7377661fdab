// The work of one Level Zero device: its memory pool, a synchronous immediate command list for copies,
// fills and kernels (each append returns once the device has finished it), and the kernels of
// kernels/opencl (checksum, fill and copy, quantization, the KV cache), each module built from the embedded SPIR-V
// on first use. Calls from several threads are serialised: one command list, and one kernel's
// arguments, must not be used concurrently.
#pragma once

#include "common/chunk_pool.hpp"
#include "common/kv_layout.hpp"
#include "common/quant_layout.h"
#include "kernels/opencl/kv_args.h"
#include "level0/kernel_images.hpp"
#include "level0/ze_library.hpp"
#include "level0/ze_stream.hpp"

#include <array>
#include <initializer_list>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace grey::level0 {

class DeviceQueue {
public:
    // `context` must outlive the queue.
    DeviceQueue(const ZeLibrary& ze, ze_context_handle_t context, ze_device_handle_t device);
    ~DeviceQueue();
    DeviceQueue(const DeviceQueue&) = delete;
    DeviceQueue& operator=(const DeviceQueue&) = delete;

    [[nodiscard]] backend::ChunkPool& pool() noexcept { return pool_; }

    void write(uint64_t destination, const void* source, uint64_t size);
    void read(void* destination, uint64_t source, uint64_t size);
    // Device to device, by grey_copy; the ranges do not overlap (the runtime checked).
    void copy(uint64_t destination, uint64_t source, uint64_t size);
    // By grey_fill.
    void fill(uint64_t destination, uint8_t value, uint64_t size);
    // grey.h's buffer checksum of `size` bytes at `source`, by kernels/opencl/grey_checksum.cl.
    [[nodiscard]] uint64_t checksum(uint64_t source, uint64_t size);
    // A quantize job (quant_launch.hpp) from the plain tensor at `plain` to `quantized`. Bad input throws
    // std::invalid_argument in the host backend's words; an unsupported job std::domain_error.
    void quantize(const grey_quant_layout& layout, grey_dtype plain_dtype, uint64_t plain, uint64_t quantized);
    void dequantize(const grey_quant_layout& layout, grey_dtype plain_dtype, uint64_t quantized, uint64_t plain);
    // The same dequantization appended to a command list of `stream` (one kernel: nothing for the host to
    // do between its steps), returning once it is queued.
    void enqueue_dequantize(ZeStream& stream, const grey_quant_layout& layout, grey_dtype plain_dtype, uint64_t quantized, uint64_t plain);

    // The KV cache's block operations (kv_launch.hpp), on device addresses, each returning once its
    // kernels are done; the block tables go up in scratch that is given back before the call returns.
    // K and V are [layer_count][tokens][kv_heads][head_dim] of `dtype`; token i goes to slots[i] of
    // blocks[i]. With `first_non_finite`, the kernel checks them (grey_backend_kv_store_job says how).
    void kv_store(const common::KvLayout& layout, uint32_t layer_first, uint32_t layer_count, uint64_t keys, uint64_t values,
                  std::span<const uint64_t> blocks, std::span<const uint32_t> slots, grey_dtype dtype = GREY_DTYPE_F32,
                  uint64_t* first_non_finite = nullptr);
    void kv_compress(const common::KvLayout& layout, std::span<const uint64_t> sources, std::span<const uint64_t> destinations);
    // `entries` as kv_block_entries makes them; queries and output F32 [sequences][query_heads][head_dim].
    void kv_attend(const common::KvLayout& layout, std::span<const uint64_t> entries, std::span<const grey_kvl0_sequence> sequences,
                   uint32_t layer, uint32_t query_heads, float scale, uint64_t queries, uint64_t output);

    // A kernel that the driver cannot build (zeModuleCreate, with its build log) or find (zeKernelCreate)
    // throws ZeError naming the module; the next use tries again.

private:
    class QuantRun;  // quant_launch.hpp's QuantKernels on this queue (device_queue.cpp)

    void append_copy(void* destination, const void* source, uint64_t size);
    void copy_locked(void* destination, const void* source, uint64_t size);
    // The kernel `name` of `module`, with its work-group size set (and, for the KV kernels, which reach
    // device memory through tables of addresses, their indirect access declared), created on first use;
    // the caller holds mutex_.
    ze_kernel_handle_t kernel_locked(KernelModule module, const char* name, uint32_t group_size);
    ze_module_handle_t module_locked(KernelModule module);
    // Sets the kernel's arguments, each a value of the given size, and runs `groups` groups of it. A
    // failure names the call and the kernel.
    void launch_locked(ze_kernel_handle_t kernel, uint32_t groups, std::initializer_list<std::pair<size_t, const void*>> arguments);
    // The same onto `list` (the synchronous list, or one of a stream's: arguments are captured at the append).
    void launch_on_locked(ze_command_list_handle_t list, ze_kernel_handle_t kernel, uint32_t groups,
                          std::initializer_list<std::pair<size_t, const void*>> arguments);
    // The dequantization kernel of a job appended to `list`; the caller holds mutex_.
    void dequantize_on_locked(ze_command_list_handle_t list, const grey_quant_layout& layout, grey_dtype plain_dtype, uint64_t quantized,
                              uint64_t plain);

    const ZeLibrary& ze_;
    ze_context_handle_t context_;
    ze_device_handle_t device_;
    std::mutex mutex_;
    ze_command_list_handle_t list_ = nullptr;
    std::array<ze_module_handle_t, kKernelModuleCount> modules_{};
    std::vector<std::pair<std::string, ze_kernel_handle_t>> kernels_;
    backend::ChunkPool pool_;  // declared last: destroyed first, while the context still stands
};

}  // namespace grey::level0
