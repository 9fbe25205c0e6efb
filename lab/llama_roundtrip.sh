#!/usr/bin/env bash
# A Llama fine-tuned by strata loads in transformers and computes the same loss.
#
#   lab/llama_roundtrip.sh [STRATA_BIN] [OUT_JSON] [TOKENIZER]
#
# 1. trains a fresh Llama (2 layers, GQA 4/2, tied head) for 60 steps on the fortunes corpus (the
#    state on disk, 8-bit AdamW), with TOKENIZER (default: the Llama 3 style tokenizer.json of
#    tests/data/tokenizers/llama3; "byte" for bytes);
# 2. fine-tunes that checkpoint (--init) for 30 more steps and saves it in BF16, in three shards
#    with model.safetensors.index.json;
# 3. lab/peers/hf_llama_roundtrip.py loads the result with transformers' AutoModelForCausalLM
#    (and AutoTokenizer, from the tokenizer files strata copied beside the weights) and compares
#    its loss on a fixed batch with `strata eval` on the same folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/strata}
out_json=${2:-}
tok=${3:-tests/data/tokenizers/llama3}
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-llama-roundtrip.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$bin" finetune --tokenizer "$tok" --arch llama --layers 2 --heads 4 --kv-heads 2 --width 64 --context 128 --seq 64 --batch 8 \
  --steps 60 --eval-every 30 --sample 0 --out "$work/base" --no-progress --quiet
"$bin" finetune --init "$work/base" --save-dtype BF16 --shard-size 100KB --seq 64 --batch 8 --steps 30 \
  --eval-every 30 --sample 0 --out "$work/tuned" --no-progress --quiet
ls "$work/tuned" >&2
vocab=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vocab_size"])' "$work/tuned/config.json")
python3 lab/peers/make_batch.py --vocab "$vocab" --batch 4 --seq 64 --seed 5 --out "$work/batch.safetensors"
args=(--checkpoint "$work/tuned" --batch "$work/batch.safetensors" --strata "$bin")
[[ -n "$out_json" ]] && args+=(--json "$out_json")
python3 lab/peers/hf_llama_roundtrip.py "${args[@]}"
