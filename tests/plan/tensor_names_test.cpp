// Roles and layers from tensor names: GGUF's (llama.cpp's tensor table) and the Hugging Face families'.
#include "plan/workload_model.hpp"

#include <gtest/gtest.h>

namespace {

using grey::plan::classify_tensor_name;

struct Case {
    const char* name;
    grey_tensor_role role;
    int32_t layer;
};

template <size_t N>
void expect_classes(const Case (&cases)[N]) {
    for (const auto& c : cases) {
        const auto got = classify_tensor_name(c.name);
        EXPECT_EQ(got.role, c.role) << c.name << ": " << grey_tensor_role_name(got.role);
        EXPECT_EQ(got.layer, c.layer) << c.name;
    }
}

TEST(PlanTensorNames, GgufNames) {
    const Case cases[] = {
        {"token_embd.weight", GREY_TENSOR_ROLE_EMBEDDING, -1},
        {"token_embd_norm.weight", GREY_TENSOR_ROLE_NORM, -1},
        {"output.weight", GREY_TENSOR_ROLE_OUTPUT, -1},
        {"output_norm.weight", GREY_TENSOR_ROLE_NORM, -1},
        {"blk.0.attn_q.weight", GREY_TENSOR_ROLE_ATTENTION, 0},
        {"blk.12.attn_k.bias", GREY_TENSOR_ROLE_ATTENTION, 12},
        {"blk.3.attn_v.weight", GREY_TENSOR_ROLE_ATTENTION, 3},
        {"blk.3.attn_output.weight", GREY_TENSOR_ROLE_ATTENTION, 3},
        {"blk.3.attn_kv_a_mqa.weight", GREY_TENSOR_ROLE_ATTENTION, 3},
        {"blk.3.attn_norm.weight", GREY_TENSOR_ROLE_NORM, 3},
        {"blk.3.attn_q_norm.weight", GREY_TENSOR_ROLE_NORM, 3},
        {"blk.7.ffn_gate.weight", GREY_TENSOR_ROLE_DENSE_FFN, 7},
        {"blk.7.ffn_up.weight", GREY_TENSOR_ROLE_DENSE_FFN, 7},
        {"blk.7.ffn_down.weight", GREY_TENSOR_ROLE_DENSE_FFN, 7},
        {"blk.7.ffn_norm.weight", GREY_TENSOR_ROLE_NORM, 7},
        {"blk.9.ffn_gate_inp.weight", GREY_TENSOR_ROLE_MOE_ROUTER, 9},
        {"blk.9.exp_probs_b.bias", GREY_TENSOR_ROLE_MOE_ROUTER, 9},
        {"blk.9.ffn_gate_exps.weight", GREY_TENSOR_ROLE_ROUTED_EXPERTS, 9},
        {"blk.9.ffn_up_exps.weight", GREY_TENSOR_ROLE_ROUTED_EXPERTS, 9},
        {"blk.9.ffn_down_exps.weight", GREY_TENSOR_ROLE_ROUTED_EXPERTS, 9},
        {"blk.9.ffn_up_chexps.weight", GREY_TENSOR_ROLE_ROUTED_EXPERTS, 9},
        {"blk.9.ffn_gate_shexp.weight", GREY_TENSOR_ROLE_SHARED_EXPERTS, 9},
        {"blk.9.ffn_down_shexp.weight", GREY_TENSOR_ROLE_SHARED_EXPERTS, 9},
        {"blk.9.ffn_gate_inp_shexp.weight", GREY_TENSOR_ROLE_SHARED_EXPERTS, 9},
        {"rope_freqs.weight", GREY_TENSOR_ROLE_OTHER, -1},
    };
    expect_classes(cases);
}

TEST(PlanTensorNames, SafetensorsFamilies) {
    const Case cases[] = {
        {"model.embed_tokens.weight", GREY_TENSOR_ROLE_EMBEDDING, -1},
        {"lm_head.weight", GREY_TENSOR_ROLE_OUTPUT, -1},
        {"model.norm.weight", GREY_TENSOR_ROLE_NORM, -1},
        {"model.layers.4.self_attn.q_proj.weight", GREY_TENSOR_ROLE_ATTENTION, 4},
        {"model.layers.4.self_attn.kv_a_proj_with_mqa.weight", GREY_TENSOR_ROLE_ATTENTION, 4},
        {"model.layers.4.input_layernorm.weight", GREY_TENSOR_ROLE_NORM, 4},
        {"model.layers.4.mlp.gate_proj.weight", GREY_TENSOR_ROLE_DENSE_FFN, 4},
        {"model.layers.4.mlp.down_proj.weight", GREY_TENSOR_ROLE_DENSE_FFN, 4},
        // Mixtral
        {"model.layers.31.block_sparse_moe.gate.weight", GREY_TENSOR_ROLE_MOE_ROUTER, 31},
        {"model.layers.31.block_sparse_moe.experts.7.w1.weight", GREY_TENSOR_ROLE_ROUTED_EXPERTS, 31},
        // DeepSeek and Qwen-MoE
        {"model.layers.2.mlp.gate.weight", GREY_TENSOR_ROLE_MOE_ROUTER, 2},
        {"model.layers.2.mlp.gate.e_score_correction_bias", GREY_TENSOR_ROLE_MOE_ROUTER, 2},
        {"model.layers.2.mlp.experts.63.up_proj.weight", GREY_TENSOR_ROLE_ROUTED_EXPERTS, 2},
        {"model.layers.2.mlp.shared_experts.up_proj.weight", GREY_TENSOR_ROLE_SHARED_EXPERTS, 2},
        {"model.layers.2.mlp.shared_expert.down_proj.weight", GREY_TENSOR_ROLE_SHARED_EXPERTS, 2},
        {"model.layers.2.mlp.shared_expert_gate.weight", GREY_TENSOR_ROLE_SHARED_EXPERTS, 2},
        // BERT
        {"embeddings.word_embeddings.weight", GREY_TENSOR_ROLE_EMBEDDING, -1},
        {"embeddings.position_embeddings.weight", GREY_TENSOR_ROLE_EMBEDDING, -1},
        {"embeddings.LayerNorm.weight", GREY_TENSOR_ROLE_NORM, -1},
        {"encoder.layer.11.attention.self.query.weight", GREY_TENSOR_ROLE_ATTENTION, 11},
        {"encoder.layer.11.attention.output.dense.weight", GREY_TENSOR_ROLE_ATTENTION, 11},
        {"encoder.layer.11.intermediate.dense.weight", GREY_TENSOR_ROLE_DENSE_FFN, 11},
        {"encoder.layer.11.output.dense.weight", GREY_TENSOR_ROLE_DENSE_FFN, 11},
        {"encoder.layer.11.output.LayerNorm.bias", GREY_TENSOR_ROLE_NORM, 11},
        // GPT-2
        {"h.3.attn.c_attn.weight", GREY_TENSOR_ROLE_ATTENTION, 3},
        {"h.3.mlp.c_fc.weight", GREY_TENSOR_ROLE_DENSE_FFN, 3},
        {"wte.weight", GREY_TENSOR_ROLE_EMBEDDING, -1},
    };
    expect_classes(cases);
}

TEST(PlanTensorNames, LayerNumbersNeedTheirDots) {
    EXPECT_EQ(classify_tensor_name("blk.12x.attn_q.weight").layer, -1);
    EXPECT_EQ(classify_tensor_name("myblk.3.attn_q.weight").layer, -1);
    EXPECT_EQ(classify_tensor_name("blk.").layer, -1);
    EXPECT_EQ(classify_tensor_name("blk.99999999999999999999.attn_q").layer, -1);
}

}  // namespace
