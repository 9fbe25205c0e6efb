// The CPU kernels every model family shares: Eigen maps over the flat buffers, linear layers and
// their gradients, LayerNorm over rows, GELU, the causal softmax and the cross-entropy of one row.
// Internal to model/: included only by the files compiled for the model kernels' instruction set
// (model/gpt2.cc, model/llama.cc), never by a header.
//
// Every parallel loop splits its rows (or columns) into one contiguous range per thread, and
// every output element is written by exactly one thread in a fixed order: results depend on the
// thread count, never on scheduling.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "model/gpt2_math.h"
#include "runtime/aligned.h"
#include "runtime/status.h"
#include "runtime/thread_pool.h"

namespace strata::model::ops {


using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapM = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
using CMapM = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using MapA = Eigen::Map<Eigen::ArrayXf>;
using CMapA = Eigen::Map<const Eigen::ArrayXf>;

inline MapM M(float* p, int64_t rows, int64_t cols, int64_t stride) { return MapM(p, rows, cols, Eigen::OuterStride<>(stride)); }
inline CMapM CM(const float* p, int64_t rows, int64_t cols, int64_t stride) {
  return CMapM(p, rows, cols, Eigen::OuterStride<>(stride));
}

// The floats between two layers' slots of an activation buffer: a multiple of 16, so every slot
// starts 64-byte aligned like the buffer. Eigen's vectorised reductions treat an unaligned head
// element by element, so a slot's alignment decides the rounding; with every slot aligned alike, a
// layer computes bitwise the same whether its activations sit in slot l (kept) or slot 0
// (recomputed).
inline int64_t SlotStride(int64_t floats) { return (floats + 15) / 16 * 16; }

// Rows per range: small enough that two threads share any batch, large enough for Eigen's blocking.
constexpr int64_t kRowGrain = 4;

// db[Mo] = the column sums of dy[N, Mo] (a bias's gradient), each thread owning a range of columns.
inline void ColumnSums(ThreadPool& pool, const float* dy, float* db, int64_t N, int64_t Mo) {
  pool.ParallelFor(Mo, 16, [&](int64_t c0, int64_t c1) {
    if (c1 <= c0) return;
    std::fill(db + c0, db + c1, 0.0f);
    for (int64_t n = 0; n < N; ++n) {
      const float* row = dy + n * Mo;
      for (int64_t c = c0; c < c1; ++c) db[c] += row[c];
    }
  });
}

// y[N, M] = x[N, K] w[K, M] + b[M] (b may be null).
inline void Linear(ThreadPool& pool, const float* x, const float* w, const float* b, float* y, int64_t N, int64_t K,
            int64_t Mo) {
  pool.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    if (r1 <= r0) return;
    auto Y = M(y + r0 * Mo, r1 - r0, Mo, Mo);
    Y.noalias() = CM(x + r0 * K, r1 - r0, K, K) * CM(w, K, Mo, Mo);
    if (b) Y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(b, Mo);
  });
}

// The gradients of Linear: dx = dy w^T (when dx is set), dw = x^T dy, db = column sums of dy.
inline void LinearBackward(ThreadPool& pool, const float* x, const float* w, const float* dy, float* dx, float* dw,
                    float* db, int64_t N, int64_t K, int64_t Mo) {
  if (dx) {
    pool.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
      if (r1 <= r0) return;
      M(dx + r0 * K, r1 - r0, K, K).noalias() = CM(dy + r0 * Mo, r1 - r0, Mo, Mo) * CM(w, K, Mo, Mo).transpose();
    });
  }
  pool.ParallelFor(K, kRowGrain, [&](int64_t k0, int64_t k1) {
    if (k1 <= k0) return;
    M(dw + k0 * Mo, k1 - k0, Mo, Mo).noalias() = CM(x + k0, N, k1 - k0, K).transpose() * CM(dy, N, Mo, Mo);
  });
  if (db) ColumnSums(pool, dy, db, N, Mo);
}

// LayerNorm over rows of width C; keeps mean and 1/std per row for backward.
inline void LayerNormForward(ThreadPool& pool, const float* x, const float* w, const float* b, float* out, float* mean,
                      float* rstd, int64_t N, int64_t C, float eps) {
  pool.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      LayerNormRow(x + n * C, w, b, out + n * C, &mean[n], &rstd[n], C, eps);
    }
  });
}

// dx += LayerNorm's input gradient; dw, db = its parameter gradients. Each thread sums its rows'
// parameter gradients into its own partial, and the partials are added in thread order.
inline void LayerNormBackward(ThreadPool& pool, const float* x, const float* w, const float* mean, const float* rstd,
                       const float* dout, float* dx, float* dw, float* db, int64_t N, int64_t C,
                       AlignedVector<float>& partial) {
  const int parts = pool.size();
  partial.assign(static_cast<size_t>(parts) * 2 * C, 0.0f);
  const auto ranges = SplitRange(N, kRowGrain, parts);
  pool.ParallelFor(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      float* pw = partial.data() + p * 2 * C;
      float* pb = pw + C;
      for (int64_t n = ranges[p].first; n < ranges[p].second; ++n) {
        LayerNormBackwardRow(x + n * C, w, mean[n], rstd[n], dout + n * C, dx + n * C, pw, pb, C);
      }
    }
  });
  std::fill(dw, dw + C, 0.0f);
  std::fill(db, db + C, 0.0f);
  for (int p = 0; p < parts; ++p) {
    const float* pw = partial.data() + static_cast<int64_t>(p) * 2 * C;
    for (int64_t c = 0; c < C; ++c) {
      dw[c] += pw[c];
      db[c] += pw[C + c];
    }
  }
}

// Eigen's vectorised tanh over a contiguous range: g = gelu(u).
inline void GeluForward(ThreadPool& pool, const float* u, float* g, int64_t N, int64_t width) {
  pool.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    if (r1 <= r0) return;
    const int64_t n = (r1 - r0) * width;
    CMapA U(u + r0 * width, n);
    MapA G(g + r0 * width, n);
    G = 0.5f * U * (1.0f + (kGeluK * (U + kGeluC * U.cube())).tanh());
  });
}

// dg *= gelu'(u), in place.
inline void GeluBackward(ThreadPool& pool, const float* u, float* dg, int64_t N, int64_t width) {
  pool.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    if (r1 <= r0) return;
    Eigen::ArrayXf t;
    for (int64_t r = r0; r < r1; ++r) {
      CMapA U(u + r * width, width);
      MapA D(dg + r * width, width);
      t = (kGeluK * (U + kGeluC * U.cube())).tanh();
      D *= 0.5f * (1.0f + t) + 0.5f * U * (1.0f - t.square()) * kGeluK * (1.0f + 3.0f * kGeluC * U.square());
    }
  });
}

// Softmax over row[0..t] of scores times scale; zero above the diagonal (s > t).
inline void CausalSoftmaxRow(float* row, int64_t t, int64_t T, float scale) {
  MapA r(row, t + 1);
  r *= scale;
  const float mx = r.maxCoeff();
  r = (r - mx).exp();
  r *= 1.0f / r.sum();
  std::fill(row + t + 1, row + T, 0.0f);
}

// In place: dp[s] = p[s] (dp[s] - sum_s' p[s'] dp[s']) * scale for s <= t, 0 above the diagonal.
inline void CausalSoftmaxBackwardRow(const float* p, float* dp, int64_t t, float scale) {
  CMapA P(p, t + 1);
  MapA D(dp, t + 1);
  const float dot = (P * D).sum();
  D = P * (D - dot) * scale;  // the caller zeroes the row above the diagonal
}

// Cross-entropy of one row of logits against target; probs gets the softmax.
inline float SoftmaxCrossEntropyRow(const float* logits, float* probs, int64_t V, int32_t target) {
  CMapA L(logits, V);
  MapA Pr(probs, V);
  const float mx = L.maxCoeff();
  Pr = (L - mx).exp();
  const float sum = Pr.sum();
  Pr *= 1.0f / sum;
  return std::log(sum) + mx - logits[target];
}


// y[N, Mo] = x[N, K] w[Mo, K]^T + b[Mo] (b may be null): torch's nn.Linear layout, [out, in].
inline void LinearT(ThreadPool& pool, const float* x, const float* w, const float* b, float* y, int64_t N, int64_t K,
                    int64_t Mo) {
  pool.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    if (r1 <= r0) return;
    auto Y = M(y + r0 * Mo, r1 - r0, Mo, Mo);
    Y.noalias() = CM(x + r0 * K, r1 - r0, K, K) * CM(w, Mo, K, K).transpose();
    if (b) Y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(b, Mo);
  });
}

// The gradients of LinearT: dx = dy w (when dx is set), dw = dy^T x, db = column sums of dy (when set).
inline void LinearTBackward(ThreadPool& pool, const float* x, const float* w, const float* dy, float* dx, float* dw,
                            float* db, int64_t N, int64_t K, int64_t Mo) {
  if (dx) {
    pool.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
      if (r1 <= r0) return;
      M(dx + r0 * K, r1 - r0, K, K).noalias() = CM(dy + r0 * Mo, r1 - r0, Mo, Mo) * CM(w, Mo, K, K);
    });
  }
  pool.ParallelFor(Mo, kRowGrain, [&](int64_t m0, int64_t m1) {
    if (m1 <= m0) return;
    M(dw + m0 * K, m1 - m0, K, K).noalias() = CM(dy + m0, N, m1 - m0, Mo).transpose() * CM(x, N, K, K);
  });
  if (db) ColumnSums(pool, dy, db, N, Mo);
}

// Softmax over row[lo..t] of scores times scale; zero outside [lo, t] (causal, within a window).
inline void WindowSoftmaxRow(float* row, int64_t lo, int64_t t, int64_t T, float scale) {
  std::fill(row, row + lo, 0.0f);
  MapA r(row + lo, t + 1 - lo);
  r *= scale;
  const float mx = r.maxCoeff();
  r = (r - mx).exp();
  r *= 1.0f / r.sum();
  std::fill(row + t + 1, row + T, 0.0f);
}

// Is the CPU able to run the model kernels of this build? (Defined in model/gpt2.cc.)
[[nodiscard]] Status CheckKernelIsa();

}  // namespace strata::model::ops
