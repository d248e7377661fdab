# check NAME EXPECTED_EXIT PATTERN -- command...: runs the command, then counts a pass when it exits as
# expected and its output (stdout and stderr) matches the extended regular expression PATTERN (empty:
# any output). Sourced by the CLI test scripts, which start with passed=0 failed=0.
check() {
  local name=$1 expected=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" -ne "$expected" ]; then
    echo "FAIL $name: exit $rc, expected $expected"; echo "$out" | head -20; failed=$((failed + 1)); return
  fi
  if [ -n "$pattern" ] && ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL $name: output does not match /$pattern/"; echo "$out" | head -20; failed=$((failed + 1)); return
  fi
  echo "ok   $name"; passed=$((passed + 1))
}
