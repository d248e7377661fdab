// Host quantization throughput per format, scalar and AVX2 kernels, beside memcpy of the same input in
// the same run (a ratio measured side by side, docs/architecture.md). Bytes moved = bytes read + bytes written.
//   cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DGREY_BUILD_BENCH=ON -DGREY_BUILD_TESTS=OFF
//   cmake --build build/bench --target grey_quant_bench && build/bench/bin/grey_quant_bench
#include "host/quant/kernels.hpp"
#include "host/quant/quantizer.hpp"
#include "quant/format.hpp"

#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
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

// Every format by its grey.h name (grey_quant_name_at), so the bench runs what greyctl offers.
grey_quant_layout plan_for(const char* name) {
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    if (grey_quant_params_from_name(name, &p) != GREY_OK) throw std::runtime_error(grey_last_error());
    return grey::quant::make_layout(std::vector<uint64_t>{kRows, kCols}, p);
}

const hq::Kernels& kernels_for(bool avx2) { return avx2 ? *hq::avx2_kernels() : hq::scalar_kernels(); }

void quantize(benchmark::State& state, const char* f, bool avx2) {
    if (avx2 && hq::avx2_kernels() == nullptr) return state.SkipWithError("no AVX2 on this CPU");
    const auto plan = plan_for(f);
    const auto& x = weights();
    std::vector<std::byte> out(plan.bytes);
    for (auto _ : state) {
        hq::quantize(plan, x, out, kernels_for(avx2));
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (x.size() * 4 + plan.bytes)));
}

void dequantize(benchmark::State& state, const char* f, bool avx2) {
    if (avx2 && hq::avx2_kernels() == nullptr) return state.SkipWithError("no AVX2 on this CPU");
    const auto plan = plan_for(f);
    const auto& x = weights();
    std::vector<std::byte> q(plan.bytes);
    hq::quantize(plan, x, q, hq::scalar_kernels());
    std::vector<float> y(x.size());
    for (auto _ : state) {
        hq::dequantize(plan, q, y, kernels_for(avx2));
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (x.size() * 4 + plan.bytes)));
}

// The public entry points on host memory (grey_quantize, grey_dequantize): the kernels above plus the
// route a call takes through libgrey (argument checks, the layout, the F32 conversion, the report).
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

void api_quantize(benchmark::State& state, const char* f, bool with_report) {
    grey_quant_params p;
    grey_tensor_desc desc;
    uint64_t size = 0;
    if (!api_case(state, f, p, desc, size)) return;
    const auto& x = weights();
    std::vector<std::byte> out(size);
    grey_quant_report report{};
    report.struct_size = sizeof report;
    for (auto _ : state) {
        if (grey_quantize(&desc, x.data(), x.size() * 4, &p, out.data(), size, with_report ? &report : nullptr) != GREY_OK)
            return state.SkipWithError(grey_last_error());
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (x.size() * 4 + size)));
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
    std::vector<float> y(x.size());
    for (auto _ : state) {
        std::memcpy(y.data(), x.data(), x.size() * 4);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * x.size() * 4 * 2));
}

const int kRegistered = [] {
    benchmark::RegisterBenchmark("memcpy/64MiB", memcpy_baseline)->Unit(benchmark::kMillisecond)->UseRealTime();
    for (uint32_t i = 0; i < grey_quant_name_count(); ++i)
        for (const bool avx2 : {false, true}) {
            const char* f = grey_quant_name_at(i);  // static storage
            const std::string path = avx2 ? "/avx2" : "/scalar";
            benchmark::RegisterBenchmark(("quantize/" + std::string(f) + path).c_str(),
                                         [f, avx2](benchmark::State& s) { quantize(s, f, avx2); })
                ->Unit(benchmark::kMillisecond)->UseRealTime();
            benchmark::RegisterBenchmark(("dequantize/" + std::string(f) + path).c_str(),
                                         [f, avx2](benchmark::State& s) { dequantize(s, f, avx2); })
                ->Unit(benchmark::kMillisecond)->UseRealTime();
        }
    for (uint32_t i = 0; i < grey_quant_name_count(); ++i) {
        const char* f = grey_quant_name_at(i);
        benchmark::RegisterBenchmark(("api/quantize/" + std::string(f)).c_str(), [f](benchmark::State& s) { api_quantize(s, f, false); })
            ->Unit(benchmark::kMillisecond)->UseRealTime();
        benchmark::RegisterBenchmark(("api/quantize+report/" + std::string(f)).c_str(), [f](benchmark::State& s) { api_quantize(s, f, true); })
            ->Unit(benchmark::kMillisecond)->UseRealTime();
        benchmark::RegisterBenchmark(("api/dequantize/" + std::string(f)).c_str(), [f](benchmark::State& s) { api_dequantize(s, f); })
            ->Unit(benchmark::kMillisecond)->UseRealTime();
    }
    return 0;
}();

}  // namespace

BENCHMARK_MAIN();
