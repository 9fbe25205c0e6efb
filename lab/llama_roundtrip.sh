#!/usr/bin/env bash
# A Llama fine-tuned by strata loads in transformers and computes the same loss.
#
#   lab/llama_roundtrip.sh [STRATA_BIN] [OUT_JSON]
#
# 1. trains a fresh byte-level Llama (2 layers, GQA 4/2, tied head) for 60 steps on the fortunes
#    corpus (the state on disk, 8-bit AdamW);
# 2. fine-tunes that checkpoint (--init) for 30 more steps and saves it in BF16, in three shards
#    with model.safetensors.index.json;
# 3. lab/peers/hf_llama_roundtrip.py loads the result with transformers' AutoModelForCausalLM
#    and compares its loss on a fixed batch with `strata eval` on the same folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/strata}
out_json=${2:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-llama-roundtrip.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$bin" finetune --arch llama --layers 2 --heads 4 --kv-heads 2 --width 64 --context 128 --seq 64 --batch 8 \
  --steps 60 --eval-every 30 --sample 0 --out "$work/base" --no-progress --quiet
"$bin" finetune --init "$work/base" --save-dtype BF16 --shard-size 100KB --seq 64 --batch 8 --steps 30 \
  --eval-every 30 --sample 0 --out "$work/tuned" --no-progress --quiet
ls "$work/tuned" >&2
python3 lab/peers/make_batch.py --vocab 256 --batch 4 --seq 64 --seed 5 --out "$work/batch.safetensors"
args=(--checkpoint "$work/tuned" --batch "$work/batch.safetensors" --strata "$bin")
[[ -n "$out_json" ]] && args+=(--json "$out_json")
python3 lab/peers/hf_llama_roundtrip.py "${args[@]}"
