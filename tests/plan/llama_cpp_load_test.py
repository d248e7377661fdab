#!/usr/bin/env python3
"""llama.cpp loads a model with the arguments `greyctl plan --emit llama-cpp` prints, allocates the KV
cache a plan for kv.runtime llama-cpp predicts (f16 and q8_0, one and two sequences, a context llama.cpp
pads to 256), and reserves the compute buffer the plan's activations predict (on a CPU build).

    llama_cpp_load_test.py GREYCTL

Needs a llama.cpp build: the program named by $LLAMA_CPP_CLI, else `llama-completion` or `llama-cli` on
PATH (bench/build-llama-cpp.sh builds llama-completion). Without one the test is skipped (exit 77) and
says so. A CPU build gets a plan for a CPU-only devices file; with
$LLAMA_CPP_GPU_MEMORY_GIB set (a CUDA build), the plan is for one GPU named CUDA0 with that much memory (a small value,
such as 0.004, sends some experts to the host).
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_layouts as ml  # noqa: E402

SKIP = 77


def main():
    greyctl = sys.argv[1]
    cli = os.environ.get("LLAMA_CPP_CLI") or shutil.which("llama-completion") or shutil.which("llama-cli")
    if not cli:
        print("SKIPPED: no llama.cpp build (set LLAMA_CPP_CLI to a llama-completion or llama-cli, or put one on PATH)")
        return SKIP
    tmp = tempfile.mkdtemp(prefix="grey-llama-")
    model = os.path.join(tmp, "tiny-moe.gguf")
    ml.tiny_moe(model)
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
    failed = check_kv_sizes(greyctl, cli, model, devices)
    if not gpu_gib:  # a CUDA build splits its compute buffers between devices
        failed |= check_compute_buffer(greyctl, cli, tmp, model, devices)
    return failed


def check_kv_sizes(greyctl, cli, model, devices):
    """The KV cache a plan for kv.runtime llama-cpp sizes is the one llama.cpp allocates: its log's
    "llama_kv_cache: size = X MiB (N cells, ...)" at a context that is not a multiple of 256 (llama.cpp
    pads it), one and two sequences, f16 and q8_0."""
    failed = 0
    for precision in ("f16", "int8"):
        for batch in ("1", "2"):
            asked = ["--model", model, "--devices", devices, "--context", "1000", "--batch", batch, "--kv-precision", precision]
            plan = json.loads(subprocess.run([greyctl, "--no-env", "plan", "--json", "--kv-runtime", "llama-cpp", *asked], check=True,
                                             capture_output=True, text=True).stdout)
            emitted = subprocess.run([greyctl, "--no-env", "plan", "--emit", "llama-cpp", *asked], check=True, capture_output=True,
                                     text=True).stdout
            command = [cli, "-m", model, *shlex.split(emitted), "-n", "1", "-p", "hello", "-no-cnv", "--no-warmup", "--temp", "0", "-lv", "4"]
            r = subprocess.run(command, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
            logged = re.search(r"llama_kv_cache: size = +([0-9.]+) MiB \( *(\d+) cells", r.stderr + r.stdout)
            want = (f"{plan['kv']['bytes'] / 1048576:.2f}", "1024")
            got = logged.groups() if logged else None
            print(f"{'ok  ' if got == want else 'FAIL'} KV {precision}, batch {batch}, context 1000: plan {want}, llama.cpp {got}")
            failed += got != want
    return 1 if failed else 0


def check_compute_buffer(greyctl, cli, tmp, model, devices):
    """The activations a plan for kv.runtime llama-cpp predicts (the device's other_bytes) against the compute
    buffer llama.cpp reserves ("CPU compute buffer size = X MiB"), from 3% under to 10% over: a vocabulary
    of Qwen's size, where the output stage's logits are the most, at a short and a long context; and the
    byte-level one at a long context, where the attention mask (an f16 a token and cache cell) is."""
    big = os.path.join(tmp, "tiny-moe-151936.gguf")
    ml.tiny_moe(big, vocab=151936)
    failed = 0
    for path, context in ((big, "1000"), (big, "32768"), (model, "32768")):
        asked = ["--model", path, "--devices", devices, "--context", context, "--batch", "1", "--kv-precision", "f16"]
        plan = json.loads(subprocess.run([greyctl, "--no-env", "plan", "--json", "--kv-runtime", "llama-cpp", *asked], check=True,
                                         capture_output=True, text=True).stdout)
        emitted = subprocess.run([greyctl, "--no-env", "plan", "--emit", "llama-cpp", *asked], check=True, capture_output=True,
                                 text=True).stdout
        command = [cli, "-m", path, *shlex.split(emitted), "-n", "1", "-p", "hello", "-no-cnv", "--no-warmup", "--temp", "0", "-lv", "4"]
        r = subprocess.run(command, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        logged = re.search(r"CPU compute buffer size = +([0-9.]+) MiB", r.stderr + r.stdout)
        predicted = plan["devices"][0]["other_bytes"] / 1048576
        got = float(logged.group(1)) if logged else None
        ok = got is not None and 0.97 * got <= predicted <= 1.10 * got
        print(f"{'ok  ' if ok else 'FAIL'} compute buffer, {os.path.basename(path)}, context {context}: plan {predicted:.2f} MiB, "
              f"llama.cpp {got} MiB")
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
