// `strata bench swarm`: the swarm's exchange beside raw ZeroMQ, measured in one run.
//
// Cases, each between two endpoints of this process (sender and receiver threads with their own
// zmq contexts) over real loopback sockets (TCP on 127.0.0.1, or ipc):
//   zmq_plain  messages of a chunk frame's size, DEALER -> ROUTER, no CURVE, one stream;
//   zmq_raw    the same with CURVE (a ZAP handler admitting the sender); once per stream count;
//   exchange   the peer's upload of a pseudo-gradient: error-feedback q8 encode, then per chunk
//              PackQ8 + EncodeFrame (signed) with a window of chunks in flight, each acknowledged;
//              the receiver runs the aggregator's path (DecodeFrame, the CURVE-authenticated key
//              against the header's, VerifyFrame, UnpackQ8 into the assembled tensor, a signed
//              ChunkAck back). CURVE on. The assembled codes and absmax must equal the sender's bit
//              for bit, or the benchmark fails.
//   downlink   the aggregator's outer step, error-feedback encoded and framed as UpdateChunk frames
//              (bytes only: a downlink is the same transfer in the other direction).
// Every transfer uses the same protocol (window W, one small ack per message), so the exchange
// differs from zmq_raw only by what strata adds. GB/s are frame (message) bytes per second: what
// both put on the socket, before ZMTP/CURVE/TCP overhead. The cases alternate round by round and
// medians are reported, so a drifting machine hits them all alike. CPU seconds are counted too
// (per process and per step): with both ends on one small machine the cores are the limit, and
// the CPU per byte says what the ratio can be wherever it runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/status.h"

namespace strata::bench {

enum class SwarmTransport { kTcp, kIpc };

struct SwarmBenchOptions {
  uint64_t params = 100'000'000;     // elements of the pseudo-gradient (>= 1)
  uint64_t chunk = uint64_t{1} << 20;  // elements per frame: a multiple of 256, payload <= 64 MiB
  uint32_t window = 8;               // frames in flight per stream, in [1, 256]
  std::vector<int> streams = {1, 2};  // stream counts tried for zmq_raw and the exchange, each in [1, 16]
  int rounds = 3;                    // alternations of all cases, in [1, 100]; medians reported
  SwarmTransport transport = SwarmTransport::kTcp;
  int threads = 0;                   // encoder threads (0: all hardware threads)
  double timeout_s = 60;             // a transfer that makes no progress this long fails
  bool quiet = false;                // no progress on stderr
  bool inject_mismatch = false;      // tests: flip one received code, so the bit-exact check must fail
};

// Runs the benchmark; the figures as JSON. Main fields: uplink_bytes_ratio, downlink_bytes_ratio
// (frame bytes over 4 * params), zmq_plain_GBps, zmq_raw_GBps (one CURVE stream, the target's
// denominator), exchange_GBps (the best of the stream counts tried; `streams` says which),
// exchange_vs_raw (ratio of medians) and exchange_vs_raw_paired (median of per-round ratios),
// exchange_breakdown (CPU seconds per step), cpu_s_per_GB per case, cpu_cost_vs_raw, and the bounds
// that the measured BLAKE2b and cipher speeds put on exchange_vs_raw (shared cores, separate hosts);
// per_streams, per_round, machine, date. Errors name the option (InvalidArgument "--window must be
// in [1, 256] (got 0)"), or the failing case and stream; a receiver whose tensor is not the
// sender's bit for bit is kCorruption.
[[nodiscard]] Result<nlohmann::json> RunSwarmBench(const SwarmBenchOptions& opt);

// The table printed by `strata bench swarm`: one line per case with GB/s and its ratio.
std::string FormatSwarmBench(const nlohmann::json& r);

// "auto" -> {1, 2}; "1,2,4" -> {1, 2, 4}. InvalidArgument naming --streams otherwise.
[[nodiscard]] Result<std::vector<int>> ParseStreamCounts(const std::string& text);

}  // namespace strata::bench
