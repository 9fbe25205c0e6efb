// The peer's merge rules: hard reset and DPPF pull-push.
#include "optim/merge.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace strata::optim {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(Merge, AlphaOneLambdaZeroLandsOnTheta) {
  // x - (x - theta) rounds to within an ulp or two of theta (the peer's hard reset copies instead).
  for (size_t n : {1u, 7u, 257u}) {
    std::vector<float> x = Random(n, 1, 1.0f), theta = Random(n, 2, 1.0f);
    const std::vector<float> x0 = x;
    DppfMerge(x, theta, 1.0f, 0.0f);
    for (size_t i = 0; i < n; ++i)
      EXPECT_NEAR(x[i], theta[i], 2.5e-7f * (std::fabs(x0[i]) + std::fabs(theta[i]))) << i;
  }
}

TEST(Merge, PullPushSetsTheDistanceAlongTheSameDirection) {
  const size_t n = 1009;
  const std::vector<float> x0 = Random(n, 3, 0.1f), theta = Random(n, 4, 0.1f);
  for (float alpha : {0.0f, 0.3f, 0.5f, 0.9f}) {
    for (float lambda : {0.0f, 0.01f, 0.2f}) {
      std::vector<float> x = x0;
      const double d0 = MergeDistance(x, theta);
      DppfMerge(x, theta, alpha, lambda);
      EXPECT_NEAR(MergeDistance(x, theta), (1 - alpha) * d0 + lambda, 1e-5 * (1 + d0)) << alpha << " " << lambda;
      // Same direction: (x - theta) is a positive multiple of (x0 - theta).
      double dot = 0;
      for (size_t i = 0; i < n; ++i) dot += double(x[i] - theta[i]) * (x0[i] - theta[i]);
      if (alpha < 1 || lambda > 0) EXPECT_GT(dot, 0);
    }
  }
}

TEST(Merge, EqualReplicasStayPut) {
  std::vector<float> x = Random(33, 5, 1.0f);
  const std::vector<float> theta = x;
  DppfMerge(x, theta, 0.5f, 0.3f);  // no direction to push along
  EXPECT_EQ(x, theta);
}

}  // namespace
}  // namespace strata::optim
