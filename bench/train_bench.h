// `strata bench train`: CPU training throughput of the built-in model, side by side with torch.
//
// For each model shape it times full training steps (forward, backward, 8-bit AdamW) in three ways:
//   none  the optimizer state in memory, stepped after backward (the baseline);
//   nvme  the state on disk (O_DIRECT, io_uring), each chunk updated while backward runs on;
//   torch transformers' GPT2LMHeadModel with torch.optim.AdamW, same shape, batch and threads
//         (lab/peers/train_peers.py, run from this benchmark when the peers' venv exists).
// and reports tokens/s, the cost of offload (1 - nvme / none), the disk traffic per step, and
// the peak RSS of the nvme case against its budget (weights, gradients, activations, staging).
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
// GPT-2 small (width 768, 12 heads) over a byte vocabulary, so the layer stack dominates.
[[nodiscard]] Result<TrainShape> NamedShape(const std::string& name);

struct TrainBenchOptions {
  std::vector<std::string> shapes = {"default", "gpt2-small-layers"};
  int steps = 8;   // timed steps per case and round (the median over all rounds is reported)
  int rounds = 3;  // the in-memory and on-disk cases alternate this many times
  int warmup = 2;  // untimed steps first
  int threads = 0;
  std::string path = ".";  // where the nvme case keeps its state (a folder it makes and removes)
  uint64_t offload_ram = uint64_t{64} << 20;
  bool peer = true;  // run the torch peer when its venv exists
  std::string peers_python;  // "" = $STRATA_PEERS_VENV or ~/.cache/strata/peers-venv, bin/python
  std::string peer_script;   // "" = lab/peers/train_peers.py of this source tree
  bool quiet = false;
};

[[nodiscard]] Result<nlohmann::json> RunTrainBench(const TrainBenchOptions& opt);

}  // namespace strata::bench
