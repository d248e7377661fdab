// Embeds the SPIR-V built from kernels/opencl (the GREY_LEVEL0_*_SPIRV_PATH definitions) into the
// plugin's read-only data (common/embed_file.hpp). SPIR-V is a stream of 32-bit words: 4-byte alignment.
#include "level0/kernel_images.hpp"

#include "common/embed_file.hpp"

#include <cstddef>

#if !defined(GREY_LEVEL0_CHECKSUM_SPIRV_PATH) || !defined(GREY_LEVEL0_FILL_COPY_SPIRV_PATH) || !defined(GREY_LEVEL0_QUANT_SPIRV_PATH) || \
    !defined(GREY_LEVEL0_QUANT_MSE_SPIRV_PATH) || !defined(GREY_LEVEL0_KV_SPIRV_PATH)
#error "GREY_LEVEL0_{CHECKSUM,FILL_COPY,QUANT,QUANT_MSE,KV}_SPIRV_PATH must name the SPIR-V built from kernels/opencl"
#endif

#define GREY_LEVEL0_EMBED(symbol, path) GREY_EMBED_FILE(symbol, path, "4")

GREY_LEVEL0_EMBED(grey_level0_checksum_spirv, GREY_LEVEL0_CHECKSUM_SPIRV_PATH)
GREY_LEVEL0_EMBED(grey_level0_fill_copy_spirv, GREY_LEVEL0_FILL_COPY_SPIRV_PATH)
GREY_LEVEL0_EMBED(grey_level0_quant_spirv, GREY_LEVEL0_QUANT_SPIRV_PATH)
GREY_LEVEL0_EMBED(grey_level0_quant_mse_spirv, GREY_LEVEL0_QUANT_MSE_SPIRV_PATH)
GREY_LEVEL0_EMBED(grey_level0_kv_spirv, GREY_LEVEL0_KV_SPIRV_PATH)

namespace grey::level0 {

std::span<const unsigned char> spirv_image(KernelModule module) {
    switch (module) {
        case KernelModule::checksum: return {grey_level0_checksum_spirv_begin, grey_level0_checksum_spirv_end};
        case KernelModule::fill_copy: return {grey_level0_fill_copy_spirv_begin, grey_level0_fill_copy_spirv_end};
        case KernelModule::quant: return {grey_level0_quant_spirv_begin, grey_level0_quant_spirv_end};
        case KernelModule::quant_mse: return {grey_level0_quant_mse_spirv_begin, grey_level0_quant_mse_spirv_end};
        case KernelModule::kv: return {grey_level0_kv_spirv_begin, grey_level0_kv_spirv_end};
    }
    return {};
}

const char* module_name(KernelModule module) {
    switch (module) {
        case KernelModule::checksum: return "grey_checksum.cl";
        case KernelModule::fill_copy: return "grey_fill_copy.cl";
        case KernelModule::quant: return "grey_quant.clcpp";
        case KernelModule::quant_mse: return "grey_quant_mse.clcpp";
        case KernelModule::kv: return "grey_kv.clcpp";
    }
    return "?";
}

const char* module_build_flags(KernelModule module) {
    // OpenCL lets float division be 2.5 ulp off unless the build asks for IEEE's; the KV quantization's
    // kv_group_params and kv_encoder divide, and must give the host's bits.
    return module == KernelModule::kv ? "-cl-fp32-correctly-rounded-divide-sqrt" : "";
}

}  // namespace grey::level0
