// The aggregator's durable state machine, without sockets: global theta, the outer optimizer's
// state, the version, the last sequence applied per peer, and the recent quantized outer updates
// that peers download.
//
//   Prepare(contribution) -> checks (duplicate, shape, staleness, finiteness, outlier, theta bound)
//                         -> a dry run of everything it would change, into scratch buffers:
//                            Bi²Clip + Nesterov (net/outer.h) -> step
//                            q = Q8(step + residual), residual = (step + residual) - deQ(q)
//                            theta' = theta - deQ(q)
//                            refused (non_finite) when any of them is not finite
//                         -> WAL append + fdatasync     <- the contribution is now durable
//   Commit()              -> the scratch buffers become the state; version += 1 (every peer
//                            applies the same q)
//   MaybeSnapshot()       -> every snapshot_every versions: snapshot, then the WAL restarts
//
// Every check that can refuse runs before the log, so what reaches the log always applies: a
// member cannot stop the run with a contribution that passes the checks and then fails in the
// arithmetic. Prepare changes nothing the const accessors read, so a server can prepare on a
// worker thread (the decode, the outer step and the fdatasync take about a second at 100 M
// parameters) while its socket loop keeps reading the state; Commit is cheap (swaps).
//
// Open() after a crash loads the snapshot and replays the WAL records it does not hold, through
// the same code, so the state is bit for bit what it was when the last record became durable: no
// acknowledged contribution is lost (its ack is sent only after the fsync) and none is applied
// twice (the replay skips what the snapshot holds; Prepare refuses a sequence already applied).
// A record that the replay refuses (a log written before a check existed) is refused as it would
// be live, counted (replay_refused()) and skipped; its index stays used, so log and snapshot agree.
// Formats: docs/formats/aggregator-state.md.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "net/run_config.h"
#include "optim/outer.h"
#include "optim/pg_codec.h"
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
  optim::Q8Tensor delta;             // theta_start - theta_now, 8-bit blocks as sent
};

// Why a contribution was not applied. kDuplicate is not an error for an honest peer: it is the
// answer to a retransmission of something already applied.
enum class SubmitVerdict : uint8_t { kApplied, kPending, kDuplicate, kRefused };

struct SubmitOutcome {
  SubmitVerdict verdict = SubmitVerdict::kRefused;
  std::string code;                  // when kRefused: too_stale, from_future, non_finite, wrong_shape,
                                     // zero_inner_steps, outlier, too_large (the counters' names)
  std::string reason;                // human text when kRefused
  uint64_t version = 0;              // the global version after this call
  uint32_t tau = 0;
  float upper = 0, lower = 0;        // the clipping band used
  double g_rms = 0;
  double theta_rms = 0;              // theta's RMS before this contribution (the theta bound's unit)
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

  // Prepare, then (when it says applied or pending) Commit and MaybeSnapshot: for a caller on one
  // thread.
  [[nodiscard]] Result<SubmitOutcome> Submit(const Contribution& c);

  // The halves of Submit (see the top of this file). Prepare returns kApplied or kPending for a
  // contribution now logged, which the next Commit applies; kDuplicate or kRefused for one that
  // changed nothing (no Commit follows). An IOError (the log cannot be written) closes the state:
  // restart it. Between a successful Prepare and its Commit, no other Prepare, Commit or Snapshot
  // (a bug: aborts). Prepare only reads what the const accessors read; Commit writes it.
  [[nodiscard]] Result<SubmitOutcome> Prepare(const Contribution& c);
  SubmitOutcome Commit();
  bool prepared() const { return plan_.ready; }
  // A snapshot when snapshot_every versions have passed since the last one. A failed snapshot is
  // not fatal (the WAL keeps everything): it is reported in the Status and the WAL stays open.
  [[nodiscard]] Status MaybeSnapshot();

  const SwarmRunConfig& config() const { return cfg_; }
  uint64_t version() const { return outer_.version; }
  uint64_t accepted() const { return accept_index_; }  // contributions folded in, in all
  std::span<const float> theta() const { return theta_; }
  uint64_t theta_hash() const { return theta_hash_; }    // XXH3-64 of theta's little-endian bytes
  // The quantized update that takes version v to v + 1, if still kept (history).
  const optim::Q8Tensor* Update(uint64_t v) const;
  uint64_t UpdateHash(uint64_t v) const;  // theta's hash after update v (version v + 1); 0 if not kept
  uint64_t oldest_update() const { return history_first_; }
  const std::map<PeerKey, PeerRecord>& peers() const { return peers_; }
  uint64_t replayed() const { return replayed_; }  // WAL records replayed by Open
  // WAL records that Open's replay refused (counted, skipped), and the reason of the last one.
  uint64_t replay_refused() const { return replay_refused_; }
  const std::string& replay_refusal() const { return replay_refusal_; }
  double theta_rms() const { return theta_rms_; }
  const std::string& dir() const { return dir_; }

  // Writes a snapshot now (also done every snapshot_every versions) and restarts the WAL.
  [[nodiscard]] Status Snapshot();

 private:
  AggState() = default;
  [[nodiscard]] Status LoadSnapshot(const std::string& path);
  [[nodiscard]] Status ReplayWal();
  [[nodiscard]] Status OpenWalForAppend();
  [[nodiscard]] Status AppendWal(const Contribution& c);
  // Every check and the dry run of one decoded contribution into plan_, shared by Prepare and the
  // replay: kApplied or kPending with plan_ ready, or kRefused with nothing changed.
  SubmitOutcome Plan(const Contribution& c, std::span<const float> delta);
  void CommitPlan();

  // What one planned contribution will change, computed by Plan, swapped in by CommitPlan.
  struct Planned {
    bool ready = false;
    SubmitOutcome outcome;
    PeerKey peer{};
    uint64_t sequence = 0, tokens = 0;
    optim::OuterState outer;                             // the outer state after it
    bool step_due = false;
    optim::Q8Tensor q;                                   // the update every replica applies
    std::unique_ptr<optim::ErrorFeedbackEncoder> down;   // the downlink residual after it
    std::vector<float> theta;                     // theta after it (when step_due)
    double theta_rms = 0;
  };

  SwarmRunConfig cfg_;
  std::string dir_;
  std::vector<float> theta_;
  optim::OuterState outer_;
  std::unique_ptr<optim::ErrorFeedbackEncoder> down_;  // the downlink quantizer's residual
  std::vector<float> step_;                     // scratch
  std::vector<float> delta_;                    // scratch: the decoded contribution
  Planned plan_;
  double theta_rms_ = 0;
  uint64_t theta_hash_ = 0;
  uint64_t accept_index_ = 0;  // contributions accepted, in all (the WAL's record index)
  std::map<PeerKey, PeerRecord> peers_;
  std::deque<optim::Q8Tensor> history_;  // updates history_first_ .. version-1
  std::deque<uint64_t> history_hash_;  // theta's hash after each of them
  uint64_t history_first_ = 0;
  uint64_t last_snapshot_version_ = 0;
  uint64_t replayed_ = 0;
  uint64_t replay_refused_ = 0;
  std::string replay_refusal_;
  int wal_fd_ = -1;
  uint64_t wal_bytes_ = 0;
  std::unique_ptr<ThreadPool> pool_;
};

// XXH3-64 of a float vector's little-endian bytes (the announced content hash of theta).
uint64_t ThetaHash(std::span<const float> theta);

// sqrt(mean(x^2)), summed in double in order within blocks of kOuterReduceBlock (the same for any
// thread count); +inf when some value is not finite. 0 for an empty span.
double RmsOf(std::span<const float> x, ThreadPool* pool = nullptr);

}  // namespace strata::net
