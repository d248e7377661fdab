// A plan: where every tensor of a model goes, in which format, how large the KV cache is and in which
// precision, the batch, and what each device is predicted to hold and read. Made by make_plan, written
// to and read from plan.yaml (plan_yaml.cpp), turned into llama.cpp arguments (llama_cpp_args.cpp).
#pragma once

#include "grey.h"
#include "plan/machine_model.hpp"
#include "plan/workload_model.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace grey::plan {

// What the caller asks for (grey_workload, checked).
struct Request {
    grey_workload_kind kind = GREY_WORKLOAD_LLM_INFERENCE;
    uint64_t context = 0;  // 0: the model's trained context, at most kDefaultContext
    uint32_t batch = 0;    // 0: recommend one
    uint32_t tenants = 1;
    // How the KV cache's precision is chosen (llm-inference): "auto" (the ladder, with int8 taken over
    // f16 where it puts more weights on the GPUs), "f16-first" (the ladder alone: what a caller gets
    // whose grey_workload predates kv_precision), or a kv_precisions() name, fixed.
    std::string kv = "auto";
    // Whose cache formats size the KV cache: libgrey's compressor or llama.cpp's cache types.
    grey_kv_runtime kv_runtime = GREY_KV_RUNTIME_LIBGREY;
};

inline constexpr uint64_t kDefaultContext = 4096;
inline constexpr uint32_t kMaxRecommendedBatch = 256;

// The KV precisions a runtime stores, least compressed first: "f16", then int8, int4 (and int2, which
// libgrey's compressor has and llama.cpp's cache types do not), with the bytes an element takes there.
struct KvPrecision {
    std::string name;       // "f16", "int8", "int4", "int2"
    double bytes_per_element = 2;
};
const std::vector<KvPrecision>& kv_precisions(grey_kv_runtime runtime);

// The bytes an element of `precision` takes in `runtime`; nullopt when the runtime has no such cache.
std::optional<double> kv_element_bytes(grey_kv_runtime runtime, const std::string& precision);

// The token slots per sequence `runtime` allocates a KV cache of `context` tokens with.
uint64_t kv_cells_per_sequence(grey_kv_runtime runtime, uint64_t context);

// One layer's KV cache for `batch` sequences of `context` tokens, and one token's over every layer, in
// `precision` as `runtime` stores it; 0 for "none" or a precision the runtime lacks.
uint64_t kv_layer_bytes(const Architecture& arch, grey_kv_runtime runtime, const std::string& precision, uint64_t context, uint32_t batch);
uint64_t kv_token_bytes(const Architecture& arch, grey_kv_runtime runtime, const std::string& precision);

struct PlacedTensor {
    uint32_t device = 0;     // index into Plan::devices
    std::string format;      // "" when kept as stored, else a grey_quant_params_from_name name
    uint64_t bytes = 0;      // as placed (after quantization)
};

struct DeviceUsage {
    uint64_t budget_bytes = 0;      // memory_free_bytes * (1 - safety_margin) / tenants
    uint64_t weight_bytes = 0;
    uint64_t kv_bytes = 0;
    uint64_t other_bytes = 0;       // activations and compute buffers; for training gradients and optimizer state too
    double read_bytes_per_step = 0; // bytes read from this device's memory per decode step (or training step)
    double thermal_target_c = 0;    // for the governor (thermal.target_temp_c)
    double thermal_max_c = 0;       // (thermal.max_temp_c)
    [[nodiscard]] uint64_t predicted_bytes() const noexcept { return weight_bytes + kv_bytes + other_bytes; }
};

struct Plan {
    std::string model_path;
    grey_model_format model_format = GREY_MODEL_FORMAT_GGUF;
    Architecture arch;
    Request request;                  // context and batch resolved
    bool batch_recommended = false;   // the batch is the planner's recommendation
    std::string kv_precision = "f16"; // "none" for workloads without a KV cache
    uint64_t kv_bytes_per_token = 0;  // for one sequence, in kv_precision as request.kv_runtime stores it
    std::string weight_format;        // "" when no tensor is quantized, else the format of those that are
    std::vector<Device> devices;      // in the machine's order
    std::vector<DeviceUsage> usage;   // one per device
    std::vector<TensorInfo> tensors;  // in file order
    std::vector<PlacedTensor> placed; // one per tensor
    double predicted_steps_per_s = 0; // decode steps (tokens per sequence) per second, from bandwidth alone

    [[nodiscard]] uint64_t kv_bytes() const noexcept;
};

// Plans `model` on `machine`. Deterministic: the same inputs give the same plan. Fails with
// GREY_ERROR_OUT_OF_MEMORY saying what is missing where ("needs 11.2 GiB more on CUDA0 even with q4_0
// weights and int2 KV") when nothing fits, GREY_ERROR_INVALID_ARGUMENT for a request the model cannot
// serve (an LLM workload on an encoder).
Plan make_plan(const WorkloadModel& model, const Machine& machine, const Request& request);

// "11.2 GiB"
std::string gib_text(uint64_t bytes);

}  // namespace grey::plan
