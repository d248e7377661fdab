// A fake libze_loader.so.1: one driver with FAKE_ZE_DEVICES GPUs (default 1) shaped like an Intel Data
// Center GPU Max 1550, device memory from the host heap, synchronous copies and fills, and Sysman with
// fixed readings. Like the real loader, Sysman answers only if ZES_ENABLE_SYSMAN=1 was in the
// environment when zeInit ran.
//   FAKE_ZE_FAIL     "name:code[,...]" (fake_common.hpp): that entry point returns ze_result_t `code`
//   FAKE_ZE_DEVICES  the number of GPUs
//   FAKE_ZE_MEMORY   device memory in bytes (default 1 GiB); zeMemAllocDevice beyond it fails
// Variants: FAKE_ZE_NO_SYSMAN (exports no zes* entry point), FAKE_ZE_NO_ALLOC (no zeMemAllocDevice).
// Modules must be SPIR-V (format and magic number are checked), and zeKernelCreate finds a kernel only
// in a module whose SPIR-V names it (an OpEntryPoint's name is a NUL-terminated literal in the words).
// Launches are recorded, and emulated in C++ by name, so these tests prove the launch plumbing, not the
// kernels (tests/level0/test_*_on_opencl.cpp run the real SPIR-V through OpenCL on the CPU):
// grey_checksum_partial, grey_fill and grey_copy compute their results; grey_quant_stats reports every
// piece as all zeros (FAKE_ZE_NON_FINITE=<index> makes the first piece report that element as a
// NaN); grey_quant_search and grey_quant_refit report every sum 0; grey_quant_encode and
// grey_quant_decode only check their arguments and write nothing; the KV kernels (grey_kvk_store,
// grey_kvk_params, grey_kvk_codes, grey_kvk_attend) compute their results by common/kv_layout.hpp's
// rule (attention in float64, as the host backend), so that a cache on the fake device can be compared
// with one on the host device, and refuse to run unless the backend declared their indirect access to
// device memory and built their module with -cl-fp32-correctly-rounded-divide-sqrt.
// FAKE_ZE_BUILD_LOG is the text of a module's build log.
// The device clock: a tick counter that zeInit sets to FAKE_ZE_CLOCK_START (default 0) and every copy
// or fill advances by FAKE_ZE_TICKS_PER_COMMAND (default 1000) when it runs, so timestamps tell when the
// queue ran, not when the host enqueued. zeCommandListAppendWriteGlobalTimestamp writes it masked to
// FAKE_ZE_TIMESTAMP_BITS bits (default 36, narrower than 64 so every test goes through the mask), and
// zeDeviceGetProperties states that width and a clock of FAKE_ZE_TIMER_HZ (default 19200000) as the
// specification does: ticks per second for ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES_1_2, whole nanoseconds
// per tick (rounded) for the 1.0 type. FAKE_ZE_API_MINOR is the minor API version the driver reports (3).
// Lifetime rules the specification sets and the fake enforces, as violations a test reads (it would be
// undefined behaviour on a real driver, often silent): destroying or host-resetting an event that a
// queued, not yet executed command still names; destroying a pool with events left; freeing memory a
// queued timestamp write still targets.
// Test hooks: fake_ze_live_objects() counts contexts, command lists, modules, kernels, queues, event
// pools, events and allocations (device and host) not yet freed; fake_ze_launches() gives the launches
// so far, "name(argument sizes)xgroups;..." each; fake_ze_violations() the lifetime violations so far,
// one line each ("" when none).
#include "fake_common.hpp"
#include "fake_streams.hpp"

#include <level_zero/ze_api.h>
#include <level_zero/zes_api.h>

#include "kernels/opencl/kv_args.h"
#include "kernels/opencl/quant_args.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct _ze_driver_handle_t {
    int id;
};
struct _ze_device_handle_t {
    int id;
};
struct _ze_context_handle_t {
    int id;
};
// An immediate list runs each append at once (the fake emulates only synchronous immediate lists); a
// regular one records them, for zeCommandQueueExecuteCommandLists.
struct _ze_command_list_handle_t {
    int id;
    bool immediate = true;
    bool closed = false;
    struct Item {
        std::function<ze_result_t()> work;
        ze_event_handle_t signal = nullptr;  // signalled once `work` has run
        ze_event_handle_t wait = nullptr;    // waited on before `work` runs
        void* writes = nullptr;              // the host memory a timestamp write targets
    };
    std::vector<Item> items;
};
// A queue is a deferred stream (tests/backends/fake_streams.hpp): its lists' work runs when something
// waits; the first failure of that work is returned by the next zeCommandQueueSynchronize.
struct _ze_command_queue_handle_t {
    void* stream;
    ze_result_t failed = ZE_RESULT_SUCCESS;
};
struct _ze_event_pool_handle_t {
    uint32_t count;
    int events = 0;  // created from it and not destroyed
};
struct _ze_event_handle_t {
    ze_event_pool_handle_t pool;
    std::atomic<bool> signalled{false};  // set by whichever thread runs a queue
};
struct _ze_module_handle_t {
    int id;
    std::string spirv;
    std::string build_flags;
};
struct _ze_module_build_log_handle_t {
    std::string text;
};
struct _ze_kernel_handle_t {
    std::string name;
    uint32_t group_size = 0;
    std::vector<std::string> args;  // each argument's bytes, by index
    std::string build_flags;        // its module's
    ze_kernel_indirect_access_flags_t indirect = 0;
};
struct _zes_mem_handle_t {
    zes_mem_loc_t location;
};
struct _zes_freq_handle_t {
    zes_freq_domain_t type;
    bool on_subdevice;
    double max;
    double actual;
};
struct _zes_pwr_handle_t {
    int id;
};
struct _zes_temp_handle_t {
    zes_temp_sensors_t type;
    double max;
    double now;
};

namespace {

// How long a queue waits for an event no executed command signals before the fake calls it a hang.
constexpr int kHostSignalWaitMs = 10000;

_ze_driver_handle_t the_driver{0};
_ze_device_handle_t devices[4] = {{0}, {1}, {2}, {3}};
[[maybe_unused]] _zes_mem_handle_t memory_modules[] = {{ZES_MEM_LOC_SYSTEM}, {ZES_MEM_LOC_DEVICE}};
// (Unused by the FAKE_ZE_NO_SYSMAN variant.) A tile's domain first: the backend must prefer the one that covers the whole device.
[[maybe_unused]] _zes_freq_handle_t frequency_domains[] = {{ZES_FREQ_DOMAIN_GPU, true, 1500, 1400}, {ZES_FREQ_DOMAIN_GPU, false, 1600, 1550},
                                          {ZES_FREQ_DOMAIN_MEMORY, false, 3200, 3200}};
[[maybe_unused]] _zes_pwr_handle_t power_domain{0};
[[maybe_unused]] _zes_temp_handle_t sensors[] = {{ZES_TEMP_SENSORS_GLOBAL, 105, 52}, {ZES_TEMP_SENSORS_GPU, 100, 45}, {ZES_TEMP_SENSORS_MEMORY, 95, 50}};

constexpr uint64_t kBaselineUsed = 512ull << 20;

struct State {
    std::mutex mutex;
    bool initialised = false;
    bool sysman = false;
    std::map<void*, uint64_t> allocations;
    uint64_t allocated = 0;
    int contexts = 0;
    int command_lists = 0;
    int modules = 0;
    int kernels = 0;
    int build_logs = 0;
    int queues = 0;
    int event_pools = 0;
    int events = 0;
    uint64_t energy_reads = 0;
    int32_t sustained_mw = 550000;
    std::string launches;
    std::map<void*, uint64_t> host_allocations;
    uint64_t clock = 0;                         // the device clock, in ticks
    std::map<ze_event_handle_t, int> pending;   // queued commands naming each event, not yet executed
    std::map<void*, int> pending_writes;        // queued timestamp writes to each address
    std::vector<std::unique_ptr<_ze_event_handle_t>> leaked;  // destroyed while in use: kept so queued work stays defined
    std::string violations;
};

State& state() {
    static State s;
    return s;
}

void violation(const std::string& what) {  // with state().mutex held
    state().violations += what + "\n";
    std::fprintf(stderr, "fake Level Zero loader: %s\n", what.c_str());
}

void advance_clock() {
    std::lock_guard lock(state().mutex);
    state().clock += fake::env_u64("FAKE_ZE_TICKS_PER_COMMAND", 1000);
}

uint32_t timestamp_bits() { return static_cast<uint32_t>(fake::env_u64("FAKE_ZE_TIMESTAMP_BITS", 36)); }

fake::DeferredStreams& streams() {
    static fake::DeferredStreams s;
    return s;
}

// An append: run now on an immediate list, recorded on a regular one (which must not be closed yet).
ze_result_t run_or_record(ze_command_list_handle_t list, std::function<ze_result_t()> work) {
    if (list->immediate) return work();
    if (list->closed) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    list->items.push_back({std::move(work), nullptr, nullptr, nullptr});
    return ZE_RESULT_SUCCESS;
}

std::optional<ze_result_t> failure(const char* name) {
    if (auto code = fake::forced_failure("FAKE_ZE_FAIL", name)) return static_cast<ze_result_t>(*code);
    return std::nullopt;
}

#define FAKE_ENTER(name)                                                           \
    if (!state().initialised) return ZE_RESULT_ERROR_UNINITIALIZED;               \
    if (auto forced = failure(name)) return *forced;

#define FAKE_SYSMAN(name)                                                          \
    FAKE_ENTER(name)                                                               \
    if (!state().sysman) return ZE_RESULT_ERROR_UNINITIALIZED;

uint32_t device_count() { return static_cast<uint32_t>(fake::env_u64("FAKE_ZE_DEVICES", 1) > 4 ? 4 : fake::env_u64("FAKE_ZE_DEVICES", 1)); }

// The usual two-call enumeration: count first, then up to *count handles.
template <typename Handle, size_t N>
ze_result_t enumerate(uint32_t* count, Handle** out, Handle (&all)[N]) {
    if (count == nullptr) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (out == nullptr || *count == 0) {
        *count = N;
        return ZE_RESULT_SUCCESS;
    }
    const uint32_t n = *count < N ? *count : static_cast<uint32_t>(N);
    for (uint32_t i = 0; i < n; ++i) out[i] = &all[i];
    *count = n;
    return ZE_RESULT_SUCCESS;
}

void fill_core_properties(ze_device_properties_t* p, int id) {
    p->type = ZE_DEVICE_TYPE_GPU;
    p->vendorId = 0x8086;
    p->deviceId = 0x0bd5;
    p->flags = 0;
    p->coreClockRate = 1600;
    p->maxMemAllocSize = 64ull << 30;
    p->numThreadsPerEU = 8;
    p->physicalEUSimdWidth = 16;
    p->numEUsPerSubslice = 8;
    p->numSubslicesPerSlice = 16;
    p->numSlices = 8;
    for (int i = 0; i < ZE_MAX_DEVICE_UUID_SIZE; ++i) p->uuid.id[i] = static_cast<uint8_t>(i * 0x11 + id);
    std::snprintf(p->name, sizeof p->name, "Fake Intel Data Center GPU Max 1550");
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int fake_ze_live_objects() {
    std::lock_guard lock(state().mutex);
    return state().contexts + state().command_lists + state().modules + state().kernels + state().build_logs + state().queues +
           state().event_pools + state().events + static_cast<int>(state().allocations.size() + state().host_allocations.size());
}

// Both return the calling thread's own copy, taken under the lock (valid until its next call): a stream's
// thread may be appending to the record while a test reads it.
extern "C" __attribute__((visibility("default"))) const char* fake_ze_violations() {
    thread_local std::string copy;
    std::lock_guard lock(state().mutex);
    copy = state().violations;
    return copy.c_str();
}

extern "C" __attribute__((visibility("default"))) const char* fake_ze_launches() {
    thread_local std::string copy;
    std::lock_guard lock(state().mutex);
    copy = state().launches;
    return copy.c_str();
}

ze_result_t zeInit(ze_init_flags_t) {
    if (auto forced = failure("zeInit")) return *forced;
    const char* sysman = std::getenv("ZES_ENABLE_SYSMAN");
    state().sysman = sysman != nullptr && std::strcmp(sysman, "1") == 0;
    state().initialised = true;
    std::lock_guard lock(state().mutex);
    state().clock = fake::env_u64("FAKE_ZE_CLOCK_START", 0);
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeDriverGet(uint32_t* count, ze_driver_handle_t* drivers) {
    FAKE_ENTER("zeDriverGet")
    if (drivers != nullptr && *count > 0) drivers[0] = &the_driver;
    *count = 1;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeDriverGetApiVersion(ze_driver_handle_t, ze_api_version_t* version) {
    FAKE_ENTER("zeDriverGetApiVersion")
    *version = static_cast<ze_api_version_t>(ZE_MAKE_VERSION(1, fake::env_u64("FAKE_ZE_API_MINOR", 3)));
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeDriverGetProperties(ze_driver_handle_t, ze_driver_properties_t* p) {
    FAKE_ENTER("zeDriverGetProperties")
    p->driverVersion = 16900000;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeDeviceGet(ze_driver_handle_t, uint32_t* count, ze_device_handle_t* out) {
    FAKE_ENTER("zeDeviceGet")
    const uint32_t n = device_count();
    if (out == nullptr || *count == 0) {
        *count = n;
        return ZE_RESULT_SUCCESS;
    }
    *count = *count < n ? *count : n;
    for (uint32_t i = 0; i < *count; ++i) out[i] = &devices[i];
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeDeviceGetProperties(ze_device_handle_t device, ze_device_properties_t* p) {
    FAKE_ENTER("zeDeviceGetProperties")
    fill_core_properties(p, device->id);
    const uint64_t hz = fake::env_u64("FAKE_ZE_TIMER_HZ", 19200000);
    p->timerResolution = p->stype == ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES_1_2 ? hz : hz == 0 ? 0 : (1000000000ull + hz / 2) / hz;
    p->timestampValidBits = timestamp_bits();
    p->kernelTimestampValidBits = 32;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeDeviceGetMemoryProperties(ze_device_handle_t, uint32_t* count, ze_device_memory_properties_t* p) {
    FAKE_ENTER("zeDeviceGetMemoryProperties")
    if (p != nullptr && *count > 0) {
        p->maxClockRate = 3200;
        p->maxBusWidth = 8192;
        p->totalSize = 128ull << 30;
        std::snprintf(p->name, sizeof p->name, "HBM");
    }
    *count = 1;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeDeviceGetCacheProperties(ze_device_handle_t, uint32_t* count, ze_device_cache_properties_t* p) {
    FAKE_ENTER("zeDeviceGetCacheProperties")
    if (p != nullptr && *count > 0) p->cacheSize = 408ull << 20;
    *count = 1;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeContextCreate(ze_driver_handle_t, const ze_context_desc_t*, ze_context_handle_t* out) {
    FAKE_ENTER("zeContextCreate")
    std::lock_guard lock(state().mutex);
    ++state().contexts;
    *out = new _ze_context_handle_t{state().contexts};
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeContextDestroy(ze_context_handle_t context) {
    std::lock_guard lock(state().mutex);
    --state().contexts;
    delete context;
    return ZE_RESULT_SUCCESS;
}

#ifndef FAKE_ZE_NO_ALLOC
ze_result_t zeMemAllocDevice(ze_context_handle_t, const ze_device_mem_alloc_desc_t*, size_t size, size_t alignment, ze_device_handle_t,
                             void** out) {
    FAKE_ENTER("zeMemAllocDevice")
    std::lock_guard lock(state().mutex);
    if (state().allocated + size > fake::env_u64("FAKE_ZE_MEMORY", 1ull << 30)) return ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY;
    void* memory = std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
    if (memory == nullptr) return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    state().allocations.emplace(memory, size);
    state().allocated += size;
    *out = memory;
    return ZE_RESULT_SUCCESS;
}
#endif

ze_result_t zeMemAllocHost(ze_context_handle_t, const ze_host_mem_alloc_desc_t* desc, size_t size, size_t alignment, void** out) {
    FAKE_ENTER("zeMemAllocHost")
    if (desc == nullptr || desc->stype != ZE_STRUCTURE_TYPE_HOST_MEM_ALLOC_DESC) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) return ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT;
    void* memory = std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
    if (memory == nullptr) return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    std::lock_guard lock(state().mutex);
    state().host_allocations.emplace(memory, size);
    *out = memory;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeMemFree(ze_context_handle_t, void* memory) {
    std::lock_guard lock(state().mutex);
    if (auto host = state().host_allocations.find(memory); host != state().host_allocations.end()) {
        if (state().pending_writes[memory] > 0) {
            violation("zeMemFree of host memory a queued timestamp write still targets");
            return ZE_RESULT_SUCCESS;  // kept, so the queued write stays defined
        }
        state().host_allocations.erase(host);
        std::free(memory);
        return ZE_RESULT_SUCCESS;
    }
    auto it = state().allocations.find(memory);
    if (it == state().allocations.end()) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    state().allocated -= it->second;
    state().allocations.erase(it);
    std::free(memory);
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeCommandListCreateImmediate(ze_context_handle_t, ze_device_handle_t, const ze_command_queue_desc_t* desc,
                                         ze_command_list_handle_t* out) {
    FAKE_ENTER("zeCommandListCreateImmediate")
    if (desc->mode != ZE_COMMAND_QUEUE_MODE_SYNCHRONOUS) return ZE_RESULT_ERROR_UNSUPPORTED_FEATURE;  // all this fake emulates
    std::lock_guard lock(state().mutex);
    ++state().command_lists;
    *out = new _ze_command_list_handle_t{state().command_lists};
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeCommandListDestroy(ze_command_list_handle_t list) {
    std::lock_guard lock(state().mutex);
    --state().command_lists;
    delete list;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeCommandListAppendMemoryCopy(ze_command_list_handle_t list, void* destination, const void* source, size_t size,
                                          ze_event_handle_t, uint32_t, ze_event_handle_t*) {
    FAKE_ENTER("zeCommandListAppendMemoryCopy")
    return run_or_record(list, [=] {
        std::memmove(destination, source, size);
        advance_clock();
        return ZE_RESULT_SUCCESS;
    });
}

ze_result_t zeCommandListAppendMemoryFill(ze_command_list_handle_t list, void* destination, const void* pattern, size_t pattern_size,
                                          size_t size, ze_event_handle_t, uint32_t, ze_event_handle_t*) {
    FAKE_ENTER("zeCommandListAppendMemoryFill")
    if (pattern_size != 1) return ZE_RESULT_ERROR_UNSUPPORTED_SIZE;
    const int value = *static_cast<const unsigned char*>(pattern);
    return run_or_record(list, [=] {
        std::memset(destination, value, size);
        advance_clock();
        return ZE_RESULT_SUCCESS;
    });
}

ze_result_t zeModuleCreate(ze_context_handle_t, ze_device_handle_t, const ze_module_desc_t* desc, ze_module_handle_t* out,
                           ze_module_build_log_handle_t* log) {
    if (log != nullptr) {
        const char* text = std::getenv("FAKE_ZE_BUILD_LOG");
        std::lock_guard lock(state().mutex);
        ++state().build_logs;
        *log = new _ze_module_build_log_handle_t{text != nullptr ? text : ""};
    }
    FAKE_ENTER("zeModuleCreate")
    uint32_t magic = 0;
    if (desc->format != ZE_MODULE_FORMAT_IL_SPIRV || desc->inputSize < 20 || desc->inputSize % 4 != 0) return ZE_RESULT_ERROR_INVALID_NATIVE_BINARY;
    std::memcpy(&magic, desc->pInputModule, sizeof magic);
    if (magic != 0x07230203u) return ZE_RESULT_ERROR_INVALID_NATIVE_BINARY;
    std::lock_guard lock(state().mutex);
    ++state().modules;
    *out = new _ze_module_handle_t{state().modules, std::string(static_cast<const char*>(static_cast<const void*>(desc->pInputModule)), desc->inputSize),
                                   desc->pBuildFlags != nullptr ? desc->pBuildFlags : ""};
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeModuleDestroy(ze_module_handle_t module) {
    std::lock_guard lock(state().mutex);
    --state().modules;
    delete module;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeModuleBuildLogGetString(ze_module_build_log_handle_t log, size_t* size, char* text) {
    if (text == nullptr) {
        *size = log->text.size() + 1;
        return ZE_RESULT_SUCCESS;
    }
    std::snprintf(text, *size, "%s", log->text.c_str());
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeModuleBuildLogDestroy(ze_module_build_log_handle_t log) {
    std::lock_guard lock(state().mutex);
    --state().build_logs;
    delete log;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeKernelCreate(ze_module_handle_t module, const ze_kernel_desc_t* desc, ze_kernel_handle_t* out) {
    FAKE_ENTER("zeKernelCreate")
    const std::string name = desc->pKernelName;
    if (module->spirv.find(name + '\0') == std::string::npos) return ZE_RESULT_ERROR_INVALID_KERNEL_NAME;
    std::lock_guard lock(state().mutex);
    ++state().kernels;
    *out = new _ze_kernel_handle_t{name, 0, {}, module->build_flags, 0};
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeKernelDestroy(ze_kernel_handle_t kernel) {
    std::lock_guard lock(state().mutex);
    --state().kernels;
    delete kernel;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeKernelSetGroupSize(ze_kernel_handle_t kernel, uint32_t x, uint32_t, uint32_t) {
    FAKE_ENTER("zeKernelSetGroupSize")
    kernel->group_size = x;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeKernelSetIndirectAccess(ze_kernel_handle_t kernel, ze_kernel_indirect_access_flags_t flags) {
    FAKE_ENTER("zeKernelSetIndirectAccess")
    kernel->indirect = flags;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeKernelSetArgumentValue(ze_kernel_handle_t kernel, uint32_t index, size_t size, const void* value) {
    FAKE_ENTER("zeKernelSetArgumentValue")
    if (index >= 8 || size == 0 || size > 256 || value == nullptr) return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
    if (kernel->args.size() <= index) kernel->args.resize(index + 1);
    kernel->args[index].assign(static_cast<const char*>(value), size);
    return ZE_RESULT_SUCCESS;
}

namespace {

// The launched kernel's arguments, each of the size its OpenCL signature gives (checked).
struct Arguments {
    const std::vector<std::string>& args;
    bool sizes(std::initializer_list<size_t> expected) const {
        if (args.size() != expected.size()) return false;
        size_t i = 0;
        for (size_t size : expected)
            if (args[i++].size() != size) return false;
        return true;
    }
    uint64_t u64(size_t i) const {
        uint64_t v = 0;
        std::memcpy(&v, args[i].data(), std::min<size_t>(8, args[i].size()));
        return v;
    }
    template <typename T>
    T* pointer(size_t i) const {
        return reinterpret_cast<T*>(u64(i));
    }
};

// grey_checksum_partial(source, n, step, base, partial), work item by work item.
ze_result_t emulate_checksum(const Arguments& a, uint64_t items) {
    if (!a.sizes({8, 8, 8, 8, 8})) return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
    const auto* source = a.pointer<const unsigned char>(0);
    const uint64_t n = a.u64(1), step = a.u64(2), base = a.u64(3);
    auto* partial = a.pointer<uint64_t>(4);
    for (uint64_t g = 0; g < items; ++g) {
        uint64_t sum = 0;
        for (uint64_t i = g; i < n; i += items) sum += (uint64_t{source[i]} + 1) * (i * step + base);
        partial[g] = sum;
    }
    return ZE_RESULT_SUCCESS;
}

// grey_quant_stats(plain, out, args): every piece as if its elements were all zero, or the first
// reporting FAKE_ZE_NON_FINITE as a NaN.
ze_result_t emulate_quant_stats(const Arguments& a) {
    if (!a.sizes({8, 8, sizeof(grey_ql0_args)})) return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
    grey_ql0_args args{};
    std::memcpy(&args, a.args[2].data(), sizeof args);
    const uint64_t runs = grey_quant_layout_runs(&args.layout);
    auto* out = a.pointer<grey_ql0_stats>(1);
    for (uint64_t w = 0; w < runs * args.pieces_per_run; ++w) out[w] = {0.0f, 0.0f, 0.0f, 0.0f, ~uint64_t{0}, 0, 0};
    if (const char* bad = std::getenv("FAKE_ZE_NON_FINITE")) {
        out[0].first_bad = std::strtoull(bad, nullptr, 10);
        out[0].first_bad_nan = 1;
    }
    return ZE_RESULT_SUCCESS;
}

// ----- the KV kernels of grey_kv.clcpp, by common/kv_layout.hpp's rule

namespace gc = grey::common;

template <typename T>
T* at(uint64_t address) {
    return reinterpret_cast<T*>(address);
}

// The launch's one argument, the block `Args`.
template <typename Args>
bool kv_arguments(const Arguments& a, Args& out) {
    if (!a.sizes({sizeof(Args)})) return false;
    std::memcpy(&out, a.args[0].data(), sizeof out);
    return true;
}

ze_result_t emulate_kv_store(const Arguments& a) {
    grey_kvl0_store_args k{};
    if (!kv_arguments(a, k)) return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
    const gc::KvLayout& l = k.layout;
    if (l.hadamard_k != 0 && k.rotated == 0) return ZE_RESULT_ERROR_INVALID_ARGUMENT;  // the kernel rotates in that scratch
    const uint64_t rows = uint64_t{k.layer_count} * k.tokens * l.kv_heads, half = gc::kv_block_elements(l);
    // Element i of the K or V input, of the argument block's dtype.
    const auto input = [&](uint64_t address, uint64_t i) {
        if (k.dtype == GREY_KVL0_F32) return at<const float>(address)[i];
        const uint16_t bits = at<const uint16_t>(address)[i];
        return k.dtype == GREY_KVL0_BF16 ? gc::bf16_to_f32(bits) : gc::f16_to_f32(bits);
    };
    std::vector<float> key(l.head_dim), value(l.head_dim);
    for (uint64_t r = 0; r < rows; ++r) {
        const auto head = static_cast<uint32_t>(r % l.kv_heads);
        const auto token = static_cast<uint32_t>(r / l.kv_heads % k.tokens);
        const auto layer = static_cast<uint32_t>(r / l.kv_heads / k.tokens) + k.layer_first;
        for (uint32_t c = 0; c < l.head_dim; ++c) {
            key[c] = input(k.keys, r * l.head_dim + c);
            value[c] = input(k.values, r * l.head_dim + c);
        }
        if (k.checks != 0) {  // the row's first non-finite K and V channels, as the kernel notes them
            const auto first = [](const std::vector<float>& x) {
                const auto bad = std::find_if(x.begin(), x.end(), [](float v) { return !std::isfinite(v); });
                return bad == x.end() ? UINT32_MAX : static_cast<uint32_t>(bad - x.begin());
            };
            at<uint32_t>(k.checks)[2 * r] = first(key);
            at<uint32_t>(k.checks)[2 * r + 1] = first(value);
        }
        if (l.hadamard_k != 0) gc::kv_hadamard_rotate(key.data(), l.head_dim);
        auto* dense = at<uint16_t>(at<const uint64_t>(k.blocks)[token]);
        for (uint32_t c = 0; c < l.head_dim; ++c) {
            const uint64_t to = gc::kv_dense_index(l, layer, head, at<const uint32_t>(k.slots)[token], c);
            dense[to] = gc::kv_to_window(l, key[c]);
            dense[half + to] = gc::kv_to_window(l, value[c]);
        }
    }
    return ZE_RESULT_SUCCESS;
}

ze_result_t emulate_kv_compress(const Arguments& a, bool codes) {
    grey_kvl0_compress_args k{};
    if (!kv_arguments(a, k)) return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
    const gc::KvLayout& l = k.layout;
    for (uint32_t b = 0; b < k.count; ++b) {
        const auto* dense = at<const uint8_t>(at<const uint64_t>(k.sources)[b]);
        auto* out = at<uint8_t>(at<const uint64_t>(k.destinations)[b]);
        auto* params = reinterpret_cast<gc::KvGroupParams*>(out);
        if (!codes) {
            std::memset(out, 0, gc::kv_v_codes_offset(l));  // the padding too, as the kernel zeroes it
            for (uint64_t i = 0; i < gc::kv_k_param_count(l) + gc::kv_v_param_count(l); ++i) params[i] = gc::kv_group_params_at(l, dense, i);
            continue;
        }
        for (int part = 0; part < 2; ++part)
            for (uint64_t i = 0; i < gc::kv_half_code_bytes(l); ++i)
                out[(part == 0 ? gc::kv_k_codes_offset(l) : gc::kv_v_codes_offset(l)) + i] = gc::kv_code_byte_at(l, dense, params, part, i);
    }
    return ZE_RESULT_SUCCESS;
}

ze_result_t emulate_kv_attend(const Arguments& a) {
    grey_kvl0_attend_args k{};
    if (!kv_arguments(a, k)) return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
    const gc::KvLayout& l = k.layout;
    if (l.hadamard_k != 0 && k.rotated == 0) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    const uint32_t dim = l.head_dim;
    std::vector<double> q(dim), acc(dim);
    for (uint64_t w = 0; w < uint64_t{k.batch} * k.query_heads; ++w) {
        const grey_kvl0_sequence seq = at<const grey_kvl0_sequence>(k.sequences)[w / k.query_heads];
        const uint32_t head = static_cast<uint32_t>(w % k.query_heads) / k.group;
        const uint64_t* table = at<const uint64_t>(k.blocks) + seq.table_offset;
        for (uint32_t c = 0; c < dim; ++c) q[c] = at<const float>(k.queries)[w * dim + c];
        if (l.hadamard_k != 0) gc::kv_hadamard_rotate(q.data(), dim);
        const auto value = [&](int part, uint64_t p, uint32_t c) {
            const uint64_t entry = table[p / l.tokens_per_block];
            return static_cast<double>(gc::kv_value(l, at<const uint8_t>(entry & ~uint64_t{1}), (entry & 1u) != 0, part, k.layer, head,
                                                    static_cast<uint32_t>(p % l.tokens_per_block), c));
        };
        std::vector<double> scores;
        double top = -INFINITY;
        for (uint64_t p = seq.first; p < seq.last; ++p) {
            double dot = 0;
            for (uint32_t c = 0; c < dim; ++c) dot += q[c] * value(0, p, c);
            scores.push_back(dot * k.scale);
            top = std::max(top, scores.back());
        }
        double total = 0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (uint64_t p = seq.first; p < seq.last; ++p) {
            const double weight = std::exp(scores[p - seq.first] - top);
            total += weight;
            for (uint32_t c = 0; c < dim; ++c) acc[c] += weight * value(1, p, c);
        }
        for (uint32_t c = 0; c < dim; ++c) at<float>(k.output)[w * dim + c] = static_cast<float>(acc[c] / total);
    }
    return ZE_RESULT_SUCCESS;
}

}  // namespace

namespace {

// A launch, from the arguments the kernel had when it was appended.
ze_result_t emulate_launch(const std::string& name, const std::vector<std::string>& arguments, uint64_t items, const std::string& build_flags,
                           ze_kernel_indirect_access_flags_t indirect) {
    const Arguments a{arguments};
    if (name.rfind("grey_kvk_", 0) == 0) {
        // The kernels read block addresses from tables, and the quantization divides.
        if ((indirect & ZE_KERNEL_INDIRECT_ACCESS_FLAG_DEVICE) == 0 || build_flags.find("-cl-fp32-correctly-rounded-divide-sqrt") == std::string::npos)
            return ZE_RESULT_ERROR_INVALID_ARGUMENT;
        if (name == "grey_kvk_store") return emulate_kv_store(a);
        if (name == "grey_kvk_params") return emulate_kv_compress(a, false);
        if (name == "grey_kvk_codes") return emulate_kv_compress(a, true);
        if (name == "grey_kvk_attend") return emulate_kv_attend(a);
    }
    if (name == "grey_checksum_partial") return emulate_checksum(a, items);
    if (name == "grey_fill") {  // (buffer, offset, n, value)
        if (!a.sizes({8, 8, 8, 4})) return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
        std::memset(a.pointer<unsigned char>(0) + a.u64(1), static_cast<int>(a.u64(3) & 0xFF), a.u64(2));
        return ZE_RESULT_SUCCESS;
    }
    if (name == "grey_copy") {  // (to, to_offset, from, from_offset, n)
        if (!a.sizes({8, 8, 8, 8, 8})) return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
        std::memcpy(a.pointer<unsigned char>(0) + a.u64(1), a.pointer<const unsigned char>(2) + a.u64(3), a.u64(4));
        return ZE_RESULT_SUCCESS;
    }
    if (name == "grey_quant_stats") return emulate_quant_stats(a);
    if (name == "grey_quant_search" || name == "grey_quant_refit") {
        // (plain, codings, out, args[, steps]): every error or sum 0.
        const bool search = name == "grey_quant_search";
        if (!(search ? a.sizes({8, 8, 8, sizeof(grey_ql0_args), 4}) : a.sizes({8, 8, 8, sizeof(grey_ql0_args)})))
            return ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
        grey_ql0_args args{};
        std::memcpy(&args, a.args[3].data(), sizeof args);
        uint32_t steps = 1;
        if (search) std::memcpy(&steps, a.args[4].data(), sizeof steps);
        const uint64_t count = grey_quant_layout_runs(&args.layout) * (search ? steps : 4);
        std::fill_n(a.pointer<double>(2), count, 0.0);
        return ZE_RESULT_SUCCESS;
    }
    if (name == "grey_quant_encode")
        return a.sizes({8, 8, 8, sizeof(grey_ql0_args)}) ? ZE_RESULT_SUCCESS : ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
    if (name == "grey_quant_decode")
        return a.sizes({8, 8, sizeof(grey_ql0_args)}) ? ZE_RESULT_SUCCESS : ZE_RESULT_ERROR_INVALID_KERNEL_ARGUMENT_SIZE;
    return ZE_RESULT_ERROR_INVALID_KERNEL_NAME;
}

}  // namespace

ze_result_t zeCommandListAppendLaunchKernel(ze_command_list_handle_t list, ze_kernel_handle_t kernel, const ze_group_count_t* groups,
                                            ze_event_handle_t, uint32_t, ze_event_handle_t*) {
    FAKE_ENTER("zeCommandListAppendLaunchKernel")
    if (kernel->group_size == 0) return ZE_RESULT_ERROR_INVALID_GROUP_SIZE_DIMENSION;
    if (groups == nullptr || groups->groupCountX == 0) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    {
        std::lock_guard lock(state().mutex);
        std::string sizes;
        for (const std::string& arg : kernel->args) sizes += (sizes.empty() ? "" : ",") + std::to_string(arg.size());
        state().launches += kernel->name + "(" + sizes + ")x" + std::to_string(groups->groupCountX) + ";";
    }
    const uint64_t items = uint64_t{groups->groupCountX} * kernel->group_size;
    return run_or_record(list, [name = kernel->name, args = kernel->args, items, flags = kernel->build_flags, indirect = kernel->indirect] {
        return emulate_launch(name, args, items, flags, indirect);
    });
}

// ----- regular command lists, command queues and events (the stream slots) -------------------------

ze_result_t zeCommandListCreate(ze_context_handle_t, ze_device_handle_t, const ze_command_list_desc_t*, ze_command_list_handle_t* out) {
    FAKE_ENTER("zeCommandListCreate")
    std::lock_guard lock(state().mutex);
    ++state().command_lists;
    *out = new _ze_command_list_handle_t{state().command_lists};
    (*out)->immediate = false;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeCommandListClose(ze_command_list_handle_t list) {
    FAKE_ENTER("zeCommandListClose")
    if (list->immediate || list->closed) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    list->closed = true;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeCommandQueueCreate(ze_context_handle_t, ze_device_handle_t, const ze_command_queue_desc_t* desc, ze_command_queue_handle_t* out) {
    FAKE_ENTER("zeCommandQueueCreate")
    if (desc == nullptr || desc->mode != ZE_COMMAND_QUEUE_MODE_ASYNCHRONOUS) return ZE_RESULT_ERROR_UNSUPPORTED_FEATURE;
    std::lock_guard lock(state().mutex);
    ++state().queues;
    *out = new _ze_command_queue_handle_t{streams().create()};
    return ZE_RESULT_SUCCESS;
}

// The runtime completes a destroyed queue's work (the real one requires the caller to have waited).
ze_result_t zeCommandQueueDestroy(ze_command_queue_handle_t queue) {
    streams().destroy(queue->stream);
    std::lock_guard lock(state().mutex);
    --state().queues;
    delete queue;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeCommandQueueExecuteCommandLists(ze_command_queue_handle_t queue, uint32_t count, ze_command_list_handle_t* lists,
                                              ze_fence_handle_t fence) {
    FAKE_ENTER("zeCommandQueueExecuteCommandLists")
    if (fence != nullptr) return ZE_RESULT_ERROR_UNSUPPORTED_FEATURE;
    for (uint32_t i = 0; i < count; ++i)
        if (lists[i]->immediate || !lists[i]->closed) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    // Each command in order: its wait, its work, its signal; the events and memory it names count as in
    // use from now until it has run.
    for (uint32_t i = 0; i < count; ++i) {
        for (const auto& item : lists[i]->items) {
            {
                std::lock_guard lock(state().mutex);
                for (ze_event_handle_t e : {item.wait, item.signal})
                    if (e != nullptr) ++state().pending[e];
                if (item.writes != nullptr) ++state().pending_writes[item.writes];
            }
            if (item.wait != nullptr) {
                streams().wait(queue->stream, item.wait);
                // The event may be signalled from the host (zeEventHostSignal) by another thread: the queue
                // waits for it, as a real one would, for a while. A real queue would hang on an event nothing
                // signals; the fake says so.
                streams().enqueue(queue->stream, [event = item.wait] {
                    for (int waited = 0; waited < kHostSignalWaitMs && !event->signalled; ++waited) std::this_thread::sleep_for(std::chrono::milliseconds(1));
                    std::lock_guard lock(state().mutex);
                    if (!event->signalled) violation("a queue waited on an event that no executed command signalled (it would hang)");
                });
            }
            if (item.work)
                streams().enqueue(queue->stream, [queue, work = item.work] {
                    if (const ze_result_t r = work(); r != ZE_RESULT_SUCCESS && queue->failed == ZE_RESULT_SUCCESS) queue->failed = r;
                });
            if (item.signal != nullptr) {
                streams().record(item.signal, queue->stream);
                streams().enqueue(queue->stream, [event = item.signal] { event->signalled = true; });
            }
            streams().enqueue(queue->stream, [item] {
                std::lock_guard lock(state().mutex);
                for (ze_event_handle_t e : {item.wait, item.signal})
                    if (e != nullptr) --state().pending[e];
                if (item.writes != nullptr) --state().pending_writes[item.writes];
            });
        }
    }
    return ZE_RESULT_SUCCESS;
}

// Runs the queue's work and answers done: the fake has no "not yet" (FAKE_ZE_FAIL gives
// ZE_RESULT_NOT_READY where a test wants it).
ze_result_t zeCommandQueueSynchronize(ze_command_queue_handle_t queue, uint64_t) {
    FAKE_ENTER("zeCommandQueueSynchronize")
    streams().flush(queue->stream);
    const ze_result_t failed = queue->failed;
    queue->failed = ZE_RESULT_SUCCESS;
    return failed;
}

ze_result_t zeEventPoolCreate(ze_context_handle_t, const ze_event_pool_desc_t* desc, uint32_t, ze_device_handle_t*, ze_event_pool_handle_t* out) {
    FAKE_ENTER("zeEventPoolCreate")
    if (desc == nullptr || desc->count == 0) return ZE_RESULT_ERROR_INVALID_SIZE;
    std::lock_guard lock(state().mutex);
    ++state().event_pools;
    *out = new _ze_event_pool_handle_t{desc->count};
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeEventPoolDestroy(ze_event_pool_handle_t pool) {
    std::lock_guard lock(state().mutex);
    if (pool->events > 0) {
        violation("zeEventPoolDestroy of a pool with " + std::to_string(pool->events) + " event(s) not destroyed");
        return ZE_RESULT_SUCCESS;  // kept, for the events left
    }
    --state().event_pools;
    delete pool;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeEventCreate(ze_event_pool_handle_t pool, const ze_event_desc_t* desc, ze_event_handle_t* out) {
    FAKE_ENTER("zeEventCreate")
    if (desc == nullptr || desc->index >= pool->count) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    std::lock_guard lock(state().mutex);
    ++state().events;
    ++pool->events;
    *out = new _ze_event_handle_t{pool};
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeEventDestroy(ze_event_handle_t event) {
    streams().destroy_event(event);
    std::lock_guard lock(state().mutex);
    --state().events;
    --event->pool->events;
    if (auto p = state().pending.find(event); p != state().pending.end() && p->second > 0) {
        violation("zeEventDestroy of an event " + std::to_string(p->second) + " queued command(s) not yet executed still name");
        state().leaked.emplace_back(event);  // the queued commands still touch it
        return ZE_RESULT_SUCCESS;
    }
    state().pending.erase(event);
    delete event;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeCommandListAppendSignalEvent(ze_command_list_handle_t list, ze_event_handle_t event) {
    FAKE_ENTER("zeCommandListAppendSignalEvent")
    if (list->immediate || list->closed) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    list->items.push_back({nullptr, event, nullptr, nullptr});
    return ZE_RESULT_SUCCESS;
}

// The device clock when the queue reaches the command, masked to the valid bits; then the signal.
ze_result_t zeCommandListAppendWriteGlobalTimestamp(ze_command_list_handle_t list, uint64_t* destination, ze_event_handle_t signal,
                                                    uint32_t wait_count, ze_event_handle_t* waits) {
    FAKE_ENTER("zeCommandListAppendWriteGlobalTimestamp")
    if (list->immediate || list->closed) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    if (destination == nullptr) return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    if (reinterpret_cast<uintptr_t>(destination) % 8 != 0) return ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT;
    if (wait_count != 0 || waits != nullptr) return ZE_RESULT_ERROR_UNSUPPORTED_FEATURE;  // all this fake emulates
    {
        std::lock_guard lock(state().mutex);
        if (state().host_allocations.count(destination) == 0)
            return ZE_RESULT_ERROR_INVALID_ARGUMENT;  // the device could not reach it (the fake takes only zeMemAllocHost memory)
    }
    list->items.push_back({[destination] {
                               const uint32_t bits = timestamp_bits();
                               std::lock_guard lock(state().mutex);
                               *destination = bits >= 64 ? state().clock : state().clock & ((uint64_t{1} << bits) - 1);
                               return ZE_RESULT_SUCCESS;
                           },
                           signal, nullptr, destination});
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeCommandListAppendWaitOnEvents(ze_command_list_handle_t list, uint32_t count, ze_event_handle_t* events) {
    FAKE_ENTER("zeCommandListAppendWaitOnEvents")
    if (list->immediate || list->closed) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    for (uint32_t i = 0; i < count; ++i) list->items.push_back({nullptr, nullptr, events[i], nullptr});
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeCommandListAppendEventReset(ze_command_list_handle_t list, ze_event_handle_t event) {
    FAKE_ENTER("zeCommandListAppendEventReset")
    return run_or_record(list, [event] {
        event->signalled = false;
        return ZE_RESULT_SUCCESS;
    });
}

ze_result_t zeEventHostReset(ze_event_handle_t event) {
    FAKE_ENTER("zeEventHostReset")
    std::lock_guard lock(state().mutex);
    if (auto p = state().pending.find(event); p != state().pending.end() && p->second > 0)
        violation("zeEventHostReset of an event queued commands not yet executed still name");
    event->signalled = false;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zeEventHostSignal(ze_event_handle_t event) {
    FAKE_ENTER("zeEventHostSignal")
    std::lock_guard lock(state().mutex);
    event->signalled = true;
    return ZE_RESULT_SUCCESS;
}

// Runs the event's queue up to the command that signals it, not past it (work after it may wait for
// this thread: a host-signalled release, ze_quant_stream.hpp).
ze_result_t zeEventHostSynchronize(ze_event_handle_t event, uint64_t) {
    FAKE_ENTER("zeEventHostSynchronize")
    if (void* stream = streams().recorded_on(event)) streams().flush_until(stream, [event] { return event->signalled.load(); });
    return event->signalled ? ZE_RESULT_SUCCESS : ZE_RESULT_NOT_READY;
}

ze_result_t zeEventQueryStatus(ze_event_handle_t event) {
    FAKE_ENTER("zeEventQueryStatus")
    if (void* stream = streams().recorded_on(event)) streams().flush(stream);
    return event->signalled ? ZE_RESULT_SUCCESS : ZE_RESULT_NOT_READY;
}

#ifndef FAKE_ZE_NO_SYSMAN
ze_result_t zesDeviceGetProperties(zes_device_handle_t device, zes_device_properties_t* p) {
    FAKE_SYSMAN("zesDeviceGetProperties")
    fill_core_properties(&p->core, reinterpret_cast<ze_device_handle_t>(device)->id);
    p->numSubdevices = 2;
    std::snprintf(p->driverVersion, sizeof p->driverVersion, "1.3.27642.40");
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesDevicePciGetProperties(zes_device_handle_t device, zes_pci_properties_t* p) {
    FAKE_SYSMAN("zesDevicePciGetProperties")
    p->address = {0, 0x29, 0, reinterpret_cast<ze_device_handle_t>(device)->id == 0 ? 0u : 1u};
    p->maxSpeed = {5, 16, 63000000000};
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesDevicePciGetState(zes_device_handle_t, zes_pci_state_t* p) {
    FAKE_SYSMAN("zesDevicePciGetState")
    p->speed = {4, -1, -1};  // width unknown to the driver
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesDeviceEnumMemoryModules(zes_device_handle_t, uint32_t* count, zes_mem_handle_t* out) {
    FAKE_SYSMAN("zesDeviceEnumMemoryModules")
    return enumerate(count, out, memory_modules);
}

ze_result_t zesMemoryGetProperties(zes_mem_handle_t m, zes_mem_properties_t* p) {
    FAKE_SYSMAN("zesMemoryGetProperties")
    p->type = ZES_MEM_TYPE_HBM;
    p->location = m->location;
    p->physicalSize = 128ull << 30;
    p->busWidth = 8192;
    p->numChannels = -1;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesMemoryGetState(zes_mem_handle_t m, zes_mem_state_t* p) {
    FAKE_SYSMAN("zesMemoryGetState")
    std::lock_guard lock(state().mutex);
    p->health = ZES_MEM_HEALTH_OK;
    p->size = m->location == ZES_MEM_LOC_DEVICE ? 128ull << 30 : 512ull << 30;
    p->free = p->size - kBaselineUsed - (m->location == ZES_MEM_LOC_DEVICE ? state().allocated : 0);
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesMemoryGetBandwidth(zes_mem_handle_t, zes_mem_bandwidth_t* p) {
    FAKE_SYSMAN("zesMemoryGetBandwidth")
    p->readCounter = 1000;
    p->writeCounter = 2000;
    p->maxBandwidth = 3276800000000ull;
    p->timestamp = 1;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesDeviceEnumFrequencyDomains(zes_device_handle_t, uint32_t* count, zes_freq_handle_t* out) {
    FAKE_SYSMAN("zesDeviceEnumFrequencyDomains")
    return enumerate(count, out, frequency_domains);
}

ze_result_t zesFrequencyGetProperties(zes_freq_handle_t f, zes_freq_properties_t* p) {
    FAKE_SYSMAN("zesFrequencyGetProperties")
    p->type = f->type;
    p->onSubdevice = f->on_subdevice;
    p->min = 300;
    p->max = f->max;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesFrequencyGetState(zes_freq_handle_t f, zes_freq_state_t* p) {
    FAKE_SYSMAN("zesFrequencyGetState")
    p->actual = f->actual;
    p->request = f->max;
    p->throttleReasons = f->type == ZES_FREQ_DOMAIN_GPU && !f->on_subdevice
                             ? ZES_FREQ_THROTTLE_REASON_FLAG_AVE_PWR_CAP | ZES_FREQ_THROTTLE_REASON_FLAG_HW_RANGE
                             : 0;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesDeviceEnumPowerDomains(zes_device_handle_t, uint32_t* count, zes_pwr_handle_t* out) {
    FAKE_SYSMAN("zesDeviceEnumPowerDomains")
    _zes_pwr_handle_t* one[] = {&power_domain};
    if (out != nullptr && *count > 0) out[0] = one[0];
    *count = 1;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesPowerGetProperties(zes_pwr_handle_t, zes_power_properties_t* p) {
    FAKE_SYSMAN("zesPowerGetProperties")
    p->onSubdevice = false;
    p->canControl = true;
    p->defaultLimit = 600000;
    p->minLimit = 300000;
    p->maxLimit = -1;  // unknown to the driver
    return ZE_RESULT_SUCCESS;
}

// 300 W: every read is one second (10^6 us) and 300 J (3 x 10^8 uJ) after the previous one.
ze_result_t zesPowerGetEnergyCounter(zes_pwr_handle_t, zes_power_energy_counter_t* p) {
    FAKE_SYSMAN("zesPowerGetEnergyCounter")
    std::lock_guard lock(state().mutex);
    const uint64_t n = state().energy_reads++;
    p->energy = 5000000000ull + n * 300000000ull;
    p->timestamp = 7000000ull + n * 1000000ull;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesPowerGetLimits(zes_pwr_handle_t, zes_power_sustained_limit_t* sustained, zes_power_burst_limit_t* burst,
                              zes_power_peak_limit_t* peak) {
    FAKE_SYSMAN("zesPowerGetLimits")
    if (sustained != nullptr) *sustained = {true, state().sustained_mw, 28000};
    if (burst != nullptr) *burst = {true, 650000};
    if (peak != nullptr) *peak = {700000, 700000};
    return ZE_RESULT_SUCCESS;
}

// Takes a sustained limit up to 600 W (the driver's own range; the fake's maxLimit is "unknown").
ze_result_t zesPowerSetLimits(zes_pwr_handle_t, const zes_power_sustained_limit_t* sustained, const zes_power_burst_limit_t*,
                              const zes_power_peak_limit_t*) {
    FAKE_SYSMAN("zesPowerSetLimits")
    if (sustained == nullptr) return ZE_RESULT_SUCCESS;
    if (!sustained->enabled || sustained->power > 600000) return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    state().sustained_mw = sustained->power;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesDeviceEnumTemperatureSensors(zes_device_handle_t, uint32_t* count, zes_temp_handle_t* out) {
    FAKE_SYSMAN("zesDeviceEnumTemperatureSensors")
    return enumerate(count, out, sensors);
}

ze_result_t zesTemperatureGetProperties(zes_temp_handle_t t, zes_temp_properties_t* p) {
    FAKE_SYSMAN("zesTemperatureGetProperties")
    p->type = t->type;
    p->onSubdevice = false;
    p->maxTemperature = t->max;
    return ZE_RESULT_SUCCESS;
}

ze_result_t zesTemperatureGetState(zes_temp_handle_t t, double* celsius) {
    FAKE_SYSMAN("zesTemperatureGetState")
    *celsius = t->now;
    return ZE_RESULT_SUCCESS;
}
#endif
