#!/usr/bin/env python3
"""llama.cpp loads a model with the arguments `greyctl plan --emit llama-cpp` prints.

    llama_cpp_load_test.py GREYCTL

Needs a llama.cpp build: the program named by $LLAMA_CPP_CLI, else `llama-completion` or `llama-cli` on
PATH (bench/build-llama-cpp.sh builds llama-completion). Without one the test is skipped (exit 77) and
says so. A CPU build gets a plan for a CPU-only devices file; with
$LLAMA_CPP_GPU_MEMORY_GIB set (a CUDA build), the plan is for one GPU named CUDA0 with that much memory (a small value,
such as 0.004, sends some experts to the host).
"""
import os
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
