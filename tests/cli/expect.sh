#!/usr/bin/env bash
# A command-line test that checks both the exit status and the output:
#   expect.sh STATUS REGEX COMMAND [ARGS...]
# runs the command, prints what it printed (stdout and stderr), and passes only when it exited
# with STATUS and its output matches the extended regular expression REGEX.
set -uo pipefail
want=$1
regex=$2
shift 2
out=$("$@" 2>&1)
got=$?
printf '%s\n' "$out"
if [[ $got -ne $want ]]; then
  echo "FAIL: exit status $got, want $want: $*"
  exit 1
fi
if ! grep -Eq -- "$regex" <<<"$out"; then
  echo "FAIL: the output does not match /$regex/: $*"
  exit 1
fi
echo "ok: exit $got and /$regex/"
