// Gpt2Config as JSON ({"n_layer": 4, "n_head": 4, "n_embd": 256, "n_ctx": 256, "vocab": 256,
// "ln_eps": 1e-05}), for the run files that record a model's shape (finetune's run.json, the
// swarm's run config). Hugging Face's config.json is model/checkpoint.h's.
#pragma once

#include <nlohmann/json.hpp>

#include "model/gpt2.h"

namespace strata::model {

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Gpt2Config, n_layer, n_head, n_embd, n_ctx, vocab, ln_eps)

}  // namespace strata::model
