// Embeds the kernels' fatbins, built by nvcc from kernels/cuda/ at build time (GREY_CUDA_FATBIN_PATH and
// one GREY_CUDA_QUANT_<family>_FATBIN_PATH per quantization family), into the plugin's read-only data. .incbin keeps the bytes out of any
// generated source file, and the 64-byte alignment satisfies cuModuleLoadData's requirement for fatbin
// images.
#include "cuda/device_runtime.hpp"

#include "common/embed_file.hpp"

#if !defined(GREY_CUDA_FATBIN_PATH) || !defined(GREY_CUDA_QUANT_blocks_FATBIN_PATH)
#error "GREY_CUDA_FATBIN_PATH and GREY_CUDA_QUANT_<family>_FATBIN_PATH must name the fatbins built from kernels/cuda"
#endif

#define GREY_EMBED_FATBIN(symbol, path) GREY_EMBED_FILE(symbol, path, "64")

GREY_EMBED_FATBIN(grey_cuda_fatbin, GREY_CUDA_FATBIN_PATH)
GREY_EMBED_FATBIN(grey_cuda_quant_blocks_fatbin, GREY_CUDA_QUANT_blocks_FATBIN_PATH)
GREY_EMBED_FATBIN(grey_cuda_quant_q8_0_fatbin, GREY_CUDA_QUANT_q8_0_FATBIN_PATH)
GREY_EMBED_FATBIN(grey_cuda_quant_grouped_fatbin, GREY_CUDA_QUANT_grouped_FATBIN_PATH)
GREY_EMBED_FATBIN(grey_cuda_quant_rows_fatbin, GREY_CUDA_QUANT_rows_FATBIN_PATH)
GREY_EMBED_FATBIN(grey_cuda_quant_global_fatbin, GREY_CUDA_QUANT_global_FATBIN_PATH)
GREY_EMBED_FATBIN(grey_cuda_quant_search_fatbin, GREY_CUDA_QUANT_search_FATBIN_PATH)
GREY_EMBED_FATBIN(grey_cuda_quant_dequantize_fatbin, GREY_CUDA_QUANT_dequantize_FATBIN_PATH)
GREY_EMBED_FATBIN(grey_cuda_quant_measure_fatbin, GREY_CUDA_QUANT_measure_FATBIN_PATH)
GREY_EMBED_FATBIN(grey_cuda_quant_ragged_fatbin, GREY_CUDA_QUANT_ragged_FATBIN_PATH)
GREY_EMBED_FATBIN(grey_cuda_kv_fatbin, GREY_CUDA_KV_FATBIN_PATH)
GREY_EMBED_FATBIN(grey_cuda_codec_fatbin, GREY_CUDA_CODEC_FATBIN_PATH)

namespace grey::cuda {

std::span<const unsigned char> kernel_fatbin() {
    return {grey_cuda_fatbin_begin, static_cast<size_t>(grey_cuda_fatbin_end - grey_cuda_fatbin_begin)};
}

std::span<const unsigned char> kv_kernel_fatbin() {
    return {grey_cuda_kv_fatbin_begin, static_cast<size_t>(grey_cuda_kv_fatbin_end - grey_cuda_kv_fatbin_begin)};
}

std::span<const unsigned char> codec_kernel_fatbin() {
    return {grey_cuda_codec_fatbin_begin, static_cast<size_t>(grey_cuda_codec_fatbin_end - grey_cuda_codec_fatbin_begin)};
}

namespace {
std::span<const unsigned char> span_of(const unsigned char* begin, const unsigned char* end) {
    return {begin, static_cast<size_t>(end - begin)};
}
}  // namespace

std::span<const unsigned char> quant_kernel_fatbin(QuantFamily family) {
    switch (family) {
        case QuantFamily::blocks: return span_of(grey_cuda_quant_blocks_fatbin_begin, grey_cuda_quant_blocks_fatbin_end);
        case QuantFamily::q8_0: return span_of(grey_cuda_quant_q8_0_fatbin_begin, grey_cuda_quant_q8_0_fatbin_end);
        case QuantFamily::grouped: return span_of(grey_cuda_quant_grouped_fatbin_begin, grey_cuda_quant_grouped_fatbin_end);
        case QuantFamily::rows: return span_of(grey_cuda_quant_rows_fatbin_begin, grey_cuda_quant_rows_fatbin_end);
        case QuantFamily::global: return span_of(grey_cuda_quant_global_fatbin_begin, grey_cuda_quant_global_fatbin_end);
        case QuantFamily::search: return span_of(grey_cuda_quant_search_fatbin_begin, grey_cuda_quant_search_fatbin_end);
        case QuantFamily::dequantize: return span_of(grey_cuda_quant_dequantize_fatbin_begin, grey_cuda_quant_dequantize_fatbin_end);
        case QuantFamily::ragged: return span_of(grey_cuda_quant_ragged_fatbin_begin, grey_cuda_quant_ragged_fatbin_end);
        case QuantFamily::measure: break;
    }
    return span_of(grey_cuda_quant_measure_fatbin_begin, grey_cuda_quant_measure_fatbin_end);
}

}  // namespace grey::cuda
