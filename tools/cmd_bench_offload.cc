// `strata bench offload`: the offload engine over N parameters of state on disk, beside the
// disk's own best bandwidth measured in the same run.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "bench/offload_bench.h"
#include "runtime/trace.h"
#include "tools/commands.h"

namespace strata::tools {

namespace {
struct BenchOffloadFlags {
  bench::OffloadBenchOptions opt;
  std::string layout = "q8_master_mv";
  std::string json_path, trace_path;
  std::string order = "descending";
  bool quiet = false;
};

int RunBenchOffload(BenchOffloadFlags& f) {
  auto layout = offload::ParseLayout(f.layout);
  if (!layout.ok()) {
    std::fprintf(stderr, "strata bench offload: --%s\n", layout.status().message().c_str());
    return 2;
  }
  f.opt.layout = *layout;
  f.opt.verbose = !f.quiet;
  f.opt.ascending = f.order == "ascending";
  std::unique_ptr<Tracer> tracer;
  if (!f.trace_path.empty()) {
    tracer = std::make_unique<Tracer>();
    f.opt.tracer = tracer.get();
  }
  auto r = bench::RunOffloadBench(f.opt);
  if (!r.ok()) {
    std::fprintf(stderr, "strata bench offload: %s\n", r.status().ToString().c_str());
    return 2;
  }
  std::fputs(bench::FormatOffloadBench(*r).c_str(), stdout);
  if (tracer) {
    Status st = tracer->WriteJson(f.trace_path);
    if (!st.ok()) {
      std::fprintf(stderr, "strata bench offload: --trace: %s\n", st.ToString().c_str());
      return 1;
    }
    std::printf("  trace written to %s (open it in https://ui.perfetto.dev)\n", f.trace_path.c_str());
  }
  return f.json_path.empty() ? 0 : WriteJsonFigures("strata bench offload", f.json_path, *r);
}

std::string DefaultTmp() {
  const char* t = std::getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}
}  // namespace

void AddBenchOffloadCommand(CLI::App& bench, int* exit_code) {
  auto flags = std::make_shared<BenchOffloadFlags>();
  flags->opt.path = DefaultTmp();
  auto* cmd = bench.add_subcommand(
      "offload",
      "Optimizer steps over N parameters whose 8-bit state lives on disk, streamed through a fixed\n"
      "RAM budget by io_uring, beside the disk's own O_DIRECT read and write bandwidth probed in the\n"
      "same run. Gradients are made on the fly, so the run needs only the budget in memory, but\n"
      "the state file on disk (about 12 bytes per parameter for q8_master_mv: two slots).\n"
      "Example: strata bench offload --params 1000000000 --path /nvme --offload-ram 256MiB --json o.json");
  cmd->add_option("--params", flags->opt.params, "Parameters of optimizer state")
      ->capture_default_str()->transform(CLI::AsSizeValue(true))->check(CLI::Range(uint64_t{1}, uint64_t{1} << 48));
  cmd->add_option("--path", flags->opt.path, "Directory on the disk to measure (works in a subdirectory it removes)")
      ->capture_default_str();
  cmd->add_option("--offload-ram", flags->opt.ram_budget, "Staging memory budget, e.g. 256MiB (at least two chunks' slots)")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  cmd->add_option("--layout", flags->layout, "q8_master_mv (fp32 master + 8-bit m, v), q8_mv, or fp32_mv")
      ->capture_default_str()->check(CLI::IsMember({"q8_master_mv", "q8_mv", "fp32_mv"}));
  cmd->add_option("--chunk", flags->opt.chunk_params, "Parameters per chunk (a multiple of 256)")
      ->capture_default_str();
  cmd->add_option("--steps", flags->opt.steps, "Timed steps; the median is reported")->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--threads", flags->opt.threads, "Compute threads (0: all)")->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--probe-bytes", flags->opt.probe_bytes, "Bytes the disk probe writes and reads (default: what one step reads, at most 8 GiB)")
      ->transform(CLI::AsSizeValue(false));
  cmd->add_option("--io-piece", flags->opt.io_piece_bytes, "Each slot transfer goes out in requests of this size")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  cmd->add_option("--queue-depth", flags->opt.queue_depth, "io_uring entries (raw requests in flight)")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--order", flags->order, "Order the gradients arrive in: descending (as backward) or ascending")
      ->capture_default_str()->check(CLI::IsMember({"descending", "ascending"}));
  cmd->add_option("--json", flags->json_path, "Also write the figures to this JSON file");
  cmd->add_option("--trace", flags->trace_path, "Write a Chrome trace of every chunk's stages (Perfetto)");
  cmd->add_flag("--keep", flags->opt.keep, "Keep the state directory (to run strata inspect on it)");
  cmd->add_flag("--quiet", flags->quiet, "No progress on stderr");
  cmd->callback([flags, exit_code] { *exit_code = RunBenchOffload(*flags); });
}

}  // namespace strata::tools
