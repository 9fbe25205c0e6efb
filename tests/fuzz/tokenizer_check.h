// The contract of a loaded tokenizer, checked by the two tokenizer fuzz targets: every id it
// hands out is in its vocabulary, and Decode(Encode(text)) == text for any byte string (the
// fuzz input itself, a fixed awkward text, and the bytes of a spread of its tokens).
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"

namespace strata::fuzz {

inline void CheckRoundTrip(const model::Tokenizer& tok, std::string_view text) {
  const std::vector<int32_t> ids = tok.Encode(text);
  for (int32_t id : ids) STRATA_FUZZ_CHECK(id >= 0 && id < tok.vocab_size());
  std::string back;
  STRATA_FUZZ_CHECK(tok.Decode(ids, &back).ok());
  STRATA_FUZZ_CHECK(back == text);
}

inline void CheckTokenizer(const model::Tokenizer& tok, std::string_view sample) {
  STRATA_FUZZ_CHECK(tok.vocab_size() >= 256);  // byte-level BPE holds every byte
  if (auto eot = tok.eot()) STRATA_FUZZ_CHECK(*eot >= 0 && *eot < tok.vocab_size());
  CheckRoundTrip(tok, sample.substr(0, 512));
  CheckRoundTrip(tok, "Hello, world! It's 2026: \xce\xb1\xce\xb2 \xff\xc3 tabs\t\tand  spaces <|endoftext|>\n\n");
  const int32_t n = tok.vocab_size();
  for (int k = 0; k < 64; ++k) {
    const int32_t id = static_cast<int32_t>(static_cast<int64_t>(n) * k / 64);
    std::string bytes;
    STRATA_FUZZ_CHECK(tok.Decode(std::span<const int32_t>(&id, 1), &bytes).ok());
    CheckRoundTrip(tok, bytes);
  }
  const int32_t past = n;
  std::string ignored;
  STRATA_FUZZ_CHECK(tok.Decode(std::span<const int32_t>(&past, 1), &ignored).IsInvalidArgument());
}

}  // namespace strata::fuzz
