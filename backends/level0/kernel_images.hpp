// The SPIR-V modules built from kernels/opencl at build time and embedded in the plugin
// (kernel_images.cpp).
#pragma once

#include <span>

namespace grey::level0 {

// kernels/opencl/grey_checksum.cl as SPIR-V.
std::span<const unsigned char> checksum_spirv();

}  // namespace grey::level0
