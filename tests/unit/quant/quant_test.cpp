// Quantization formats: sizes, round-trip error on synthetic Gaussian weights, the MSE calibration, the
// C API's argument checks, device buffers.
#include "host/host_backend.hpp"
#include "host/quant/kernels.hpp"
#include "host/quant/quantizer.hpp"
#include "quant/format.hpp"
#include "quant/measure.hpp"
#include "common/numeric.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

namespace {

namespace hq = grey::host::quant;

struct Case {
    const char* label;
    grey_quant_format format;
    uint32_t group;
    int32_t axis;
    double bits_per_weight;  // on the 64 x 256 test tensor
    double max_rel_rmse;     // bound on Gaussian data (see docs/quantization.md)
};

// Bounds: 1.25x the largest round-to-nearest error measured on this 64 x 256 tensor over seeds 11,
// 12, 99 and 12345 (docs/quantization.md lists the figures): loose enough for any seed, tight enough
// that a wrong scale, a lost bit or a swapped nibble fails.
const Case kCases[] = {
    {"int8", GREY_QUANT_INT8, 0, 0, 8.0 + 32.0 / 256, 0.0157},
    {"int8-axis1", GREY_QUANT_INT8, 0, 1, 8.0 + 32.0 / 64, 0.0103},
    {"int8-token", GREY_QUANT_INT8_TOKEN, 0, 0, 8.0 + 32.0 / 256, 0.0157},
    {"int4-g32", GREY_QUANT_INT4, 32, 0, 5.0, 0.107},
    {"int4-g64", GREY_QUANT_INT4, 64, 0, 4.5, 0.133},
    {"int4-g128", GREY_QUANT_INT4, 128, 0, 4.25, 0.162},
    {"int4-sym-g32", GREY_QUANT_INT4_SYM, 32, 0, 4.5, 0.151},
    {"int4-sym-g128", GREY_QUANT_INT4_SYM, 128, 0, 4.125, 0.231},
    {"fp8-e4m3", GREY_QUANT_FP8_E4M3, 0, 0, 8.0 + 32.0 / 256, 0.0316},
    {"fp8-e4m3-tensor", GREY_QUANT_FP8_E4M3, 0, GREY_QUANT_PER_TENSOR, 8.0 + 32.0 / 16384, 0.0330},
    {"fp8-e5m2", GREY_QUANT_FP8_E5M2, 0, 0, 8.0 + 32.0 / 256, 0.0630},
    {"nf4", GREY_QUANT_NF4, 0, 0, 4.5, 0.133},
    {"q8_0", GREY_QUANT_Q8_0, 0, 0, 8.5, 0.0083},
    {"q4_0", GREY_QUANT_Q4_0, 0, 0, 4.5, 0.134},
    {"q4_1", GREY_QUANT_Q4_1, 0, 0, 5.0, 0.107},
};

grey_quant_params params_of(const Case& c, grey_quant_calibration calibration = GREY_CALIBRATION_RTN) {
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    p.format = c.format;
    p.group_size = c.group;
    p.axis = c.axis;
    p.calibration = calibration;
    return p;
}

using grey::test::desc_of;

// Gaussian weights with a few outliers per row, as trained weights have.
std::vector<float> gaussian(std::size_t n, uint32_t seed) { return grey::test::normal_values(n, seed, 1.0f, 0, 97, 4.0f); }

grey_quant_report quantize_ok(const grey_tensor_desc& desc, const void* data, uint64_t bytes, const grey_quant_params& params,
                              std::vector<std::byte>& out) {
    uint64_t size = 0;
    EXPECT_EQ(grey_quant_size(&desc, &params, &size), GREY_OK) << grey_last_error();
    out.assign(size, std::byte{0});
    grey_quant_report report{};
    report.struct_size = sizeof report;
    EXPECT_EQ(grey_quantize(&desc, data, bytes, &params, out.data(), out.size(), &report), GREY_OK) << grey_last_error();
    return report;
}

}  // namespace

TEST(Quant, EveryFormatRoundTripsWithinItsBoundFromEachInputType) {
    const std::vector<uint64_t> shape = {64, 256};
    const auto x = gaussian(64 * 256, 11);
    for (const auto& c : kCases) {
        for (const grey_dtype dtype : {GREY_DTYPE_F32, GREY_DTYPE_F16, GREY_DTYPE_BF16}) {
            SCOPED_TRACE(std::string(c.label) + " from " + grey_dtype_name(dtype));
            std::vector<std::byte> input(x.size() * (dtype == GREY_DTYPE_F32 ? 4 : 2));
            hq::from_f32(x, dtype, input);
            const auto desc = desc_of(shape, dtype);
            std::vector<std::byte> q;
            const auto report = quantize_ok(desc, input.data(), input.size(), params_of(c), q);
            EXPECT_EQ(report.elements, x.size());
            EXPECT_DOUBLE_EQ(report.bits_per_weight, c.bits_per_weight);
            EXPECT_LT(report.rel_rmse, c.max_rel_rmse);
            EXPECT_GT(report.rel_rmse, 0.0) << "a lossy format that reports no loss is measuring the wrong thing";
            EXPECT_NEAR(report.sqnr_db, -20.0 * std::log10(report.rel_rmse), 1e-9);
            EXPECT_EQ(report.calibration, GREY_CALIBRATION_RTN);

            // Dequantize independently and measure again through the compare entry point.
            std::vector<std::byte> back(input.size());
            const auto p = params_of(c);
            ASSERT_EQ(grey_dequantize(&desc, &p, q.data(), q.size(), back.data(), back.size()), GREY_OK) << grey_last_error();
            grey_quant_report again{};
            again.struct_size = sizeof again;
            ASSERT_EQ(grey_quant_compare(&desc, input.data(), back.data(), input.size(), &again), GREY_OK) << grey_last_error();
            if (dtype == GREY_DTYPE_F32) {
                EXPECT_DOUBLE_EQ(again.sum_squared_error, report.sum_squared_error);
            }
            EXPECT_NEAR(again.rel_rmse, report.rel_rmse, dtype == GREY_DTYPE_F32 ? 0.0 : 0.01);
        }
    }
}

// The host backend measures a slice of 2^20 elements at a time and reads aligned F32 input where it lies
// (an unaligned tensor is copied first): neither may change a bit of the output or of the report.
TEST(Quant, TensorsLargerThanAMeasuringSliceGiveExactReportsAlignedOrNot) {
    const std::vector<uint64_t> shape = {4104, 256};  // 2^20 + 2,048 elements
    const auto x = gaussian(4104 * 256, 13);
    const auto desc = desc_of(shape);
    const uint64_t bytes = x.size() * sizeof(float);
    std::vector<std::byte> unaligned(bytes + 1);
    std::memcpy(unaligned.data() + 1, x.data(), bytes);
    for (const char* label : {"int8-axis1", "int4-g128", "nf4", "q4_0"}) {
        SCOPED_TRACE(label);
        const Case& c = *std::find_if(std::begin(kCases), std::end(kCases), [&](const Case& k) { return std::strcmp(k.label, label) == 0; });
        std::vector<std::byte> q, q_unaligned;
        const auto report = quantize_ok(desc, x.data(), bytes, params_of(c), q);
        const auto report_unaligned = quantize_ok(desc, unaligned.data() + 1, bytes, params_of(c), q_unaligned);
        EXPECT_EQ(q, q_unaligned);
        EXPECT_EQ(report_unaligned.sum_squared_error, report.sum_squared_error);
        EXPECT_EQ(report_unaligned.max_abs_err, report.max_abs_err);

        // The same sums, in the same order, over the whole tensor decoded at once.
        std::vector<float> back(x.size());
        const auto p = params_of(c);
        ASSERT_EQ(grey_dequantize(&desc, &p, q.data(), q.size(), back.data(), bytes), GREY_OK) << grey_last_error();
        grey_quant_report whole{};
        whole.struct_size = sizeof whole;
        ASSERT_EQ(grey_quant_compare(&desc, x.data(), back.data(), bytes, &whole), GREY_OK) << grey_last_error();
        EXPECT_EQ(report.elements, x.size());
        EXPECT_EQ(report.sum_squared_signal, whole.sum_squared_signal);
        EXPECT_EQ(report.sum_squared_error, whole.sum_squared_error);
        EXPECT_EQ(report.max_abs_err, whole.max_abs_err);
    }
}

TEST(Quant, MseCalibrationNeverLosesToRoundToNearestAndWinsOnFourBits) {
    const auto x = gaussian(64 * 256, 12);
    const auto desc = desc_of({64, 256});
    for (const auto& c : kCases) {
        SCOPED_TRACE(c.label);
        std::vector<std::byte> q;
        const auto rtn = quantize_ok(desc, x.data(), x.size() * 4, params_of(c, GREY_CALIBRATION_RTN), q);
        const auto mse = quantize_ok(desc, x.data(), x.size() * 4, params_of(c, GREY_CALIBRATION_MSE), q);
        EXPECT_EQ(mse.calibration, GREY_CALIBRATION_MSE);
        EXPECT_LE(mse.sum_squared_error, rtn.sum_squared_error);
        if (c.format == GREY_QUANT_INT4 || c.format == GREY_QUANT_INT4_SYM || c.format == GREY_QUANT_NF4) {
            EXPECT_LT(mse.rel_rmse, 0.97 * rtn.rel_rmse) << "clipping should pay off at 4 bits on data with outliers";
        }
        if (c.format == GREY_QUANT_INT4) {
            EXPECT_LT(mse.rel_rmse, 0.95 * rtn.rel_rmse) << "the least-squares refit should add to the clipping search";
        }
    }
}

TEST(Quant, ConstantAndZeroTensorsAreExact) {
    const auto desc = desc_of({4, 128});
    for (const float value : {0.0f, 0.5f, -3.0f}) {
        const std::vector<float> x(512, value);
        for (const auto& c : kCases) {
            SCOPED_TRACE(std::string(c.label) + " of " + std::to_string(value));
            auto p = params_of(c);
            if (c.axis == 1) continue;  // 4 x 128 has axis 1 too, but the case list is about 64 x 256
            std::vector<std::byte> q;
            const auto report = quantize_ok(desc, x.data(), x.size() * 4, p, q);
            // Every format represents 0 exactly; a constant maps to its scale's top code, exact up to
            // the rounding of an fp16 scale.
            EXPECT_LE(report.max_abs_err, std::fabs(value) * 2e-3) << report.max_abs_err;
        }
    }
}

TEST(Quant, GgmlBlocksMatchTheReferenceOnAHandWorkedBlock) {
    // One block of 32: 0, 1, ..., 31 scaled by 1/4. Q8_0: d = 7.75/127, q = round(x * 127/7.75).
    std::vector<float> x(32);
    for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i) / 4.0f;
    const auto desc = desc_of({32});
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    p.format = GREY_QUANT_Q8_0;
    std::vector<std::byte> q;
    quantize_ok(desc, x.data(), 128, p, q);
    ASSERT_EQ(q.size(), 34u);
    uint16_t d = 0;
    std::memcpy(&d, q.data(), 2);
    EXPECT_EQ(d, grey::common::f32_to_f16(7.75f / 127.0f));
    const float id = 1.0f / (7.75f / 127.0f);
    for (int i = 0; i < 32; ++i) EXPECT_EQ(static_cast<int8_t>(q[2 + i]), static_cast<int8_t>(std::round(x[i] * id))) << i;
    // Q4_0: the peak 7.75 gives d = -7.75/8; code = min(15, trunc(x/d + 8.5)); x = 0 -> 8, x = 7.75 -> 0.
    p.format = GREY_QUANT_Q4_0;
    quantize_ok(desc, x.data(), 128, p, q);
    ASSERT_EQ(q.size(), 18u);
    EXPECT_EQ(std::to_integer<int>(q[2]) & 0x0F, 8);           // element 0
    EXPECT_EQ(std::to_integer<int>(q[2 + 15]) >> 4, 0);        // element 31, the peak
    // Q4_1: min 0, d = 7.75/15; element 31 -> 15, element 0 -> 0.
    p.format = GREY_QUANT_Q4_1;
    quantize_ok(desc, x.data(), 128, p, q);
    ASSERT_EQ(q.size(), 20u);
    EXPECT_EQ(std::to_integer<int>(q[4]) & 0x0F, 0);
    EXPECT_EQ(std::to_integer<int>(q[4 + 15]) >> 4, 15);
}

TEST(Quant, ArgumentsAreCheckedWithClearMessages) {
    const auto x = gaussian(2 * 96, 3);
    auto desc = desc_of({2, 96});
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    std::vector<std::byte> out(1024);
    uint64_t size = 0;
    const auto fails_with = [&](grey_status expected, const char* needle) {
        EXPECT_EQ(grey_quantize(&desc, x.data(), x.size() * 4, &p, out.data(), out.size(), nullptr), expected);
        EXPECT_NE(std::string(grey_last_error()).find(needle), std::string::npos) << grey_last_error();
    };
    p.format = GREY_QUANT_Q4_0;
    desc = desc_of({2, 48});
    fails_with(GREY_ERROR_INVALID_ARGUMENT, "innermost dimension 48 is not a multiple of 32");
    desc = desc_of({2, 96});
    p.format = GREY_QUANT_INT4;
    p.group_size = 48;
    fails_with(GREY_ERROR_INVALID_ARGUMENT, "is not 32, 64 or 128");
    p = GREY_QUANT_PARAMS_INIT;
    p.axis = 2;
    fails_with(GREY_ERROR_INVALID_ARGUMENT, "axis 2 does not exist");
    p.axis = GREY_QUANT_PER_TENSOR;
    fails_with(GREY_ERROR_INVALID_ARGUMENT, "axis -1 does not exist");
    p = GREY_QUANT_PARAMS_INIT;
    p.format = static_cast<grey_quant_format>(77);
    fails_with(GREY_ERROR_INVALID_ARGUMENT, "77 is not a grey_quant_format");
    p = GREY_QUANT_PARAMS_INIT;
    p.struct_size = 4;
    fails_with(GREY_ERROR_INVALID_ARGUMENT, "GREY_QUANT_PARAMS_INIT");
    p = GREY_QUANT_PARAMS_INIT;
    desc.dtype = GREY_DTYPE_I8;
    fails_with(GREY_ERROR_INVALID_ARGUMENT, "must be F32, F16 or BF16");
    desc.dtype = GREY_DTYPE_F32;
    EXPECT_EQ(grey_quantize(&desc, x.data(), x.size() * 4 - 1, &p, out.data(), out.size(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_quantize(&desc, x.data(), x.size() * 4, &p, out.data(), 10, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("destination_bytes"), std::string::npos);
    EXPECT_EQ(grey_quantize(nullptr, x.data(), x.size() * 4, &p, out.data(), out.size(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    auto with_nan = x;
    with_nan[5] = NAN;
    EXPECT_EQ(grey_quantize(&desc, with_nan.data(), x.size() * 4, &p, out.data(), out.size(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("element 5 is NaN"), std::string::npos);
    desc.rank = 9;
    EXPECT_EQ(grey_quant_size(&desc, &p, &size), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(size, 0u) << "out-parameters stay untouched on failure";
    EXPECT_STREQ(grey_quant_format_name(GREY_QUANT_INT4_SYM), "int4-sym");
    EXPECT_EQ(grey_quant_format_name(static_cast<grey_quant_format>(10)), nullptr);
}

// A group whose fp16 scale (or minimum) would overflow cannot be stored: refused, naming the group,
// where storing an infinite scale would decode to NaN and report an infinite SQNR.
TEST(Quant, GroupsTooLargeForFp16ScalesAreRefusedNamingTheGroup) {
    const auto desc = desc_of({2, 128});
    struct TooLarge {
        grey_quant_format format;
        uint32_t group;
        float value;         // element 140 holds it
        float largest_kept;  // a value of that sign the format still stores
        const char* group_text;
    };
    const TooLarge cases[] = {
        {GREY_QUANT_INT4, 32, 1e7f, 9e5f, "elements 128 to 159 (one scale group) are too large for int4: its fp16 scale or minimum would pass 65504"},
        {GREY_QUANT_INT4, 128, -2e5f, -6.5e4f, "elements 128 to 255 (one scale group) are too large for int4: its fp16 scale or minimum"},
        {GREY_QUANT_INT4_SYM, 128, 1e7f, 4.5e5f, "elements 128 to 255 (one scale group) are too large for int4-sym: its fp16 scale would pass"},
        {GREY_QUANT_Q8_0, 0, 1e7f, 8e6f, "elements 128 to 159 (one scale group) are too large for q8_0"},
        {GREY_QUANT_Q4_0, 0, 1e7f, 5e5f, "elements 128 to 159 (one scale group) are too large for q4_0"},
        {GREY_QUANT_Q4_1, 0, -2e5f, -6.5e4f, "elements 128 to 159 (one scale group) are too large for q4_1: its fp16 scale or minimum"},
    };
    for (const auto& c : cases)
        for (const grey_quant_calibration calibration : {GREY_CALIBRATION_RTN, GREY_CALIBRATION_MSE}) {
            grey_quant_params p = GREY_QUANT_PARAMS_INIT;
            p.format = c.format;
            p.group_size = c.group;
            p.calibration = calibration;
            uint64_t size = 0;
            ASSERT_EQ(grey_quant_size(&desc, &p, &size), GREY_OK) << grey_last_error();
            std::vector<std::byte> out(size, std::byte{0xAB});
            auto x = gaussian(2 * 128, 5);
            x[140] = c.value;
            EXPECT_EQ(grey_quantize(&desc, x.data(), x.size() * 4, &p, out.data(), out.size(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
            EXPECT_NE(std::string(grey_last_error()).find(c.group_text), std::string::npos) << grey_last_error();
            EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](std::byte b) { return b == std::byte{0xAB}; }))
                << grey_quant_format_name(c.format) << ": the output stays untouched on a refusal";
            x[140] = c.largest_kept;
            grey_quant_report report{};
            report.struct_size = sizeof report;
            EXPECT_EQ(grey_quantize(&desc, x.data(), x.size() * 4, &p, out.data(), out.size(), &report), GREY_OK) << grey_last_error();
            EXPECT_TRUE(std::isfinite(report.sqnr_db) && std::isfinite(report.max_abs_err)) << grey_quant_format_name(c.format);
        }
}

// A row or group whose maximum is so small that the reciprocal of its scale overflows (1e-37) encodes as
// zeros: finite codes, a finite report and an error below the values, never NaN (fp8 coded 0 * inf).
TEST(Quant, GroupsTooSmallForAReciprocalEncodeAsZeros) {
    const auto desc = desc_of({2, 64});
    std::vector<float> x(128, 0.0f);
    x[1] = 1e-37f;
    x[2] = -5e-38f;
    for (std::size_t i = 64; i < 128; ++i) x[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;  // an ordinary row
    for (const auto& c : kCases) {
        SCOPED_TRACE(c.label);
        grey_quant_params p = params_of(c);
        if (c.group == 128) p.group_size = 64;
        std::vector<std::byte> q;
        const grey_quant_report report = quantize_ok(desc, x.data(), x.size() * 4, p, q);
        std::vector<float> y(128);
        ASSERT_EQ(grey_dequantize(&desc, &p, q.data(), q.size(), y.data(), y.size() * 4), GREY_OK) << grey_last_error();
        for (std::size_t i = 0; i < 64; ++i) EXPECT_LE(std::fabs(y[i] - x[i]), 1e-37f) << "element " << i;
        EXPECT_TRUE(std::isfinite(report.rel_rmse) && std::isfinite(report.max_abs_err));
    }
}

TEST(QuantNames, EveryNameParsesToItsParamsAndRendersBack) {
    struct Expected {
        const char* name;
        grey_quant_format format;
        uint32_t group;
    };
    const Expected expected[] = {
        {"int8", GREY_QUANT_INT8, 0},         {"int8-token", GREY_QUANT_INT8_TOKEN, 0}, {"int4-g32", GREY_QUANT_INT4, 32},
        {"int4-g64", GREY_QUANT_INT4, 64},    {"int4-g128", GREY_QUANT_INT4, 128},      {"int4-sym-g128", GREY_QUANT_INT4_SYM, 128},
        {"fp8-e4m3", GREY_QUANT_FP8_E4M3, 0}, {"fp8-e5m2", GREY_QUANT_FP8_E5M2, 0},     {"nf4", GREY_QUANT_NF4, 0},
        {"q8_0", GREY_QUANT_Q8_0, 0},         {"q4_0", GREY_QUANT_Q4_0, 0},             {"q4_1", GREY_QUANT_Q4_1, 0},
    };
    ASSERT_EQ(grey_quant_name_count(), std::size(expected));
    for (uint32_t i = 0; i < std::size(expected); ++i) {
        const auto& e = expected[i];
        EXPECT_STREQ(grey_quant_name_at(i), e.name);
        grey_quant_params p{};
        p.struct_size = sizeof p;
        ASSERT_EQ(grey_quant_params_from_name(e.name, &p), GREY_OK) << grey_last_error();
        EXPECT_EQ(p.struct_size, sizeof p);
        EXPECT_EQ(p.format, e.format) << e.name;
        EXPECT_EQ(p.group_size, e.group) << e.name;
        EXPECT_EQ(p.axis, 0) << e.name;
        EXPECT_EQ(p.calibration, GREY_CALIBRATION_RTN) << e.name;
        EXPECT_EQ(p.reserved0, 0u);
        EXPECT_STREQ(grey_quant_params_name(&p), e.name);
        p.calibration = GREY_CALIBRATION_MSE;  // not part of the name
        EXPECT_STREQ(grey_quant_params_name(&p), e.name);
        // The parsed params are usable as they are.
        const auto desc = desc_of({4, 128});
        uint64_t size = 0;
        EXPECT_EQ(grey_quant_size(&desc, &p, &size), GREY_OK) << e.name << ": " << grey_last_error();
    }
    EXPECT_EQ(grey_quant_name_at(grey_quant_name_count()), nullptr);
    EXPECT_EQ(grey_quant_name_at(UINT32_MAX), nullptr);
}

TEST(QuantNames, UnknownNamesAndParamsWithoutANameAreReported) {
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    p.format = GREY_QUANT_NF4;
    for (const char* bad : {"int3", "INT8", "int8 ", "", "int4", "int4-g48"}) {
        EXPECT_EQ(grey_quant_params_from_name(bad, &p), GREY_ERROR_INVALID_ARGUMENT) << bad;
        EXPECT_EQ(std::string(grey_last_error()),
                  std::string("unknown quantization format name '") + bad +
                      "'; valid names: int8, int8-token, int4-g32, int4-g64, int4-g128, int4-sym-g128, fp8-e4m3, fp8-e5m2, nf4, "
                      "q8_0, q4_0, q4_1");
        EXPECT_EQ(p.format, GREY_QUANT_NF4) << "out-parameters stay untouched on failure";
    }
    EXPECT_EQ(grey_quant_params_from_name(nullptr, &p), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_quant_params_from_name("int8", nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("out_params must not be NULL"), std::string::npos);
    p.struct_size = 4;
    EXPECT_EQ(grey_quant_params_from_name("int8", &p), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("out_params->struct_size is 4"), std::string::npos);

    p = GREY_QUANT_PARAMS_INIT;
    p.format = GREY_QUANT_INT4;
    EXPECT_STREQ(grey_quant_params_name(&p), "int4-g128") << "group_size 0 means 128";
    p.format = GREY_QUANT_INT4_SYM;
    p.group_size = 32;
    EXPECT_EQ(grey_quant_params_name(&p), nullptr);
    p = GREY_QUANT_PARAMS_INIT;
    p.axis = 1;
    EXPECT_EQ(grey_quant_params_name(&p), nullptr);
    p.format = GREY_QUANT_FP8_E4M3;
    p.axis = GREY_QUANT_PER_TENSOR;
    EXPECT_EQ(grey_quant_params_name(&p), nullptr);
    p = GREY_QUANT_PARAMS_INIT;
    p.format = static_cast<grey_quant_format>(77);
    EXPECT_EQ(grey_quant_params_name(&p), nullptr);
    p = GREY_QUANT_PARAMS_INIT;
    p.struct_size = 4;
    EXPECT_EQ(grey_quant_params_name(&p), nullptr);
    EXPECT_EQ(grey_quant_params_name(nullptr), nullptr);
}

TEST(Quant, DeviceBuffersOnTheHostMatchHostMemoryAndOtherBackendsSayUnsupported) {
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backend_dir = GREY_TEST_PLUGIN_DIR;
    options.backends = "fake";
    auto context = grey::test::make_context(options);
    const auto x = gaussian(8 * 128, 5);
    const auto desc = desc_of({8, 128});
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    p.format = GREY_QUANT_INT4;
    p.calibration = GREY_CALIBRATION_MSE;
    std::vector<std::byte> expected;
    const auto host_report = quantize_ok(desc, x.data(), x.size() * 4, p, expected);

    grey_buffer *source = nullptr, *quantized = nullptr, *restored = nullptr;
    ASSERT_EQ(grey_buffer_create(context.get(), 0, x.size() * 4, &source), GREY_OK);
    ASSERT_EQ(grey_buffer_create(context.get(), 0, expected.size(), &quantized), GREY_OK);
    ASSERT_EQ(grey_buffer_create(context.get(), 0, x.size() * 4, &restored), GREY_OK);
    ASSERT_EQ(grey_buffer_write(source, 0, x.data(), x.size() * 4), GREY_OK);
    grey_quant_report report{};
    report.struct_size = sizeof report;
    ASSERT_EQ(grey_quantize_buffer(&desc, source, 0, &p, quantized, 0, &report), GREY_OK) << grey_last_error();
    std::vector<std::byte> got(expected.size());
    ASSERT_EQ(grey_buffer_read(quantized, 0, got.data(), got.size()), GREY_OK);
    EXPECT_EQ(got, expected);
    EXPECT_DOUBLE_EQ(report.rel_rmse, host_report.rel_rmse);
    ASSERT_EQ(grey_dequantize_buffer(&desc, &p, quantized, 0, restored, 0), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_quantize_buffer(&desc, source, 1, &p, quantized, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);

    // The fake test backend has buffers but no kernels: an honest "unsupported", nothing staged.
    uint32_t count = 0;
    ASSERT_EQ(grey_device_count(context.get(), &count), GREY_OK);
    ASSERT_GE(count, 2u);
    grey_buffer *fake_source = nullptr, *fake_out = nullptr;
    ASSERT_EQ(grey_buffer_create(context.get(), 1, x.size() * 4, &fake_source), GREY_OK);
    ASSERT_EQ(grey_buffer_create(context.get(), 1, expected.size(), &fake_out), GREY_OK);
    EXPECT_EQ(grey_quantize_buffer(&desc, fake_source, 0, &p, fake_out, 0, nullptr), GREY_ERROR_UNSUPPORTED);
    EXPECT_NE(std::string(grey_last_error()).find("the fake backend has no quantization kernels yet"), std::string::npos) << grey_last_error();
    EXPECT_EQ(grey_quantize_buffer(&desc, source, 0, &p, fake_out, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
    for (auto* b : {source, quantized, restored, fake_source, fake_out}) grey_buffer_destroy(b);
}

// A backend that quantizes but cannot measure (no GREY_BACKEND_CAP_QUANT_ERROR): the runtime reads both
// tensors back and measures on the host, and says so in a debug log. The zeroquant test plugin writes
// zeros, which decode to zeros, so the error is the signal itself.
TEST(Quant, ABackendThatCannotMeasureIsMeasuredOnTheHostAndTheLogSaysSo) {
    grey::test::LogCapture log;
    grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
    options.backend_dir = GREY_TEST_QUANT_PLUGIN_DIR;
    options.backends = "zeroquant";
    options.log_level = GREY_LOG_DEBUG;
    options.log_callback = &grey::test::LogCapture::callback;
    options.log_user = &log;
    auto context = grey::test::make_context(options);
    const auto x = gaussian(4 * 64, 9);
    const auto desc = desc_of({4, 64});
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;  // int8, one scale per row
    uint64_t size = 0;
    ASSERT_EQ(grey_quant_size(&desc, &p, &size), GREY_OK);
    grey_buffer *source = nullptr, *quantized = nullptr;
    ASSERT_EQ(grey_buffer_create(context.get(), 1, x.size() * 4, &source), GREY_OK) << grey_last_error();
    ASSERT_EQ(grey_buffer_create(context.get(), 1, size, &quantized), GREY_OK);
    ASSERT_EQ(grey_buffer_write(source, 0, x.data(), x.size() * 4), GREY_OK);
    grey_quant_report report{};
    report.struct_size = sizeof report;
    ASSERT_EQ(grey_quantize_buffer(&desc, source, 0, &p, quantized, 0, &report), GREY_OK) << grey_last_error();
    double signal = 0.0, largest = 0.0;
    for (const float v : x) {
        signal += static_cast<double>(v) * v;
        largest = std::max(largest, std::fabs(static_cast<double>(v)));
    }
    EXPECT_EQ(report.elements, x.size());
    EXPECT_EQ(report.sum_squared_error, report.sum_squared_signal);
    // The host sums in its own order (common/quant_error.hpp): within the bound of any order, 2 n 2^-53.
    EXPECT_NEAR(report.sum_squared_signal, signal, signal * 2.0 * static_cast<double>(x.size()) * std::ldexp(1.0, -53));
    EXPECT_EQ(report.max_abs_err, largest);
    EXPECT_TRUE(log.contains("backend 'zeroquant' cannot measure quantization error where the data is")) << "the fallback is logged";
    grey_buffer_destroy(quantized);
    grey_buffer_destroy(source);
}

// A layout that needs a feature the backend does not know is refused, never misread.
TEST(Quant, TheHostBackendRefusesALayoutFeatureItDoesNotKnow) {
    grey_backend_vtable vt{};
    vt.struct_size = sizeof vt;
    ASSERT_EQ(grey::host::host_backend_entry(GREY_BACKEND_ABI_VERSION, &vt), GREY_OK);
    ASSERT_TRUE(vt.capabilities & GREY_BACKEND_CAP_QUANT_HOST_MEMORY);
    const grey_backend_host services{sizeof(grey_backend_host), GREY_BACKEND_ABI_VERSION, nullptr, nullptr, nullptr};
    void* state = nullptr;
    ASSERT_EQ(vt.init(&services, &state), GREY_OK);
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    grey_quant_layout layout = grey::quant::make_layout(std::vector<uint64_t>{2, 32}, p);
    std::vector<float> x(64, 1.0f);
    std::vector<std::byte> q(layout.bytes);
    grey_backend_quant_job job{};
    job.struct_size = sizeof job;
    job.layout = &layout;
    job.plain_dtype = GREY_DTYPE_F32;
    job.plain = {nullptr, x.data(), 0, x.size() * 4};
    job.quantized = {nullptr, q.data(), 0, q.size()};
    EXPECT_EQ(vt.quantize(state, &job), GREY_OK);
    layout.required_features = 0x80000000u;  // a feature of some later version
    EXPECT_EQ(vt.quantize(state, &job), GREY_ERROR_UNSUPPORTED);
    EXPECT_EQ(vt.dequantize(state, &job), GREY_ERROR_UNSUPPORTED);
    vt.shutdown(state);
}

// The vector kernels against the scalar ones: kernel_paths_test.cpp.

TEST(QuantNumeric, Fp16AndFp8ConversionsRoundTripEveryCode) {
    using namespace grey::common;
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = f16_to_f32(static_cast<uint16_t>(h));
        if (std::isnan(f)) continue;
        ASSERT_EQ(f32_to_f16(f), h) << h;
    }
    EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);  // rounds to infinity
    EXPECT_EQ(f32_to_f16(65519.0f), 0x7BFF);
    EXPECT_EQ(f32_to_f16(1.0f + 0x1.0p-11f), 0x3C00);  // a tie goes to even
    for (const int kind : {GREY_QUANT_FP8_E4M3, GREY_QUANT_FP8_E5M2}) {
        for (uint32_t c = 0; c < 256; ++c) {
            const float f = fp8_to_f32(c, kind);
            if (!std::isfinite(f)) continue;
            if (f == 0.0f) continue;  // +0 and -0 both exist
            ASSERT_EQ(f32_to_fp8(f, kind), c) << c;
        }
        EXPECT_EQ(fp8_to_f32(f32_to_fp8(1e9f, kind), kind), fp8_traits(kind).max_finite) << "saturates";
    }
    EXPECT_EQ(fp8_to_f32(0x7E, GREY_QUANT_FP8_E4M3), 448.0f);
    EXPECT_EQ(fp8_to_f32(0x01, GREY_QUANT_FP8_E4M3), 0x1.0p-9f);
    EXPECT_EQ(fp8_to_f32(0x7B, GREY_QUANT_FP8_E5M2), 57344.0f);
    EXPECT_EQ(f32_to_bf16(1.0f + 0x1.0p-8f), 0x3F80);  // tie to even
    EXPECT_EQ(nf4_code(-1.0f), 0u);
    EXPECT_EQ(nf4_code(1.0f), 15u);
    EXPECT_EQ(nf4_code(0.01f), 7u);
}
