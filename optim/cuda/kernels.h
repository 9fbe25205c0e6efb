// CUDA wrappers of the optimizer math. Each kernel is a thin loop around the same inline
// host/device functions the CPU runs (optim/q8_codec.h, optim/adamw.h), compiled with --fmad=false
// so a GPU step is bitwise identical to the CPU oracle. Pointers are device pointers; `stream` is a
// cudaStream_t (nullptr: the default stream). Calls are asynchronous; errors from the launch come
// back as a Status, errors from the kernel at the next synchronization.
#pragma once

#include <cstdint>

#include "optim/adamw.h"
#include "optim/q8_book.h"
#include "runtime/status.h"

namespace strata::cuda {

[[nodiscard]] Status QuantizeBlockwise(q8::Book book, const float* x, int64_t n, uint8_t* codes, float* absmax,
                                       void* stream = nullptr);
[[nodiscard]] Status DequantizeBlockwise(q8::Book book, const uint8_t* codes, const float* absmax, int64_t n,
                                         float* out, void* stream = nullptr);
[[nodiscard]] Status AdamWStep(const optim::AdamWConfig& cfg, int64_t step, float* p, const float* g, float* m,
                               float* v, int64_t n, void* stream = nullptr);
[[nodiscard]] Status AdamW8bitStep(const optim::AdamWConfig& cfg, int64_t step, float* p, const float* g,
                                   uint8_t* m_codes, uint8_t* v_codes, float* m_absmax, float* v_absmax, int64_t n,
                                   void* stream = nullptr);

}  // namespace strata::cuda
