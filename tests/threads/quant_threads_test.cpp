// Host quantization on the context's worker pool: for every format and calibration, on ragged shapes,
// the bytes (and the dequantized values, and the error report) are those of the single-threaded run
// whatever the thread count; a bad value found by a worker fails the call with the message a single
// thread gives; several callers share one context; destroying the context stops its threads.
#include "core/context.hpp"
#include "core/worker_pool.hpp"
#include "common/numeric.hpp"
#include "common/quant_coding.hpp"
#include "common/quant_error.hpp"
#include "host/quant/kernels.hpp"
#include "host/quant/parallel.hpp"
#include "host/quant/quantizer.hpp"
#include "quant/format.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace hq = grey::host::quant;
using grey::test::ContextPtr;
using grey::test::desc_of;

constexpr uint32_t kThreadCounts[] = {1, 2, 3, 7};

// Every format by its grey.h name, the per-channel ones on another axis and per tensor as well.
struct Format {
    const char* name;
    int32_t axis;
};

const Format kFormats[] = {
    {"int8", 0}, {"int8", 1}, {"int8", GREY_QUANT_PER_TENSOR}, {"int8-token", 0}, {"int4-g32", 0}, {"int4-g128", 0}, {"int4-sym-g128", 0},
    {"fp8-e4m3", 0}, {"fp8-e4m3", GREY_QUANT_PER_TENSOR}, {"fp8-e5m2", 1}, {"nf4", 0}, {"q8_0", 0}, {"q4_0", 0}, {"q4_1", 0},
};

// Ragged shapes: odd row counts, rows that are not a multiple of any group (odd ones too), a single
// row, rank 3; and some whose innermost dimension ggml accepts (a multiple of 32); {9, 256} is whole
// groups of 128 too (the fused group route, Kernels::quantize_groups, in batches of 16 and a rest).
const std::vector<std::vector<uint64_t>> kShapes = {
    {37, 100}, {1, 999}, {5, 3, 70}, {129, 33}, {37, 96}, {1, 32}, {3, 5, 64}, {9, 256},
};

grey_quant_params params_of(const Format& f, grey_quant_calibration calibration) {
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    EXPECT_EQ(grey_quant_params_from_name(f.name, &p), GREY_OK) << f.name;
    p.axis = f.axis;
    p.calibration = calibration;
    return p;
}

// Trained-weight-like values with what trips vectorised and chunked code: zeros of both signs, ties,
// an all-equal stretch, denormals and outliers.
std::vector<float> awkward_values(std::size_t n, uint32_t seed) {
    auto v = grey::test::normal_values(n, seed, 1.0f, 0, 97, 8.0f);
    for (std::size_t i = 3; i < n; i += 13) v[i] = 0.0f;
    for (std::size_t i = 5; i < n; i += 29) v[i] = -0.0f;
    for (std::size_t i = 7; i < n; i += 31) v[i] = 0.5f;
    for (std::size_t i = 11; i < n; i += 41) v[i] = 1e-40f;
    for (std::size_t i = n / 2; i < std::min(n, n / 2 + 200); ++i) v[i] = 0.25f;
    return v;
}

// A context whose pool has `threads` threads (host.threads, from a configuration file).
ContextPtr context_with_threads(uint32_t threads, const grey::test::TempDir& dir) {
    const auto config = dir.write("threads-" + std::to_string(threads) + ".yaml", "host:\n  threads: " + std::to_string(threads) + "\n");
    grey_context_options options = grey::test::host_only_options();
    const std::string path = config.string();
    options.config_path = path.c_str();
    auto context = grey::test::make_context(options);
    if (context) {
        EXPECT_EQ(context->workers->threads(), threads);
    }
    return context;
}

size_t process_threads() {
    size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++n;
    return n;
}

TEST(HostThreads, EveryFormatGivesTheSingleThreadedBitsOnAnyThreadCount) {
    const auto& kernels = hq::best_kernels();
    const grey::test::TempDir dir;
    std::vector<ContextPtr> contexts;
    for (const uint32_t t : kThreadCounts) contexts.push_back(context_with_threads(t, dir));
    size_t compared = 0;
    for (const auto& shape : kShapes) {
        uint64_t elements = 1;
        for (const uint64_t d : shape) elements *= d;
        const auto x = awkward_values(elements, static_cast<uint32_t>(elements));
        for (const auto& f : kFormats)
            for (const auto calibration : {GREY_CALIBRATION_RTN, GREY_CALIBRATION_MSE}) {
                grey_quant_layout plan{};
                try {
                    plan = grey::quant::make_layout(shape, params_of(f, calibration));
                } catch (const std::exception&) {
                    continue;  // a shape the format does not take (ggml: innermost not a multiple of 32)
                }
                SCOPED_TRACE(std::string(f.name) + " axis " + std::to_string(f.axis) + (calibration == GREY_CALIBRATION_MSE ? " mse" : " rtn") + " on " +
                             std::to_string(elements) + " elements");
                std::vector<std::byte> single(plan.bytes);
                hq::quantize(plan, x, single, kernels);
                std::vector<float> decoded(elements);
                hq::dequantize(plan, single, decoded, kernels);
                for (std::size_t c = 0; c < contexts.size(); ++c) {
                    SCOPED_TRACE(std::to_string(kThreadCounts[c]) + " threads");
                    // Chunks of 32 elements put a boundary in every group, row and run.
                    for (const uint64_t chunk : {uint64_t{32}, uint64_t{96}, hq::Parallel::kDefaultChunkElements}) {
                        const hq::Parallel parallel(&contexts[c]->host_services, chunk);
                        std::vector<std::byte> shared(plan.bytes, std::byte{0xAA});
                        hq::quantize(plan, x, shared, kernels, parallel);
                        ASSERT_EQ(shared, single) << "chunk " << chunk;
                        std::vector<float> back(elements, -1.0f);
                        hq::dequantize(plan, single, back, kernels, parallel);
                        ASSERT_EQ(std::memcmp(back.data(), decoded.data(), elements * 4), 0) << "chunk " << chunk;
                        // Streaming stores from the first byte (threshold 0), one float past an aligned start.
                        std::vector<float> streamed(elements + 1, -1.0f);
                        hq::dequantize(plan, single, std::span(streamed).subspan(1), kernels, parallel, 0);
                        ASSERT_EQ(std::memcmp(streamed.data() + 1, decoded.data(), elements * 4), 0) << "streamed, chunk " << chunk;
                        ASSERT_EQ(streamed[0], -1.0f);
                    }
                }
                ++compared;
            }
    }
    EXPECT_GE(compared, 2 * std::size(kFormats) * 2) << "every format on at least two shapes";
}

// The ggml formats' one pass (straight from F32, F16 or BF16, the error from the same codes): the bytes
// of the general route (widen, quantize) and the sums of common::ErrorSums::add over its decoded values,
// on every kernel path and thread count; input the general route must refuse (or that could overflow an
// fp16 parameter) is handed back untouched.
TEST(HostThreads, TheGgmlOnePassGivesTheGeneralRoutesBytesAndSums) {
    const grey::test::TempDir dir;
    std::vector<ContextPtr> contexts;
    for (const uint32_t t : kThreadCounts) contexts.push_back(context_with_threads(t, dir));
    std::vector<const hq::Kernels*> paths = {&hq::scalar_kernels()};
    if (hq::avx2_kernels() != nullptr) paths.push_back(hq::avx2_kernels());
    if (hq::avx512_kernels() != nullptr) paths.push_back(hq::avx512_kernels());
    // Shapes ending inside a piece of the error sums (4096 elements), one of several pieces.
    const std::vector<std::vector<uint64_t>> shapes = {{1, 32}, {37, 96}, {3, 5, 64}, {7, 1056}, {41, 2048}};
    for (const auto& shape : shapes) {
        uint64_t elements = 1;
        for (const uint64_t d : shape) elements *= d;
        const auto values = awkward_values(elements, static_cast<uint32_t>(elements) + 1);
        for (const grey_dtype dtype : {GREY_DTYPE_F32, GREY_DTYPE_F16, GREY_DTYPE_BF16}) {
            const uint64_t width = dtype == GREY_DTYPE_F32 ? 4 : 2;
            // The source one byte into a buffer: mapped tensors need not be aligned.
            std::vector<std::byte> buffer(elements * width + 1);
            const std::span<std::byte> source(buffer.data() + 1, elements * width);
            hq::from_f32(values, dtype, source);
            for (const char* name : {"q8_0", "q4_0", "q4_1"}) {
                SCOPED_TRACE(std::string(name) + " from " + grey_dtype_name(dtype) + " on " + std::to_string(elements) + " elements");
                grey_quant_params p = GREY_QUANT_PARAMS_INIT;
                ASSERT_EQ(grey_quant_params_from_name(name, &p), GREY_OK);
                const auto plan = grey::quant::make_layout(shape, p);
                ASSERT_TRUE(hq::quantizes_in_one_pass(plan, dtype));
                const auto& scalar = hq::scalar_kernels();
                const auto x = hq::to_f32(dtype, source, elements, scalar);
                std::vector<std::byte> expected(plan.bytes);
                hq::quantize(plan, x, expected, scalar);
                std::vector<float> decoded(elements);
                hq::dequantize(plan, expected, decoded, scalar);
                grey::common::ErrorSums expected_sums;
                expected_sums.add(x.data(), decoded.data(), elements);
                for (const hq::Kernels* kernels : paths)
                    for (std::size_t c = 0; c < contexts.size(); ++c)
                        for (const uint64_t chunk : {uint64_t{32}, uint64_t{8192}, hq::Parallel::kDefaultChunkElements}) {
                            SCOPED_TRACE(std::string(kernels->name) + ", " + std::to_string(kThreadCounts[c]) + " threads, chunks of " + std::to_string(chunk));
                            const hq::Parallel parallel(&contexts[c]->host_services, chunk);
                            std::vector<std::byte> out(plan.bytes, std::byte{0xAA});
                            grey::common::ErrorSums sums;
                            ASSERT_TRUE(hq::quantize_in_one_pass(plan, dtype, source, out, &sums, *kernels, parallel));
                            ASSERT_EQ(out, expected);
                            EXPECT_EQ(sums.elements, expected_sums.elements);
                            EXPECT_EQ(sums.sum_squared_signal, expected_sums.sum_squared_signal);
                            EXPECT_EQ(sums.sum_squared_error, expected_sums.sum_squared_error);
                            EXPECT_EQ(sums.max_abs_error, expected_sums.max_abs_error);
                            std::vector<std::byte> without_sums(plan.bytes);
                            ASSERT_TRUE(hq::quantize_in_one_pass(plan, dtype, source, without_sums, nullptr, *kernels, parallel));
                            ASSERT_EQ(without_sums, expected);
                        }
                // A NaN, an infinity, or a magnitude above 65504 at the tensor's start, middle or end, found by
                // any chunk (chunks before it already quantized): handed back, nothing written.
                const std::vector<float> refused = dtype == GREY_DTYPE_F16 ? std::vector<float>{NAN, -INFINITY}
                                                                           : std::vector<float>{NAN, INFINITY, 65520.0f, -1e9f};
                for (const float bad : refused)
                    for (const uint64_t at : {uint64_t{0}, elements / 2, elements - 1})
                        for (const hq::Kernels* kernels : paths) {
                            auto changed = values;
                            changed[at] = bad;
                            std::vector<std::byte> bad_source(elements * width);
                            hq::from_f32(changed, dtype, bad_source);
                            std::vector<std::byte> out(plan.bytes, std::byte{0xAA});
                            const hq::Parallel parallel(&contexts.back()->host_services, 32);
                            EXPECT_FALSE(hq::quantize_in_one_pass(plan, dtype, bad_source, out, nullptr, *kernels, parallel)) << bad << " at " << at;
                            EXPECT_EQ(out, std::vector<std::byte>(plan.bytes, std::byte{0xAA})) << bad << " at " << at << " on " << kernels->name;
                        }
            }
        }
    }
}

// The checked route (quantize_checked: the input's magnitudes learnt as it is quantized, into staging
// memory copied out at the end): for every round-to-nearest plan that visits each run once, from F32 in
// place, unaligned F32, F16 and BF16 (widened a piece at a time, for runs up to a piece), the bytes of
// the route that converts and checks first, on every kernel path, thread count and chunk size, whatever
// the output held before; a NaN, an infinity or (fp16 parameters) a magnitude above 65504 anywhere refuses
// with the output untouched, and a large magnitude that the format's float32 parameters hold is quantized.
TEST(HostThreads, TheCheckedRouteGivesTheCheckFirstBytesOrLeavesTheOutputUntouched) {
    const grey::test::TempDir dir;
    std::vector<ContextPtr> contexts;
    for (const uint32_t t : {1u, 3u}) contexts.push_back(context_with_threads(t, dir));
    std::vector<const hq::Kernels*> paths = {&hq::scalar_kernels()};
    if (hq::avx2_kernels() != nullptr) paths.push_back(hq::avx2_kernels());
    if (hq::avx512_kernels() != nullptr) paths.push_back(hq::avx512_kernels());
    struct Input {
        grey_dtype dtype;
        std::size_t offset;  // bytes into the buffer: 1 puts F32 off its alignment
    };
    const Input inputs[] = {{GREY_DTYPE_F32, 0}, {GREY_DTYPE_F32, 1}, {GREY_DTYPE_F16, 1}, {GREY_DTYPE_BF16, 0}};
    size_t checked = 0, pieces = 0;
    for (const auto& shape : kShapes) {
        uint64_t elements = 1;
        for (const uint64_t d : shape) elements *= d;
        const auto x = awkward_values(elements, static_cast<uint32_t>(elements) + 7);
        for (const auto& f : kFormats) {
            grey_quant_layout plan{};
            try {
                plan = grey::quant::make_layout(shape, params_of(f, GREY_CALIBRATION_RTN));
            } catch (const std::exception&) {
                continue;
            }
            const bool f16_parameters = plan.format == GREY_QUANT_INT4 || plan.format == GREY_QUANT_INT4_SYM || grey::common::is_ggml(plan.format);
            for (const Input& input : inputs) {
                SCOPED_TRACE(std::string(f.name) + " axis " + std::to_string(f.axis) + " on " + std::to_string(elements) + " elements of " +
                             grey_dtype_name(input.dtype) + " at offset " + std::to_string(input.offset));
                const std::size_t width = input.dtype == GREY_DTYPE_F32 ? 4 : 2;
                const bool in_place = input.dtype == GREY_DTYPE_F32 && input.offset == 0;
                // `values` as the input's bytes, and the reference: converted (and checked) first, then quantized.
                const auto source_of = [&](const std::vector<float>& values, std::vector<std::byte>& buffer) {
                    buffer.assign(elements * width + input.offset, std::byte{0});
                    const std::span<std::byte> source(buffer.data() + input.offset, elements * width);
                    hq::from_f32(values, input.dtype, source);
                    return source;
                };
                const auto reference = [&](std::span<const std::byte> source) {
                    uint32_t largest = 0;
                    const auto widened = hq::to_f32(input.dtype, source, elements, hq::scalar_kernels(), {}, &largest);
                    std::vector<std::byte> bytes(plan.bytes);
                    hq::quantize(plan, widened, bytes, hq::scalar_kernels(), {}, largest);
                    return bytes;
                };
                std::vector<std::byte> buffer;
                const auto source = source_of(x, buffer);
                const auto expected = reference(source);
                for (const hq::Kernels* kernels : paths)
                    for (const auto& context : contexts)
                        for (const uint64_t chunk : {uint64_t{32}, uint64_t{96}, hq::Parallel::kDefaultChunkElements}) {
                            SCOPED_TRACE(std::string(kernels->name) + ", chunks of " + std::to_string(chunk));
                            const hq::Parallel parallel(&context->host_services, chunk);
                            const bool taken = plan.param_count == grey_quant_layout_runs(&plan) && plan.run_length <= chunk &&
                                               (in_place || plan.run_length <= grey::common::ErrorSums::kPiece);
                            for (const std::byte fill : {std::byte{0x00}, std::byte{0xFF}}) {
                                std::vector<std::byte> out(plan.bytes, fill);
                                ASSERT_EQ(hq::quantize_checked(plan, input.dtype, source, out, *kernels, parallel), taken);
                                if (taken) {
                                    ASSERT_EQ(out, expected) << "output filled with " << static_cast<int>(fill) << " before";
                                }
                            }
                            if (!taken) continue;
                            ++checked;
                            pieces += in_place ? 0 : 1;
                            // F16 holds no magnitude above 65504 (1e6 becomes an infinity).
                            for (const float bad : {NAN, -INFINITY, 1e6f})
                                for (const uint64_t at : {uint64_t{0}, elements / 2, elements - 1}) {
                                    auto changed = x;
                                    changed[at] = bad;
                                    std::vector<std::byte> changed_buffer;
                                    const auto changed_source = source_of(changed, changed_buffer);
                                    std::vector<std::byte> out(plan.bytes, std::byte{0x5C});
                                    const bool refused = std::isnan(bad) || std::isinf(bad) || f16_parameters || input.dtype == GREY_DTYPE_F16;
                                    ASSERT_EQ(hq::quantize_checked(plan, input.dtype, changed_source, out, *kernels, parallel), !refused) << bad << " at " << at;
                                    const auto wanted = refused ? std::vector<std::byte>(plan.bytes, std::byte{0x5C}) : reference(changed_source);
                                    ASSERT_EQ(out, wanted) << bad << " at " << at << (refused ? ": the output stays untouched" : "");
                                }
                        }
            }
        }
    }
    EXPECT_GE(checked, 400u) << "the route taken on most formats and shapes";
    EXPECT_GE(pieces, 300u) << "from widened pieces too";
}

// The error of a quantization measured from its source (add_quantization_error: F32 in place or
// unaligned, F16, BF16, a piece at a time): exactly common::ErrorSums::add over the float32 values and
// the dequantized tensor, on every thread count, on shapes of one piece, several, and a ragged last one.
TEST(HostThreads, TheErrorFromTheSourceIsTheErrorOverTheWholeTensors) {
    const grey::test::TempDir dir;
    std::vector<ContextPtr> contexts;
    for (const uint32_t t : {1u, 3u}) contexts.push_back(context_with_threads(t, dir));
    const std::vector<std::vector<uint64_t>> shapes = {{1, 999}, {37, 100}, {3, 4096}, {129, 96}};
    int measured = 0;
    for (const auto& shape : shapes) {
        uint64_t elements = 1;
        for (const uint64_t d : shape) elements *= d;
        const auto x = awkward_values(elements, static_cast<uint32_t>(elements) + 3);
        for (const char* name : {"int8", "int4-g32", "nf4", "fp8-e5m2", "q4_1"}) {
            grey_quant_params p = GREY_QUANT_PARAMS_INIT;
            ASSERT_EQ(grey_quant_params_from_name(name, &p), GREY_OK);
            grey_quant_layout plan{};
            try {
                plan = grey::quant::make_layout(shape, p);
            } catch (const std::exception&) {
                continue;
            }
            for (const grey_dtype dtype : {GREY_DTYPE_F32, GREY_DTYPE_F16, GREY_DTYPE_BF16})
                for (const std::size_t offset : {std::size_t{0}, std::size_t{1}}) {
                    SCOPED_TRACE(std::string(name) + " from " + grey_dtype_name(dtype) + " at offset " + std::to_string(offset) + ", " +
                                 std::to_string(elements) + " elements");
                    const std::size_t width = dtype == GREY_DTYPE_F32 ? 4 : 2;
                    std::vector<std::byte> buffer(elements * width + offset);
                    const std::span<std::byte> source(buffer.data() + offset, elements * width);
                    hq::from_f32(x, dtype, source);
                    const auto reference = hq::to_f32(dtype, source, elements, hq::scalar_kernels());
                    std::vector<std::byte> quantized(plan.bytes);
                    hq::quantize(plan, reference, quantized, hq::scalar_kernels());
                    std::vector<float> decoded(elements);
                    hq::dequantize(plan, quantized, decoded, hq::scalar_kernels());
                    grey::common::ErrorSums expected;
                    expected.add(reference.data(), decoded.data(), elements);
                    for (const auto& context : contexts) {
                        grey::common::ErrorSums sums;
                        hq::add_quantization_error(sums, plan, dtype, source, quantized, hq::best_kernels(), hq::Parallel(&context->host_services, 64));
                        EXPECT_EQ(sums.elements, expected.elements);
                        EXPECT_EQ(sums.sum_squared_signal, expected.sum_squared_signal);
                        EXPECT_EQ(sums.sum_squared_error, expected.sum_squared_error);
                        EXPECT_EQ(sums.max_abs_error, expected.max_abs_error);
                    }
                    ++measured;
                }
        }
    }
    EXPECT_GE(measured, 80);
    grey::common::ErrorSums sums;
    const grey_quant_layout plan = grey::quant::make_layout(std::vector<uint64_t>{4}, GREY_QUANT_PARAMS_INIT);
    EXPECT_THROW(hq::add_quantization_error(sums, plan, GREY_DTYPE_I32, {}, {}, hq::best_kernels()), std::invalid_argument);
}

TEST(HostThreads, ConversionsGiveTheSingleThreadedBitsOnAnyThreadCount) {
    const auto& kernels = hq::best_kernels();
    const grey::test::TempDir dir;
    constexpr uint64_t n = 5001;  // odd, and not a multiple of the chunk
    std::vector<uint16_t> halves(n);
    for (uint64_t i = 0; i < n; ++i) halves[i] = static_cast<uint16_t>((i * 2654435761u) & 0x7BFF);  // finite fp16 and bf16
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(halves.data()), n * 2);
    const auto values = awkward_values(n, 5);
    for (const uint32_t t : kThreadCounts) {
        const auto context = context_with_threads(t, dir);
        const hq::Parallel parallel(&context->host_services, 64);
        for (const grey_dtype dtype : {GREY_DTYPE_F16, GREY_DTYPE_BF16}) {
            const auto single = hq::to_f32(dtype, bytes, n, kernels);
            const auto shared = hq::to_f32(dtype, bytes, n, kernels, parallel);
            ASSERT_EQ(std::memcmp(single.data(), shared.data(), n * 4), 0) << t << " threads";
        }
        for (const grey_dtype dtype : {GREY_DTYPE_F32, GREY_DTYPE_F16, GREY_DTYPE_BF16}) {
            std::vector<std::byte> single(n * 4), shared(n * 4);
            hq::from_f32(values, dtype, single);
            hq::from_f32(values, dtype, shared, parallel);
            ASSERT_EQ(single, shared) << t << " threads";
        }
    }
}

// Through grey.h on host buffers (the route of greyctl with a context): quantized bytes, error report and
// dequantized F16 equal the context-free grey_quantize / grey_dequantize, which run on one thread.
TEST(HostThreads, HostBuffersGiveTheSingleThreadedResultThroughTheApi) {
    const grey::test::TempDir dir;
    const std::vector<uint64_t> shape{301, 704};  // 211,904 elements: several default chunks, a ragged last one
    const auto values = awkward_values(301 * 704, 9);
    const grey_tensor_desc desc = desc_of(shape);
    for (const char* name : {"int8", "int4-g128", "fp8-e4m3", "nf4", "q8_0", "q4_0"}) {
        SCOPED_TRACE(name);
        grey_quant_params p = GREY_QUANT_PARAMS_INIT;
        ASSERT_EQ(grey_quant_params_from_name(name, &p), GREY_OK);
        uint64_t size = 0;
        ASSERT_EQ(grey_quant_size(&desc, &p, &size), GREY_OK);
        std::vector<std::byte> single(size);
        grey_quant_report single_report{};
        single_report.struct_size = sizeof single_report;
        ASSERT_EQ(grey_quantize(&desc, values.data(), values.size() * 4, &p, single.data(), size, &single_report), GREY_OK) << grey_last_error();
        const grey_tensor_desc out_desc = desc_of(shape, GREY_DTYPE_F16);
        std::vector<uint16_t> single_f16(values.size());
        ASSERT_EQ(grey_dequantize(&out_desc, &p, single.data(), size, single_f16.data(), single_f16.size() * 2), GREY_OK);
        for (const uint32_t t : kThreadCounts) {
            SCOPED_TRACE(std::to_string(t) + " threads");
            const auto context = context_with_threads(t, dir);
            grey_buffer *plain = nullptr, *quantized = nullptr, *restored = nullptr;
            ASSERT_EQ(grey_buffer_create(context.get(), 0, values.size() * 4, &plain), GREY_OK);
            ASSERT_EQ(grey_buffer_create(context.get(), 0, size, &quantized), GREY_OK);
            ASSERT_EQ(grey_buffer_create(context.get(), 0, values.size() * 2, &restored), GREY_OK);
            ASSERT_EQ(grey_buffer_write(plain, 0, values.data(), values.size() * 4), GREY_OK);
            grey_quant_report report{};
            report.struct_size = sizeof report;
            ASSERT_EQ(grey_quantize_buffer(&desc, plain, 0, &p, quantized, 0, &report), GREY_OK) << grey_last_error();
            std::vector<std::byte> shared(size);
            ASSERT_EQ(grey_buffer_read(quantized, 0, shared.data(), size), GREY_OK);
            EXPECT_EQ(shared, single);
            EXPECT_EQ(std::memcmp(&report, &single_report, sizeof report), 0) << "the error report, to the bit";
            ASSERT_EQ(grey_dequantize_buffer(&out_desc, &p, quantized, 0, restored, 0), GREY_OK) << grey_last_error();
            std::vector<uint16_t> shared_f16(values.size());
            ASSERT_EQ(grey_buffer_read(restored, 0, shared_f16.data(), shared_f16.size() * 2), GREY_OK);
            EXPECT_EQ(shared_f16, single_f16);
            grey_buffer_destroy(restored);
            grey_buffer_destroy(quantized);
            grey_buffer_destroy(plain);
        }
    }
}

// A worker that meets a NaN or an infinity stops the job; the call fails with the single-threaded
// message, which names the first bad element, whichever thread found which.
TEST(HostThreads, AWorkersErrorReachesTheCallerAsOneThreadReportsIt) {
    const auto& kernels = hq::best_kernels();
    const grey::test::TempDir dir;
    auto values = awkward_values(200'000, 3);
    values[70'001] = NAN;
    values[150'000] = INFINITY;
    values[199'999] = -NAN;
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    ASSERT_EQ(grey_quant_params_from_name("int4-g128", &p), GREY_OK);
    const auto plan = grey::quant::make_layout(std::vector<uint64_t>{1000, 200}, p);
    std::string expected;
    try {
        hq::FloatBuffer storage;
        (void)hq::as_f32(GREY_DTYPE_F32, {reinterpret_cast<const std::byte*>(values.data()), values.size() * 4}, values.size(), kernels, storage);
        FAIL() << "a NaN went through";
    } catch (const std::invalid_argument& e) {
        expected = e.what();
    }
    EXPECT_NE(expected.find("70001"), std::string::npos) << expected;
    const grey_tensor_desc desc = desc_of({1000, 200});
    for (const uint32_t t : kThreadCounts) {
        SCOPED_TRACE(std::to_string(t) + " threads");
        const auto context = context_with_threads(t, dir);
        for (const uint64_t chunk : {uint64_t{32}, uint64_t{4096}}) {
            const hq::Parallel parallel(&context->host_services, chunk);
            hq::FloatBuffer storage;
            try {
                (void)hq::as_f32(GREY_DTYPE_F32, {reinterpret_cast<const std::byte*>(values.data()), values.size() * 4}, values.size(), kernels,
                                 storage, parallel);
                ADD_FAILURE() << "a NaN went through with chunks of " << chunk;
            } catch (const std::invalid_argument& e) {
                EXPECT_EQ(std::string(e.what()), expected) << "chunks of " << chunk;
            }
        }
        // Through the API: the status, the message, and the destination left as it was.
        grey_buffer *plain = nullptr, *quantized = nullptr;
        ASSERT_EQ(grey_buffer_create(context.get(), 0, values.size() * 4, &plain), GREY_OK);
        ASSERT_EQ(grey_buffer_create(context.get(), 0, plan.bytes, &quantized), GREY_OK);
        ASSERT_EQ(grey_buffer_write(plain, 0, values.data(), values.size() * 4), GREY_OK);
        EXPECT_EQ(grey_quantize_buffer(&desc, plain, 0, &p, quantized, 0, nullptr), GREY_ERROR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(grey_last_error()).find(expected), std::string::npos) << grey_last_error();
        grey_buffer_destroy(quantized);
        grey_buffer_destroy(plain);
    }
    (void)plan;
}

// Several application threads quantize through one context at once (each job runs on the pool or, while
// another has it, on its own thread): every result is the single-threaded one.
TEST(HostThreads, CallersOnSeveralThreadsShareOneContext) {
    const grey::test::TempDir dir;
    const auto context = context_with_threads(3, dir);
    const std::vector<uint64_t> shape{64, 2048};
    const auto values = awkward_values(64 * 2048, 21);
    const grey_tensor_desc desc = desc_of(shape);
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    ASSERT_EQ(grey_quant_params_from_name("fp8-e4m3", &p), GREY_OK);
    uint64_t size = 0;
    ASSERT_EQ(grey_quant_size(&desc, &p, &size), GREY_OK);
    std::vector<std::byte> single(size);
    ASSERT_EQ(grey_quantize(&desc, values.data(), values.size() * 4, &p, single.data(), size, nullptr), GREY_OK);
    std::atomic<int> mismatches{0}, failures{0};
    std::vector<std::thread> callers;
    for (int c = 0; c < 4; ++c)
        callers.emplace_back([&] {
            grey_buffer *plain = nullptr, *quantized = nullptr;
            if (grey_buffer_create(context.get(), 0, values.size() * 4, &plain) != GREY_OK ||
                grey_buffer_create(context.get(), 0, size, &quantized) != GREY_OK || grey_buffer_write(plain, 0, values.data(), values.size() * 4) != GREY_OK) {
                ++failures;
            } else {
                for (int round = 0; round < 5; ++round) {
                    std::vector<std::byte> out(size);
                    if (grey_quantize_buffer(&desc, plain, 0, &p, quantized, 0, nullptr) != GREY_OK || grey_buffer_read(quantized, 0, out.data(), size) != GREY_OK)
                        ++failures;
                    else if (out != single)
                        ++mismatches;
                }
            }
            grey_buffer_destroy(quantized);
            grey_buffer_destroy(plain);
        });
    for (auto& caller : callers) caller.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(mismatches.load(), 0);
}

// The pool's threads start with the context and stop with it: none is left behind.
TEST(HostThreads, DestroyingTheContextStopsItsThreads) {
    const grey::test::TempDir dir;
    // A first context and its threads come and go before counting: a runtime that starts a thread of its
    // own on the first thread creation (ThreadSanitizer's) has it by then.
    context_with_threads(2, dir).reset();
    const size_t before = process_threads();
    {
        const auto context = context_with_threads(7, dir);
        EXPECT_GE(process_threads(), before + 6) << "six helpers beside the calling thread";
        // Use the pool once, so that its helpers have run a job before they are stopped.
        const auto values = awkward_values(100'000, 1);
        std::vector<std::byte> out(100'000);
        const hq::Parallel parallel(&context->host_services, 1024);
        grey_quant_params p = GREY_QUANT_PARAMS_INIT;
        ASSERT_EQ(grey_quant_params_from_name("int8", &p), GREY_OK);
        const auto plan = grey::quant::make_layout(std::vector<uint64_t>{100, 1000}, p);
        out.resize(plan.bytes);
        hq::quantize(plan, values, out, hq::best_kernels(), parallel);
    }
    EXPECT_EQ(process_threads(), before);
}

TEST(HostThreads, TheDefaultIsEveryUsableCoreAndBadCountsAreRefused) {
    const auto context = grey::test::make_context(grey::test::host_only_options());
    ASSERT_TRUE(context);
    EXPECT_EQ(context->workers->threads(), grey::usable_cores());
    grey_config* config = nullptr;
    ASSERT_EQ(grey_config_create(nullptr, &config), GREY_OK);
    EXPECT_EQ(grey_config_set(config, "host.threads", "-1"), GREY_ERROR_CONFIG);
    EXPECT_NE(std::string(grey_last_error()).find("host.threads"), std::string::npos) << grey_last_error();
    EXPECT_EQ(grey_config_set(config, "host.threads", "4097"), GREY_ERROR_CONFIG);
    EXPECT_EQ(grey_config_set(config, "host.threads", "16"), GREY_OK);
    grey_config_destroy(config);
}

}  // namespace
