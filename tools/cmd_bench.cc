// `strata bench optim` and `strata info`.
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "bench/optim_bench.h"
#include "runtime/cpu_features.h"
#if defined(STRATA_HAVE_CUDA)
#include "runtime/cuda_device.h"
#endif
#include "tools/commands.h"

namespace strata::tools {

namespace {

struct BenchOptimFlags {
  bench::OptimBenchOptions opt;
  std::string json_path;
  std::string simd;
  bool quiet = false;
};

int RunBenchOptim(BenchOptimFlags& f) {
  if (!f.simd.empty()) {
    if (f.simd == "scalar") f.opt.simd = SimdLevel::kScalar;
    else if (f.simd == "avx2") f.opt.simd = SimdLevel::kAvx2;
    else if (f.simd == "avx512") f.opt.simd = SimdLevel::kAvx512;
    if (f.opt.simd > SimdLevelSupported()) {
      std::fprintf(stderr, "strata bench optim: --simd %s is not supported by this CPU (best: %s)\n", f.simd.c_str(),
                   std::string(SimdLevelName(SimdLevelSupported())).c_str());
      return 2;
    }
  }
  f.opt.verbose = !f.quiet;
  auto r = bench::RunOptimBench(f.opt);
  if (!r.ok()) {
    std::fprintf(stderr, "strata bench optim: %s\n", r.status().ToString().c_str());
    return 2;
  }
  std::fputs(bench::FormatOptimBench(*r).c_str(), stdout);
  return f.json_path.empty() ? 0 : WriteJsonFigures("strata bench optim", f.json_path, *r);
}

// "--params 0" -> "--params: must be an integer >= 1 (got 0)"
CLI::Validator AtLeast(long long lo) {
  return CLI::Validator(
      [lo](std::string& in) -> std::string {
        try {
          size_t used = 0;
          const long long v = std::stoll(in, &used);
          if (used == in.size() && v >= lo) return {};
        } catch (const std::exception&) {
        }
        return "must be an integer >= " + std::to_string(lo) + " (got " + in + ")";
      },
      "INT>=" + std::to_string(lo));
}

}  // namespace

int WriteJsonFigures(const char* command, const std::string& path, const nlohmann::json& figures) {
  std::ofstream out(path);
  out << figures.dump(2) << "\n";
  if (!out) {
    std::fprintf(stderr, "%s: cannot write --json %s\n", command, path.c_str());
    return 1;
  }
  std::printf("  figures written to %s\n", path.c_str());
  return 0;
}

void AddBenchCommand(CLI::App& app, int* exit_code) {
  auto* bench = app.add_subcommand("bench", "Measure strata's kernels beside the machine's limits");
  bench->require_subcommand(1);
  auto flags = std::make_shared<BenchOptimFlags>();
  auto* optim = bench->add_subcommand(
      "optim",
      "fp32 AdamW and 8-bit AdamW steps over N parameters, with the memory bandwidth (triad)\n"
      "measured in the same run, and each result as a fraction of its memory roofline.\n"
      "Example: strata bench optim --params 100000000 --threads 2 --json optim.json");
  optim->add_option("--params", flags->opt.params, "Number of parameters (the run needs about 34 bytes of memory per parameter; checked up front)")
      ->capture_default_str()->check(AtLeast(1));
  optim->add_option("--threads", flags->opt.threads, "CPU threads (0: all hardware threads)")
      ->capture_default_str()->check(AtLeast(0));
  optim->add_option("--steps", flags->opt.steps, "Timed steps; the median is reported")
      ->capture_default_str()->check(AtLeast(1));
  optim->add_option("--warmup", flags->opt.warmup, "Untimed steps before timing")
      ->capture_default_str()->check(AtLeast(0));
  optim->add_option("--simd", flags->simd, "Cap the kernels: scalar, avx2 or avx512 (default: best available)")
      ->check(CLI::IsMember({"scalar", "avx2", "avx512"}));
  optim->add_option("--json", flags->json_path, "Also write the figures to this JSON file");
  optim->add_flag("--quiet", flags->quiet, "No progress on stderr");
  optim->callback([flags, exit_code] { *exit_code = RunBenchOptim(*flags); });
  AddBenchOffloadCommand(*bench, exit_code);
  AddBenchTrainCommand(*bench, exit_code);
  AddBenchSwarmCommand(*bench, exit_code);
  AddBenchLoadCommand(*bench, exit_code);
}

void AddInfoCommand(CLI::App& app, int* exit_code) {
  auto* info = app.add_subcommand("info", "What this machine offers strata: SIMD kernels, CUDA");
  info->callback([exit_code] {
    std::printf("strata 0.1.0\n");
    std::printf("  SIMD kernels: %s supported, %s active (STRATA_SIMD caps it)\n",
                std::string(SimdLevelName(SimdLevelSupported())).c_str(),
                std::string(SimdLevelName(SimdLevelActive())).c_str());
#if defined(STRATA_HAVE_CUDA)
    auto dev = cuda::DeviceDescription();
    std::printf("  CUDA kernels: compiled in; device: %s\n",
                dev.ok() ? dev->c_str() : dev.status().message().c_str());
#else
    std::printf("  CUDA kernels: not compiled (no nvcc at build time)\n");
#endif
    *exit_code = 0;
  });
}

}  // namespace strata::tools
