// libFuzzer target for the token file reader (model/data.h, docs/formats/token-file.md). The
// input is written to a scratch file and read with ReadTokenFile, twice: as it is, and resealed
// (the ids' checksum at offset 32 and the header's at offset 120 recomputed), so the fuzzer gets
// past the checksums to the field checks. Any input is refused with a Corruption or accepted; an
// accepted file round-trips: WriteTokenFile of its tokens, tokenizer and vocabulary writes back
// exactly the input's bytes (every header byte is either a field or checked to be zero).
// Build and run: tests/fuzz/README.md.
#include <xxhash.h>

#include <vector>

#include "model/data.h"
#include "runtime/le.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

void ReadOne(std::span<const uint8_t> bytes) {
  using namespace strata::model;
  const std::string& dir = strata::fuzz::ScratchDir();
  const std::string path = dir + "/in.tokens", again = dir + "/again.tokens";
  strata::fuzz::WriteBytes(path, bytes);
  auto t = ReadTokenFile(path);
  if (!t.ok()) {
    STRATA_FUZZ_CHECK(t.status().IsCorruption());  // every failure to decode is a Corruption
    return;
  }
  STRATA_FUZZ_CHECK(t->vocab_size >= 1 && !t->tokenizer.empty() && t->tokenizer.size() <= kTokenFileMaxName);
  for (int32_t id : t->tokens) STRATA_FUZZ_CHECK(id >= 0 && id < t->vocab_size);
  STRATA_FUZZ_CHECK(WriteTokenFile(again, t->tokens, t->tokenizer, t->vocab_size).ok());
  const std::vector<uint8_t> back = strata::fuzz::ReadBytes(again);
  STRATA_FUZZ_CHECK(back.size() == bytes.size() && std::equal(back.begin(), back.end(), bytes.begin()));
  strata::fuzz::Accept();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kHeader = strata::model::kTokenFileHeaderBytes;
  ReadOne({data, size});
  if (size >= kHeader) {
    std::vector<uint8_t> sealed(data, data + size);
    strata::PutU64(sealed.data() + 32, XXH3_64bits(sealed.data() + kHeader, size - kHeader));
    strata::PutU64(sealed.data() + 120, XXH3_64bits(sealed.data(), 120));
    ReadOne(sealed);
  }
  return 0;
}
