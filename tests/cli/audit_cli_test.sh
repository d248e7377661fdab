#!/usr/bin/env bash
# greyctl audit and proof end to end: every tamper cause is reported by `greyctl audit verify` with exit
# status 1 and its cause name; an intact log exits 0. Usage: audit_cli_test.sh PATH/TO/greyctl
set -euo pipefail
greyctl=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
failures=0
verify_key=k  # the verifier key expect_cause uses

expect_cause() {  # expect_cause CAUSE LOG [verify args...]
  local cause=$1 log=$2
  shift 2
  local out status=0
  out=$("$greyctl" audit verify --log "$log" --key "$verify_key" --json "$@") || status=$?
  local got
  got=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["cause"])')
  local want_status=1
  [ "$cause" = intact ] && want_status=0
  if [ "$got" != "$cause" ] || [ "$status" != "$want_status" ]; then
    echo "FAIL: $log $*: expected $cause (exit $want_status), got $got (exit $status)"
    printf '%s\n' "$out"
    failures=$((failures + 1))
  else
    echo "ok: $log -> $cause"
  fi
}

# (Output is captured before grep: grep -q exiting early would kill greyctl with SIGPIPE.)
# Rewrites a log with python: records are length-prefixed (u32 little-endian) after a 96-byte header.
mutate() {  # mutate IN OUT PYTHON-EXPRESSION-ON-(header, records)
  python3 - "$1" "$2" "$3" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
header, records, at = data[:96], [], 96
while at < len(data):
    n = struct.unpack_from("<I", data, at)[0]
    records.append(bytearray(data[at:at + n])); at += n
exec(sys.argv[3])
open(sys.argv[2], "wb").write(header + b"".join(bytes(r) for r in records))
PY
}

"$greyctl" audit keygen --out k --ed25519 >/dev/null
cp k.writer k.writer.copy
for i in $(seq 0 9); do "$greyctl" audit append --log a.log --key k.writer --type t --payload "{\"i\":$i}" >/dev/null; done
"$greyctl" audit checkpoint --log a.log --key k.writer --out c10 --signing-key k.ed25519 >/dev/null
expect_cause intact a.log
expect_cause intact a.log --checkpoint c10 --public-key k.ed25519.pub
out=$("$greyctl" audit verify --log a.log --key k); grep -q "intact: 10 records" <<<"$out"

mutate a.log modified.log 'records[3][40] ^= 1'
expect_cause modified modified.log
mutate a.log deleted.log 'del records[4]'
expect_cause deleted deleted.log
mutate a.log reordered.log 'records[5], records[6] = records[6], records[5]'
expect_cause reordered reordered.log
mutate a.log inserted.log 'records.insert(7, records[2])'
expect_cause inserted inserted.log
mutate a.log truncated.log 'del records[7:]'
expect_cause intact truncated.log
expect_cause truncated truncated.log --checkpoint c10

# Foreign: a log sealed with another key.
"$greyctl" audit keygen --out other >/dev/null
"$greyctl" audit append --log other.log --key other.writer --type t --payload '{}' >/dev/null
expect_cause foreign_log other.log

# Forked: a copy of the log at 10 records grows differently with a copy of the writer key.
cp a.log fork.log
"$greyctl" audit append --log a.log --key k.writer --type t --payload '{"main":1}' >/dev/null
"$greyctl" audit append --log fork.log --key k.writer.copy --type t --payload '{"fork":1}' >/dev/null
"$greyctl" audit checkpoint --log a.log --key k.writer --out c11-main >/dev/null
"$greyctl" audit checkpoint --log fork.log --key k.writer.copy --out c11-fork >/dev/null
expect_cause forked a.log --checkpoint c11-main --checkpoint c11-fork
expect_cause forked fork.log --checkpoint c11-main

# A record whose epoch field was raised without the key is not accepted.
mutate a.log epoch.log 'records[1][24] = 1'
status=0; "$greyctl" audit verify --log epoch.log --key k >/dev/null || status=$?
[ "$status" = 1 ] && echo "ok: epoch field change detected" || { echo "FAIL: epoch change"; failures=$((failures + 1)); }

# Re-sealed: the key advances every 2 records (epochs 0,0,1,1,2,2,3,3); a thief who stole the writer
# key at epoch 3 rewrites record 1 (epoch 0) and seals it with epoch 3's record key.
"$greyctl" audit keygen --out r >/dev/null
for i in $(seq 0 7); do
  "$greyctl" audit append --log r.log --key r.writer --epoch-records 2 --type t --payload "{\"i\":$i}" >/dev/null
done
epochs=$("$greyctl" audit show --log r.log | awk '{print $3}' | tr '\n' ' ')
[ "$epochs" = "0 0 1 1 2 2 3 3 " ] && echo "ok: --epoch-records 2 advances the key" || { echo "FAIL: epochs $epochs"; failures=$((failures + 1)); }
grep -q "^epoch 3$" r.writer && echo "ok: writer key at epoch 3" || { echo "FAIL: writer key epoch"; failures=$((failures + 1)); }
reseal() {  # reseal IN OUT INDEX CLAIMED-EPOCH: rewrite record INDEX with the writer key of r.writer
  python3 - "$1" "$2" "$3" "$4" r.writer <<'PY'
import hashlib, hmac, struct, sys
src, dst, index, claimed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fields = dict(line.split(" ", 1) for line in open(sys.argv[5]).read().splitlines()[1:])
record_key = hmac.new(bytes.fromhex(fields["key"]), b"grey-audit/v1/record", hashlib.sha256).digest()
data = open(src, "rb").read()
header, records, at = data[:96], [], 96
while at < len(data):
    n = struct.unpack_from("<I", data, at)[0]
    records.append(data[at:at + n]); at += n
rec = records[index]
sequence, time_ns = struct.unpack_from("<QQ", rec, 8)
type_length = struct.unpack_from("<H", rec, 28)[0]
record_type, previous = rec[36:36 + type_length], rec[-64:-32]
payload = b'{"i":999}'
body = struct.pack("<IIQQIHHI", 36 + type_length + len(payload) + 64, 0x43455247, sequence, time_ns, claimed,
                   type_length, 0, len(payload)) + record_type + payload + previous
records[index] = body + hmac.new(record_key, body, hashlib.sha256).digest()
open(dst, "wb").write(header + b"".join(records))
PY
}
verify_key=r
expect_cause intact r.log
reseal r.log resealed-own-epoch.log 1 0
expect_cause resealed resealed-own-epoch.log
reseal r.log resealed-later-epoch.log 1 3
expect_cause resealed resealed-later-epoch.log
status=0; out=$("$greyctl" audit verify --log resealed-own-epoch.log --key r) || status=$?
if [ "$status" = 1 ] && grep -q "TAMPERED: resealed at record 1 " <<<"$out" && grep -q "sealed with the key of epoch 3" <<<"$out"; then
  echo "ok: verify names the re-sealed record and the epoch of its key"
else
  echo "FAIL: re-sealed report: $out"; failures=$((failures + 1))
fi
verify_key=k

# --epoch-seconds: a key older than S seconds is advanced before the next record.
"$greyctl" audit keygen --out s >/dev/null
"$greyctl" audit append --log s.log --key s.writer --epoch-records 0 --epoch-seconds 1 --type t --payload '{}' >/dev/null
sleep 1.2
"$greyctl" audit append --log s.log --key s.writer --epoch-records 0 --epoch-seconds 1 --type t --payload '{}' >/dev/null
epochs=$("$greyctl" audit show --log s.log | awk '{print $3}' | tr '\n' ' ')
[ "$epochs" = "0 1 " ] && echo "ok: --epoch-seconds 1 advances the key" || { echo "FAIL: epochs $epochs"; failures=$((failures + 1)); }

# Malformed: a torn tail; then `append` recovers it and the log verifies again.
python3 -c 'import sys; d=open("a.log","rb").read(); open("torn.log","wb").write(d[:-7])'
expect_cause malformed torn.log
cp k.writer k.writer.torn
"$greyctl" audit append --log torn.log --key k.writer.torn --type t --payload '{}' >/dev/null
expect_cause intact torn.log
out=$("$greyctl" audit show --log torn.log --from 10); grep -q grey.recovery <<<"$out"

# Key permissions.
chmod 644 k.writer
status=0; err=$("$greyctl" audit append --log a.log --key k.writer --type t --payload '{}' 2>&1) || status=$?
if [ "$status" = 1 ] && grep -q "mode 0644" <<<"$err"; then echo "ok: key readable by others refused"; else echo "FAIL: key permissions: $err"; failures=$((failures + 1)); fi
chmod 600 k.writer

# Proof artifacts through detect --proof.
mkdir proofs
printf 'daemon:\n  proof_artifact_dir: %s/proofs\n' "$work" > cfg.yaml
"$greyctl" audit keygen --out p >/dev/null
mv p.writer proofs/audit.key.writer
"$greyctl" --no-env --config cfg.yaml detect --proof >/dev/null 2>&1
artifact=$(ls proofs/*.json)
out=$("$greyctl" --no-env --config cfg.yaml proof list); grep -q "detect --proof" <<<"$out"
out=$("$greyctl" --no-env --config cfg.yaml proof show "$(basename "$artifact" .json)"); grep -q '"revision"' <<<"$out"
"$greyctl" --no-env --config cfg.yaml proof verify "$artifact" --key p >/dev/null && echo "ok: proof verified"
sed -i 's/"detect"/"detect "/' "$artifact"
status=0; "$greyctl" --no-env --config cfg.yaml proof verify "$artifact" --key p >/dev/null || status=$?
[ "$status" = 1 ] && echo "ok: edited artifact refused" || { echo "FAIL: edited artifact accepted"; failures=$((failures + 1)); }

if [ "$failures" -ne 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "all audit CLI checks passed"
