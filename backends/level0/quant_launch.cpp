#include "level0/quant_launch.hpp"

#include "common/numeric.hpp"
#include "common/quant_text.hpp"
#include "level0/launch_shape.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace grey::level0 {

namespace gc = grey::common;

void check_supported(const grey_quant_layout& layout, grey_dtype plain_dtype) {
    if ((layout.required_features & ~GREY_QUANT_LAYOUT_REQUIRES_KNOWN) != 0)
        throw std::domain_error("the quantized layout requires features 0x" + std::to_string(layout.required_features) +
                                " that this backend does not know");
    if (gc::format_name(layout.format) == nullptr)
        throw std::domain_error("quantization format " + std::to_string(layout.format) + " is not one this backend knows");
    if (layout.calibration != GREY_CALIBRATION_RTN && layout.calibration != GREY_CALIBRATION_MSE)
        throw std::domain_error("calibration " + std::to_string(layout.calibration) + " is not one this backend knows");
    if (plain_dtype != GREY_DTYPE_F32 && plain_dtype != GREY_DTYPE_F16 && plain_dtype != GREY_DTYPE_BF16)
        throw std::invalid_argument("the plain tensor's dtype must be F32, F16 or BF16");
}

grey_ql0_args quant_args(const grey_quant_layout& layout, grey_dtype plain_dtype, uint64_t plain_offset, uint64_t quantized_offset) {
    grey_ql0_args a{};
    a.layout = layout;
    a.plain_offset = plain_offset;
    a.quantized_offset = quantized_offset;
    a.piece = kQuantPiece;
    a.pieces_per_run = std::max<uint64_t>(1, (layout.run_length + kQuantPiece - 1) / kQuantPiece);
    a.dtype = plain_dtype == GREY_DTYPE_F16 ? GREY_QL0_F16 : plain_dtype == GREY_DTYPE_BF16 ? GREY_QL0_BF16 : GREY_QL0_F32;
    return a;
}

uint64_t stats_items(const grey_ql0_args& args) { return grey_quant_layout_runs(&args.layout) * args.pieces_per_run; }

uint64_t encode_items(const grey_quant_layout& layout) {
    if (gc::is_ggml(layout.format)) return layout.param_count;
    if (gc::is_four_bit(layout.format)) return layout.codes_bytes;
    return layout.elements;
}

uint64_t decode_items(const grey_quant_layout& layout) { return layout.elements; }

uint32_t quant_group_count(uint64_t items) { return group_count(items, kQuantGroupSize, kQuantMaxGroups); }

namespace {

// The planar formats' parameter arrays, bytes codes_bytes .. bytes of the quantized tensor (empty for the
// ggml formats, whose blocks carry theirs).
std::vector<std::byte> parameter_bytes(const grey_quant_layout& layout, std::span<const gc::Coding> codings) {
    std::vector<std::byte> out(layout.bytes - layout.codes_bytes);
    const auto put = [&](uint64_t at, const void* value, std::size_t size) { std::memcpy(out.data() + at, value, size); };
    for (uint64_t p = 0; p < layout.param_count; ++p) {
        const gc::Coding& c = codings[p];
        const auto scale16 = static_cast<uint16_t>(c.scale16), min16 = static_cast<uint16_t>(c.min16);
        switch (layout.format) {
            case GREY_QUANT_INT8: case GREY_QUANT_INT8_TOKEN: case GREY_QUANT_FP8_E4M3: case GREY_QUANT_FP8_E5M2: case GREY_QUANT_NF4:
                put(4 * p, &c.scale, 4);
                break;
            case GREY_QUANT_INT4_SYM: put(2 * p, &scale16, 2); break;
            case GREY_QUANT_INT4:
                put(2 * p, &scale16, 2);
                put(2 * layout.param_count + 2 * p, &min16, 2);
                break;
            default: break;  // ggml blocks carry their parameters inline
        }
    }
    return out;
}

// The parameter sets' statistics from the statistics kernel's findings. Set p's are combined over its
// runs p, p + param_count, ..., each run's pieces in order: the same std::min and std::max chain the
// host's scan applies, so equal values (-0 and +0) resolve alike. The lowest non-finite element throws,
// as the host backend refuses it before it looks at any group.
std::vector<gc::Stats> combine(const grey_ql0_args& args, std::span<const grey_ql0_stats> stats) {
    const grey_quant_layout& layout = args.layout;
    if (stats.size() != stats_items(args)) throw std::logic_error("the statistics kernel's findings do not match the job");
    const grey_ql0_stats* bad = nullptr;
    for (const grey_ql0_stats& s : stats)
        if (s.first_bad != ~uint64_t{0} && (bad == nullptr || s.first_bad < bad->first_bad)) bad = &s;
    if (bad != nullptr) throw std::invalid_argument(gc::non_finite_message(bad->first_bad, bad->first_bad_nan != 0));
    const uint64_t runs = grey_quant_layout_runs(&layout);
    std::vector<gc::Stats> sets(layout.param_count, gc::Stats{0.0f, INFINITY, -INFINITY, 0.0f});
    for (uint64_t p = 0; p < layout.param_count; ++p) {
        gc::Stats& s = sets[p];
        for (uint64_t r = p; r < runs; r += layout.param_count)
            for (uint64_t k = 0; k < args.pieces_per_run; ++k) {
                const grey_ql0_stats& piece = stats[r * args.pieces_per_run + k];
                s.absmax = std::max(s.absmax, piece.absmax);
                s.min = std::min(s.min, piece.min);
                s.max = std::max(s.max, piece.max);
                if (k == 0) s.peak = piece.peak;  // Q4_0: a block is one run of one piece
            }
    }
    return sets;
}

// The squared error of every set at `step` of the search, its runs added in order.
std::vector<double> set_errors(const grey_quant_layout& layout, std::span<const double> run_errors, uint32_t steps, uint32_t step) {
    std::vector<double> errors(layout.param_count, 0.0);
    const uint64_t runs = grey_quant_layout_runs(&layout);
    for (uint64_t r = 0; r < runs; ++r) errors[r % layout.param_count] += run_errors[r * steps + step];
    return errors;
}

// MSE calibration, as the host backend's choose_codings: the clipping fraction with the least squared
// error for each set (the largest range on ties), then for INT4 the least-squares refit of scale and
// min, kept while it helps. `best` comes in as the round-to-nearest choice.
std::vector<gc::Coding> calibrate(QuantKernels& kernels, const grey_ql0_args& args, const std::vector<gc::Stats>& stats,
                                  std::vector<gc::Coding> best) {
    const grey_quant_layout& layout = args.layout;
    const uint64_t sets = layout.param_count;
    const auto steps = static_cast<uint32_t>(gc::clip_steps(layout.format) + 1);
    std::vector<gc::Coding> tried(sets * steps);
    for (uint32_t step = 0; step < steps; ++step)
        for (uint64_t p = 0; p < sets; ++p)
            tried[step * sets + p] = gc::make_coding(layout.format, stats[p], gc::clip_alpha(layout.format, static_cast<int>(step)));
    const std::vector<double> run_errors = kernels.search(args, tried, steps);
    std::vector<double> best_error(sets, std::numeric_limits<double>::infinity());
    for (uint32_t step = 0; step < steps; ++step) {
        const std::vector<double> errors = set_errors(layout, run_errors, steps, step);
        for (uint64_t p = 0; p < sets; ++p)
            if (errors[p] < best_error[p]) {
                best_error[p] = errors[p];
                best[p] = tried[step * sets + p];
            }
    }
    if (layout.format != GREY_QUANT_INT4) return best;
    // INT4 is grouped: run p is set p. A set stops at its first refit that does not help.
    std::vector<char> refitting(sets, 1);
    for (int iteration = 0; iteration < gc::kInt4RefitIterations; ++iteration) {
        const std::vector<double> sums = kernels.refit_sums(args, best);
        std::vector<gc::Coding> candidates = best;
        bool any = false;
        for (uint64_t p = 0; p < sets; ++p) {
            if (!refitting[p]) continue;
            const auto n = static_cast<double>(grey_quant_layout_run_length(&layout, p));
            const double sq = sums[4 * p], sx = sums[4 * p + 1], sqq = sums[4 * p + 2], sqx = sums[4 * p + 3];
            const double denominator = gc::int4_fit_denominator(n, sq, sqq);
            if (denominator <= 0.0) {  // every code equal: nothing to fit
                refitting[p] = 0;
                continue;
            }
            candidates[p] = gc::fit_int4(n, sq, sx, sqx, denominator);
            any = true;
        }
        if (!any) break;
        const std::vector<double> errors = kernels.search(args, candidates, 1);
        for (uint64_t p = 0; p < sets; ++p) {
            if (!refitting[p]) continue;
            if (!(errors[p] < best_error[p])) {
                refitting[p] = 0;
                continue;
            }
            best[p] = candidates[p];
            best_error[p] = errors[p];
        }
    }
    return best;
}

}  // namespace

void quantize(QuantKernels& kernels, const grey_ql0_args& args) {
    const grey_quant_layout& layout = args.layout;
    const std::vector<gc::Stats> stats = combine(args, kernels.statistics(args));
    std::vector<gc::Coding> codings(layout.param_count);
    for (uint64_t p = 0; p < layout.param_count; ++p) codings[p] = gc::make_coding(layout.format, stats[p], 1.0f);
    if (layout.calibration == GREY_CALIBRATION_MSE) codings = calibrate(kernels, args, stats, std::move(codings));
    for (uint64_t p = 0; p < layout.param_count; ++p)
        if (gc::overflows(codings[p]))  // the fp16 formats are grouped: set p is run p
            throw std::invalid_argument(gc::f16_overflow_message(layout.format, grey_quant_layout_run_first(&layout, p),
                                                                 grey_quant_layout_run_length(&layout, p)));
    kernels.encode(args, codings, parameter_bytes(layout, codings));
}

}  // namespace grey::level0
