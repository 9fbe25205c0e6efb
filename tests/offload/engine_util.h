// Shared by the offload tests and the SIGKILL child: a deterministic run (initial weights,
// gradients and learning rate are functions of chunk and step only), so any two runs of the same
// steps, interrupted or not, must end bitwise identical.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "offload/offload_engine.h"

namespace strata::offload::testing {

inline uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// A value in [-1, 1) from (a, b, i).
inline float Uniform(uint64_t a, uint64_t b, uint64_t i) {
  return static_cast<float>(static_cast<double>(Mix(a * 0x100000001b3ull ^ Mix(b) ^ (i << 1)) >> 40) /
                                double(uint64_t{1} << 23) - 1.0);
}

inline void InitialWeights(uint64_t chunk, std::span<float> w) {
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.1f * Uniform(1, chunk, i);
}
inline void Gradient(uint64_t step, uint64_t chunk, std::span<float> g) {
  // A few large values per chunk so block scales differ.
  for (size_t i = 0; i < g.size(); ++i) g[i] = Uniform(step + 7, chunk, i) * (i % 97 == 0 ? 3.0f : 0.01f);
}
inline double LearningRate(uint64_t step) { return 1e-3 * (1.0 + 0.1 * std::sin(double(step))); }

inline StateHyper TestHyper() { return StateHyper{0.9, 0.999, 1e-8, 0.01}; }

// Runs steps until the engine has committed `target`. For layouts without master weights the
// caller's weights live in *weights (n_params values).
[[nodiscard]] inline Status RunSteps(OffloadEngine* e, uint64_t target, std::vector<float>* weights = nullptr) {
  const Geometry& geo = e->geometry();
  const uint64_t n = geo.n_chunks();
  std::vector<std::vector<float>> grads(n);
  while (e->committed_step() < target) {
    const uint64_t step = e->committed_step() + 1;
    STRATA_RETURN_IF_ERROR(e->BeginStep(LearningRate(step), nullptr));
    Status first;
    for (uint64_t k = 0; k < n; ++k) {
      const uint64_t c = n - 1 - k;  // as backward: last chunk first
      grads[c].resize(geo.chunk_len(c));
      Gradient(step, c, grads[c]);
      std::span<float> w;
      if (weights) w = std::span<float>(weights->data() + geo.chunk_begin(c), geo.chunk_len(c));
      Status st = e->SubmitGradient(c, grads[c], w);
      if (!st.ok() && first.ok()) first = st;
    }
    Status st = e->EndStep();
    if (!first.ok()) return first;
    STRATA_RETURN_IF_ERROR(st);
  }
  return Status::Ok();
}

}  // namespace strata::offload::testing
