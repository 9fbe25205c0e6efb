#include "optim/adamw.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "optim/q8_codec.h"
#include "runtime/thread_pool.h"

namespace strata::optim {

namespace {

std::string Num(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

Status CheckStep(int64_t step) {
  if (step < 1) return Status::InvalidArgument("step must be >= 1 (got " + std::to_string(step) + ")");
  return Status::Ok();
}

Status CheckSameLength(std::string_view name, size_t got, size_t want) {
  if (got != want)
    return Status::InvalidArgument(std::string(name) + ": " + std::to_string(got) +
                                   " values, but param has " + std::to_string(want));
  return Status::Ok();
}

}  // namespace

Status ValidateAdamW(const AdamWConfig& c) {
  auto nonneg = [](const char* name, double x) -> Status {
    if (!std::isfinite(x) || x < 0.0)
      return Status::InvalidArgument(std::string(name) + " must be finite and >= 0 (got " + Num(x) + ")");
    return Status::Ok();
  };
  auto beta = [](const char* name, double x) -> Status {
    if (!(x >= 0.0 && x < 1.0))
      return Status::InvalidArgument(std::string(name) + " must be in [0, 1) (got " + Num(x) + ")");
    return Status::Ok();
  };
  STRATA_RETURN_IF_ERROR(nonneg("lr", c.lr));
  STRATA_RETURN_IF_ERROR(beta("beta1", c.beta1));
  STRATA_RETURN_IF_ERROR(beta("beta2", c.beta2));
  STRATA_RETURN_IF_ERROR(nonneg("eps", c.eps));
  STRATA_RETURN_IF_ERROR(nonneg("weight_decay", c.weight_decay));
  return Status::Ok();
}

AdamWScalars MakeAdamWScalars(const AdamWConfig& c, int64_t step) {
  const double t = static_cast<double>(step);
  const double bc1 = 1.0 - std::pow(c.beta1, t), bc2 = 1.0 - std::pow(c.beta2, t);
  AdamWScalars s;
  s.decay = static_cast<float>(1.0 - c.lr * c.weight_decay);
  s.lerp_w = static_cast<float>(1.0 - c.beta1);
  s.lerp_w1 = 1.0f - s.lerp_w;
  s.lerp_small = std::fabs(s.lerp_w) < 0.5f;
  s.beta2 = static_cast<float>(c.beta2);
  s.one_minus_beta2 = static_cast<float>(1.0 - c.beta2);
  s.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  s.eps = static_cast<float>(c.eps);
  s.neg_step_size = static_cast<float>(-(c.lr / bc1));
  return s;
}

AdamW8Scalars MakeAdamW8Scalars(const AdamWConfig& c, int64_t step) {
  const double t = static_cast<double>(step);
  const double c1 = 1.0 - std::pow(c.beta1, t), c2 = std::sqrt(1.0 - std::pow(c.beta2, t));
  AdamW8Scalars s;
  s.beta1 = static_cast<float>(c.beta1);
  s.one_minus_beta1 = static_cast<float>(1.0 - c.beta1);
  s.beta2 = static_cast<float>(c.beta2);
  s.one_minus_beta2 = static_cast<float>(1.0 - c.beta2);
  s.step_size = static_cast<float>(-c.lr * c2 / c1);
  s.eps_hat = static_cast<float>(c.eps * c2);
  s.decay = static_cast<float>(1.0 - c.lr * c.weight_decay);
  return s;
}

// ---- Oracles -----------------------------------------------------------------------------------

void AdamWStepRef(const AdamWConfig& cfg, int64_t step, float* p, const float* g, float* m, float* v, int64_t n) {
  const AdamWScalars s = MakeAdamWScalars(cfg, step);
  for (int64_t i = 0; i < n; ++i) {
    float pi = p[i] * s.decay;
    float mi;
    if (s.lerp_small) mi = m[i] + s.lerp_w * (g[i] - m[i]);
    else mi = g[i] - (g[i] - m[i]) * s.lerp_w1;
    float vi = v[i] * s.beta2;
    vi = vi + s.one_minus_beta2 * g[i] * g[i];
    const float denom = std::sqrt(vi) / s.bc2_sqrt + s.eps;
    pi = pi + s.neg_step_size * mi / denom;
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

void AdamW8bitStepRef(const AdamWConfig& cfg, int64_t step, float* p, const float* g, uint8_t* m_codes,
                      uint8_t* v_codes, float* m_absmax, float* v_absmax, int64_t n) {
  const AdamW8Scalars s = MakeAdamW8Scalars(cfg, step);
  const float* sb = q8::BookValues(q8::Book::kSigned);
  const float* ub = q8::BookValues(q8::Book::kUnsigned);
  std::vector<float> s1(q8::kBlock), s2(q8::kBlock);
  std::vector<char> skip(q8::kBlock);
  for (int64_t start = 0, blk = 0; start < n; start += q8::kBlock, ++blk) {
    const int64_t len = std::min<int64_t>(q8::kBlock, n - start);
    float new_max1 = 0.0f, new_max2 = 0.0f;
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = start + j;
      s2[j] = ub[v_codes[i]] * v_absmax[blk];
      s2[j] = s2[j] * s.beta2 + s.one_minus_beta2 * g[i] * g[i];
      s1[j] = sb[m_codes[i]] * m_absmax[blk];
      s1[j] = s1[j] * s.beta1 + s.one_minus_beta1 * g[i];
      skip[j] = !(std::isfinite(g[i]) && std::isfinite(s2[j]));  // non-finite g, or g*g overflowed
      if (skip[j]) {
        s1[j] = 0.0f;
        s2[j] = 0.0f;
      }
      new_max1 = std::fmax(new_max1, std::fabs(s1[j]));
      new_max2 = std::fmax(new_max2, std::fabs(s2[j]));
    }
    m_absmax[blk] = new_max1;
    v_absmax[blk] = new_max2;
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = start + j;
      if (!skip[j]) {
        p[i] = p[i] + s.step_size * (s1[j] / (std::sqrt(s2[j]) + s.eps_hat));
        p[i] = p[i] * s.decay;
      }
    }
    // Scale by 1 / absmax, or 0 for an all-zero block, or FLT_MAX where 1 / absmax overflows.
    const float inv1 = new_max1 > 0.0f ? std::min(1.0f / new_max1, std::numeric_limits<float>::max()) : 0.0f;
    const float inv2 = new_max2 > 0.0f ? std::min(1.0f / new_max2, std::numeric_limits<float>::max()) : 0.0f;
    for (int64_t j = 0; j < len; ++j) {
      const int64_t i = start + j;
      uint8_t c1 = q8::EncodeRef(sb, s1[j] * inv1);
      if (std::signbit(sb[c1]) != std::signbit(s1[j])) c1 = static_cast<uint8_t>(s1[j] > 0.0f ? c1 + 1 : c1 - 1);
      m_codes[i] = c1;
      v_codes[i] = q8::EncodeRef(ub, s2[j] * inv2);
    }
  }
}

// ---- Fast paths --------------------------------------------------------------------------------

namespace {

void AdamWScalarLoop(const AdamWScalars& s, float* p, const float* g, float* m, float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) AdamWUpdate(p[i], g[i], m[i], v[i], s);
}

void AdamWRange(const AdamWScalars& s, float* p, const float* g, float* m, float* v, int64_t n, SimdLevel level) {
  int64_t done = 0;
  if (level == SimdLevel::kAvx512) {
    done = n / 16 * 16;
    internal::AdamWAvx512(s, p, g, m, v, done);
  } else if (level == SimdLevel::kAvx2) {
    done = n / 8 * 8;
    internal::AdamWAvx2(s, p, g, m, v, done);
  }
  AdamWScalarLoop(s, p + done, g + done, m + done, v + done, n - done);
}

// One (possibly partial) block on the scalar path: the same template math as the SIMD kernels.
void AdamW8BlockScalar(const AdamW8Scalars& s, float* p, const float* g, uint8_t* mc, uint8_t* vc, float* ma,
                       float* va, int64_t len) {
  const float* sb = q8::BookValues(q8::Book::kSigned);
  const float* ub = q8::BookValues(q8::Book::kUnsigned);
  const q8::FastTable& tm = q8::FastTableFor(q8::Book::kSigned, q8::Encoding::kSignFixup);
  const q8::FastTable& tv = q8::FastTableFor(q8::Book::kUnsigned);
  float mt[q8::kBlock], vt[q8::kBlock];
  float nm = 0.0f, nv = 0.0f;
  for (int64_t i = 0; i < len; ++i) {
    float m = q8::Decode(sb, mc[i], *ma), v = q8::Decode(ub, vc[i], *va);
    AdamW8Update(p[i], g[i], m, v, s);
    mt[i] = m;
    vt[i] = v;
    nm = q8::AbsmaxAccumulate(nm, m);
    nv = q8::AbsmaxAccumulate(nv, v);
  }
  *ma = nm;
  *va = nv;
  const float im = q8::InvScaleSafe(nm), iv = q8::InvScaleSafe(nv);
  for (int64_t i = 0; i < len; ++i) {
    mc[i] = q8::EncodeFast(tm, mt[i] * im);  // sign fix-up folded into the table
    vc[i] = q8::EncodeFast(tv, vt[i] * iv);
  }
}

void AdamW8Range(const AdamW8Scalars& s, float* p, const float* g, uint8_t* mc, uint8_t* vc, float* ma, float* va,
                 int64_t n, SimdLevel level) {
  const int64_t full = n / q8::kBlock;
  int64_t first_scalar_block = 0;
  if (level == SimdLevel::kAvx512) {
    internal::AdamW8Avx512(s, p, g, mc, vc, ma, va, full);
    first_scalar_block = full;
  } else if (level == SimdLevel::kAvx2) {
    internal::AdamW8Avx2(s, p, g, mc, vc, ma, va, full);
    first_scalar_block = full;
  }
  for (int64_t b = first_scalar_block; b * q8::kBlock < n; ++b) {
    const int64_t o = b * q8::kBlock;
    AdamW8BlockScalar(s, p + o, g + o, mc + o, vc + o, ma + b, va + b, std::min<int64_t>(q8::kBlock, n - o));
  }
}

SimdLevel Clamp(SimdLevel level) { return level > SimdLevelSupported() ? SimdLevelSupported() : level; }

}  // namespace

Status AdamWStep(const AdamWConfig& cfg, int64_t step, std::span<float> param, std::span<const float> grad,
                 std::span<float> m, std::span<float> v, ThreadPool* pool, SimdLevel level) {
  STRATA_RETURN_IF_ERROR(ValidateAdamW(cfg));
  STRATA_RETURN_IF_ERROR(CheckStep(step));
  STRATA_RETURN_IF_ERROR(CheckSameLength("grad", grad.size(), param.size()));
  STRATA_RETURN_IF_ERROR(CheckSameLength("m", m.size(), param.size()));
  STRATA_RETURN_IF_ERROR(CheckSameLength("v", v.size(), param.size()));
  const AdamWScalars s = MakeAdamWScalars(cfg, step);
  level = Clamp(level);
  auto run = [&](int64_t b, int64_t e) {
    AdamWRange(s, param.data() + b, grad.data() + b, m.data() + b, v.data() + b, e - b, level);
  };
  const int64_t n = static_cast<int64_t>(param.size());
  if (pool) pool->ParallelFor(n, 1024, run); else run(0, n);
  return Status::Ok();
}

Status AdamW8bitStep(const AdamWConfig& cfg, int64_t step, std::span<float> param, std::span<const float> grad,
                     const Q8Moments& st, ThreadPool* pool, SimdLevel level) {
  STRATA_RETURN_IF_ERROR(ValidateAdamW(cfg));
  STRATA_RETURN_IF_ERROR(CheckStep(step));
  const size_t n = param.size();
  const size_t nb = static_cast<size_t>(q8::NumBlocks(static_cast<int64_t>(n)));
  STRATA_RETURN_IF_ERROR(CheckSameLength("grad", grad.size(), n));
  STRATA_RETURN_IF_ERROR(CheckSameLength("m_codes", st.m_codes.size(), n));
  STRATA_RETURN_IF_ERROR(CheckSameLength("v_codes", st.v_codes.size(), n));
  if (st.m_absmax.size() != nb)
    return Status::InvalidArgument("m_absmax: " + std::to_string(st.m_absmax.size()) + " blocks, want " +
                                   std::to_string(nb) + " (one per 256 values)");
  if (st.v_absmax.size() != nb)
    return Status::InvalidArgument("v_absmax: " + std::to_string(st.v_absmax.size()) + " blocks, want " +
                                   std::to_string(nb) + " (one per 256 values)");
  const AdamW8Scalars s = MakeAdamW8Scalars(cfg, step);
  level = Clamp(level);
  auto run = [&](int64_t b, int64_t e) {
    const int64_t blk = b / q8::kBlock;
    AdamW8Range(s, param.data() + b, grad.data() + b, st.m_codes.data() + b, st.v_codes.data() + b,
                st.m_absmax.data() + blk, st.v_absmax.data() + blk, e - b, level);
  };
  if (pool) pool->ParallelFor(static_cast<int64_t>(n), q8::kBlock, run); else run(0, static_cast<int64_t>(n));
  return Status::Ok();
}

Status AdamW8bitStepFp32State(const AdamWConfig& cfg, int64_t step, std::span<float> param,
                              std::span<const float> grad, std::span<float> m, std::span<float> v) {
  STRATA_RETURN_IF_ERROR(ValidateAdamW(cfg));
  STRATA_RETURN_IF_ERROR(CheckStep(step));
  STRATA_RETURN_IF_ERROR(CheckSameLength("grad", grad.size(), param.size()));
  STRATA_RETURN_IF_ERROR(CheckSameLength("m", m.size(), param.size()));
  STRATA_RETURN_IF_ERROR(CheckSameLength("v", v.size(), param.size()));
  const AdamW8Scalars s = MakeAdamW8Scalars(cfg, step);
  for (size_t i = 0; i < param.size(); ++i) AdamW8Update(param[i], grad[i], m[i], v[i], s);
  return Status::Ok();
}

// ---- Owning state ------------------------------------------------------------------------------

AdamW8bitState::AdamW8bitState(int64_t n) : n_(n), kind_(n < kMin8bitSize ? StateKind::kFp32 : StateKind::k8bit) {
  STRATA_CHECK(n >= 0);
  if (kind_ == StateKind::kFp32) {
    m32_.assign(n, 0.0f);
    v32_.assign(n, 0.0f);
  } else {
    m_codes_.assign(n, q8::kSignedZero);
    v_codes_.assign(n, q8::kUnsignedZero);
    m_absmax_.assign(q8::NumBlocks(n), 0.0f);
    v_absmax_.assign(q8::NumBlocks(n), 0.0f);
  }
}

int64_t AdamW8bitState::StateBytes() const {
  if (kind_ == StateKind::kFp32) return n_ * 8;
  return n_ * 2 + q8::NumBlocks(n_) * 8;
}

Q8Moments AdamW8bitState::moments() { return {m_codes_, v_codes_, m_absmax_, v_absmax_}; }

Status AdamW8bitState::Step(const AdamWConfig& cfg, std::span<float> param, std::span<const float> grad,
                            ThreadPool* pool, SimdLevel level) {
  if (static_cast<int64_t>(param.size()) != n_)
    return Status::InvalidArgument("param: " + std::to_string(param.size()) + " values, but the state holds " +
                                   std::to_string(n_));
  const int64_t next = step_ + 1;
  Status st = kind_ == StateKind::kFp32 ? AdamW8bitStepFp32State(cfg, next, param, grad, m32_, v32_)
                                        : AdamW8bitStep(cfg, next, param, grad, moments(), pool, level);
  if (st.ok()) step_ = next;
  return st;
}

}  // namespace strata::optim
