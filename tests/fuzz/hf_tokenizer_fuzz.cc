// libFuzzer target for the Hugging Face tokenizer.json reader (LoadHfTokenizer, model/tokenizer.h).
// The input is written to a scratch tokenizer.json and loaded. Any input is refused with a
// Corruption (a damaged file) or an InvalidArgument (a well-formed file asking for what strata does
// not do), never anything else; an accepted tokenizer keeps the round trip (tokenizer_check.h).
// Build and run: tests/fuzz/README.md.
#include "model/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/tokenizer_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = strata::fuzz::ScratchDir() + "/tokenizer.json";
  strata::fuzz::WriteBytes(path, std::span<const uint8_t>(data, size));
  auto tok = strata::model::LoadHfTokenizer(path);
  if (!tok.ok()) {
    STRATA_FUZZ_CHECK(tok.status().IsCorruption() || tok.status().IsInvalidArgument());
    return 0;
  }
  strata::fuzz::CheckTokenizer(**tok, std::string_view(reinterpret_cast<const char*>(data), size));
  strata::fuzz::Accept();
  return 0;
}
