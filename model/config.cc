// Every family's configuration, parameter layout and weight initialisation: what needs no kernels.
// This file is compiled without the model kernels' instruction set (see CMakeLists.txt), so code
// that only lays out or draws weights (the aggregator's theta v0) runs on any x86-64 CPU.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "model/config.h"
#include "model/gpt2.h"
#include "model/llama.h"
#include "runtime/random.h"

namespace strata::model {

// --- configuration and layout -------------------------------------------------------------------

const std::vector<std::string>& ModelArchs() {
  static const std::vector<std::string> k = {"gpt2", "llama", "mistral", "qwen2"};
  return k;
}

void FillFamilyDefaults(ModelConfig* c) {
  if (c->is_gpt2()) return;
  if (c->n_mlp == 0) c->n_mlp = (8 * c->n_embd / 3 + 63) / 64 * 64;
  if (c->arch == "qwen2") c->qkv_bias = true;
}

Status ModelConfig::Validate() const {
  auto bad = [](const char* field, int64_t v, const std::string& why) {
    return Status::InvalidArgument("model config: " + std::string(field) + " " + std::to_string(v) + " " + why);
  };
  if (std::find(ModelArchs().begin(), ModelArchs().end(), arch) == ModelArchs().end()) {
    return Status::InvalidArgument("model config: arch \"" + arch + "\" is not one of gpt2, llama, mistral, qwen2");
  }
  if (n_layer < 1 || n_layer > 1024) return bad("n_layer", n_layer, "must be in [1, 1024]");
  if (n_head < 1 || n_head > 1024) return bad("n_head", n_head, "must be in [1, 1024]");
  if (n_embd < 1 || n_embd > 65536) return bad("n_embd", n_embd, "must be in [1, 65536]");
  if (n_ctx < 1 || n_ctx > 1 << 20) return bad("n_ctx", n_ctx, "must be in [1, 1048576]");
  if (vocab < 1 || vocab > 1 << 24) return bad("vocab", vocab, "must be in [1, 16777216]");
  if (!(ln_eps > 0.0f) || !std::isfinite(ln_eps)) {
    return Status::InvalidArgument("model config: ln_eps must be finite and > 0");
  }
  if (n_kv_head < 0 || n_kv_head > n_head) return bad("n_kv_head", n_kv_head, "must be in [0, n_head]");
  if (n_head % kv_heads() != 0) {
    return bad("n_head", n_head, "is not a multiple of n_kv_head " + std::to_string(kv_heads()));
  }
  if (head_dim < 0 || head_dim > 4096) return bad("head_dim", head_dim, "must be in [0, 4096]");
  if (n_mlp < 0 || n_mlp > 1 << 20) return bad("n_mlp", n_mlp, "must be in [0, 1048576]");
  if (sliding_window < 0) return bad("sliding_window", sliding_window, "must be >= 0 (0 = none)");
  if (is_gpt2()) {
    if (n_embd % n_head != 0) return bad("n_embd", n_embd, "is not a multiple of n_head " + std::to_string(n_head));
    // The fields GPT-2 has no use for must keep their defaults, so a config never says more than runs.
    if (kv_heads() != n_head) return bad("n_kv_head", n_kv_head, "is set; gpt2 has no grouped-query attention");
    if (head_dim != 0 && head_dim != n_embd / n_head) return bad("head_dim", head_dim, "is not n_embd / n_head for gpt2");
    if (n_mlp != 0 && n_mlp != 4 * n_embd) return bad("n_mlp", n_mlp, "is not 4 * n_embd for gpt2");
    if (!rope.type.empty()) return Status::InvalidArgument("model config: gpt2 has no rotary positions to scale");
    if (sliding_window != 0) return bad("sliding_window", sliding_window, "is set; gpt2 attends to every position");
    if (qkv_bias != false) return Status::InvalidArgument("model config: qkv_bias is a qwen2 field; gpt2 always has biases");
    if (!tie_embeddings) return Status::InvalidArgument("model config: gpt2's head is tied to wte (tie_embeddings)");
    return Status::Ok();
  }
  if (n_mlp < 1) return bad("n_mlp", n_mlp, "must be set (intermediate_size) for " + arch);
  if (head_dim == 0 && n_embd % n_head != 0) {
    return bad("n_embd", n_embd, "is not a multiple of n_head " + std::to_string(n_head) + " (and head_dim is not set)");
  }
  if (head_size() % 2 != 0) return bad("head_dim", head_size(), "must be even (rotary positions rotate pairs)");
  if (!(rope_theta > 1.0) || !std::isfinite(rope_theta)) {
    return Status::InvalidArgument("model config: rope_theta must be finite and > 1");
  }
  if (!rope.type.empty()) {
    if (rope.type != "llama3") {
      return Status::InvalidArgument("model config: rope_scaling type \"" + rope.type + "\" is not supported (only llama3)");
    }
    if (!(rope.factor >= 1.0) || !(rope.low_freq_factor > 0.0) || !(rope.high_freq_factor > rope.low_freq_factor) ||
        rope.original_ctx < 1 || !std::isfinite(rope.factor) || !std::isfinite(rope.high_freq_factor)) {
      return Status::InvalidArgument(
          "model config: rope_scaling llama3 wants factor >= 1, 0 < low_freq_factor < high_freq_factor and "
          "original_max_position_embeddings >= 1");
    }
  }
  if (qkv_bias && arch != "qwen2") return Status::InvalidArgument("model config: qkv_bias is qwen2's; " + arch + " has none");
  if (arch == "qwen2" && !qkv_bias) return Status::InvalidArgument("model config: qwen2 has biases on q, k and v (qkv_bias)");
  if (sliding_window != 0 && arch != "mistral") {
    return bad("sliding_window", sliding_window, "is mistral's; " + arch + " attends to every earlier position");
  }
  return Status::Ok();
}

namespace {
uint64_t Gpt2LayerParams(uint64_t C) {
  return 2 * C + (3 * C * C + 3 * C) + (C * C + C) + 2 * C + (4 * C * C + 4 * C) + (4 * C * C + C);
}
uint64_t LlamaLayerParams(const ModelConfig& c) {
  const uint64_t C = c.n_embd, D = c.head_size(), H = c.n_head, KV = c.kv_heads(), F = c.mlp();
  const uint64_t qkv = (H + 2 * KV) * D;
  return C + qkv * C + (c.qkv_bias ? qkv : 0) + C * H * D + C + 2 * F * C + F * C;
}
}  // namespace

uint64_t ModelConfig::NumParams() const {
  const uint64_t C = n_embd, V = vocab;
  if (is_gpt2()) return V * C + static_cast<uint64_t>(n_ctx) * C + n_layer * Gpt2LayerParams(C) + 2 * C;
  return V * C + n_layer * LlamaLayerParams(*this) + C + (tie_embeddings ? 0 : V * C);
}

std::string ModelConfig::ToString() const {
  std::ostringstream s;
  if (is_gpt2()) {
    s << n_layer << " layers, " << n_head << " heads, width " << n_embd << ", context " << n_ctx << ", vocabulary "
      << vocab;
    return s.str();
  }
  s << arch << ", " << n_layer << " layers, " << n_head << " heads";
  if (kv_heads() != n_head) s << " (" << kv_heads() << " key-value)";
  s << " of " << head_size() << ", width " << n_embd << ", MLP " << mlp() << ", context " << n_ctx << ", vocabulary "
    << vocab;
  if (!rope.type.empty()) s << ", rope " << rope.type << " x" << rope.factor;
  if (sliding_window > 0) s << ", window " << sliding_window;
  if (tie_embeddings) s << ", tied head";
  return s.str();
}

uint64_t TensorSpec::numel() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

uint64_t Gpt2LayerOffset(const ModelConfig& cfg, int layer) {
  const uint64_t C = cfg.n_embd;
  return (static_cast<uint64_t>(cfg.vocab) + cfg.n_ctx) * C + static_cast<uint64_t>(layer) * Gpt2LayerParams(C);
}

uint64_t LlamaLayerOffset(const ModelConfig& cfg, int layer) {
  return static_cast<uint64_t>(cfg.vocab) * cfg.n_embd + static_cast<uint64_t>(layer) * LlamaLayerParams(cfg);
}

uint64_t ModelLayerOffset(const ModelConfig& cfg, int layer) {
  return cfg.is_gpt2() ? Gpt2LayerOffset(cfg, layer) : LlamaLayerOffset(cfg, layer);
}

std::vector<TensorSpec> LlamaTensors(const ModelConfig& cfg) {
  const int64_t C = cfg.n_embd, D = cfg.head_size(), H = cfg.n_head, KV = cfg.kv_heads(), F = cfg.mlp();
  std::vector<TensorSpec> t;
  uint64_t off = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape, int layer) {
    TensorSpec s{std::move(name), off, std::move(shape), layer};
    off += s.numel();
    t.push_back(std::move(s));
  };
  add("model.embed_tokens.weight", {cfg.vocab, C}, -1);
  for (int l = 0; l < cfg.n_layer; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {C}, l);
    // q, k and v back to back: one [(H + 2 KV) D, C] matrix for one product.
    add(p + "self_attn.q_proj.weight", {H * D, C}, l);
    add(p + "self_attn.k_proj.weight", {KV * D, C}, l);
    add(p + "self_attn.v_proj.weight", {KV * D, C}, l);
    if (cfg.qkv_bias) {
      add(p + "self_attn.q_proj.bias", {H * D}, l);
      add(p + "self_attn.k_proj.bias", {KV * D}, l);
      add(p + "self_attn.v_proj.bias", {KV * D}, l);
    }
    add(p + "self_attn.o_proj.weight", {C, H * D}, l);
    add(p + "post_attention_layernorm.weight", {C}, l);
    // gate and up back to back: one [2F, C] product.
    add(p + "mlp.gate_proj.weight", {F, C}, l);
    add(p + "mlp.up_proj.weight", {F, C}, l);
    add(p + "mlp.down_proj.weight", {C, F}, l);
  }
  add("model.norm.weight", {C}, -1);
  if (!cfg.tie_embeddings) add("lm_head.weight", {cfg.vocab, C}, -1);
  return t;
}

std::vector<TensorSpec> ModelTensors(const ModelConfig& cfg) {
  return cfg.is_gpt2() ? Gpt2Tensors(cfg) : LlamaTensors(cfg);
}

std::vector<TensorSpec> Gpt2Tensors(const ModelConfig& cfg) {
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

void InitWeights(const ModelConfig& cfg, uint64_t seed, std::span<float> params) {
  const auto tensors = ModelTensors(cfg);
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
    if (ends_with("ln_1.weight") || ends_with("ln_2.weight") || name == "ln_f.weight" || ends_with("layernorm.weight") ||
        name == "model.norm.weight") {
      std::fill(p, p + n, 1.0f);
    } else if (ends_with(".bias")) {
      std::fill(p, p + n, 0.0f);
    } else {
      const bool resid = ends_with("c_proj.weight") || ends_with("o_proj.weight") || ends_with("down_proj.weight");
      const double sd = resid ? resid_std : 0.02;
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
