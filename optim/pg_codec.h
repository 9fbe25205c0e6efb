// The 8-bit codec of the swarm: pseudo-gradients (peer -> aggregator) and outer steps
// (aggregator -> peers) travel as optim's signed block code (q8::Book::kSigned, q8::kBlock = 256
// values per block, one fp32 absmax each): 1 + 4/256 bytes per value, 0.254x of fp32.
//
// Error feedback: the encoder keeps the residual e (fp32, n values) of what it failed to send,
//   y = x + e ; codes = Q(y) ; e = y - decode(codes)
// so the running sum of decoded values tracks the running sum of inputs to within one residual
// (sum_t decode_t = sum_t x_t - e_T), instead of drifting by a random walk of rounding errors.
//
// Decode is one float multiply, book[code] * absmax, on every replica (q8::Decode), so every peer
// that applies the same Q8Tensor gets bit-identical weights.
//
// Input domain: Encode requires finite x with x + e finite. The quantizer on non-finite input is
// defined but useless (NaN takes code 0, i.e. -absmax; an infinity makes its block's absmax
// infinite and the block decode to NaN), and it would poison the residual for good; untrusted input
// goes through EncodeChecked, which refuses it and changes nothing. A block whose absmax is below
// 2^-128 (1/absmax overflows) decodes its zeros as -absmax: an error below 3e-39 that the residual
// carries to the next round.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "runtime/status.h"

namespace strata {
class ThreadPool;
}

namespace strata::optim {

struct Q8Tensor {
  std::vector<uint8_t> codes;  // (n) indices into the signed book
  std::vector<float> absmax;   // (q8::NumBlocks(n)) per-block scale
  uint64_t n = 0;              // number of values
};

// Bytes a Q8Tensor of n values takes on the wire (codes + 4 per absmax).
uint64_t Q8Bytes(uint64_t n);

// InvalidArgument naming `what` unless q holds exactly n values (codes n, absmax NumBlocks(n)) and
// every absmax is finite and >= 0 (so every decoded value is finite).
[[nodiscard]] Status ValidateQ8Tensor(const Q8Tensor& q, uint64_t n, std::string_view what);

class ErrorFeedbackEncoder {
 public:
  explicit ErrorFeedbackEncoder(size_t n);  // residual starts at 0

  size_t size() const { return residual_.size(); }

  // Encodes x + e into `out` (resized to n values) and keeps the new residual. x.size() must be n
  // (a bug otherwise). Requires finite input (see above). Bitwise the same for any thread count.
  void Encode(std::span<const float> x, Q8Tensor& out, ThreadPool* pool = nullptr);
  // The same after checking x and x + e for finiteness: InvalidArgument naming the first bad index
  // (and touching neither the residual nor `out`) when one is not finite, or when x has the wrong size.
  [[nodiscard]] Status EncodeChecked(std::span<const float> x, Q8Tensor& out, ThreadPool* pool = nullptr);

  std::span<const float> residual() const { return residual_; }
  std::span<float> residual_mut() { return residual_; }  // to restore a saved residual
  void Reset();                                          // residual back to 0

 private:
  std::vector<float> residual_;  // e, (n)
};

// out[i] = book[codes[i]] * absmax[i / 256]. q must be well-formed and out.size() == q.n (bugs
// otherwise; check wire input with ValidateQ8Tensor first).
void DecodeQ8(const Q8Tensor& q, std::span<float> out, ThreadPool* pool = nullptr);

// theta[i] -= decode(q)[i], fused, bit-identical to DecodeQ8 followed by the subtraction.
void ApplyQ8Step(const Q8Tensor& q, std::span<float> theta, ThreadPool* pool = nullptr);

// InvalidArgument "<what>[i] = nan is not finite" for the first non-finite value.
[[nodiscard]] Status CheckFinite(std::span<const float> x, std::string_view what);

}  // namespace strata::optim
