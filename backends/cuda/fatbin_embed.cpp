// Embeds the kernels' fatbins, built by nvcc from kernels/cuda/ at build time (GREY_CUDA_FATBIN_PATH,
// GREY_CUDA_QUANT_FATBIN_PATH), into the plugin's read-only data. .incbin keeps the bytes out of any
// generated source file, and the 64-byte alignment satisfies cuModuleLoadData's requirement for fatbin
// images.
#include "cuda/device_runtime.hpp"

#if !defined(GREY_CUDA_FATBIN_PATH) || !defined(GREY_CUDA_QUANT_FATBIN_PATH)
#error "GREY_CUDA_FATBIN_PATH and GREY_CUDA_QUANT_FATBIN_PATH must name the fatbins built from kernels/cuda"
#endif

#define GREY_EMBED_FATBIN(symbol, path)                   \
    __asm__(".pushsection .rodata." #symbol ", \"a\"\n"  \
            ".balign 64\n"                                \
            ".globl " #symbol "_begin\n"                  \
            ".hidden " #symbol "_begin\n" #symbol         \
            "_begin:\n"                                   \
            ".incbin \"" path "\"\n"                      \
            ".globl " #symbol "_end\n"                    \
            ".hidden " #symbol "_end\n" #symbol           \
            "_end:\n"                                     \
            ".popsection\n");                             \
    extern "C" const unsigned char symbol##_begin[];      \
    extern "C" const unsigned char symbol##_end[];

GREY_EMBED_FATBIN(grey_cuda_fatbin, GREY_CUDA_FATBIN_PATH)
GREY_EMBED_FATBIN(grey_cuda_quant_fatbin, GREY_CUDA_QUANT_FATBIN_PATH)

namespace grey::cuda {

std::span<const unsigned char> kernel_fatbin() {
    return {grey_cuda_fatbin_begin, static_cast<size_t>(grey_cuda_fatbin_end - grey_cuda_fatbin_begin)};
}

std::span<const unsigned char> quant_kernel_fatbin() {
    return {grey_cuda_quant_fatbin_begin, static_cast<size_t>(grey_cuda_quant_fatbin_end - grey_cuda_quant_fatbin_begin)};
}

}  // namespace grey::cuda
