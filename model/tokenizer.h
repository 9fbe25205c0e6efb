// Tokenizers: text <-> token ids.
//
//   byte               built in: one token per byte (vocabulary 256), no files needed.
//   gpt2-bpe           GPT-2's byte-level BPE from encoder.json + vocab.bpe (the original OpenAI
//                      files), or from a Hugging Face tokenizer.json with the ByteLevel pre-tokenizer.
//   byte-bpe           a tokenizer.json of byte-level BPE behind a Split pre-tokenizer (Llama 3,
//                      Qwen2: the regex from the file, through PCRE2), NFC normalizer allowed.
//   sentencepiece-bpe  a tokenizer.json of SentencePiece-style BPE (Llama 2, Mistral): "▁" for
//                      spaces (Prepend + Replace normalizer, or Metaspace), byte fallback <0xNN>.
//
// A tokenizer.json is read exactly or refused: each normalizer, pre-tokenizer, model option,
// decoder and post-processor strata implements gives the ids the Hugging Face `tokenizers` library
// gives (tests/model/hf_tokenizer_test.cc holds them to golden files), and anything else is an
// InvalidArgument naming the file and the JSON path. tokenizer_config.json beside the file, when
// there is one, gives bos_token / eos_token (and add_bos_token / add_eos_token must agree with the
// post-processor).
//
// Decode(Encode(text)) == text for any byte string with byte, gpt2-bpe and byte-bpe, as long as the
// file changes no text on purpose (an NFC normalizer: for NFC text; an added token with lstrip /
// rstrip eats spaces; one with non-ASCII content decodes through the byte alphabet, as in the
// library), and for sentencepiece-bpe whenever the library round-trips the text too (its decoder
// turns "▁" into a space and drops the first space). Decode writes the bytes the tokens stand for:
// where the library would write U+FFFD for bytes that are not UTF-8, Decode writes those bytes.
//
// Unicode: NFC and the regex classes \s, \p{L}, \p{N} follow the library's own data (tables in
// tokenizer.cc, read out of it by lab/peers/make_tokenizers.py), not PCRE2's or Python's.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/status.h"

namespace strata::model {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // "byte", "gpt2-bpe", "byte-bpe" or "sentencepiece-bpe".
  virtual std::string name() const = 0;
  // The model's vocabulary plus the added tokens: the highest id + 1.
  virtual int32_t vocab_size() const = 0;
  // The end-of-text token when the vocabulary has one (GPT-2: 50256; a tokenizer.json: eos()); the
  // byte tokenizer has none.
  virtual std::optional<int32_t> eot() const = 0;
  // Encodes text; special tokens in the text ("<|endoftext|>", "<s>") are NOT special: they are
  // encoded as ordinary text (the library's encode_special_tokens=True, add_special_tokens=False).
  // A tokenizer.json's non-special added tokens are still recognised, as the library does.
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;
  // Encodes text with every added token recognised, special ones included: the library's
  // encode(text, add_special_tokens=False). Without added tokens, Encode.
  virtual std::vector<int32_t> EncodeWithSpecial(std::string_view text) const { return Encode(text); }
  // Encodes one document as tokenizer(text) / encode(text) does: EncodeWithSpecial plus what the
  // post-processor adds around it (Llama: BOS first).
  virtual std::vector<int32_t> EncodeDocument(std::string_view text) const { return EncodeWithSpecial(text); }
  // The beginning- and end-of-sequence tokens: tokenizer_config.json's bos_token / eos_token when
  // the file is there, else the post-processor's tokens before / after the text (eos: else
  // "<|endoftext|>" when the vocabulary has it).
  virtual std::optional<int32_t> bos() const { return std::nullopt; }
  virtual std::optional<int32_t> eos() const { return eot(); }
  // Appends the bytes of the tokens; an id outside [0, vocab_size) is an InvalidArgument error.
  [[nodiscard]] virtual Status Decode(std::span<const int32_t> ids, std::string* out) const = 0;
};

std::unique_ptr<Tokenizer> MakeByteTokenizer();
// GPT-2 BPE from the two OpenAI files. Errors name the file and the line or entry at fault.
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> LoadGpt2Tokenizer(const std::string& encoder_json,
                                                                   const std::string& vocab_bpe);
// A Hugging Face tokenizer.json (+ tokenizer_config.json in the same folder, when there is one):
// gpt2-bpe, byte-bpe or sentencepiece-bpe. A damaged file is a Corruption; one asking for what strata
// does not implement exactly is an InvalidArgument, e.g.
//   tokenizer.json: normalizer.normalizers[1].type "NFKC" is not supported (supported: ...)
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> LoadHfTokenizer(const std::string& tokenizer_json);
// The --tokenizer flag: "byte"; a directory holding encoder.json + vocab.bpe or tokenizer.json;
// a path to tokenizer.json; or "gpt2:DIR". The error says which forms are accepted.
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& spec);

// GPT-2's pre-tokenizer alone, for tests: appends the pieces BPE runs on, in order (they concatenate
// to `text`). Invalid UTF-8 is cut out first, each invalid byte a piece of its own.
[[nodiscard]] Status SplitGpt2Pieces(std::string_view text, std::vector<std::string_view>* pieces);

}  // namespace strata::model
