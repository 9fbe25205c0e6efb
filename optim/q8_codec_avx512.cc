// The codec's AVX-512 kernels (compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl).
#include "optim/q8_codec.h"
#include "runtime/simd_x86.h"

namespace {
using strata::I16;
using strata::V16;
using V = V16;
using I = I16;
inline I load_codes(const uint8_t* p) { return strata::load_codes16(p); }
inline void store_codes(uint8_t* p, I c) { strata::store_codes16(p, c); }
inline I encode(const uint32_t* t, V x) { return strata::encode16(t, x); }
struct BookCtx {
  const uint8_t (*planes)[256];
};
inline BookCtx book_ctx(strata::q8::Book b) { return {strata::q8::BytePlanesFor(b).plane}; }
// 256 codes -> 256 floats (times absmax) with byte permutes.
inline void decode_block(const BookCtx& ctx, const uint8_t* codes, float absmax, float* out) {
  for (int i = 0; i < strata::q8::kBlock; i += 64) strata::decode64_vbmi(ctx.planes, codes + i, absmax, out + i);
}
}  // namespace

#include "optim/q8_codec_kernels.inc"

namespace strata::q8::internal {
void EncodeArrayAvx512(const FastTable& t, const float* x, int64_t n, uint8_t* codes) {
  EncodeArrayImpl(t, x, n, codes);
}
void EncodeArrayAvx512Assuming(const FastTable& t, Assume assume, const float* x, int64_t n, uint8_t* codes) {
  for (int64_t i = 0; i < n; i += 16) {
    const V v = V::load(x + i);
    store_codes(codes + i, assume == Assume::kFinite        ? strata::encode16_finite(t.entry, v)
                           : assume == Assume::kNonNegative ? strata::encode16_nonneg(t.entry, v)
                                                            : strata::encode16(t.entry, v));
  }
}
void QuantizeBlocksAvx512(const FastTable& t, const float* x, int64_t nblocks, uint8_t* codes, float* absmax) {
  QuantizeBlocksImpl(t, x, nblocks, codes, absmax);
}
void DequantizeBlocksAvx512(Book book, const uint8_t* codes, const float* absmax, int64_t nblocks,
                            float* out) {
  DequantizeBlocksImpl(book, codes, absmax, nblocks, out);
}
}  // namespace strata::q8::internal
