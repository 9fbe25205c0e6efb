// `strata swarm join`: a peer. It connects out to the aggregator (so it works behind NAT), gets
// the run's config and the global theta, and then, round after round:
//
//   x <- theta (version v) ; H inner steps of its optimizer on its own shard of the data
//   delta = x_start - x ; 8-bit blocks with error feedback ; signed chunks, a window in flight
//   Result (applied / pending / refused) ; fetch the q8 updates it missed (or theta, when far
//   behind) and rebuild the global theta bit for bit, checked against the announced hash
//   merge: x <- theta (hard reset), or DPPF pull-push
//
// Nobody waits for anybody in the asynchronous mode; with a synchronous run (sync_peers > 0) each
// peer waits for the round's new version (the DiLoCo baseline of the convergence experiment).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "runtime/status.h"
#include "train/step.h"

namespace strata::train {

struct PeerOptions {
  std::string key;         // this peer's identity file
  std::string server;      // the aggregator's ROUTER endpoint, tcp://HOST:PORT
  std::string server_key;  // the aggregator's public key file (.pub)
  std::string data;        // corpus ("" = the fortunes corpus); each peer trains on its shard
  uint32_t shard = 0, shards = 1;  // this peer's part of the training tokens: shard of shards
  uint32_t inner_steps = 20;       // H (the most; see adapt_h)
  bool adapt_h = true;             // a peer whose contributions arrive stale takes fewer inner steps:
                                   // tau > tau_max / 2 halves H, tau <= tau_max / 4 doubles it back
                                   // toward inner_steps (the aggregator rescales by H_ref / H)
  uint64_t rounds = 0;             // 0 = until stopped (or stop_at_version)
  uint64_t stop_at_version = 0;    // leave once the global version reaches this (0 = never)
  double max_seconds = 0;          // 0 = no limit
  std::string optimizer = "adamw";  // adamw | adamw8bit
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.99, weight_decay = 0.0;
  uint32_t warmup = 10;            // inner steps of linear warm-up, once per peer life
  uint64_t decay_steps = 0;        // cosine decay of lr to lr * min_lr_ratio at this inner step (0 = none)
  double min_lr_ratio = 0.1;
  // The inner optimizer's state: in memory (none), or in a state directory (ram, nvme) that a
  // peer coming back reopens, keeping its moments: offload_dir, else OUT/state (nvme) or a
  // folder in /dev/shm (ram).
  OffloadMode offload = OffloadMode::kNone;
  std::string offload_dir;
  uint64_t offload_ram = uint64_t{64} << 20;
  uint32_t chunk_params = 0;       // 0 = about a sixteenth of the model (AutoChunk)
  bool direct_io = true;
  int batch = 8, seq = 64;
  int threads = 1;
  double slowdown = 1.0;           // a straggler: each inner step takes this many times as long
  std::string merge = "hard";      // hard | dppf
  float dppf_alpha = 0.5f, dppf_lambda = 0.0f;
  uint32_t window = 4;             // chunks in flight
  uint32_t eval_every = 1;         // rounds between validation losses (0 = never)
  int eval_batches = 4;
  uint64_t seed = 1;
  double timeout_s = 60;           // give up when the aggregator is silent this long
  std::string out;                 // "" = no files; else OUT/metrics.jsonl
  bool quiet = false;
  bool verbose = false;            // a line for every resend and re-request (a lossy link's story)
};

struct PeerReport {
  uint64_t rounds = 0, applied = 0, refused = 0, duplicates = 0, resyncs = 0, theta_downloads = 0;
  uint64_t version = 0;      // the global version at the end
  double val_loss = 0;       // after the last evaluation
  uint64_t bytes_up = 0, bytes_down = 0;
};

extern std::atomic<bool> g_peer_stop;

[[nodiscard]] Result<PeerReport> RunPeer(const PeerOptions& opt);

}  // namespace strata::train
