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

Status CheckBatch(const ModelConfig& cfg, std::span<const int32_t> inputs, std::span<const int32_t> targets, int B,
                  int T) {
  if (B < 1 || T < 1) return Status::InvalidArgument("forward: batch and sequence length must be >= 1");
  if (T > cfg.n_ctx) {
    return Status::InvalidArgument("forward: sequence length " + std::to_string(T) + " is longer than the context " +
                                   std::to_string(cfg.n_ctx));
  }
  const int64_t N = static_cast<int64_t>(B) * T;
  if (inputs.size() != static_cast<size_t>(N) || (!targets.empty() && targets.size() != static_cast<size_t>(N))) {
    return Status::InvalidArgument("forward: expected " + std::to_string(N) + " token ids for B=" +
                                   std::to_string(B) + ", T=" + std::to_string(T));
  }
  for (auto span : {inputs, targets}) {
    for (size_t i = 0; i < span.size(); ++i) {
      if (span[i] < 0 || span[i] >= cfg.vocab) {
        return Status::InvalidArgument("forward: token id " + std::to_string(span[i]) + " at position " +
                                       std::to_string(i) + " is outside the vocabulary of " +
                                       std::to_string(cfg.vocab));
      }
    }
  }
  return Status::Ok();
}

Result<std::vector<int32_t>> SampleWithCache(const ModelConfig& cfg, std::span<const int32_t> prompt, int n,
                                             float temperature, int top_k, uint64_t seed,
                                             const std::function<void(int32_t, int, float*)>& decode) {
  if (prompt.empty()) return Status::InvalidArgument("sample: the prompt must hold at least one token");
  if (n < 0) return Status::InvalidArgument("sample: n must be >= 0");
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= cfg.vocab) {
      return Status::InvalidArgument("sample: token id " + std::to_string(prompt[i]) + " at position " +
                                     std::to_string(i) + " is outside the vocabulary of " + std::to_string(cfg.vocab));
    }
  }
  const size_t S = static_cast<size_t>(cfg.n_ctx);
  std::vector<int32_t> ctx(prompt.begin(), prompt.end());
  std::vector<int32_t> out;
  std::vector<float> lg(cfg.vocab);
  uint64_t s = seed;
  int filled = 0;  // the cache holds positions [0, filled) of the window starting at window_start
  size_t window_start = ctx.size() > S ? ctx.size() - S : 0;
  for (int i = 0; i < n; ++i) {
    if (ctx.size() - window_start > S) {
      window_start = ctx.size() - S;  // the window slides: positions restart from its first token
      filled = 0;
    }
    while (static_cast<size_t>(filled) < ctx.size() - window_start) {
      decode(ctx[window_start + filled], filled, lg.data());
      ++filled;
    }
    const int32_t next = SampleToken(lg.data(), cfg.vocab, temperature, top_k, &s);
    ctx.push_back(next);
    out.push_back(next);
  }
  return out;
}

}  // namespace strata::model
