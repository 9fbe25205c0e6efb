// The model against the reference implementation: lab/peers/gpt2_reference.py built a random
// GPT2LMHeadModel in transformers (eager attention, fp32), saved it with save_pretrained, and
// wrote logits, loss and every parameter gradient for fixed token batches. strata loads the same
// checkpoint and must match: loss within 2e-6 relative, logits within 1e-5, gradients within 2e-5: ten
// times the largest error observed.
// Also: checkpoints round-trip, and every kind of bad checkpoint is refused by name.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>

#include "model/checkpoint.h"
#include "model/gpt2.h"
#include "model/safetensors.h"
#include "tests/offload/temp_dir.h"

namespace strata::model {
namespace {

const std::string kRef = std::string(STRATA_TEST_DATA_DIR) + "/gpt2_ref";

// max |a - b| / max |b| over a tensor: a relative error that does not blow up on entries near 0.
double RelErr(std::span<const float> a, std::span<const float> b) {
  double diff = 0, mag = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    mag = std::max(mag, std::fabs(static_cast<double>(b[i])));
  }
  return diff / std::max(mag, 1e-30);
}

std::unique_ptr<Gpt2> LoadRefModel(int threads) {
  auto cfg = ReadCheckpointConfig(kRef);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  if (!cfg.ok()) return nullptr;
  auto m = Gpt2::Create(cfg.value(), threads);
  EXPECT_TRUE(m.ok()) << m.status();
  Status s = LoadCheckpoint(kRef, *m.value());
  EXPECT_TRUE(s.ok()) << s;
  return std::move(m).value();
}

class Reference : public ::testing::TestWithParam<std::string> {};

TEST_P(Reference, LogitsLossAndGradientsMatchTransformers) {
  auto ref = SafetensorsFile::Open(kRef + "/" + GetParam());
  ASSERT_TRUE(ref.ok()) << ref.status();
  for (int threads : {1, 2}) {
    auto m = LoadRefModel(threads);
    ASSERT_TRUE(m);
    const TensorInfo* in = ref->Find("inputs");
    ASSERT_TRUE(in);
    const int B = static_cast<int>(in->shape[0]), T = static_cast<int>(in->shape[1]);
    auto inputs = ref->ReadI32("inputs"), targets = ref->ReadI32("targets");
    ASSERT_TRUE(inputs.ok() && targets.ok());
    auto loss = m->Forward(inputs.value(), targets.value(), B, T);
    ASSERT_TRUE(loss.ok()) << loss.status();
    auto want_loss = ref->ReadF32("loss");
    auto want_logits = ref->ReadF32("logits");
    ASSERT_TRUE(want_loss.ok() && want_logits.ok());
    // Tolerances: ten times the largest error observed (both files, 1 and 2 threads, 2026-12-03):
    // loss 1.2e-7 relative, logits 9.4e-7, the worst gradient 1.6e-6 (h.0.ln_1.weight).
    EXPECT_LT(std::fabs(loss.value() - want_loss.value()[0]) / std::fabs(want_loss.value()[0]), 2e-6)
        << "loss " << loss.value() << " reference " << want_loss.value()[0];
    const double le = RelErr(m->logits(), want_logits.value());
    EXPECT_LT(le, 1e-5) << "logits";
    ASSERT_TRUE(m->Backward().ok());
    double worst = 0;
    std::string worst_name;
    int n = 0;
    for (const TensorSpec& s : Gpt2Tensors(m->config())) {
      auto g = ref->ReadF32("grad.transformer." + s.name);
      ASSERT_TRUE(g.ok()) << g.status();
      const double e = RelErr(std::span<const float>(m->grads().data() + s.offset, s.numel()), g.value());
      EXPECT_LT(e, 2e-5) << "gradient of " << s.name;
      if (e > worst) worst = e, worst_name = s.name;
      ++n;
    }
    EXPECT_EQ(n, 2 + 12 * m->config().n_layer + 2);
    std::printf("%s, %d threads: loss %.7f (reference %.7f), logits rel err %.2g, worst gradient rel err %.2g (%s)\n",
                GetParam().c_str(), threads, loss.value(), want_loss.value()[0], le, worst, worst_name.c_str());
  }
}

INSTANTIATE_TEST_SUITE_P(Batches, Reference, ::testing::Values("reference.safetensors", "reference_t1.safetensors"),
                         [](const auto& info) { return info.param == "reference.safetensors" ? std::string("B3_T17") : std::string("B2_T1"); });

TEST(Checkpoint, RoundTripsBitForBitWithHfConfig) {
  auto m = LoadRefModel(2);
  ASSERT_TRUE(m);
  TempDir d;
  SaveOptions so;
  so.metadata = {{"strata.step", "7"}};
  ASSERT_TRUE(SaveCheckpoint(d.path(), m->config(), m->params(), so).ok());
  auto cfg = ReadCheckpointConfig(d.path());
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg.value(), m->config());
  auto back = Gpt2::Create(cfg.value(), 1);
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(LoadCheckpoint(d.path(), *back.value()).ok());
  EXPECT_EQ(std::memcmp(back.value()->params().data(), m->params().data(), m->num_params() * 4), 0);
  // The bare file works too: its metadata carries the config.
  std::filesystem::rename(d / "config.json", d / "elsewhere.json");
  EXPECT_TRUE(ReadCheckpointConfig(d / "model.safetensors").ok());
  auto f = SafetensorsFile::Open(d / "model.safetensors");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->Find("transformer.h.1.mlp.c_proj.weight"));
  EXPECT_FALSE(f->Find("lm_head.weight"));
  EXPECT_EQ(f->metadata().at("strata.step"), "7");
}

// The reference checkpoint's tensors, copied so that a test can rename, drop or add some and write
// the result. The bytes live in a deque: keeping one more never moves the others.
struct EditableCheckpoint {
  std::vector<TensorOut> tensors;
  std::deque<std::vector<uint8_t>> bytes;
  std::span<const uint8_t> Keep(std::vector<uint8_t> b) {
    bytes.push_back(std::move(b));
    return bytes.back();
  }
};
EditableCheckpoint ReferenceTensors() {
  EditableCheckpoint c;
  auto src = SafetensorsFile::Open(kRef + "/model.safetensors");
  EXPECT_TRUE(src.ok()) << src.status();
  if (!src.ok()) return c;
  for (const TensorInfo& i : src->tensors()) {
    auto b = src->Bytes(i);
    c.tensors.push_back(TensorOut{i.name, i.dtype, i.shape, c.Keep({b.begin(), b.end()})});
  }
  return c;
}

// The layout of the checkpoints OpenAI's GPT-2 ships on the Hugging Face hub: no "transformer."
// prefix, and the causal-mask buffers (attn.bias) stored beside the weights.
TEST(Checkpoint, LoadsHubLayoutWithoutPrefixAndWithMaskBuffers) {
  EditableCheckpoint c = ReferenceTensors();
  for (TensorOut& x : c.tensors) x.name = x.name.substr(std::string("transformer.").size());
  for (int l = 0; l < 2; ++l) {
    c.tensors.push_back(TensorOut{"h." + std::to_string(l) + ".attn.bias", DType::kF32, {1, 1, 24, 24},
                                  c.Keep(std::vector<uint8_t>(24 * 24 * 4, 0))});
  }
  TempDir d;
  std::filesystem::copy_file(kRef + "/config.json", d / "config.json");
  ASSERT_TRUE(WriteSafetensors(d / "model.safetensors", c.tensors, {}).ok());
  auto want = LoadRefModel(1);
  auto got = LoadRefModel(1);
  ASSERT_TRUE(want && got);
  std::fill(got->params().begin(), got->params().end(), 0.0f);
  Status s = LoadCheckpoint(d.path(), *got);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(std::memcmp(got->params().data(), want->params().data(), want->num_params() * 4), 0);
}

// Rewrites the reference checkpoint with one change, then expects LoadCheckpoint to refuse it
// with a message holding `want`.
void ExpectRefused(const std::function<void(EditableCheckpoint&)>& edit, const std::string& want) {
  EditableCheckpoint c = ReferenceTensors();
  edit(c);
  TempDir d;
  std::filesystem::copy_file(kRef + "/config.json", d / "config.json");
  ASSERT_TRUE(WriteSafetensors(d / "model.safetensors", c.tensors, {}).ok());
  auto m = LoadRefModel(1);
  ASSERT_TRUE(m);
  std::vector<float> before(m->params().begin(), m->params().end());
  Status s = LoadCheckpoint(d.path(), *m);
  ASSERT_FALSE(s.ok()) << "accepted a checkpoint that should fail with: " << want;
  EXPECT_NE(s.message().find(want), std::string::npos) << s;
  EXPECT_NE(s.message().find("model.safetensors"), std::string::npos) << "names the file: " << s;
}

TEST(CheckpointCorruption, MissingTensor) {
  ExpectRefused([](EditableCheckpoint& c) { c.tensors.erase(c.tensors.begin() + 3); },
                "missing tensor transformer.h.0.attn.c_proj.weight");
}
TEST(CheckpointCorruption, ShapeDoesNotMatchConfig) {
  ExpectRefused([](EditableCheckpoint& c) {
    for (auto& x : c.tensors) if (x.name == "transformer.h.1.mlp.c_fc.weight") x.shape = {192, 48};
  }, "tensor transformer.h.1.mlp.c_fc.weight has shape [192, 48], the config wants [48, 192]");
}
TEST(CheckpointCorruption, IntegerDtype) {
  ExpectRefused([](EditableCheckpoint& c) {
    for (auto& x : c.tensors) if (x.name == "transformer.ln_f.bias") x.dtype = DType::kI32;
  }, "tensor transformer.ln_f.bias has dtype I32");
}
TEST(CheckpointCorruption, UnknownTensor) {
  ExpectRefused([](EditableCheckpoint& c) {
    c.tensors.push_back(TensorOut{"transformer.h.0.attn.rotary", DType::kF32, {2}, c.Keep(std::vector<uint8_t>(8, 0))});
  }, "unknown tensor transformer.h.0.attn.rotary");
}
TEST(CheckpointCorruption, UntiedHead) {
  ExpectRefused([](EditableCheckpoint& c) {
    for (const auto& x : c.tensors) {
      if (x.name == "transformer.wte.weight") {
        std::vector<uint8_t> head(x.bytes.begin(), x.bytes.end());
        head[5] ^= 1;
        const std::vector<int64_t> shape = x.shape;
        c.tensors.push_back(TensorOut{"lm_head.weight", DType::kF32, shape, c.Keep(std::move(head))});
        break;
      }
    }
  }, "lm_head.weight differs from wte.weight");
}

TEST(CheckpointCorruption, BadHeaderLengthAndMissingFiles) {
  TempDir d;
  {
    std::ofstream o(d / "model.safetensors", std::ios::binary);
    const uint8_t len[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    o.write(reinterpret_cast<const char*>(len), 8);
    o << "{}";
  }
  std::filesystem::copy_file(kRef + "/config.json", d / "config.json");
  auto m = LoadRefModel(1);
  ASSERT_TRUE(m);
  Status s = LoadCheckpoint(d.path(), *m);
  EXPECT_TRUE(s.IsCorruption()) << s;
  EXPECT_NE(s.message().find("model.safetensors"), std::string::npos) << s;
  s = LoadCheckpoint(d / "nope", *m);
  EXPECT_TRUE(s.IsNotFound()) << s;
  // A config that does not describe GPT-2's activation.
  {
    std::ofstream o(d / "config.json");
    o << R"({"n_layer": 2, "n_head": 4, "n_embd": 48, "n_positions": 24, "vocab_size": 97, "activation_function": "relu"})";
  }
  auto c = ReadCheckpointConfig(d.path());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("config.json: activation_function \"relu\""), std::string::npos) << c.status();
  {
    std::ofstream o(d / "config.json");
    o << R"({"n_layer": 2, "n_head": 4, "n_embd": 48, "vocab_size": 97})";
  }
  c = ReadCheckpointConfig(d.path());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("missing key \"n_positions\""), std::string::npos) << c.status();
}

// Caught by tests/fuzz/model_config_fuzz.cc (UBSan: signed integer overflow): n_inner was compared
// with 4 * n_embd computed in int32, which overflows for n_embd >= 2^29; with n_embd = 2^30 it
// wrapped to 0, so "n_inner": 0 matched. The product is 64-bit now, and the mismatch is named.
TEST(CheckpointCorruption, NInnerOfAHugeWidth) {
  TempDir d;
  { std::ofstream o(d / "model.safetensors"); }  // the config reader only looks for it
  {
    std::ofstream o(d / "config.json");
    o << R"({"n_layer": 1, "n_head": 1, "n_embd": 1073741824, "n_positions": 1, "vocab_size": 1, "n_inner": 0})";
  }
  auto cfg = ReadCheckpointConfig(d.path());
  ASSERT_FALSE(cfg.ok());
  EXPECT_TRUE(cfg.status().IsInvalidArgument()) << cfg.status();
  EXPECT_NE(cfg.status().message().find("n_inner 0 is not 4 * n_embd"), std::string::npos) << cfg.status();
}

TEST(CheckpointCorruption, ConfigOfAnotherSize) {
  auto cfg = ReadCheckpointConfig(kRef);
  ASSERT_TRUE(cfg.ok());
  ModelConfig other = cfg.value();
  other.n_layer = 3;
  auto m = Gpt2::Create(other, 1);
  ASSERT_TRUE(m.ok());
  Status s = LoadCheckpoint(kRef, *m.value());
  EXPECT_NE(s.message().find("the checkpoint is 2 layers"), std::string::npos) << s;
}

}  // namespace
}  // namespace strata::model
