// Exhaustive proof that every fast encoder equals the reference search rule (EncodeRef) on all
// 2^32 float32 inputs (so on every float in [-1, 1] and on everything else: NaN, inf, denormals),
// for both code books, the optimizer's sign fix-up rule, and every SIMD level this CPU runs. Labelled "slow" in CTest (about a
// minute on two cores); run it alone with `ctest --test-dir build -L slow` or directly.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "optim/q8_codec.h"

using namespace strata;
using namespace strata::q8;

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (argc > 1) threads = std::max(1, std::atoi(argv[1]));
  const auto levels = SimdLevelsAvailable();
  const uint64_t kTotal = 1ull << 32, kChunk = 1ull << 20;
  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<uint64_t> mismatches{0}, next{0};
  std::atomic<uint64_t> in_unit{0};
  auto worker = [&] {
    std::vector<float> x(kChunk);
    std::vector<uint8_t> ref(kChunk), got(kChunk);
    for (;;) {
      const uint64_t c = next.fetch_add(1);
      if (c >= kTotal / kChunk) return;
      for (uint64_t i = 0; i < kChunk; ++i) {
        const uint32_t bits = static_cast<uint32_t>(c * kChunk + i);
        std::memcpy(&x[i], &bits, 4);
      }
      uint64_t unit = 0;
      for (uint64_t i = 0; i < kChunk; ++i) unit += (x[i] >= -1.0f && x[i] <= 1.0f);
      in_unit += unit;
      // Three rules: the signed and unsigned books, and the signed book with the optimizer's sign
      // fix-up folded in (defined for non-NaN inputs; NaN encodes to 0 under every rule).
      // The optimizer's specialized encoders are checked on every input their assumption admits:
      // m's (sign fix-up, never NaN) on all non-NaN floats, v's (never negative) on every float
      // with the sign bit clear and on every NaN.
      struct Rule {
        Book book;
        Encoding enc;
        Assume assume;
        const char* name;
      };
      for (const Rule& rule : {Rule{Book::kSigned, Encoding::kPlain, Assume::kNothing, "signed"},
                               Rule{Book::kUnsigned, Encoding::kPlain, Assume::kNothing, "unsigned"},
                               Rule{Book::kSigned, Encoding::kSignFixup, Assume::kNothing, "signed+fixup"},
                               Rule{Book::kSigned, Encoding::kSignFixup, Assume::kFinite, "signed+fixup, finite m"},
                               Rule{Book::kUnsigned, Encoding::kPlain, Assume::kNonNegative, "unsigned, non-negative v"}}) {
        const float* b = BookValues(rule.book);
        for (uint64_t i = 0; i < kChunk; ++i)
          ref[i] = rule.enc == Encoding::kSignFixup && x[i] == x[i] ? EncodeRefFixup(b, x[i]) : EncodeRef(b, x[i]);
        auto admitted = [&](uint64_t i) {
          if (rule.assume == Assume::kFinite) return x[i] == x[i];
          if (rule.assume == Assume::kNonNegative) return x[i] != x[i] || !std::signbit(x[i]);
          return true;
        };
        for (SimdLevel level : levels) {
          EncodeArrayAssuming(rule.book, rule.enc, rule.assume, x.data(), kChunk, got.data(), level);
          if (std::memcmp(ref.data(), got.data(), kChunk) != 0) {
            for (uint64_t i = 0; i < kChunk; ++i) {
              if (ref[i] != got[i] && admitted(i) && mismatches.fetch_add(1) < 20) {
                uint32_t bits;
                std::memcpy(&bits, &x[i], 4);
                std::fprintf(stderr, "MISMATCH rule=%s level=%s x=%a (0x%08x): ref %d, fast %d\n", rule.name,
                             std::string(SimdLevelName(level)).c_str(), x[i], bits, ref[i], got[i]);
              }
            }
          }
        }
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string names;
  for (SimdLevel l : levels) names += std::string(names.empty() ? "" : ", ") + std::string(SimdLevelName(l));
  std::printf("q8 exhaustive: %llu float32 inputs (%llu of them in [-1, 1]) x 5 rules (signed, unsigned, signed+fixup; the optimizer's finite-m and non-negative-v encoders on the inputs they admit) x {%s}: %llu mismatches, %.1f s\n",
              static_cast<unsigned long long>(kTotal), static_cast<unsigned long long>(in_unit.load()), names.c_str(),
              static_cast<unsigned long long>(mismatches.load()), secs);
  if (mismatches.load() == 0) {
    std::printf("1 passed, 0 failed\n");
    return 0;
  }
  std::printf("0 passed, 1 failed\n");
  return 1;
}
