// The family dispatch and what every family shares (compiled without the model kernels' ISA).
#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "model/gpt2.h"
#include "model/llama.h"
#include "runtime/random.h"

namespace strata::model {

Result<std::unique_ptr<Model>> Model::Create(const ModelConfig& cfg, int threads) {
  if (cfg.is_gpt2()) {
    Result<std::unique_ptr<Gpt2>> m = Gpt2::Create(cfg, threads);
    if (!m.ok()) return m.status();
    return std::unique_ptr<Model>(std::move(*m));
  }
  Result<std::unique_ptr<Llama>> m = Llama::Create(cfg, threads);
  if (!m.ok()) return m.status();
  return std::unique_ptr<Model>(std::move(*m));
}

void Model::InitRandom(uint64_t seed) { InitWeights(config(), seed, params()); }

int32_t SampleToken(const float* lg, int V, float temperature, int top_k, uint64_t* rng) {
  if (temperature <= 0.0f) return static_cast<int32_t>(std::max_element(lg, lg + V) - lg);
  std::vector<std::pair<float, int32_t>> cand(V);
  for (int v = 0; v < V; ++v) cand[v] = {lg[v], v};
  const int k = (top_k > 0 && top_k < V) ? top_k : V;
  std::partial_sort(cand.begin(), cand.begin() + k, cand.end(), [](const auto& x, const auto& y) {
    return x.first > y.first || (x.first == y.first && x.second < y.second);
  });
  double total = 0;
  std::vector<double> w(k);
  for (int j = 0; j < k; ++j) total += (w[j] = std::exp((cand[j].first - cand[0].first) / temperature));
  double u = Uniform01(*rng) * total;
  for (int j = 0; j < k; ++j) {
    if ((u -= w[j]) <= 0) return cand[j].second;
  }
  return cand[k - 1].second;
}

}  // namespace strata::model
