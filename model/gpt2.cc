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

#include "model/cpu_ops.h"
#include "model/gpt2_math.h"
#include "runtime/random.h"

#ifndef STRATA_MODEL_ISA
#define STRATA_MODEL_ISA 0
#endif

namespace strata::model {
using namespace ops;  // NOLINT: the shared kernels
namespace {

}  // namespace

const char* ModelKernelIsa() {
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
static LayerParamsView ViewLayer(float* base, const ModelConfig& cfg, int l) {
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
  int64_t slots = 0;  // layer slots held: L (kept), 1 (recomputed in backward)
  bool has_targets = false;
  std::vector<int32_t> inputs, targets;
  // Per layer slot s (each [S][N, width], S = slots); res is kept for every layer either way:
  // it is what a recomputation starts from.
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

Gpt2::Gpt2(const ModelConfig& cfg, int threads)
    : cfg_(cfg), n_params_(cfg.NumParams()), pool_(threads), acts_(std::make_unique<Acts>()) {
  params_.assign(n_params_, 0.0f);
}
Gpt2::~Gpt2() = default;

Status ops::CheckKernelIsa() {
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
  return Status::Ok();
}

Result<std::unique_ptr<Gpt2>> Gpt2::Create(const ModelConfig& cfg, int threads) {
  if (!cfg.is_gpt2()) return Status::InvalidArgument("model config: arch \"" + cfg.arch + "\" is not gpt2");
  if (Status s = cfg.Validate(); !s.ok()) return s;
  STRATA_RETURN_IF_ERROR(CheckKernelIsa());
  if (threads < 0) return Status::InvalidArgument("threads must be >= 0 (0 = all cores)");
  return std::unique_ptr<Gpt2>(new Gpt2(cfg, threads));
}

void Gpt2::Reserve(int B, int T) {
  Acts& a = *acts_;
  const int64_t N = static_cast<int64_t>(B) * T, L = cfg_.n_layer, C = cfg_.n_embd, V = cfg_.vocab;
  const int64_t BHTT = static_cast<int64_t>(B) * cfg_.n_head * T * T;
  a.B = B;
  a.T = T;
  // Layer activations: one slot per layer, or one slot in all when backward recomputes them.
  const int64_t slots = recompute_ ? 1 : L;
  if (N <= a.capN && BHTT <= a.capBHTT && slots == a.slots) return;
  a.capN = std::max(a.capN, N);
  a.capBHTT = std::max(a.capBHTT, BHTT);
  a.slots = slots;
  const int64_t n = a.capN;
  a.res.assign((L + 1) * n * C, 0.0f);
  a.ln1.assign(slots * SlotStride(n * C), 0.0f);
  a.ln1_mean.assign(slots * SlotStride(n), 0.0f);
  a.ln1_rstd.assign(slots * SlotStride(n), 0.0f);
  a.qkv.assign(slots * SlotStride(n * 3 * C), 0.0f);
  a.att.assign(slots * SlotStride(a.capBHTT), 0.0f);
  a.atty.assign(slots * SlotStride(n * C), 0.0f);
  a.mid.assign(slots * SlotStride(n * C), 0.0f);
  a.ln2.assign(slots * SlotStride(n * C), 0.0f);
  a.ln2_mean.assign(slots * SlotStride(n), 0.0f);
  a.ln2_rstd.assign(slots * SlotStride(n), 0.0f);
  a.fc.assign(slots * SlotStride(n * 4 * C), 0.0f);
  a.gelu.assign(slots * SlotStride(n * 4 * C), 0.0f);
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

// --- forward ------------------------------------------------------------------------------------

// Layer l's forward from its input res[l]: its activations into slot s (l when kept, 0 when
// recomputed in backward), its output into res[l + 1].
void Gpt2::ForwardLayer(int64_t l) {
  Acts& a = *acts_;
  const int B = a.B, T = a.T;
  const int64_t N = static_cast<int64_t>(B) * T, C = cfg_.n_embd, H = cfg_.n_head, hs = C / H;
  const int64_t s = recompute_ ? 0 : l;
  float* P = params_.data();
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const int64_t BHTT = static_cast<int64_t>(B) * H * T * T;
  const LayerParamsView w = ViewLayer(P, cfg_, static_cast<int>(l));
  const float* x = a.res.data() + l * N * C;
  float* ln1 = a.ln1.data() + s * SlotStride(N * C);
  float* qkv = a.qkv.data() + s * SlotStride(N * 3 * C);
  float* att = a.att.data() + s * SlotStride(BHTT);
  float* atty = a.atty.data() + s * SlotStride(N * C);
  float* mid = a.mid.data() + s * SlotStride(N * C);
  float* ln2 = a.ln2.data() + s * SlotStride(N * C);
  float* fc = a.fc.data() + s * SlotStride(N * 4 * C);
  float* gelu = a.gelu.data() + s * SlotStride(N * 4 * C);
  float* out = a.res.data() + (l + 1) * N * C;

  LayerNormForward(pool_, x, w.ln1w, w.ln1b, ln1, a.ln1_mean.data() + s * SlotStride(N), a.ln1_rstd.data() + s * SlotStride(N), N, C,
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
  LayerNormForward(pool_, mid, w.ln2w, w.ln2b, ln2, a.ln2_mean.data() + s * SlotStride(N), a.ln2_rstd.data() + s * SlotStride(N), N, C,
                   cfg_.ln_eps);
  Linear(pool_, ln2, w.fcw, w.fcb, fc, N, C, 4 * C);
  GeluForward(pool_, fc, gelu, N, 4 * C);
  Linear(pool_, gelu, w.fcpw, w.fcpb, out, N, 4 * C, C);
  pool_.ParallelFor(N * C, 1024, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) out[i] += mid[i];
  });
}

Result<float> Gpt2::Forward(std::span<const int32_t> inputs, std::span<const int32_t> targets, int B, int T) {
  STRATA_RETURN_IF_ERROR(CheckBatch(cfg_, inputs, targets, B, T));
  const int64_t N = static_cast<int64_t>(B) * T;
  Reserve(B, T);
  Acts& a = *acts_;
  a.inputs.assign(inputs.begin(), inputs.end());
  a.targets.assign(targets.begin(), targets.end());
  a.has_targets = !targets.empty();
  const int64_t L = cfg_.n_layer, C = cfg_.n_embd, V = cfg_.vocab;
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

  for (int64_t l = 0; l < L; ++l) ForwardLayer(l);

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
  float* G = grads().data();
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
    // Recomputed: the layer's forward again from its kept input, the same operations in the same
    // order, so the activations (and the gradients) are bitwise those of a kept forward.
    if (recompute_) ForwardLayer(l);
    const int64_t s = recompute_ ? 0 : l;
    const LayerParamsView w = ViewLayer(P, cfg_, static_cast<int>(l));
    const LayerParamsView dw = ViewLayer(G, cfg_, static_cast<int>(l));
    const float* x = a.res.data() + l * N * C;
    const float* ln1 = a.ln1.data() + s * SlotStride(N * C);
    const float* qkv = a.qkv.data() + s * SlotStride(N * 3 * C);
    const float* att = a.att.data() + s * SlotStride(BHTT);
    const float* atty = a.atty.data() + s * SlotStride(N * C);
    const float* mid = a.mid.data() + s * SlotStride(N * C);
    const float* ln2 = a.ln2.data() + s * SlotStride(N * C);
    const float* fc = a.fc.data() + s * SlotStride(N * 4 * C);
    const float* gelu = a.gelu.data() + s * SlotStride(N * 4 * C);

    // MLP: out = mid + c_proj(gelu(c_fc(ln_2(mid)))).
    LinearBackward(pool_, gelu, w.fcpw, dres, a.dbig.data(), dw.fcpw, dw.fcpb, N, 4 * C, C);
    GeluBackward(pool_, fc, a.dbig.data(), N, 4 * C);
    LinearBackward(pool_, ln2, w.fcw, a.dbig.data(), a.dln.data(), dw.fcw, dw.fcb, N, C, 4 * C);
    LayerNormBackward(pool_, mid, w.ln2w, a.ln2_mean.data() + s * SlotStride(N), a.ln2_rstd.data() + s * SlotStride(N), a.dln.data(), dres,
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
    LayerNormBackward(pool_, x, w.ln1w, a.ln1_mean.data() + s * SlotStride(N), a.ln1_rstd.data() + s * SlotStride(N), a.dln.data(), dres,
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

void Gpt2::DecodeOne(int32_t token, int pos, float* logits) {
  const int64_t L = cfg_.n_layer, C = cfg_.n_embd, H = cfg_.n_head, hs = C / H, V = cfg_.vocab, S = cfg_.n_ctx;
  const float* P = params_.data();
  const float* wte = P;
  const float* wpe = P + V * C;
  // One row through the blocks: x [C], h [C], big [4C], qkv [3C], scores [pos + 1].
  AlignedVector<float> x(C), h(C), mid(C), big(4 * C), qkv(3 * C), y(C), sc(pos + 1);
  for (int64_t c = 0; c < C; ++c) x[c] = wte[static_cast<int64_t>(token) * C + c] + wpe[pos * C + c];
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  float mean = 0, rstd = 0;
  for (int64_t l = 0; l < L; ++l) {
    const LayerParamsView w = ViewLayer(params_.data(), cfg_, static_cast<int>(l));
    float* Kc = kv_.data() + (l * 2) * S * C;  // [S, C]
    float* Vc = Kc + S * C;
    LayerNormRow(x.data(), w.ln1w, w.ln1b, h.data(), &mean, &rstd, C, cfg_.ln_eps);
    Linear(pool_, h.data(), w.qkvw, w.qkvb, qkv.data(), 1, C, 3 * C);
    std::copy(qkv.data() + C, qkv.data() + 2 * C, Kc + pos * C);
    std::copy(qkv.data() + 2 * C, qkv.data() + 3 * C, Vc + pos * C);
    for (int64_t hh = 0; hh < H; ++hh) {
      // Same operations as Forward's row t = pos of the score matrix: dot products, then the
      // causal softmax over [0, pos].
      M(sc.data(), 1, pos + 1, pos + 1).noalias() =
          CM(qkv.data() + hh * hs, 1, hs, hs) * CM(Kc + hh * hs, pos + 1, hs, C).transpose();
      CausalSoftmaxRow(sc.data(), pos, pos + 1, scale);
      M(y.data() + hh * hs, 1, hs, hs).noalias() = CM(sc.data(), 1, pos + 1, pos + 1) * CM(Vc + hh * hs, pos + 1, hs, C);
    }
    Linear(pool_, y.data(), w.projw, w.projb, mid.data(), 1, C, C);
    for (int64_t c = 0; c < C; ++c) mid[c] += x[c];
    LayerNormRow(mid.data(), w.ln2w, w.ln2b, h.data(), &mean, &rstd, C, cfg_.ln_eps);
    Linear(pool_, h.data(), w.fcw, w.fcb, big.data(), 1, C, 4 * C);
    GeluForward(pool_, big.data(), big.data(), 1, 4 * C);
    Linear(pool_, big.data(), w.fcpw, w.fcpb, x.data(), 1, 4 * C, C);
    for (int64_t c = 0; c < C; ++c) x[c] += mid[c];
  }
  const float* lnfw = P + Gpt2LayerOffset(cfg_, static_cast<int>(L));
  LayerNormRow(x.data(), lnfw, lnfw + C, h.data(), &mean, &rstd, C, cfg_.ln_eps);
  pool_.ParallelFor(V, 256, [&](int64_t v0, int64_t v1) {
    if (v1 <= v0) return;
    M(logits + v0, 1, v1 - v0, v1 - v0).noalias() = CM(h.data(), 1, C, C) * CM(wte + v0 * C, v1 - v0, C, C).transpose();
  });
}

Result<std::vector<int32_t>> Gpt2::Sample(std::span<const int32_t> prompt, int n, float temperature, int top_k,
                                          uint64_t seed) {
  kv_.assign(static_cast<size_t>(cfg_.n_layer) * 2 * cfg_.n_ctx * cfg_.n_embd, 0.0f);
  Result<std::vector<int32_t>> out = SampleWithCache(
      cfg_, prompt, n, temperature, top_k, seed, [this](int32_t t, int pos, float* lg) { DecodeOne(t, pos, lg); });
  // The sampler's forward passes replaced the activations: no backward may follow.
  acts_->has_targets = false;
  return out;
}

}  // namespace strata::model
