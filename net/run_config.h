// What every member of a swarm run must agree on: the run id, the model's shape and initial
// weights, the outer optimizer, and the sizes of the pieces that travel. The aggregator owns it
// (DIR/run.json) and hands it to each peer in its Welcome message.
#pragma once

#include <cstdint>
#include <string>

#include "model/config.h"
#include "optim/outer.h"
#include "runtime/status.h"

namespace strata::net {

struct SwarmRunConfig {
  uint64_t run_id = 0;          // every frame carries it; frames of another run are refused
  model::ModelConfig model;      // the built-in model's shape (vocab from the tokenizer)
  uint64_t init_seed = 1;       // theta at version 0 = model::InitWeights(model, init_seed)
  std::string tokenizer = "byte";
  optim::OuterConfig outer;            // Bi²Clip + Nesterov (net/outer.h)
  uint32_t chunk_elems = 1u << 20;  // elements per wire chunk; a multiple of 256
  uint32_t history = 16;        // outer updates kept for peers that are behind (then: whole theta)
  uint32_t snapshot_every = 25; // versions between snapshots of the aggregator's state
  uint32_t lease_ms = 1000;     // a peer's lease period; suspect after 3 missed, evicted after 6
  float outlier_mult = 100.0f;  // refuse a pseudo-gradient whose RMS exceeds this x the running RMS (0: off)
  // Refuse a pseudo-gradient g (after the H_ref rescale) whose RMS exceeds this x theta's RMS (0:
  // off). Unlike the outlier rule it needs no history, so it bounds a run's first contribution
  // too, and a member cannot ratchet the running RMS past it (docs/SECURITY.md).
  float theta_bound = 2.0f;  // honest peers measured at 0.19 (0.44 with --h-ref 20): docs/SECURITY.md
  uint32_t sync_peers = 0;      // 0: asynchronous; N: synchronous DiLoCo rounds of N peers (baseline)

  [[nodiscard]] Status Validate() const;
  uint64_t NumParams() const { return model.NumParams(); }
};

// run.json / Welcome payload, and back. FromJson names the missing or bad field.
std::string SwarmRunConfigToJson(const SwarmRunConfig& c);
[[nodiscard]] Result<SwarmRunConfig> SwarmRunConfigFromJson(std::string_view text);

}  // namespace strata::net
