// The CUDA kernels against the CPU oracles, bit for bit. They need a GPU: without one (as on the
// development machines) every test here skips and says why; the kernels still compile and link.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <bit>
#include <cstring>

#include "optim/adamw.h"
#include "optim/cuda/kernels.h"
#include "optim/q8_codec.h"
#include "runtime/cuda_device.h"
#include "tests/test_data.h"

namespace strata {
namespace {

#define SKIP_WITHOUT_GPU()                                                          \
  do {                                                                              \
    auto dev = cuda::DeviceDescription();                                           \
    if (!dev.ok()) GTEST_SKIP() << "GPU test skipped: " << dev.status().message();  \
  } while (0)

template <typename T>
struct DeviceArray {
  T* ptr = nullptr;
  size_t n;
  explicit DeviceArray(const std::vector<T>& host) : n(host.size()) {
    EXPECT_EQ(cudaMalloc(&ptr, std::max<size_t>(1, n) * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr, host.data(), n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceArray() { cudaFree(ptr); }
  std::vector<T> get() const {
    std::vector<T> out(n);
    EXPECT_EQ(cudaMemcpy(out.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
};

TEST(Cuda, DescribesTheDeviceOrSaysWhyNot) {
  auto dev = cuda::DeviceDescription();
  if (!dev.ok()) {
    EXPECT_TRUE(dev.status().IsUnavailable());
    GTEST_SKIP() << "GPU test skipped: " << dev.status().message();
  }
  std::printf("  device: %s\n", dev->c_str());
}

TEST(Cuda, QuantizeBlockwiseEqualsTheCpuRule) {
  SKIP_WITHOUT_GPU();
  for (int64_t n : {1, 255, 256, 257, 4099, 65537}) {
    for (q8::Book book : {q8::Book::kSigned, q8::Book::kUnsigned}) {
      auto x = strata::testing::HeavyTailed(n, n);
      if (book == q8::Book::kUnsigned)
        for (auto& e : x) e = e * e;
      std::vector<uint8_t> codes(n);
      std::vector<float> absmax(q8::NumBlocks(n));
      q8::QuantizeBlockwiseRef(book, x.data(), n, codes.data(), absmax.data());
      DeviceArray<float> dx(x), da(absmax);
      DeviceArray<uint8_t> dc(codes);
      ASSERT_TRUE(cuda::QuantizeBlockwise(book, dx.ptr, n, dc.ptr, da.ptr).ok());
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      EXPECT_EQ(dc.get(), codes) << n;
      EXPECT_EQ(da.get(), absmax) << n;
    }
  }
}

TEST(Cuda, EightBitStepOnZeroNanAndSubnormalBlocksEqualsTheCpuOracle) {
  SKIP_WITHOUT_GPU();
  const optim::AdamWConfig cfg{.lr = 1e-3, .weight_decay = 0.0};
  const int64_t n = 5 * 256 + 3;
  auto p = strata::testing::Gaussian(n, 3), rp = p;
  std::vector<uint8_t> mc(n, q8::kSignedZero), vc(n, q8::kUnsignedZero), rmc = mc, rvc = vc;
  std::vector<float> ma(q8::NumBlocks(n), 0.0f), va = ma, rma = ma, rva = ma;
  DeviceArray<float> dp(p), dma(ma), dva(va);
  DeviceArray<uint8_t> dmc(mc), dvc(vc);
  for (int step = 1; step <= 3; ++step) {
    std::vector<float> g(n);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t blk = i / 256;
      g[i] = blk == 0 ? 0.0f : blk == 1 ? 1e-39f : blk == 2 ? (i % 7 == 0 ? NAN : 1.0f) : blk == 3 ? 1e21f : 0.5f;
    }
    DeviceArray<float> dg(g);
    ASSERT_TRUE(cuda::AdamW8bitStep(cfg, step, dp.ptr, dg.ptr, dmc.ptr, dvc.ptr, dma.ptr, dva.ptr, n).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    optim::AdamW8bitStepRef(cfg, step, rp.data(), g.data(), rmc.data(), rvc.data(), rma.data(), rva.data(), n);
  }
  const auto gp = dp.get();
  EXPECT_EQ(std::memcmp(gp.data(), rp.data(), n * 4), 0);
  EXPECT_EQ(dmc.get(), rmc);
  EXPECT_EQ(dvc.get(), rvc);
  EXPECT_EQ(dma.get(), rma);
  EXPECT_EQ(dva.get(), rva);
}

TEST(Cuda, AdamWStepsEqualTheCpuOracles) {
  SKIP_WITHOUT_GPU();
  const optim::AdamWConfig cfg{.lr = 1e-3, .weight_decay = 0.01};
  for (int64_t n : {1, 257, 4099, 100003}) {
    auto p = strata::testing::Gaussian(n, 1), rp = p, q = p, rq = p;
    std::vector<float> m(n, 0.0f), v(n, 0.0f), rm = m, rv = v;
    std::vector<uint8_t> mc(n, q8::kSignedZero), vc(n, q8::kUnsignedZero), rmc = mc, rvc = vc;
    std::vector<float> ma(q8::NumBlocks(n), 0.0f), va = ma, rma = ma, rva = ma;
    DeviceArray<float> dp(p), dm(m), dv(v), dq(q), dma(ma), dva(va);
    DeviceArray<uint8_t> dmc(mc), dvc(vc);
    for (int step = 1; step <= 3; ++step) {
      auto g = strata::testing::HeavyTailed(n, 10 * step + n);
      if (n > 2) g[1] = NAN;
      DeviceArray<float> dg(g);
      ASSERT_TRUE(cuda::AdamWStep(cfg, step, dp.ptr, dg.ptr, dm.ptr, dv.ptr, n).ok());
      ASSERT_TRUE(cuda::AdamW8bitStep(cfg, step, dq.ptr, dg.ptr, dmc.ptr, dvc.ptr, dma.ptr, dva.ptr, n).ok());
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      optim::AdamWStepRef(cfg, step, rp.data(), g.data(), rm.data(), rv.data(), n);
      optim::AdamW8bitStepRef(cfg, step, rq.data(), g.data(), rmc.data(), rvc.data(), rma.data(), rva.data(), n);
    }
    const auto gp = dp.get(), gq = dq.get();
    EXPECT_EQ(std::memcmp(gp.data(), rp.data(), n * 4), 0) << "fp32 AdamW n=" << n;
    EXPECT_EQ(std::memcmp(gq.data(), rq.data(), n * 4), 0) << "8-bit AdamW n=" << n;
    EXPECT_EQ(dmc.get(), rmc);
    EXPECT_EQ(dvc.get(), rvc);
    EXPECT_EQ(dma.get(), rma);
    EXPECT_EQ(dva.get(), rva);
  }
}

}  // namespace
}  // namespace strata
