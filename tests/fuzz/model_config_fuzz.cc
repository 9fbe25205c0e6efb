// libFuzzer target for a checkpoint's config.json (ReadCheckpointConfig, model/checkpoint.h). The
// input is written as config.json into a scratch checkpoint folder (beside an empty
// model.safetensors, which the config reader only looks for) and read. Any input is refused with
// a Corruption (not JSON, a missing or ill-typed key) or an InvalidArgument (a config strata's
// GPT-2 cannot be), never anything else; an accepted config is valid and round-trips: the
// config.json HfConfigJson writes for it reads back as the same config.
// Build and run: tests/fuzz/README.md.
#include "model/checkpoint.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata::model;
  const std::string& dir = strata::fuzz::ScratchDir();
  static const bool made = (strata::fuzz::WriteBytes(dir + "/model.safetensors", std::string_view()), true);
  (void)made;
  strata::fuzz::WriteBytes(dir + "/config.json", std::span<const uint8_t>(data, size));
  auto cfg = ReadCheckpointConfig(dir);
  if (!cfg.ok()) {
    STRATA_FUZZ_CHECK(cfg.status().IsCorruption() || cfg.status().IsInvalidArgument());
    return 0;
  }
  STRATA_FUZZ_CHECK(cfg->Validate().ok());
  strata::fuzz::WriteBytes(dir + "/config.json", HfConfigJson(*cfg));
  auto back = ReadCheckpointConfig(dir);
  STRATA_FUZZ_CHECK(back.ok() && *back == *cfg);
  strata::fuzz::Accept();
  return 0;
}
