#!/usr/bin/env bash
# Builds a libFuzzer target with clang (address + undefined sanitizers) and fuzzes it for a bounded
# time from its seed corpus; new inputs go to a scratch folder, so the committed seeds stay as
# they are. Exits 77 (CTest: skipped) when clang or its libFuzzer runtime is absent.
# usage: run_fuzz.sh SOURCE_DIR TARGET SECONDS
set -euo pipefail
src=$1 target=$2 seconds=$3
clang=$(command -v clang++-14 || command -v clang++ || true)
if [[ -z "$clang" ]]; then echo "skip: no clang++ (libFuzzer needs clang)"; exit 77; fi
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
if ! "$clang" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I"$src" \
    "$src/tests/fuzz/${target}_fuzz.cc" "$src/net/wire.cc" "$src/runtime/status.cc" -lsodium -lcrypto \
    -o "$work/fuzz" 2>"$work/build.log"; then
  if grep -q "libclang_rt.fuzzer\|cannot find.*fuzzer" "$work/build.log"; then
    echo "skip: clang's libFuzzer runtime is not installed (Debian: libclang-rt-14-dev)"; exit 77
  fi
  cat "$work/build.log"; exit 1
fi
mkdir -p "$work/corpus"
rc=0
UBSAN_OPTIONS=halt_on_error=1 "$work/fuzz" -max_total_time="$seconds" -print_final_stats=1 \
  "$work/corpus" "$src/tests/fuzz/corpus/$target" >"$work/fuzz.log" 2>&1 || rc=$?
if [[ $rc -ne 0 ]]; then tail -60 "$work/fuzz.log"; exit "$rc"; fi  # a finding: show it
grep -E "^Done|stat::number_of_executed_units|stat::peak_rss_mb" "$work/fuzz.log"
