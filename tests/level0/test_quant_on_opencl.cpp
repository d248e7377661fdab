// The Level Zero backend's quantization kernels (kernels/opencl/grey_quant.clcpp), executed on the CPU
// through OpenCL exactly as the backend runs a job (backends/level0/quant_launch.hpp: the statistics
// kernel, the host's choice of parameters, the encoder; the decoder), against the host backend's
// quantizer: the same bytes for every format of grey_quant_format and every plain dtype, over shapes with
// one element, ragged rows, rows shorter than a group, runs longer than a statistics piece, unaligned
// tensors, and data that is random (fixed seeds), extreme (subnormals, signed zeros, ties, values near
// the float range) or refused (NaN, infinities, groups too large for fp16 parameters: the same message).
#include "opencl_cpu.hpp"

#include "common/numeric.hpp"
#include "host/quant/quantizer.hpp"
#include "level0/quant_launch.hpp"
#include "quant/format.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using grey::test::ClBuffer;
namespace gc = grey::common;
namespace hq = grey::host::quant;
namespace l0 = grey::level0;

using Bytes = std::vector<unsigned char>;

// A quantization's bytes, or the message it was refused with.
struct Outcome {
    Bytes bytes;
    std::string error;
};

// "" when equal, else where they first differ.
std::string difference(const Bytes& expected, const Bytes& actual) {
    if (expected.size() != actual.size()) return "sizes " + std::to_string(expected.size()) + " and " + std::to_string(actual.size());
    for (std::size_t i = 0; i < expected.size(); ++i)
        if (expected[i] != actual[i])
            return "byte " + std::to_string(i) + " of " + std::to_string(expected.size()) + ": host " + std::to_string(expected[i]) +
                   ", kernel " + std::to_string(actual[i]);
    return "";
}

std::size_t dtype_bytes(grey_dtype dtype) { return dtype == GREY_DTYPE_F32 ? 4 : 2; }

// `values` stored as `dtype` (F16 and BF16 rounded to nearest even, as the library stores them).
Bytes store(const std::vector<float>& values, grey_dtype dtype) {
    Bytes out(values.size() * dtype_bytes(dtype));
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (dtype == GREY_DTYPE_F32) {
            std::memcpy(out.data() + 4 * i, &values[i], 4);
            continue;
        }
        const uint16_t h = dtype == GREY_DTYPE_F16 ? gc::f32_to_f16(values[i]) : gc::f32_to_bf16(values[i]);
        std::memcpy(out.data() + 2 * i, &h, 2);
    }
    return out;
}

std::span<const std::byte> as_bytes(const Bytes& b) { return std::as_bytes(std::span(b)); }

Outcome host_quantize(const grey_quant_layout& layout, grey_dtype dtype, const Bytes& plain) {
    try {
        const auto& kernels = hq::best_kernels();
        const hq::FloatBuffer x = hq::to_f32(dtype, as_bytes(plain), layout.elements, kernels);
        std::vector<std::byte> out(layout.bytes);
        hq::quantize(layout, x, out, kernels);
        Bytes bytes(layout.bytes);
        std::memcpy(bytes.data(), out.data(), out.size());
        return {bytes, ""};
    } catch (const std::invalid_argument& e) {
        return {{}, e.what()};
    }
}

Bytes host_dequantize(const grey_quant_layout& layout, grey_dtype dtype, const Bytes& quantized) {
    const auto& kernels = hq::best_kernels();
    std::vector<float> y(layout.elements);
    hq::dequantize(layout, as_bytes(quantized), y, kernels);
    std::vector<std::byte> out(layout.elements * dtype_bytes(dtype));
    hq::from_f32(y, dtype, out);
    Bytes bytes(out.size());
    std::memcpy(bytes.data(), out.data(), out.size());
    return bytes;
}

struct Format {
    const char* name;
    grey_quant_format format;
    uint32_t group;
    int32_t axis;
};

// Every format, with each grouping choice the runtime offers.
const Format kFormats[] = {
    {"int8 axis 0", GREY_QUANT_INT8, 0, 0},        {"int8 axis 1", GREY_QUANT_INT8, 0, 1},
    {"int8-token", GREY_QUANT_INT8_TOKEN, 0, 0},   {"int4 g32", GREY_QUANT_INT4, 32, 0},
    {"int4 g64", GREY_QUANT_INT4, 64, 0},          {"int4 g128", GREY_QUANT_INT4, 128, 0},
    {"int4-sym g32", GREY_QUANT_INT4_SYM, 32, 0},  {"int4-sym g128", GREY_QUANT_INT4_SYM, 128, 0},
    {"nf4", GREY_QUANT_NF4, 0, 0},                 {"fp8-e4m3 per tensor", GREY_QUANT_FP8_E4M3, 0, GREY_QUANT_PER_TENSOR},
    {"fp8-e4m3 axis 0", GREY_QUANT_FP8_E4M3, 0, 0}, {"fp8-e5m2 per tensor", GREY_QUANT_FP8_E5M2, 0, GREY_QUANT_PER_TENSOR},
    {"fp8-e5m2 axis 1", GREY_QUANT_FP8_E5M2, 0, 1}, {"q8_0", GREY_QUANT_Q8_0, 0, 0},
    {"q4_0", GREY_QUANT_Q4_0, 0, 0},               {"q4_1", GREY_QUANT_Q4_1, 0, 0},
};

bool is_ggml(const Format& f) { return gc::is_ggml(f.format); }

// Shapes the format takes: ggml's innermost dimension is a multiple of 32; axis 1 needs rank 2.
std::vector<std::vector<uint64_t>> shapes_for(const Format& f) {
    if (is_ggml(f)) return {{32}, {3, 64}, {2, 5, 32}, {1, 4160}, {7, 96}};
    std::vector<std::vector<uint64_t>> shapes = {{1, 1}, {3, 5}, {4, 33}, {5, 100}, {2, 77}, {3, 7, 5}, {3, 300}, {6, 256}, {2, 9000}};
    if (f.axis != 1) shapes.insert(shapes.end(), {{1}, {7}, {100}});
    return shapes;
}

grey_quant_layout layout_for(const Format& f, const std::vector<uint64_t>& shape, grey_quant_calibration calibration = GREY_CALIBRATION_RTN) {
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    p.calibration = calibration;
    p.format = f.format;
    p.group_size = f.group;
    p.axis = f.axis;
    return grey::quant::make_layout(shape, p);
}

// Normal values with a spread of magnitudes and a few outliers.
std::vector<float> random_values(std::size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> scale(-6, 3);
    const float sigma = std::ldexp(1.0f, scale(rng));
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = normal(rng) * sigma * (i % 37 == 5 ? 16.0f : 1.0f);
    return v;
}

// The corners: signed zeros (the first kept by min and max), subnormals, exact halves (ties for the
// rounding), values near the float range (refused by the fp16-parameter formats, kept by the fp32 ones),
// and a whole tensor of zeros or of -0.
std::vector<std::vector<float>> extreme_values(std::size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    const float corners[] = {-0.0f, 0.0f, 1e-45f, -1e-45f, 1.17549435e-38f, -3e-39f, 0.5f, -0.5f, 1.5f, -2.5f, 7.5f, 127.0f, -127.0f,
                             126.5f, -8.5f, 65504.0f, 1e-30f};
    std::vector<float> mixed(n), ties(n), huge(n), zeros(n, 0.0f), negative_zeros(n, -0.0f), tiny(n), zero_floor(n), negative_zero_floor(n);
    for (std::size_t i = 0; i < n; ++i) {
        // Both zeros as a group's minimum: the one met first is the one kept (INT4 and Q4_1 store it).
        const float positive = static_cast<float>(1 + rng() % 100) / 8.0f;
        zero_floor[i] = i % 4 == 0 ? 0.0f : i % 4 == 1 ? -0.0f : positive;
        negative_zero_floor[i] = i % 4 == 0 ? -0.0f : i % 4 == 1 ? 0.0f : positive;
        mixed[i] = corners[rng() % std::size(corners)];
        ties[i] = static_cast<float>(static_cast<int>(rng() % 255) - 127) + 0.5f;  // exactly halfway with a scale of 1
        huge[i] = (rng() % 2 ? 1.0f : -1.0f) * std::ldexp(1.0f + static_cast<float>(rng() % 1000) / 1000.0f, 100 + static_cast<int>(rng() % 27));
        tiny[i] = (rng() % 2 ? 1.0f : -1.0f) * std::ldexp(static_cast<float>(rng() % 1000), -149);
    }
    if (n > 1) ties[0] = 127.0f;  // absmax 127: an int8 scale of exactly 1
    if (n > 2) mixed[1] = 0.0f, mixed[2] = -0.0f;
    return {mixed, ties, huge, zeros, negative_zeros, tiny, zero_floor, negative_zero_floor};
}

class QuantOnOpenCl : public grey::test::OpenClCpu {
protected:
    // quant_launch.hpp's QuantKernels through OpenCL: the kernels the backend launches, with its shapes.
    class ClQuantKernels final : public l0::QuantKernels {
    public:
        ClQuantKernels(QuantOnOpenCl& cl, const ClBuffer& plain, const ClBuffer& quantized) : cl_(cl), plain_(plain), quantized_(quantized) {}

        std::vector<grey_ql0_stats> statistics(const grey_ql0_args& args) override {
            const uint64_t pieces = l0::stats_items(args);
            const ClBuffer out(cl_.context_, pieces * sizeof(grey_ql0_stats));
            cl_.run(cl_.kernel(GREY_LEVEL0_QUANT_SPIRV, l0::kQuantStatsKernelName), l0::quant_group_count(pieces), l0::kQuantGroupSize,
                    {buffer_argument(plain_), buffer_argument(out), value_argument(args)});
            return cl_.read_as<grey_ql0_stats>(out, pieces);
        }
        std::vector<double> search(const grey_ql0_args& args, std::span<const gc::Coding> codings, uint32_t steps) override {
            const uint64_t items = grey_quant_layout_runs(&args.layout) * steps;
            const ClBuffer tried(cl_.context_, codings.size_bytes(), codings.data()), out(cl_.context_, items * sizeof(double));
            cl_.run(cl_.kernel(GREY_LEVEL0_QUANT_MSE_SPIRV, l0::kQuantSearchKernelName), l0::quant_group_count(items), l0::kQuantGroupSize,
                    {buffer_argument(plain_), buffer_argument(tried), buffer_argument(out), value_argument(args), value_argument(steps)});
            ++searches;
            return cl_.read_as<double>(out, items);
        }
        std::vector<double> refit_sums(const grey_ql0_args& args, std::span<const gc::Coding> codings) override {
            const uint64_t runs = grey_quant_layout_runs(&args.layout);
            const ClBuffer best(cl_.context_, codings.size_bytes(), codings.data()), out(cl_.context_, 4 * runs * sizeof(double));
            cl_.run(cl_.kernel(GREY_LEVEL0_QUANT_MSE_SPIRV, l0::kQuantRefitKernelName), l0::quant_group_count(runs), l0::kQuantGroupSize,
                    {buffer_argument(plain_), buffer_argument(best), buffer_argument(out), value_argument(args)});
            return cl_.read_as<double>(out, 4 * runs);
        }
        void encode(const grey_ql0_args& args, std::span<const gc::Coding> codings, std::span<const std::byte> parameters) override {
            const ClBuffer chosen(cl_.context_, codings.size_bytes(), codings.data());
            cl_.write(quantized_, args.quantized_offset + args.layout.codes_bytes, parameters.data(), parameters.size());
            cl_.run(cl_.kernel(GREY_LEVEL0_QUANT_SPIRV, l0::kQuantEncodeKernelName), l0::quant_group_count(l0::encode_items(args.layout)),
                    l0::kQuantGroupSize, {buffer_argument(plain_), buffer_argument(quantized_), buffer_argument(chosen), value_argument(args)});
        }
        int searches = 0;

    private:
        QuantOnOpenCl& cl_;
        const ClBuffer& plain_;
        const ClBuffer& quantized_;
    };

    template <typename T>
    std::vector<T> read_as(const ClBuffer& b, uint64_t count) {
        const Bytes bytes = read(b, 0, count * sizeof(T));
        std::vector<T> out(count);
        std::memcpy(out.data(), bytes.data(), bytes.size());
        return out;
    }

    // A quantization as DeviceQueue::quantize runs it (quant_launch.hpp's quantize over the kernels), the
    // tensors at the given byte offsets of their buffers (the other bytes of the quantized buffer hold
    // 0xCD, which must stay).
    Outcome device_quantize(const grey_quant_layout& layout, grey_dtype dtype, const Bytes& plain, uint64_t plain_offset, uint64_t quantized_offset) {
        Bytes padded(plain_offset, 0xAB);
        padded.insert(padded.end(), plain.begin(), plain.end());
        const ClBuffer plain_buffer(context_, padded.size(), padded.data());
        const Bytes background(quantized_offset + layout.bytes + 7, 0xCD);
        const ClBuffer quantized(context_, background.size(), background.data());
        ClQuantKernels kernels(*this, plain_buffer, quantized);
        try {
            l0::quantize(kernels, l0::quant_args(layout, dtype, plain_offset, quantized_offset));
        } catch (const std::invalid_argument& e) {
            return {{}, e.what()};
        }
        if (layout.calibration == GREY_CALIBRATION_MSE) {
            EXPECT_GE(kernels.searches, 1);
        }
        Bytes all = read(quantized, 0, background.size());
        const Bytes outside_before(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(quantized_offset));
        const Bytes outside_after(all.end() - 7, all.end());
        EXPECT_EQ(outside_before, Bytes(quantized_offset, 0xCD)) << "the encoder wrote before the tensor";
        EXPECT_EQ(outside_after, Bytes(7, 0xCD)) << "the encoder wrote past the tensor";
        return {Bytes(all.begin() + static_cast<std::ptrdiff_t>(quantized_offset), all.end() - 7), ""};
    }

    // A dequantization as DeviceQueue::dequantize runs it.
    Bytes device_dequantize(const grey_quant_layout& layout, grey_dtype dtype, const Bytes& quantized, uint64_t quantized_offset, uint64_t plain_offset) {
        const grey_ql0_args args = l0::quant_args(layout, dtype, plain_offset, quantized_offset);
        Bytes padded(quantized_offset, 0xAB);
        padded.insert(padded.end(), quantized.begin(), quantized.end());
        const ClBuffer quantized_buffer(context_, padded.size(), padded.data());
        const std::size_t bytes = layout.elements * dtype_bytes(dtype);
        const Bytes background(plain_offset + bytes + 5, 0xCD);
        const ClBuffer plain(context_, background.size(), background.data());
        run(kernel(GREY_LEVEL0_QUANT_SPIRV, l0::kQuantDecodeKernelName), l0::quant_group_count(l0::decode_items(layout)), l0::kQuantGroupSize,
            {buffer_argument(quantized_buffer), buffer_argument(plain), value_argument(args)});
        const Bytes all = read(plain, 0, background.size());
        EXPECT_EQ(Bytes(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(plain_offset)), Bytes(plain_offset, 0xCD));
        EXPECT_EQ(Bytes(all.end() - 5, all.end()), Bytes(5, 0xCD)) << "the decoder wrote past the tensor";
        return Bytes(all.begin() + static_cast<std::ptrdiff_t>(plain_offset), all.end() - 5);
    }

    // Quantizes `values` as `dtype` on both sides and compares; then dequantizes the result on both.
    // Returns whether the two quantizations agreed (bytes or message).
    bool check(const Format& f, const std::vector<uint64_t>& shape, grey_dtype dtype, const std::vector<float>& values, uint64_t offset,
               const std::string& what, grey_quant_calibration calibration = GREY_CALIBRATION_RTN) {
        const grey_quant_layout layout = layout_for(f, shape, calibration);
        const Bytes plain = store(values, dtype);
        const Outcome expected = host_quantize(layout, dtype, plain);
        const Outcome actual = device_quantize(layout, dtype, plain, offset, offset + 2);
        const std::string where = std::string(f.name) + (calibration == GREY_CALIBRATION_MSE ? " mse " : " ") + shape_text(shape) + " dtype " +
                                  std::to_string(dtype) + " " + what;
        EXPECT_EQ(actual.error, expected.error) << where;
        const std::string quantized = difference(expected.bytes, actual.bytes);
        EXPECT_EQ(quantized, "") << where;
        if (!expected.error.empty() || !actual.error.empty() || !quantized.empty()) return expected.error == actual.error && quantized.empty();
        for (const grey_dtype out : {GREY_DTYPE_F32, GREY_DTYPE_F16, GREY_DTYPE_BF16}) {
            const std::string decoded = difference(host_dequantize(layout, out, expected.bytes), device_dequantize(layout, out, expected.bytes, offset + 1, offset));
            EXPECT_EQ(decoded, "") << where << ", dequantized to dtype " << out;
        }
        ++checked_;
        return true;
    }

    static std::string shape_text(const std::vector<uint64_t>& shape) {
        std::string s = "[";
        for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
        return s + "]";
    }

    int checked_ = 0;
};

uint64_t element_count(const std::vector<uint64_t>& shape) {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    return n;
}

const grey_dtype kDtypes[] = {GREY_DTYPE_F32, GREY_DTYPE_F16, GREY_DTYPE_BF16};

}  // namespace

TEST_F(QuantOnOpenCl, EveryFormatEqualsTheHostBackendOnRandomData) {
    uint32_t seed = 2024;
    for (const Format& f : kFormats)
        for (const auto& shape : shapes_for(f))
            for (const grey_dtype dtype : kDtypes) {
                const uint64_t offset = seed % 4;  // 0..3: unaligned tensors too
                check(f, shape, dtype, random_values(element_count(shape), seed), offset, "seed " + std::to_string(seed));
                ++seed;
            }
    EXPECT_GT(checked_, 300);
}

TEST_F(QuantOnOpenCl, EveryFormatEqualsTheHostBackendOnExtremeValues) {
    uint32_t seed = 7;
    int refused_alike = 0;
    for (const Format& f : kFormats)
        for (const auto& shape : shapes_for(f)) {
            if (element_count(shape) > 5000) continue;  // the random data covers runs of several pieces
            int kind = 0;
            for (const auto& values : extreme_values(element_count(shape), seed++)) {
                const grey_quant_layout layout = layout_for(f, shape);
                const Outcome host = host_quantize(layout, GREY_DTYPE_F32, store(values, GREY_DTYPE_F32));
                if (!host.error.empty()) ++refused_alike;
                check(f, shape, GREY_DTYPE_F32, values, 0, "extreme kind " + std::to_string(kind++));
            }
        }
    EXPECT_GT(refused_alike, 10) << "values near the float range must be refused by the fp16-parameter formats";
}

TEST_F(QuantOnOpenCl, MseCalibrationEqualsTheHostBackend) {
    // The clipping search and INT4's least-squares refit: the kernels' float64 error sums must pick the
    // host's parameter set for every group. Random data, the corners, and the F16 and BF16 inputs.
    uint32_t seed = 4242;
    for (const Format& f : kFormats)
        for (const auto& shape : shapes_for(f)) {
            if (element_count(shape) > 1600) continue;  // 21 to 26 trials of every group
            const uint64_t n = element_count(shape);
            check(f, shape, kDtypes[seed % 3], random_values(n, seed), seed % 4, "seed " + std::to_string(seed), GREY_CALIBRATION_MSE);
            ++seed;
            const auto corners = extreme_values(n, seed++);
            check(f, shape, GREY_DTYPE_F32, corners[0], 0, "mixed corners", GREY_CALIBRATION_MSE);
            check(f, shape, GREY_DTYPE_F32, corners[6], 1, "zero floor", GREY_CALIBRATION_MSE);
        }
    EXPECT_GT(checked_, 150);
}

TEST_F(QuantOnOpenCl, NonFiniteInputIsRefusedWithTheHostBackendsMessage) {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    uint32_t seed = 99;
    for (const Format& f : kFormats)
        for (const auto& shape : shapes_for(f)) {
            const uint64_t n = element_count(shape);
            for (const grey_dtype dtype : kDtypes) {
                std::vector<float> values = random_values(n, seed++);
                // The lowest offender decides: an infinity after a NaN, a NaN after an infinity, or one alone.
                const uint64_t first = (seed * 7919) % n;
                values[first] = seed % 2 ? nan : -inf;
                if (first + 3 < n) values[first + 3] = seed % 2 ? inf : -nan;
                check(f, shape, dtype, values, seed % 3, "non-finite at " + std::to_string(first));
            }
        }
}

TEST_F(QuantOnOpenCl, DequantizingArbitraryBytesEqualsTheHostBackend) {
    // Codes and parameters the quantizer would never write (fp8 NaN codes, fp16 infinities and
    // subnormals as scales, every nibble) decode to the host's values bit for bit.
    uint32_t seed = 31337;
    for (const Format& f : kFormats)
        for (const auto& shape : shapes_for(f)) {
            const grey_quant_layout layout = layout_for(f, shape);
            std::mt19937 rng(seed++);
            Bytes quantized(layout.bytes);
            for (auto& b : quantized) b = static_cast<unsigned char>(rng());
            for (const grey_dtype dtype : kDtypes) {
                const std::string decoded = difference(host_dequantize(layout, dtype, quantized), device_dequantize(layout, dtype, quantized, seed % 5, seed % 3));
                EXPECT_EQ(decoded, "") << f.name << " " << shape.size() << "-d, dtype " << dtype;
            }
        }
}
