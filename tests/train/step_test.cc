// The one training step (train/step.h): every way of keeping the optimizer state takes the same
// steps, bit for bit (in memory, offloaded with master weights as finetune keeps it, offloaded
// without as the swarm peer keeps it), a reopened state continues as if never closed, and the
// learning-rate schedule is the one formula of finetune and the peer.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "model/data.h"
#include "model/model.h"
#include "offload/offload_engine.h"
#include "tests/offload/temp_dir.h"
#include "train/step.h"

namespace strata::train {
namespace {

// Awkward sizes: a vocabulary of 67, width 24, so 16 488 parameters: chunks of 1 280 leave a
// partial last chunk, and layer boundaries fall inside chunks.
// The llama variant (2 heads sharing one key-value head, an MLP of 40, an untied head at the end
// of the buffer) has 16 440 parameters.
model::ModelConfig TinyConfig(const std::string& arch = "gpt2") {
  model::ModelConfig c;
  c.arch = arch;
  if (arch != "gpt2") {
    c.n_kv_head = 1;
    c.n_mlp = 40;
    c.tie_embeddings = false;
  }
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 24;
  c.n_ctx = 16;
  c.vocab = 67;
  return c;
}

model::Batch BatchOf(uint64_t step, const model::ModelConfig& c) {
  model::Batch b;
  b.B = 3;
  b.T = 11;
  b.inputs.resize(33);
  b.targets.resize(33);
  uint64_t s = step * 7919 + 17;
  for (size_t i = 0; i < 33; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    b.inputs[i] = static_cast<int32_t>((s >> 33) % c.vocab);
    b.targets[i] = static_cast<int32_t>((s >> 13) % c.vocab);
  }
  return b;
}

std::unique_ptr<model::Model> NewModel(const std::string& arch = "gpt2") {
  auto m = model::Model::Create(TinyConfig(arch), 2);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  (*m)->InitRandom(5);
  return std::move(*m);
}

TrainerOptions Options(const std::string& optimizer, OffloadMode mode, bool master, const std::string& dir) {
  TrainerOptions o;
  o.optimizer = optimizer;
  o.beta1 = 0.9;
  o.beta2 = 0.95;
  o.weight_decay = 0.01;
  o.offload = mode;
  o.master_weights = master;
  o.state_dir = dir;
  o.chunk_params = 1280;
  o.offload_ram = 4 * 1280 * 16;  // a few staging buffers
  o.threads = 2;
  return o;
}

// The weights after `steps` steps of lr = 1e-2 * s from a fresh model.
std::vector<float> Train(const TrainerOptions& o, int steps, std::vector<float>* losses,
                         const std::string& arch = "gpt2") {
  auto m = NewModel(arch);
  auto t = Trainer::Create(*m, o);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (!t.ok()) return {};
  for (int s = 1; s <= steps; ++s) {
    auto l = (*t)->Step(BatchOf(s, m->config()), 1e-2 * s);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    if (losses) losses->push_back(l.ok() ? *l : -1);
  }
  EXPECT_EQ((*t)->step(), static_cast<uint64_t>(steps));
  return {m->params().begin(), m->params().end()};
}

class EveryOptimizer : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(EveryOptimizer, EveryPlaceForTheStateTakesTheSameStepsBitForBit) {
  const auto& [optimizer, arch] = GetParam();
  std::vector<float> ref_losses;
  const std::vector<float> ref = Train(Options(optimizer, OffloadMode::kNone, true, ""), 4, &ref_losses, arch);
  ASSERT_EQ(ref.size(), TinyConfig(arch).NumParams());
  struct Case {
    const char* name;
    OffloadMode mode;
    bool master;
  };
  for (const Case c : {Case{"nvme, master weights (finetune)", OffloadMode::kNvme, true},
                       Case{"nvme, no master weights (swarm peer)", OffloadMode::kNvme, false},
                       Case{"ram, no master weights", OffloadMode::kRam, false}}) {
    TempDir d;
    std::vector<float> losses;
    const std::vector<float> w = Train(Options(optimizer, c.mode, c.master, d.path() + "/state"), 4, &losses, arch);
    ASSERT_EQ(w.size(), ref.size()) << c.name;
    EXPECT_EQ(std::memcmp(w.data(), ref.data(), 4 * ref.size()), 0) << c.name << ": weights differ from in-memory";
    EXPECT_EQ(losses, ref_losses) << c.name;
  }
  // And the step does something: the weights moved.
  auto fresh = NewModel(arch);
  EXPECT_NE(std::memcmp(fresh->params().data(), ref.data(), 4 * ref.size()), 0);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, EveryOptimizer,
                         ::testing::Combine(::testing::Values("adamw", "adamw8bit"), ::testing::Values("gpt2", "llama")),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

TEST(Trainer, ReopenedStateContinuesAsIfNeverClosed) {
  for (const bool master : {true, false}) {
    TempDir straight_dir, split_dir;
    const std::vector<float> straight =
        Train(Options("adamw8bit", OffloadMode::kNvme, master, straight_dir.path() + "/s"), 3, nullptr);
    const TrainerOptions o = Options("adamw8bit", OffloadMode::kNvme, master, split_dir.path() + "/s");
    std::vector<float> after2;
    {
      auto m = NewModel();
      auto t = Trainer::Create(*m, o);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      for (int s = 1; s <= 2; ++s) ASSERT_TRUE((*t)->Step(BatchOf(s, m->config()), 1e-2 * s).ok());
      after2.assign(m->params().begin(), m->params().end());
    }
    auto m = NewModel();  // fresh weights: with master weights Open must restore them
    if (!master) std::copy(after2.begin(), after2.end(), m->params().begin());  // the peer keeps its own
    auto t = Trainer::Open(*m, o);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ((*t)->step(), 2u);
    EXPECT_EQ(std::memcmp(m->params().data(), after2.data(), 4 * after2.size()), 0) << "master " << master;
    ASSERT_TRUE((*t)->Step(BatchOf(3, m->config()), 3e-2).ok());
    EXPECT_EQ(std::memcmp(m->params().data(), straight.data(), 4 * straight.size()), 0) << "master " << master;
  }
}

TEST(Trainer, OpenRefusesWhatItCannotContinue) {
  TempDir d;
  const std::string dir = d.path() + "/s";
  auto m = NewModel();
  auto none = Trainer::Open(*m, Options("adamw8bit", OffloadMode::kNvme, true, dir));
  EXPECT_TRUE(none.status().IsNotFound()) << none.status().ToString();
  ASSERT_TRUE(Trainer::Create(*m, Options("adamw8bit", OffloadMode::kNvme, true, dir)).ok());
  // Another optimizer's state is named, not misread.
  auto other = Trainer::Open(*m, Options("adamw", OffloadMode::kNvme, true, dir));
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find("layout q8_master_mv"), std::string::npos) << other.status().ToString();
  // Another model's state is named too.
  model::ModelConfig c = TinyConfig();
  c.vocab = 68;
  auto bigger = model::Model::Create(c, 1);
  ASSERT_TRUE(bigger.ok());
  auto wrong = Trainer::Open(**bigger, Options("adamw8bit", OffloadMode::kNvme, true, dir));
  ASSERT_FALSE(wrong.ok());
  const std::string want = std::to_string(TinyConfig().NumParams()) + " parameters, the model has " +
                           std::to_string(c.NumParams());
  EXPECT_NE(wrong.status().message().find(want), std::string::npos)
      << wrong.status().ToString();
  auto bad = Trainer::Create(*m, Options("sgd", OffloadMode::kNone, true, ""));
  EXPECT_NE(bad.status().message().find("--optimizer sgd"), std::string::npos) << bad.status().ToString();
}

TEST(LrSchedule, WarmupThenCosineToTheFloor) {
  const LrSchedule s{1e-3, 10, 110, 0.1};
  EXPECT_DOUBLE_EQ(s.At(1), 1e-4);
  EXPECT_DOUBLE_EQ(s.At(10), 1e-3);
  EXPECT_NEAR(s.At(60), 0.55e-3, 1e-18);  // halfway down the cosine
  EXPECT_NEAR(s.At(110), 1e-4, 1e-18);
  EXPECT_NEAR(s.At(500), 1e-4, 1e-18);  // past the end: the floor
  for (uint64_t t = 11; t < 110; ++t) EXPECT_GT(s.At(t), s.At(t + 1));
}

TEST(LrSchedule, WithoutADecayTheRateStaysAfterTheWarmup) {
  // The swarm peer's schedule before it shared this one: lr * min(1, step / max(1, warmup)).
  for (const uint64_t warmup : {0u, 1u, 7u}) {
    const LrSchedule s{3e-3, warmup, 0, 0.1};
    for (uint64_t t = 1; t <= 40; ++t) {
      const double old = 3e-3 * std::min(1.0, static_cast<double>(t) / std::max<uint64_t>(1, warmup));
      EXPECT_DOUBLE_EQ(s.At(t), old) << "warmup " << warmup << " step " << t;
    }
  }
}

TEST(Offload, ParseNamesWhatItWants) {
  OffloadMode m;
  std::string dir;
  ASSERT_TRUE(ParseOffload("nvme:/mnt/x", "--offload", &m, &dir).ok());
  EXPECT_EQ(m, OffloadMode::kNvme);
  EXPECT_EQ(dir, "/mnt/x");
  ASSERT_TRUE(ParseOffload("ram", "--offload", &m, &dir).ok());
  EXPECT_EQ(m, OffloadMode::kRam);
  Status s = ParseOffload("tape", "--offload", &m, &dir);
  EXPECT_EQ(s.message(), "--offload tape: want none, ram, nvme or nvme:DIR");
  EXPECT_FALSE(ParseOffload("nvme:", "--offload", &m, &dir).ok());
}

}  // namespace
}  // namespace strata::train
