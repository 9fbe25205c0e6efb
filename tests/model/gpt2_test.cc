// The model against its own definition: the layout of the flat buffer, gradients against central
// finite differences on a tiny awkward config, bitwise determinism for a thread count, the order
// in which backward releases parameters, and named bad input. (The match against the reference
// implementation is in gpt2_reference_test.cc.)
#include "model/gpt2.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace strata::model {
namespace {

ModelConfig Tiny() {
  ModelConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 6;
  c.n_ctx = 7;
  c.vocab = 11;
  return c;
}

std::vector<int32_t> Tokens(size_t n, int vocab, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(g() % vocab);
  return t;
}

// Larger-than-GPT-2 weights so every gradient is well above float32 rounding.
void InitWide(Gpt2& m, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 0.4f);
  for (float& p : m.params()) p = d(g);
}

TEST(ModelConfig, NamesTheFieldOutOfRange) {
  ModelConfig c = Tiny();
  c.n_embd = 7;
  Status s = c.Validate();
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("n_embd 7 is not a multiple of n_head 2"), std::string::npos) << s;
  c = Tiny();
  c.vocab = 0;
  EXPECT_NE(c.Validate().message().find("vocab 0"), std::string::npos);
  c = Tiny();
  c.n_layer = 0;
  EXPECT_FALSE(Gpt2::Create(c, 1).ok());
}

TEST(Gpt2Layout, TensorsTileTheBufferInOrder) {
  for (ModelConfig c : {Tiny(), ModelConfig{}, ModelConfig{"gpt2", 12, 12, 768, 1024, 50257}}) {
    const auto t = Gpt2Tensors(c);
    ASSERT_EQ(t.size(), 2 + 12 * static_cast<size_t>(c.n_layer) + 2);
    uint64_t off = 0;
    for (const auto& s : t) {
      EXPECT_EQ(s.offset, off) << s.name;
      off += s.numel();
    }
    EXPECT_EQ(off, c.NumParams());
    EXPECT_EQ(t[2].offset, Gpt2LayerOffset(c, 0));
    EXPECT_EQ(t[t.size() - 2].name, "ln_f.weight");
    EXPECT_EQ(t[t.size() - 2].offset, Gpt2LayerOffset(c, c.n_layer));
  }
  // GPT-2 small has 124,439,808 parameters (tied head).
  EXPECT_EQ((ModelConfig{"gpt2", 12, 12, 768, 1024, 50257}).NumParams(), 124439808u);
}

TEST(Gpt2, GradientsMatchCentralDifferences) {
  const ModelConfig c = Tiny();
  auto m = Gpt2::Create(c, 2);
  ASSERT_TRUE(m.ok()) << m.status();
  Gpt2& g = *m.value();
  InitWide(g, 7);
  const int B = 2, T = 5;
  const auto in = Tokens(B * T, c.vocab, 1), tg = Tokens(B * T, c.vocab, 2);
  auto l0 = g.Forward(in, tg, B, T);
  ASSERT_TRUE(l0.ok()) << l0.status();
  ASSERT_TRUE(g.Backward().ok());
  std::vector<float> grad(g.grads().begin(), g.grads().end());
  // Every tensor, a few entries each (first, middle, last).
  int checked = 0;
  double worst = 0;
  for (const auto& t : Gpt2Tensors(c)) {
    for (uint64_t k : {uint64_t{0}, t.numel() / 2, t.numel() - 1}) {
      const uint64_t i = t.offset + k;
      float& p = g.params()[i];
      const float saved = p, h = 1e-2f;
      p = saved + h;
      const double lp = g.Forward(in, tg, B, T).value();
      p = saved - h;
      const double lm = g.Forward(in, tg, B, T).value();
      p = saved;
      const double fd = (lp - lm) / (2.0 * h);
      const double err = std::fabs(fd - grad[i]) / (1e-3 + std::fabs(fd));
      worst = std::max(worst, err);
      EXPECT_LT(err, 3e-2) << t.name << "[" << k << "] analytic " << grad[i] << " finite difference " << fd;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3 * static_cast<int>(Gpt2Tensors(c).size()));
  std::printf("finite differences: %d entries, worst relative error %.3g\n", checked, worst);
}

TEST(Gpt2, BitwiseDeterministicForAThreadCount) {
  ModelConfig c = Tiny();
  c.n_embd = 12;
  c.n_head = 3;
  c.n_ctx = 13;
  const int B = 3, T = 13;
  const auto in = Tokens(B * T, c.vocab, 3), tg = Tokens(B * T, c.vocab, 4);
  std::vector<std::vector<float>> grads;
  std::vector<float> losses;
  for (int threads : {2, 2, 1}) {
    auto m = Gpt2::Create(c, threads);
    ASSERT_TRUE(m.ok());
    m.value()->InitRandom(42);
    auto l = m.value()->Forward(in, tg, B, T);
    ASSERT_TRUE(l.ok());
    ASSERT_TRUE(m.value()->Backward().ok());
    losses.push_back(l.value());
    grads.emplace_back(m.value()->grads().begin(), m.value()->grads().end());
  }
  EXPECT_EQ(std::memcmp(&losses[0], &losses[1], sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(grads[0].data(), grads[1].data(), grads[0].size() * sizeof(float)), 0);
  // Another thread count partitions differently: close, not necessarily equal.
  EXPECT_NEAR(losses[0], losses[2], 1e-5);
  for (size_t i = 0; i < grads[0].size(); ++i) ASSERT_NEAR(grads[0][i], grads[2][i], 1e-5) << i;
}

TEST(Gpt2, BackwardReleasesLastLayersFirst) {
  const ModelConfig c = Tiny();
  auto m = Gpt2::Create(c, 2);
  ASSERT_TRUE(m.ok());
  m.value()->InitRandom(1);
  const auto in = Tokens(4, c.vocab, 5);
  ASSERT_TRUE(m.value()->Forward(in, in, 1, 4).ok());
  std::vector<uint64_t> seen;
  ASSERT_TRUE(m.value()->Backward([&](uint64_t lo) { seen.push_back(lo); }).ok());
  ASSERT_EQ(seen.size(), static_cast<size_t>(c.n_layer) + 2);
  EXPECT_EQ(seen.front(), Gpt2LayerOffset(c, c.n_layer));
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(seen[i], seen[i - 1]);
  EXPECT_EQ(seen.back(), 0u);
}

TEST(Gpt2, InitialLossIsNearLogVocab) {
  ModelConfig c;  // the default model
  c.n_layer = 2;
  auto m = Gpt2::Create(c, 2);
  ASSERT_TRUE(m.ok());
  m.value()->InitRandom(3);
  const auto in = Tokens(2 * 64, c.vocab, 6), tg = Tokens(2 * 64, c.vocab, 7);
  auto l = m.value()->Forward(in, tg, 2, 64);
  ASSERT_TRUE(l.ok());
  EXPECT_NEAR(l.value(), std::log(256.0), 0.1);
}

// Every tensor draws its own numbers: no two weight matrices start correlated (an early version
// gave each tensor a shifted copy of one stream, and training started from near-copies).
TEST(Gpt2, InitialWeightsOfDifferentTensorsAreUncorrelated) {
  ModelConfig c;
  auto m = Gpt2::Create(c, 1);
  ASSERT_TRUE(m.ok());
  m.value()->InitRandom(1);
  const auto t = Gpt2Tensors(c);
  auto corr = [&](const TensorSpec& a, const TensorSpec& b, int shift) {
    const float* x = m.value()->params().data() + a.offset;
    const float* y = m.value()->params().data() + b.offset;
    const int n = 20000;
    double sxy = 0, sxx = 0, syy = 0;
    for (int k = 0; k < n; ++k) {
      sxy += double(x[k + shift]) * y[k];
      sxx += double(x[k + shift]) * x[k + shift];
      syy += double(y[k]) * y[k];
    }
    return sxy / std::sqrt(sxx * syy);
  };
  std::vector<TensorSpec> mats;
  for (const auto& s : t) {
    if (s.shape.size() == 2) mats.push_back(s);
  }
  ASSERT_GE(mats.size(), 10u);
  for (size_t i = 0; i < mats.size(); ++i) {
    for (size_t j = i + 1; j < mats.size(); ++j) {
      for (int shift = 0; shift <= 32; ++shift) {
        EXPECT_LT(std::fabs(corr(mats[i], mats[j], shift)), 0.05) << mats[i].name << " ~ " << mats[j].name << " shifted by " << shift;
        EXPECT_LT(std::fabs(corr(mats[j], mats[i], shift)), 0.05) << mats[j].name << " ~ " << mats[i].name << " shifted by " << shift;
      }
    }
  }
}

TEST(Gpt2, BadInputIsNamed) {
  const ModelConfig c = Tiny();
  auto m = Gpt2::Create(c, 1);
  ASSERT_TRUE(m.ok());
  std::vector<int32_t> in = {1, 2, 11};
  auto r = m.value()->Forward(in, {}, 1, 3);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("token id 11 at position 2 is outside the vocabulary of 11"),
            std::string::npos)
      << r.status();
  std::vector<int32_t> longer(8, 1);
  r = m.value()->Forward(longer, {}, 1, 8);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sequence length 8 is longer than the context 7"), std::string::npos);
  EXPECT_FALSE(m.value()->Backward().ok());
}

TEST(Gpt2, SamplingIsReproducibleAndGreedyIsArgmax) {
  const ModelConfig c = Tiny();
  auto m = Gpt2::Create(c, 2);
  ASSERT_TRUE(m.ok());
  m.value()->InitRandom(9);
  std::vector<int32_t> prompt = {1, 2, 3};
  auto a = m.value()->Sample(prompt, 12, 0.8f, 5, 77), b = m.value()->Sample(prompt, 12, 0.8f, 5, 77);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a.value(), b.value());
  EXPECT_EQ(a.value().size(), 12u);  // longer than the context: the window slides
  auto greedy = m.value()->Sample(prompt, 1, 0.0f, 0, 0);
  ASSERT_TRUE(greedy.ok());
  ASSERT_TRUE(m.value()->Forward(prompt, {}, 1, 3).ok());
  const auto lg = m.value()->logits().subspan(2 * c.vocab, c.vocab);
  EXPECT_EQ(greedy.value()[0], std::max_element(lg.begin(), lg.end()) - lg.begin());
}

}  // namespace
}  // namespace strata::model
