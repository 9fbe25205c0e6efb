// CUDA wrappers of AdamW: fp32 (grid-stride over elements) and 8-bit (one thread block per quant
// block). The math is AdamWUpdate / AdamW8Update from optim/adamw.h, the same as the CPU's.
#include "optim/adamw.h"
#include "optim/cuda/common.cuh"
#include "optim/cuda/kernels.h"
#include "optim/q8_codec.h"

namespace strata::cuda {

namespace {

__global__ void AdamWKernel(optim::AdamWScalars s, float* __restrict__ p, const float* __restrict__ g,
                            float* __restrict__ m, float* __restrict__ v, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float pi = p[i], mi = m[i], vi = v[i];
    optim::AdamWUpdate(pi, g[i], mi, vi, s);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

__global__ void AdamW8Kernel(optim::AdamW8Scalars s, const float* __restrict__ books, float* __restrict__ p,
                             const float* __restrict__ g, uint8_t* __restrict__ mc, uint8_t* __restrict__ vc,
                             float* __restrict__ ma, float* __restrict__ va, int64_t n) {
  __shared__ float sb[256], ub[256], scratch[256];
  sb[threadIdx.x] = books[threadIdx.x];
  ub[threadIdx.x] = books[256 + threadIdx.x];
  __syncthreads();
  const int64_t blk = blockIdx.x;
  const int64_t i = blk * q8::kBlock + threadIdx.x;
  const bool live = i < n;
  float m = 0.0f, v = 0.0f;
  if (live) {
    m = q8::Decode(sb, mc[i], ma[blk]);
    v = q8::Decode(ub, vc[i], va[blk]);
    float pi = p[i];
    optim::AdamW8Update(pi, g[i], m, v, s);
    p[i] = pi;
  }
  const float nm = BlockMax256(q8::AbsmaxAccumulate(0.0f, m), scratch);
  const float nv = BlockMax256(q8::AbsmaxAccumulate(0.0f, v), scratch);
  if (threadIdx.x == 0) {
    ma[blk] = nm;
    va[blk] = nv;
  }
  if (live) {
    const uint8_t c = q8::EncodeRef(sb, m * q8::InvScaleSafe(nm));
    mc[i] = q8::SignFixup(sb, c, m);
    vc[i] = q8::EncodeRef(ub, v * q8::InvScaleSafe(nv));
  }
}

}  // namespace

Status AdamWStep(const optim::AdamWConfig& cfg, int64_t step, float* p, const float* g, float* m, float* v,
                 int64_t n, void* stream) {
  STRATA_RETURN_IF_ERROR(optim::ValidateAdamW(cfg));
  if (step < 1) return Status::InvalidArgument("step must be >= 1 (got " + std::to_string(step) + ")");
  if (n < 0) return Status::InvalidArgument("n must be >= 0 (got " + std::to_string(n) + ")");
  if (n == 0) return Status::Ok();
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65535);
  AdamWKernel<<<blocks, threads, 0, static_cast<cudaStream_t>(stream)>>>(optim::MakeAdamWScalars(cfg, step), p, g,
                                                                        m, v, n);
  return LaunchStatus("AdamWStep");
}

Status AdamW8bitStep(const optim::AdamWConfig& cfg, int64_t step, float* p, const float* g, uint8_t* m_codes,
                     uint8_t* v_codes, float* m_absmax, float* v_absmax, int64_t n, void* stream) {
  STRATA_RETURN_IF_ERROR(optim::ValidateAdamW(cfg));
  if (step < 1) return Status::InvalidArgument("step must be >= 1 (got " + std::to_string(step) + ")");
  STRATA_RETURN_IF_ERROR(CheckBlockCount(n));
  if (n == 0) return Status::Ok();
  const float* books[2];
  STRATA_RETURN_IF_ERROR(DeviceBooks(books));
  AdamW8Kernel<<<q8::NumBlocks(n), q8::kBlock, 0, static_cast<cudaStream_t>(stream)>>>(
      optim::MakeAdamW8Scalars(cfg, step), books[0], p, g, m_codes, v_codes, m_absmax, v_absmax, n);
  return LaunchStatus("AdamW8bitStep");
}

}  // namespace strata::cuda
