// What a CUDA device needs for memory and kernels: its primary context, a stream, an event, the pool
// and the kernels of the embedded fatbin. Created on a device's first memory operation, so detection
// alone never creates a context (which costs time and device memory).
#pragma once

#include "cuda/driver.hpp"
#include "cuda/pool.hpp"

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>

namespace grey::cuda {

// The embedded fatbin (fatbin_embed.cpp).
std::span<const unsigned char> kernel_fatbin();

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

class Kernels {
public:
    explicit Kernels(const Driver& driver);  // loads the fatbin into the current context
    ~Kernels();
    Kernels(const Kernels&) = delete;
    Kernels& operator=(const Kernels&) = delete;

    CUfunction fill = nullptr;
    CUfunction copy = nullptr;
    CUfunction checksum = nullptr;

private:
    const Driver& driver_;
    CUmodule module_ = nullptr;
};

class DeviceRuntime {
public:
    DeviceRuntime(const Driver& driver, CUdevice device, uint64_t memory_bytes);
    ~DeviceRuntime();
    DeviceRuntime(const DeviceRuntime&) = delete;
    DeviceRuntime& operator=(const DeviceRuntime&) = delete;

    [[nodiscard]] CUcontext context() const noexcept { return context_.get(); }
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

    // Synchronous operations, serialised per device (they share the stream and the checksum slot).
    void write(CUdeviceptr destination, const void* source, uint64_t size);
    void read(void* destination, CUdeviceptr source, uint64_t size);
    void copy(CUdeviceptr destination, CUdeviceptr source, uint64_t size);
    void fill(CUdeviceptr destination, uint8_t value, uint64_t size);
    [[nodiscard]] uint64_t checksum(CUdeviceptr source, uint64_t size);

    // Device memory free and total, as the driver sees it.
    void memory_info(uint64_t& free, uint64_t& total);

private:
    void launch(CUfunction function, uint64_t size, void** params);

    const Driver& driver_;
    PrimaryContext context_;
    std::unique_ptr<VmmPool> pool_;
    std::unique_ptr<Stream> stream_;
    std::unique_ptr<Event> done_;
    std::unique_ptr<Kernels> kernels_;
    CUdeviceptr checksum_slot_ = 0;  // 8 bytes from the pool for the checksum kernel's sum
    unsigned int max_blocks_ = 0;
    std::mutex mutex_;
};

}  // namespace grey::cuda
