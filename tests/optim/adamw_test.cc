// fp32 AdamW: every fast path equals the scalar oracle bit for bit, and the oracle tracks
// torch.optim.AdamW (golden vectors from the real package).
#include "optim/adamw.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "runtime/thread_pool.h"
#include "tests/test_data.h"

namespace strata::optim {
namespace {

using strata::testing::Gaussian;

const std::vector<int64_t> kSizes = {1, 2, 7, 15, 16, 17, 255, 256, 257, 1009, 4099};

TEST(AdamW, FastPathsEqualTheOracleBitForBit) {
  ThreadPool pool(2);
  AdamWConfig cfg{.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
  for (int64_t n : kSizes) {
    const auto p0 = Gaussian(n + 1, 1 + n), g0 = Gaussian(n + 1, 2 + n, 1e-2f);
    for (SimdLevel level : SimdLevelsAvailable()) {
      for (ThreadPool* tp : {static_cast<ThreadPool*>(nullptr), &pool}) {
        // Offset by one float so the fast path sees unaligned spans.
        std::vector<float> p = p0, m(n + 1, 0.0f), v(n + 1, 0.0f);
        std::vector<float> rp = p0, rm(n + 1, 0.0f), rv(n + 1, 0.0f);
        for (int step = 1; step <= 5; ++step) {
          std::vector<float> g = g0;
          for (auto& e : g) e *= static_cast<float>(step);
          ASSERT_TRUE(AdamWStep(cfg, step, std::span(p.data() + 1, n), std::span<const float>(g.data() + 1, n),
                                std::span(m.data() + 1, n), std::span(v.data() + 1, n), tp, level).ok());
          AdamWStepRef(cfg, step, rp.data() + 1, g.data() + 1, rm.data() + 1, rv.data() + 1, n);
        }
        for (int64_t i = 0; i <= n; ++i) {
          ASSERT_EQ(std::bit_cast<uint32_t>(p[i]), std::bit_cast<uint32_t>(rp[i])) << SimdLevelName(level) << " n=" << n << " i=" << i;
          ASSERT_EQ(std::bit_cast<uint32_t>(m[i]), std::bit_cast<uint32_t>(rm[i]));
          ASSERT_EQ(std::bit_cast<uint32_t>(v[i]), std::bit_cast<uint32_t>(rv[i]));
        }
      }
    }
  }
}

TEST(AdamW, LerpBranchForSmallBeta1) {
  // beta1 = 0.3 makes 1 - beta1 >= 0.5: torch's lerp uses its other formula; so do we, in every path.
  AdamWConfig cfg{.lr = 1e-2, .beta1 = 0.3, .beta2 = 0.9, .eps = 1e-6, .weight_decay = 0.0};
  const int64_t n = 257;
  auto p = Gaussian(n, 3), g = Gaussian(n, 4), m = std::vector<float>(n, 0.5f), v = std::vector<float>(n, 0.25f);
  auto rp = p, rm = m, rv = v;
  ASSERT_TRUE(AdamWStep(cfg, 3, p, g, m, v).ok());
  AdamWStepRef(cfg, 3, rp.data(), g.data(), rm.data(), rv.data(), n);
  EXPECT_EQ(p, rp);
  EXPECT_EQ(m, rm);
}

TEST(AdamW, NonFiniteGradientPropagatesLikeTorch) {
  AdamWConfig cfg;
  std::vector<float> p = {1.0f, 2.0f, 3.0f}, g = {std::numeric_limits<float>::quiet_NaN(), 1.0f,
                                                  std::numeric_limits<float>::infinity()};
  std::vector<float> m(3, 0.0f), v(3, 0.0f);
  ASSERT_TRUE(AdamWStep(cfg, 1, p, g, m, v).ok());
  EXPECT_TRUE(std::isnan(p[0]));
  EXPECT_TRUE(std::isfinite(p[1]));
  EXPECT_TRUE(std::isnan(p[2]));  // inf / inf
}

// Golden vectors: torch.optim.AdamW (foreach=False) after K steps (lab/peers/golden.py).
// torch's vectorized lerp fuses a multiply-add (ours rounds twice, so every backend agrees bit for
// bit), so results may differ by rounding: each step's terms are at most max|g| for m and max g^2
// for v, so we allow 4 ulps of those per step; p moves by about lr per step, and an m error of a few
// ulps of max|g| changes that move by a relative ~1e-6, so p gets 4 ulps of |p| per step plus
// 1e-5 * lr per step.
TEST(AdamWGolden, TracksTorchAdamW) {
  const auto cases = strata::testing::ReadStanzas(strata::testing::GoldenPath("adamw_torch.txt"));
  ASSERT_GE(cases.size(), 4u) << "golden file tests/data/golden/adamw_torch.txt missing or short";
  auto ulp = [](float x) { x = std::fabs(x); return std::nextafter(x, INFINITY) - x; };
  auto key = [](char c, int k) {  // "g3", "p10" (appended, not operator+: GCC 12's -Wrestrict bug)
    std::string s(1, c);
    s.append(std::to_string(k));
    return s;
  };
  for (const auto& c : cases) {
    ASSERT_EQ(c.header.size(), 8u);
    const std::string& name = c.header[0];
    const int64_t n = std::stoll(c.header[1]);
    const int k = std::stoi(c.header[2]);
    AdamWConfig cfg{.lr = std::stod(c.header[3]), .beta1 = std::stod(c.header[4]), .beta2 = std::stod(c.header[5]),
                    .eps = std::stod(c.header[6]), .weight_decay = std::stod(c.header[7])};
    std::vector<float> p = c.Floats("p0"), m(n, 0.0f), v(n, 0.0f), gmax(n, 0.0f);
    ASSERT_EQ(static_cast<int64_t>(p.size()), n) << name;
    for (int step = 1; step <= k; ++step) {
      const auto g = c.Floats(key('g', step));
      for (int64_t i = 0; i < n; ++i) gmax[i] = std::max(gmax[i], std::fabs(g[i]));
      ASSERT_TRUE(AdamWStep(cfg, step, p, g, m, v).ok());
    }
    const auto want_p = c.Floats(key('p', k)), want_m = c.Floats(key('m', k)), want_v = c.Floats(key('v', k));
    int exact = 0;
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_LE(std::fabs(m[i] - want_m[i]), 4.0f * k * ulp(gmax[i])) << name << " m[" << i << "]";
      EXPECT_LE(std::fabs(v[i] - want_v[i]), 4.0f * k * ulp(gmax[i] * gmax[i])) << name << " v[" << i << "]";
      EXPECT_LE(std::fabs(p[i] - want_p[i]), 4.0f * k * ulp(want_p[i]) + 1e-5 * cfg.lr * k) << name << " p[" << i << "]";
      exact += p[i] == want_p[i];
    }
    RecordProperty(name + "_exact_params", exact);
    std::printf("  %s: %d of %lld parameters bitwise equal to torch\n", name.c_str(), exact, static_cast<long long>(n));
  }
}

}  // namespace
}  // namespace strata::optim
