// libFuzzer target for the Hugging Face tokenizer.json reader (LoadHfTokenizer, model/tokenizer.h):
// the GPT-2 form and the Llama 3 / Qwen2 (Split, NFC) and Llama 2 / Mistral (SentencePiece-style:
// Prepend + Replace or Metaspace, byte fallback) forms, added tokens, post-processor and decoder
// chains. The input is written to a scratch tokenizer.json and loaded. Any input is refused with a
// Corruption (a damaged file) or an InvalidArgument (a well-formed file asking for what strata does
// not do), never anything else. An accepted tokenizer hands out ids inside its vocabulary from every
// Encode, decodes them, and refuses an id past it. A byte-level one (gpt2-bpe, byte-bpe) keeps the
// round trip for any bytes (tokenizer_check.h) when nothing in its file changes text on purpose: no
// normalizer, the ByteLevel decoder alone, and added tokens that are ASCII without lstrip / rstrip
// (the library decodes an added token through the decoder too, so "é" in one comes back as the byte
// 0xE9). Build and run: tests/fuzz/README.md.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/fuzz/tokenizer_check.h"

namespace {

bool RoundTripExpected(std::string_view text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return false;
  if (j.contains("normalizer") && !j["normalizer"].is_null()) return false;
  const auto dec = j.find("decoder");
  if (dec == j.end() || !dec->is_object() || dec->value("type", nlohmann::json()) != "ByteLevel") return false;
  if (const auto added = j.find("added_tokens"); added != j.end() && added->is_array()) {
    for (const auto& a : *added) {
      if (!a.is_object()) return false;
      for (const char* key : {"lstrip", "rstrip"}) {
        if (a.contains(key) && a[key] != false) return false;
      }
      const auto content = a.find("content");
      if (content == a.end() || !content->is_string()) return false;
      for (unsigned char c : content->get_ref<const std::string&>()) {
        if (c >= 0x80) return false;
      }
    }
  }
  return true;
}

void CheckIds(const strata::model::Tokenizer& tok, const std::vector<int32_t>& ids) {
  for (int32_t id : ids) STRATA_FUZZ_CHECK(id >= 0 && id < tok.vocab_size());
  std::string back;
  STRATA_FUZZ_CHECK(tok.Decode(ids, &back).ok());
}

void CheckEncodes(const strata::model::Tokenizer& tok, std::string_view text) {
  const std::vector<int32_t> plain = tok.Encode(text);
  CheckIds(tok, plain);
  STRATA_FUZZ_CHECK(plain == tok.Encode(text));  // no state between calls
  CheckIds(tok, tok.EncodeWithSpecial(text));
  const std::vector<int32_t> doc = tok.EncodeDocument(text);
  CheckIds(tok, doc);
  if (auto bos = tok.bos()) STRATA_FUZZ_CHECK(*bos >= 0 && *bos < tok.vocab_size());
  if (auto eos = tok.eos()) STRATA_FUZZ_CHECK(*eos >= 0 && *eos < tok.vocab_size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = strata::fuzz::ScratchDir() + "/tokenizer.json";
  strata::fuzz::WriteBytes(path, std::span<const uint8_t>(data, size));
  auto tok = strata::model::LoadHfTokenizer(path);
  if (!tok.ok()) {
    STRATA_FUZZ_CHECK(tok.status().IsCorruption() || tok.status().IsInvalidArgument());
    return 0;
  }
  const strata::model::Tokenizer& t = **tok;
  const std::string_view sample(reinterpret_cast<const char*>(data), std::min<size_t>(size, 512));
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  STRATA_FUZZ_CHECK(t.name() == "gpt2-bpe" || t.name() == "byte-bpe" || t.name() == "sentencepiece-bpe");
  CheckEncodes(t, sample);
  CheckEncodes(t,
               "Hello, world! It's 2026: \xce\xb1\xce\xb2 \xff\xc3 tabs\t\tand  spaces <|endoftext|><s>[INST]\n\n"
               "e\xcc\x81 \xe2\x96\x81 \xe1\xa0\x8e \xe3\x80\x80");
  if (t.name() != "sentencepiece-bpe" && RoundTripExpected(text)) {
    strata::fuzz::CheckTokenizer(t, sample);
  } else {
    const int32_t past = t.vocab_size();
    std::string ignored;
    STRATA_FUZZ_CHECK(t.Decode(std::span<const int32_t>(&past, 1), &ignored).IsInvalidArgument());
  }
  strata::fuzz::Accept();
  return 0;
}
