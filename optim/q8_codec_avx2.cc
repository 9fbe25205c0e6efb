// The codec's AVX2 kernels (compiled with -mavx2 -mfma).
#include "optim/q8_codec.h"
#include "runtime/simd_x86.h"

#include "optim/lanes_avx2.inc"

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
