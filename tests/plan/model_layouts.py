"""Model files in real architectures' layouts for the planner's tests, small on disk.

GGUF files are written with llama.cpp's `gguf` package: the header (metadata and tensor infos) is real and
the data section is a hole (the file is truncated to its full size, so it is sparse): the planner reads
metadata only. Safetensors files are written whole, with tiny tensors, by scripts/safetensors_io.py.
"""
import json
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter
from gguf import TokenType
from gguf.constants import GGML_QUANT_SIZES

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import safetensors_io as st  # noqa: E402

ALIGN = 32


def nbytes(shape, qtype):
    block, size = GGML_QUANT_SIZES[qtype]
    n = int(np.prod(shape))
    assert shape[-1] % block == 0, (shape, qtype)
    return n // block * size


def write_sparse_gguf(path, arch, metadata, tensors):
    """tensors: [(name, shape outermost first, GGMLQuantizationType)]."""
    w = GGUFWriter(path, arch)
    for key, value in metadata.items():
        if isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        elif isinstance(value, float):
            w.add_float32(key, value)
        else:
            w.add_string(key, value)
    data = 0
    for name, shape, qtype in tensors:
        size = nbytes(shape, qtype)
        w.add_tensor_info(name, shape, np.dtype(np.float16 if qtype == T.F16 else np.float32), size, raw_dtype=qtype)
        data += (size + ALIGN - 1) // ALIGN * ALIGN
    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    header = os.path.getsize(path)
    os.truncate(path, (header + ALIGN - 1) // ALIGN * ALIGN + data)


def attention_block(p, hidden, kv_width, qtype, bias=False):
    """A block's norm and attention projections (with Qwen's Q, K and V biases when `bias`)."""
    tensors = [(p + "attn_norm.weight", (hidden,), T.F32)]
    for name, rows in (("attn_q", hidden), ("attn_k", kv_width), ("attn_v", kv_width)):
        tensors.append((p + name + ".weight", (rows, hidden), qtype))
        if bias:
            tensors.append((p + name + ".bias", (rows,), T.F32))
    return tensors + [(p + "attn_output.weight", (hidden, hidden), qtype), (p + "ffn_norm.weight", (hidden,), T.F32)]


def llama_dense(path, layers=32, hidden=4096, ffn=14336, heads=32, kv_heads=8, vocab=32000, qtype=T.F16):
    """Llama 3 8B's layout (F16: 15 GiB)."""
    tensors = [("token_embd.weight", (vocab, hidden), qtype)]
    for i in range(layers):
        p = f"blk.{i}."
        tensors += attention_block(p, hidden, kv_heads * hidden // heads, qtype) + [
            (p + "ffn_gate.weight", (ffn, hidden), qtype),
            (p + "ffn_up.weight", (ffn, hidden), qtype),
            (p + "ffn_down.weight", (hidden, ffn), qtype),
        ]
    tensors += [("output_norm.weight", (hidden,), T.F32), ("output.weight", (vocab, hidden), qtype)]
    write_sparse_gguf(path, "llama", {
        "llama.block_count": layers, "llama.embedding_length": hidden, "llama.feed_forward_length": ffn,
        "llama.attention.head_count": heads, "llama.attention.head_count_kv": kv_heads, "llama.context_length": 8192,
    }, tensors)


def qwen2moe(path, layers=24, hidden=2048, expert_ffn=1408, shared_ffn=5632, experts=60, used=4, heads=16, vocab=151936,
             qtype=T.F16):
    """Qwen1.5-MoE-A2.7B's layout (F16: 27 GiB): routed experts, a shared expert and its gate."""
    tensors = [("token_embd.weight", (vocab, hidden), qtype)]
    for i in range(layers):
        p = f"blk.{i}."
        tensors += attention_block(p, hidden, hidden, qtype, bias=True) + [
            (p + "ffn_gate_inp.weight", (experts, hidden), T.F32),
            (p + "ffn_gate_exps.weight", (experts, expert_ffn, hidden), qtype),
            (p + "ffn_up_exps.weight", (experts, expert_ffn, hidden), qtype),
            (p + "ffn_down_exps.weight", (experts, hidden, expert_ffn), qtype),
            (p + "ffn_gate_inp_shexp.weight", (1, hidden), T.F32),
            (p + "ffn_gate_shexp.weight", (shared_ffn, hidden), qtype),
            (p + "ffn_up_shexp.weight", (shared_ffn, hidden), qtype),
            (p + "ffn_down_shexp.weight", (hidden, shared_ffn), qtype),
        ]
    tensors += [("output_norm.weight", (hidden,), T.F32), ("output.weight", (vocab, hidden), qtype)]
    write_sparse_gguf(path, "qwen2moe", {
        "qwen2moe.block_count": layers, "qwen2moe.embedding_length": hidden, "qwen2moe.attention.head_count": heads,
        "qwen2moe.attention.head_count_kv": heads, "qwen2moe.context_length": 8192, "qwen2moe.expert_count": experts,
        "qwen2moe.expert_used_count": used,
    }, tensors)


def deepseek2(path, layers=4, hidden=2048, heads=16, kv_lora_rank=512, rope=64, nope=128, v_head=128, ffn=4096, vocab=32000, mla=True):
    """DeepSeek-V2-Lite's attention (multi-head latent attention) on dense layers. With `mla` the file is
    written the way llama.cpp converts it since its MLA cache: key_length = kv_lora_rank + rope on one KV
    head, the decompressed per-head sizes in *_mla; without, the older conversion (K and V per head)."""
    q_width = heads * (nope + rope)
    tensors = [("token_embd.weight", (vocab, hidden), T.F16)]
    for i in range(layers):
        p = f"blk.{i}."
        tensors += [(p + "attn_norm.weight", (hidden,), T.F32), (p + "attn_q.weight", (q_width, hidden), T.F16),
                    (p + "attn_kv_a_mqa.weight", (kv_lora_rank + rope, hidden), T.F16), (p + "attn_kv_a_norm.weight", (kv_lora_rank,), T.F32),
                    (p + "attn_kv_b.weight", (heads * (nope + v_head), kv_lora_rank), T.F16),
                    (p + "attn_output.weight", (hidden, heads * v_head), T.F16), (p + "ffn_norm.weight", (hidden,), T.F32),
                    (p + "ffn_gate.weight", (ffn, hidden), T.F16), (p + "ffn_up.weight", (ffn, hidden), T.F16),
                    (p + "ffn_down.weight", (hidden, ffn), T.F16)]
    tensors += [("output_norm.weight", (hidden,), T.F32), ("output.weight", (vocab, hidden), T.F16)]
    metadata = {"deepseek2.block_count": layers, "deepseek2.embedding_length": hidden, "deepseek2.attention.head_count": heads,
                "deepseek2.context_length": 32768, "deepseek2.attention.kv_lora_rank": kv_lora_rank, "deepseek2.rope.dimension_count": rope}
    if mla:
        metadata.update({"deepseek2.attention.head_count_kv": 1, "deepseek2.attention.key_length": kv_lora_rank + rope,
                         "deepseek2.attention.value_length": kv_lora_rank, "deepseek2.attention.key_length_mla": nope + rope,
                         "deepseek2.attention.value_length_mla": v_head})
    else:
        metadata.update({"deepseek2.attention.head_count_kv": heads, "deepseek2.attention.key_length": nope + rope,
                         "deepseek2.attention.value_length": v_head})
    write_sparse_gguf(path, "deepseek2", metadata, tensors)


def hf_llama_safetensors(path, layers=2, hidden=64, ffn=128, heads=4, kv_heads=2, vocab=96, config=True):
    """A tiny Hugging Face Llama checkpoint (model.layers.N.self_attn.q_proj...), with config.json beside it."""
    rng = np.random.default_rng(1)
    head = hidden // heads
    shapes = [("model.embed_tokens.weight", (vocab, hidden))]
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes += [
            (p + "input_layernorm.weight", (hidden,)),
            (p + "self_attn.q_proj.weight", (hidden, hidden)),
            (p + "self_attn.k_proj.weight", (kv_heads * head, hidden)),
            (p + "self_attn.v_proj.weight", (kv_heads * head, hidden)),
            (p + "self_attn.o_proj.weight", (hidden, hidden)),
            (p + "post_attention_layernorm.weight", (hidden,)),
            (p + "mlp.gate_proj.weight", (ffn, hidden)),
            (p + "mlp.up_proj.weight", (ffn, hidden)),
            (p + "mlp.down_proj.weight", (hidden, ffn)),
        ]
    shapes += [("model.norm.weight", (hidden,)), ("lm_head.weight", (vocab, hidden))]
    st.write(path, [(n, "F32", s, rng.standard_normal(s).astype(np.float32).tobytes()) for n, s in shapes], {"format": "pt"})
    if config:
        with open(os.path.join(os.path.dirname(path), "config.json"), "w") as f:
            json.dump({"model_type": "llama", "num_hidden_layers": layers, "hidden_size": hidden, "num_attention_heads": heads,
                       "num_key_value_heads": kv_heads, "max_position_embeddings": 2048, "intermediate_size": ffn}, f)


def tiny_moe(path, layers=4, hidden=128, expert_ffn=128, experts=8, used=2, heads=4, vocab=260):
    """A real (random weights) qwen2moe GGUF with a byte-level SPM vocabulary, small enough for a CPU; a
    `vocab` above the 260 byte-level tokens pads the vocabulary with plain ones (the output stage's size)."""
    rng = np.random.default_rng(0)
    w = GGUFWriter(path, "qwen2moe")
    w.add_block_count(layers)
    w.add_context_length(2048)
    w.add_embedding_length(hidden)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_expert_count(experts)
    w.add_expert_used_count(used)
    w.add_expert_feed_forward_length(expert_ffn)
    w.add_expert_shared_feed_forward_length(expert_ffn)
    w.add_feed_forward_length(expert_ffn)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_tokenizer_model("llama")
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)] + [b"\xe2\x96\x81"]
    plain = max(vocab - len(tokens), 0)
    tokens += [f"t{i}".encode() for i in range(plain)]
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * len(tokens))
    w.add_token_types([TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256 + [TokenType.NORMAL] * (1 + plain))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    def t(name, *shape):
        w.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    t("token_embd.weight", vocab, hidden)
    for i in range(layers):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(hidden, np.float32))
        for n in ("attn_q", "attn_k", "attn_v"):
            t(p + n + ".weight", hidden, hidden)
            w.add_tensor(p + n + ".bias", np.zeros(hidden, np.float32))
        t(p + "attn_output.weight", hidden, hidden)
        w.add_tensor(p + "ffn_norm.weight", np.ones(hidden, np.float32))
        t(p + "ffn_gate_inp.weight", experts, hidden)
        t(p + "ffn_gate_exps.weight", experts, expert_ffn, hidden)
        t(p + "ffn_up_exps.weight", experts, expert_ffn, hidden)
        t(p + "ffn_down_exps.weight", experts, hidden, expert_ffn)
        t(p + "ffn_gate_inp_shexp.weight", 1, hidden)
        t(p + "ffn_gate_shexp.weight", expert_ffn, hidden)
        t(p + "ffn_up_shexp.weight", expert_ffn, hidden)
        t(p + "ffn_down_shexp.weight", hidden, expert_ffn)
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    t("output.weight", vocab, hidden)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def devices_file(path, devices, extra=""):
    """devices: [(name, type, memory_gib, bandwidth_gbps)]; `extra` is added to every device's entry."""
    with open(path, "w") as f:
        f.write("version: 1\ndevices:\n")
        for name, kind, gib, bw in devices:
            f.write(f"  - name: {name}\n    type: {kind}\n    memory_gib: {gib}\n    bandwidth_gbps: {bw}\n{extra}")
