#include "optim/q8_codec.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "runtime/thread_pool.h"
#include "tests/test_data.h"

namespace strata::q8 {
namespace {

using strata::testing::GoldenPath;

const std::vector<int64_t> kAwkwardSizes = {1, 2, 15, 16, 17, 255, 256, 257, 511, 769, 1009, 4099, 65537};

std::string Name(Book b) { return b == Book::kSigned ? "signed" : "unsigned"; }

// Every fast encoder (scalar table, AVX2, AVX-512 where the CPU has them) against the search rule.
void ExpectEncodersMatchRef(Book book, const std::vector<float>& x) {
  const float* b = BookValues(book);
  std::vector<uint8_t> ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) ref[i] = EncodeRef(b, x[i]);
  for (SimdLevel level : SimdLevelsAvailable()) {
    std::vector<uint8_t> got(x.size(), 0xAB);
    EncodeArray(book, x.data(), static_cast<int64_t>(x.size()), got.data(), level);
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(int(got[i]), int(ref[i])) << Name(book) << " " << SimdLevelName(level) << " x=" << x[i] << " bits 0x"
                                          << std::hex << std::bit_cast<uint32_t>(x[i]);
  }
}

TEST(Q8Encode, TiesGoToTheEvenIndex) {
  for (Book book : {Book::kSigned, Book::kUnsigned}) {
    const float* b = BookValues(book);
    for (int j = 0; j < 255; ++j) {
      const float mid = (b[j] + b[j + 1]) * 0.5f;
      const int even = (j % 2 == 0) ? j : j + 1;
      EXPECT_EQ(EncodeRef(b, mid), even) << Name(book) << " midpoint of " << j << " and " << j + 1;
      EXPECT_EQ(EncodeRef(b, std::nextafter(mid, -2.0f)), j);
      EXPECT_EQ(EncodeRef(b, std::nextafter(mid, 2.0f)), j + 1);
      EXPECT_EQ(EncodeRef(b, b[j]), j);  // every book value maps to itself
    }
    EXPECT_EQ(EncodeRef(b, b[255]), 255);
  }
}

TEST(Q8Encode, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const float* s = BookValues(Book::kSigned);
  const float* u = BookValues(Book::kUnsigned);
  EXPECT_EQ(EncodeRef(s, nan), 0);  // the CUDA rule: every comparison with NaN is false
  EXPECT_EQ(EncodeRef(u, nan), 0);
  EXPECT_EQ(EncodeRef(s, inf), 255);
  EXPECT_EQ(EncodeRef(s, -inf), 0);
  EXPECT_EQ(EncodeRef(s, 0.0f), kSignedZero);
  EXPECT_EQ(EncodeRef(s, -0.0f), kSignedZero);
  EXPECT_EQ(EncodeRef(u, 0.0f), 0);
  EXPECT_EQ(EncodeRef(s, 2.0f), 255);
  EXPECT_EQ(EncodeRef(u, -1.0f), 0);
  std::vector<float> special = {nan, -nan, inf, -inf, 0.0f, -0.0f, 1e-45f, -1e-45f, 1e-38f, 1.0f, -1.0f,
                                std::nextafter(1.0f, 2.0f), 3e38f, -3e38f,
                                std::bit_cast<float>(0x7f800001u), std::bit_cast<float>(0xffc00000u)};
  ExpectEncodersMatchRef(Book::kSigned, special);
  ExpectEncodersMatchRef(Book::kUnsigned, special);
}

TEST(Q8Encode, FastEqualsRefOnRandomBitsAndMidpoints) {
  std::mt19937 rng(7);
  std::vector<float> x;
  for (int i = 0; i < 300000; ++i) x.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int i = 0; i < 300000; ++i) x.push_back(u(rng));
  for (Book book : {Book::kSigned, Book::kUnsigned}) {
    const float* b = BookValues(book);
    for (int j = 0; j < 255; ++j) {
      float mid = (b[j] + b[j + 1]) * 0.5f;
      for (int k = 0; k < 3; ++k) {
        x.push_back(mid);
        mid = std::nextafter(mid, 2.0f);
      }
      x.push_back(std::nextafter((b[j] + b[j + 1]) * 0.5f, -2.0f));
    }
  }
  ExpectEncodersMatchRef(Book::kSigned, x);
  ExpectEncodersMatchRef(Book::kUnsigned, x);
}

// Golden cases: codes and absmax from the CUDA rule run over bitsandbytes' own books
// (lab/peers/golden.py), including exact ties, zeros, denormals, huge values and NaN.
TEST(Q8Golden, QuantizeBlockwiseMatchesGoldenCodes) {
  const auto cases = strata::testing::ReadStanzas(GoldenPath("codec_cases.txt"));
  ASSERT_GE(cases.size(), 10u) << "golden file tests/data/golden/codec_cases.txt missing or short";
  ThreadPool pool(2);
  int checked = 0;
  for (const auto& c : cases) {
    ASSERT_EQ(c.header.size(), 3u);
    const std::string& name = c.header[0];
    const Book book = c.header[1] == "signed" ? Book::kSigned : Book::kUnsigned;
    const int64_t n = std::stoll(c.header[2]);
    const auto x = c.Floats("x");
    const auto want_absmax = c.Floats("absmax");
    const auto want_codes = c.Ints("codes");
    ASSERT_EQ(static_cast<int64_t>(x.size()), n) << name;
    ASSERT_EQ(static_cast<int64_t>(want_codes.size()), n) << name;
    ASSERT_EQ(static_cast<int64_t>(want_absmax.size()), NumBlocks(n)) << name;
    // Reference, then every SIMD level, one and two threads.
    std::vector<uint8_t> codes(n);
    std::vector<float> absmax(NumBlocks(n));
    QuantizeBlockwiseRef(book, x.data(), n, codes.data(), absmax.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(int(codes[i]), want_codes[i]) << name << " ref, index " << i;
    for (int64_t k = 0; k < NumBlocks(n); ++k)
      ASSERT_EQ(std::bit_cast<uint32_t>(absmax[k]), std::bit_cast<uint32_t>(want_absmax[k])) << name << " block " << k;
    for (SimdLevel level : SimdLevelsAvailable()) {
      for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
        std::vector<uint8_t> c2(n, 0xAB);
        std::vector<float> a2(NumBlocks(n), -1.0f);
        ASSERT_TRUE(QuantizeBlockwise(book, x, c2, a2, p, level).ok());
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(int(c2[i]), want_codes[i]) << name << " " << SimdLevelName(level) << " index " << i;
        for (int64_t k = 0; k < NumBlocks(n); ++k)
          ASSERT_EQ(std::bit_cast<uint32_t>(a2[k]), std::bit_cast<uint32_t>(want_absmax[k])) << name;
      }
    }
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(cases.size()));
}

// decode(encode(x)) is within half the gap to the neighbouring codes (times absmax) everywhere.
TEST(Q8Codec, RoundTripErrorWithinTheBooksSpacing) {
  for (Book book : {Book::kSigned, Book::kUnsigned}) {
    const float* b = BookValues(book);
    for (int64_t n : kAwkwardSizes) {
      std::vector<float> x = strata::testing::HeavyTailed(n, 11 + n);
      if (book == Book::kUnsigned)
        for (auto& e : x) e = e * e;
      std::vector<uint8_t> codes(n);
      std::vector<float> absmax(NumBlocks(n)), y(n);
      ASSERT_TRUE(QuantizeBlockwise(book, x, codes, absmax).ok());
      ASSERT_TRUE(DequantizeBlockwise(book, codes, absmax, y).ok());
      for (int64_t i = 0; i < n; ++i) {
        const float am = absmax[i / kBlock];
        const int c = codes[i];
        const float gap_lo = c > 0 ? b[c] - b[c - 1] : 0.0f, gap_hi = c < 255 ? b[c + 1] - b[c] : 0.0f;
        // Half the gap, plus the float32 roundings of x * (1 / absmax) and of book[c] * absmax
        // (each at most a few 2^-24 of absmax).
        const float bound = 0.5f * std::max(gap_lo, gap_hi) * am + 4.0f * std::ldexp(am, -24) + 1e-38f;
        ASSERT_LE(std::fabs(y[i] - x[i]), bound) << Name(book) << " n=" << n << " i=" << i << " x=" << x[i];
        if (x[i] == am) {
          ASSERT_EQ(y[i], x[i]);  // the block maximum is exact
        }
      }
    }
  }
}

TEST(Q8Codec, UnalignedSpansAndThreadCountsGiveTheSameBits) {
  ThreadPool pool(2);
  const int64_t n = 10007;
  std::vector<float> storage = strata::testing::Gaussian(n + 3, 5);
  std::span<const float> x(storage.data() + 3, n);  // 12-byte offset: not vector aligned
  std::vector<uint8_t> c1(n + 1), c2(n + 1);
  std::vector<float> a1(NumBlocks(n)), a2(NumBlocks(n));
  for (SimdLevel level : SimdLevelsAvailable()) {
    ASSERT_TRUE(QuantizeBlockwise(Book::kSigned, x, std::span(c1.data() + 1, n), a1, nullptr, level).ok());
    ASSERT_TRUE(QuantizeBlockwise(Book::kSigned, x, std::span(c2.data() + 1, n), a2, &pool, level).ok());
    EXPECT_EQ(c1, c2) << SimdLevelName(level);
    EXPECT_EQ(a1, a2);
    std::vector<float> y1(n + 1), y2(n + 1);
    ASSERT_TRUE(DequantizeBlockwise(Book::kSigned, std::span<const uint8_t>(c1.data() + 1, n), a1,
                                    std::span(y1.data() + 1, n), nullptr, level).ok());
    ASSERT_TRUE(DequantizeBlockwise(Book::kSigned, std::span<const uint8_t>(c1.data() + 1, n), a1,
                                    std::span(y2.data() + 1, n), &pool, SimdLevel::kScalar).ok());
    EXPECT_EQ(y1, y2);
  }
}

TEST(Q8Codec, BadSizesAreInvalidArgumentsNamingTheSpan) {
  std::vector<float> x(300);
  std::vector<uint8_t> codes(299);
  std::vector<float> absmax(2);
  Status s = QuantizeBlockwise(Book::kSigned, x, codes, absmax);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("codes"), std::string::npos) << s.ToString();
  codes.resize(300);
  absmax.resize(1);
  s = QuantizeBlockwise(Book::kSigned, x, codes, absmax);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("absmax"), std::string::npos) << s.ToString();
  s = DequantizeBlockwise(Book::kSigned, codes, absmax, x);
  EXPECT_TRUE(s.IsInvalidArgument());
}

TEST(Q8Codec, EmptyInputIsFine) {
  std::vector<float> x;
  std::vector<uint8_t> codes;
  std::vector<float> absmax;
  EXPECT_TRUE(QuantizeBlockwise(Book::kSigned, x, codes, absmax).ok());
}

}  // namespace
}  // namespace strata::q8
