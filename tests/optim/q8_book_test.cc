#include "optim/q8_book.h"

#include <gtest/gtest.h>

#include <bit>

#include "tests/test_data.h"

namespace strata::q8 {
namespace {

using strata::testing::FileExists;
using strata::testing::GoldenPath;
using strata::testing::ReadBookFile;
using strata::testing::TestDataPath;

TEST(Q8Book, SortedWithExactZeroAndOne) {
  for (Book b : {Book::kSigned, Book::kUnsigned}) {
    const float* v = BookValues(b);
    for (int i = 0; i < 255; ++i) ASSERT_LT(v[i], v[i + 1]) << "book " << int(b) << " index " << i;
    EXPECT_EQ(v[255], 1.0f);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(v) % 64, 0u);
  }
  const float* s = BookValues(Book::kSigned);
  EXPECT_EQ(std::bit_cast<uint32_t>(s[kSignedZero]), 0u);  // +0
  EXPECT_EQ(s[0], -0.99296875f);                           // no -1 in the signed book
  for (int i = 0; i < 127; ++i) EXPECT_LT(s[i], 0.0f);
  EXPECT_EQ(BookValues(Book::kUnsigned)[kUnsignedZero], 0.0f);
}

void ExpectSameBook(Book b, const std::string& path) {
  const auto ref = ReadBookFile(path);
  ASSERT_EQ(ref.size(), 256u) << path << " is missing or malformed";
  const float* v = BookValues(b);
  for (int i = 0; i < 256; ++i)
    EXPECT_EQ(std::bit_cast<uint32_t>(v[i]), std::bit_cast<uint32_t>(ref[i])) << path << " index " << i;
}

// The golden books come from bitsandbytes' own create_dynamic_map (lab/peers/golden.py).
TEST(Q8Book, EqualsBitsandbytesGoldenBooks) {
  ExpectSameBook(Book::kSigned, GoldenPath("q8map_signed.txt"));
  ExpectSameBook(Book::kUnsigned, GoldenPath("q8map_unsigned.txt"));
}

// The torch 1.13 books (tests/data/q8map_torch113) were rendered with its float32 linspace; today's
// bitsandbytes on torch 2.x rounds 42 signed and 43 unsigned entries differently, by 1 or 2 ulp.
// Pin that: same order, same exact 0 and 1, every entry within 2 ulp.
TEST(Q8Book, WithinTwoUlpOfTheTorch113Books) {
  for (Book b : {Book::kSigned, Book::kUnsigned}) {
    const auto ref = ReadBookFile(
        TestDataPath(b == Book::kSigned ? "q8map_torch113/dynamic_signed.txt" : "q8map_torch113/dynamic_unsigned.txt"));
    ASSERT_EQ(ref.size(), 256u);
    const float* v = BookValues(b);
    int differ = 0;
    for (int i = 0; i < 256; ++i) {
      const int64_t d = static_cast<int64_t>(std::bit_cast<uint32_t>(v[i])) - std::bit_cast<uint32_t>(ref[i]);
      EXPECT_LE(std::abs(d), 2) << "index " << i;
      differ += d != 0;
    }
    EXPECT_EQ(differ, b == Book::kSigned ? 42 : 43);
  }
}

}  // namespace
}  // namespace strata::q8
