// Quantization conformance on the GPU: every format, calibration and input type quantized and
// dequantized by the CUDA kernels (grey_quantize_buffer, grey_dequantize_buffer, and their _async forms
// on several streams at once) must give the same bytes as the host reference (grey_quantize,
// grey_dequantize), on fresh random inputs each run and on the tensors of a real model file. Through grey.h alone. Prints one line per check and a summary;
// exits 1 on any failure.
//   grey_gpu_quant_conformance [--quick] [--backend-dir DIR] [--model FILE]
// --quick uses small tensors (for compute-sanitizer).
#include "gpu_check.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using gpu_check::Buffer;
using gpu_check::check;
using gpu_check::ok;

struct Config {
    const char* name;
    grey_quant_format format;
    uint32_t group_size;
    int32_t axis;
};

// Every format, with the per-channel formats on more than one axis and FP8 per tensor as well.
const std::vector<Config>& configs() {
    static const std::vector<Config> all = {
        {"int8 axis 0", GREY_QUANT_INT8, 0, 0},
        {"int8 last axis", GREY_QUANT_INT8, 0, -2},  // -2: resolved to rank-1 below
        {"int8-token", GREY_QUANT_INT8_TOKEN, 0, 0},
        {"int4-g32", GREY_QUANT_INT4, 32, 0},
        {"int4-g64", GREY_QUANT_INT4, 64, 0},
        {"int4-g128", GREY_QUANT_INT4, 128, 0},
        {"int4-sym-g32", GREY_QUANT_INT4_SYM, 32, 0},
        {"int4-sym-g128", GREY_QUANT_INT4_SYM, 128, 0},
        {"fp8-e4m3 axis 0", GREY_QUANT_FP8_E4M3, 0, 0},
        {"fp8-e4m3 per tensor", GREY_QUANT_FP8_E4M3, 0, GREY_QUANT_PER_TENSOR},
        {"fp8-e5m2 axis 0", GREY_QUANT_FP8_E5M2, 0, 0},
        {"fp8-e5m2 last axis", GREY_QUANT_FP8_E5M2, 0, -2},
        {"nf4", GREY_QUANT_NF4, 0, 0},
        {"q8_0", GREY_QUANT_Q8_0, 0, 0},
        {"q4_0", GREY_QUANT_Q4_0, 0, 0},
        {"q4_1", GREY_QUANT_Q4_1, 0, 0},
    };
    return all;
}

grey_tensor_desc make_desc(grey_dtype dtype, const std::vector<uint64_t>& shape) {
    grey_tensor_desc d = GREY_TENSOR_DESC_INIT;
    d.dtype = dtype;
    d.rank = static_cast<uint32_t>(shape.size());
    for (std::size_t i = 0; i < shape.size(); ++i) d.shape[i] = shape[i];
    return d;
}

grey_quant_params make_params(const Config& c, uint32_t rank, grey_quant_calibration calibration) {
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    p.format = c.format;
    p.group_size = c.group_size;
    p.axis = c.axis == -2 ? static_cast<int32_t>(rank) - 1 : c.axis;
    p.calibration = calibration;
    return p;
}

// The plain bytes of `values` in `dtype` (F16 and BF16 rounded to nearest even).
std::vector<unsigned char> encode_plain(const std::vector<float>& values, grey_dtype dtype) {
    const std::size_t size = dtype == GREY_DTYPE_F32 ? 4 : 2;
    std::vector<unsigned char> out(values.size() * size);
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (dtype == GREY_DTYPE_F32) {
            std::memcpy(&out[4 * i], &values[i], 4);
            continue;
        }
        uint16_t h;
        if (dtype == GREY_DTYPE_F16) {
            const _Float16 half = static_cast<_Float16>(values[i]);  // the compiler's IEEE conversion
            std::memcpy(&h, &half, 2);
        } else {
            uint32_t x;
            std::memcpy(&x, &values[i], 4);
            h = static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
        }
        std::memcpy(&out[2 * i], &h, 2);
    }
    return out;
}

// Normal values with the corners that decide bits: exact zeros of both signs, ties for the maximum,
// outliers, tiny values, and whole groups that are zero or constant.
std::vector<float> random_values(uint64_t n, std::mt19937_64& rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_int_distribution<int> pick(0, 99);
    std::vector<float> v(n);
    for (auto& x : v) {
        const int p = pick(rng);
        x = p == 0 ? 0.0f : p == 1 ? -0.0f : p == 2 ? normal(rng) * 40.0f : p == 3 ? normal(rng) * 1e-6f : normal(rng);
    }
    if (n >= 128) {
        for (uint64_t i = 0; i < 32; ++i) v[i] = (i % 2) ? -0.0f : 0.0f;  // an all-zero group of mixed signs
        for (uint64_t i = 32; i < 64; ++i) v[i] = 0.75f;                   // a constant group
        v[70] = 3.0f;                                                      // a tie for the maximum magnitude,
        v[71] = -3.0f;                                                     // with opposite signs
    }
    return v;
}

// One tensor through one configuration on the GPU and on the host; compares quantized bytes and the
// dequantized bytes in every output type. `offset` shifts both GPU tensors inside their buffers.
void compare(grey_context* c, uint32_t gpu, const std::string& tag, const std::vector<uint64_t>& shape, grey_dtype dtype,
             const std::vector<unsigned char>& plain, const grey_quant_params& params, uint64_t offset) {
    const grey_tensor_desc desc = make_desc(dtype, shape);
    uint64_t qbytes = 0;
    if (!ok(grey_quant_size(&desc, &params, &qbytes))) {
        check(false, tag + ": size");
        return;
    }
    std::vector<unsigned char> host_q(qbytes);
    grey_quant_report host_report{};
    host_report.struct_size = sizeof host_report;
    const grey_status host_status = grey_quantize(&desc, plain.data(), plain.size(), &params, host_q.data(), qbytes, &host_report);
    const std::string host_message = ok(host_status) ? "" : grey_last_error();
    Buffer source(c, gpu, plain.size() + offset), quantized(c, gpu, qbytes + offset);
    if (!ok(source.status) || !ok(quantized.status)) {
        check(false, tag + ": allocation");
        return;
    }
    // Poison the output so an unwritten byte cannot pass as correct.
    const bool written = ok(grey_buffer_fill(quantized.handle, 0, 0xA5, qbytes + offset)) &&
                         ok(grey_buffer_write(source.handle, offset, plain.data(), plain.size()));
    grey_quant_report gpu_report{};
    gpu_report.struct_size = sizeof gpu_report;
    const grey_status gpu_status = written ? grey_quantize_buffer(&desc, source.handle, offset, &params, quantized.handle, offset, &gpu_report) : GREY_ERROR_INTERNAL;
    if (!ok(host_status)) {  // input the format cannot hold: the GPU must refuse it in the same words (after the backend's name)
        const std::string gpu_message = ok(gpu_status) ? "" : grey_last_error();
        const bool same_words = gpu_message.ends_with(host_message);
        check(written && gpu_status == host_status && same_words,
              tag + ": refused as on the host (" + host_message + (same_words ? "" : " | GPU: " + gpu_message) + ")");
        return;
    }
    const bool ran = ok(gpu_status);
    std::vector<unsigned char> gpu_q(qbytes);
    const bool read = ran && ok(grey_buffer_read(quantized.handle, offset, gpu_q.data(), qbytes));
    uint64_t first_difference = qbytes;
    for (uint64_t i = 0; read && i < qbytes; ++i)
        if (gpu_q[i] != host_q[i]) {
            first_difference = i;
            break;
        }
    check(read && first_difference == qbytes,
          tag + ": quantized bytes equal the host's" + (read && first_difference < qbytes ? " (first difference at byte " + std::to_string(first_difference) + ")" : ""));
    // The GPU measures its report on the device (grey_quant_measure) and sums in another order than the
    // host: the maximum is exact, and each sum of n non-negative terms lies within 2 n 2^-53 of the
    // host's, relative (common/quant_error.hpp).
    const double n = static_cast<double>(host_report.elements);
    const auto close = [n](double a, double b) { return std::fabs(a - b) <= 2.0 * n * 0x1p-53 * std::max(std::fabs(a), std::fabs(b)); };
    check(ran && gpu_report.elements == host_report.elements && gpu_report.max_abs_err == host_report.max_abs_err &&
              close(gpu_report.sum_squared_error, host_report.sum_squared_error) && close(gpu_report.sum_squared_signal, host_report.sum_squared_signal),
          tag + ": error report, measured on the device, equals the host's (sums within 2n ulp)");

    for (const grey_dtype out : {GREY_DTYPE_F32, GREY_DTYPE_F16, GREY_DTYPE_BF16}) {
        const grey_tensor_desc out_desc = make_desc(out, shape);
        uint64_t out_bytes = 0;
        if (!ok(grey_tensor_bytes(&out_desc, &out_bytes))) {
            check(false, tag + ": output size");
            continue;
        }
        std::vector<unsigned char> host_y(out_bytes), gpu_y(out_bytes);
        const bool host_ok = ok(grey_dequantize(&out_desc, &params, host_q.data(), qbytes, host_y.data(), out_bytes));
        Buffer y(c, gpu, out_bytes + offset);
        const bool gpu_ok = ok(y.status) && ok(grey_buffer_fill(y.handle, 0, 0x5A, out_bytes + offset)) &&
                            ok(grey_dequantize_buffer(&out_desc, &params, quantized.handle, offset, y.handle, offset)) &&
                            ok(grey_buffer_read(y.handle, offset, gpu_y.data(), out_bytes));
        check(host_ok && gpu_ok && host_y == gpu_y, tag + ": dequantized to " + grey_dtype_name(out) + " equals the host's");
    }
}

// Every shape in every format that can hold it (ggml's formats need the innermost dimension a multiple
// of 32), calibration and plain type, on fresh random values; MSE up to `mse_elements` (the search is
// slow; small tensors cover it), and at an odd offset (unaligned loads and stores everywhere) up to
// `offset_elements`, RTN.
void compare_shapes(grey_context* c, uint32_t gpu, const std::vector<std::vector<uint64_t>>& shapes, const char* label, uint64_t mse_elements,
                    uint64_t offset_elements, std::mt19937_64& rng) {
    for (const auto& shape : shapes) {
        uint64_t n = 1;
        for (const auto d : shape) n *= d;
        const std::vector<float> values = random_values(n, rng);
        for (const grey_dtype dtype : {GREY_DTYPE_F32, GREY_DTYPE_F16, GREY_DTYPE_BF16}) {
            const std::vector<unsigned char> plain = encode_plain(values, dtype);
            for (const Config& config : configs()) {
                for (const grey_quant_calibration calibration : {GREY_CALIBRATION_RTN, GREY_CALIBRATION_MSE}) {
                    if (calibration == GREY_CALIBRATION_MSE && n > mse_elements) continue;
                    const grey_quant_params params = make_params(config, static_cast<uint32_t>(shape.size()), calibration);
                    const grey_tensor_desc desc = make_desc(dtype, shape);
                    uint64_t size = 0;
                    if (!ok(grey_quant_size(&desc, &params, &size))) continue;  // the format cannot hold this shape
                    std::string tag = "device " + std::to_string(gpu) + " " + config.name + (calibration == GREY_CALIBRATION_MSE ? " mse" : " rtn") +
                                      " " + grey_dtype_name(dtype) + label + " [";
                    for (std::size_t i = 0; i < shape.size(); ++i) tag += (i ? "," : "") + std::to_string(shape[i]);
                    tag += "]";
                    compare(c, gpu, tag, shape, dtype, plain, params, 0);
                    if (n <= offset_elements && calibration == GREY_CALIBRATION_RTN) compare(c, gpu, tag + " at offset 3", shape, dtype, plain, params, 3);
                }
            }
        }
    }
}

void run_random(grey_context* c, uint32_t gpu, bool quick, std::mt19937_64& rng) {
    // Shapes: a matrix, a rank-3 tensor with a short innermost-but-one axis, and a vector.
    std::vector<std::vector<uint64_t>> shapes = {{64, 384}, {3, 5, 128}, {4096}};
    if (!quick) shapes.push_back({1024, 4096});
    compare_shapes(c, gpu, shapes, "", uint64_t{1} << 20, 4096, rng);
}

// The values where codes change, which random inputs almost never hit: NF4's midpoints (bitsandbytes'
// levels, as docs/quantization.md lists them) with their float neighbours in groups whose absolute
// maximum is 1, so that they reach the encoder unrounded, and the same scaled by -1, 3.7 and 2^-100,
// with a group of subnormals (the reciprocal of their scale overflows: zeros). Then groups too large for
// fp16 scales (near 1e6, which only Q8_0's scale holds, 1e30 and 1e38): those formats must refuse them
// in the host's words, the others quantize them. Every format, F32, both calibrations.
void run_boundaries(grey_context* c, uint32_t gpu) {
    constexpr float kNf4Levels[16] = {
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
        -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
        0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f,
        0.7229568362236023f, 1.0f};
    std::vector<float> group = {1.0f, 0.0f, -0.0f};
    for (int m = 0; m < 15; ++m) {
        const float midpoint = 0.5f * (kNf4Levels[m] + kNf4Levels[m + 1]);
        group.insert(group.end(), {midpoint, std::nextafter(midpoint, 2.0f), std::nextafter(midpoint, -2.0f)});
    }
    for (const float level : kNf4Levels) group.push_back(level);
    group.resize(64, 0.5f);
    const auto scaled_groups = [&](std::initializer_list<float> scales) {
        std::vector<float> values;
        for (const float scale : scales)
            for (const float x : group) values.push_back(x * scale);
        return values;
    };
    std::vector<float> boundaries = scaled_groups({1.0f, -1.0f, 3.7f, 0x1p-100f});
    for (int i = 0; i < 64; ++i) boundaries.push_back((i % 2 ? -1.0f : 1.0f) * static_cast<float>(i) * 1e-42f);
    boundaries.resize(1024, -0.25f);
    std::vector<float> too_large = scaled_groups({1.0f, 1.1e6f, 1e30f});
    for (int i = 0; i < 64; ++i) too_large.push_back((i % 3 ? -1.0f : 1.0f) * 1e38f / static_cast<float>(i % 7 + 1));
    too_large.resize(1024, -0.25f);

    const std::vector<uint64_t> shape = {8, 128};
    const grey_tensor_desc desc = make_desc(GREY_DTYPE_F32, shape);
    for (const auto& [name, values] : {std::pair{"code boundaries", boundaries}, std::pair{"too large for fp16 scales", too_large}}) {
        const std::vector<unsigned char> plain = encode_plain(values, GREY_DTYPE_F32);
        for (const Config& config : configs())
            for (const grey_quant_calibration calibration : {GREY_CALIBRATION_RTN, GREY_CALIBRATION_MSE}) {
                const grey_quant_params params = make_params(config, 2, calibration);
                uint64_t size = 0;
                if (!ok(grey_quant_size(&desc, &params, &size))) continue;
                compare(c, gpu, "device " + std::to_string(gpu) + " " + config.name + (calibration == GREY_CALIBRATION_MSE ? " mse " : " rtn ") + name,
                        shape, GREY_DTYPE_F32, plain, params, 0);
            }
    }
}

// A NaN or an infinity is refused on the GPU as on the host, naming the first such element.
// `values` of `shape`, whose first non-finite element is the infinity at `infinite`, are refused by every
// format that can hold the shape, naming that element.
void check_infinity_refused(grey_context* c, uint32_t gpu, const std::string& label, const std::vector<uint64_t>& shape,
                            const std::vector<float>& values, uint64_t infinite) {
    const std::vector<unsigned char> plain = encode_plain(values, GREY_DTYPE_F32);
    const std::string needle = "element " + std::to_string(infinite) + " is infinite";
    for (const Config& config : configs()) {
        const grey_quant_params params = make_params(config, static_cast<uint32_t>(shape.size()), GREY_CALIBRATION_RTN);
        const grey_tensor_desc desc = make_desc(GREY_DTYPE_F32, shape);
        uint64_t qbytes = 0;
        if (!ok(grey_quant_size(&desc, &params, &qbytes))) continue;
        Buffer source(c, gpu, plain.size()), quantized(c, gpu, qbytes);
        const bool written = ok(source.status) && ok(quantized.status) && ok(grey_buffer_write(source.handle, 0, plain.data(), plain.size()));
        const grey_status s = written ? grey_quantize_buffer(&desc, source.handle, 0, &params, quantized.handle, 0, nullptr) : GREY_ERROR_INTERNAL;
        const std::string message = grey_last_error();
        check(s == GREY_ERROR_INVALID_ARGUMENT && message.find(needle) != std::string::npos,
              "device " + std::to_string(gpu) + " " + config.name + label + ": an infinite input is refused, naming " + needle + " (" + message + ")");
    }
}

void run_non_finite(grey_context* c, uint32_t gpu) {
    std::vector<float> values(16 * 256, 0.5f);
    values[1000] = INFINITY;
    values[2100] = NAN;
    check_infinity_refused(c, gpu, "", {16, 256}, values, 1000);
}

// The async calls on several streams at once (grey_quantize_buffer_async): every configuration and plain
// type of two shapes, spread over four streams and all enqueued before any synchronize (interleaved, so
// the streams' kernels run side by side), each quantized, dequantized and read back on its stream; the
// bytes must be the host's. Then, on each stream, a NaN input between two good ones: an event recorded
// before it completes clean, the stream's synchronize returns the host's refusal, and the good job after
// it still gives the host's bytes (its flag slot was not disturbed).
void run_async(grey_context* c, uint32_t gpu, std::mt19937_64& rng) {
    constexpr int kStreams = 4;
    struct StreamHandle {
        grey_stream* handle = nullptr;
        ~StreamHandle() { grey_stream_destroy(handle); }
    };
    StreamHandle streams[kStreams];
    for (auto& s : streams)
        if (!ok(grey_stream_create(c, gpu, &s.handle))) {
            check(false, "device " + std::to_string(gpu) + " async: stream creation (" + grey_last_error() + ")");
            return;
        }
    struct Job {
        std::string tag;
        std::vector<unsigned char> host_q, host_y, gpu_q, gpu_y, plain;
        std::unique_ptr<Buffer> source, quantized, restored;
    };
    std::vector<std::unique_ptr<Job>> jobs;
    int next = 0;
    for (const std::vector<uint64_t>& shape : {std::vector<uint64_t>{64, 384}, std::vector<uint64_t>{3, 5, 128}}) {
        uint64_t n = 1;
        for (const auto d : shape) n *= d;
        const std::vector<float> values = random_values(n, rng);
        for (const grey_dtype dtype : {GREY_DTYPE_F32, GREY_DTYPE_F16, GREY_DTYPE_BF16}) {
            for (const Config& config : configs()) {
                const grey_quant_params params = make_params(config, static_cast<uint32_t>(shape.size()), GREY_CALIBRATION_RTN);
                const grey_tensor_desc desc = make_desc(dtype, shape);
                uint64_t qbytes = 0;
                if (!ok(grey_quant_size(&desc, &params, &qbytes))) continue;
                auto job = std::make_unique<Job>();
                job->tag = "device " + std::to_string(gpu) + " async stream " + std::to_string(next % kStreams) + " " + config.name + " " +
                           grey_dtype_name(dtype) + " [" + std::to_string(shape[0]) + ",...]";
                job->plain = encode_plain(values, dtype);
                job->host_q.resize(qbytes);
                job->host_y.resize(job->plain.size());
                job->gpu_q.resize(qbytes);
                job->gpu_y.resize(job->plain.size());
                const bool host_ok = ok(grey_quantize(&desc, job->plain.data(), job->plain.size(), &params, job->host_q.data(), qbytes, nullptr)) &&
                                     ok(grey_dequantize(&desc, &params, job->host_q.data(), qbytes, job->host_y.data(), job->host_y.size()));
                job->source = std::make_unique<Buffer>(c, gpu, job->plain.size());
                job->quantized = std::make_unique<Buffer>(c, gpu, qbytes);
                job->restored = std::make_unique<Buffer>(c, gpu, job->plain.size());
                grey_stream* s = streams[next++ % kStreams].handle;
                const bool enqueued =
                    host_ok && ok(job->source->status) && ok(job->quantized->status) && ok(job->restored->status) &&
                    ok(grey_buffer_write_async(job->source->handle, 0, job->plain.data(), job->plain.size(), s)) &&
                    ok(grey_buffer_fill_async(job->quantized->handle, 0, 0xA5, qbytes, s)) &&
                    ok(grey_quantize_buffer_async(&desc, job->source->handle, 0, &params, job->quantized->handle, 0, s)) &&
                    ok(grey_dequantize_buffer_async(&desc, &params, job->quantized->handle, 0, job->restored->handle, 0, s)) &&
                    ok(grey_buffer_read_async(job->quantized->handle, 0, job->gpu_q.data(), qbytes, s)) &&
                    ok(grey_buffer_read_async(job->restored->handle, 0, job->gpu_y.data(), job->gpu_y.size(), s));
                check(enqueued, job->tag + ": enqueued" + (enqueued ? "" : std::string(" (") + grey_last_error() + ")"));
                jobs.push_back(std::move(job));
            }
        }
    }
    for (int i = 0; i < kStreams; ++i) {
        const bool synchronized = ok(grey_stream_synchronize(streams[i].handle));
        check(synchronized, "device " + std::to_string(gpu) + " async stream " + std::to_string(i) + ": synchronize" +
                                (synchronized ? "" : std::string(" (") + grey_last_error() + ")"));
    }
    for (const auto& job : jobs) {
        check(job->gpu_q == job->host_q, job->tag + ": quantized bytes equal the host's");
        check(job->gpu_y == job->host_y, job->tag + ": dequantized bytes equal the host's");
    }

    // A NaN between two good inputs on every stream, all streams in flight together.
    const std::vector<uint64_t> shape{16, 256};
    std::vector<float> good = random_values(16 * 256, rng), bad = good;
    bad[1000] = INFINITY;
    bad[2100] = NAN;
    bad[3000] = NAN;
    const std::vector<unsigned char> good_plain = encode_plain(good, GREY_DTYPE_F32), bad_plain = encode_plain(bad, GREY_DTYPE_F32);
    const grey_tensor_desc desc = make_desc(GREY_DTYPE_F32, shape);
    for (const Config& config : configs()) {
        const grey_quant_params params = make_params(config, 2, GREY_CALIBRATION_RTN);
        uint64_t qbytes = 0;
        if (!ok(grey_quant_size(&desc, &params, &qbytes))) continue;
        std::vector<unsigned char> host_q(qbytes), refused(qbytes);
        const bool host_ok = ok(grey_quantize(&desc, good_plain.data(), good_plain.size(), &params, host_q.data(), qbytes, nullptr));
        const bool host_refused = grey_quantize(&desc, bad_plain.data(), bad_plain.size(), &params, refused.data(), qbytes, nullptr) ==
                                  GREY_ERROR_INVALID_ARGUMENT;
        const std::string host_message = grey_last_error();
        struct Lane {
            std::unique_ptr<Buffer> good, bad, quantized, after;
            std::vector<unsigned char> got;
            grey_event* before = nullptr;
            ~Lane() { grey_event_destroy(before); }
        };
        Lane lanes[kStreams];
        for (int i = 0; i < kStreams; ++i) {
            Lane& l = lanes[i];
            grey_stream* s = streams[i].handle;
            l.good = std::make_unique<Buffer>(c, gpu, good_plain.size());
            l.bad = std::make_unique<Buffer>(c, gpu, bad_plain.size());
            l.quantized = std::make_unique<Buffer>(c, gpu, qbytes);
            l.after = std::make_unique<Buffer>(c, gpu, qbytes);
            l.got.resize(qbytes);
            const bool enqueued = ok(grey_event_create(c, gpu, &l.before)) &&
                                  ok(grey_buffer_write_async(l.good->handle, 0, good_plain.data(), good_plain.size(), s)) &&
                                  ok(grey_buffer_write_async(l.bad->handle, 0, bad_plain.data(), bad_plain.size(), s)) &&
                                  ok(grey_quantize_buffer_async(&desc, l.good->handle, 0, &params, l.quantized->handle, 0, s)) &&
                                  ok(grey_event_record(l.before, s)) &&
                                  ok(grey_quantize_buffer_async(&desc, l.bad->handle, 0, &params, l.quantized->handle, 0, s)) &&
                                  ok(grey_quantize_buffer_async(&desc, l.good->handle, 0, &params, l.after->handle, 0, s)) &&
                                  ok(grey_buffer_read_async(l.after->handle, 0, l.got.data(), qbytes, s));
            check(enqueued, std::string("device ") + std::to_string(gpu) + " async " + config.name + ": NaN lane enqueued");
        }
        for (int i = 0; i < kStreams; ++i) {
            const std::string tag = "device " + std::to_string(gpu) + " async stream " + std::to_string(i) + " " + config.name;
            check(ok(grey_event_synchronize(lanes[i].before)), tag + ": an event before the bad input completes clean");
            const grey_status s = grey_stream_synchronize(streams[i].handle);
            const std::string message = grey_last_error();
            check(host_ok && host_refused && s == GREY_ERROR_INVALID_ARGUMENT && message.ends_with(host_message),
                  tag + ": the bad input is refused at synchronize as on the host (" + host_message + " | GPU: " + message + ")");
            check(lanes[i].got == host_q, tag + ": the good input after it gives the host's bytes");
            check(ok(grey_stream_synchronize(streams[i].handle)), tag + ": reported once");
        }
    }
}

// Conv-shaped and odd tensors (docs/quantization.md, "Rows and groups"): the grouped formats take them
// as [out, -1] rows with a ragged last group (grey_quant_ragged and its dequantization and measurement
// kernels), every other format as it always did. Each conv shape class: kh*kw = 1, 3x3, 5x5 and 7x7,
// 1-D kernels, rows shorter than a group, rows of one element, a vector; then one large enough to fill
// the GPU, a ragged group too large for fp16 scales, and a non-finite element inside a ragged group.
void run_ragged(grey_context* c, uint32_t gpu, bool quick, std::mt19937_64& rng) {
    std::vector<std::vector<uint64_t>> shapes = {{8, 3, 1, 1}, {16, 5, 3, 3}, {4, 7, 5, 5}, {6, 5, 7}, {3, 10},
                                                 {5, 1},       {5, 1, 1, 1},  {100},        {32, 3, 7, 7}, {2, 96}};
    if (!quick) shapes.push_back({512, 64, 3, 3});  // rows of 576: whole groups of 32 and 64, ragged at 128
    if (!quick) shapes.push_back({1000, 3, 11, 11});
    compare_shapes(c, gpu, shapes, " rows", uint64_t{1} << 18, 8192, rng);
    // Rows of 45 (int4-g32: groups of 32 and 13): an outlier in row 2's ragged group, then one in row 1's
    // full group; the formats with fp16 scales must refuse both in the host's words.
    const std::vector<uint64_t> conv = {4, 5, 3, 3};
    for (const uint64_t at : {uint64_t{2 * 45 + 40}, uint64_t{45 + 3}}) {
        std::vector<float> values(4 * 45, 0.25f);
        values[at] = 3e38f;
        const std::vector<unsigned char> plain = encode_plain(values, GREY_DTYPE_F32);
        for (const Config& config : configs()) {
            const grey_quant_params params = make_params(config, 4, GREY_CALIBRATION_RTN);
            const grey_tensor_desc desc = make_desc(GREY_DTYPE_F32, conv);
            uint64_t size = 0;
            if (!ok(grey_quant_size(&desc, &params, &size))) continue;
            compare(c, gpu, "device " + std::to_string(gpu) + " " + config.name + " rows [4,5,3,3] too large at " + std::to_string(at), conv,
                    GREY_DTYPE_F32, plain, params, 0);
        }
    }
    std::vector<float> values(4 * 45, 0.5f);
    values[2 * 45 + 40] = INFINITY;  // inside row 2's ragged group
    check_infinity_refused(c, gpu, " rows [4,5,3,3]", conv, values, 130);
}

// Every F32/F16/BF16 tensor of a real model whose shape a format can hold, RTN, against the host.
void run_model(grey_context* c, uint32_t gpu, const char* path) {
    grey_model* model = nullptr;
    if (!ok(grey_model_create(path, &model))) {
        check(false, std::string("open ") + path);
        return;
    }
    uint64_t count = 0;
    check(ok(grey_model_tensor_count(model, &count)), std::string("tensor count of ") + path);
    uint64_t tensors = 0;
    for (uint64_t t = 0; t < count; ++t) {
        grey_model_tensor tensor{};
        tensor.struct_size = sizeof tensor;
        if (!ok(grey_model_tensor_get(model, t, &tensor))) continue;
        const grey_dtype dtype = tensor.desc->dtype;
        if ((dtype != GREY_DTYPE_F32 && dtype != GREY_DTYPE_F16 && dtype != GREY_DTYPE_BF16) || tensor.desc->rank == 0) continue;
        ++tensors;
        const std::vector<uint64_t> shape(tensor.desc->shape, tensor.desc->shape + tensor.desc->rank);
        const auto* bytes = static_cast<const unsigned char*>(tensor.data);
        const std::vector<unsigned char> plain(bytes, bytes + tensor.size_bytes);
        for (const Config& config : configs()) {
            const grey_quant_params params = make_params(config, tensor.desc->rank, GREY_CALIBRATION_RTN);
            uint64_t size = 0;
            if (!ok(grey_quant_size(tensor.desc, &params, &size))) continue;
            compare(c, gpu, std::string("device ") + std::to_string(gpu) + " " + config.name + " rtn " + tensor.name, shape, dtype, plain, params, 0);
        }
    }
    check(tensors > 0, std::string("the model ") + path + " has float tensors (" + std::to_string(tensors) + " compared)");
    grey_model_destroy(model);
}

}  // namespace

int main(int argc, char** argv) {
    gpu_check::tally().print_passes = false;  // thousands of checks: failures only
    return gpu_check::run(argc, argv, "quant conformance", true,
                          [](grey_context* context, uint32_t gpu, const grey_device_spec&, const gpu_check::Options& options, std::mt19937_64& rng) {
                              run_random(context, gpu, options.quick, rng);
                              run_boundaries(context, gpu);
                              run_non_finite(context, gpu);
                              run_async(context, gpu, rng);
                              run_ragged(context, gpu, options.quick, rng);
                              if (options.model != nullptr) run_model(context, gpu, options.model);
                          });
}
