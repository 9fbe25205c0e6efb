// The codec's AVX2 kernels (compiled with -mavx2 -mfma).
#include "optim/q8_codec.h"
#include "runtime/simd_x86.h"

namespace {
using strata::I8;
using strata::V8;
using V = V8;
using I = I8;
inline I load_codes(const uint8_t* p) { return strata::load_codes8(p); }
inline void store_codes(uint8_t* p, I c) { strata::store_codes8(p, c); }
inline I encode(const uint32_t* t, V x) { return strata::encode8(t, x); }
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

#include "optim/q8_codec_kernels.inc"

namespace strata::q8::internal {
void EncodeArrayAvx2(const FastTable& t, const float* x, int64_t n, uint8_t* codes) {
  EncodeArrayImpl(t, x, n, codes);
}
void QuantizeBlocksAvx2(const FastTable& t, const float* x, int64_t nblocks, uint8_t* codes, float* absmax) {
  QuantizeBlocksImpl(t, x, nblocks, codes, absmax);
}
void DequantizeBlocksAvx2(Book book, const uint8_t* codes, const float* absmax, int64_t nblocks,
                            float* out) {
  DequantizeBlocksImpl(book, codes, absmax, nblocks, out);
}
}  // namespace strata::q8::internal
