// Shared pieces of the CUDA wrappers: the code books in constant memory and a block max.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "optim/q8_book.h"
#include "runtime/status.h"

namespace strata::cuda {

// Copies both books to the device once (per process). Returns the device pointers: [0] signed,
// [1] unsigned, 256 floats each.
Status DeviceBooks(const float** books);

inline Status LaunchStatus(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return Status::Unavailable(std::string(what) + ": " + cudaGetErrorString(err));
  return Status::Ok();
}

// n values in blocks of 256, one thread block each: n must be >= 0 and the grid must fit.
inline Status CheckBlockCount(int64_t n) {
  if (n < 0) return Status::InvalidArgument("n must be >= 0 (got " + std::to_string(n) + ")");
  if (q8::NumBlocks(n) > 0x7fffffff)
    return Status::InvalidArgument("n = " + std::to_string(n) + " needs more than 2^31 - 1 blocks of 256; split it");
  return Status::Ok();
}

// Max over a 256-thread block with fmaxf's NaN rule (same result as the CPU's sequential max,
// since max is order-independent on non-NaN values). Every thread gets the result.
__device__ __forceinline__ float BlockMax256(float x, float* scratch /* [256] */) {
  scratch[threadIdx.x] = x;
  __syncthreads();
  for (int s = 128; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      const float o = scratch[threadIdx.x + s];
      if (o > scratch[threadIdx.x]) scratch[threadIdx.x] = o;
    }
    __syncthreads();
  }
  const float r = scratch[0];
  __syncthreads();
  return r;
}

}  // namespace strata::cuda
