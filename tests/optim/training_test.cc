// 8-bit AdamW tracks fp32 AdamW in real training: a noisy, badly conditioned quadratic and a small
// MLP regression. The final loss (mean over the last steps, so one lucky step does not decide)
// must agree within 1%.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "optim/adamw.h"
#include "runtime/thread_pool.h"

namespace strata::optim {
namespace {

// Trains params with either fp32 AdamW or AdamW8bitState; grad_fn fills grads and returns the loss.
// With STRATA_TRAINING_CSV=FILE set, every loss is appended to FILE as "run,optimizer,step,loss"
// (docs/EXPERIMENTS.md plots them).
void RecordLoss(const std::string& run, bool eight_bit, int step, double loss) {
  const char* path = std::getenv("STRATA_TRAINING_CSV");
  if (!path || !*path) return;
  std::ofstream(path, std::ios::app) << run << "," << (eight_bit ? "8-bit" : "fp32") << "," << step << "," << loss
                                     << "\n";
}

template <class GradFn>
double Train(const std::string& run, bool eight_bit, std::vector<std::vector<float>> params, const AdamWConfig& cfg,
             int steps, GradFn grad_fn, int tail = 50, bool cosine = false) {
  std::vector<std::vector<float>> grads, m, v;
  std::vector<AdamW8bitState> states;
  for (auto& p : params) {
    grads.emplace_back(p.size());
    m.emplace_back(p.size(), 0.0f);
    v.emplace_back(p.size(), 0.0f);
    states.emplace_back(static_cast<int64_t>(p.size()));
  }
  double tail_sum = 0.0;
  for (int step = 1; step <= steps; ++step) {
    const double loss = grad_fn(params, grads, step);
    RecordLoss(run, eight_bit, step, loss);
    if (step > steps - tail) tail_sum += loss;
    AdamWConfig c = cfg;
    if (cosine) c.lr = cfg.lr * 0.5 * (1.0 + std::cos(M_PI * (step - 1) / steps));
    for (size_t k = 0; k < params.size(); ++k) {
      Status s = eight_bit ? states[k].Step(c, params[k], grads[k])
                           : AdamWStep(c, step, params[k], grads[k], m[k], v[k]);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
  }
  return tail_sum / tail;
}

TEST(Training, EightBitTracksFp32OnANoisyQuadratic) {
  // f(theta) = 1/2 sum a_i (theta_i - t_i)^2 with curvatures a_i from 0.1 to 10 in random order,
  // and gradient noise (sigma 0.5, the same sequence for both optimizers), the textbook model of
  // stochastic training. Loss is the noise-free f.
  const int n = 20000;
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> logu(-1.0f, 1.0f);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> a(n), t(n), theta0(n);
  for (int i = 0; i < n; ++i) {
    a[i] = std::pow(10.0f, logu(rng));
    t[i] = nd(rng);
    theta0[i] = nd(rng);
  }
  auto grad_fn = [&](const std::vector<std::vector<float>>& p, std::vector<std::vector<float>>& g, int step) {
    std::mt19937 noise(1000 + step);
    std::normal_distribution<float> nn(0.0f, 0.5f);
    double loss = 0.0;
    for (int i = 0; i < n; ++i) {
      const float d = p[0][i] - t[i];
      g[0][i] = a[i] * d + nn(noise);
      loss += 0.5 * a[i] * d * d;
    }
    return loss / n;
  };
  const AdamWConfig cfg{.lr = 1e-2, .weight_decay = 0.0};
  std::vector<std::vector<float>> p0 = {theta0};
  std::vector<std::vector<float>> g0 = {std::vector<float>(n)};
  const double initial = grad_fn(p0, g0, 0);
  const double fp32 = Train("noisy_quadratic", false, p0, cfg, 500, grad_fn);
  const double q8 = Train("noisy_quadratic", true, p0, cfg, 500, grad_fn);
  std::printf("  noisy quadratic: initial loss %.5f, fp32 AdamW %.6f, 8-bit AdamW %.6f (%+.3f%%)\n", initial, fp32,
              q8, 100.0 * (q8 - fp32) / fp32);
  EXPECT_LT(fp32, initial / 10) << "the optimizer should make real progress";
  EXPECT_NEAR(q8, fp32, 0.01 * fp32);
}

TEST(Training, EightBitTracksFp32OnASmallMlp) {
  // y = W2 tanh(W1 x + b1) + b2 fitted to a fixed random teacher of the same shape, full batch, with
  // the learning rate annealed to zero by a cosine schedule (as fine-tuning runs do).
  const int din = 16, hidden = 256, samples = 512;
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> X(samples * din), Y(samples);
  for (auto& x : X) x = nd(rng);
  {
    std::vector<float> tw1(din * hidden), tw2(hidden);
    for (auto& w : tw1) w = nd(rng) / std::sqrt(float(din));
    for (auto& w : tw2) w = nd(rng) / std::sqrt(float(hidden));
    for (int s = 0; s < samples; ++s) {
      float y = 0.0f;
      for (int h = 0; h < hidden; ++h) {
        float z = 0.0f;
        for (int d = 0; d < din; ++d) z += tw1[h * din + d] * X[s * din + d];
        y += tw2[h] * std::tanh(z);
      }
      Y[s] = y;
    }
  }
  // Parameters: W1 (hidden, din) = 4096 values -> 8-bit state; b1, W2, b2 -> fp32 state.
  std::vector<std::vector<float>> p0 = {std::vector<float>(hidden * din), std::vector<float>(hidden, 0.0f),
                                        std::vector<float>(hidden), std::vector<float>(1, 0.0f)};
  for (auto& w : p0[0]) w = 0.5f * nd(rng) / std::sqrt(float(din));
  for (auto& w : p0[2]) w = 0.5f * nd(rng) / std::sqrt(float(hidden));
  auto grad_fn = [&](const std::vector<std::vector<float>>& p, std::vector<std::vector<float>>& g, int) {
    for (auto& gg : g) std::fill(gg.begin(), gg.end(), 0.0f);
    double loss = 0.0;
    std::vector<float> act(hidden);
    for (int s = 0; s < samples; ++s) {
      const float* x = &X[s * din];
      float y = p[3][0];
      for (int h = 0; h < hidden; ++h) {
        float z = p[1][h];
        for (int d = 0; d < din; ++d) z += p[0][h * din + d] * x[d];
        act[h] = std::tanh(z);
        y += p[2][h] * act[h];
      }
      const float err = y - Y[s];
      loss += 0.5 * err * err;
      const float dy = err / samples;
      g[3][0] += dy;
      for (int h = 0; h < hidden; ++h) {
        g[2][h] += dy * act[h];
        const float dz = dy * p[2][h] * (1.0f - act[h] * act[h]);
        g[1][h] += dz;
        for (int d = 0; d < din; ++d) g[0][h * din + d] += dz * x[d];
      }
    }
    return loss / samples;
  };
  const AdamWConfig cfg{.lr = 1e-2, .weight_decay = 0.0};
  std::vector<std::vector<float>> g0 = {std::vector<float>(hidden * din), std::vector<float>(hidden),
                                        std::vector<float>(hidden), std::vector<float>(1)};
  const double initial = grad_fn(p0, g0, 0);
  const double fp32 = Train("mlp", false, p0, cfg, 150, grad_fn, 10, true);
  const double q8 = Train("mlp", true, p0, cfg, 150, grad_fn, 10, true);
  std::printf("  mlp: initial loss %.5f, fp32 AdamW %.6f, 8-bit AdamW %.6f (%+.3f%%)\n", initial, fp32, q8,
              100.0 * (q8 - fp32) / fp32);
  EXPECT_LT(fp32, initial / 5) << "the optimizer should make real progress";
  EXPECT_NEAR(q8, fp32, 0.01 * fp32);
}

}  // namespace
}  // namespace strata::optim
