// The shape of a decoder, for every family strata trains: one struct, named after Hugging Face's
// `model_type`, so a run file, a checkpoint's config.json and the command line all say the same.
//
//   gpt2     learned positions, LayerNorm with bias, tanh-GELU MLP of 4 * n_embd, tied head.
//   llama    RMSNorm, rotary positions (rope_theta; rope_scaling "llama3" for Llama 3.1/3.2),
//            SwiGLU MLP of n_mlp, grouped-query attention (n_kv_head), head_dim when given,
//            untied head unless tie_embeddings (Llama 3.2 1B/3B tie).
//   mistral  llama's blocks; sliding_window > 0 limits each query to the last sliding_window keys.
//   qwen2    llama's blocks with biases on q, k and v (qkv_bias); tied head when tie_embeddings.
//
// The fields a family does not use keep their defaults; Validate() refuses one that is set.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "runtime/status.h"

namespace strata::model {

// Llama 3.1's frequency-dependent RoPE scaling (Hugging Face rope_type "llama3"): wavelengths
// longer than original_ctx / low_freq_factor are slowed by `factor`, shorter than
// original_ctx / high_freq_factor kept, and the band between blended.
struct RopeScaling {
  std::string type;  // "" (none) or "llama3"
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int32_t original_ctx = 8192;  // original_max_position_embeddings
  bool operator==(const RopeScaling&) const = default;
};

struct ModelConfig {
  std::string arch = "gpt2";  // gpt2 | llama | mistral | qwen2
  int32_t n_layer = 4;
  int32_t n_head = 4;
  int32_t n_embd = 256;
  int32_t n_ctx = 256;  // the longest sequence (gpt2: learned positions; others: max_position_embeddings)
  int32_t vocab = 256;
  float ln_eps = 1e-5f;  // LayerNorm (gpt2) or RMSNorm epsilon
  // The llama family (0 = the default named).
  int32_t n_kv_head = 0;  // key-value heads (0 = n_head); n_head is a multiple of it
  int32_t head_dim = 0;   // 0 = n_embd / n_head
  int32_t n_mlp = 0;      // intermediate_size; 0 = 4 * n_embd (gpt2 only)
  double rope_theta = 10000.0;
  RopeScaling rope;
  int32_t sliding_window = 0;  // 0 = full causal attention
  bool qkv_bias = false;
  bool tie_embeddings = true;

  bool is_gpt2() const { return arch == "gpt2"; }
  int32_t kv_heads() const { return n_kv_head > 0 ? n_kv_head : n_head; }
  int32_t head_size() const { return head_dim > 0 ? head_dim : n_embd / n_head; }
  int32_t mlp() const { return n_mlp > 0 ? n_mlp : 4 * n_embd; }

  // Names the first field out of range ("n_embd 250 is not a multiple of n_head 4").
  [[nodiscard]] Status Validate() const;
  uint64_t NumParams() const;
  // "llama, 2 layers, 4 heads (2 key-value) of 16, width 48, MLP 80, context 64, vocabulary 101"
  std::string ToString() const;
  bool operator==(const ModelConfig&) const = default;
};

// The defaults of a fresh model that depend on its family, for the command line: the llama family's
// MLP width when not given (8/3 of the width, rounded up to a multiple of 64, as SwiGLU models
// size it) and qwen2's q/k/v biases.
void FillFamilyDefaults(ModelConfig* cfg);

// The families strata knows, in the order --arch lists them.
const std::vector<std::string>& ModelArchs();

// One parameter tensor of the flat buffer.
struct TensorSpec {
  std::string name;  // Hugging Face's name: "wte.weight" (gpt2, without "transformer."),
                     // "model.layers.3.mlp.gate_proj.weight", "lm_head.weight"
  uint64_t offset = 0;  // in floats, into the flat buffer
  std::vector<int64_t> shape;
  int layer = -1;  // -1: embeddings, final norm, head
  uint64_t numel() const;
};

// Every tensor of the flat buffer, in buffer order (model/gpt2.h and model/llama.h draw them).
std::vector<TensorSpec> ModelTensors(const ModelConfig& cfg);
// Offset (in floats) of layer l's first tensor; l == n_layer gives the final norm's.
uint64_t ModelLayerOffset(const ModelConfig& cfg, int layer);
// The family's initialisation, a function of the seed alone (every machine draws the same
// weights): matrices and embeddings normal(0, 0.02), the residual projections (gpt2 c_proj,
// llama o_proj and down_proj) normal(0, 0.02 / sqrt(2 n_layer)), norm weights 1, biases 0.
// params holds cfg.NumParams() values. Compiled without the model kernels' instruction set.
void InitWeights(const ModelConfig& cfg, uint64_t seed, std::span<float> params);

}  // namespace strata::model
