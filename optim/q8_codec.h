// The 8-bit block codec.
//
// Encoding rule: the IEEE form of bitsandbytes' CUDA quantize_blockwise (its build uses fast math,
// which flushes denormals and approximates 1/absmax; the codes agree everywhere else), so state
// moves to and from it:
//   absmax = max |x| over the block, NaN ignored (fmaxf)          one fp32 per block
//   inv    = 1.0f / absmax                                        (+inf when absmax is 0)
//   code   = EncodeRef(book, x * inv)                             binary search, below
//   decode = book[code] * absmax
// EncodeRef is a 7-step binary search over the sorted book followed by a nearest-of-two choice at
// the float32 midpoint (a + b) * 0.5f; an exact tie goes to the even index. NaN encodes to 0 (every
// comparison with NaN is false, so the search walks to the bottom). That function is the oracle:
// the fast encoders (a small bucket table plus one compare, scalar, AVX2 and AVX-512) are proven
// equal to it on all 2^32 float32 inputs by tests/optim/q8_exhaustive_test.cc.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>

#include "optim/q8_book.h"
#include "runtime/cpu_features.h"
#include "runtime/hd.h"
#include "runtime/status.h"

namespace strata {
class ThreadPool;
}

namespace strata::q8 {

// ---- Math, written once for host and device -------------------------------------------------

// The search rule over a sorted 256-entry book (the oracle).
STRATA_HD uint8_t EncodeRef(const float* book, float x) {
  int pivot = 127, upper_pivot = 255, lower_pivot = 0;
  float lower = -1.0f, upper = 1.0f;
  float val = book[pivot];
  for (int step = 64; step > 0; step >>= 1) {
    if (x > val) {
      lower_pivot = pivot;
      lower = val;
      pivot += step;
    } else {
      upper_pivot = pivot;
      upper = val;
      pivot -= step;
    }
    val = book[pivot];
  }
  // pivot is even here; lower_pivot = pivot - 1 and upper_pivot = pivot + 1 except at the ends.
  if (upper_pivot == 255) upper = book[255];
  if (lower_pivot == 0) lower = book[0];
  if (x > val) {
    const float mid = (upper + val) * 0.5f;
    return static_cast<uint8_t>(x > mid ? upper_pivot : pivot);
  }
  const float mid = (lower + val) * 0.5f;
  return static_cast<uint8_t>(x < mid ? lower_pivot : pivot);
}

STRATA_HD float Decode(const float* book, uint8_t code, float absmax) { return book[code] * absmax; }

// absmax accumulation with fmaxf semantics: a NaN x leaves the running max alone.
STRATA_HD float AbsmaxAccumulate(float acc, float x) {
  const float a = hd_fabs(x);
  return a > acc ? a : acc;
}

// The codec's scale: the reciprocal of the block's absmax (+inf for an all-zero block, as the
// CUDA rule has it: 0 * inf is NaN, which encodes to 0).
STRATA_HD float InvScale(float absmax) { return 1.0f / absmax; }

// The optimizer's scale: like InvScale, but always finite, so a finite moment always normalizes to
// a finite value in [-1, 1]: an all-zero block scales by 0 (its values take the book's exact zero
// instead of going through 0 * inf = NaN), and a block whose absmax is so small (below 2^-128)
// that 1 / absmax overflows scales by FLT_MAX instead of +inf.
STRATA_HD float InvScaleSafe(float absmax) {
  const float inv = 1.0f / absmax;
  return absmax > 0.0f ? (inv < 3.40282347e38f ? inv : 3.40282347e38f) : 0.0f;
}

// bitsandbytes' sign fix-up for m: a negative value never rounds to the +0 code (127); it takes
// the smallest negative code instead. In the general form: when signbit(book[c]) differs from
// signbit(s), step one code toward s. For a non-NaN normalized input only c == 127 can differ.
STRATA_HD uint8_t SignFixup(const float* signed_book, uint8_t code, float s) {
  if (hd_signbit(signed_book[code]) != hd_signbit(s)) return static_cast<uint8_t>(s > 0.0f ? code + 1 : code - 1);
  return code;
}

// ---- Scalar references over arrays (oracles for tests) ---------------------------------------

// codes[i] and absmax[b] for n values; absmax has NumBlocks(n) entries.
void QuantizeBlockwiseRef(Book book, const float* x, int64_t n, uint8_t* codes, float* absmax);
void DequantizeBlockwiseRef(Book book, const uint8_t* codes, const float* absmax, int64_t n, float* out);

// ---- Fast encoder ----------------------------------------------------------------------------

// Which rule a fast table encodes: the codec's plain rule, or the optimizer's rule for m with
// bitsandbytes' sign fix-up folded in (a negative value never takes the +0 code).
enum class Encoding : uint8_t { kPlain, kSignFixup };

// Reference of the kSignFixup rule for a non-NaN x (NaN encodes to 0 under both rules).
STRATA_HD uint8_t EncodeRefFixup(const float* signed_book, float x) {
  return SignFixup(signed_book, EncodeRef(signed_book, x), x);
}

// Bucket table for one book and rule. A float's magnitude bits |x| select a bucket of 2^16
// consecutive floats (their top 16 bits, clamped to kHi: every float above 1 encodes like 1, as no
// decision point of either book lies beyond), in the half of the table for its sign (bit 14 of the
// index). Each bucket holds at most one decision point (the books' closest two are more than
// 88,000 floats apart), so an entry packs
//   bits 31..24: c0, the code at the bucket's smallest magnitude
//   bits 23..16: c1, the code past the decision point (c0 when there is none)
//   bits 15..0:  the low 16 bits of |x| where c1 starts (0 when there is none)
// and code = (|x| & 0xffff) >= (entry & 0xffff) ? c1 : c0. One lookup and one compare; NaN is
// handled apart (code 0). The hot part of the table (|x| from 2^-23 to 1, what normalized state
// mostly holds) is 2 x 12 KB.
struct FastTable {
  static constexpr uint32_t kHi = 0x3f80;      // the bucket of 1.0
  static constexpr uint32_t kNegBit = 0x4000;  // index bit of the negative half
  alignas(64) uint32_t entry[kNegBit + kHi + 1];
};
const FastTable& FastTableFor(Book book, Encoding enc = Encoding::kPlain);

inline __attribute__((always_inline)) uint8_t EncodeFast(const FastTable& t, float x) {
  if (x != x) return 0;
  uint32_t bits;
  __builtin_memcpy(&bits, &x, 4);
  const uint32_t a = bits & 0x7fffffffu;
  const uint32_t b = (a >> 16) < FastTable::kHi ? (a >> 16) : FastTable::kHi;
  const uint32_t e = t.entry[b | ((bits >> 17) & FastTable::kNegBit)];
  return static_cast<uint8_t>((a & 0xffffu) >= (e & 0xffffu) ? e >> 16 : e >> 24);
}

// The book's float32 values split into their 4 bytes (plane k holds byte k, little-endian, of
// every entry): the AVX-512 decoder looks codes up with byte permutes instead of gathers.
struct BookBytePlanes {
  alignas(64) uint8_t plane[4][256];
};
const BookBytePlanes& BytePlanesFor(Book book);

// ---- Arrays, dispatched to the best kernel of this CPU ----------------------------------------

// Encodes n normalized values (already multiplied by the block scale) with the given level.
void EncodeArray(Book book, const float* x, int64_t n, uint8_t* codes, SimdLevel level = SimdLevelActive(),
                 Encoding enc = Encoding::kPlain);

// What the optimizer's encoders may assume about their input (each saves vector operations):
// kFinite: x is never NaN (m); kNonNegative: x is +0, positive or NaN, never negative (v).
// Results are specified only for inputs that meet the assumption; the exhaustive test checks each
// against EncodeRef on every such float32.
enum class Assume : uint8_t { kNothing, kFinite, kNonNegative };
void EncodeArrayAssuming(Book book, Encoding enc, Assume assume, const float* x, int64_t n, uint8_t* codes,
                         SimdLevel level);

// Block-wise quantization / dequantization (the CUDA rule above), multi-threaded when a pool is
// given. Sizes: codes has x.size() entries, absmax NumBlocks(x.size()).
[[nodiscard]] Status QuantizeBlockwise(Book book, std::span<const float> x, std::span<uint8_t> codes,
                                       std::span<float> absmax, strata::ThreadPool* pool = nullptr,
                                       SimdLevel level = SimdLevelActive());
[[nodiscard]] Status DequantizeBlockwise(Book book, std::span<const uint8_t> codes,
                                         std::span<const float> absmax, std::span<float> out,
                                         strata::ThreadPool* pool = nullptr,
                                         SimdLevel level = SimdLevelActive());

// Per-ISA kernels (defined in q8_codec_avx2.cc / q8_codec_avx512.cc). Full blocks only.
namespace internal {
void EncodeArrayAvx2(const FastTable& t, const float* x, int64_t n, uint8_t* codes);
void EncodeArrayAvx512(const FastTable& t, const float* x, int64_t n, uint8_t* codes);
void EncodeArrayAvx512Assuming(const FastTable& t, Assume assume, const float* x, int64_t n, uint8_t* codes);
void QuantizeBlocksAvx2(const FastTable& t, const float* x, int64_t nblocks, uint8_t* codes, float* absmax);
void QuantizeBlocksAvx512(const FastTable& t, const float* x, int64_t nblocks, uint8_t* codes, float* absmax);
void DequantizeBlocksAvx2(Book book, const uint8_t* codes, const float* absmax, int64_t nblocks, float* out);
void DequantizeBlocksAvx512(Book book, const uint8_t* codes, const float* absmax, int64_t nblocks, float* out);
}  // namespace internal

}  // namespace strata::q8
