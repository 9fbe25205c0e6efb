// AdamW in fp32 (torch's semantics) and with 8-bit block-wise state (bitsandbytes' semantics).
//
// The per-element math is written once below as host/device templates over a lane type F: float
// for the scalar loops and the CUDA kernels, an 8- or 16-lane vector for the AVX2 / AVX-512
// loops. The *Ref functions in adamw.cc are independent scalar oracles that the tests hold every
// fast path to, bit for bit.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "optim/q8_book.h"
#include "runtime/cpu_features.h"
#include "runtime/hd.h"
#include "runtime/status.h"

namespace strata {
class ThreadPool;
}

namespace strata::optim {

struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
};

// InvalidArgument naming the offending field unless: lr, eps, weight_decay finite and >= 0;
// beta1, beta2 in [0, 1).
[[nodiscard]] Status ValidateAdamW(const AdamWConfig& cfg);

// ---- fp32 AdamW, torch.optim.AdamW (foreach=False) order of operations ----------------------
//   p *= 1 - lr*wd
//   m  = lerp(m, g, 1 - beta1)
//   v  = v*beta2 + (1 - beta2)*g*g
//   p += (-lr/bc1 * m) / (sqrt(v)/sqrt(bc2) + eps)        bc_i = 1 - beta_i^step
// A non-finite gradient propagates, as in torch.
struct AdamWScalars {
  float decay;          // 1 - lr * weight_decay
  float lerp_w;         // 1 - beta1
  float lerp_w1;        // 1 - lerp_w (used when lerp_w >= 0.5, torch's other lerp branch)
  int lerp_small;       // lerp_w < 0.5
  float beta2;
  float one_minus_beta2;
  float bc2_sqrt;       // sqrt(1 - beta2^step)
  float eps;
  float neg_step_size;  // -lr / (1 - beta1^step)
};
AdamWScalars MakeAdamWScalars(const AdamWConfig& cfg, int64_t step);

template <class F>
STRATA_HD void AdamWUpdate(F& p, F g, F& m, F& v, const AdamWScalars& s) {
  p = p * F(s.decay);
  m = s.lerp_small ? m + F(s.lerp_w) * (g - m) : g - (g - m) * F(s.lerp_w1);
  v = v * F(s.beta2) + F(s.one_minus_beta2) * g * g;
  const F denom = hd_sqrt(v) / F(s.bc2_sqrt) + F(s.eps);
  p = p + F(s.neg_step_size) * m / denom;
}

// ---- 8-bit AdamW, bitsandbytes' blockwise kernel order of operations ------------------------
//   m1 = m*beta1 + (1-beta1)*g ;  v1 = v*beta2 + (1-beta2)*g*g
//   if g and v1 are finite:  m = m1, v = v1, p = (p + step_size * m1 / (sqrt(v1) + eps*c2)) * (1 - lr*wd)
//   else:                    m = v = 0, p unchanged
// (bitsandbytes tests g only; a finite g whose square overflows would make its block's v absmax
// infinite and every value of the block NaN from the next step on. strata treats it like a
// non-finite gradient instead. docs/formats/q8-blocks.md lists every difference.)
// with c2 = sqrt(1 - beta2^step), step_size = -lr * c2 / (1 - beta1^step). m and v are decoded
// from their 8-bit blocks before and re-encoded after, with absmax recomputed every step.
struct AdamW8Scalars {
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float step_size;  // negative
  float eps_hat;    // eps * c2
  float decay;      // 1 - lr * wd
};
AdamW8Scalars MakeAdamW8Scalars(const AdamWConfig& cfg, int64_t step);

template <class F>
STRATA_HD void AdamW8Update(F& p, F g, F& m, F& v, const AdamW8Scalars& s) {
  const F m1 = m * F(s.beta1) + F(s.one_minus_beta1) * g;
  const F v1 = v * F(s.beta2) + F(s.one_minus_beta2) * g * g;
  // g non-finite => v1 non-finite (1 - beta2 > 0 and v >= 0 is finite), so one test covers both
  // a non-finite g and a g whose square overflows.
  const auto finite = hd_isfinite(v1);
  const F p1 = (p + F(s.step_size) * (m1 / (hd_sqrt(v1) + F(s.eps_hat)))) * F(s.decay);
  m = hd_select(finite, m1, F(0.0f));
  v = hd_select(finite, v1, F(0.0f));
  p = hd_select(finite, p1, p);
}

// ---- Kernels over spans ------------------------------------------------------------------------

// One fp32 AdamW step (step >= 1) over n parameters. All spans have the same length.
[[nodiscard]] Status AdamWStep(const AdamWConfig& cfg, int64_t step, std::span<float> param,
                               std::span<const float> grad, std::span<float> m, std::span<float> v,
                               ThreadPool* pool = nullptr, SimdLevel level = SimdLevelActive());

// The 8-bit moments of one tensor of n values: codes[n], absmax[NumBlocks(n)] for m and v.
struct Q8Moments {
  std::span<uint8_t> m_codes;
  std::span<uint8_t> v_codes;
  std::span<float> m_absmax;
  std::span<float> v_absmax;
};

// One 8-bit AdamW step over n parameters with block-quantized moments (any n >= 0; the last
// block may be partial). Bitwise identical for any thread count and any SIMD level.
[[nodiscard]] Status AdamW8bitStep(const AdamWConfig& cfg, int64_t step, std::span<float> param,
                                   std::span<const float> grad, const Q8Moments& state,
                                   ThreadPool* pool = nullptr, SimdLevel level = SimdLevelActive());

// The same 8-bit AdamW math with fp32 moments (bitsandbytes keeps tensors under 4096 values in
// fp32; so does AdamW8bitState).
[[nodiscard]] Status AdamW8bitStepFp32State(const AdamWConfig& cfg, int64_t step, std::span<float> param,
                                            std::span<const float> grad, std::span<float> m,
                                            std::span<float> v);

// Scalar oracles (straightforward loops, one element at a time; no SIMD, no threads).
void AdamWStepRef(const AdamWConfig& cfg, int64_t step, float* p, const float* g, float* m, float* v, int64_t n);
void AdamW8bitStepRef(const AdamWConfig& cfg, int64_t step, float* p, const float* g, uint8_t* m_codes,
                      uint8_t* v_codes, float* m_absmax, float* v_absmax, int64_t n);

// ---- Owning optimizer state for one tensor -----------------------------------------------------

enum class StateKind : uint8_t { k8bit, kFp32 };

class AdamW8bitState {
 public:
  // Tensors with fewer values keep fp32 moments (as bitsandbytes' min_8bit_size).
  static constexpr int64_t kMin8bitSize = 4096;

  explicit AdamW8bitState(int64_t n);
  int64_t size() const { return n_; }
  StateKind kind() const { return kind_; }
  // Bytes of optimizer state held (m and v together, absmax included).
  int64_t StateBytes() const;

  // Advances the internal step counter and applies one step.
  [[nodiscard]] Status Step(const AdamWConfig& cfg, std::span<float> param, std::span<const float> grad,
                            ThreadPool* pool = nullptr, SimdLevel level = SimdLevelActive());
  int64_t step() const { return step_; }

  Q8Moments moments();
  std::span<float> m_fp32() { return m32_; }
  std::span<float> v_fp32() { return v32_; }

 private:
  int64_t n_;
  StateKind kind_;
  int64_t step_ = 0;
  std::vector<uint8_t> m_codes_, v_codes_;
  std::vector<float> m_absmax_, v_absmax_;
  std::vector<float> m32_, v32_;
};

// ---- Per-ISA kernels (optim/adamw_avx2.cc, optim/adamw_avx512.cc) ------------------------------
namespace internal {
// n a multiple of the lane width.
void AdamWAvx2(const AdamWScalars& s, float* p, const float* g, float* m, float* v, int64_t n);
void AdamWAvx512(const AdamWScalars& s, float* p, const float* g, float* m, float* v, int64_t n);
// nblocks whole blocks of q8::kBlock values.
void AdamW8Avx2(const AdamW8Scalars& s, float* p, const float* g, uint8_t* mc, uint8_t* vc, float* ma,
                float* va, int64_t nblocks);
void AdamW8Avx512(const AdamW8Scalars& s, float* p, const float* g, uint8_t* mc, uint8_t* vc, float* ma,
                  float* va, int64_t nblocks);
}  // namespace internal

}  // namespace strata::optim
