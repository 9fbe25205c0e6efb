// `strata bench train`: training throughput side by side with torch, and the cost of offload.
#include <cstdio>
#include <memory>

#include "bench/train_bench.h"
#include "tools/commands.h"

namespace strata::tools {

void AddBenchTrainCommand(CLI::App& bench, int* exit_code) {
  struct Flags {
    bench::TrainBenchOptions opt;
    std::string json;
    bool no_peer = false;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = bench.add_subcommand(
      "train",
      "CPU training throughput (tokens/s): full steps (forward, backward,\n"
      "8-bit AdamW) with the optimizer state in memory and on disk (updated during backward), and\n"
      "transformers + torch on the same shape, batch and threads (lab/peers/train_peers.py, when\n"
      "the peers' venv exists). Shapes: default (the `strata finetune` model), gpt2-small-layers\n"
      "(two GPT-2 small layers over a byte vocabulary) and llama-1b-layers (two layers of Llama 3.2\n"
      "1B, beside transformers' LlamaForCausalLM; not run unless named).\n"
      "Example: strata bench train --json train.json\n"
      "         strata bench train --shape llama-1b-layers --steps 3 --rounds 3");
  cmd->add_flag("--recompute", f->opt.recompute,
                "Also a case with the activations recomputed inside backward (state in memory), run in every "
                "round after the in-memory case, and its cost against it");
  cmd->add_option("--shape", f->opt.shapes, "Model shapes to run: default (GPT-2, 4 x 256), gpt2-small-layers (two GPT-2 small layers), llama-1b-layers (two Llama 3.2 1B layers, vocabulary 32 k)")->capture_default_str();
  cmd->add_option("--steps", f->opt.steps, "Timed steps per case (the median is reported)")->capture_default_str();
  cmd->add_option("--warmup", f->opt.warmup, "Untimed steps first")->capture_default_str();
  cmd->add_option("--rounds", f->opt.rounds, "Rounds of the on-disk, in-memory and torch cases, one after the other (drift hits all alike)")
      ->capture_default_str()->check(CLI::Range(1, 100));
  cmd->add_option("--threads", f->opt.threads, "Compute threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--path", f->opt.path, "Folder on the disk for the offloaded state (a subfolder is made and removed)")
      ->capture_default_str();
  cmd->add_option("--offload-ram", f->opt.offload_ram, "Staging memory of the offloaded case, e.g. 64MiB")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  cmd->add_flag("--no-peer", f->no_peer, "Do not run the torch peer");
  cmd->add_option("--json", f->json, "Write the figures to FILE");
  cmd->add_flag("--quiet", f->opt.quiet, "Print only errors");
  cmd->callback([f, exit_code] {
    f->opt.peer = !f->no_peer;
    auto r = bench::RunTrainBench(f->opt);
    if (!r.ok()) {
      std::fprintf(stderr, "strata bench train: %s\n", r.status().ToString().c_str());
      *exit_code = 1;
      return;
    }
    if (f->json.empty()) {
      if (f->opt.quiet) std::printf("%s\n", r->dump(2).c_str());
      return;
    }
    *exit_code = WriteJsonFigures("strata bench train", f->json, r.value());
  });
}

}  // namespace strata::tools
