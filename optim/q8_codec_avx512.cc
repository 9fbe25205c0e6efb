// The codec's AVX-512 kernels (compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl).
#include "optim/q8_codec.h"
#include "runtime/simd_x86.h"

#include "optim/lanes_avx512.inc"

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
