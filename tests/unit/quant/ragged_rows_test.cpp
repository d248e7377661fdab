// Grouping that fits every tensor (docs/quantization.md, "Rows and groups"): the grouped formats take a
// weight of rank >= 2 as rows = its first dimension and row length = the rest, a row's last group ragged.
// Conv-shaped and odd tensors are checked byte for byte against a reference written here, independently
// of the library: round to nearest over [out, -1] rows, each group's parameters from its own elements,
// fp16 through the compiler's _Float16, the NF4 levels as bitsandbytes lists them.
#include "host/quant/kernels.hpp"
#include "host/quant/quantizer.hpp"
#include "quant/format.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

namespace hq = grey::host::quant;

struct Format {
    const char* name;  // grey_quant_params_from_name's
    grey_quant_format format;
    uint64_t group;
};

const Format kFormats[] = {
    {"int4-g32", GREY_QUANT_INT4, 32},  {"int4-g64", GREY_QUANT_INT4, 64}, {"int4-g128", GREY_QUANT_INT4, 128},
    {"int4-sym-g128", GREY_QUANT_INT4_SYM, 128}, {"nf4", GREY_QUANT_NF4, 64},
};

// The conv shape classes and the odd ones: kh*kw = 1, 3x3, 5x5, a 1-D kernel, rows shorter than a group,
// rows of one element, a vector (one row), rows of a whole number of groups but an innermost dimension of 1.
const std::vector<std::vector<uint64_t>> kShapes = {
    {8, 3, 1, 1}, {16, 5, 3, 3}, {4, 7, 5, 5}, {6, 5, 7}, {3, 10}, {5, 1}, {5, 1, 1, 1}, {100}, {2, 128, 1, 1}, {3, 2, 8, 8},
};

grey_quant_params params_named(const char* name, grey_quant_calibration calibration = GREY_CALIBRATION_RTN) {
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    EXPECT_EQ(grey_quant_params_from_name(name, &p), GREY_OK) << grey_last_error();
    p.calibration = calibration;
    return p;
}

using grey::test::desc_of;

uint64_t count(const std::vector<uint64_t>& shape) {
    uint64_t n = 1;
    for (const auto d : shape) n *= d;
    return n;
}

std::vector<float> weights(std::size_t n, uint32_t seed) {
    return grey::test::normal_values(n, seed, 0.05f, 3, 41, 6.0f);
}

// ------------------------------------------------------------------------------------------------
// The reference.

uint16_t f16_bits(float v) {
    const _Float16 h = static_cast<_Float16>(v);
    uint16_t bits;
    std::memcpy(&bits, &h, 2);
    return bits;
}
float f16_value(uint16_t bits) {
    _Float16 h;
    std::memcpy(&h, &bits, 2);
    return static_cast<float>(h);
}
float reciprocal(float d) {
    const float r = d != 0.0f ? 1.0f / d : 0.0f;
    return std::isinf(r) ? 0.0f : r;
}

constexpr float kNf4[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
                            -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
                            0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
                            0.7229568362236023f, 1.0f};

struct Expected {
    std::vector<uint8_t> codes;   // a row = ceil(L / 2) bytes, the pad nibble 0
    std::vector<uint8_t> params;  // the parameter arrays as stored
    std::vector<float> decoded;   // every element, in the tensor's order
};

void put_u16(std::vector<uint8_t>& to, std::size_t at, uint16_t v) {
    to[at] = static_cast<uint8_t>(v);
    to[at + 1] = static_cast<uint8_t>(v >> 8);
}

Expected reference(const Format& f, const std::vector<uint64_t>& shape, const std::vector<float>& x) {
    const uint64_t rows = shape.size() >= 2 ? shape[0] : 1;
    const uint64_t length = x.size() / rows;
    const uint64_t groups = (length + f.group - 1) / f.group;
    const uint64_t row_bytes = (length + 1) / 2;
    const uint64_t sets = rows * groups;
    Expected e;
    e.codes.assign(rows * row_bytes, 0);
    e.params.assign(sets * (f.format == GREY_QUANT_INT4_SYM ? 2 : 4), 0);
    e.decoded.assign(x.size(), 0.0f);
    for (uint64_t r = 0; r < rows; ++r)
        for (uint64_t g = 0; g < groups; ++g) {
            const uint64_t set = r * groups + g;
            const uint64_t begin = r * length + g * f.group, end = r * length + std::min(length, (g + 1) * f.group);
            float lo = x[begin], hi = x[begin], absmax = 0.0f;
            for (uint64_t i = begin; i < end; ++i) {
                lo = std::min(lo, x[i]);
                hi = std::max(hi, x[i]);
                absmax = std::max(absmax, std::fabs(x[i]));
            }
            for (uint64_t i = begin; i < end; ++i) {
                uint32_t stored = 0;
                float value = 0.0f;
                if (f.format == GREY_QUANT_INT4) {
                    const uint16_t min16 = f16_bits(lo);
                    const float m = f16_value(min16);
                    const uint16_t scale16 = f16_bits((hi - m) / 15.0f);
                    const float d = f16_value(scale16);
                    put_u16(e.params, 2 * set, scale16);
                    put_u16(e.params, 2 * sets + 2 * set, min16);
                    const auto q = static_cast<int>(std::clamp(std::round((x[i] - m) * reciprocal(d)), 0.0f, 15.0f));
                    stored = static_cast<uint32_t>(q);
                    value = static_cast<float>(q) * d + m;
                } else if (f.format == GREY_QUANT_INT4_SYM) {
                    const uint16_t scale16 = f16_bits(absmax / 7.0f);
                    const float d = f16_value(scale16);
                    put_u16(e.params, 2 * set, scale16);
                    const auto q = static_cast<int>(std::clamp(std::round(x[i] * reciprocal(d)), -8.0f, 7.0f));
                    stored = static_cast<uint32_t>(q + 8);
                    value = static_cast<float>(q) * d;
                } else {  // NF4: the nearest level to x / absmax, ties to the lower one
                    std::memcpy(&e.params[4 * set], &absmax, 4);
                    const float v = x[i] * reciprocal(absmax);
                    uint32_t best = 0;
                    for (uint32_t c = 1; c < 16; ++c)
                        if (std::fabs(static_cast<double>(v) - kNf4[c]) < std::fabs(static_cast<double>(v) - kNf4[best])) best = c;
                    stored = best;
                    value = kNf4[best] * absmax;
                }
                const uint64_t in_row = i - r * length;
                e.codes[r * row_bytes + in_row / 2] |= static_cast<uint8_t>(stored << (in_row % 2 == 0 ? 0 : 4));
                e.decoded[i] = value;
            }
        }
    return e;
}

std::vector<uint8_t> slice(const std::vector<std::byte>& bytes, std::size_t from, std::size_t size) {
    std::vector<uint8_t> out(size);
    std::memcpy(out.data(), bytes.data() + from, size);
    return out;
}

// ------------------------------------------------------------------------------------------------

TEST(QuantRows, ConvAndOddShapesEqualTheIndependentReferenceByteForByte) {
    uint32_t seed = 100;
    for (const auto& f : kFormats)
        for (const auto& shape : kShapes) {
            const uint64_t n = count(shape);
            std::string label = std::string(f.name) + " [";
            for (const auto d : shape) label += std::to_string(d) + ",";
            SCOPED_TRACE(label + "]");
            const auto x = weights(n, ++seed);
            const auto expected = reference(f, shape, x);
            const auto desc = desc_of(shape);
            const auto params = params_named(f.name);
            uint64_t size = 0;
            ASSERT_EQ(grey_quant_size(&desc, &params, &size), GREY_OK) << grey_last_error();
            ASSERT_EQ(size, expected.codes.size() + expected.params.size()) << "codes, then the parameter arrays, nothing else";
            std::vector<std::byte> q(size);
            grey_quant_report report{};
            report.struct_size = sizeof report;
            ASSERT_EQ(grey_quantize(&desc, x.data(), n * 4, &params, q.data(), q.size(), &report), GREY_OK) << grey_last_error();
            EXPECT_EQ(slice(q, 0, expected.codes.size()), expected.codes);
            EXPECT_EQ(slice(q, expected.codes.size(), expected.params.size()), expected.params);
            std::vector<float> y(n);
            ASSERT_EQ(grey_dequantize(&desc, &params, q.data(), q.size(), y.data(), y.size() * 4), GREY_OK) << grey_last_error();
            ASSERT_EQ(std::memcmp(y.data(), expected.decoded.data(), n * 4), 0) << "every element back in its place";
            // The report measures those same values.
            double signal = 0.0, error = 0.0;
            for (uint64_t i = 0; i < n; ++i) {
                signal += static_cast<double>(x[i]) * x[i];
                error += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
            }
            EXPECT_NEAR(report.rel_rmse, std::sqrt(error / signal), 1e-12);
            EXPECT_EQ(report.elements, n);
        }
}

TEST(QuantRows, TheLayoutSaysRowsOnlyWhenARowIsNotWholeGroups) {
    const auto ragged = grey::quant::make_layout(std::vector<uint64_t>{64, 3, 3, 3}, params_named("int4-g128"));
    EXPECT_EQ(ragged.required_features, GREY_QUANT_LAYOUT_ROWS);
    EXPECT_EQ(ragged.row_length, 27u);
    EXPECT_EQ(ragged.run_length, 128u);
    EXPECT_EQ(ragged.param_count, 64u);
    EXPECT_EQ(ragged.codes_bytes, 64u * 14);
    EXPECT_EQ(ragged.bytes, 64u * 14 + 64 * 4) << "docs/quantization.md's example: 1,152 bytes";
    EXPECT_EQ(grey_quant_layout_runs(&ragged), 64u);
    // Rows of whole groups keep the flat layout: the bytes of a [rows, row_length] matrix.
    const auto whole = grey::quant::make_layout(std::vector<uint64_t>{4, 128, 1, 1}, params_named("int4-g64"));
    const auto matrix = grey::quant::make_layout(std::vector<uint64_t>{4, 128}, params_named("int4-g64"));
    EXPECT_EQ(whole.required_features, 0u);
    EXPECT_EQ(whole.row_length, 0u);
    EXPECT_EQ(std::memcmp(&whole, &matrix, sizeof whole), 0);
    // A [2, 96] matrix in groups of 64: one full group and one of 32 a row.
    const auto two = grey::quant::make_layout(std::vector<uint64_t>{2, 96}, params_named("int4-g64"));
    EXPECT_EQ(two.param_count, 4u);
    EXPECT_EQ(two.bytes, 96u + 4 * 4);
}

// The ggml formats keep ggml's rule, with a reason that says which rule and why.
TEST(QuantRows, GgmlFormatsKeepGgmlsRowRule) {
    for (const char* name : {"q8_0", "q4_0", "q4_1"}) {
        SCOPED_TRACE(name);
        const auto desc = desc_of({16, 5, 3, 3});
        const auto params = params_named(name);
        uint64_t size = 0;
        EXPECT_EQ(grey_quant_size(&desc, &params, &size), GREY_ERROR_INVALID_ARGUMENT);
        EXPECT_EQ(std::string(grey_last_error()), std::string(name) +
                                                      ": the innermost dimension 3 is not a multiple of 32 (ggml's block, which llama.cpp "
                                                      "reads along the innermost dimension)");
        const auto fits = desc_of({4, 3, 32});
        EXPECT_EQ(grey_quant_size(&fits, &params, &size), GREY_OK) << grey_last_error();
    }
}

// F16 input, MSE calibration, slices that start inside a row and both kernel sets: the same bits.
TEST(QuantRows, RaggedRowsDecodeInSlicesAndTheKernelSetsAgree) {
    const auto& scalar = hq::scalar_kernels();
    const hq::Kernels* avx2 = hq::avx2_kernels();
    const std::vector<uint64_t> shape{7, 5, 3, 3};  // rows of 45: odd, ragged in every grouped format
    const auto x = weights(count(shape), 7);
    for (const auto& f : kFormats)
        for (const auto calibration : {GREY_CALIBRATION_RTN, GREY_CALIBRATION_MSE}) {
            SCOPED_TRACE(std::string(f.name) + (calibration == GREY_CALIBRATION_MSE ? " mse" : " rtn"));
            const auto plan = grey::quant::make_layout(shape, params_named(f.name, calibration));
            ASSERT_EQ(plan.required_features, GREY_QUANT_LAYOUT_ROWS);
            std::vector<std::byte> a(plan.bytes);
            hq::quantize(plan, x, a, scalar);
            if (avx2 != nullptr) {
                std::vector<std::byte> b(plan.bytes);
                hq::quantize(plan, x, b, *avx2);
                ASSERT_EQ(a, b);
            }
            std::vector<float> whole(plan.elements);
            hq::dequantize(plan, a, whole, scalar);
            for (const uint64_t first : {uint64_t{0}, uint64_t{44}, uint64_t{45}, uint64_t{101}, uint64_t{300}}) {
                std::vector<float> part(plan.elements - first);
                hq::dequantize_range(plan, a, first, part, scalar);
                ASSERT_EQ(std::memcmp(part.data(), whole.data() + first, part.size() * 4), 0) << "from element " << first;
            }
            if (calibration == GREY_CALIBRATION_MSE) {  // never worse than round to nearest
                const auto rtn_plan = grey::quant::make_layout(shape, params_named(f.name));
                std::vector<std::byte> r(rtn_plan.bytes);
                hq::quantize(rtn_plan, x, r, scalar);
                std::vector<float> rtn(plan.elements);
                hq::dequantize(rtn_plan, r, rtn, scalar);
                double e_mse = 0, e_rtn = 0;
                for (std::size_t i = 0; i < x.size(); ++i) {
                    e_mse += (static_cast<double>(x[i]) - whole[i]) * (static_cast<double>(x[i]) - whole[i]);
                    e_rtn += (static_cast<double>(x[i]) - rtn[i]) * (static_cast<double>(x[i]) - rtn[i]);
                }
                EXPECT_LE(e_mse, e_rtn);
            }
        }
    // F16 input widens exactly: the F32 of the same values gives the same bytes.
    std::vector<uint16_t> halves(x.size());
    std::vector<float> widened(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        halves[i] = f16_bits(x[i]);
        widened[i] = f16_value(halves[i]);
    }
    const auto params = params_named("int4-g32");
    const auto d16 = desc_of(shape, GREY_DTYPE_F16), d32 = desc_of(shape);
    uint64_t size = 0;
    ASSERT_EQ(grey_quant_size(&d32, &params, &size), GREY_OK);
    std::vector<std::byte> q16(size), q32(size);
    ASSERT_EQ(grey_quantize(&d16, halves.data(), halves.size() * 2, &params, q16.data(), size, nullptr), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_quantize(&d32, widened.data(), widened.size() * 4, &params, q32.data(), size, nullptr), GREY_OK) << grey_last_error();
    EXPECT_EQ(q16, q32);
}

// A ragged group too large for fp16 parameters is named with its own elements.
TEST(QuantRows, AnOverflowingRaggedGroupIsNamedExactly) {
    const std::vector<uint64_t> shape{2, 40};  // int4-g32: groups of 32 and 8 a row
    std::vector<float> x(80, 0.5f);
    x[40 + 35] = 1e7f;  // row 1, its ragged group: elements 72 to 79
    const auto desc = desc_of(shape);
    const auto params = params_named("int4-sym-g128");
    std::vector<std::byte> q(1024);
    ASSERT_EQ(grey_quantize(&desc, x.data(), x.size() * 4, &params, q.data(), q.size(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("elements 40 to 79"), std::string::npos) << grey_last_error();
    const auto g32 = params_named("int4-g32");
    x[75] = 0.5f;
    x[74] = -1e7f;
    x[73] = 1e7f;
    ASSERT_EQ(grey_quantize(&desc, x.data(), x.size() * 4, &g32, q.data(), q.size(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("elements 72 to 79"), std::string::npos) << grey_last_error();
}

}  // namespace
