#!/usr/bin/env bash
# greyctl's command tree: every command's --help and `greyctl help COMMAND`, an unknown command named
# with the nearest one suggested (exit 2), and the manual page listing every command.
#   help_test.sh GREYCTL
set -uo pipefail
greyctl=$1
source "$(dirname "$0")/check.sh"
passed=0 failed=0

check "unknown command, suggestion" 2 "unknown command 'detekt'; did you mean 'detect'\?" -- "$greyctl" detekt
check "unknown command after global options" 2 "unknown command 'quantise'; did you mean 'quantize'\?" -- \
  "$greyctl" --log-level INFO --profile balanced quantise --input x
check "unknown subcommand, suggestion" 2 "greyctl audit: unknown command 'verfy'; did you mean 'verify'\?" -- "$greyctl" audit verfy
check "unknown command, nothing near" 2 "unknown command 'xyzzy' \(greyctl --help" -- "$greyctl" xyzzy
check "a value that looks like a command is a value" 3 "" -- "$greyctl" --config detekt detect
check "help" 0 "Subcommands:" -- "$greyctl" help
check "help COMMAND" 0 "Usage: .*quantize" -- "$greyctl" help quantize
check "help COMMAND SUBCOMMAND" 0 "--checkpoint" -- "$greyctl" help audit verify
check "help of an unknown command" 2 "unknown command 'quantise'; did you mean 'quantize'\?" -- "$greyctl" help quantise

# Every command and subcommand answers --help with exit 0, and the manual page has a section for each.
man=$("$greyctl" man | sed 's/\\-/-/g')  # roff writes a hyphen as \-
check "man page" 0 "^\.TH GREYCTL 1" -- "$greyctl" man
# The exit codes, from the one table greyctl keeps: in the manual page and in greyctl --help.
for class in "0 ok" "1 check_failed" "2 usage" "3 bad_input" "4 unavailable" "5 failed"; do
  grep -A1 "^\.B ${class% *}\$" <<<"$man" | grep -q "^${class#* }: " && passed=$((passed + 1)) || { echo "FAIL man page lacks exit code $class"; failed=$((failed + 1)); }
  check "greyctl --help lists exit code $class" 0 "^  ${class% *}  ${class#* }: " -- "$greyctl" --help
done
commands=$("$greyctl" --help | awk '/^Subcommands:/{on=1; next} on && /^[^ ]/ {exit} on && NF {print $1}')
for command in $commands; do
  check "$command --help" 0 "Usage:" -- "$greyctl" "$command" --help
  grep -q "^\.SS $command\$" <<<"$man" && passed=$((passed + 1)) || { echo "FAIL man page lacks $command"; failed=$((failed + 1)); }
  for sub in $("$greyctl" "$command" --help | awk '/^Subcommands:/{on=1; next} on && /^[^ ]/ {exit} on && NF {print $1}'); do
    check "$command $sub --help" 0 "Usage:" -- "$greyctl" "$command" "$sub" --help
    grep -q "^\.SS $command $sub\$" <<<"$man" && passed=$((passed + 1)) || { echo "FAIL man page lacks $command $sub"; failed=$((failed + 1)); }
  done
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
