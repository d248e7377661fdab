// The planner's C API on model files written here: argument checks, the queries, and the planning rules
// that the end-to-end test (plan_cli_test.py) does not reach.
#include "grey.h"
#include "model/model_file.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;
using grey::model::GgufValue;

struct PlanDeleter {
    void operator()(grey_plan* p) const noexcept { grey_plan_destroy(p); }
};
using PlanPtr = std::unique_ptr<grey_plan, PlanDeleter>;

constexpr const char* kOneGpu =
    "version: 1\ndevices:\n"
    "  - {name: CUDA0, type: gpu, memory_bytes: 4000000, bandwidth_gbps: 1000, safety_margin: 0}\n"
    "  - {name: CPU, type: cpu, memory_bytes: 100000000, bandwidth_gbps: 50, safety_margin: 0}\n";

class PlanApi : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / ("grey-plan-api-" + std::to_string(::getpid()));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    struct Shaped {
        std::string name;
        std::vector<uint64_t> shape;
        grey_dtype dtype;
    };

    // A llama-layout GGUF of `layers` blocks with tiny F32 tensors (hidden 64, 4 heads, 2 KV heads).
    std::string write_llama(int layers) {
        std::vector<grey::model::MetadataEntry> metadata{
            {"general.architecture", GgufValue::text("llama")},
            {"llama.block_count", GgufValue::u32(static_cast<uint32_t>(layers))},
            {"llama.embedding_length", GgufValue::u32(64)},
            {"llama.attention.head_count", GgufValue::u32(4)},
            {"llama.attention.head_count_kv", GgufValue::u32(2)},
            {"llama.context_length", GgufValue::u32(1024)},
        };
        std::vector<std::pair<std::string, std::vector<uint64_t>>> shapes{{"token_embd.weight", {128, 64}}};
        for (int i = 0; i < layers; ++i) {
            const std::string p = "blk." + std::to_string(i) + ".";
            shapes.push_back({p + "attn_norm.weight", {64}});
            shapes.push_back({p + "attn_q.weight", {64, 64}});
            shapes.push_back({p + "attn_k.weight", {32, 64}});
            shapes.push_back({p + "attn_v.weight", {32, 64}});
            shapes.push_back({p + "attn_output.weight", {64, 64}});
            shapes.push_back({p + "ffn_up.weight", {128, 64}});
            shapes.push_back({p + "ffn_down.weight", {64, 128}});
        }
        shapes.push_back({"output_norm.weight", {64}});
        shapes.push_back({"output.weight", {128, 64}});
        std::vector<Shaped> shaped;
        for (auto& [name, shape] : shapes) shaped.push_back({std::move(name), std::move(shape), GREY_DTYPE_F32});
        return write_gguf("llama.gguf", metadata, shaped);
    }

    // A qwen2moe-layout GGUF (hidden 64, 4 heads, 2 KV heads, 8 experts, vocabulary 128) whose layer i has
    // routed experts of width expert_ffn[i]: ffn_gate_exps and ffn_up_exps in F16, ffn_down_exps in F32, so
    // that a layer's expert tensors differ in size and layers differ from each other.
    std::string write_moe(const std::vector<uint64_t>& expert_ffn) {
        constexpr uint64_t hidden = 64, experts = 8, vocab = 128;
        const auto layers = static_cast<uint32_t>(expert_ffn.size());
        std::vector<grey::model::MetadataEntry> metadata{
            {"general.architecture", GgufValue::text("qwen2moe")},
            {"qwen2moe.block_count", GgufValue::u32(layers)},
            {"qwen2moe.embedding_length", GgufValue::u32(hidden)},
            {"qwen2moe.attention.head_count", GgufValue::u32(4)},
            {"qwen2moe.attention.head_count_kv", GgufValue::u32(2)},
            {"qwen2moe.context_length", GgufValue::u32(1024)},
            {"qwen2moe.expert_count", GgufValue::u32(experts)},
            {"qwen2moe.expert_used_count", GgufValue::u32(2)},
        };
        std::vector<Shaped> shapes{{"token_embd.weight", {vocab, hidden}, GREY_DTYPE_F32}};
        for (uint32_t i = 0; i < layers; ++i) {
            const std::string p = "blk." + std::to_string(i) + ".";
            const uint64_t f = expert_ffn[i];
            shapes.push_back({p + "attn_norm.weight", {hidden}, GREY_DTYPE_F32});
            shapes.push_back({p + "attn_q.weight", {hidden, hidden}, GREY_DTYPE_F32});
            shapes.push_back({p + "attn_k.weight", {32, hidden}, GREY_DTYPE_F32});
            shapes.push_back({p + "attn_v.weight", {32, hidden}, GREY_DTYPE_F32});
            shapes.push_back({p + "attn_output.weight", {hidden, hidden}, GREY_DTYPE_F32});
            shapes.push_back({p + "ffn_norm.weight", {hidden}, GREY_DTYPE_F32});
            shapes.push_back({p + "ffn_gate_inp.weight", {experts, hidden}, GREY_DTYPE_F32});
            shapes.push_back({p + "ffn_gate_exps.weight", {experts, f, hidden}, GREY_DTYPE_F16});
            shapes.push_back({p + "ffn_up_exps.weight", {experts, f, hidden}, GREY_DTYPE_F16});
            shapes.push_back({p + "ffn_down_exps.weight", {experts, hidden, f}, GREY_DTYPE_F32});
        }
        shapes.push_back({"output_norm.weight", {hidden}, GREY_DTYPE_F32});
        shapes.push_back({"output.weight", {vocab, hidden}, GREY_DTYPE_F32});
        return write_gguf("moe.gguf", metadata, shapes);
    }

    std::string write_gguf(const std::string& file, const std::vector<grey::model::MetadataEntry>& metadata, const std::vector<Shaped>& shapes) {
        storage_.clear();
        std::vector<grey::model::TensorToWrite> tensors;
        storage_.reserve(shapes.size());
        for (const auto& t : shapes) {
            uint64_t n = 1;
            for (const auto d : t.shape) n *= d;
            storage_.emplace_back(n * (t.dtype == GREY_DTYPE_F16 ? 2 : 4), std::byte{0});
            tensors.push_back({t.name, t.dtype, 0, t.shape, storage_.back()});
        }
        const auto path = (dir_ / file).string();
        std::ofstream out(path, std::ios::binary);
        grey::model::write_gguf(out, metadata, tensors);
        return path;
    }

    std::string write_devices(const std::string& text) {
        const auto path = (dir_ / "devices.yaml").string();
        std::ofstream(path) << text;
        return path;
    }

    // A plan of a `layers`-block model on kOneGpu; nullptr (and a test failure) when planning fails.
    PlanPtr plan_on_one_gpu(int layers, uint64_t context, uint32_t batch) {
        const auto model = write_llama(layers);
        grey_workload w = GREY_WORKLOAD_INIT;
        w.context = context;
        w.batch = batch;
        grey_plan* plan = nullptr;
        const grey_status status = grey_plan_create(nullptr, model.c_str(), &w, write_devices(kOneGpu).c_str(), &plan);
        EXPECT_EQ(status, GREY_OK) << grey_last_error();
        return PlanPtr(plan);
    }

    fs::path dir_;
    std::vector<std::vector<std::byte>> storage_;
};

TEST_F(PlanApi, RefusesMissingArguments) {
    grey_workload w = GREY_WORKLOAD_INIT;
    grey_plan* plan = nullptr;
    EXPECT_EQ(grey_plan_create(nullptr, nullptr, &w, nullptr, &plan), GREY_ERROR_INVALID_ARGUMENT);
    const auto model = write_llama(2);
    EXPECT_EQ(grey_plan_create(nullptr, model.c_str(), &w, nullptr, &plan), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("devices file or a context"), std::string::npos) << grey_last_error();
    w.struct_size = 4;
    EXPECT_EQ(grey_plan_create(nullptr, model.c_str(), &w, write_devices(kOneGpu).c_str(), &plan), GREY_ERROR_INVALID_ARGUMENT);
    w = GREY_WORKLOAD_INIT;
    w.kind = static_cast<grey_workload_kind>(7);
    EXPECT_EQ(grey_plan_create(nullptr, model.c_str(), &w, write_devices(kOneGpu).c_str(), &plan), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(plan, nullptr);
    grey_plan_destroy(nullptr);
}

TEST_F(PlanApi, KindNames) {
    grey_workload_kind kind = GREY_WORKLOAD_INFERENCE;
    ASSERT_EQ(grey_workload_kind_from_name("training", &kind), GREY_OK);
    EXPECT_EQ(kind, GREY_WORKLOAD_TRAINING);
    EXPECT_EQ(grey_workload_kind_from_name("llm", &kind), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(kind, GREY_WORKLOAD_TRAINING);  // untouched on failure
    EXPECT_STREQ(grey_tensor_role_name(GREY_TENSOR_ROLE_ROUTED_EXPERTS), "routed_experts");
}

TEST_F(PlanApi, QueriesAgreeWithThePlan) {
    const PlanPtr owned = plan_on_one_gpu(4, 256, 2);
    ASSERT_NE(owned, nullptr);
    const grey_plan* plan = owned.get();
    grey_plan_summary s{};
    s.struct_size = sizeof s;
    ASSERT_EQ(grey_plan_summary_get(plan, &s), GREY_OK);
    EXPECT_EQ(s.context, 256u);
    EXPECT_EQ(s.batch, 2u);
    EXPECT_EQ(s.batch_recommended, 0u);
    EXPECT_EQ(s.device_count, 2u);
    EXPECT_EQ(s.tensor_count, 1u + 4 * 7 + 2);
    // 4 layers x 2 KV heads x (16 + 16) x 2 bytes (f16).
    EXPECT_EQ(s.kv_bytes_per_token, 4u * 2 * 32 * 2);
    EXPECT_EQ(s.kv_quantized, 0u);
    EXPECT_EQ(s.kv_bytes, s.kv_bytes_per_token * 256 * 2);
    EXPECT_EQ(s.weight_bytes_file, s.weight_bytes_planned);
    uint64_t weights = 0;
    for (uint32_t d = 0; d < s.device_count; ++d) {
        grey_plan_device dev{};
        dev.struct_size = sizeof dev;
        ASSERT_EQ(grey_plan_device_get(plan, d, &dev), GREY_OK);
        EXPECT_EQ(dev.predicted_bytes, dev.weight_bytes + dev.kv_bytes + dev.other_bytes);
        EXPECT_LE(dev.predicted_bytes, dev.budget_bytes);
        weights += dev.weight_bytes;
    }
    EXPECT_EQ(weights, s.weight_bytes_planned);
    grey_plan_tensor t{};
    t.struct_size = sizeof t;
    ASSERT_EQ(grey_plan_tensor_get(plan, 3, &t), GREY_OK);
    EXPECT_STREQ(t.name, "blk.0.attn_k.weight");
    EXPECT_EQ(t.role, GREY_TENSOR_ROLE_ATTENTION);
    EXPECT_EQ(t.layer, 0);
    EXPECT_EQ(t.device, 0u);
    EXPECT_STREQ(t.format, "");
    EXPECT_EQ(t.file_bytes, 32u * 64 * 4);
    EXPECT_EQ(grey_plan_tensor_get(plan, s.tensor_count, &t), GREY_ERROR_INVALID_ARGUMENT);
    t.struct_size = 4;
    EXPECT_EQ(grey_plan_tensor_get(plan, 0, &t), GREY_ERROR_INVALID_ARGUMENT);
}

TEST_F(PlanApi, RecommendsTheLargestBatchThatFits) {
    const PlanPtr owned = plan_on_one_gpu(4, 1024, 0);
    ASSERT_NE(owned, nullptr);
    const grey_plan* plan = owned.get();
    grey_plan_summary s{};
    s.struct_size = sizeof s;
    ASSERT_EQ(grey_plan_summary_get(plan, &s), GREY_OK);
    EXPECT_EQ(s.batch_recommended, 1u);
    grey_plan_device gpu{};
    gpu.struct_size = sizeof gpu;
    ASSERT_EQ(grey_plan_device_get(plan, 0, &gpu), GREY_OK);
    // A power of two whose KV fits, and twice that would not have.
    EXPECT_EQ(s.batch & (s.batch - 1), 0u);
    EXPECT_GE(s.batch, 1u);
    EXPECT_LE(gpu.predicted_bytes, gpu.budget_bytes);
    EXPECT_GT(gpu.predicted_bytes + s.kv_bytes, gpu.budget_bytes) << "batch " << s.batch << " could have doubled";
}

TEST_F(PlanApi, LlamaCppArgumentsPassTheirCheck) {
    const PlanPtr owned = plan_on_one_gpu(4, 256, 1);
    ASSERT_NE(owned, nullptr);
    const grey_plan* plan = owned.get();
    size_t length = 0;
    ASSERT_EQ(grey_plan_llama_cpp_args(plan, nullptr, 0, &length), GREY_ERROR_BUFFER_TOO_SMALL);
    std::string args(length + 1, '\0');
    ASSERT_EQ(grey_plan_llama_cpp_args(plan, args.data(), args.size(), &length), GREY_OK);
    args.resize(length);
    EXPECT_EQ(args.rfind("-ngl\n999\n", 0), 0u) << args;
    // Everything fits on the GPU: only the token embedding needs an entry (llama.cpp keeps it on the CPU).
    EXPECT_NE(args.find("-ot\n^token_embd\\.weight$=CUDA0\n"), std::string::npos) << args;
    EXPECT_EQ(grey_plan_check_llama_cpp_overrides(plan, "^token_embd\\.weight$=CUDA0", 999), GREY_OK) << grey_last_error();
    EXPECT_EQ(grey_plan_check_llama_cpp_overrides(plan, "", 999), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("'token_embd.weight', so -ngl 999 puts it on CPU"), std::string::npos) << grey_last_error();
    // -ngl 2 leaves the first layers on the CPU.
    EXPECT_EQ(grey_plan_check_llama_cpp_overrides(plan, "^token_embd\\.weight$=CUDA0", 2), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("blk.0.attn_norm.weight"), std::string::npos) << grey_last_error();
    EXPECT_EQ(grey_plan_check_llama_cpp_overrides(plan, "token_embd", 999), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_plan_check_llama_cpp_overrides(plan, nullptr, 999), GREY_ERROR_INVALID_ARGUMENT);
}

// To process a prompt batch llama.cpp copies host-resident expert tensors to the GPU one at a time (op
// offload, a split per weight, each copy reusing the last one's memory): the GPU's other bytes are the
// activations plus the largest expert tensor the host holds, never a layer's sum, and nothing for prompts
// under 32 tokens. Swept over GPU budgets on layouts whose expert tensors differ within and across layers.
TEST_F(PlanApi, PromptRoomIsTheLargestHostExpertTensor) {
    const std::vector<std::vector<uint64_t>> layouts{{128, 64, 64, 64, 32, 32}, {32, 64, 128, 96, 64, 128}, {96, 96, 96, 96}};
    constexpr uint64_t context = 256;
    constexpr uint64_t activations = context * (16 * 64 + 128) * 4;  // min(context * batch, 512) * (16 * hidden + vocab) * 4
    int with_host_experts = 0, layer_sum_differs = 0, largest_on_gpu = 0;
    for (const auto& layout : layouts) {
        const auto model = write_moe(layout);
        uint64_t largest_expert = 0;
        for (const uint64_t f : layout) largest_expert = std::max(largest_expert, 8 * 64 * f * 4);
        for (uint64_t gpu_bytes = 1'600'000; gpu_bytes <= 6'400'000; gpu_bytes += 40'000) {
            const auto devices = write_devices("version: 1\ndevices:\n  - {name: CUDA0, type: gpu, memory_bytes: " + std::to_string(gpu_bytes) +
                                               ", bandwidth_gbps: 1000, safety_margin: 0}\n"
                                               "  - {name: CPU, type: cpu, memory_bytes: 100000000, bandwidth_gbps: 50, safety_margin: 0}\n");
            for (const uint64_t ctx : {context, uint64_t{16}}) {
                grey_workload w = GREY_WORKLOAD_INIT;
                w.context = ctx;
                w.batch = 1;
                grey_plan* raw = nullptr;
                const grey_status status = grey_plan_create(nullptr, model.c_str(), &w, devices.c_str(), &raw);
                if (status == GREY_ERROR_OUT_OF_MEMORY) continue;  // the smallest budgets hold not even the hot tensors
                ASSERT_EQ(status, GREY_OK) << grey_last_error();
                const PlanPtr plan(raw);
                grey_plan_summary s{};
                s.struct_size = sizeof s;
                ASSERT_EQ(grey_plan_summary_get(plan.get(), &s), GREY_OK);
                uint64_t host_largest = 0;
                std::map<int32_t, uint64_t> host_layers;  // bytes of routed experts per layer in host memory
                bool largest_expert_on_gpu = false;
                for (uint64_t i = 0; i < s.tensor_count; ++i) {
                    grey_plan_tensor t{};
                    t.struct_size = sizeof t;
                    ASSERT_EQ(grey_plan_tensor_get(plan.get(), i, &t), GREY_OK);
                    if (t.role != GREY_TENSOR_ROLE_ROUTED_EXPERTS) continue;
                    if (t.device == 0) {
                        largest_expert_on_gpu = largest_expert_on_gpu || t.planned_bytes == largest_expert;
                        continue;
                    }
                    host_largest = std::max(host_largest, t.planned_bytes);
                    host_layers[t.layer] += t.planned_bytes;
                }
                grey_plan_device gpu{};
                gpu.struct_size = sizeof gpu;
                ASSERT_EQ(grey_plan_device_get(plan.get(), 0, &gpu), GREY_OK);
                const std::string where = "layout " + std::to_string(&layout - layouts.data()) + ", GPU " + std::to_string(gpu_bytes) +
                                          " bytes, context " + std::to_string(ctx);
                EXPECT_LE(gpu.predicted_bytes, gpu.budget_bytes) << where;
                if (ctx < 32) {
                    EXPECT_EQ(gpu.other_bytes, ctx * (16 * 64 + 128) * 4) << where;
                    continue;
                }
                EXPECT_EQ(gpu.other_bytes, activations + host_largest) << where;
                if (host_largest == 0) continue;
                ++with_host_experts;
                // The rule this replaced, room for the largest layer's host-resident experts together, gives
                // more whenever the host holds two or more tensors of a layer at least as large as the rest.
                uint64_t host_layer_largest = 0;
                for (const auto& [layer, bytes] : host_layers) host_layer_largest = std::max(host_layer_largest, bytes);
                if (host_layer_largest > host_largest) ++layer_sum_differs;
                if (largest_expert_on_gpu && host_largest < largest_expert) ++largest_on_gpu;
            }
        }
    }
    // The sweep reached the cases that tell the rules apart: host-resident layers whose experts together
    // exceed the largest tensor (the tensor, not the layer's sum), and the model's largest expert tensor on
    // the GPU with smaller ones on the host (the host's largest, not the model's).
    EXPECT_GT(with_host_experts, 10);
    EXPECT_GT(layer_sum_differs, 10);
    EXPECT_GT(largest_on_gpu, 0);
}

// The KV precision asked for (grey_workload.kv_precision, since 0.2).

struct Placement {
    grey_plan_summary summary{};
    uint64_t gpu_expert_bytes = 0, host_expert_bytes = 0, host_weight_bytes = 0;
    bool embedding_on_host = false;
};

// The plan's totals and where its weights lie (device 0 is the GPU in every devices file here).
Placement placement_of(const grey_plan* plan) {
    Placement p;
    p.summary.struct_size = sizeof p.summary;
    EXPECT_EQ(grey_plan_summary_get(plan, &p.summary), GREY_OK);
    for (uint64_t i = 0; i < p.summary.tensor_count; ++i) {
        grey_plan_tensor t{};
        t.struct_size = sizeof t;
        EXPECT_EQ(grey_plan_tensor_get(plan, i, &t), GREY_OK);
        if (t.device != 0) p.host_weight_bytes += t.planned_bytes;
        if (t.role == GREY_TENSOR_ROLE_EMBEDDING && t.device != 0) p.embedding_on_host = true;
        if (t.role != GREY_TENSOR_ROLE_ROUTED_EXPERTS) continue;
        (t.device == 0 ? p.gpu_expert_bytes : p.host_expert_bytes) += t.planned_bytes;
    }
    return p;
}

std::string one_gpu(uint64_t gpu_bytes) {
    return "version: 1\ndevices:\n  - {name: CUDA0, type: gpu, memory_bytes: " + std::to_string(gpu_bytes) +
           ", bandwidth_gbps: 1000, safety_margin: 0}\n"
           "  - {name: CPU, type: cpu, memory_bytes: 100000000, bandwidth_gbps: 50, safety_margin: 0}\n";
}

// A workload as a caller built against grey.h before kv_precision passes it: struct_size ends before the
// field, and whatever lies there is not read.
struct OldWorkload {
    grey_workload w = GREY_WORKLOAD_INIT;
    OldWorkload() {
        w.struct_size = offsetof(grey_workload, kv_precision);
        w.kv_precision = static_cast<grey_kv_precision>(0x5A5A);
        w.reserved0 = 0xA5A5;
    }
};

TEST_F(PlanApi, KvPrecisionNames) {
    grey_kv_precision p = GREY_KV_PRECISION_AUTO;
    for (const char* name : {"auto", "f16", "int8", "int4", "int2"}) {
        ASSERT_EQ(grey_kv_precision_from_name(name, &p), GREY_OK) << name;
        EXPECT_STREQ(grey_kv_precision_name(p), name);
    }
    EXPECT_EQ(p, GREY_KV_PRECISION_INT2);
    EXPECT_EQ(grey_kv_precision_from_name("q8_0", &p), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find("auto, f16, int8, int4, int2"), std::string::npos) << grey_last_error();
    EXPECT_EQ(p, GREY_KV_PRECISION_INT2);  // untouched on failure
    EXPECT_EQ(grey_kv_precision_from_name(nullptr, &p), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(grey_kv_precision_name(static_cast<grey_kv_precision>(5)), nullptr);
    const grey_workload w = GREY_WORKLOAD_INIT;
    EXPECT_EQ(w.kv_precision, GREY_KV_PRECISION_AUTO);
    EXPECT_EQ(w.struct_size, sizeof(grey_workload));
}

TEST_F(PlanApi, KvPrecisionBadValuesAreRefused) {
    const auto model = write_llama(2);
    const auto devices = write_devices(kOneGpu);
    const auto refused = [&](const grey_workload& w, const std::string& says) {
        grey_plan* plan = nullptr;
        EXPECT_EQ(grey_plan_create(nullptr, model.c_str(), &w, devices.c_str(), &plan), GREY_ERROR_INVALID_ARGUMENT) << says;
        EXPECT_NE(std::string(grey_last_error()).find(says), std::string::npos) << grey_last_error();
        EXPECT_EQ(plan, nullptr);
    };
    grey_workload w = GREY_WORKLOAD_INIT;
    w.kv_precision = static_cast<grey_kv_precision>(9);
    refused(w, "workload->kv_precision 9 is not a grey_kv_precision (auto, f16, int8, int4, int2)");
    const int32_t minus_one = -1;  // as a C caller may store it: no C++ enum holds -1 here
    std::memcpy(&w.kv_precision, &minus_one, sizeof minus_one);
    refused(w, "workload->kv_precision -1 is not a grey_kv_precision");
    w = GREY_WORKLOAD_INIT;
    w.reserved0 = 3;
    refused(w, "workload->reserved0 is 3; it must be 0");
    w = GREY_WORKLOAD_INIT;
    w.kind = GREY_WORKLOAD_INFERENCE;
    w.kv_precision = GREY_KV_PRECISION_INT8;
    refused(w, "workload->kv_precision int8 asks for a KV cache, which workload inference has none of");
    w.kind = GREY_WORKLOAD_TRAINING;
    w.kv_precision = GREY_KV_PRECISION_F16;
    refused(w, "which workload training has none of");
    // Between the first release's size and today's: too short for the new fields, long enough for the old.
    w = GREY_WORKLOAD_INIT;
    w.struct_size = offsetof(grey_workload, kv_precision) - 1;
    refused(w, "workload->struct_size is 23");
}

// A mixture-of-experts model on GPU budgets where routed experts spill to the host: wherever the f16 plan
// leaves experts on the host and int8 KV puts more of their bytes on the GPU, auto takes int8 (the very
// placement a fixed int8 gives); elsewhere auto is the f16 plan. At a long context (4096 tokens: f16 KV
// 3 MiB, int8 saves 1.1 MiB, several expert tensors of 64 or 128 KiB) int8 wins; at a short one (64
// tokens: int8 saves 18 KiB, less than any expert tensor) f16 mostly stays with experts on the host. A
// caller whose struct predates the field gets the f16 plan throughout, and a fixed f16 keeps f16.
TEST_F(PlanApi, AutoKvTakesInt8WhenItPutsMoreExpertsOnTheGpu) {
    const auto model = write_moe({64, 64, 64, 64, 64, 64});
    std::map<uint64_t, int> int8_taken, f16_kept_with_host_experts;
    for (const uint64_t context : {uint64_t{64}, uint64_t{4096}})
    for (uint64_t gpu_bytes = 1'000'000; gpu_bytes <= 10'000'000; gpu_bytes += 100'000) {
        const auto devices = write_devices(one_gpu(gpu_bytes));
        const std::string where = "GPU " + std::to_string(gpu_bytes) + " bytes, context " + std::to_string(context);
        const auto plan_with = [&](const grey_workload& w) -> std::optional<Placement> {
            grey_plan* raw = nullptr;
            const grey_status status = grey_plan_create(nullptr, model.c_str(), &w, devices.c_str(), &raw);
            if (status == GREY_ERROR_OUT_OF_MEMORY) return std::nullopt;
            EXPECT_EQ(status, GREY_OK) << where << ": " << grey_last_error();
            const PlanPtr plan(raw);
            return plan ? std::optional<Placement>(placement_of(plan.get())) : std::nullopt;
        };
        grey_workload w = GREY_WORKLOAD_INIT;
        w.context = context;
        w.batch = 1;
        const auto with = [&](grey_kv_precision p) {
            grey_workload x = w;
            x.kv_precision = p;
            return plan_with(x);
        };
        OldWorkload old;
        old.w.context = w.context;
        old.w.batch = w.batch;
        const auto f16 = with(GREY_KV_PRECISION_F16), int8 = with(GREY_KV_PRECISION_INT8), autokv = with(GREY_KV_PRECISION_AUTO);
        const auto legacy = plan_with(old.w);
        if (!f16 || !int8 || f16->summary.weight_bytes_planned != f16->summary.weight_bytes_file) continue;  // f16 fits only quantized
        ASSERT_TRUE(autokv && legacy) << where;
        EXPECT_EQ(f16->summary.kv_quantized, 0u) << where;
        // The old caller's plan is the ladder's first step, f16 KV, whatever int8 would give.
        EXPECT_EQ(legacy->summary.kv_quantized, 0u) << where;
        EXPECT_EQ(legacy->gpu_expert_bytes, f16->gpu_expert_bytes) << where;
        const bool int8_better = f16->host_expert_bytes > 0 && int8->summary.weight_bytes_planned == int8->summary.weight_bytes_file &&
                                 int8->gpu_expert_bytes > f16->gpu_expert_bytes;
        if (int8_better) {
            ++int8_taken[context];
            EXPECT_EQ(autokv->summary.kv_quantized, 1u) << where;
            EXPECT_EQ(autokv->summary.kv_format, GREY_KV_INT8) << where;
            EXPECT_EQ(autokv->summary.kv_bytes * 8, f16->summary.kv_bytes * 5) << where;  // 1.25 bytes an element against 2
            EXPECT_EQ(autokv->gpu_expert_bytes, int8->gpu_expert_bytes) << where;
            EXPECT_GT(autokv->gpu_expert_bytes, f16->gpu_expert_bytes) << where;
        } else {
            if (f16->host_expert_bytes > 0) ++f16_kept_with_host_experts[context];
            EXPECT_EQ(autokv->summary.kv_quantized, 0u) << where;
            EXPECT_EQ(autokv->gpu_expert_bytes, f16->gpu_expert_bytes) << where;
        }
    }
    // The sweep reached both sides of the rule: int8 winning at the long context, and experts left on the
    // host at the short one, where int8 mostly would not bring one more tensor over.
    EXPECT_GT(int8_taken[4096], 3);
    EXPECT_GT(f16_kept_with_host_experts[64], 3);
}

// A dense model never trades KV precision for placement: its layers must all be on the GPU whatever the
// KV, and the token embedding (one row a token) does not count. Auto is the f16 plan on every budget,
// including those where the embedding lies in host memory.
TEST_F(PlanApi, AutoKvKeepsF16ForDenseModels) {
    const auto model = write_llama(4);
    int fits_f16 = 0, embedding_on_host = 0;
    for (uint64_t gpu_bytes = 1'500'000; gpu_bytes <= 4'000'000; gpu_bytes += 50'000) {
        const auto devices = write_devices(one_gpu(gpu_bytes));
        grey_workload w = GREY_WORKLOAD_INIT;
        w.context = 1024;
        w.batch = 1;
        OldWorkload old;
        old.w.context = w.context;
        old.w.batch = w.batch;
        grey_plan *a = nullptr, *b = nullptr;
        const grey_status sa = grey_plan_create(nullptr, model.c_str(), &w, devices.c_str(), &a);
        const grey_status sb = grey_plan_create(nullptr, model.c_str(), &old.w, devices.c_str(), &b);
        const PlanPtr pa(a), pb(b);
        ASSERT_EQ(sa, sb) << gpu_bytes;
        if (sa != GREY_OK) continue;
        const auto x = placement_of(a), y = placement_of(b);
        EXPECT_EQ(x.summary.kv_quantized, y.summary.kv_quantized) << gpu_bytes;
        EXPECT_EQ(x.summary.kv_bytes, y.summary.kv_bytes) << gpu_bytes;
        EXPECT_EQ(x.host_weight_bytes, y.host_weight_bytes) << gpu_bytes;
        if (x.summary.kv_quantized == 0) ++fits_f16;
        if (x.summary.kv_quantized == 0 && x.embedding_on_host) ++embedding_on_host;
    }
    EXPECT_GT(fits_f16, 0);
    EXPECT_GT(embedding_on_host, 0);
}

// A fixed precision holds on every step: only the weights are quantized to make the model fit.
TEST_F(PlanApi, FixedKvPrecisionOnlyVariesWeights) {
    const auto model = write_llama(4);
    const auto devices = write_devices(kOneGpu);
    int quantized_weights = 0;
    for (const uint64_t context : {256u, 1024u, 2048u, 2560u, 2816u, 4096u, 8192u}) {
        for (const auto p : {GREY_KV_PRECISION_F16, GREY_KV_PRECISION_INT8, GREY_KV_PRECISION_INT4, GREY_KV_PRECISION_INT2}) {
            grey_workload w = GREY_WORKLOAD_INIT;
            w.context = context;
            w.batch = 1;
            w.kv_precision = p;
            grey_plan* raw = nullptr;
            const grey_status status = grey_plan_create(nullptr, model.c_str(), &w, devices.c_str(), &raw);
            if (status == GREY_ERROR_OUT_OF_MEMORY) {
                // The message names the fixed precision, not the ladder's last step.
                EXPECT_NE(std::string(grey_last_error()).find(std::string("q4_0 weights and ") + grey_kv_precision_name(p) + " KV"),
                          std::string::npos)
                    << grey_last_error();
                continue;
            }
            ASSERT_EQ(status, GREY_OK) << grey_last_error();
            const PlanPtr plan(raw);
            const auto x = placement_of(plan.get());
            EXPECT_EQ(x.summary.kv_quantized, p == GREY_KV_PRECISION_F16 ? 0u : 1u) << context;
            if (p != GREY_KV_PRECISION_F16) {
                EXPECT_EQ(x.summary.kv_format, p == GREY_KV_PRECISION_INT8 ? GREY_KV_INT8 : p == GREY_KV_PRECISION_INT4 ? GREY_KV_INT4 : GREY_KV_INT2);
            }
            if (p == GREY_KV_PRECISION_F16 && x.summary.weight_bytes_planned < x.summary.weight_bytes_file) ++quantized_weights;
            // llama.cpp has no 2-bit cache: the emission refuses it, as for the ladder's int2 step.
            size_t length = 0;
            const grey_status emitted = grey_plan_llama_cpp_args(plan.get(), nullptr, 0, &length);
            if (p == GREY_KV_PRECISION_INT2) {
                EXPECT_EQ(emitted, GREY_ERROR_UNSUPPORTED);
                EXPECT_NE(std::string(grey_last_error()).find("int2"), std::string::npos) << grey_last_error();
            }
        }
    }
    // Some context needed quantized weights to keep a f16 cache (the old ladder would have quantized the KV).
    EXPECT_GT(quantized_weights, 0);
}

TEST_F(PlanApi, SameInputsSamePlan) {
    const auto model = write_llama(3);
    const auto devices = write_devices(kOneGpu);
    grey_workload w = GREY_WORKLOAD_INIT;
    std::string yaml[2];
    for (auto& text : yaml) {
        grey_plan* raw = nullptr;
        ASSERT_EQ(grey_plan_create(nullptr, model.c_str(), &w, devices.c_str(), &raw), GREY_OK) << grey_last_error();
        const PlanPtr plan(raw);
        size_t length = 0;
        ASSERT_EQ(grey_plan_to_yaml(plan.get(), nullptr, 0, &length), GREY_ERROR_BUFFER_TOO_SMALL);
        text.assign(length + 1, '\0');
        ASSERT_EQ(grey_plan_to_yaml(plan.get(), text.data(), text.size(), &length), GREY_OK);
        text.resize(length);
    }
    EXPECT_EQ(yaml[0], yaml[1]);
    EXPECT_NE(yaml[0].find("schema: grey-plan/1\n"), std::string::npos);
}

}  // namespace
