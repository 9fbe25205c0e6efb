// The offloaded step on real files through io_uring: every layout against the in-memory
// reference, resume, gradients in any order from another thread, the minimum budget, bad
// arguments, corruption named precisely, and the trace.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "offload/inspect.h"
#include "offload/offload_engine.h"
#include "optim/adamw.h"
#include "runtime/trace.h"
#include "tests/offload/engine_util.h"
#include "tests/offload/payloads.h"
#include "tests/offload/temp_dir.h"

namespace strata::offload {
namespace {

using namespace testing;

constexpr uint32_t kChunk = 1280;                  // 5 quant blocks: the payload is no multiple of 4 KiB
constexpr uint64_t kParams = 5 * kChunk + 300;     // and the last chunk is partial

OffloadOptions Options(Layout layout, size_t buffers) {
  OffloadOptions o;
  o.layout = layout;
  o.chunk_params = kChunk;
  o.ram_budget = buffers * Geometry{layout, kParams, kChunk}.slot_bytes();
  o.threads = 2;
  return o;
}

std::unique_ptr<OffloadEngine> MustCreate(const std::string& dir, Layout layout, size_t buffers = 3,
                                          uint64_t params = kParams) {
  OffloadOptions o = Options(layout, buffers);
  auto e = OffloadEngine::Create(dir, params, TestHyper(), o, InitialWeights);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

std::vector<float> InitialCallerWeights(const Geometry& g) {
  std::vector<float> w(g.n_params);
  for (uint64_t c = 0; c < g.n_chunks(); ++c)
    InitialWeights(c, std::span<float>(w.data() + g.chunk_begin(c), g.chunk_len(c)));
  return w;
}


// The same steps in memory, chunk by chunk, through optim/adamw.h.
struct Reference {
  Layout layout;
  Geometry geo;
  std::vector<float> w, m32, v32;
  std::vector<uint8_t> mc, vc;
  std::vector<float> ma, va;
  explicit Reference(Layout l) : layout(l), geo{l, kParams, kChunk} {
    w = InitialCallerWeights(geo);
    m32.assign(kParams, 0);
    v32.assign(kParams, 0);
    mc.assign(kParams, q8::kSignedZero);
    vc.assign(kParams, q8::kUnsignedZero);
    ma.assign(geo.n_chunks() * 5, 0.0f);
    va.assign(geo.n_chunks() * 5, 0.0f);
  }
  void Step(uint64_t step) {
    optim::AdamWConfig cfg{LearningRate(step), 0.9, 0.999, 1e-8, 0.01};
    for (uint64_t c = 0; c < geo.n_chunks(); ++c) {
      const uint32_t n = geo.chunk_len(c);
      const size_t off = c * kChunk, nb = q8::NumBlocks(n);
      std::vector<float> g(n);
      Gradient(step, c, g);
      std::span<float> p(w.data() + off, n);
      if (IsFp32(layout)) {
        ASSERT_TRUE(optim::AdamWStep(cfg, step, p, g, std::span<float>(m32.data() + off, n),
                                     std::span<float>(v32.data() + off, n)).ok());
      } else {
        optim::Q8Moments q{std::span<uint8_t>(mc.data() + off, n), std::span<uint8_t>(vc.data() + off, n),
                           std::span<float>(ma.data() + c * 5, nb), std::span<float>(va.data() + c * 5, nb)};
        ASSERT_TRUE(optim::AdamW8bitStep(cfg, step, p, g, q).ok());
      }
    }
  }
  // Compares with the committed slots (and the caller's weights for layouts without master).
  void Expect(OffloadEngine* e, const std::vector<float>* caller_w) {
    for (uint64_t c = 0; c < geo.n_chunks(); ++c) {
      auto s = e->ReadCommittedSlot(c);
      ASSERT_TRUE(s.ok());
      const uint32_t n = geo.chunk_len(c);
      const size_t off = c * kChunk, nb = q8::NumBlocks(n);
      SlotView v = ViewSlot(layout, s->data(), n);
      const float* weights = v.master ? v.master : caller_w->data() + off;
      ASSERT_EQ(std::memcmp(weights, w.data() + off, 4 * n), 0) << "weights of chunk " << c;
      if (IsFp32(layout)) {
        ASSERT_EQ(std::memcmp(v.m32, m32.data() + off, 4 * n), 0) << "m of chunk " << c;
        ASSERT_EQ(std::memcmp(v.v32, v32.data() + off, 4 * n), 0) << "v of chunk " << c;
      } else {
        ASSERT_EQ(std::memcmp(v.m_codes, mc.data() + off, n), 0) << "m codes of chunk " << c;
        ASSERT_EQ(std::memcmp(v.v_codes, vc.data() + off, n), 0) << "v codes of chunk " << c;
        ASSERT_EQ(std::memcmp(v.m_absmax, ma.data() + c * 5, 4 * nb), 0) << "m absmax of chunk " << c;
        ASSERT_EQ(std::memcmp(v.v_absmax, va.data() + c * 5, 4 * nb), 0) << "v absmax of chunk " << c;
      }
    }
  }
};

class EveryLayout : public ::testing::TestWithParam<Layout> {};

TEST_P(EveryLayout, StepsMatchTheInMemoryReferenceBitForBit) {
  const Layout layout = GetParam();
  TempDir d;
  auto e = MustCreate(d.path(), layout);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->committed_step(), 0u);
  EXPECT_EQ(e->staging_buffers(), 3u);
  std::vector<float> caller_w = InitialCallerWeights(e->geometry());
  Reference ref(layout);
  ref.Expect(e.get(), &caller_w);  // step 0: initial weights, zero moments
  ASSERT_TRUE(RunSteps(e.get(), 3, HasMaster(layout) ? nullptr : &caller_w).ok());
  for (uint64_t s = 1; s <= 3; ++s) ref.Step(s);
  EXPECT_EQ(e->committed_step(), 3u);
  ref.Expect(e.get(), &caller_w);
  const OffloadStats st = e->stats();
  const Geometry& g = e->geometry();
  // Every step reads and writes each chunk's slot once (the last, partial chunk a shorter one).
  EXPECT_EQ(st.bytes_read, 3 * (5 * g.slot_bytes() + AlignUp(kSlotHeaderBytes + Geometry::PayloadBytes(layout, 300), kAlign)));
  EXPECT_EQ(st.bytes_written, 4 * (5 * g.slot_bytes() + AlignUp(kSlotHeaderBytes + Geometry::PayloadBytes(layout, 300), kAlign)));
  EXPECT_EQ(st.chunks_updated, 3 * g.n_chunks());
  EXPECT_TRUE(e->VerifyCommitted().ok());
}

INSTANTIATE_TEST_SUITE_P(Layouts, EveryLayout, ::testing::Values(Layout::kQ8MV, Layout::kQ8MasterMV, Layout::kFp32MV, Layout::kFp32MasterMV),
                         [](const auto& info) { return std::string(LayoutName(info.param)); });

TEST(OffloadEngine, ResumeIsBitwiseIdenticalToAnUninterruptedRun) {
  TempDir a, b;
  auto ea = MustCreate(a.path(), Layout::kQ8MasterMV);
  ASSERT_TRUE(RunSteps(ea.get(), 4).ok());
  {
    auto eb = MustCreate(b.path(), Layout::kQ8MasterMV);
    ASSERT_TRUE(RunSteps(eb.get(), 2).ok());
  }
  auto eb = OffloadEngine::Open(b.path(), Options(Layout::kQ8MasterMV, 2));
  ASSERT_TRUE(eb.ok()) << eb.status();
  EXPECT_EQ((*eb)->committed_step(), 2u);
  ASSERT_TRUE(RunSteps(eb->get(), 4).ok());
  EXPECT_EQ(Payloads(ea.get()), Payloads(eb->get()));
}

// Gradients arrive in a random order, from another thread, with pauses, and the budget is the
// minimum of two staging buffers: no deadlock, and the same bytes as the canonical order.
TEST(OffloadEngine, GradientsInAnyOrderFromAnotherThread) {
  TempDir a, b;
  auto ea = MustCreate(a.path(), Layout::kQ8MasterMV, 2);
  auto eb = MustCreate(b.path(), Layout::kQ8MasterMV, 2);
  ASSERT_TRUE(ea && eb);
  EXPECT_EQ(eb->staging_buffers(), 2u);
  ASSERT_TRUE(RunSteps(ea.get(), 3).ok());
  const Geometry& g = eb->geometry();
  std::mt19937 rng(5);
  for (uint64_t step = 1; step <= 3; ++step) {
    std::vector<uint64_t> perm(g.n_chunks());
    for (uint64_t c = 0; c < perm.size(); ++c) perm[c] = c;
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<std::vector<float>> grads(g.n_chunks());
    std::atomic<int> done{0};
    ASSERT_TRUE(eb->BeginStep(LearningRate(step), [&](uint64_t, std::span<const float>) { ++done; }).ok());
    std::thread t([&] {
      for (uint64_t c : perm) {
        grads[c].resize(g.chunk_len(c));
        Gradient(step, c, grads[c]);
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
        EXPECT_TRUE(eb->SubmitGradient(c, grads[c]).ok());
      }
    });
    t.join();
    ASSERT_TRUE(eb->EndStep().ok());
    EXPECT_EQ(done.load(), static_cast<int>(g.n_chunks()));
  }
  EXPECT_EQ(Payloads(ea.get()), Payloads(eb.get()));
}

// Where io_uring is refused (old kernels, seccomp), the POSIX backend runs the same pipeline and
// must give the same bytes.
TEST(OffloadEngine, PosixBackendGivesTheSameBytes) {
  TempDir a, b;
  auto ea = MustCreate(a.path(), Layout::kQ8MasterMV);
  OffloadOptions o = Options(Layout::kQ8MasterMV, 2);
  o.make_backend = MakePosixBackend;
  auto eb = OffloadEngine::Create(b.path(), kParams, TestHyper(), o, InitialWeights);
  ASSERT_TRUE(eb.ok()) << eb.status();
  EXPECT_EQ((*eb)->backend_name(), "posix");
  ASSERT_TRUE(RunSteps(ea.get(), 3).ok());
  ASSERT_TRUE(RunSteps(eb->get(), 3).ok());
  EXPECT_EQ(Payloads(ea.get()), Payloads(eb->get()));
}

TEST(OffloadEngine, NewWeightsAreHandedOutAsSoonAsTheyExist) {
  TempDir d;
  auto e = MustCreate(d.path(), Layout::kQ8MasterMV);
  const Geometry& g = e->geometry();
  std::vector<float> got(g.n_params, -1.0f);
  std::vector<std::vector<float>> grads(g.n_chunks());
  std::vector<uint64_t> done_order;
  ASSERT_TRUE(e->BeginStep(LearningRate(1), [&](uint64_t c, std::span<const float> w) {
                 std::copy(w.begin(), w.end(), got.begin() + c * kChunk);
                 done_order.push_back(c);
               }).ok());
  for (uint64_t c = g.n_chunks(); c-- > 0;) {
    grads[c].resize(g.chunk_len(c));
    Gradient(1, c, grads[c]);
    ASSERT_TRUE(e->SubmitGradient(c, grads[c]).ok());
  }
  ASSERT_TRUE(e->EndStep().ok());
  EXPECT_EQ(done_order.size(), g.n_chunks());
  EXPECT_EQ(done_order.front(), g.n_chunks() - 1);  // backward order: the last chunk first
  for (uint64_t c = 0; c < g.n_chunks(); ++c) {
    auto s = e->ReadCommittedSlot(c);
    SlotView v = ViewSlot(g.layout, s->data(), g.chunk_len(c));
    ASSERT_EQ(std::memcmp(v.master, got.data() + c * kChunk, 4 * g.chunk_len(c)), 0) << c;
  }
}

TEST(OffloadEngine, MissingGradientsFailTheStepWithoutCommitting) {
  TempDir a, b;
  auto ea = MustCreate(a.path(), Layout::kQ8MasterMV);
  auto eb = MustCreate(b.path(), Layout::kQ8MasterMV);
  ASSERT_TRUE(RunSteps(ea.get(), 2).ok());
  ASSERT_TRUE(RunSteps(eb.get(), 1).ok());
  std::vector<float> g(kChunk);
  Gradient(2, 0, g);
  ASSERT_TRUE(eb->BeginStep(LearningRate(2), nullptr).ok());
  ASSERT_TRUE(eb->SubmitGradient(0, g).ok());
  Status st = eb->EndStep();
  ASSERT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("never submitted (the first is chunk 1)"), std::string::npos) << st;
  EXPECT_EQ(eb->committed_step(), 1u);
  EXPECT_TRUE(eb->VerifyCommitted().ok());
  ASSERT_TRUE(RunSteps(eb.get(), 2).ok());  // the retried step is the same step
  EXPECT_EQ(Payloads(ea.get()), Payloads(eb.get()));
}

TEST(OffloadEngine, BadArgumentsAreNamed) {
  TempDir d;
  auto e = MustCreate(d.path(), Layout::kQ8MV);
  std::vector<float> g(kChunk), w(kChunk), small(7);
  EXPECT_EQ(e->SubmitGradient(0, g, w).code(), StatusCode::kInvalidArgument);  // no step open
  EXPECT_EQ(e->EndStep().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(e->BeginStep(-1.0, nullptr).code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e->BeginStep(1e-3, nullptr, {0, 0}).message().find("listed twice"), std::string::npos);
  ASSERT_TRUE(e->BeginStep(1e-3, nullptr).ok());
  EXPECT_NE(e->BeginStep(1e-3, nullptr).message().find("still open"), std::string::npos);
  EXPECT_NE(e->SubmitGradient(99, g, w).message().find("out of range"), std::string::npos);
  EXPECT_NE(e->SubmitGradient(0, small, w).message().find("gradient of 7 values, want 1280"), std::string::npos);
  EXPECT_NE(e->SubmitGradient(0, g).message().find("keeps no master weights"), std::string::npos);
  ASSERT_TRUE(e->SubmitGradient(0, g, w).ok());
  EXPECT_NE(e->SubmitGradient(0, g, w).message().find("submitted twice"), std::string::npos);
  EXPECT_FALSE(e->EndStep().ok());  // the other chunks never came
  EXPECT_EQ(e->committed_step(), 0u);
}

TEST(OffloadEngine, RefusesABudgetBelowTwoBuffersAndAnExistingState) {
  TempDir d;
  OffloadOptions o = Options(Layout::kQ8MasterMV, 1);
  auto e = OffloadEngine::Create(d.path(), kParams, TestHyper(), o, InitialWeights);
  ASSERT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("--offload-ram"), std::string::npos) << e.status();
  EXPECT_NE(e.status().message().find("at least 2"), std::string::npos) << e.status();
  auto ok = MustCreate(d.path(), Layout::kQ8MasterMV);
  ASSERT_TRUE(ok);
  ok.reset();
  auto again = OffloadEngine::Create(d.path(), kParams, TestHyper(), Options(Layout::kQ8MasterMV, 3), InitialWeights);
  ASSERT_EQ(again.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(again.status().message().find("already holds a strata state"), std::string::npos);
  auto reopened = OffloadEngine::Open(d.path(), Options(Layout::kQ8MasterMV, 3));
  ASSERT_TRUE(reopened.ok()) << reopened.status();  // untouched by the refused Create
  EXPECT_TRUE((*reopened)->VerifyCommitted().ok());
}

// ---- Corruption --------------------------------------------------------------------------------

std::vector<uint8_t> ReadFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  std::vector<uint8_t> b;
  if (!f) return b;
  std::fseek(f, 0, SEEK_END);
  b.resize(std::ftell(f));
  std::fseek(f, 0, SEEK_SET);
  EXPECT_EQ(std::fread(b.data(), 1, b.size(), f), b.size());
  std::fclose(f);
  return b;
}
void FlipByte(const std::string& path, uint64_t off) {
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  uint8_t c;
  ASSERT_EQ(::pread(fd, &c, 1, off), 1);
  c ^= 0x5a;
  ASSERT_EQ(::pwrite(fd, &c, 1, off), 1);
  ::fsync(fd);
  ::close(fd);
}

TEST(OffloadEngine, FlippedByteInACommittedSlotIsNamedAndNothingCommittedIsOverwritten) {
  TempDir d;
  auto e = MustCreate(d.path(), Layout::kQ8MasterMV);
  ASSERT_TRUE(RunSteps(e.get(), 2).ok());
  const Geometry g = e->geometry();
  const uint64_t off = g.slot_offset(3, 0) + kSlotHeaderBytes + 1000;  // step 2 lives in slot A
  e.reset();
  FlipByte(d / kStateFileName, off);
  const std::vector<uint8_t> before = ReadFile(d / kStateFileName);

  auto r = OffloadEngine::Open(d.path(), Options(Layout::kQ8MasterMV, 3));
  ASSERT_TRUE(r.ok());  // opening reads only the header; the slots are checked when read
  std::vector<uint64_t> bad;
  Status v = (*r)->VerifyCommitted([&](uint64_t c, const Status& s) { if (!s.ok()) bad.push_back(c); });
  ASSERT_EQ(v.code(), StatusCode::kCorruption);
  EXPECT_EQ(bad, std::vector<uint64_t>{3});
  EXPECT_NE(v.message().find("slot A of chunk 3 (bytes " + std::to_string(g.slot_offset(3, 0))), std::string::npos) << v;
  EXPECT_NE(v.message().find(d / kStateFileName), std::string::npos) << v;
  EXPECT_NE(v.message().find("checksum mismatch"), std::string::npos) << v;

  Status st = RunSteps(r->get(), 3);
  ASSERT_EQ(st.code(), StatusCode::kCorruption) << st;
  EXPECT_NE(st.message().find("chunk 3"), std::string::npos) << st;
  EXPECT_EQ((*r)->committed_step(), 2u);
  r->reset();
  // The committed slots (A) of every chunk, the header and the manifest are byte for byte as before.
  const std::vector<uint8_t> after = ReadFile(d / kStateFileName);
  ASSERT_EQ(after.size(), before.size());
  EXPECT_EQ(std::memcmp(after.data(), before.data(), kFileHeaderBytes), 0);
  for (uint64_t c = 0; c < g.n_chunks(); ++c)
    EXPECT_EQ(std::memcmp(after.data() + g.slot_offset(c, 0), before.data() + g.slot_offset(c, 0), g.slot_bytes()), 0) << c;
  auto m = ReadManifest(d.path());
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->committed_step, 2u);
}

TEST(OffloadEngine, TruncatedStateFileIsNamed) {
  TempDir d;
  { auto e = MustCreate(d.path(), Layout::kQ8MV); }
  const std::string path = d / kStateFileName;
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 4096);
  auto r = OffloadEngine::Open(d.path(), Options(Layout::kQ8MV, 3));
  ASSERT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status();
  std::filesystem::resize_file(path, 100);
  r = OffloadEngine::Open(d.path(), Options(Layout::kQ8MV, 3));
  ASSERT_EQ(r.status().code(), StatusCode::kCorruption) << r.status();
}

TEST(OffloadEngine, BadOrMissingManifestOrStateFile) {
  TempDir d;
  { auto e = MustCreate(d.path(), Layout::kQ8MV); }
  const std::string man = d / kManifestName;
  FlipByte(man, 30);
  auto r = OffloadEngine::Open(d.path(), Options(Layout::kQ8MV, 3));
  ASSERT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find(man), std::string::npos) << r.status();
  std::filesystem::remove(man);
  r = OffloadEngine::Open(d.path(), Options(Layout::kQ8MV, 3));
  ASSERT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("MANIFEST: missing"), std::string::npos) << r.status();

  TempDir d2;
  { auto e = MustCreate(d2.path(), Layout::kQ8MV); }
  std::filesystem::remove(d2 / kStateFileName);
  r = OffloadEngine::Open(d2.path(), Options(Layout::kQ8MV, 3));
  ASSERT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("state.strata: missing"), std::string::npos) << r.status();

  // A manifest from another run does not open this state file.
  TempDir d3;
  { auto e = MustCreate(d3.path(), Layout::kQ8MV); }
  std::filesystem::copy_file(d3 / kManifestName, d2 / kManifestName, std::filesystem::copy_options::overwrite_existing);
  { auto e = MustCreate(d2.path() + "/x", Layout::kQ8MV); }
  std::filesystem::copy_file(d2 / "x/state.strata", d2 / kStateFileName);
  r = OffloadEngine::Open(d2.path(), Options(Layout::kQ8MV, 3));
  ASSERT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("another state file"), std::string::npos) << r.status();
}

// Without a manifest, what the state file proves decides whether --resume may start over: only
// when no step after 0 can have been committed (docs/formats/state-file.md, "A state directory
// without a manifest").
TEST(OffloadEngine, MissingManifestCommitEvidence) {
  auto evidence = [](const std::string& dir) {
    auto r = InspectState(dir, /*verify=*/false);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : InspectReport{};
  };
  TempDir d;
  { auto e = MustCreate(d.path(), Layout::kQ8MasterMV); }
  EXPECT_EQ(evidence(d.path()).evidence, CommitEvidence::kManifestValid);

  // Created (step 0 in every A slot), then the manifest is gone: at most step 0 was committed.
  std::filesystem::remove(d / kManifestName);
  InspectReport r = evidence(d.path());
  EXPECT_EQ(r.evidence, CommitEvidence::kAtMostStep0) << r.EvidenceText();
  EXPECT_TRUE(NothingCommitted(r.evidence));
  EXPECT_EQ(r.newest_slot_step, 0u);
  EXPECT_NE(r.ToText(false).find("no slot holds a step after 0"), std::string::npos) << r.ToText(false);

  // Two steps, then the manifest is gone: slot A of some chunk holds step 2, proof of a commit.
  TempDir d2;
  {
    auto e = MustCreate(d2.path(), Layout::kQ8MasterMV);
    ASSERT_TRUE(RunSteps(e.get(), 2).ok());
  }
  std::filesystem::remove(d2 / kManifestName);
  r = evidence(d2.path());
  EXPECT_EQ(r.evidence, CommitEvidence::kCommitted);
  EXPECT_FALSE(NothingCommitted(r.evidence));
  EXPECT_EQ(r.newest_slot_step, 2u);
  EXPECT_NE(r.EvidenceText().find("holds step 2, which is written only after step 1 was committed"), std::string::npos)
      << r.EvidenceText();
  EXPECT_NE(r.EvidenceText().find("slot A of chunk "), std::string::npos) << r.EvidenceText();
  // A damaged manifest is judged the same way (inspect reports it, and the slots).
  std::ofstream(d2 / kManifestName) << "not a manifest";
  EXPECT_EQ(evidence(d2.path()).evidence, CommitEvidence::kCommitted);
  std::filesystem::remove(d2 / kManifestName);

  // A damaged header hides the slots: assume a commit.
  const std::string path = d2 / kStateFileName;
  FlipByte(path, 20);
  EXPECT_EQ(evidence(d2.path()).evidence, CommitEvidence::kUnknown);
  EXPECT_FALSE(NothingCommitted(CommitEvidence::kUnknown));

  // Creation cut short before the header: a header of zeros, or a file shorter than a header.
  {
    std::vector<uint8_t> zeros(kFileHeaderBytes, 0);
    const int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, zeros.data(), zeros.size(), 0), static_cast<ssize_t>(zeros.size()));
    ::close(fd);
  }
  EXPECT_EQ(evidence(d2.path()).evidence, CommitEvidence::kNothingWritten);
  std::filesystem::resize_file(path, 0);
  EXPECT_EQ(evidence(d2.path()).evidence, CommitEvidence::kNothingWritten);
  EXPECT_TRUE(NothingCommitted(CommitEvidence::kNothingWritten));
  // No state file at all.
  std::filesystem::remove(path);
  EXPECT_EQ(evidence(d2.path()).evidence, CommitEvidence::kNoStateFile);
  EXPECT_TRUE(NothingCommitted(CommitEvidence::kNoStateFile));
}

TEST(OffloadEngine, TracesEveryStageOfEveryChunk) {
  TempDir d;
  Tracer tracer;
  OffloadOptions o = Options(Layout::kQ8MasterMV, 3);
  o.tracer = &tracer;
  auto e = OffloadEngine::Create(d.path(), kParams, TestHyper(), o, InitialWeights);
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(RunSteps(e->get(), 1).ok());
  auto j = nlohmann::json::parse(tracer.ToJson());
  std::map<std::string, int> count;
  for (const auto& ev : j["traceEvents"])
    if (ev["ph"] == "X") ++count[ev["name"].get<std::string>()];
  const int n = static_cast<int>((*e)->geometry().n_chunks());
  EXPECT_EQ(count["initialize"], n);
  EXPECT_EQ(count["read"], n);
  EXPECT_EQ(count["update"], n);
  EXPECT_EQ(count["write"], 2 * n);
  EXPECT_EQ(count["commit"], 2);
}

}  // namespace
}  // namespace strata::offload
