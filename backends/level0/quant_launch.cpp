#include "level0/quant_launch.hpp"

#include "common/numeric.hpp"
#include "common/quant_text.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
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
    if (layout.calibration == GREY_CALIBRATION_MSE)
        throw std::domain_error(std::string("MSE calibration is not implemented by the Level Zero kernels (format ") +
                                gc::format_name(layout.format) + "); round-to-nearest is");
    if (layout.calibration != GREY_CALIBRATION_RTN)
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

uint32_t quant_group_count(uint64_t items) {
    return static_cast<uint32_t>(std::clamp<uint64_t>((items + kQuantGroupSize - 1) / kQuantGroupSize, 1, kQuantMaxGroups));
}

std::vector<gc::Coding> choose_codings(const grey_ql0_args& args, std::span<const grey_ql0_stats> stats) {
    const grey_quant_layout& layout = args.layout;
    if (stats.size() != stats_items(args)) throw std::logic_error("the statistics kernel's findings do not match the job");
    // The host backend refuses the lowest non-finite element before it looks at any group.
    const grey_ql0_stats* bad = nullptr;
    for (const grey_ql0_stats& s : stats)
        if (s.first_bad != ~uint64_t{0} && (bad == nullptr || s.first_bad < bad->first_bad)) bad = &s;
    if (bad != nullptr) throw std::invalid_argument(gc::non_finite_message(bad->first_bad, bad->first_bad_nan != 0));

    // Set p's statistics over its runs p, p + param_count, ..., each run's pieces in order: the same
    // std::min and std::max chain the host's scan applies, so equal values (-0 and +0) resolve alike.
    const uint64_t runs = grey_quant_layout_runs(&layout);
    std::vector<gc::Coding> codings(layout.param_count);
    for (uint64_t p = 0; p < layout.param_count; ++p) {
        gc::Stats s{0.0f, INFINITY, -INFINITY, 0.0f};
        for (uint64_t r = p; r < runs; r += layout.param_count)
            for (uint64_t k = 0; k < args.pieces_per_run; ++k) {
                const grey_ql0_stats& piece = stats[r * args.pieces_per_run + k];
                s.absmax = std::max(s.absmax, piece.absmax);
                s.min = std::min(s.min, piece.min);
                s.max = std::max(s.max, piece.max);
                if (k == 0) s.peak = piece.peak;  // Q4_0: a block is one run of one piece
            }
        codings[p] = gc::make_coding(layout.format, s, 1.0f);
        if (gc::overflows(codings[p]))  // the fp16 formats are grouped: set p is run p
            throw std::invalid_argument(gc::f16_overflow_message(layout.format, grey_quant_layout_run_first(&layout, p),
                                                                 grey_quant_layout_run_length(&layout, p)));
    }
    return codings;
}

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

}  // namespace grey::level0
