// The kernels of kernels/cuda as AMD code objects (built by clang through kernels/hip/cuda_compat.h,
// one per module and gfx target, embedded by code_objects.cpp), and their loading on one device with
// hipModuleLoadData: the object whose target is the device's gcnArchName (without its feature
// suffixes). A device no object was built for has no kernels, and every kernel operation says why.
#pragma once

#include "hip/hip_runtime.hpp"

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace grey::hip {

struct CodeObject {
    std::string_view module;  // "kernels", "quant_blocks", ...
    std::string_view target;  // "gfx90a"
    std::span<const unsigned char> image;
};

// Every code object of this build.
std::span<const CodeObject> embedded_code_objects();

// "gfx90a:sramecc+:xnack-" -> "gfx90a".
std::string_view target_of(std::string_view gcn_arch_name);

// The targets this build has code objects for, "gfx90a, gfx942, gfx1100".
std::string embedded_targets();

// The kernels cannot run on this device: no code object for its target, or the runtime lacks an entry
// point the kernels need. The message names which.
class KernelsUnavailable : public std::domain_error {
    using std::domain_error::domain_error;
};

// The device's gcnArchName, e.g. "gfx90a:sramecc+:xnack-" (with the device current or not: the call takes
// the ordinal). Throws KernelsUnavailable when the runtime cannot say.
std::string gcn_arch_name(const HipRuntime& hip, int ordinal);

// A code object loaded into the current device.
class Module {
public:
    // Throws HipError (hipModuleLoadData failed) naming `what`.
    Module(const HipRuntime& hip, const CodeObject& object);
    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    // Throws HipError naming the kernel when the module lacks it.
    [[nodiscard]] api::Function function(const char* name) const;

private:
    const HipRuntime& hip_;
    std::string what_;
    api::Module module_ = nullptr;
};

// Fill, copy and checksum (kernels/cuda/grey_kernels.cu) on one device.
struct BufferKernels {
    // Loads the "kernels" module for `target` into the current device; throws KernelsUnavailable or HipError.
    BufferKernels(const HipRuntime& hip, std::string_view target);

    Module module;
    api::Function fill;
    api::Function copy;
    api::Function checksum;
};

// The code object of `module` for `target`; throws KernelsUnavailable naming the targets there are.
const CodeObject& code_object_for(std::string_view module, std::string_view target);

// Checks that the runtime has what loading and launching take; throws KernelsUnavailable.
void require_module_api(const HipRuntime& hip);

// A launch of `function` on `stream` (the null stream by default), one-dimensional: blocks of `threads`,
// `shared_bytes` of dynamic shared memory, arguments as hipModuleLaunchKernel takes them. Throws HipError.
void launch(const HipRuntime& hip, api::Function function, unsigned int blocks, unsigned int threads, unsigned int shared_bytes, void** params,
            api::Stream stream = nullptr);

// Runs `body`; if it throws once work may be queued, waits for the device before the scratch the kernels
// use goes back to the pool.
template <typename Body>
void drained_on_failure(const HipRuntime& hip, Body&& body) {
    try {
        body();
    } catch (...) {
        (void)hip.device_synchronize();
        throw;
    }
}

// The grid of a grid-stride kernel over `work` items: a block per kThreads items, at most kMaxBlocks.
inline constexpr unsigned int kThreads = 256;
unsigned int grid_for(uint64_t work);

// The kernels over device memory, synchronous (each waits for the device). `slot` is 8 bytes of device
// memory for the checksum's sum.
void kernel_fill(const HipRuntime& hip, const BufferKernels& k, uint64_t destination, uint8_t value, uint64_t size);
void kernel_copy(const HipRuntime& hip, const BufferKernels& k, uint64_t destination, uint64_t source, uint64_t size);
uint64_t kernel_checksum(const HipRuntime& hip, const BufferKernels& k, uint64_t slot, uint64_t source, uint64_t size);
// The checksum enqueued on `stream`: the sum lands in *out when the stream reaches it.
void enqueue_checksum(const HipRuntime& hip, const BufferKernels& k, api::Stream stream, uint64_t slot, uint64_t source, uint64_t size,
                      uint64_t* out);

}  // namespace grey::hip
