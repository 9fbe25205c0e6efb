// AdamW's AVX2 loops (compiled with -mavx2 -mfma).
#include "optim/adamw.h"
#include "optim/q8_codec.h"
#include "runtime/simd_x86.h"

#include "optim/lanes_avx2.inc"

#include "optim/adamw_kernels.inc"

namespace strata::optim::internal {
void AdamWAvx2(const AdamWScalars& s, float* p, const float* g, float* m, float* v, int64_t n) {
  AdamWImpl(s, p, g, m, v, n);
}
void AdamW8Avx2(const AdamW8Scalars& s, float* p, const float* g, uint8_t* mc, uint8_t* vc, float* ma,
                  float* va, int64_t nblocks) {
  AdamW8Impl(s, p, g, mc, vc, ma, va, nblocks);
}
}  // namespace strata::optim::internal
