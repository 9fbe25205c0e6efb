// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014):
// strata's one source of reproducible random numbers. Weight initialisation, batch sampling and
// synthetic benchmark data all draw from it, so a seed means the same numbers on every machine.
#pragma once

#include <cstdint>

namespace strata {

inline constexpr uint64_t kSplitMixGamma = 0x9E3779B97F4A7C15ull;

// The output for state x: a bijection of 64-bit words that mixes every input bit into every
// output bit (also a good stateless hash).
inline uint64_t SplitMix(uint64_t x) {
  x += kSplitMixGamma;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The next number of the stream whose state is s (and advances s).
inline uint64_t SplitMixNext(uint64_t& s) {
  const uint64_t z = SplitMix(s);
  s += kSplitMixGamma;
  return z;
}

// Uniform in (0, 1): 53 random bits, never 0 (so log(u) is finite).
inline double Uniform01(uint64_t& s) { return (static_cast<double>(SplitMixNext(s) >> 11) + 0.5) * 0x1.0p-53; }

}  // namespace strata
