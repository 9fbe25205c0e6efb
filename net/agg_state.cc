#include "net/agg_state.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "model/config.h"
#include "net/wire.h"
#include "optim/q8_book.h"
#include "runtime/file_util.h"
#include "runtime/le.h"

namespace strata::net {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kSnapMagic = 0x4E535453;  // "STSN"
constexpr uint32_t kWalMagic = 0x4C575453;   // "STWL"
constexpr uint32_t kRecMagic = 0x52575453;   // "STWR"
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kSnapHeaderBytes = 72;
constexpr size_t kWalHeaderBytes = 32;
constexpr size_t kRecHeaderBytes = 96;
constexpr size_t kPeerEntryBytes = 56;
// Field offsets (docs/formats/aggregator-state.md draws the same tables).
namespace wal {  // the log's header
constexpr size_t kMagic = 0, kVersion = 4, kRunId = 8, kFirstIndex = 16, kChecksum = 24;
}
namespace rec {  // a log record's header; its payload follows at kRecHeaderBytes
constexpr size_t kMagic = 0, kBytes = 8, kIndex = 16, kPeer = 24, kSequence = 56, kBaseVersion = 64, kInnerSteps = 72,
                 kTokens = 80, kN = 88;
}
namespace snap {  // the snapshot's header; theta, momentum, pending, residual and the peers follow
constexpr size_t kMagic = 0, kVersion = 4, kRunId = 8, kVersionOfTheta = 16, kAcceptIndex = 24, kRmsSq = 32,
                 kRmsSet = 40, kPendingCount = 44, kN = 48, kNPeers = 56, kNPending = 64;
}
namespace peer {  // one peer's entry in the snapshot: its key (32 bytes), then
constexpr size_t kKey = 0, kLastSequence = 32, kContributions = 40, kTokens = 48;
}

std::string Errno(const std::string& what) { return what + ": " + ErrnoText(errno); }

void PutFloats(std::string& out, std::span<const float> v) {
  size_t at = out.size();
  out.resize(at + 4 * v.size());
  auto* p = reinterpret_cast<uint8_t*>(out.data() + at);
  for (size_t i = 0; i < v.size(); ++i) PutF32(p + 4 * i, v[i]);
}
void GetFloats(const uint8_t* p, std::span<float> v) {
  for (size_t i = 0; i < v.size(); ++i) v[i] = GetF32(p + 4 * i);
}

std::string WalHeader(uint64_t run_id, uint64_t first_index) {
  std::string h(kWalHeaderBytes, '\0');
  auto* p = reinterpret_cast<uint8_t*>(h.data());
  PutU32(p, kWalMagic);
  PutU32(p + wal::kVersion, kFormatVersion);
  PutU64(p + wal::kRunId, run_id);
  PutU64(p + wal::kFirstIndex, first_index);
  PutU64(p + wal::kChecksum, XXH3_64bits(p, wal::kChecksum));
  return h;
}

}  // namespace

double RmsOf(std::span<const float> x, ThreadPool* pool) {
  const int64_t n = static_cast<int64_t>(x.size());
  if (n == 0) return 0.0;
  const int64_t nblocks = (n + optim::kOuterReduceBlock - 1) / optim::kOuterReduceBlock;
  std::vector<double> sums(nblocks);
  auto body = [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; s += optim::kOuterReduceBlock) {
      const int64_t e = std::min(hi, s + optim::kOuterReduceBlock);
      double acc = 0.0;
      for (int64_t j = s; j < e; ++j) acc += static_cast<double>(x[j]) * static_cast<double>(x[j]);
      sums[s / optim::kOuterReduceBlock] = acc;
    }
  };
  if (pool) pool->ParallelFor(n, optim::kOuterReduceBlock, body); else body(0, n);
  double total = 0.0;
  for (double v : sums) total += v;  // inf or nan when some value was not finite
  return std::isfinite(total) ? std::sqrt(total / static_cast<double>(n)) : HUGE_VAL;
}

uint64_t ThetaHash(std::span<const float> theta) {
  static_assert(std::endian::native == std::endian::little, "theta's hash is over little-endian bytes");
  return XXH3_64bits(theta.data(), theta.size_bytes());
}

AggState::~AggState() {
  if (wal_fd_ >= 0) ::close(wal_fd_);
}

Result<std::unique_ptr<AggState>> AggState::Open(const std::string& dir, const SwarmRunConfig& cfg, int threads) {
  if (Status s = cfg.Validate(); !s.ok()) return s;
  std::unique_ptr<AggState> st(new AggState());
  st->dir_ = dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create the aggregator folder " + dir + ": " + ec.message());
  if (threads > 1) st->pool_ = std::make_unique<ThreadPool>(threads);

  const std::string run_json = dir + "/run.json";
  const std::string snap = dir + "/snapshot.bin";
  if (fs::exists(snap)) {
    std::string text;
    STRATA_RETURN_IF_ERROR(ReadFile(run_json, &text));
    Result<SwarmRunConfig> stored = SwarmRunConfigFromJson(text);
    if (!stored.ok()) return Status::Corruption(run_json + ": " + stored.status().message());
    if (cfg.run_id != 0 && (stored->run_id != cfg.run_id || !(stored->model == cfg.model)))
      return Status::InvalidArgument(dir + " holds run " + std::to_string(stored->run_id) + " (" +
                                     stored->model.ToString() + "), not run " + std::to_string(cfg.run_id) +
                                     " (" + cfg.model.ToString() + "): use another --out, or the same run");
    st->cfg_ = *stored;
    const uint64_t n = st->cfg_.NumParams();
    st->theta_.assign(n, 0.0f);
    st->step_.assign(n, 0.0f);
    st->down_ = std::make_unique<optim::ErrorFeedbackEncoder>(n);
    if (Status s = st->LoadSnapshot(snap); !s.ok()) return s;
    st->theta_rms_ = RmsOf(st->theta_, st->pool_.get());
    st->history_first_ = st->outer_.version;
    if (Status s = st->ReplayWal(); !s.ok()) return s;
  } else {
    if (cfg.run_id == 0) return Status::InvalidArgument("a new run needs a run id (" + dir + " holds no state)");
    st->cfg_ = cfg;
    if (Status s = cfg.model.Validate(); !s.ok()) return s;
    const uint64_t n = cfg.NumParams();
    st->theta_.assign(n, 0.0f);
    model::InitWeights(cfg.model, cfg.init_seed, st->theta_);  // theta v0: the run's seed alone
    st->step_.assign(n, 0.0f);
    st->down_ = std::make_unique<optim::ErrorFeedbackEncoder>(n);
    st->outer_ = optim::MakeOuterState(n, cfg.outer);
    if (Status s = WriteFileAtomic(run_json, SwarmRunConfigToJson(cfg)); !s.ok()) return s;
    if (Status s = st->Snapshot(); !s.ok()) return s;  // also creates the WAL
  }
  st->theta_hash_ = ThetaHash(st->theta_);
  st->theta_rms_ = RmsOf(st->theta_, st->pool_.get());
  if (st->wal_fd_ < 0) {
    if (Status s = st->OpenWalForAppend(); !s.ok()) return s;
  }
  return st;
}

// ---- snapshot ------------------------------------------------------------------------------------

Status AggState::Snapshot() {
  STRATA_CHECK(!plan_.ready);  // a logged contribution not yet applied would be missing from it
  const uint64_t n = theta_.size();
  std::string out(kSnapHeaderBytes, '\0');
  auto* h = reinterpret_cast<uint8_t*>(out.data());
  PutU32(h, kSnapMagic);
  PutU32(h + snap::kVersion, kFormatVersion);
  PutU64(h + snap::kRunId, cfg_.run_id);
  PutU64(h + snap::kVersionOfTheta, outer_.version);
  PutU64(h + snap::kAcceptIndex, accept_index_);
  PutF64(h + snap::kRmsSq, outer_.rms_sq);
  PutU32(h + snap::kRmsSet, outer_.rms_set ? 1 : 0);
  PutU32(h + snap::kPendingCount, outer_.pending_count);
  PutU64(h + snap::kN, n);
  PutU64(h + snap::kNPeers, peers_.size());
  PutU64(h + snap::kNPending, outer_.pending.size());
  out.reserve(kSnapHeaderBytes + 4 * (3 * n + outer_.pending.size()) + kPeerEntryBytes * peers_.size() + 8);
  PutFloats(out, theta_);
  PutFloats(out, outer_.momentum);
  PutFloats(out, outer_.pending);
  PutFloats(out, down_->residual());
  for (const auto& [key, rec] : peers_) {
    uint8_t e[kPeerEntryBytes];
    std::memcpy(e, key.data(), 32);
    PutU64(e + peer::kLastSequence, rec.last_sequence);
    PutU64(e + peer::kContributions, rec.contributions);
    PutU64(e + peer::kTokens, rec.tokens);
    out.append(reinterpret_cast<const char*>(e), kPeerEntryBytes);
  }
  uint8_t sum[8];
  PutU64(sum, XXH3_64bits(out.data(), out.size()));
  out.append(reinterpret_cast<const char*>(sum), 8);
  if (Status s = WriteFileAtomic(dir_ + "/snapshot.bin", out); !s.ok()) return s;
  last_snapshot_version_ = outer_.version;
  // The WAL restarts: everything before accept_index_ is in the snapshot. A crash between the two
  // renames leaves the new snapshot and the old WAL, whose records the replay then skips.
  if (wal_fd_ >= 0) {
    ::close(wal_fd_);
    wal_fd_ = -1;
  }
  if (Status s = WriteFileAtomic(dir_ + "/wal.log", WalHeader(cfg_.run_id, accept_index_)); !s.ok()) return s;
  return OpenWalForAppend();
}

Status AggState::LoadSnapshot(const std::string& path) {
  std::string b;
  STRATA_RETURN_IF_ERROR(ReadFile(path, &b));
  const auto* p = reinterpret_cast<const uint8_t*>(b.data());
  if (b.size() < kSnapHeaderBytes + 8)
    return Status::Corruption(path + ": truncated snapshot (" + std::to_string(b.size()) + " bytes)");
  if (GetU32(p) != kSnapMagic) return Status::Corruption(path + ": bad magic (not an aggregator snapshot)");
  if (GetU32(p + snap::kVersion) != kFormatVersion)
    return Status::Corruption(path + ": unknown snapshot version " + std::to_string(GetU32(p + snap::kVersion)));
  if (GetU64(p + b.size() - 8) != XXH3_64bits(p, b.size() - 8))
    return Status::Corruption(path + ": checksum mismatch");
  if (GetU64(p + snap::kRunId) != cfg_.run_id) return Status::Corruption(path + ": snapshot of another run");
  const uint64_t n = GetU64(p + snap::kN), npeers = GetU64(p + snap::kNPeers), npending = GetU64(p + snap::kNPending);
  if (n != theta_.size())
    return Status::Corruption(path + ": holds " + std::to_string(n) + " parameters, the model has " +
                              std::to_string(theta_.size()));
  if (npending != 0 && npending != n) return Status::Corruption(path + ": bad pending length");
  const uint64_t want = kSnapHeaderBytes + 4 * (3 * n + npending) + kPeerEntryBytes * npeers + 8;
  if (npeers > b.size() || want != b.size())
    return Status::Corruption(path + ": size " + std::to_string(b.size()) + " does not match its header (" +
                              std::to_string(want) + ")");
  outer_ = optim::OuterState{};
  outer_.version = GetU64(p + snap::kVersionOfTheta);
  accept_index_ = GetU64(p + snap::kAcceptIndex);
  outer_.rms_sq = GetF64(p + snap::kRmsSq);
  outer_.rms_set = GetU32(p + snap::kRmsSet) != 0;
  outer_.pending_count = GetU32(p + snap::kPendingCount);
  const uint8_t* q = p + kSnapHeaderBytes;
  GetFloats(q, theta_);
  q += 4 * n;
  outer_.momentum.assign(n, 0.0f);
  GetFloats(q, outer_.momentum);
  q += 4 * n;
  outer_.pending.assign(npending, 0.0f);
  GetFloats(q, outer_.pending);
  q += 4 * npending;
  GetFloats(q, down_->residual_mut());
  q += 4 * n;
  peers_.clear();
  for (uint64_t i = 0; i < npeers; ++i, q += kPeerEntryBytes) {
    PeerKey k;
    std::memcpy(k.data(), q, 32);
    peers_[k] = PeerRecord{GetU64(q + peer::kLastSequence), GetU64(q + peer::kContributions), GetU64(q + peer::kTokens)};
  }
  last_snapshot_version_ = outer_.version;
  return Status::Ok();
}

// ---- write-ahead log -----------------------------------------------------------------------------

Status AggState::OpenWalForAppend() {
  const std::string path = dir_ + "/wal.log";
  wal_fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (wal_fd_ < 0) return Status::IOError(Errno("cannot open " + path));
  struct stat sb;
  if (::fstat(wal_fd_, &sb) != 0) return Status::IOError(Errno("cannot stat " + path));
  wal_bytes_ = static_cast<uint64_t>(sb.st_size);
  return Status::Ok();
}

Status AggState::AppendWal(const Contribution& c) {
  const uint64_t n = c.delta.n;
  const uint64_t payload = Q8PayloadBytes(n);
  std::string rec(kRecHeaderBytes, '\0');
  auto* p = reinterpret_cast<uint8_t*>(rec.data());
  PutU32(p, kRecMagic);
  PutU64(p + rec::kBytes, kRecHeaderBytes + payload + 8);
  PutU64(p + rec::kIndex, accept_index_);
  std::memcpy(p + rec::kPeer, c.peer.data(), 32);
  PutU64(p + rec::kSequence, c.sequence);
  PutU64(p + rec::kBaseVersion, c.base_version);
  PutU32(p + rec::kInnerSteps, c.inner_steps);
  PutU64(p + rec::kTokens, c.tokens);
  PutU64(p + rec::kN, n);
  std::vector<uint8_t> body;
  body.reserve(payload);
  PackQ8(c.delta.codes, c.delta.absmax, body);
  rec.append(reinterpret_cast<const char*>(body.data()), body.size());
  uint8_t sum[8];
  PutU64(sum, XXH3_64bits(rec.data(), rec.size()));
  rec.append(reinterpret_cast<const char*>(sum), 8);
  const std::string what = dir_ + "/wal.log";
  if (Status s = WriteAll(wal_fd_, rec.data(), rec.size(), what); !s.ok()) return s;
  if (::fdatasync(wal_fd_) != 0) return Status::IOError(Errno("fdatasync " + what));
  wal_bytes_ += rec.size();
  return Status::Ok();
}

Status AggState::ReplayWal() {
  const std::string path = dir_ + "/wal.log";
  if (!fs::exists(path)) {  // a crash after the snapshot's rename, before the WAL's first write
    return WriteFileAtomic(path, WalHeader(cfg_.run_id, accept_index_));
  }
  std::string b;
  STRATA_RETURN_IF_ERROR(ReadFile(path, &b));
  const auto* p = reinterpret_cast<const uint8_t*>(b.data());
  if (b.size() < kWalHeaderBytes || GetU32(p) != kWalMagic || GetU64(p + wal::kChecksum) != XXH3_64bits(p, wal::kChecksum)) {
    // Only a torn header can be fixed: it means no record was ever written after it.
    if (b.size() < kWalHeaderBytes) return WriteFileAtomic(path, WalHeader(cfg_.run_id, accept_index_));
    return Status::Corruption(path + ": bad write-ahead log header");
  }
  if (GetU32(p + wal::kVersion) != kFormatVersion)
    return Status::Corruption(path + ": unknown WAL version " + std::to_string(GetU32(p + wal::kVersion)));
  if (GetU64(p + wal::kRunId) != cfg_.run_id) return Status::Corruption(path + ": WAL of another run");
  const uint64_t n = theta_.size();
  const uint64_t rec_bytes = kRecHeaderBytes + Q8PayloadBytes(n) + 8;
  uint64_t off = kWalHeaderBytes;
  std::vector<float> delta(n);
  while (off < b.size()) {
    const uint64_t left = b.size() - off;
    const uint8_t* r = p + off;
    bool whole = left >= rec_bytes && GetU32(r) == kRecMagic && GetU64(r + rec::kBytes) == rec_bytes &&
                 GetU64(r + rec::kN) == n && GetU64(r + rec_bytes - 8) == XXH3_64bits(r, rec_bytes - 8);
    if (!whole) {
      if (left <= rec_bytes) {
        // A torn tail: the crash came mid-append, before the fsync, so it was never acknowledged.
        if (::truncate(path.c_str(), static_cast<off_t>(off)) != 0)
          return Status::IOError(Errno("cannot cut the torn tail of " + path));
        break;
      }
      return Status::Corruption(path + ": damaged record at offset " + std::to_string(off) +
                                " with more records after it");
    }
    const uint64_t index = GetU64(r + rec::kIndex);
    if (index < accept_index_) {  // already in the snapshot
      off += rec_bytes;
      continue;
    }
    if (index != accept_index_)
      return Status::Corruption(path + ": record " + std::to_string(index) + " at offset " + std::to_string(off) +
                                " follows " + std::to_string(accept_index_) + " (a gap)");
    Contribution c;
    std::memcpy(c.peer.data(), r + rec::kPeer, 32);
    c.sequence = GetU64(r + rec::kSequence);
    c.base_version = GetU64(r + rec::kBaseVersion);
    c.inner_steps = GetU32(r + rec::kInnerSteps);
    c.tokens = GetU64(r + rec::kTokens);
    c.delta.n = n;
    c.delta.codes.resize(n);
    c.delta.absmax.resize(q8::NumBlocks(static_cast<int64_t>(n)));
    if (Status s = UnpackQ8({r + kRecHeaderBytes, Q8PayloadBytes(n)}, n, c.delta.codes, c.delta.absmax); !s.ok())
      return Status::Corruption(path + ": record at offset " + std::to_string(off) + ": " + s.message());
    optim::DecodeQ8(c.delta, delta, pool_.get());
    SubmitOutcome o = Plan(c, delta);
    if (o.verdict == SubmitVerdict::kRefused) {
      // Refused as it would be live (a log from before a check existed): counted and skipped. Its
      // index stays used, so the records after it and the next snapshot still line up.
      ++accept_index_;
      ++replay_refused_;
      replay_refusal_ = "record " + std::to_string(index) + ": " + o.reason;
    } else {
      CommitPlan();
    }
    ++replayed_;
    off += rec_bytes;
  }
  return Status::Ok();
}

// ---- the state machine ---------------------------------------------------------------------------

SubmitOutcome AggState::Plan(const Contribution& c, std::span<const float> delta) {
  STRATA_CHECK(!plan_.ready);
  SubmitOutcome o;
  o.version = outer_.version;
  o.theta_rms = theta_rms_;
  auto refuse = [&](std::string code, std::string why) {
    o.verdict = SubmitVerdict::kRefused;
    o.code = std::move(code);
    o.reason = o.code + ": " + why;
    return o;
  };
  const uint32_t tau_max = cfg_.outer.tau_max;
  const std::string versions = "base version " + std::to_string(c.base_version) + ", global " +
                               std::to_string(outer_.version) + ", tau_max " + std::to_string(tau_max);
  if (c.base_version <= outer_.version)  // the staleness, also of a refusal (for the metrics)
    o.tau = static_cast<uint32_t>(std::min<uint64_t>(outer_.version - c.base_version, UINT32_MAX));
  if (c.base_version > outer_.version) return refuse("from_future", versions);
  if (outer_.version - c.base_version > tau_max) return refuse("too_stale", versions);
  if (c.inner_steps == 0) return refuse("zero_inner_steps", "a contribution of 0 inner steps");
  if (Status s = optim::CheckFinite(delta, "pseudo-gradient"); !s.ok()) return refuse("non_finite", s.message());

  // The outer step on a copy of its state: the same code, the same values as the commit will have.
  plan_.outer = outer_;
  const optim::ContribInfo ci{c.base_version, c.inner_steps};
  const optim::OuterOutcome oo = optim::OuterAccept(cfg_.outer, plan_.outer, ci, delta, step_, pool_.get());
  o.tau = oo.tau;
  o.upper = oo.upper;
  o.lower = oo.lower;
  o.g_rms = oo.g_rms;
  const std::string hs = cfg_.outer.h_ref ? " (rescaled by h_ref/H = " + std::to_string(cfg_.outer.h_ref) + "/" +
                                                std::to_string(c.inner_steps) + ")"
                                          : std::string();
  if (oo.refusal == optim::Refusal::kNonFinite) return refuse("non_finite", "the pseudo-gradient" + hs + " is not finite");
  if (oo.refusal != optim::Refusal::kNone) return refuse(std::string(optim::RefusalName(oo.refusal)), versions);
  // Bounds on the size of g: against the recent contributions, and against theta itself (which
  // holds from the first contribution on, when there is no running RMS yet).
  if (cfg_.outlier_mult > 0 && outer_.rms_set && outer_.rms_sq > 0 &&
      oo.g_rms > cfg_.outlier_mult * std::sqrt(outer_.rms_sq))
    return refuse("outlier", "RMS " + std::to_string(oo.g_rms) + hs + " is more than " +
                                 std::to_string(cfg_.outlier_mult) + "x the running RMS " +
                                 std::to_string(std::sqrt(outer_.rms_sq)));
  if (cfg_.theta_bound > 0 && !(oo.g_rms <= cfg_.theta_bound * theta_rms_))
    return refuse("too_large", "RMS " + std::to_string(oo.g_rms) + hs + " is more than " +
                                   std::to_string(cfg_.theta_bound) + "x theta's RMS " + std::to_string(theta_rms_) +
                                   " (--theta-bound)");
  plan_.step_due = oo.step_due;
  if (oo.step_due) {
    // The rest of the arithmetic, checked value by value: the step, the quantized update with the
    // downlink's error feedback, and theta after it.
    if (Status s = optim::CheckFinite(step_, "outer step"); !s.ok()) return refuse("non_finite", s.message());
    if (!plan_.down) plan_.down = std::make_unique<optim::ErrorFeedbackEncoder>(theta_.size());
    std::copy(down_->residual().begin(), down_->residual().end(), plan_.down->residual_mut().begin());
    if (Status s = plan_.down->EncodeChecked(step_, plan_.q, pool_.get()); !s.ok())
      return refuse("non_finite", "the quantized outer step: " + s.message());
    plan_.theta.assign(theta_.begin(), theta_.end());
    optim::ApplyQ8Step(plan_.q, plan_.theta, pool_.get());
    plan_.theta_rms = RmsOf(plan_.theta, pool_.get());
    if (!std::isfinite(plan_.theta_rms)) return refuse("non_finite", "theta after the outer step is not finite");
  } else if (!plan_.outer.pending.empty()) {
    if (Status s = optim::CheckFinite(plan_.outer.pending, "pending outer step"); !s.ok())
      return refuse("non_finite", s.message());
  }
  plan_.ready = true;
  plan_.peer = c.peer;
  plan_.sequence = c.sequence;
  plan_.tokens = c.tokens;
  o.verdict = oo.step_due ? SubmitVerdict::kApplied : SubmitVerdict::kPending;
  o.version = outer_.version + (oo.step_due ? 1 : 0);
  plan_.outcome = o;
  return o;
}

void AggState::CommitPlan() {
  STRATA_CHECK(plan_.ready);
  std::swap(outer_, plan_.outer);
  ++accept_index_;
  PeerRecord& pr = peers_[plan_.peer];
  pr.last_sequence = plan_.sequence;
  pr.contributions += 1;
  pr.tokens += plan_.tokens;
  if (plan_.step_due) {
    std::swap(down_, plan_.down);
    std::swap(theta_, plan_.theta);
    theta_rms_ = plan_.theta_rms;
    outer_.version += 1;
    theta_hash_ = ThetaHash(theta_);
    history_.push_back(std::move(plan_.q));
    plan_.q = optim::Q8Tensor{};
    history_hash_.push_back(theta_hash_);
    while (history_.size() > cfg_.history) {
      history_.pop_front();
      history_hash_.pop_front();
      ++history_first_;
    }
  }
  plan_.ready = false;
}

Result<SubmitOutcome> AggState::Prepare(const Contribution& c) {
  STRATA_CHECK(!plan_.ready);
  if (wal_fd_ < 0) return Status::Internal("the aggregator state is closed after a failed write; restart it");
  SubmitOutcome o;
  o.version = outer_.version;
  o.theta_rms = theta_rms_;
  auto it = peers_.find(c.peer);
  if (it != peers_.end() && c.sequence <= it->second.last_sequence) {
    o.verdict = SubmitVerdict::kDuplicate;
    o.reason = "sequence " + std::to_string(c.sequence) + " is not after the last applied (" +
               std::to_string(it->second.last_sequence) + ")";
    return o;
  }
  const uint64_t n = theta_.size();
  if (c.delta.n != n || c.delta.codes.size() != n ||
      c.delta.absmax.size() != static_cast<size_t>(q8::NumBlocks(static_cast<int64_t>(n)))) {
    o.verdict = SubmitVerdict::kRefused;
    o.code = std::string(optim::RefusalName(optim::Refusal::kWrongShape));
    o.reason = "pseudo-gradient has " + std::to_string(c.delta.n) + " elements, the model " + std::to_string(n);
    return o;
  }
  // The block scales as the log's reader will check them (finite, >= 0), so that nothing logged
  // is refused on replay (outer_fuzz found a negative one accepted here and refused by the replay).
  if (Status s = optim::ValidateQ8Tensor(c.delta, n, "pseudo-gradient"); !s.ok()) {
    o.verdict = SubmitVerdict::kRefused;
    o.code = std::string(optim::RefusalName(optim::Refusal::kNonFinite));
    o.reason = o.code + ": " + s.message();
    return o;
  }
  delta_.resize(n);
  optim::DecodeQ8(c.delta, delta_, pool_.get());
  o = Plan(c, delta_);
  if (o.verdict == SubmitVerdict::kRefused) return o;
  // Only what Plan accepted is logged, and it applies: the log and the state never disagree.
  if (Status s = AppendWal(c); !s.ok()) {
    plan_.ready = false;
    ::close(wal_fd_);
    wal_fd_ = -1;
    return Status::IOError("the aggregator cannot log contribution " + std::to_string(c.sequence) + ": " +
                           s.message());
  }
  return o;
}

SubmitOutcome AggState::Commit() {
  SubmitOutcome o = plan_.outcome;
  CommitPlan();
  return o;
}

Status AggState::MaybeSnapshot() {
  if (outer_.version - last_snapshot_version_ < cfg_.snapshot_every) return Status::Ok();
  Status s = Snapshot();
  if (!s.ok() && wal_fd_ < 0) {
    // The WAL still holds everything: the snapshot is an optimisation, not a commit.
    if (Status r = OpenWalForAppend(); !r.ok()) return r;
  }
  return s;
}

Result<SubmitOutcome> AggState::Submit(const Contribution& c) {
  Result<SubmitOutcome> o = Prepare(c);
  if (!o.ok() || (o->verdict != SubmitVerdict::kApplied && o->verdict != SubmitVerdict::kPending)) return o;
  SubmitOutcome done = Commit();
  if (Status s = MaybeSnapshot(); !s.ok()) {
    if (wal_fd_ < 0) return s;  // not even the log could be reopened
    std::fprintf(stderr, "aggregator: snapshot failed (%s); the write-ahead log keeps the state\n",
                 s.ToString().c_str());
  }
  return done;
}

const optim::Q8Tensor* AggState::Update(uint64_t v) const {
  if (v < history_first_ || v >= history_first_ + history_.size()) return nullptr;
  return &history_[v - history_first_];
}

uint64_t AggState::UpdateHash(uint64_t v) const {
  if (v < history_first_ || v >= history_first_ + history_.size()) return 0;
  return history_hash_[v - history_first_];
}

}  // namespace strata::net
