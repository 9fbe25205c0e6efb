// The per-row math of the GPT-2 blocks, written once as inline functions: LayerNorm forward and
// backward over one row, and the GELU constants. model/gpt2.cc calls them from its parallel loops;
// the tests use them as written.
#pragma once

#include <cmath>
#include <cstdint>

#include "runtime/hd.h"

namespace strata::model {

// GELU, tanh form (GPT-2's "gelu_new"): 0.5 x (1 + tanh(k (x + c x^3))).
inline constexpr float kGeluK = 0.7978845608028654f;  // sqrt(2 / pi)
inline constexpr float kGeluC = 0.044715f;

STRATA_HD float GeluTanh(float x) { return 0.5f * x * (1.0f + std::tanh(kGeluK * (x + kGeluC * x * x * x))); }
STRATA_HD float GeluTanhGrad(float x) {
  const float t = std::tanh(kGeluK * (x + kGeluC * x * x * x));
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kGeluK * (1.0f + 3.0f * kGeluC * x * x);
}

// out = (x - mean) / sqrt(var + eps) * w + b over one row of C (biased variance, like torch).
STRATA_HD void LayerNormRow(const float* x, const float* w, const float* b, float* out, float* mean_out,
                            float* rstd_out, int64_t C, float eps) {
  float sum = 0.0f;
  for (int64_t c = 0; c < C; ++c) sum += x[c];
  const float mean = sum / static_cast<float>(C);
  float var = 0.0f;
  for (int64_t c = 0; c < C; ++c) {
    const float d = x[c] - mean;
    var += d * d;
  }
  var /= static_cast<float>(C);
  const float rstd = 1.0f / std::sqrt(var + eps);
  for (int64_t c = 0; c < C; ++c) out[c] = (x[c] - mean) * rstd * w[c] + b[c];
  *mean_out = mean;
  *rstd_out = rstd;
}

// One row of LayerNorm's backward: dx += input gradient; dw += dout * norm; db += dout.
STRATA_HD void LayerNormBackwardRow(const float* x, const float* w, float mean, float rstd, const float* dout,
                                    float* dx, float* dw, float* db, int64_t C) {
  float mean_dn = 0.0f, mean_dn_norm = 0.0f;
  for (int64_t c = 0; c < C; ++c) {
    const float norm = (x[c] - mean) * rstd;
    const float dn = dout[c] * w[c];
    mean_dn += dn;
    mean_dn_norm += dn * norm;
  }
  mean_dn /= static_cast<float>(C);
  mean_dn_norm /= static_cast<float>(C);
  for (int64_t c = 0; c < C; ++c) {
    const float norm = (x[c] - mean) * rstd;
    const float dn = dout[c] * w[c];
    dx[c] += rstd * (dn - mean_dn - norm * mean_dn_norm);
    dw[c] += dout[c] * norm;
    db[c] += dout[c];
  }
}

}  // namespace strata::model
