// Thin SIMD vector types for the x86 kernels. Include only from translation units compiled with
// the matching -m flags (optim/*_avx2.cc, optim/*_avx512.cc). Everything here has internal
// linkage, so an AVX-512 copy of a helper can never be linked into generic code.
//
// Each type gives the operators and free functions (hd_sqrt, hd_select, hd_isfinite, ...) that the
// host/device math templates use with float, so the same template body runs on 1, 8 or 16 lanes.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace strata {
namespace {  // NOLINT: internal linkage on purpose

#if defined(__AVX512F__) && defined(__AVX512BW__)
struct M16 {
  __mmask16 k;
};
struct V16 {
  static constexpr int N = 16;
  __m512 v;
  V16() = default;
  V16(__m512 x) : v(x) {}  // NOLINT
  V16(float x) : v(_mm512_set1_ps(x)) {}  // NOLINT
  static V16 load(const float* p) { return _mm512_loadu_ps(p); }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
};
inline V16 operator+(V16 a, V16 b) { return _mm512_add_ps(a.v, b.v); }
inline V16 operator-(V16 a, V16 b) { return _mm512_sub_ps(a.v, b.v); }
inline V16 operator*(V16 a, V16 b) { return _mm512_mul_ps(a.v, b.v); }
inline V16 operator/(V16 a, V16 b) { return _mm512_div_ps(a.v, b.v); }
inline V16 hd_sqrt(V16 a) { return _mm512_sqrt_ps(a.v); }
inline V16 hd_fabs(V16 a) { return _mm512_abs_ps(a.v); }
inline M16 hd_isfinite(V16 a) {
  return {_mm512_cmp_ps_mask(_mm512_abs_ps(a.v), _mm512_set1_ps(__builtin_inff()), _CMP_LT_OQ)};
}
inline M16 operator&(M16 a, M16 b) { return {static_cast<__mmask16>(a.k & b.k)}; }
inline V16 hd_select(M16 m, V16 a, V16 b) { return _mm512_mask_blend_ps(m.k, b.v, a.v); }
// max with fmaxf's NaN rule for the second argument: returns acc when x is NaN.
inline V16 max_keep(V16 x, V16 acc) { return _mm512_max_ps(x.v, acc.v); }
inline float reduce_max(V16 a) { return _mm512_reduce_max_ps(a.v); }

struct I16 {
  __m512i v;
};
inline I16 load_codes16(const uint8_t* p) {
  return {_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))};
}
inline void store_codes16(uint8_t* p, I16 c) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm512_cvtepi32_epi8(c.v));
}
inline V16 gather_book(const float* book, I16 c) { return _mm512_i32gather_ps(c.v, book, 4); }

// The fast encoders on 16 lanes (see q8::FastTable): one gather, one compare.
// code = |x| low bits >= entry low bits ? c1 : c0, where c1 sits in bits 23..16 of the entry and c0
// in bits 31..24; vpmovdb keeps the low byte, so a masked shift picks the code.
inline __m512i fast_index16(__m512i bits, __m512i a) {
  const __m512i b = _mm512_min_epu32(_mm512_srli_epi32(a, 16), _mm512_set1_epi32(0x3f80));
  // b | (sign moved to bit 14): ternary logic A | (B & C) is 0xf8.
  return _mm512_ternarylogic_epi32(b, _mm512_srli_epi32(bits, 17), _mm512_set1_epi32(0x4000), 0xf8);
}
inline __m512i fast_pick16(__m512i e, __m512i a) {
  const __mmask16 ge = _mm512_cmpge_epu32_mask(_mm512_and_si512(a, _mm512_set1_epi32(0xffff)),
                                               _mm512_and_si512(e, _mm512_set1_epi32(0xffff)));
  return _mm512_mask_srli_epi32(_mm512_srli_epi32(e, 24), ge, e, 16);
}
// Any input (the codec).
inline I16 encode16(const uint32_t* table, V16 x) {
  const __m512i bits = _mm512_castps_si512(x.v);
  const __m512i a = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff));
  const __m512i e = _mm512_i32gather_epi32(fast_index16(bits, a), table, 4);
  return {_mm512_mask_mov_epi32(fast_pick16(e, a), _mm512_cmp_ps_mask(x.v, x.v, _CMP_UNORD_Q), _mm512_setzero_si512())};
}
// x never NaN (the optimizer's m: finite moments times a finite scale).
inline I16 encode16_finite(const uint32_t* table, V16 x) {
  const __m512i bits = _mm512_castps_si512(x.v);
  const __m512i a = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff));
  return {fast_pick16(_mm512_i32gather_epi32(fast_index16(bits, a), table, 4), a)};
}
// x is +0, positive or NaN (the optimizer's v): the positive half of the table, NaN apart.
inline I16 encode16_nonneg(const uint32_t* table, V16 x) {
  const __m512i bits = _mm512_castps_si512(x.v);
  const __m512i b = _mm512_min_epu32(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x3f80));
  const __m512i code = fast_pick16(_mm512_i32gather_epi32(b, table, 4), bits);
  return {_mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(x.v, x.v, _CMP_ORD_Q), code)};
}

#if defined(__AVX512VBMI__)
// Decodes 64 codes into 64 floats with byte permutes (no gathers): each of the 4 byte planes of
// the book is 256 bytes = 4 registers, looked up with two 128-entry permutes and a blend on the
// code's top bit; unpacks then interleave the planes into floats. The codes are first shuffled
// (a 4x4 transpose of 4-byte groups) so the unpacks' in-lane order comes out in sequence.
inline void decode64_vbmi(const uint8_t (*planes)[256], const uint8_t* codes, float scale, float* out) {
  alignas(64) static constexpr uint8_t kPerm[64] = {
      0,  1,  2,  3,  16, 17, 18, 19, 32, 33, 34, 35, 48, 49, 50, 51, 4,  5,  6,  7,  20, 21,
      22, 23, 36, 37, 38, 39, 52, 53, 54, 55, 8,  9,  10, 11, 24, 25, 26, 27, 40, 41, 42, 43,
      56, 57, 58, 59, 12, 13, 14, 15, 28, 29, 30, 31, 44, 45, 46, 47, 60, 61, 62, 63};
  const __m512i c = _mm512_permutexvar_epi8(_mm512_load_si512(kPerm), _mm512_loadu_si512(codes));
  const __mmask64 hi = _mm512_movepi8_mask(c);
  __m512i b[4];
  for (int k = 0; k < 4; ++k) {
    const __m512i lo = _mm512_permutex2var_epi8(_mm512_load_si512(planes[k]), c, _mm512_load_si512(planes[k] + 64));
    const __m512i up = _mm512_permutex2var_epi8(_mm512_load_si512(planes[k] + 128), c, _mm512_load_si512(planes[k] + 192));
    b[k] = _mm512_mask_blend_epi8(hi, lo, up);
  }
  const __m512i w0 = _mm512_unpacklo_epi8(b[0], b[1]), w1 = _mm512_unpackhi_epi8(b[0], b[1]);
  const __m512i w2 = _mm512_unpacklo_epi8(b[2], b[3]), w3 = _mm512_unpackhi_epi8(b[2], b[3]);
  const __m512 s = _mm512_set1_ps(scale);
  _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpacklo_epi16(w0, w2)), s));
  _mm512_storeu_ps(out + 16, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpackhi_epi16(w0, w2)), s));
  _mm512_storeu_ps(out + 32, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpacklo_epi16(w1, w3)), s));
  _mm512_storeu_ps(out + 48, _mm512_mul_ps(_mm512_castsi512_ps(_mm512_unpackhi_epi16(w1, w3)), s));
}
#endif  // VBMI
#endif  // AVX-512

#if defined(__AVX2__) && defined(__FMA__)
struct M8 {
  __m256 m;
};
struct V8 {
  static constexpr int N = 8;
  __m256 v;
  V8() = default;
  V8(__m256 x) : v(x) {}  // NOLINT
  V8(float x) : v(_mm256_set1_ps(x)) {}  // NOLINT
  static V8 load(const float* p) { return _mm256_loadu_ps(p); }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
};
inline V8 operator+(V8 a, V8 b) { return _mm256_add_ps(a.v, b.v); }
inline V8 operator-(V8 a, V8 b) { return _mm256_sub_ps(a.v, b.v); }
inline V8 operator*(V8 a, V8 b) { return _mm256_mul_ps(a.v, b.v); }
inline V8 operator/(V8 a, V8 b) { return _mm256_div_ps(a.v, b.v); }
inline V8 hd_sqrt(V8 a) { return _mm256_sqrt_ps(a.v); }
inline V8 hd_fabs(V8 a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v); }
inline M8 hd_isfinite(V8 a) { return {_mm256_cmp_ps(hd_fabs(a).v, _mm256_set1_ps(__builtin_inff()), _CMP_LT_OQ)}; }
inline M8 operator&(M8 a, M8 b) { return {_mm256_and_ps(a.m, b.m)}; }
inline V8 hd_select(M8 m, V8 a, V8 b) { return _mm256_blendv_ps(b.v, a.v, m.m); }
inline V8 max_keep(V8 x, V8 acc) { return _mm256_max_ps(x.v, acc.v); }
inline float reduce_max(V8 a) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(a.v), _mm256_extractf128_ps(a.v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

struct I8 {
  __m256i v;
};
inline I8 load_codes8(const uint8_t* p) {
  return {_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)))};
}
inline void store_codes8(uint8_t* p, I8 c) {
  const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(c.v), _mm256_extracti128_si256(c.v, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p), _mm_packus_epi16(w, w));
}
inline V8 gather_book(const float* book, I8 c) { return _mm256_i32gather_ps(book, c.v, 4); }

inline I8 encode8(const uint32_t* table, V8 x) {
  const __m256i bits = _mm256_castps_si256(x.v);
  const __m256i a = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  const __m256i b = _mm256_min_epu32(_mm256_srli_epi32(a, 16), _mm256_set1_epi32(0x3f80));
  const __m256i idx = _mm256_or_si256(b, _mm256_and_si256(_mm256_srli_epi32(bits, 17), _mm256_set1_epi32(0x4000)));
  const __m256i e = _mm256_i32gather_epi32(reinterpret_cast<const int*>(table), idx, 4);
  // flip > low (both 16-bit, so signed compares are exact): keep c0, else c1.
  const __m256i lt = _mm256_cmpgt_epi32(_mm256_and_si256(e, _mm256_set1_epi32(0xffff)),
                                        _mm256_and_si256(a, _mm256_set1_epi32(0xffff)));
  const __m256i code = _mm256_and_si256(_mm256_blendv_epi8(_mm256_srli_epi32(e, 16), _mm256_srli_epi32(e, 24), lt),
                                        _mm256_set1_epi32(0xff));
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(x.v, x.v, _CMP_UNORD_Q));
  return {_mm256_andnot_si256(nan, code)};
}
#endif  // AVX2

}  // namespace
}  // namespace strata
