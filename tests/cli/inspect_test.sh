#!/usr/bin/env bash
# strata inspect on a real state directory made by strata bench offload --keep: a healthy one
# verifies (exit 0); a flipped byte, a truncated file and a missing or damaged manifest are each
# named precisely (exit 1); a path that is no directory is an error (exit 2). Nothing is written.
set -uo pipefail
STRATA=$1
T=$(mktemp -d "${TMPDIR:-/tmp}/strata-inspect-XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$STRATA" bench offload --params 300000 --chunk 4096 --offload-ram 1MiB --path "$T" --steps 2 \
  --probe-bytes 1MiB --keep --quiet --json "$T/b.json" >/dev/null || fail "bench offload --keep"
STATE=$(sed -n 's/.*"state_dir": "\(.*\)".*/\1/p' "$T/b.json")
SLOT=$(sed -n 's/.*"slot_bytes": \([0-9]*\).*/\1/p' "$T/b.json")
[[ -d "$STATE" && -n "$SLOT" ]] || fail "no state_dir or slot_bytes in the JSON"

out=$("$STRATA" inspect "$STATE"); rc=$?
[[ $rc -eq 0 ]] || fail "healthy state: exit $rc: $out"
grep -q "74 of 74 verify at step 2 (slot A)" <<<"$out" || fail "healthy state: $out"
grep -q "layout q8_master_mv" <<<"$out" || fail "no layout: $out"
"$STRATA" inspect --json "$STATE" | grep -q '"ok": true' || fail "--json"

# One flipped byte in the payload of chunk 5's committed slot. Step 2 lives in slot A; the A
# region holds the 74 chunks last first, so chunk 5 is at position 68.
cp "$STATE/state.strata" "$T/pristine"
A5=$((4096 + 68 * SLOT))
OFF=$((A5 + 1000))
before=$(sha256sum <"$STATE/state.strata")
printf '\x5a' | dd of="$STATE/state.strata" bs=1 seek=$OFF conv=notrunc status=none
after_flip=$(sha256sum <"$STATE/state.strata")
out=$("$STRATA" inspect "$STATE"); rc=$?
[[ $rc -eq 1 ]] || fail "flipped byte: exit $rc"
grep -q "chunk 5 .*CORRUPT: slot A of chunk 5 (bytes $A5\.\.$((A5 + SLOT)) of $STATE/state.strata): checksum mismatch" <<<"$out" \
  || fail "flipped byte not named: $out"
grep -q "73 of 74 verify" <<<"$out" || fail "count: $out"
[[ $(sha256sum <"$STATE/state.strata") == "$after_flip" ]] || fail "inspect wrote to the state file"
[[ "$before" != "$after_flip" ]] || fail "the byte was not flipped"

# A truncated file: it ends 4096 bytes into the committed slot of chunk 3 (position 70), so
# chunks 3, 2, 1 and 0 cannot be read whole.
cp "$T/pristine" "$STATE/state.strata"
truncate -s $((4096 + 70 * SLOT + 4096)) "$STATE/state.strata"
out=$("$STRATA" inspect "$STATE"); rc=$?
[[ $rc -eq 1 ]] || fail "truncated: exit $rc"
grep -q "truncated" <<<"$out" || fail "truncated not named: $out"
grep -q "chunk 3 .*CORRUPT: slot A of chunk 3 .*truncated" <<<"$out" || fail "chunk 3 not named: $out"
grep -q "chunk 0 .*CORRUPT: slot A of chunk 0 .*truncated" <<<"$out" || fail "chunk 0 not named: $out"
grep -q "70 of 74 verify" <<<"$out" || fail "truncated count: $out"

# A non-zero byte in the header's padding (not covered by its checksum) is named by offset.
cp "$T/pristine" "$STATE/state.strata"
printf '\x5a' | dd of="$STATE/state.strata" bs=1 seek=2000 conv=notrunc status=none
out=$("$STRATA" inspect "$STATE"); rc=$?
[[ $rc -eq 1 ]] || fail "non-zero padding: exit $rc"
grep -q "header: padding (offsets 128..4096) is not zero: byte 2000 is 0x5a" <<<"$out" || fail "padding not named: $out"

# A damaged manifest, then a missing one: the slots still prove that step 2 was committed.
cp "$T/pristine" "$STATE/state.strata"
cp "$STATE/MANIFEST" "$T/manifest"
printf '\x01' | dd of="$STATE/MANIFEST" bs=1 seek=30 conv=notrunc status=none
out=$("$STRATA" inspect "$STATE"); rc=$?
[[ $rc -eq 1 ]] || fail "bad manifest: exit $rc"
grep -q "MANIFEST: checksum mismatch" <<<"$out" || fail "bad manifest not named: $out"
grep -q "version 1, layout q8_master_mv" <<<"$out" || fail "a bad manifest hid the header: $out"
rm "$STATE/MANIFEST"
out=$("$STRATA" inspect "$STATE"); rc=$?
[[ $rc -eq 1 ]] || fail "missing manifest: exit $rc"
grep -q "MANIFEST: missing" <<<"$out" || fail "missing manifest not named: $out"
grep -q "slots .*holds step 2, which is written only after step 1 was committed" <<<"$out" \
  || fail "missing manifest: no commit evidence: $out"
out=$("$STRATA" inspect --json "$STATE"); rc=$?
[[ $rc -eq 1 ]] || fail "missing manifest, --json: exit $rc"
grep -q '"commit_evidence": "committed steps, manifest lost"' <<<"$out" || fail "missing manifest: no commit evidence in --json: $out"

out=$("$STRATA" inspect "$T/nowhere" 2>&1); rc=$?
[[ $rc -eq 2 ]] || fail "no directory: exit $rc"
grep -q "not a directory" <<<"$out" || fail "no directory: $out"
echo "inspect: all cases named"
