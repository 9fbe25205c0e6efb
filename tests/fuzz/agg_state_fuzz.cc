// libFuzzer target for the aggregator's durable state (AggState::Open, net/agg_state.h,
// docs/formats/aggregator-state.md): snapshot.bin and wal.log have no decoder of their own, so
// each input becomes an aggregator folder that Open loads and replays. The input is snapshot.bin,
// then the separator line "\n--wal.log--\n", then wal.log (no separator: no wal.log at all, which
// Open must also survive). The folder's run.json is a valid one of a tiny model (29 parameters),
// written by Open itself once at start.
//
// Each input is opened twice: as it is, and resealed (the snapshot's trailing checksum, the WAL
// header's checksum and each whole record's checksum recomputed), so the fuzzer reaches the field
// checks and the replay. Any input is refused with a Corruption or opens; a state that opens is
// whole: a snapshot of it reopens to the same version, theta, accept count and peer table, and it
// takes one more contribution without error. Build and run: tests/fuzz/README.md.
#include <xxhash.h>

#include <filesystem>
#include <string>
#include <vector>

#include "net/agg_state.h"
#include "net/wire.h"
#include "runtime/le.h"
#include "tests/fuzz/fixtures.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace strata::net;
namespace fs = std::filesystem;

SwarmRunConfig TinyRun() { return strata::fuzz::TinyAggRun(); }

// run.json as Open writes it for TinyRun (made once, in a folder of its own).
const std::string& RunJson() {
  static const std::string text = [] {
    const std::string dir = strata::fuzz::ScratchDir() + "/template";
    auto a = AggState::Open(dir, TinyRun());
    STRATA_FUZZ_CHECK(a.ok());
    a->reset();
    const std::vector<uint8_t> b = strata::fuzz::ReadBytes(dir + "/run.json");
    return std::string(b.begin(), b.end());
  }();
  return text;
}

void OpenOne(std::string_view snapshot, const std::string_view* wal) {
  const std::string dir = strata::fuzz::ScratchDir() + "/agg";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  strata::fuzz::WriteBytes(dir + "/run.json", RunJson());
  strata::fuzz::WriteBytes(dir + "/snapshot.bin", snapshot);
  if (wal) strata::fuzz::WriteBytes(dir + "/wal.log", *wal);
  auto a = AggState::Open(dir, TinyRun());
  if (!a.ok()) {
    if (!a.status().IsCorruption()) std::fprintf(stderr, "%s\n", a.status().ToString().c_str());
    STRATA_FUZZ_CHECK(a.status().IsCorruption());
    return;
  }
  AggState& s = **a;
  const uint64_t n = TinyRun().NumParams();
  STRATA_FUZZ_CHECK(s.theta().size() == n);
  STRATA_FUZZ_CHECK(s.theta_hash() == ThetaHash(s.theta()));
  const uint64_t version = s.version(), accepted = s.accepted(), hash = s.theta_hash();
  const std::map<PeerKey, PeerRecord> peers = s.peers();
  STRATA_FUZZ_CHECK(s.Snapshot().ok());
  a->reset();
  auto b = AggState::Open(dir, TinyRun());
  STRATA_FUZZ_CHECK(b.ok());
  STRATA_FUZZ_CHECK((*b)->version() == version && (*b)->accepted() == accepted && (*b)->theta_hash() == hash);
  STRATA_FUZZ_CHECK((*b)->peers().size() == peers.size());
  for (const auto& [k, r] : peers) {
    auto it = (*b)->peers().find(k);
    STRATA_FUZZ_CHECK(it != (*b)->peers().end() && it->second.last_sequence == r.last_sequence &&
                      it->second.contributions == r.contributions && it->second.tokens == r.tokens);
  }
  // One more contribution: whatever the verdict, the state must take it without an error.
  Contribution c;
  c.peer.fill(0xEE);
  c.sequence = uint64_t{1} << 62;
  c.base_version = version;
  c.inner_steps = 3;
  c.tokens = 64;
  std::vector<float> delta(n, 1e-3f);
  strata::optim::ErrorFeedbackEncoder(n).Encode(delta, c.delta);
  auto out = (*b)->Submit(c);
  STRATA_FUZZ_CHECK(out.ok());
  strata::fuzz::Accept();
}

std::string Resealed(std::string_view snapshot) {
  std::string s(snapshot);
  if (s.size() >= 80) {
    auto* p = reinterpret_cast<uint8_t*>(s.data());
    strata::PutU64(p + s.size() - 8, XXH3_64bits(p, s.size() - 8));
  }
  return s;
}

std::string ResealedWal(std::string_view wal) {
  std::string w(wal);
  auto* p = reinterpret_cast<uint8_t*>(w.data());
  if (w.size() < 32) return w;
  strata::PutU64(p + 24, XXH3_64bits(p, 24));
  const uint64_t rec = 96 + Q8PayloadBytes(TinyRun().NumParams()) + 8;
  for (uint64_t off = 32; off + rec <= w.size(); off += rec) {
    strata::PutU64(p + off + rec - 8, XXH3_64bits(p + off, rec - 8));
  }
  return w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto [snapshot, wal] = strata::fuzz::SplitAt(data, size, strata::fuzz::kAggWalSeparator);
  const bool has_wal = wal.data() != nullptr;
  OpenOne(snapshot, has_wal ? &wal : nullptr);
  const std::string s2 = Resealed(snapshot), w2 = ResealedWal(wal);
  const std::string_view w2v = w2;
  OpenOne(s2, has_wal ? &w2v : nullptr);
  return 0;
}
