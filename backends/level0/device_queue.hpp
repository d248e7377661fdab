// The work of one Level Zero device: its memory pool, a synchronous immediate command list for copies,
// fills and kernels (each append returns once the device has finished it), and the kernels of
// kernels/opencl (checksum, fill and copy, quantization), each module built from the embedded SPIR-V
// on first use. Calls from several threads are serialised: one command list, and one kernel's
// arguments, must not be used concurrently.
#pragma once

#include "common/chunk_pool.hpp"
#include "common/quant_layout.h"
#include "level0/kernel_images.hpp"
#include "level0/ze_library.hpp"

#include <array>
#include <initializer_list>
#include <cstdint>
#include <mutex>
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

    // A kernel that the driver cannot build (zeModuleCreate, with its build log) or find (zeKernelCreate)
    // throws ZeError naming the module; the next use tries again.

private:
    class QuantRun;  // quant_launch.hpp's QuantKernels on this queue (device_queue.cpp)

    void append_copy(void* destination, const void* source, uint64_t size);
    void copy_locked(void* destination, const void* source, uint64_t size);
    // The kernel `name` of `module`, with its work-group size set, created on first use; the caller
    // holds mutex_.
    ze_kernel_handle_t kernel_locked(KernelModule module, const char* name, uint32_t group_size);
    ze_module_handle_t module_locked(KernelModule module);
    // Sets the kernel's arguments, each a value of the given size, and runs `groups` groups of it.
    void launch_locked(ze_kernel_handle_t kernel, uint32_t groups, std::initializer_list<std::pair<size_t, const void*>> arguments);

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
