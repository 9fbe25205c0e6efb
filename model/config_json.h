// ModelConfig as JSON ({"arch": "llama", "n_layer": 4, "n_head": 4, ..., "rope": {"type": "llama3",
// ...}}), for the run files that record a model's shape (finetune's run.json, the swarm's run
// config). A key left out takes its default, so run files written before a field existed still
// read. Hugging Face's config.json is model/checkpoint.h's.
#pragma once

#include <nlohmann/json.hpp>

#include "model/config.h"

namespace strata::model {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RopeScaling, type, factor, low_freq_factor, high_freq_factor,
                                                original_ctx)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ModelConfig, arch, n_layer, n_head, n_embd, n_ctx, vocab, ln_eps,
                                                n_kv_head, head_dim, n_mlp, rope_theta, rope, sliding_window, qkv_bias,
                                                tie_embeddings)

}  // namespace strata::model
