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
#include <initializer_list>
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
    EXPECT_EQ(s.kv_runtime, GREY_KV_RUNTIME_LIBGREY);
    EXPECT_EQ(s.reserved0, 0u);
    // A caller whose struct ends before kv_runtime (0.2 before the field) gets the rest, and nothing past
    // its struct_size is written.
    grey_plan_summary older{};
    older.struct_size = offsetof(grey_plan_summary, kv_runtime);
    older.kv_runtime = GREY_KV_RUNTIME_FORCE32;
    ASSERT_EQ(grey_plan_summary_get(plan, &older), GREY_OK) << grey_last_error();
    EXPECT_EQ(older.struct_size, offsetof(grey_plan_summary, kv_runtime));
    EXPECT_EQ(older.kv_bytes, s.kv_bytes);
    EXPECT_EQ(older.predicted_steps_per_s, s.predicted_steps_per_s);
    EXPECT_EQ(older.kv_runtime, GREY_KV_RUNTIME_FORCE32);
    older.struct_size = offsetof(grey_plan_summary, predicted_steps_per_s);
    EXPECT_EQ(grey_plan_summary_get(plan, &older), GREY_ERROR_INVALID_ARGUMENT);
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
// offload, a split per weight, each copy reusing the last one's memory): the GPU's other bytes are a
// layer's activations plus the largest expert tensor the host holds, never a layer's sum, or the output
// stage's logits where those are more, and nothing for prompts under 32 tokens. Swept over GPU budgets on
// layouts whose expert tensors differ within and across layers.
TEST_F(PlanApi, PromptRoomIsTheLargestHostExpertTensor) {
    const std::vector<std::vector<uint64_t>> layouts{{128, 64, 64, 64, 32, 32}, {32, 64, 128, 96, 64, 128}, {96, 96, 96, 96}};
    constexpr uint64_t context = 256;
    // min(context * batch, 512) tokens: 16 * hidden floats a token in a layer, vocab + 2 * hidden at the output.
    const auto other = [](uint64_t tokens, uint64_t staged) { return std::max(tokens * 16 * 64 * 4 + staged, tokens * (128 + 2 * 64) * 4); };
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
                    EXPECT_EQ(gpu.other_bytes, other(ctx, 0)) << where;
                    continue;
                }
                EXPECT_EQ(gpu.other_bytes, other(ctx, host_largest)) << where;
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
        w.kv_runtime = static_cast<grey_kv_runtime>(0xA5A5);
    }
};

// A name function and its inverse: every name in `names` (the enum's values in order) round-trips, and
// `bad` is refused with the names listed, leaving the output as it was.
template <typename E>
void expect_name_round_trip(grey_status (*from_name)(const char*, E*), const char* (*name_of)(E), std::initializer_list<const char*> names,
                            const char* bad, const std::string& refusal) {
    E value{};
    for (const char* name : names) {
        ASSERT_EQ(from_name(name, &value), GREY_OK) << name;
        EXPECT_STREQ(name_of(value), name);
    }
    const E last = value;
    EXPECT_EQ(from_name(bad, &value), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(grey_last_error()).find(refusal), std::string::npos) << grey_last_error();
    EXPECT_EQ(value, last);  // untouched on failure
    EXPECT_EQ(from_name(nullptr, &value), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(from_name(*names.begin(), nullptr), GREY_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(name_of(static_cast<E>(names.size())), nullptr);
}

TEST_F(PlanApi, KvPrecisionNames) {
    expect_name_round_trip(grey_kv_precision_from_name, grey_kv_precision_name, {"auto", "f16", "int8", "int4", "int2"}, "q8_0",
                           "'q8_0' is not a KV precision (auto, f16, int8, int4, int2)");
    const grey_workload w = GREY_WORKLOAD_INIT;
    EXPECT_EQ(w.kv_precision, GREY_KV_PRECISION_AUTO);
    EXPECT_EQ(w.struct_size, sizeof(grey_workload));
}

TEST_F(PlanApi, KvRuntimeNames) {
    expect_name_round_trip(grey_kv_runtime_from_name, grey_kv_runtime_name, {"libgrey", "llama-cpp"}, "llama.cpp",
                           "'llama.cpp' is not a KV runtime (libgrey, llama-cpp)");
    const grey_workload w = GREY_WORKLOAD_INIT;
    EXPECT_EQ(w.kv_runtime, GREY_KV_RUNTIME_LIBGREY);
    // The field took the place of a reserved uint32_t: same offset and size, the struct unchanged.
    static_assert(offsetof(grey_workload, kv_runtime) == 28 && sizeof(grey_kv_runtime) == 4 && sizeof(grey_workload) == 32);
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
    // kv_runtime, reserved (always 0) before it: an unknown value is refused, not read as libgrey.
    w = GREY_WORKLOAD_INIT;
    w.kv_runtime = static_cast<grey_kv_runtime>(3);
    refused(w, "workload->kv_runtime 3 is not a grey_kv_runtime (libgrey, llama-cpp)");
    std::memcpy(&w.kv_runtime, &minus_one, sizeof minus_one);
    refused(w, "workload->kv_runtime -1 is not a grey_kv_runtime");
    w = GREY_WORKLOAD_INIT;
    w.kv_runtime = GREY_KV_RUNTIME_LLAMA_CPP;
    w.kv_precision = GREY_KV_PRECISION_INT2;
    refused(w, "KV precision int2 cannot be planned for KV runtime llama-cpp: llama.cpp has no 2-bit KV cache type");
    w.kind = GREY_WORKLOAD_INFERENCE;
    w.kv_precision = GREY_KV_PRECISION_AUTO;
    refused(w, "workload->kv_runtime llama-cpp sizes a KV cache, which workload inference has none of: leave it libgrey");
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
    for (uint64_t gpu_bytes = 1'000'000; gpu_bytes <= 4'000'000; gpu_bytes += 10'000) {
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

// The runtime that will hold the KV cache (grey_workload.kv_runtime, since 0.2): llama.cpp's cache types
// are smaller than libgrey's compressor formats (q8_0 34 bytes per 32 elements against 40, q4_0 18 against
// 24), and llama.cpp pads the context it allocates to a multiple of 256 tokens.

// A GGUF in Qwen3-30B-A3B's layout and size (qwen3moe: 48 layers, hidden 2048, 32 query and 4 KV heads of
// 128, 128 experts of 768, 8 used, vocabulary 151,936) in Q8_0, 30.2 GiB: the header is written and the
// data left a hole (the planner reads the metadata alone).
std::string write_qwen3_30b(const fs::path& dir) {
    constexpr uint64_t layers = 48, hidden = 2048, heads = 32, kv_heads = 4, head = 128, experts = 128, expert_ffn = 768, vocab = 151936;
    std::vector<grey::model::MetadataEntry> metadata{
        {"general.architecture", GgufValue::text("qwen3moe")},
        {"qwen3moe.block_count", GgufValue::u32(layers)},
        {"qwen3moe.context_length", GgufValue::u32(40960)},
        {"qwen3moe.embedding_length", GgufValue::u32(hidden)},
        {"qwen3moe.attention.head_count", GgufValue::u32(heads)},
        {"qwen3moe.attention.head_count_kv", GgufValue::u32(kv_heads)},
        {"qwen3moe.attention.key_length", GgufValue::u32(head)},
        {"qwen3moe.attention.value_length", GgufValue::u32(head)},
        {"qwen3moe.expert_count", GgufValue::u32(experts)},
        {"qwen3moe.expert_used_count", GgufValue::u32(8)},
    };
    std::vector<grey::model::DeclaredTensor> tensors;
    const auto add = [&](std::string name, grey_dtype dtype, std::vector<uint64_t> shape) {
        tensors.push_back(grey::model::declare_gguf_tensor(std::move(name), dtype, 0, std::move(shape)));
    };
    add("token_embd.weight", GREY_DTYPE_Q8_0, {vocab, hidden});
    for (uint64_t i = 0; i < layers; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        add(p + "attn_norm.weight", GREY_DTYPE_F32, {hidden});
        add(p + "attn_q.weight", GREY_DTYPE_Q8_0, {heads * head, hidden});
        add(p + "attn_k.weight", GREY_DTYPE_Q8_0, {kv_heads * head, hidden});
        add(p + "attn_v.weight", GREY_DTYPE_Q8_0, {kv_heads * head, hidden});
        add(p + "attn_output.weight", GREY_DTYPE_Q8_0, {hidden, heads * head});
        add(p + "attn_q_norm.weight", GREY_DTYPE_F32, {head});
        add(p + "attn_k_norm.weight", GREY_DTYPE_F32, {head});
        add(p + "ffn_norm.weight", GREY_DTYPE_F32, {hidden});
        add(p + "ffn_gate_inp.weight", GREY_DTYPE_F32, {experts, hidden});
        add(p + "ffn_gate_exps.weight", GREY_DTYPE_Q8_0, {experts, expert_ffn, hidden});
        add(p + "ffn_up_exps.weight", GREY_DTYPE_Q8_0, {experts, expert_ffn, hidden});
        add(p + "ffn_down_exps.weight", GREY_DTYPE_Q8_0, {experts, hidden, expert_ffn});
    }
    add("output_norm.weight", GREY_DTYPE_F32, {hidden});
    add("output.weight", GREY_DTYPE_Q8_0, {vocab, hidden});
    const auto layout = grey::model::layout_gguf(metadata, tensors);
    const auto path = (dir / "qwen3-30b-a3b-layout.gguf").string();
    std::ofstream(path, std::ios::binary) << layout.header;
    fs::resize_file(path, layout.size);
    return path;
}

std::string gpu_and_host(uint64_t gpu_bytes) {
    return "version: 1\ndevices:\n  - {name: CUDA0, type: gpu, memory_bytes: " + std::to_string(gpu_bytes) +
           ", bandwidth_gbps: 3350, safety_margin: 0}\n"
           "  - {name: CPU, type: cpu, memory_bytes: 200000000000, bandwidth_gbps: 80, safety_margin: 0}\n";
}

size_t gpu_expert_tensors(const grey_plan* plan) {
    size_t n = 0;
    grey_plan_summary s{};
    s.struct_size = sizeof s;
    EXPECT_EQ(grey_plan_summary_get(plan, &s), GREY_OK);
    for (uint64_t i = 0; i < s.tensor_count; ++i) {
        grey_plan_tensor t{};
        t.struct_size = sizeof t;
        EXPECT_EQ(grey_plan_tensor_get(plan, i, &t), GREY_OK);
        n += t.role == GREY_TENSOR_ROLE_ROUTED_EXPERTS && t.device == 0;
    }
    return n;
}

std::string yaml_of(const grey_plan* plan) {
    size_t length = 0;
    EXPECT_EQ(grey_plan_to_yaml(plan, nullptr, 0, &length), GREY_ERROR_BUFFER_TOO_SMALL);
    std::string text(length + 1, '\0');
    EXPECT_EQ(grey_plan_to_yaml(plan, text.data(), text.size(), &length), GREY_OK);
    text.resize(length);
    return text;
}

// At 32,896 tokens (not a multiple of 256) of the Qwen3-30B-A3B layout with int8 KV: 48 layers x 4 KV
// heads x (128 + 128) = 49,152 elements a token. libgrey's int8 takes 1.25 bytes an element for the
// context asked; llama.cpp's q8_0 1.0625 for the context it allocates, 33,024 tokens. The 282.75 MiB saved
// go to routed experts: never fewer expert tensors on the GPU, more on some budgets.
TEST_F(PlanApi, LlamaCppRuntimeSizesKvAsLlamaCppAllocatesIt) {
    const auto model = write_qwen3_30b(dir_);
    constexpr uint64_t context = 32896, padded = 33024, elements = 48 * 4 * (128 + 128);
    int more_experts = 0, budgets = 0;
    for (uint64_t gib = 12; gib <= 30; ++gib) {
        const auto devices = write_devices(gpu_and_host(gib << 30));
        const auto plan_for = [&](grey_kv_runtime runtime) {
            grey_workload w = GREY_WORKLOAD_INIT;
            w.context = context;
            w.batch = 1;
            w.kv_precision = GREY_KV_PRECISION_INT8;
            w.kv_runtime = runtime;
            grey_plan* raw = nullptr;
            EXPECT_EQ(grey_plan_create(nullptr, model.c_str(), &w, devices.c_str(), &raw), GREY_OK) << gib << " GiB: " << grey_last_error();
            return PlanPtr(raw);
        };
        const PlanPtr libgrey = plan_for(GREY_KV_RUNTIME_LIBGREY), llama = plan_for(GREY_KV_RUNTIME_LLAMA_CPP);
        ASSERT_TRUE(libgrey && llama) << gib;
        const auto x = placement_of(libgrey.get()), y = placement_of(llama.get());
        EXPECT_EQ(x.summary.kv_bytes_per_token, elements * 5 / 4) << gib;
        EXPECT_EQ(x.summary.kv_bytes, elements * context * 5 / 4) << gib;
        EXPECT_EQ(y.summary.kv_bytes_per_token, elements * 17 / 16) << gib;        // ceil(1.0625 x 49,152) = 52,224
        EXPECT_EQ(y.summary.kv_bytes, elements * padded * 17 / 16) << gib;          // 1,724,645,376
        EXPECT_EQ(x.summary.kv_bytes - y.summary.kv_bytes, uint64_t{296'484'864}) << gib;
        grey_plan_device gpu{};
        gpu.struct_size = sizeof gpu;
        ASSERT_EQ(grey_plan_device_get(llama.get(), 0, &gpu), GREY_OK);
        EXPECT_EQ(gpu.kv_bytes, y.summary.kv_bytes) << gib;  // every layer's cache on the GPU
        EXPECT_LE(gpu.predicted_bytes, gpu.budget_bytes) << gib;
        const size_t a = gpu_expert_tensors(libgrey.get()), b = gpu_expert_tensors(llama.get());
        EXPECT_GE(b, a) << gib << " GiB";
        EXPECT_GE(y.gpu_expert_bytes, x.gpu_expert_bytes) << gib;
        more_experts += b > a;
        budgets += a < 144;  // some experts left on the host
    }
    EXPECT_GT(budgets, 10);
    EXPECT_GT(more_experts, 5);
}

// llama.cpp has no 2-bit cache type: its ladder ends at q4_0 weights and int4 KV, and the error says so;
// libgrey's ends at int2. The emitted -c is the context asked (llama.cpp pads it itself).
TEST_F(PlanApi, LlamaCppRuntimeLadderEndsAtInt4) {
    const auto model = write_llama(4);
    const auto devices = write_devices(kOneGpu);
    const auto create = [&](grey_kv_runtime runtime, uint64_t context, grey_plan** out, const std::string& on = {}) {
        grey_workload w = GREY_WORKLOAD_INIT;
        w.context = context;
        w.batch = 1;
        w.kv_runtime = runtime;
        return grey_plan_create(nullptr, model.c_str(), &w, (on.empty() ? devices : on).c_str(), out);
    };
    grey_plan* raw = nullptr;
    ASSERT_EQ(create(GREY_KV_RUNTIME_LLAMA_CPP, 1u << 20, &raw), GREY_ERROR_OUT_OF_MEMORY);
    EXPECT_NE(std::string(grey_last_error()).find("even with q4_0 weights and int4 KV (context 1048576, batch 1, 1 tenant)"), std::string::npos)
        << grey_last_error();
    ASSERT_EQ(create(GREY_KV_RUNTIME_LIBGREY, 1u << 20, &raw), GREY_ERROR_OUT_OF_MEMORY);
    EXPECT_NE(std::string(grey_last_error()).find("even with q4_0 weights and int2 KV"), std::string::npos) << grey_last_error();
    // Contexts where libgrey's ladder reaches int2: llama.cpp's stops at int4 and fits with it or not at all.
    int int2_for_libgrey = 0;
    for (uint64_t context = 4096; context <= 65536; context += 2048) {
        grey_plan *a = nullptr, *b = nullptr;
        const grey_status sa = create(GREY_KV_RUNTIME_LIBGREY, context, &a), sb = create(GREY_KV_RUNTIME_LLAMA_CPP, context, &b);
        const PlanPtr pa(a), pb(b);
        if (sb == GREY_OK) {
            const auto y = placement_of(b);
            EXPECT_TRUE(y.summary.kv_quantized == 0 || y.summary.kv_format != GREY_KV_INT2) << context;
            size_t length = 0;
            EXPECT_EQ(grey_plan_llama_cpp_args(b, nullptr, 0, &length), y.summary.weight_bytes_planned == y.summary.weight_bytes_file
                                                                             ? GREY_ERROR_BUFFER_TOO_SMALL
                                                                             : GREY_ERROR_UNSUPPORTED)
                << context;
        } else {
            EXPECT_EQ(sb, GREY_ERROR_OUT_OF_MEMORY) << context;
        }
        if (sa == GREY_OK && placement_of(a).summary.kv_format == GREY_KV_INT2 && placement_of(a).summary.kv_quantized) ++int2_for_libgrey;
    }
    EXPECT_GT(int2_for_libgrey, 0);
    // A GPU with room for the f16 cache beside llama.cpp's attention mask (an f16 a token and cell).
    ASSERT_EQ(create(GREY_KV_RUNTIME_LLAMA_CPP, 1000, &raw, write_devices(one_gpu(8'000'000))), GREY_OK) << grey_last_error();
    const PlanPtr plan(raw);
    size_t length = 0;
    ASSERT_EQ(grey_plan_llama_cpp_args(plan.get(), nullptr, 0, &length), GREY_ERROR_BUFFER_TOO_SMALL);
    std::string args(length + 1, '\0');
    ASSERT_EQ(grey_plan_llama_cpp_args(plan.get(), args.data(), args.size(), &length), GREY_OK);
    EXPECT_NE(args.find("\n-c\n1000\n"), std::string::npos) << args;
    // 4 layers x 2 KV heads x (16 + 16) x 2 bytes (f16) for 1,024 tokens, the 1,000 asked padded to 256.
    const auto y = placement_of(plan.get());
    EXPECT_EQ(y.summary.kv_bytes, 4u * 2 * 32 * 2 * 1024);
    EXPECT_EQ(y.summary.kv_bytes_per_token, 4u * 2 * 32 * 2);
}

// plan.yaml records kv.runtime; a plan written before the key loads as libgrey's; a runtime or figure
// edited alone is caught, with the file and line.
TEST_F(PlanApi, PlanYamlKeepsTheKvRuntime) {
    const auto model = write_llama(4);
    const auto devices = write_devices(kOneGpu);
    const auto make = [&](grey_kv_runtime runtime, grey_kv_precision precision) {
        grey_workload w = GREY_WORKLOAD_INIT;
        w.context = 1000;
        w.batch = 1;
        w.kv_precision = precision;
        w.kv_runtime = runtime;
        grey_plan* raw = nullptr;
        EXPECT_EQ(grey_plan_create(nullptr, model.c_str(), &w, devices.c_str(), &raw), GREY_OK) << grey_last_error();
        return PlanPtr(raw);
    };
    const auto path = (dir_ / "plan.yaml").string();
    const auto load = [&](const std::string& text, grey_plan** out) {
        std::ofstream(path) << text;
        return grey_plan_load(path.c_str(), out);
    };
    const auto line_of = [](const std::string& text, const std::string& line) {
        const size_t at = text.find("\n" + line + "\n");
        return at == std::string::npos ? -1 : static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at) + 1, '\n')) + 1;
    };
    const auto replaced = [](std::string text, const std::string& from, const std::string& to) {
        const size_t at = text.find(from);
        EXPECT_NE(at, std::string::npos) << from;
        if (at != std::string::npos) text.replace(at, from.size(), to);
        return text;
    };

    const PlanPtr llama = make(GREY_KV_RUNTIME_LLAMA_CPP, GREY_KV_PRECISION_INT8);
    const std::string text = yaml_of(llama.get());
    EXPECT_NE(text.find("\nkv:\n  runtime: llama-cpp\n  precision: int8\n  bytes_per_token: 272\n  bytes: 278528\n"), std::string::npos) << text;
    grey_plan* raw = nullptr;
    ASSERT_EQ(load(text, &raw), GREY_OK) << grey_last_error();
    PlanPtr loaded(raw);
    EXPECT_EQ(yaml_of(loaded.get()), text);
    const auto a = placement_of(llama.get()), b = placement_of(loaded.get());
    EXPECT_EQ(b.summary.kv_bytes, a.summary.kv_bytes);
    EXPECT_EQ(b.summary.kv_bytes_per_token, 272u);  // 4 x 2 x 32 x 1.0625
    EXPECT_EQ(a.summary.kv_runtime, GREY_KV_RUNTIME_LLAMA_CPP);
    EXPECT_EQ(b.summary.kv_runtime, GREY_KV_RUNTIME_LLAMA_CPP);  // read back from kv.runtime

    // Without kv.runtime (a plan file from before it): libgrey's, and written back with the key.
    const PlanPtr libgrey = make(GREY_KV_RUNTIME_LIBGREY, GREY_KV_PRECISION_INT8);
    const std::string current = yaml_of(libgrey.get());
    EXPECT_NE(current.find("\nkv:\n  runtime: libgrey\n  precision: int8\n  bytes_per_token: 320\n  bytes: 320000\n"), std::string::npos) << current;
    ASSERT_EQ(load(replaced(current, "  runtime: libgrey\n", ""), &raw), GREY_OK) << grey_last_error();
    loaded.reset(raw);
    EXPECT_EQ(yaml_of(loaded.get()), current);
    EXPECT_EQ(placement_of(loaded.get()).summary.kv_runtime, GREY_KV_RUNTIME_LIBGREY);

    const auto refused = [&](const std::string& edited, const std::string& line, const std::string& says) {
        grey_plan* out = nullptr;
        EXPECT_EQ(load(edited, &out), GREY_ERROR_CONFIG) << says;
        EXPECT_EQ(out, nullptr);
        const std::string want = path + ":" + std::to_string(line_of(edited, line)) + ": " + says;
        EXPECT_NE(std::string(grey_last_error()).find(want), std::string::npos) << "wanted " << want << " in " << grey_last_error();
    };
    refused(replaced(text, "  runtime: llama-cpp\n", "  runtime: foo\n"), "  runtime: foo", "kv.runtime: 'foo' is not libgrey or llama-cpp");
    // The libgrey plan said to be llama.cpp's: its int8 figures are libgrey's.
    refused(replaced(current, "  runtime: libgrey\n", "  runtime: llama-cpp\n"), "  bytes_per_token: 320",
            "kv.bytes_per_token: 320 is not what int8 takes in kv.runtime llama-cpp (272)");
    // f16 takes 2 bytes in both, but llama.cpp's cache holds 1,024 tokens for the 1,000.
    const PlanPtr f16 = make(GREY_KV_RUNTIME_LIBGREY, GREY_KV_PRECISION_F16);
    refused(replaced(yaml_of(f16.get()), "  runtime: libgrey\n", "  runtime: llama-cpp\n"), "  bytes: 512000",
            "kv.bytes: 512000 is not the cache kv.runtime llama-cpp holds in f16 for the workload's context and batch (524288)");
    const PlanPtr int2 = make(GREY_KV_RUNTIME_LIBGREY, GREY_KV_PRECISION_INT2);
    refused(replaced(yaml_of(int2.get()), "  runtime: libgrey\n", "  runtime: llama-cpp\n"), "  precision: int2",
            "kv.precision: int2 is no cache type of kv.runtime llama-cpp");
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
