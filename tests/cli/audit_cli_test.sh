#!/usr/bin/env bash
# greyctl audit and proof end to end: every tamper cause is reported by `greyctl audit verify` with exit
# status 1 and its cause name; an intact log exits 0. Usage: audit_cli_test.sh PATH/TO/greyctl
set -euo pipefail
greyctl=$1
data=$(cd "$(dirname "$0")/../data" && pwd)
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
  # The report does not depend on how many threads hash the log.
  local threads other other_status
  for threads in 1 3; do
    other_status=0
    other=$("$greyctl" audit verify --log "$log" --key "$verify_key" --json --threads "$threads" "$@") || other_status=$?
    if [ "$other" != "$out" ] || [ "$other_status" != "$status" ]; then
      echo "FAIL: $log $*: --threads $threads gave another report (exit $other_status):"
      printf '%s\n' "$other"
      failures=$((failures + 1))
    fi
  done
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
status=0; "$greyctl" audit verify --log a.log --key k --threads 257 >/dev/null 2>&1 || status=$?
[ "$status" = 2 ] || { echo "FAIL: --threads 257 exited $status, not 2 (a usage error)"; failures=$((failures + 1)); }

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
# Format version 1: MAC over the record without it; version 2: MAC over its leaf hash H(0x00 || body).
version = struct.unpack_from("<I", header, 8)[0]
message = body if version == 1 else hashlib.sha256(b"\0" + body).digest()
records[index] = body + hmac.new(record_key, message, hashlib.sha256).digest()
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

# Merkle proofs: built from the log, checked with only the proof, the checkpoint(s) and the public key.
expect_status() {  # expect_status NAME WANT-EXIT PATTERN command...: exit status and output (stdout+stderr)
  local name=$1 want=$2 pattern=$3 out status=0
  shift 3
  out=$("$@" 2>&1) || status=$?
  if [ "$status" = "$want" ] && grep -qE -- "$pattern" <<<"$out"; then
    echo "ok: $name"
  else
    echo "FAIL: $name: exit $status (want $want), output:"; printf '%s\n' "$out"; failures=$((failures + 1))
  fi
}
"$greyctl" audit keygen --out m --ed25519 >/dev/null
for i in $(seq 0 4); do "$greyctl" audit append --log m.log --key m.writer --type t --payload "{\"i\":$i}" >/dev/null; done
"$greyctl" audit checkpoint --log m.log --key m.writer --out m5 --signing-key m.ed25519 >/dev/null
for i in $(seq 5 12); do "$greyctl" audit append --log m.log --key m.writer --type t --payload "{\"i\":$i}" >/dev/null; done
"$greyctl" audit checkpoint --log m.log --key m.writer --out m13 --signing-key m.ed25519 >/dev/null
"$greyctl" audit checkpoint --log m.log --key m.writer --out m13-unsigned >/dev/null
for record in 0 2 4; do
  expect_status "prove record $record of 5" 0 "inclusion proof of record $record in the tree of size 5" \
    "$greyctl" audit prove --log m.log --record "$record" --checkpoint m5 --out "incl$record"
  expect_status "verify-proof record $record" 0 "^valid: .*tree size 5.*Ed25519 signature checked" \
    "$greyctl" audit verify-proof --proof "incl$record" --checkpoint m5 --public-key m.ed25519.pub
done
expect_status "prove with the verifier key, to standard output" 0 "^grey-audit-inclusion v2" \
  "$greyctl" audit prove --log m.log --key m --record 12 --checkpoint m13
expect_status "wrong record index" 3 "record index 5 is not below the tree size 5" \
  "$greyctl" audit prove --log m.log --record 5 --checkpoint m5 --out bad
[ ! -e bad ] && echo "ok: no proof file left behind" || { echo "FAIL: a refused proof was written"; failures=$((failures + 1)); }
expect_status "inclusion needs --record" 2 "needs --record N and --checkpoint" \
  "$greyctl" audit prove --log m.log --checkpoint m5
expect_status "proof checked against another checkpoint of the same log" 1 "^INVALID: .*tree size 5 but the checkpoint has size 13" \
  "$greyctl" audit verify-proof --proof incl2 --checkpoint m13
expect_status "proof checked against another log's checkpoint" 1 "^INVALID: .*different logs" \
  "$greyctl" audit verify-proof --proof incl2 --checkpoint c10
expect_status "proof built against another log's checkpoint" 1 "do not match the checkpoint" \
  "$greyctl" audit prove --log m.log --record 2 --checkpoint c10
python3 - incl2 tampered-path incl2 tampered-leaf <<'PY'
import sys
for src, dst, field in ((sys.argv[1], sys.argv[2], "path "), (sys.argv[3], sys.argv[4], "leaf ")):
    lines = open(src).read().split("\n")
    i = next(k for k, l in enumerate(lines) if l.startswith(field))
    digit = lines[i][-1]
    lines[i] = lines[i][:-1] + ("0" if digit != "0" else "1")
    open(dst, "w").write("\n".join(lines))
PY
expect_status "tampered proof path" 1 "^INVALID: the inclusion proof does not lead to the checkpoint's root" \
  "$greyctl" audit verify-proof --proof tampered-path --checkpoint m5
expect_status "tampered proof leaf" 1 "^INVALID: the inclusion proof does not lead to the checkpoint's root" \
  "$greyctl" audit verify-proof --proof tampered-leaf --checkpoint m5
printf 'grey-audit-inclusion v2\nlog zz\n' > garbage.proof
expect_status "malformed proof file" 3 "malformed proof" \
  "$greyctl" audit verify-proof --proof garbage.proof --checkpoint m5
expect_status "unsigned checkpoint with a public key" 1 "^INVALID: .*no valid Ed25519 signature" \
  "$greyctl" audit verify-proof --proof incl2 --checkpoint m13-unsigned --public-key m.ed25519.pub
mutate m.log m-edited.log 'records[1][40] ^= 1'
expect_status "proof from an edited log" 1 "do not match the checkpoint" \
  "$greyctl" audit prove --log m-edited.log --record 1 --checkpoint m5
expect_status "proof from an edited log, verified first" 1 "does not verify against the checkpoint\(s\): modified" \
  "$greyctl" audit prove --log m-edited.log --key m --record 1 --checkpoint m5

expect_status "prove consistency 5 -> 13" 0 "consistency proof from size 5 to 13 written to cons" \
  "$greyctl" audit prove --log m.log --consistency --old m5 --new m13 --out cons
expect_status "verify-proof consistency" 0 "^valid: .*tree size 13" \
  "$greyctl" audit verify-proof --proof cons --old m5 --checkpoint m13 --public-key m.ed25519.pub
expect_status "consistency proof without the old checkpoint" 3 "needs the old checkpoint" \
  "$greyctl" audit verify-proof --proof cons --checkpoint m13
expect_status "consistency with the checkpoints swapped" 3 "old size 13 exceeds the new size 5" \
  "$greyctl" audit prove --log m.log --consistency --old m13 --new m5
python3 - cons tampered-cons <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
i = max(k for k, l in enumerate(lines) if l.startswith("path "))
lines[i] = lines[i][:-1] + ("0" if lines[i][-1] != "0" else "1")
open(sys.argv[2], "w").write("\n".join(lines))
PY
expect_status "tampered consistency proof" 1 "^INVALID: the two checkpoints are not consistent" \
  "$greyctl" audit verify-proof --proof tampered-cons --old m5 --checkpoint m13
# A fork: c11-fork (fork.log's history) does not extend a.log's c10 as a.log's records do.
expect_status "inclusion in a forked checkpoint" 1 "do not match the checkpoint" \
  "$greyctl" audit prove --log a.log --record 10 --checkpoint c11-fork
expect_status "consistency with a forked checkpoint" 1 "do not match the checkpoint" \
  "$greyctl" audit prove --log a.log --consistency --old c10 --new c11-fork
expect_status "consistency with a forked checkpoint, verified first" 1 "forked" \
  "$greyctl" audit prove --log a.log --key k --consistency --old c10 --new c11-fork

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
if [ "$status" = 3 ] && grep -q "mode 0644" <<<"$err"; then echo "ok: key readable by others refused"; else echo "FAIL: key permissions: $err"; failures=$((failures + 1)); fi
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

# --- Hostile input (issue 22) ---

# Forward security across crashes: `append --epoch-records 2` killed at random moments, again and
# again; after each kill no file in the writer's directory may hold the key of an epoch older than the
# writer key file's (K(e), R(e) or C(e), raw or hex). The verifier key is kept elsewhere, as it should be.
old_keys() {  # old_keys VERIFIER-KEY WRITER-KEY DIR: prints the files holding an old epoch's key
  python3 - "$@" <<'PY'
import hashlib, hmac, os, sys
fields = lambda path: dict(l.split(" ", 1) for l in open(path).read().splitlines()[1:])
key, current = bytes.fromhex(fields(sys.argv[1])["key"]), int(fields(sys.argv[2])["epoch"])
derive = lambda k, label: hmac.new(k, label, hashlib.sha256).digest()
secrets = []
for e in range(current):
    for s in (key, derive(key, b"grey-audit/v1/record"), derive(key, b"grey-audit/v1/checkpoint")):
        secrets += [(e, s), (e, s.hex().encode())]
    key = derive(key, b"grey-audit/v1/ratchet")
for name in sorted(os.listdir(sys.argv[3])):
    path = os.path.join(sys.argv[3], name)
    if os.path.isfile(path):
        data = open(path, "rb").read()
        hits = [e for e, s in secrets if s in data]
        if hits: print(f"{name} (epoch {hits[0]}; the key file is at {current})")
PY
}
"$greyctl" audit keygen --out kill-k >/dev/null
mkdir kill && mv kill-k.writer kill/writer.key
leaks=""
for i in $(seq 1 40); do
  { timeout -s KILL "$(printf '0.%03d' $((RANDOM % 30 + 5)))" "$greyctl" audit append --log kill/audit.log --key kill/writer.key --epoch-records 2 \
      --type t --payload "{\"i\":$i}"; } >/dev/null 2>&1 || true
  leaks+=$(old_keys kill-k kill/writer.key kill)
done
for i in 1 2 3 4 5; do
  "$greyctl" audit append --log kill/audit.log --key kill/writer.key --epoch-records 2 --type t --payload '{}' >/dev/null
done
leaks+=$(old_keys kill-k kill/writer.key kill)
if [ -z "$leaks" ] && [ "$(ls kill)" = "$(printf 'audit.log\nwriter.key')" ]; then
  echo "ok: no old key left after killing rotating writers ($(grep '^epoch' kill/writer.key))"
else
  echo "FAIL: old keys left behind: $leaks; files: $(ls kill | tr '\n' ' ')"; failures=$((failures + 1))
fi
verify_key=kill-k
expect_cause intact kill/audit.log
verify_key=k

# A forged record at the tail (anyone who can write the log can add one): append refuses, and neither
# the key nor the log moves.
"$greyctl" audit keygen --out f >/dev/null
for i in 1 2; do "$greyctl" audit append --log f.log --key f.writer --type t --payload '{}' >/dev/null; done
forge() {  # forge LOG EPOCH-STEP: appends a record continuing the chain, claiming epoch + STEP, random MAC
  python3 - "$1" "$2" <<'PY'
import hashlib, os, struct, sys
data = open(sys.argv[1], "rb").read()
at = 96
while at < len(data):  # to the last record (the log has some)
    n = struct.unpack_from("<I", data, at)[0]; last = data[at:at + n]; at += n
sequence = struct.unpack_from("<Q", last, 8)[0] + 1
epoch = struct.unpack_from("<I", last, 24)[0] + int(sys.argv[2])
leaf = last if struct.unpack_from("<I", data, 8)[0] == 1 else last[:-32]  # version 2 leaves the MAC out
body = struct.pack("<IIQQIHHI", 36 + 1 + 2 + 64, 0x43455247, sequence, 0, epoch, 1, 0, 2) + b"t{}" + hashlib.sha256(b"\0" + leaf).digest()
open(sys.argv[1], "ab").write(body + os.urandom(32))
PY
}
cp f.writer f.writer.before
forge f.log 1024
cp f.log f.log.forged
expect_status "append after a forged epoch+1024 record" 3 "cannot be verified by this writer: it claims key epoch 1024" \
  "$greyctl" audit append --log f.log --key f.writer --type t --payload '{}'
cmp -s f.writer f.writer.before && cmp -s f.log f.log.forged && echo "ok: key and log untouched" ||
  { echo "FAIL: the forged record moved the key or the log"; failures=$((failures + 1)); }
verify_key=f
expect_cause modified f.log
verify_key=k

# Payloads nested too deeply or repeating a key are refused; a log holding one (written before the
# limit, or by another program with the key) is still shown without a crash.
expect_status "60,000 nested arrays refused" 3 "deeper than 64 levels" \
  "$greyctl" audit append --log f2.log --key f.writer.before --type t --payload "$(python3 -c 'print("[" * 60000 + "]" * 60000)')"
expect_status "a repeated key refused" 3 'repeats the key "\\u0061"' \
  "$greyctl" audit append --log f2.log --key f.writer.before --type t --payload '{"a":1,"\u0061":2}'
"$greyctl" audit keygen --out d >/dev/null
"$greyctl" audit append --log d.log --key d.writer --type t --payload '{}' >/dev/null
python3 - d.log d <<'PY'
import hashlib, hmac, struct, sys
data = open(sys.argv[1], "rb").read()
key = bytes.fromhex(dict(l.split(" ", 1) for l in open(sys.argv[2]).read().splitlines()[1:])["key"])
last = data[96:]
assert struct.unpack_from("<I", data, 8)[0] == 2  # a new log: leaf H(0x00 || record without MAC), MAC over the leaf
payload = b"[" * 100000 + b"]" * 100000
body = struct.pack("<IIQQIHHI", 36 + 1 + len(payload) + 64, 0x43455247, 1, 0, 0, 1, 0, len(payload)) + b"t" + payload + hashlib.sha256(b"\0" + last[:-32]).digest()
leaf = hashlib.sha256(b"\0" + body).digest()
open(sys.argv[1], "ab").write(body + hmac.new(hmac.new(key, b"grey-audit/v1/record", hashlib.sha256).digest(), leaf, hashlib.sha256).digest())
PY
verify_key=d
expect_cause intact d.log
verify_key=k
expect_status "show a log holding a 100,000-deep payload" 0 '^1 +epoch 0 +t +"\[\[\[' "$greyctl" audit show --log d.log

# Paths that are not regular files are refused at once, never waited on.
mkfifo fifo
expect_status "verify a FIFO" 3 "is not a regular file \\(it is a FIFO\\)" timeout 20 "$greyctl" audit verify --log fifo --key k
expect_status "a FIFO as key" 3 "not a regular file" timeout 20 "$greyctl" audit verify --log a.log --key fifo
expect_status "a FIFO as checkpoint" 3 "is a FIFO" timeout 20 "$greyctl" audit verify --log a.log --key k --checkpoint fifo
expect_status "/dev/zero as checkpoint" 3 "is a character device" timeout 20 "$greyctl" audit verify --log a.log --key k --checkpoint /dev/zero
expect_status "a directory as log" 3 "is a directory" timeout 20 "$greyctl" audit verify --log proofs --key k
expect_status "a FIFO as proof" 3 "is a FIFO" timeout 20 "$greyctl" audit verify-proof --proof fifo --checkpoint m5
expect_status "a FIFO as the log to append to" 3 "is a FIFO" timeout 20 "$greyctl" audit append --log fifo --key f.writer.before --type t --payload '{}'
mkfifo proofs/fifo.json
printf '{"created":"x","created":"y"}' > proofs/0000000000000000.json
expect_status "proof list beside a FIFO and a repeated key" 0 "0000000000000000 +\? " timeout 20 "$greyctl" --no-env --config cfg.yaml proof list
expect_status "proof show of a FIFO" 3 "not a regular file" timeout 20 "$greyctl" --no-env --config cfg.yaml proof show fifo
rm proofs/fifo.json proofs/0000000000000000.json

# Checkpoints: the signature covers the hmac line, so an edited one fails with the public key alone,
# and with the verifier key.
python3 - m5 m5-hmac-edited <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
i = next(k for k, l in enumerate(lines) if l.startswith("hmac "))
lines[i] = lines[i][:-1] + ("0" if lines[i][-1] != "0" else "1")
open(sys.argv[2], "w").write("\n".join(lines))
PY
expect_status "edited hmac line, public key only" 1 "^INVALID: .*fails its Ed25519 signature check" \
  "$greyctl" audit verify-proof --proof incl2 --checkpoint m5-hmac-edited --public-key m.ed25519.pub
verify_key=m
expect_cause modified m.log --checkpoint m5-hmac-edited
expect_cause modified m.log --checkpoint m5-hmac-edited --public-key m.ed25519.pub
verify_key=k

# A version 1 log written before format version 2 (tests/data/audit-v1): it still verifies, with its
# checkpoints, proofs and proof artifact; proofs made from it now are the same bytes; appending keeps
# version 1; and a log of a version this greyctl does not know is refused in words.
cp -r "$data/audit-v1" v1
chmod 600 v1/verifier.key v1/writer.key
verify_key=v1/verifier.key
expect_cause intact v1/audit.log --checkpoint v1/c6.checkpoint --checkpoint v1/c10.checkpoint
expect_status "v1 inclusion proof" 0 "^valid: .*tree size 10" "$greyctl" audit verify-proof --proof v1/inclusion-4-of-10.proof --checkpoint v1/c10.checkpoint
expect_status "v1 consistency proof" 0 "^valid: .*tree size 10" \
  "$greyctl" audit verify-proof --proof v1/consistency-6-to-10.proof --old v1/c6.checkpoint --checkpoint v1/c10.checkpoint
"$greyctl" audit prove --log v1/audit.log --key v1/verifier.key --record 4 --checkpoint v1/c10.checkpoint --out v1-again.proof >/dev/null
cmp -s v1-again.proof v1/inclusion-4-of-10.proof && echo "ok: the same v1 proof again" || { echo "FAIL: v1 proof differs"; failures=$((failures + 1)); }
expect_status "v1 proof artifact" 0 "" "$greyctl" proof verify v1/proofs/739659eed08ccbd9.json --log v1/audit.log --key v1/verifier.key
"$greyctl" audit append --log v1/audit.log --key v1/writer.key --type t --payload '{"after":"v2"}' >/dev/null
"$greyctl" audit checkpoint --log v1/audit.log --key v1/writer.key --out v1/c11.checkpoint >/dev/null
expect_cause intact v1/audit.log --checkpoint v1/c10.checkpoint --checkpoint v1/c11.checkpoint
python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(); sys.exit(struct.unpack_from("<I", d, 8)[0] != 1)' v1/audit.log &&
  echo "ok: appending keeps version 1" || { echo "FAIL: the v1 log changed version"; failures=$((failures + 1)); }
expect_status "v1 log: prove after the append" 0 "^grey-audit-inclusion v1" "$greyctl" audit prove --log v1/audit.log --record 10 --checkpoint v1/c11.checkpoint
reseal v1/audit.log v1-resealed.log 2 0
expect_cause modified v1-resealed.log
mutate a.log v3.log 'header = header[:8] + struct.pack("<I", 3) + header[12:]'
verify_key=k
expect_cause malformed v3.log
expect_status "verify a version 3 log" 1 "format version 3, which this libgrey does not read" "$greyctl" audit verify --log v3.log --key k
expect_status "append to a version 3 log" 3 "format version 3, which this libgrey does not read" \
  "$greyctl" audit append --log v3.log --key k.writer.copy --type t --payload '{}'
sed 's/^grey-audit-inclusion v2$/grey-audit-inclusion v3/' incl2 > incl-v3
expect_status "a version 3 proof" 3 "which this libgrey does not read" "$greyctl" audit verify-proof --proof incl-v3 --checkpoint m5

if [ "$failures" -ne 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "all audit CLI checks passed"
