// libFuzzer target for the OpenAI GPT-2 tokenizer files (LoadGpt2Tokenizer, model/tokenizer.h):
// the input is encoder.json, then the separator line "\n--vocab.bpe--\n", then vocab.bpe (no
// separator: all of it is encoder.json and vocab.bpe is empty). Both are written to scratch files
// and loaded. Any input is refused with a Corruption (a damaged file) or an InvalidArgument, never
// anything else; an accepted tokenizer keeps the round trip (tokenizer_check.h).
// Build and run: tests/fuzz/README.md.
#include "model/tokenizer.h"
#include "tests/fuzz/fixtures.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/tokenizer_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto [encoder, merges] = strata::fuzz::SplitAt(data, size, strata::fuzz::kGpt2Separator);
  const std::string& dir = strata::fuzz::ScratchDir();
  strata::fuzz::WriteBytes(dir + "/encoder.json", encoder);
  strata::fuzz::WriteBytes(dir + "/vocab.bpe", merges);
  auto tok = strata::model::LoadGpt2Tokenizer(dir + "/encoder.json", dir + "/vocab.bpe");
  if (!tok.ok()) {
    STRATA_FUZZ_CHECK(tok.status().IsCorruption() || tok.status().IsInvalidArgument());
    return 0;
  }
  strata::fuzz::CheckTokenizer(**tok, std::string_view(reinterpret_cast<const char*>(data), size));
  strata::fuzz::Accept();
  return 0;
}
