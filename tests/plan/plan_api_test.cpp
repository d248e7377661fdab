// The planner's C API on model files written here: argument checks, the queries, and the planning rules
// that the end-to-end test (plan_cli_test.py) does not reach.
#include "grey.h"
#include "model/model_file.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
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
