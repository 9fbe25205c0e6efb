// The aggregator's durable state machine: snapshots, the write-ahead log, replay after a crash
// (including a real SIGKILL at random instants), duplicates, refusals, and its corruption cases.
#include "net/agg_state.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "optim/pg_codec.h"
#include "net/wire.h"
#include "optim/q8_book.h"
#include <xxhash.h>
#include <cstring>
#include "tests/offload/temp_dir.h"

namespace strata::net {
namespace {

SwarmRunConfig SmallRun(uint32_t apply_every = 1) {
  SwarmRunConfig c;
  c.run_id = 77;
  c.model.n_layer = 1;
  c.model.n_head = 1;
  c.model.n_embd = 8;
  c.model.n_ctx = 8;
  c.model.vocab = 13;  // an awkward size: n is not a multiple of 256
  c.chunk_elems = 256;
  c.snapshot_every = 3;
  c.history = 4;
  c.outer.apply_every = apply_every;
  return c;
}

PeerKey Key(uint8_t b) {
  PeerKey k{};
  k.fill(b);
  return k;
}

// Contribution i of a fixed, seeded stream (what a peer would send).
Contribution MakeContribution(uint64_t n, uint64_t i, uint64_t base_version, uint8_t peer = 1) {
  std::mt19937_64 rng(1000 + i);
  std::normal_distribution<float> d(0.0f, 1e-3f);
  std::vector<float> delta(n);
  for (float& x : delta) x = d(rng);
  Contribution c;
  c.peer = Key(peer);
  c.sequence = i + 1;
  c.base_version = base_version;
  c.inner_steps = 5;
  c.tokens = 640;
  optim::ErrorFeedbackEncoder ef(n);
  ef.Encode(delta, c.delta);
  return c;
}

std::string ReadFile(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void WriteFile(const std::string& p, const std::string& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << b;
}

TEST(AggState, CreatesVersionZeroFromTheSeedAndReopens) {
  TempDir dir;
  SwarmRunConfig cfg = SmallRun();
  auto a = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->version(), 0u);
  const uint64_t h0 = (*a)->theta_hash();
  EXPECT_EQ(h0, ThetaHash((*a)->theta()));
  a->reset();
  auto b = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->theta_hash(), h0);
  // Another run in the same folder is refused by name.
  SwarmRunConfig other = cfg;
  other.run_id = 78;
  auto c = AggState::Open(dir.path(), other);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("run 77"), std::string::npos) << c.status();
}

TEST(AggState, AppliesUpdatesThatReplicasRebuildBitForBit) {
  TempDir dir;
  auto a = AggState::Open(dir.path(), SmallRun());
  ASSERT_TRUE(a.ok()) << a.status();
  AggState& st = **a;
  const uint64_t n = st.theta().size();
  std::vector<float> replica(st.theta().begin(), st.theta().end());
  for (uint64_t i = 0; i < 7; ++i) {
    auto o = st.Submit(MakeContribution(n, i, st.version()));
    ASSERT_TRUE(o.ok()) << o.status();
    ASSERT_EQ(o->verdict, SubmitVerdict::kApplied) << o->reason;
    const optim::Q8Tensor* q = st.Update(st.version() - 1);
    ASSERT_NE(q, nullptr);
    optim::ApplyQ8Step(*q, replica);
    ASSERT_EQ(ThetaHash(replica), st.theta_hash()) << "version " << st.version();
    ASSERT_EQ(st.UpdateHash(st.version() - 1), st.theta_hash());
  }
  EXPECT_EQ(st.version(), 7u);
  // History keeps the last 4 updates only.
  EXPECT_EQ(st.oldest_update(), 3u);
  EXPECT_EQ(st.Update(2), nullptr);
  EXPECT_NE(st.Update(6), nullptr);
  EXPECT_EQ(st.Update(7), nullptr);
}

TEST(AggState, SameContributionTwiceChangesNothing) {
  TempDir dir;
  auto a = AggState::Open(dir.path(), SmallRun());
  ASSERT_TRUE(a.ok()) << a.status();
  AggState& st = **a;
  Contribution c = MakeContribution(st.theta().size(), 0, 0);
  ASSERT_EQ(st.Submit(c)->verdict, SubmitVerdict::kApplied);
  const uint64_t h = st.theta_hash(), v = st.version();
  const std::string wal = ReadFile(dir / "wal.log");
  auto again = st.Submit(c);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->verdict, SubmitVerdict::kDuplicate);
  EXPECT_EQ(st.theta_hash(), h);
  EXPECT_EQ(st.version(), v);
  EXPECT_EQ(ReadFile(dir / "wal.log"), wal) << "a duplicate must not be logged";
  // An older sequence is a duplicate too; a newer one from another peer is not.
  Contribution other = MakeContribution(st.theta().size(), 0, st.version(), /*peer=*/2);
  EXPECT_EQ(st.Submit(other)->verdict, SubmitVerdict::kApplied);
}

TEST(AggState, RefusalsLeaveStateAndLogUntouched) {
  TempDir dir;
  SwarmRunConfig cfg = SmallRun();
  cfg.outer.tau_max = 2;
  cfg.snapshot_every = 100;
  auto a = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(a.ok()) << a.status();
  AggState& st = **a;
  const uint64_t n = st.theta().size();
  for (uint64_t i = 0; i < 4; ++i) ASSERT_EQ(st.Submit(MakeContribution(n, i, st.version()))->verdict, SubmitVerdict::kApplied);
  const uint64_t h = st.theta_hash();
  const std::string wal = ReadFile(dir / "wal.log");
  auto expect_refused = [&](const Contribution& c, const std::string& code) {
    auto o = st.Submit(c);
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(o->verdict, SubmitVerdict::kRefused);
    EXPECT_EQ(o->code, code) << o->reason;
    EXPECT_EQ(st.theta_hash(), h);
    EXPECT_EQ(ReadFile(dir / "wal.log"), wal);
  };
  expect_refused(MakeContribution(n, 10, /*base=*/1), "too_stale");  // tau = 3 > 2
  EXPECT_EQ(st.Submit(MakeContribution(n, 10, 1))->tau, 3u) << "a refusal still reports its staleness";
  expect_refused(MakeContribution(n, 11, /*base=*/9), "from_future");
  Contribution zero = MakeContribution(n, 12, st.version());
  zero.inner_steps = 0;
  expect_refused(zero, "zero_inner_steps");
  Contribution shape = MakeContribution(n + 1, 13, st.version());
  expect_refused(shape, "wrong_shape");
  Contribution nan = MakeContribution(n, 14, st.version());
  nan.delta.absmax[nan.delta.absmax.size() - 1] = NAN;
  expect_refused(nan, "non_finite");
  Contribution huge = MakeContribution(n, 15, st.version());
  for (float& m : huge.delta.absmax) m *= 1e4f;  // 10^4 x the running RMS: an outlier
  expect_refused(huge, "outlier");
  // Staleness 2 is still accepted.
  EXPECT_EQ(st.Submit(MakeContribution(n, 16, st.version() - 2))->verdict, SubmitVerdict::kApplied);
}

TEST(AggState, ApplyEveryKHoldsPendingAcrossRestarts) {
  TempDir dir;
  SwarmRunConfig cfg = SmallRun(/*apply_every=*/3);
  uint64_t n = 0, h_uninterrupted = 0;
  {
    TempDir ref;
    auto r = AggState::Open(ref.path(), cfg);
    ASSERT_TRUE(r.ok()) << r.status();
    n = (*r)->theta().size();
    for (uint64_t i = 0; i < 7; ++i) {
      auto o = (*r)->Submit(MakeContribution(n, i, (*r)->version()));
      ASSERT_TRUE(o.ok());
      EXPECT_EQ(o->verdict, (i % 3 == 2) ? SubmitVerdict::kApplied : SubmitVerdict::kPending) << i;
    }
    EXPECT_EQ((*r)->version(), 2u);
    h_uninterrupted = (*r)->theta_hash();
  }
  for (uint64_t i = 0; i < 7; ++i) {  // reopened after every contribution
    auto a = AggState::Open(dir.path(), cfg);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE((*a)->Submit(MakeContribution(n, i, (*a)->version())).ok());
  }
  auto a = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->version(), 2u);
  EXPECT_EQ((*a)->theta_hash(), h_uninterrupted);
}

TEST(AggState, ReplayAfterReopenIsBitIdentical) {
  SwarmRunConfig cfg = SmallRun();
  TempDir ref, dir;
  auto r = AggState::Open(ref.path(), cfg);
  ASSERT_TRUE(r.ok());
  const uint64_t n = (*r)->theta().size();
  for (uint64_t i = 0; i < 10; ++i) ASSERT_TRUE((*r)->Submit(MakeContribution(n, i, (*r)->version())).ok());
  for (uint64_t i = 0; i < 10; ++i) {
    auto a = AggState::Open(dir.path(), cfg);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE((*a)->Submit(MakeContribution(n, i, (*a)->version())).ok());
    if (i == 9) {
      EXPECT_EQ((*a)->theta_hash(), (*r)->theta_hash());
    }
  }
  auto a = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->version(), 10u);
  EXPECT_EQ((*a)->theta_hash(), (*r)->theta_hash());
  EXPECT_GT((*a)->replayed(), 0u) << "snapshot_every 3: the last version comes from the log";
  // The replayed state goes on exactly as the uninterrupted one.
  ASSERT_TRUE((*a)->Submit(MakeContribution(n, 10, 10)).ok());
  ASSERT_TRUE((*r)->Submit(MakeContribution(n, 10, 10)).ok());
  EXPECT_EQ((*a)->theta_hash(), (*r)->theta_hash());
}

TEST(AggState, TornLogTailIsCutAtEveryLength) {
  SwarmRunConfig cfg = SmallRun();
  cfg.snapshot_every = 100;
  TempDir dir;
  uint64_t n = 0, h1 = 0;
  {
    auto a = AggState::Open(dir.path(), cfg);
    ASSERT_TRUE(a.ok());
    n = (*a)->theta().size();
    ASSERT_TRUE((*a)->Submit(MakeContribution(n, 0, 0)).ok());
    h1 = (*a)->theta_hash();
    ASSERT_TRUE((*a)->Submit(MakeContribution(n, 1, 1)).ok());
  }
  const std::string full = ReadFile(dir / "wal.log");
  const std::string snap = ReadFile(dir / "snapshot.bin");
  const size_t rec = (full.size() - 32) / 2;
  for (size_t cut = 32 + rec; cut < full.size(); cut += 7) {  // inside the second record
    WriteFile(dir / "wal.log", full.substr(0, cut));
    WriteFile(dir / "snapshot.bin", snap);
    auto a = AggState::Open(dir.path(), cfg);
    ASSERT_TRUE(a.ok()) << "cut at " << cut << ": " << a.status();
    EXPECT_EQ((*a)->version(), 1u) << cut;
    EXPECT_EQ((*a)->theta_hash(), h1) << cut;
    EXPECT_EQ(std::filesystem::file_size(dir / "wal.log"), 32 + rec) << "the torn tail is cut off";
  }
}

TEST(AggState, DamagedRecordWithRecordsAfterItIsRefused) {
  SwarmRunConfig cfg = SmallRun();
  cfg.snapshot_every = 100;
  TempDir dir;
  {
    auto a = AggState::Open(dir.path(), cfg);
    ASSERT_TRUE(a.ok());
    const uint64_t n = (*a)->theta().size();
    for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE((*a)->Submit(MakeContribution(n, i, i)).ok());
  }
  std::string wal = ReadFile(dir / "wal.log");
  wal[32 + 100] ^= 0x10;  // inside the first record
  WriteFile(dir / "wal.log", wal);
  auto a = AggState::Open(dir.path(), cfg);
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(a.status().IsCorruption()) << a.status();
  EXPECT_NE(a.status().message().find("offset 32"), std::string::npos) << a.status();
}

TEST(AggState, SnapshotCorruptionCasesAreRefusedByName) {
  SwarmRunConfig cfg = SmallRun();
  TempDir dir;
  {
    auto a = AggState::Open(dir.path(), cfg);
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE((*a)->Submit(MakeContribution((*a)->theta().size(), 0, 0)).ok());
    ASSERT_TRUE((*a)->Snapshot().ok());
  }
  const std::string good = ReadFile(dir / "snapshot.bin");
  auto expect = [&](const std::string& bytes, const std::string& words) {
    WriteFile(dir / "snapshot.bin", bytes);
    auto a = AggState::Open(dir.path(), cfg);
    ASSERT_FALSE(a.ok()) << words;
    EXPECT_TRUE(a.status().IsCorruption()) << a.status();
    EXPECT_NE(a.status().message().find(words), std::string::npos) << a.status();
  };
  std::string bad_magic = good;
  bad_magic[0] = 'X';
  expect(bad_magic, "bad magic");
  std::string bad_version = good;
  bad_version[4] = 9;
  expect(bad_version, "unknown snapshot version");
  std::string flipped = good;
  flipped[good.size() / 2] ^= 1;
  expect(flipped, "checksum mismatch");
  for (size_t len = 0; len < good.size(); len += 13) expect(good.substr(0, len), "snapshot");
  WriteFile(dir / "snapshot.bin", good);
  EXPECT_TRUE(AggState::Open(dir.path(), cfg).ok());
}

// A child process submits a fixed stream of contributions and reports each acknowledged one on a
// pipe; it is SIGKILLed at a random instant, reopened, killed again... Every acknowledged
// contribution must survive, none may be applied twice, and the end state must equal the
// uninterrupted run's, bit for bit.
TEST(AggState, SigkillAtRandomInstantsLosesNothingAndAppliesNothingTwice) {
  SwarmRunConfig cfg = SmallRun();
  cfg.snapshot_every = 4;
  constexpr uint64_t kTotal = 400;
  TempDir ref, dir;
  uint64_t n = 0;
  std::vector<uint64_t> ref_hash(kTotal + 1);
  {
    auto r = AggState::Open(ref.path(), cfg);
    ASSERT_TRUE(r.ok());
    n = (*r)->theta().size();
    ref_hash[0] = (*r)->theta_hash();
    for (uint64_t i = 0; i < kTotal; ++i) {
      ASSERT_TRUE((*r)->Submit(MakeContribution(n, i, (*r)->version())).ok());
      ref_hash[i + 1] = (*r)->theta_hash();
    }
  }
  std::mt19937 rng(12345);
  uint64_t acked = 0;  // highest contribution index acknowledged, plus one
  int kills = 0;
  for (int round = 0; round < 40 && acked < kTotal; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      auto a = AggState::Open(dir.path(), cfg);
      if (!a.ok()) _exit(3);
      for (uint64_t i = (*a)->accepted(); i < kTotal; ++i) {
        auto o = (*a)->Submit(MakeContribution(n, i, (*a)->version()));
        if (!o.ok() || o->verdict != SubmitVerdict::kApplied) _exit(4);
        uint64_t done = i + 1;
        if (::write(fds[1], &done, sizeof done) != sizeof done) _exit(5);
      }
      _exit(0);
    }
    ::close(fds[1]);
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(300, 8000)(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    uint64_t done = 0;
    while (::read(fds[0], &done, sizeof done) == sizeof done) acked = std::max(acked, done);
    ::close(fds[0]);
    if (WIFSIGNALED(status)) ++kills;
    else ASSERT_EQ(WEXITSTATUS(status), 0) << "child failed in round " << round;
    auto a = AggState::Open(dir.path(), cfg);
    ASSERT_TRUE(a.ok()) << a.status();
    // Nothing acknowledged is lost; at most the one in flight at the kill is there in addition.
    ASSERT_GE((*a)->accepted(), acked) << "round " << round;
    ASSERT_LE((*a)->accepted(), acked + 1) << "round " << round;
    ASSERT_EQ((*a)->version(), (*a)->accepted()) << "applied twice?";
    ASSERT_EQ((*a)->theta_hash(), ref_hash[(*a)->accepted()]) << "round " << round;
    acked = (*a)->accepted();
  }
  auto a = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(a.ok());
  if (a->get()->accepted() < kTotal) {
    for (uint64_t i = (*a)->accepted(); i < kTotal; ++i) ASSERT_TRUE((*a)->Submit(MakeContribution(n, i, (*a)->version())).ok());
  }
  EXPECT_EQ((*a)->theta_hash(), ref_hash[kTotal]);
  EXPECT_GE(kills, 3) << "the test should kill the child mid-run several times";
}

// A contribution of n values, every one 0 but those listed, each of which gets code `code` in a
// block of absmax `absmax` (the other blocks' absmax is 1, codes 0).
Contribution Spiky(uint64_t n, uint64_t seq, uint64_t base, uint32_t inner, std::vector<uint64_t> at, uint8_t code,
                   float absmax, uint8_t peer = 9) {
  Contribution c;
  c.peer = Key(peer);
  c.sequence = seq;
  c.base_version = base;
  c.inner_steps = inner;
  c.tokens = 64;
  c.delta.n = n;
  c.delta.codes.assign(n, q8::kSignedZero);
  c.delta.absmax.assign(q8::NumBlocks(static_cast<int64_t>(n)), 1.0f);
  for (uint64_t i : at) {
    c.delta.codes[i] = code;
    c.delta.absmax[i / q8::kBlock] = absmax;
  }
  return c;
}

// The first defect: with --h-ref 20 a first contribution of one code 255 at absmax 3e38
// and 1 inner step passed every check, was logged, then overflowed in the rescale; the aggregator
// aborted, and every restart refused the log. Now the dry run refuses it before the log.
TEST(AggState, ContributionThatOverflowsInTheRescaleIsRefusedBeforeTheLog) {
  TempDir dir;
  SwarmRunConfig cfg = SmallRun();
  cfg.outer.h_ref = 20;
  cfg.theta_bound = 0;  // the bound against theta would refuse it too; this is about the arithmetic
  {
    auto a = AggState::Open(dir.path(), cfg);
    ASSERT_TRUE(a.ok()) << a.status();
    const uint64_t n = (*a)->theta().size();
    const std::string wal_before = ReadFile(dir.path() + "/wal.log");
    auto o = (*a)->Submit(Spiky(n, 1, 0, 1, {5}, 255, 3e38f));
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(o->verdict, SubmitVerdict::kRefused);
    EXPECT_EQ(o->code, "non_finite") << o->reason;
    EXPECT_NE(o->reason.find("h_ref/H = 20/1"), std::string::npos) << o->reason;
    EXPECT_EQ(ReadFile(dir.path() + "/wal.log"), wal_before) << "a refused contribution is never logged";
    EXPECT_EQ((*a)->version(), 0u);
    // The run goes on: an honest contribution applies.
    auto ok = (*a)->Submit(MakeContribution(n, 3, 0));
    ASSERT_TRUE(ok.ok()) << ok.status();
    EXPECT_EQ(ok->verdict, SubmitVerdict::kApplied) << ok->reason;
  }
  auto b = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(b.ok()) << "a restart always comes back: " << b.status();
  EXPECT_EQ((*b)->version(), 1u);
  EXPECT_EQ((*b)->replay_refused(), 0u);
}

// The rest of the outer step's arithmetic is dry-run too: a step that overflows theta is refused
// before the log, and the state (and its replay) stays where it was.
TEST(AggState, StepThatWouldMakeThetaInfiniteIsRefusedBeforeTheLog) {
  TempDir dir;
  SwarmRunConfig cfg = SmallRun();
  cfg.snapshot_every = 100;  // everything through the log
  cfg.outer.clip = false;
  cfg.outer.mu = 0;
  cfg.outer.eta = 1;
  cfg.theta_bound = 0;
  cfg.outlier_mult = 0;
  auto a = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(a.ok()) << a.status();
  const uint64_t n = (*a)->theta().size();
  // Every value at code 0 (the most negative) of a block scale near FLT_MAX: theta += ~3e38 each.
  std::vector<uint64_t> all(n);
  for (uint64_t i = 0; i < n; ++i) all[i] = i;
  auto first = (*a)->Submit(Spiky(n, 1, 0, 1, all, 0, 3e38f));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->verdict, SubmitVerdict::kApplied) << first->reason;
  const uint64_t hash1 = (*a)->theta_hash();
  const std::string wal1 = ReadFile(dir.path() + "/wal.log");
  auto second = (*a)->Submit(Spiky(n, 2, 1, 1, all, 0, 3e38f));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->verdict, SubmitVerdict::kRefused);
  EXPECT_EQ(second->code, "non_finite") << second->reason;
  EXPECT_EQ((*a)->theta_hash(), hash1);
  EXPECT_EQ(ReadFile(dir.path() + "/wal.log"), wal1);
  for (float x : (*a)->theta()) ASSERT_TRUE(std::isfinite(x));
  a->reset();
  auto b = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->theta_hash(), hash1);
}

// The second defect: a fresh run has no running RMS, so the outlier rule and the band did
// nothing and a first contribution of every code 255 at absmax 3e38 moved theta by ~7e37. The
// bound against theta's own RMS holds from the first contribution on.
TEST(AggState, FirstContributionIsBoundedAgainstTheta) {
  TempDir dir;
  SwarmRunConfig cfg = SmallRun();  // default flags
  auto a = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(a.ok()) << a.status();
  const uint64_t n = (*a)->theta().size();
  const uint64_t h0 = (*a)->theta_hash();
  std::vector<uint64_t> all(n);
  for (uint64_t i = 0; i < n; ++i) all[i] = i;
  auto o = (*a)->Submit(Spiky(n, 1, 0, 5, all, 255, 3e38f));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->verdict, SubmitVerdict::kRefused);
  EXPECT_EQ(o->code, "too_large") << o->reason;
  EXPECT_EQ((*a)->theta_hash(), h0);
  EXPECT_GT(o->theta_rms, 0.0);
  // The largest contribution the bound lets through moves theta by a bounded amount. The worst
  // case is one spike: g's RMS just under theta_bound x RMS(theta), its one value clipped to the
  // band (upper_mult x that RMS, the first contribution's own), stepped with eta (1 + mu).
  const double bound = cfg.theta_bound * (*a)->theta_rms();
  const double top = q8::BookValues(q8::Book::kSigned)[255];
  const float spike = static_cast<float>(0.99 * bound * std::sqrt(double(n)) / top);
  std::vector<float> before((*a)->theta().begin(), (*a)->theta().end());
  auto edge = (*a)->Submit(Spiky(n, 2, 0, 5, {5}, 255, spike));
  ASSERT_TRUE(edge.ok()) << edge.status();
  ASSERT_EQ(edge->verdict, SubmitVerdict::kApplied) << edge->reason;
  double moved = 0;
  for (uint64_t i = 0; i < n; ++i) moved = std::max(moved, std::fabs(double((*a)->theta()[i]) - before[i]));
  const double worst = cfg.outer.eta * (1 + cfg.outer.mu) * cfg.outer.upper_mult * bound;
  EXPECT_LE(moved, worst) << "theta moved by " << moved;
  EXPECT_GE(moved, 0.98 * worst) << "the spike should reach the band: " << moved;
  // The same contribution, 10x over the bound, is refused once the running RMS exists too.
  auto big = (*a)->Submit(Spiky(n, 3, 1, 5, all, 255, static_cast<float>(10 * (*a)->theta_rms())));
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->verdict, SubmitVerdict::kRefused);
}

// A log written before a check existed may hold a record that the replay now refuses (here: the
// record that the old aggregator logged and then aborted on). The replay refuses it as it would be
// refused live, counts it and goes on, so the aggregator starts; the record's index stays used.
TEST(AggState, ReplayRefusesALoggedRecordAsLiveAndStarts) {
  TempDir dir;
  SwarmRunConfig cfg = SmallRun();
  cfg.outer.h_ref = 20;
  cfg.snapshot_every = 100;
  uint64_t n = 0;
  {
    auto a = AggState::Open(dir.path(), cfg);
    ASSERT_TRUE(a.ok()) << a.status();
    n = (*a)->theta().size();
  }
  // The record as docs/formats/aggregator-state.md lays it out: header, q8 payload, XXH3.
  const Contribution bad = Spiky(n, 1, 0, 1, {5}, 255, 3e38f);
  std::string rec(96, '\0');
  auto put = [&](size_t off, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) rec[off + i] = static_cast<char>(v >> (8 * i));
  };
  put(0, 0x52575453, 4);
  const uint64_t payload = Q8PayloadBytes(n);
  put(8, 96 + payload + 8, 8);
  put(16, 0, 8);  // accept_index 0
  std::memcpy(rec.data() + 24, bad.peer.data(), 32);
  put(56, bad.sequence, 8);
  put(64, bad.base_version, 8);
  put(72, bad.inner_steps, 4);
  put(80, bad.tokens, 8);
  put(88, n, 8);
  std::vector<uint8_t> body;
  PackQ8(bad.delta.codes, bad.delta.absmax, body);
  rec.append(reinterpret_cast<const char*>(body.data()), body.size());
  const uint64_t sum = XXH3_64bits(rec.data(), rec.size());
  std::string tail(8, '\0');
  for (int i = 0; i < 8; ++i) tail[i] = static_cast<char>(sum >> (8 * i));
  rec += tail;
  WriteFile(dir.path() + "/wal.log", ReadFile(dir.path() + "/wal.log") + rec);

  auto b = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(b.ok()) << "the aggregator must start: " << b.status();
  EXPECT_EQ((*b)->replay_refused(), 1u);
  EXPECT_NE((*b)->replay_refusal().find("non_finite"), std::string::npos) << (*b)->replay_refusal();
  EXPECT_EQ((*b)->version(), 0u);
  // The same contribution sent again is refused the same way live; an honest one applies and is
  // logged after the refused record (index 1), and every later start agrees.
  auto again = (*b)->Submit(bad);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->code, "non_finite");
  auto ok = (*b)->Submit(MakeContribution(n, 4, 0));
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_EQ(ok->verdict, SubmitVerdict::kApplied) << ok->reason;
  const uint64_t h = (*b)->theta_hash();
  b->reset();
  auto c = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)->replay_refused(), 1u);
  EXPECT_EQ((*c)->replayed(), 2u);
  EXPECT_EQ((*c)->theta_hash(), h);
  ASSERT_TRUE((*c)->Snapshot().ok());
  c->reset();
  auto d = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->theta_hash(), h);
  EXPECT_EQ((*d)->accepted(), 2u) << "the refused record keeps its index";
}

// Prepare changes nothing the readers see; Commit does.
TEST(AggState, PrepareIsInvisibleUntilCommit) {
  TempDir dir;
  auto a = AggState::Open(dir.path(), SmallRun());
  ASSERT_TRUE(a.ok()) << a.status();
  AggState& st = **a;
  const uint64_t n = st.theta().size();
  const uint64_t h0 = st.theta_hash();
  std::vector<float> theta0(st.theta().begin(), st.theta().end());
  auto p = st.Prepare(MakeContribution(n, 0, 0));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->verdict, SubmitVerdict::kApplied);
  EXPECT_TRUE(st.prepared());
  EXPECT_EQ(st.version(), 0u);
  EXPECT_EQ(st.theta_hash(), h0);
  EXPECT_TRUE(std::equal(theta0.begin(), theta0.end(), st.theta().begin()));
  EXPECT_EQ(st.Update(0), nullptr);
  const SubmitOutcome o = st.Commit();
  EXPECT_EQ(o.verdict, SubmitVerdict::kApplied);
  EXPECT_EQ(st.version(), 1u);
  EXPECT_NE(st.theta_hash(), h0);
  EXPECT_EQ(st.theta_hash(), ThetaHash(st.theta()));
  ASSERT_NE(st.Update(0), nullptr);
}

// Found by outer_fuzz: a negative block scale passed Submit, was logged, and the replay (which reads
// the log with the wire's checks) refused it, so the aggregator could not start again.
TEST(AggState, NegativeBlockScaleIsRefusedBeforeTheLog) {
  TempDir dir;
  SwarmRunConfig cfg = SmallRun();
  auto a = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(a.ok()) << a.status();
  const uint64_t n = (*a)->theta().size();
  Contribution c = MakeContribution(n, 0, 0);
  c.delta.absmax.back() = -1e-29f;
  auto o = (*a)->Submit(c);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->verdict, SubmitVerdict::kRefused);
  EXPECT_NE(o->reason.find("absmax"), std::string::npos) << o->reason;
  a->reset();
  auto b = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->version(), 0u);
}

// Found by outer_fuzz: --upper inf (no upper clip) was written to run.json as null (JSON has no
// infinity), so the aggregator refused its own folder on restart.
TEST(AggState, NoUpperClipSurvivesARestart) {
  TempDir dir;
  SwarmRunConfig cfg = SmallRun();
  cfg.outer.upper_mult = std::numeric_limits<float>::infinity();
  { ASSERT_TRUE(AggState::Open(dir.path(), cfg).ok()); }
  auto b = AggState::Open(dir.path(), cfg);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(std::isinf((*b)->config().outer.upper_mult));
}

}  // namespace
}  // namespace strata::net
