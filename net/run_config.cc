#include "net/run_config.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "model/config_json.h"

namespace strata::optim {
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(OuterConfig, eta, mu, a, upper_mult, lower_mult, rms_beta, tau_max, h_ref, nesterov,
                                   clip, apply_every)
}  // namespace strata::optim

namespace strata::net {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(SwarmRunConfig, run_id, model, init_seed, tokenizer, outer, chunk_elems, history,
                                   snapshot_every, lease_ms, outlier_mult, theta_bound, sync_peers)

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
  nlohmann::json j = c;  // nlohmann 3.11.2's type macros convert to nlohmann::json (keys sorted)
  // JSON has no infinity: +inf (no upper clip) is written as the string "inf".
  if (std::isinf(c.outer.upper_mult)) j["outer"]["upper_mult"] = "inf";
  return j.dump(2);
}

Result<SwarmRunConfig> SwarmRunConfigFromJson(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("swarm run config: not a JSON object");
  SwarmRunConfig c;
  try {
    nlohmann::json& o = j.at("outer");
    if (o.is_object() && o.contains("upper_mult") && o["upper_mult"] == "inf")
      o["upper_mult"] = std::numeric_limits<float>::infinity();
    // Runs stored before the bound existed keep the default.
    if (!j.contains("theta_bound")) j["theta_bound"] = c.theta_bound;
    j.get_to(c);
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(std::string("swarm run config: ") + e.what());
  }
  if (Status s = c.Validate(); !s.ok()) return Status::Corruption("swarm run config: " + s.message());
  return c;
}

}  // namespace strata::net
