#include "host/quant/quantizer.hpp"

#include "core/error.hpp"
#include "quant/numeric.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>

namespace grey::host::quant {
namespace {

using grey::quant::Fp8Kind;
using grey::quant::Plan;

// What the parameter choice needs to know about the elements sharing one parameter set.
struct Stats {
    float absmax = 0.0f;
    float min = INFINITY;
    float max = -INFINITY;
    float peak = 0.0f;  // Q4_0: the first element whose magnitude is absmax, with its sign
};

// One parameter set made concrete: how to encode and decode, and what is stored.
struct Coding {
    EncodeSpec encode{};
    DecodeSpec decode{};
    float scale = 0.0f;   // fp32 scale (INT8, FP8) or NF4's absmax
    uint16_t scale16 = 0; // fp16 scale (INT4, INT4_SYM, Q formats)
    uint16_t min16 = 0;   // fp16 min (INT4, Q4_1)
};

bool is_fp8(grey_quant_format f) { return f == GREY_QUANT_FP8_E4M3 || f == GREY_QUANT_FP8_E5M2; }
Fp8Kind fp8_kind(grey_quant_format f) { return f == GREY_QUANT_FP8_E4M3 ? Fp8Kind::e4m3 : Fp8Kind::e5m2; }
// The encoders' multiplier 1/d. A scale so small that its reciprocal overflows (a group whose values
// all lie below about 1e-36) gives 0, which encodes the group as zeros, an error below that size;
// an infinite multiplier would make NaN codes of its zeros (fp8) and saturate every other element.
float inverse(float d) {
    const float r = d != 0.0f ? 1.0f / d : 0.0f;
    return std::isinf(r) ? 0.0f : r;
}

const std::array<float, 256>& fp8_values(grey_quant_format f) {
    static const std::array<float, 256> e4m3 = grey::quant::fp8_table(Fp8Kind::e4m3);
    static const std::array<float, 256> e5m2 = grey::quant::fp8_table(Fp8Kind::e5m2);
    return f == GREY_QUANT_FP8_E4M3 ? e4m3 : e5m2;
}

const std::array<float, 256>& nf4_values() {
    static const std::array<float, 256> table = [] {
        std::array<float, 256> t{};
        std::copy(grey::quant::kNf4Levels.begin(), grey::quant::kNf4Levels.end(), t.begin());
        return t;
    }();
    return table;
}

// The parameter set for `stats` with the range shrunk to `alpha` of its extent (1 = round to nearest
// from the absolute maximum). For Q8_0/Q4_0/Q4_1 at alpha 1 this is ggml's quantize_row_*_ref step for
// step: the unrounded scale encodes, the fp16-rounded one is stored.
Coding make_coding(grey_quant_format format, const Stats& s, float alpha) {
    using grey::quant::f16_to_f32;
    using grey::quant::f32_to_f16;
    Coding c;
    switch (format) {
        case GREY_QUANT_INT8: case GREY_QUANT_INT8_TOKEN: {
            c.scale = s.absmax * alpha / 127.0f;
            c.encode = {0.0f, inverse(c.scale), 0.0f, Rounding::nearest_away, -127, 127};
            c.decode = {0.0f, c.scale, 0.0f};
            break;
        }
        case GREY_QUANT_INT4_SYM: {
            c.scale16 = f32_to_f16(s.absmax * alpha / 7.0f);
            const float d = f16_to_f32(c.scale16);
            c.encode = {0.0f, inverse(d), 0.0f, Rounding::nearest_away, -8, 7};
            c.decode = {0.0f, d, 0.0f};
            break;
        }
        case GREY_QUANT_INT4: {
            // Encode against the stored (fp16) min and scale, so that decoding sees what encoding saw.
            c.min16 = f32_to_f16(s.min * alpha);
            const float m = f16_to_f32(c.min16);
            c.scale16 = f32_to_f16((s.max * alpha - m) / 15.0f);
            const float d = f16_to_f32(c.scale16);
            c.encode = {m, inverse(d), 0.0f, Rounding::nearest_away, 0, 15};
            c.decode = {0.0f, d, m};
            break;
        }
        case GREY_QUANT_FP8_E4M3: case GREY_QUANT_FP8_E5M2:
            c.scale = s.absmax * alpha / grey::quant::fp8_traits(fp8_kind(format)).max_finite;
            break;
        case GREY_QUANT_NF4:
            c.scale = s.absmax * alpha;
            break;
        case GREY_QUANT_Q8_0: {
            const float d = s.absmax * alpha / 127.0f;
            c.scale16 = f32_to_f16(d);
            c.encode = {0.0f, inverse(d), 0.0f, Rounding::nearest_away, -128, 127};
            c.decode = {0.0f, f16_to_f32(c.scale16), 0.0f};
            break;
        }
        case GREY_QUANT_Q4_0: {
            const float d = s.peak * alpha / -8.0f;
            c.scale16 = f32_to_f16(d);
            c.encode = {0.0f, inverse(d), 8.5f, Rounding::truncate, 0, 15};
            c.decode = {8.0f, f16_to_f32(c.scale16), 0.0f};
            break;
        }
        case GREY_QUANT_Q4_1: {
            const float lo = s.min * alpha, hi = s.max * alpha;
            const float d = (hi - lo) / 15.0f;
            c.scale16 = f32_to_f16(d);
            c.min16 = f32_to_f16(lo);
            c.encode = {lo, inverse(d), 0.5f, Rounding::truncate, 0, 15};
            c.decode = {0.0f, f16_to_f32(c.scale16), f16_to_f32(c.min16)};
            break;
        }
        default: fail(GREY_ERROR_INTERNAL, "unhandled quantization format");
    }
    return c;
}

void encode_run(grey_quant_format format, const Coding& c, std::span<const float> x, int8_t* codes, const Kernels& k) {
    if (is_fp8(format)) {
        const float inv = inverse(c.scale);
        for (std::size_t i = 0; i < x.size(); ++i) codes[i] = static_cast<int8_t>(grey::quant::f32_to_fp8(x[i] * inv, fp8_kind(format)));
    } else if (format == GREY_QUANT_NF4) {
        const float inv = inverse(c.scale);
        for (std::size_t i = 0; i < x.size(); ++i) codes[i] = static_cast<int8_t>(grey::quant::nf4_code(x[i] * inv));
    } else {
        k.encode(x.data(), x.size(), c.encode, codes);
    }
}

void decode_run(grey_quant_format format, const Coding& c, const int8_t* codes, std::span<float> y, const Kernels& k) {
    const auto* unsigned_codes = reinterpret_cast<const uint8_t*>(codes);
    if (is_fp8(format))
        k.decode_table(unsigned_codes, y.size(), fp8_values(format).data(), c.scale, y.data());
    else if (format == GREY_QUANT_NF4)
        k.decode_table(unsigned_codes, y.size(), nf4_values().data(), c.scale, y.data());
    else
        k.decode(codes, y.size(), c.decode, y.data());
}

std::vector<Stats> gather_stats(const Plan& plan, std::span<const float> x, const Kernels& k) {
    std::vector<Stats> stats(plan.param_count);
    const uint64_t runs = plan.run_count();
    for (uint64_t r = 0; r < runs; ++r) {
        Stats& s = stats[r % plan.param_count];
        const float* run = x.data() + r * plan.run_length;
        if (grey::quant::stores_minimum(plan.format)) {
            float lo = 0.0f, hi = 0.0f;
            k.minmax(run, plan.run_length, &lo, &hi);
            s.min = std::min(s.min, lo);
            s.max = std::max(s.max, hi);
        } else {
            const float m = k.absmax(run, plan.run_length);
            s.absmax = std::max(s.absmax, m);
            if (plan.format == GREY_QUANT_Q4_0)  // groups of 32: one run per set
                s.peak = *std::find_if(run, run + plan.run_length, [m](float v) { return std::fabs(v) == m; });
        }
    }
    return stats;
}

// The clipping fractions the MSE calibration tries, largest first (ties keep the larger range): down
// to half the range in steps of 2% at 4 bits, down to 90% in steps of 0.5% at 8 bits, where the
// rounding error is small and only a light clip can pay for itself.
std::vector<float> clip_grid(grey_quant_format format) {
    const bool four_bit = format == GREY_QUANT_INT4 || format == GREY_QUANT_INT4_SYM || format == GREY_QUANT_NF4 ||
                          format == GREY_QUANT_Q4_0 || format == GREY_QUANT_Q4_1;
    const int steps = four_bit ? 25 : 20;
    const float step = four_bit ? 0.02f : 0.005f;
    std::vector<float> grid;
    for (int i = 0; i <= steps; ++i) grid.push_back(1.0f - step * static_cast<float>(i));
    return grid;
}

double squared_error(std::span<const float> x, std::span<const float> y) {
    double sum = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double e = static_cast<double>(x[i]) - static_cast<double>(y[i]);
        sum += e * e;
    }
    return sum;
}

// INT4 (asymmetric) coding with a given fp16 scale and min.
Coding int4_coding(float scale, float min) {
    Coding c;
    c.scale16 = grey::quant::f32_to_f16(scale);
    c.min16 = grey::quant::f32_to_f16(min);
    const float d = grey::quant::f16_to_f32(c.scale16), m = grey::quant::f16_to_f32(c.min16);
    c.encode = {m, inverse(d), 0.0f, Rounding::nearest_away, 0, 15};
    c.decode = {0.0f, d, m};
    return c;
}

// For one INT4 group whose codes are fixed, the scale and min that minimise the squared error are a
// least-squares line fit of x against the codes; refit, re-encode, and keep going while it helps.
Coding refine_int4(std::span<const float> x, Coding best, double best_error, const Kernels& k) {
    std::vector<int8_t> codes(x.size());
    std::vector<float> decoded(x.size());
    for (int iteration = 0; iteration < 4; ++iteration) {
        k.encode(x.data(), x.size(), best.encode, codes.data());
        double sq = 0, sx = 0, sqq = 0, sqx = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            sq += codes[i];
            sx += x[i];
            sqq += static_cast<double>(codes[i]) * codes[i];
            sqx += static_cast<double>(codes[i]) * x[i];
        }
        const double n = static_cast<double>(x.size());
        const double denominator = n * sqq - sq * sq;
        if (denominator <= 0.0) break;  // every code equal: nothing to fit
        const double scale = (n * sqx - sq * sx) / denominator;
        const double min = (sx - scale * sq) / n;
        const Coding candidate = int4_coding(static_cast<float>(scale), static_cast<float>(min));
        k.encode(x.data(), x.size(), candidate.encode, codes.data());
        k.decode(codes.data(), x.size(), candidate.decode, decoded.data());
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
std::vector<Coding> choose_codings(const Plan& plan, std::span<const float> x, const std::vector<Stats>& stats, const Kernels& k) {
    std::vector<Coding> best(plan.param_count);
    for (uint64_t p = 0; p < plan.param_count; ++p) best[p] = make_coding(plan.format, stats[p], 1.0f);
    if (plan.calibration != GREY_CALIBRATION_MSE) return best;
    std::vector<double> best_error(plan.param_count, std::numeric_limits<double>::infinity());
    std::vector<double> error(plan.param_count);
    std::vector<Coding> codings(plan.param_count);
    std::vector<int8_t> codes(plan.run_length);
    std::vector<float> decoded(plan.run_length);
    for (const float alpha : clip_grid(plan.format)) {
        for (uint64_t p = 0; p < plan.param_count; ++p) codings[p] = make_coding(plan.format, stats[p], alpha);
        std::fill(error.begin(), error.end(), 0.0);
        for (uint64_t r = 0; r < plan.run_count(); ++r) {
            const uint64_t p = r % plan.param_count;
            const auto run = x.subspan(r * plan.run_length, plan.run_length);
            encode_run(plan.format, codings[p], run, codes.data(), k);
            decode_run(plan.format, codings[p], codes.data(), decoded, k);
            error[p] += squared_error(run, decoded);
        }
        for (uint64_t p = 0; p < plan.param_count; ++p)
            if (error[p] < best_error[p]) {
                best_error[p] = error[p];
                best[p] = codings[p];
            }
    }
    if (plan.format == GREY_QUANT_INT4)  // groups: run r is parameter set r
        for (uint64_t p = 0; p < plan.param_count; ++p)
            best[p] = refine_int4(x.subspan(p * plan.run_length, plan.run_length), best[p], best_error[p], k);
    return best;
}

void store_u16(std::byte* at, uint16_t v) { std::memcpy(at, &v, sizeof v); }
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

// Reads back the parameter set `p` that quantize() stored.
Coding load_coding(const Plan& plan, std::span<const std::byte> in, uint64_t p) {
    using grey::quant::f16_to_f32;
    Coding c;
    const std::byte* params = in.data() + plan.codes_bytes;
    switch (plan.format) {
        case GREY_QUANT_INT8: case GREY_QUANT_INT8_TOKEN:
            c.scale = load_f32(params + 4 * p);
            c.decode = {0.0f, c.scale, 0.0f};
            break;
        case GREY_QUANT_FP8_E4M3: case GREY_QUANT_FP8_E5M2: case GREY_QUANT_NF4:
            c.scale = load_f32(params + 4 * p);
            break;
        case GREY_QUANT_INT4_SYM:
            c.decode = {0.0f, f16_to_f32(load_u16(params + 2 * p)), 0.0f};
            break;
        case GREY_QUANT_INT4:
            c.decode = {0.0f, f16_to_f32(load_u16(params + 2 * p)), f16_to_f32(load_u16(params + 2 * plan.param_count + 2 * p))};
            break;
        case GREY_QUANT_Q8_0:
            c.decode = {0.0f, f16_to_f32(load_u16(in.data() + 34 * p)), 0.0f};
            break;
        case GREY_QUANT_Q4_0:
            c.decode = {8.0f, f16_to_f32(load_u16(in.data() + 18 * p)), 0.0f};
            break;
        case GREY_QUANT_Q4_1:
            c.decode = {0.0f, f16_to_f32(load_u16(in.data() + 20 * p)), f16_to_f32(load_u16(in.data() + 20 * p + 2))};
            break;
        default: fail(GREY_ERROR_INTERNAL, "unhandled quantization format");
    }
    return c;
}

// ggml packs a block of 32 as qs[j] = q[j] | q[j + 16] << 4; libgrey's planar 4-bit formats pack
// neighbours, byte i = q[2i] | q[2i + 1] << 4.
void pack_ggml_nibbles(const int8_t* codes, std::byte* qs) {
    for (int j = 0; j < 16; ++j) qs[j] = static_cast<std::byte>((codes[j] & 0x0F) | ((codes[j + 16] & 0x0F) << 4));
}
void unpack_ggml_nibbles(const std::byte* qs, int8_t* codes) {
    for (int j = 0; j < 16; ++j) {
        codes[j] = static_cast<int8_t>(std::to_integer<int>(qs[j]) & 0x0F);
        codes[j + 16] = static_cast<int8_t>(std::to_integer<int>(qs[j]) >> 4);
    }
}

}  // namespace

namespace {

void require_finite(std::span<const float> values) {
    for (std::size_t i = 0; i < values.size(); ++i)
        if (!std::isfinite(values[i]))
            fail(GREY_ERROR_INVALID_ARGUMENT, "element " + std::to_string(i) + " is " + (std::isnan(values[i]) ? "NaN" : "infinite") + "; only finite values can be quantized");
}

}  // namespace

std::vector<float> to_f32(grey_dtype dtype, std::span<const std::byte> source, uint64_t elements, const Kernels& kernels) {
    std::vector<float> out(elements);
    if (dtype == GREY_DTYPE_F32) {
        std::memcpy(out.data(), source.data(), elements * sizeof(float));
    } else {
        // Copy through an aligned block: mapped file data need not be 2-byte aligned.
        constexpr std::size_t kBlock = 4096;
        std::array<uint16_t, kBlock> halves{};
        for (uint64_t done = 0; done < elements; done += kBlock) {
            const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(kBlock, elements - done));
            std::memcpy(halves.data(), source.data() + done * 2, n * 2);
            if (dtype == GREY_DTYPE_F16)
                kernels.f16_to_f32(halves.data(), n, out.data() + done);
            else
                for (std::size_t i = 0; i < n; ++i) out[done + i] = grey::quant::bf16_to_f32(halves[i]);
        }
    }
    require_finite(out);
    return out;
}

std::span<const float> as_f32(grey_dtype dtype, std::span<const std::byte> source, uint64_t elements, const Kernels& kernels,
                              std::vector<float>& storage) {
    if (dtype != GREY_DTYPE_F32 || reinterpret_cast<uintptr_t>(source.data()) % alignof(float) != 0) {
        storage = to_f32(dtype, source, elements, kernels);
        return storage;
    }
    const std::span<const float> values(reinterpret_cast<const float*>(source.data()), static_cast<std::size_t>(elements));
    require_finite(values);
    return values;
}

void from_f32(std::span<const float> values, grey_dtype dtype, std::span<std::byte> destination) {
    if (dtype == GREY_DTYPE_F32) {
        std::memcpy(destination.data(), values.data(), values.size() * sizeof(float));
        return;
    }
    for (std::size_t i = 0; i < values.size(); ++i) {
        const uint16_t h = dtype == GREY_DTYPE_F16 ? grey::quant::f32_to_f16(values[i]) : grey::quant::f32_to_bf16(values[i]);
        std::memcpy(destination.data() + 2 * i, &h, 2);
    }
}

void quantize(const Plan& plan, std::span<const float> x, std::span<std::byte> out, const Kernels& k) {
    const auto stats = gather_stats(plan, x, k);
    const auto codings = choose_codings(plan, x, stats, k);
    // Formats with fp16 parameters are grouped (set p is run p), so set p covers the elements of run p.
    for (uint64_t p = 0; p < plan.param_count; ++p)
        if (!grey::quant::f16_is_finite(codings[p].scale16) || !grey::quant::f16_is_finite(codings[p].min16))
            fail(GREY_ERROR_INVALID_ARGUMENT, grey::quant::f16_overflow_message(plan.format, p * plan.run_length, plan.run_length));

    std::byte* params = out.data() + plan.codes_bytes;
    for (uint64_t p = 0; p < plan.param_count; ++p) {
        const Coding& c = codings[p];
        switch (plan.format) {
            case GREY_QUANT_INT8: case GREY_QUANT_INT8_TOKEN: case GREY_QUANT_FP8_E4M3: case GREY_QUANT_FP8_E5M2: case GREY_QUANT_NF4:
                store_f32(params + 4 * p, c.scale);
                break;
            case GREY_QUANT_INT4_SYM: store_u16(params + 2 * p, c.scale16); break;
            case GREY_QUANT_INT4:
                store_u16(params + 2 * p, c.scale16);
                store_u16(params + 2 * plan.param_count + 2 * p, c.min16);
                break;
            default: break;  // ggml blocks carry their parameters inline
        }
    }

    std::vector<int8_t> codes(plan.run_length);
    for (uint64_t r = 0; r < plan.run_count(); ++r) {
        const uint64_t p = r % plan.param_count;
        const uint64_t first = r * plan.run_length;
        encode_run(plan.format, codings[p], x.subspan(first, plan.run_length), codes.data(), k);
        switch (plan.format) {
            case GREY_QUANT_INT8: case GREY_QUANT_INT8_TOKEN: case GREY_QUANT_FP8_E4M3: case GREY_QUANT_FP8_E5M2:
                std::memcpy(out.data() + first, codes.data(), plan.run_length);
                break;
            case GREY_QUANT_INT4: case GREY_QUANT_INT4_SYM: case GREY_QUANT_NF4: {
                const int bias = plan.format == GREY_QUANT_INT4_SYM ? 8 : 0;
                std::byte* packed = out.data() + first / 2;
                for (uint64_t i = 0; i < plan.run_length; i += 2)
                    packed[i / 2] = static_cast<std::byte>(((codes[i] + bias) & 0x0F) | (((codes[i + 1] + bias) & 0x0F) << 4));
                break;
            }
            case GREY_QUANT_Q8_0:
                store_u16(out.data() + 34 * r, codings[p].scale16);
                std::memcpy(out.data() + 34 * r + 2, codes.data(), 32);
                break;
            case GREY_QUANT_Q4_0:
                store_u16(out.data() + 18 * r, codings[p].scale16);
                pack_ggml_nibbles(codes.data(), out.data() + 18 * r + 2);
                break;
            case GREY_QUANT_Q4_1:
                store_u16(out.data() + 20 * r, codings[p].scale16);
                store_u16(out.data() + 20 * r + 2, codings[p].min16);
                pack_ggml_nibbles(codes.data(), out.data() + 20 * r + 4);
                break;
            default: fail(GREY_ERROR_INTERNAL, "unhandled quantization format");
        }
    }
}

void dequantize_range(const Plan& plan, std::span<const std::byte> in, uint64_t first, std::span<float> out, const Kernels& k) {
    // Codes are unpacked a piece at a time (never more than a run: one parameter set decodes a piece),
    // so that the scratch memory is fixed whatever the run's length. Even, as 4-bit codes come in pairs.
    constexpr uint64_t kPiece = 4096;
    std::vector<int8_t> codes(static_cast<std::size_t>(std::min(kPiece, plan.run_length)));
    const uint64_t end = first + out.size();
    for (uint64_t e = first; e < end;) {
        const uint64_t r = e / plan.run_length;
        const uint64_t n = std::min({plan.run_length - e % plan.run_length, end - e, uint64_t{codes.size()}});
        switch (plan.format) {
            case GREY_QUANT_INT8: case GREY_QUANT_INT8_TOKEN: case GREY_QUANT_FP8_E4M3: case GREY_QUANT_FP8_E5M2:
                std::memcpy(codes.data(), in.data() + e, n);
                break;
            case GREY_QUANT_INT4: case GREY_QUANT_INT4_SYM: case GREY_QUANT_NF4: {
                const int bias = plan.format == GREY_QUANT_INT4_SYM ? 8 : 0;
                const std::byte* packed = in.data() + e / 2;
                for (uint64_t i = 0; i < n; i += 2) {
                    const int byte = std::to_integer<int>(packed[i / 2]);
                    codes[i] = static_cast<int8_t>((byte & 0x0F) - bias);
                    codes[i + 1] = static_cast<int8_t>((byte >> 4) - bias);
                }
                break;
            }
            case GREY_QUANT_Q8_0: std::memcpy(codes.data(), in.data() + 34 * r + 2, 32); break;
            case GREY_QUANT_Q4_0: unpack_ggml_nibbles(in.data() + 18 * r + 2, codes.data()); break;
            case GREY_QUANT_Q4_1: unpack_ggml_nibbles(in.data() + 20 * r + 4, codes.data()); break;
            default: fail(GREY_ERROR_INTERNAL, "unhandled quantization format");
        }
        decode_run(plan.format, load_coding(plan, in, r % plan.param_count), codes.data(), out.subspan(e - first, n), k);
        e += n;
    }
}

void dequantize(const Plan& plan, std::span<const std::byte> in, std::span<float> out, const Kernels& k) {
    dequantize_range(plan, in, 0, out.first(plan.elements), k);
}

}  // namespace grey::host::quant
