// Embeds the SPIR-V built from kernels/opencl (GREY_LEVEL0_CHECKSUM_SPIRV_PATH) into the plugin's
// read-only data with .incbin, so no generated source file holds the bytes. SPIR-V is a stream of
// 32-bit words: 4-byte alignment.
#include "level0/kernel_images.hpp"

#include <cstddef>

#ifndef GREY_LEVEL0_CHECKSUM_SPIRV_PATH
#error "GREY_LEVEL0_CHECKSUM_SPIRV_PATH must name the SPIR-V built from kernels/opencl/grey_checksum.cl"
#endif

__asm__(".pushsection .rodata.grey_level0_checksum_spirv, \"a\"\n"
        ".balign 4\n"
        ".globl grey_level0_checksum_spirv_begin\n"
        ".hidden grey_level0_checksum_spirv_begin\n"
        "grey_level0_checksum_spirv_begin:\n"
        ".incbin \"" GREY_LEVEL0_CHECKSUM_SPIRV_PATH "\"\n"
        ".globl grey_level0_checksum_spirv_end\n"
        ".hidden grey_level0_checksum_spirv_end\n"
        "grey_level0_checksum_spirv_end:\n"
        ".popsection\n");
extern "C" const unsigned char grey_level0_checksum_spirv_begin[];
extern "C" const unsigned char grey_level0_checksum_spirv_end[];

namespace grey::level0 {

std::span<const unsigned char> checksum_spirv() {
    return {grey_level0_checksum_spirv_begin, static_cast<size_t>(grey_level0_checksum_spirv_end - grey_level0_checksum_spirv_begin)};
}

}  // namespace grey::level0
