// GPT-2 checkpoints as the PyTorch world writes them: a folder with model.safetensors (Hugging
// Face names, Conv1D layout [in, out], lm_head tied to wte) and config.json. strata reads such a
// folder (or a bare .safetensors file with the config in its metadata or a config.json beside it)
// and writes the same layout, so transformers' GPT2LMHeadModel.from_pretrained(DIR) loads it.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "model/gpt2.h"
#include "runtime/status.h"

namespace strata::model {

// Where the weights and the config of a checkpoint are: PATH is a folder holding model.safetensors
// (+ config.json), or a .safetensors file.
struct CheckpointPaths {
  std::string weights, config;  // config may be "" (then the weights' metadata must hold it)
};
[[nodiscard]] Result<CheckpointPaths> FindCheckpoint(const std::string& path);

// The model config of a checkpoint: config.json (Hugging Face keys n_layer, n_head, n_embd,
// n_positions, vocab_size, layer_norm_epsilon), else the "strata.config" metadata entry.
// Errors name the file and the key.
[[nodiscard]] Result<Gpt2Config> ReadCheckpointConfig(const std::string& path);

// Loads the weights into model (whose config must match the checkpoint's). Accepts names with or
// without the "transformer." prefix; ignores the attention-mask buffers (attn.bias,
// attn.masked_bias) and an lm_head.weight equal to wte. Refuses, naming the file and tensor: a
// missing tensor, a shape that does not match the config, an unknown tensor, an untied lm_head,
// a dtype that is not a float (F32, F16, BF16 and F64 are converted to fp32).
[[nodiscard]] Status LoadCheckpoint(const std::string& path, Gpt2& model);

// Writes DIR/model.safetensors (F32, "transformer." names, no lm_head) and DIR/config.json,
// each atomically. extra_metadata lands in the safetensors metadata beside "strata.config".
[[nodiscard]] Status SaveCheckpoint(const std::string& dir, const Gpt2Config& cfg, std::span<const float> params,
                                    const std::map<std::string, std::string>& extra_metadata = {});

// Hugging Face's config.json for cfg (GPT2LMHeadModel, gelu_new, no dropout, tied embeddings).
std::string HfConfigJson(const Gpt2Config& cfg);

}  // namespace strata::model
