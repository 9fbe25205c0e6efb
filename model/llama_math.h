// The per-row math of the llama family's blocks (llama, mistral, qwen2), written once as inline
// functions: RMSNorm forward and backward over one row, SiLU, the rotary embedding's frequencies
// (with Llama 3.1's scaling) and the rotation of one head. model/llama.cc calls them from its
// parallel loops; the tests use them as written.
#pragma once

#include <cmath>
#include <cstdint>

#include "runtime/hd.h"

namespace strata::model {

// out = w * (x / sqrt(mean(x^2) + eps)) over one row of C; *rstd_out = 1 / sqrt(mean(x^2) + eps).
STRATA_HD void RmsNormRow(const float* x, const float* w, float* out, float* rstd_out, int64_t C, float eps) {
  float ss = 0.0f;
  for (int64_t c = 0; c < C; ++c) ss += x[c] * x[c];
  const float rstd = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
  for (int64_t c = 0; c < C; ++c) out[c] = w[c] * (x[c] * rstd);
  *rstd_out = rstd;
}

// One row of RMSNorm's backward: dx += input gradient; dw += dout * x * rstd.
//   dx_i = rstd (w_i dout_i - n_i mean_j(w_j dout_j n_j)),  n = x * rstd
STRATA_HD void RmsNormBackwardRow(const float* x, const float* w, float rstd, const float* dout, float* dx, float* dw,
                                  int64_t C) {
  float dot = 0.0f;
  for (int64_t c = 0; c < C; ++c) dot += dout[c] * w[c] * (x[c] * rstd);
  dot /= static_cast<float>(C);
  for (int64_t c = 0; c < C; ++c) {
    const float n = x[c] * rstd;
    dx[c] += rstd * (dout[c] * w[c] - n * dot);
    dw[c] += dout[c] * n;
  }
}

// SiLU (swish): x * sigmoid(x), and its derivative sigmoid(x) (1 + x (1 - sigmoid(x))).
STRATA_HD float Silu(float x) { return x / (1.0f + std::exp(-x)); }
STRATA_HD float SiluGrad(float x) {
  const float s = 1.0f / (1.0f + std::exp(-x));
  return s * (1.0f + x * (1.0f - s));
}

// The inverse frequency of pair i (0 <= i < D/2) of a head of D: 1 / theta^(2i / D), computed in
// float32 as Hugging Face does. With llama3 scaling (scaled != 0): wavelengths 2 pi / f longer
// than original_ctx / low_freq_factor are divided by factor, those shorter than
// original_ctx / high_freq_factor kept, and those between blended by
//   s = (original_ctx / wavelength - low) / (high - low):  f' = (1 - s) f / factor + s f.
STRATA_HD float RopeInvFreq(int64_t i, int64_t D, double theta, bool scaled, double factor, double low_freq_factor,
                            double high_freq_factor, double original_ctx) {
  const float f = 1.0f / std::pow(static_cast<float>(theta), static_cast<float>(2 * i) / static_cast<float>(D));
  if (!scaled) return f;
  const float wavelen = static_cast<float>(2.0 * M_PI) / f;
  const float low_wavelen = static_cast<float>(original_ctx / low_freq_factor);
  const float high_wavelen = static_cast<float>(original_ctx / high_freq_factor);
  const float slowed = wavelen > low_wavelen ? f / static_cast<float>(factor) : f;
  if (wavelen < high_wavelen || wavelen > low_wavelen) return slowed;
  const float s = (static_cast<float>(original_ctx) / wavelen - static_cast<float>(low_freq_factor)) /
                  static_cast<float>(high_freq_factor - low_freq_factor);
  return (1.0f - s) * slowed / static_cast<float>(factor) + s * slowed;
}

// Rotates one head of D in Hugging Face's rotate-half convention: pairs (i, i + D/2) turn by the
// angle whose cosine and sine are cs[i], sn[i]. inverse turns back (the gradient's rotation).
STRATA_HD void RopeRotate(float* v, const float* cs, const float* sn, int64_t D, bool inverse) {
  const int64_t h = D / 2;
  for (int64_t i = 0; i < h; ++i) {
    const float a = v[i], b = v[i + h], c = cs[i], s = inverse ? -sn[i] : sn[i];
    v[i] = a * c - b * s;
    v[i + h] = b * c + a * s;
  }
}

}  // namespace strata::model
