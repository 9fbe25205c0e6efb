// The peer's merge rule after it catches up with the global theta: a hard reset (x <- theta), or
// DPPF's pull-push, which keeps the replicas a set distance apart instead of collapsing them:
//   x <- x - alpha * (x - theta) + lambda * (x - theta) / ||x - theta||
// so the new distance to theta is (1 - alpha) * ||x - theta|| + lambda along the same direction.
#pragma once

#include <cmath>
#include <span>

#include "runtime/hd.h"

namespace strata::optim {

// One element, given the precomputed push factor lambda / ||x - theta|| (0 when x == theta).
STRATA_HD float DppfElem(float x, float theta, float alpha, float push) {
  const float d = x - theta;
  return x - alpha * d + push * d;
}

// ||x - theta||, summed in double in index order (deterministic).
inline double MergeDistance(std::span<const float> x, std::span<const float> theta) {
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(x[i]) - theta[i];
    s += d * d;
  }
  return std::sqrt(s);
}

// x and theta have the same size (a bug otherwise). alpha = 1, lambda = 0 is the hard reset.
inline void DppfMerge(std::span<float> x, std::span<const float> theta, float alpha, float lambda) {
  const double norm = MergeDistance(x, theta);
  const float push = norm > 0 ? static_cast<float>(lambda / norm) : 0.0f;
  for (size_t i = 0; i < x.size(); ++i) x[i] = DppfElem(x[i], theta[i], alpha, push);
}

}  // namespace strata::optim
