#include "optim/pg_codec.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>

#include "optim/q8_book.h"
#include "optim/q8_codec.h"
#include "runtime/thread_pool.h"

namespace strata::optim {

namespace {

constexpr int64_t kBlock = q8::kBlock;
// Blocks handled per inner round of Encode: add, quantize, subtract while the values sit in L2.
constexpr int64_t kEncodeBlocks = 32;

std::string FloatText(float v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

bool WellFormed(const Q8Tensor& q) {
  return q.codes.size() == q.n && static_cast<int64_t>(q.absmax.size()) == q8::NumBlocks(static_cast<int64_t>(q.n));
}

void ForBlocks(int64_t n, ThreadPool* pool, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool) pool->ParallelFor(n, kBlock, fn); else fn(0, n);
}

}  // namespace

uint64_t Q8Bytes(uint64_t n) { return n + 4 * static_cast<uint64_t>(q8::NumBlocks(static_cast<int64_t>(n))); }

Status ValidateQ8Tensor(const Q8Tensor& q, uint64_t n, std::string_view what) {
  const std::string w(what);
  if (q.n != n) return Status::InvalidArgument(w + ": " + std::to_string(q.n) + " values, want " + std::to_string(n));
  if (q.codes.size() != n)
    return Status::InvalidArgument(w + ": " + std::to_string(q.codes.size()) + " codes for " + std::to_string(n) +
                                   " values");
  const int64_t nb = q8::NumBlocks(static_cast<int64_t>(n));
  if (static_cast<int64_t>(q.absmax.size()) != nb)
    return Status::InvalidArgument(w + ": " + std::to_string(q.absmax.size()) + " absmax entries, want " +
                                   std::to_string(nb) + " (one per block of 256)");
  for (int64_t b = 0; b < nb; ++b) {
    const float a = q.absmax[b];
    if (!(std::isfinite(a) && a >= 0.0f))
      return Status::InvalidArgument(w + ": absmax[" + std::to_string(b) + "] = " + FloatText(a) +
                                     " must be finite and >= 0");
  }
  return Status::Ok();
}

Status CheckFinite(std::span<const float> x, std::string_view what) {
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]))
      return Status::InvalidArgument(std::string(what) + "[" + std::to_string(i) + "] = " + FloatText(x[i]) +
                                     " is not finite");
  }
  return Status::Ok();
}

ErrorFeedbackEncoder::ErrorFeedbackEncoder(size_t n) : residual_(n, 0.0f) {}

void ErrorFeedbackEncoder::Reset() { std::fill(residual_.begin(), residual_.end(), 0.0f); }

void ErrorFeedbackEncoder::Encode(std::span<const float> x, Q8Tensor& out, ThreadPool* pool) {
  STRATA_CHECK(x.size() == residual_.size());
  const int64_t n = static_cast<int64_t>(x.size());
  out.n = static_cast<uint64_t>(n);
  out.codes.resize(n);
  out.absmax.resize(q8::NumBlocks(n));
  const float* book = q8::BookValues(q8::Book::kSigned);
  float* e = residual_.data();
  uint8_t* codes = out.codes.data();
  float* absmax = out.absmax.data();
  // Ranges start on block boundaries and each block is quantized whole, so the result does not
  // depend on how the pool cuts [0, n).
  ForBlocks(n, pool, [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; s += kEncodeBlocks * kBlock) {
      const int64_t t = std::min(hi, s + kEncodeBlocks * kBlock);
      for (int64_t i = s; i < t; ++i) e[i] = x[i] + e[i];  // y, in place
      const Status st = q8::QuantizeBlockwise(q8::Book::kSigned, std::span<const float>(e + s, t - s),
                                              std::span<uint8_t>(codes + s, t - s),
                                              std::span<float>(absmax + s / kBlock, q8::NumBlocks(t - s)));
      STRATA_CHECK(st.ok());  // sizes are ours
      for (int64_t i = s; i < t; ++i) e[i] = e[i] - q8::Decode(book, codes[i], absmax[i / kBlock]);
    }
  });
}

Status ErrorFeedbackEncoder::EncodeChecked(std::span<const float> x, Q8Tensor& out, ThreadPool* pool) {
  if (x.size() != residual_.size())
    return Status::InvalidArgument("encode: " + std::to_string(x.size()) + " values, the encoder holds " +
                                   std::to_string(residual_.size()));
  STRATA_RETURN_IF_ERROR(CheckFinite(x, "x"));
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i] + residual_[i]))
      return Status::InvalidArgument("x[" + std::to_string(i) + "] = " + FloatText(x[i]) + " plus residual " +
                                     FloatText(residual_[i]) + " overflows");
  }
  Encode(x, out, pool);
  return Status::Ok();
}

void DecodeQ8(const Q8Tensor& q, std::span<float> out, ThreadPool* pool) {
  STRATA_CHECK(WellFormed(q) && out.size() == q.n);
  // The library's dequantizer computes exactly book[code] * absmax at every SIMD level.
  const Status st = q8::DequantizeBlockwise(q8::Book::kSigned, q.codes, q.absmax, out, pool);
  STRATA_CHECK(st.ok());
}

void ApplyQ8Step(const Q8Tensor& q, std::span<float> theta, ThreadPool* pool) {
  STRATA_CHECK(WellFormed(q) && theta.size() == q.n);
  const float* book = q8::BookValues(q8::Book::kSigned);
  const uint8_t* codes = q.codes.data();
  const float* absmax = q.absmax.data();
  float* t = theta.data();
  // The product is rounded before the subtraction (the build has -ffp-contract=off), so this equals
  // DecodeQ8 then theta - out.
  ForBlocks(static_cast<int64_t>(q.n), pool, [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; s += kBlock) {
      const int64_t e = std::min(hi, s + kBlock);
      const float a = absmax[s / kBlock];
      for (int64_t i = s; i < e; ++i) t[i] = t[i] - q8::Decode(book, codes[i], a);
    }
  });
}

}  // namespace strata::optim
