// `strata bench optim`: fp32 AdamW and 8-bit AdamW steps over N parameters, beside the machine's
// memory bandwidth (a STREAM-style triad) measured in the same run, so every figure comes with
// its roofline. See docs/PERFORMANCE.md.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/cpu_features.h"
#include "runtime/status.h"

namespace strata::bench {

struct OptimBenchOptions {
  int64_t params = 100'000'000;
  int threads = 0;  // 0: all hardware threads
  int steps = 10;   // timed steps (the median is reported)
  int warmup = 3;   // untimed steps first
  SimdLevel simd = SimdLevelActive();
  bool verbose = true;  // progress on stderr
  int64_t triad_min_elems = int64_t{1} << 26;  // the triad streams at least this many floats (768 MB)
};

// Runs the benchmark and returns its figures (keys listed in docs/PERFORMANCE.md).
[[nodiscard]] Result<nlohmann::json> RunOptimBench(const OptimBenchOptions& opt);

// Human-readable summary of RunOptimBench's figures.
std::string FormatOptimBench(const nlohmann::json& r);

}  // namespace strata::bench
