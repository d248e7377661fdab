#!/usr/bin/env bash
# greyctl end to end: exit codes, JSON shape, error messages. Usage: cli_test.sh GREYCTL TEST_PLUGIN_DIR DATA_DIR
set -uo pipefail
greyctl=$1
plugins=$2
data=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

# shellcheck source=check.sh
source "$(dirname "$0")/check.sh"

export GREY_BACKEND_DIR=  # never let the caller's environment pick plugins for these tests

check version 0 '^greyctl 0\.1\.0 \(libgrey 0\.1\.0, revision ' -- "$greyctl" --version
check no-command 2 'subcommand' -- "$greyctl"
check unknown-flag 2 'unknown-flag|extras' -- "$greyctl" detect --unknown-flag

"$greyctl" detect --json --backend host > "$tmp/detect.json"
check detect-json-valid 0 '' -- python3 - "$tmp/detect.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
devices = doc["devices"]
assert len(devices) == 1, devices
host = devices[0]
assert host["backend"] == "host" and host["type"] == "cpu" and host["index"] == 0
for key in ("name", "memory_total_bytes", "compute_units", "peak_memory_bandwidth_gbps", "pcie_width_max", "power_limit_mw"):
    assert key in host, key
assert isinstance(host["memory_total_bytes"], int) and host["memory_total_bytes"] > 0
assert host["pci_bus_id"] is None and "a host CPU is not a PCIe device" == host["unavailable"]["pci_bus_id"]
assert host["unavailable_states"]["pci_bus_id"] == "not_applicable"
for key, value in host.items():
    if value is None:
        assert key in host["unavailable"], f"{key} is null without a reason"
PY

check detect-table 0 'host +cpu' -- "$greyctl" detect
check detect-debug-explains-every-backend 0 'fake +loaded.*' -- "$greyctl" --backend-dir "$plugins" detect --debug
check detect-debug-wrong-abi 0 'wrongabi +failed' -- "$greyctl" --backend-dir "$plugins" --log-level OFF detect --debug
check detect-debug-json 0 '"outcome": "skipped"' -- "$greyctl" --backend-dir "$plugins" --log-level OFF detect --json --debug
check detect-plugin-devices 0 'Fake GPU 1' -- "$greyctl" --backend-dir "$plugins" detect --backend fake
check detect-missing-backend 4 "backend 'nosuch' is not available" -- "$greyctl" --log-level OFF detect --backend nosuch
check detect-failing-backend 4 "backend 'failinit' is not available: init failed" -- "$greyctl" --backend-dir "$plugins" --log-level OFF detect --backend failinit
check detect-debug-missing-backend-lists-tries 4 "failinit +failed +.*init failed" -- "$greyctl" --backend-dir "$plugins" --log-level OFF detect --debug --backend failinit
# A plugin directory that others may write is never searched, and --debug says why.
mkdir "$tmp/shared" && cp "$plugins/libgrey-backend-fake.so" "$tmp/shared/" && chmod 777 "$tmp/shared"
check detect-debug-refuses-shared-dir 0 "refused +host +$tmp/shared" -- "$greyctl" --backend-dir "$tmp/shared" --log-level OFF detect --debug
check detect-debug-says-why 0 "directory '$tmp/shared' is writable by group and others \(mode 0777\)" -- "$greyctl" --backend-dir "$tmp/shared" --log-level OFF detect --debug
check detect-shared-dir-loads-nothing 4 "not searched, as untrusted: $tmp/shared" -- "$greyctl" --backend-dir "$tmp/shared" --log-level OFF detect --backend fake
check detect-debug-json-plugin-dirs 0 '"state": "refused"' -- "$greyctl" --backend-dir "$tmp/shared" --log-level OFF detect --json --debug
check detect-debug-beside-library 0 'searched +beside_library +.*/lib/grey' -- "$greyctl" --log-level OFF detect --debug
check detect-telemetry 0 'utilization_percent' -- "$greyctl" detect --backend host --telemetry

check config-validate-reference 0 'valid' -- "$greyctl" config validate "$data/reference-config.yaml"
printf 'memory:\n  compression:\n    algorithm: brotli\n' > "$tmp/bad-value.yaml"
check config-validate-bad-value 1 'bad-value.yaml:3: memory.compression.algorithm: expected one of lz4 \| zstd \| none' -- "$greyctl" config validate "$tmp/bad-value.yaml"
printf 'daemon:\n  prot: 80\n' > "$tmp/unknown.yaml"
check config-validate-unknown-key 1 'unknown.yaml:2: daemon.prot: unknown key' -- "$greyctl" config validate "$tmp/unknown.yaml"
printf 'thermal:\n  enabled: "true"\n' > "$tmp/type.yaml"
check config-validate-wrong-type 1 'thermal.enabled: expected a boolean' -- "$greyctl" config validate "$tmp/type.yaml"
check config-validate-missing-file 3 'cannot open config file' -- "$greyctl" config validate "$tmp/none.yaml"
check config-show-aggressive 0 'algorithm: "zstd"' -- "$greyctl" config show --profile aggressive
# Keys nothing acts on yet say so: in what config show writes, and as a note when a file sets one.
check config-show-inert 0 'pool_size_mb: 1024  # accepted, not yet acted on' -- "$greyctl" --no-env config show
check config-show-acted 0 '^  target_temp_c: 75.0$' -- "$greyctl" --no-env config show
printf 'memory:\n  allocation:\n    pool_size_mb: 64\nthermal:\n  target_temp_c: 60\n' > "$tmp/inert.yaml"
check config-validate-inert-note 0 'note: memory.allocation.pool_size_mb is accepted, not yet acted on' -- "$greyctl" --no-env config validate "$tmp/inert.yaml"
check config-show-env 0 'port: 9001' -- env GREY_DAEMON_PORT=9001 "$greyctl" config show
check config-show-no-env 0 'port: 8090' -- env GREY_DAEMON_PORT=9001 "$greyctl" --no-env config show
check config-bad-env 3 'GREY_DAEMON_PORT=x' -- env GREY_DAEMON_PORT=x "$greyctl" config show
# The repository's default configuration file is what `config init` writes for the balanced profile.
check config-init-stdout 0 '^# libgrey configuration: the aggressive profile' -- "$greyctl" --no-env config init --profile aggressive -o -
check config-init-writes 0 'the balanced profile' -- "$greyctl" --no-env config init -o "$tmp/init.yaml"
check config-init-is-shipped-file 0 '' -- cmp "$tmp/init.yaml" "$data/../../config/grey.yaml"
check config-init-shipped-valid 0 'valid' -- "$greyctl" config validate "$data/../../config/grey.yaml"
check config-init-no-overwrite 3 'already exists \(give --force' -- "$greyctl" config init -o "$tmp/init.yaml"
check config-init-force 0 'the conservative profile' -- "$greyctl" config init --profile conservative --force -o "$tmp/init.yaml"
check config-init-force-wrote 0 'scan_interval_ms: 1000' -- cat "$tmp/init.yaml"
check config-bad-profile 2 'conservative' -- "$greyctl" --profile wild config show

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
