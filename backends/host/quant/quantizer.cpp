#include "host/quant/quantizer.hpp"

#include "common/numeric.hpp"
#include "common/quant_coding.hpp"
#include "common/quant_text.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>

namespace grey::host::quant {
namespace {

using grey::common::Coding;
using grey::common::Stats;
using Plan = grey_quant_layout;
namespace gc = grey::common;

EncodeSpec encode_spec(grey_quant_format format, const Coding& c) {
    return {c.e_sub, c.e_mul, c.e_add, gc::truncates(format) ? Rounding::truncate : Rounding::nearest_away, c.lo, c.hi};
}
DecodeSpec decode_spec(const Coding& c) { return {c.d_sub, c.d_mul, c.d_add}; }

std::array<float, 256> fp8_table(grey_quant_format f) {
    std::array<float, 256> table{};
    for (uint32_t c = 0; c < 256; ++c) table[c] = gc::fp8_to_f32(c, f);
    return table;
}

const std::array<float, 256>& fp8_values(grey_quant_format f) {
    static const std::array<float, 256> e4m3 = fp8_table(GREY_QUANT_FP8_E4M3);
    static const std::array<float, 256> e5m2 = fp8_table(GREY_QUANT_FP8_E5M2);
    return f == GREY_QUANT_FP8_E4M3 ? e4m3 : e5m2;
}

// Where run r lies: its elements, and for the planar 4-bit formats its first code byte. Without rows run
// r is elements r * run_length on; with rows (common/quant_layout.h) group g of row `row`, the row's
// last group holding what is left of it, every row's codes starting on a byte.
struct Run {
    uint64_t first;
    uint64_t length;
    uint64_t code_byte;
};

Run run_at(const Plan& plan, uint64_t r) {
    if (!grey_quant_layout_has_rows(&plan)) return {r * plan.run_length, plan.run_length, r * plan.run_length / 2};
    const uint64_t groups = grey_quant_layout_groups_per_row(&plan);
    const uint64_t row = r / groups, in_row = (r % groups) * plan.run_length;
    return {row * plan.row_length + in_row, std::min(plan.run_length, plan.row_length - in_row), row * grey_quant_layout_row_bytes(&plan) + in_row / 2};
}

// The run holding element e, and e's place in it.
struct Place {
    uint64_t run;
    uint64_t offset;
};

Place place_of(const Plan& plan, uint64_t e) {
    if (!grey_quant_layout_has_rows(&plan)) return {e / plan.run_length, e % plan.run_length};
    const uint64_t row = e / plan.row_length, in_row = e % plan.row_length;
    return {row * grey_quant_layout_groups_per_row(&plan) + in_row / plan.run_length, in_row % plan.run_length};
}

void encode_run(grey_quant_format format, const Coding& c, std::span<const float> x, int8_t* codes, const Kernels& k) {
    if (gc::is_fp8(format)) {
        k.encode_fp8(x.data(), x.size(), gc::inverse(c.scale), format, codes);
    } else if (format == GREY_QUANT_NF4) {
        k.encode_nf4(x.data(), x.size(), gc::inverse(c.scale), codes);
    } else {
        k.encode(x.data(), x.size(), encode_spec(format, c), codes);
    }
}

// `streaming`: the kernel set's streaming decoders (the same bits), or nullptr for its own.
[[gnu::always_inline]] inline void decode_run(grey_quant_format format, const Coding& c, const int8_t* codes, std::span<float> y, const Kernels& k,
                                              const StreamingKernels* streaming = nullptr) {
    const auto* unsigned_codes = reinterpret_cast<const uint8_t*>(codes);
    if (gc::is_fp8(format))
        (streaming ? streaming->decode_fp8 : k.decode_fp8)(unsigned_codes, y.size(), fp8_values(format).data(), format, c.scale, y.data());
    else if (format == GREY_QUANT_NF4)
        (streaming ? streaming->decode_table16 : k.decode_table16)(unsigned_codes, y.size(), gc::kNf4Levels, c.scale, y.data());
    else
        (streaming ? streaming->decode : k.decode)(codes, y.size(), decode_spec(c), y.data());
}

// Parameter sets [p0, p1), each visited over its runs in the order the single-threaded loop meets
// them: run r = cycle * param_count + p, cycle by cycle (one cycle when every run has its own set).
template <typename Visit>
void for_runs_of_sets(const Plan& plan, uint64_t p0, uint64_t p1, const Visit& visit) {
    const uint64_t runs = grey_quant_layout_runs(&plan);
    for (uint64_t cycle = 0; cycle < runs; cycle += plan.param_count)
        for (uint64_t p = p0; p < p1 && cycle + p < runs; ++p) visit(p, cycle + p);
}

// Parameter sets to a chunk of about parallel.chunk_elements() elements.
uint64_t sets_per_chunk(const Plan& plan, const Parallel& parallel) {
    const uint64_t per_set = std::max<uint64_t>(1, plan.elements / plan.param_count);
    return std::max<uint64_t>(1, parallel.chunk_elements() / per_set);
}

void add_stats(grey_quant_format format, const float* run, uint64_t length, Stats& s, const Kernels& k) {
    if (gc::stores_minimum(format)) {
        float lo = 0.0f, hi = 0.0f;
        k.minmax(run, length, &lo, &hi);
        s.min = std::min(s.min, lo);
        s.max = std::max(s.max, hi);
    } else {
        const float m = k.absmax(run, length);
        s.absmax = std::max(s.absmax, m);
        if (format == GREY_QUANT_Q4_0)  // groups of 32: one run per set
            s.peak = *std::find_if(run, run + length, [m](float v) { return std::fabs(v) == m; });
    }
}

constexpr Stats kNoStats{0.0f, INFINITY, -INFINITY, 0.0f};

std::vector<Stats> gather_stats(const Plan& plan, std::span<const float> x, const Kernels& k, const Parallel& parallel) {
    std::vector<Stats> stats(plan.param_count, kNoStats);
    if (grey_quant_layout_runs(&plan) == 1 && plan.format != GREY_QUANT_Q4_0) {
        // One run (a per-tensor scale): pieces in parallel, combined in order. The minimum and maximum
        // are exact whatever the split, and a sequential scan keeps the first of two equal zeros, which
        // combining the pieces in order keeps too.
        const uint64_t piece = parallel.chunk_elements();
        std::vector<Stats> pieces((plan.elements + piece - 1) / piece, kNoStats);
        parallel.for_chunks(plan.elements, piece, [&](uint64_t begin, uint64_t end) {
            add_stats(plan.format, x.data() + begin, end - begin, pieces[begin / piece], k);
        });
        for (const Stats& p : pieces) {
            stats[0].min = std::min(stats[0].min, p.min);
            stats[0].max = std::max(stats[0].max, p.max);
            stats[0].absmax = std::max(stats[0].absmax, p.absmax);
        }
        return stats;
    }
    parallel.for_chunks(plan.param_count, sets_per_chunk(plan, parallel), [&](uint64_t p0, uint64_t p1) {
        for_runs_of_sets(plan, p0, p1, [&](uint64_t p, uint64_t r) {
            const Run at = run_at(plan, r);
            add_stats(plan.format, x.data() + at.first, at.length, stats[p], k);
        });
    });
    return stats;
}

double squared_error(std::span<const float> x, std::span<const float> y) {
    double sum = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) sum += gc::squared_error(x[i], y[i]);
    return sum;
}

// For one INT4 group whose codes are fixed, refit scale and min (gc::fit_int4), re-encode, and keep
// going while it helps.
Coding refine_int4(std::span<const float> x, Coding best, double best_error, const Kernels& k) {
    std::vector<int8_t> codes(x.size());
    std::vector<float> decoded(x.size());
    for (int iteration = 0; iteration < gc::kInt4RefitIterations; ++iteration) {
        k.encode(x.data(), x.size(), encode_spec(GREY_QUANT_INT4, best), codes.data());
        double sq = 0, sx = 0, sqq = 0, sqx = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            sq += codes[i];
            sx += x[i];
            sqq += static_cast<double>(codes[i]) * codes[i];
            sqx += static_cast<double>(codes[i]) * x[i];
        }
        const double n = static_cast<double>(x.size());
        const double denominator = gc::int4_fit_denominator(n, sq, sqq);
        if (denominator <= 0.0) break;  // every code equal: nothing to fit
        const Coding candidate = gc::fit_int4(n, sq, sx, sqx, denominator);
        k.encode(x.data(), x.size(), encode_spec(GREY_QUANT_INT4, candidate), codes.data());
        k.decode(codes.data(), x.size(), decode_spec(candidate), decoded.data());
        const double error = squared_error(x, decoded);
        if (!(error < best_error)) break;
        best = candidate;
        best_error = error;
    }
    return best;
}

// One parameter set per group/channel. RTN: from the absolute maximum (or min and max). MSE: the
// clipping fraction of the range, on a grid, with the least squared error for that set; INT4 then
// refits scale and min by least squares.
std::vector<Coding> choose_codings(const Plan& plan, std::span<const float> x, const std::vector<Stats>& stats, const Kernels& k,
                                   const Parallel& parallel) {
    std::vector<Coding> best(plan.param_count);
    for (uint64_t p = 0; p < plan.param_count; ++p) best[p] = gc::make_coding(plan.format, stats[p], 1.0f);
    if (plan.calibration != GREY_CALIBRATION_MSE) return best;
    // Each chunk of sets searches on its own: a set's error sums its runs in the single-threaded order.
    parallel.for_chunks(plan.param_count, sets_per_chunk(plan, parallel), [&](uint64_t p0, uint64_t p1) {
        const uint64_t sets = p1 - p0;
        std::vector<double> best_error(sets, std::numeric_limits<double>::infinity());
        std::vector<double> error(sets);
        std::vector<Coding> codings(sets);
        std::vector<int8_t> codes(plan.run_length);
        std::vector<float> decoded(plan.run_length);
        for (int step = 0; step <= gc::clip_steps(plan.format); ++step) {
            const float alpha = gc::clip_alpha(plan.format, step);
            for (uint64_t p = p0; p < p1; ++p) codings[p - p0] = gc::make_coding(plan.format, stats[p], alpha);
            std::fill(error.begin(), error.end(), 0.0);
            for_runs_of_sets(plan, p0, p1, [&](uint64_t p, uint64_t r) {
                const Run at = run_at(plan, r);
                const auto run = x.subspan(at.first, at.length);
                encode_run(plan.format, codings[p - p0], run, codes.data(), k);
                decode_run(plan.format, codings[p - p0], codes.data(), std::span(decoded).first(at.length), k);
                error[p - p0] += squared_error(run, decoded);
            });
            for (uint64_t p = p0; p < p1; ++p)
                if (error[p - p0] < best_error[p - p0]) {
                    best_error[p - p0] = error[p - p0];
                    best[p] = codings[p - p0];
                }
        }
        if (plan.format == GREY_QUANT_INT4)  // groups: run r is parameter set r
            for (uint64_t p = p0; p < p1; ++p) {
                const Run at = run_at(plan, p);
                best[p] = refine_int4(x.subspan(at.first, at.length), best[p], best_error[p - p0], k);
            }
    });
    return best;
}

// fp16 bits: the low 16 of `bits`.
void store_u16(std::byte* at, uint32_t bits) {
    const auto v = static_cast<uint16_t>(bits);
    std::memcpy(at, &v, sizeof v);
}
void store_f32(std::byte* at, float v) { std::memcpy(at, &v, sizeof v); }
uint16_t load_u16(const std::byte* at) {
    uint16_t v;
    std::memcpy(&v, at, sizeof v);
    return v;
}
float load_f32(const std::byte* at) {
    float v;
    std::memcpy(&v, at, sizeof v);
    return v;
}

// Where parameter set p's scale and INT4's minimum lie in a planar format's output: the scales follow
// the codes (float32 for INT8, INT8_TOKEN, FP8 and NF4; fp16 for INT4 and INT4_SYM), INT4's fp16
// minimums follow the scales. ggml blocks carry their parameters inline.
uint64_t scale_byte(const Plan& plan, uint64_t p) {
    const bool f16 = plan.format == GREY_QUANT_INT4 || plan.format == GREY_QUANT_INT4_SYM;
    return plan.codes_bytes + (f16 ? 2 : 4) * p;
}
uint64_t min_byte(const Plan& plan, uint64_t p) { return plan.codes_bytes + 2 * plan.param_count + 2 * p; }

// Reads back the parameter set `p` that quantize() stored.
[[gnu::always_inline]] inline Coding load_coding(const Plan& plan, std::span<const std::byte> in, uint64_t p) {
    using gc::f16_to_f32;
    Coding c{};
    const auto scale = [&] { return in.data() + scale_byte(plan, p); };  // planar formats only
    const std::byte* block = in.data() + gc::ggml_block_bytes(plan.format) * p;
    switch (plan.format) {
        case GREY_QUANT_INT8: case GREY_QUANT_INT8_TOKEN:
            c.scale = load_f32(scale());
            c.d_mul = c.scale;
            break;
        case GREY_QUANT_FP8_E4M3: case GREY_QUANT_FP8_E5M2: case GREY_QUANT_NF4:
            c.scale = load_f32(scale());
            break;
        case GREY_QUANT_INT4_SYM:
            c.d_mul = f16_to_f32(load_u16(scale()));
            break;
        case GREY_QUANT_INT4:
            c.d_mul = f16_to_f32(load_u16(scale()));
            c.d_add = f16_to_f32(load_u16(in.data() + min_byte(plan, p)));
            break;
        case GREY_QUANT_Q8_0:
            c.d_mul = f16_to_f32(load_u16(block));
            break;
        case GREY_QUANT_Q4_0:
            c.d_sub = 8.0f;
            c.d_mul = f16_to_f32(load_u16(block));
            break;
        case GREY_QUANT_Q4_1:
            c.d_mul = f16_to_f32(load_u16(block));
            c.d_add = f16_to_f32(load_u16(block + 2));
            break;
        default: throw std::logic_error("unhandled quantization format");
    }
    return c;
}

// ggml packs a block of 32 as qs[j] = q[j] | q[j + 16] << 4 (Kernels::pack_ggml_nibbles); libgrey's
// planar 4-bit formats pack neighbours, byte i = q[2i] | q[2i + 1] << 4.
void unpack_ggml_nibbles(const std::byte* qs, int8_t* codes) {
    for (int j = 0; j < 16; ++j) {
        codes[j] = static_cast<int8_t>(std::to_integer<int>(qs[j]) & 0x0F);
        codes[j + 16] = static_cast<int8_t>(std::to_integer<int>(qs[j]) >> 4);
    }
}

// `values` are the tensor's elements from `first` on; the message names the tensor's index. The largest
// magnitude's bits first (an exponent of all ones, the bits 0x7F800000 and above, is an infinity or a
// NaN); the first offender is looked for only when there is one.
// Returns that largest magnitude's bits.
uint32_t require_finite(std::span<const float> values, uint64_t first, const Kernels& k) {
    const uint32_t top = k.max_magnitude32(reinterpret_cast<const std::byte*>(values.data()), values.size());
    if (top < 0x7F800000u) return top;
    for (std::size_t i = 0; i < values.size(); ++i)
        if (!std::isfinite(values[i]))
            throw std::invalid_argument(gc::non_finite_message(first + i, std::isnan(values[i])));
    return top;
}

// The largest of `of_chunk(begin, end)` over the chunks of `elements` elements, the chunks in parallel
// (each writes its own slot); 0 for no elements.
template <typename OfChunk>
uint32_t largest_over_chunks(uint64_t elements, const Parallel& parallel, const OfChunk& of_chunk) {
    const uint64_t chunk = parallel.chunk_elements();
    std::vector<uint32_t> tops((elements + chunk - 1) / chunk, 0);
    parallel.for_chunks(elements, chunk, [&](uint64_t begin, uint64_t end) { tops[begin / chunk] = of_chunk(begin, end); });
    return tops.empty() ? 0 : *std::max_element(tops.begin(), tops.end());
}

// The largest magnitude any block's fp16 parameters can be made from without overflowing (Q4_1 stores
// its minimum, Q4_0 and Q4_1 scales at most 2 * 65504 / 15), as float32 bits.
constexpr uint32_t kSafeMagnitudeBits = 0x477FE000u;  // 65504.0f

// Whether every value of `source` (`elements` values of `dtype`) is finite and at most 65504 in magnitude.
bool safe_for_one_pass(grey_dtype dtype, std::span<const std::byte> source, uint64_t elements, const Kernels& k, const Parallel& parallel) {
    if (dtype == GREY_DTYPE_F32)
        return largest_over_chunks(elements, parallel, [&](uint64_t begin, uint64_t end) {
                   return k.max_magnitude32(source.data() + 4 * begin, end - begin);
               }) <= kSafeMagnitudeBits;
    const uint32_t top = largest_over_chunks(elements, parallel, [&](uint64_t begin, uint64_t end) -> uint32_t {
        return k.max_magnitude16(source.data() + 2 * begin, end - begin);
    });
    return top <= (dtype == GREY_DTYPE_F16 ? 0x7BFFu : (kSafeMagnitudeBits >> 16));  // 65504 in fp16; in bf16, its top half
}

// A piece of a tensor as float32, in a buffer that stays in the first-level cache.
using Piece = std::array<float, gc::ErrorSums::kPiece>;

// Elements [first, first + n) of `source` as float32 in `x`.
void load_piece(grey_dtype dtype, std::span<const std::byte> source, uint64_t first, uint64_t n, float* x, const Kernels& k) {
    if (dtype == GREY_DTYPE_F32) {
        std::memcpy(x, source.data() + first * sizeof(float), n * sizeof(float));
        return;
    }
    // Through an aligned copy of the halves: mapped file data need not be 2-byte aligned.
    std::array<uint16_t, gc::ErrorSums::kPiece> halves;
    std::memcpy(halves.data(), source.data() + first * 2, n * 2);
    if (dtype == GREY_DTYPE_F16)
        k.f16_to_f32(halves.data(), n, x);
    else
        for (uint64_t i = 0; i < n; ++i) x[i] = gc::bf16_to_f32(halves[i]);
}

// What libgrey's planar 4-bit formats add to a code before packing it (INT4_SYM's codes are signed).
int nibble_bias(grey_quant_format format) { return format == GREY_QUANT_INT4_SYM ? 8 : 0; }

// Encodes elements offset .. offset + length - 1 of run r (at, its values `run`) and stores their codes.
// `offset` is even (4-bit codes are packed in pairs); ggml runs are encoded whole.
void encode_piece(const Plan& plan, const Coding& c, std::span<const float> run, uint64_t r, const Run& at, uint64_t offset, uint64_t length,
                  int8_t* codes, std::span<std::byte> out, const Kernels& k) {
    const auto values = run.subspan(offset, length);
    // Byte codes go straight to their place in the output; 4-bit codes are packed from `codes`.
    switch (plan.format) {
        case GREY_QUANT_INT8: case GREY_QUANT_INT8_TOKEN: case GREY_QUANT_FP8_E4M3: case GREY_QUANT_FP8_E5M2:
            encode_run(plan.format, c, values, reinterpret_cast<int8_t*>(out.data() + at.first + offset), k);
            return;
        case GREY_QUANT_Q8_0:
            store_u16(out.data() + 34 * r, c.scale16);
            encode_run(plan.format, c, values, reinterpret_cast<int8_t*>(out.data() + 34 * r + 2), k);
            return;
        default: break;
    }
    encode_run(plan.format, c, values, codes, k);
    switch (plan.format) {
        case GREY_QUANT_INT4: case GREY_QUANT_INT4_SYM: case GREY_QUANT_NF4: {
            // A ragged group of odd length ends its row: its last byte has a zero high nibble.
            k.pack_nibble_pairs(codes, length, nibble_bias(plan.format), reinterpret_cast<uint8_t*>(out.data() + at.code_byte + offset / 2));
            break;
        }
        case GREY_QUANT_Q4_0:
            store_u16(out.data() + 18 * r, c.scale16);
            k.pack_ggml_nibbles(codes, 1, reinterpret_cast<uint8_t*>(out.data() + 18 * r + 2), gc::kQ4_0BlockBytes);
            break;
        case GREY_QUANT_Q4_1:
            store_u16(out.data() + 20 * r, c.scale16);
            store_u16(out.data() + 20 * r + 2, c.min16);
            k.pack_ggml_nibbles(codes, 1, reinterpret_cast<uint8_t*>(out.data() + 20 * r + 4), gc::kQ4_1BlockBytes);
            break;
        default: throw std::logic_error("unhandled quantization format");
    }
}

// Elements [begin, end) of `source` (F16 or BF16) widened into out[begin, end).
void widen(grey_dtype dtype, std::span<const std::byte> source, uint64_t begin, uint64_t end, float* out, const Kernels& kernels) {
    // Copy through an aligned block: mapped file data need not be 2-byte aligned.
    constexpr std::size_t kBlock = 4096;
    std::array<uint16_t, kBlock> halves{};
    for (uint64_t done = begin; done < end; done += kBlock) {
        const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(kBlock, end - done));
        std::memcpy(halves.data(), source.data() + done * 2, n * 2);
        if (dtype == GREY_DTYPE_F16)
            kernels.f16_to_f32(halves.data(), n, out + done);
        else
            for (std::size_t i = 0; i < n; ++i) out[done + i] = gc::bf16_to_f32(halves[i]);
    }
}

}  // namespace

FloatBuffer to_f32(grey_dtype dtype, std::span<const std::byte> source, uint64_t elements, const Kernels& kernels,
                   const Parallel& parallel, uint32_t* max_magnitude_bits) {
    FloatBuffer out(elements);
    const uint32_t top = largest_over_chunks(elements, parallel, [&](uint64_t begin, uint64_t end) {
        if (dtype == GREY_DTYPE_F32)
            std::memcpy(out.data() + begin, source.data() + begin * sizeof(float), (end - begin) * sizeof(float));
        else
            widen(dtype, source, begin, end, out.data(), kernels);
        return require_finite(std::span(out).subspan(begin, end - begin), begin, kernels);
    });
    if (max_magnitude_bits != nullptr) *max_magnitude_bits = top;
    return out;
}

std::span<const float> as_f32(grey_dtype dtype, std::span<const std::byte> source, uint64_t elements, const Kernels& kernels,
                              FloatBuffer& storage, const Parallel& parallel, uint32_t* max_magnitude_bits) {
    if (!f32_in_place(dtype, source.data())) {
        storage = to_f32(dtype, source, elements, kernels, parallel, max_magnitude_bits);
        return storage;
    }
    const std::span<const float> values(reinterpret_cast<const float*>(source.data()), static_cast<std::size_t>(elements));
    const uint32_t top = largest_over_chunks(elements, parallel, [&](uint64_t begin, uint64_t end) {
        return require_finite(values.subspan(begin, end - begin), begin, kernels);
    });
    if (max_magnitude_bits != nullptr) *max_magnitude_bits = top;
    return values;
}

void from_f32(std::span<const float> values, grey_dtype dtype, std::span<std::byte> destination, const Parallel& parallel) {
    parallel.for_chunks(values.size(), parallel.chunk_elements(), [&](uint64_t begin, uint64_t end) {
        if (dtype == GREY_DTYPE_F32) {
            std::memcpy(destination.data() + begin * sizeof(float), values.data() + begin, (end - begin) * sizeof(float));
            return;
        }
        for (uint64_t i = begin; i < end; ++i) {
            const uint16_t h = dtype == GREY_DTYPE_F16 ? gc::f32_to_f16(values[i]) : gc::f32_to_bf16(values[i]);
            std::memcpy(destination.data() + 2 * i, &h, 2);
        }
    });
}

namespace {

// Stores parameter set p where the format keeps it apart from the codes (ggml blocks carry theirs inline,
// encode_piece writes them).
void store_params(const Plan& plan, uint64_t p, const Coding& c, std::span<std::byte> out) {
    const auto scale = [&] { return out.data() + scale_byte(plan, p); };  // planar formats only
    switch (plan.format) {
        case GREY_QUANT_INT8: case GREY_QUANT_INT8_TOKEN: case GREY_QUANT_FP8_E4M3: case GREY_QUANT_FP8_E5M2: case GREY_QUANT_NF4:
            store_f32(scale(), c.scale);
            break;
        case GREY_QUANT_INT4_SYM: store_u16(scale(), c.scale16); break;
        case GREY_QUANT_INT4:
            store_u16(scale(), c.scale16);
            store_u16(out.data() + min_byte(plan, p), c.min16);
            break;
        default: break;
    }
}

// The formats whose parameters are stored as fp16, and so can overflow.
bool has_f16_parameters(grey_quant_format format) {
    return format == GREY_QUANT_INT4 || format == GREY_QUANT_INT4_SYM || gc::is_ggml(format);
}

// Codes are made a piece at a time in a buffer on the stack: a chunk allocates nothing (thousands of
// chunks would otherwise each allocate and free, which sanitizers' quarantines hold on to).
constexpr uint64_t kCodePiece = 4096;  // even, and whole ggml blocks
using CodePiece = std::array<int8_t, kCodePiece>;

// A prefetch slice (even, a multiple of a cache line) and the floats of a 64-byte line.
constexpr uint64_t kPrefetchSlice = 1024;
constexpr uint64_t kFloatsPerLine = 16;

// Encodes elements [begin, end) of run r. `next`, when given, holds the values of the run encoded after
// this one: they are asked for (into L1) a slice at a time while this run is encoded, so that memory
// delivers them while the codes are computed and the next run's scan reads the cache instead of waiting
// on memory alone.
void encode_range(const Plan& plan, const Coding& c, std::span<const float> run, uint64_t r, const Run& at, uint64_t begin, uint64_t end,
                  CodePiece& codes, std::span<std::byte> out, const Kernels& k, std::span<const float> next = {}) {
    const uint64_t piece = next.empty() ? kCodePiece : kPrefetchSlice;
    for (uint64_t o = begin; o < end; o += piece) {
        const uint64_t n = std::min(piece, end - o);
        for (uint64_t p = o; p < std::min<uint64_t>(o + n, next.size()); p += kFloatsPerLine) __builtin_prefetch(next.data() + p, 0, 3);
        encode_piece(plan, c, run, r, at, o, n, codes.data(), out, k);
    }
}

// Whether the layout is what Kernels::quantize_groups and dequantize_groups take: one of their formats,
// whole groups of a multiple of 32 (ggml: 32), no ragged rows, one parameter set per group.
bool whole_groups(const Plan& plan) {
    const bool format = plan.format == GREY_QUANT_INT4 || plan.format == GREY_QUANT_INT4_SYM || plan.format == GREY_QUANT_NF4 || gc::is_ggml(plan.format);
    return format && !grey_quant_layout_has_rows(&plan) && plan.run_length % 32 == 0 && plan.param_count == grey_quant_layout_runs(&plan) &&
           plan.elements % plan.run_length == 0;
}
// Where group r's codes start (ggml: its block) and the bytes of one scale in the parameters.
uint64_t group_code_byte(const Plan& plan, uint64_t r) {
    return gc::is_ggml(plan.format) ? r * gc::ggml_block_bytes(plan.format) : r * plan.run_length / 2;
}
// Group r's scale and (INT4) minimum among the parameters after the codes; nullptr where the format
// keeps none there (ggml blocks carry theirs).
template <typename Byte>
Byte* group_scale(const Plan& plan, Byte* data, uint64_t r) {
    return gc::is_ggml(plan.format) ? nullptr : data + scale_byte(plan, r);
}
template <typename Byte>
Byte* group_min(const Plan& plan, Byte* data, uint64_t r) {
    return plan.format == GREY_QUANT_INT4 ? data + min_byte(plan, r) : nullptr;
}

bool fuses_groups(const Plan& plan, const Kernels& k) {
    return k.quantize_groups != nullptr && plan.calibration == GREY_CALIBRATION_RTN && whole_groups(plan);
}

// Whether round to nearest visits each run once (quantize_runs): one parameter set per run, each run
// short enough for a chunk.
bool visits_runs_once(const Plan& plan, const Parallel& parallel) {
    return plan.calibration == GREY_CALIBRATION_RTN && plan.param_count == grey_quant_layout_runs(&plan) && plan.run_length <= parallel.chunk_elements();
}

uint64_t runs_per_chunk(const Plan& plan, const Parallel& parallel) { return std::max<uint64_t>(1, parallel.chunk_elements() / plan.run_length); }

// A chunk whose input the staged route does not quantize: it stops the job, and the caller takes the
// route that says why.
struct RefusedInput {};

// The largest magnitude's bits a format quantizes without a refusal: finite, and at most 65504 where the
// parameters are fp16 (which bounds every format's parameters below fp16's largest finite value).
uint32_t accepted_magnitude_bits(grey_quant_format format) { return has_f16_parameters(format) ? kSafeMagnitudeBits : 0x7F7FFFFFu; }
// The formats whose codes are whole bytes, written straight to the output a piece at a time.
constexpr bool byte_codes(grey_quant_format format) {
    return format == GREY_QUANT_INT8 || format == GREY_QUANT_INT8_TOKEN || format == GREY_QUANT_FP8_E4M3 || format == GREY_QUANT_FP8_E5M2;
}

// quantize_runs' bound when the caller has checked the input.
constexpr uint32_t kChecked = std::numeric_limits<uint32_t>::max();

// Runs [r0, r1) of a plan that visits runs once, into `out`, from `x` (elements x_first on, holding those
// of the runs): each run's statistics, parameters and codes while the run is in the cache, instead of a
// pass over the tensor for the statistics and another for the codes. The bytes are those of the two
// passes: the same statistics, make_coding and encode_piece per run. Throws RefusedInput when a value's magnitude bits exceed `accepted`, learnt from the scan that
// takes the statistics (what is written is then meaningless); kChecked when the input is known to pass.
// `stream`: INT8 codes written with streaming stores where the kernel set has quantize_int8_runs.
void quantize_runs(const Plan& plan, std::span<const float> x, uint64_t x_first, std::span<std::byte> out, const Kernels& k, uint64_t r0, uint64_t r1,
                   uint32_t accepted, bool stream) {
    if (fuses_groups(plan, k)) {
        // The kernel set's fused route: whole groups, no rows, so run r is elements r * run_length on.
        const uint32_t largest = k.quantize_groups(plan.format, x.data() + (r0 * plan.run_length - x_first), r1 - r0, plan.run_length,
                                                   reinterpret_cast<uint8_t*>(out.data() + group_code_byte(plan, r0)),
                                                   group_scale(plan, out.data(), r0), group_min(plan, out.data(), r0));
        if (largest > accepted) throw RefusedInput{};
        return;
    }
    if (k.quantize_int8_runs != nullptr && (plan.format == GREY_QUANT_INT8 || plan.format == GREY_QUANT_INT8_TOKEN)) {
        // The kernel set's INT8 runs: one parameter set a run (visits_runs_once), no rows, so run r is
        // elements r * run_length on, its scale the r-th after the codes.
        const uint64_t first = r0 * plan.run_length;
        const uint32_t largest = k.quantize_int8_runs(x.data() + (first - x_first), r1 - r0, plan.run_length,
                                                      reinterpret_cast<int8_t*>(out.data() + first), out.data() + scale_byte(plan, r0), stream);
        if (largest > accepted) throw RefusedInput{};
        return;
    }
    CodePiece codes;
    for (uint64_t r = r0; r < r1; ++r) {
        const Run at = run_at(plan, r);
        const auto run = x.subspan(at.first - x_first, at.length);
        const float* values = run.data();
        Stats s = kNoStats;
        if (accepted != kChecked) {
            // The run's largest magnitude: a NaN's bits lie above every number's. For the absmax formats it
            // is the statistic too (a larger magnitude has larger bits), and their one scan.
            const uint32_t largest = k.max_magnitude32(reinterpret_cast<const std::byte*>(values), at.length);
            if (largest > accepted) throw RefusedInput{};
            if (!gc::stores_minimum(plan.format) && plan.format != GREY_QUANT_Q4_0)
                s.absmax = std::bit_cast<float>(largest);
            else
                add_stats(plan.format, values, at.length, s, k);
        } else {
            add_stats(plan.format, values, at.length, s, k);
        }
        const Coding c = gc::make_coding(plan.format, s, 1.0f);
        if (gc::overflows(c)) throw std::logic_error("quantize: fp16 parameters overflowed after the magnitude check");
        store_params(plan, r, c, out);
        std::span<const float> next;  // prefetched while this run is encoded (the byte-code formats)
        if (r + 1 < r1 && byte_codes(plan.format)) {
            const Run next_at = run_at(plan, r + 1);
            next = x.subspan(next_at.first - x_first, next_at.length);
        }
        encode_range(plan, c, run, r, at, 0, at.length, codes, out, k, next);
    }
}

// With the largest magnitude known: nothing is written unless no run's fp16 parameters can overflow;
// otherwise returns false and the two passes give the refusal before writing anything.
bool quantize_runs_in_one_visit(const Plan& plan, std::span<const float> x, std::span<std::byte> out, const Kernels& k, const Parallel& parallel,
                                uint32_t max_magnitude_bits, bool stream) {
    if (!visits_runs_once(plan, parallel) || max_magnitude_bits > accepted_magnitude_bits(plan.format)) return false;
    parallel.for_chunks(grey_quant_layout_runs(&plan), runs_per_chunk(plan, parallel),
                        [&](uint64_t r0, uint64_t r1) { quantize_runs(plan, x, 0, out, k, r0, r1, kChecked, stream); });
    return true;
}

// The output of the staged route is built in memory of its own and copied to the caller's only once
// every chunk has passed its check, so a refusal leaves the output untouched (grey.h's rule) without a
// pass over the input to check it first: the output is a fraction of the input's size. Above this size
// the transient memory is not taken beside the caller's (a policy, not a measured break-even), and the
// check-first passes run instead.
constexpr uint64_t kMaxStagingBytes = uint64_t{64} << 20;

// Runs body(begin, end, staging) over chunks of [0, items) on `parallel`, then copies the staging memory
// to `out`. False, `out` untouched, when a chunk throws RefusedInput, or when the staging memory is
// larger than kMaxStagingBytes or cannot be had.
template <typename Body>
bool staged(std::span<std::byte> out, const Parallel& parallel, uint64_t items, uint64_t chunk, const Body& body) {
    if (out.size() > kMaxStagingBytes) return false;
    std::unique_ptr<std::byte[]> memory;
    try {
        memory = std::make_unique_for_overwrite<std::byte[]>(out.size());
    } catch (const std::bad_alloc&) {
        return false;
    }
    const std::span<std::byte> staging(memory.get(), out.size());
    try {
        parallel.for_chunks(items, chunk, [&](uint64_t begin, uint64_t end) { body(begin, end, staging); });
    } catch (const RefusedInput&) {
        return false;
    }
    constexpr uint64_t kCopyChunk = 256 * 1024;
    parallel.for_chunks(out.size(), kCopyChunk, [&](uint64_t begin, uint64_t end) { std::memcpy(out.data() + begin, staging.data() + begin, end - begin); });
    return true;
}

// quantize_checked on float32 values in place.
bool quantize_checked_f32(const Plan& plan, std::span<const float> x, std::span<std::byte> out, const Kernels& k, const Parallel& parallel,
                          bool stream) {
    if (!visits_runs_once(plan, parallel)) return false;
    const uint32_t accepted = accepted_magnitude_bits(plan.format);
    return staged(out, parallel, grey_quant_layout_runs(&plan), runs_per_chunk(plan, parallel),
                  [&](uint64_t r0, uint64_t r1, std::span<std::byte> staging) { quantize_runs(plan, x, 0, staging, k, r0, r1, accepted, stream); });
}

}  // namespace

bool quantize_checked(const Plan& plan, grey_dtype dtype, std::span<const std::byte> source, std::span<std::byte> out, const Kernels& k,
                      const Parallel& parallel, uint64_t stream_bytes) {
    const bool stream = out.size() >= stream_bytes;
    if (f32_in_place(dtype, source.data()))
        return quantize_checked_f32(plan, {reinterpret_cast<const float*>(source.data()), static_cast<std::size_t>(plan.elements)}, out, k, parallel,
                                    stream);
    // Any other input a few runs at a time, widened into a piece that stays in the cache (no float32 copy
    // of the tensor); runs longer than a piece are left to the route that converts the tensor first.
    constexpr uint64_t kPiece = gc::ErrorSums::kPiece;
    if ((dtype != GREY_DTYPE_F32 && dtype != GREY_DTYPE_F16 && dtype != GREY_DTYPE_BF16) || !visits_runs_once(plan, parallel) ||
        plan.run_length > kPiece)
        return false;
    const uint32_t accepted = accepted_magnitude_bits(plan.format);
    const uint64_t runs_per_piece = kPiece / plan.run_length;
    const uint64_t chunk = std::max<uint64_t>(1, runs_per_chunk(plan, parallel) / runs_per_piece) * runs_per_piece;
    return staged(out, parallel, grey_quant_layout_runs(&plan), chunk, [&](uint64_t r0, uint64_t r1, std::span<std::byte> staging) {
        alignas(64) Piece x;
        for (uint64_t r = r0; r < r1; r += runs_per_piece) {
            // Consecutive runs are consecutive elements.
            const uint64_t end = std::min(r1, r + runs_per_piece), first = run_at(plan, r).first;
            const Run last = run_at(plan, end - 1);
            const uint64_t n = last.first + last.length - first;
            load_piece(dtype, source, first, n, x.data(), k);
            quantize_runs(plan, std::span<const float>(x).first(n), first, staging, k, r, end, accepted, stream);
        }
    });
}

void quantize(const Plan& plan, std::span<const float> x, std::span<std::byte> out, const Kernels& k, const Parallel& parallel,
              std::optional<uint32_t> max_magnitude_bits, uint64_t stream_bytes) {
    const bool stream = out.size() >= stream_bytes;
    // Without the largest magnitude, fp16 parameters are checked a chunk at a time as the runs are quantized.
    if (has_f16_parameters(plan.format) && !max_magnitude_bits
            ? quantize_checked_f32(plan, x, out, k, parallel, stream)
            : quantize_runs_in_one_visit(plan, x, out, k, parallel, max_magnitude_bits.value_or(0), stream))
        return;
    const auto stats = gather_stats(plan, x, k, parallel);
    const auto codings = choose_codings(plan, x, stats, k, parallel);
    // Formats with fp16 parameters are grouped (set p is run p), so set p covers the elements of run p.
    for (uint64_t p = 0; p < plan.param_count; ++p)
        if (gc::overflows(codings[p])) {
            const Run at = run_at(plan, p);
            throw std::invalid_argument(gc::f16_overflow_message(plan.format, at.first, at.length));
        }

    for (uint64_t p = 0; p < plan.param_count; ++p) store_params(plan, p, codings[p], out);

    const uint64_t runs = grey_quant_layout_runs(&plan), piece = parallel.chunk_elements();
    if (plan.run_length <= piece) {  // whole runs to a chunk
        parallel.for_chunks(runs, std::max<uint64_t>(1, piece / plan.run_length), [&](uint64_t r0, uint64_t r1) {
            CodePiece codes;
            for (uint64_t r = r0; r < r1; ++r) {
                const Run at = run_at(plan, r);
                encode_range(plan, codings[r % plan.param_count], x.subspan(at.first, at.length), r, at, 0, at.length, codes, out, k);
            }
        });
        return;
    }
    for (uint64_t r = 0; r < runs; ++r) {  // long runs (per row or per tensor): pieces of one run at a time
        const Run at = run_at(plan, r);
        parallel.for_chunks(at.length, piece, [&](uint64_t begin, uint64_t end) {
            CodePiece codes;
            encode_range(plan, codings[r % plan.param_count], x.subspan(at.first, at.length), r, at, begin, end, codes, out, k);
        });
    }
}

namespace {

void dequantize_range_with(const Plan& plan, std::span<const std::byte> in, uint64_t first, std::span<float> out, const Kernels& k,
                           const StreamingKernels* streaming) {
    // Codes are unpacked a piece at a time (never more than a run: one parameter set decodes a piece),
    // so that the scratch memory is fixed whatever the run's length. Even, as 4-bit codes come in pairs.
    constexpr uint64_t kPiece = 4096;
    std::array<int8_t, kPiece> codes;  // on the stack: a chunk of a parallel decode allocates nothing
    const uint64_t end = first + out.size();
    const bool rows = grey_quant_layout_has_rows(&plan);
    for (uint64_t e = first; e < end;) {
        const Place place = place_of(plan, e);
        const uint64_t r = place.run;
        const uint64_t run_length = rows ? run_at(plan, r).length : plan.run_length;
        const uint64_t n = std::min({run_length - place.offset, end - e, kPiece});
        const int8_t* source = codes.data();  // byte codes are decoded where they lie
        switch (plan.format) {
            case GREY_QUANT_INT8: case GREY_QUANT_INT8_TOKEN: case GREY_QUANT_FP8_E4M3: case GREY_QUANT_FP8_E5M2:
                source = reinterpret_cast<const int8_t*>(in.data() + e);
                break;
            case GREY_QUANT_INT4: case GREY_QUANT_INT4_SYM: case GREY_QUANT_NF4: {
                // With rows a piece may start on either nibble of a byte (a slice's first element).
                const int bias = nibble_bias(plan.format);
                const uint64_t o = rows ? place.offset : e;
                const auto* packed = reinterpret_cast<const uint8_t*>(in.data() + (rows ? run_at(plan, r).code_byte : 0)) + o / 2;
                const uint64_t odd = o % 2;
                if (odd != 0) codes[0] = static_cast<int8_t>((packed[0] >> 4) - bias);
                k.unpack_nibble_pairs(packed + odd, n - odd, bias, codes.data() + odd);
                break;
            }
            case GREY_QUANT_Q8_0: source = reinterpret_cast<const int8_t*>(in.data() + 34 * r + 2); break;
            case GREY_QUANT_Q4_0: unpack_ggml_nibbles(in.data() + 18 * r + 2, codes.data()); break;
            case GREY_QUANT_Q4_1: unpack_ggml_nibbles(in.data() + 20 * r + 4, codes.data()); break;
            default: throw std::logic_error("unhandled quantization format");
        }
        decode_run(plan.format, load_coding(plan, in, r % plan.param_count), source, out.subspan(e - first, n), k, streaming);
        e += n;
    }
}

}  // namespace

void dequantize_range(const Plan& plan, std::span<const std::byte> in, uint64_t first, std::span<float> out, const Kernels& k) {
    dequantize_range_with(plan, in, first, out, k, nullptr);
}

void dequantize(const Plan& plan, std::span<const std::byte> in, std::span<float> out, const Kernels& k, const Parallel& parallel,
                uint64_t stream_bytes) {
    // Large output through the kernel set's streaming decoders (the same bits), each chunk's stores fenced
    // before it returns (the pool then reports it done).
    const StreamingKernels* streaming = k.streaming != nullptr && out.size_bytes() >= stream_bytes ? k.streaming : nullptr;
    if (k.dequantize_groups != nullptr && whole_groups(plan)) {  // the kernel set's fused route, chunks of whole groups
        const auto groups = streaming ? streaming->dequantize_groups : k.dequantize_groups;
        parallel.for_chunks(grey_quant_layout_runs(&plan), std::max<uint64_t>(1, parallel.chunk_elements() / plan.run_length), [&](uint64_t r0, uint64_t r1) {
            groups(plan.format, reinterpret_cast<const uint8_t*>(in.data() + group_code_byte(plan, r0)), group_scale(plan, in.data(), r0),
                   group_min(plan, in.data(), r0), r1 - r0, plan.run_length, out.data() + r0 * plan.run_length);
            if (streaming) streaming->fence();
        });
        return;
    }
    // Slices decode to the bits of the whole (dequantize_range); chunks are whole ggml blocks.
    parallel.for_chunks(plan.elements, parallel.chunk_elements(), [&](uint64_t begin, uint64_t end) {
        dequantize_range_with(plan, in, begin, out.subspan(begin, end - begin), k, streaming);
        if (streaming) streaming->fence();
    });
}


namespace {


// One piece's share of the error sums, each of its lanes already combined.
struct PieceSums {
    double signal = 0.0, error = 0.0, max_abs_error = 0.0;
    uint64_t elements = 0;
};

PieceSums piece_sums(const float* x, const float* y, uint64_t n, const Kernels& k) {
    gc::ErrorSums::Lanes lanes;
    k.error_lanes(x, y, n, lanes.signal, lanes.error, &lanes.max_abs_error);
    gc::ErrorSums one;
    one.add_piece(lanes, n);
    return {one.sum_squared_signal, one.sum_squared_error, one.max_abs_error, n};
}

// The pieces' sums added to `sums` in order (common::ErrorSums::add_piece's steps).
void add_pieces(gc::ErrorSums& sums, std::span<const PieceSums> pieces) {
    for (const PieceSums& p : pieces) {
        sums.sum_squared_signal = gc::dadd_rn(sums.sum_squared_signal, p.signal);
        sums.sum_squared_error = gc::dadd_rn(sums.sum_squared_error, p.error);
        sums.max_abs_error = sums.max_abs_error < p.max_abs_error ? p.max_abs_error : sums.max_abs_error;
        sums.elements += p.elements;
    }
}

uint64_t pieces_per_chunk(const Parallel& parallel) { return std::max<uint64_t>(1, parallel.chunk_elements() / gc::ErrorSums::kPiece); }


}  // namespace

bool quantizes_in_one_pass(const Plan& plan, grey_dtype dtype) {
    return gc::is_ggml(plan.format) && plan.calibration == GREY_CALIBRATION_RTN &&
           (dtype == GREY_DTYPE_F32 || dtype == GREY_DTYPE_F16 || dtype == GREY_DTYPE_BF16);
}

bool quantize_in_one_pass(const Plan& plan, grey_dtype dtype, std::span<const std::byte> source, std::span<std::byte> out, gc::ErrorSums* error,
                          const Kernels& k, const Parallel& parallel) {
    if (!quantizes_in_one_pass(plan, dtype)) throw std::logic_error("quantize_in_one_pass: not a one-pass plan");
    constexpr uint64_t kPiece = gc::ErrorSums::kPiece;  // whole ggml blocks
    const uint64_t pieces = (plan.elements + kPiece - 1) / kPiece;
    const uint64_t block_bytes = gc::ggml_block_bytes(plan.format);
    const uint64_t header = gc::ggml_header_bytes(plan.format);
    std::vector<PieceSums> sums(error != nullptr ? pieces : 0);
    // Aligned float32 input is read where it lies; other input is widened a piece at a time.
    const float* in_place = f32_in_place(dtype, source.data()) ? reinterpret_cast<const float*>(source.data()) : nullptr;
    // Pieces [p0, p1) into `target`, each checked while it is in the cache: every value finite and at most
    // 65504, so that no block's fp16 parameters overflow; RefusedInput otherwise.
    const auto quantize_pieces = [&](uint64_t p0, uint64_t p1, std::span<std::byte> target) {
        alignas(64) Piece widened, decoded;
        alignas(64) std::array<int8_t, kPiece> codes;
        for (uint64_t piece = p0; piece < p1; ++piece) {
            const uint64_t first = piece * kPiece, n = std::min(kPiece, plan.elements - first), blocks = n / 32;
            const std::span<const float> x = in_place != nullptr ? std::span<const float>(in_place + first, n) : std::span<const float>(widened).first(n);
            if (in_place == nullptr) load_piece(dtype, source, first, n, widened.data(), k);
            std::byte* block = target.data() + first / 32 * block_bytes;
            if (k.quantize_groups != nullptr) {  // the kernel set's fused blocks, which learn the largest magnitude as they go
                if (k.quantize_groups(plan.format, x.data(), blocks, 32, reinterpret_cast<uint8_t*>(block), nullptr, nullptr) > kSafeMagnitudeBits)
                    throw RefusedInput{};
                if (error != nullptr) {
                    // Decoded from the stored blocks: the codes and fp16 parameters the loop below decodes from.
                    dequantize_range(plan, target, first, std::span(decoded).first(n), k);
                    sums[piece] = piece_sums(x.data(), decoded.data(), n, k);
                }
                continue;
            }
            if (k.max_magnitude32(reinterpret_cast<const std::byte*>(x.data()), n) > kSafeMagnitudeBits) throw RefusedInput{};
            for (uint64_t b = 0; b < blocks; ++b, block += block_bytes) {
                const float* values = x.data() + 32 * b;
                Stats s = kNoStats;
                add_stats(plan.format, values, 32, s, k);
                const Coding c = gc::make_coding(plan.format, s, 1.0f);
                k.encode(values, 32, encode_spec(plan.format, c), codes.data() + 32 * b);
                store_u16(block, c.scale16);
                if (plan.format == GREY_QUANT_Q4_1) store_u16(block + 2, c.min16);
                if (plan.format == GREY_QUANT_Q8_0) std::memcpy(block + header, codes.data() + 32 * b, 32);
                // The decoded block, from the codes and the stored (fp16) parameters as dequantize reads them.
                if (error != nullptr) k.decode(codes.data() + 32 * b, 32, decode_spec(c), decoded.data() + 32 * b);
            }
            if (plan.format != GREY_QUANT_Q8_0)
                k.pack_ggml_nibbles(codes.data(), blocks, reinterpret_cast<uint8_t*>(target.data() + first / 32 * block_bytes + header), block_bytes);
            if (error != nullptr) sums[piece] = piece_sums(x.data(), decoded.data(), n, k);
        }
    };
    if (!staged(out, parallel, pieces, pieces_per_chunk(parallel), quantize_pieces)) {
        // Refused, or too large to stage: checked over the whole input first, then quantized straight into `out`.
        if (!safe_for_one_pass(dtype, source, plan.elements, k, parallel)) return false;
        parallel.for_chunks(pieces, pieces_per_chunk(parallel), [&](uint64_t p0, uint64_t p1) { quantize_pieces(p0, p1, out); });
    }
    if (error != nullptr) add_pieces(*error, sums);
    return true;
}

void add_quantization_error(gc::ErrorSums& sums, const Plan& plan, grey_dtype dtype, std::span<const std::byte> source,
                            std::span<const std::byte> quantized, const Kernels& k, const Parallel& parallel) {
    if (dtype != GREY_DTYPE_F32 && dtype != GREY_DTYPE_F16 && dtype != GREY_DTYPE_BF16)
        throw std::invalid_argument("add_quantization_error: the plain tensor must be F32, F16 or BF16");
    constexpr uint64_t kPiece = gc::ErrorSums::kPiece;
    const bool in_place = f32_in_place(dtype, source.data());
    std::vector<PieceSums> pieces((plan.elements + kPiece - 1) / kPiece);
    parallel.for_chunks(pieces.size(), pieces_per_chunk(parallel), [&](uint64_t p0, uint64_t p1) {
        alignas(64) Piece x, decoded;
        for (uint64_t p = p0; p < p1; ++p) {
            const uint64_t first = p * kPiece, n = std::min(kPiece, plan.elements - first);
            const float* reference = x.data();
            if (in_place)
                reference = reinterpret_cast<const float*>(source.data()) + first;
            else
                load_piece(dtype, source, first, n, x.data(), k);
            dequantize_range(plan, quantized, first, std::span(decoded).first(n), k);
            pieces[p] = piece_sums(reference, decoded.data(), n, k);
        }
    });
    add_pieces(sums, pieces);
}

}  // namespace grey::host::quant
