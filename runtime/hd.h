// Host/device annotations. Every numeric kernel in strata is written once as an inline function
// marked STRATA_HD; the CPU loops and the CUDA kernels are thin wrappers that call it.
#pragma once

#if defined(__CUDACC__)
#define STRATA_HD __host__ __device__ __forceinline__
#define STRATA_DEVICE_CODE 1
#else
// always_inline: SIMD translation units (compiled with -mavx512f and friends) must never emit an
// out-of-line copy of a shared helper that the linker could then hand to generic code.
#define STRATA_HD inline __attribute__((always_inline))
#endif

// Scalar math usable on both sides (the CUDA math API on the device, builtins on the host).
#include <cmath>

namespace strata {
STRATA_HD float hd_sqrt(float x) { return sqrtf(x); }
STRATA_HD float hd_fabs(float x) { return fabsf(x); }
#if defined(__CUDA_ARCH__)
STRATA_HD bool hd_signbit(float x) { return signbit(x); }
STRATA_HD bool hd_isfinite(float x) { return isfinite(x); }
#else
STRATA_HD bool hd_signbit(float x) { return __builtin_signbit(x); }
STRATA_HD bool hd_isfinite(float x) { return __builtin_isfinite(x); }
#endif
STRATA_HD float hd_select(bool m, float a, float b) { return m ? a : b; }
}  // namespace strata
