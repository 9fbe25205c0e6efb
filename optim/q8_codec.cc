#include "optim/q8_codec.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <string>

#include "runtime/thread_pool.h"

namespace strata::q8 {

void QuantizeBlockwiseRef(Book book, const float* x, int64_t n, uint8_t* codes, float* absmax) {
  const float* b = BookValues(book);
  for (int64_t start = 0, blk = 0; start < n; start += kBlock, ++blk) {
    const int64_t end = std::min<int64_t>(n, start + kBlock);
    float amax = 0.0f;
    for (int64_t i = start; i < end; ++i) amax = AbsmaxAccumulate(amax, x[i]);
    absmax[blk] = amax;
    const float inv = InvScale(amax);
    for (int64_t i = start; i < end; ++i) codes[i] = EncodeRef(b, x[i] * inv);
  }
}

void DequantizeBlockwiseRef(Book book, const uint8_t* codes, const float* absmax, int64_t n, float* out) {
  const float* b = BookValues(book);
  for (int64_t i = 0; i < n; ++i) out[i] = Decode(b, codes[i], absmax[i / kBlock]);
}

namespace {

// The rule a table encodes, at one float.
uint8_t Rule(const float* book, Encoding enc, float x) {
  return enc == Encoding::kSignFixup ? EncodeRefFixup(book, x) : EncodeRef(book, x);
}

void BuildFastTable(const float* book, Encoding enc, FastTable* t) {
  std::fill(std::begin(t->entry), std::end(t->entry), 0u);
  for (uint32_t neg = 0; neg < 2; ++neg) {
    for (uint32_t b = 0; b <= FastTable::kHi; ++b) {
      const uint32_t a0 = b << 16, a1 = a0 | 0xffffu;
      auto at = [&](uint32_t a) { return Rule(book, enc, std::bit_cast<float>(a | (neg << 31))); };
      const uint8_t c0 = at(a0), c1 = at(a1);
      uint32_t entry = (uint32_t{c0} << 24) | (uint32_t{c0} << 16);  // no decision point
      if (c0 != c1) {
        const uint8_t want = static_cast<uint8_t>(neg ? c0 - 1 : c0 + 1);
        if (c1 != want || b == FastTable::kHi) {
          std::fprintf(stderr, "strata: code book does not fit the fast encoder (bucket 0x%x)\n", b);
          std::abort();
        }
        uint32_t lo = a0, hi = a1;  // at(lo) == c0, at(hi) == c1
        while (hi - lo > 1) {
          const uint32_t mid = lo + (hi - lo) / 2;
          if (at(mid) == c0) lo = mid; else hi = mid;
        }
        entry = (uint32_t{c0} << 24) | (uint32_t{c1} << 16) | (hi & 0xffffu);  // hi > a0: never 0
      }
      t->entry[b | (neg ? FastTable::kNegBit : 0u)] = entry;
    }
  }
}

struct FastTables {
  FastTable t[3];  // signed plain, signed with fix-up, unsigned
  FastTables() {
    BuildFastTable(BookValues(Book::kSigned), Encoding::kPlain, &t[0]);
    BuildFastTable(BookValues(Book::kSigned), Encoding::kSignFixup, &t[1]);
    BuildFastTable(BookValues(Book::kUnsigned), Encoding::kPlain, &t[2]);
  }
};

void EncodeArrayScalar(const FastTable& t, const float* x, int64_t n, uint8_t* codes) {
  for (int64_t i = 0; i < n; ++i) codes[i] = EncodeFast(t, x[i]);
}

void QuantizeBlocksScalar(const FastTable& t, const float* x, int64_t n, uint8_t* codes, float* absmax) {
  for (int64_t start = 0, blk = 0; start < n; start += kBlock, ++blk) {
    const int64_t end = std::min<int64_t>(n, start + kBlock);
    float amax = 0.0f;
    for (int64_t i = start; i < end; ++i) amax = AbsmaxAccumulate(amax, x[i]);
    absmax[blk] = amax;
    const float inv = InvScale(amax);
    for (int64_t i = start; i < end; ++i) codes[i] = EncodeFast(t, x[i] * inv);
  }
}

// Quantizes [0, n) with whole blocks on the SIMD kernel and the ragged tail on the scalar one.
void QuantizeRange(Book book, const float* x, int64_t n, uint8_t* codes, float* absmax, SimdLevel level) {
  const FastTable& t = FastTableFor(book);
  const int64_t full = n / kBlock;
  switch (level) {
    case SimdLevel::kAvx512: internal::QuantizeBlocksAvx512(t, x, full, codes, absmax); break;
    case SimdLevel::kAvx2: internal::QuantizeBlocksAvx2(t, x, full, codes, absmax); break;
    case SimdLevel::kScalar: QuantizeBlocksScalar(t, x, full * kBlock, codes, absmax); break;
  }
  const int64_t done = full * kBlock;
  if (done < n) QuantizeBlocksScalar(t, x + done, n - done, codes + done, absmax + full);
}

void DequantizeRange(Book book, const uint8_t* codes, const float* absmax, int64_t n, float* out, SimdLevel level) {
  const float* b = BookValues(book);
  const int64_t full = n / kBlock;
  int64_t done = 0;
  if (level == SimdLevel::kAvx512) {
    internal::DequantizeBlocksAvx512(book, codes, absmax, full, out);
    done = full * kBlock;
  } else if (level == SimdLevel::kAvx2) {
    internal::DequantizeBlocksAvx2(book, codes, absmax, full, out);
    done = full * kBlock;
  }
  for (int64_t i = done; i < n; ++i) out[i] = Decode(b, codes[i], absmax[i / kBlock]);
}

SimdLevel Clamp(SimdLevel level) { return level > SimdLevelSupported() ? SimdLevelSupported() : level; }

}  // namespace

const FastTable& FastTableFor(Book book, Encoding enc) {
  static const FastTables* tables = new FastTables();  // built once (about 1 ms), never freed
  if (book == Book::kUnsigned) return tables->t[2];  // v is never negative: no fix-up to fold
  return tables->t[enc == Encoding::kSignFixup ? 1 : 0];
}

const BookBytePlanes& BytePlanesFor(Book book) {
  static const BookBytePlanes* planes = [] {
    auto* p = new BookBytePlanes[2];
    for (int b = 0; b < 2; ++b) {
      const float* v = BookValues(static_cast<Book>(b));
      for (int i = 0; i < 256; ++i) {
        const uint32_t bits = std::bit_cast<uint32_t>(v[i]);
        for (int k = 0; k < 4; ++k) p[b].plane[k][i] = static_cast<uint8_t>(bits >> (8 * k));
      }
    }
    return p;
  }();
  return planes[static_cast<int>(book)];
}

void EncodeArray(Book book, const float* x, int64_t n, uint8_t* codes, SimdLevel level, Encoding enc) {
  const FastTable& t = FastTableFor(book, enc);
  level = Clamp(level);
  const int64_t vec = n / 16 * 16;
  switch (level) {
    case SimdLevel::kAvx512: internal::EncodeArrayAvx512(t, x, vec, codes); break;
    case SimdLevel::kAvx2: internal::EncodeArrayAvx2(t, x, vec, codes); break;
    case SimdLevel::kScalar: EncodeArrayScalar(t, x, vec, codes); break;
  }
  EncodeArrayScalar(t, x + vec, n - vec, codes + vec);
}

void EncodeArrayAssuming(Book book, Encoding enc, Assume assume, const float* x, int64_t n, uint8_t* codes,
                         SimdLevel level) {
  // Only the AVX-512 kernels specialize on the assumption; the others encode any input.
  if (Clamp(level) != SimdLevel::kAvx512 || assume == Assume::kNothing) {
    EncodeArray(book, x, n, codes, level, enc);
    return;
  }
  const FastTable& t = FastTableFor(book, enc);
  const int64_t vec = n / 16 * 16;
  internal::EncodeArrayAvx512Assuming(t, assume, x, vec, codes);
  EncodeArrayScalar(t, x + vec, n - vec, codes + vec);
}

Status QuantizeBlockwise(Book book, std::span<const float> x, std::span<uint8_t> codes,
                         std::span<float> absmax, ThreadPool* pool, SimdLevel level) {
  const int64_t n = static_cast<int64_t>(x.size());
  if (codes.size() != x.size())
    return Status::InvalidArgument("codes: " + std::to_string(codes.size()) + " entries for " +
                                   std::to_string(n) + " values");
  if (static_cast<int64_t>(absmax.size()) != NumBlocks(n))
    return Status::InvalidArgument("absmax: " + std::to_string(absmax.size()) + " entries, want " +
                                   std::to_string(NumBlocks(n)) + " (one per block of 256)");
  level = Clamp(level);
  auto run = [&](int64_t b, int64_t e) {
    QuantizeRange(book, x.data() + b, e - b, codes.data() + b, absmax.data() + b / kBlock, level);
  };
  if (pool) pool->ParallelFor(n, kBlock, run); else run(0, n);
  return Status::Ok();
}

Status DequantizeBlockwise(Book book, std::span<const uint8_t> codes, std::span<const float> absmax,
                           std::span<float> out, ThreadPool* pool, SimdLevel level) {
  const int64_t n = static_cast<int64_t>(out.size());
  if (codes.size() != out.size())
    return Status::InvalidArgument("codes has " + std::to_string(codes.size()) + " entries but out has " +
                                   std::to_string(n) + " values");
  if (static_cast<int64_t>(absmax.size()) != NumBlocks(n))
    return Status::InvalidArgument("absmax: " + std::to_string(absmax.size()) + " entries, want " +
                                   std::to_string(NumBlocks(n)) + " (one per block of 256)");
  level = Clamp(level);
  auto run = [&](int64_t b, int64_t e) {
    DequantizeRange(book, codes.data() + b, absmax.data() + b / kBlock, e - b, out.data() + b, level);
  };
  if (pool) pool->ParallelFor(n, kBlock, run); else run(0, n);
  return Status::Ok();
}

}  // namespace strata::q8
