// A fake HIP runtime (installed as libamdhip64.so.6): FAKE_HIP_DEVICES GPUs (default 1) shaped like one
// GCD of an AMD Instinct MI250X, device memory from the host heap, synchronous copies and fills. HIP's
// current device is per thread, as in the real runtime; allocations remember the device they were made on.
//   FAKE_HIP_FAIL     "name:code[,...]" (fake_common.hpp): that entry point returns hipError_t `code`
//   FAKE_HIP_DEVICES  the number of GPUs
//   FAKE_HIP_MEMORY   device memory in bytes (default 1 GiB); hipMalloc beyond it fails
//   FAKE_HIP_ARCH     the devices' gcnArchName (default "gfx90a:sramecc+:xnack-")
// Modules: hipModuleLoadData takes only an AMDGPU ELF code object whose gfx target (e_flags) is the
// device's, and hipModuleGetFunction finds a kernel only where the object's symbol table has it (and its
// kernel descriptor, "<name>.kd"), as the real loader does. hipModuleLaunchKernel runs nothing on a GPU:
// it records the launch, and carries out grey_fill, grey_copy and grey_checksum on the host from the
// launch's arguments (decoded by the kernels' signatures in kernels/cuda/grey_kernels.cu), so that tests
// see whether the plugin passed the right ones. The quantization kernels run as the stand-in the fake
// CUDA driver runs, and are logged to FAKE_QUANT_LAUNCH_LOG (tests/backends/fake_quant_kernels.hpp); the
// KV cache's kernels run the host stand-in of tests/backends/fake_kv_kernels.hpp and are logged to
// FAKE_KV_LAUNCH_LOG (fake::kv_launch).
// hipModuleOccupancyMaxActiveBlocksPerMultiprocessor answers 2048 / block size, as the fake CUDA driver.
//   FAKE_HIP_COMPUTE_UNITS  the devices' compute units (default 110)
// Variant FAKE_HIP_OLD: no hipMemGetInfo and no hipDeviceGetUuid. Test hooks: fake_hip_live_allocations(),
// fake_hip_live_modules(), fake_hip_launches(), fake_hip_last_launch(), fake_hip_last_module_target().
#include "fake_common.hpp"
#include "fake_kv_kernels.hpp"
#include "fake_quant_kernels.hpp"
#include "fake_streams.hpp"

#include <elf.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr int kSuccess = 0, kInvalidValue = 1, kOutOfMemory = 2, kNotInitialized = 3, kInvalidDevice = 101;

struct Module {
    std::string target;             // "gfx90a"
    std::set<std::string> kernels;  // functions with a kernel descriptor
};

struct Function {
    const Module* module;
    std::string name;
};

struct Launch {
    std::string name;
    unsigned int grid = 0, block = 0, shared = 0;
};

struct State {
    std::mutex mutex;
    bool initialised = false;
    std::map<void*, std::pair<size_t, int>> allocations;  // size, device
    size_t allocated = 0;
    std::map<void*, std::unique_ptr<Module>> modules;
    std::map<void*, std::unique_ptr<Function>> functions;
    int launches = 0;
    Launch last;
    std::string last_module_target;
};

State& state() {
    static State s;
    return s;
}

// hipStreamCreate's streams, deferred (tests/backends/fake_streams.hpp). Work on the null stream first
// waits for every stream's, as HIP's legacy null stream waits for the blocking streams.
fake::DeferredStreams& streams() {
    static fake::DeferredStreams s;
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

FAKE_EXPORT int fake_hip_live_modules() {
    std::lock_guard lock(state().mutex);
    return static_cast<int>(state().modules.size());
}

FAKE_EXPORT int fake_hip_launches() {
    std::lock_guard lock(state().mutex);
    return state().launches;
}

// The last launch: the kernel's name, grid and block sizes (x) and dynamic shared memory.
FAKE_EXPORT void fake_hip_last_launch(char* name, size_t length, unsigned int* grid, unsigned int* block, unsigned int* shared) {
    std::lock_guard lock(state().mutex);
    std::snprintf(name, length, "%s", state().last.name.c_str());
    *grid = state().last.grid;
    *block = state().last.block;
    *shared = state().last.shared;
}

FAKE_EXPORT void fake_hip_last_module_target(char* target, size_t length) {
    std::lock_guard lock(state().mutex);
    std::snprintf(target, length, "%s", state().last_module_target.c_str());
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

FAKE_EXPORT int hipModuleOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, void* function, int block_size, size_t) {
    FAKE_ENTER("hipModuleOccupancyMaxActiveBlocksPerMultiprocessor")
    std::lock_guard lock(state().mutex);
    if (state().functions.count(function) == 0 || block_size <= 0) return kInvalidValue;
    *blocks = 2048 / block_size;
    return kSuccess;
}

// Streams and events. hipStreamQuery and hipEventQuery run the work they ask about and answer done: the
// fake has no "not yet" (FAKE_HIP_FAIL gives hipErrorNotReady, 600, where a test wants it).
FAKE_EXPORT int hipStreamCreate(void** stream) {
    FAKE_ENTER("hipStreamCreate")
    *stream = streams().create();
    return kSuccess;
}
FAKE_EXPORT int hipStreamDestroy(void* stream) {
    FAKE_ENTER("hipStreamDestroy")
    return streams().destroy(stream) ? kSuccess : kInvalidValue;
}
FAKE_EXPORT int hipStreamSynchronize(void* stream) {
    FAKE_ENTER("hipStreamSynchronize")
    streams().flush(stream);
    return kSuccess;
}
FAKE_EXPORT int hipStreamQuery(void* stream) {
    FAKE_ENTER("hipStreamQuery")
    streams().flush(stream);
    return kSuccess;
}
FAKE_EXPORT int hipStreamWaitEvent(void* stream, void* event, unsigned int flags) {
    FAKE_ENTER("hipStreamWaitEvent")
    if (flags != 0) return kInvalidValue;
    streams().wait(stream, event);
    return kSuccess;
}
FAKE_EXPORT int hipEventCreate(void** event) {
    FAKE_ENTER("hipEventCreate")
    *event = streams().create_event();
    return kSuccess;
}
FAKE_EXPORT int hipEventDestroy(void* event) {
    streams().destroy_event(event);
    return kSuccess;
}
FAKE_EXPORT int hipEventRecord(void* event, void* stream) {
    FAKE_ENTER("hipEventRecord")
    streams().record(event, stream);
    return kSuccess;
}
FAKE_EXPORT int hipEventSynchronize(void* event) {
    FAKE_ENTER("hipEventSynchronize")
    if (void* stream = streams().recorded_on(event)) streams().flush(stream);
    return kSuccess;
}
FAKE_EXPORT int hipEventQuery(void* event) {
    FAKE_ENTER("hipEventQuery")
    if (void* stream = streams().recorded_on(event)) streams().flush(stream);
    return kSuccess;
}
FAKE_EXPORT int hipEventElapsedTime(float* ms, void*, void*) {
    FAKE_ENTER("hipEventElapsedTime")
    *ms = 0.0f;
    return 801;  // hipErrorNotSupported: the fake has no clock
}
// Host memory is read and written when the copy runs, as the runtime's DMA would.
FAKE_EXPORT int hipMemcpyAsync(void* destination, const void* source, size_t size, int, void* stream) {
    FAKE_ENTER("hipMemcpyAsync")
    if (stream == nullptr) streams().flush_all();
    streams().enqueue(stream, [=] { std::memmove(destination, source, size); });
    return kSuccess;
}
FAKE_EXPORT int hipMemsetAsync(void* destination, int value, size_t size, void* stream) {
    FAKE_ENTER("hipMemsetAsync")
    if (stream == nullptr) streams().flush_all();
    streams().enqueue(stream, [=] { std::memset(destination, value, size); });
    return kSuccess;
}
FAKE_EXPORT int fake_hip_queued(void* stream) { return static_cast<int>(streams().queued(stream)); }

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
        case 63: *value = static_cast<int>(fake::env_u64("FAKE_HIP_COMPUTE_UNITS", 110)); return kSuccess;  // compute units
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
    streams().flush_all();
    std::memmove(destination, source, size);
    return kSuccess;
}

FAKE_EXPORT int hipMemset(void* destination, int value, size_t size) {
    FAKE_ENTER("hipMemset")
    streams().flush_all();
    std::memset(destination, value, size);
    return kSuccess;
}

FAKE_EXPORT int hipDeviceSynchronize() {
    FAKE_ENTER("hipDeviceSynchronize")
    streams().flush_all();
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
        case 98: return "hipErrorInvalidDeviceFunction";
        case 200: return "hipErrorInvalidImage";
        case 209: return "hipErrorNoBinaryForGpu";
        case 500: return "hipErrorNotFound";
        case 719: return "hipErrorLaunchFailure";
        case 600: return "hipErrorNotReady";
        case 801: return "hipErrorNotSupported";
        default: return "hipErrorUnknown";
    }
}

namespace {

std::string device_arch() {
    const char* arch = std::getenv("FAKE_HIP_ARCH");
    return arch != nullptr ? arch : "gfx90a:sramecc+:xnack-";
}

// The gfx target of an AMDGPU ELF's e_flags (EF_AMDGPU_MACH, the targets the plugin is built for).
const char* target_of_mach(unsigned int mach) {
    switch (mach) {
        case 0x3f: return "gfx90a";
        case 0x4c: return "gfx942";
        case 0x41: return "gfx1100";
        default: return nullptr;
    }
}

// Reads an AMDGPU code object: its target and the functions that have a kernel descriptor. False if the
// image is no such ELF.
bool read_code_object(const unsigned char* image, Module& out) {
    Elf64_Ehdr header;
    std::memcpy(&header, image, sizeof header);
    if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_machine != EM_AMDGPU)
        return false;
    const char* target = target_of_mach(header.e_flags & 0xffu);
    if (target == nullptr) return false;
    out.target = target;
    std::set<std::string> functions, descriptors;
    for (unsigned int i = 0; i < header.e_shnum; ++i) {
        Elf64_Shdr section;
        std::memcpy(&section, image + header.e_shoff + i * header.e_shentsize, sizeof section);
        if (section.sh_type != SHT_SYMTAB && section.sh_type != SHT_DYNSYM) continue;
        Elf64_Shdr strings;
        std::memcpy(&strings, image + header.e_shoff + section.sh_link * header.e_shentsize, sizeof strings);
        for (uint64_t at = 0; at + sizeof(Elf64_Sym) <= section.sh_size; at += sizeof(Elf64_Sym)) {
            Elf64_Sym symbol;
            std::memcpy(&symbol, image + section.sh_offset + at, sizeof symbol);
            const std::string name = reinterpret_cast<const char*>(image + strings.sh_offset + symbol.st_name);
            if (ELF64_ST_TYPE(symbol.st_info) == STT_FUNC) functions.insert(name);
            if (ELF64_ST_TYPE(symbol.st_info) == STT_OBJECT && name.size() > 3 && name.ends_with(".kd")) descriptors.insert(name.substr(0, name.size() - 3));
        }
    }
    for (const std::string& f : functions)
        if (descriptors.count(f) != 0) out.kernels.insert(f);
    return true;
}

// grey_kernels.cu's kernels, on the host (device memory is host memory here): the arguments are read at
// the launch (the runtime copies them then), the work runs when the stream reaches it.
std::function<void()> emulation(const std::string& name, void** params) {
    auto arg = [params](int i, auto type) { return *static_cast<decltype(type)*>(params[i]); };
    if (name == "grey_fill") {
        unsigned char* destination = arg(0, static_cast<unsigned char*>(nullptr));
        const int value = static_cast<int>(arg(2, 0u) & 0xffu);
        const unsigned long long n = arg(1, 0ull);
        return [=] { std::memset(destination, value, n); };
    }
    if (name == "grey_copy") {
        unsigned char* destination = arg(0, static_cast<unsigned char*>(nullptr));
        const unsigned char* source = arg(1, static_cast<const unsigned char*>(nullptr));
        const unsigned long long n = arg(2, 0ull);
        return [=] { std::memcpy(destination, source, n); };
    }
    if (name == "grey_checksum") {
        const unsigned char* source = arg(0, static_cast<const unsigned char*>(nullptr));
        const unsigned long long n = arg(1, 0ull);
        unsigned long long* out = arg(2, static_cast<unsigned long long*>(nullptr));
        return [=] {
            unsigned long long sum = 0, weight = 0xD6E8FEB86659FD93ull;  // common/checksum.hpp's rule, written out again
            for (unsigned long long i = 0; i < n; ++i, weight += 0x9E3779B97F4A7C15ull) sum += (source[i] + 1ull) * weight;
            *out += sum;
        };
    }
    switch (fake::quant_role(name)) {
        case fake::QuantRole::scan: return [a = arg(0, grey_qk_args{})] { fake::quant_scan(a); };
        case fake::QuantRole::dequantize: return [a = arg(0, grey_qk_args{})] { fake::dequant_stand_in(a); };
        default: return [] {};
    }
}


}  // namespace

FAKE_EXPORT int hipGetDevicePropertiesR0000(void* properties, int device) {
    FAKE_ENTER("hipGetDevicePropertiesR0000")
    FAKE_DEVICE(device)
    // ROCm 5's hipDeviceProp_t (792 bytes): name at 0, gcnArchName at 396.
    auto* bytes = static_cast<char*>(properties);
    std::memset(bytes, 0, 792);
    std::snprintf(bytes, 256, "Fake AMD Instinct MI250X");
    std::snprintf(bytes + 396, 256, "%s", device_arch().c_str());
    return kSuccess;
}

FAKE_EXPORT int hipModuleLoadData(void** module, const void* image) {
    FAKE_ENTER("hipModuleLoadData")
    auto loaded = std::make_unique<Module>();
    if (!read_code_object(static_cast<const unsigned char*>(image), *loaded)) return 200;  // hipErrorInvalidImage
    const std::string arch = device_arch();
    if (loaded->target != arch.substr(0, arch.find(':'))) return 209;  // hipErrorNoBinaryForGpu
    std::lock_guard lock(state().mutex);
    state().last_module_target = loaded->target;
    *module = loaded.get();
    state().modules.emplace(loaded.get(), std::move(loaded));
    return kSuccess;
}

FAKE_EXPORT int hipModuleUnload(void* module) {
    std::lock_guard lock(state().mutex);
    return state().modules.erase(module) == 1 ? kSuccess : kInvalidValue;
}

FAKE_EXPORT int hipModuleGetFunction(void** function, void* module, const char* name) {
    FAKE_ENTER("hipModuleGetFunction")
    std::lock_guard lock(state().mutex);
    const auto found = state().modules.find(module);
    if (found == state().modules.end()) return kInvalidValue;
    if (found->second->kernels.count(name) == 0) return 500;  // hipErrorNotFound
    auto f = std::make_unique<Function>(Function{found->second.get(), name});
    *function = f.get();
    state().functions.emplace(f.get(), std::move(f));
    return kSuccess;
}

FAKE_EXPORT int hipModuleLaunchKernel(void* function, unsigned int grid_x, unsigned int grid_y, unsigned int grid_z, unsigned int block_x,
                                      unsigned int block_y, unsigned int block_z, unsigned int shared, void* stream, void** params, void** extra) {
    FAKE_ENTER("hipModuleLaunchKernel")
    std::string name;
    {
        std::lock_guard lock(state().mutex);
        const auto found = state().functions.find(function);
        if (found == state().functions.end() || state().modules.count(const_cast<Module*>(found->second->module)) == 0) return 98;
        if (grid_x == 0 || grid_y == 0 || grid_z == 0 || block_x == 0 || block_x * block_y * block_z > 1024 || params == nullptr ||
            extra != nullptr || (stream != nullptr && !streams().exists(stream)))
            return kInvalidValue;
        name = found->second->name;
        state().launches += 1;
        state().last = Launch{name, grid_x, block_x, shared};
        fake::log_quant_launch(name, grid_x, block_x, shared, params);
    }
    if (stream == nullptr) streams().flush_all();
    auto kv = fake::kv_launch(name, grid_x, grid_y, grid_z, block_x, shared, params);
    streams().enqueue(stream, kv ? std::move(kv) : emulation(name, params));
    return kSuccess;
}
