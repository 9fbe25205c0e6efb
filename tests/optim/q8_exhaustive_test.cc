// Exhaustive proof that every fast encoder equals the reference search rule (EncodeRef) on all
// 2^32 float32 inputs (so on every float in [-1, 1] and on everything else: NaN, inf, denormals),
// for both code books, the optimizer's sign fix-up rule, and every SIMD level this CPU runs. Labelled "slow" in CTest (about a
// minute on two cores); run it alone with `ctest --test-dir build -L slow` or directly.
//
// A sanitizer build (STRATA_SANITIZED, about 10x slower) sweeps a reduced set chosen where an
// encoder can go wrong: the fast encoders read one table entry per bucket of 2^16 consecutive
// floats (optim/q8_codec.h), so the sweep takes the first and last 512 floats of every bucket (all
// 65,536 of them: both signs, denormals, inf and NaN included) and the 4,096 floats around every
// decision point (the midpoint of two adjacent book values) of both books; about 1/60 of 2^32.
// Any build runs that sweep with `q8_exhaustive_test THREADS reduced`.
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

namespace {

// A set of float32 bit patterns as sorted, disjoint ranges [lo, hi).
struct Sweep {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  std::vector<uint64_t> offset;  // offset[r]: patterns before range r
  uint64_t total = 0;

  void Add(int64_t lo, int64_t hi) {
    lo = std::max<int64_t>(lo, 0);
    hi = std::min<int64_t>(hi, int64_t{1} << 32);
    if (lo < hi) ranges.emplace_back(lo, hi);
  }
  void Finish() {
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<uint64_t, uint64_t>> merged;
    for (const auto& r : ranges) {
      if (!merged.empty() && r.first <= merged.back().second)
        merged.back().second = std::max(merged.back().second, r.second);
      else
        merged.push_back(r);
    }
    ranges = std::move(merged);
    for (const auto& r : ranges) {
      offset.push_back(total);
      total += r.second - r.first;
    }
  }
  // The pattern at flat index i (i < total).
  uint32_t At(uint64_t i, size_t& hint) const {
    while (hint + 1 < ranges.size() && offset[hint + 1] <= i) ++hint;
    return static_cast<uint32_t>(ranges[hint].first + (i - offset[hint]));
  }
  size_t RangeOf(uint64_t i) const {
    return static_cast<size_t>(std::upper_bound(offset.begin(), offset.end(), i) - offset.begin()) - 1;
  }
};

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

Sweep MakeSweep(bool reduced) {
  Sweep s;
  if (!reduced) {
    s.Add(0, int64_t{1} << 32);
  } else {
    constexpr int64_t kBucket = 1 << 16, kEdge = 512, kAround = 2048;
    for (int64_t b = 0; b < (int64_t{1} << 32); b += kBucket) {
      s.Add(b, b + kEdge);
      s.Add(b + kBucket - kEdge, b + kBucket);
    }
    for (Book book : {Book::kSigned, Book::kUnsigned}) {
      const float* v = BookValues(book);
      for (int j = 0; j + 1 < 256; ++j) {
        const int64_t mid = Bits((v[j] + v[j + 1]) * 0.5f);
        s.Add(mid - kAround, mid + kAround);
      }
    }
  }
  s.Finish();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (argc > 1) threads = std::max(1, std::atoi(argv[1]));
  const auto levels = SimdLevelsAvailable();
#ifdef STRATA_SANITIZED
  const bool reduced = true;
#else
  const bool reduced = argc > 2 && std::strcmp(argv[2], "reduced") == 0;
#endif
  const Sweep sweep = MakeSweep(reduced);
  const uint64_t kTotal = sweep.total, kChunk = 1ull << 20;
  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<uint64_t> mismatches{0}, next{0};
  std::atomic<uint64_t> in_unit{0};
  auto worker = [&] {
    std::vector<float> x(kChunk);
    std::vector<uint8_t> ref(kChunk), got(kChunk);
    for (;;) {
      const uint64_t c = next.fetch_add(1);
      if (c * kChunk >= kTotal) return;
      const uint64_t n = std::min(kChunk, kTotal - c * kChunk);
      size_t hint = sweep.RangeOf(c * kChunk);
      for (uint64_t i = 0; i < n; ++i) {
        const uint32_t bits = sweep.At(c * kChunk + i, hint);
        std::memcpy(&x[i], &bits, 4);
      }
      uint64_t unit = 0;
      for (uint64_t i = 0; i < n; ++i) unit += (x[i] >= -1.0f && x[i] <= 1.0f);
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
        for (uint64_t i = 0; i < n; ++i)
          ref[i] = rule.enc == Encoding::kSignFixup && x[i] == x[i] ? EncodeRefFixup(b, x[i]) : EncodeRef(b, x[i]);
        auto admitted = [&](uint64_t i) {
          if (rule.assume == Assume::kFinite) return x[i] == x[i];
          if (rule.assume == Assume::kNonNegative) return x[i] != x[i] || !std::signbit(x[i]);
          return true;
        };
        for (SimdLevel level : levels) {
          EncodeArrayAssuming(rule.book, rule.enc, rule.assume, x.data(), static_cast<int64_t>(n), got.data(), level);
          if (std::memcmp(ref.data(), got.data(), n) != 0) {
            for (uint64_t i = 0; i < n; ++i) {
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
  std::printf("q8 %s: %llu float32 inputs (%llu of them in [-1, 1]) x 5 rules (signed, unsigned, signed+fixup; the optimizer's finite-m and non-negative-v encoders on the inputs they admit) x {%s}: %llu mismatches, %.1f s\n",
              reduced ? "reduced sweep (bucket edges, decision points)" : "exhaustive", static_cast<unsigned long long>(kTotal), static_cast<unsigned long long>(in_unit.load()), names.c_str(),
              static_cast<unsigned long long>(mismatches.load()), secs);
  if (mismatches.load() == 0) {
    std::printf("1 passed, 0 failed\n");
    return 0;
  }
  std::printf("0 passed, 1 failed\n");
  return 1;
}
