// grey_quant_measure: the quantization error measured where the data is, so that neither tensor crosses
// to the host for the report. Every element is decoded exactly as grey_dequant decodes it (the same
// load_codes4, load_params and decode) and compared with its plain reference in float64
// (common/quant_error.hpp's sums). Each thread sums its elements, each warp its threads with shuffles,
// and warps add into the job's grey_qk_error with double atomics: the order of the sums is not fixed,
// so they may differ from the host's in the last bits (within the bound quant_error.hpp states), while
// the maximum is exact.
#include "quant_codes.cuh"
#include "quant_position.cuh"
#include "quant_reduce.cuh"

namespace {

template <int kFormat, int kDtype>
__device__ __forceinline__ void measure_loop(grey_qk_args a, grey_qk_error* out, const Tables& tables) {
    a.format = kFormat;
    a.dtype = kDtype;
    double signal = 0.0, error = 0.0, largest = 0.0;
    const uint64_t chunks = (a.elements + 3) / 4;
    for (uint64_t chunk = global_thread(); chunk < chunks; chunk += grid_threads()) {
        const uint64_t first = 4 * chunk;
        const uint64_t count = a.elements - first < 4 ? a.elements - first : 4;
        uint32_t codes[4];
        load_codes4(a, first, count, codes);
        Position at = locate(a, first);
#pragma unroll
        for (int k = 0; k < 4; ++k)
            if (k < count) {
                const float y = decode(kFormat, load_params(a, at.set), codes[k], tables);
                const double x = static_cast<double>(load_element(a, first + k));
                const double e = __dsub_rn(x, static_cast<double>(y));
                signal = __dadd_rn(signal, __dmul_rn(x, x));
                error = __dadd_rn(error, __dmul_rn(e, e));
                largest = fmax(largest, fabs(e));
                advance(a, at);
            }
    }
    add_error_sums(out, signal, error, largest);
}

}  // namespace

// Every thread of every block reaches the shuffles: launch whole warps (the backend uses 256 threads).
extern "C" __global__ void __launch_bounds__(256) grey_quant_measure(grey_qk_args a, grey_qk_error* out) {
    __shared__ Tables tables;
    build_tables(a.format, kDecodeTables, tables);
    with_dtype(a.dtype, [&]<int kDtype>() { with_format(a.format, [&]<int kFormat>() { measure_loop<kFormat, kDtype>(a, out, tables); }); });
}
