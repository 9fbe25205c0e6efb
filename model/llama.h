// The llama family: Llama (1, 2, 3, 3.1, 3.2), Mistral and Qwen2, one decoder by config
// (model/config.h): pre-RMSNorm blocks, rotary positions in Hugging Face's rotate-half convention,
// grouped-query attention (optionally within a sliding window), a SwiGLU MLP, and an output head
// of its own or tied to the embedding. Forward and backward on the CPU in fp32 through Eigen,
// multi-threaded with a fixed partition: bitwise the same results for a given thread count.
//
// The flat buffer, in Hugging Face's names and shapes ([out, in] matrices, y = x W^T, so a
// checkpoint's tensors copy in as they are):
//
//   model.embed_tokens.weight [V, C] | layer 0 | ... | layer L-1 | model.norm.weight [C]
//   | lm_head.weight [V, C] (untied only)
//   layer l (prefix model.layers.l.):
//     input_layernorm.weight [C]
//     self_attn.q_proj.weight [H D, C]  k_proj.weight [KV D, C]  v_proj.weight [KV D, C]
//     self_attn.q_proj.bias [H D]  k_proj.bias [KV D]  v_proj.bias [KV D]      (qwen2 only)
//     self_attn.o_proj.weight [C, H D]
//     post_attention_layernorm.weight [C]
//     mlp.gate_proj.weight [F, C]  mlp.up_proj.weight [F, C]  mlp.down_proj.weight [C, F]
//
// q, k and v lie back to back (one product for all three), and so do gate and up.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "model/config.h"
#include "model/model.h"
#include "runtime/aligned.h"
#include "runtime/status.h"
#include "runtime/thread_pool.h"

namespace strata::model {

std::vector<TensorSpec> LlamaTensors(const ModelConfig& cfg);
// Offset (in floats) of layer l's first tensor; l == n_layer gives model.norm.weight.
uint64_t LlamaLayerOffset(const ModelConfig& cfg, int layer);
// The rotary inverse frequencies of a head, [head_dim / 2], as Hugging Face computes them.
std::vector<float> RopeFrequencies(const ModelConfig& cfg);

class Llama final : public Model {
 public:
  // Refuses a config that fails Validate() or is gpt2's, and a CPU without the model kernels'
  // instruction set.
  [[nodiscard]] static Result<std::unique_ptr<Llama>> Create(const ModelConfig& cfg, int threads);
  ~Llama() override;
  Llama(const Llama&) = delete;
  Llama& operator=(const Llama&) = delete;

  const ModelConfig& config() const override { return cfg_; }
  uint64_t num_params() const override { return n_params_; }
  std::span<float> params() override { return {params_.data(), n_params_}; }
  std::span<const float> params() const override { return {params_.data(), n_params_}; }
  // Allocated on first use (a model that only loads, evaluates or samples holds no gradients).
  std::span<float> grads() override {
    if (grads_.size() != n_params_) grads_.assign(n_params_, 0.0f);
    return {grads_.data(), n_params_};
  }
  int threads() const override { return pool_.size(); }
  uint64_t activation_bytes() const override;
  void SetRecompute(bool on) override { recompute_ = on; }
  bool recompute() const override { return recompute_; }

  [[nodiscard]] Result<float> Forward(std::span<const int32_t> inputs, std::span<const int32_t> targets, int B,
                                      int T) override;
  std::span<const float> logits() const override;
  [[nodiscard]] Status Backward(const std::function<void(uint64_t lo)>& on_ready = {}) override;
  // One token's forward per new token through a cache of keys and values (after the rotation);
  // when the context is full the window slides and the cache is rebuilt from the new window.
  [[nodiscard]] Result<std::vector<int32_t>> Sample(std::span<const int32_t> prompt, int n, float temperature,
                                                    int top_k, uint64_t seed) override;

  struct Acts;

 private:
  Llama(const ModelConfig& cfg, int threads);
  void Reserve(int B, int T);
  // cos and sin of every position < T, [T, D/2] each.
  void RopeTables(int T);
  void DecodeOne(int32_t token, int pos, float* logits);
  void ForwardLayer(int64_t l);

  ModelConfig cfg_;
  uint64_t n_params_ = 0;
  AlignedVector<float> params_, grads_;
  ThreadPool pool_;
  std::unique_ptr<Acts> acts_;
  std::vector<float> inv_freq_;             // [D/2]
  AlignedVector<float> rope_cos_, rope_sin_;  // [rope_T_, D/2]
  int rope_T_ = 0;
  AlignedVector<float> kv_;  // [L][2][n_ctx, KV D]: the sampler's keys (rotated) and values
  bool recompute_ = false;
};

}  // namespace strata::model
