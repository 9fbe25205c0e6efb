// `strata bench load`: LoadCheckpoint of a BF16 sharded checkpoint (about 1 B parameters by
// default) beside the disk's own sequential read bandwidth on the same files, in the same run.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "bench/load_bench.h"
#include "tools/commands.h"

namespace strata::tools {

namespace {
struct BenchLoadFlags {
  bench::LoadBenchOptions opt;
  std::string json_path;
  bool quiet = false;
};

int RunBenchLoad(BenchLoadFlags& f) {
  f.opt.verbose = !f.quiet;
  auto r = bench::RunLoadBench(f.opt);
  if (!r.ok()) {
    std::fprintf(stderr, "strata bench load: %s\n", r.status().ToString().c_str());
    return 2;
  }
  std::fputs(bench::FormatLoadBench(*r).c_str(), stdout);
  return f.json_path.empty() ? 0 : WriteJsonFigures("strata bench load", f.json_path, *r);
}
}  // namespace

void AddBenchLoadCommand(CLI::App& bench, int* exit_code) {
  auto flags = std::make_shared<BenchLoadFlags>();
  const char* t = std::getenv("TMPDIR");
  flags->opt.dir = t && *t ? t : "/tmp";
  auto* cmd = bench.add_subcommand(
      "load",
      "Writes a BF16 sharded checkpoint of a Llama-shaped model (about 1 B parameters by default) in a\n"
      "temporary folder under --dir, then alternates rounds of (a) the disk's sequential read bandwidth\n"
      "on those shard files and (b) LoadCheckpoint into a fresh model in a child process, each after\n"
      "evicting the files from the page cache; reports load / disk and the load's peak RSS over the\n"
      "fp32 weights. Needs about 2 bytes per parameter of disk and 4 of memory.\n"
      "Example: strata bench load --dir /nvme --json load.json");
  cmd->add_option("--dir", flags->opt.dir, "Folder on the disk to measure (the checkpoint goes in a temporary folder here)")
      ->capture_default_str();
  cmd->add_option("--layers", flags->opt.layers, "Decoder layers (16 with the default width: ~1.04 B parameters)")
      ->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--width", flags->opt.width, "Hidden size, a multiple of 64 (heads: width / 64, key-value heads: heads / 4)")
      ->capture_default_str()->check(CLI::Range(64, 65536));
  cmd->add_option("--mlp", flags->opt.mlp, "MLP width (0: 4 * width)")->capture_default_str()->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--vocab", flags->opt.vocab, "Vocabulary")->capture_default_str()->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--shard-bytes", flags->opt.shard_bytes, "Largest shard, e.g. 1GiB")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  cmd->add_option("--rounds", flags->opt.rounds, "Rounds of disk read + load (medians reported)")
      ->capture_default_str()->check(CLI::Range(1, 100));
  cmd->add_option("--json", flags->json_path, "Also write the figures to this JSON file");
  cmd->add_flag("--keep", flags->opt.keep, "Keep the checkpoint folder");
  cmd->add_flag("--quiet", flags->quiet, "No progress on stderr");
  cmd->callback([flags, exit_code] { *exit_code = RunBenchLoad(*flags); });
}

}  // namespace strata::tools
