// A decoder strata trains, whatever its family: the interface the trainer (train/), the swarm peer
// and the benchmarks see. model/gpt2.h and model/llama.h implement it.
//
// All parameters live in one flat buffer (ModelTensors gives the layout), layer by layer, so the
// optimizer's chunks (offload/) map onto contiguous ranges; backward runs last layer first and
// finishes the high offsets first, saying so through on_ready.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "model/config.h"
#include "runtime/status.h"

namespace strata::model {

class Model {
 public:
  // The family cfg.arch names, with `threads` compute threads (0 = all cores). Refuses a config
  // that fails Validate(), and a CPU without the instructions the model kernels were built for.
  [[nodiscard]] static Result<std::unique_ptr<Model>> Create(const ModelConfig& cfg, int threads);
  virtual ~Model() = default;

  virtual const ModelConfig& config() const = 0;
  virtual uint64_t num_params() const = 0;
  virtual std::span<float> params() = 0;
  virtual std::span<const float> params() const = 0;
  virtual std::span<float> grads() = 0;
  virtual int threads() const = 0;
  // Bytes held by activations for the largest (B, T) seen so far.
  virtual uint64_t activation_bytes() const = 0;
  // Activations: kept for every layer (the default), or only each layer's input kept and the rest
  // recomputed inside backward, layer by layer (one layer's worth of memory instead of L, for a
  // second forward's compute). The results are bitwise the same either way.
  virtual void SetRecompute(bool on) = 0;
  virtual bool recompute() const = 0;
  // InitWeights(config(), seed, params()).
  void InitRandom(uint64_t seed);

  // Forward over B rows of T tokens (inputs [B, T]; T <= n_ctx). With targets, returns the mean
  // cross-entropy over all B*T positions (position t predicts targets[b, t]) and keeps what
  // Backward needs; without, returns 0. Errors name the first token id outside the vocabulary
  // or the T over the context.
  [[nodiscard]] virtual Result<float> Forward(std::span<const int32_t> inputs, std::span<const int32_t> targets,
                                              int B, int T) = 0;
  // Logits of the last Forward, [B, T, V].
  virtual std::span<const float> logits() const = 0;
  // Gradients of the last Forward's loss into grads() (overwritten, not accumulated). After
  // each part of backward, on_ready(lo) says: every parameter at offset >= lo has its final
  // gradient, and this backward will not read its weight again, so an optimizer may update it
  // now (last layer first; lo = 0 comes last).
  [[nodiscard]] virtual Status Backward(const std::function<void(uint64_t lo)>& on_ready = {}) = 0;
  // Generates n tokens after prompt: temperature 0 is greedy; otherwise samples from the top_k
  // (0 = all) tokens with a generator seeded by seed. Costs one forward of one token per new
  // token (a cache of keys and values) while the context lasts. The activations of the last
  // Forward are gone afterwards: no Backward may follow.
  [[nodiscard]] virtual Result<std::vector<int32_t>> Sample(std::span<const int32_t> prompt, int n,
                                                            float temperature, int top_k, uint64_t seed) = 0;
};

// The instruction set the model kernels were compiled for ("avx512", "avx2" or "generic").
const char* ModelKernelIsa();

// One draw from the top_k logits at temperature (0: the largest); shared by every family.
int32_t SampleToken(const float* logits, int V, float temperature, int top_k, uint64_t* rng);

// For the families' implementations (model/gpt2.cc, model/llama.cc):
// the checks of Forward's arguments (B, T against the context, the ids' count and range);
[[nodiscard]] Status CheckBatch(const ModelConfig& cfg, std::span<const int32_t> inputs,
                                std::span<const int32_t> targets, int B, int T);
// Sample's loop over a cache of keys and values: decode(token, pos, logits) runs one token at
// position pos, the cache holding positions < pos; when the context is full the window slides and
// the cache is rebuilt from the new window's first token.
[[nodiscard]] Result<std::vector<int32_t>> SampleWithCache(
    const ModelConfig& cfg, std::span<const int32_t> prompt, int n, float temperature, int top_k, uint64_t seed,
    const std::function<void(int32_t token, int pos, float* logits)>& decode);

}  // namespace strata::model
