#include "optim/outer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "runtime/thread_pool.h"

namespace strata::optim {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Heavy-tailed values with exact zeros of both signs: a normal core, one value in 20 scaled by 30.
std::vector<float> HeavyTailed(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 39);
  std::vector<float> x(n);
  for (auto& v : x) {
    const int k = pick(rng);
    v = k == 0 ? 0.0f : k == 1 ? -0.0f : k < 4 ? 30.0f * normal(rng) : normal(rng);
  }
  return x;
}

// Every byte of a state, for "untouched" and "identical" comparisons.
std::vector<uint8_t> Bytes(const OuterState& st) {
  std::vector<uint8_t> out;
  auto put = [&](const void* p, size_t len) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + len);
  };
  put(&st.version, sizeof st.version);
  put(&st.rms_sq, sizeof st.rms_sq);
  const uint8_t set = st.rms_set;
  put(&set, 1);
  const uint64_t nm = st.momentum.size(), np = st.pending.size();
  put(&nm, 8);
  put(st.momentum.data(), nm * 4);
  put(&np, 8);
  put(st.pending.data(), np * 4);
  put(&st.pending_count, sizeof st.pending_count);
  return out;
}

std::vector<uint8_t> Bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

bool SameBits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }
// Same bits, except that +0 and -0 count as equal (the sign of a zero step depends on b's sign).
bool SameValue(float a, float b) { return SameBits(a, b) || (a == 0.0f && b == 0.0f); }

double MeanSq(const std::vector<float>& g) {
  double s = 0;
  for (float v : g) s += static_cast<double>(v) * v;
  return s / static_cast<double>(g.size());
}

// eta = 1, mu = 0: the step is the clipped value c itself (b = c, step = 1 * (c + 0 * b)).
OuterConfig IdentityStep() {
  OuterConfig cfg;
  cfg.eta = 1.0f;
  cfg.mu = 0.0f;
  return cfg;
}

// ---- Fast path against the oracle --------------------------------------------------------------

TEST(OuterFastVsRef, BitwiseOnAwkwardSizesAndThreadCounts) {
  OuterConfig clipped;  // defaults with a lower clip, so both edges act
  clipped.lower_mult = 0.25f;
  OuterConfig delayed_plain;
  delayed_plain.apply_every = 3;
  delayed_plain.nesterov = false;
  delayed_plain.h_ref = 8;
  delayed_plain.lower_mult = 0.1f;
  OuterConfig no_clip;
  no_clip.clip = false;
  no_clip.apply_every = 2;
  const OuterConfig configs[] = {clipped, delayed_plain, no_clip};
  // (tau, inner steps) per arrival; tau 9 is refused (too stale), H 0 too.
  const std::pair<uint32_t, uint32_t> arrivals[] = {{0, 8}, {2, 5}, {1, 8}, {9, 8}, {0, 0}, {3, 13}, {0, 1}, {8, 8}};
  ThreadPool two(2);
  for (size_t n : {size_t{1}, size_t{7}, size_t{255}, size_t{256}, size_t{257}, size_t{4097}, size_t{100003}}) {
    for (int ci = 0; ci < 3; ++ci) {
      const OuterConfig& cfg = configs[ci];
      for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two}) {
        OuterState ref = MakeOuterState(n, cfg, 10), fast = MakeOuterState(n, cfg, 10);
        uint32_t seed = 1;
        for (auto [tau, h] : arrivals) {
          const std::vector<float> delta = HeavyTailed(n, seed++ * 7919 + static_cast<uint32_t>(n));
          std::vector<float> s_ref(n, 5.0f), s_fast(n, 5.0f);
          const ContribInfo info{ref.version - tau, h};
          const OuterOutcome o_ref = OuterAcceptRef(cfg, ref, info, delta, s_ref);
          const OuterOutcome o_fast = OuterAccept(cfg, fast, info, delta, s_fast, pool);
          const std::string where = "n=" + std::to_string(n) + " config " + std::to_string(ci) + " threads " +
                                    std::to_string(pool ? 2 : 1) + " tau " + std::to_string(tau);
          ASSERT_EQ(o_ref.refusal, o_fast.refusal) << where;
          ASSERT_EQ(o_ref.step_due, o_fast.step_due) << where;
          ASSERT_EQ(o_ref.tau, o_fast.tau) << where;
          ASSERT_TRUE(SameBits(o_ref.upper, o_fast.upper)) << where;
          ASSERT_TRUE(SameBits(o_ref.lower, o_fast.lower)) << where;
          ASSERT_EQ(std::memcmp(&o_ref.g_rms, &o_fast.g_rms, 8), 0) << where;
          ASSERT_EQ(Bytes(s_ref), Bytes(s_fast)) << where;
          ASSERT_EQ(Bytes(ref), Bytes(fast)) << where;
          if (o_ref.step_due) {
            ++ref.version;
            ++fast.version;
          }
        }
        EXPECT_GT(ref.version, 10u);
      }
    }
  }
}

// ---- The clipping band ----------------------------------------------------------------------------

TEST(OuterClip, FreshContributionIsBi2ClipExactly) {
  OuterConfig cfg = IdentityStep();
  cfg.lower_mult = 0.5f;
  cfg.upper_mult = 2.0f;
  const size_t n = 1009;
  OuterState st = MakeOuterState(n, cfg, 4);
  const std::vector<float> g1 = HeavyTailed(n, 11), g2 = HeavyTailed(n, 12);
  std::vector<float> step(n);
  ASSERT_EQ(OuterAccept(cfg, st, {4, 1}, g1, step).refusal, Refusal::kNone);
  st.version = 5;
  const OuterOutcome o = OuterAccept(cfg, st, {5, 1}, g2, step);
  ASSERT_EQ(o.refusal, Refusal::kNone);
  ASSERT_EQ(o.tau, 0u);
  // The band comes from the RMS of the first contribution (the one before), undamped at tau 0.
  const double rms1 = std::sqrt(MeanSq(g1));
  EXPECT_NEAR(o.upper, 2.0 * rms1, 1e-5 * rms1);
  EXPECT_NEAR(o.lower, 0.5 * rms1, 1e-5 * rms1);
  int above = 0, below = 0;
  for (size_t j = 0; j < n; ++j) {
    const float a = std::fabs(g2[j]);
    const float want = g2[j] == 0.0f ? 0.0f : std::copysign(std::min(std::max(a, o.lower), o.upper), g2[j]);
    ASSERT_TRUE(SameValue(step[j], want)) << "j=" << j << " g=" << g2[j] << " step=" << step[j] << " want " << want;
    above += a > o.upper;
    below += a != 0.0f && a < o.lower;
  }
  EXPECT_GT(above, 10);  // both edges were exercised
  EXPECT_GT(below, 10);
}

TEST(OuterClip, NoDampingNoClipIsPlainAsyncDiLoCo) {
  OuterConfig open;  // a = 0, band [0, +inf)
  open.a = 0.0f;
  open.lower_mult = 0.0f;
  open.upper_mult = kInf;
  OuterConfig off;  // no Bi²Clip at all
  off.clip = false;
  OuterConfig off_plain = off;
  off_plain.nesterov = false;
  for (const OuterConfig& cfg : {open, off, off_plain}) {
    const size_t n = 257;
    OuterState st = MakeOuterState(n, cfg, 20);
    std::vector<float> b(n, 0.0f), step(n);
    const uint32_t taus[] = {0, 3, 1, 5, 8};
    for (int k = 0; k < 5; ++k) {
      const std::vector<float> g = HeavyTailed(n, 100 + k);
      const OuterOutcome o = OuterAccept(cfg, st, {st.version - taus[k], 1}, g, step);
      ASSERT_EQ(o.refusal, Refusal::kNone);
      ASSERT_TRUE(o.step_due);
      EXPECT_EQ(o.upper, kInf);
      EXPECT_EQ(o.lower, 0.0f);
      for (size_t j = 0; j < n; ++j) {
        b[j] = cfg.mu * b[j] + g[j];
        const float want = cfg.nesterov ? cfg.eta * (g[j] + cfg.mu * b[j]) : cfg.eta * b[j];
        ASSERT_TRUE(SameBits(step[j], want)) << "arrival " << k << " j=" << j;
      }
      ++st.version;
    }
  }
}

TEST(OuterClip, MagnitudeNeverGrowsWithStaleness) {
  OuterConfig cfg = IdentityStep();
  cfg.lower_mult = 0.5f;
  cfg.upper_mult = 2.0f;
  const size_t n = 4099;
  OuterState base = MakeOuterState(n, cfg, 30);
  std::vector<float> step(n);
  ASSERT_EQ(OuterAccept(cfg, base, {30, 1}, HeavyTailed(n, 5), step).refusal, Refusal::kNone);
  const std::vector<float> g = HeavyTailed(n, 6);
  std::vector<float> prev;
  float prev_upper = kInf;
  int shrunk = 0;
  for (uint32_t tau = 0; tau <= 8; ++tau) {
    OuterState st = base;
    std::vector<float> c(n);
    const OuterOutcome o = OuterAccept(cfg, st, {30 - tau, 1}, g, c);
    ASSERT_EQ(o.refusal, Refusal::kNone);
    ASSERT_EQ(o.tau, tau);
    EXPECT_LT(o.upper, prev_upper) << "tau " << tau;
    prev_upper = o.upper;
    if (!prev.empty()) {
      for (size_t j = 0; j < n; ++j) {
        ASSERT_LE(std::fabs(c[j]), std::fabs(prev[j])) << "tau " << tau << " j=" << j;
        shrunk += std::fabs(c[j]) < std::fabs(prev[j]);
      }
    }
    prev = c;
  }
  EXPECT_GT(shrunk, 100);
}

TEST(OuterRms, BandUsesTheRunningRmsFromBefore) {
  OuterConfig cfg;
  cfg.rms_beta = 0.75f;
  const size_t n = 300;
  OuterState st = MakeOuterState(n, cfg, 0);
  std::vector<float> g1 = HeavyTailed(n, 1), g2 = HeavyTailed(n, 2), step(n);
  for (auto& v : g2) v *= 10.0f;
  const double m1 = MeanSq(g1), m2 = MeanSq(g2);
  const OuterOutcome o1 = OuterAccept(cfg, st, {0, 1}, g1, step);
  EXPECT_NEAR(o1.g_rms, std::sqrt(m1), 1e-9 * std::sqrt(m1));
  EXPECT_NEAR(o1.upper, 3.0 * std::sqrt(m1), 1e-5 * std::sqrt(m1));  // the first uses its own RMS
  EXPECT_TRUE(st.rms_set);
  EXPECT_NEAR(st.rms_sq, m1, 1e-9 * m1);
  st.version = 1;
  const OuterOutcome o2 = OuterAccept(cfg, st, {1, 1}, g2, step);
  EXPECT_NEAR(o2.upper, 3.0 * std::sqrt(m1), 1e-5 * std::sqrt(m1));  // not g2's own (10x larger)
  EXPECT_NEAR(o2.g_rms, std::sqrt(m2), 1e-9 * std::sqrt(m2));
  EXPECT_NEAR(st.rms_sq, 0.75 * m1 + 0.25 * m2, 1e-9 * m2);
}

// ---- Refusals ---------------------------------------------------------------------------------------

using AcceptFn = OuterOutcome (*)(const OuterConfig&, OuterState&, const ContribInfo&, std::span<const float>,
                                  std::span<float>);
OuterOutcome FastNoPool(const OuterConfig& c, OuterState& s, const ContribInfo& i, std::span<const float> d,
                        std::span<float> o) {
  return OuterAccept(c, s, i, d, o);
}

void ExpectRefused(const OuterConfig& cfg, const OuterState& st0, const ContribInfo& info,
                   const std::vector<float>& delta, Refusal want, const std::string& what) {
  for (AcceptFn fn : {&FastNoPool, &OuterAcceptRef}) {
    OuterState st = st0;
    const std::vector<uint8_t> before = Bytes(st);
    std::vector<float> step(st.momentum.size(), 42.0f);
    const OuterOutcome o = fn(cfg, st, info, delta, step);
    EXPECT_EQ(o.refusal, want) << what << ": got " << RefusalName(o.refusal);
    EXPECT_FALSE(o.step_due) << what;
    EXPECT_EQ(Bytes(st), before) << what << ": state changed";
    EXPECT_EQ(Bytes(step), Bytes(std::vector<float>(st.momentum.size(), 42.0f))) << what << ": step written";
  }
}

TEST(OuterRefusal, EachReasonLeavesStateUntouched) {
  OuterConfig cfg;
  cfg.apply_every = 3;  // so `pending` holds something that must survive
  const size_t n = 513;
  OuterState st = MakeOuterState(n, cfg, 10);
  std::vector<float> step(n);
  for (int k = 0; k < 4; ++k) {  // momentum, rms and a half-full pending
    ASSERT_EQ(OuterAccept(cfg, st, {st.version, 4}, HeavyTailed(n, 40 + k), step).refusal, Refusal::kNone);
    if (k == 2) ++st.version;
  }
  ASSERT_EQ(st.pending_count, 1u);
  const std::vector<float> good = HeavyTailed(n, 50);

  ExpectRefused(cfg, st, {st.version - 9, 4}, good, Refusal::kTooStale, "tau 9 > tau_max 8");
  ExpectRefused(cfg, st, {0, 4}, good, Refusal::kTooStale, "tau 11");
  ExpectRefused(cfg, st, {st.version + 1, 4}, good, Refusal::kFromFuture, "base version ahead");
  ExpectRefused(cfg, st, {~uint64_t{0}, 4}, good, Refusal::kFromFuture, "base version 2^64-1");
  ExpectRefused(cfg, st, {st.version, 0}, good, Refusal::kZeroInnerSteps, "H = 0");
  for (size_t len : {size_t{0}, n - 1, n + 1, size_t{1}}) {
    ExpectRefused(cfg, st, {st.version, 4}, std::vector<float>(len, 1.0f), Refusal::kWrongShape,
                  "size " + std::to_string(len));
  }
  for (size_t pos : {size_t{0}, n / 2, n - 1}) {
    for (float bad : {kNaN, kInf, -kInf}) {
      std::vector<float> d = good;
      d[pos] = bad;
      ExpectRefused(cfg, st, {st.version, 4}, d, Refusal::kNonFinite,
                    "value " + std::to_string(bad) + " at " + std::to_string(pos));
    }
  }
  // Finite Delta whose H-rescaled g overflows.
  OuterConfig rescale = cfg;
  rescale.h_ref = 4;
  std::vector<float> big = good;
  big[n - 1] = 3.0e38f;
  ExpectRefused(rescale, st, {st.version, 1}, big, Refusal::kNonFinite, "g = 4 * 3e38");

  // tau_max 0: only fresh contributions.
  OuterConfig fresh = cfg;
  fresh.tau_max = 0;
  ExpectRefused(fresh, st, {st.version - 1, 4}, good, Refusal::kTooStale, "tau 1 with tau_max 0");
  OuterState s2 = st;
  EXPECT_EQ(OuterAccept(fresh, s2, {st.version, 4}, good, step).refusal, Refusal::kNone);
}

TEST(OuterRefusal, NamesAreDistinct) {
  const Refusal all[] = {Refusal::kNone,       Refusal::kTooStale,   Refusal::kFromFuture,
                         Refusal::kNonFinite,  Refusal::kWrongShape, Refusal::kZeroInnerSteps};
  for (Refusal a : all)
    for (Refusal b : all)
      if (a != b) {
        EXPECT_NE(RefusalName(a), RefusalName(b));
      }
  EXPECT_EQ(RefusalName(Refusal::kTooStale), "too_stale");
}

// ---- Inner-step rescale, delayed steps, momentum ------------------------------------------------------

TEST(OuterRescale, ScalesByHrefOverH) {
  OuterConfig cfg = IdentityStep();
  cfg.clip = false;
  cfg.h_ref = 8;
  const size_t n = 255;
  const std::vector<float> d = HeavyTailed(n, 9);
  for (uint32_t h : {1u, 3u, 4u, 8u, 16u}) {
    OuterState st = MakeOuterState(n, cfg, 0);
    std::vector<float> step(n);
    const OuterOutcome o = OuterAccept(cfg, st, {0, h}, d, step);
    ASSERT_EQ(o.refusal, Refusal::kNone);
    const float scale = static_cast<float>(8.0 / h);
    std::vector<float> g(n);
    for (size_t j = 0; j < n; ++j) {
      g[j] = scale * d[j];
      ASSERT_TRUE(SameValue(step[j], g[j])) << "H=" << h << " j=" << j;
    }
    EXPECT_NEAR(o.g_rms, std::sqrt(MeanSq(g)), 1e-9 * o.g_rms) << "H=" << h;
  }
  // h_ref 0: no rescale whatever H is.
  cfg.h_ref = 0;
  OuterState st = MakeOuterState(n, cfg, 0);
  std::vector<float> step(n);
  ASSERT_EQ(OuterAccept(cfg, st, {0, 7}, d, step).refusal, Refusal::kNone);
  for (size_t j = 0; j < n; ++j) ASSERT_TRUE(SameValue(step[j], d[j]));
}

TEST(OuterDelayed, StepDueOnlyOnTheKthAcceptedArrival) {
  OuterConfig cfg;
  cfg.clip = false;
  cfg.eta = 0.5f;
  cfg.mu = 0.9f;
  cfg.apply_every = 3;
  const size_t n = 7;
  ThreadPool two(2);
  for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two}) {
    OuterState st = MakeOuterState(n, cfg, 0);
    std::vector<float> step(n, -1.0f);
    auto arrive = [&](float v, uint32_t h = 1) {
      std::vector<float> d(n);
      for (size_t j = 0; j < n; ++j) d[j] = v * static_cast<float>(j + 1);
      return OuterAccept(cfg, st, {st.version, h}, d, step, pool);
    };
    EXPECT_FALSE(arrive(1).step_due);
    EXPECT_EQ(step, std::vector<float>(n, -1.0f));  // untouched while not due
    EXPECT_EQ(arrive(2, 0).refusal, Refusal::kZeroInnerSteps);  // a refusal does not count
    EXPECT_FALSE(arrive(2).step_due);
    EXPECT_EQ(step, std::vector<float>(n, -1.0f));
    EXPECT_TRUE(arrive(6).step_due);  // mean 3: b = 3, step = 0.5 * (3 + 0.9 * 3) = 2.85
    for (size_t j = 0; j < n; ++j) EXPECT_NEAR(step[j], 2.85 * (j + 1), 1e-5 * (j + 1)) << j;
    EXPECT_EQ(st.pending_count, 0u);
    EXPECT_EQ(st.pending, std::vector<float>(n, 0.0f));
    ++st.version;
    EXPECT_FALSE(arrive(3).step_due);
    EXPECT_FALSE(arrive(3).step_due);
    EXPECT_TRUE(arrive(3).step_due);  // b = 0.9 * 3 + 3 = 5.7, step = 0.5 * (3 + 0.9 * 5.7) = 4.065
    for (size_t j = 0; j < n; ++j) EXPECT_NEAR(step[j], 4.065 * (j + 1), 1e-5 * (j + 1)) << j;
  }
}

TEST(OuterMomentum, MatchesHandComputedThreeSteps) {
  OuterConfig cfg;
  cfg.clip = false;
  cfg.eta = 0.5f;
  cfg.mu = 0.9f;
  const float deltas[] = {1.0f, 2.0f, -1.0f};
  // Nesterov: b = 1, 2.9, 1.61; step = 0.5*(c + 0.9*b) = 0.95, 2.305, 0.2245.
  // Plain:    step = 0.5*b = 0.5, 1.45, 0.805.
  const double nesterov[] = {0.95, 2.305, 0.2245}, plain[] = {0.5, 1.45, 0.805}, b_want[] = {1.0, 2.9, 1.61};
  for (bool nest : {true, false}) {
    cfg.nesterov = nest;
    OuterState st = MakeOuterState(3, cfg, 0);
    for (int k = 0; k < 3; ++k) {
      std::vector<float> d(3, deltas[k]), step(3);
      const OuterOutcome o = OuterAccept(cfg, st, {st.version, 1}, d, step);
      ASSERT_TRUE(o.step_due);
      for (int j = 0; j < 3; ++j) {
        EXPECT_NEAR(step[j], nest ? nesterov[k] : plain[k], 1e-6) << "step " << k;
        EXPECT_NEAR(st.momentum[j], b_want[k], 1e-6) << "step " << k;
      }
      ++st.version;
    }
  }
}

// ---- Config ------------------------------------------------------------------------------------------

TEST(OuterConfigCheck, RefusesEachBadFieldByName) {
  EXPECT_TRUE(ValidateOuterConfig(OuterConfig{}).ok());
  struct Case {
    const char* field;
    void (*mutate)(OuterConfig&);
  };
  const Case cases[] = {
      {"eta", [](OuterConfig& c) { c.eta = -0.1f; }},
      {"eta", [](OuterConfig& c) { c.eta = 0.0f; }},
      {"eta", [](OuterConfig& c) { c.eta = kInf; }},
      {"mu", [](OuterConfig& c) { c.mu = 1.0f; }},
      {"mu", [](OuterConfig& c) { c.mu = -0.5f; }},
      {"mu", [](OuterConfig& c) { c.mu = kNaN; }},
      {"a", [](OuterConfig& c) { c.a = kNaN; }},
      {"a", [](OuterConfig& c) { c.a = -1.0f; }},
      {"upper_mult", [](OuterConfig& c) { c.upper_mult = 0.0f; }},
      {"upper_mult", [](OuterConfig& c) { c.upper_mult = kNaN; }},
      {"lower_mult", [](OuterConfig& c) { c.lower_mult = -1.0f; }},
      {"lower_mult", [](OuterConfig& c) { c.lower_mult = kInf; }},
      {"upper_mult (1) must be >= lower_mult (2)", [](OuterConfig& c) { c.upper_mult = 1.0f; c.lower_mult = 2.0f; }},
      {"rms_beta", [](OuterConfig& c) { c.rms_beta = 1.0f; }},
      {"rms_beta", [](OuterConfig& c) { c.rms_beta = -0.1f; }},
      {"apply_every", [](OuterConfig& c) { c.apply_every = 0; }},
  };
  for (const Case& k : cases) {
    OuterConfig c;
    k.mutate(c);
    const Status s = ValidateOuterConfig(c);
    EXPECT_TRUE(s.IsInvalidArgument()) << k.field;
    EXPECT_NE(s.message().find(k.field), std::string::npos) << s.message();
  }
  OuterConfig ok;
  ok.tau_max = 0;          // only fresh contributions
  ok.upper_mult = kInf;    // no upper clip
  ok.lower_mult = 1.0f;
  ok.mu = 0.0f;
  ok.rms_beta = 0.0f;
  EXPECT_TRUE(ValidateOuterConfig(ok).ok()) << ValidateOuterConfig(ok);
}

TEST(OuterKernels, ElementMath) {
  EXPECT_EQ(StalenessScale(0, 0.5), 1.0);
  EXPECT_DOUBLE_EQ(StalenessScale(3, 0.5), 0.5);
  EXPECT_EQ(StalenessScale(7, 0.0), 1.0);
  EXPECT_EQ(Bi2ClipElem(0.0f, 1.0f, 2.0f), 0.0f);
  EXPECT_TRUE(std::signbit(Bi2ClipElem(-0.0f, 1.0f, 2.0f)));
  EXPECT_EQ(Bi2ClipElem(0.5f, 1.0f, 2.0f), 1.0f);
  EXPECT_EQ(Bi2ClipElem(-0.5f, 1.0f, 2.0f), -1.0f);
  EXPECT_EQ(Bi2ClipElem(-5.0f, 1.0f, 2.0f), -2.0f);
  EXPECT_EQ(Bi2ClipElem(1.5f, 1.0f, 2.0f), 1.5f);
  EXPECT_EQ(Bi2ClipElem(1e30f, 0.0f, kInf), 1e30f);
  EXPECT_EQ(BandEdge(kInf, 0.0, 1.0), kInf);  // not inf * 0
  EXPECT_EQ(BandEdge(3.0, 2.0, 0.5), 3.0f);
}

}  // namespace
}  // namespace strata::optim
