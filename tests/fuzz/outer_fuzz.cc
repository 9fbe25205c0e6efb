// libFuzzer target for the outer step's refusal path (net/agg_state.h: Prepare's checks and dry
// run, optim/outer.h): random outer configs and random decoded contributions, block scales included
// (NaN, infinities, FLT_MAX, denormals, zero), must never abort the aggregator, never make theta
// or its state non-finite, and whatever reaches the log must apply on replay (replay_refused() is
// 0 and the replayed theta equals the live one). Build and run: tests/fuzz/README.md.
//
// Input: 12 bytes of config, then up to 4 contributions, each 4 bytes of header (inner steps,
// staleness, peer) then its codes and block scales (raw little-endian float32) taken from the
// bytes that follow, cycled when the input runs short.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "net/agg_state.h"
#include "optim/q8_book.h"
#include "runtime/le.h"
#include "tests/fuzz/fixtures.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace strata::net;
namespace fs = std::filesystem;

// The bytes of the input from `at` on, cycled (zeros for an empty input).
struct Cycle {
  const uint8_t* data;
  size_t size, at;
  uint8_t Next() { return size == 0 ? 0 : data[at++ % size]; }
  float NextFloat() {
    uint8_t b[4] = {Next(), Next(), Next(), Next()};
    return strata::GetF32(b);
  }
};

// Every config field mapped from a byte into its valid range (ValidateOuterConfig, Validate).
SwarmRunConfig ConfigFrom(const uint8_t* c) {
  SwarmRunConfig cfg = strata::fuzz::TinyAggRun();
  cfg.model.n_embd = 8;  // 1 056 parameters: five q8 blocks, the last one partial
  cfg.model.n_ctx = 8;
  cfg.model.vocab = 13;
  strata::optim::OuterConfig& o = cfg.outer;
  o.clip = c[0] & 1;
  o.nesterov = c[0] & 2;
  o.h_ref = (c[0] & 4) ? c[1] : 0;
  o.apply_every = 1 + (c[0] >> 3) % 4;
  o.eta = std::ldexp(1.0f, static_cast<int8_t>(c[2]) / 4);  // 2^-32 .. 2^31
  o.mu = c[3] / 256.0f;
  o.a = c[4] / 32.0f;
  o.upper_mult = c[5] == 255 ? std::numeric_limits<float>::infinity() : 0.25f + c[5] / 8.0f;
  o.lower_mult = std::min(o.upper_mult, c[6] / 64.0f);
  o.rms_beta = c[7] / 256.0f;
  o.tau_max = c[8] % 16;
  cfg.theta_bound = c[9] / 16.0f;  // 0: off
  cfg.outlier_mult = c[10] < 128 ? 0.0f : 1.0f + (c[10] - 128);
  cfg.snapshot_every = 1 + c[11] % 4;
  return cfg;
}

bool AllFinite(std::span<const float> x) {
  for (float v : x)
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 12) return 0;
  const SwarmRunConfig cfg = ConfigFrom(data);
  if (!cfg.Validate().ok()) STRATA_FUZZ_CHECK(false);  // the mapping above only makes valid configs
  const std::string dir = strata::fuzz::ScratchDir() + "/outer";
  std::error_code ec;
  fs::remove_all(dir, ec);
  auto opened = AggState::Open(dir, cfg);
  STRATA_FUZZ_CHECK(opened.ok());
  AggState& st = **opened;
  const uint64_t n = st.theta().size();
  Cycle in{data + 12, size - 12, 0};
  int logged = 0;
  for (int k = 0; k < 4 && in.at < in.size; ++k) {
    Contribution c;
    c.inner_steps = in.Next();                       // 0 is refused
    const uint8_t stale = in.Next();                 // 255: from the future
    c.peer.fill(static_cast<uint8_t>(1 + in.Next() % 3));
    c.sequence = static_cast<uint64_t>(k) + 1 + in.Next() % 2;  // sometimes a duplicate
    c.base_version = stale == 255 ? st.version() + 1 : st.version() - std::min<uint64_t>(st.version(), stale % 4);
    c.tokens = 1;
    c.delta.n = n;
    c.delta.codes.resize(n);
    c.delta.absmax.resize(strata::q8::NumBlocks(static_cast<int64_t>(n)));
    for (uint8_t& code : c.delta.codes) code = in.Next();
    for (float& a : c.delta.absmax) a = in.NextFloat();
    const uint64_t before = st.version();
    auto o = st.Submit(c);
    STRATA_FUZZ_CHECK(o.ok());  // only a failed write may fail Submit, and tmpfs does not fail
    if (o->verdict == SubmitVerdict::kApplied) {
      STRATA_FUZZ_CHECK(st.version() == before + 1);
      ++logged;
    } else if (o->verdict == SubmitVerdict::kPending) {
      ++logged;
    } else {
      STRATA_FUZZ_CHECK(st.version() == before);
      STRATA_FUZZ_CHECK(o->verdict == SubmitVerdict::kDuplicate || !o->code.empty());
    }
    STRATA_FUZZ_CHECK(AllFinite(st.theta()));
    STRATA_FUZZ_CHECK(st.theta_hash() == ThetaHash(st.theta()));
  }
  const uint64_t version = st.version(), hash = st.theta_hash(), accepted = st.accepted();
  opened->reset();
  // What was logged replays to the same state, every record applying.
  auto again = AggState::Open(dir, cfg);
  if (!again.ok()) std::fprintf(stderr, "reopen: %s\n", again.status().ToString().c_str());
  STRATA_FUZZ_CHECK(again.ok());
  STRATA_FUZZ_CHECK((*again)->replay_refused() == 0);
  STRATA_FUZZ_CHECK((*again)->version() == version);
  STRATA_FUZZ_CHECK((*again)->theta_hash() == hash);
  STRATA_FUZZ_CHECK((*again)->accepted() == accepted);
  if (logged > 0) strata::fuzz::Accept();
  return 0;
}
