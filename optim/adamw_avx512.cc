// AdamW's AVX-512 loops (compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl).
#include "optim/adamw.h"
#include "optim/q8_codec.h"
#include "runtime/simd_x86.h"

#include "optim/lanes_avx512.inc"

#include "optim/adamw_kernels.inc"

namespace strata::optim::internal {
void AdamWAvx512(const AdamWScalars& s, float* p, const float* g, float* m, float* v, int64_t n) {
  AdamWImpl(s, p, g, m, v, n);
}
void AdamW8Avx512(const AdamW8Scalars& s, float* p, const float* g, uint8_t* mc, uint8_t* vc, float* ma,
                  float* va, int64_t nblocks) {
  AdamW8Impl(s, p, g, mc, vc, ma, va, nblocks);
}
}  // namespace strata::optim::internal
