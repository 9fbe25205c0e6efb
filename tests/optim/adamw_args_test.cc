// Bad arguments return InvalidArgument with a message that names the argument.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "optim/adamw.h"
#include "optim/q8_book.h"

namespace strata::optim {
namespace {

void ExpectNames(const Status& s, const std::string& name) {
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  EXPECT_NE(s.message().find(name), std::string::npos) << "message should name '" << name << "': " << s.ToString();
}

TEST(AdamWArgs, BadHyperparametersAreNamed) {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  struct Case {
    AdamWConfig cfg;
    std::string name;
  };
  std::vector<Case> cases = {
      {{.lr = -1e-3}, "lr"},           {{.lr = nan}, "lr"},
      {{.lr = inf}, "lr"},             {{.beta1 = 1.0}, "beta1"},
      {{.beta1 = -0.1}, "beta1"},      {{.beta1 = nan}, "beta1"},
      {{.beta2 = 1.5}, "beta2"},       {{.beta2 = nan}, "beta2"},
      {{.eps = -1e-8}, "eps"},         {{.eps = nan}, "eps"},
      {{.weight_decay = -0.1}, "weight_decay"}, {{.weight_decay = inf}, "weight_decay"},
  };
  std::vector<float> p(300), g(300), m(300), v(300);
  std::vector<uint8_t> mc(300), vc(300);
  std::vector<float> ma(2), va(2);
  for (const auto& c : cases) {
    ExpectNames(ValidateAdamW(c.cfg), c.name);
    ExpectNames(AdamWStep(c.cfg, 1, p, g, m, v), c.name);
    ExpectNames(AdamW8bitStep(c.cfg, 1, p, g, {mc, vc, ma, va}), c.name);
  }
  EXPECT_TRUE(ValidateAdamW(AdamWConfig{}).ok());
  EXPECT_TRUE(ValidateAdamW(AdamWConfig{.lr = 0.0, .beta1 = 0.0, .beta2 = 0.0, .eps = 0.0, .weight_decay = 0.0}).ok());
}

TEST(AdamWArgs, MismatchedSpansAreNamed) {
  AdamWConfig cfg;
  std::vector<float> p(300), g(300), m(300), v(300), short_(299);
  ExpectNames(AdamWStep(cfg, 1, p, short_, m, v), "grad");
  ExpectNames(AdamWStep(cfg, 1, p, g, short_, v), "m");
  ExpectNames(AdamWStep(cfg, 1, p, g, m, short_), "v");
  std::vector<uint8_t> mc(300), vc(300), bad(299);
  std::vector<float> ma(2), va(2), ma_bad(1);
  ExpectNames(AdamW8bitStep(cfg, 1, p, short_, {mc, vc, ma, va}), "grad");
  ExpectNames(AdamW8bitStep(cfg, 1, p, g, {bad, vc, ma, va}), "m_codes");
  ExpectNames(AdamW8bitStep(cfg, 1, p, g, {mc, bad, ma, va}), "v_codes");
  ExpectNames(AdamW8bitStep(cfg, 1, p, g, {mc, vc, ma_bad, va}), "absmax");
  AdamW8bitState st(5000);
  std::vector<float> p5(4999), g5(4999);
  ExpectNames(st.Step(cfg, p5, g5), "param");
  EXPECT_EQ(st.step(), 0);  // a refused step does not advance the counter
}

TEST(AdamWArgs, StepMustBePositive) {
  AdamWConfig cfg;
  std::vector<float> p(3), g(3), m(3), v(3);
  ExpectNames(AdamWStep(cfg, 0, p, g, m, v), "step");
  std::vector<uint8_t> mc(3), vc(3);
  std::vector<float> ma(1), va(1);
  ExpectNames(AdamW8bitStep(cfg, -1, p, g, {mc, vc, ma, va}), "step");
}

}  // namespace
}  // namespace strata::optim
