// A tensor's role and layer from its name. GGUF names follow llama.cpp's tensor table (llama-arch.cpp:
// blk.N.attn_q, blk.N.ffn_gate_exps, ...); safetensors names follow the Hugging Face families (llama,
// mistral, qwen, mixtral, deepseek: model.layers.N.self_attn.q_proj; BERT: encoder.layer.N.attention.
// self.query). Plain substring tests rather than regexes: planning a thousand tensors has to be fast.
#include "plan/workload_model.hpp"

#include <array>
#include <charconv>

namespace grey::plan {
namespace {

bool has(std::string_view name, std::string_view part) { return name.find(part) != std::string_view::npos; }

template <size_t N>
bool has_any(std::string_view name, const std::array<std::string_view, N>& parts) {
    for (const auto part : parts)
        if (has(name, part)) return true;
    return false;
}

// The number after one of the block prefixes ("blk.", "layers.", "layer.", "h.", "blocks."), when that
// prefix starts the name or follows a dot.
int32_t layer_of(std::string_view name) {
    static constexpr std::array<std::string_view, 5> prefixes{"blk.", "layers.", "layer.", "h.", "blocks."};
    for (const auto prefix : prefixes) {
        for (size_t at = name.find(prefix); at != std::string_view::npos; at = name.find(prefix, at + 1)) {
            if (at != 0 && name[at - 1] != '.') continue;
            const char* first = name.data() + at + prefix.size();
            const char* last = name.data() + name.size();
            int32_t layer = -1;
            const auto [end, ec] = std::from_chars(first, last, layer);
            if (ec == std::errc{} && end != first && (end == last || *end == '.')) return layer;
        }
    }
    return -1;
}

grey_tensor_role role_of(std::string_view name) {
    static constexpr std::array<std::string_view, 4> norms{"norm", "LayerNorm", "ln_", "layernorm"};
    static constexpr std::array<std::string_view, 3> shared{"_shexp", "shared_expert", "shared_experts"};
    static constexpr std::array<std::string_view, 4> routed{"_exps", "_chexps", ".experts.", "experts."};
    static constexpr std::array<std::string_view, 4> routers{"ffn_gate_inp", "exp_probs_b", "block_sparse_moe.gate.",
                                                              "e_score_correction"};
    static constexpr std::array<std::string_view, 6> embeddings{"token_embd", "embed_tokens", "word_embeddings", "position_embd",
                                                                "position_embeddings", "token_type"};
    static constexpr std::array<std::string_view, 7> attention{"attn", "attention", "self_attn", "q_proj", "k_proj", "v_proj",
                                                               "o_proj"};
    static constexpr std::array<std::string_view, 9> ffn{"ffn_", "mlp.", "intermediate.", "feed_forward", "gate_proj",
                                                         "up_proj", "down_proj", "output.dense", "c_fc"};
    if (has_any(name, norms)) return GREY_TENSOR_ROLE_NORM;
    if (has_any(name, shared)) return GREY_TENSOR_ROLE_SHARED_EXPERTS;
    if (has_any(name, routers)) return GREY_TENSOR_ROLE_MOE_ROUTER;
    if (has_any(name, routed)) return GREY_TENSOR_ROLE_ROUTED_EXPERTS;
    // DeepSeek's and Qwen-MoE's router is a bare "mlp.gate" (no _proj) beside the experts.
    if (has(name, "mlp.gate.weight") || has(name, "mlp.gate.bias")) return GREY_TENSOR_ROLE_MOE_ROUTER;
    if (has_any(name, embeddings) || name == "wte.weight" || name == "wpe.weight" || has(name, ".wte.") || has(name, ".wpe."))
        return GREY_TENSOR_ROLE_EMBEDDING;
    if (name == "output.weight" || name == "output.bias" || has(name, "lm_head")) return GREY_TENSOR_ROLE_OUTPUT;
    if (has_any(name, attention)) return GREY_TENSOR_ROLE_ATTENTION;
    if (has_any(name, ffn)) return GREY_TENSOR_ROLE_DENSE_FFN;
    return GREY_TENSOR_ROLE_OTHER;
}

}  // namespace

NameClass classify_tensor_name(std::string_view name) { return {role_of(name), layer_of(name)}; }

}  // namespace grey::plan
