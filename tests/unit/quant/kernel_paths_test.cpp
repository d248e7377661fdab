// Every vector path of the host quantization kernels (AVX2, AVX-512) against the scalar reference, byte
// for byte: each primitive over adversarial inputs (NaN of both signs, infinities, denormals, zeros of
// both signs, exact ties between codes and the floats either side of them, all-equal stretches, every
// tail length), and every format quantized and dequantized whole. A path this CPU does not run is
// skipped, saying why.
#include "host/quant/kernels.hpp"
#include "host/quant/kernels_vector.hpp"
#include "host/quant/quantizer.hpp"
#include "quant/format.hpp"
#include "common/numeric.hpp"
#include "common/quant_coding.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

namespace hq = grey::host::quant;
namespace gc = grey::common;

struct Path {
    const char* name;
    const hq::Kernels* (*get)();
    const char* lacking;
};

const Path kPaths[] = {
    {"avx2", hq::avx2_kernels, "this CPU does not report AVX2 and F16C"},
    {"avx512", hq::avx512_kernels, "this CPU (or its operating system) does not report AVX-512 F, BW, VL and DQ"},
};

void PrintTo(const Path& path, std::ostream* os) { *os << path.name; }

// The layout of `shape` in the format named at `index`, or nothing for a shape the format does not take
// (the ggml formats' rows of 32).
std::optional<grey_quant_layout> layout_if_taken(uint32_t index, const std::vector<uint64_t>& shape) {
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    EXPECT_EQ(grey_quant_params_from_name(grey_quant_name_at(index), &p), GREY_OK) << grey_quant_name_at(index);
    try {
        return grey::quant::make_layout(shape, p);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

class KernelPaths : public testing::TestWithParam<Path> {
protected:
    void SetUp() override {
        kernels_ = GetParam().get();
        if (kernels_ == nullptr) GTEST_SKIP() << GetParam().name << " skipped: " << GetParam().lacking;
    }
    const hq::Kernels& vector() const { return *kernels_; }
    static const hq::Kernels& scalar() { return hq::scalar_kernels(); }

private:
    const hq::Kernels* kernels_ = nullptr;
};

std::string bits_of(float v) {
    uint32_t b;
    std::memcpy(&b, &v, 4);
    char text[64];
    std::snprintf(text, sizeof text, "%a (0x%08x)", static_cast<double>(v), b);
    return text;
}

// Values every float kernel must get right: specials, denormals, and each code boundary of fp8 and NF4
// with the floats just either side of it.
std::vector<float> adversarial_values() {
    const float inf = std::numeric_limits<float>::infinity();
    std::vector<float> v = {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min(),
                            std::numeric_limits<float>::min(), std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                            1e-40f, -3e-39f, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 127.5f, -128.5f, 448.0f, 464.0f, 480.0f, 57344.0f, 61440.0f};
    const auto around = [&](float x) {
        for (const float s : {1.0f, -1.0f}) {
            v.push_back(s * x);
            v.push_back(s * std::nextafter(x, inf));
            v.push_back(s * std::nextafter(x, 0.0f));
        }
    };
    for (const int format : {GREY_QUANT_FP8_E4M3, GREY_QUANT_FP8_E5M2})
        for (uint32_t c = 0; c < 0x7F; ++c) {
            const float a = gc::fp8_to_f32(c, format), b = gc::fp8_to_f32(c + 1, format);
            if (!std::isfinite(a) || !std::isfinite(b)) continue;
            around(a);
            around(a + (b - a) / 2.0f);  // the tie between two codes (exact: the step is a power of two)
        }
    for (const float m : hq::nf4_midpoints().values) around(m);
    for (const float level : gc::kNf4Levels) around(level);
    for (int k = 0; k <= 32; ++k) around(-1.0f + static_cast<float>(k) / 16.0f);  // the edges of NF4's buckets
    return v;
}

// The vector NF4 encoders read one midpoint a bucket (Nf4Buckets): the levels must leave at most one in
// each, and every midpoint must be the one its own bucket holds, with the right count below it.
TEST(KernelPaths, Nf4BucketsHoldEachMidpointAlone) {
    const hq::Nf4Buckets& b = hq::nf4_buckets();
    ASSERT_TRUE(b.exact);
    const auto& m = hq::nf4_midpoints().values;
    for (size_t i = 0; i < m.size(); ++i) {
        const int32_t k = hq::nf4_bucket(m[i]);
        EXPECT_EQ(b.midpoint[k], m[i]) << "midpoint " << i;
        EXPECT_EQ(b.below[k], static_cast<int32_t>(i)) << "midpoint " << i;
    }
    for (int32_t k = 1; k < 32; ++k) EXPECT_GE(b.below[k], b.below[k - 1]);
}

// The adversarial values, then random ones (wide range of magnitudes), then an all-equal stretch; an
// odd total so that every tail length shows up in the sub-ranges tested below.
std::vector<float> test_input(uint32_t seed) {
    auto v = adversarial_values();
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> exponent(-30.0f, 20.0f), sign(-1.0f, 1.0f);
    for (int i = 0; i < 4001; ++i) v.push_back(std::copysign(std::exp2(exponent(rng)), sign(rng)));
    v.insert(v.end(), 37, 0.75f);
    return v;
}

// Sub-ranges [begin, begin + n): lengths 0..40 around every alignment, and the whole.
template <typename Check>
void for_ranges(std::size_t size, const Check& check) {
    for (std::size_t n = 0; n <= 40; ++n)
        for (std::size_t begin : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{17}}) check(begin, n);
    check(0, size);
    check(5, size - 5);
}

TEST_P(KernelPaths, Fp8AndNf4EncodersGiveTheScalarCodes) {
    const auto x = test_input(7);
    for (const float inverse : {1.0f, 0.5f, 3.0f, 1.0f / 7.0f, 1e30f, 0.0f, std::numeric_limits<float>::infinity()}) {
        SCOPED_TRACE("inverse " + bits_of(inverse));
        for_ranges(x.size(), [&](std::size_t begin, std::size_t n) {
            std::vector<int8_t> a(n + 1, 0x55), b(n + 1, 0x55);
            for (const int format : {GREY_QUANT_FP8_E4M3, GREY_QUANT_FP8_E5M2}) {
                scalar().encode_fp8(x.data() + begin, n, inverse, format, a.data());
                vector().encode_fp8(x.data() + begin, n, inverse, format, b.data());
                for (std::size_t i = 0; i <= n; ++i)
                    ASSERT_EQ(a[i], b[i]) << (format == GREY_QUANT_FP8_E4M3 ? "e4m3" : "e5m2") << " at " << i << " of " << n << ": "
                                          << (i < n ? bits_of(x[begin + i]) : "past the end");
            }
            scalar().encode_nf4(x.data() + begin, n, inverse, a.data());
            vector().encode_nf4(x.data() + begin, n, inverse, b.data());
            for (std::size_t i = 0; i <= n; ++i)
                ASSERT_EQ(a[i], b[i]) << "nf4 at " << i << " of " << n << ": " << (i < n ? bits_of(x[begin + i]) : "past the end");
        });
    }
}

TEST_P(KernelPaths, IntegerEncodeAndDecodeGiveTheScalarBits) {
    const auto x = test_input(11);
    const hq::EncodeSpec specs[] = {
        {0.0f, 1.0f, 0.0f, hq::Rounding::nearest_away, -128, 127},
        {0.0f, 1.0f / 3.0f, 0.0f, hq::Rounding::nearest_away, -127, 127},
        {-0.25f, 4.0f, 0.5f, hq::Rounding::truncate, 0, 15},
        {1.0f, 0.0f, 8.5f, hq::Rounding::truncate, 0, 15},
        {0.0f, std::numeric_limits<float>::infinity(), 0.0f, hq::Rounding::nearest_away, -8, 7},  // NaN products
    };
    // What the scalar reference gives NaN products (zeros times an infinite multiplier): code 0.
    const float products[8] = {0.0f, 1e-42f, -1e-42f, -0.0f, 0.0f, 2.0f, 0.0f, -3.0f};
    int8_t reference[8];
    scalar().encode(products, 8, specs[4], reference);
    EXPECT_EQ(std::vector<int8_t>(reference, reference + 8), (std::vector<int8_t>{0, 7, -8, 0, 0, 7, 0, -8})) << "NaN products code 0";
    for (const auto& spec : specs)
        for_ranges(x.size(), [&](std::size_t begin, std::size_t n) {
            std::vector<int8_t> a(n + 1, 0x55), b(n + 1, 0x55);
            scalar().encode(x.data() + begin, n, spec, a.data());
            vector().encode(x.data() + begin, n, spec, b.data());
            ASSERT_EQ(a, b) << "encode of " << n << " from " << begin;
        });
    std::vector<int8_t> codes(300);
    for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<int8_t>(i * 37);
    for (const hq::DecodeSpec spec : {hq::DecodeSpec{0.0f, 0.01f, 0.0f}, hq::DecodeSpec{8.0f, 3.5f, -1.25f}, hq::DecodeSpec{0.0f, 1e-45f, 0.0f}})
        for_ranges(codes.size(), [&](std::size_t begin, std::size_t n) {
            std::vector<float> a(n + 1, -2.0f), b(n + 1, -2.0f);
            scalar().decode(codes.data() + begin, n, spec, a.data());
            vector().decode(codes.data() + begin, n, spec, b.data());
            ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << "decode of " << n << " from " << begin;
        });
}

// quantize_int8_runs (where a path has it) against the scalar primitives one by one: each run's largest
// magnitude, make_coding's INT8 scale and encode's codes from it, for run lengths either side of the
// 64-value steps, codes at every offset from a cache line, with and without streaming stores, and
// nothing written outside the codes and scales. Runs of every kind: zeros of both signs, denormals (whose
// scale's reciprocal overflows), ties between codes, the largest floats, one-signed, wide and narrow random
// ones, an infinity (its run all zeros, as the scalar path codes it).
TEST_P(KernelPaths, Int8RunsGiveTheScalarCodesAndScales) {
    if (vector().quantize_int8_runs == nullptr) GTEST_SKIP() << GetParam().name << " has no quantize_int8_runs";
    std::mt19937 rng(17);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> tie(-127, 126);
    const auto run_values = [&](std::size_t kind, std::size_t length) {
        std::vector<float> v(length);
        const float scale = std::exp2(static_cast<float>(static_cast<int>(kind % 41) - 20));
        for (std::size_t i = 0; i < length; ++i) {
            switch (kind % 12) {
                case 0: v[i] = i % 3 == 0 ? -0.0f : 0.0f; break;
                case 1: v[i] = (i % 2 ? -1.0f : 1.0f) * static_cast<float>(i % 5) * 1e-42f; break;   // denormals
                case 2: v[i] = (i % 2 ? -1.0f : 1.0f) * static_cast<float>(i % 9 + 1) * 1e-37f; break;  // subnormal scales
                case 3: v[i] = i == 0 ? 127.0f : static_cast<float>(tie(rng)) + 0.5f; break;      // ties at scale 1
                case 4: v[i] = i == length / 2 ? -std::numeric_limits<float>::max() : normal(rng) * 1e37f; break;
                case 5: v[i] = std::fabs(normal(rng)) * scale; break;
                case 6: v[i] = -std::fabs(normal(rng)) * scale; break;
                case 7: v[i] = i == length - 1 ? 1e4f : normal(rng) * 1e-3f; break;  // one outlier at the end
                case 8: v[i] = i == 1 % length ? -std::numeric_limits<float>::infinity() : normal(rng); break;
                default: v[i] = normal(rng) * scale; break;
            }
        }
        return v;
    };
    int compared = 0;
    for (const std::size_t length : {std::size_t{1}, std::size_t{15}, std::size_t{16}, std::size_t{63}, std::size_t{64}, std::size_t{65},
                                     std::size_t{130}, std::size_t{999}, std::size_t{4096}, std::size_t{4100}})
        for (const std::size_t runs : {std::size_t{1}, std::size_t{2}, std::size_t{13}}) {
            std::vector<float> x;
            for (std::size_t r = 0; r < runs; ++r) {
                const auto v = run_values(r + length, length);
                x.insert(x.end(), v.begin(), v.end());
            }
            // The scalar reference: the primitives quantize() takes one by one.
            std::vector<int8_t> codes(x.size());
            std::vector<std::byte> scales(4 * runs);
            uint32_t largest = 0;
            for (std::size_t r = 0; r < runs; ++r) {
                const float* run = x.data() + r * length;
                const uint32_t top = scalar().max_magnitude32(reinterpret_cast<const std::byte*>(run), length);
                largest = std::max(largest, top);
                gc::Stats stats{};
                stats.absmax = std::bit_cast<float>(top);
                const gc::Coding c = gc::make_coding(GREY_QUANT_INT8, stats, 1.0f);
                scalar().encode(run, length, hq::EncodeSpec{c.e_sub, c.e_mul, c.e_add, hq::Rounding::nearest_away, c.lo, c.hi}, codes.data() + r * length);
                std::memcpy(scales.data() + 4 * r, &c.scale, 4);
            }
            for (const std::size_t offset : {std::size_t{0}, std::size_t{1}, std::size_t{17}, std::size_t{63}})
                for (const bool stream : {false, true}) {
                    SCOPED_TRACE(std::to_string(runs) + " runs of " + std::to_string(length) + ", codes " + std::to_string(offset) +
                                 " bytes past a line" + (stream ? ", streaming" : ""));
                    // Codes and scales in one buffer with guard bytes around each (the scales unaligned).
                    std::vector<std::byte> buffer(64 + offset + x.size() + 3 + 4 * runs + 64 + 64, std::byte{0x5A});
                    auto* base = reinterpret_cast<std::byte*>((reinterpret_cast<uintptr_t>(buffer.data()) + 63) & ~uintptr_t{63});
                    std::byte* code_at = base + offset;
                    std::byte* scale_at = code_at + x.size() + 3;
                    ASSERT_EQ(vector().quantize_int8_runs(x.data(), runs, length, reinterpret_cast<int8_t*>(code_at), scale_at, stream), largest);
                    ASSERT_EQ(std::memcmp(code_at, codes.data(), codes.size()), 0);
                    ASSERT_EQ(std::memcmp(scale_at, scales.data(), scales.size()), 0);
                    for (std::byte* b = buffer.data(); b < buffer.data() + buffer.size(); ++b) {
                        const bool written = (b >= code_at && b < code_at + x.size()) || (b >= scale_at && b < scale_at + 4 * runs);
                        if (!written) {
                            ASSERT_EQ(*b, std::byte{0x5A}) << "byte " << (b - code_at) << " from the codes";
                        }
                    }
                    ++compared;
                }
        }
    EXPECT_EQ(compared, 10 * 3 * 4 * 2);
}

// quantize() of the INT8 formats gives the scalar bytes with the codes streamed (any output size) or not.
TEST_P(KernelPaths, Int8QuantizationGivesTheScalarBytesStreamedOrNot) {
    auto x = test_input(19);
    std::erase_if(x, [](float v) { return !std::isfinite(v); });  // quantize()'s input is checked first
    while (x.size() < 64 * 999) {
        const auto more = x;
        x.insert(x.end(), more.begin(), more.end());
    }
    for (const char* name : {"int8", "int8-token"})
        for (const std::vector<uint64_t>& shape : {std::vector<uint64_t>{64, 999}, std::vector<uint64_t>{3, 4096}, std::vector<uint64_t>{7, 3, 5, 5}}) {
            grey_quant_params p = GREY_QUANT_PARAMS_INIT;
            ASSERT_EQ(grey_quant_params_from_name(name, &p), GREY_OK);
            const auto plan = grey::quant::make_layout(shape, p);
            SCOPED_TRACE(std::string(name) + ", " + std::to_string(plan.elements) + " elements");
            const std::span<const float> input(x.data(), plan.elements);
            std::vector<std::byte> expected(plan.bytes);
            hq::quantize(plan, input, expected, scalar());
            for (const uint64_t stream_bytes : {uint64_t{0}, UINT64_MAX}) {
                std::vector<std::byte> out(plan.bytes, std::byte{0x33});
                hq::quantize(plan, input, out, vector(), {}, std::nullopt, stream_bytes);
                ASSERT_EQ(out, expected) << (stream_bytes == 0 ? "streamed" : "ordinary stores");
                std::vector<std::byte> checked(plan.bytes, std::byte{0x33});
                ASSERT_TRUE(hq::quantize_checked(plan, GREY_DTYPE_F32, std::as_bytes(input), checked, vector(), {}, stream_bytes));
                ASSERT_EQ(checked, expected) << (stream_bytes == 0 ? "checked, streamed" : "checked, ordinary stores");
            }
        }
}

TEST_P(KernelPaths, TableDecodeAndWideningGiveTheScalarBits) {
    std::vector<uint8_t> codes(256 + 41);
    for (std::size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(i * 11);
    std::vector<float> table(256);
    for (uint32_t c = 0; c < 256; ++c) table[c] = gc::fp8_to_f32(c, GREY_QUANT_FP8_E4M3);  // NaN codes included
    for (const float scale : {1.0f, 0.125f, 3e-39f})
        for_ranges(codes.size(), [&](std::size_t begin, std::size_t n) {
            std::vector<float> a(n + 1, -2.0f), b(n + 1, -2.0f);
            scalar().decode_table(codes.data() + begin, n, table.data(), scale, a.data());
            vector().decode_table(codes.data() + begin, n, table.data(), scale, b.data());
            ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << "decode_table of " << n << " from " << begin;
        });
    for (const int format : {GREY_QUANT_FP8_E4M3, GREY_QUANT_FP8_E5M2}) {
        std::vector<float> values(256);
        for (uint32_t c = 0; c < 256; ++c) values[c] = gc::fp8_to_f32(c, format);
        for (const float scale : {1.0f, 0.125f, 3e-39f, 0.0f, -2.5f})
            for_ranges(codes.size(), [&](std::size_t begin, std::size_t n) {
                std::vector<float> a(n + 1, -2.0f), b(n + 1, -2.0f);
                scalar().decode_fp8(codes.data() + begin, n, values.data(), format, scale, a.data());
                vector().decode_fp8(codes.data() + begin, n, values.data(), format, scale, b.data());
                for (std::size_t i = 0; i <= n; ++i)
                    ASSERT_EQ(bits_of(a[i]), bits_of(b[i])) << (format == GREY_QUANT_FP8_E4M3 ? "e4m3" : "e5m2") << " code "
                                                            << (i < n ? int{codes[begin + i]} : -1) << ", scale " << scale;
            });
    }
    std::vector<uint8_t> nibbles(256 + 41);
    for (std::size_t i = 0; i < nibbles.size(); ++i) nibbles[i] = static_cast<uint8_t>((i * 7) % 16);
    for (const float scale : {1.0f, 0.037f, 3e-39f})
        for_ranges(nibbles.size(), [&](std::size_t begin, std::size_t n) {
            std::vector<float> a(n + 1, -2.0f), b(n + 1, -2.0f);
            scalar().decode_table16(nibbles.data() + begin, n, gc::kNf4Levels, scale, a.data());
            vector().decode_table16(nibbles.data() + begin, n, gc::kNf4Levels, scale, b.data());
            ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << "decode_table16 of " << n << " from " << begin;
        });
    std::vector<uint16_t> halves(65536 + 13);
    for (std::size_t h = 0; h < halves.size(); ++h) halves[h] = static_cast<uint16_t>(h);
    for_ranges(halves.size(), [&](std::size_t begin, std::size_t n) {
        std::vector<float> a(n + 1, -2.0f), b(n + 1, -2.0f);
        scalar().f16_to_f32(halves.data() + begin, n, a.data());
        vector().f16_to_f32(halves.data() + begin, n, b.data());
        ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << "f16_to_f32 of " << n << " from " << begin;
    });
}

TEST_P(KernelPaths, RangeReductionsGiveTheScalarBits) {
    auto x = test_input(3);
    std::erase_if(x, [](float v) { return std::isnan(v); });  // the quantizer refuses NaN before it looks for ranges
    std::vector<float> zeros = {0.0f, -0.0f, 0.0f, -0.0f, 0.0f, 0.0f, -0.0f, 0.0f, 0.0f, -0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, -0.0f, 0.0f};
    for (const auto* input : {&x, &zeros})
        for_ranges(input->size(), [&](std::size_t begin, std::size_t n) {
            if (begin > input->size() || n > input->size() - begin) return;
            float lo_s, hi_s, lo_v, hi_v;
            scalar().minmax(input->data() + begin, n, &lo_s, &hi_s);
            vector().minmax(input->data() + begin, n, &lo_v, &hi_v);
            ASSERT_EQ(bits_of(lo_s), bits_of(lo_v)) << n << " from " << begin;
            ASSERT_EQ(bits_of(hi_s), bits_of(hi_v)) << n << " from " << begin;
            ASSERT_EQ(bits_of(scalar().absmax(input->data() + begin, n)), bits_of(vector().absmax(input->data() + begin, n)));
        });
}

// Whole formats: both calibrations, on a ragged shape (rows of 999: no group size divides them), with
// all-equal groups, denormal groups and ties; and a ggml shape.
TEST_P(KernelPaths, EveryFormatQuantizesAndDequantizesToTheScalarBits) {
    std::mt19937 rng(5);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(7 * 999);
    for (auto& v : x) v = normal(rng);
    for (std::size_t i = 0; i < 300; ++i) x[i] = 0.3f;                                                   // all equal
    for (std::size_t i = 300; i < 600; ++i) x[i] = (i % 2 ? -1.0f : 1.0f) * static_cast<float>(i % 3) * 1e-42f;  // denormal
    for (std::size_t i = 600; i < x.size(); i += 7) x[i] = 0.5f;
    for (std::size_t i = 601; i < x.size(); i += 11) x[i] = -0.0f;
    for (uint32_t index = 0; index < grey_quant_name_count(); ++index) {
        grey_quant_params p = GREY_QUANT_PARAMS_INIT;
        ASSERT_EQ(grey_quant_params_from_name(grey_quant_name_at(index), &p), GREY_OK);
        for (const auto calibration : {GREY_CALIBRATION_RTN, GREY_CALIBRATION_MSE}) {
            p.calibration = calibration;
            const bool ggml = p.format == GREY_QUANT_Q8_0 || p.format == GREY_QUANT_Q4_0 || p.format == GREY_QUANT_Q4_1;
            const std::vector<uint64_t> shape = ggml ? std::vector<uint64_t>{7, 992} : std::vector<uint64_t>{7, 999};
            SCOPED_TRACE(std::string(grey_quant_name_at(index)) + (calibration == GREY_CALIBRATION_MSE ? " mse" : " rtn"));
            const auto plan = grey::quant::make_layout(shape, p);
            const std::span<const float> input(x.data(), plan.elements);
            std::vector<std::byte> a(plan.bytes), b(plan.bytes);
            hq::quantize(plan, input, a, scalar());
            hq::quantize(plan, input, b, vector());
            ASSERT_EQ(a, b);
            std::vector<float> da(plan.elements), db(plan.elements);
            hq::dequantize(plan, a, da, scalar());
            hq::dequantize(plan, a, db, vector());
            ASSERT_EQ(std::memcmp(da.data(), db.data(), da.size() * 4), 0);
        }
    }
}

// The streaming decoders (StreamingKernels) write exactly [out, out + n) with the plain decoders' bits,
// whatever the output's offset from a cache line (0 to 16 floats) and the length (every one to 40, and
// longer ones with every tail): the partial lines at either end and nothing outside the range.
TEST_P(KernelPaths, StreamingDecodersGiveThePlainBitsOnExactlyTheRange) {
    const hq::StreamingKernels* streaming = vector().streaming;
    if (streaming == nullptr) GTEST_SKIP() << vector().name << " has no streaming decoders";
    std::mt19937 rng(17);
    std::vector<uint8_t> codes(5000);
    for (auto& c : codes) c = static_cast<uint8_t>(rng());
    std::vector<uint8_t> nibbles(codes);
    for (auto& c : nibbles) c &= 15;
    const auto* signed_codes = reinterpret_cast<const int8_t*>(codes.data());
    const hq::DecodeSpec spec{3.0f, 0.0125f, -0.5f};
    std::vector<std::size_t> lengths;
    for (std::size_t n = 0; n <= 40; ++n) lengths.push_back(n);
    for (const std::size_t n : {63, 64, 65, 255, 256, 257, 1000, 4096, 4099}) lengths.push_back(n);
    constexpr std::size_t kGuard = 20;
    const auto check = [&](const char* what, std::size_t n, const auto& decode_plain, const auto& decode_streaming) {
        std::vector<float> expected(n);
        decode_plain(expected.data());
        for (std::size_t at = 0; at <= 16; ++at) {
            SCOPED_TRACE(std::string(what) + ": " + std::to_string(n) + " floats at offset " + std::to_string(at) + " from a line");
            std::vector<float> storage(n + at + 2 * kGuard + 16, -7.0f);
            const std::size_t pad = (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64 / 4;
            float* out = storage.data() + pad + kGuard + at;
            decode_streaming(out);
            streaming->fence();
            if (n > 0) {  // (an empty vector's data() may be null, which memcmp must not see)
                ASSERT_EQ(std::memcmp(out, expected.data(), n * 4), 0);
            }
            for (const float* p = storage.data(); p < out; ++p) ASSERT_EQ(*p, -7.0f) << "before, at " << out - p;
            for (const float* p = out + n; p < storage.data() + storage.size(); ++p) ASSERT_EQ(*p, -7.0f) << "after, at " << p - out - n;
        }
    };
    for (const std::size_t n : lengths) {
        for (const std::size_t from : {std::size_t{0}, std::size_t{3}}) {
            check("decode", n, [&](float* o) { vector().decode(signed_codes + from, n, spec, o); },
                  [&](float* o) { streaming->decode(signed_codes + from, n, spec, o); });
            for (const int format : {GREY_QUANT_FP8_E4M3, GREY_QUANT_FP8_E5M2}) {
                std::vector<float> table(256);
                for (uint32_t c = 0; c < 256; ++c) table[c] = gc::fp8_to_f32(c, format);
                check("decode_fp8", n, [&](float* o) { vector().decode_fp8(codes.data() + from, n, table.data(), format, 0.37f, o); },
                      [&](float* o) { streaming->decode_fp8(codes.data() + from, n, table.data(), format, 0.37f, o); });
            }
            check("decode_table16", n, [&](float* o) { vector().decode_table16(nibbles.data() + from, n, gc::kNf4Levels, 1.5f, o); },
                  [&](float* o) { streaming->decode_table16(nibbles.data() + from, n, gc::kNf4Levels, 1.5f, o); });
        }
    }
    // The fused group decoder on every format it takes, 1 to 9 groups of 32, 64 and 128 (ggml: 32 only),
    // from the bytes of a quantization so that the parameters are valid.
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(9 * 128);
    for (auto& v : x) v = normal(rng);
    for (const int format : {GREY_QUANT_INT4, GREY_QUANT_INT4_SYM, GREY_QUANT_NF4, GREY_QUANT_Q8_0, GREY_QUANT_Q4_0, GREY_QUANT_Q4_1})
        for (const std::size_t length : {std::size_t{32}, std::size_t{64}, std::size_t{128}}) {
            const bool ggml = format == GREY_QUANT_Q8_0 || format == GREY_QUANT_Q4_0 || format == GREY_QUANT_Q4_1;
            if (ggml && length != 32) continue;
            for (std::size_t groups = 1; groups <= 9; groups += 4) {
                std::vector<uint8_t> q(groups * length * 2);
                std::vector<std::byte> scales(groups * 4), mins(groups * 4);
                vector().quantize_groups(format, x.data(), groups, length, q.data(), scales.data(), mins.data());
                check("dequantize_groups", groups * length,
                      [&](float* o) { vector().dequantize_groups(format, q.data(), scales.data(), mins.data(), groups, length, o); },
                      [&](float* o) { streaming->dequantize_groups(format, q.data(), scales.data(), mins.data(), groups, length, o); });
            }
        }
}

// Dequantization with streaming stores (threshold 0) gives the scalar reference's bits on every format,
// into output at every offset from a cache line, for tensors of fewer and more elements than a streamed
// piece (4096) and chunks that end inside a piece; the default threshold and one just above the output's
// size (ordinary stores) give the same.
TEST_P(KernelPaths, StreamingDequantizationGivesTheScalarBits) {
    std::mt19937 rng(9);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> x(9 * 1024 + 96);
    for (auto& v : x) v = normal(rng);
    for (std::size_t i = 0; i < x.size(); i += 13) x[i] = -0.0f;
    int compared = 0;
    for (uint32_t index = 0; index < grey_quant_name_count(); ++index)
        for (const auto& shape : {std::vector<uint64_t>{3, 96}, std::vector<uint64_t>{9, 1024}, std::vector<uint64_t>{1, 9 * 1024 + 96},
                                  std::vector<uint64_t>{7, 999}, std::vector<uint64_t>{2, 4097}}) {
            const auto taken = layout_if_taken(index, shape);
            if (!taken) continue;
            const grey_quant_layout& plan = *taken;
            SCOPED_TRACE(std::string(grey_quant_name_at(index)) + " on " + std::to_string(plan.elements) + " elements");
            const std::span<const float> input(x.data(), plan.elements);
            std::vector<std::byte> q(plan.bytes);
            hq::quantize(plan, input, q, scalar());
            std::vector<float> expected(plan.elements);
            hq::dequantize(plan, q, expected, scalar());
            for (const uint64_t chunk : {uint64_t{96}, uint64_t{4128}, hq::Parallel::kDefaultChunkElements})
                for (std::size_t at = 0; at < 17; at += (at < 2 ? 1 : 5))
                    for (const uint64_t threshold : {uint64_t{0}, plan.elements * 4, plan.elements * 4 + 1, hq::kStreamOutputBytes}) {
                        SCOPED_TRACE("chunks of " + std::to_string(chunk) + ", output at float " + std::to_string(at) + ", threshold " +
                                     std::to_string(threshold));
                        std::vector<float> storage(plan.elements + at + 32, -7.0f);
                        const std::size_t pad = (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64 / 4;
                        const std::span<float> out(storage.data() + pad + at, plan.elements);
                        hq::dequantize(plan, q, out, vector(), hq::Parallel(nullptr, chunk), threshold);
                        ASSERT_EQ(std::memcmp(out.data(), expected.data(), expected.size() * 4), 0);
                        ASSERT_TRUE(std::all_of(storage.begin(), storage.begin() + static_cast<std::ptrdiff_t>(pad + at), [](float v) { return v == -7.0f; }));
                        ASSERT_TRUE(std::all_of(storage.begin() + static_cast<std::ptrdiff_t>(pad + at + plan.elements), storage.end(),
                                                [](float v) { return v == -7.0f; }));
                    }
            ++compared;
        }
    EXPECT_GE(compared, static_cast<int>(grey_quant_name_count()) * 3) << "every format on at least three shapes";
}

TEST_P(KernelPaths, GgmlNibblePackingGivesTheScalarBytes) {
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> code(0, 15);
    std::vector<int8_t> codes(32 * 9);
    for (auto& c : codes) c = static_cast<int8_t>(code(rng));
    for (const std::size_t stride : {std::size_t{16}, std::size_t{18}, std::size_t{20}})
        for (std::size_t blocks = 0; blocks <= 9; ++blocks) {
            std::vector<uint8_t> a(stride * 9 + 1, 0xAA), b(stride * 9 + 1, 0xAA);  // bytes between blocks stay as they were
            scalar().pack_ggml_nibbles(codes.data(), blocks, a.data(), stride);
            vector().pack_ggml_nibbles(codes.data(), blocks, b.data(), stride);
            ASSERT_EQ(a, b) << blocks << " blocks, stride " << stride;
        }
}

// Round to nearest codes each run as it takes its statistics when no fp16 parameter can overflow, and
// otherwise in two passes (statistics, then codes); both give the same bytes. A largest magnitude that
// is not safe, handed in, makes quantize take the two passes on the same input.
TEST_P(KernelPaths, OneVisitPerRunGivesTheTwoPassBytes) {
    const std::vector<std::vector<uint64_t>> shapes = {{64, 256}, {33, 100}, {7, 3, 5, 5}, {4097}};
    auto x = test_input(21);
    std::erase_if(x, [](float v) { return !std::isfinite(v) || std::fabs(v) > 65504.0f; });
    while (x.size() < 64 * 256) x.insert(x.end(), x.begin(), x.end());
    int compared = 0;
    for (uint32_t i = 0; i < grey_quant_name_count(); ++i)
        for (const auto& shape : shapes) {
            const auto taken = layout_if_taken(i, shape);
            if (!taken) continue;
            const grey_quant_layout& plan = *taken;
            SCOPED_TRACE(std::string(grey_quant_name_at(i)) + ", " + std::to_string(plan.elements) + " elements");
            const std::span<const float> input(x.data(), plan.elements);
            std::vector<std::byte> one_visit(plan.bytes), two_passes(plan.bytes);
            hq::quantize(plan, input, one_visit, vector());
            hq::quantize(plan, input, two_passes, vector(), {}, 0x7F800000u);
            ASSERT_EQ(one_visit, two_passes);
            ++compared;
        }
    EXPECT_GE(compared, 36) << "every format on its shapes";
}

// Values for the fused group quantizer (Kernels::quantize_groups): groups of `length`, each of one kind
// that stresses the parameter choice (zeros of both signs, denormals, fp16's limits and subnormals, exact
// ties between codes, a Q4_0 peak met with either sign first, one-signed groups, wide and narrow random
// ones), finite and at most 65504 in magnitude as the one-visit route requires.
std::vector<float> group_input(std::size_t groups, std::size_t length, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> tie(-8, 7);
    std::vector<float> x(groups * length);
    for (std::size_t g = 0; g < groups; ++g) {
        float* v = x.data() + g * length;
        const float scale = std::exp2(static_cast<float>(static_cast<int>(g % 33) - 20));
        for (std::size_t i = 0; i < length; ++i) {
            switch (g % 14) {
                case 0: v[i] = 0.0f; break;
                case 1: v[i] = i % 3 == 0 ? -0.0f : 0.0f; break;
                case 2: v[i] = -0.0f; break;
                case 3: v[i] = (i % 2 ? -1.0f : 1.0f) * static_cast<float>(i % 5) * 1e-42f; break;   // denormal floats
                case 4: v[i] = static_cast<float>(i % 7) * 3e-8f - 6e-8f; break;                    // fp16 subnormal scales
                case 5: v[i] = i == 3 ? -65504.0f : i == 9 ? 65504.0f : std::clamp(normal(rng) * 30000.0f, -65504.0f, 65504.0f); break;  // Q4_0: negative peak first
                case 6: v[i] = i == 2 ? 65504.0f : i == 5 ? -65504.0f : std::clamp(normal(rng) * 30000.0f, -65504.0f, 65504.0f); break;
                case 7: v[i] = static_cast<float>(tie(rng)) + (i % 2 ? 0.5f : 0.0f); break;           // exact ties at scale 1
                case 8: v[i] = i == 0 ? 7.0f : static_cast<float>(tie(rng)) * 0.5f; break;
                case 9: v[i] = 0.75f; break;                                                          // constant
                case 10: v[i] = std::min(std::fabs(normal(rng)) * scale + scale, 65504.0f); break;  // all positive
                case 11: v[i] = -std::min(std::fabs(normal(rng)) * scale + scale, 65504.0f); break;  // all negative
                case 12: v[i] = i == length - 1 ? 65504.0f : normal(rng) * 1e-3f; break;             // one outlier at the end
                default: v[i] = std::clamp(normal(rng) * scale, -65504.0f, 65504.0f); break;
            }
        }
    }
    return x;
}

// The fused routes (quantize_groups and dequantize_groups, where the path has them) against the scalar
// primitives one by one, bit for bit, on every format and group counts on either side of its batches.
TEST_P(KernelPaths, FusedGroupQuantizerGivesTheScalarBytes) {
    if (vector().quantize_groups == nullptr && vector().dequantize_groups == nullptr) GTEST_SKIP() << GetParam().name << " has no fused group route";
    int compared = 0;
    for (uint32_t i = 0; i < grey_quant_name_count(); ++i) {
        grey_quant_params p = GREY_QUANT_PARAMS_INIT;
        ASSERT_EQ(grey_quant_params_from_name(grey_quant_name_at(i), &p), GREY_OK);
        for (const std::size_t rows : {std::size_t{1}, std::size_t{5}, std::size_t{16}, std::size_t{33}, std::size_t{70}}) {
            const std::vector<uint64_t> shape = {rows, 256};
            const auto plan = grey::quant::make_layout(shape, p);
            SCOPED_TRACE(std::string(grey_quant_name_at(i)) + ", " + std::to_string(rows) + " rows");
            for (const uint32_t seed : {1u, 2u}) {
                const auto x = group_input(plan.elements / 32, 32, seed);
                std::vector<std::byte> a(plan.bytes, std::byte{0xAA}), b(plan.bytes, std::byte{0x55});
                hq::quantize(plan, x, a, scalar());
                hq::quantize(plan, x, b, vector());
                ASSERT_EQ(a, b);
                // Kinds laid out per group of the format, not only per 32.
                const auto y = group_input(plan.elements / plan.run_length, plan.run_length, seed + 10);
                hq::quantize(plan, y, a, scalar());
                hq::quantize(plan, y, b, vector());
                ASSERT_EQ(a, b);
                // Decoding (dequantize_groups where the path has it): these bytes, then any bytes at all
                // (every code, fp8's NaN codes, scales of every kind, NaN and infinities included).
                std::mt19937 bytes_rng(seed);
                std::vector<std::byte> noise(plan.bytes);
                for (auto& byte : noise) byte = static_cast<std::byte>(bytes_rng());
                for (const auto* in : {&a, &noise}) {
                    std::vector<float> da(plan.elements, 1.0f), db(plan.elements, 2.0f);
                    hq::dequantize(plan, *in, da, scalar());
                    hq::dequantize(plan, *in, db, vector());
                    ASSERT_EQ(std::memcmp(da.data(), db.data(), da.size() * 4), 0) << (in == &a ? "quantized bytes" : "random bytes");
                }
                ++compared;
            }
        }
    }
    EXPECT_GE(compared, 60);
}

// Every group count from 1 to 40 on every fused format, one row a group of the format's own length: every
// remainder of the kernels' batches of 16 groups (and of the AVX-512 fold's four), for groups of 32 (which
// the AVX-512 kernel compiles apart, its loops unrolled) and longer ones, against the scalar bytes.
TEST_P(KernelPaths, FusedGroupQuantizerGivesTheScalarBytesOnEveryBatchRemainder) {
    if (vector().quantize_groups == nullptr) GTEST_SKIP() << GetParam().name << " has no fused group route";
    int compared = 0;
    for (const char* name : {"int4-g32", "int4-g64", "int4-g128", "int4-sym-g128", "nf4", "q8_0", "q4_0", "q4_1"}) {
        grey_quant_params p = GREY_QUANT_PARAMS_INIT;
        ASSERT_EQ(grey_quant_params_from_name(name, &p), GREY_OK);
        const uint64_t length = grey::quant::make_layout(std::vector<uint64_t>{1, 256}, p).run_length;
        for (uint64_t groups = 1; groups <= 40; ++groups) {
            const auto plan = grey::quant::make_layout(std::vector<uint64_t>{groups, length}, p);
            SCOPED_TRACE(std::string(name) + ", " + std::to_string(groups) + " groups of " + std::to_string(length));
            ASSERT_EQ(plan.elements, groups * length);
            const auto x = group_input(groups, length, static_cast<uint32_t>(groups));
            std::vector<std::byte> a(plan.bytes, std::byte{0xAA}), b(plan.bytes, std::byte{0x55});
            hq::quantize(plan, x, a, scalar());
            hq::quantize(plan, x, b, vector());
            ASSERT_EQ(a, b);
            ++compared;
        }
    }
    EXPECT_EQ(compared, 8 * 40);
}

// The fused group quantizer reports the largest magnitude's bits of what it read (max_magnitude32's), so
// that the checked route learns from the same scan whether the input may be quantized: finite values of
// every kind, a value past 65504 (too large for fp16 parameters), infinities and NaNs of both signs, each
// in the first, a middle and the last group, at the first and last element of its group.
TEST_P(KernelPaths, FusedGroupQuantizerReportsTheLargestMagnitude) {
    if (vector().quantize_groups == nullptr) GTEST_SKIP() << GetParam().name << " has no fused group route";
    const float specials[] = {65505.0f, -1e30f, INFINITY, -INFINITY, std::nanf(""), -std::nanf("0x12345")};
    int compared = 0;
    for (const char* name : {"int4-g32", "int4-g128", "int4-sym-g128", "nf4", "q8_0", "q4_0", "q4_1"}) {
        grey_quant_params p = GREY_QUANT_PARAMS_INIT;
        ASSERT_EQ(grey_quant_params_from_name(name, &p), GREY_OK);
        const auto plan = grey::quant::make_layout(std::vector<uint64_t>{21, 128}, p);
        const std::size_t length = plan.run_length, groups = plan.elements / length;  // a batch of 16 and a rest, or more
        auto x = group_input(groups, length, 3);
        std::vector<std::byte> out(plan.bytes);
        const auto quantize = [&] {
            const bool ggml = p.format == GREY_QUANT_Q8_0 || p.format == GREY_QUANT_Q4_0 || p.format == GREY_QUANT_Q4_1;
            std::byte* scales = ggml ? nullptr : out.data() + plan.codes_bytes;
            std::byte* mins = p.format == GREY_QUANT_INT4 ? out.data() + plan.codes_bytes + 2 * plan.param_count : nullptr;
            return vector().quantize_groups(p.format, x.data(), groups, length, reinterpret_cast<uint8_t*>(out.data()), scales, mins);
        };
        const auto largest = [&] { return scalar().max_magnitude32(reinterpret_cast<const std::byte*>(x.data()), x.size()); };
        SCOPED_TRACE(name);
        ASSERT_EQ(quantize(), largest()) << "finite input";
        for (const float special : specials)
            for (const std::size_t group : {std::size_t{0}, std::size_t{9}, groups - 1})
                for (const std::size_t at : {std::size_t{0}, length - 1}) {
                    const std::size_t i = group * length + at;
                    const float kept = x[i];
                    x[i] = special;
                    ASSERT_EQ(quantize(), largest()) << special << " at " << i;
                    x[i] = kept;
                    ++compared;
                }
    }
    EXPECT_EQ(compared, 7 * 6 * 3 * 2);
}

TEST_P(KernelPaths, NibblePairPackingGivesTheScalarBytes) {
    std::mt19937 rng(12);
    std::uniform_int_distribution<int> code(-8, 15);  // INT4_SYM's signed codes and the unsigned ones
    std::vector<int8_t> codes(300);
    for (auto& c : codes) c = static_cast<int8_t>(code(rng));
    for (const int bias : {0, 8})
        for (std::size_t n = 0; n <= codes.size(); ++n) {
            std::vector<uint8_t> a(codes.size() / 2 + 2, 0xAA), b(a);  // bytes past (n + 1) / 2 stay as they were
            scalar().pack_nibble_pairs(codes.data(), n, bias, a.data());
            vector().pack_nibble_pairs(codes.data(), n, bias, b.data());
            ASSERT_EQ(a, b) << n << " codes, bias " << bias;
            if (n % 2 != 0) {
                ASSERT_EQ(a[n / 2] >> 4, 0) << "an odd count's last byte keeps its high nibble zero";
            }
            std::vector<int8_t> ua(n + 3, 0x55), ub(n + 3, 0x55);  // codes past n stay as they were
            scalar().unpack_nibble_pairs(a.data(), n, bias, ua.data());
            vector().unpack_nibble_pairs(a.data(), n, bias, ub.data());
            ASSERT_EQ(ua, ub) << n << " codes, bias " << bias;
            for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(ua[i], static_cast<int8_t>(((codes[i] + bias) & 0x0F) - bias)) << i;
        }
}

TEST_P(KernelPaths, LargestMagnitudesGiveTheScalarBits) {
    // Words of every kind (specials, denormals, both signs), read from every byte offset: mapped file
    // data need not be aligned.
    const auto x = test_input(9);
    std::vector<std::byte> bytes(x.size() * 4 + 3);
    for (std::size_t shift = 0; shift < 4; ++shift) {
        std::memcpy(bytes.data() + shift, x.data(), x.size() * 4);
        for_ranges(x.size(), [&](std::size_t begin, std::size_t n) {
            if (begin > x.size() || n > x.size() - begin) return;
            const std::byte* at = bytes.data() + shift + 4 * begin;
            ASSERT_EQ(scalar().max_magnitude32(at, n), vector().max_magnitude32(at, n)) << n << " from " << begin << ", offset " << shift;
            ASSERT_EQ(scalar().max_magnitude16(at, 2 * n), vector().max_magnitude16(at, 2 * n)) << 2 * n << " from " << begin << ", offset " << shift;
        });
    }
    const uint32_t negative_nan = 0xFFC00001u;
    EXPECT_EQ(vector().max_magnitude32(reinterpret_cast<const std::byte*>(&negative_nan), 1), 0x7FC00001u);
    EXPECT_EQ(vector().max_magnitude16(reinterpret_cast<const std::byte*>(&negative_nan), 2), 0x7FC0u);
    EXPECT_EQ(vector().max_magnitude32(bytes.data(), 0), 0u);
}

TEST_P(KernelPaths, ErrorLanesGiveTheScalarBits) {
    auto x = test_input(7);
    std::erase_if(x, [](float v) { return !std::isfinite(v); });  // references are finite (the quantizer refuses the rest)
    std::vector<float> y(x.size());
    std::mt19937 rng(8);
    std::normal_distribution<float> noise(0.0f, 1e-3f);
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = i % 5 == 0 ? x[i] : x[i] * (1.0f + noise(rng));
    for_ranges(x.size(), [&](std::size_t begin, std::size_t n) {
        if (begin > x.size() || n > x.size() - begin) return;
        // Lanes that already hold sums, as they do past a piece's first call.
        double signal_a[8], error_a[8], signal_b[8], error_b[8];
        for (int j = 0; j < 8; ++j) signal_a[j] = signal_b[j] = 0.25 * j, error_a[j] = error_b[j] = 1e-9 * j;
        double max_a = 1e-30, max_b = 1e-30;
        scalar().error_lanes(x.data() + begin, y.data() + begin, n, signal_a, error_a, &max_a);
        vector().error_lanes(x.data() + begin, y.data() + begin, n, signal_b, error_b, &max_b);
        ASSERT_EQ(std::memcmp(signal_a, signal_b, sizeof signal_a), 0) << n << " from " << begin;
        ASSERT_EQ(std::memcmp(error_a, error_b, sizeof error_a), 0) << n << " from " << begin;
        ASSERT_EQ(max_a, max_b) << n << " from " << begin;
    });
}

INSTANTIATE_TEST_SUITE_P(Host, KernelPaths, testing::ValuesIn(kPaths), [](const testing::TestParamInfo<Path>& path) { return std::string(path.param.name); });

}  // namespace
