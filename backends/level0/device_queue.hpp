// The work of one Level Zero device: its memory pool, a synchronous immediate command list for copies,
// fills and kernels (each append returns once the device has finished it), and the checksum kernel,
// built from the embedded SPIR-V on first use. Calls from several threads are serialised: one command
// list, and one kernel's arguments, must not be used concurrently.
#pragma once

#include "common/chunk_pool.hpp"
#include "level0/ze_library.hpp"

#include <cstdint>
#include <mutex>

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
    void copy(uint64_t destination, uint64_t source, uint64_t size);
    void fill(uint64_t destination, uint8_t value, uint64_t size);
    // grey.h's buffer checksum of `size` bytes at `source`, by kernels/opencl/grey_checksum.cl. A module
    // the driver cannot build throws ZeError naming zeModuleCreate and the driver's build log.
    [[nodiscard]] uint64_t checksum(uint64_t source, uint64_t size);

private:
    void append_copy(void* destination, const void* source, uint64_t size);
    void copy_locked(void* destination, const void* source, uint64_t size);
    // The checksum kernel, created on first use; the caller holds mutex_.
    ze_kernel_handle_t checksum_kernel_locked();

    const ZeLibrary& ze_;
    ze_context_handle_t context_;
    ze_device_handle_t device_;
    std::mutex mutex_;
    ze_command_list_handle_t list_ = nullptr;
    ze_module_handle_t module_ = nullptr;
    ze_kernel_handle_t checksum_kernel_ = nullptr;
    backend::ChunkPool pool_;  // declared last: destroyed first, while the context still stands
};

}  // namespace grey::level0
