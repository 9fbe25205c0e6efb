// Which SIMD kernels this CPU can run, decided once at run time so one binary runs on any x86-64
// machine and picks its best kernel. STRATA_SIMD=scalar|avx2|avx512 caps the choice (for tests,
// benchmarks and bug reports).
#pragma once

#include <string_view>
#include <vector>

namespace strata {

enum class SimdLevel : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

std::string_view SimdLevelName(SimdLevel level);

// What the hardware and OS support (CPUID + XGETBV), ignoring STRATA_SIMD.
SimdLevel SimdLevelSupported();

// What kernels use by default: the supported level, capped by STRATA_SIMD when set.
SimdLevel SimdLevelActive();

// Every level this machine can run, lowest first (for tests that compare all of them).
std::vector<SimdLevel> SimdLevelsAvailable();

}  // namespace strata
