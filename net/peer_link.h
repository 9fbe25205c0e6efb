// The peer's side of the swarm protocol (`strata swarm join` trains; this talks): one DEALER to
// the aggregator's ROUTER (CURVE, every frame signed) and one SUB for its announcements.
//
//   Join:     Hello -> Welcome (the run's config, the newest version and its hash); subscribe
//   theta:    version 0 from the run's seed (model::InitWeights, checked against the hash),
//             else FetchTheta in content-hashed chunks; then every update it missed, applied as
//             the aggregator applied it, so the replica is the aggregator's theta bit for bit
//   Upload:   a contribution's chunks with a window in flight, resent when unacknowledged,
//             until its Result (applied / pending / duplicate / refused)
//   Lease:    "still here, at this step", at most once per lease period
//
// Every request is resent when its answer does not come, and after a few seconds of silence the
// link opens a fresh socket (ZeroMQ's "lazy pirate" recovery).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/identity.h"
#include "net/run_config.h"
#include "net/swarm_common.h"
#include "optim/pg_codec.h"
#include "runtime/status.h"

namespace strata::net {

struct PeerLinkOptions {
  std::string key;         // this peer's identity file
  std::string server;      // the aggregator's ROUTER endpoint, tcp://HOST:PORT
  std::string server_key;  // the aggregator's public key file (.pub)
  uint32_t window = 4;     // chunks in flight
  double timeout_s = 60;   // give up when the aggregator is silent this long
  bool verbose = false;    // a line for every resend and re-request
  std::function<void(const std::string&)> log;  // where the link's lines go (none: silent)
};

class PeerLink {
 public:
  using Json = nlohmann::ordered_json;

  // Loads the identities and opens the DEALER (connecting is lazy: nothing is sent yet).
  [[nodiscard]] static Result<std::unique_ptr<PeerLink>> Connect(const PeerLinkOptions& o);

  // Hello -> Welcome, and the subscription to announcements. After it, run() holds the run.
  [[nodiscard]] Status Join();
  // The global theta at the newest version announced: version 0 from the run's seed when that is
  // the newest, else downloaded; then every update missed.
  [[nodiscard]] Status SyncTheta();
  // Brings theta() to the newest version heard of: its updates, or the whole theta when the
  // aggregator no longer keeps them.
  [[nodiscard]] Status CatchUp() { return CatchUp(latest_, latest_hash_); }
  // Reads the announcements that arrived (never blocks).
  void DrainAnnouncements();
  // A fresh sequence number for the next contribution.
  uint64_t NextSequence() { return cli_->NextSequence(); }
  // Contribution `seq` (delta in 8-bit blocks) made from version `base`: its Result.
  [[nodiscard]] Result<Json> Upload(uint64_t seq, uint64_t base, const optim::Q8Tensor& q, uint32_t inner,
                                    uint64_t tokens);
  // Tells the link of a version a Result reported.
  void Heard(uint64_t version, uint64_t hash);
  // A lease, when the lease period has passed since the last one (best effort).
  void Lease(const Json& j);

  const Identity& id() const { return id_; }
  const SwarmRunConfig& run() const { return run_; }
  const std::vector<float>& theta() const { return global_; }
  uint64_t version() const { return gv_; }          // theta()'s version
  uint64_t latest() const { return latest_; }       // the newest version heard of
  uint64_t theta_downloads() const { return theta_downloads_; }
  uint64_t bytes_out() const { return cli_->bytes_out(); }
  uint64_t bytes_in() const { return cli_->bytes_in(); }
  uint64_t bad_frames() const { return cli_->bad(); }
  uint64_t reconnects() const { return cli_->reconnects(); }

 private:
  PeerLink() = default;
  Status CatchUp(uint64_t target, uint64_t hash);
  Status FetchTheta();
  // Fetches update v -> v + 1 into q. NotFound when the aggregator no longer keeps it.
  Status FetchUpdate(uint64_t v, optim::Q8Tensor* q, uint64_t* hash_after);
  void Log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  PeerLinkOptions opt_;
  zmq::context_t ctx_{1};
  Identity id_;
  PublicIdentity server_;
  std::unique_ptr<SwarmClient> cli_;
  zmq::socket_t sub_;
  SwarmRunConfig run_;
  std::vector<float> global_;  // the global theta at version gv_, bit for bit the aggregator's
  uint64_t gv_ = 0, gv_hash_ = 0;
  bool have_global_ = false;
  uint64_t latest_ = 0, latest_hash_ = 0;  // newest version heard of
  uint64_t theta_downloads_ = 0;
  std::chrono::steady_clock::time_point last_lease_ = std::chrono::steady_clock::now();
};

}  // namespace strata::net
