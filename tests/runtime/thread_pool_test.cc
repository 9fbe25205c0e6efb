#include "runtime/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace strata {
namespace {

TEST(SplitRange, CoversEverythingOnGrainBoundaries) {
  for (int64_t n : {0, 1, 255, 256, 257, 1000, 4099, 65537}) {
    for (int64_t grain : {1, 7, 256}) {
      for (int parts : {1, 2, 3, 8}) {
        const auto r = SplitRange(n, grain, parts);
        ASSERT_EQ(static_cast<int>(r.size()), parts);
        int64_t expect = 0;
        for (const auto& [b, e] : r) {
          EXPECT_EQ(b, expect);
          EXPECT_LE(b, e);
          if (e != n) {
            EXPECT_EQ(e % grain, 0) << n << " " << grain << " " << parts;
          }
          expect = e;
        }
        EXPECT_EQ(expect, n);
      }
    }
  }
}

TEST(ThreadPool, EveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {1, 255, 256, 257, 10007}) {
      std::vector<std::atomic<int>> hits(n);
      for (int rep = 0; rep < 3; ++rep) {
        pool.ParallelFor(n, 256, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[i]++;
        });
      }
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 3) << "threads " << threads << " n " << n;
    }
  }
}

TEST(ThreadPool, ZeroWorkIsANoOp) {
  ThreadPool pool(2);
  bool called = false;
  pool.ParallelFor(0, 256, [&](int64_t, int64_t) { called = true; });
  EXPECT_FALSE(called);
}

TEST(ThreadPool, AnExceptionInAnyRangeReachesTheCallerAfterAllRangesEnd) {
  ThreadPool pool(3);
  for (int thrower = 0; thrower < 3; ++thrower) {
    std::atomic<int> finished{0};
    const auto ranges = SplitRange(3000, 1, 3);
    try {
      pool.ParallelFor(3000, 1, [&](int64_t b, int64_t) {
        if (b == ranges[thrower].first) throw std::runtime_error("range failed");
        finished++;
      });
      FAIL() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "range failed");
    }
    EXPECT_EQ(finished.load(), 2);
  }
  // Still usable afterwards.
  std::atomic<int64_t> sum{0};
  pool.ParallelFor(1000, 1, [&](int64_t b, int64_t e) { sum += e - b; });
  EXPECT_EQ(sum.load(), 1000);
}

TEST(ThreadPoolDeathTest, NestedCallIsABug) {
  EXPECT_DEATH(
      {
        ThreadPool pool(2);
        pool.ParallelFor(1000, 1, [&](int64_t, int64_t) { pool.ParallelFor(10, 1, [](int64_t, int64_t) {}); });
      },
      "check failed");
}

}  // namespace
}  // namespace strata
