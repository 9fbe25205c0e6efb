// The aggregator's durable state machine, without sockets: global theta, the outer optimizer's
// state, the version, the last sequence applied per peer, and the recent quantized outer updates
// that peers download.
//
//   Submit(contribution) -> checks (duplicate, staleness, shape, finiteness)
//                        -> WAL append + fdatasync          <- the contribution is now durable
//                        -> Bi²Clip + Nesterov (net/outer.h) -> step
//                        -> q = Q8(step + residual), residual = (step + residual) - deQ(q)
//                        -> theta -= deQ(q); version += 1    (every peer does the same with q)
//                        -> every snapshot_every versions: snapshot, then the WAL restarts
//
// Open() after a crash loads the snapshot and replays the WAL records it does not hold, through
// the same code, so the state is bit for bit what it was when the last record became durable: no
// acknowledged contribution is lost (its ack is sent only after the fsync) and none is applied
// twice (the replay skips what the snapshot holds; Submit refuses a sequence already applied).
// Formats: docs/formats/aggregator-state.md.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "net/outer.h"
#include "net/pg_codec.h"
#include "net/run_config.h"
#include "runtime/status.h"
#include "runtime/thread_pool.h"

namespace strata::net {

using PeerKey = std::array<uint8_t, 32>;  // a member's Ed25519 public key

struct Contribution {
  PeerKey peer{};
  uint64_t sequence = 0;      // per peer, strictly increasing
  uint64_t base_version = 0;  // the global version the peer's inner steps started from
  uint32_t inner_steps = 0;
  uint64_t tokens = 0;        // tokens the peer trained on for it (for the metrics)
  Q8Tensor delta;             // theta_start - theta_now, 8-bit blocks as sent
};

// Why a contribution was not applied. kDuplicate is not an error for an honest peer: it is the
// answer to a retransmission of something already applied.
enum class SubmitVerdict : uint8_t { kApplied, kPending, kDuplicate, kRefused };

struct SubmitOutcome {
  SubmitVerdict verdict = SubmitVerdict::kRefused;
  std::string code;                  // when kRefused: too_stale, from_future, non_finite, wrong_shape,
                                     // zero_inner_steps, outlier (the counters' names)
  std::string reason;                // human text when kRefused
  uint64_t version = 0;              // the global version after this call
  uint32_t tau = 0;
  float upper = 0, lower = 0;        // the clipping band used
  double g_rms = 0;
};

struct PeerRecord {
  uint64_t last_sequence = 0;   // 0 = none applied yet
  uint64_t contributions = 0;   // applied
  uint64_t tokens = 0;          // over applied contributions
};

class AggState {
 public:
  // Opens DIR (creating it and version 0 from cfg when it holds no state; cfg.run_id must then be
  // set). With existing state, cfg.run_id 0 means "the run stored there"; otherwise cfg must
  // describe the same run (run_id, model). The stored run.json wins for the rest.
  // Replays the WAL; a torn last record (a crash mid-append, never acknowledged) is cut off.
  [[nodiscard]] static Result<std::unique_ptr<AggState>> Open(const std::string& dir, const SwarmRunConfig& cfg,
                                                              int threads = 1);
  ~AggState();

  [[nodiscard]] Result<SubmitOutcome> Submit(const Contribution& c);

  const SwarmRunConfig& config() const { return cfg_; }
  uint64_t version() const { return outer_.version; }
  uint64_t accepted() const { return accept_index_; }  // contributions folded in, in all
  std::span<const float> theta() const { return theta_; }
  uint64_t theta_hash() const { return theta_hash_; }    // XXH3-64 of theta's little-endian bytes
  // The quantized update that takes version v to v + 1, if still kept (history).
  const Q8Tensor* Update(uint64_t v) const;
  uint64_t UpdateHash(uint64_t v) const;  // theta's hash after update v (version v + 1); 0 if not kept
  uint64_t oldest_update() const { return history_first_; }
  const std::map<PeerKey, PeerRecord>& peers() const { return peers_; }
  uint64_t replayed() const { return replayed_; }  // WAL records replayed by Open
  const std::string& dir() const { return dir_; }

  // Writes a snapshot now (also done every snapshot_every versions) and restarts the WAL.
  [[nodiscard]] Status Snapshot();

 private:
  AggState() = default;
  [[nodiscard]] Status LoadSnapshot(const std::string& path);
  [[nodiscard]] Status ReplayWal();
  [[nodiscard]] Status OpenWalForAppend();
  [[nodiscard]] Status AppendWal(const Contribution& c);
  // The math of one contribution, shared by Submit and the replay. Checks were done before.
  SubmitOutcome Apply(const Contribution& c, std::span<const float> delta);
  SubmitOutcome Precheck(const Contribution& c, std::vector<float>* delta);

  SwarmRunConfig cfg_;
  std::string dir_;
  std::vector<float> theta_;
  OuterState outer_;
  std::unique_ptr<ErrorFeedbackEncoder> down_;  // the downlink quantizer's residual
  std::vector<float> step_;                     // scratch
  uint64_t theta_hash_ = 0;
  uint64_t accept_index_ = 0;  // contributions accepted, in all (the WAL's record index)
  std::map<PeerKey, PeerRecord> peers_;
  std::deque<Q8Tensor> history_;  // updates history_first_ .. version-1
  std::deque<uint64_t> history_hash_;  // theta's hash after each of them
  uint64_t history_first_ = 0;
  uint64_t last_snapshot_version_ = 0;
  uint64_t replayed_ = 0;
  int wal_fd_ = -1;
  uint64_t wal_bytes_ = 0;
  std::unique_ptr<ThreadPool> pool_;
};

// XXH3-64 of a float vector's little-endian bytes (the announced content hash of theta).
uint64_t ThetaHash(std::span<const float> theta);

}  // namespace strata::net
