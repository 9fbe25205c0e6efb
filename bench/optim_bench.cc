#include "bench/optim_bench.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <new>
#include <system_error>
#include <vector>

#include "optim/adamw.h"
#include "optim/q8_book.h"
#include "runtime/sysinfo.h"
#include "runtime/thread_pool.h"

namespace strata::bench {

namespace {

// A page-aligned array that is not zero-filled by the constructor: first touch happens in
// parallel, by the threads that will use it.
template <typename T>
struct Buffer {
  T* data = nullptr;
  int64_t n = 0;
  explicit Buffer(int64_t count) : n(count) {
    data = static_cast<T*>(std::aligned_alloc(4096, std::max<int64_t>(4096, (count * sizeof(T) + 4095) / 4096 * 4096)));
    if (!data) throw std::bad_alloc();
  }
  ~Buffer() { std::free(data); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  std::span<T> span() { return {data, static_cast<size_t>(n)}; }
};

double Seconds(std::function<void()> fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t k = v.size() / 2;
  return v.size() % 2 ? v[k] : 0.5 * (v[k - 1] + v[k]);
}

// Deterministic pseudo-normal values (sum of uniforms), filled in parallel.
void FillGaussian(ThreadPool& pool, float* x, int64_t n, uint64_t seed, float scale) {
  pool.ParallelFor(n, 1 << 16, [&](int64_t b, int64_t e) {
    uint64_t s = seed ^ (0x9e3779b97f4a7c15ull * static_cast<uint64_t>(b + 1));
    for (int64_t i = b; i < e; ++i) {
      float acc = -2.0f;
      for (int k = 0; k < 4; ++k) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        acc += static_cast<float>(s >> 40) * (1.0f / 16777216.0f);
      }
      x[i] = acc * 1.7320508f * scale;
    }
  });
}

template <typename T>
void FillConst(ThreadPool& pool, T* x, int64_t n, T value) {
  pool.ParallelFor(n, 1 << 16, [&](int64_t b, int64_t e) { std::fill(x + b, x + e, value); });
}


// Size of the last-level cache in bytes (0 when unknown), from sysfs.
double LastLevelCacheBytes() {
  double best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    std::string v;
    if (!(f >> v) || v.empty()) continue;
    double x = std::atof(v.c_str());
    if (v.back() == 'K') x *= 1024;
    if (v.back() == 'M') x *= 1024 * 1024;
    best = std::max(best, x);
  }
  return best;
}



}  // namespace

namespace {
Result<nlohmann::json> RunOptimBenchUnchecked(const OptimBenchOptions& opt);
}

// Allocation and thread start-up failures become Status values, never escaping exceptions.
Result<nlohmann::json> RunOptimBench(const OptimBenchOptions& opt) {
  try {
    return RunOptimBenchUnchecked(opt);
  } catch (const std::bad_alloc&) {
    return Status::OutOfMemory("--params " + std::to_string(opt.params) + ": could not allocate the benchmark's memory");
  } catch (const std::system_error& e) {
    return Status::Unavailable("--threads " + std::to_string(opt.threads) + ": cannot start the threads (" +
                               e.what() + ")");
  }
}

namespace {
Result<nlohmann::json> RunOptimBenchUnchecked(const OptimBenchOptions& opt) {
  if (opt.params < 1) return Status::InvalidArgument("--params must be >= 1 (got " + std::to_string(opt.params) + ")");
  if (opt.steps < 1) return Status::InvalidArgument("--steps must be >= 1 (got " + std::to_string(opt.steps) + ")");
  if (opt.warmup < 0) return Status::InvalidArgument("--warmup must be >= 0 (got " + std::to_string(opt.warmup) + ")");
  if (opt.triad_min_elems < 1)
    return Status::InvalidArgument("triad_min_elems must be >= 1 (got " + std::to_string(opt.triad_min_elems) + ")");
  if (opt.threads > 1024)
    return Status::InvalidArgument("--threads must be <= 1024 (got " + std::to_string(opt.threads) + ")");
  if (opt.threads < 0) return Status::InvalidArgument("--threads must be >= 0 (got " + std::to_string(opt.threads) + ")");
  const int64_t n = opt.params;
  // Memory is a budget: say what the run needs and refuse up front if the machine has less.
  const int64_t tn_need = std::max<int64_t>(n, opt.triad_min_elems);
  const double need = tn_need * 12.0 + n * 16.0 + n * 6.0 + q8::NumBlocks(n) * 8.0;
  if (const double avail = static_cast<double>(MemInfoBytes("MemAvailable:")); avail > 0 && need > 0.9 * avail) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "--params %lld needs %.2f GiB, but only %.2f GiB is available; use fewer params",
                  static_cast<long long>(n), need / (1 << 30), avail / (1 << 30));
    return Status::OutOfMemory(buf);
  }
  ThreadPool pool(opt.threads);
  auto say = [&](const char* fmt, auto... args) {
    if (opt.verbose) {
      std::fprintf(stderr, fmt, args...);
      std::fflush(stderr);
    }
  };
  const SimdLevel simd = opt.simd > SimdLevelSupported() ? SimdLevelSupported() : opt.simd;
  say("bench optim: %lld params, %d threads, %s kernels, %d warm-up + %d timed steps\n",
      static_cast<long long>(n), pool.size(), std::string(SimdLevelName(simd)).c_str(), opt.warmup, opt.steps);

  const double gib = 1024.0 * 1024.0 * 1024.0;
  say("  memory: %.2f GiB (triad %.2f, fp32 AdamW %.2f, 8-bit AdamW %.2f)\n",
      (std::max<int64_t>(n, opt.triad_min_elems) * 12.0 + n * 16.0 + n * 6.0) / gib, std::max<int64_t>(n, opt.triad_min_elems) * 12.0 / gib,
      n * 16.0 / gib, n * 6.0 / gib);

  nlohmann::json r;
  r["date"] = TodayUtc();
  r["cpu"] = CpuModelName();
  r["params"] = n;
  r["threads"] = pool.size();
  r["simd"] = std::string(SimdLevelName(simd));
  r["steps"] = opt.steps;
  r["warmup"] = opt.warmup;
  r["llc_bytes"] = LastLevelCacheBytes();

  // All three measurements run interleaved, one of each per round, so a noisy neighbour or a
  // frequency change hits them alike; each figure is the median over the timed rounds.
  const int64_t tn = std::max<int64_t>(n, opt.triad_min_elems);
  Buffer<float> ta(tn), tb(tn), tc(tn);
  FillConst(pool, ta.data, tn, 0.0f);
  FillConst(pool, tb.data, tn, 1.0f);
  FillConst(pool, tc.data, tn, 2.0f);
  Buffer<float> p(n), g(n), m(n), v(n);
  FillGaussian(pool, p.data, n, 1, 0.02f);
  FillGaussian(pool, g.data, n, 2, 1e-3f);
  FillConst(pool, m.data, n, 0.0f);
  FillConst(pool, v.data, n, 0.0f);
  const int64_t nb = q8::NumBlocks(n);
  Buffer<float> p8(n);
  Buffer<uint8_t> mc(n), vc(n);
  Buffer<float> ma(nb), va(nb);
  FillGaussian(pool, p8.data, n, 1, 0.02f);
  FillConst<uint8_t>(pool, mc.data, n, q8::kSignedZero);
  FillConst<uint8_t>(pool, vc.data, n, q8::kUnsignedZero);
  FillConst(pool, ma.data, nb, 0.0f);
  FillConst(pool, va.data, nb, 0.0f);
  const optim::Q8Moments st8{mc.span(), vc.span(), ma.span(), va.span()};
  optim::AdamWConfig cfg;  // torch's AdamW defaults (lr 1e-3, betas 0.9/0.999, eps 1e-8, wd 1e-2)

  std::vector<double> t_triad, t_fp32, t_8bit;
  for (int round = 1; round <= opt.warmup + opt.steps; ++round) {
    // Triad: a = b + s*c, 12 bytes per element (STREAM's count), with streaming stores so the
    // bytes counted are the bytes moved (no read-for-ownership of a[]). SSE2 is in every x86-64,
    // and bandwidth, not vector width, limits it.
    const float sc = 0.5f + round;
    const double tt = Seconds([&] {
      pool.ParallelFor(tn, 4096, [&](int64_t lo, int64_t hi) {
        const __m128 vs = _mm_set1_ps(sc);
        int64_t i = lo;
        for (; i + 4 <= hi; i += 4)
          _mm_stream_ps(ta.data + i, _mm_add_ps(_mm_load_ps(tb.data + i), _mm_mul_ps(vs, _mm_load_ps(tc.data + i))));
        for (; i < hi; ++i) ta.data[i] = tb.data[i] + sc * tc.data[i];
        _mm_sfence();
      });
    });
    Status s32, s8;
    const double t32 = Seconds([&] { s32 = optim::AdamWStep(cfg, round, p.span(), g.span(), m.span(), v.span(), &pool, simd); });
    const double t8 = Seconds([&] { s8 = optim::AdamW8bitStep(cfg, round, p8.span(), g.span(), st8, &pool, simd); });
    if (!s32.ok()) return s32;
    if (!s8.ok()) return s8;
    if (round > opt.warmup) {
      t_triad.push_back(tt);
      t_fp32.push_back(t32);
      t_8bit.push_back(t8);
    }
    say("  round %d/%d: triad %.1f GB/s, fp32 AdamW %.1f ms, 8-bit AdamW %.1f ms%s\n", round, opt.warmup + opt.steps,
        12.0 * tn / tt / 1e9, t32 * 1e3, t8 * 1e3, round <= opt.warmup ? " (warm-up)" : "");
  }
  const double triad = 12.0 * tn / Median(t_triad);
  r["triad_GBps"] = triad / 1e9;
  {
    const double t = Median(t_fp32);
    r["adamw_fp32_step_ms"] = t * 1e3;
    r["adamw_fp32_params_per_s"] = n / t;
    r["adamw_fp32_bytes_per_param"] = 28;  // reads p, g, m, v; writes p, m, v
    r["adamw_fp32_roofline_fraction"] = (n / t) / (triad / 28.0);
    r["state_bytes_per_param_fp32"] = 8;
  }
  {
    const double t = Median(t_8bit);
    const double bytes = 16.0 + 16.0 / q8::kBlock;  // p, g, m8, v8 + read and write two absmax per block
    r["adamw8bit_step_ms"] = t * 1e3;
    r["adamw8bit_params_per_s"] = n / t;
    r["adamw8bit_bytes_per_param"] = bytes;
    r["adamw8bit_roofline_fraction"] = (n / t) / (triad / bytes);
    r["state_bytes_per_param_8bit"] = static_cast<double>(2 * n + 8 * nb) / static_cast<double>(n);
  }
  r["adamw8bit_over_fp32"] = r["adamw8bit_params_per_s"].get<double>() / r["adamw_fp32_params_per_s"].get<double>();
  return r;
}
}  // namespace

std::string FormatOptimBench(const nlohmann::json& r) {
  char buf[2048];
  std::snprintf(buf, sizeof buf,
                "strata bench optim  %s  %s\n"
                "  params %lld, threads %d, kernels %s\n"
                "  memory bandwidth (triad)   %8.2f GB/s\n"
                "                              params/s   ms/step  bytes/param  of roofline\n"
                "  AdamW fp32                %10.3g  %8.2f  %11.2f  %10.0f%%\n"
                "  AdamW 8-bit               %10.3g  %8.2f  %11.2f  %10.0f%%\n"
                "  8-bit / fp32 speed        %10.2fx\n"
                "  state bytes/param (m+v)   fp32 %.2f, 8-bit %.4f\n",
                r["date"].get<std::string>().c_str(), r["cpu"].get<std::string>().c_str(),
                static_cast<long long>(r["params"].get<int64_t>()), r["threads"].get<int>(),
                r["simd"].get<std::string>().c_str(), r["triad_GBps"].get<double>(),
                r["adamw_fp32_params_per_s"].get<double>(), r["adamw_fp32_step_ms"].get<double>(),
                r["adamw_fp32_bytes_per_param"].get<double>(), 100 * r["adamw_fp32_roofline_fraction"].get<double>(),
                r["adamw8bit_params_per_s"].get<double>(), r["adamw8bit_step_ms"].get<double>(),
                r["adamw8bit_bytes_per_param"].get<double>(), 100 * r["adamw8bit_roofline_fraction"].get<double>(),
                r["adamw8bit_over_fp32"].get<double>(), r["state_bytes_per_param_fp32"].get<double>(),
                r["state_bytes_per_param_8bit"].get<double>());
  std::string out = buf;
  const double llc = r.value("llc_bytes", 0.0);
  if (llc > 0 && r["params"].get<int64_t>() * 16.0 < 4 * llc)
    out += "  note: fp32 state (" + std::to_string(r["params"].get<int64_t>() * 16 / (1 << 20)) +
           " MiB) is within 4x of the " + std::to_string(static_cast<int64_t>(llc) / (1 << 20)) +
           " MiB last-level cache: figures\n  partly measure the cache; use a larger --params for memory-bound figures\n";
  return out;
}

}  // namespace strata::bench
