// GPT-2's configuration, parameter layout and weight initialisation: what needs no kernels.
// This file is compiled without the model kernels' instruction set (see CMakeLists.txt), so code
// that only lays out or draws weights (the aggregator's theta v0) runs on any x86-64 CPU.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "model/gpt2.h"
#include "runtime/random.h"

namespace strata::model {

// --- configuration and layout -------------------------------------------------------------------

Status Gpt2Config::Validate() const {
  auto bad = [](const char* field, int64_t v, const std::string& why) {
    return Status::InvalidArgument("model config: " + std::string(field) + " " + std::to_string(v) + " " + why);
  };
  if (n_layer < 1 || n_layer > 1024) return bad("n_layer", n_layer, "must be in [1, 1024]");
  if (n_head < 1 || n_head > 1024) return bad("n_head", n_head, "must be in [1, 1024]");
  if (n_embd < 1 || n_embd > 65536) return bad("n_embd", n_embd, "must be in [1, 65536]");
  if (n_embd % n_head != 0) {
    return bad("n_embd", n_embd, "is not a multiple of n_head " + std::to_string(n_head));
  }
  if (n_ctx < 1 || n_ctx > 1 << 20) return bad("n_ctx", n_ctx, "must be in [1, 1048576]");
  if (vocab < 1 || vocab > 1 << 24) return bad("vocab", vocab, "must be in [1, 16777216]");
  if (!(ln_eps > 0.0f) || !std::isfinite(ln_eps)) {
    return Status::InvalidArgument("model config: ln_eps must be finite and > 0");
  }
  return Status::Ok();
}

namespace {
uint64_t LayerParams(uint64_t C) { return 2 * C + (3 * C * C + 3 * C) + (C * C + C) + 2 * C + (4 * C * C + 4 * C) + (4 * C * C + C); }
}  // namespace

uint64_t Gpt2Config::NumParams() const {
  const uint64_t C = n_embd;
  return static_cast<uint64_t>(vocab) * C + static_cast<uint64_t>(n_ctx) * C + n_layer * LayerParams(C) + 2 * C;
}

std::string Gpt2Config::ToString() const {
  std::ostringstream s;
  s << n_layer << " layers, " << n_head << " heads, width " << n_embd << ", context " << n_ctx << ", vocabulary "
    << vocab;
  return s.str();
}

uint64_t TensorSpec::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

uint64_t Gpt2LayerOffset(const Gpt2Config& cfg, int layer) {
  const uint64_t C = cfg.n_embd;
  return (static_cast<uint64_t>(cfg.vocab) + cfg.n_ctx) * C + static_cast<uint64_t>(layer) * LayerParams(C);
}

std::vector<TensorSpec> Gpt2Tensors(const Gpt2Config& cfg) {
  const int64_t C = cfg.n_embd;
  std::vector<TensorSpec> t;
  uint64_t off = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape, int layer) {
    TensorSpec s{std::move(name), off, std::move(shape), layer};
    off += s.numel();
    t.push_back(std::move(s));
  };
  add("wte.weight", {cfg.vocab, C}, -1);
  add("wpe.weight", {cfg.n_ctx, C}, -1);
  for (int l = 0; l < cfg.n_layer; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    add(p + "ln_1.weight", {C}, l);
    add(p + "ln_1.bias", {C}, l);
    add(p + "attn.c_attn.weight", {C, 3 * C}, l);
    add(p + "attn.c_attn.bias", {3 * C}, l);
    add(p + "attn.c_proj.weight", {C, C}, l);
    add(p + "attn.c_proj.bias", {C}, l);
    add(p + "ln_2.weight", {C}, l);
    add(p + "ln_2.bias", {C}, l);
    add(p + "mlp.c_fc.weight", {C, 4 * C}, l);
    add(p + "mlp.c_fc.bias", {4 * C}, l);
    add(p + "mlp.c_proj.weight", {4 * C, C}, l);
    add(p + "mlp.c_proj.bias", {C}, l);
  }
  add("ln_f.weight", {C}, -1);
  add("ln_f.bias", {C}, -1);
  return t;
}

void InitGpt2Weights(const Gpt2Config& cfg, uint64_t seed, std::span<float> params) {
  const auto tensors = Gpt2Tensors(cfg);
  const double resid_std = 0.02 / std::sqrt(2.0 * cfg.n_layer);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorSpec& t = tensors[i];
    float* p = params.data() + t.offset;
    const uint64_t n = t.numel();
    const std::string& name = t.name;
    auto ends_with = [&](const char* s) {
      const size_t k = std::strlen(s);
      return name.size() >= k && name.compare(name.size() - k, k, s) == 0;
    };
    if (ends_with("ln_1.weight") || ends_with("ln_2.weight") || name == "ln_f.weight") {
      std::fill(p, p + n, 1.0f);
    } else if (ends_with(".bias")) {
      std::fill(p, p + n, 0.0f);
    } else {
      const double sd = (ends_with("c_proj.weight")) ? resid_std : 0.02;
      // Each tensor's stream starts at a hashed point. (Starting points a multiple of SplitMix's
      // increment apart would give every tensor a shifted copy of the same numbers.)
      uint64_t s = SplitMix(seed) ^ (static_cast<uint64_t>(i) + 1) * 0xD1B54A32D192ED03ull;
      s = SplitMix(s);
      for (uint64_t k = 0; k < n; k += 2) {
        // Box-Muller: two normals per pair of uniforms.
        const double u1 = Uniform01(s), u2 = Uniform01(s);
        const double r = std::sqrt(-2.0 * std::log(u1));
        p[k] = static_cast<float>(sd * r * std::cos(2.0 * M_PI * u2));
        if (k + 1 < n) p[k + 1] = static_cast<float>(sd * r * std::sin(2.0 * M_PI * u2));
      }
    }
  }
}

}  // namespace strata::model
