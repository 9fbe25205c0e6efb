// GPT-2 forward and backward on the CPU. Matrix products go through Eigen (row-major maps over
// the flat buffers, no copies); element-wise parts (LayerNorm, GELU, softmax) are plain loops over
// rows, using Eigen's vectorised tanh and exp. Every parallel loop splits its rows (or columns)
// into one contiguous range per thread, and every output element is written by exactly one
// thread in a fixed order: results depend on the thread count, never on scheduling.
//
// This file is compiled for the build machine's best instruction set (see CMakeLists.txt): Eigen's
// kernels are templates, so one copy per instruction set in one binary would collide at link
// time. Create() refuses to run on a CPU that lacks that instruction set.
#include "model/gpt2.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

#include "model/gpt2_math.h"
#include "runtime/random.h"

#ifndef STRATA_MODEL_ISA
#define STRATA_MODEL_ISA 0
#endif

namespace strata::model {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapM = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;
using CMapM = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using MapA = Eigen::Map<Eigen::ArrayXf>;
using CMapA = Eigen::Map<const Eigen::ArrayXf>;

MapM M(float* p, int64_t rows, int64_t cols, int64_t stride) { return MapM(p, rows, cols, Eigen::OuterStride<>(stride)); }
CMapM CM(const float* p, int64_t rows, int64_t cols, int64_t stride) {
  return CMapM(p, rows, cols, Eigen::OuterStride<>(stride));
}

// Rows per range: small enough that two threads share any batch, large enough for Eigen's blocking.
constexpr int64_t kRowGrain = 4;

// y[N, M] = x[N, K] w[K, M] + b[M] (b may be null).
void Linear(ThreadPool& pool, const float* x, const float* w, const float* b, float* y, int64_t N, int64_t K,
            int64_t Mo) {
  pool.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    if (r1 <= r0) return;
    auto Y = M(y + r0 * Mo, r1 - r0, Mo, Mo);
    Y.noalias() = CM(x + r0 * K, r1 - r0, K, K) * CM(w, K, Mo, Mo);
    if (b) Y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(b, Mo);
  });
}

// The gradients of Linear: dx = dy w^T (when dx is set), dw = x^T dy, db = column sums of dy.
void LinearBackward(ThreadPool& pool, const float* x, const float* w, const float* dy, float* dx, float* dw,
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
  if (db) {
    pool.ParallelFor(Mo, 16, [&](int64_t c0, int64_t c1) {
      if (c1 <= c0) return;
      std::fill(db + c0, db + c1, 0.0f);
      for (int64_t n = 0; n < N; ++n) {
        const float* row = dy + n * Mo;
        for (int64_t c = c0; c < c1; ++c) db[c] += row[c];
      }
    });
  }
}

// LayerNorm over rows of width C; keeps mean and 1/std per row for backward.
void LayerNormForward(ThreadPool& pool, const float* x, const float* w, const float* b, float* out, float* mean,
                      float* rstd, int64_t N, int64_t C, float eps) {
  pool.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      LayerNormRow(x + n * C, w, b, out + n * C, &mean[n], &rstd[n], C, eps);
    }
  });
}

// dx += LayerNorm's input gradient; dw, db = its parameter gradients. Each thread sums its rows'
// parameter gradients into its own partial, and the partials are added in thread order.
void LayerNormBackward(ThreadPool& pool, const float* x, const float* w, const float* mean, const float* rstd,
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
void GeluForward(ThreadPool& pool, const float* u, float* g, int64_t N, int64_t width) {
  pool.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    if (r1 <= r0) return;
    const int64_t n = (r1 - r0) * width;
    CMapA U(u + r0 * width, n);
    MapA G(g + r0 * width, n);
    G = 0.5f * U * (1.0f + (kGeluK * (U + kGeluC * U.cube())).tanh());
  });
}

// dg *= gelu'(u), in place.
void GeluBackward(ThreadPool& pool, const float* u, float* dg, int64_t N, int64_t width) {
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
void CausalSoftmaxRow(float* row, int64_t t, int64_t T, float scale) {
  MapA r(row, t + 1);
  r *= scale;
  const float mx = r.maxCoeff();
  r = (r - mx).exp();
  r *= 1.0f / r.sum();
  std::fill(row + t + 1, row + T, 0.0f);
}

// In place: dp[s] = p[s] (dp[s] - sum_s' p[s'] dp[s']) * scale for s <= t, 0 above the diagonal.
void CausalSoftmaxBackwardRow(const float* p, float* dp, int64_t t, float scale) {
  CMapA P(p, t + 1);
  MapA D(dp, t + 1);
  const float dot = (P * D).sum();
  D = P * (D - dot) * scale;  // the caller zeroes the row above the diagonal
}

// Cross-entropy of one row of logits against target; probs gets the softmax.
float SoftmaxCrossEntropyRow(const float* logits, float* probs, int64_t V, int32_t target) {
  CMapA L(logits, V);
  MapA Pr(probs, V);
  const float mx = L.maxCoeff();
  Pr = (L - mx).exp();
  const float sum = Pr.sum();
  Pr *= 1.0f / sum;
  return std::log(sum) + mx - logits[target];
}

}  // namespace

const char* Gpt2KernelIsa() {
#if STRATA_MODEL_ISA == 2
  return "avx512";
#elif STRATA_MODEL_ISA == 1
  return "avx2";
#else
  return "generic";
#endif
}

// --- activations --------------------------------------------------------------------------------

// Pointers into the flat buffer, one layer.
struct LayerParamsView {
  float *ln1w, *ln1b, *qkvw, *qkvb, *projw, *projb, *ln2w, *ln2b, *fcw, *fcb, *fcpw, *fcpb;
};
static LayerParamsView ViewLayer(float* base, const Gpt2Config& cfg, int l) {
  const int64_t C = cfg.n_embd;
  float* p = base + Gpt2LayerOffset(cfg, l);
  LayerParamsView v{};
  float** fields[] = {&v.ln1w, &v.ln1b, &v.qkvw, &v.qkvb, &v.projw, &v.projb,
                      &v.ln2w, &v.ln2b, &v.fcw,  &v.fcb,  &v.fcpw, &v.fcpb};
  const int64_t sizes[] = {C, C, 3 * C * C, 3 * C, C * C, C, C, C, 4 * C * C, 4 * C, 4 * C * C, C};
  for (int i = 0; i < 12; ++i) {
    *fields[i] = p;
    p += sizes[i];
  }
  return v;
}

struct Gpt2::Acts {
  int B = 0, T = 0;
  int64_t capN = 0, capBHTT = 0;
  bool has_targets = false;
  std::vector<int32_t> inputs, targets;
  // Per layer l (each [L][N, width]):
  AlignedVector<float> res;      // [L+1][N, C]  the residual stream entering layer l; res[L] leaves the last
  AlignedVector<float> ln1;      // [L][N, C]
  AlignedVector<float> ln1_mean, ln1_rstd;  // [L][N]
  AlignedVector<float> qkv;      // [L][N, 3C]
  AlignedVector<float> att;      // [L][B, H, T, T]  attention probabilities (zero above the diagonal)
  AlignedVector<float> atty;     // [L][N, C]  attention output before c_proj
  AlignedVector<float> mid;      // [L][N, C]  residual after attention
  AlignedVector<float> ln2;      // [L][N, C]
  AlignedVector<float> ln2_mean, ln2_rstd;  // [L][N]
  AlignedVector<float> fc;       // [L][N, 4C] before GELU
  AlignedVector<float> gelu;     // [L][N, 4C]
  AlignedVector<float> lnf, lnf_mean, lnf_rstd;  // [N, C], [N], [N]
  AlignedVector<float> logits;   // [N, V]
  AlignedVector<float> probs;    // [N, V]  softmax, then dlogits in backward
  AlignedVector<float> row_loss; // [N]
  // Backward scratch.
  AlignedVector<float> dres, dln, dbig, dqkv, datty;  // [N,C] [N,C] [N,4C] [N,3C] [N,C]
  AlignedVector<float> ln_partial;

  uint64_t Bytes() const {
    uint64_t f = 0;
    for (const auto* v : {&res, &ln1, &ln1_mean, &ln1_rstd, &qkv, &att, &atty, &mid, &ln2, &ln2_mean, &ln2_rstd, &fc,
                          &gelu, &lnf, &lnf_mean, &lnf_rstd, &logits, &probs, &row_loss, &dres, &dln, &dbig, &dqkv,
                          &datty}) {
      f += v->capacity();
    }
    return f * sizeof(float) + (inputs.capacity() + targets.capacity()) * sizeof(int32_t);
  }
};

uint64_t Gpt2::activation_bytes() const { return acts_ ? acts_->Bytes() : 0; }

Gpt2::Gpt2(const Gpt2Config& cfg, int threads)
    : cfg_(cfg), n_params_(cfg.NumParams()), pool_(threads), acts_(std::make_unique<Acts>()) {
  params_.assign(n_params_, 0.0f);
  grads_.assign(n_params_, 0.0f);
}
Gpt2::~Gpt2() = default;

Result<std::unique_ptr<Gpt2>> Gpt2::Create(const Gpt2Config& cfg, int threads) {
  if (Status s = cfg.Validate(); !s.ok()) return s;
#if STRATA_MODEL_ISA == 2
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
      !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("fma")) {
    return Status::Unavailable(
        "this strata was built with AVX-512 model kernels and this CPU has no AVX-512: rebuild on this machine "
        "(scripts/build.sh) or configure with -DSTRATA_MODEL_ISA=avx2");
  }
#elif STRATA_MODEL_ISA == 1
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    return Status::Unavailable(
        "this strata was built with AVX2 model kernels and this CPU has no AVX2: rebuild on this machine "
        "(scripts/build.sh) or configure with -DSTRATA_MODEL_ISA=generic");
  }
#endif
  if (threads < 0) return Status::InvalidArgument("threads must be >= 0 (0 = all cores)");
  return std::unique_ptr<Gpt2>(new Gpt2(cfg, threads));
}

void Gpt2::Reserve(int B, int T) {
  Acts& a = *acts_;
  const int64_t N = static_cast<int64_t>(B) * T, L = cfg_.n_layer, C = cfg_.n_embd, V = cfg_.vocab;
  const int64_t BHTT = static_cast<int64_t>(B) * cfg_.n_head * T * T;
  a.B = B;
  a.T = T;
  if (N <= a.capN && BHTT <= a.capBHTT) return;
  a.capN = std::max(a.capN, N);
  a.capBHTT = std::max(a.capBHTT, BHTT);
  const int64_t n = a.capN;
  a.res.assign((L + 1) * n * C, 0.0f);
  a.ln1.assign(L * n * C, 0.0f);
  a.ln1_mean.assign(L * n, 0.0f);
  a.ln1_rstd.assign(L * n, 0.0f);
  a.qkv.assign(L * n * 3 * C, 0.0f);
  a.att.assign(L * a.capBHTT, 0.0f);
  a.atty.assign(L * n * C, 0.0f);
  a.mid.assign(L * n * C, 0.0f);
  a.ln2.assign(L * n * C, 0.0f);
  a.ln2_mean.assign(L * n, 0.0f);
  a.ln2_rstd.assign(L * n, 0.0f);
  a.fc.assign(L * n * 4 * C, 0.0f);
  a.gelu.assign(L * n * 4 * C, 0.0f);
  a.lnf.assign(n * C, 0.0f);
  a.lnf_mean.assign(n, 0.0f);
  a.lnf_rstd.assign(n, 0.0f);
  a.logits.assign(n * V, 0.0f);
  a.probs.assign(n * V, 0.0f);
  a.row_loss.assign(n, 0.0f);
  a.dres.assign(n * C, 0.0f);
  a.dln.assign(n * C, 0.0f);
  a.dbig.assign(n * 4 * C, 0.0f);
  a.dqkv.assign(n * 3 * C, 0.0f);
  a.datty.assign(n * C, 0.0f);
}

void Gpt2::InitRandom(uint64_t seed) { InitGpt2Weights(cfg_, seed, params_); }

// --- forward ------------------------------------------------------------------------------------

Result<float> Gpt2::Forward(std::span<const int32_t> inputs, std::span<const int32_t> targets, int B, int T) {
  if (B < 1 || T < 1) return Status::InvalidArgument("forward: batch and sequence length must be >= 1");
  if (T > cfg_.n_ctx) {
    return Status::InvalidArgument("forward: sequence length " + std::to_string(T) + " is longer than the context " +
                                   std::to_string(cfg_.n_ctx));
  }
  const int64_t N = static_cast<int64_t>(B) * T;
  if (inputs.size() != static_cast<size_t>(N) || (!targets.empty() && targets.size() != static_cast<size_t>(N))) {
    return Status::InvalidArgument("forward: expected " + std::to_string(N) + " token ids for B=" +
                                   std::to_string(B) + ", T=" + std::to_string(T));
  }
  for (auto span : {inputs, targets}) {
    for (size_t i = 0; i < span.size(); ++i) {
      if (span[i] < 0 || span[i] >= cfg_.vocab) {
        return Status::InvalidArgument("forward: token id " + std::to_string(span[i]) + " at position " +
                                       std::to_string(i) + " is outside the vocabulary of " +
                                       std::to_string(cfg_.vocab));
      }
    }
  }
  Reserve(B, T);
  Acts& a = *acts_;
  a.inputs.assign(inputs.begin(), inputs.end());
  a.targets.assign(targets.begin(), targets.end());
  a.has_targets = !targets.empty();
  const int64_t L = cfg_.n_layer, C = cfg_.n_embd, H = cfg_.n_head, hs = C / H, V = cfg_.vocab;
  float* P = params_.data();
  const float* wte = P;
  const float* wpe = P + static_cast<int64_t>(V) * C;

  // Embeddings.
  pool_.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      const float* e = wte + static_cast<int64_t>(a.inputs[n]) * C;
      const float* q = wpe + (n % T) * C;
      float* out = a.res.data() + n * C;
      for (int64_t c = 0; c < C; ++c) out[c] = e[c] + q[c];
    }
  });

  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const int64_t BHTT = static_cast<int64_t>(B) * H * T * T;
  for (int64_t l = 0; l < L; ++l) {
    const LayerParamsView w = ViewLayer(P, cfg_, static_cast<int>(l));
    const float* x = a.res.data() + l * N * C;
    float* ln1 = a.ln1.data() + l * N * C;
    float* qkv = a.qkv.data() + l * N * 3 * C;
    float* att = a.att.data() + l * BHTT;
    float* atty = a.atty.data() + l * N * C;
    float* mid = a.mid.data() + l * N * C;
    float* ln2 = a.ln2.data() + l * N * C;
    float* fc = a.fc.data() + l * N * 4 * C;
    float* gelu = a.gelu.data() + l * N * 4 * C;
    float* out = a.res.data() + (l + 1) * N * C;

    LayerNormForward(pool_, x, w.ln1w, w.ln1b, ln1, a.ln1_mean.data() + l * N, a.ln1_rstd.data() + l * N, N, C,
                     cfg_.ln_eps);
    Linear(pool_, ln1, w.qkvw, w.qkvb, qkv, N, C, 3 * C);
    // Causal self-attention, one (batch row, head) pair per task.
    pool_.ParallelFor(static_cast<int64_t>(B) * H, 1, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t b = j / H, h = j % H;
        const float* base = qkv + b * T * 3 * C + h * hs;
        auto Q = CM(base, T, hs, 3 * C);
        auto K = CM(base + C, T, hs, 3 * C);
        auto Vv = CM(base + 2 * C, T, hs, 3 * C);
        float* pr = att + j * T * T;
        auto S = M(pr, T, T, T);
        S.noalias() = Q * K.transpose();
        for (int64_t t = 0; t < T; ++t) CausalSoftmaxRow(pr + t * T, t, T, scale);
        M(atty + b * T * C + h * hs, T, hs, C).noalias() = S * Vv;
      }
    });
    Linear(pool_, atty, w.projw, w.projb, mid, N, C, C);
    pool_.ParallelFor(N * C, 1024, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) mid[i] += x[i];
    });
    LayerNormForward(pool_, mid, w.ln2w, w.ln2b, ln2, a.ln2_mean.data() + l * N, a.ln2_rstd.data() + l * N, N, C,
                     cfg_.ln_eps);
    Linear(pool_, ln2, w.fcw, w.fcb, fc, N, C, 4 * C);
    GeluForward(pool_, fc, gelu, N, 4 * C);
    Linear(pool_, gelu, w.fcpw, w.fcpb, out, N, 4 * C, C);
    pool_.ParallelFor(N * C, 1024, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) out[i] += mid[i];
    });
  }

  const float* lnfw = P + Gpt2LayerOffset(cfg_, static_cast<int>(L));
  const float* lnfb = lnfw + C;
  LayerNormForward(pool_, a.res.data() + L * N * C, lnfw, lnfb, a.lnf.data(), a.lnf_mean.data(), a.lnf_rstd.data(),
                   N, C, cfg_.ln_eps);
  // Logits through the tied embedding: [N, C] x [V, C]^T.
  pool_.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    if (r1 <= r0) return;
    M(a.logits.data() + r0 * V, r1 - r0, V, V).noalias() = CM(a.lnf.data() + r0 * C, r1 - r0, C, C) *
                                                            CM(wte, V, C, C).transpose();
  });
  if (!a.has_targets) return 0.0f;
  pool_.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      a.row_loss[n] = SoftmaxCrossEntropyRow(a.logits.data() + n * V, a.probs.data() + n * V, V, a.targets[n]);
    }
  });
  double sum = 0;
  for (int64_t n = 0; n < N; ++n) sum += a.row_loss[n];
  return static_cast<float>(sum / static_cast<double>(N));
}

std::span<const float> Gpt2::logits() const {
  return {acts_->logits.data(), static_cast<size_t>(acts_->B) * acts_->T * cfg_.vocab};
}

// --- backward -----------------------------------------------------------------------------------

Status Gpt2::Backward(const std::function<void(uint64_t lo)>& on_ready) {
  Acts& a = *acts_;
  if (!a.has_targets || a.B == 0) return Status::InvalidArgument("backward: no forward with targets to differentiate");
  const int B = a.B, T = a.T;
  const int64_t N = static_cast<int64_t>(B) * T, L = cfg_.n_layer, C = cfg_.n_embd, H = cfg_.n_head, hs = C / H,
                V = cfg_.vocab;
  float* P = params_.data();
  float* G = grads_.data();
  const float* wte = P;
  float* dwte = G;
  float* dwpe = G + V * C;

  // dlogits = (softmax - onehot) / N, in place of the probabilities.
  const float inv_n = 1.0f / static_cast<float>(N);
  pool_.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      float* d = a.probs.data() + n * V;
      d[a.targets[n]] -= 1.0f;
      for (int64_t v = 0; v < V; ++v) d[v] *= inv_n;
    }
  });
  const float* dlogits = a.probs.data();
  // dlnf = dlogits wte; dwte = dlogits^T lnf (the output head's share; the embedding's comes last).
  pool_.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    if (r1 <= r0) return;
    M(a.dln.data() + r0 * C, r1 - r0, C, C).noalias() = CM(dlogits + r0 * V, r1 - r0, V, V) * CM(wte, V, C, C);
  });
  pool_.ParallelFor(V, kRowGrain, [&](int64_t v0, int64_t v1) {
    if (v1 <= v0) return;
    M(dwte + v0 * C, v1 - v0, C, C).noalias() = CM(dlogits + v0, N, v1 - v0, V).transpose() * CM(a.lnf.data(), N, C, C);
  });
  const uint64_t lnf_off = Gpt2LayerOffset(cfg_, static_cast<int>(L));
  std::fill(a.dres.begin(), a.dres.begin() + N * C, 0.0f);
  LayerNormBackward(pool_, a.res.data() + L * N * C, P + lnf_off, a.lnf_mean.data(), a.lnf_rstd.data(), a.dln.data(),
                    a.dres.data(), G + lnf_off, G + lnf_off + C, N, C, a.ln_partial);
  if (on_ready) on_ready(lnf_off);

  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const int64_t BHTT = static_cast<int64_t>(B) * H * T * T;
  float* dres = a.dres.data();
  for (int64_t l = L - 1; l >= 0; --l) {
    const LayerParamsView w = ViewLayer(P, cfg_, static_cast<int>(l));
    const LayerParamsView dw = ViewLayer(G, cfg_, static_cast<int>(l));
    const float* x = a.res.data() + l * N * C;
    const float* ln1 = a.ln1.data() + l * N * C;
    const float* qkv = a.qkv.data() + l * N * 3 * C;
    const float* att = a.att.data() + l * BHTT;
    const float* atty = a.atty.data() + l * N * C;
    const float* mid = a.mid.data() + l * N * C;
    const float* ln2 = a.ln2.data() + l * N * C;
    const float* fc = a.fc.data() + l * N * 4 * C;
    const float* gelu = a.gelu.data() + l * N * 4 * C;

    // MLP: out = mid + c_proj(gelu(c_fc(ln_2(mid)))).
    LinearBackward(pool_, gelu, w.fcpw, dres, a.dbig.data(), dw.fcpw, dw.fcpb, N, 4 * C, C);
    GeluBackward(pool_, fc, a.dbig.data(), N, 4 * C);
    LinearBackward(pool_, ln2, w.fcw, a.dbig.data(), a.dln.data(), dw.fcw, dw.fcb, N, C, 4 * C);
    LayerNormBackward(pool_, mid, w.ln2w, a.ln2_mean.data() + l * N, a.ln2_rstd.data() + l * N, a.dln.data(), dres,
                      dw.ln2w, dw.ln2b, N, C, a.ln_partial);
    // Attention: mid = x + c_proj(attn(c_attn(ln_1(x)))).
    LinearBackward(pool_, atty, w.projw, dres, a.datty.data(), dw.projw, dw.projb, N, C, C);
    pool_.ParallelFor(static_cast<int64_t>(B) * H, 1, [&](int64_t j0, int64_t j1) {
      RowMat dP(T, T);
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t b = j / H, h = j % H;
        const float* base = qkv + b * T * 3 * C + h * hs;
        float* dbase = a.dqkv.data() + b * T * 3 * C + h * hs;
        auto Q = CM(base, T, hs, 3 * C);
        auto K = CM(base + C, T, hs, 3 * C);
        auto Vv = CM(base + 2 * C, T, hs, 3 * C);
        auto Pm = CM(att + j * T * T, T, T, T);
        auto dY = CM(a.datty.data() + b * T * C + h * hs, T, hs, C);
        dP.noalias() = dY * Vv.transpose();
        M(dbase + 2 * C, T, hs, 3 * C).noalias() = Pm.transpose() * dY;
        for (int64_t t = 0; t < T; ++t) {
          CausalSoftmaxBackwardRow(att + j * T * T + t * T, dP.data() + t * T, t, scale);
          std::fill(dP.data() + t * T + t + 1, dP.data() + (t + 1) * T, 0.0f);
        }
        M(dbase, T, hs, 3 * C).noalias() = dP * K;  // dP now holds dS (scaled)
        M(dbase + C, T, hs, 3 * C).noalias() = dP.transpose() * Q;
      }
    });
    LinearBackward(pool_, ln1, w.qkvw, a.dqkv.data(), a.dln.data(), dw.qkvw, dw.qkvb, N, C, 3 * C);
    LayerNormBackward(pool_, x, w.ln1w, a.ln1_mean.data() + l * N, a.ln1_rstd.data() + l * N, a.dln.data(), dres,
                      dw.ln1w, dw.ln1b, N, C, a.ln_partial);
    if (on_ready) on_ready(Gpt2LayerOffset(cfg_, static_cast<int>(l)));
  }

  // Embeddings: each thread owns a range of columns, so the scatter-add has no races and a fixed order.
  pool_.ParallelFor(C, 16, [&](int64_t c0, int64_t c1) {
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t c = c0; c < c1; ++c) dwpe[t * C + c] = 0.0f;
    }
    for (int64_t t = T; t < cfg_.n_ctx; ++t) {
      for (int64_t c = c0; c < c1; ++c) dwpe[t * C + c] = 0.0f;
    }
    for (int64_t n = 0; n < N; ++n) {
      const float* d = dres + n * C;
      float* e = dwte + static_cast<int64_t>(a.inputs[n]) * C;
      float* q = dwpe + (n % T) * C;
      for (int64_t c = c0; c < c1; ++c) {
        e[c] += d[c];
        q[c] += d[c];
      }
    }
  });
  if (on_ready) on_ready(0);
  return Status::Ok();
}

// --- sampling -----------------------------------------------------------------------------------

Result<std::vector<int32_t>> Gpt2::Sample(std::span<const int32_t> prompt, int n, float temperature, int top_k,
                                          uint64_t seed) {
  if (prompt.empty()) return Status::InvalidArgument("sample: the prompt must hold at least one token");
  if (n < 0) return Status::InvalidArgument("sample: n must be >= 0");
  std::vector<int32_t> ctx(prompt.begin(), prompt.end());
  std::vector<int32_t> out;
  const int V = cfg_.vocab;
  uint64_t s = seed;
  std::vector<std::pair<float, int32_t>> cand(V);
  for (int i = 0; i < n; ++i) {
    const int T = static_cast<int>(std::min<size_t>(ctx.size(), cfg_.n_ctx));
    std::span<const int32_t> window(ctx.data() + ctx.size() - T, T);
    Result<float> r = Forward(window, {}, 1, T);
    if (!r.ok()) return r.status();
    const float* lg = acts_->logits.data() + static_cast<int64_t>(T - 1) * V;
    int32_t next = 0;
    if (temperature <= 0.0f) {
      next = static_cast<int32_t>(std::max_element(lg, lg + V) - lg);
    } else {
      for (int v = 0; v < V; ++v) cand[v] = {lg[v], v};
      int k = (top_k > 0 && top_k < V) ? top_k : V;
      std::partial_sort(cand.begin(), cand.begin() + k, cand.end(),
                        [](const auto& x, const auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); });
      double total = 0;
      std::vector<double> w(k);
      for (int j = 0; j < k; ++j) total += (w[j] = std::exp((cand[j].first - cand[0].first) / temperature));
      double u = Uniform01(s) * total;
      next = cand[k - 1].second;
      for (int j = 0; j < k; ++j) {
        if ((u -= w[j]) <= 0) {
          next = cand[j].second;
          break;
        }
      }
    }
    ctx.push_back(next);
    out.push_back(next);
  }
  // The sampler's forward passes replaced the activations: no backward may follow.
  acts_->has_targets = false;
  return out;
}

}  // namespace strata::model
