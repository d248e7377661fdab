// Host quantization throughput per format: the scalar, AVX2 and AVX-512 kernels on one thread, and the
// best kernels on every core through a context's worker pool (host.threads 0), beside memcpy of the same
// input on one thread and on every core of the same pool, in the same run (a ratio measured side by
// side, docs/architecture.md). Bytes moved = bytes read + bytes written.
//   cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DGREY_BUILD_BENCH=ON -DGREY_BUILD_TESTS=OFF
//   cmake --build build/bench --target grey_quant_bench && build/bench/bin/grey_quant_bench
#include "core/context.hpp"
#include "host/quant/kernels.hpp"
#include "host/quant/quantizer.hpp"
#include "quant/format.hpp"
#include "common/numeric.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

namespace hq = grey::host::quant;

constexpr uint64_t kRows = 4096, kCols = 4096;  // 16M elements, 64 MiB of F32: far beyond the caches

const std::vector<float>& weights() {
    static const std::vector<float> w = [] {
        std::mt19937 rng(1);
        std::normal_distribution<float> normal(0.0f, 0.02f);
        std::vector<float> v(kRows * kCols);
        for (auto& x : v) x = normal(rng);
        return v;
    }();
    return w;
}

// The F32 output every dequantizer and memcpy writes, and the quantized output every quantizer writes:
// one buffer each for the whole run, so that a case and the memcpy it is compared with (SideBySide) touch
// the same memory and differ only in the work done on it.
std::span<float> f32_output() {
    static std::vector<float> y(kRows * kCols);
    return y;
}
std::span<std::byte> quantized_output(uint64_t bytes) {
    static std::vector<std::byte> q(kRows * kCols * 4);  // the most any format needs (F32-sized)
    return std::span(q).first(bytes);
}

// Every format by its grey.h name (grey_quant_name_at), so the bench runs what greyctl offers.
grey_quant_layout plan_for(const char* name) {
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    if (grey_quant_params_from_name(name, &p) != GREY_OK) throw std::runtime_error(grey_last_error());
    return grey::quant::make_layout(std::vector<uint64_t>{kRows, kCols}, p);
}

// The kernels of a path, nullptr where this CPU lacks it.
const hq::Kernels* kernels_for(const std::string& path) {
    if (path == "scalar") return &hq::scalar_kernels();
    if (path == "avx2") return hq::avx2_kernels();
    if (path == "avx512") return hq::avx512_kernels();
    return &hq::best_kernels();  // "all-cores": the best path on the context's pool
}

// A context with the default host.threads (every usable core): its pool runs the all-core cases.
grey_context& context() {
    static const std::unique_ptr<grey_context, void (*)(grey_context*)> c = [] {
        grey_context_options options = GREY_CONTEXT_OPTIONS_INIT;
        options.backends = "host";
        grey_context* raw = nullptr;
        if (grey_context_create(&options, &raw) != GREY_OK) throw std::runtime_error(grey_last_error());
        return std::unique_ptr<grey_context, void (*)(grey_context*)>(raw, grey_context_destroy);
    }();
    return *c;
}

hq::Parallel parallel_for(const std::string& path) { return path == "all-cores" ? hq::Parallel(&context().host_services) : hq::Parallel(); }

// memcpy of the bench's weights into f32_output() on every core of the context's pool, in 256 KiB pieces.
void copy_all_cores() {
    const auto& x = weights();
    const std::span<float> y = f32_output();
    constexpr size_t kPiece = 64 * 1024;  // floats
    context().workers->run(x.size(), kPiece, [&](size_t begin, size_t end) { std::memcpy(y.data() + begin, x.data() + begin, (end - begin) * 4); });
}

// The goals' ratio, side by side: on the all-core cases every iteration of the case is followed, outside
// the benchmark's own timing, by an all-core memcpy of the same input into the same output memory, and
// the ratio of the medians of the two is recorded ("x_memcpy"), with the memcpy's bytes a second
// ("memcpy_GBps"). On this guest the memory's speed changes from one second to the next (an all-core
// memcpy has measured 26 and 52 GB/s minutes apart), so a copy timed once before the cases, or once
// after each, says little about the case beside it; one interleaved with it does.
class SideBySide {
public:
    explicit SideBySide(bool on) : on_(on) {}

    // Runs `work` once, timed, then (when on) the copy, outside the state's timing.
    template <typename Work>
    void iteration(benchmark::State& state, Work&& work) {
        const auto t0 = std::chrono::steady_clock::now();
        work();
        if (!on_) return;
        const auto t1 = std::chrono::steady_clock::now();
        state.PauseTiming();
        const auto t2 = std::chrono::steady_clock::now();
        copy_all_cores();
        const auto t3 = std::chrono::steady_clock::now();
        state.ResumeTiming();
        work_seconds_.push_back(std::chrono::duration<double>(t1 - t0).count());
        copy_seconds_.push_back(std::chrono::duration<double>(t3 - t2).count());
    }

    void finish(benchmark::State& state, uint64_t bytes_per_iteration) {
        if (!on_ || work_seconds_.empty()) return;
        const double copy_rate = 2.0 * static_cast<double>(weights().size()) * 4 / median(copy_seconds_);
        const double rate = static_cast<double>(bytes_per_iteration) / median(work_seconds_);
        state.counters["memcpy_GBps"] = copy_rate / 1e9;
        state.counters["x_memcpy"] = rate / copy_rate;
    }

private:
    static double median(std::vector<double>& v) {
        std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
        return v[v.size() / 2];
    }

    bool on_;
    std::vector<double> work_seconds_, copy_seconds_;
};

void quantize(benchmark::State& state, const char* f, const std::string& path) {
    const hq::Kernels* kernels = kernels_for(path);
    if (kernels == nullptr) return state.SkipWithError(("no " + path + " on this CPU").c_str());
    const auto parallel = parallel_for(path);
    const auto plan = plan_for(f);
    const auto& x = weights();
    const std::span<std::byte> out = quantized_output(plan.bytes);
    SideBySide side_by_side(path == "all-cores");
    for (auto _ : state) {
        side_by_side.iteration(state, [&] { hq::quantize(plan, x, out, *kernels, parallel); });
        benchmark::DoNotOptimize(out.data());
    }
    side_by_side.finish(state, x.size() * 4 + plan.bytes);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (x.size() * 4 + plan.bytes)));
}

void dequantize(benchmark::State& state, const char* f, const std::string& path) {
    const hq::Kernels* kernels = kernels_for(path);
    if (kernels == nullptr) return state.SkipWithError(("no " + path + " on this CPU").c_str());
    const auto parallel = parallel_for(path);
    const auto plan = plan_for(f);
    const auto& x = weights();
    std::vector<std::byte> q(plan.bytes);
    hq::quantize(plan, x, q, hq::scalar_kernels());
    const std::span<float> y = f32_output();
    SideBySide side_by_side(path == "all-cores");
    for (auto _ : state) {
        side_by_side.iteration(state, [&] { hq::dequantize(plan, q, y, *kernels, parallel); });
        benchmark::DoNotOptimize(y.data());
    }
    side_by_side.finish(state, x.size() * 4 + plan.bytes);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (x.size() * 4 + plan.bytes)));
}

// Dequantization into output of `mib` MiB with streaming stores (threshold 0) or ordinary ones (no
// threshold), on one thread or every core: where hq::kStreamOutputBytes pays (bench/RESULTS.md).
void dequantize_stores(benchmark::State& state, const char* f, uint64_t mib, bool streaming, const std::string& path) {
    const auto parallel = parallel_for(path);
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    if (grey_quant_params_from_name(f, &p) != GREY_OK) return state.SkipWithError(grey_last_error());
    const auto plan = grey::quant::make_layout(std::vector<uint64_t>{(mib << 20) / 4 / kCols, kCols}, p);
    const std::span<const float> x(weights().data(), plan.elements);
    std::vector<std::byte> q(plan.bytes);
    hq::quantize(plan, x, q, hq::best_kernels(), parallel);
    const std::span<float> y = f32_output().first(x.size());
    for (auto _ : state) {
        hq::dequantize(plan, q, y, hq::best_kernels(), parallel, streaming ? 0 : UINT64_MAX);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (x.size() * 4 + plan.bytes)));
}

// The public entry points on host memory (grey_quantize, grey_dequantize): the kernels above plus the
// route a call takes through libgrey (argument checks, the layout, the checks, the report), from F32
// and from F16 (bytes moved: the F16 input's and the output's).
// The parameters, F32 descriptor and quantized size of the bench's tensor in format `f`; false (and the
// state skipped with the error) when a call fails.
bool api_case(benchmark::State& state, const char* f, grey_quant_params& p, grey_tensor_desc& desc, uint64_t& size) {
    p = GREY_QUANT_PARAMS_INIT;
    desc = GREY_TENSOR_DESC_INIT;
    desc.dtype = GREY_DTYPE_F32;
    desc.rank = 2;
    desc.shape[0] = kRows;
    desc.shape[1] = kCols;
    if (grey_quant_params_from_name(f, &p) == GREY_OK && grey_quant_size(&desc, &p, &size) == GREY_OK) return true;
    state.SkipWithError(grey_last_error());
    return false;
}

// The bench's weights as F16 (round to nearest even), the dtype most models ship in.
const std::vector<uint16_t>& weights_f16() {
    static const std::vector<uint16_t> h = [] {
        std::vector<uint16_t> v(weights().size());
        std::transform(weights().begin(), weights().end(), v.begin(), [](float x) { return grey::common::f32_to_f16(x); });
        return v;
    }();
    return h;
}

void api_quantize(benchmark::State& state, const char* f, bool with_report, grey_dtype dtype = GREY_DTYPE_F32) {
    grey_quant_params p;
    grey_tensor_desc desc;
    uint64_t size = 0;
    if (!api_case(state, f, p, desc, size)) return;
    desc.dtype = dtype;
    const void* plain = dtype == GREY_DTYPE_F16 ? static_cast<const void*>(weights_f16().data()) : weights().data();
    const uint64_t plain_bytes = weights().size() * (dtype == GREY_DTYPE_F16 ? 2 : 4);
    std::vector<std::byte> out(size);
    grey_quant_report report{};
    report.struct_size = sizeof report;
    for (auto _ : state) {
        if (grey_quantize(&desc, plain, plain_bytes, &p, out.data(), size, with_report ? &report : nullptr) != GREY_OK)
            return state.SkipWithError(grey_last_error());
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (plain_bytes + size)));
}

void api_dequantize(benchmark::State& state, const char* f) {
    grey_quant_params p;
    grey_tensor_desc desc;
    uint64_t size = 0;
    if (!api_case(state, f, p, desc, size)) return;
    const auto& x = weights();
    std::vector<std::byte> q(size);
    if (grey_quantize(&desc, x.data(), x.size() * 4, &p, q.data(), size, nullptr) != GREY_OK) return state.SkipWithError(grey_last_error());
    std::vector<float> y(x.size());
    for (auto _ : state) {
        if (grey_dequantize(&desc, &p, q.data(), size, y.data(), y.size() * 4) != GREY_OK) return state.SkipWithError(grey_last_error());
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (x.size() * 4 + size)));
}

void memcpy_baseline(benchmark::State& state) {
    const auto& x = weights();
    const std::span<float> y = f32_output();
    for (auto _ : state) {
        std::memcpy(y.data(), x.data(), x.size() * 4);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * x.size() * 4 * 2));
}

// memcpy on every core: the same copy in 256 KiB pieces shared out over the context's pool, the bound
// the all-core quantizers are compared with.
void memcpy_all_cores(benchmark::State& state) {
    const auto& x = weights();
    for (auto _ : state) {
        copy_all_cores();
        benchmark::DoNotOptimize(f32_output().data());
    }
    state.counters["threads"] = static_cast<double>(context().workers->threads());
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * x.size() * 4 * 2));
}

const int kRegistered = [] {
    benchmark::RegisterBenchmark("memcpy/64MiB", memcpy_baseline)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark("memcpy/64MiB/all-cores", memcpy_all_cores)->Unit(benchmark::kMillisecond)->UseRealTime();
    for (uint32_t i = 0; i < grey_quant_name_count(); ++i)
        for (const std::string path : {"scalar", "avx2", "avx512", "all-cores"}) {
            const char* f = grey_quant_name_at(i);  // static storage
            benchmark::RegisterBenchmark(("quantize/" + std::string(f) + "/" + path).c_str(),
                                         [f, path](benchmark::State& s) { quantize(s, f, path); })
                ->Unit(benchmark::kMillisecond)->UseRealTime();
            benchmark::RegisterBenchmark(("dequantize/" + std::string(f) + "/" + path).c_str(),
                                         [f, path](benchmark::State& s) { dequantize(s, f, path); })
                ->Unit(benchmark::kMillisecond)->UseRealTime();
        }
    for (const char* f : {"int8", "int4-g32", "fp8-e4m3", "q4_0"})
        for (const uint64_t mib : {4, 16, 32, 64})
            for (const bool streaming : {false, true})
                for (const std::string path : {"one-thread", "all-cores"})
                    benchmark::RegisterBenchmark(("dequantize-stores/" + std::string(f) + "/" + std::to_string(mib) + "MiB/" +
                                                  (streaming ? "streaming" : "ordinary") + "/" + path)
                                                     .c_str(),
                                                 [f, mib, streaming, path](benchmark::State& s) { dequantize_stores(s, f, mib, streaming, path); })
                        ->Unit(benchmark::kMillisecond)->UseRealTime();
    for (uint32_t i = 0; i < grey_quant_name_count(); ++i) {
        const char* f = grey_quant_name_at(i);
        benchmark::RegisterBenchmark(("api/quantize/" + std::string(f)).c_str(), [f](benchmark::State& s) { api_quantize(s, f, false); })
            ->Unit(benchmark::kMillisecond)->UseRealTime();
        benchmark::RegisterBenchmark(("api/quantize+report/" + std::string(f)).c_str(), [f](benchmark::State& s) { api_quantize(s, f, true); })
            ->Unit(benchmark::kMillisecond)->UseRealTime();
        benchmark::RegisterBenchmark(("api/quantize-f16/" + std::string(f)).c_str(),
                                     [f](benchmark::State& s) { api_quantize(s, f, false, GREY_DTYPE_F16); })
            ->Unit(benchmark::kMillisecond)->UseRealTime();
        benchmark::RegisterBenchmark(("api/quantize-f16+report/" + std::string(f)).c_str(),
                                     [f](benchmark::State& s) { api_quantize(s, f, true, GREY_DTYPE_F16); })
            ->Unit(benchmark::kMillisecond)->UseRealTime();
        benchmark::RegisterBenchmark(("api/dequantize/" + std::string(f)).c_str(), [f](benchmark::State& s) { api_dequantize(s, f); })
            ->Unit(benchmark::kMillisecond)->UseRealTime();
    }
    return 0;
}();

}  // namespace

BENCHMARK_MAIN();
