// One set of quantize and dequantize jobs, chosen to take every kernel path of the GPU quantizer
// (backends/common/quant_plan.hpp): the grouped fast paths (Q4_0 and Q8_0 blocks, F32 and F16), the
// unaligned grouped path, a block per run, the global-statistics path, MSE search, rows with a ragged
// last group, the error measurement, and the three dequantizers. Run on a plugin over its fake driver
// with FAKE_QUANT_LAUNCH_LOG set, the log it leaves (tests/backends/fake_quant_kernels.hpp) is compared
// with quant_launch_plan.golden: the same file for CUDA and HIP, so both launch the same plan.
#pragma once

#include "grey.h"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace grey::test {

struct QuantLaunchCase {
    const char* name;  // a grey_quant_params_from_name name
    grey_quant_calibration calibration;
    grey_dtype dtype;
    uint64_t rows, columns;
    uint64_t plain_offset;  // 4: a plain tensor off 16-byte alignment
    bool report;

    // The case's tensor ([rows, columns] of dtype), its quantization parameters, and its size unquantized.
    [[nodiscard]] grey_tensor_desc desc() const { return desc_of({rows, columns}, dtype); }
    [[nodiscard]] grey_quant_params params() const {
        grey_quant_params p = GREY_QUANT_PARAMS_INIT;
        EXPECT_EQ(grey_quant_params_from_name(name, &p), GREY_OK);
        p.calibration = calibration;
        return p;
    }
    [[nodiscard]] uint64_t plain_bytes() const { return rows * columns * (dtype == GREY_DTYPE_F32 ? 4 : 2); }
};

inline constexpr QuantLaunchCase kQuantLaunchCases[] = {
    {"q4_0", GREY_CALIBRATION_RTN, GREY_DTYPE_F32, 4, 128, 0, false},
    {"q8_0", GREY_CALIBRATION_RTN, GREY_DTYPE_F32, 4, 128, 0, false},
    {"q8_0", GREY_CALIBRATION_RTN, GREY_DTYPE_F16, 8, 256, 0, false},
    {"q8_0", GREY_CALIBRATION_RTN, GREY_DTYPE_F32, 4, 128, 4, false},
    {"q4_1", GREY_CALIBRATION_RTN, GREY_DTYPE_BF16, 4, 128, 4, false},
    {"int8", GREY_CALIBRATION_RTN, GREY_DTYPE_F32, 64, 256, 0, false},
    {"int8", GREY_CALIBRATION_RTN, GREY_DTYPE_F32, 8, 16384, 0, false},
    {"int8", GREY_CALIBRATION_RTN, GREY_DTYPE_F32, 2048, 64, 0, false},  // more blocks than are resident at once
    {"fp8-e4m3", GREY_CALIBRATION_RTN, GREY_DTYPE_F16, 300, 1000, 0, false},
    {"int4-g128", GREY_CALIBRATION_MSE, GREY_DTYPE_F32, 4, 256, 0, false},
    {"int4-g128", GREY_CALIBRATION_RTN, GREY_DTYPE_F32, 3, 200, 0, false},
    {"nf4", GREY_CALIBRATION_RTN, GREY_DTYPE_F32, 16, 128, 0, true},
    {"int4-g32", GREY_CALIBRATION_MSE, GREY_DTYPE_F32, 3, 200, 0, true},
};

// Quantizes and dequantizes every case on device 1 of `context` (values finite), and returns what the
// fake logged at `log_path`.
inline std::string run_quant_launch_cases(grey_context* context, const std::string& log_path) {
    std::remove(log_path.c_str());
    for (const QuantLaunchCase& c : kQuantLaunchCases) {
        SCOPED_TRACE(std::string(c.name) + " " + std::to_string(c.rows) + "x" + std::to_string(c.columns));
        const grey_tensor_desc desc = c.desc();
        const grey_quant_params params = c.params();
        const uint64_t plain_bytes = c.plain_bytes();
        grey_buffer* plain = nullptr;
        grey_buffer* packed = nullptr;
        EXPECT_EQ(grey_buffer_create(context, 1, plain_bytes + c.plain_offset, &plain), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_buffer_create(context, 1, plain_bytes + 4096, &packed), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_buffer_fill(plain, 0, 0x3c, plain_bytes + c.plain_offset), GREY_OK) << grey_last_error();
        grey_quant_report report{};
        report.struct_size = sizeof report;
        EXPECT_EQ(grey_quantize_buffer(&desc, plain, c.plain_offset, &params, packed, 0, c.report ? &report : nullptr), GREY_OK)
            << grey_last_error();
        EXPECT_EQ(grey_dequantize_buffer(&desc, &params, packed, 0, plain, c.plain_offset), GREY_OK) << grey_last_error();
        grey_buffer_destroy(packed);
        grey_buffer_destroy(plain);
    }
    std::ifstream log(log_path);
    std::stringstream text;
    text << log.rdbuf();
    return text.str();
}

// What one case of run_quant_cases left: the quantized tensor (the rest of its buffer included) and the
// plain tensor after dequantizing over it.
struct QuantCaseResult {
    std::vector<unsigned char> packed;
    std::vector<unsigned char> restored;
    bool operator==(const QuantCaseResult&) const = default;
};

// Every case of kQuantLaunchCases without the error report, on device 1 of `context`: finite plain
// values of the case's dtype written, quantized, dequantized back over them, and both buffers read back.
// Synchronously when `stream` is NULL; else every step is enqueued on `stream` (the runtime's async
// forms, so a plugin's quantize_async and dequantize_async), one synchronize per case. `deferred`: the
// plugin's driver runs stream work only when something waits (the fakes), so nothing may have reached
// the host before the synchronize: checks that the calls only enqueued. Returns what each case left.
inline std::vector<QuantCaseResult> run_quant_cases(grey_context* context, grey_stream* stream, bool deferred = false) {
    std::vector<QuantCaseResult> results;
    for (const QuantLaunchCase& c : kQuantLaunchCases) {
        SCOPED_TRACE(std::string(c.name) + " " + std::to_string(c.rows) + "x" + std::to_string(c.columns) + (stream ? " async" : " sync"));
        const grey_tensor_desc desc = c.desc();
        const grey_quant_params params = c.params();
        const size_t width = c.dtype == GREY_DTYPE_F32 ? 4 : 2;
        const uint64_t elements = c.rows * c.columns;
        const uint64_t plain_bytes = c.plain_bytes();
        uint64_t packed_bytes = 0;
        EXPECT_EQ(grey_quant_size(&desc, &params, &packed_bytes), GREY_OK) << grey_last_error();
        // Finite values of every dtype: bit patterns below the all-ones exponent of F16 and BF16 and F32.
        std::vector<unsigned char> plain_values(plain_bytes);
        for (uint64_t i = 0; i < elements; ++i) {
            const uint32_t bits = width == 4 ? 0x3F800000u + static_cast<uint32_t>((i * 12345u + c.rows) % 0x100000u)
                                             : static_cast<uint32_t>((i * 37u + c.columns) % 0x7000u);
            std::memcpy(plain_values.data() + i * width, &bits, width);
        }
        grey_buffer* plain = nullptr;
        grey_buffer* packed = nullptr;
        EXPECT_EQ(grey_buffer_create(context, 1, plain_bytes + c.plain_offset, &plain), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_buffer_create(context, 1, packed_bytes + 64, &packed), GREY_OK) << grey_last_error();
        EXPECT_EQ(grey_buffer_fill(packed, 0, 0xEE, packed_bytes + 64), GREY_OK) << grey_last_error();
        QuantCaseResult r{std::vector<unsigned char>(packed_bytes + 64, 0x11), std::vector<unsigned char>(plain_bytes, 0x11)};
        const auto untouched = r;
        if (stream == nullptr) {
            EXPECT_EQ(grey_buffer_write(plain, c.plain_offset, plain_values.data(), plain_bytes), GREY_OK) << grey_last_error();
            EXPECT_EQ(grey_quantize_buffer(&desc, plain, c.plain_offset, &params, packed, 0, nullptr), GREY_OK) << grey_last_error();
            EXPECT_EQ(grey_dequantize_buffer(&desc, &params, packed, 0, plain, c.plain_offset), GREY_OK) << grey_last_error();
            EXPECT_EQ(grey_buffer_read(packed, 0, r.packed.data(), r.packed.size()), GREY_OK) << grey_last_error();
            EXPECT_EQ(grey_buffer_read(plain, c.plain_offset, r.restored.data(), r.restored.size()), GREY_OK) << grey_last_error();
        } else {
            EXPECT_EQ(grey_buffer_write_async(plain, c.plain_offset, plain_values.data(), plain_bytes, stream), GREY_OK) << grey_last_error();
            EXPECT_EQ(grey_quantize_buffer_async(&desc, plain, c.plain_offset, &params, packed, 0, stream), GREY_OK) << grey_last_error();
            EXPECT_EQ(grey_buffer_read_async(packed, 0, r.packed.data(), r.packed.size(), stream), GREY_OK) << grey_last_error();
            EXPECT_EQ(grey_dequantize_buffer_async(&desc, &params, packed, 0, plain, c.plain_offset, stream), GREY_OK) << grey_last_error();
            EXPECT_EQ(grey_buffer_read_async(plain, c.plain_offset, r.restored.data(), r.restored.size(), stream), GREY_OK) << grey_last_error();
            if (deferred) {
                EXPECT_TRUE(r == untouched) << "a read enqueued after the quantization reached the host before any wait";
            }
            EXPECT_EQ(grey_stream_synchronize(stream), GREY_OK) << grey_last_error();
        }
        EXPECT_TRUE(r.packed != untouched.packed) << "the quantized tensor was read back";
        results.push_back(std::move(r));
        grey_buffer_destroy(packed);
        grey_buffer_destroy(plain);
    }
    return results;
}

// The small job the fake-driver tests of both plugins quantize: 4 x 128 F32 as Q4_0.
inline grey_tensor_desc small_q4_0_desc() { return desc_of({4, 128}); }
inline grey_quant_params q4_0_params() {
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    p.format = GREY_QUANT_Q4_0;
    return p;
}

// What the fakes' stand-in quantizer writes into the quantized tensor's first 8 bytes
// (tests/backends/fake_quant_kernels.hpp): the FNV-1a hash of the plain tensor's bytes.
inline uint64_t fnv1a(const void* data, size_t size) {
    uint64_t hash = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < size; ++i) hash = (hash ^ static_cast<const unsigned char*>(data)[i]) * 0x100000001B3ull;
    return hash;
}

inline std::string read_text(const std::string& path) {
    std::ifstream file(path);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
}

}  // namespace grey::test
