// Faults under the offload engine: injected EIO, ENOSPC, -EAGAIN, short transfers, a failed
// fdatasync, and a crash between two writes (in process), a real file size limit, and real
// SIGKILLs of a child process at random instants. After each, the last committed step opens,
// every checksum verifies, and carrying on gives bitwise the state of a run that never failed.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "offload/offload_engine.h"
#include "tests/offload/engine_util.h"
#include "tests/offload/payloads.h"
#include "tests/offload/fault_backend.h"
#include "tests/offload/temp_dir.h"

namespace strata::offload {
namespace {

using namespace testing;

constexpr uint32_t kChunk = 2048;
constexpr uint64_t kParams = 9 * kChunk + 513;  // 10 chunks, the last partial

OffloadOptions Options(std::function<Result<std::unique_ptr<IoBackend>>(uint32_t)> backend = nullptr) {
  OffloadOptions o;
  o.layout = Layout::kQ8MasterMV;
  o.chunk_params = kChunk;
  o.ram_budget = 3 * Geometry{o.layout, kParams, kChunk}.slot_bytes();
  o.threads = 2;
  o.make_backend = std::move(backend);
  return o;
}


// The state after `steps` steps of a run that never failed.
std::vector<std::vector<uint8_t>> ReferencePayloads(uint64_t steps) {
  TempDir d;
  auto e = OffloadEngine::Create(d.path(), kParams, TestHyper(), Options(), InitialWeights);
  EXPECT_TRUE(e.ok());
  EXPECT_TRUE(RunSteps(e->get(), steps).ok());
  return Payloads(e->get());
}

// Runs to step 1 healthy, then step 2 under `rules` (expecting `want` and a message containing
// `expect`); then reopens with a healthy backend: step 1 must be committed and intact, and the
// finished run must equal the reference.
void FaultInStepTwo(FaultRules rules, StatusCode want, const std::string& expect) {
  TempDir d;
  {
    auto e = OffloadEngine::Create(d.path(), kParams, TestHyper(), Options(), InitialWeights);
    ASSERT_TRUE(e.ok());
    ASSERT_TRUE(RunSteps(e->get(), 1).ok());
  }
  FaultCounters counters;
  {
    auto e = OffloadEngine::Open(d.path(), Options(Faulty(rules, &counters)));
    ASSERT_TRUE(e.ok()) << e.status();
    Status st = RunSteps(e->get(), 2);
    if (want == StatusCode::kOk) {
      ASSERT_TRUE(st.ok()) << st;
    } else {
      ASSERT_EQ(st.code(), want) << st;
      EXPECT_NE(st.message().find(expect), std::string::npos) << st;
      EXPECT_NE(st.message().find(kStateFileName), std::string::npos) << st;
      EXPECT_EQ((*e)->committed_step(), 1u);
    }
  }
  EXPECT_GT(counters.injected + counters.shortened, 0u);
  auto e = OffloadEngine::Open(d.path(), Options());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->committed_step(), want == StatusCode::kOk ? 2u : 1u);
  EXPECT_TRUE((*e)->VerifyCommitted().ok());
  ASSERT_TRUE(RunSteps(e->get(), 3).ok());
  EXPECT_EQ(Payloads(e->get()), ReferencePayloads(3));
}

TEST(OffloadFaults, WriteEio) {
  FaultRules r;
  r.error_on_write = 4;
  FaultInStepTwo(r, StatusCode::kIOError, strerror(EIO));
}

TEST(OffloadFaults, WriteEnospc) {
  FaultRules r;
  r.error_on_write = 7;
  r.write_errno = ENOSPC;
  FaultInStepTwo(r, StatusCode::kIOError, "the disk is full");
}

TEST(OffloadFaults, ReadEio) {
  FaultRules r;
  r.error_on_read = 2;
  FaultInStepTwo(r, StatusCode::kIOError, "read at offset");
}

TEST(OffloadFaults, FailedFdatasyncDoesNotCommit) {
  FaultRules r;
  r.fail_fsync = true;
  FaultInStepTwo(r, StatusCode::kIOError, "fdatasync");
}

TEST(OffloadFaults, ShortTransfersAreFinished) {
  FaultRules r;
  r.short_every_write = 2;
  r.short_every_read = 3;
  FaultInStepTwo(r, StatusCode::kOk, "");
}

TEST(OffloadFaults, EagainIsRetried) {
  FaultRules r;
  r.eagain_on_write = 3;
  r.eagain_repeat = 5;
  FaultInStepTwo(r, StatusCode::kOk, "");
}

// A step that fails on its first read while the caller goes on handing in gradients, then
// retried at once, many times: nothing of the failed step may leak into the retry (gradients
// posted for it are dropped), and every retry must commit the same bytes as a clean run.
TEST(OffloadFaults, RetryAfterAnEarlyFailureIsClean) {
  const auto reference = ReferencePayloads(1);
  for (int round = 0; round < 40; ++round) {
    TempDir d;
    FaultRules r;
    r.error_on_read = 1 + round % 3;
    FaultCounters c;
    auto e = OffloadEngine::Create(d.path(), kParams, TestHyper(), Options(Faulty(r, &c)), InitialWeights);
    ASSERT_TRUE(e.ok());
    const Geometry& g = (*e)->geometry();
    std::vector<std::vector<float>> grads(g.n_chunks());
    ASSERT_TRUE((*e)->BeginStep(LearningRate(1), nullptr).ok());
    for (uint64_t k = 0; k < g.n_chunks(); ++k) {
      const uint64_t ch = g.n_chunks() - 1 - k;
      grads[ch].resize(g.chunk_len(ch));
      Gradient(1, ch, grads[ch]);
      (void)(*e)->SubmitGradient(ch, grads[ch]).ok();  // may be refused once the step failed
    }
    Status st = (*e)->EndStep();
    ASSERT_EQ(st.code(), StatusCode::kIOError) << st;
    ASSERT_EQ((*e)->committed_step(), 0u);
    ASSERT_TRUE(RunSteps(e->get(), 1).ok()) << "round " << round;
    ASSERT_TRUE((*e)->VerifyCommitted().ok());
    ASSERT_EQ(Payloads(e->get()), reference) << "round " << round;
  }
}

// The I/O layer itself breaks (a submit is refused with requests of other chunks in the kernel):
// the step fails without touching buffers the kernel still owns, the engine refuses to go on,
// and the directory opens again at the last committed step.
TEST(OffloadFaults, BrokenSubmitStopsTheEngineAndTheStateReopens) {
  TempDir d;
  {
    auto e = OffloadEngine::Create(d.path(), kParams, TestHyper(), Options(), InitialWeights);
    ASSERT_TRUE(e.ok());
    ASSERT_TRUE(RunSteps(e->get(), 1).ok());
  }
  FaultCounters c;
  FaultRules r;
  r.fail_submit_call = 6;
  {
    auto e = OffloadEngine::Open(d.path(), Options(Faulty(r, &c)));
    ASSERT_TRUE(e.ok());
    Status st = RunSteps(e->get(), 2);
    ASSERT_EQ(st.code(), StatusCode::kIOError) << st;
    EXPECT_NE(st.message().find("io_uring_submit refused"), std::string::npos) << st;
    Status again = (*e)->BeginStep(1e-3, nullptr);
    EXPECT_NE(again.message().find("open the state directory again"), std::string::npos) << again;
  }
  auto e = OffloadEngine::Open(d.path(), Options());
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->committed_step(), 1u);
  ASSERT_TRUE((*e)->VerifyCommitted().ok());
  ASSERT_TRUE(RunSteps(e->get(), 3).ok());
  EXPECT_EQ(Payloads(e->get()), ReferencePayloads(3));
}

// Two processes must never write one state directory: the second is refused while the first
// holds it, and may open it once the first is gone.
TEST(OffloadFaults, OneWriterAtATime) {
  TempDir d;
  auto a = OffloadEngine::Create(d.path(), kParams, TestHyper(), Options(), InitialWeights);
  ASSERT_TRUE(a.ok());
  auto b = OffloadEngine::Open(d.path(), Options());
  ASSERT_EQ(b.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(b.status().message().find("in use by another process"), std::string::npos) << b.status();
  a->reset();
  b = OffloadEngine::Open(d.path(), Options());
  EXPECT_TRUE(b.ok()) << b.status();
}

// The process "dies" just before its k-th write, for every k through creation and two steps:
// nothing after that point reaches the disk.
TEST(OffloadFaults, CrashBetweenAnyTwoWrites) {
  const auto reference = ReferencePayloads(2);
  const uint64_t writes_per_pass = Geometry{Layout::kQ8MasterMV, kParams, kChunk}.n_chunks();
  for (uint64_t k = 1; k <= 3 * writes_per_pass; ++k) {
    TempDir d;
    FaultRules r;
    r.crash_before_write = k;
    FaultCounters c;
    {
      auto e = OffloadEngine::Create(d.path(), kParams, TestHyper(), Options(Faulty(r, &c)), InitialWeights);
      if (e.ok()) {
        EXPECT_FALSE(RunSteps(e->get(), 2).ok()) << "crash before write " << k;
      }
    }
    auto e = OffloadEngine::Open(d.path(), Options());
    if (k <= writes_per_pass) {  // died during creation: nothing was ever committed
      ASSERT_EQ(e.status().code(), StatusCode::kNotFound) << k;
      e = OffloadEngine::Create(d.path(), kParams, TestHyper(), Options(), InitialWeights);
    }
    ASSERT_TRUE(e.ok()) << "crash before write " << k << ": " << e.status();
    EXPECT_EQ((*e)->committed_step(), k <= writes_per_pass ? 0u : (k - 1) / writes_per_pass - 1) << k;
    ASSERT_TRUE((*e)->VerifyCommitted().ok()) << k;
    ASSERT_TRUE(RunSteps(e->get(), 2).ok()) << k;
    ASSERT_EQ(Payloads(e->get()), reference) << "crash before write " << k;
  }
}

// A real limit from the kernel: a state larger than RLIMIT_FSIZE cannot be reserved. The error
// names the file and nothing is committed. (In a child: the limit is per process.)
TEST(OffloadFaults, FileSizeLimitAtCreateIsAClearError) {
  TempDir d;
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    rlimit lim{1 << 20, 1 << 20};
    setrlimit(RLIMIT_FSIZE, &lim);
    OffloadOptions o = Options();
    o.make_backend = MakePosixBackend;  // no threads of io_uring needed in the forked child
    auto e = OffloadEngine::Create(d.path(), 4 << 20, TestHyper(), o, InitialWeights);
    const bool ok = !e.ok() && e.status().code() == StatusCode::kIOError &&
                    e.status().message().find("state.strata: reserving") != std::string::npos &&
                    !std::filesystem::exists(d / kManifestName);
    if (!ok) std::fprintf(stderr, "unexpected: %s\n", e.ok() ? "created" : e.status().ToString().c_str());
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// ---- Real SIGKILLs -----------------------------------------------------------------------------

struct Child {
  static pid_t Spawn(const std::string& dir, uint64_t target, uint64_t params, uint32_t chunk, int buffers) {
    const std::string t = std::to_string(target), p = std::to_string(params), c = std::to_string(chunk),
                      b = std::to_string(buffers);
    const pid_t pid = fork();
    if (pid == 0) {
      execl(STRATA_CRASH_CHILD, STRATA_CRASH_CHILD, dir.c_str(), t.c_str(), p.c_str(), c.c_str(), b.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    return pid;
  }
};

// Waits up to `us` microseconds; returns true (and the status) if the child ended by itself.
bool WaitFor(pid_t pid, int64_t us, int* status) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  for (;;) {
    const pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

TEST(OffloadFaults, SigkillAtRandomInstantsResumesBitwiseIdentical) {
  constexpr uint64_t kSteps = 6, kKillParams = 3 << 20;
  constexpr uint32_t kKillChunk = 1 << 16;
#ifdef STRATA_SANITIZED
  constexpr int kTrials = 12;  // a sanitized child runs 5-10x slower: half the trials, same checks
#else
  constexpr int kTrials = 24;
#endif
  constexpr int kBuffers = 4;
  OffloadOptions o;
  o.chunk_params = kKillChunk;
  o.ram_budget = kBuffers * Geometry{Layout::kQ8MasterMV, kKillParams, kKillChunk}.slot_bytes();

  // The uninterrupted run, timed so the kills spread over creation and every step.
  TempDir ref;
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  const pid_t rp = Child::Spawn(ref.path(), kSteps, kKillParams, kKillChunk, kBuffers);
  ASSERT_EQ(waitpid(rp, &status, 0), rp);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "reference child failed";
  const int64_t run_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
  auto re = OffloadEngine::Open(ref.path(), o);
  ASSERT_TRUE(re.ok());
  const auto reference = Payloads(re->get());
  re->reset();

  std::mt19937_64 rng(20261121);
  int kills = 0, kills_mid_run = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    TempDir d;
    uint64_t last_committed = 0;
    bool finished = false;
    for (int attempt = 0; attempt < 6 && !finished; ++attempt) {
      const pid_t pid = Child::Spawn(d.path(), kSteps, kKillParams, kKillChunk, kBuffers);
      ASSERT_GT(pid, 0);
      const int64_t delay = static_cast<int64_t>(rng() % static_cast<uint64_t>(run_us + 1));
      if (WaitFor(pid, delay, &status)) {
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "trial " << trial << ": child failed";
        finished = true;
        break;
      }
      ASSERT_EQ(kill(pid, SIGKILL), 0);
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      ++kills;
      // What the kill left must open at a committed step and verify completely.
      if (!std::filesystem::exists(d / kManifestName)) continue;
      auto e = OffloadEngine::Open(d.path(), o);
      ASSERT_TRUE(e.ok()) << "trial " << trial << ": " << e.status();
      EXPECT_GE((*e)->committed_step(), last_committed);
      last_committed = (*e)->committed_step();
      if (last_committed > 0 && last_committed < kSteps) ++kills_mid_run;
      Status v = (*e)->VerifyCommitted();
      ASSERT_TRUE(v.ok()) << "trial " << trial << ": " << v;
    }
    if (!finished) {
      const pid_t pid = Child::Spawn(d.path(), kSteps, kKillParams, kKillChunk, kBuffers);
      ASSERT_EQ(waitpid(pid, &status, 0), pid);
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "trial " << trial << ": final child failed";
    }
    auto e = OffloadEngine::Open(d.path(), o);
    ASSERT_TRUE(e.ok()) << e.status();
    ASSERT_EQ((*e)->committed_step(), kSteps);
    ASSERT_TRUE((*e)->VerifyCommitted().ok());
    ASSERT_EQ(Payloads(e->get()), reference) << "trial " << trial;
  }
  std::printf("SIGKILL: %d kills over %d trials (%d between committed steps), run of %.0f ms\n", kills, kTrials,
              kills_mid_run, run_us / 1000.0);
  EXPECT_GE(kills, kTrials * 5 / 6);
  EXPECT_GE(kills_mid_run, kTrials * 5 / 24);
}

}  // namespace
}  // namespace strata::offload
