// The SPIR-V modules built from kernels/opencl at build time and embedded in the plugin
// (kernel_images.cpp).
#pragma once

#include <cstdint>
#include <span>

namespace grey::level0 {

enum class KernelModule : uint32_t {
    checksum,   // kernels/opencl/grey_checksum.cl
    fill_copy,  // kernels/opencl/grey_fill_copy.cl
    quant,      // kernels/opencl/grey_quant.clcpp
    quant_mse,  // kernels/opencl/grey_quant_mse.clcpp (float64)
    kv,         // kernels/opencl/grey_kv.clcpp
};
inline constexpr uint32_t kKernelModuleCount = 5;

// The module as SPIR-V.
std::span<const unsigned char> spirv_image(KernelModule module);
// Its source file's name, for messages.
const char* module_name(KernelModule module);
// The build flags zeModuleCreate (and the OpenCL test's clBuildProgram) gets for it: "" but for the KV
// module, whose quantization divides and asks for IEEE division.
const char* module_build_flags(KernelModule module);

}  // namespace grey::level0
