#!/usr/bin/env bash
# `strata swarm` from the command line: the README's two-terminal walkthrough (keygen, members,
# serve, join, status) on loopback, and bad input refused with a message that names it.
# usage: swarm_test.sh STRATA_BINARY
set -uo pipefail
S=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/strata-swarm-cli-XXXXXX")
serve_pid=""
cleanup() { [[ -n "$serve_pid" ]] && kill -9 "$serve_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
cd "$dir"
fail() { echo "FAIL: $*"; exit 1; }
expect_error() {  # expect_error "words" cmd...: the command fails and says the words
  local words=$1; shift
  local out; out=$("$@" 2>&1) && fail "succeeded: $* ($out)"
  grep -qF -- "$words" <<<"$out" || fail "$*: expected \"$words\" in: $out"
}
port=$((20000 + RANDOM % 20000))

# The README's walkthrough, with a small model and a bounded run.
$S swarm keygen --name agg >/dev/null || fail keygen
$S swarm keygen --name alice >/dev/null || fail keygen
[[ $(stat -c %a agg.key) == 600 ]] || fail "secret key file is not mode 0600"
$S swarm members --out members.txt alice.key.pub >/dev/null || fail members
$S swarm serve --key agg.key --members members.txt --out agg-state --bind tcp://127.0.0.1:$port \
  --layers 2 --heads 2 --width 32 --context 32 --max-seconds 120 >serve.log 2>&1 &
serve_pid=$!
timeout 120 $S swarm join --key alice.key --server tcp://127.0.0.1:$port --server-key agg.key.pub \
  --inner-steps 4 --batch 4 --seq 32 --rounds 3 >join.log 2>&1 || fail "join: $(cat join.log)"
grep -q "3 rounds (3 applied" join.log || fail "join did not apply 3 rounds: $(cat join.log)"
timeout 30 $S swarm status tcp://127.0.0.1:$port --key alice.key --server-key agg.key.pub >status.txt 2>&1 \
  || fail "status: $(cat status.txt)"
grep -q "at version 3" status.txt || fail "status: $(cat status.txt)"
grep -q "^alice" status.txt || fail "status lists no alice: $(cat status.txt)"
kill -INT $serve_pid; wait $serve_pid || fail "serve exit: $(cat serve.log)"
serve_pid=""
grep -q "stopped at version 3" serve.log || fail "serve log: $(cat serve.log)"
# Restarted on the same folder without --run-id, it resumes the stored run at version 3.
$S swarm serve --key agg.key --members members.txt --out agg-state --bind tcp://127.0.0.1:$port \
  --max-seconds 1 >serve2.log 2>&1 || fail "serve restart: $(cat serve2.log)"
grep -q "version 3 (" serve2.log || fail "restart did not resume at version 3: $(cat serve2.log)"

# Bad input, each named.
expect_error "name" $S swarm keygen --name "bad name"
expect_error "alice.key" $S swarm keygen --name alice             # never overwrites a key
expect_error "nope.pub" $S swarm members --out m2.txt nope.pub
expect_error "missing.txt" $S swarm serve --key agg.key --members missing.txt --out x --bind tcp://127.0.0.1:$port
expect_error "agg-state holds run" $S swarm serve --key agg.key --members members.txt --out agg-state \
  --run-id 5 --bind tcp://127.0.0.1:$port
expect_error "--shard 4/4" $S swarm join --key alice.key --server tcp://127.0.0.1:$port --server-key agg.key.pub \
  --shard 4 --shards 4
expect_error "no Welcome" $S swarm join --key alice.key --server tcp://127.0.0.1:1 --server-key agg.key.pub --timeout 1
chmod 644 alice.key
expect_error "alice.key" $S swarm join --key alice.key --server tcp://127.0.0.1:$port --server-key agg.key.pub
echo "swarm cli: all cases passed"
