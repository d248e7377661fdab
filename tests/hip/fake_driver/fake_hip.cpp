// A fake HIP runtime (installed as libamdhip64.so.6): FAKE_HIP_DEVICES GPUs (default 1) shaped like one
// GCD of an AMD Instinct MI250X, device memory from the host heap, synchronous copies and fills. HIP's
// current device is per thread, as in the real runtime; allocations remember the device they were made on.
//   FAKE_HIP_FAIL     "name:code[,...]" (fake_common.hpp): that entry point returns hipError_t `code`
//   FAKE_HIP_DEVICES  the number of GPUs
//   FAKE_HIP_MEMORY   device memory in bytes (default 1 GiB); hipMalloc beyond it fails
// Variant FAKE_HIP_OLD: no hipMemGetInfo and no hipDeviceGetUuid. Test hook: fake_hip_live_allocations().
#include "fake_common.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr int kSuccess = 0, kInvalidValue = 1, kOutOfMemory = 2, kNotInitialized = 3, kInvalidDevice = 101;

struct State {
    std::mutex mutex;
    bool initialised = false;
    std::map<void*, std::pair<size_t, int>> allocations;  // size, device
    size_t allocated = 0;
};

State& state() {
    static State s;
    return s;
}

thread_local int current_device = 0;

int devices() { return static_cast<int>(fake::env_u64("FAKE_HIP_DEVICES", 1)); }

#define FAKE_ENTER(name)                                                        \
    if (auto forced = fake::forced_failure("FAKE_HIP_FAIL", name)) return *forced; \
    if (!state().initialised) return kNotInitialized;

#define FAKE_DEVICE(device) \
    if ((device) < 0 || (device) >= devices()) return kInvalidDevice;

}  // namespace

FAKE_EXPORT int fake_hip_live_allocations() {
    std::lock_guard lock(state().mutex);
    return static_cast<int>(state().allocations.size());
}

FAKE_EXPORT int hipInit(unsigned int) {
    if (auto forced = fake::forced_failure("FAKE_HIP_FAIL", "hipInit")) return *forced;
    state().initialised = true;
    return kSuccess;
}

FAKE_EXPORT int hipGetDeviceCount(int* count) {
    FAKE_ENTER("hipGetDeviceCount")
    *count = devices();
    return *count == 0 ? 100 : kSuccess;  // hipErrorNoDevice, as the real runtime answers
}

FAKE_EXPORT int hipDeviceGetName(char* name, int length, int device) {
    FAKE_ENTER("hipDeviceGetName")
    FAKE_DEVICE(device)
    std::snprintf(name, static_cast<size_t>(length), "Fake AMD Instinct MI250X");
    return kSuccess;
}

FAKE_EXPORT int hipDeviceGetAttribute(int* value, int attribute, int device) {
    FAKE_ENTER("hipDeviceGetAttribute")
    FAKE_DEVICE(device)
    switch (attribute) {
        case 5: *value = 1700000; return kSuccess;        // clock rate, kHz
        case 19: *value = 8 << 20; return kSuccess;       // L2
        case 59: *value = 4096; return kSuccess;          // memory bus width
        case 60: *value = 1600000; return kSuccess;       // memory clock, kHz
        case 63: *value = 110; return kSuccess;           // compute units
        default: return kInvalidValue;
    }
}

FAKE_EXPORT int hipDeviceTotalMem(size_t* bytes, int device) {
    FAKE_ENTER("hipDeviceTotalMem")
    FAKE_DEVICE(device)
    *bytes = 64ull << 30;
    return kSuccess;
}

FAKE_EXPORT int hipDeviceGetPCIBusId(char* bus, int length, int device) {
    FAKE_ENTER("hipDeviceGetPCIBusId")
    FAKE_DEVICE(device)
    std::snprintf(bus, static_cast<size_t>(length), "0000:%02x:00.0", 0xc1 + device);
    return kSuccess;
}

#ifndef FAKE_HIP_OLD
FAKE_EXPORT int hipDeviceGetUuid(char* uuid, int device) {  // hipUUID: 16 bytes
    FAKE_ENTER("hipDeviceGetUuid")
    FAKE_DEVICE(device)
    for (int i = 0; i < 16; ++i) uuid[i] = static_cast<char>(0xa0 + i + device);
    return kSuccess;
}
#endif

FAKE_EXPORT int hipSetDevice(int device) {
    FAKE_ENTER("hipSetDevice")
    FAKE_DEVICE(device)
    current_device = device;
    return kSuccess;
}

#ifndef FAKE_HIP_OLD
FAKE_EXPORT int hipMemGetInfo(size_t* free, size_t* total) {
    FAKE_ENTER("hipMemGetInfo")
    std::lock_guard lock(state().mutex);
    size_t on_device = 0;
    for (const auto& [pointer, a] : state().allocations)
        if (a.second == current_device) on_device += a.first;
    *total = 64ull << 30;
    *free = *total - (256ull << 20) - on_device;
    return kSuccess;
}
#endif

FAKE_EXPORT int hipMalloc(void** pointer, size_t size) {
    FAKE_ENTER("hipMalloc")
    std::lock_guard lock(state().mutex);
    if (state().allocated + size > fake::env_u64("FAKE_HIP_MEMORY", 1ull << 30)) return kOutOfMemory;
    void* memory = std::aligned_alloc(256, (size + 255) / 256 * 256);
    if (memory == nullptr) return kOutOfMemory;
    state().allocations.emplace(memory, std::pair{size, current_device});
    state().allocated += size;
    *pointer = memory;
    return kSuccess;
}

FAKE_EXPORT int hipFree(void* pointer) {
    std::lock_guard lock(state().mutex);
    auto it = state().allocations.find(pointer);
    if (it == state().allocations.end()) return kInvalidValue;
    if (it->second.second != current_device) return kInvalidDevice;  // freed with the wrong device current
    state().allocated -= it->second.first;
    state().allocations.erase(it);
    std::free(pointer);
    return kSuccess;
}

FAKE_EXPORT int hipMemcpy(void* destination, const void* source, size_t size, int) {
    FAKE_ENTER("hipMemcpy")
    std::memmove(destination, source, size);
    return kSuccess;
}

FAKE_EXPORT int hipMemset(void* destination, int value, size_t size) {
    FAKE_ENTER("hipMemset")
    std::memset(destination, value, size);
    return kSuccess;
}

FAKE_EXPORT int hipDeviceSynchronize() {
    FAKE_ENTER("hipDeviceSynchronize")
    return kSuccess;
}

FAKE_EXPORT int hipDriverGetVersion(int* version) {
    FAKE_ENTER("hipDriverGetVersion")
    *version = 60032830;
    return kSuccess;
}

FAKE_EXPORT int hipRuntimeGetVersion(int* version) {
    FAKE_ENTER("hipRuntimeGetVersion")
    *version = 60032830;  // HIP 6.0.32830
    return kSuccess;
}

FAKE_EXPORT const char* hipGetErrorName(int error) {
    switch (error) {
        case kSuccess: return "hipSuccess";
        case kInvalidValue: return "hipErrorInvalidValue";
        case kOutOfMemory: return "hipErrorOutOfMemory";
        case kNotInitialized: return "hipErrorNotInitialized";
        case 100: return "hipErrorNoDevice";
        case kInvalidDevice: return "hipErrorInvalidDevice";
        case 719: return "hipErrorLaunchFailure";
        default: return "hipErrorUnknown";
    }
}
