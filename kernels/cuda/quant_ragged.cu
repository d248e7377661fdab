// Rows with a ragged last group (common/quant_layout.h, "Rows"): INT4, INT4_SYM and NF4 on a weight whose
// row (its first dimension's slice: a conv weight [out, in, kh, kw] as [out, in*kh*kw]) is not a whole
// number of groups. The backend sends only such layouts here (backends/cuda/quantizer.cpp); layouts whose
// rows are whole groups are the flat layout and keep the fast kernels. One thread takes a group: its
// statistics, its parameter set (round to nearest, or the MSE search of quant_search.cuh), its codes. A
// row's codes start on a byte and every group but a row's last holds an even count, so every group owns
// its bytes and no two threads write one byte.
#include "quant_reduce.cuh"
#include "quant_search.cuh"

namespace {

using grey::common::clip_alpha;
using grey::common::clip_steps;

// Group p: its first element, its element count and its first code byte.
struct RaggedGroup {
    uint64_t first;
    uint64_t length;
    uint64_t code_byte;
};

__device__ __forceinline__ RaggedGroup ragged_group(const grey_qk_args& a, const grey_qk_rows& rows, uint64_t p) {
    const uint64_t row = p / rows.groups_per_row;
    const uint64_t in_row = (p - row * rows.groups_per_row) * a.run_length;
    const uint64_t left = rows.row_length - in_row;
    return {row * rows.row_length + in_row, left < a.run_length ? left : a.run_length, row * rows.row_bytes + in_row / 2};
}

// Element i: its parameter set and its code.
struct RaggedElement {
    uint64_t set;
    uint32_t code;
};

__device__ __forceinline__ RaggedElement ragged_element(const grey_qk_args& a, const grey_qk_rows& rows, uint64_t i) {
    const uint64_t row = i / rows.row_length;
    const uint64_t in_row = i - row * rows.row_length;
    const uint32_t byte = reinterpret_cast<const unsigned char*>(a.quantized)[row * rows.row_bytes + in_row / 2];
    return {row * rows.groups_per_row + in_row / a.run_length, (in_row & 1u) ? byte >> 4 : byte & 0x0Fu};
}

}  // namespace

extern "C" __global__ void grey_quant_ragged(grey_qk_args a, grey_qk_rows rows) {
    __shared__ Tables tables;
    build_tables(a.format, kEncodeTables | kDecodeTables, tables);
    unsigned char* out = reinterpret_cast<unsigned char*>(a.quantized);
    for (uint64_t p = global_thread(); p < a.param_count; p += grid_threads()) {
        const RaggedGroup g = ragged_group(a, rows, p);
        float lo = INFINITY, hi = -INFINITY, m = 0.0f;
        for (uint64_t i = g.first; i < g.first + g.length; ++i) {
            const float v = load_element(a, i);
            note_if_not_finite(a, i, v);
            lo = v < lo ? v : lo;  // std::min / std::max keep the first of equal values
            hi = hi < v ? v : hi;
            m = fabsf(v) > m ? fabsf(v) : m;
        }
        Stats s{0.0f, INFINITY, -INFINITY, 0.0f};
        if (stores_minimum(a.format)) {
            s.min = lo;
            s.max = hi;
        } else {
            s.absmax = m;
        }
        Coding best = make_coding(a.format, s, 1.0f);
        if (rows.mse) {
            double best_error = INFINITY;
            for (int k = 0; k <= clip_steps(a.format); ++k) {
                const Coding c = make_coding(a.format, s, clip_alpha(a.format, k));
                const double error = run_error(a, g.first, g.length, c, tables);
                if (error < best_error) {
                    best_error = error;
                    best = c;
                }
            }
            if (a.format == kInt4) best = refine_int4(a, g.first, g.length, best, best_error, tables);
        }
        if (overflows(best)) flag_overflow(a, g.first);
        store_params(a, p, best);
        // Two codes a byte, low nibble first; a group of odd length leaves its last byte's high nibble 0.
        for (uint64_t k = 0; k < g.length; k += 2) {
            const uint32_t low = encode(a.format, best, load_element(a, g.first + k), tables) & 0x0Fu;
            const uint32_t high = k + 1 < g.length ? encode(a.format, best, load_element(a, g.first + k + 1), tables) & 0x0Fu : 0u;
            out[g.code_byte + k / 2] = static_cast<unsigned char>(low | (high << 4));
        }
    }
}

// An element a thread, grid-stride: ragged layouts are conv and odd-shaped weights, rarely large.
extern "C" __global__ void grey_dequant_ragged(grey_qk_args a, grey_qk_rows rows) {
    __shared__ Tables tables;
    build_tables(a.format, kDecodeTables, tables);
    for (uint64_t i = global_thread(); i < a.elements; i += grid_threads()) {
        const RaggedElement e = ragged_element(a, rows, i);
        store_element(a, i, decode(a.format, load_params(a, e.set), e.code, tables));
    }
}

// grey_quant_measure (quant_measure.cu) for ragged layouts: each element decoded as grey_dequant_ragged
// decodes it, the sums in float64, per warp with shuffles, then atomics. Every thread reaches the
// shuffles: launch whole warps.
extern "C" __global__ void __launch_bounds__(256) grey_measure_ragged(grey_qk_args a, grey_qk_rows rows, grey_qk_error* out) {
    __shared__ Tables tables;
    build_tables(a.format, kDecodeTables, tables);
    double signal = 0.0, error = 0.0, largest = 0.0;
    for (uint64_t i = global_thread(); i < a.elements; i += grid_threads()) {
        const RaggedElement e = ragged_element(a, rows, i);
        const float y = decode(a.format, load_params(a, e.set), e.code, tables);
        const double x = static_cast<double>(load_element(a, i));
        const double d = __dsub_rn(x, static_cast<double>(y));
        signal = __dadd_rn(signal, __dmul_rn(x, x));
        error = __dadd_rn(error, __dmul_rn(d, d));
        largest = fmax(largest, fabs(d));
    }
    add_error_sums(out, signal, error, largest);
}
