// Embeds the kernels' fatbin, built by nvcc from kernels/cuda/ at build time (GREY_CUDA_FATBIN_PATH),
// into the plugin's read-only data. .incbin keeps the bytes out of any generated source file, and the
// 64-byte alignment satisfies cuModuleLoadData's requirement for fatbin images.
#include "cuda/device_runtime.hpp"

#ifndef GREY_CUDA_FATBIN_PATH
#error "GREY_CUDA_FATBIN_PATH must name the fatbin built from kernels/cuda"
#endif

__asm__(".pushsection .rodata.grey_cuda_fatbin, \"a\"\n"
        ".balign 64\n"
        ".globl grey_cuda_fatbin_begin\n"
        ".hidden grey_cuda_fatbin_begin\n"
        "grey_cuda_fatbin_begin:\n"
        ".incbin \"" GREY_CUDA_FATBIN_PATH "\"\n"
        ".globl grey_cuda_fatbin_end\n"
        ".hidden grey_cuda_fatbin_end\n"
        "grey_cuda_fatbin_end:\n"
        ".popsection\n");

extern "C" const unsigned char grey_cuda_fatbin_begin[];
extern "C" const unsigned char grey_cuda_fatbin_end[];

namespace grey::cuda {

std::span<const unsigned char> kernel_fatbin() {
    return {grey_cuda_fatbin_begin, static_cast<size_t>(grey_cuda_fatbin_end - grey_cuda_fatbin_begin)};
}

}  // namespace grey::cuda
