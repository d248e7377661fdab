// DeviceRuntime's work on the caller's streams (grey_stream): the copies and kernels of the synchronous
// operations, enqueued on a stream the caller made and not waited for.
#include "cuda/device_runtime.hpp"

namespace grey::cuda {

CUstream DeviceRuntime::create_stream() {
    ContextScope scope(driver_, context_.get());
    CUstream stream = nullptr;
    // Non-blocking, as the device's own: work on it does not wait for the legacy default stream.
    driver_.check(driver_.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    return stream;
}

void DeviceRuntime::destroy_stream(CUstream stream) noexcept {
    try {
        ContextScope scope(driver_, context_.get());
        (void)driver_.cuStreamDestroy(stream);
    } catch (const DriverError&) {
        // The context is gone; the stream went with it.
    }
}

CUevent DeviceRuntime::create_event(bool timed) {
    ContextScope scope(driver_, context_.get());
    CUevent event = nullptr;
    driver_.check(driver_.cuEventCreate(&event, timed ? CU_EVENT_DEFAULT : CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    return event;
}

void DeviceRuntime::destroy_event(CUevent event) noexcept {
    try {
        ContextScope scope(driver_, context_.get());
        (void)driver_.cuEventDestroy(event);
    } catch (const DriverError&) {
    }
}

void DeviceRuntime::write_on(CUstream stream, CUdeviceptr destination, const void* source, uint64_t size) {
    ContextScope scope(driver_, context_.get());
    driver_.check(driver_.cuMemcpyHtoDAsync(destination, source, size, stream), "cuMemcpyHtoDAsync");
}

void DeviceRuntime::host_task_on(CUstream stream, void (*task)(void*), void* data) {
    ContextScope scope(driver_, context_.get());
    driver_.check(driver_.cuLaunchHostFunc(stream, task, data), "cuLaunchHostFunc");
}

void DeviceRuntime::read_on(CUstream stream, void* destination, CUdeviceptr source, uint64_t size) {
    ContextScope scope(driver_, context_.get());
    driver_.check(driver_.cuMemcpyDtoHAsync(destination, source, size, stream), "cuMemcpyDtoHAsync");
}

void DeviceRuntime::copy_on(CUstream stream, CUdeviceptr destination, CUdeviceptr source, uint64_t size) {
    ContextScope scope(driver_, context_.get());
    unsigned long long n = size;
    void* params[] = {&destination, &source, &n};
    launch_sized_on(stream, kernels_->copy, size, params);
}

void DeviceRuntime::fill_on(CUstream stream, CUdeviceptr destination, uint8_t value, uint64_t size) {
    ContextScope scope(driver_, context_.get());
    enqueue_fill(stream, destination, value, size);
}

void DeviceRuntime::checksum_on(CUstream stream, CUdeviceptr slot, CUdeviceptr source, uint64_t size, uint64_t* out) {
    ContextScope scope(driver_, context_.get());
    // Static: the copy may run after this call returns.
    static const uint64_t zero = 0;
    driver_.check(driver_.cuMemcpyHtoDAsync(slot, &zero, sizeof zero, stream), "cuMemcpyHtoDAsync");
    if (size != 0) {
        unsigned long long n = size;
        void* params[] = {&source, &n, &slot};
        launch_sized_on(stream, kernels_->checksum, size, params);
    }
    driver_.check(driver_.cuMemcpyDtoHAsync(out, slot, sizeof *out, stream), "cuMemcpyDtoHAsync");
}

}  // namespace grey::cuda
