// The workload model: what a model file asks of a machine, read from its metadata alone (no weight is
// read). Every tensor's bytes, layer and role, and the architecture's hyper-parameters that size the KV
// cache, from GGUF's keys or, for safetensors, config.json beside the file or the tensors' shapes.
#pragma once

#include "grey.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace grey::plan {

struct TensorInfo {
    std::string name;
    grey_tensor_role role = GREY_TENSOR_ROLE_OTHER;
    int32_t layer = -1;  // -1: not part of a numbered block
    grey_dtype dtype = GREY_DTYPE_OTHER;
    std::vector<uint64_t> shape;
    uint64_t bytes = 0;  // as stored in the file
};

// What sizes the KV cache and the activations. A zero field is unknown.
struct Architecture {
    std::string name;              // "llama", "qwen2moe", "bert", ... ("" when unknown)
    std::string source;            // where the figures come from: "gguf", "config.json" or "inferred from tensor shapes"
    uint32_t layers = 0;
    uint32_t embedding = 0;        // hidden size
    uint32_t heads = 0;
    uint32_t kv_heads = 0;
    uint32_t key_length = 0;       // per head
    uint32_t value_length = 0;     // per head; 0 with latent_kv: V is read from K's latent, not cached
    uint64_t context_trained = 0;
    uint32_t experts = 0;          // routed experts per MoE layer (0: dense)
    uint32_t experts_used = 0;     // routed experts each token uses
    bool causal = true;            // false for encoders (BERT): no KV cache
    // Multi-head latent attention (DeepSeek V2/V3, Kimi K2) as llama.cpp and vLLM cache it: one "head" per
    // token and layer holding the compressed KV latent and the rotary key part (key_length = kv_lora_rank
    // + the rope dimensions), from which attention also reads V; value_length is then 0.
    bool latent_kv = false;

    // Elements of K plus V per token for the whole model.
    [[nodiscard]] uint64_t kv_elements_per_token() const noexcept {
        return uint64_t{layers} * kv_heads * (uint64_t{key_length} + value_length);
    }
};

struct WorkloadModel {
    std::string path;
    grey_model_format format = GREY_MODEL_FORMAT_GGUF;
    std::vector<TensorInfo> tensors;  // in file order
    Architecture arch;
};

// The role and layer of a tensor, from its name (GGUF's names and the common safetensors families').
struct NameClass {
    grey_tensor_role role = GREY_TENSOR_ROLE_OTHER;
    int32_t layer = -1;
};
NameClass classify_tensor_name(std::string_view name);

// Reads `path` (GGUF or safetensors) through runtime/model's parsers; GREY_ERROR_CORRUPT or
// GREY_ERROR_IO as those do. A safetensors file's config.json is read from the same folder when present.
WorkloadModel read_workload_model(const std::string& path);

}  // namespace grey::plan
