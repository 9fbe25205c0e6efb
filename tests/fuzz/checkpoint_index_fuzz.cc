// libFuzzer target for a sharded checkpoint's model.safetensors.index.json (FindCheckpoint and the
// shard checks of InspectCheckpoint, model/checkpoint.h). The input is written as the index of a
// scratch checkpoint folder that also holds a fixed, valid llama config.json and two real shards
// (model-00001-of-00002.safetensors, model-00002-of-00002.safetensors) splitting that model's
// tensors. Any input is refused with a Corruption (not JSON, no weight_map, a file that is not in
// the folder, a tensor the index and the shards disagree on) or a NotFound (a shard listed but
// absent), never anything else; an accepted index names both shards, and every tensor of the
// model is where it says.
// Build and run: tests/fuzz/README.md.
#include <map>
#include <vector>

#include "model/checkpoint.h"
#include "tests/fuzz/fixtures.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace strata::model;

ModelConfig Config() { return strata::fuzz::IndexFuzzConfig(); }

// The scratch folder's fixed files, written once.
bool MakeFolder(const std::string& dir) {
  const ModelConfig c = Config();
  std::vector<float> w(c.NumParams(), 0.5f);
  SaveOptions so;
  so.max_shard_bytes = strata::fuzz::IndexFuzzShardBytes();  // two shards
  if (!SaveCheckpoint(dir, c, w, so).ok()) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = strata::fuzz::ScratchDir();
  static const bool made = MakeFolder(dir);
  STRATA_FUZZ_CHECK(made);
  strata::fuzz::WriteBytes(dir + "/model.safetensors.index.json", std::span<const uint8_t>(data, size));
  auto info = InspectCheckpoint(dir);
  if (!info.ok()) {
    STRATA_FUZZ_CHECK(info.status().IsCorruption() || info.status().IsNotFound());
    return 0;
  }
  STRATA_FUZZ_CHECK(info->config == Config());
  STRATA_FUZZ_CHECK(info->tensors == ModelTensors(Config()).size());
  STRATA_FUZZ_CHECK(info->bytes == 4 * Config().NumParams());
  strata::fuzz::Accept();
  return 0;
}
