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
grey::quant::Plan plan_for(const char* name) {
    grey_quant_params p = GREY_QUANT_PARAMS_INIT;
    if (grey_quant_params_from_name(name, &p) != GREY_OK) throw std::runtime_error(grey_last_error());
    return grey::quant::make_plan(std::vector<uint64_t>{kRows, kCols}, p);
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
    return 0;
}();

}  // namespace

BENCHMARK_MAIN();
