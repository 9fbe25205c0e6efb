#include "optim/pg_codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "optim/q8_book.h"
#include "runtime/thread_pool.h"

namespace strata::optim {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
const size_t kSizes[] = {1, 255, 256, 257, 65537};

// Normal values whose scale changes from block to block (1e-6 .. 1e3), with one all-zero block
// and one block holding a single non-zero value, so absmax varies and edge blocks are covered.
std::vector<float> Values(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_scale(-6.0f, 3.0f);
  std::vector<float> x(n);
  for (size_t s = 0; s < n; s += q8::kBlock) {
    const size_t e = std::min(n, s + q8::kBlock);
    const size_t blk = s / q8::kBlock;
    const float scale = std::pow(10.0f, log_scale(rng));
    for (size_t i = s; i < e; ++i) x[i] = blk == 3 ? 0.0f : blk == 5 ? (i == s + 7 ? -2.5f : 0.0f) : scale * normal(rng);
  }
  return x;
}

// The largest |t - book[EncodeRef(t)]| over t in [-1, 1]: half the widest gap between neighbours,
// or the distance from an end of [-1, 1] to the book's end value.
float BookWorstError() {
  const float* b = q8::BookValues(q8::Book::kSigned);
  float w = std::max(1.0f + b[0], 1.0f - b[255]);
  for (int i = 0; i < 255; ++i) w = std::max(w, 0.5f * (b[i + 1] - b[i]));
  return w;
}

float BookWorstGap() {
  const float* b = q8::BookValues(q8::Book::kSigned);
  float w = std::max(1.0f + b[0], 1.0f - b[255]);
  for (int i = 0; i < 255; ++i) w = std::max(w, b[i + 1] - b[i]);
  return w;
}

std::vector<uint8_t> Bytes(std::span<const float> v) {
  std::vector<uint8_t> out(v.size() * 4);
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

TEST(PgCodecRoundTrip, ErrorPerValueWithinTheBookResolution) {
  const float worst = BookWorstError();
  ASSERT_GT(worst, 0.001f);
  ASSERT_LT(worst, 0.01f);
  for (size_t n : kSizes) {
    const std::vector<float> x = Values(n, static_cast<uint32_t>(n));
    ErrorFeedbackEncoder enc(n);
    Q8Tensor q;
    enc.Encode(x, q);
    ASSERT_EQ(q.n, n);
    ASSERT_EQ(q.codes.size(), n);
    ASSERT_EQ(static_cast<int64_t>(q.absmax.size()), q8::NumBlocks(n));
    std::vector<float> y(n);
    DecodeQ8(q, y);
    for (size_t i = 0; i < n; ++i) {
      const float a = q.absmax[i / q8::kBlock];
      // Normalized value error <= worst; plus float rounding of x / absmax and of book * absmax.
      ASSERT_LE(std::fabs(y[i] - x[i]), (worst + 0x1p-22f) * a) << "n=" << n << " i=" << i << " x=" << x[i];
      if (x[i] == 0.0f) {
        ASSERT_EQ(y[i], 0.0f) << "an exact zero decodes to zero, i=" << i;
      }
      // The first residual is exactly what the decode missed.
      ASSERT_EQ(enc.residual()[i], x[i] - y[i]) << "n=" << n << " i=" << i;
    }
    for (size_t b = 0; b < q.absmax.size(); ++b) {
      float m = 0;
      for (size_t i = b * q8::kBlock; i < std::min(n, (b + 1) * q8::kBlock); ++i) m = std::max(m, std::fabs(x[i]));
      ASSERT_EQ(q.absmax[b], m) << "block " << b;
    }
  }
}

TEST(PgCodecErrorFeedback, RunningSumTracksInputsWithoutDrift) {
  const size_t n = 1000;  // 4 blocks, the last partial
  const int T = 50;
  const float gap = BookWorstGap();
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  ErrorFeedbackEncoder with(n), without(n);
  std::vector<double> sum_x(n, 0.0), sum_with(n, 0.0), sum_without(n, 0.0);
  std::vector<float> x(n), y(n);
  Q8Tensor q;
  std::vector<float> last_absmax;
  for (int t = 0; t < T; ++t) {
    for (auto& v : x) v = normal(rng);
    for (size_t i = 0; i < n; ++i) sum_x[i] += x[i];
    with.Encode(x, q);
    DecodeQ8(q, y);
    last_absmax = q.absmax;
    for (size_t i = 0; i < n; ++i) sum_with[i] += y[i];
    without.Reset();  // no feedback: every round starts from a zero residual
    without.Encode(x, q);
    DecodeQ8(q, y);
    for (size_t i = 0; i < n; ++i) sum_without[i] += y[i];
  }
  double ms_with = 0, ms_without = 0, max_without = 0;
  int beyond_one_step = 0;
  for (size_t i = 0; i < n; ++i) {
    const double step = static_cast<double>(gap) * last_absmax[i / q8::kBlock];
    const double d_with = std::fabs(sum_with[i] - sum_x[i]), d_without = std::fabs(sum_without[i] - sum_x[i]);
    // With feedback the gap is the last residual (<= half a step), plus fp32 rounding of y = x + e.
    ASSERT_LE(d_with, step + 1e-4) << "i=" << i;
    ms_with += d_with * d_with;
    ms_without += d_without * d_without;
    max_without = std::max(max_without, d_without);
    beyond_one_step += d_without > step;
  }
  const double rms_with = std::sqrt(ms_with / n), rms_without = std::sqrt(ms_without / n);
  // Without feedback the rounding errors add up as a random walk: measurably more.
  EXPECT_GT(rms_without, 3.0 * rms_with) << "rms drift with " << rms_with << " without " << rms_without;
  EXPECT_GT(beyond_one_step, 10) << "max drift without feedback " << max_without;
}

TEST(PgCodecErrorFeedback, ResidualCanBeSavedAndRestored) {
  const size_t n = 257;
  ErrorFeedbackEncoder a(n), b(n);
  Q8Tensor qa, qb;
  a.Encode(Values(n, 1), qa);
  std::copy(a.residual().begin(), a.residual().end(), b.residual_mut().begin());
  const std::vector<float> x2 = Values(n, 2);
  a.Encode(x2, qa);
  b.Encode(x2, qb);
  EXPECT_EQ(qa.codes, qb.codes);
  EXPECT_EQ(qa.absmax, qb.absmax);
  EXPECT_EQ(Bytes(a.residual()), Bytes(b.residual()));
  b.Reset();
  EXPECT_EQ(Bytes(b.residual()), Bytes(std::vector<float>(n, 0.0f)));
}

TEST(PgCodecApply, FusedStepEqualsDecodeThenSubtract) {
  ThreadPool two(2);
  for (size_t n : kSizes) {
    ErrorFeedbackEncoder enc(n);
    Q8Tensor q;
    enc.Encode(Values(n, 3 + static_cast<uint32_t>(n)), q);
    const std::vector<float> theta0 = Values(n, 99);
    std::vector<float> dec(n), want(n);
    DecodeQ8(q, dec);
    for (size_t i = 0; i < n; ++i) want[i] = theta0[i] - dec[i];
    for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &two}) {
      std::vector<float> theta = theta0;
      ApplyQ8Step(q, theta, pool);
      ASSERT_EQ(Bytes(theta), Bytes(want)) << "n=" << n << " threads " << (pool ? 2 : 1);
    }
  }
}

TEST(PgCodecDecode, OneMultiplyAndIdenticalAcrossThreadCounts) {
  ThreadPool two(2);
  const float* book = q8::BookValues(q8::Book::kSigned);
  for (size_t n : kSizes) {
    ErrorFeedbackEncoder enc(n);
    Q8Tensor q;
    enc.Encode(Values(n, 17 + static_cast<uint32_t>(n)), q);
    std::vector<float> one(n, 1.0f), two_t(n, 2.0f);
    DecodeQ8(q, one);
    DecodeQ8(q, two_t, &two);
    ASSERT_EQ(Bytes(one), Bytes(two_t)) << "n=" << n;
    for (size_t i = 0; i < n; ++i) {
      const float want = book[q.codes[i]] * q.absmax[i / q8::kBlock];
      ASSERT_EQ(std::memcmp(&one[i], &want, 4), 0) << "n=" << n << " i=" << i;
    }
  }
}

TEST(PgCodecEncode, IdenticalAcrossThreadCounts) {
  ThreadPool two(2), three(3);
  for (size_t n : {size_t{1}, size_t{257}, size_t{65537}, size_t{8192 * 3 + 5}}) {
    ErrorFeedbackEncoder e1(n), e2(n), e3(n);
    Q8Tensor q1, q2, q3;
    for (uint32_t round = 0; round < 3; ++round) {  // later rounds go through a non-zero residual
      const std::vector<float> x = Values(n, 1000 + round);
      e1.Encode(x, q1);
      e2.Encode(x, q2, &two);
      e3.Encode(x, q3, &three);
      ASSERT_EQ(q1.codes, q2.codes) << n;
      ASSERT_EQ(q1.codes, q3.codes) << n;
      ASSERT_EQ(Bytes(q1.absmax), Bytes(q2.absmax)) << n;
      ASSERT_EQ(Bytes(q1.absmax), Bytes(q3.absmax)) << n;
      ASSERT_EQ(Bytes(e1.residual()), Bytes(e2.residual())) << n;
      ASSERT_EQ(Bytes(e1.residual()), Bytes(e3.residual())) << n;
    }
  }
}

TEST(PgCodecSize, BytesRatio) {
  for (size_t n : {size_t{256}, size_t{257}, size_t{511}, size_t{1000}, size_t{65537}, size_t{1} << 20}) {
    ErrorFeedbackEncoder enc(n);
    Q8Tensor q;
    enc.Encode(std::vector<float>(n, 0.5f), q);
    const uint64_t bytes = q.codes.size() + 4 * q.absmax.size();
    EXPECT_EQ(bytes, Q8Bytes(n));
    EXPECT_LE(static_cast<double>(bytes) / (4.0 * n), 0.27) << "n=" << n;
  }
  EXPECT_EQ(Q8Bytes(256 * 1000), 256u * 1000 + 4000);  // 0.2539x of fp32
  EXPECT_EQ(Q8Bytes(1), 5u);
}

TEST(PgCodecChecked, RefusesNonFiniteNamingTheIndex) {
  const size_t n = 257;
  const std::vector<float> good = Values(n, 5);
  for (size_t pos : {size_t{0}, size_t{128}, n - 1}) {
    for (float bad : {kNaN, kInf, -kInf}) {
      ErrorFeedbackEncoder enc(n);
      Q8Tensor q0;
      enc.Encode(Values(n, 6), q0);  // a non-zero residual that must survive the refusal
      const std::vector<uint8_t> residual = Bytes(enc.residual());
      std::vector<float> x = good;
      x[pos] = bad;
      Q8Tensor q;
      q.n = 3;
      const Status s = enc.EncodeChecked(x, q);
      ASSERT_TRUE(s.IsInvalidArgument());
      EXPECT_NE(s.message().find("x[" + std::to_string(pos) + "]"), std::string::npos) << s.message();
      EXPECT_EQ(Bytes(enc.residual()), residual);
      EXPECT_EQ(q.n, 3u);  // out untouched
      EXPECT_TRUE(q.codes.empty());
    }
  }
  // Finite x whose sum with the residual overflows.
  ErrorFeedbackEncoder enc(n);
  enc.residual_mut()[200] = 3.0e38f;
  std::vector<float> x = good;
  x[200] = 3.0e38f;
  Q8Tensor q;
  const Status s = enc.EncodeChecked(x, q);
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("x[200]"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("overflows"), std::string::npos) << s.message();
  // Wrong size.
  EXPECT_TRUE(enc.EncodeChecked(std::vector<float>(n + 1, 0.0f), q).IsInvalidArgument());
  // And a good one goes through.
  ErrorFeedbackEncoder fresh(n);
  ASSERT_TRUE(fresh.EncodeChecked(good, q).ok());
  EXPECT_EQ(q.n, n);
}

TEST(PgCodecChecked, CheckFiniteNamesWhatAndWhere) {
  std::vector<float> x(11, 1.0f);
  EXPECT_TRUE(CheckFinite(x, "delta").ok());
  EXPECT_TRUE(CheckFinite({}, "delta").ok());
  x[7] = kNaN;
  x[9] = kInf;
  const Status s = CheckFinite(x, "delta");
  ASSERT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("delta[7]"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("nan"), std::string::npos) << s.message();
}

TEST(PgCodecValidate, RefusesMalformedTensors) {
  const size_t n = 300;
  ErrorFeedbackEncoder enc(n);
  Q8Tensor good;
  enc.Encode(Values(n, 8), good);
  ASSERT_TRUE(ValidateQ8Tensor(good, n, "update").ok());
  struct Case {
    const char* needle;
    void (*mutate)(Q8Tensor&);
  };
  const Case cases[] = {
      {"301 values", [](Q8Tensor& q) { q.n = 301; }},
      {"299 codes", [](Q8Tensor& q) { q.codes.pop_back(); }},
      {"1 absmax", [](Q8Tensor& q) { q.absmax.pop_back(); }},
      {"absmax[1] = nan", [](Q8Tensor& q) { q.absmax[1] = kNaN; }},
      {"absmax[0] = inf", [](Q8Tensor& q) { q.absmax[0] = kInf; }},
      {"absmax[1] = -1", [](Q8Tensor& q) { q.absmax[1] = -1.0f; }},
  };
  for (const Case& c : cases) {
    Q8Tensor q = good;
    c.mutate(q);
    const Status s = ValidateQ8Tensor(q, n, "update");
    ASSERT_TRUE(s.IsInvalidArgument()) << c.needle;
    EXPECT_NE(s.message().find(c.needle), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("update"), std::string::npos) << s.message();
  }
}

}  // namespace
}  // namespace strata::optim
