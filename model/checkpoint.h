// Checkpoints as the PyTorch world writes them: a folder with config.json and the weights in
// safetensors, one file (model.safetensors) or several shards listed by
// model.safetensors.index.json, under Hugging Face's tensor names. strata reads such a folder (or
// a bare .safetensors file with the config in its metadata or a config.json beside it) for every
// family of model/config.h, and writes the same layout, so transformers' from_pretrained(DIR)
// loads what strata saves.
//
//   gpt2     "transformer."-prefixed names, Conv1D layout [in, out], lm_head tied to wte.
//   llama, mistral, qwen2
//            "model.layers.N.self_attn.q_proj.weight", ..., "lm_head.weight" when untied.
//
// Weights in F32, BF16 or F16 (F64 too) are held as fp32; a save writes F32, BF16 or F16.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "runtime/status.h"

namespace strata::model {

// Where the parts of a checkpoint are. PATH is a folder holding model.safetensors or
// model.safetensors.index.json (+ config.json), or a .safetensors file.
struct CheckpointPaths {
  std::string dir;
  std::string config;               // "" when none (then the weights' metadata must hold it)
  std::string index;                // model.safetensors.index.json, or "" for one file
  std::vector<std::string> shards;  // the weight files, in the index's order (one when unsharded)
};
[[nodiscard]] Result<CheckpointPaths> FindCheckpoint(const std::string& path);

// The model config of a checkpoint: config.json (Hugging Face's keys, by model_type: gpt2's
// n_layer, n_embd, ...; the llama family's num_hidden_layers, hidden_size, num_key_value_heads,
// intermediate_size, rope_theta, rope_scaling, sliding_window, tie_word_embeddings, ...), else
// the "strata.config" metadata entry of a single file. Refuses, naming the file and the key, an
// unknown model_type and any value strata would not compute exactly as transformers does
// (another activation, rope_scaling type, attention or MLP biases where the family has none).
[[nodiscard]] Result<ModelConfig> ReadCheckpointConfig(const std::string& path);

// What a checkpoint holds, read from its config and the shards' headers alone (no weights).
struct CheckpointInfo {
  CheckpointPaths paths;
  ModelConfig config;
  std::map<std::string, uint64_t> dtypes;  // dtype name -> tensors of it
  uint64_t tensors = 0;
  uint64_t bytes = 0;  // of tensor data, all shards
  std::string dtype;   // the weights' dtype when all are one ("BF16"), else "mixed"
};
[[nodiscard]] Result<CheckpointInfo> InspectCheckpoint(const std::string& path);

// Loads the weights into model (whose config must match the checkpoint's), shard by shard.
// Ignores buffers that are not parameters (gpt2's attn.bias masks, rotary inv_freq) and a head
// stored though tied when it equals the embedding. Refuses, naming the file and tensor: a
// missing tensor, a tensor in two shards or in a shard the index does not say, a shard listed
// but absent, a shape that does not match the config, an unknown tensor, a tied head that
// differs, a dtype that is not a float (F32, F16, BF16 and F64 are converted to fp32). On
// success *dtype (when set) is the checkpoint's dtype (as CheckpointInfo::dtype).
//
// Every check above is made from the config and the shards' headers before any weight is read.
// Then each shard is streamed (SafetensorsFile::StreamF32): read in data-buffer order with large
// sequential reads into two reusable buffers, converted into model.params() as the bytes arrive,
// its "strata.xxh3" verified in the same pass. Memory: the model plus those buffers (16 MiB),
// whatever the shards' size. The errors found only while reading (a shard truncated or changed
// since its header was read, a read error, a checksum mismatch, a tied head that differs) come
// after some weights have been overwritten: on any error the model's weights are unspecified and
// the caller must not use them (finetune and eval stop before their first step).
[[nodiscard]] Status LoadCheckpoint(const std::string& path, Model& model, std::string* dtype = nullptr);

struct SaveOptions {
  DType dtype = DType::kF32;     // F32, BF16 (round to nearest even) or F16
  uint64_t max_shard_bytes = 0;  // 0 = one model.safetensors; else shards of at most this (a
                                 // larger tensor gets a shard of its own) and an index
  // A config.json to keep the other keys of (bos_token_id, eos_token_id, ...): strata's own
  // keys are written over it. "" = none.
  std::string base_config_json;
  std::map<std::string, std::string> metadata;  // extra safetensors metadata ("strata.step", ...)
};

// Writes DIR/config.json and the weights (model.safetensors, or model-0000K-of-0000N.safetensors
// and model.safetensors.index.json), each file atomically; a shard set of another size left in
// DIR from an earlier save is removed after the new index is in place.
[[nodiscard]] Status SaveCheckpoint(const std::string& dir, const ModelConfig& cfg, std::span<const float> params,
                                    const SaveOptions& opt = {});

// Hugging Face's config.json for cfg: gpt2 as GPT2LMHeadModel (gelu_new, no dropout, tied);
// llama, mistral and qwen2 as LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM.
// torch_dtype names `dtype`; base_config_json (may be "") supplies the keys strata does not own.
std::string HfConfigJson(const ModelConfig& cfg, DType dtype = DType::kF32, const std::string& base_config_json = "");

// "F32", "BF16", "F16" or "auto" -> the dtype (auto: `loaded`, the checkpoint's own; F32 when it
// was mixed or there was none). InvalidArgument names the flag's value.
[[nodiscard]] Result<DType> ParseSaveDType(const std::string& text, const std::string& loaded);

}  // namespace strata::model
