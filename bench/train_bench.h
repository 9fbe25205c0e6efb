// `strata bench train`: CPU training throughput of the built-in model, side by side with torch.
//
// For each model shape it times full training steps (forward, backward, 8-bit AdamW) in three ways:
//   none  the optimizer state in memory, stepped after backward (the baseline);
//   nvme  the state on disk (O_DIRECT, io_uring), each chunk updated while backward runs on;
//   torch transformers' GPT2LMHeadModel or LlamaForCausalLM (the shape's family) with
//         torch.optim.AdamW, same shape, batch and threads, eager and sdpa attention
//         (lab/peers/train_peers.py, run from this benchmark when the peers' venv exists).
// The three alternate, round by round (nvme, none, torch; --rounds times), so a machine whose
// speed drifts shifts all alike; each figure is batch * seq over the median step of all its rounds
// (torch's too: the median of the step times the peer reports), and each round's own figure is
// kept for the spread. It reports tokens/s, the ratios to torch, the cost of offload
// (1 - nvme / none), the disk traffic per step, and the peak RSS of the nvme case against its
// budget (weights, gradients, activations, staging); beside them, the fastest step of each case
// (the figure least skewed by other processes) and where a step goes (forward, backward, the
// rest: strata's from the trainer's trace, torch's from the peer's timers).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/gpt2.h"
#include "runtime/status.h"

namespace strata::bench {

struct TrainShape {
  std::string name;
  model::ModelConfig cfg;
  int batch = 8, seq = 128;
};
// "default": the model of `strata finetune` with no flags; "gpt2-small-layers": two layers of
// GPT-2 small (width 768, 12 heads) over a byte vocabulary, so the layer stack dominates;
// "llama-1b-layers": two layers of Llama 3.2 1B (width 2048, 32 heads of 64 with 8 key-value
// heads, SwiGLU MLP 8192, rope_theta 500000, RMSNorm eps 1e-5, tied head) over a 32 000-token
// vocabulary (not Llama 3's 128 256), batch 2 x 128 tokens. Not in the default list (a step takes
// seconds on two cores): ask for it with --shape llama-1b-layers.
[[nodiscard]] Result<TrainShape> NamedShape(const std::string& name);

struct TrainBenchOptions {
  std::vector<std::string> shapes = {"default", "gpt2-small-layers"};
  int steps = 8;   // timed steps per case and round (the median over all rounds is reported)
  int rounds = 3;  // the on-disk, in-memory and torch cases alternate this many times
  int warmup = 2;  // untimed steps first
  int threads = 0;
  std::string path = ".";  // where the nvme case keeps its state (a folder it makes and removes)
  uint64_t offload_ram = uint64_t{64} << 20;
  bool peer = true;  // run the torch peer when its venv exists
  // Also a case with the activations recomputed inside backward (state in memory), run in each
  // round right after the in-memory case it is compared with.
  bool recompute = false;
  std::string peers_python;  // "" = $STRATA_PEERS_VENV or ~/.cache/strata/peers-venv, bin/python
  std::string peer_script;   // "" = lab/peers/train_peers.py of this source tree
  bool quiet = false;
};

[[nodiscard]] Result<nlohmann::json> RunTrainBench(const TrainBenchOptions& opt);

}  // namespace strata::bench
