#include "hip/hip_kernels.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace grey::hip {

std::string_view target_of(std::string_view gcn_arch_name) { return gcn_arch_name.substr(0, gcn_arch_name.find(':')); }

std::string embedded_targets() {
    std::vector<std::string_view> targets;
    for (const CodeObject& o : embedded_code_objects())
        if (std::find(targets.begin(), targets.end(), o.target) == targets.end()) targets.push_back(o.target);
    std::string text;
    for (std::string_view t : targets) text += (text.empty() ? "" : ", ") + std::string(t);
    return text;
}

const CodeObject& code_object_for(std::string_view module, std::string_view target) {
    for (const CodeObject& o : embedded_code_objects())
        if (o.module == module && o.target == target) return o;
    throw KernelsUnavailable("no kernels for this GPU: this build has AMD code objects for " + embedded_targets() + ", not for " +
                             std::string(target) + " (GREY_HIP_TARGETS, backends/hip/CMakeLists.txt)");
}

void require_module_api(const HipRuntime& hip) {
    const std::pair<const void*, const char*> needed[] = {{reinterpret_cast<const void*>(hip.module_load_data), "hipModuleLoadData"},
                                                          {reinterpret_cast<const void*>(hip.module_unload), "hipModuleUnload"},
                                                          {reinterpret_cast<const void*>(hip.module_get_function), "hipModuleGetFunction"},
                                                          {reinterpret_cast<const void*>(hip.module_launch_kernel), "hipModuleLaunchKernel"}};
    for (const auto& [fn, name] : needed)
        if (fn == nullptr) throw KernelsUnavailable("no kernels: " + hip.missing(name));
}

std::string gcn_arch_name(const HipRuntime& hip, int ordinal) {
    if (hip.get_device_properties == nullptr)
        throw KernelsUnavailable("the GPU's gfx target is unknown: " + hip.missing("hipGetDevicePropertiesR0000 or hipGetDeviceProperties"));
    std::vector<char> properties(api::kDevicePropBytes, '\0');
    hip.check(hip.get_device_properties(properties.data(), ordinal), hip.get_device_properties_name);
    const char* name = properties.data() + api::kDevicePropGcnArchNameOffset;
    std::string text(name, strnlen(name, api::kDevicePropGcnArchNameBytes));
    if (text.rfind("gfx", 0) != 0)
        throw KernelsUnavailable(std::string("the GPU's gfx target is unknown: ") + hip.get_device_properties_name + " gave gcnArchName \"" + text +
                                 "\"");
    return text;
}

Module::Module(const HipRuntime& hip, const CodeObject& object)
    : hip_(hip), what_("the " + std::string(object.target) + " code object of module " + std::string(object.module)) {
    if (const api::Error e = hip.module_load_data(&module_, object.image.data()); e != api::kSuccess)
        throw HipError(e, hip.describe(e, "hipModuleLoadData") + " (" + what_ + ")");
}

Module::~Module() {
    if (module_ != nullptr) (void)hip_.module_unload(module_);
}

api::Function Module::function(const char* name) const {
    api::Function f = nullptr;
    if (const api::Error e = hip_.module_get_function(&f, module_, name); e != api::kSuccess)
        throw HipError(e, hip_.describe(e, "hipModuleGetFunction") + " (" + name + " in " + what_ + ")");
    return f;
}

BufferKernels::BufferKernels(const HipRuntime& hip, std::string_view target)
    : module(hip, code_object_for("kernels", target)),
      fill(module.function("grey_fill")),
      copy(module.function("grey_copy")),
      checksum(module.function("grey_checksum")) {}

void launch(const HipRuntime& hip, api::Function function, unsigned int blocks, unsigned int threads, unsigned int shared_bytes, void** params,
            api::Stream stream) {
    hip.check(hip.module_launch_kernel(function, blocks, 1, 1, threads, 1, 1, shared_bytes, stream, params, nullptr), "hipModuleLaunchKernel");
}

unsigned int grid_for(uint64_t work) {
    // Grid-stride kernels: enough blocks to fill any GPU many times over, and no more.
    constexpr uint64_t kMaxBlocks = 4096;
    return static_cast<unsigned int>(std::clamp<uint64_t>((work + kThreads - 1) / kThreads, 1, kMaxBlocks));
}

void kernel_fill(const HipRuntime& hip, const BufferKernels& k, uint64_t destination, uint8_t value, uint64_t size) {
    unsigned long long n = size;
    unsigned int v = value;
    void* params[] = {&destination, &n, &v};
    launch(hip, k.fill, grid_for(size / 16 + 1), kThreads, 0, params);
    hip.check(hip.device_synchronize(), "hipDeviceSynchronize");
}

void kernel_copy(const HipRuntime& hip, const BufferKernels& k, uint64_t destination, uint64_t source, uint64_t size) {
    unsigned long long n = size;
    void* params[] = {&destination, &source, &n};
    launch(hip, k.copy, grid_for(size / 16 + 1), kThreads, 0, params);
    hip.check(hip.device_synchronize(), "hipDeviceSynchronize");
}

uint64_t kernel_checksum(const HipRuntime& hip, const BufferKernels& k, uint64_t slot, uint64_t source, uint64_t size) {
    void* sum_address = reinterpret_cast<void*>(slot);
    hip.check(hip.mem_set(sum_address, 0, sizeof(uint64_t)), "hipMemset");
    unsigned long long n = size;
    void* params[] = {&source, &n, &slot};
    launch(hip, k.checksum, grid_for(size), kThreads, 0, params);
    uint64_t sum = 0;
    hip.check(hip.mem_copy(&sum, sum_address, sizeof sum, api::kMemcpyDeviceToHost), "hipMemcpy");  // waits for the kernel
    return sum;
}

void enqueue_checksum(const HipRuntime& hip, const BufferKernels& k, api::Stream stream, uint64_t slot, uint64_t source, uint64_t size,
                      uint64_t* out) {
    void* sum_address = reinterpret_cast<void*>(slot);
    hip.check(hip.mem_set_async(sum_address, 0, sizeof(uint64_t), stream), "hipMemsetAsync");
    unsigned long long n = size;
    void* params[] = {&source, &n, &slot};
    launch(hip, k.checksum, grid_for(size), kThreads, 0, params, stream);
    hip.check(hip.mem_copy_async(out, sum_address, sizeof(uint64_t), api::kMemcpyDeviceToHost, stream), "hipMemcpyAsync");
}

}  // namespace grey::hip
