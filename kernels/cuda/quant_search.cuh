// The MSE search's sums over one run of elements, shared by grey_quant_search (quant_search.cu) and the
// ragged rows (quant_ragged.cu). They follow the host's choose_codings and refine_int4
// (backends/host/quant/quantizer.cpp) operation for operation, in the same order, over the same rules
// (common/quant_coding.hpp), so that the float64 sums and therefore every choice come out the same.
#pragma once

#include "quant_params.cuh"

namespace {

using grey::common::squared_error;

// Sum over elements first .. first + length - 1 of (x - decode(encode(x)))^2, from zero.
__device__ __forceinline__ double run_error(const grey_qk_args& a, uint64_t first, uint64_t length, const Coding& c, const Tables& t) {
    double error = 0.0;
    for (uint64_t i = first; i < first + length; ++i) {
        const float x = load_element(a, i);
        error = __dadd_rn(error, squared_error(x, decode(a.format, decoding_of(c), encode(a.format, c, x, t), t)));
    }
    return error;
}

// One INT4 group's refit (common/quant_coding.hpp's fit_int4), kept while it lowers the error; the group
// is elements first .. first + n_elements - 1.
__device__ Coding refine_int4(const grey_qk_args& a, uint64_t first, uint64_t n_elements, Coding best, double best_error, const Tables& t) {
    for (int iteration = 0; iteration < grey::common::kInt4RefitIterations; ++iteration) {
        double sq = 0, sx = 0, sqq = 0, sqx = 0;
        for (uint64_t i = first; i < first + n_elements; ++i) {
            const float x = load_element(a, i);
            const double q = static_cast<double>(static_cast<int32_t>(encode(a.format, best, x, t)));
            sq = __dadd_rn(sq, q);
            sx = __dadd_rn(sx, static_cast<double>(x));
            sqq = __dadd_rn(sqq, __dmul_rn(q, q));
            sqx = __dadd_rn(sqx, __dmul_rn(q, static_cast<double>(x)));
        }
        const double n = static_cast<double>(n_elements);
        const double denominator = grey::common::int4_fit_denominator(n, sq, sqq);
        if (denominator <= 0.0) break;  // every code equal: nothing to fit
        const Coding candidate = grey::common::fit_int4(n, sq, sx, sqx, denominator);
        const double error = run_error(a, first, n_elements, candidate, t);
        if (!(error < best_error)) break;
        best = candidate;
        best_error = error;
    }
    return best;
}

}  // namespace
