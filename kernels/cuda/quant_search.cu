// grey_quant_search: MSE calibration, one thread per parameter set. It runs the host's search
// (choose_codings and refine_int4 of backends/host/quant/quantizer.cpp) operation for operation, in the
// same order, over the same rules (common/quant_coding.hpp: the clipping grid, the INT4 refit), so that
// the sums in float64 and therefore every choice come out the same. grey_quant_encode (quant_global.cu)
// then writes the codes.
#include "quant_search.cuh"

namespace {

using grey::common::clip_alpha;
using grey::common::clip_steps;

// Sum over the runs of parameter set p of (x - decode(encode(x)))^2, each run summed from zero first.
__device__ double set_error(const grey_qk_args& a, uint64_t p, const Coding& c, const Tables& t) {
    double total = 0.0;
    for (uint64_t r = p; r < a.elements / a.run_length; r += a.param_count)
        total = __dadd_rn(total, run_error(a, r * a.run_length, a.run_length, c, t));
    return total;
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
        if (a.format == kInt4) best = refine_int4(a, p * a.run_length, a.run_length, best, best_error, tables);
        codings[p] = best;
        store_checked_params(a, p, best);
    }
}
