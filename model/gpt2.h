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

#include "runtime/aligned.h"
#include "runtime/status.h"
#include "runtime/thread_pool.h"

namespace strata::model {

struct Gpt2Config {
  int32_t n_layer = 4;
  int32_t n_head = 4;
  int32_t n_embd = 256;
  int32_t n_ctx = 256;  // the longest sequence (learned positions)
  int32_t vocab = 256;
  float ln_eps = 1e-5f;

  // Names the first field out of range ("n_embd 250 is not a multiple of n_head 4").
  [[nodiscard]] Status Validate() const;
  uint64_t NumParams() const;
  std::string ToString() const;  // "4 layers, 4 heads, width 256, context 256, vocabulary 256"
  bool operator==(const Gpt2Config&) const = default;
};

struct TensorSpec {
  std::string name;  // "wte.weight", "h.3.mlp.c_fc.weight", "ln_f.bias"
  uint64_t offset = 0;  // in floats, into the flat buffer
  std::vector<int64_t> shape;
  int layer = -1;  // -1: embeddings and final LayerNorm
  uint64_t numel() const;
};
// Every tensor, in buffer order.
std::vector<TensorSpec> Gpt2Tensors(const Gpt2Config& cfg);
// Offset (in floats) of layer l's first tensor; l == n_layer gives ln_f.weight.
uint64_t Gpt2LayerOffset(const Gpt2Config& cfg, int layer);
// GPT-2's initialisation (normal(0, 0.02), the residual projections scaled by 1/sqrt(2 n_layer),
// LayerNorm weights 1, biases 0), a function of the seed alone: every machine draws the same
// weights. params holds cfg.NumParams() values.
void InitGpt2Weights(const Gpt2Config& cfg, uint64_t seed, std::span<float> params);

class Gpt2 {
 public:
  // threads: the compute threads (0 = all cores). Refuses a config that fails Validate(), and a
  // CPU without the instructions the model kernels were compiled for.
  [[nodiscard]] static Result<std::unique_ptr<Gpt2>> Create(const Gpt2Config& cfg, int threads);
  ~Gpt2();
  Gpt2(const Gpt2&) = delete;
  Gpt2& operator=(const Gpt2&) = delete;

  const Gpt2Config& config() const { return cfg_; }
  uint64_t num_params() const { return n_params_; }
  std::span<float> params() { return {params_.data(), n_params_}; }
  std::span<const float> params() const { return {params_.data(), n_params_}; }
  std::span<float> grads() { return {grads_.data(), n_params_}; }
  int threads() const { return pool_.size(); }
  // Bytes held by activations for the largest (B, T) seen so far.
  uint64_t activation_bytes() const;

  // GPT-2's initialisation, drawn from seed alone: weights N(0, 0.02), residual projections
  // N(0, 0.02 / sqrt(2 n_layer)), biases 0, LayerNorm weight 1.
  void InitRandom(uint64_t seed);

  // Forward over B rows of T tokens (inputs [B, T]; T <= n_ctx). With targets, returns the mean
  // cross-entropy over all B*T positions and keeps what Backward needs; without, returns 0.
  // Errors name the first token id outside the vocabulary or the T over the context.
  [[nodiscard]] Result<float> Forward(std::span<const int32_t> inputs, std::span<const int32_t> targets, int B,
                                      int T);
  // Logits of the last Forward, [B, T, V].
  std::span<const float> logits() const;

  // Gradients of the last Forward's loss into grads() (overwritten, not accumulated). After
  // each part of backward, on_ready(lo) says: every parameter at offset >= lo has its final
  // gradient, and this backward will not read its weight again, so an optimizer may update it
  // now (last layer first; lo = 0 comes last).
  [[nodiscard]] Status Backward(const std::function<void(uint64_t lo)>& on_ready = {});

  // Generates n tokens after prompt (the context window slides when it is full): temperature 0
  // is greedy; otherwise samples from the top_k (0 = all) tokens with a generator seeded by seed.
  [[nodiscard]] Result<std::vector<int32_t>> Sample(std::span<const int32_t> prompt, int n, float temperature,
                                                    int top_k, uint64_t seed);

  struct Acts;

 private:
  Gpt2(const Gpt2Config& cfg, int threads);
  void Reserve(int B, int T);

  Gpt2Config cfg_;
  uint64_t n_params_ = 0;
  AlignedVector<float> params_, grads_;  // 64-byte aligned: see runtime/aligned.h
  ThreadPool pool_;
  std::unique_ptr<Acts> acts_;
};

// The instruction set the model kernels were compiled for ("avx512", "avx2" or "generic").
const char* Gpt2KernelIsa();

}  // namespace strata::model
