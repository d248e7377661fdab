#!/usr/bin/env python3
"""libgrey's planner against llama.cpp's `--fit`, head to head (issue 19's goals), and the pieces it needs.

    fit_head_to_head.py model --out FILE [--scale full|tiny] [--type q8_0|q4_0] [--sparse] [--layers N] [--workers N]
    fit_head_to_head.py run --bin DIR --greyctl PATH --model FILE --budget-gib G [--steps decode,pp] [--n-gen N]
                            [--depth N] [--reps N] [--rounds N] [--pp N] [--threads N] [--out DIR] [--no-hold]
                            [--kv-precision auto|f16|int8|int4] [--fit-llama-defaults]

`model` writes a mixture-of-experts GGUF in Qwen3-30B-A3B's layout and size (architecture `qwen3moe`: 48
layers, hidden 2048, 32 query and 4 KV heads of 128, 128 experts of 768 with 8 used per token, vocabulary
151,936) with random weights, stored as Q8_0 (30.2 GiB) or Q4_0 (16.1 GiB), written with llama.cpp's `gguf`
package: the header is the package's, the data section is filled by worker processes. Quantized blocks
carry random codes under a fixed scale (weights of standard deviation ~0.02); each worker draws one pool of
random blocks and writes it at rotating offsets, since drawing 30 GiB of fresh random numbers would take
longer than the benchmark (the values do not change how fast a layer runs; the router's F32 weights, which
choose the experts, are drawn whole). `--sparse` writes the header only and leaves the data a hole (what
the planner reads: enough to plan the full-size model on a machine without the disk for it). `--scale tiny`
is the same layout at a size a CPU runs in seconds.

`run` limits the GPU's free memory to the budget (a PyTorch process holds the rest for the whole run; no
GPU setting is touched), reads back the free memory llama.cpp then sees, plans the model for that much with
`greyctl plan --devices` and runs llama.cpp both ways:

- `fit`: llama.cpp's own placement, `--fit on` with its defaults (1024 MiB margin per device; in
  llama-bench the same common_fit_params is asked for with `-fitt 1024`);
- `plan`: the arguments `greyctl plan --emit llama-cpp` prints (`-ngl`, `-ot`, ... ; `--fit off`).

Both get the same context, KV cache types and flash-attention setting (the plan's), threads and batch
sizes: only the placement differs. `--kv-precision` is handed to `greyctl plan`, which plans for
llama.cpp's KV runtime (without it, greyctl's default, `auto`: for that runtime f16 wherever f16 fits;
`--kv-precision int8` plans a `q8_0` cache); with `--fit-llama-defaults` the fit run keeps llama.cpp's
own cache (f16) and flash-attention setting instead, so that, at a long context (`--depth`), a plan
with a quantized cache meets "--fit as llama.cpp ships". For each, one llama-completion run reports what llama.cpp allocated
per device (the buffer sizes it logs while loading; its breakdown table at exit too, when its
asynchronous logger gets it out before the process ends, which it does not always), and llama-bench
measures decode (`-p 0 -n N`, `-r` repetitions, `--rounds` alternating invocations): the `decode` step.
The `pp` step then processes one prompt with each (`llama-bench -p 512 -n 0 -r 1 -v`): a batch of 32 tokens
or more is where llama.cpp copies host-resident expert tensors to the GPU (op offload), so this is the run
that shows whether the room the planner keeps for that copy is enough. It says whether each loaded and ran
without running out of memory and what llama.cpp allocated on CUDA0 (model, KV and compute buffers, from
its log). It prints one table and writes the logs, the plan, the table (`table.md`) and the raw figures
(`results.json`) to --out.
"""
import argparse
import json
import math
import multiprocessing as mp
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np

try:
    import yaml  # noqa: F401  (the gguf package imports it for model cards only)
except ImportError:
    import types
    sys.modules["yaml"] = types.ModuleType("yaml")
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf import GGUFWriter, TokenType  # noqa: E402
from gguf.constants import GGML_QUANT_SIZES  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
ALIGN = 32  # GGUF's default alignment, which GGUFWriter uses

# Qwen3-30B-A3B (Hugging Face config.json) and a tiny model of the same layout.
SCALES = {
    "full": dict(layers=48, hidden=2048, heads=32, kv_heads=4, head_dim=128, experts=128, used=8, expert_ffn=768,
                 vocab=151936, context=40960),
    "tiny": dict(layers=4, hidden=256, heads=4, kv_heads=2, head_dim=64, experts=8, used=2, expert_ffn=128,
                 vocab=512, context=4096),
}
QTYPES = {"q8_0": T.Q8_0, "q4_0": T.Q4_0}
# Block scales giving codes a standard deviation of ~0.02 (uniform codes: int8 ~74, Q4_0's nibbles - 8 ~4.6).
BLOCK_SCALE = {T.Q8_0: 0.02 / 74, T.Q4_0: 0.02 / 4.6}


def nbytes(shape, qtype):
    block, size = GGML_QUANT_SIZES[qtype]
    n = math.prod(shape)
    assert shape[-1] % block == 0, (shape, qtype)
    return n // block * size


def tensors_of(h, qtype):
    """[(name, shape outermost first, type, fill)] in the order convert_hf_to_gguf.py writes qwen3moe;
    fill: 'q' random blocks, 'ones', 'router' (random F32)."""
    hid, q_width, kv_width = h["hidden"], h["heads"] * h["head_dim"], h["kv_heads"] * h["head_dim"]
    e, f = h["experts"], h["expert_ffn"]
    out = [("token_embd.weight", (h["vocab"], hid), qtype, "q")]
    for i in range(h["layers"]):
        p = f"blk.{i}."
        out += [
            (p + "attn_norm.weight", (hid,), T.F32, "ones"),
            (p + "attn_q.weight", (q_width, hid), qtype, "q"),
            (p + "attn_k.weight", (kv_width, hid), qtype, "q"),
            (p + "attn_v.weight", (kv_width, hid), qtype, "q"),
            (p + "attn_output.weight", (hid, q_width), qtype, "q"),
            (p + "attn_q_norm.weight", (h["head_dim"],), T.F32, "ones"),
            (p + "attn_k_norm.weight", (h["head_dim"],), T.F32, "ones"),
            (p + "ffn_norm.weight", (hid,), T.F32, "ones"),
            (p + "ffn_gate_inp.weight", (e, hid), T.F32, "router"),
            (p + "ffn_gate_exps.weight", (e, f, hid), qtype, "q"),
            (p + "ffn_up_exps.weight", (e, f, hid), qtype, "q"),
            (p + "ffn_down_exps.weight", (e, hid, f), qtype, "q"),
        ]
    out += [("output_norm.weight", (hid,), T.F32, "ones"), ("output.weight", (h["vocab"], hid), qtype, "q")]
    return out


def write_header(path, h, tensors):
    """Writes the GGUF header (metadata, byte-level SPM vocabulary padded to the model's size, tensor infos)
    and returns [(offset in file, size)] of each tensor's data."""
    w = GGUFWriter(path, "qwen3moe")
    w.add_name("qwen3moe-30b-a3b-layout-random")
    w.add_block_count(h["layers"])
    w.add_context_length(h["context"])
    w.add_embedding_length(h["hidden"])
    w.add_feed_forward_length(h["expert_ffn"] * h["used"])
    w.add_head_count(h["heads"])
    w.add_head_count_kv(h["kv_heads"])
    w.add_key_length(h["head_dim"])
    w.add_value_length(h["head_dim"])
    w.add_rope_dimension_count(h["head_dim"])
    w.add_rope_freq_base(1e6)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_expert_count(h["experts"])
    w.add_expert_used_count(h["used"])
    w.add_expert_feed_forward_length(h["expert_ffn"])
    w.add_file_type(7 if tensors[0][2] == T.Q8_0 else 2)  # LLAMA_FTYPE_MOSTLY_Q8_0 / _Q4_0
    w.add_tokenizer_model("llama")
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)] + ["\u2581".encode()]
    types_ = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256 + [TokenType.NORMAL]
    pad = h["vocab"] - len(tokens)
    tokens += [f"<pad{i}>".encode() for i in range(pad)]
    types_ += [TokenType.USER_DEFINED] * pad
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * len(tokens))
    w.add_token_types(types_)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    spans, data = [], 0
    for name, shape, qtype, _ in tensors:
        size = nbytes(shape, qtype)
        w.add_tensor_info(name, shape, np.dtype(np.float32), size, raw_dtype=qtype)
        spans.append((data, size))
        data += (size + ALIGN - 1) // ALIGN * ALIGN
    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    w.close()
    start = (os.path.getsize(path) + ALIGN - 1) // ALIGN * ALIGN
    os.truncate(path, start + data)
    return [(start + off, size) for off, size in spans]


POOL_BLOCKS = 1 << 21  # ~68 MiB of Q8_0 blocks per worker
_pools = {}


def _pool(qtype, seed):
    if qtype not in _pools:
        block, size = GGML_QUANT_SIZES[qtype]
        rng = np.random.default_rng(seed)
        blocks = rng.integers(0, 256, (POOL_BLOCKS, size), dtype=np.uint8)
        blocks[:, 0:2] = np.frombuffer(np.float16(BLOCK_SCALE[qtype]).tobytes(), np.uint8)
        _pools[qtype] = blocks.reshape(-1)
    return _pools[qtype]


def _fill(job):
    path, offset, size, qtype, fill, shape, seed = job
    fd = os.open(path, os.O_WRONLY)
    try:
        if fill == "q":
            pool = _pool(qtype, os.getpid())
            block = GGML_QUANT_SIZES[qtype][1]
            done = 0
            start = (seed * 7919 % POOL_BLOCKS) * block  # rotate, so that tensors do not start alike
            while done < size:
                n = min(size - done, len(pool) - start)
                os.pwrite(fd, memoryview(pool[start:start + n]), offset + done)
                done += n
                start = 0
        else:
            if fill == "ones":
                a = np.ones(shape, np.float32)
            else:
                a = (np.random.default_rng(seed).standard_normal(shape) * 0.02).astype(np.float32)
            os.pwrite(fd, a.tobytes(), offset)
    finally:
        os.close(fd)
    return size


def cmd_model(a):
    h = dict(SCALES[a.scale])
    if a.layers:
        h["layers"] = a.layers
    tensors = tensors_of(h, QTYPES[a.type])
    tmp = a.out + ".part"
    t0 = time.time()
    spans = write_header(tmp, h, tensors)
    total = os.path.getsize(tmp)
    if not a.sparse:
        jobs, chunk = [], 256 * MiB
        for i, ((name, shape, qtype, fill), (off, size)) in enumerate(zip(tensors, spans)):
            if fill == "q":
                step = chunk // GGML_QUANT_SIZES[qtype][1] * GGML_QUANT_SIZES[qtype][1]
                for j, o in enumerate(range(0, size, step)):
                    jobs.append((tmp, off + o, min(step, size - o), qtype, fill, shape, i * 1000 + j))
            else:
                jobs.append((tmp, off, size, qtype, fill, shape, i))
        jobs.sort(key=lambda j: -j[2])
        with mp.Pool(a.workers) as pool:
            for _ in pool.imap_unordered(_fill, jobs, chunksize=1):
                pass
    os.replace(tmp, a.out)
    print(f"wrote {a.out}: qwen3moe layout ({a.scale}), {a.type}, {len(tensors)} tensors, {total / GiB:.2f} GiB"
          f"{' (sparse: header only)' if a.sparse else ''} in {time.time() - t0:.1f} s")


# ---------------------------------------------------------------- run

def sh(cmd, log, timeout=900, env=None):
    """Runs cmd, writes its command line, stdout and stderr to log; returns (rc, stdout, stderr)."""
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout, stdin=subprocess.DEVNULL, env=env)
        rc, out, err = r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:  # recorded as a failure of that run; the others go on
        def text(b):
            return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
        rc, out, err = 124, text(e.stdout), text(e.stderr) + f"\n[timed out after {timeout} s]\n"
    with open(log, "w") as f:
        f.write("$ " + shlex.join(cmd) + f"\n# rc={rc} wall={time.time() - t0:.1f}s\n")
        f.write("---- stdout\n" + out + "\n---- stderr\n" + err)
    return rc, out, err


class Holder:
    """A PyTorch process holding all but `budget` bytes of GPU 0's free memory until closed."""

    CODE = r"""
import sys, torch
budget = int(sys.argv[1])
torch.cuda.init()
free, total = torch.cuda.mem_get_info()
hold = free - budget
if hold < 0:
    print(f"ERROR free {free} < budget {budget}", flush=True); sys.exit(1)
x = torch.empty(hold, dtype=torch.uint8, device="cuda") if hold else None
free2, _ = torch.cuda.mem_get_info()
print(f"READY total={total} free_before={free} held={hold} free_after={free2}", flush=True)
sys.stdin.read()
"""

    def __init__(self, budget):
        self.p = subprocess.Popen([sys.executable, "-c", self.CODE, str(budget)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        self.line = self.p.stdout.readline().strip()
        if not self.line.startswith("READY"):
            self.close()
            raise SystemExit(f"the memory holder failed: {self.line!r}")

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            self.p.wait(timeout=60)


def free_seen_by_llama(bin_dir, log):
    rc, out, err = sh([os.path.join(bin_dir, "llama-completion"), "--list-devices"], log, timeout=120)
    m = re.search(r"(CUDA0): (.*) \((\d+) MiB, (\d+) MiB free\)", out + err)
    if not m:
        return None, None
    return m.group(2), int(m.group(4)) * MiB


BUF = re.compile(r"(\S+) (model|KV|compute|RS) buffer size\s*=\s*([0-9.]+) MiB")
BREAKDOWN = re.compile(r"\|\s+- (CUDA0) \([^)]*\)\s*\|\s*(\d+) =\s*(\d+) \+ \(\s*(\d+) =\s*(\d+) \+\s*(\d+) \+\s*(\d+)\)\s*\+\s*(-?\d+)")
HOST = re.compile(r"\|\s+- Host\s*\|\s*(\d+) =\s*(\d+) \+\s*(\d+) \+\s*(\d+)")


def allocations(err):
    """What llama.cpp said it allocated: its buffer sizes while loading (MiB, per buffer name and kind) and
    the memory breakdown at exit (MiB)."""
    # The last of each: --fit prints the breakdown it projects before loading, llama.cpp the real one at exit.
    bufs = {f"{name} {kind}": float(mib) for name, kind, mib in BUF.findall(err)}
    out = {"buffers_mib": bufs}
    found = BREAKDOWN.findall(err)
    if found:
        out["cuda0_breakdown_mib"] = dict(zip(["total", "free", "self", "model", "context", "compute", "unaccounted"],
                                              map(int, found[-1][1:])))
    found = HOST.findall(err)
    if found:
        out["host_breakdown_mib"] = dict(zip(["self", "model", "context", "compute"], map(int, found[-1])))
    # What --fit decided, as it says (-lv 4).
    out["fit_log"] = [line.split(" I ", 1)[-1] for line in err.splitlines() if "common_params_fit_impl:" in line or "common_fit_params:" in line]
    out["oom"] = bool(re.search(r"out of memory|failed to allocate|cudaMalloc failed", err, re.I))
    return out


def cuda0_mib(alloc):
    """CUDA0's model + KV + compute as logged while loading (the breakdown's `self`, to 0.01 MiB)."""
    b = alloc["buffers_mib"]
    parts = [v for k, v in b.items() if k.startswith("CUDA0 ")]
    return sum(parts) if parts else None


def host_model_mib(alloc):
    """The model's bytes llama.cpp left in host memory (CPU, CPU_Mapped, CUDA_Host, CPU_REPACK ... buffers)."""
    b = alloc["buffers_mib"]
    return sum(v for k, v in b.items() if k.endswith(" model") and not k.startswith("CUDA0 "))


def bench_args_from_plan(emitted):
    """llama-bench's spelling of the planner's arguments: -ot entries joined by ';' (its ',' separates
    variants); -c and -np dropped (llama-bench sizes the context to the test, one sequence)."""
    a = shlex.split(emitted)
    out, i = [], 0
    while i < len(a):
        k = a[i]
        v = a[i + 1] if i + 1 < len(a) else None
        if k in ("-ngl", "-ctk", "-ctv", "--cache-type-k", "--cache-type-v", "-ngl", "--n-gpu-layers"):
            out += [k, v]
        elif k in ("-ot", "--override-tensor"):
            out += ["-ot", v.replace(",", ";")]
        elif k in ("-fa", "--flash-attn"):
            out += ["-fa", {"on": "1", "off": "0", "auto": "-1"}.get(v, v)]
        elif k in ("-c", "--ctx-size", "-np", "--parallel"):
            pass
        elif k in ("-sm", "--split-mode", "-ts", "--tensor-split"):
            out += [k, v]
        else:
            raise SystemExit(f"llama-bench has no equivalent for the plan's argument {k}")
        i += 2
    return out


def kv_fa_args(emitted):
    """The plan's KV cache types and flash-attention setting, for the fit run as well."""
    a = shlex.split(emitted)
    out = []
    for i, k in enumerate(a[:-1]):
        if k in ("-ctk", "-ctv", "-fa"):
            out += [k, a[i + 1]]
    return out


def plan_command(base, model, devices, ctx, plan_yaml, kv_precision=None):
    """greyctl plan's command line for the run; kv_precision None leaves greyctl's default (auto). The plan
    is run by llama.cpp, so its KV cache is sized as llama.cpp stores it (q8_0/q4_0, the context padded
    to 256): with only --output greyctl would size it for libgrey's larger formats."""
    kv = ["--kv-precision", kv_precision] if kv_precision else []
    return base + ["--workload", "llm-inference", "--model", model, "--devices", devices, "--context", str(ctx), "--batch", "1"] + kv + [
        "--kv-runtime", "llama-cpp", "--output", plan_yaml, "--force"]


def cmd_run(a):
    steps = [x for x in a.steps.split(",") if x]
    if not steps or set(steps) - {"decode", "pp"}:
        raise SystemExit(f"--steps {a.steps!r}: a list of decode and pp")
    if "pp" in steps and a.pp < 1:
        raise SystemExit(f"--pp {a.pp}: the prompt needs a token at least (32 or more for llama.cpp's op offload)")
    os.makedirs(a.out, exist_ok=True)
    logs = os.path.join(a.out, "logs")
    os.makedirs(logs, exist_ok=True)
    completion = os.path.join(a.bin, "llama-completion")
    bench = os.path.join(a.bin, "llama-bench")
    budget = int(a.budget_gib * GiB)
    ctx = a.n_gen + a.depth
    threads = ["-t", str(a.threads)] if a.threads else []
    res = {"budget_bytes": budget, "model": a.model, "model_bytes": os.path.getsize(a.model), "n_gen": a.n_gen,
           "depth": a.depth, "context": ctx, "kv_precision_asked": a.kv_precision or "auto (greyctl's default)", "reps": a.reps,
           "rounds": a.rounds, "steps": steps, "pp_tokens": a.pp,
           "fit": {"bench_samples_tps": [], "bench_rc": []}, "plan": {"bench_samples_tps": [], "bench_rc": []}}
    holder = None if a.no_hold or a.cpu_only else Holder(budget)
    try:
        if holder:
            res["holder"] = holder.line
            print("memory holder:", holder.line, flush=True)
        desc, free = free_seen_by_llama(a.bin, os.path.join(logs, "list_devices.log"))
        if free is None and not a.cpu_only:
            raise SystemExit("llama.cpp lists no CUDA0 device (see logs/list_devices.log)")
        res["device"], res["free_seen_by_llama_bytes"] = desc or "CPU only", free or 0
        if free is not None:
            print(f"{desc}: llama.cpp sees {free / GiB:.2f} GiB free (budget {a.budget_gib} GiB)", flush=True)

        # The plan for exactly what llama.cpp sees free; the host as /proc/meminfo says.
        avail = int(re.search(r"MemAvailable:\s+(\d+) kB", open("/proc/meminfo").read()).group(1)) * 1024
        devices = os.path.join(a.out, "devices.yaml")
        with open(devices, "w") as f:
            f.write("version: 1\ndevices:\n")
            if free is not None:
                f.write(f"  - {{name: CUDA0, type: gpu, memory_bytes: {free}, bandwidth_gbps: {a.gpu_bandwidth}}}\n")
            f.write(f"  - {{name: CPU, type: cpu, memory_bytes: {avail}, bandwidth_gbps: {a.host_bandwidth}}}\n")
        plan_yaml = os.path.join(a.out, "plan.yaml")
        base = [a.greyctl, "--no-env", "plan"]
        rc, out, err = sh(plan_command(base, a.model, devices, ctx, plan_yaml, a.kv_precision), os.path.join(logs, "plan.log"))
        if rc != 0:
            raise SystemExit(f"greyctl plan failed: {err.strip()}")
        rc, emitted, err = sh(base + ["--plan", plan_yaml, "--emit", "llama-cpp"], os.path.join(logs, "plan_emit.log"))
        if rc != 0:
            raise SystemExit(f"greyctl plan --emit llama-cpp failed: {err.strip()}")
        emitted = emitted.strip()
        plan = json.loads(sh(base + ["--plan", plan_yaml, "--json"], os.path.join(logs, "plan_json.log"))[1])
        cuda0 = next(d for d in plan["devices"] if d["name"] == ("CPU" if free is None else "CUDA0"))
        res["planner"] = {"args": emitted, "predicted_bytes": cuda0["predicted_bytes"], "weight_bytes": cuda0["weight_bytes"],
                       "kv_bytes": cuda0["kv_bytes"], "other_bytes": cuda0["other_bytes"], "budget_bytes": cuda0["budget_bytes"],
                       "host_weight_bytes": sum(d["weight_bytes"] for d in plan["devices"] if d["type"] == "cpu"),
                       "kv_precision": plan["kv"]["precision"], "weights_format": plan["weights"]["format"],
                       "expert_tensors": sum(1 for t in plan["tensors"] if t["role"] == "routed_experts"),
                       "host_expert_tensors": sum(1 for t in plan["tensors"] if t["role"] == "routed_experts" and t["device"] == "CPU")}
        print(f"plan: {cuda0['name']} {cuda0['predicted_bytes'] / MiB:.0f} MiB predicted, host weights "
              f"{res['planner']['host_weight_bytes'] / MiB:.0f} MiB; args: {emitted[:200]}{'...' if len(emitted) > 200 else ''}", flush=True)
        # By default the fit run gets the plan's KV cache types and flash-attention setting, so that only
        # the placement differs; --fit-llama-defaults leaves llama.cpp's own (f16 cache, -fa auto).
        same = [] if a.fit_llama_defaults else kv_fa_args(emitted)
        res["fit_kv_fa_args"] = same
        prompt = ["-p", "Hi", "-n", "8", "-no-cnv", "--ignore-eos", "--temp", "0", "--no-warmup", "-lv", "4", "--perf"]

        configs = {
            "fit": {"completion": ["-c", str(ctx), "-fit", "on", "-fitt", "1024"] + same,
                    "bench": ["-fitt", "1024"] + [x if x not in ("on", "off") else {"on": "1", "off": "0"}[x] for x in same]},
            "plan": {"completion": shlex.split(emitted) + ["-fit", "off"], "bench": bench_args_from_plan(emitted)},
        }
        if "decode" in steps:
            for name, c in configs.items():
                rc, out, err = sh([completion, "-m", a.model] + c["completion"] + prompt + threads,
                                  os.path.join(logs, f"completion_{name}.log"), timeout=a.timeout)
                al = allocations(err)
                al["rc"] = rc
                al["cuda0_logged_mib"] = cuda0_mib(al)
                al["host_model_logged_mib"] = host_model_mib(al)
                m = re.search(r"eval time =\s*([0-9.]+) ms /\s*(\d+) runs.*?([0-9.]+) tokens per second", err)
                al["completion_decode_tps"] = float(m.group(3)) if m else None
                res[name]["alloc"] = al
                print(f"{name}: llama-completion rc={rc} CUDA0 {al['cuda0_logged_mib']} MiB logged, breakdown "
                      f"{al.get('cuda0_breakdown_mib')}, host {al.get('host_breakdown_mib')}, oom={al['oom']}", flush=True)
            for r in range(a.rounds):
                for name, c in (configs.items() if r % 2 == 0 else reversed(list(configs.items()))):
                    rc, out, err = sh([bench, "-m", a.model, "-p", "0", "-n", str(a.n_gen), "-d", str(a.depth), "-r", str(a.reps),
                                       "-o", "json"] + c["bench"] + threads, os.path.join(logs, f"bench_{name}_{r}.log"), timeout=a.timeout)
                    res[name]["bench_rc"].append(rc)
                    res[name]["bench_oom"] = res[name].get("bench_oom", False) or bool(re.search(r"out of memory", err, re.I))
                    try:
                        rows = json.loads(out)
                        res[name]["bench_samples_tps"] += [s for row in rows for s in row["samples_ts"]]
                    except (ValueError, KeyError):
                        pass
                    print(f"{name} round {r}: rc={rc} samples {res[name]['bench_samples_tps'][-a.reps:]}", flush=True)
                    with open(os.path.join(a.out, "results.partial.json"), "w") as f:  # what is there if the run is cut short
                        json.dump(res, f, indent=1)
        if "pp" in steps:
            for name, c in configs.items():
                res[name]["pp"] = prompt_check(bench, a, c["bench"] + threads, os.path.join(logs, f"pp_{name}.log"))
                print(f"{name} pp: {pp_text(res[name]['pp'])}", flush=True)
                with open(os.path.join(a.out, "results.partial.json"), "w") as f:
                    json.dump(res, f, indent=1)
    finally:
        if holder:
            holder.close()
    report(res, a.out)
    ok = all(("alloc" not in res[n] or res[n]["alloc"]["rc"] == 0) and set(res[n]["bench_rc"]) <= {0}
             and ("pp" not in res[n] or res[n]["pp"]["ran"]) for n in ("fit", "plan"))
    return 0 if ok else 1


def prompt_check(bench, a, args, log):
    """One prompt of --pp tokens (llama-bench -p N -n 0, one repetition, verbose for the buffer sizes): its exit
    status, whether it ran out of memory, what it allocated and its tokens/s (one sample, not a benchmark)."""
    rc, out, err = sh([bench, "-m", a.model, "-p", str(a.pp), "-n", "0", "-r", "1", "-v", "-o", "json"] + args, log, timeout=a.timeout)
    al = allocations(err)
    r = {"rc": rc, "oom": al["oom"] or bool(re.search(r"out of memory", out, re.I)), "buffers_mib": al["buffers_mib"],
         "cuda0_logged_mib": cuda0_mib(al), "host_model_logged_mib": host_model_mib(al), "tps": None}
    try:
        rows = [row for row in json.loads(out) if row.get("n_prompt") == a.pp and row.get("n_gen") == 0]
        r["tps"] = rows[0]["avg_ts"] if rows else None
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    r["ran"] = rc == 0 and not r["oom"] and r["tps"] is not None
    return r


def pp_text(r):
    b = r["buffers_mib"]
    text = f"{'loaded and ran' if r['ran'] else 'FAILED'} (rc={r['rc']}, out of memory: {'YES' if r['oom'] else 'no'}), "
    if r["cuda0_logged_mib"]:
        text += (f"CUDA0 {r['cuda0_logged_mib']:.1f} MiB (model {b.get('CUDA0 model', 0):.1f} + KV {b.get('CUDA0 KV', 0):.1f} + "
                 f"compute {b.get('CUDA0 compute', 0):.1f})")
    else:
        text += "no CUDA0 buffers logged"
    return text + (f", {r['tps']:.1f} tok/s (one run)" if r["tps"] is not None else "")


LABELS = (("fit", "llama.cpp --fit on (margin 1024 MiB)"), ("plan", "greyctl plan --emit llama-cpp"))


def report(res, out):
    def med(xs):
        return statistics.median(xs) if xs else float("nan")

    def cuda_text(mib, b):
        return f"{mib:.1f} ({b.get('CUDA0 model', 0):.1f} + {b.get('CUDA0 KV', 0):.1f} + {b.get('CUDA0 compute', 0):.1f})" if mib else "-"

    p = res["planner"]
    lines = [f"Model: {os.path.basename(res['model'])} ({res['model_bytes'] / GiB:.2f} GiB); device: {res.get('device')}; "
             f"GPU free memory limited to {res['budget_bytes'] / GiB:.2f} GiB ({res.get('free_seen_by_llama_bytes', 0) / GiB:.2f} GiB "
             f"as llama.cpp sees it); the plan for context {res['context']}.", ""]
    if "alloc" in res["fit"]:
        lines += [f"Decode: llama-bench -p 0 -n {res['n_gen']} -d {res['depth']}, {res['reps']} repetitions x {res['rounds']} alternating "
                  "invocations.", "",
                  "| placement | decode tok/s (median) | samples | llama-completion tok/s | CUDA0 MiB (model + KV + compute) | "
                  "host model MiB | OOM / failure |", "|---|---|---|---|---|---|---|"]
        for name, label in LABELS:
            r = res[name]
            al = r["alloc"]
            fail = al["oom"] or r.get("bench_oom") or al["rc"] != 0 or any(r["bench_rc"])
            lines.append(f"| {label} | {med(r['bench_samples_tps']):.2f} | {', '.join(f'{s:.2f}' for s in r['bench_samples_tps'])} | "
                         f"{al.get('completion_decode_tps') or '-'} | {cuda_text(al.get('cuda0_logged_mib'), al['buffers_mib'])} | "
                         f"{al.get('host_model_logged_mib', 0):.1f} | {'YES' if fail else 'no'} |")
        decided = [line for line in res["fit"]["alloc"].get("fit_log", []) if " layers" in line and "MiB" in line]
        if decided:
            lines += ["", "--fit decided: " + "; ".join(line.split(":", 1)[-1].strip() for line in decided[-2:])]
    lines.append(f"plan: KV {p['kv_precision']} (asked: {res.get('kv_precision_asked', 'auto')}); fit: "
                 f"{' '.join(res.get('fit_kv_fa_args') or []) or 'llama.cpp defaults'}; "
                 f"{p['host_expert_tensors']} of {p['expert_tensors']} routed-expert tensors in host memory; "
                 f"args {p['args'][:300]}{'...' if len(p['args']) > 300 else ''}")
    if "alloc" in res["fit"]:
        ratio = med(res["plan"]["bench_samples_tps"]) / med(res["fit"]["bench_samples_tps"])
        lines += ["", f"plan / fit decode ratio (medians): {ratio:.3f} (goal >= 1.10)"]
        res["ratio"] = ratio
    if "pp" in res["fit"]:
        lines += ["", f"Prompt processing: llama-bench -p {res['pp_tokens']} -n 0 -r 1 -v, the same arguments as decode (the plan's "
                  "context is the decode one: llama.cpp's KV cache here is for the prompt).", "",
                  "| placement | loaded and ran | out of memory | CUDA0 MiB (model + KV + compute) | host model MiB | tok/s (one run) |",
                  "|---|---|---|---|---|---|"]
        for name, label in LABELS:
            r = res[name]["pp"]
            ran = "yes" if r["ran"] else f"NO (rc {r['rc']})"
            tps = "-" if r["tps"] is None else f"{r['tps']:.1f}"
            lines.append(f"| {label} | {ran} | {'YES' if r['oom'] else 'no'} | {cuda_text(r['cuda0_logged_mib'], r['buffers_mib'])} | "
                         f"{r['host_model_logged_mib']:.1f} | {tps} |")
    for step, alloc in (("decode", res["plan"].get("alloc")), ("pp", res["plan"].get("pp"))):
        logged = alloc.get("cuda0_logged_mib") if alloc else None
        if not logged:
            continue
        err = (p["predicted_bytes"] / MiB - logged) / logged * 100
        lines.append(f"planner's predicted CUDA0 memory {p['predicted_bytes'] / MiB:.1f} MiB (weights {p['weight_bytes'] / MiB:.1f}, "
                     f"KV {p['kv_bytes'] / MiB:.1f}, other {p['other_bytes'] / MiB:.1f}) vs llama.cpp's CUDA0 buffers for the same "
                     f"placement in the {step} run {logged:.1f} MiB "
                     f"({', '.join(f'{k} {v:.1f}' for k, v in sorted(alloc['buffers_mib'].items()) if k.startswith('CUDA0'))}): "
                     f"{err:+.2f}% (goal within 5%)")
        res["prediction_error_pct" if step == "decode" else "pp_prediction_error_pct"] = err
    text = "\n".join(lines)
    print("\n" + text)
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(res, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("model")
    m.add_argument("--out", required=True)
    m.add_argument("--scale", choices=SCALES, default="full")
    m.add_argument("--type", choices=QTYPES, default="q8_0")
    m.add_argument("--sparse", action="store_true")
    m.add_argument("--layers", type=int, default=0, help="fewer blocks than the scale's (a quick check of the full-size tensors)")
    m.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    r = sub.add_parser("run")
    r.add_argument("--bin", required=True, help="folder with llama-completion and llama-bench (CUDA build)")
    r.add_argument("--greyctl", required=True)
    r.add_argument("--model", required=True)
    r.add_argument("--budget-gib", type=float, required=True)
    r.add_argument("--n-gen", type=int, default=128)
    r.add_argument("--depth", type=int, default=0)
    r.add_argument("--reps", type=int, default=3)
    r.add_argument("--rounds", type=int, default=2)
    r.add_argument("--steps", default="decode,pp", help="decode (llama-completion's allocations and the decode rounds), pp (one "
                   "prompt with each placement), or both (default)")
    r.add_argument("--pp", type=int, default=512, help="the pp step's prompt tokens (default 512, llama-bench's micro-batch)")
    r.add_argument("--threads", type=int, default=0, help="llama.cpp threads (default: llama.cpp's own)")
    r.add_argument("--gpu-bandwidth", type=float, default=3350)
    r.add_argument("--host-bandwidth", type=float, default=100)
    r.add_argument("--timeout", type=int, default=300)
    r.add_argument("--no-hold", action="store_true", help="do not limit the GPU's free memory (a test of the script)")
    r.add_argument("--cpu-only", action="store_true", help="a CPU build and no GPU: a test of the script (implies --no-hold)")
    r.add_argument("--kv-precision", choices=("auto", "f16", "int8", "int4"),
                   help="handed to greyctl plan --kv-precision (default: greyctl's, auto); int2 has no llama.cpp cache type")
    r.add_argument("--fit-llama-defaults", action="store_true",
                   help="the fit run keeps llama.cpp's default KV cache and flash attention instead of the plan's")
    r.add_argument("--out", default="fit-h2h-out")
    a = ap.parse_args()
    return cmd_model(a) if a.cmd == "model" else cmd_run(a)


if __name__ == "__main__":
    sys.exit(main() or 0)
