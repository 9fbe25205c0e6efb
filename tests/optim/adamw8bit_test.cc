// 8-bit AdamW: every fast path equals the scalar oracle bit for bit (any SIMD level, any thread
// count, awkward sizes, unaligned spans), non-finite gradients are contained, and the state costs
// at most 2.04 bytes per parameter.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "optim/adamw.h"
#include "optim/q8_book.h"
#include "optim/q8_codec.h"
#include "runtime/thread_pool.h"
#include "tests/test_data.h"

namespace strata::optim {
namespace {

using strata::testing::Gaussian;
using strata::testing::HeavyTailed;

struct Q8Buffers {
  explicit Q8Buffers(int64_t n)
      : mc(n + 1, q8::kSignedZero), vc(n + 1, q8::kUnsignedZero), ma(q8::NumBlocks(n), 0.0f), va(q8::NumBlocks(n), 0.0f), n(n) {}
  // Offset by one byte so the kernels see unaligned code spans.
  Q8Moments moments() {
    return {std::span(mc.data() + 1, n), std::span(vc.data() + 1, n), std::span(ma), std::span(va)};
  }
  std::vector<uint8_t> mc, vc;
  std::vector<float> ma, va;
  int64_t n;
};

bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

// Runs `steps` steps on the fast path and on the oracle and compares every byte of the state.
void ExpectFastEqualsRef(int64_t n, const AdamWConfig& cfg, int steps, ThreadPool* pool, SimdLevel level,
                         bool heavy_tailed) {
  std::vector<float> p = Gaussian(n + 1, 100 + n), rp = p;
  Q8Buffers fast(n), ref(n);
  for (int step = 1; step <= steps; ++step) {
    std::vector<float> g = heavy_tailed ? HeavyTailed(n + 1, 1000 * step + n) : Gaussian(n + 1, 1000 * step + n, 1e-3f);
    ASSERT_TRUE(AdamW8bitStep(cfg, step, std::span(p.data() + 1, n), std::span<const float>(g.data() + 1, n),
                              fast.moments(), pool, level).ok());
    AdamW8bitStepRef(cfg, step, rp.data() + 1, g.data() + 1, ref.mc.data() + 1, ref.vc.data() + 1, ref.ma.data(),
                     ref.va.data(), n);
    ASSERT_TRUE(SameBits(p, rp)) << "params differ: n=" << n << " step=" << step << " " << SimdLevelName(level);
    ASSERT_EQ(fast.mc, ref.mc) << "m codes differ: n=" << n << " step=" << step << " " << SimdLevelName(level);
    ASSERT_EQ(fast.vc, ref.vc) << "v codes differ: n=" << n << " step=" << step;
    ASSERT_TRUE(SameBits(fast.ma, ref.ma)) << "m absmax differ: n=" << n;
    ASSERT_TRUE(SameBits(fast.va, ref.va)) << "v absmax differ: n=" << n;
  }
}

TEST(AdamW8bit, FastPathsEqualTheOracleOnAwkwardSizes) {
  ThreadPool pool(2);
  const AdamWConfig cfg{.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 1e-2};
  for (int64_t n : {1, 2, 13, 255, 256, 257, 511, 512, 769, 1031, 4099, 65537}) {
    for (SimdLevel level : SimdLevelsAvailable()) {
      ExpectFastEqualsRef(n, cfg, 4, nullptr, level, false);
      ExpectFastEqualsRef(n, cfg, 3, &pool, level, true);
    }
  }
}

TEST(AdamW8bit, ThreadCountsGiveBitwiseIdenticalResults) {
  const int64_t n = 3 * 256 * 7 + 5;
  const AdamWConfig cfg{.lr = 1e-2, .weight_decay = 0.1};
  std::vector<std::vector<float>> params, absmax;
  std::vector<std::vector<uint8_t>> codes;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<float> p = Gaussian(n, 9);
    AdamW8bitState st(n);
    for (int step = 1; step <= 5; ++step) ASSERT_TRUE(st.Step(cfg, p, HeavyTailed(n, step), &pool).ok());
    params.push_back(p);
    const auto mom = st.moments();
    std::vector<uint8_t> c(mom.m_codes.begin(), mom.m_codes.end());
    c.insert(c.end(), mom.v_codes.begin(), mom.v_codes.end());
    codes.push_back(c);
    std::vector<float> a(mom.m_absmax.begin(), mom.m_absmax.end());
    a.insert(a.end(), mom.v_absmax.begin(), mom.v_absmax.end());
    absmax.push_back(a);
  }
  for (int k : {1, 2}) {
    EXPECT_TRUE(SameBits(params[0], params[k])) << "threads " << k + 1;
    EXPECT_EQ(codes[0], codes[k]) << "threads " << k + 1;
    EXPECT_TRUE(SameBits(absmax[0], absmax[k])) << "threads " << k + 1;
  }
}

TEST(AdamW8bit, NonFiniteGradientLeavesItsParameterAloneAndZeroesItsMoments) {
  const int64_t n = 4096 + 256;
  const AdamWConfig cfg{.lr = 1e-2, .weight_decay = 0.1};
  for (SimdLevel level : SimdLevelsAvailable()) {
    std::vector<float> p = Gaussian(n, 1);
    AdamW8bitState st(n);
    ASSERT_EQ(st.kind(), StateKind::k8bit);
    ASSERT_TRUE(st.Step(cfg, p, Gaussian(n, 2), nullptr, level).ok());  // moments now non-zero
    std::vector<float> g = Gaussian(n, 3);
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const std::vector<int64_t> bad = {0, 17, 255, 256, 300, 4351};
    g[0] = nan; g[17] = inf; g[255] = -inf; g[256] = nan; g[300] = -nan; g[4351] = inf;
    const std::vector<float> before = p;
    ASSERT_TRUE(st.Step(cfg, p, g, nullptr, level).ok());
    const float* sb = q8::BookValues(q8::Book::kSigned);
    const float* ub = q8::BookValues(q8::Book::kUnsigned);
    auto mom = st.moments();
    for (int64_t i : bad) {
      EXPECT_EQ(std::bit_cast<uint32_t>(p[i]), std::bit_cast<uint32_t>(before[i])) << "index " << i;
      EXPECT_EQ(sb[mom.m_codes[i]] * mom.m_absmax[i / 256], 0.0f) << "index " << i;
      EXPECT_EQ(ub[mom.v_codes[i]] * mom.v_absmax[i / 256], 0.0f) << "index " << i;
    }
    for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(p[i])) << i;
    int changed = 0;
    for (int64_t i = 1; i < 17; ++i) changed += p[i] != before[i];
    EXPECT_EQ(changed, 16) << "finite neighbours still update";
  }
}

// A finite gradient whose square overflows v (|g| > ~6e20 with beta2 = 0.999) is treated like a
// non-finite one: its parameter is left alone, its moments are zeroed, and its neighbours in the
// block keep training (bitsandbytes' rule would make the block's v absmax infinite and the whole
// block NaN from the next step on). Every path agrees with the oracle.
TEST(AdamW8bit, GradientWhoseSquareOverflowsIsContained) {
  const int64_t n = 4096 + 300;
  const AdamWConfig cfg{.lr = 1e-3};
  for (SimdLevel level : SimdLevelsAvailable()) {
    std::vector<float> p = Gaussian(n, 1), rp = p;
    Q8Buffers fast(n), ref(n);
    for (int step = 1; step <= 4; ++step) {
      std::vector<float> g = Gaussian(n, 2 + step);
      g[5] = 1e21f;  // (1 - beta2) * g * g = 1e39 > FLT_MAX
      g[4100] = -3e30f;
      const float p5 = p[5], p4100 = p[4100];
      ASSERT_TRUE(AdamW8bitStep(cfg, step, std::span(p), std::span<const float>(g), fast.moments(), nullptr, level).ok());
      AdamW8bitStepRef(cfg, step, rp.data(), g.data(), ref.mc.data() + 1, ref.vc.data() + 1, ref.ma.data(),
                       ref.va.data(), n);
      ASSERT_TRUE(SameBits(p, rp)) << SimdLevelName(level) << " step " << step;
      ASSERT_EQ(fast.mc, ref.mc);
      ASSERT_EQ(fast.vc, ref.vc);
      ASSERT_TRUE(SameBits(fast.va, ref.va));
      EXPECT_EQ(p[5], p5);
      EXPECT_EQ(p[4100], p4100);
      for (int64_t i = 0; i < n; ++i) ASSERT_TRUE(std::isfinite(p[i])) << "index " << i << " step " << step;
      for (float a : fast.va) ASSERT_TRUE(std::isfinite(a));
    }
    EXPECT_NE(p[6], Gaussian(n, 1)[6]) << "the neighbours keep training";
  }
}

// Moments so small that 1 / absmax overflows (absmax below 2^-128): the optimizer's scale is
// clamped to FLT_MAX, so no 0 * inf = NaN reaches the encoder, on any path.
TEST(AdamW8bit, SubnormalBlocksMatchTheOracle) {
  const int64_t n = 512 + 7;
  const AdamWConfig cfg{.lr = 1e-3, .weight_decay = 0.0};
  for (SimdLevel level : SimdLevelsAvailable()) {
    std::vector<float> p(n, 1.0f), rp = p;
    Q8Buffers fast(n), ref(n);
    for (int step = 1; step <= 3; ++step) {
      std::vector<float> g(n, 1e-39f);
      g[3] = 0.0f;
      g[300] = -2e-39f;
      g[301] = -0.0f;
      ASSERT_TRUE(AdamW8bitStep(cfg, step, std::span(p), std::span<const float>(g), fast.moments(), nullptr, level).ok());
      AdamW8bitStepRef(cfg, step, rp.data(), g.data(), ref.mc.data() + 1, ref.vc.data() + 1, ref.ma.data(),
                       ref.va.data(), n);
      ASSERT_TRUE(SameBits(p, rp)) << SimdLevelName(level) << " step " << step;
      ASSERT_EQ(fast.mc, ref.mc) << SimdLevelName(level) << " step " << step;
      ASSERT_EQ(fast.vc, ref.vc);
      for (size_t i = 1; i < fast.mc.size(); ++i) {
        const float mv = q8::BookValues(q8::Book::kSigned)[fast.mc[i]];
        ASSERT_LE(std::fabs(mv), 1.0f);
      }
    }
  }
}

TEST(AdamW8bit, AllZeroGradientsGiveExactZeroCodes) {
  const int64_t n = 4096 + 17;
  for (SimdLevel level : SimdLevelsAvailable()) {
    std::vector<float> p = Gaussian(n, 1), g(n, 0.0f);
    AdamW8bitState st(n);
    ASSERT_TRUE(st.Step(AdamWConfig{.weight_decay = 0.0}, p, g, nullptr, level).ok());
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(st.moments().m_codes[i], q8::kSignedZero) << SimdLevelName(level);
      ASSERT_EQ(st.moments().v_codes[i], q8::kUnsignedZero) << SimdLevelName(level);
    }
    EXPECT_TRUE(SameBits(p, Gaussian(n, 1))) << "zero moments, no decay: parameters unchanged";
  }
}

TEST(AdamW8bit, SmallTensorsKeepFp32StateWithTheSameMath) {
  AdamW8bitState small(4095), big(4096);
  EXPECT_EQ(small.kind(), StateKind::kFp32);
  EXPECT_EQ(big.kind(), StateKind::k8bit);
  const AdamWConfig cfg{.lr = 1e-2};
  std::vector<float> p = Gaussian(4095, 1), q = p;
  std::vector<float> m(4095, 0.0f), v(4095, 0.0f);
  const AdamW8Scalars s1 = MakeAdamW8Scalars(cfg, 1);
  const auto g = Gaussian(4095, 2);
  ASSERT_TRUE(small.Step(cfg, p, g).ok());
  for (size_t i = 0; i < q.size(); ++i) AdamW8Update(q[i], g[i], m[i], v[i], s1);
  EXPECT_TRUE(SameBits(p, q));
  EXPECT_TRUE(SameBits(std::vector<float>(small.m_fp32().begin(), small.m_fp32().end()), m));
}

TEST(AdamW8bit, StateCostsAtMost204BytesPerParameter) {
  for (int64_t n : {4096, 4097, 1 << 20, 10'000'001}) {
    AdamW8bitState st(n);
    ASSERT_EQ(st.kind(), StateKind::k8bit);
    EXPECT_EQ(st.StateBytes(), static_cast<int64_t>(st.moments().m_codes.size() + st.moments().v_codes.size() +
                                                    4 * (st.moments().m_absmax.size() + st.moments().v_absmax.size())));
    EXPECT_LE(static_cast<double>(st.StateBytes()) / n, 2.04) << n;
  }
  AdamW8bitState small(4095);
  EXPECT_EQ(small.StateBytes(), 4095 * 8);  // fp32 m and v under 4096 values
}

// bitsandbytes' rule: the update uses the unquantized new moments, weight decay comes after the
// update, and eps is scaled by sqrt(1 - beta2^t). One element, one step, worked by hand.
TEST(AdamW8bit, OneStepByHand) {
  const AdamWConfig cfg{.lr = 0.1, .beta1 = 0.9, .beta2 = 0.99, .eps = 1e-3, .weight_decay = 0.5};
  float p = 1.0f, g = 2.0f, m = 0.0f, v = 0.0f;
  AdamW8Update(p, g, m, v, MakeAdamW8Scalars(cfg, 1));
  const double c2 = std::sqrt(1 - 0.99), c1 = 1 - 0.9;
  const double m1 = 0.1 * 2.0, v1 = 0.01 * 4.0;
  const double want = (1.0 + (-0.1 * c2 / c1) * (m1 / (std::sqrt(v1) + 1e-3 * c2))) * (1 - 0.1 * 0.5);
  EXPECT_NEAR(p, want, 1e-6);
  EXPECT_FLOAT_EQ(m, 0.2f);
  EXPECT_NEAR(v, 0.04f, 1e-8);
}

}  // namespace
}  // namespace strata::optim
