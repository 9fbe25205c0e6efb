// The built-in model: the GPT-2 architecture (learned positions, pre-LayerNorm blocks, tanh-GELU
// MLP, causal self-attention, input and output embeddings tied), any size by config. Forward and
// backward on the CPU in fp32; matrix products through Eigen; multi-threaded over the ThreadPool
// with a fixed partition, so results are bitwise the same for a given thread count.
//
// All parameters live in one flat buffer, layer by layer, so optimizer chunks (offload/) map onto
// contiguous ranges and backward, which runs last layer first, finishes the high offsets first:
//
//   wte [V, C] | wpe [ctx, C] | layer 0 | layer 1 | ... | layer L-1 | ln_f.weight [C] | ln_f.bias [C]
//   layer l:  ln_1.weight [C]  ln_1.bias [C]  attn.c_attn.weight [C, 3C]  attn.c_attn.bias [3C]
//             attn.c_proj.weight [C, C]  attn.c_proj.bias [C]  ln_2.weight [C]  ln_2.bias [C]
//             mlp.c_fc.weight [C, 4C]  mlp.c_fc.bias [4C]  mlp.c_proj.weight [4C, C]  mlp.c_proj.bias [C]
//
// Matrices are row-major [in, out] (y = x W + b): the layout of Hugging Face's Conv1D, so a
// checkpoint's tensors copy in without a transpose. Names are the Hugging Face names without
// the "transformer." prefix.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/model.h"
#include "runtime/aligned.h"
#include "runtime/status.h"
#include "runtime/thread_pool.h"

namespace strata::model {

// Every tensor, in buffer order.
std::vector<TensorSpec> Gpt2Tensors(const ModelConfig& cfg);
// Offset (in floats) of layer l's first tensor; l == n_layer gives ln_f.weight.
uint64_t Gpt2LayerOffset(const ModelConfig& cfg, int layer);
// GPT-2's initialisation (normal(0, 0.02), the residual projections scaled by 1/sqrt(2 n_layer),
// LayerNorm weights 1, biases 0), a function of the seed alone: every machine draws the same
// weights. params holds cfg.NumParams() values.
void InitGpt2Weights(const ModelConfig& cfg, uint64_t seed, std::span<float> params);

class Gpt2 final : public Model {
 public:
  // threads: the compute threads (0 = all cores). Refuses a config that fails Validate() or is not
  // arch "gpt2", and a CPU without the instructions the model kernels were compiled for.
  [[nodiscard]] static Result<std::unique_ptr<Gpt2>> Create(const ModelConfig& cfg, int threads);
  ~Gpt2() override;
  Gpt2(const Gpt2&) = delete;
  Gpt2& operator=(const Gpt2&) = delete;

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
  // While the context is not full, one token's forward per new token through a cache of keys and
  // values; once it is full the window slides (learned positions move) and each token costs a
  // forward of the whole window.
  [[nodiscard]] Result<std::vector<int32_t>> Sample(std::span<const int32_t> prompt, int n, float temperature,
                                                    int top_k, uint64_t seed) override;

  struct Acts;

 private:
  Gpt2(const ModelConfig& cfg, int threads);
  void Reserve(int B, int T);
  // One token at position pos (the cache holds positions < pos): its logits into `logits` [V].
  void DecodeOne(int32_t token, int pos, float* logits);
  void ForwardLayer(int64_t l);

  ModelConfig cfg_;
  uint64_t n_params_ = 0;
  AlignedVector<float> params_, grads_;  // 64-byte aligned: see runtime/aligned.h
  ThreadPool pool_;
  std::unique_ptr<Acts> acts_;
  bool recompute_ = false;
  AlignedVector<float> kv_;  // [L][2][n_ctx, C]: keys and values of the positions decoded so far
};


}  // namespace strata::model
