// Which SIMD kernels this CPU can run, decided once at run time so one binary runs on any x86-64
// machine and picks its best kernel. STRATA_SIMD=scalar|avx2|avx512 caps the choice (for tests,
// benchmarks and bug reports).
#pragma once

#include <string_view>
#include <vector>

namespace strata {

// kAvx2: AVX2 + FMA + BMI2 (Haswell, Zen 1 and later).
// kAvx512: AVX-512 F/BW/DQ/VL + VBMI (Ice Lake, Sapphire Rapids, Zen 4 and later); CPUs with
// AVX-512 but no VBMI (Skylake-X) run the AVX2 kernels.
enum class SimdLevel : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

std::string_view SimdLevelName(SimdLevel level);

// What the hardware and OS support (CPUID + XGETBV), ignoring STRATA_SIMD.
SimdLevel SimdLevelSupported();

// What kernels use by default: the supported level, capped by STRATA_SIMD when set.
SimdLevel SimdLevelActive();

// Every level this machine can run, lowest first (for tests that compare all of them).
std::vector<SimdLevel> SimdLevelsAvailable();

}  // namespace strata
