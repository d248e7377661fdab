// How long grey_plan_create takes on a model of more than a thousand tensors (issue 19 asks for under
// 50 ms): a DeepSeek-sized MoE layout (60 layers of attention, router, routed and shared experts; 1,023
// tensors), written as a sparse GGUF whose header is real, planned on a devices file for one 24 GiB GPU
// (a plan that fits) and one of 8 GiB where no step of the ladder fits (the worst case: every step is
// tried, then the error is written).
#include "grey.h"
#include "model/model_file.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using grey::model::GgufValue;

std::string write_model(const std::string& path) {
    constexpr uint64_t hidden = 5120, expert_ffn = 1536, experts = 64, vocab = 102400;
    constexpr int layers = 60;
    const std::vector<grey::model::MetadataEntry> metadata{
        {"general.architecture", GgufValue::text("deepseek2")},
        {"deepseek2.block_count", GgufValue::u32(layers)},
        {"deepseek2.embedding_length", GgufValue::u32(hidden)},
        {"deepseek2.attention.head_count", GgufValue::u32(128)},
        {"deepseek2.attention.head_count_kv", GgufValue::u32(128)},
        {"deepseek2.attention.key_length", GgufValue::u32(192)},
        {"deepseek2.attention.value_length", GgufValue::u32(128)},
        {"deepseek2.expert_count", GgufValue::u32(experts)},
        {"deepseek2.expert_used_count", GgufValue::u32(6)},
    };
    std::vector<grey::model::DeclaredTensor> tensors;
    const auto add = [&](std::string name, std::vector<uint64_t> shape, grey_dtype dtype) {
        tensors.push_back(grey::model::declare_gguf_tensor(std::move(name), dtype, 0, std::move(shape)));
    };
    add("token_embd.weight", {vocab, hidden}, GREY_DTYPE_F16);
    for (int i = 0; i < layers; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        add(p + "attn_norm.weight", {hidden}, GREY_DTYPE_F32);
        add(p + "attn_q.weight", {128 * 192, hidden}, GREY_DTYPE_F16);
        add(p + "attn_kv_a_mqa.weight", {576, hidden}, GREY_DTYPE_F16);
        add(p + "attn_kv_a_norm.weight", {512}, GREY_DTYPE_F32);
        add(p + "attn_kv_b.weight", {128 * 256, 512}, GREY_DTYPE_F16);
        add(p + "attn_output.weight", {hidden, 128 * 128}, GREY_DTYPE_F16);
        add(p + "ffn_norm.weight", {hidden}, GREY_DTYPE_F32);
        add(p + "ffn_gate_inp.weight", {experts, hidden}, GREY_DTYPE_F32);
        add(p + "ffn_gate_exps.weight", {experts, expert_ffn, hidden}, GREY_DTYPE_F16);
        add(p + "ffn_up_exps.weight", {experts, expert_ffn, hidden}, GREY_DTYPE_F16);
        add(p + "ffn_down_exps.weight", {experts, hidden, expert_ffn}, GREY_DTYPE_F16);
        add(p + "ffn_gate_shexp.weight", {2 * expert_ffn, hidden}, GREY_DTYPE_F16);
        add(p + "ffn_up_shexp.weight", {2 * expert_ffn, hidden}, GREY_DTYPE_F16);
        add(p + "ffn_down_shexp.weight", {hidden, 2 * expert_ffn}, GREY_DTYPE_F16);
        add(p + "exp_probs_b.bias", {experts}, GREY_DTYPE_F32);
        add(p + "attn_q_a_norm.weight", {1536}, GREY_DTYPE_F32);
        add(p + "attn_k_b.weight", {128, 512, 128}, GREY_DTYPE_F16);
    }
    add("output_norm.weight", {hidden}, GREY_DTYPE_F32);
    add("output.weight", {vocab, hidden}, GREY_DTYPE_F16);
    const auto layout = grey::model::layout_gguf(metadata, tensors);
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << layout.header;
    }
    if (::truncate(path.c_str(), static_cast<off_t>(layout.size)) != 0) throw std::runtime_error("truncate failed");
    return path;
}

std::string write_devices(const std::string& path, int gpu_gib) {
    std::ofstream(path) << "version: 1\ndevices:\n  - {name: CUDA0, type: gpu, memory_gib: " << gpu_gib
                        << ", bandwidth_gbps: 1008}\n  - {name: CPU, type: cpu, memory_gib: 512, bandwidth_gbps: 200}\n";
    return path;
}

void plan(benchmark::State& state, int gpu_gib, bool fits) {
    const std::string dir = "/tmp/grey-plan-bench-" + std::to_string(::getpid());
    (void)std::system(("mkdir -p " + dir).c_str());
    const std::string model = write_model(dir + "/model.gguf");
    const std::string devices = write_devices(dir + "/devices.yaml", gpu_gib);
    grey_workload workload = GREY_WORKLOAD_INIT;
    workload.context = 8192;
    uint64_t tensors = 0;
    for (auto _ : state) {
        grey_plan* p = nullptr;
        const grey_status status = grey_plan_create(nullptr, model.c_str(), &workload, devices.c_str(), &p);
        if ((status == GREY_OK) != fits) {
            state.SkipWithError(status == GREY_OK ? "the plan was expected not to fit" : grey_last_error());
            break;
        }
        if (tensors == 0) {
            grey_plan_summary s{};
            s.struct_size = sizeof s;
            if (grey_plan_summary_get(p, &s) == GREY_OK) tensors = s.tensor_count;
        }
        grey_plan_destroy(p);
    }
    state.counters["tensors"] = static_cast<double>(tensors);
    (void)std::system(("rm -rf " + dir).c_str());
}

void BM_PlanOnGpu24GiB(benchmark::State& state) { plan(state, 24, true); }
void BM_PlanOnGpu8GiBWholeLadderInfeasible(benchmark::State& state) { plan(state, 8, false); }
BENCHMARK(BM_PlanOnGpu24GiB)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlanOnGpu8GiBWholeLadderInfeasible)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
