#!/usr/bin/env bash
# The model families on the command line: inspect-model reads a sharded bf16 Llama without its
# weights; finetune refuses every kind of bad checkpoint before step 1, naming the file and the
# field, and leaves --out as it was.
#   model_test.sh STRATA_BINARY DATA_DIR
set -uo pipefail
strata=$1
data=$2
here=$(cd "$(dirname "$0")" && pwd)
expect() { bash "$here/expect.sh" "$@" || exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect 0 "shards       6 \(model.safetensors.index.json\)" "$strata" inspect-model "$data/llama_ref/llama/bf16"
expect 0 "family       qwen2" "$strata" inspect-model "$data/llama_ref/qwen2/fp32"
expect 0 '"arch": "mistral"' "$strata" inspect-model --json "$data/llama_ref/mistral/bf16"
expect 2 "no such checkpoint" "$strata" inspect-model "$tmp/nothing"

# A byte-level Llama written by strata itself (BF16, sharded), so the byte tokenizer fits its
# vocabulary and every check up to the weights is reached.
expect 0 "done at step 1" "$strata" finetune --arch llama --layers 1 --heads 2 --kv-heads 1 --width 32 --context 64 \
  --seq 16 --batch 2 --steps 1 --offload none --sample 0 --save-dtype BF16 --shard-size 12KB --out "$tmp/base" \
  --no-progress
expect 0 "shards       [0-9]+ \(model.safetensors.index.json\)" "$strata" inspect-model "$tmp/base"

# Each bad checkpoint: a copy of a good one with one thing wrong, given to finetune with an --out
# that already holds a file of the user's. Nothing in --out may change.
bad() {  # NAME EDIT REGEX
  local name=$1 edit=$2 regex=$3
  local ck="$tmp/$name" out="$tmp/out-$name"
  mkdir -p "$ck" && cp "$tmp/base"/config.json "$tmp/base"/model*.safetensors* "$ck"/
  (cd "$ck" && eval "$edit")
  mkdir -p "$out" && echo keep >"$out/notes.txt"
  expect 1 "$regex" "$strata" finetune --init "$ck" --out "$out" --steps 1 --seq 16 --batch 2 --offload none --sample 0 --quiet
  if [[ "$(ls "$out")" != "notes.txt" || "$(cat "$out/notes.txt")" != keep ]]; then
    echo "FAIL: --out changed after a refused checkpoint ($name): $(ls "$out")"
    exit 1
  fi
}
bad model_type "sed -i 's/\"model_type\": \"llama\"/\"model_type\": \"falcon\"/' config.json" \
  'config.json: model_type "falcon" is not supported'
bad rope_type "sed -i 's/\"rope_type\": \"default\"/\"rope_type\": \"yarn\"/' config.json" \
  'config.json: rope_parameters.rope_type "yarn" is not supported'
bad missing_shard "rm model-00002-of-*.safetensors" 'lists shard model-00002-of-[0-9]+.safetensors, which is missing'
bad shape "sed -i 's/\"intermediate_size\": 128/\"intermediate_size\": 96/' config.json" \
  'tensor model.layers.0.mlp.gate_proj.weight has shape \[128, 32\], the config wants \[96, 32\]'
bad no_tensor "sed -i '/\"model.layers.0.input_layernorm.weight\"/d' model.safetensors.index.json" \
  'tensor model.layers.0.input_layernorm.weight is in this shard but not in model.safetensors.index.json'
bad activation "sed -i 's/\"hidden_act\": \"silu\"/\"hidden_act\": \"gelu\"/' config.json" \
  'config.json: hidden_act "gelu" is not supported'
# The first tensor's dtype said I16 (as long a spelling, so the header keeps its length).
bad dtype "sed -i '0,/\"BF16\"/s//\"I16\" /' model-00001-of-*.safetensors" \
  'has dtype I16; want F32, F16, BF16 or F64'
echo "ok: every bad checkpoint refused by name, --out untouched"
