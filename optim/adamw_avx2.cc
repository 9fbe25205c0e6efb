// AdamW's AVX2 loops (compiled with -mavx2 -mfma).
#include "optim/adamw.h"
#include "optim/q8_codec.h"
#include "runtime/simd_x86.h"

namespace {
using strata::I8;
using strata::V8;
using V = V8;
using I = I8;
inline I load_codes(const uint8_t* p) { return strata::load_codes8(p); }
inline void store_codes(uint8_t* p, I c) { strata::store_codes8(p, c); }
inline I encode_finite(const uint32_t* t, V x) { return strata::encode8_finite(t, x); }
inline I encode_nonneg(const uint32_t* t, V x) { return strata::encode8_nonneg(t, x); }
struct BookCtx {
  const float* book;
};
inline BookCtx book_ctx(strata::q8::Book b) { return {strata::q8::BookValues(b)}; }
// 256 codes -> 256 floats (times absmax) with gathers.
inline void decode_block(const BookCtx& ctx, const uint8_t* codes, float absmax, float* out) {
  const V scale(absmax);
  for (int i = 0; i < strata::q8::kBlock; i += V::N) (gather_book(ctx.book, load_codes(codes + i)) * scale).store(out + i);
}
}  // namespace

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
