// AdamW's AVX-512 loops (compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl).
#include "optim/adamw.h"
#include "optim/q8_codec.h"
#include "runtime/simd_x86.h"

namespace {
using strata::I16;
using strata::V16;
using V = V16;
using I = I16;
inline I load_codes(const uint8_t* p) { return strata::load_codes16(p); }
inline void store_codes(uint8_t* p, I c) { strata::store_codes16(p, c); }
inline I encode_finite(const uint32_t* t, V x) { return strata::encode16_finite(t, x); }
inline I encode_nonneg(const uint32_t* t, V x) { return strata::encode16_nonneg(t, x); }
struct BookCtx {
  const uint8_t (*planes)[256];
};
inline BookCtx book_ctx(strata::q8::Book b) { return {strata::q8::BytePlanesFor(b).plane}; }
// 256 codes -> 256 floats (times absmax) with byte permutes.
inline void decode_block(const BookCtx& ctx, const uint8_t* codes, float absmax, float* out) {
  for (int i = 0; i < strata::q8::kBlock; i += 64) strata::decode64_vbmi(ctx.planes, codes + i, absmax, out + i);
}
}  // namespace

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
