#!/usr/bin/env bash
# Builds a libFuzzer target with clang (address + undefined sanitizers) from the sources it needs
# and fuzzes it for a bounded time from its seed corpus; new inputs go to a scratch folder, so the
# committed seeds stay as they are. Exits 77 (CTest: skipped) when clang or its libFuzzer runtime
# is absent.
#
# usage: run_fuzz.sh SOURCE_DIR TARGET SECONDS [OBJECTS]      build, fuzz SECONDS, print the stats
#        run_fuzz.sh --build SOURCE_DIR TARGET OUT [OBJECTS]  build only, to the binary OUT
#        run_fuzz.sh --list                                   the targets
# OBJECTS: a folder where compiled objects are kept and shared between targets and runs.
set -euo pipefail

# The sources each target links, beyond tests/fuzz/TARGET_fuzz.cc, and its libraries. Keep them in
# step with what the parser's .cc files call; a missing one shows as an undefined symbol at link.
declare -A SOURCES LIBS
SOURCES[wire]="net/wire.cc runtime/status.cc"
LIBS[wire]="-lsodium -lcrypto"
SOURCES[safetensors]="model/safetensors.cc runtime/status.cc runtime/file_util.cc"
LIBS[safetensors]="-lxxhash"
SOURCES[state_file]="offload/state_file.cc optim/q8_book.cc runtime/status.cc runtime/file_util.cc runtime/thread_pool.cc"
LIBS[state_file]="-lxxhash -lpthread"
SOURCES[token_file]="model/data.cc model/tokenizer.cc runtime/status.cc runtime/file_util.cc"
LIBS[token_file]="-lxxhash -lpcre2-8"
SOURCES[hf_tokenizer]="model/tokenizer.cc runtime/status.cc"
LIBS[hf_tokenizer]="-lpcre2-8"
SOURCES[gpt2_tokenizer]="${SOURCES[hf_tokenizer]}"
LIBS[gpt2_tokenizer]="${LIBS[hf_tokenizer]}"
SOURCES[model_config]="model/checkpoint.cc model/safetensors.cc model/model.cc model/gpt2.cc model/llama.cc model/config.cc
  runtime/status.cc runtime/file_util.cc runtime/thread_pool.cc runtime/cpu_features.cc"
LIBS[model_config]="-lxxhash -lpthread"
SOURCES[checkpoint_index]="${SOURCES[model_config]}"
LIBS[checkpoint_index]="${LIBS[model_config]}"
SOURCES[membership]="net/identity.cc runtime/status.cc runtime/file_util.cc"
LIBS[membership]="-lsodium -lxxhash"
SOURCES[agg_state]="net/agg_state.cc net/run_config.cc optim/outer.cc optim/pg_codec.cc net/wire.cc model/config.cc
  optim/q8_book.cc optim/q8_codec.cc optim/q8_codec_avx2.cc optim/q8_codec_avx512.cc runtime/status.cc
  runtime/file_util.cc runtime/thread_pool.cc runtime/cpu_features.cc"
LIBS[agg_state]="-lxxhash -lsodium -lcrypto -lpthread"
SOURCES[outer]="${SOURCES[agg_state]}"
LIBS[outer]="${LIBS[agg_state]}"
# Sources compiled with extra flags: the SIMD kernels, as the top-level CMakeLists.txt compiles them
# (picked at run time, runtime/cpu_features.h). model/gpt2.cc and model/llama.cc are compiled generic here.
declare -A FLAGS_OF
FLAGS_OF[optim/q8_codec_avx2.cc]="-mavx2 -mfma -mbmi2"
FLAGS_OF[optim/q8_codec_avx512.cc]="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx512vbmi -mavx2 -mfma -mbmi2"
# Include folders of the header-only libraries some sources use (Eigen for model/gpt2.cc, model/llama.cc).
EXTRA_INCLUDES="-I/usr/include/eigen3"

if [[ ${1:-} == --list ]]; then printf '%s\n' "${!SOURCES[@]}" | sort; exit 0; fi
mode=fuzz
if [[ ${1:-} == --build ]]; then mode=build; shift; fi
if [[ $# -lt 3 ]]; then sed -n '7,10p' "$0" >&2; exit 2; fi
src=$1 target=$2 arg=$3 objects=${4:-}
if [[ -z ${SOURCES[$target]+x} ]]; then echo "run_fuzz.sh: unknown target '$target' (see --list)" >&2; exit 2; fi

clang=$(command -v clang++-14 || command -v clang++ || true)
if [[ -z "$clang" ]]; then echo "skip: no clang++ (libFuzzer needs clang; Debian: clang-14)"; exit 77; fi
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-fuzz-$target-XXXXXX")
trap 'rm -rf "$work"' EXIT

# Every source is compiled with coverage and the sanitizers; -O1 keeps the builds short (most of a
# short run's time) and the stack traces readable.
# shellcheck disable=SC2206
cflags=(-std=c++20 -g -O1 -fsized-deallocation -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -I"$src" $EXTRA_INCLUDES)
# With an object folder, an object is shared by every target (and every run) that compiles the
# same source with the same flags and the same project headers; a lock per object lets parallel
# runs wait for each other instead of compiling it twice.
headers_key=""
if [[ -n $objects ]]; then
  mkdir -p "$objects"
  headers_key=$(find "$src/runtime" "$src/model" "$src/net" "$src/offload" "$src/optim" "$src/tests/fuzz" \
    -name '*.h' -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-16)
fi
compile() {  # compile SOURCE [FLAGS...] -> prints the object's path
  local cc=$1 obj
  shift
  local -a flags=("${cflags[@]}" "$@")
  if [[ -z $objects ]]; then
    obj="$work/$(basename "$cc" .cc).o"
    "$clang" "${flags[@]}" -c "$cc" -o "$obj" 2>>"$work/build.log" || return 1
  else
    local key
    key=$( { echo "$clang ${flags[*]} $headers_key"; cat "$cc"; } | sha256sum | cut -c1-16)
    obj="$objects/$(basename "$cc" .cc)-$key.o"
    (
      flock 9
      if [[ ! -f $obj ]]; then
        "$clang" "${flags[@]}" -c "$cc" -o "$obj.tmp" 2>>"$work/build.log" && mv "$obj.tmp" "$obj"
      fi
    ) 9>"$obj.lock" || return 1
  fi
  echo "$obj"
}
objs=()
ok=1
for s in "tests/fuzz/${target}_fuzz.cc" ${SOURCES[$target]}; do
  # shellcheck disable=SC2086
  if o=$(compile "$src/$s" ${FLAGS_OF[$s]:-}); then objs+=("$o"); else ok=0; break; fi
done
# shellcheck disable=SC2086
if [[ $ok -eq 0 ]] || ! "$clang" -fsanitize=fuzzer,address,undefined "${objs[@]}" ${LIBS[$target]} \
    -o "$work/fuzz" 2>>"$work/build.log"; then
  if grep -q "libclang_rt\.\|cannot find.*fuzzer" "$work/build.log"; then
    echo "skip: clang's libFuzzer runtime is not installed (Debian: libclang-rt-14-dev)"; exit 77
  fi
  cat "$work/build.log"; exit 1
fi
if [[ $mode == build ]]; then cp "$work/fuzz" "$arg"; exit 0; fi

mkdir -p "$work/corpus"
rc=0
# libFuzzer's own exit code for a finding is 77, which CTest would read as "skipped": a finding,
# a timeout or an out-of-memory exits 1 instead.
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$work/fuzz" -max_total_time="$arg" -print_final_stats=1 \
  -rss_limit_mb=2048 -timeout=25 -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$PWD/$target-" \
  "$work/corpus" "$src/tests/fuzz/corpus/$target" >"$work/fuzz.log" 2>&1 || rc=$?
if [[ $rc -ne 0 ]]; then  # a finding: show it, and where the input that caused it is
  tail -80 "$work/fuzz.log"
  exit 1
fi
grep -E "^Done|stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added" "$work/fuzz.log"
