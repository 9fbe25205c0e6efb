// CUDA wrappers of the block codec: one thread block per quant block of 256 values.
#include <mutex>
#include <string>

#include "optim/cuda/common.cuh"
#include "optim/cuda/kernels.h"
#include "optim/q8_codec.h"

namespace strata::cuda {

namespace {

__global__ void QuantizeKernel(const float* __restrict__ book_g, const float* __restrict__ x, int64_t n,
                               uint8_t* __restrict__ codes, float* __restrict__ absmax) {
  __shared__ float book[256];
  __shared__ float scratch[256];
  book[threadIdx.x] = book_g[threadIdx.x];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * q8::kBlock + threadIdx.x;
  const float xi = i < n ? x[i] : 0.0f;
  const float amax = BlockMax256(q8::AbsmaxAccumulate(0.0f, xi), scratch);  // also syncs book
  if (threadIdx.x == 0) absmax[blockIdx.x] = amax;
  if (i < n) codes[i] = q8::EncodeRef(book, xi * q8::InvScale(amax));
}

__global__ void DequantizeKernel(const float* __restrict__ book_g, const uint8_t* __restrict__ codes,
                                 const float* __restrict__ absmax, int64_t n, float* __restrict__ out) {
  __shared__ float book[256];
  book[threadIdx.x] = book_g[threadIdx.x];
  __syncthreads();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * q8::kBlock + threadIdx.x;
  if (i < n) out[i] = q8::Decode(book, codes[i], absmax[blockIdx.x]);
}

}  // namespace

Status DeviceBooks(const float** books) {
  // One copy per device, made the first time a kernel runs on it.
  constexpr int kMaxDevices = 64;
  static float* dev[kMaxDevices] = {};
  static std::mutex mu;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return LaunchStatus("cudaGetDevice");
  if (device < 0 || device >= kMaxDevices)
    return Status::Unavailable("CUDA device " + std::to_string(device) + " is beyond the " +
                               std::to_string(kMaxDevices) + " strata supports");
  std::lock_guard<std::mutex> lock(mu);
  if (!dev[device]) {
    float* p = nullptr;
    if (cudaMalloc(&p, 2 * 256 * sizeof(float)) != cudaSuccess) return LaunchStatus("cudaMalloc(code books)");
    if (cudaMemcpy(p, q8::BookValues(q8::Book::kSigned), 256 * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess ||
        cudaMemcpy(p + 256, q8::BookValues(q8::Book::kUnsigned), 256 * sizeof(float), cudaMemcpyHostToDevice) !=
            cudaSuccess) {
      cudaFree(p);
      return LaunchStatus("copying the code books to the device");
    }
    dev[device] = p;
  }
  books[0] = dev[device];
  books[1] = dev[device] + 256;
  return Status::Ok();
}

Status QuantizeBlockwise(q8::Book book, const float* x, int64_t n, uint8_t* codes, float* absmax, void* stream) {
  STRATA_RETURN_IF_ERROR(CheckBlockCount(n));
  if (n == 0) return Status::Ok();
  const float* books[2];
  STRATA_RETURN_IF_ERROR(DeviceBooks(books));
  QuantizeKernel<<<q8::NumBlocks(n), q8::kBlock, 0, static_cast<cudaStream_t>(stream)>>>(
      books[static_cast<int>(book)], x, n, codes, absmax);
  return LaunchStatus("QuantizeBlockwise");
}

Status DequantizeBlockwise(q8::Book book, const uint8_t* codes, const float* absmax, int64_t n, float* out,
                           void* stream) {
  STRATA_RETURN_IF_ERROR(CheckBlockCount(n));
  if (n == 0) return Status::Ok();
  const float* books[2];
  STRATA_RETURN_IF_ERROR(DeviceBooks(books));
  DequantizeKernel<<<q8::NumBlocks(n), q8::kBlock, 0, static_cast<cudaStream_t>(stream)>>>(
      books[static_cast<int>(book)], codes, absmax, n, out);
  return LaunchStatus("DequantizeBlockwise");
}

}  // namespace strata::cuda
