// `strata finetune` end to end, as a user runs it: the real binary in a child process on a real
// corpus (a Debian fortunes file), real SIGKILLs at random instants and a real SIGINT, resumed
// until done and compared byte for byte with a run that was never interrupted. Plus the learning
// rate schedule and every kind of bad input, refused before training and without damage.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "train/finetune.h"
#include "offload/state_file.h"
#include "tests/offload/temp_dir.h"
#include "tests/process_util.h"

namespace strata::train {
namespace {

namespace fs = std::filesystem;
constexpr char kCorpus[] = "/usr/share/games/fortunes/wisdom";

// A tiny model with many chunks, so kills land in every phase of a step.
std::vector<std::string> TinyRun(const std::string& out) {
  return {"finetune", "--data", kCorpus, "--layers", "2", "--heads", "2", "--width", "32", "--context", "32",
          "--seq", "32", "--batch", "4", "--steps", "150", "--warmup", "5", "--lr", "3e-3", "--eval-every", "20",
          "--eval-batches", "2", "--sample", "16", "--threads", "2", "--chunk", "2048", "--out", out,
          "--no-progress"};
}

using testing_util::Child;
using testing_util::Slurp;

// Runs to the end (each test bounds its own time: 10 minutes at most, then SIGKILL).
int Wait(Child c) { return testing_util::WaitFor(c, 600); }
Child Spawn(const std::vector<std::string>& args, const std::string& log, const std::string& cache) {
  return testing_util::SpawnStrata(args, log, cache);
}

int RunToEnd(const std::vector<std::string>& args, const std::string& log, const std::string& cache) {
  return Wait(Spawn(args, log, cache));
}

class FinetuneProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kCorpus)) GTEST_SKIP() << kCorpus << " is absent (Debian package fortunes; scripts/setup.sh installs it)";
  }
  // The uninterrupted run, and how long it took.
  void Reference() {
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(RunToEnd(TinyRun(dir_ / "ref"), dir_ / "ref.log", dir_ / "cache"), 0) << Slurp(dir_ / "ref.log");
    ref_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  void ExpectSameAsReference(const std::string& out) {
    EXPECT_EQ(Slurp(out + "/model.safetensors"), Slurp(dir_ / "ref/model.safetensors")) << "weights differ";
    // The same training losses, step by step, and the same validation losses where the reference
    // evaluated (an interrupted run also evaluates at the step it stops; timings differ).
    auto field = [](const std::string& line, const char* key) {
      const size_t k = line.find(key);
      if (k == std::string::npos) return std::string();
      const size_t e = line.find_first_of(",}", k);
      return line.substr(k, e - k);
    };
    auto read = [&](const std::string& path) {
      std::map<std::string, std::pair<std::string, std::string>> m;
      std::ifstream in(path);
      std::string line;
      while (std::getline(in, line)) m[field(line, "\"step\"")] = {field(line, "\"train_loss\""), field(line, "\"val_loss\"")};
      return m;
    };
    const auto want = read(dir_ / "ref/metrics.jsonl"), got = read(out + "/metrics.jsonl");
    ASSERT_EQ(got.size(), 151u);
    for (const auto& [step, w] : want) {
      auto it = got.find(step);
      ASSERT_NE(it, got.end()) << step;
      EXPECT_EQ(it->second.first, w.first) << step;
      if (!w.second.empty()) {
        EXPECT_EQ(it->second.second, w.second) << step;
      }
    }
  }
  TempDir dir_;
  double ref_seconds_ = 0;
};

// The highest step metrics.jsonl has logged so far (-1 when none).
int LoggedStep(const std::string& out) {
  std::ifstream in(out + "/metrics.jsonl");
  std::string line;
  int best = -1;
  while (std::getline(in, line)) {
    const size_t k = line.find("\"step\":");
    if (k != std::string::npos) best = std::max(best, std::atoi(line.c_str() + k + 7));
  }
  return best;
}

// True once the child has ended (it stays a zombie for Wait to reap).
bool Ended(const Child& c) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(c.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == c.pid;
}

TEST_F(FinetuneProcess, SigkillAtRandomInstantsThenResumeIsBitwiseIdentical) {
  Reference();
  const std::string out = dir_ / "killed";
  std::mt19937 rng(20261122);
  // Each kill is aimed by progress, not by the clock (the reference run's time says little about a
  // later run's on a loaded machine): wait for a step drawn from the first third of what is left,
  // then kill at a random instant within the next two steps' time, so kills land in every phase.
  const double step_s = ref_seconds_ / 150.0;
  int kills = 0, runs = 0;
  bool first = true;
  for (; runs < 40; ++runs) {
    const int done = std::max(0, LoggedStep(out));
    const int target = done + 1 + std::uniform_int_distribution<int>(0, std::max(0, (150 - done) / 3))(rng);
    std::vector<std::string> args = TinyRun(out);
    if (!first) args.push_back("--resume");
    Child c = Spawn(args, dir_ / "killed.log", dir_ / "cache");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!Ended(c) && LoggedStep(out) < target && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::duration<double>(std::uniform_real_distribution<double>(0.0, 2.0 * step_s)(rng)));
    ::kill(c.pid, SIGKILL);
    const int rc = Wait(c);
    if (rc == 0) break;  // it finished before the kill
    ASSERT_EQ(rc, 128 + SIGKILL) << Slurp(dir_ / "killed.log");
    ++kills;
    // A kill before run.json exists leaves nothing to resume: start again.
    first = first && !fs::exists(out + "/run.json");
    if (kills >= 8) break;
  }
  std::vector<std::string> args = TinyRun(out);
  if (!first) args.push_back("--resume");
  ASSERT_EQ(RunToEnd(args, dir_ / "killed.log", dir_ / "cache"), 0) << Slurp(dir_ / "killed.log");
  std::printf("%d kills (reference run %.2f s)\n", kills, ref_seconds_);
  EXPECT_GE(kills, 4);
  ExpectSameAsReference(out);
}

TEST_F(FinetuneProcess, CtrlCCommitsTheStepAndResumeFinishesIdentically) {
  Reference();
  const std::string out = dir_ / "int";
  Child c = Spawn(TinyRun(out), dir_ / "int.log", dir_ / "cache");
  // Wait until some steps are logged, then interrupt.
  for (int i = 0; i < 2000 && Slurp(out + "/metrics.jsonl").find("\"step\":10,") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(c.pid, SIGINT);
  ASSERT_EQ(Wait(c), 0) << Slurp(dir_ / "int.log");
  const std::string log = Slurp(dir_ / "int.log");
  if (log.find("interrupted: step") == std::string::npos) GTEST_SKIP() << "the run ended before the signal";
  EXPECT_NE(log.find("continue with --resume --out"), std::string::npos) << log;
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
  auto args = TinyRun(out);
  args.push_back("--resume");
  ASSERT_EQ(RunToEnd(args, dir_ / "int.log", dir_ / "cache"), 0) << Slurp(dir_ / "int.log");
  ExpectSameAsReference(out);
}

TEST_F(FinetuneProcess, ConfigFileAndRamOffload) {
  // Flags from a file; the state in /dev/shm; Ctrl-C-free resume of a finished run is a no-op.
  const std::string out = dir_ / "cfg";
  std::ofstream(dir_ / "run.toml") << "# flags of strata finetune\n[finetune]\nsteps = 7\nbatch = 2\nseq = 16\n"
                                      "layers = 1\nwidth = 16\nheads = 2\ncontext = 16\neval-every = 3\nsample = 8\n"
                                      "offload = \"ram\"\n";
  // A key that names no flag is refused, naming it, before anything runs.
  std::ofstream(dir_ / "typo.toml") << "[finetune]\nstepz = 7\n";
  const std::string typo_out = dir_ / "typo";
  EXPECT_NE(RunToEnd({"--config", dir_ / "typo.toml", "finetune", "--out", typo_out}, dir_ / "typo.log", dir_ / "cache"), 0);
  EXPECT_NE(Slurp(dir_ / "typo.log").find("finetune.stepz"), std::string::npos) << Slurp(dir_ / "typo.log");
  EXPECT_FALSE(fs::exists(typo_out));
  ASSERT_EQ(RunToEnd({"--config", dir_ / "run.toml", "finetune", "--data", kCorpus, "--out", out, "--no-progress"},
                     dir_ / "cfg.log", dir_ / "cache"),
            0)
      << Slurp(dir_ / "cfg.log");
  const std::string metrics = Slurp(out + "/metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 8) << metrics;  // steps 0..7
  EXPECT_NE(metrics.find("\"step\":3,"), std::string::npos);
  const std::string run = Slurp(out + "/run.json");
  const size_t k = run.find("\"state_dir\": \"");
  ASSERT_NE(k, std::string::npos) << run;
  const std::string state = run.substr(k + 14, run.find('"', k + 14) - (k + 14));
  EXPECT_EQ(state.rfind("/dev/shm/", 0), 0u) << state;
  EXPECT_TRUE(fs::exists(state + "/MANIFEST"));
  EXPECT_TRUE(fs::exists(out + "/loss.svg"));
  EXPECT_NE(Slurp(out + "/samples.txt").find("--- sample after training ---"), std::string::npos);
  std::error_code ec;
  fs::remove_all(state, ec);
}

// --resume never throws committed work away and never trains on state it has not checked: each
// kind of damage is refused before the first step, and the files are left byte for byte as they
// were. Each run is 3 steps of the tiny model; run.json is then extended to 5 steps, so a resume
// that did not refuse would train (and write .pending-step.json, the metrics and the checkpoint).
class FinetuneResumeGuard : public FinetuneProcess {
 protected:
  void SetUp() override {
    FinetuneProcess::SetUp();
    if (IsSkipped()) return;
    out_ = dir_ / "run";
    state_ = out_ + "/state";
    std::vector<std::string> args = TinyRun(out_);
    *(std::find(args.begin(), args.end(), "--steps") + 1) = "3";
    ASSERT_EQ(RunToEnd(args, dir_ / "first.log", dir_ / "cache"), 0) << Slurp(dir_ / "first.log");
    nlohmann::json run = nlohmann::json::parse(Slurp(out_ + "/run.json"));
    run["steps"] = 5;
    std::ofstream(out_ + "/run.json") << run.dump(2) << "\n";
    Snapshot();
  }
  // What a refused resume must leave as it was.
  void Snapshot() {
    state_bytes_ = Slurp(state_ + "/state.strata");
    checkpoint_ = Slurp(out_ + "/model.safetensors");
    metrics_ = Slurp(out_ + "/metrics.jsonl");
    pending_ = Slurp(out_ + "/.pending-step.json");
    ASSERT_FALSE(state_bytes_.empty());
    ASSERT_FALSE(checkpoint_.empty());
    // A clean finish has logged every committed step: no pending line is left behind.
    ASSERT_FALSE(fs::exists(out_ + "/.pending-step.json")) << pending_;
  }
  // Runs `strata finetune FLAG --out OUT` as a user would; returns the exit status, *log its output.
  int Run(const char* flag, std::string* log) {
    const std::string path = dir_ / (std::string("run") + flag + std::to_string(++runs_) + ".log");
    const int rc = RunToEnd({"finetune", flag, "--out", out_, "--no-progress"}, path, dir_ / "cache");
    *log = Slurp(path);
    return rc;
  }
  void ExpectUntouched() {
    EXPECT_TRUE(Slurp(state_ + "/state.strata") == state_bytes_) << "state.strata changed";
    EXPECT_TRUE(Slurp(out_ + "/model.safetensors") == checkpoint_) << "the checkpoint changed";
    EXPECT_EQ(Slurp(out_ + "/metrics.jsonl"), metrics_) << "metrics.jsonl changed";
    // Written after forward and backward of every step, removed at a clean finish: still absent
    // (with the metrics unchanged) means no step began.
    EXPECT_EQ(Slurp(out_ + "/.pending-step.json"), pending_) << "a step ran";
  }
  offload::Geometry StateGeometry() {
    auto h = offload::DecodeFileHeader(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(state_bytes_.data()), offload::kFileHeaderBytes),
        state_ + "/state.strata");
    EXPECT_TRUE(h.ok()) << h.status();
    return h.ok() ? h->geo : offload::Geometry{};
  }
  void PokeByte(uint64_t off, uint8_t value) {
    std::fstream f(state_ + "/state.strata", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(off));
    f.put(static_cast<char>(value));
    ASSERT_TRUE(f.good());
  }
  std::string out_, state_, state_bytes_, checkpoint_, metrics_, pending_;
  int runs_ = 0;
};

TEST_F(FinetuneResumeGuard, DeletedManifestIsRefusedAndRestartKeepsTheOldRunAside) {
  std::filesystem::remove(state_ + "/MANIFEST");
  std::string log;
  EXPECT_NE(Run("--resume", &log), 0) << log;
  // The damage, inspect's verdict (slot B of some chunk holds step 3) and the ways out are named.
  EXPECT_NE(log.find(state_ + "/MANIFEST: missing"), std::string::npos) << log;
  EXPECT_NE(log.find("strata inspect " + state_ + " says"), std::string::npos) << log;
  EXPECT_NE(log.find("holds step 3, which is written only after step 2 was committed"), std::string::npos) << log;
  EXPECT_NE(log.find("restore " + state_ + "/MANIFEST"), std::string::npos) << log;
  EXPECT_NE(log.find("--restart"), std::string::npos) << log;
  EXPECT_EQ(log.find("starting at step 0"), std::string::npos) << log;
  ExpectUntouched();
  EXPECT_FALSE(fs::exists(state_ + "/MANIFEST"));

  // Starting over is explicit, and keeps every old file, byte for byte, under a new name.
  ASSERT_EQ(Run("--restart", &log), 0) << log;
  EXPECT_NE(log.find(state_ + ".old-1"), std::string::npos) << log;
  EXPECT_TRUE(Slurp(state_ + ".old-1/state.strata") == state_bytes_);
  EXPECT_TRUE(Slurp(out_ + "/old-1/model.safetensors") == checkpoint_);
  EXPECT_EQ(Slurp(out_ + "/old-1/metrics.jsonl"), metrics_);
  EXPECT_EQ(Slurp(out_ + "/old-1/.pending-step.json"), pending_);
  // ... and trains the run again from step 0, to the 5 steps of its run.json.
  auto m = offload::ReadManifest(state_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->committed_step, 5u);
  const std::string metrics = Slurp(out_ + "/metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 6) << metrics;
  EXPECT_NE(metrics.find("{\"step\":0,"), std::string::npos) << metrics;
  // A second restart picks the next free name.
  ASSERT_EQ(Run("--restart", &log), 0) << log;
  EXPECT_TRUE(fs::exists(state_ + ".old-2/MANIFEST"));
  EXPECT_TRUE(fs::exists(out_ + "/old-2/model.safetensors"));
  EXPECT_TRUE(Slurp(state_ + ".old-1/state.strata") == state_bytes_);
}

TEST_F(FinetuneResumeGuard, DeletedStateFolderAfterCommitsIsRefused) {
  fs::remove_all(state_);
  std::string log;
  EXPECT_NE(Run("--resume", &log), 0) << log;
  EXPECT_NE(log.find(out_ + "/metrics.jsonl logs step 3"), std::string::npos) << log;
  EXPECT_NE(log.find("--restart"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(state_));
  EXPECT_TRUE(Slurp(out_ + "/model.safetensors") == checkpoint_);
  EXPECT_EQ(Slurp(out_ + "/metrics.jsonl"), metrics_);
  EXPECT_EQ(Slurp(out_ + "/.pending-step.json"), pending_);
}

TEST_F(FinetuneResumeGuard, FlippedByteInACommittedSlotIsRefusedBeforeTheFirstStep) {
  const offload::Geometry g = StateGeometry();
  ASSERT_GT(g.n_chunks(), 5u);
  // Step 3 lives in slot B; byte 100 of chunk 5's payload is a master weight.
  const uint64_t slot = g.slot_offset(5, 1);
  std::string pristine = state_bytes_;
  PokeByte(slot + offload::kSlotHeaderBytes + 100, static_cast<uint8_t>(pristine[slot + offload::kSlotHeaderBytes + 100] ^ 0x5a));
  Snapshot();
  ASSERT_NE(state_bytes_, pristine);
  std::string log;
  EXPECT_NE(Run("--resume", &log), 0) << log;
  EXPECT_NE(log.find("slot B of chunk 5 (bytes " + std::to_string(slot) + ".." + std::to_string(slot + g.slot_bytes()) +
                     " of " + state_ + "/state.strata): checksum mismatch"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("the committed step 3 in " + state_ + " does not verify: 1 of " + std::to_string(g.n_chunks()) +
                     " chunks"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("--restart"), std::string::npos) << log;
  ExpectUntouched();
}

TEST_F(FinetuneResumeGuard, NonZeroHeaderPaddingIsRefusedNamingTheField) {
  PokeByte(2000, 0x5a);
  Snapshot();
  std::string log;
  EXPECT_NE(Run("--resume", &log), 0) << log;
  EXPECT_NE(log.find(state_ + "/state.strata: header: padding (offsets 128..4096) is not zero: byte 2000 is 0x5a"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("--restart"), std::string::npos) << log;
  ExpectUntouched();
}

// The legitimate case: killed after run.json and before the first commit (here: right after the
// state file was created, still empty). --resume starts at step 0, and ends where an
// uninterrupted run of the same run.json ends.
TEST_F(FinetuneResumeGuard, KilledBeforeTheFirstCommitStartsAtStepZero) {
  const std::string other = dir_ / "early";
  fs::create_directories(other + "/state");
  nlohmann::json run = nlohmann::json::parse(Slurp(out_ + "/run.json"));
  run["steps"] = 3;
  run["state_dir"] = other + "/state";
  std::ofstream(other + "/run.json") << run.dump(2) << "\n";
  std::ofstream(other + "/state/state.strata").close();
  const std::string log = dir_ / "early.log";
  ASSERT_EQ(RunToEnd({"finetune", "--resume", "--out", other, "--no-progress"}, log, dir_ / "cache"), 0) << Slurp(log);
  EXPECT_NE(Slurp(log).find("starting at step 0"), std::string::npos) << Slurp(log);
  EXPECT_TRUE(Slurp(other + "/model.safetensors") == checkpoint_) << "not the run that was never interrupted";
}

TEST(FinetuneSchedule, CosineEndsAtTheLastStep) {
  FinetuneOptions o;
  o.lr = 1e-3;
  o.warmup = 10;
  o.steps = 110;
  o.min_lr_ratio = 0.1;
  const LrSchedule s = Schedule(o);
  EXPECT_DOUBLE_EQ(s.At(10), 1e-3);
  EXPECT_NEAR(s.At(110), 1e-4, 1e-18);
}

// Bad input: refused before any training, naming the file or flag, and --out keeps what it had.
class FinetuneBadInput : public ::testing::Test {
 protected:
  FinetuneOptions Opt() {
    FinetuneOptions o;
    o.data = d_ / "corpus.txt";
    o.model = ModelConfig{"gpt2", 1, 1, 8, 16, 256};
    o.seq = 8;
    o.batch = 2;
    o.steps = 2;
    o.out = d_ / "out";
    o.quiet = true;
    o.sample_tokens = 0;
    o.eval_batches = 1;
    o.offload = OffloadMode::kNone;
    return o;
  }
  void SetUp() override {
    std::ofstream(d_ / "corpus.txt") << std::string(20000, 'a') + "The quick brown fox jumps over the lazy dog.\n";
    ::setenv("XDG_CACHE_HOME", (d_ / "cache").c_str(), 1);
  }
  void Expect(FinetuneOptions o, const std::string& want) {
    auto r = RunFinetune(o);
    ASSERT_FALSE(r.ok()) << "accepted; wanted: " << want;
    EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status();
    EXPECT_FALSE(fs::exists(o.out + "/metrics.jsonl")) << "training started";
  }
  TempDir d_;
};

TEST_F(FinetuneBadInput, EmptyCorpus) {
  std::ofstream(d_ / "empty.txt").close();
  FinetuneOptions o = Opt();
  o.data = d_ / "empty.txt";
  Expect(o, "empty.txt");
}
TEST_F(FinetuneBadInput, MissingCorpus) {
  FinetuneOptions o = Opt();
  o.data = d_ / "nope.txt";
  Expect(o, "nope.txt");
}
TEST_F(FinetuneBadInput, SequenceLongerThanTheContext) {
  FinetuneOptions o = Opt();
  o.seq = 17;
  Expect(o, "--seq 17 is longer than the model's context of 16 tokens");
}
TEST_F(FinetuneBadInput, OutIsNotWritable) {
  std::ofstream(d_ / "afile") << "x";
  FinetuneOptions o = Opt();
  o.out = d_ / "afile/sub";
  Expect(o, "--out " + o.out);
}
TEST_F(FinetuneBadInput, CorruptInitCheckpoint) {
  fs::create_directories(d_ / "ckpt");
  std::ofstream(d_ / "ckpt/config.json") << R"({"n_layer": 1, "n_head": 1, "n_embd": 8, "n_positions": 16, "vocab_size": 256})";
  std::ofstream(d_ / "ckpt/model.safetensors", std::ios::binary) << std::string("\xff\xff\xff\xff\0\0\0\0{}", 10);
  FinetuneOptions o = Opt();
  o.init = d_ / "ckpt";
  Expect(o, "--init: ");
  Expect(o, "model.safetensors");
}
TEST_F(FinetuneBadInput, MalformedTokenizer) {
  fs::create_directories(d_ / "tok");
  std::ofstream(d_ / "tok/tokenizer.json") << "{\"model\": {\"type\": \"BPE\", \"vocab\": ";
  FinetuneOptions o = Opt();
  o.tokenizer = d_ / "tok";
  Expect(o, "tokenizer.json");
}
TEST_F(FinetuneBadInput, AnExistingRunIsNotOverwritten) {
  FinetuneOptions o = Opt();
  o.offload = OffloadMode::kNvme;
  auto r = RunFinetune(o);
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string before = Slurp(o.out + "/model.safetensors"), metrics = Slurp(o.out + "/metrics.jsonl");
  auto again = RunFinetune(o);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("already holds a run"), std::string::npos) << again.status();
  EXPECT_EQ(Slurp(o.out + "/model.safetensors"), before);
  EXPECT_EQ(Slurp(o.out + "/metrics.jsonl"), metrics);
  // And the finished run resumes as finished.
  o.resume = true;
  auto resumed = RunFinetune(o);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->last_step, 2u);
}

TEST_F(FinetuneBadInput, UnknownActivationsMode) {
  FinetuneOptions o = Opt();
  o.activations = "offload";
  Expect(o, "--activations offload: want keep or recompute");
}

// --activations recompute takes the same steps, bit for bit, as keep, state on disk, llama and gpt2:
// the checkpoint after the run is the same file.
TEST_F(FinetuneBadInput, RecomputedActivationsTrainBitwiseTheSame) {
  for (const char* arch : {"gpt2", "llama"}) {
    std::string weights[2];
    uint64_t budget[2] = {0, 0};
    for (int r = 0; r < 2; ++r) {
      FinetuneOptions o = Opt();
      o.model.arch = arch;
      o.model.n_layer = 3;
      o.offload = OffloadMode::kNvme;
      o.steps = 3;
      o.activations = r == 0 ? "keep" : "recompute";
      o.out = d_ / (std::string(arch) + (r == 0 ? "-keep" : "-recompute"));
      auto res = RunFinetune(o);
      ASSERT_TRUE(res.ok()) << res.status();
      weights[r] = Slurp(o.out + "/model.safetensors");
      budget[r] = res->budget_bytes;
    }
    ASSERT_FALSE(weights[0].empty());
    EXPECT_TRUE(weights[0] == weights[1]) << arch << ": the recomputed run's weights differ";
    EXPECT_LT(budget[1], budget[0]) << arch;
  }
}

}  // namespace
}  // namespace strata::train
