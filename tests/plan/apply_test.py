#!/usr/bin/env python3
"""greyctl apply and rollback on a temporary directory: a dry run changes nothing; --confirm takes a
snapshot, writes the governor's thresholds into the configuration and the model quantized as planned,
and records an audit record; rollback --to restores the snapshot (and is refused past
safety.rollback_window_s); every apply and rollback is a record of the signed audit log.

Usage: apply_test.py GREYCTL
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_layouts as ml  # noqa: E402
from gguf import GGMLQuantizationType as T  # noqa: E402
from gguf import GGUFReader  # noqa: E402

GREYCTL = sys.argv[1]
failures = []


def check(name, condition, detail=""):
    print(("ok   " if condition else "FAIL ") + name + ("" if condition else f": {detail}"))
    if not condition:
        failures.append(name)


def run(*args, ok=True):
    r = subprocess.run([GREYCTL, "--no-env", *args], capture_output=True, text=True)
    if ok != (r.returncode == 0):
        raise AssertionError(f"greyctl {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def main():
    tmp = tempfile.mkdtemp(prefix="grey-apply-")
    model = os.path.join(tmp, "tiny-moe.gguf")
    ml.tiny_moe(model)
    devices = os.path.join(tmp, "devices.yaml")
    # Too small for the model as stored: the plan quantizes it to q8_0. The GPU's
    # slowdown at 80 degrees lowers the governor's thresholds to 70 and 77.
    ml.devices_file(devices, [("CUDA0", "gpu", 0.007, 1000), ("CPU", "cpu", 0.002, 50)],
                    extra="    safety_margin: 0\n    thermal_slowdown_c: 80\n")
    plan = os.path.join(tmp, "plan.yaml")
    run("plan", "--model", model, "--devices", devices, "--context", "256", "--batch", "1", "-o", plan)
    p = json.loads(run("plan", "--plan", plan, "--json").stdout)
    check("the plan quantizes", p["weights"]["format"] == "q8_0", p["weights"])
    key = os.path.join(tmp, "audit.key")
    run("audit", "keygen", "--out", key)
    log = os.path.join(tmp, "audit.log")
    state = os.path.join(tmp, "state")
    config = os.path.join(tmp, "grey.yaml")
    model_out = os.path.join(tmp, "tiny-moe.q8_0.gguf")
    common = ["--state-dir", state, "--audit-log", log, "--audit-key", key + ".writer"]

    r = run("--config", config, "apply", "--plan", plan, *common)
    check("dry run: says what it would change", "would change " + config in r.stdout and "would change " + model_out in r.stdout
          and "pass --confirm" in r.stdout, r.stdout)
    check("dry run: changes nothing", not os.path.exists(config) and not os.path.exists(model_out) and not os.path.exists(state)
          and not os.path.exists(log), os.listdir(tmp))

    r = run("--config", config, "apply", "--plan", plan, "--confirm", *common)
    check("confirm: snapshot 1", "snapshot 1" in r.stdout, r.stdout)
    text = open(config).read()
    check("confirm: thresholds in the configuration", "target_temp_c: 70" in text and "max_temp_c: 77" in text, text)
    reader = GGUFReader(model_out)
    types = {t.name: t.tensor_type for t in reader.tensors}
    check("confirm: the model quantized as planned", types["blk.0.ffn_up_exps.weight"] == T.Q8_0 and types["blk.0.attn_norm.weight"] == T.F32
          and all(types[t["name"]] == (T.Q8_0 if t["format"] == "q8_0" else T.F32) for t in p["tensors"]), types)
    run("audit", "verify", "--log", log, "--key", key)
    records = run("audit", "show", "--log", log).stdout
    check("confirm: an audit record", "plan.apply" in records and "thermal.target_temp_c" in records, records[-500:])

    r = run("rollback", "--list", *common)
    check("rollback --list", r.stdout.startswith("1  ") and "restorable" in r.stdout, r.stdout)
    run("rollback", "--to", "1", *common)
    check("rollback: the files that did not exist are gone", not os.path.exists(config) and not os.path.exists(model_out), os.listdir(tmp))
    records = run("audit", "show", "--log", log).stdout
    check("rollback: an audit record", "plan.rollback" in records, records[-500:])
    run("audit", "verify", "--log", log, "--key", key)

    # A configuration that exists is restored byte for byte.
    original = "# mine\nthermal:\n  target_temp_c: 72\nsafety:\n  rollback_window_s: 600\n"
    with open(config, "w") as f:
        f.write(original)
    r = run("--config", config, "apply", "--plan", plan, "--confirm", *common)
    check("second apply: snapshot 2", "snapshot 2" in r.stdout, r.stdout)
    check("second apply: thresholds changed", "target_temp_c: 70" in open(config).read())
    run("rollback", "--to", "2", *common)
    check("rollback: the configuration as it was", open(config).read() == original)
    r = run("rollback", "--to", "9", *common, ok=False)
    check("rollback: unknown snapshot", "no snapshot '9'" in r.stderr, r.stderr)

    # Past the window nothing is restored.
    with open(config, "w") as f:
        f.write("safety:\n  rollback_window_s: 0\n")
    run("--config", config, "apply", "--plan", plan, "--confirm", *common)
    time.sleep(1.1)
    r = run("--config", config, "rollback", "--to", "3", *common, ok=False)
    check("rollback: refused past safety.rollback_window_s", "beyond safety.rollback_window_s (0 s); nothing restored" in r.stderr, r.stderr)
    check("rollback: nothing restored", "target_temp_c: 70" in open(config).read())

    # Consent: without --confirm, nothing changes while consent is required, even when dry runs are not the default.
    os.remove(model_out)
    with open(config, "w") as f:
        f.write("safety:\n  dry_run_default: false\n  require_explicit_consent: true\n")
    r = run("--config", config, "apply", "--plan", plan, *common)
    check("consent required: a dry run", "would change" in r.stdout and not os.path.exists(model_out), r.stdout)
    with open(config, "w") as f:
        f.write("safety:\n  dry_run_default: false\n  require_explicit_consent: false\n  backup_before_enforce: false\n")
    r = run("--config", config, "apply", "--plan", plan, *common)
    check("no consent needed, no backup: applied without a snapshot", os.path.exists(model_out) and "no snapshot" in r.stdout, r.stdout)
    r = run("rollback", "--list", *common)
    check("no new snapshot", "4  " not in r.stdout, r.stdout)
    records = run("audit", "show", "--log", log).stdout
    check("every apply and rollback recorded", records.count("plan.apply") == 4 and records.count("plan.rollback") == 2, records[-800:])

    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
