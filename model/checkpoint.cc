// GPT-2 checkpoints in the Hugging Face layout (see checkpoint.h).
#include "model/checkpoint.h"

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "model/safetensors.h"
#include "runtime/file_util.h"

namespace strata::model {
namespace {

constexpr char kPrefix[] = "transformer.";

bool IsDir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool IsFile(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
std::string DirOf(const std::string& p) {
  const size_t s = p.rfind('/');
  return s == std::string::npos ? "." : p.substr(0, s);
}

Result<Gpt2Config> ConfigFromJson(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) return Status::Corruption(where + ": not a JSON object");
  Gpt2Config c;
  auto get = [&](const char* key, const char* alt, int32_t* out) -> Status {
    const nlohmann::json* v = nullptr;
    if (j.contains(key)) v = &j[key];
    else if (alt && j.contains(alt)) v = &j[alt];
    if (!v) return Status::Corruption(where + ": missing key \"" + key + "\"");
    if (!v->is_number_integer()) return Status::Corruption(where + ": \"" + key + "\" is not an integer");
    const int64_t x = v->get<int64_t>();
    if (x < 1 || x > (int64_t{1} << 30)) return Status::Corruption(where + ": \"" + key + "\" = " + std::to_string(x) + " is out of range");
    *out = static_cast<int32_t>(x);
    return Status::Ok();
  };
  STRATA_RETURN_IF_ERROR(get("n_layer", "num_hidden_layers", &c.n_layer));
  STRATA_RETURN_IF_ERROR(get("n_head", "num_attention_heads", &c.n_head));
  STRATA_RETURN_IF_ERROR(get("n_embd", "hidden_size", &c.n_embd));
  STRATA_RETURN_IF_ERROR(get("n_positions", "n_ctx", &c.n_ctx));
  STRATA_RETURN_IF_ERROR(get("vocab_size", nullptr, &c.vocab));
  if (j.contains("layer_norm_epsilon")) {
    if (!j["layer_norm_epsilon"].is_number()) return Status::Corruption(where + ": \"layer_norm_epsilon\" is not a number");
    c.ln_eps = j["layer_norm_epsilon"].get<float>();
  }
  if (j.contains("activation_function") && j["activation_function"] != "gelu_new" &&
      j["activation_function"] != "gelu_pytorch_tanh") {
    return Status::InvalidArgument(where + ": activation_function " + j["activation_function"].dump() +
                                   " is not supported (strata's GPT-2 uses the tanh GELU, \"gelu_new\")");
  }
  if (j.contains("tie_word_embeddings") && j["tie_word_embeddings"] == false) {
    return Status::InvalidArgument(where + ": tie_word_embeddings is false; strata's GPT-2 ties lm_head to wte");
  }
  if (j.contains("n_inner") && !j["n_inner"].is_null() && j["n_inner"] != 4 * int64_t{c.n_embd}) {  // n_embd <= 2^30
    return Status::InvalidArgument(where + ": n_inner " + j["n_inner"].dump() + " is not 4 * n_embd");
  }
  if (Status s = c.Validate(); !s.ok()) return Status::InvalidArgument(where + ": " + s.message());
  return c;
}

}  // namespace

Result<CheckpointPaths> FindCheckpoint(const std::string& path) {
  CheckpointPaths p;
  if (IsDir(path)) {
    p.weights = path + "/model.safetensors";
    if (!IsFile(p.weights)) return Status::NotFound(path + ": no model.safetensors in this folder");
    if (IsFile(path + "/config.json")) p.config = path + "/config.json";
    return p;
  }
  if (!IsFile(path)) return Status::NotFound(path + ": no such checkpoint file or folder");
  p.weights = path;
  if (IsFile(DirOf(path) + "/config.json")) p.config = DirOf(path) + "/config.json";
  return p;
}

Result<Gpt2Config> ReadCheckpointConfig(const std::string& path) {
  Result<CheckpointPaths> p = FindCheckpoint(path);
  if (!p.ok()) return p.status();
  if (!p->config.empty()) {
    std::ifstream in(p->config);
    if (!in) return Status::IOError(p->config + ": cannot read");
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) return Status::Corruption(p->config + ": not valid JSON");
    return ConfigFromJson(j, p->config);
  }
  Result<SafetensorsFile> f = SafetensorsFile::Open(p->weights);
  if (!f.ok()) return f.status();
  auto it = f->metadata().find("strata.config");
  if (it == f->metadata().end()) {
    return Status::NotFound(p->weights + ": no config.json beside it and no \"strata.config\" in its metadata, so "
                            "n_head is unknown; put the model's config.json in the same folder");
  }
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  if (j.is_discarded()) return Status::Corruption(p->weights + ": metadata \"strata.config\" is not valid JSON");
  return ConfigFromJson(j, p->weights + " (metadata strata.config)");
}

Status LoadCheckpoint(const std::string& path, Gpt2& model) {
  Result<CheckpointPaths> p = FindCheckpoint(path);
  if (!p.ok()) return p.status();
  Result<Gpt2Config> cfg = ReadCheckpointConfig(path);
  if (!cfg.ok()) return cfg.status();
  const Gpt2Config& mc = model.config();
  if (cfg->n_layer != mc.n_layer || cfg->n_head != mc.n_head || cfg->n_embd != mc.n_embd || cfg->n_ctx != mc.n_ctx ||
      cfg->vocab != mc.vocab) {
    return Status::InvalidArgument(p->weights + ": the checkpoint is " + cfg->ToString() + ", the model is " +
                                   mc.ToString());
  }
  Result<SafetensorsFile> f = SafetensorsFile::Open(p->weights);
  if (!f.ok()) return f.status();
  const std::string& file = p->weights;
  // Our name for each tensor in the file.
  std::map<std::string, const TensorInfo*> by_name;
  const TensorInfo* lm_head = nullptr;
  for (const TensorInfo& t : f->tensors()) {
    std::string n = t.name;
    if (n.rfind(kPrefix, 0) == 0) n = n.substr(std::strlen(kPrefix));
    if (n == "lm_head.weight") {
      lm_head = &t;
      continue;
    }
    auto ends = [&](const char* s) { return n.size() >= std::strlen(s) && n.compare(n.size() - std::strlen(s), std::string::npos, s) == 0; };
    if (ends(".attn.bias") || ends(".attn.masked_bias")) continue;  // causal-mask buffers, not parameters
    if (!by_name.emplace(n, &t).second) {
      return Status::Corruption(file + ": tensor " + n + " appears twice (with and without the \"transformer.\" prefix)");
    }
  }
  std::span<float> params = model.params();
  std::set<std::string> used;
  for (const TensorSpec& spec : Gpt2Tensors(mc)) {
    auto it = by_name.find(spec.name);
    if (it == by_name.end()) return Status::Corruption(file + ": missing tensor transformer." + spec.name);
    const TensorInfo& t = *it->second;
    if (t.shape != spec.shape) {
      auto fmt = [](const std::vector<int64_t>& s) {
        std::string o = "[";
        for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
        return o + "]";
      };
      return Status::Corruption(file + ": tensor " + t.name + " has shape " + fmt(t.shape) + ", the config wants " +
                                fmt(spec.shape));
    }
    if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16 && t.dtype != DType::kF64) {
      return Status::Corruption(file + ": tensor " + t.name + " has dtype " + std::string(DTypeName(t.dtype)) +
                                "; want F32, F16, BF16 or F64");
    }
    STRATA_RETURN_IF_ERROR(f->ReadF32(t.name, params.subspan(spec.offset, spec.numel())));
    used.insert(spec.name);
  }
  for (const auto& [n, t] : by_name) {
    if (!used.count(n)) return Status::Corruption(file + ": unknown tensor " + t->name + " (not part of GPT-2)");
  }
  if (lm_head) {
    Result<std::vector<float>> head = f->ReadF32(lm_head->name);
    if (!head.ok()) return head.status();
    const TensorSpec wte = Gpt2Tensors(mc)[0];
    if (head->size() != wte.numel() ||
        std::memcmp(head->data(), params.data() + wte.offset, head->size() * sizeof(float)) != 0) {
      return Status::InvalidArgument(file + ": lm_head.weight differs from wte.weight; strata's GPT-2 ties them");
    }
  }
  return Status::Ok();
}

std::string HfConfigJson(const Gpt2Config& c) {
  nlohmann::ordered_json j;
  j["architectures"] = {"GPT2LMHeadModel"};
  j["model_type"] = "gpt2";
  j["activation_function"] = "gelu_new";
  j["n_layer"] = c.n_layer;
  j["n_head"] = c.n_head;
  j["n_embd"] = c.n_embd;
  j["n_positions"] = c.n_ctx;
  j["n_ctx"] = c.n_ctx;
  j["vocab_size"] = c.vocab;
  j["layer_norm_epsilon"] = c.ln_eps;
  j["n_inner"] = nullptr;
  j["resid_pdrop"] = 0.0;
  j["embd_pdrop"] = 0.0;
  j["attn_pdrop"] = 0.0;
  j["initializer_range"] = 0.02;
  j["scale_attn_weights"] = true;
  j["tie_word_embeddings"] = true;
  j["bos_token_id"] = c.vocab == 50257 ? nlohmann::ordered_json(50256) : nlohmann::ordered_json(nullptr);
  j["eos_token_id"] = c.vocab == 50257 ? nlohmann::ordered_json(50256) : nlohmann::ordered_json(nullptr);
  j["torch_dtype"] = "float32";
  return j.dump(2) + "\n";
}

Status SaveCheckpoint(const std::string& dir, const Gpt2Config& cfg, std::span<const float> params,
                      const std::map<std::string, std::string>& extra_metadata) {
  if (params.size() != cfg.NumParams()) {
    return Status::InvalidArgument("save checkpoint: " + std::to_string(params.size()) + " parameters, the config has " +
                                   std::to_string(cfg.NumParams()));
  }
  if (!IsDir(dir)) return Status::NotFound(dir + ": no such folder");
  const auto specs = Gpt2Tensors(cfg);
  std::vector<TensorOut> out;
  out.reserve(specs.size());
  for (const TensorSpec& s : specs) {
    out.push_back(TensorOut{kPrefix + s.name, DType::kF32, s.shape,
                            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(params.data() + s.offset),
                                                     s.numel() * sizeof(float))});
  }
  std::map<std::string, std::string> meta = extra_metadata;
  meta["format"] = "pt";  // transformers checks this key
  nlohmann::json jc = nlohmann::json::parse(HfConfigJson(cfg));
  meta["strata.config"] = jc.dump();
  STRATA_RETURN_IF_ERROR(WriteSafetensors(dir + "/model.safetensors", out, meta));
  return WriteFileAtomic(dir + "/config.json", HfConfigJson(cfg));
}

}  // namespace strata::model
