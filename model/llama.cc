// The llama family's forward and backward on the CPU (see llama.h). Matrix products through Eigen
// over the flat buffers (model/cpu_ops.h); RMSNorm, SiLU and the rotation from model/llama_math.h.
// Compiled, like model/gpt2.cc, for the build machine's best instruction set.
#include "model/llama.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/cpu_ops.h"
#include "model/llama_math.h"

namespace strata::model {
using namespace ops;  // NOLINT: the shared kernels

namespace {

// Pointers into the flat buffer, one layer.
struct LayerView {
  float *ln1, *qkvw, *qkvb, *ow, *ln2, *guw, *dw;
};
LayerView ViewLayer(float* base, const ModelConfig& cfg, int l) {
  const int64_t C = cfg.n_embd, D = cfg.head_size(), H = cfg.n_head, KV = cfg.kv_heads(), F = cfg.mlp();
  const int64_t QKV = (H + 2 * KV) * D;
  float* p = base + LlamaLayerOffset(cfg, l);
  LayerView v{};
  v.ln1 = p;
  p += C;
  v.qkvw = p;
  p += QKV * C;
  v.qkvb = cfg.qkv_bias ? p : nullptr;
  if (cfg.qkv_bias) p += QKV;
  v.ow = p;
  p += C * H * D;
  v.ln2 = p;
  p += C;
  v.guw = p;
  p += 2 * F * C;
  v.dw = p;
  return v;
}

// RMSNorm over N rows of C.
void RmsNormForward(ThreadPool& pool, const float* x, const float* w, float* out, float* rstd, int64_t N, int64_t C,
                    float eps) {
  pool.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) RmsNormRow(x + n * C, w, out + n * C, &rstd[n], C, eps);
  });
}

// dx += RMSNorm's input gradient; dw = its weight gradient, summed per thread in a partial and
// the partials added in thread order.
void RmsNormBackward(ThreadPool& pool, const float* x, const float* w, const float* rstd, const float* dout, float* dx,
                     float* dw, int64_t N, int64_t C, AlignedVector<float>& partial) {
  const int parts = pool.size();
  partial.assign(static_cast<size_t>(parts) * C, 0.0f);
  const auto ranges = SplitRange(N, kRowGrain, parts);
  pool.ParallelFor(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      float* pw = partial.data() + p * C;
      for (int64_t n = ranges[p].first; n < ranges[p].second; ++n) {
        RmsNormBackwardRow(x + n * C, w, rstd[n], dout + n * C, dx + n * C, pw, C);
      }
    }
  });
  std::fill(dw, dw + C, 0.0f);
  for (int p = 0; p < parts; ++p) {
    const float* pw = partial.data() + static_cast<int64_t>(p) * C;
    for (int64_t c = 0; c < C; ++c) dw[c] += pw[c];
  }
}

// The first key position query t may attend to.
int64_t WindowStart(int64_t t, int32_t window) { return window > 0 ? std::max<int64_t>(0, t - window + 1) : 0; }

}  // namespace

struct Llama::Acts {
  int B = 0, T = 0;
  int64_t capN = 0, capBHTT = 0;
  int64_t slots = 0;  // layer slots held: L (kept), 1 (recomputed in backward)
  bool has_targets = false;
  std::vector<int32_t> inputs, targets;
  // Per layer slot s (each [S][N, width], S = slots); QKV = (H + 2 KV) D. res is kept for every
  // layer either way: it is what a recomputation starts from.
  AlignedVector<float> res;         // [L+1][N, C]  the residual stream entering layer l; res[L] leaves the last
  AlignedVector<float> ln1, rstd1;  // [L][N, C], [L][N]
  AlignedVector<float> qkv;         // [L][N, QKV]  q and k after the rotation
  AlignedVector<float> att;         // [L][B, H, T, T]  attention probabilities (zero outside the window)
  AlignedVector<float> atty;        // [L][N, H D]  attention output before o_proj
  AlignedVector<float> mid;         // [L][N, C]  residual after attention
  AlignedVector<float> ln2, rstd2;  // [L][N, C], [L][N]
  AlignedVector<float> gu;          // [L][N, 2F]  gate | up, before SiLU
  AlignedVector<float> act;         // [L][N, F]   silu(gate) * up
  AlignedVector<float> lnf, rstdf;  // [N, C], [N]
  AlignedVector<float> logits;      // [N, V]
  AlignedVector<float> probs;       // [N, V]  softmax, then dlogits in backward
  AlignedVector<float> row_loss;    // [N]
  // Backward scratch.
  AlignedVector<float> dres, dln, dact, dgu, dqkv, datty;  // [N,C] [N,C] [N,F] [N,2F] [N,QKV] [N,HD]
  AlignedVector<float> partial;

  uint64_t Bytes() const {
    uint64_t f = 0;
    for (const auto* v : {&res, &ln1, &rstd1, &qkv, &att, &atty, &mid, &ln2, &rstd2, &gu, &act, &lnf, &rstdf, &logits,
                          &probs, &row_loss, &dres, &dln, &dact, &dgu, &dqkv, &datty}) {
      f += v->capacity();
    }
    return f * sizeof(float) + (inputs.capacity() + targets.capacity()) * sizeof(int32_t);
  }
};

std::vector<float> RopeFrequencies(const ModelConfig& cfg) {
  const int64_t D = cfg.head_size();
  std::vector<float> f(D / 2);
  const bool scaled = cfg.rope.type == "llama3";
  for (int64_t i = 0; i < D / 2; ++i) {
    f[i] = RopeInvFreq(i, D, cfg.rope_theta, scaled, cfg.rope.factor, cfg.rope.low_freq_factor,
                       cfg.rope.high_freq_factor, cfg.rope.original_ctx);
  }
  return f;
}

Llama::Llama(const ModelConfig& cfg, int threads)
    : cfg_(cfg), n_params_(cfg.NumParams()), pool_(threads), acts_(std::make_unique<Acts>()) {
  params_.assign(n_params_, 0.0f);
  inv_freq_ = RopeFrequencies(cfg_);
}
Llama::~Llama() = default;

Result<std::unique_ptr<Llama>> Llama::Create(const ModelConfig& cfg, int threads) {
  if (cfg.is_gpt2()) return Status::InvalidArgument("model config: arch gpt2 is not of the llama family");
  if (Status s = cfg.Validate(); !s.ok()) return s;
  STRATA_RETURN_IF_ERROR(CheckKernelIsa());
  if (threads < 0) return Status::InvalidArgument("threads must be >= 0 (0 = all cores)");
  return std::unique_ptr<Llama>(new Llama(cfg, threads));
}

uint64_t Llama::activation_bytes() const { return acts_->Bytes(); }

void Llama::RopeTables(int T) {
  if (T <= rope_T_) return;
  const int64_t h = cfg_.head_size() / 2;
  rope_cos_.assign(static_cast<size_t>(T) * h, 0.0f);
  rope_sin_.assign(static_cast<size_t>(T) * h, 0.0f);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < h; ++i) {
      const float a = static_cast<float>(t) * inv_freq_[i];  // float32, as the reference
      rope_cos_[t * h + i] = std::cos(a);
      rope_sin_[t * h + i] = std::sin(a);
    }
  }
  rope_T_ = T;
}

void Llama::Reserve(int B, int T) {
  Acts& a = *acts_;
  const int64_t N = static_cast<int64_t>(B) * T, L = cfg_.n_layer, C = cfg_.n_embd, V = cfg_.vocab;
  const int64_t D = cfg_.head_size(), H = cfg_.n_head, KV = cfg_.kv_heads(), F = cfg_.mlp();
  const int64_t QKV = (H + 2 * KV) * D;
  const int64_t BHTT = static_cast<int64_t>(B) * H * T * T;
  a.B = B;
  a.T = T;
  RopeTables(T);
  // Layer activations: one slot per layer, or one slot in all when backward recomputes them.
  const int64_t slots = recompute_ ? 1 : L;
  if (N <= a.capN && BHTT <= a.capBHTT && slots == a.slots) return;
  a.capN = std::max(a.capN, N);
  a.capBHTT = std::max(a.capBHTT, BHTT);
  a.slots = slots;
  const int64_t n = a.capN;
  a.res.assign((L + 1) * n * C, 0.0f);
  a.ln1.assign(slots * SlotStride(n * C), 0.0f);
  a.rstd1.assign(slots * SlotStride(n), 0.0f);
  a.qkv.assign(slots * SlotStride(n * QKV), 0.0f);
  a.att.assign(slots * SlotStride(a.capBHTT), 0.0f);
  a.atty.assign(slots * SlotStride(n * H * D), 0.0f);
  a.mid.assign(slots * SlotStride(n * C), 0.0f);
  a.ln2.assign(slots * SlotStride(n * C), 0.0f);
  a.rstd2.assign(slots * SlotStride(n), 0.0f);
  a.gu.assign(slots * SlotStride(n * 2 * F), 0.0f);
  a.act.assign(slots * SlotStride(n * F), 0.0f);
  a.lnf.assign(n * C, 0.0f);
  a.rstdf.assign(n, 0.0f);
  a.logits.assign(n * V, 0.0f);
  a.probs.assign(n * V, 0.0f);
  a.row_loss.assign(n, 0.0f);
  a.dres.assign(n * C, 0.0f);
  a.dln.assign(n * C, 0.0f);
  a.dact.assign(n * F, 0.0f);
  a.dgu.assign(n * 2 * F, 0.0f);
  a.dqkv.assign(n * QKV, 0.0f);
  a.datty.assign(n * H * D, 0.0f);
}

// --- forward ------------------------------------------------------------------------------------

// Layer l's forward from its input res[l]: its activations into slot s (l when kept, 0 when
// recomputed in backward), its output into res[l + 1].
void Llama::ForwardLayer(int64_t l) {
  Acts& a = *acts_;
  const int B = a.B, T = a.T;
  const int64_t N = static_cast<int64_t>(B) * T, C = cfg_.n_embd;
  const int64_t D = cfg_.head_size(), H = cfg_.n_head, KV = cfg_.kv_heads(), G = H / KV, F = cfg_.mlp();
  const int64_t QKV = (H + 2 * KV) * D, HD = H * D, half = D / 2;
  const int64_t s = recompute_ ? 0 : l;
  float* P = params_.data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t BHTT = static_cast<int64_t>(B) * H * T * T;
  const LayerView w = ViewLayer(P, cfg_, static_cast<int>(l));
  const float* x = a.res.data() + l * N * C;
  float* ln1 = a.ln1.data() + s * SlotStride(N * C);
  float* qkv = a.qkv.data() + s * SlotStride(N * QKV);
  float* att = a.att.data() + s * SlotStride(BHTT);
  float* atty = a.atty.data() + s * SlotStride(N * HD);
  float* mid = a.mid.data() + s * SlotStride(N * C);
  float* ln2 = a.ln2.data() + s * SlotStride(N * C);
  float* gu = a.gu.data() + s * SlotStride(N * 2 * F);
  float* act = a.act.data() + s * SlotStride(N * F);
  float* out = a.res.data() + (l + 1) * N * C;

  RmsNormForward(pool_, x, w.ln1, ln1, a.rstd1.data() + s * SlotStride(N), N, C, cfg_.ln_eps);
  LinearT(pool_, ln1, w.qkvw, w.qkvb, qkv, N, C, QKV);
  // Rotate q and k of every row by its position.
  pool_.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      const int64_t t = n % T;
      float* row = qkv + n * QKV;
      for (int64_t h = 0; h < H + KV; ++h) {
        RopeRotate(row + h * D, rope_cos_.data() + t * half, rope_sin_.data() + t * half, D, false);
      }
    }
  });
  // Attention, one (batch row, query head) pair per task; query head h reads key-value head h / G.
  pool_.ParallelFor(static_cast<int64_t>(B) * H, 1, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t b = j / H, h = j % H, g = h / G;
      const float* base = qkv + b * T * QKV;
      auto Q = CM(base + h * D, T, D, QKV);
      auto K = CM(base + HD + g * D, T, D, QKV);
      auto Vv = CM(base + HD + KV * D + g * D, T, D, QKV);
      float* pr = att + j * T * T;
      auto S = M(pr, T, T, T);
      S.noalias() = Q * K.transpose();
      for (int64_t t = 0; t < T; ++t) WindowSoftmaxRow(pr + t * T, WindowStart(t, cfg_.sliding_window), t, T, scale);
      M(atty + b * T * HD + h * D, T, D, HD).noalias() = S * Vv;
    }
  });
  LinearT(pool_, atty, w.ow, nullptr, mid, N, HD, C);
  pool_.ParallelFor(N * C, 1024, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) mid[i] += x[i];
  });
  RmsNormForward(pool_, mid, w.ln2, ln2, a.rstd2.data() + s * SlotStride(N), N, C, cfg_.ln_eps);
  LinearT(pool_, ln2, w.guw, nullptr, gu, N, C, 2 * F);
  pool_.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      const float* g = gu + n * 2 * F;
      float* o = act + n * F;
      for (int64_t f = 0; f < F; ++f) o[f] = Silu(g[f]) * g[F + f];
    }
  });
  LinearT(pool_, act, w.dw, nullptr, out, N, F, C);
  pool_.ParallelFor(N * C, 1024, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] += mid[i];
  });
}

Result<float> Llama::Forward(std::span<const int32_t> inputs, std::span<const int32_t> targets, int B, int T) {
  STRATA_RETURN_IF_ERROR(CheckBatch(cfg_, inputs, targets, B, T));
  const int64_t N = static_cast<int64_t>(B) * T;
  Reserve(B, T);
  Acts& a = *acts_;
  a.inputs.assign(inputs.begin(), inputs.end());
  a.targets.assign(targets.begin(), targets.end());
  a.has_targets = !targets.empty();
  const int64_t L = cfg_.n_layer, C = cfg_.n_embd, V = cfg_.vocab;
  float* P = params_.data();
  const float* embed = P;

  pool_.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      std::memcpy(a.res.data() + n * C, embed + static_cast<int64_t>(a.inputs[n]) * C, C * sizeof(float));
    }
  });

  for (int64_t l = 0; l < L; ++l) ForwardLayer(l);

  const uint64_t norm_off = LlamaLayerOffset(cfg_, static_cast<int>(L));
  RmsNormForward(pool_, a.res.data() + L * N * C, P + norm_off, a.lnf.data(), a.rstdf.data(), N, C, cfg_.ln_eps);
  const float* head = cfg_.tie_embeddings ? embed : P + norm_off + C;
  LinearT(pool_, a.lnf.data(), head, nullptr, a.logits.data(), N, C, V);
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

std::span<const float> Llama::logits() const {
  return {acts_->logits.data(), static_cast<size_t>(acts_->B) * acts_->T * cfg_.vocab};
}

// --- backward -----------------------------------------------------------------------------------

Status Llama::Backward(const std::function<void(uint64_t lo)>& on_ready) {
  Acts& a = *acts_;
  if (!a.has_targets || a.B == 0) return Status::InvalidArgument("backward: no forward with targets to differentiate");
  const int B = a.B, T = a.T;
  const int64_t N = static_cast<int64_t>(B) * T, L = cfg_.n_layer, C = cfg_.n_embd, V = cfg_.vocab;
  const int64_t D = cfg_.head_size(), H = cfg_.n_head, KV = cfg_.kv_heads(), G = H / KV, F = cfg_.mlp();
  const int64_t QKV = (H + 2 * KV) * D, HD = H * D, half = D / 2;
  float* P = params_.data();
  float* Gr = grads().data();
  const uint64_t norm_off = LlamaLayerOffset(cfg_, static_cast<int>(L));
  const float* head = cfg_.tie_embeddings ? P : P + norm_off + C;
  float* dhead = cfg_.tie_embeddings ? Gr : Gr + norm_off + C;

  // dlogits = (softmax - onehot) / N, in place of the probabilities.
  const float inv_n = 1.0f / static_cast<float>(N);
  pool_.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
    for (int64_t n = r0; n < r1; ++n) {
      float* d = a.probs.data() + n * V;
      d[a.targets[n]] -= 1.0f;
      for (int64_t v = 0; v < V; ++v) d[v] *= inv_n;
    }
  });
  // dlnf = dlogits head; dhead = dlogits^T lnf (tied: the head's share of the embedding's gradient).
  LinearTBackward(pool_, a.lnf.data(), head, a.probs.data(), a.dln.data(), dhead, nullptr, N, C, V);
  std::fill(a.dres.begin(), a.dres.begin() + N * C, 0.0f);
  RmsNormBackward(pool_, a.res.data() + L * N * C, P + norm_off, a.rstdf.data(), a.dln.data(), a.dres.data(),
                  Gr + norm_off, N, C, a.partial);
  if (on_ready) on_ready(norm_off);

  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t BHTT = static_cast<int64_t>(B) * H * T * T;
  float* dres = a.dres.data();
  for (int64_t l = L - 1; l >= 0; --l) {
    // Recomputed: the layer's forward again from its kept input, the same operations in the same
    // order, so the activations (and the gradients) are bitwise those of a kept forward.
    if (recompute_) ForwardLayer(l);
    const int64_t s = recompute_ ? 0 : l;
    const LayerView w = ViewLayer(P, cfg_, static_cast<int>(l));
    const LayerView dw = ViewLayer(Gr, cfg_, static_cast<int>(l));
    const float* x = a.res.data() + l * N * C;
    const float* ln1 = a.ln1.data() + s * SlotStride(N * C);
    const float* qkv = a.qkv.data() + s * SlotStride(N * QKV);
    const float* att = a.att.data() + s * SlotStride(BHTT);
    const float* atty = a.atty.data() + s * SlotStride(N * HD);
    const float* mid = a.mid.data() + s * SlotStride(N * C);
    const float* ln2 = a.ln2.data() + s * SlotStride(N * C);
    const float* gu = a.gu.data() + s * SlotStride(N * 2 * F);
    const float* act = a.act.data() + s * SlotStride(N * F);

    // MLP: out = mid + down(silu(gate(ln2)) * up(ln2)).
    LinearTBackward(pool_, act, w.dw, dres, a.dact.data(), dw.dw, nullptr, N, F, C);
    pool_.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
      for (int64_t n = r0; n < r1; ++n) {
        const float* g = gu + n * 2 * F;
        const float* d = a.dact.data() + n * F;
        float* o = a.dgu.data() + n * 2 * F;
        for (int64_t f = 0; f < F; ++f) {
          o[f] = d[f] * g[F + f] * SiluGrad(g[f]);
          o[F + f] = d[f] * Silu(g[f]);
        }
      }
    });
    LinearTBackward(pool_, ln2, w.guw, a.dgu.data(), a.dln.data(), dw.guw, nullptr, N, C, 2 * F);
    RmsNormBackward(pool_, mid, w.ln2, a.rstd2.data() + s * SlotStride(N), a.dln.data(), dres, dw.ln2, N, C, a.partial);
    // Attention: mid = x + o_proj(attn(rope(qkv(ln1(x))))).
    LinearTBackward(pool_, atty, w.ow, dres, a.datty.data(), dw.ow, nullptr, N, HD, C);
    // One (batch row, key-value head) pair per task: its query heads add into its dK and dV in
    // a fixed order, and no other task touches them.
    pool_.ParallelFor(static_cast<int64_t>(B) * KV, 1, [&](int64_t j0, int64_t j1) {
      RowMat dP(T, T);
      for (int64_t j = j0; j < j1; ++j) {
        const int64_t b = j / KV, g = j % KV;
        const float* base = qkv + b * T * QKV;
        float* dbase = a.dqkv.data() + b * T * QKV;
        auto K = CM(base + HD + g * D, T, D, QKV);
        auto Vv = CM(base + HD + KV * D + g * D, T, D, QKV);
        auto dK = M(dbase + HD + g * D, T, D, QKV);
        auto dV = M(dbase + HD + KV * D + g * D, T, D, QKV);
        for (int64_t h = g * G; h < (g + 1) * G; ++h) {
          const float* pr = att + (b * H + h) * T * T;
          auto Pm = CM(pr, T, T, T);
          auto Q = CM(base + h * D, T, D, QKV);
          auto dY = CM(a.datty.data() + b * T * HD + h * D, T, D, HD);
          dP.noalias() = dY * Vv.transpose();
          if (h == g * G) dV.noalias() = Pm.transpose() * dY;
          else dV.noalias() += Pm.transpose() * dY;
          for (int64_t t = 0; t < T; ++t) {
            const int64_t lo = WindowStart(t, cfg_.sliding_window);
            std::fill(dP.data() + t * T, dP.data() + t * T + lo, 0.0f);
            CausalSoftmaxBackwardRow(pr + t * T + lo, dP.data() + t * T + lo, t - lo, scale);
            std::fill(dP.data() + t * T + t + 1, dP.data() + (t + 1) * T, 0.0f);
          }
          M(dbase + h * D, T, D, QKV).noalias() = dP * K;  // dP now holds dS (scaled)
          if (h == g * G) dK.noalias() = dP.transpose() * Q;
          else dK.noalias() += dP.transpose() * Q;
        }
      }
    });
    // The rotation's gradient: turn dq and dk back.
    pool_.ParallelFor(N, kRowGrain, [&](int64_t r0, int64_t r1) {
      for (int64_t n = r0; n < r1; ++n) {
        const int64_t t = n % T;
        float* row = a.dqkv.data() + n * QKV;
        for (int64_t h = 0; h < H + KV; ++h) {
          RopeRotate(row + h * D, rope_cos_.data() + t * half, rope_sin_.data() + t * half, D, true);
        }
      }
    });
    LinearTBackward(pool_, ln1, w.qkvw, a.dqkv.data(), a.dln.data(), dw.qkvw, dw.qkvb, N, C, QKV);
    RmsNormBackward(pool_, x, w.ln1, a.rstd1.data() + s * SlotStride(N), a.dln.data(), dres, dw.ln1, N, C, a.partial);
    if (on_ready) on_ready(LlamaLayerOffset(cfg_, static_cast<int>(l)));
  }

  // The embedding: each thread owns a range of columns, so the scatter-add has no races and a
  // fixed order. Untied, its gradient starts at zero; tied, it holds the head's share already.
  float* dembed = Gr;
  pool_.ParallelFor(C, 16, [&](int64_t c0, int64_t c1) {
    if (!cfg_.tie_embeddings) {
      for (int64_t v = 0; v < V; ++v) {
        for (int64_t c = c0; c < c1; ++c) dembed[v * C + c] = 0.0f;
      }
    }
    for (int64_t n = 0; n < N; ++n) {
      const float* d = dres + n * C;
      float* e = dembed + static_cast<int64_t>(a.inputs[n]) * C;
      for (int64_t c = c0; c < c1; ++c) e[c] += d[c];
    }
  });
  if (on_ready) on_ready(0);
  return Status::Ok();
}

// --- sampling -----------------------------------------------------------------------------------

void Llama::DecodeOne(int32_t token, int pos, float* logits) {
  const int64_t L = cfg_.n_layer, C = cfg_.n_embd, V = cfg_.vocab, S = cfg_.n_ctx;
  const int64_t D = cfg_.head_size(), H = cfg_.n_head, KV = cfg_.kv_heads(), G = H / KV, F = cfg_.mlp();
  const int64_t QKV = (H + 2 * KV) * D, HD = H * D, KVD = KV * D, half = D / 2;
  const float* P = params_.data();
  AlignedVector<float> x(C), h(C), mid(C), qkv(QKV), y(HD), gu(2 * F), act(F), sc(pos + 1);
  std::memcpy(x.data(), P + static_cast<int64_t>(token) * C, C * sizeof(float));
  RopeTables(pos + 1);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t lo = WindowStart(pos, cfg_.sliding_window);
  float rstd = 0;
  for (int64_t l = 0; l < L; ++l) {
    const LayerView w = ViewLayer(params_.data(), cfg_, static_cast<int>(l));
    float* Kc = kv_.data() + (l * 2) * S * KVD;  // [S, KV D]
    float* Vc = Kc + S * KVD;
    RmsNormRow(x.data(), w.ln1, h.data(), &rstd, C, cfg_.ln_eps);
    LinearT(pool_, h.data(), w.qkvw, w.qkvb, qkv.data(), 1, C, QKV);
    for (int64_t k = 0; k < H + KV; ++k) {
      RopeRotate(qkv.data() + k * D, rope_cos_.data() + pos * half, rope_sin_.data() + pos * half, D, false);
    }
    std::copy(qkv.data() + HD, qkv.data() + HD + KVD, Kc + pos * KVD);
    std::copy(qkv.data() + HD + KVD, qkv.data() + QKV, Vc + pos * KVD);
    const int64_t n = pos + 1 - lo;
    for (int64_t hh = 0; hh < H; ++hh) {
      const int64_t g = hh / G;
      M(sc.data(), 1, n, n).noalias() = CM(qkv.data() + hh * D, 1, D, D) * CM(Kc + lo * KVD + g * D, n, D, KVD).transpose();
      WindowSoftmaxRow(sc.data(), 0, n - 1, n, scale);
      M(y.data() + hh * D, 1, D, D).noalias() = CM(sc.data(), 1, n, n) * CM(Vc + lo * KVD + g * D, n, D, KVD);
    }
    LinearT(pool_, y.data(), w.ow, nullptr, mid.data(), 1, HD, C);
    for (int64_t c = 0; c < C; ++c) mid[c] += x[c];
    RmsNormRow(mid.data(), w.ln2, h.data(), &rstd, C, cfg_.ln_eps);
    LinearT(pool_, h.data(), w.guw, nullptr, gu.data(), 1, C, 2 * F);
    for (int64_t f = 0; f < F; ++f) act[f] = Silu(gu[f]) * gu[F + f];
    LinearT(pool_, act.data(), w.dw, nullptr, x.data(), 1, F, C);
    for (int64_t c = 0; c < C; ++c) x[c] += mid[c];
  }
  const uint64_t norm_off = LlamaLayerOffset(cfg_, static_cast<int>(L));
  RmsNormRow(x.data(), P + norm_off, h.data(), &rstd, C, cfg_.ln_eps);
  const float* head = cfg_.tie_embeddings ? P : P + norm_off + C;
  pool_.ParallelFor(V, 256, [&](int64_t v0, int64_t v1) {
    if (v1 <= v0) return;
    M(logits + v0, 1, v1 - v0, v1 - v0).noalias() = CM(h.data(), 1, C, C) * CM(head + v0 * C, v1 - v0, C, C).transpose();
  });
}

Result<std::vector<int32_t>> Llama::Sample(std::span<const int32_t> prompt, int n, float temperature, int top_k,
                                          uint64_t seed) {
  kv_.assign(static_cast<size_t>(cfg_.n_layer) * 2 * cfg_.n_ctx * cfg_.kv_heads() * cfg_.head_size(), 0.0f);
  Result<std::vector<int32_t>> out = SampleWithCache(
      cfg_, prompt, n, temperature, top_k, seed, [this](int32_t t, int pos, float* lg) { DecodeOne(t, pos, lg); });
  // The sampler's forward passes replaced the activations: no backward may follow.
  acts_->has_targets = false;
  return out;
}

}  // namespace strata::model
