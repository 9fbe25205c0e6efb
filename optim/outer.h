// The aggregator's outer update: asynchronous DiLoCo with staleness-aware Bi²Clip (TailOPT,
// arXiv 2502.04164) and (delayed) Nesterov momentum.
//
// For one contribution with base version v_i, arriving while the global version is v = st.version,
// after H_i inner steps, with pseudo-gradient Delta_i (n values):
//   tau   = v - v_i                        refused when v_i > v (from the future) or tau > tau_max
//   g     = hscale * Delta_i               hscale = float(h_ref / H_i) in double, or 1 when h_ref = 0
//   rms   = sqrt(st.rms_sq)                the running RMS of g from BEFORE this contribution; for the
//                                          first contribution (or while it is still 0) g's own RMS
//   s     = (1 + tau)^(-a)                 StalenessScale, in double
//   u     = float(upper_mult * rms * s)    +inf when upper_mult is +inf
//   d     = float(lower_mult * rms * s)
//   c[j]  = sign(g[j]) * clamp(|g[j]|, d, u)   Bi2ClipElem (an exact zero stays zero);
//                                              c = g when clip is false
//   rms_sq <- mean(g^2)                            for the first contribution
//   rms_sq <- beta * rms_sq + (1 - beta) * mean(g^2)  after every later accepted one
// mean(g^2) is a deterministic reduction: g[j]^2 in double, summed in order within fixed blocks of
// kOuterReduceBlock values, the block sums then added in block order (the same for any thread count).
//
// Momentum, K = apply_every:
//   K = 1, nesterov: b = mu*b + c ; step = eta*(c + mu*b)
//   K = 1, plain:    b = mu*b + c ; step = eta*b
//   K > 1 (delayed Nesterov): pending += c on every accepted arrival and nothing is due; on the K-th,
//          cbar = pending / K (one float division per value), then the K = 1 rule with c = cbar
//          (Nesterov or plain as configured), pending = 0. Theta moves only every K-th arrival.
// The caller subtracts `step` from theta (after quantizing it for the peers, see net/pg_codec.h).
//
// The version counter: OuterAccept reads st.version for the staleness but never changes it; the
// caller (the aggregator) bumps it when it applies a step.
//
// Every per-value kernel is written once below (STRATA_HD). OuterAcceptRef is the scalar oracle;
// OuterAccept is the same math over a thread pool, bitwise identical for any thread count.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "runtime/hd.h"
#include "runtime/status.h"

namespace strata {
class ThreadPool;
}

namespace strata::optim {

// Values per block of the mean(g^2) reduction (part of the definition of the result).
inline constexpr int64_t kOuterReduceBlock = 4096;

struct OuterConfig {
  float eta = 0.7f;          // outer learning rate, finite and > 0
  float mu = 0.9f;           // outer momentum, in [0, 1)
  float a = 0.5f;            // staleness exponent of the band, finite and >= 0 (0: no damping)
  float upper_mult = 3.0f;   // upper clip in units of the running RMS of g; > 0, +inf = no upper clip
  float lower_mult = 0.0f;   // lower clip in units of the running RMS of g; finite, >= 0, <= upper_mult
  float rms_beta = 0.9f;     // EMA factor of the running mean(g^2), in [0, 1)
  uint32_t tau_max = 8;      // largest accepted staleness in versions (0: only fresh contributions)
  uint32_t h_ref = 0;        // reference inner steps for g = (h_ref / H_i) * Delta; 0: no rescale
  bool nesterov = true;      // Nesterov step; false: plain heavy-ball step eta*b
  bool clip = true;          // false: no Bi²Clip at all (plain asynchronous DiLoCo)
  uint32_t apply_every = 1;  // K: contributions averaged into one delayed step, >= 1
};

// InvalidArgument naming the offending field.
[[nodiscard]] Status ValidateOuterConfig(const OuterConfig& cfg);

struct OuterState {
  uint64_t version = 0;          // global version of theta; bumped by the caller, never by OuterAccept
  double rms_sq = 0;             // running mean(g^2) (EMA over contributions), valid when rms_set
  bool rms_set = false;          // false until the first accepted contribution
  std::vector<float> momentum;   // b, (n); sized by MakeOuterState
  std::vector<float> pending;    // sum of the c's since the last delayed step, (n) when apply_every > 1
  uint32_t pending_count = 0;    // accepted contributions summed into `pending`
};

// A fresh state for a model of n values (n >= 1): zero momentum, pending sized when cfg.apply_every > 1.
OuterState MakeOuterState(size_t n, const OuterConfig& cfg, uint64_t version = 0);

struct ContribInfo {
  uint64_t base_version;  // the global version the peer started its inner steps from
  uint32_t inner_steps;   // H_i, the inner steps behind Delta (>= 1)
};

enum class Refusal : uint8_t { kNone, kTooStale, kFromFuture, kNonFinite, kWrongShape, kZeroInnerSteps };
std::string_view RefusalName(Refusal r);

struct OuterOutcome {
  Refusal refusal = Refusal::kNone;  // kNone: accepted and folded into the state
  bool step_due = false;             // `step` was written and must be applied
  uint32_t tau = 0;                  // staleness in versions (set when the versions were comparable)
  float upper = 0, lower = 0;        // the clipping band u, d used for this contribution (inf / 0 without clip)
  double g_rms = 0;                  // RMS of this contribution's g over all values
};

// ---- Math, written once for host and device -----------------------------------------------------

// (1 + tau)^(-a): 1 at tau = 0, non-increasing in tau for a >= 0.
STRATA_HD double StalenessScale(double tau, double a) { return pow(1.0 + tau, -a); }

// One edge of the clipping band: mult * rms * scale rounded to float; +inf stays +inf even at rms 0.
STRATA_HD float BandEdge(double mult, double rms, double scale) {
  return mult > 1.7976931348623157e308 ? static_cast<float>(mult) : static_cast<float>(mult * rms * scale);
}

// sign(g) * clamp(|g|, d, u) with 0 <= d <= u; an exact zero (either sign) is returned as is.
STRATA_HD float Bi2ClipElem(float g, float d, float u) {
  const float m = hd_fabs(g);
  const float clamped = m < d ? d : (m > u ? u : m);
  return g > 0.0f ? clamped : (g < 0.0f ? -clamped : g);
}

// Momentum update of one value: b = mu*b + c; returns the step to subtract from theta,
// eta*(c + mu*b) (Nesterov) or eta*b (plain).
STRATA_HD float NesterovElem(float& b, float c, float eta, float mu) {
  b = mu * b + c;
  return eta * (c + mu * b);
}
STRATA_HD float MomentumElem(float& b, float c, float eta, float mu) {
  b = mu * b + c;
  return eta * b;
}

// ---- Over arrays ----------------------------------------------------------------------------------

// Checks, clips and folds one decoded pseudo-gradient (delta, n = st.momentum.size() values) into the
// state. When a step is due (every accepted contribution with apply_every = 1, every K-th otherwise)
// writes it into `step` (n values) and sets step_due; otherwise `step` is left untouched. Never
// touches theta. A refused contribution leaves the state and `step` untouched. A bad config or a
// `step` of the wrong size is a bug (aborts).
OuterOutcome OuterAccept(const OuterConfig& cfg, OuterState& st, const ContribInfo& ci,
                         std::span<const float> delta, std::span<float> step, ThreadPool* pool = nullptr);

// The scalar oracle of OuterAccept (straightforward loops, one value at a time, no threads).
OuterOutcome OuterAcceptRef(const OuterConfig& cfg, OuterState& st, const ContribInfo& ci,
                            std::span<const float> delta, std::span<float> step);

}  // namespace strata::optim
