#!/usr/bin/env python3
"""llama.cpp loads a model with the arguments `greyctl plan --emit llama-cpp` prints.

    llama_cpp_load_test.py GREYCTL

Needs a llama.cpp build: the program named by $LLAMA_CPP_CLI, else `llama-cli` on PATH. Without one
the test is skipped (exit 77) and says so. A CPU build gets a plan for a CPU-only devices file; with
$LLAMA_CPP_GPU_MEMORY_GIB set (a CUDA build), the plan is for one GPU named CUDA0 with that much memory (a small value,
such as 0.004, sends some experts to the host).
"""
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGUFWriter
from gguf import TokenType

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_layouts as ml  # noqa: E402

SKIP = 77


def tiny_moe(path, layers=4, hidden=128, expert_ffn=128, experts=8, used=2, heads=4, vocab=260):
    """A real (random weights) qwen2moe GGUF with a byte-level SPM vocabulary, small enough for a CPU."""
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
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * len(tokens))
    w.add_token_types([TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256 + [TokenType.NORMAL])
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


def main():
    greyctl = sys.argv[1]
    cli = os.environ.get("LLAMA_CPP_CLI") or shutil.which("llama-cli")
    if not cli:
        print("SKIPPED: no llama.cpp build (set LLAMA_CPP_CLI to a llama-cli, or put one on PATH)")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="grey-llama-")
    model = os.path.join(tmp, "tiny-moe.gguf")
    tiny_moe(model)
    devices = os.path.join(tmp, "devices.yaml")
    gpu_gib = os.environ.get("LLAMA_CPP_GPU_MEMORY_GIB")
    ml.devices_file(devices, ([("CUDA0", "gpu", float(gpu_gib), 1000)] if gpu_gib else []) + [("CPU", "cpu", 4, 50)])
    emitted = subprocess.run([greyctl, "--no-env", "plan", "--model", model, "--devices", devices, "--context", "256", "--batch", "1",
                              "--emit", "llama-cpp"], check=True, capture_output=True, text=True).stdout
    command = [cli, "-m", model, *shlex.split(emitted), "-n", "4", "-p", "hello", "-no-cnv", "--no-warmup", "--temp", "0"]
    print("running:", shlex.join(command))
    r = subprocess.run(command, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    print(r.stdout[-2000:])
    print(r.stderr[-4000:])
    if r.returncode != 0 or "failed to load model" in r.stderr:
        print("FAIL: llama.cpp did not load the model with the emitted arguments")
        return 1
    print("ok: llama.cpp loaded the model and generated with the plan's arguments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
