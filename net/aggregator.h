// `strata swarm serve`: the aggregator. One socket loop, one ROUTER socket for everything a peer
// asks or sends (CURVE, ZAP default-deny), one PUB socket for announcements (version + hash only),
// and one applier thread that checks, dry-runs and logs a completed contribution (net/agg_state.h:
// Prepare) while the loop keeps answering; the loop then commits it and answers its Result.
//
//   ROUTER <- Hello                      -> Welcome (run config, version, theta hash, PUB endpoint)
//          <- ContribChunk x n (window)  -> ChunkAck each; when complete: to the applier (checks,
//                                           dry run, WAL); then commit -> Result
//          <- FetchUpdates(v, chunk i)   -> UpdateChunk (the q8 update v -> v+1), or Refusal "behind"
//          <- FetchTheta(chunk i)        -> ThetaChunk (fp32, of a frozen copy at some version S)
//          <- Lease (step, tokens/s, ETA)
//          <- StatusRequest              -> StatusReply (peers, staleness histogram, bytes, refusals)
//   PUB    -> Announce(version, hash) after every applied update and once a second
//
// Identity is the ZAP User-Id of the connection (the member's Ed25519 key), never the routing id;
// each frame must also carry that key and a valid signature by it. Every refusal is counted by
// reason and logged (metrics.jsonl, with its level: zap, socket, message or frame), and answered
// where there is someone to answer, so an honest peer knows to resynchronise.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "net/run_config.h"
#include "runtime/status.h"

namespace strata::net {

struct AggregatorOptions {
  std::string dir;                 // durable state: run.json, snapshot.bin, wal.log, metrics.jsonl
  std::string bind = "tcp://0.0.0.0:7700";  // ROUTER endpoint
  std::string pub_bind;            // "" = the ROUTER's port + 1
  std::string key;                 // identity file (strata swarm keygen)
  std::string members;             // membership list file
  std::string authority;           // "" or a .pub file: the list must be signed by it
  SwarmRunConfig run;              // used when dir holds no state yet
  int threads = 1;
  uint64_t stop_at_version = 0;    // 0 = run until SIGINT / SIGTERM
  double max_seconds = 0;          // 0 = no limit
  bool quiet = false;
  std::string ready_file;          // written (atomically) with the bound endpoints once serving
};

// Set by a signal handler: the loop finishes the message in hand and returns.
extern std::atomic<bool> g_aggregator_stop;
// Set by SIGHUP: the loop reads the membership list again (a member taken off it is refused from
// its next message on, and cannot connect again). A list that fails to load keeps the old one.
extern std::atomic<bool> g_aggregator_reload;

[[nodiscard]] Status RunAggregator(const AggregatorOptions& opt);

}  // namespace strata::net
