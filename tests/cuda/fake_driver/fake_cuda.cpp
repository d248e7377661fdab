// A fake libcuda.so.1 for CI machines without a GPU: the subset of the driver API the CUDA backend
// uses, served through cuGetProcAddress exactly as the real driver serves it (no other symbol is
// exported, so a backend that dlsym'ed functions directly would fail here). Device memory is host
// memory: address ranges are reserved with mmap(PROT_NONE) and mapped read-write by cuMemMap, so
// copies, fills and the backend's pool work end to end. Kernel launches are emulated on the host by
// kernel name: this tests argument passing and plumbing, never the CUDA kernels themselves.
//
// Switches (environment, read at each call):
//   FAKE_CUDA_DEVICE_COUNT   devices (default 1)
//   FAKE_CUDA_MEMORY         bytes of memory per device (default 1 GiB)
//   FAKE_CUDA_HIDE           an entry point cuGetProcAddress claims not to have
//   FAKE_CUDA_FAIL           "name:code,...": those entry points return that CUresult
//   FAKE_CUDA_QUANT_KERNELS  "1": serve the quantization kernels' names, emulated as a stand-in
//                            (tests/backends/fake_quant_kernels.hpp, which also keeps FAKE_QUANT_LAUNCH_LOG);
//                            unset, cuModuleGetFunction finds none of them
//   FAKE_CUDA_KV_KERNELS     "1": serve the KV cache's kernels' names, run as the host stand-in of
//                            tests/backends/fake_kv_kernels.hpp (which also keeps FAKE_KV_LAUNCH_LOG)
//   FAKE_CUDA_BLOCK_HASH     a number: grey_block_hash gives it for every block (forced collisions)
// Built with FAKE_CUDA_NO_GETPROCADDRESS: a driver that predates cuGetProcAddress.
#include "fake_common.hpp"
#include "fake_kv_kernels.hpp"
#include "fake_quant_kernels.hpp"

#include <cuda.h>

#include "common/codec_decode.hpp"
#include "cuda/quant_args.h"
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kGranularity = 2ull << 20;

// The fake's device-side state. A test double: one instance for the process, as a driver has.
struct FakeDriver {
    std::mutex mutex;
    bool initialised = false;
    std::map<uint64_t, uint64_t> reservations;    // base -> size
    std::map<uint64_t, uint64_t> handles;         // handle -> size (created, not yet released)
    std::map<uint64_t, std::pair<uint64_t, uint64_t>> mappings;  // address -> (size, handle)
    std::map<uint64_t, int> handle_refs;          // handle -> live references (handle + mappings)
    uint64_t physical_bytes = 0;
    uint64_t next_handle = 1;
    int context_refs = 0;
};

FakeDriver& driver() {
    static FakeDriver instance;
    return instance;
}

// What crossed from the device to the host and how often the block hash kernel ran (test hooks), counted
// when the copy or launch is made.
std::atomic<unsigned long long> read_back_bytes{0};
std::atomic<unsigned long long> block_hash_launches{0};
// Device-to-device copies (grey_copy launches and cuMemcpyDtoDAsync), grey_codec_decode launches on any
// stream, and cuStreamSynchronize calls (test hooks, counted when the call is made).
std::atomic<unsigned long long> device_copies{0};
std::atomic<unsigned long long> codec_decode_launches{0};
std::atomic<unsigned long long> stream_synchronizes{0};
// Page-locked allocations (cuMemAllocHost), host-to-device copies from such memory when queued and when
// run, and cuEventQuery calls (test hooks). The pinned ranges are kept to tell a copy's source.
std::atomic<unsigned long long> pinned_allocations{0};
std::atomic<unsigned long long> pinned_copies_queued{0};
std::atomic<unsigned long long> pinned_copies_run{0};
std::atomic<unsigned long long> event_queries{0};
// Host functions (cuLaunchHostFunc) queued and run (test hooks).
std::atomic<unsigned long long> host_tasks_queued{0};
std::atomic<unsigned long long> host_tasks_run{0};
// Waits of the host for the device (cuStreamSynchronize and cuEventSynchronize calls), and host-to-device
// copies queued, by stream (test hooks, counted when the call is made).
std::atomic<unsigned long long> host_waits{0};
std::mutex copies_mutex;
std::map<CUstream, unsigned long long> host_to_device_copies;
std::mutex pinned_mutex;
std::map<uintptr_t, size_t> pinned_ranges;  // start -> size

bool is_pinned(const void* pointer) {
    const auto address = reinterpret_cast<uintptr_t>(pointer);
    std::lock_guard lock(pinned_mutex);
    auto after = pinned_ranges.upper_bound(address);
    if (after == pinned_ranges.begin()) return false;
    --after;
    return address < after->first + after->second;
}

#define FAKE_FAIL(name)                                                                            \
    if (auto forced = fake::forced_failure("FAKE_CUDA_FAIL", name)) return static_cast<CUresult>(*forced)

int device_count() { return static_cast<int>(fake::env_u64("FAKE_CUDA_DEVICE_COUNT", 1)); }
uint64_t memory_bytes() { return fake::env_u64("FAKE_CUDA_MEMORY", 1ull << 30); }

CUresult check_device(CUdevice d) { return d >= 0 && d < device_count() ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE; }

CUresult fake_cuInit(unsigned int) {
    FAKE_FAIL("cuInit");
    driver().initialised = true;
    return CUDA_SUCCESS;
}

CUresult fake_cuDriverGetVersion(int* v) {
    FAKE_FAIL("cuDriverGetVersion");
    *v = 13000;
    return CUDA_SUCCESS;
}

CUresult fake_cuDeviceGetCount(int* n) {
    FAKE_FAIL("cuDeviceGetCount");
    *n = device_count();
    return CUDA_SUCCESS;
}

CUresult fake_cuDeviceGet(CUdevice* d, int ordinal) {
    FAKE_FAIL("cuDeviceGet");
    if (ordinal < 0 || ordinal >= device_count()) return CUDA_ERROR_INVALID_DEVICE;
    *d = ordinal;
    return CUDA_SUCCESS;
}

CUresult fake_cuDeviceGetName(char* name, int len, CUdevice d) {
    FAKE_FAIL("cuDeviceGetName");
    if (auto r = check_device(d)) return r;
    std::snprintf(name, static_cast<size_t>(len), "Fake NVIDIA H100 80GB HBM3");
    return CUDA_SUCCESS;
}

CUresult fake_cuDeviceGetAttribute(int* value, CUdevice_attribute attribute, CUdevice d) {
    FAKE_FAIL("cuDeviceGetAttribute");
    if (auto r = check_device(d)) return r;
    switch (attribute) {
        case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *value = 132; break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *value = 9; break;
        case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *value = 0; break;
        case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *value = 50 << 20; break;
        case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: *value = 5120; break;
        case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: *value = 2619000; break;
        case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: *value = 1980000; break;
        case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED: *value = 1; break;
        case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *value = 232448; break;
        default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult fake_cuDeviceTotalMem(size_t* bytes, CUdevice d) {
    FAKE_FAIL("cuDeviceTotalMem");
    if (auto r = check_device(d)) return r;
    *bytes = memory_bytes();
    return CUDA_SUCCESS;
}

CUresult fake_cuDeviceGetUuid(CUuuid* uuid, CUdevice d) {
    FAKE_FAIL("cuDeviceGetUuid");
    if (auto r = check_device(d)) return r;
    for (int i = 0; i < 16; ++i) uuid->bytes[i] = static_cast<char>(0x10 * (i % 16) + d);
    return CUDA_SUCCESS;
}

CUresult fake_cuDeviceGetPCIBusId(char* bus, int len, CUdevice d) {
    FAKE_FAIL("cuDeviceGetPCIBusId");
    if (auto r = check_device(d)) return r;
    std::snprintf(bus, static_cast<size_t>(len), "0000:%02x:00.0", 0x3b + d);
    return CUDA_SUCCESS;
}

CUresult fake_cuDevicePrimaryCtxRetain(CUcontext* ctx, CUdevice d) {
    FAKE_FAIL("cuDevicePrimaryCtxRetain");
    if (auto r = check_device(d)) return r;
    std::lock_guard lock(driver().mutex);
    driver().context_refs += 1;
    *ctx = reinterpret_cast<CUcontext>(static_cast<uintptr_t>(0x1000 + d));
    return CUDA_SUCCESS;
}

CUresult fake_cuDevicePrimaryCtxRelease(CUdevice d) {
    std::lock_guard lock(driver().mutex);
    driver().context_refs -= 1;
    return check_device(d);
}

thread_local std::vector<CUcontext> context_stack;
std::atomic<unsigned long long> context_pushes{0};

CUresult fake_cuCtxPushCurrent(CUcontext ctx) {
    FAKE_FAIL("cuCtxPushCurrent");
    context_stack.push_back(ctx);
    context_pushes.fetch_add(1);
    return CUDA_SUCCESS;
}

CUresult fake_cuCtxPopCurrent(CUcontext* ctx) {
    if (context_stack.empty()) return CUDA_ERROR_INVALID_CONTEXT;
    if (ctx != nullptr) *ctx = context_stack.back();
    context_stack.pop_back();
    return CUDA_SUCCESS;
}

CUresult fake_cuCtxGetCurrent(CUcontext* ctx) {
    FAKE_FAIL("cuCtxGetCurrent");
    *ctx = context_stack.empty() ? nullptr : context_stack.back();
    return CUDA_SUCCESS;
}

CUresult require_context() { return context_stack.empty() ? CUDA_ERROR_INVALID_CONTEXT : CUDA_SUCCESS; }

CUresult fake_cuMemGetInfo(size_t* free, size_t* total) {
    FAKE_FAIL("cuMemGetInfo");
    if (auto r = require_context()) return r;
    std::lock_guard lock(driver().mutex);
    *total = memory_bytes();
    *free = *total - std::min<uint64_t>(*total, driver().physical_bytes);
    return CUDA_SUCCESS;
}

CUresult fake_cuMemGetAllocationGranularity(size_t* g, const CUmemAllocationProp*, CUmemAllocationGranularity_flags) {
    FAKE_FAIL("cuMemGetAllocationGranularity");
    *g = kGranularity;
    return CUDA_SUCCESS;
}

CUresult fake_cuMemAddressReserve(CUdeviceptr* ptr, size_t size, size_t, CUdeviceptr, unsigned long long) {
    FAKE_FAIL("cuMemAddressReserve");
    if (size == 0 || size % kGranularity != 0) return CUDA_ERROR_INVALID_VALUE;
    void* p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
    std::lock_guard lock(driver().mutex);
    driver().reservations[reinterpret_cast<uint64_t>(p)] = size;
    *ptr = reinterpret_cast<CUdeviceptr>(p);
    return CUDA_SUCCESS;
}

CUresult fake_cuMemAddressFree(CUdeviceptr ptr, size_t size) {
    std::lock_guard lock(driver().mutex);
    auto it = driver().reservations.find(ptr);
    if (it == driver().reservations.end() || it->second != size) return CUDA_ERROR_INVALID_VALUE;
    munmap(reinterpret_cast<void*>(ptr), size);
    driver().reservations.erase(it);
    return CUDA_SUCCESS;
}

void drop_reference(FakeDriver& f, uint64_t handle) {
    if (--f.handle_refs[handle] == 0) {
        f.physical_bytes -= f.handles[handle];
        f.handles.erase(handle);
        f.handle_refs.erase(handle);
    }
}

CUresult fake_cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size, const CUmemAllocationProp*, unsigned long long) {
    FAKE_FAIL("cuMemCreate");
    if (size == 0 || size % kGranularity != 0) return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard lock(driver().mutex);
    FakeDriver& f = driver();
    if (f.physical_bytes + size > memory_bytes()) return CUDA_ERROR_OUT_OF_MEMORY;
    const uint64_t h = f.next_handle++;
    f.handles[h] = size;
    f.handle_refs[h] = 1;
    f.physical_bytes += size;
    *handle = h;
    return CUDA_SUCCESS;
}

CUresult fake_cuMemRelease(CUmemGenericAllocationHandle handle) {
    FAKE_FAIL("cuMemRelease");
    std::lock_guard lock(driver().mutex);
    if (!driver().handles.count(handle)) return CUDA_ERROR_INVALID_VALUE;
    drop_reference(driver(), handle);
    return CUDA_SUCCESS;
}

CUresult fake_cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle, unsigned long long) {
    FAKE_FAIL("cuMemMap");
    std::lock_guard lock(driver().mutex);
    FakeDriver& f = driver();
    auto h = f.handles.find(handle);
    if (h == f.handles.end() || offset != 0 || h->second != size) return CUDA_ERROR_INVALID_VALUE;
    f.mappings[ptr] = {size, handle};
    f.handle_refs[handle] += 1;
    return CUDA_SUCCESS;
}

CUresult fake_cuMemUnmap(CUdeviceptr ptr, size_t size) {
    FAKE_FAIL("cuMemUnmap");
    std::lock_guard lock(driver().mutex);
    FakeDriver& f = driver();
    auto m = f.mappings.find(ptr);
    if (m == f.mappings.end() || m->second.first != size) return CUDA_ERROR_INVALID_VALUE;
    // Give the pages back and make the range inaccessible again, as unmapping device memory does.
    madvise(reinterpret_cast<void*>(ptr), size, MADV_DONTNEED);
    mprotect(reinterpret_cast<void*>(ptr), size, PROT_NONE);
    drop_reference(f, m->second.second);
    f.mappings.erase(m);
    return CUDA_SUCCESS;
}

CUresult fake_cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc*, size_t count) {
    FAKE_FAIL("cuMemSetAccess");
    std::lock_guard lock(driver().mutex);
    auto m = driver().mappings.find(ptr);
    if (count != 1 || m == driver().mappings.end() || m->second.first != size) return CUDA_ERROR_INVALID_VALUE;
    return mprotect(reinterpret_cast<void*>(ptr), size, PROT_READ | PROT_WRITE) == 0 ? CUDA_SUCCESS : CUDA_ERROR_UNKNOWN;
}

// Streams defer their work, as a GPU does: copies and kernel launches on a stream are queued and run
// when something waits for them (cuStreamSynchronize, cuEventSynchronize or cuEventQuery of an event
// recorded on it, cuStreamQuery, or a stream that waits for such an event reaching its turn), so a
// backend that forgets to wait, or frees host memory too early, reads or writes the wrong bytes here too.
// Work on the legacy default stream (NULL) runs at once. Events are tokens that remember their stream.
struct FakeStreams {
    std::mutex mutex;
    uintptr_t next_stream = 0x2000;
    uintptr_t next_event = 0x300000;
    std::map<CUstream, std::vector<std::function<void()>>> queues;
    std::map<CUstream, CUcontext> owner;  // the context current at cuStreamCreate
    std::map<CUevent, CUstream> recorded_on;
    std::set<CUevent> untimed;  // made with CU_EVENT_DISABLE_TIMING
};

FakeStreams& streams() {
    static FakeStreams instance;
    return instance;
}

void enqueue(CUstream stream, std::function<void()> work) {
    if (stream != nullptr) {
        std::lock_guard lock(streams().mutex);
        if (auto q = streams().queues.find(stream); q != streams().queues.end()) {
            q->second.push_back(std::move(work));
            return;
        }
    }
    work();
}

// Runs a stream's queue in order; work may flush other streams (a wait), so no lock is held while it runs.
void flush(CUstream stream) {
    for (;;) {
        std::function<void()> next;
        {
            std::lock_guard lock(streams().mutex);
            auto q = streams().queues.find(stream);
            if (q == streams().queues.end() || q->second.empty()) return;
            next = std::move(q->second.front());
            q->second.erase(q->second.begin());
        }
        next();
    }
}

CUstream stream_of(CUevent event) {
    std::lock_guard lock(streams().mutex);
    auto found = streams().recorded_on.find(event);
    return found != streams().recorded_on.end() ? found->second : nullptr;
}

CUresult fake_cuStreamCreate(CUstream* s, unsigned int) {
    FAKE_FAIL("cuStreamCreate");
    if (auto r = require_context()) return r;
    std::lock_guard lock(streams().mutex);
    *s = reinterpret_cast<CUstream>(streams().next_stream++);
    streams().queues[*s];
    streams().owner[*s] = context_stack.back();
    return CUDA_SUCCESS;
}
CUresult fake_cuStreamDestroy(CUstream s) {
    // The driver completes the work of a destroyed stream.
    flush(s);
    std::lock_guard lock(streams().mutex);
    streams().queues.erase(s);
    streams().owner.erase(s);
    return CUDA_SUCCESS;
}
CUresult fake_cuStreamGetCtx(CUstream s, CUcontext* ctx) {
    FAKE_FAIL("cuStreamGetCtx");
    std::lock_guard lock(streams().mutex);
    auto found = streams().owner.find(s);
    if (found == streams().owner.end()) return CUDA_ERROR_INVALID_HANDLE;
    *ctx = found->second;
    return CUDA_SUCCESS;
}
CUresult fake_cuStreamSynchronize(CUstream s) {
    FAKE_FAIL("cuStreamSynchronize");
    ++stream_synchronizes;
    ++host_waits;
    flush(s);
    return CUDA_SUCCESS;
}
CUresult fake_cuStreamQuery(CUstream s) {
    FAKE_FAIL("cuStreamQuery");
    flush(s);
    return CUDA_SUCCESS;
}
CUresult fake_cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags) {
    FAKE_FAIL("cuStreamWaitEvent");
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    const CUstream producer = stream_of(e);
    if (producer != nullptr && producer != s) enqueue(s, [producer] { flush(producer); });
    return CUDA_SUCCESS;
}
std::atomic<long long> live_events{0};
std::atomic<unsigned long long> event_records{0};

CUresult fake_cuEventCreate(CUevent* e, unsigned int flags) {
    FAKE_FAIL("cuEventCreate");
    std::lock_guard lock(streams().mutex);
    *e = reinterpret_cast<CUevent>(streams().next_event++);
    if ((flags & CU_EVENT_DISABLE_TIMING) != 0) streams().untimed.insert(*e);
    live_events.fetch_add(1);
    return CUDA_SUCCESS;
}
CUresult fake_cuEventDestroy(CUevent e) {
    std::lock_guard lock(streams().mutex);
    streams().recorded_on.erase(e);
    streams().untimed.erase(e);
    live_events.fetch_sub(1);
    return CUDA_SUCCESS;
}
CUresult fake_cuEventRecord(CUevent e, CUstream s) {
    FAKE_FAIL("cuEventRecord");
    event_records.fetch_add(1);
    std::lock_guard lock(streams().mutex);
    streams().recorded_on[e] = s;
    return CUDA_SUCCESS;
}
CUresult fake_cuEventSynchronize(CUevent e) {
    FAKE_FAIL("cuEventSynchronize");
    ++host_waits;
    if (const CUstream s = stream_of(e)) flush(s);
    return CUDA_SUCCESS;
}
CUresult fake_cuEventQuery(CUevent e) {
    FAKE_FAIL("cuEventQuery");
    ++event_queries;
    if (const CUstream s = stream_of(e)) flush(s);
    return CUDA_SUCCESS;
}
CUresult fake_cuEventElapsedTime(float* ms, CUevent start, CUevent end) {
    *ms = 0.0f;
    {
        std::lock_guard lock(streams().mutex);
        if (streams().untimed.count(start) != 0 || streams().untimed.count(end) != 0) return CUDA_ERROR_INVALID_HANDLE;
    }
    return CUDA_ERROR_NOT_SUPPORTED;  // the fake has no clock; nothing in CI times with it
}

// Host memory is read and written when the copy runs, as the driver's DMA would.
CUresult fake_cuMemcpyHtoDAsync(CUdeviceptr dst, const void* src, size_t n, CUstream s) {
    FAKE_FAIL("cuMemcpyHtoDAsync");
    const bool pinned = is_pinned(src);
    if (pinned) ++pinned_copies_queued;
    {
        std::lock_guard lock(copies_mutex);
        ++host_to_device_copies[s];
    }
    enqueue(s, [=] {
        std::memcpy(reinterpret_cast<void*>(dst), src, n);
        if (pinned) ++pinned_copies_run;
    });
    return CUDA_SUCCESS;
}
CUresult fake_cuLaunchHostFunc(CUstream s, CUhostFn fn, void* data) {
    FAKE_FAIL("cuLaunchHostFunc");
    if (fn == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ++host_tasks_queued;
    enqueue(s, [=] {
        fn(data);
        ++host_tasks_run;
    });
    return CUDA_SUCCESS;
}
CUresult fake_cuMemAllocHost(void** pointer, size_t size) {
    FAKE_FAIL("cuMemAllocHost");
    if (auto r = require_context()) return r;
    *pointer = std::malloc(size);
    if (*pointer == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
    ++pinned_allocations;
    std::lock_guard lock(pinned_mutex);
    pinned_ranges[reinterpret_cast<uintptr_t>(*pointer)] = size;
    return CUDA_SUCCESS;
}
// Pinned memory is plain host memory here, and its device address the host address (as under UVA).
CUresult fake_cuMemHostGetDevicePointer(CUdeviceptr* device_pointer, void* pointer, unsigned int flags) {
    FAKE_FAIL("cuMemHostGetDevicePointer");
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    *device_pointer = reinterpret_cast<CUdeviceptr>(pointer);
    return CUDA_SUCCESS;
}
CUresult fake_cuMemFreeHost(void* pointer) {
    {
        std::lock_guard lock(pinned_mutex);
        pinned_ranges.erase(reinterpret_cast<uintptr_t>(pointer));
    }
    std::free(pointer);
    return CUDA_SUCCESS;
}
CUresult fake_cuMemcpyDtoHAsync(void* dst, CUdeviceptr src, size_t n, CUstream s) {
    FAKE_FAIL("cuMemcpyDtoHAsync");
    read_back_bytes += n;
    enqueue(s, [=] { std::memcpy(dst, reinterpret_cast<const void*>(src), n); });
    return CUDA_SUCCESS;
}
CUresult fake_cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
    FAKE_FAIL("cuMemcpyDtoDAsync");
    ++device_copies;
    enqueue(s, [=] { std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n); });
    return CUDA_SUCCESS;
}

// The fatbin's first word is its magic number; anything else is refused as the driver would.
CUresult fake_cuModuleLoadData(CUmodule* m, const void* image) {
    FAKE_FAIL("cuModuleLoadData");
    if (auto r = require_context()) return r;
    uint32_t magic = 0;
    std::memcpy(&magic, image, sizeof magic);
    if (magic != 0xBA55ED50u) return CUDA_ERROR_INVALID_IMAGE;
    *m = reinterpret_cast<CUmodule>(static_cast<uintptr_t>(0x4000));
    return CUDA_SUCCESS;
}
CUresult fake_cuModuleUnload(CUmodule) { return CUDA_SUCCESS; }

constexpr uintptr_t kFill = 1, kCopy = 2, kChecksum = 3, kQuantScan = 4, kDequantStandIn = 5, kQuantOther = 6, kKv = 7, kCodecDecode = 8,
                    kBlockHash = 9;

// The quantization kernels, served when FAKE_CUDA_QUANT_KERNELS is set, run as the stand-in of
// tests/backends/fake_quant_kernels.hpp (and the KV cache's, when FAKE_CUDA_KV_KERNELS is set, as that of
// fake_kv_kernels.hpp). A function handle is its kind in the low byte and, above it, the index of its
// name in quant_names() (for the launch logs).
std::vector<std::string>& quant_names() {
    static std::vector<std::string> names;
    return names;
}

uintptr_t quant_kernel_id(const std::string& n) {
    uintptr_t kind = 0;
    if (fake::is_kv_kernel(n)) {
        if (std::getenv("FAKE_CUDA_KV_KERNELS") == nullptr) return 0;
        kind = kKv;
    } else {
        if (std::getenv("FAKE_CUDA_QUANT_KERNELS") == nullptr) return 0;
        switch (fake::quant_role(n)) {
            case fake::QuantRole::scan: kind = kQuantScan; break;
            case fake::QuantRole::dequantize: kind = kDequantStandIn; break;
            case fake::QuantRole::other: kind = kQuantOther; break;
            case fake::QuantRole::none: return 0;
        }
    }
    std::lock_guard lock(driver().mutex);
    auto& names = quant_names();
    auto found = std::find(names.begin(), names.end(), n);
    if (found == names.end()) found = names.insert(names.end(), n);
    return kind | static_cast<uintptr_t>(found - names.begin() + 1) << 8;
}

CUresult fake_cuModuleGetFunction(CUfunction* f, CUmodule, const char* name) {
    FAKE_FAIL("cuModuleGetFunction");
    const std::string n = name;
    uintptr_t id = n == "grey_fill"           ? kFill
                   : n == "grey_copy"         ? kCopy
                   : n == "grey_checksum"     ? kChecksum
                   : n == "grey_codec_decode" ? kCodecDecode
                   : n == "grey_block_hash"   ? kBlockHash
                                              : 0;
    if (id == 0) id = quant_kernel_id(n);
    if (id == 0) return CUDA_ERROR_NOT_FOUND;
    *f = reinterpret_cast<CUfunction>(id);
    return CUDA_SUCCESS;
}

template <typename T>
T param(void** params, int i) {
    T value;
    std::memcpy(&value, params[i], sizeof value);
    return value;
}

CUresult fake_cuFuncSetAttribute(CUfunction f, CUfunction_attribute attribute, int value) {
    FAKE_FAIL("cuFuncSetAttribute");
    if (f == nullptr || attribute != CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES || value < 0 || value > 232448) return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

CUresult fake_cuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, CUfunction, int block_size, size_t) {
    FAKE_FAIL("cuOccupancyMaxActiveBlocksPerMultiprocessor");
    *blocks = block_size > 0 ? 2048 / block_size : 0;
    return CUDA_SUCCESS;
}

// Parameters are read when the kernel is launched (the driver copies them then); the kernel runs when
// its stream reaches it.
CUresult fake_cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                             unsigned int bz, unsigned int shared_bytes, CUstream s, void** params, void** extra) {
    FAKE_FAIL("cuLaunchKernel");
    const auto id = reinterpret_cast<uintptr_t>(f);
    // Only the KV kernels take grids of more than one dimension.
    const bool planar = gy == 1 && gz == 1;
    if (gx == 0 || gy == 0 || gz == 0 || (!planar && (id & 0xFF) != kKv) || bx == 0 || bx > 1024 || by != 1 || bz != 1 || params == nullptr ||
        extra != nullptr)
        return CUDA_ERROR_INVALID_VALUE;
    std::string name;
    if ((id >> 8) != 0) {
        std::lock_guard lock(driver().mutex);
        name = quant_names().at((id >> 8) - 1);
        fake::log_quant_launch(name, gx, bx, shared_bytes, params);
    }
    switch (id & 0xFF) {
        case kFill: {
            auto* dst = reinterpret_cast<void*>(param<CUdeviceptr>(params, 0));
            const int value = static_cast<int>(param<unsigned int>(params, 2) & 0xFF);
            const auto n = param<unsigned long long>(params, 1);
            enqueue(s, [=] { std::memset(dst, value, n); });
            return CUDA_SUCCESS;
        }
        case kCopy: {
            auto* dst = reinterpret_cast<void*>(param<CUdeviceptr>(params, 0));
            const auto* src = reinterpret_cast<const void*>(param<CUdeviceptr>(params, 1));
            const auto n = param<unsigned long long>(params, 2);
            ++device_copies;
            enqueue(s, [=] { std::memcpy(dst, src, n); });
            return CUDA_SUCCESS;
        }
        case kChecksum: {
            const auto* src = reinterpret_cast<const unsigned char*>(param<CUdeviceptr>(params, 0));
            const auto n = param<unsigned long long>(params, 1);
            auto* out = reinterpret_cast<unsigned long long*>(param<CUdeviceptr>(params, 2));
            enqueue(s, [=] {
                uint64_t sum = 0;
                for (uint64_t i = 0; i < n; ++i) sum += (static_cast<uint64_t>(src[i]) + 1u) * (i * 0x9E3779B97F4A7C15ull + 0xD6E8FEB86659FD93ull);
                *out += sum;
            });
            return CUDA_SUCCESS;
        }
        case kQuantScan: {
            const auto a = param<grey_qk_args>(params, 0);
            enqueue(s, [=] { fake::quant_scan(a); });
            return CUDA_SUCCESS;
        }
        case kDequantStandIn: {
            const auto a = param<grey_qk_args>(params, 0);
            enqueue(s, [=] { fake::dequant_stand_in(a); });
            return CUDA_SUCCESS;
        }
        case kQuantOther: return CUDA_SUCCESS;
        case kKv: enqueue(s, fake::kv_launch(name, gx, gy, gz, bx, shared_bytes, params)); return CUDA_SUCCESS;
        case kCodecDecode: {
            // The kernel's lane functions, a lane at a time (common/codec_decode.hpp), a warp per job; each
            // job's payload is at its (device) address.
            auto* output = reinterpret_cast<uint8_t*>(param<CUdeviceptr>(params, 0));
            const auto* jobs = reinterpret_cast<const grey::common::CodecBlockJob*>(param<CUdeviceptr>(params, 1));
            const auto count = param<unsigned int>(params, 2);
            auto* faults = reinterpret_cast<uint32_t*>(param<CUdeviceptr>(params, 3));
            if (uint64_t{gx} * (bx / 32) < count || bx % 32 != 0) return CUDA_ERROR_INVALID_VALUE;
            ++codec_decode_launches;
            // FAKE_CUDA_CORRUPT_CODEC_JOB=i at the launch: job i's payload is damaged in device memory just
            // before the kernel reads it (its last byte flipped), as a bit flip there would be.
            const char* corrupt_env = std::getenv("FAKE_CUDA_CORRUPT_CODEC_JOB");
            const uint64_t corrupt = corrupt_env != nullptr ? fake::env_u64("FAKE_CUDA_CORRUPT_CODEC_JOB", 0) : ~0ull;
            enqueue(s, [=] {
                auto workspace = std::make_unique<grey::common::RansWorkspace>();
                if (corrupt < count && jobs[corrupt].stored_size > 0)
                    reinterpret_cast<uint8_t*>(jobs[corrupt].payload)[jobs[corrupt].stored_size - 1] ^= 0x5A;
                for (uint32_t i = 0; i < count; ++i) {
                    grey::common::CodecBlockJob job = jobs[i];
                    const auto* payload = reinterpret_cast<const uint8_t*>(job.payload);
                    job.payload = 0;
                    faults[i] = grey::common::decode_block_by_lanes(payload, output, job, workspace.get());
                }
            });
            return CUDA_SUCCESS;
        }
        case kBlockHash: {
            const auto* data = reinterpret_cast<const uint8_t*>(param<CUdeviceptr>(params, 0));
            const auto size = param<unsigned long long>(params, 1);
            const auto block = param<unsigned int>(params, 2);
            const auto seed = param<unsigned long long>(params, 3);
            auto* hashes = reinterpret_cast<unsigned long long*>(param<CUdeviceptr>(params, 4));
            if (block == 0 || uint64_t{gx} * (bx / 32) * block < size) return CUDA_ERROR_INVALID_VALUE;
            ++block_hash_launches;
            const char* forced = std::getenv("FAKE_CUDA_BLOCK_HASH");
            const bool constant = forced != nullptr;
            const unsigned long long value = constant ? fake::env_u64("FAKE_CUDA_BLOCK_HASH", 0) : 0;
            enqueue(s, [=] {
                for (uint64_t first = 0, i = 0; first < size; first += block, ++i)
                    hashes[i] = constant ? value : grey::common::xxh3_64(data + first, std::min<uint64_t>(block, size - first), seed);
            });
            return CUDA_SUCCESS;
        }
        default: return CUDA_ERROR_INVALID_HANDLE;
    }
}

CUresult fake_cuGetErrorName(CUresult r, const char** name) {
    switch (r) {
        case CUDA_SUCCESS: *name = "CUDA_SUCCESS"; break;
        case CUDA_ERROR_INVALID_VALUE: *name = "CUDA_ERROR_INVALID_VALUE"; break;
        case CUDA_ERROR_OUT_OF_MEMORY: *name = "CUDA_ERROR_OUT_OF_MEMORY"; break;
        case CUDA_ERROR_NO_DEVICE: *name = "CUDA_ERROR_NO_DEVICE"; break;
        case CUDA_ERROR_NOT_FOUND: *name = "CUDA_ERROR_NOT_FOUND"; break;
        case CUDA_ERROR_UNKNOWN: *name = "CUDA_ERROR_UNKNOWN"; break;
        default: *name = nullptr; return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult fake_cuGetErrorString(CUresult r, const char** text) {
    switch (r) {
        case CUDA_ERROR_OUT_OF_MEMORY: *text = "out of memory"; break;
        case CUDA_ERROR_NO_DEVICE: *text = "no CUDA-capable device is detected"; break;
        case CUDA_ERROR_UNKNOWN: *text = "unknown error"; break;
        default: *text = nullptr; return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

struct Entry {
    const char* name;
    void* function;
};

#define FAKE_ENTRY(name) Entry{#name, reinterpret_cast<void*>(&fake_##name)}
const Entry kEntries[] = {
    FAKE_ENTRY(cuInit), FAKE_ENTRY(cuDriverGetVersion), FAKE_ENTRY(cuDeviceGetCount), FAKE_ENTRY(cuDeviceGet),
    FAKE_ENTRY(cuDeviceGetName), FAKE_ENTRY(cuDeviceGetAttribute), FAKE_ENTRY(cuDeviceTotalMem), FAKE_ENTRY(cuDeviceGetUuid),
    FAKE_ENTRY(cuDeviceGetPCIBusId), FAKE_ENTRY(cuDevicePrimaryCtxRetain), FAKE_ENTRY(cuDevicePrimaryCtxRelease),
    FAKE_ENTRY(cuCtxPushCurrent), FAKE_ENTRY(cuCtxPopCurrent), FAKE_ENTRY(cuCtxGetCurrent), FAKE_ENTRY(cuMemGetInfo), FAKE_ENTRY(cuMemGetAllocationGranularity),
    FAKE_ENTRY(cuMemAddressReserve), FAKE_ENTRY(cuMemAddressFree), FAKE_ENTRY(cuMemCreate), FAKE_ENTRY(cuMemRelease),
    FAKE_ENTRY(cuMemMap), FAKE_ENTRY(cuMemUnmap), FAKE_ENTRY(cuMemSetAccess), FAKE_ENTRY(cuStreamCreate), FAKE_ENTRY(cuStreamDestroy),
    FAKE_ENTRY(cuStreamSynchronize), FAKE_ENTRY(cuStreamQuery), FAKE_ENTRY(cuStreamWaitEvent), FAKE_ENTRY(cuStreamGetCtx), FAKE_ENTRY(cuEventQuery), FAKE_ENTRY(cuEventCreate), FAKE_ENTRY(cuEventDestroy), FAKE_ENTRY(cuEventRecord),
    FAKE_ENTRY(cuEventSynchronize), FAKE_ENTRY(cuEventElapsedTime), FAKE_ENTRY(cuMemcpyHtoDAsync), FAKE_ENTRY(cuMemcpyDtoHAsync),
    FAKE_ENTRY(cuMemcpyDtoDAsync), FAKE_ENTRY(cuMemAllocHost), FAKE_ENTRY(cuMemFreeHost), FAKE_ENTRY(cuMemHostGetDevicePointer), FAKE_ENTRY(cuModuleLoadData), FAKE_ENTRY(cuModuleUnload), FAKE_ENTRY(cuModuleGetFunction),
    FAKE_ENTRY(cuLaunchKernel), FAKE_ENTRY(cuLaunchHostFunc), FAKE_ENTRY(cuFuncSetAttribute), FAKE_ENTRY(cuOccupancyMaxActiveBlocksPerMultiprocessor), FAKE_ENTRY(cuGetErrorName), FAKE_ENTRY(cuGetErrorString),
};
#undef FAKE_ENTRY

}  // namespace

extern "C" {

#if !defined(FAKE_CUDA_NO_GETPROCADDRESS)
__attribute__((visibility("default"))) CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int, cuuint64_t,
                                                                   CUdriverProcAddressQueryResult* status) {
    *pfn = nullptr;
    const char* hidden = std::getenv("FAKE_CUDA_HIDE");
    for (const Entry& e : kEntries)
        if (std::strcmp(e.name, symbol) == 0 && (hidden == nullptr || std::strcmp(hidden, symbol) != 0)) {
            *pfn = e.function;
            if (status != nullptr) *status = CU_GET_PROC_ADDRESS_SUCCESS;
            return CUDA_SUCCESS;
        }
    if (status != nullptr) *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return CUDA_ERROR_NOT_FOUND;
}
#else
// An old driver exports its functions directly; one is enough to make it a plausible libcuda.
__attribute__((visibility("default"))) CUresult cuInit(unsigned int flags) { return fake_cuInit(flags); }
#endif

// Test hooks: what the fake device holds, so tests can prove the backend gives everything back.
__attribute__((visibility("default"))) unsigned long long fake_cuda_physical_bytes() {
    std::lock_guard lock(driver().mutex);
    return driver().physical_bytes;
}
__attribute__((visibility("default"))) int fake_cuda_mapping_count() {
    std::lock_guard lock(driver().mutex);
    return static_cast<int>(driver().mappings.size());
}
// Streams made with cuStreamCreate and not destroyed.
__attribute__((visibility("default"))) int fake_cuda_live_streams() {
    std::lock_guard lock(streams().mutex);
    return static_cast<int>(streams().queues.size());
}
// Bytes copied from device to host memory (cuMemcpyDtoHAsync) since the process started.
__attribute__((visibility("default"))) unsigned long long fake_cuda_read_back_bytes() { return read_back_bytes.load(); }
// cuCtxPushCurrent calls since the process started, and the calling thread's current context, set and
// read as a framework sets it (the top of the thread's stack; nullptr pops it).
__attribute__((visibility("default"))) unsigned long long fake_cuda_context_pushes() { return context_pushes.load(); }
__attribute__((visibility("default"))) void fake_cuda_set_current(CUcontext ctx) {
    if (ctx == nullptr) {
        if (!context_stack.empty()) context_stack.pop_back();
    } else {
        context_stack.push_back(ctx);
    }
}
__attribute__((visibility("default"))) CUcontext fake_cuda_current() { return context_stack.empty() ? nullptr : context_stack.back(); }
// Events made and not destroyed, and cuEventRecord calls, since the process started.
__attribute__((visibility("default"))) long long fake_cuda_live_events() { return live_events.load(); }
__attribute__((visibility("default"))) unsigned long long fake_cuda_event_records() { return event_records.load(); }
// Of the live events, those made without timing.
__attribute__((visibility("default"))) long long fake_cuda_live_untimed_events() {
    std::lock_guard lock(streams().mutex);
    return static_cast<long long>(streams().untimed.size());
}
// Launches of grey_block_hash since the process started.
__attribute__((visibility("default"))) unsigned long long fake_cuda_block_hash_launches() { return block_hash_launches.load(); }
// Device-to-device copies, grey_codec_decode launches and cuStreamSynchronize calls since the process started.
__attribute__((visibility("default"))) unsigned long long fake_cuda_device_copies() { return device_copies.load(); }
__attribute__((visibility("default"))) unsigned long long fake_cuda_codec_decode_launches() { return codec_decode_launches.load(); }
__attribute__((visibility("default"))) unsigned long long fake_cuda_stream_synchronizes() { return stream_synchronizes.load(); }
// cuMemAllocHost allocations, host-to-device copies from them queued and run, and cuEventQuery calls,
// since the process started.
__attribute__((visibility("default"))) unsigned long long fake_cuda_pinned_allocations() { return pinned_allocations.load(); }
__attribute__((visibility("default"))) unsigned long long fake_cuda_pinned_copies_queued() { return pinned_copies_queued.load(); }
__attribute__((visibility("default"))) unsigned long long fake_cuda_pinned_copies_run() { return pinned_copies_run.load(); }
__attribute__((visibility("default"))) unsigned long long fake_cuda_event_queries() { return event_queries.load(); }
// cuLaunchHostFunc calls, and the host functions they queued that have run, since the process started.
__attribute__((visibility("default"))) unsigned long long fake_cuda_host_tasks_queued() { return host_tasks_queued.load(); }
__attribute__((visibility("default"))) unsigned long long fake_cuda_host_tasks_run() { return host_tasks_run.load(); }
// cuStreamSynchronize and cuEventSynchronize calls since the process started: every wait of the host.
__attribute__((visibility("default"))) unsigned long long fake_cuda_host_waits() { return host_waits.load(); }
// Host-to-device copies queued since the process started, on any stream and on `stream`.
__attribute__((visibility("default"))) unsigned long long fake_cuda_host_to_device_copies() {
    std::lock_guard lock(copies_mutex);
    unsigned long long count = 0;
    for (const auto& [stream, copies] : host_to_device_copies) count += copies;
    return count;
}
__attribute__((visibility("default"))) unsigned long long fake_cuda_host_to_device_copies_on(CUstream stream) {
    std::lock_guard lock(copies_mutex);
    const auto found = host_to_device_copies.find(stream);
    return found != host_to_device_copies.end() ? found->second : 0;
}
// Bytes of page-locked memory (cuMemAllocHost) held now.
__attribute__((visibility("default"))) unsigned long long fake_cuda_pinned_bytes() {
    std::lock_guard lock(pinned_mutex);
    unsigned long long bytes = 0;
    for (const auto& [start, size] : pinned_ranges) bytes += size;
    return bytes;
}
// Copies and kernels queued on streams and not yet run: work an enqueue-only call left for later.
__attribute__((visibility("default"))) unsigned long long fake_cuda_queued_work() {
    std::lock_guard lock(streams().mutex);
    unsigned long long count = 0;
    for (const auto& [stream, queue] : streams().queues) count += queue.size();
    return count;
}

}  // extern "C"
