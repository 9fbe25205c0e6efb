// Checkpoints in the Hugging Face layout, every family (see checkpoint.h).
#include "model/checkpoint.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "model/safetensors.h"
#include "runtime/file_util.h"

namespace strata::model {
namespace {

using nlohmann::json;

constexpr char kGpt2Prefix[] = "transformer.";
constexpr char kIndexName[] = "model.safetensors.index.json";

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
bool EndsWith(const std::string& s, const char* suffix) {
  const size_t k = std::strlen(suffix);
  return s.size() >= k && s.compare(s.size() - k, k, suffix) == 0;
}
std::string ShapeText(const std::vector<int64_t>& s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
  return o + "]";
}

// A key of config.json, read with the error naming the file and the key.
class ConfigReader {
 public:
  ConfigReader(const json& j, std::string where) : j_(j), where_(std::move(where)) {}
  const std::string& where() const { return where_; }
  const json* Find(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  Status Int(const char* key, const char* alt, int32_t* out, bool required = true) const {
    const json* v = Find(key);
    const char* name = key;
    if (!v && alt) v = Find(alt), name = alt;
    if (!v) return required ? Status::Corruption(where_ + ": missing key \"" + key + "\"") : Status::Ok();
    if (!v->is_number_integer()) return Status::Corruption(where_ + ": \"" + name + "\" is not an integer");
    const int64_t x = v->get<int64_t>();
    if (x < 1 || x > (int64_t{1} << 30)) {
      return Status::Corruption(where_ + ": \"" + name + "\" = " + std::to_string(x) + " is out of range");
    }
    *out = static_cast<int32_t>(x);
    return Status::Ok();
  }
  Status Number(const json& obj, const std::string& path, const char* key, double* out) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return Status::Ok();
    if (!it->is_number()) return Status::Corruption(where_ + ": \"" + path + key + "\" is not a number");
    *out = it->get<double>();
    return Status::Ok();
  }
  Status Bool(const char* key, bool* out) const {
    const json* v = Find(key);
    if (!v) return Status::Ok();
    if (!v->is_boolean()) return Status::Corruption(where_ + ": \"" + std::string(key) + "\" is not true or false");
    *out = v->get<bool>();
    return Status::Ok();
  }
  Status Unsupported(const std::string& key, const json& v, const std::string& why) const {
    return Status::InvalidArgument(where_ + ": " + key + " " + v.dump() + " is not supported (" + why + ")");
  }

 private:
  const json& j_;
  std::string where_;
};

Result<ModelConfig> Gpt2ConfigFromJson(const ConfigReader& r) {
  ModelConfig c;
  STRATA_RETURN_IF_ERROR(r.Int("n_layer", "num_hidden_layers", &c.n_layer));
  STRATA_RETURN_IF_ERROR(r.Int("n_head", "num_attention_heads", &c.n_head));
  STRATA_RETURN_IF_ERROR(r.Int("n_embd", "hidden_size", &c.n_embd));
  STRATA_RETURN_IF_ERROR(r.Int("n_positions", "n_ctx", &c.n_ctx));
  STRATA_RETURN_IF_ERROR(r.Int("vocab_size", nullptr, &c.vocab));
  const std::string& where = r.where();
  if (const json* v = r.Find("layer_norm_epsilon")) {
    if (!v->is_number()) return Status::Corruption(where + ": \"layer_norm_epsilon\" is not a number");
    c.ln_eps = v->get<float>();
  }
  if (const json* v = r.Find("activation_function"); v && *v != "gelu_new" && *v != "gelu_pytorch_tanh") {
    return Status::InvalidArgument(where + ": activation_function " + v->dump() +
                                   " is not supported (strata's GPT-2 uses the tanh GELU, \"gelu_new\")");
  }
  if (const json* v = r.Find("tie_word_embeddings"); v && *v == false) {
    return Status::InvalidArgument(where + ": tie_word_embeddings is false; strata's GPT-2 ties lm_head to wte");
  }
  if (const json* v = r.Find("n_inner"); v && *v != 4 * int64_t{c.n_embd}) {  // n_embd <= 2^30
    return Status::InvalidArgument(where + ": n_inner " + v->dump() + " is not 4 * n_embd");
  }
  return c;
}

// The rotary settings: rope_parameters (transformers 5: rope_theta inside, rope_type "default" or
// "llama3") or the older rope_theta + rope_scaling ({"rope_type" or "type": ...}).
Status ReadRope(const ConfigReader& r, const json& root, ModelConfig* c) {
  const std::string& where = r.where();
  if (const json* t = r.Find("rope_theta")) {
    if (!t->is_number()) return Status::Corruption(where + ": \"rope_theta\" is not a number");
    c->rope_theta = t->get<double>();
  }
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    auto it = root.find(key);
    if (it == root.end() || it->is_null()) continue;
    const json& p = *it;
    const std::string path = std::string(key) + ".";
    if (!p.is_object()) return Status::Corruption(where + ": \"" + key + "\" is not an object");
    STRATA_RETURN_IF_ERROR(r.Number(p, path, "rope_theta", &c->rope_theta));
    std::string type = "default";
    for (const char* tk : {"rope_type", "type"}) {
      if (auto t = p.find(tk); t != p.end() && !t->is_null()) {
        if (!t->is_string()) return Status::Corruption(where + ": \"" + path + tk + "\" is not a string");
        type = t->get<std::string>();
        break;
      }
    }
    if (type == "default") continue;
    if (type != "llama3") {
      return Status::InvalidArgument(where + ": " + path + "rope_type \"" + type +
                                     "\" is not supported (strata computes \"default\" and \"llama3\")");
    }
    c->rope.type = "llama3";
    STRATA_RETURN_IF_ERROR(r.Number(p, path, "factor", &c->rope.factor));
    STRATA_RETURN_IF_ERROR(r.Number(p, path, "low_freq_factor", &c->rope.low_freq_factor));
    STRATA_RETURN_IF_ERROR(r.Number(p, path, "high_freq_factor", &c->rope.high_freq_factor));
    double orig = c->rope.original_ctx;
    STRATA_RETURN_IF_ERROR(r.Number(p, path, "original_max_position_embeddings", &orig));
    if (!(orig >= 1 && orig <= (1 << 30)) || orig != std::floor(orig)) {
      return Status::Corruption(where + ": \"" + path + "original_max_position_embeddings\" is not a positive integer");
    }
    c->rope.original_ctx = static_cast<int32_t>(orig);
    for (const char* k : {"attention_factor", "mscale", "mscale_all_dim"}) {
      if (auto t = p.find(k); t != p.end() && !t->is_null()) {
        return r.Unsupported(path + k, *t, "llama3 scaling takes factor, low_freq_factor, high_freq_factor and "
                                           "original_max_position_embeddings");
      }
    }
  }
  return Status::Ok();
}

Result<ModelConfig> LlamaConfigFromJson(const ConfigReader& r, const json& root, const std::string& type) {
  ModelConfig c;
  c.arch = type;
  c.tie_embeddings = false;
  const std::string& where = r.where();
  STRATA_RETURN_IF_ERROR(r.Int("num_hidden_layers", nullptr, &c.n_layer));
  STRATA_RETURN_IF_ERROR(r.Int("num_attention_heads", nullptr, &c.n_head));
  STRATA_RETURN_IF_ERROR(r.Int("hidden_size", nullptr, &c.n_embd));
  STRATA_RETURN_IF_ERROR(r.Int("intermediate_size", nullptr, &c.n_mlp));
  STRATA_RETURN_IF_ERROR(r.Int("max_position_embeddings", nullptr, &c.n_ctx));
  STRATA_RETURN_IF_ERROR(r.Int("vocab_size", nullptr, &c.vocab));
  STRATA_RETURN_IF_ERROR(r.Int("num_key_value_heads", nullptr, &c.n_kv_head, /*required=*/false));
  STRATA_RETURN_IF_ERROR(r.Int("head_dim", nullptr, &c.head_dim, /*required=*/false));
  if (c.head_dim * int64_t{c.n_head} == c.n_embd) c.head_dim = 0;  // the default, said explicitly
  if (c.n_kv_head == c.n_head) c.n_kv_head = 0;
  if (const json* v = r.Find("rms_norm_eps")) {
    if (!v->is_number()) return Status::Corruption(where + ": \"rms_norm_eps\" is not a number");
    c.ln_eps = v->get<float>();
  } else {
    c.ln_eps = 1e-6f;  // transformers' default for all three
  }
  STRATA_RETURN_IF_ERROR(ReadRope(r, root, &c));
  STRATA_RETURN_IF_ERROR(r.Bool("tie_word_embeddings", &c.tie_embeddings));
  if (const json* v = r.Find("hidden_act"); v && *v != "silu") {
    return r.Unsupported("hidden_act", *v, "the llama family's MLP is SwiGLU, \"silu\"");
  }
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    if (const json* v = r.Find(key); v && *v != false) return r.Unsupported(key, *v, "strata's " + type + " has none");
  }
  if (const json* v = r.Find("pretraining_tp"); v && *v != 1) {
    return r.Unsupported("pretraining_tp", *v, "only 1, the plain products");
  }
  if (type == "qwen2") {
    c.qkv_bias = true;
    if (const json* v = r.Find("use_sliding_window"); v && *v != false) {
      return r.Unsupported("use_sliding_window", *v, "strata's qwen2 attends to every earlier position");
    }
  }
  if (type == "mistral") {
    if (const json* v = r.Find("sliding_window")) {
      if (!v->is_number_integer() || v->get<int64_t>() < 1 || v->get<int64_t>() > (int64_t{1} << 30)) {
        return Status::Corruption(where + ": \"sliding_window\" is not a positive integer or null");
      }
      c.sliding_window = static_cast<int32_t>(v->get<int64_t>());
      if (c.sliding_window >= c.n_ctx) c.sliding_window = 0;  // a window as long as the context is none
    }
  }
  if (const json* v = r.Find("layer_types")) {
    if (!v->is_array()) return Status::Corruption(where + ": \"layer_types\" is not a list");
    for (size_t i = 0; i < v->size(); ++i) {
      const json& t = (*v)[i];
      const bool ok = t == "full_attention" || (t == "sliding_attention" && c.sliding_window > 0);
      if (!ok) return r.Unsupported("layer_types[" + std::to_string(i) + "]", t, "every layer attends alike");
    }
  }
  return c;
}

Result<ModelConfig> ConfigFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return Status::Corruption(where + ": not a JSON object");
  ConfigReader r(j, where);
  std::string type = "gpt2";  // strata's own early configs and GPT-2's say nothing
  if (const json* t = r.Find("model_type")) {
    if (!t->is_string()) return Status::Corruption(where + ": \"model_type\" is not a string");
    type = t->get<std::string>();
  }
  Result<ModelConfig> c = Status::Ok();
  if (type == "gpt2") {
    c = Gpt2ConfigFromJson(r);
  } else if (type == "llama" || type == "mistral" || type == "qwen2") {
    c = LlamaConfigFromJson(r, j, type);
  } else {
    return Status::InvalidArgument(where + ": model_type \"" + type +
                                   "\" is not supported (strata trains gpt2, llama, mistral and qwen2)");
  }
  if (!c.ok()) return c.status();
  if (Status s = c->Validate(); !s.ok()) return Status::InvalidArgument(where + ": " + s.message());
  return c;
}

// The name a tensor of the flat buffer has in a checkpoint file.
std::string FileName(const ModelConfig& cfg, const TensorSpec& s) {
  return cfg.is_gpt2() ? kGpt2Prefix + s.name : s.name;
}
// Entries of a file that are buffers, not parameters.
bool IsBuffer(const ModelConfig& cfg, const std::string& name) {
  if (cfg.is_gpt2()) return EndsWith(name, ".attn.bias") || EndsWith(name, ".attn.masked_bias");
  return EndsWith(name, ".rotary_emb.inv_freq");
}

std::string ShardName(size_t k, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", k + 1, n);
  return buf;
}

}  // namespace

Result<CheckpointPaths> FindCheckpoint(const std::string& path) {
  CheckpointPaths p;
  std::string index;
  if (IsDir(path)) {
    p.dir = path;
    if (IsFile(path + "/" + kIndexName)) {
      index = path + "/" + kIndexName;
    } else if (IsFile(path + "/model.safetensors")) {
      p.shards.push_back(path + "/model.safetensors");
    } else {
      return Status::NotFound(path + ": no model.safetensors and no " + kIndexName + " in this folder");
    }
  } else if (!IsFile(path)) {
    return Status::NotFound(path + ": no such checkpoint file or folder");
  } else {
    p.dir = DirOf(path);
    if (EndsWith(path, ".index.json")) index = path;
    else p.shards.push_back(path);
  }
  if (IsFile(p.dir + "/config.json")) p.config = p.dir + "/config.json";
  if (!index.empty()) {
    p.index = index;
    std::string text;
    STRATA_RETURN_IF_ERROR(ReadFile(index, &text));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::Corruption(index + ": not a JSON object");
    auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object()) return Status::Corruption(index + ": no \"weight_map\" object");
    std::set<std::string> seen;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it->is_string()) return Status::Corruption(index + ": weight_map[\"" + it.key() + "\"] is not a file name");
      const std::string f = it->get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..") {
        return Status::Corruption(index + ": weight_map[\"" + it.key() + "\"] = \"" + f + "\" is not a file in this folder");
      }
      if (seen.insert(f).second) p.shards.push_back(p.dir + "/" + f);
    }
    std::sort(p.shards.begin(), p.shards.end());
    if (p.shards.empty()) return Status::Corruption(index + ": weight_map lists no tensor");
    for (const std::string& s : p.shards) {
      if (!IsFile(s)) return Status::NotFound(index + ": lists shard " + s.substr(p.dir.size() + 1) + ", which is missing");
    }
  }
  return p;
}

Result<ModelConfig> ReadCheckpointConfig(const std::string& path) {
  Result<CheckpointPaths> p = FindCheckpoint(path);
  if (!p.ok()) return p.status();
  if (!p->config.empty()) {
    std::string text;
    STRATA_RETURN_IF_ERROR(ReadFile(p->config, &text));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return Status::Corruption(p->config + ": not valid JSON");
    return ConfigFromJson(j, p->config);
  }
  if (p->shards.size() != 1) return Status::NotFound(p->dir + ": no config.json beside the shards");
  Result<SafetensorsFile> f = SafetensorsFile::OpenHeader(p->shards[0]);
  if (!f.ok()) return f.status();
  auto it = f->metadata().find("strata.config");
  if (it == f->metadata().end()) {
    return Status::NotFound(p->shards[0] + ": no config.json beside it and no \"strata.config\" in its metadata, so "
                            "n_head is unknown; put the model's config.json in the same folder");
  }
  json j = json::parse(it->second, nullptr, false);
  if (j.is_discarded()) return Status::Corruption(p->shards[0] + ": metadata \"strata.config\" is not valid JSON");
  return ConfigFromJson(j, p->shards[0] + " (metadata strata.config)");
}

namespace {

// Where each tensor of a checkpoint is: its shard and its entry there, from the headers alone.
struct TensorPlace {
  size_t shard = 0;
  TensorInfo info;
};
struct Layout {
  std::vector<SafetensorsFile> headers;
  std::map<std::string, TensorPlace> by_name;  // the model's name (gpt2: without "transformer.")
  std::optional<TensorPlace> tied_head;        // a stored lm_head of a tied model
};

Result<Layout> ReadLayout(const CheckpointPaths& p, const ModelConfig& cfg) {
  Layout out;
  std::map<std::string, std::string> weight_map;
  if (!p.index.empty()) {
    std::string text;
    STRATA_RETURN_IF_ERROR(ReadFile(p.index, &text));
    json j = json::parse(text, nullptr, false);
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      weight_map[it.key()] = p.dir + "/" + it->get<std::string>();
    }
  }
  for (size_t k = 0; k < p.shards.size(); ++k) {
    Result<SafetensorsFile> h = SafetensorsFile::OpenHeader(p.shards[k]);
    if (!h.ok()) return h.status();
    const std::string& file = p.shards[k];
    for (const TensorInfo& t : h->tensors()) {
      std::string n = t.name;
      if (cfg.is_gpt2() && n.rfind(kGpt2Prefix, 0) == 0) n = n.substr(std::strlen(kGpt2Prefix));
      if (IsBuffer(cfg, n)) continue;
      if (!p.index.empty()) {
        auto w = weight_map.find(t.name);
        if (w == weight_map.end()) {
          return Status::Corruption(file + ": tensor " + t.name + " is in this shard but not in " + kIndexName);
        }
        if (w->second != file) {
          return Status::Corruption(file + ": tensor " + t.name + " is in this shard, but " + kIndexName + " puts it in " +
                                    w->second.substr(p.dir.size() + 1));
        }
      }
      if (n == "lm_head.weight" && cfg.tie_embeddings) {
        out.tied_head = TensorPlace{k, t};
        continue;
      }
      auto [it, fresh] = out.by_name.emplace(n, TensorPlace{k, t});
      if (!fresh) {
        if (it->second.shard != k) {
          return Status::Corruption(file + ": tensor " + t.name + " is also in " + p.shards[it->second.shard] +
                                    " (a tensor in two shards)");
        }
        return Status::Corruption(file + ": tensor " + n + " appears twice (with and without the \"transformer.\" prefix)");
      }
    }
    out.headers.push_back(std::move(*h));
  }
  for (const auto& [name, file] : weight_map) {
    std::string n = name;
    if (cfg.is_gpt2() && n.rfind(kGpt2Prefix, 0) == 0) n = n.substr(std::strlen(kGpt2Prefix));
    if (IsBuffer(cfg, n) || (n == "lm_head.weight" && cfg.tie_embeddings)) continue;
    if (!out.by_name.count(n)) {
      return Status::Corruption(p.index + ": lists tensor " + name + " in " + file.substr(p.dir.size() + 1) +
                                ", which does not hold it");
    }
  }
  return out;
}

// Every check before any byte is read: each tensor of the model in exactly one shard, with the
// config's shape and a float dtype; nothing else stored.
struct TensorPlan {
  std::vector<std::vector<std::pair<const TensorSpec*, const TensorInfo*>>> per_shard;
  std::map<std::string, uint64_t> dtypes;
};
Result<TensorPlan> PlanTensors(const CheckpointPaths& pp, const ModelConfig& mc, const std::vector<TensorSpec>& specs,
                               const Layout& layout) {
  const CheckpointPaths* p = &pp;
  const Layout* lay = &layout;
  TensorPlan plan;
  plan.per_shard.resize(p->shards.size());
  std::set<std::string> used;
  for (const TensorSpec& spec : specs) {
    auto it = lay->by_name.find(spec.name);
    if (it == lay->by_name.end()) {
      return Status::Corruption((p->index.empty() ? p->shards[0] : p->index) + ": missing tensor " +
                                FileName(mc, spec));
    }
    const TensorInfo& t = it->second.info;
    const std::string& file = p->shards[it->second.shard];
    if (t.shape != spec.shape) {
      return Status::Corruption(file + ": tensor " + t.name + " has shape " + ShapeText(t.shape) +
                                ", the config wants " + ShapeText(spec.shape));
    }
    if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16 && t.dtype != DType::kF64) {
      return Status::Corruption(file + ": tensor " + t.name + " has dtype " + std::string(DTypeName(t.dtype)) +
                                "; want F32, F16, BF16 or F64");
    }
    plan.dtypes[std::string(DTypeName(t.dtype))]++;
    plan.per_shard[it->second.shard].push_back({&spec, &t});
    used.insert(spec.name);
  }
  for (const auto& [n, place] : lay->by_name) {
    if (!used.count(n)) {
      return Status::Corruption(p->shards[place.shard] + ": unknown tensor " + place.info.name + " (not part of " +
                                (mc.is_gpt2() ? std::string("GPT-2") : mc.arch) + ")");
    }
  }
  return plan;
}

std::string DTypeSummary(const std::map<std::string, uint64_t>& d) {
  if (d.size() == 1) return d.begin()->first;
  return d.empty() ? "F32" : "mixed";
}

}  // namespace

Result<CheckpointInfo> InspectCheckpoint(const std::string& path) {
  CheckpointInfo info;
  STRATA_ASSIGN_OR_RETURN(info.paths, FindCheckpoint(path));
  STRATA_ASSIGN_OR_RETURN(info.config, ReadCheckpointConfig(path));
  Result<Layout> l = ReadLayout(info.paths, info.config);
  if (!l.ok()) return l.status();
  const std::vector<TensorSpec> specs = ModelTensors(info.config);
  Result<TensorPlan> plan = PlanTensors(info.paths, info.config, specs, *l);
  if (!plan.ok()) return plan.status();
  for (const SafetensorsFile& h : l->headers) {
    for (const TensorInfo& t : h.tensors()) {
      info.dtypes[std::string(DTypeName(t.dtype))]++;
      info.tensors++;
      info.bytes += t.nbytes();
    }
  }
  info.dtype = DTypeSummary(info.dtypes);
  return info;
}

Status LoadCheckpoint(const std::string& path, Model& model, std::string* dtype) {
  Result<CheckpointPaths> p = FindCheckpoint(path);
  if (!p.ok()) return p.status();
  Result<ModelConfig> cfg = ReadCheckpointConfig(path);
  if (!cfg.ok()) return cfg.status();
  const ModelConfig& mc = model.config();
  const std::string where = p->config.empty() ? p->shards[0] : p->config;
  if (!(*cfg == mc)) {
    return Status::InvalidArgument(where + ": the checkpoint is " + cfg->ToString() + ", the model is " +
                                   mc.ToString());
  }
  Result<Layout> layout = ReadLayout(*p, mc);
  if (!layout.ok()) return layout.status();
  const std::vector<TensorSpec> specs = ModelTensors(mc);
  Result<TensorPlan> plan = PlanTensors(*p, mc, specs, *layout);
  if (!plan.ok()) return plan.status();
  auto& per_shard = plan->per_shard;
  auto& dtypes = plan->dtypes;
  // Shard by shard, each streamed in data-buffer order through StreamF32's two buffers straight
  // into the model's fp32 buffer, its checksum verified in the same pass.
  std::span<float> params = model.params();
  const TensorSpec& emb = specs[0];
  const TensorPlace& emb_place = layout->by_name.at(emb.name);
  const std::string emb_name = mc.is_gpt2() ? "wte.weight" : emb.name;
  bool head_differs = false;
  std::optional<StreamTarget> head;  // the tied head, compared with the embedding
  if (layout->tied_head) {
    const TensorPlace& h = *layout->tied_head;
    if (static_cast<uint64_t>(h.info.numel()) != emb.numel()) {
      return Status::InvalidArgument(p->shards[h.shard] + ": lm_head.weight differs from " + emb_name +
                                     "; the config ties them");
    }
    head = StreamTarget{h.info.name, {}, params.subspan(emb.offset, emb.numel()), &head_differs};
  }
  // The head is compared in its shard's pass when the embedding is complete by then (an earlier
  // shard, or earlier in the same one); else in a second read of its bytes alone at the end.
  const bool head_in_pass = head && (emb_place.shard < layout->tied_head->shard ||
                                     (emb_place.shard == layout->tied_head->shard &&
                                      emb_place.info.end <= layout->tied_head->info.begin));
  for (size_t k = 0; k < p->shards.size(); ++k) {
    const bool has_head = layout->tied_head && layout->tied_head->shard == k;
    if (per_shard[k].empty() && !has_head) continue;
    std::vector<StreamTarget> targets;
    targets.reserve(per_shard[k].size() + 1);
    for (const auto& [spec, t] : per_shard[k]) {
      targets.push_back(StreamTarget{t->name, params.subspan(spec->offset, spec->numel()), {}, nullptr});
    }
    if (has_head && head_in_pass) targets.push_back(*head);
    STRATA_RETURN_IF_ERROR(layout->headers[k].StreamF32(targets));
  }
  if (head && !head_in_pass) {
    StreamOptions o;
    o.verify_checksum = false;  // its shard's pass verified it
    STRATA_RETURN_IF_ERROR(layout->headers[layout->tied_head->shard].StreamF32(std::span(&*head, 1), o));
  }
  if (head_differs) {
    return Status::InvalidArgument(p->shards[layout->tied_head->shard] + ": lm_head.weight differs from " + emb_name +
                                   "; the config ties them");
  }
  if (dtype) *dtype = DTypeSummary(dtypes);
  return Status::Ok();
}

std::string HfConfigJson(const ModelConfig& c, DType dtype, const std::string& base_config_json) {
  nlohmann::ordered_json j;
  if (!base_config_json.empty()) {
    j = nlohmann::ordered_json::parse(base_config_json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) j = nlohmann::ordered_json::object();
  }
  const char* torch_dtype = dtype == DType::kBF16 ? "bfloat16" : dtype == DType::kF16 ? "float16" : "float32";
  if (c.is_gpt2()) {
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
    if (!j.contains("bos_token_id")) {
      j["bos_token_id"] = c.vocab == 50257 ? nlohmann::ordered_json(50256) : nlohmann::ordered_json(nullptr);
      j["eos_token_id"] = c.vocab == 50257 ? nlohmann::ordered_json(50256) : nlohmann::ordered_json(nullptr);
    }
    j["torch_dtype"] = torch_dtype;
    return j.dump(2) + "\n";
  }
  const char* arch = c.arch == "llama" ? "LlamaForCausalLM" : c.arch == "mistral" ? "MistralForCausalLM" : "Qwen2ForCausalLM";
  j["architectures"] = {arch};
  j["model_type"] = c.arch;
  j["hidden_act"] = "silu";
  j["hidden_size"] = c.n_embd;
  j["intermediate_size"] = c.n_mlp;
  j["num_hidden_layers"] = c.n_layer;
  j["num_attention_heads"] = c.n_head;
  j["num_key_value_heads"] = c.kv_heads();
  j["head_dim"] = c.head_size();
  j["max_position_embeddings"] = c.n_ctx;
  j["vocab_size"] = c.vocab;
  j["rms_norm_eps"] = c.ln_eps;
  j["tie_word_embeddings"] = c.tie_embeddings;
  j["attention_dropout"] = 0.0;
  // transformers 5 reads and writes rope_parameters; rope_theta and rope_scaling are its
  // predecessors' spelling of the same, dropped so the two cannot disagree.
  j.erase("rope_theta");
  j.erase("rope_scaling");
  nlohmann::ordered_json rope;
  rope["rope_theta"] = c.rope_theta;
  if (c.rope.type == "llama3") {
    rope["rope_type"] = "llama3";
    rope["factor"] = c.rope.factor;
    rope["low_freq_factor"] = c.rope.low_freq_factor;
    rope["high_freq_factor"] = c.rope.high_freq_factor;
    rope["original_max_position_embeddings"] = c.rope.original_ctx;
  } else {
    rope["rope_type"] = "default";
  }
  j["rope_parameters"] = rope;
  if (c.arch == "llama") {
    j["attention_bias"] = false;
    j["mlp_bias"] = false;
    j["pretraining_tp"] = 1;
  }
  if (c.arch == "mistral") {
    j["sliding_window"] = c.sliding_window > 0 ? nlohmann::ordered_json(c.sliding_window) : nlohmann::ordered_json(nullptr);
  }
  if (c.arch == "qwen2") {
    j["use_sliding_window"] = false;
    j["sliding_window"] = nullptr;
    j.erase("layer_types");
  }
  j.erase("dtype");
  j["torch_dtype"] = torch_dtype;
  return j.dump(2) + "\n";
}

Result<DType> ParseSaveDType(const std::string& text, const std::string& loaded) {
  std::string t = text;
  if (t == "auto") t = (loaded == "BF16" || loaded == "F16") ? loaded : "F32";
  if (t == "F32" || t == "f32" || t == "float32") return DType::kF32;
  if (t == "BF16" || t == "bf16" || t == "bfloat16") return DType::kBF16;
  if (t == "F16" || t == "f16" || t == "float16") return DType::kF16;
  return Status::InvalidArgument("--save-dtype " + text + ": want auto, F32, BF16 or F16");
}

Status SaveCheckpoint(const std::string& dir, const ModelConfig& cfg, std::span<const float> params,
                      const SaveOptions& opt) {
  if (params.size() != cfg.NumParams()) {
    return Status::InvalidArgument("save checkpoint: " + std::to_string(params.size()) + " parameters, the config has " +
                                   std::to_string(cfg.NumParams()));
  }
  if (opt.dtype != DType::kF32 && opt.dtype != DType::kBF16 && opt.dtype != DType::kF16) {
    return Status::InvalidArgument("save checkpoint: dtype " + std::string(DTypeName(opt.dtype)) +
                                   " is not F32, BF16 or F16");
  }
  if (!IsDir(dir)) return Status::NotFound(dir + ": no such folder");
  const auto specs = ModelTensors(cfg);
  const uint64_t item = DTypeSize(opt.dtype);
  // Shards: tensors in buffer order, a new shard when the next tensor would pass the limit.
  std::vector<std::vector<size_t>> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const uint64_t b = specs[i].numel() * item;
    if (opt.max_shard_bytes > 0 && in_shard > 0 && in_shard + b > opt.max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(i);
    in_shard += b;
    total += b;
  }
  const bool sharded = opt.max_shard_bytes > 0 && shards.size() > 1;
  std::map<std::string, std::string> meta = opt.metadata;
  meta["format"] = "pt";  // transformers checks this key
  if (!sharded) meta["strata.config"] = json::parse(HfConfigJson(cfg, opt.dtype, opt.base_config_json)).dump();
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  std::vector<std::string> written;
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string name = sharded ? ShardName(k, shards.size()) : "model.safetensors";
    std::vector<TensorOut> out;
    std::vector<std::vector<uint16_t>> converted;  // the shard's tensors in 16 bits
    converted.reserve(shards[k].size());
    for (size_t i : shards[k]) {
      const TensorSpec& s = specs[i];
      const float* src = params.data() + s.offset;
      std::span<const uint8_t> bytes;
      if (opt.dtype == DType::kF32) {
        bytes = {reinterpret_cast<const uint8_t*>(src), s.numel() * sizeof(float)};
      } else {
        std::vector<uint16_t>& v = converted.emplace_back(s.numel());
        for (uint64_t e = 0; e < s.numel(); ++e) v[e] = opt.dtype == DType::kBF16 ? FloatToBF16(src[e]) : FloatToHalf(src[e]);
        bytes = {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(uint16_t)};
      }
      out.push_back(TensorOut{FileName(cfg, s), opt.dtype, s.shape, bytes});
      weight_map[FileName(cfg, s)] = name;
    }
    STRATA_RETURN_IF_ERROR(WriteSafetensors(dir + "/" + name, out, meta));
    written.push_back(name);
  }
  STRATA_RETURN_IF_ERROR(WriteFileAtomic(dir + "/config.json", HfConfigJson(cfg, opt.dtype, opt.base_config_json)));
  std::error_code ec;
  if (sharded) {
    nlohmann::ordered_json idx;
    idx["metadata"] = {{"total_size", total}, {"total_parameters", cfg.NumParams()}};
    idx["weight_map"] = weight_map;
    STRATA_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + kIndexName, idx.dump(2) + "\n"));
    std::filesystem::remove(dir + "/model.safetensors", ec);  // an earlier unsharded save
  } else {
    std::filesystem::remove(dir + "/" + kIndexName, ec);  // an earlier sharded save
  }
  // Shards of an earlier save that the new one does not use.
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("model-", 0) == 0 && EndsWith(n, ".safetensors") &&
        std::find(written.begin(), written.end(), n) == written.end()) {
      std::filesystem::remove(e.path(), ec);
    }
  }
  return Status::Ok();
}

}  // namespace strata::model
