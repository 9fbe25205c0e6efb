#include "net/run_config.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

namespace strata::net {

using Json = nlohmann::ordered_json;

Status SwarmRunConfig::Validate() const {
  if (Status s = model.Validate(); !s.ok()) return Status::InvalidArgument("swarm model: " + s.message());
  if (Status s = ValidateOuterConfig(outer); !s.ok()) return s;
  if (chunk_elems == 0 || chunk_elems % 256 != 0)
    return Status::InvalidArgument("chunk_elems must be a positive multiple of 256 (got " +
                                   std::to_string(chunk_elems) + ")");
  if (chunk_elems > (16u << 20))
    return Status::InvalidArgument("chunk_elems must be at most 16 Mi (a wire chunk fits in one message)");
  if (!(outlier_mult == 0 || outlier_mult >= 1) || !std::isfinite(outlier_mult))
    return Status::InvalidArgument("outlier_mult must be 0 (off) or at least 1");
  if (!(theta_bound >= 0) || !std::isfinite(theta_bound))
    return Status::InvalidArgument("theta_bound must be finite and >= 0 (0: off)");
  if (history == 0) return Status::InvalidArgument("history must be at least 1");
  if (snapshot_every == 0) return Status::InvalidArgument("snapshot_every must be at least 1");
  if (lease_ms < 50 || lease_ms > 600000)
    return Status::InvalidArgument("lease_ms must be in [50, 600000] (got " + std::to_string(lease_ms) + ")");
  return Status::Ok();
}

std::string SwarmRunConfigToJson(const SwarmRunConfig& c) {
  Json j;
  j["run_id"] = c.run_id;
  j["model"] = {{"n_layer", c.model.n_layer}, {"n_head", c.model.n_head}, {"n_embd", c.model.n_embd},
                {"n_ctx", c.model.n_ctx},     {"vocab", c.model.vocab},   {"ln_eps", c.model.ln_eps}};
  j["init_seed"] = c.init_seed;
  j["tokenizer"] = c.tokenizer;
  const optim::OuterConfig& o = c.outer;
  j["outer"] = {{"eta", o.eta},          {"mu", o.mu},
                {"a", o.a},              {"upper_mult", o.upper_mult},
                {"lower_mult", o.lower_mult}, {"rms_beta", o.rms_beta},
                {"tau_max", o.tau_max},  {"h_ref", o.h_ref},
                {"nesterov", o.nesterov}, {"clip", o.clip},
                {"apply_every", o.apply_every}};
  // JSON has no infinity: +inf (no upper clip) is written as the string "inf".
  if (std::isinf(o.upper_mult)) j["outer"]["upper_mult"] = "inf";
  j["chunk_elems"] = c.chunk_elems;
  j["history"] = c.history;
  j["snapshot_every"] = c.snapshot_every;
  j["lease_ms"] = c.lease_ms;
  j["outlier_mult"] = c.outlier_mult;
  j["theta_bound"] = c.theta_bound;
  j["sync_peers"] = c.sync_peers;
  return j.dump(2);
}

namespace {
template <class T>
Status Get(const Json& j, const char* key, T* out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return Status::Corruption(where + ": missing field \"" + key + "\"");
  try {
    *out = it->template get<T>();
  } catch (const std::exception& e) {
    return Status::Corruption(where + ": field \"" + key + "\" has the wrong type (" + e.what() + ")");
  }
  return Status::Ok();
}
}  // namespace

Result<SwarmRunConfig> SwarmRunConfigFromJson(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("swarm run config: not a JSON object");
  SwarmRunConfig c;
  const std::string w = "swarm run config";
#define STRATA_GET(obj, key, field)                          \
  if (Status s = Get(obj, key, &(field), w); !s.ok()) return s
  STRATA_GET(j, "run_id", c.run_id);
  if (!j.contains("model") || !j["model"].is_object()) return Status::Corruption(w + ": missing object \"model\"");
  const Json& m = j["model"];
  STRATA_GET(m, "n_layer", c.model.n_layer);
  STRATA_GET(m, "n_head", c.model.n_head);
  STRATA_GET(m, "n_embd", c.model.n_embd);
  STRATA_GET(m, "n_ctx", c.model.n_ctx);
  STRATA_GET(m, "vocab", c.model.vocab);
  STRATA_GET(m, "ln_eps", c.model.ln_eps);
  STRATA_GET(j, "init_seed", c.init_seed);
  STRATA_GET(j, "tokenizer", c.tokenizer);
  if (!j.contains("outer") || !j["outer"].is_object()) return Status::Corruption(w + ": missing object \"outer\"");
  const Json& o = j["outer"];
  STRATA_GET(o, "eta", c.outer.eta);
  STRATA_GET(o, "mu", c.outer.mu);
  STRATA_GET(o, "a", c.outer.a);
  if (o.contains("upper_mult") && o["upper_mult"].is_string() && o["upper_mult"] == "inf")
    c.outer.upper_mult = std::numeric_limits<float>::infinity();
  else
    STRATA_GET(o, "upper_mult", c.outer.upper_mult);
  STRATA_GET(o, "lower_mult", c.outer.lower_mult);
  STRATA_GET(o, "rms_beta", c.outer.rms_beta);
  STRATA_GET(o, "tau_max", c.outer.tau_max);
  STRATA_GET(o, "h_ref", c.outer.h_ref);
  STRATA_GET(o, "nesterov", c.outer.nesterov);
  STRATA_GET(o, "clip", c.outer.clip);
  STRATA_GET(o, "apply_every", c.outer.apply_every);
  STRATA_GET(j, "chunk_elems", c.chunk_elems);
  STRATA_GET(j, "history", c.history);
  STRATA_GET(j, "snapshot_every", c.snapshot_every);
  STRATA_GET(j, "lease_ms", c.lease_ms);
  STRATA_GET(j, "outlier_mult", c.outlier_mult);
  // Runs stored before the bound existed keep the default.
  if (j.contains("theta_bound")) STRATA_GET(j, "theta_bound", c.theta_bound);
  STRATA_GET(j, "sync_peers", c.sync_peers);
#undef STRATA_GET
  if (Status s = c.Validate(); !s.ok()) return Status::Corruption(w + ": " + s.message());
  return c;
}

}  // namespace strata::net
