#!/usr/bin/env python3
"""greyctl plan end to end on model files in real architectures' layouts (tests/plan/model_layouts.py):

  * the workload model: roles, layers and hyper-parameters of GGUF (MoE and dense) and safetensors
    (with config.json, and without: inferred from shapes) files;
  * placements on several devices files (one GPU, two GPUs, a CPU-only box), quantization and KV
    precision when the model does not fit, and the infeasible-plan message;
  * --emit llama-cpp and its -ot checker, which refuses a pattern catching the wrong tensor;
  * plan.yaml round trip, and schema errors reported with file and line;
  * devices files' errors reported with file and line.

Usage: plan_cli_test.py GREYCTL [MINILM.safetensors]
With the MiniLM weights (the realdata test) it also plans the real safetensors file and the GGUF that
greyctl quantize writes from it.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_layouts as ml  # noqa: E402

GREYCTL = sys.argv[1]
MINILM = sys.argv[2] if len(sys.argv) > 2 else None
GIB = 1 << 30
ONE_GPU_GIB = 12.3  # see one_gpu below
failures = []


def greyctl(*args, ok=True):
    r = subprocess.run([GREYCTL, "--no-env", *args], capture_output=True, text=True)
    if ok and r.returncode != 0:
        raise AssertionError(f"greyctl {' '.join(args)} failed ({r.returncode}): {r.stderr}")
    if not ok and r.returncode == 0:
        raise AssertionError(f"greyctl {' '.join(args)} succeeded, expected a failure:\n{r.stdout[:2000]}")
    return r


def plan_json(*args):
    return json.loads(greyctl("plan", "--json", *args).stdout)


def check(name, condition, detail=""):
    if not condition:
        failures.append(f"{name}: {detail}")
        print(f"FAIL {name}: {detail}")
    else:
        print(f"ok   {name}")


def by_name(plan):
    return {t["name"]: t for t in plan["tensors"]}


def main():
    tmp = tempfile.mkdtemp(prefix="grey-plan-")
    moe = os.path.join(tmp, "qwen2moe.gguf")
    dense = os.path.join(tmp, "llama.gguf")
    ml.qwen2moe(moe)
    ml.llama_dense(dense)
    one_gpu = os.path.join(tmp, "one-gpu.yaml")
    two_gpus = os.path.join(tmp, "two-gpus.yaml")
    cpu_only = os.path.join(tmp, "cpu-only.yaml")
    small = os.path.join(tmp, "small.yaml")
    # ONE_GPU_GIB: the room the MoE file's whole expert layers leave there ends inside a layer (the checks
    # of a split layer below need one).
    ml.devices_file(one_gpu, [("CUDA0", "gpu", ONE_GPU_GIB, 1008), ("CPU", "cpu", 64, 80)])
    ml.devices_file(two_gpus, [("CUDA0", "gpu", 16, 1008), ("CUDA1", "gpu", 16, 936), ("CPU", "cpu", 64, 80)])
    ml.devices_file(cpu_only, [("CPU", "cpu", 128, 200)])
    ml.devices_file(small, [("CUDA0", "gpu", 2, 300), ("CPU", "cpu", 8, 40)])

    # --- the workload model of a MoE GGUF ---
    p = plan_json("--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1", "--kv-precision", "f16")
    t = by_name(p)
    check("moe: sparse file has all tensors", len(p["tensors"]) == 1 + 24 * 17 + 2, len(p["tensors"]))
    roles = {n: t[n]["role"] for n in ["token_embd.weight", "blk.3.attn_q.weight", "blk.3.ffn_gate_inp.weight", "blk.3.ffn_up_exps.weight",
                                       "blk.3.ffn_up_shexp.weight", "blk.3.ffn_gate_inp_shexp.weight", "blk.3.attn_norm.weight", "output.weight"]}
    check("moe: roles from GGUF names", roles == {
        "token_embd.weight": "embedding", "blk.3.attn_q.weight": "attention", "blk.3.ffn_gate_inp.weight": "moe_router",
        "blk.3.ffn_up_exps.weight": "routed_experts", "blk.3.ffn_up_shexp.weight": "shared_experts",
        "blk.3.ffn_gate_inp_shexp.weight": "shared_experts", "blk.3.attn_norm.weight": "norm", "output.weight": "output"}, roles)
    check("moe: layer index", t["blk.17.ffn_down_exps.weight"]["layer"] == 17 and t["output.weight"]["layer"] == -1)
    check("moe: bytes from the header", t["blk.0.ffn_up_exps.weight"]["file_bytes"] == 60 * 1408 * 2048 * 2)
    m = p["model"]
    check("moe: hyper-parameters from GGUF", (m["architecture"], m["architecture_source"], m["layers"], m["kv_heads"], m["key_length"],
                                              m["experts"], m["experts_used"]) == ("qwen2moe", "gguf", 24, 16, 128, 60, 4), m)
    # KV: 24 layers x 16 heads x (128 + 128) x 2 bytes per token in f16.
    check("moe: KV bytes per token", p["kv"]["precision"] == "f16" and p["kv"]["bytes_per_token"] == 24 * 16 * 256 * 2, p["kv"])
    check("moe: KV for the context", p["kv"]["bytes"] == 24 * 16 * 256 * 2 * 4096, p["kv"])
    # Placement: everything every token reads on the GPU; routed experts of the last layers on the host.
    hot = [x for x in p["tensors"] if x["role"] not in ("routed_experts", "embedding")]
    check("moe: every hot tensor on CUDA0", all(x["device"] == "CUDA0" for x in hot), [x["name"] for x in hot if x["device"] != "CUDA0"][:3])
    expert_devices = [t[f"blk.{i}.ffn_up_exps.weight"]["device"] for i in range(24)]
    on_gpu = expert_devices.count("CUDA0")
    check("moe: experts fill the GPU from the first layer, the rest on the host",
          0 < on_gpu < 24 and expert_devices == ["CUDA0"] * on_gpu + ["CPU"] * (24 - on_gpu), expert_devices)
    gpu = p["devices"][0]
    # Experts are placed tensor by tensor: the room whole layers leave takes part of the next layer (as
    # llama.cpp's --fit does), before the embedding, and what is left is less than any expert tensor.
    split = [i for i in range(24) if len({t[f"blk.{i}.ffn_{k}_exps.weight"]["device"] for k in ("gate", "up", "down")}) == 2]
    check("moe: one layer's experts split between the GPU and the host", len(split) == 1 and
          t[f"blk.{split[0]}.ffn_gate_exps.weight"]["device"] == "CUDA0", split)
    check("moe: the room left is less than an expert tensor; the embedding on the host",
          gpu["budget_bytes"] - gpu["predicted_bytes"] < t["blk.0.ffn_up_exps.weight"]["bytes"]
          and t["token_embd.weight"]["device"] == "CPU", (gpu, t["token_embd.weight"]))
    check("moe: predicted within the budget", gpu["predicted_bytes"] <= gpu["budget_bytes"], gpu)
    # To process a prompt batch (32 tokens or more) llama.cpp copies host-resident expert tensors to the GPU
    # one at a time (op offload, a split per weight): the GPU keeps room for the largest such tensor beside
    # a layer's activations, not for a layer's three. The buffer is reused from op to op, so the output
    # stage's logits count instead where they are more (the short prompt below).
    expert_tensor = 60 * 1408 * 2048 * 2
    layer, output = 512 * 16 * 2048 * 4, 512 * (151936 + 2 * 2048) * 4
    host_experts = [x["bytes"] for x in p["tensors"] if x["role"] == "routed_experts" and x["device"] == "CPU"]
    check("moe: room on the GPU for one host-resident expert tensor during a prompt",
          gpu["other_bytes"] == layer + expert_tensor == layer + max(host_experts) > output and len(host_experts) >= 3, gpu)
    short = plan_json("--model", moe, "--devices", one_gpu, "--context", "16", "--batch", "1", "--kv-precision", "f16")
    check("moe: no such room for prompts under 32 tokens; the logits the most", short["devices"][0]["other_bytes"] == 16 * (151936 + 2 * 2048) * 4
          and short["devices"][0]["weight_bytes"] > gpu["weight_bytes"], short["devices"][0])
    check("moe: budget keeps the safety margin", gpu["budget_bytes"] == int(ONE_GPU_GIB * GIB * 0.95), gpu)
    check("moe: thermal thresholds for the governor", (gpu["thermal_target_c"], gpu["thermal_max_c"]) == (75, 83), gpu)
    check("moe: weights as stored when they fit", p["weights"]["format"] == "as-stored")
    pb = plan_json("--model", moe, "--devices", two_gpus, "--context", "4096")
    p1 = plan_json("--model", moe, "--devices", two_gpus, "--context", "4096", "--batch", "1", "--kv-precision", "f16")
    check("moe: a recommended batch moves no tensor", pb["workload"]["batch_recommended"] and
          [x["device"] for x in pb["tensors"]] == [x["device"] for x in p1["tensors"]], pb["workload"])
    check("moe: deterministic", plan_json("--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1", "--kv-precision", "f16") == p)

    # --- the KV precision: auto takes int8 where it puts more routed-expert bytes on the GPU ---
    def expert_bytes(plan, device):
        return sum(x["bytes"] for x in plan["tensors"] if x["role"] == "routed_experts" and x["device"] == device)

    pa = plan_json("--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1")
    check("kv auto: the default is auto, which takes int8 for the MoE file at 4096 tokens", pa["kv"]["precision"] == "int8"
          and pa["kv"]["bytes"] == 24 * 16 * 256 * 4096 * 5 // 4, pa["kv"])
    check("kv auto: more expert bytes on the GPU than with f16, the hot tensors still there",
          expert_bytes(pa, "CUDA0") > expert_bytes(p, "CUDA0") and expert_bytes(pa, "CPU") < expert_bytes(p, "CPU")
          and all(x["device"] == "CUDA0" for x in pa["tensors"] if x["role"] not in ("routed_experts", "embedding")),
          (expert_bytes(pa, "CUDA0"), expert_bytes(p, "CUDA0")))
    check("kv auto: explicit auto is the default", plan_json("--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1",
                                                             "--kv-precision", "auto") == pa)
    check("kv auto: the same placement as a fixed int8", [x["device"] for x in pa["tensors"]] == [
        x["device"] for x in plan_json("--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1", "--kv-precision", "int8")["tensors"]])
    args_auto = greyctl("plan", "--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1", "--kv-runtime", "libgrey",
                        "--emit", "llama-cpp").stdout.split()
    check("kv auto, libgrey's runtime: as llama.cpp's q8_0 cache with flash attention", args_auto[args_auto.index("-ctk") + 1] == "q8_0"
          and args_auto[args_auto.index("-ctv") + 1] == "q8_0" and args_auto[args_auto.index("-fa") + 1] == "on", args_auto)
    # For llama.cpp's own runtime auto keeps f16 where f16 fits (its attention over q8_0 is the slower).
    args_llama = greyctl("plan", "--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1", "--emit", "llama-cpp").stdout.split()
    check("kv auto, llama.cpp's runtime: its f16 cache where f16 fits", args_llama[args_llama.index("-ctk") + 1] == "f16"
          and args_llama[args_llama.index("-ctv") + 1] == "f16" and "-fa" not in args_llama, args_llama)
    check("kv auto, llama.cpp's runtime: the f16 placement", [x["device"] for x in p["tensors"]] == [
        x["device"] for x in plan_json("--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1", "--kv-runtime", "llama-cpp")["tensors"]])
    pd = plan_json("--model", dense, "--devices", two_gpus, "--context", "4096", "--batch", "1")
    check("kv auto: a dense model that fits keeps f16", pd["kv"]["precision"] == "f16", pd["kv"])
    # With --emit llama-cpp the plan is sized for llama.cpp's cache, which has no 2-bit type.
    r = greyctl("plan", "--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1", "--kv-precision", "int2", "--emit",
                "llama-cpp", ok=False)
    check("kv int2: refused for llama.cpp's cache", "llama.cpp has no 2-bit KV cache type" in r.stderr, r.stderr)
    r = greyctl("plan", "--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1", "--kv-precision", "int2", "--kv-runtime",
                "libgrey", "--emit", "llama-cpp", ok=False)
    check("kv int2: a libgrey plan has no llama.cpp cache type", "no KV cache type for the plan's int2" in r.stderr, r.stderr)

    # --- the KV runtime: libgrey's compressor formats, or llama.cpp's cache types (q8_0: 34 bytes per 32) ---
    # 24 layers x 16 heads x (128 + 128) = 98,304 elements a token; 4000 tokens, which llama.cpp pads to 4096.
    kv_elements = 24 * 16 * 256
    pl = plan_json("--model", moe, "--devices", one_gpu, "--context", "4000", "--batch", "1", "--kv-precision", "int8", "--kv-runtime", "llama-cpp")
    check("kv runtime llama-cpp: q8_0 for the padded context", (pl["kv"]["runtime"], pl["kv"]["bytes_per_token"], pl["kv"]["bytes"])
          == ("llama-cpp", kv_elements * 17 // 16, kv_elements * 17 // 16 * 4096), pl["kv"])
    pg = plan_json("--model", moe, "--devices", one_gpu, "--context", "4000", "--batch", "1", "--kv-precision", "int8")
    check("kv runtime: libgrey by default", (pg["kv"]["runtime"], pg["kv"]["bytes_per_token"], pg["kv"]["bytes"])
          == ("libgrey", kv_elements * 5 // 4, kv_elements * 5 // 4 * 4000), pg["kv"])
    check("kv runtime llama-cpp: at least as many expert bytes on the GPU", expert_bytes(pl, "CUDA0") >= expert_bytes(pg, "CUDA0"),
          (expert_bytes(pl, "CUDA0"), expert_bytes(pg, "CUDA0")))
    check("kv runtime: explicit libgrey is the default", plan_json("--model", moe, "--devices", one_gpu, "--context", "4000", "--batch", "1",
                                                                  "--kv-precision", "int8", "--kv-runtime", "libgrey") == pg)
    yl = os.path.join(tmp, "plan-emit.yaml")
    greyctl("plan", "--model", moe, "--devices", one_gpu, "--context", "4000", "--batch", "1", "--kv-precision", "int8", "--emit", "llama-cpp",
            "--output", yl)
    check("kv runtime: llama-cpp by default when the same call emits llama.cpp arguments", plan_json("--plan", yl) == pl)
    yg = os.path.join(tmp, "plan-output.yaml")
    greyctl("plan", "--model", moe, "--devices", one_gpu, "--context", "4000", "--batch", "1", "--kv-precision", "int8", "--emit", "llama-cpp",
            "--kv-runtime", "libgrey", "--output", yg)
    check("kv runtime: --kv-runtime overrides the --emit default", plan_json("--plan", yg) == pg)
    check("kv runtime: a libgrey plan still emits (it is the larger)",
          "-ctk q8_0" in greyctl("plan", "--plan", yg, "--emit", "llama-cpp").stdout)
    r = greyctl("plan", "--plan", yg, "--kv-runtime", "llama-cpp", ok=False)
    check("kv runtime: not with --plan (the plan was sized already)", r.returncode == 2 and "--kv-runtime" in r.stderr, (r.returncode, r.stderr))
    r = greyctl("plan", "--model", moe, "--devices", one_gpu, "--kv-runtime", "vllm", ok=False)
    check("kv runtime: an unknown runtime is a usage error", r.returncode == 2 and "kv-runtime" in r.stderr, (r.returncode, r.stderr))
    r = greyctl("plan", "--model", dense, "--devices", small, "--context", "8192", "--batch", "4", "--kv-runtime", "llama-cpp", ok=False)
    check("kv runtime llama-cpp: the ladder ends at int4", re.search(
        r"needs \d+\.\d GiB more on CUDA0 even with q4_0 weights and int4 KV \(context 8192, batch 4, 1 tenant\)", r.stderr) is not None, r.stderr)
    r = greyctl("plan", "--model", moe, "--devices", one_gpu, "--workload", "inference", "--emit", "llama-cpp", ok=False)
    check("kv runtime: no llama.cpp default for a workload without a KV cache", "for workload llm-inference" in r.stderr, r.stderr)
    check("kv runtime: --help says when llama-cpp is the default",
          "llama-cpp with --emit llama-cpp" in greyctl("plan", "--help").stdout.replace("\n", " "))
    r = greyctl("plan", "--model", moe, "--devices", one_gpu, "--workload", "inference", "--kv-precision", "int8", ok=False)
    check("kv: a fixed precision for a workload without a KV cache is refused", "which workload inference has none of" in r.stderr, r.stderr)
    r = greyctl("plan", "--model", moe, "--devices", one_gpu, "--kv-precision", "q8_0", ok=False)
    check("kv: an unknown precision is a usage error", r.returncode == 2 and "kv-precision" in r.stderr, (r.returncode, r.stderr))

    # --- llama.cpp arguments and the -ot checker ---
    args = greyctl("plan", "--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1", "--kv-precision", "f16", "--emit", "llama-cpp").stdout.split()
    check("emit: -ngl, -c and cache types", args[:2] == ["-ngl", "999"] and "-c" in args and args[args.index("-c") + 1] == "4096"
          and args[args.index("-ctk") + 1] == "f16", args)
    ot = args[args.index("-ot") + 1].strip("'")
    check("emit: experts of the host layers to CPU, the split layer's host tensors by name, no entry for the embedding",
          re.search(r"ffn_up_exps", ot) is not None and "=CPU" in ot and "token_embd" not in ot
          and f"^blk\\.(?:{split[0] + 1}|" in ot and f"(?:{split[0]}|" in ot, ot)
    greyctl("plan", "--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1", "--kv-precision", "f16", "--check-ot", ot)
    # The usual hand-written pattern sends every layer's experts to the host, also those the plan keeps on the GPU.
    r = greyctl("plan", "--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1", "--kv-precision", "f16", "--check-ot", "exps=CPU", ok=False)
    check("checker: refuses a pattern that catches the wrong tensor", "sends tensor 'blk.0.ffn_gate_exps.weight' to CPU" in r.stderr, r.stderr)
    # A pattern meant for the last layer's routed experts that also catches its shared expert ("_shexp").
    r = greyctl("plan", "--model", moe, "--devices", one_gpu, "--context", "4096", "--batch", "1", "--kv-precision", "f16", "--check-ot",
                "blk\\.23\\.ffn_.*exp=CPU," + ot, ok=False)
    check("checker: refuses a pattern catching shared experts", "sends tensor 'blk.23.ffn_gate_inp_shexp.weight' to CPU" in r.stderr, r.stderr)
    r = greyctl("plan", "--model", moe, "--devices", one_gpu, "--check-ot", "(=CPU", ok=False)
    check("checker: refuses a pattern that does not compile", "not an ECMAScript regex" in r.stderr, r.stderr)
    r = greyctl("plan", "--model", moe, "--devices", one_gpu, "--check-ot", "exps=CUDA7", ok=False)
    check("checker: refuses an unknown buffer", "CUDA7" in r.stderr, r.stderr)

    # --- two GPUs and a CPU-only box ---
    p2 = plan_json("--model", moe, "--devices", two_gpus, "--context", "4096", "--batch", "1")
    used = {d["name"]: d["weight_bytes"] for d in p2["devices"]}
    check("two gpus: both hold weights", used["CUDA0"] > 0 and used["CUDA1"] > 0, used)
    check("two gpus: fewer experts on the host than with one",
          sum(1 for x in p2["tensors"] if x["device"] == "CPU" and x["role"] == "routed_experts") <
          sum(1 for x in p["tensors"] if x["device"] == "CPU" and x["role"] == "routed_experts"))
    args2 = greyctl("plan", "--model", moe, "--devices", two_gpus, "--context", "4096", "--batch", "1", "--emit", "llama-cpp").stdout.split()
    check("two gpus: a tensor split", "-ts" in args2, args2)
    pc = plan_json("--model", moe, "--devices", cpu_only, "--context", "4096", "--batch", "1")
    check("cpu only: everything on the host", all(x["device"] == "CPU" for x in pc["tensors"]))
    argsc = greyctl("plan", "--model", moe, "--devices", cpu_only, "--context", "4096", "--batch", "1", "--emit", "llama-cpp").stdout.split()
    check("cpu only: -ngl 0 and no -ot", argsc[:2] == ["-ngl", "0"] and "-ot" not in argsc, argsc)

    # --- a dense model that does not fit as stored: KV then weights are compressed ---
    pd = plan_json("--model", dense, "--devices", one_gpu, "--context", "8192", "--batch", "1")
    td = by_name(pd)
    check("dense: weights quantized to fit", pd["weights"]["format"] in ("q8_0", "q4_0"), pd["weights"])
    check("dense: a projection quantized", td["blk.0.ffn_up.weight"]["format"] == pd["weights"]["format"], td["blk.0.ffn_up.weight"])
    check("dense: critical layers kept (norm, output, embedding)",
          [td[n]["format"] for n in ("blk.0.attn_norm.weight", "output.weight", "token_embd.weight")] == ["as-stored"] * 3)
    check("dense: KV compressed before the weights", pd["kv"]["precision"] != "f16", pd["kv"])
    r = greyctl("plan", "--model", dense, "--devices", one_gpu, "--context", "8192", "--batch", "1", "--emit", "llama-cpp", ok=False)
    check("dense: llama.cpp cannot quantize at load", "write the quantized file first" in r.stderr, r.stderr)
    pr = plan_json("--model", dense, "--devices", two_gpus, "--context", "2048")
    check("dense: recommended batch", pr["workload"]["batch_recommended"] and pr["workload"]["batch"] >= 2, pr["workload"])

    # A file quantized already (Q4_K, a type libgrey sizes but does not decode) is planned as stored.
    q4k = os.path.join(tmp, "llama-q4_k.gguf")
    ml.llama_dense(q4k, qtype=ml.T.Q4_K)
    pk = plan_json("--model", q4k, "--devices", one_gpu, "--context", "8192", "--batch", "1")
    check("q4_k: sizes from the header", by_name(pk)["blk.0.ffn_up.weight"]["file_bytes"] == 14336 * 4096 // 256 * 144, by_name(pk)["blk.0.ffn_up.weight"])
    check("q4_k: nothing quantized again", pk["weights"]["format"] == "as-stored" and all(x["format"] == "as-stored" for x in pk["tensors"]), pk["weights"])
    check("q4_k: fits on the GPU", all(x["device"] == "CUDA0" for x in pk["tensors"] if x["role"] != "embedding"))
    # A long context climbs the ladder past the weight steps, which find nothing to quantize.
    pk = plan_json("--model", q4k, "--devices", one_gpu, "--context", "131072", "--batch", "1")
    check("q4_k: KV compressed, weights still as stored", (pk["kv"]["precision"], pk["weights"]["format"]) == ("int4", "as-stored"),
          (pk["kv"], pk["weights"]))

    # --- infeasible ---
    r = greyctl("plan", "--model", dense, "--devices", small, "--context", "8192", "--batch", "4", ok=False)
    check("infeasible: OUT_OF_MEMORY saying what is missing", re.search(
        r"needs \d+\.\d GiB more on CUDA0 even with q4_0 weights and int2 KV \(context 8192, batch 4, 1 tenant\)", r.stderr) is not None, r.stderr)
    r = greyctl("plan", "--model", moe, "--devices", one_gpu, "--tenants", "4", "--context", "32768", "--batch", "8", ok=False)
    check("infeasible: tenants divide the memory", "more on CUDA0" in r.stderr and "4 tenants" in r.stderr, r.stderr)
    r = greyctl("plan", "--model", moe, "--devices", small, "--workload", "training", ok=False)
    check("infeasible: training", "for training" in r.stderr, r.stderr)

    # --- hostile figures: refused or planned without wrapping around or allocating per claimed layer ---
    huge = os.path.join(tmp, "huge-layers.gguf")
    ml.write_sparse_gguf(huge, "llama", {"llama.block_count": 4000000000, "llama.embedding_length": 64}, [("blk.0.attn_k.weight", (64, 64), ml.T.F32)])
    r = greyctl("plan", "--model", huge, "--devices", one_gpu, ok=False)
    check("hostile: an implausible layer count", "layer count 4000000000 is beyond 65536" in r.stderr, r.stderr)
    far = os.path.join(tmp, "far-layer.gguf")
    ml.write_sparse_gguf(far, "llama", {"llama.block_count": 1, "llama.embedding_length": 64, "llama.attention.head_count": 1},
                         [("blk.0.attn_k.weight", (64, 64), ml.T.F32), ("blk.2000000000.attn_q.weight", (64, 64), ml.T.F32)])
    pf = plan_json("--model", far, "--devices", one_gpu, "--context", "16", "--batch", "1")
    check("hostile: a far layer number costs nothing", by_name(pf)["blk.2000000000.attn_q.weight"]["layer"] == 2000000000)
    r = greyctl("plan", "--model", moe, "--devices", one_gpu, "--context", "16777216", "--batch", "65536", ok=False)
    check("hostile: a huge context and batch fail without wrapping around", re.search(r"needs \d+\.\d GiB more on CUDA0", r.stderr) is not None, r.stderr)

    # --- safetensors: config.json beside it, or shapes ---
    st_dir = os.path.join(tmp, "hf")
    os.mkdir(st_dir)
    st_path = os.path.join(st_dir, "model.safetensors")
    ml.hf_llama_safetensors(st_path)
    ps = plan_json("--model", st_path, "--devices", one_gpu, "--context", "1024", "--batch", "1")
    ts = by_name(ps)
    check("safetensors: config.json", (ps["model"]["architecture_source"], ps["model"]["layers"], ps["model"]["kv_heads"],
                                       ps["model"]["key_length"]) == ("config.json", 2, 2, 16), ps["model"])
    check("safetensors: roles", [ts[n]["role"] for n in ("model.embed_tokens.weight", "model.layers.1.self_attn.k_proj.weight",
                                                          "model.layers.1.mlp.down_proj.weight", "model.layers.1.input_layernorm.weight",
                                                          "lm_head.weight")] == ["embedding", "attention", "dense_ffn", "norm", "output"])
    check("safetensors: KV bytes per token", ps["kv"]["bytes_per_token"] == 2 * 2 * 32 * 2, ps["kv"])
    os.remove(os.path.join(st_dir, "config.json"))
    pi = plan_json("--model", st_path, "--devices", one_gpu, "--context", "1024", "--batch", "1")
    check("safetensors: inferred from shapes, same KV", pi["model"]["architecture_source"] == "inferred from tensor shapes"
          and pi["kv"]["bytes_per_token"] == ps["kv"]["bytes_per_token"], pi["model"])

    # --- multi-head latent attention: the cache holds the latent, as llama.cpp and vLLM keep it ---
    mla = os.path.join(tmp, "deepseek2-mla.gguf")
    ml.deepseek2(mla)
    pm = plan_json("--model", mla, "--devices", one_gpu, "--context", "4096", "--batch", "1")
    # 4 layers x 1 head x (512 + 64) x 2 bytes per token in f16, no separate V.
    check("mla: KV bytes per token from the latent", (pm["model"]["kv_heads"], pm["model"]["key_length"], pm["model"]["value_length"],
                                                       pm["kv"]["bytes_per_token"]) == (1, 576, 0, 4 * 576 * 2), (pm["model"], pm["kv"]))
    old_mla = os.path.join(tmp, "deepseek2-decompressed.gguf")
    ml.deepseek2(old_mla, mla=False)
    po = plan_json("--model", old_mla, "--devices", one_gpu, "--context", "4096", "--batch", "1")
    check("mla: an older conversion is cached decompressed (K and V per head)",
          po["kv"]["bytes_per_token"] == 4 * 16 * (192 + 128) * 2, po["kv"])
    ds_dir = os.path.join(tmp, "hf-deepseek")
    os.mkdir(ds_dir)
    ml.hf_llama_safetensors(os.path.join(ds_dir, "model.safetensors"), config=False)
    with open(os.path.join(ds_dir, "config.json"), "w") as f:
        json.dump({"model_type": "deepseek_v3", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
                   "num_key_value_heads": 4, "kv_lora_rank": 32, "qk_rope_head_dim": 8, "qk_nope_head_dim": 16, "v_head_dim": 16}, f)
    pds = plan_json("--model", os.path.join(ds_dir, "model.safetensors"), "--devices", one_gpu, "--context", "1024", "--batch", "1")
    check("mla: config.json's kv_lora_rank and rope dimensions", pds["kv"]["bytes_per_token"] == 2 * (32 + 8) * 2, (pds["model"], pds["kv"]))

    # The machine detected here (no --devices): the host at least, with the memory it has free.
    pdet = plan_json("--model", st_path, "--context", "64", "--batch", "1")
    host = [d for d in pdet["devices"] if d["type"] == "cpu"]
    check("detected machine: one host with free memory", len(host) == 1 and host[0]["name"] == "CPU" and host[0]["memory_free_bytes"] > 0
          and host[0]["safety_margin"] == 0.2, pdet["devices"])

    # --- plan.yaml round trip and schema errors ---
    y1 = os.path.join(tmp, "plan.yaml")
    y2 = os.path.join(tmp, "plan2.yaml")
    greyctl("plan", "--model", moe, "--devices", two_gpus, "--context", "4096", "--output", y1)
    greyctl("plan", "--plan", y1, "--output", y2)
    check("plan.yaml: round trip is byte for byte", open(y1).read() == open(y2).read())
    check("plan.yaml: the JSON of the loaded plan is the plan's", plan_json("--plan", y1) == plan_json("--model", moe, "--devices", two_gpus, "--context", "4096"))
    args_loaded = greyctl("plan", "--plan", y1, "--emit", "llama-cpp").stdout
    check("plan.yaml: emits from a loaded plan", "-ot" in args_loaded)
    text = open(y1).read().splitlines()

    def broken(edit, expect, name):
        lines = list(text)
        line_no = edit(lines)
        path = os.path.join(tmp, "broken.yaml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        r = greyctl("plan", "--plan", path, ok=False)
        want = f"{path}:{line_no}: {expect}"
        check(f"schema: {name}", want in r.stderr, f"wanted {want!r} in {r.stderr!r}")

    def replace(pattern, new):
        def edit(lines):
            for i, line in enumerate(lines):
                if re.search(pattern, line):
                    lines[i] = re.sub(pattern, new, line)
                    return i + 1
            raise AssertionError(pattern)
        return edit

    def insert_after(pattern, new):
        def edit(lines):
            for i, line in enumerate(lines):
                if re.search(pattern, line):
                    lines.insert(i + 1, new)
                    return i + 2
            raise AssertionError(pattern)
        return edit

    broken(replace(r"^schema: .*", "schema: grey-plan/9"), "schema: 'grey-plan/9' is not grey-plan/1", "version")
    broken(insert_after(r"^  context: ", "  colour: blue"), "workload.colour: unknown key", "unknown key")
    broken(replace(r"^  batch: \d+", "  batch: many"), "workload.batch: expected a non-negative integer, got 'many'", "mistyped")
    broken(replace(r"device: CUDA1", "device: CUDA9"), "tensors[", "unknown device")
    plus_one = lambda m: f"{m.group(1)}{int(m.group(2)) + 1}"  # noqa: E731

    def edit_device_weights(lines):
        first = replace(r"^(    weight_bytes: )(\d+)", plus_one)(lines)
        replace(r"^(    predicted_bytes: )(\d+)", plus_one)(lines)
        return first

    broken(edit_device_weights, "devices[0].weight_bytes: ", "device figures that do not add up")
    broken(replace(r"^(    predicted_bytes: )(\d+)", plus_one), "devices[0].predicted_bytes: ", "a total that is not its parts")
    broken(replace(r"^(  file_bytes: )(\d+)", plus_one), "weights.file_bytes: is not the sum", "weights that do not add up")
    broken(replace(r"^    safety_margin: .*", "    safety_margin: 2"), "devices[0].safety_margin: 2 is out of range", "range")
    broken(replace(r"^  kind: .*", "  kind: dreaming"), "workload.kind: 'dreaming' is not", "kind")

    # --- devices files' errors ---
    def bad_devices(content, expect, name):
        path = os.path.join(tmp, "bad-devices.yaml")
        with open(path, "w") as f:
            f.write(content)
        r = greyctl("plan", "--model", moe, "--devices", path, ok=False)
        check(f"devices file: {name}", f"{path}:{expect}" in r.stderr, f"wanted {path}:{expect!r} in {r.stderr!r}")

    bad_devices("version: 2\ndevices:\n  - {name: CPU, type: cpu, memory_gib: 8, bandwidth_gbps: 50}\n", "1: version: unsupported version 2", "version")
    bad_devices("version: 1\ndevices:\n  - name: CPU\n    type: cpu\n    memory_gib: 8\n    bandwidth_gbps: 50\n    colour: red\n",
                "7: devices[0].colour: unknown key", "unknown key")
    bad_devices("version: 1\ndevices:\n  - name: CUDA0\n    type: gpu\n    memory_gib: 8\n    bandwidth_gbps: 50\n",
                "3: devices: expected exactly one device of type cpu", "no host")
    bad_devices("version: 1\ndevices:\n  - name: CPU\n    type: cpu\n    memory_gib: lots\n    bandwidth_gbps: 50\n",
                "5: devices[0].memory_gib: expected a number, got 'lots'", "mistyped")
    bad_devices("version: 1\ndevices:\n  - name: 'CUDA0,x=CPU'\n    type: gpu\n    memory_gib: 8\n    bandwidth_gbps: 50\n"
                "  - {name: CPU, type: cpu, memory_gib: 8, bandwidth_gbps: 50}\n", "3: devices[0].name: 'CUDA0,x=CPU' is not a buffer type name", "name")
    bad_devices("version: 1\ndevices: [\n", "", "syntax")

    # --- the real MiniLM weights, and the GGUF greyctl writes from them ---
    if MINILM:
        pm = plan_json("--model", MINILM, "--devices", one_gpu, "--workload", "inference")
        tm = by_name(pm)
        check("minilm: encoder roles", [tm[n]["role"] for n in ("embeddings.word_embeddings.weight", "encoder.layer.5.attention.self.query.weight",
                                                                 "encoder.layer.5.intermediate.dense.weight", "encoder.layer.5.output.dense.weight",
                                                                 "encoder.layer.5.output.LayerNorm.weight")]
              == ["embedding", "attention", "dense_ffn", "dense_ffn", "norm"], [tm[n]["role"] for n in tm][:8])
        check("minilm: 6 layers inferred, no KV", pm["model"]["layers"] == 6 and pm["kv"]["precision"] == "none", pm["model"])
        r = greyctl("plan", "--model", MINILM, "--devices", one_gpu, "--workload", "llm-inference", ok=False)
        check("minilm: an encoder has no KV cache", "plan it as workload inference" in r.stderr, r.stderr)
        gguf_path = os.path.join(tmp, "minilm-q8_0.gguf")
        greyctl("quantize", "--input", MINILM, "--format", "q8_0", "--output", gguf_path)
        pg = plan_json("--model", gguf_path, "--devices", one_gpu, "--workload", "inference")
        check("minilm gguf: same tensors, quantized ones smaller",
              len(pg["tensors"]) == len(pm["tensors"]) and pg["weights"]["file_bytes"] < pm["weights"]["file_bytes"], pg["weights"])

    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
