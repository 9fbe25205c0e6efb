// The 8-bit block format of optimizer state: a block of kBlock values shares one fp32 absmax;
// each value is an 8-bit index into a 256-entry code book. m uses the signed book, v the
// unsigned one. See docs/formats/q8-blocks.md.
#pragma once

#include <cstdint>

namespace strata::q8 {

inline constexpr int kBlock = 256;  // values per quant block (one absmax each)

enum class Book : uint8_t {
  kSigned = 0,    // first moment m: values in [-1, 1), 127 is exactly 0
  kUnsigned = 1,  // second moment v: values in [0, 1], 0 is exactly 0
};

// The 256 float32 values of a code book, ascending, 64-byte aligned. Valid for the program's life.
const float* BookValues(Book book);

// Index of the exact zero in each book.
inline constexpr uint8_t kSignedZero = 127;
inline constexpr uint8_t kUnsignedZero = 0;

// Number of quant blocks that cover n values.
constexpr int64_t NumBlocks(int64_t n) { return (n + kBlock - 1) / kBlock; }

}  // namespace strata::q8
