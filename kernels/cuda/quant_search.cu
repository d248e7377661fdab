// grey_quant_search: MSE calibration, one thread per parameter set. It runs the host's search
// (choose_codings and refine_int4 of backends/host/quant/quantizer.cpp) operation for operation, in the
// same order, over the same rules (common/quant_coding.hpp: the clipping grid, the INT4 refit), so that
// the sums in float64 and therefore every choice come out the same. grey_quant_encode (quant_global.cu)
// then writes the codes.
#include "quant_params.cuh"

namespace {

using grey::common::clip_alpha;
using grey::common::clip_steps;
using grey::common::squared_error;

// Sum over the runs of parameter set p of (x - decode(encode(x)))^2, each run summed from zero first.
__device__ double set_error(const grey_qk_args& a, uint64_t p, const Coding& c, const Tables& t) {
    double total = 0.0;
    for (uint64_t r = p; r < a.elements / a.run_length; r += a.param_count) {
        double run_error = 0.0;
        for (uint64_t i = r * a.run_length; i < (r + 1) * a.run_length; ++i) {
            const float x = load_element(a, i);
            run_error = __dadd_rn(run_error, squared_error(x, decode(a.format, decoding_of(c), encode(a.format, c, x, t), t)));
        }
        total = __dadd_rn(total, run_error);
    }
    return total;
}

// One INT4 group's refit (common/quant_coding.hpp's fit_int4), kept while it lowers the error.
__device__ Coding refine_int4(const grey_qk_args& a, uint64_t g, Coding best, double best_error, const Tables& t) {
    const uint64_t first = g * a.run_length, n_elements = a.run_length;
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
        double error = 0.0;
        for (uint64_t i = first; i < first + n_elements; ++i) {
            const float x = load_element(a, i);
            error = __dadd_rn(error, squared_error(x, decode(a.format, decoding_of(candidate), encode(a.format, candidate, x, t), t)));
        }
        if (!(error < best_error)) break;
        best = candidate;
        best_error = error;
    }
    return best;
}

}  // namespace

extern "C" __global__ void grey_quant_search(grey_qk_args a) {
    __shared__ Tables tables;
    build_tables(a.format, kEncodeTables | kDecodeTables, tables);
    Coding* codings = reinterpret_cast<Coding*>(a.codings);
    const uint64_t runs = a.elements / a.run_length;
    for (uint64_t p = global_thread(); p < a.param_count; p += grid_threads()) {
        Stats s{0.0f, INFINITY, -INFINITY, 0.0f};
        for (uint64_t r = p; r < runs; r += a.param_count) {
            const uint64_t first = r * a.run_length;
            float lo = INFINITY, hi = -INFINITY, m = 0.0f;
            for (uint64_t i = first; i < first + a.run_length; ++i) {
                const float v = load_element(a, i);
                note_if_not_finite(a, i, v);
                lo = v < lo ? v : lo;  // std::min / std::max keep the first of equal values
                hi = hi < v ? v : hi;
                m = fabsf(v) > m ? fabsf(v) : m;
            }
            if (stores_minimum(a.format)) {
                s.min = lo < s.min ? lo : s.min;
                s.max = s.max < hi ? hi : s.max;
            } else {
                s.absmax = s.absmax < m ? m : s.absmax;
                if (a.format == kQ4_0)
                    for (uint64_t i = first; i < first + a.run_length; ++i)
                        if (fabsf(load_element(a, i)) == m) {
                            s.peak = load_element(a, i);
                            break;
                        }
            }
        }
        Coding best = make_coding(a.format, s, 1.0f);
        double best_error = INFINITY;
        for (int i = 0; i <= clip_steps(a.format); ++i) {
            const Coding c = make_coding(a.format, s, clip_alpha(a.format, i));
            const double error = set_error(a, p, c, tables);
            if (error < best_error) {
                best_error = error;
                best = c;
            }
        }
        if (a.format == kInt4) best = refine_int4(a, p, best, best_error, tables);
        codings[p] = best;
        store_checked_params(a, p, best);
    }
}
