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
}  // namespace

#include "optim/q8_codec_kernels.inc"

namespace strata::q8::internal {
void EncodeArrayAvx512(const FastTable& t, const float* x, int64_t n, uint8_t* codes) {
  EncodeArrayImpl(t, x, n, codes);
}
void QuantizeBlocksAvx512(const FastTable& t, const float* x, int64_t nblocks, uint8_t* codes, float* absmax) {
  QuantizeBlocksImpl(t, x, nblocks, codes, absmax);
}
void DequantizeBlocksAvx512(const float* book, const uint8_t* codes, const float* absmax, int64_t nblocks,
                            float* out) {
  DequantizeBlocksImpl(book, codes, absmax, nblocks, out);
}
}  // namespace strata::q8::internal
