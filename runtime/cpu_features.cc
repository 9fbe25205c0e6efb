#include "runtime/cpu_features.h"

#include <cpuid.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace strata {

std::string_view SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar: return "scalar";
    case SimdLevel::kAvx2: return "avx2";
    case SimdLevel::kAvx512: return "avx512";
  }
  return "?";
}

namespace {

unsigned long long Xgetbv0() {
  unsigned int lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}

SimdLevel Detect() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return SimdLevel::kScalar;
  const bool osxsave = c & (1u << 27), fma = c & (1u << 12), avx = c & (1u << 28);
  if (!osxsave || !avx || !fma) return SimdLevel::kScalar;
  const unsigned long long xcr0 = Xgetbv0();
  if ((xcr0 & 0x6) != 0x6) return SimdLevel::kScalar;  // OS saves xmm and ymm state
  if (__get_cpuid_max(0, nullptr) < 7) return SimdLevel::kScalar;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = b & (1u << 5), bmi2 = b & (1u << 8);
  if (!avx2 || !bmi2) return SimdLevel::kScalar;
  const bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30),
             avx512vl = b & (1u << 31);
  const bool avx512vbmi = c & (1u << 1);  // byte permutes: the codec's table lookups
  const bool zmm_state = (xcr0 & 0xe6) == 0xe6;  // opmask, upper zmm halves, zmm16-31
  if (avx512f && avx512dq && avx512bw && avx512vl && avx512vbmi && zmm_state) return SimdLevel::kAvx512;
  return SimdLevel::kAvx2;
}

}  // namespace

SimdLevel SimdLevelSupported() {
  static const SimdLevel level = Detect();
  return level;
}

SimdLevel SimdLevelActive() {
  static const SimdLevel level = [] {
    SimdLevel l = SimdLevelSupported();
    if (const char* env = std::getenv("STRATA_SIMD"); env && *env) {
      SimdLevel cap = l;
      if (std::strcmp(env, "scalar") == 0) cap = SimdLevel::kScalar;
      else if (std::strcmp(env, "avx2") == 0) cap = SimdLevel::kAvx2;
      else if (std::strcmp(env, "avx512") == 0) cap = SimdLevel::kAvx512;
      else std::fprintf(stderr, "strata: ignoring STRATA_SIMD=%s (want scalar, avx2 or avx512)\n", env);
      if (cap < l) l = cap;
    }
    return l;
  }();
  return level;
}

std::vector<SimdLevel> SimdLevelsAvailable() {
  std::vector<SimdLevel> out;
  for (int i = 0; i <= static_cast<int>(SimdLevelSupported()); ++i) out.push_back(static_cast<SimdLevel>(i));
  return out;
}

}  // namespace strata
