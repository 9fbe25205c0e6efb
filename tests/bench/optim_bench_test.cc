// The optimizer benchmark produces every figure the docs and the peer script read, with sane
// values, and refuses bad options with a message naming them.
#include "bench/optim_bench.h"

#include <gtest/gtest.h>

namespace strata::bench {
namespace {

TEST(OptimBench, ReportsEveryFigureOnATinyRun) {
  OptimBenchOptions opt;
  opt.params = 4099;  // awkward: a partial last block
  opt.threads = 2;
  opt.steps = 2;
  opt.warmup = 1;
  opt.verbose = false;
  opt.triad_min_elems = 1 << 16;
  auto r = RunOptimBench(opt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const char* key : {"adamw_fp32_params_per_s", "adamw8bit_params_per_s", "triad_GBps",
                          "adamw_fp32_roofline_fraction", "adamw8bit_roofline_fraction"}) {
    ASSERT_TRUE(r->contains(key)) << key;
    EXPECT_GT((*r)[key].get<double>(), 0.0) << key;
  }
  EXPECT_DOUBLE_EQ((*r)["state_bytes_per_param_8bit"].get<double>(), (2.0 * 4099 + 8.0 * 17) / 4099);
  EXPECT_LE((*r)["state_bytes_per_param_8bit"].get<double>(), 2.04);
  EXPECT_EQ((*r)["params"].get<int64_t>(), 4099);
  EXPECT_NE(FormatOptimBench(*r).find("AdamW 8-bit"), std::string::npos);
}

TEST(OptimBench, BadOptionsAreNamed) {
  OptimBenchOptions opt;
  opt.verbose = false;
  opt.params = 0;
  auto r = RunOptimBench(opt);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("--params"), std::string::npos);
  opt.params = 1000;
  opt.steps = 0;
  r = RunOptimBench(opt);
  EXPECT_NE(r.status().message().find("--steps"), std::string::npos);
}

TEST(OptimBench, RefusesARunLargerThanMemory) {
  OptimBenchOptions opt;
  opt.verbose = false;
  opt.params = int64_t{1} << 40;  // 34 TiB
  auto r = RunOptimBench(opt);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsOutOfMemory()) << r.status().ToString();
  EXPECT_NE(r.status().message().find("GiB"), std::string::npos);
}

}  // namespace
}  // namespace strata::bench
