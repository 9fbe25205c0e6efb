#include "optim/outer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "runtime/thread_pool.h"

namespace strata::optim {

namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

bool Finite(float v) { return std::isfinite(v); }

// The checks that need no pass over the values, in the order they are reported.
// Returns kNone and sets *tau when the contribution may go on.
Refusal CheckHeader(const OuterConfig& cfg, const OuterState& st, const ContribInfo& ci, size_t n,
                    uint32_t* tau) {
  if (n == 0 || n != st.momentum.size()) return Refusal::kWrongShape;
  if (ci.inner_steps == 0) return Refusal::kZeroInnerSteps;
  if (ci.base_version > st.version) return Refusal::kFromFuture;
  const uint64_t t = st.version - ci.base_version;
  if (t > cfg.tau_max) return Refusal::kTooStale;
  *tau = static_cast<uint32_t>(t);
  return Refusal::kNone;
}

float HScale(const OuterConfig& cfg, uint32_t inner_steps) {
  return cfg.h_ref == 0 ? 1.0f : static_cast<float>(static_cast<double>(cfg.h_ref) / inner_steps);
}

// The band and the EMA, from mean(g^2) of this contribution (shared by the fast path and the oracle:
// scalar bookkeeping, once per contribution).
struct Band {
  float lower, upper;
};
Band ComputeBand(const OuterConfig& cfg, const OuterState& st, double mean_g2, uint32_t tau) {
  if (!cfg.clip) return {0.0f, std::numeric_limits<float>::infinity()};
  const bool have = st.rms_set && st.rms_sq > 0.0;
  const double rms = std::sqrt(have ? st.rms_sq : mean_g2);
  const double s = StalenessScale(tau, cfg.a);
  return {BandEdge(cfg.lower_mult, rms, s), BandEdge(cfg.upper_mult, rms, s)};
}

void UpdateRms(const OuterConfig& cfg, OuterState& st, double mean_g2) {
  const bool have = st.rms_set && st.rms_sq > 0.0;
  st.rms_sq = have ? cfg.rms_beta * st.rms_sq + (1.0 - cfg.rms_beta) * mean_g2 : mean_g2;
  st.rms_set = true;
}

// Sum of (double)g^2 over one reduction block, in order; false when some g is not finite.
bool BlockSumSq(const float* delta, int64_t len, float hscale, double* sum) {
  double acc = 0.0;
  bool finite = true;
  for (int64_t j = 0; j < len; ++j) {
    const float g = hscale * delta[j];
    finite &= Finite(g);
    acc += static_cast<double>(g) * static_cast<double>(g);
  }
  *sum = acc;
  return finite;
}

}  // namespace

Status ValidateOuterConfig(const OuterConfig& c) {
  auto bad = [](const char* field, double v, const char* want) {
    return Status::InvalidArgument(std::string("outer config: ") + field + " must be " + want + " (got " + Num(v) + ")");
  };
  if (!(std::isfinite(c.eta) && c.eta > 0.0f)) return bad("eta", c.eta, "finite and > 0");
  if (!(c.mu >= 0.0f && c.mu < 1.0f)) return bad("mu", c.mu, "in [0, 1)");
  if (!(std::isfinite(c.a) && c.a >= 0.0f)) return bad("a", c.a, "finite and >= 0");
  if (!(c.upper_mult > 0.0f)) return bad("upper_mult", c.upper_mult, "> 0 (+inf: no upper clip)");
  if (!(std::isfinite(c.lower_mult) && c.lower_mult >= 0.0f)) return bad("lower_mult", c.lower_mult, "finite and >= 0");
  if (!(c.upper_mult >= c.lower_mult))
    return Status::InvalidArgument("outer config: upper_mult (" + Num(c.upper_mult) + ") must be >= lower_mult (" +
                                   Num(c.lower_mult) + ")");
  if (!(c.rms_beta >= 0.0f && c.rms_beta < 1.0f)) return bad("rms_beta", c.rms_beta, "in [0, 1)");
  if (c.apply_every == 0) return bad("apply_every", 0, ">= 1");
  return Status::Ok();
}

OuterState MakeOuterState(size_t n, const OuterConfig& cfg, uint64_t version) {
  STRATA_CHECK(n >= 1);
  OuterState st;
  st.version = version;
  st.momentum.assign(n, 0.0f);
  if (cfg.apply_every > 1) st.pending.assign(n, 0.0f);
  return st;
}

std::string_view RefusalName(Refusal r) {
  switch (r) {
    case Refusal::kNone: return "none";
    case Refusal::kTooStale: return "too_stale";
    case Refusal::kFromFuture: return "from_future";
    case Refusal::kNonFinite: return "non_finite";
    case Refusal::kWrongShape: return "wrong_shape";
    case Refusal::kZeroInnerSteps: return "zero_inner_steps";
  }
  return "unknown";
}

// ---- The oracle -----------------------------------------------------------------------------------

OuterOutcome OuterAcceptRef(const OuterConfig& cfg, OuterState& st, const ContribInfo& ci,
                            std::span<const float> delta, std::span<float> step) {
  STRATA_CHECK(ValidateOuterConfig(cfg).ok());
  STRATA_CHECK(step.size() == st.momentum.size());
  OuterOutcome out;
  out.refusal = CheckHeader(cfg, st, ci, delta.size(), &out.tau);
  if (out.refusal != Refusal::kNone) return out;
  const int64_t n = static_cast<int64_t>(delta.size());

  const float hscale = HScale(cfg, ci.inner_steps);
  std::vector<float> g(n);
  for (int64_t j = 0; j < n; ++j) g[j] = hscale * delta[j];
  for (int64_t j = 0; j < n; ++j) {
    if (!Finite(g[j])) {
      out.refusal = Refusal::kNonFinite;
      return out;
    }
  }
  double total = 0.0;
  for (int64_t b = 0; b < n; b += kOuterReduceBlock) {
    double block = 0.0;
    for (int64_t j = b; j < std::min(n, b + kOuterReduceBlock); ++j) block += static_cast<double>(g[j]) * g[j];
    total += block;
  }
  const double mean_g2 = total / static_cast<double>(n);
  out.g_rms = std::sqrt(mean_g2);

  const Band band = ComputeBand(cfg, st, mean_g2, out.tau);
  out.lower = band.lower;
  out.upper = band.upper;
  std::vector<float> c(n);
  for (int64_t j = 0; j < n; ++j) c[j] = cfg.clip ? Bi2ClipElem(g[j], band.lower, band.upper) : g[j];
  UpdateRms(cfg, st, mean_g2);

  if (cfg.apply_every > 1) {
    if (st.pending.size() != static_cast<size_t>(n)) {
      STRATA_CHECK(st.pending_count == 0);
      st.pending.assign(n, 0.0f);
    }
    for (int64_t j = 0; j < n; ++j) st.pending[j] += c[j];
    if (++st.pending_count < cfg.apply_every) return out;
    const float k = static_cast<float>(cfg.apply_every);
    for (int64_t j = 0; j < n; ++j) {
      c[j] = st.pending[j] / k;
      st.pending[j] = 0.0f;
    }
    st.pending_count = 0;
  }
  for (int64_t j = 0; j < n; ++j)
    step[j] = cfg.nesterov ? NesterovElem(st.momentum[j], c[j], cfg.eta, cfg.mu)
                           : MomentumElem(st.momentum[j], c[j], cfg.eta, cfg.mu);
  out.step_due = true;
  return out;
}

// ---- The fast path: two passes over the values, each split across the pool --------------------------

OuterOutcome OuterAccept(const OuterConfig& cfg, OuterState& st, const ContribInfo& ci,
                         std::span<const float> delta, std::span<float> step, ThreadPool* pool) {
  STRATA_CHECK(ValidateOuterConfig(cfg).ok());
  STRATA_CHECK(step.size() == st.momentum.size());
  OuterOutcome out;
  out.refusal = CheckHeader(cfg, st, ci, delta.size(), &out.tau);
  if (out.refusal != Refusal::kNone) return out;
  const int64_t n = static_cast<int64_t>(delta.size());
  const float hscale = HScale(cfg, ci.inner_steps);

  // Pass 1: finiteness and the per-block sums of g^2 (ranges cut on block boundaries, so each block
  // is summed whole by one thread, in order).
  const int64_t nblocks = (n + kOuterReduceBlock - 1) / kOuterReduceBlock;
  std::vector<double> block_sum(nblocks);
  std::vector<uint8_t> block_ok(nblocks);
  auto pass1 = [&](int64_t b, int64_t e) {
    for (int64_t s = b; s < e; s += kOuterReduceBlock) {
      const int64_t len = std::min(e, s + kOuterReduceBlock) - s;
      block_ok[s / kOuterReduceBlock] = BlockSumSq(delta.data() + s, len, hscale, &block_sum[s / kOuterReduceBlock]);
    }
  };
  if (pool) pool->ParallelFor(n, kOuterReduceBlock, pass1); else pass1(0, n);
  double total = 0.0;
  for (int64_t k = 0; k < nblocks; ++k) {
    if (!block_ok[k]) {
      out.refusal = Refusal::kNonFinite;
      return out;
    }
    total += block_sum[k];
  }
  const double mean_g2 = total / static_cast<double>(n);
  out.g_rms = std::sqrt(mean_g2);
  const Band band = ComputeBand(cfg, st, mean_g2, out.tau);
  out.lower = band.lower;
  out.upper = band.upper;
  UpdateRms(cfg, st, mean_g2);

  // Pass 2: clip and fold, every value on its own.
  const uint32_t K = cfg.apply_every;
  bool due = true;
  if (K > 1) {
    if (st.pending.size() != static_cast<size_t>(n)) {
      STRATA_CHECK(st.pending_count == 0);
      st.pending.assign(n, 0.0f);
    }
    due = ++st.pending_count == K;
    if (due) st.pending_count = 0;
  }
  const float kf = static_cast<float>(K);
  const bool clip = cfg.clip, nesterov = cfg.nesterov;
  const float d = band.lower, u = band.upper, eta = cfg.eta, mu = cfg.mu;
  float* b = st.momentum.data();
  float* p = st.pending.data();
  auto pass2 = [&](int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; ++j) {
      const float g = hscale * delta[j];
      float c = clip ? Bi2ClipElem(g, d, u) : g;
      if (K > 1) {
        p[j] += c;
        if (!due) continue;
        c = p[j] / kf;
        p[j] = 0.0f;
      }
      step[j] = nesterov ? NesterovElem(b[j], c, eta, mu) : MomentumElem(b[j], c, eta, mu);
    }
  };
  if (pool) pool->ParallelFor(n, kOuterReduceBlock, pass2); else pass2(0, n);
  out.step_due = due;
  return out;
}

}  // namespace strata::optim
