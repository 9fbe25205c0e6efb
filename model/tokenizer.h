// Tokenizers: text <-> token ids.
//
//   byte      built in: one token per byte (vocabulary 256), no files needed.
//   gpt2      GPT-2's byte-level BPE from encoder.json + vocab.bpe (the original OpenAI files),
//             or from a Hugging Face tokenizer.json (model.type "BPE", byte-level pre-tokenizer).
//
// Decode(Encode(text)) == text for any byte string, both kinds.
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
  // "byte" or "gpt2-bpe".
  virtual std::string name() const = 0;
  virtual int32_t vocab_size() const = 0;
  // The end-of-text token when the vocabulary has one (GPT-2: 50256); the byte tokenizer has none.
  virtual std::optional<int32_t> eot() const = 0;
  // Encodes text; "<|endoftext|>" in the text is NOT special (encoded as ordinary text).
  virtual std::vector<int32_t> Encode(std::string_view text) const = 0;
  // Appends the bytes of the tokens; an id outside [0, vocab_size) is an InvalidArgument error.
  [[nodiscard]] virtual Status Decode(std::span<const int32_t> ids, std::string* out) const = 0;
};

std::unique_ptr<Tokenizer> MakeByteTokenizer();
// GPT-2 BPE from the two OpenAI files. Errors name the file and the line or entry at fault.
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> LoadGpt2Tokenizer(const std::string& encoder_json,
                                                                   const std::string& vocab_bpe);
// GPT-2 BPE from a Hugging Face tokenizer.json.
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> LoadHfTokenizer(const std::string& tokenizer_json);
// The --tokenizer flag: "byte"; a directory holding encoder.json + vocab.bpe or tokenizer.json;
// a path to tokenizer.json; or "gpt2:DIR". The error says which forms are accepted.
[[nodiscard]] Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& spec);

// GPT-2's pre-tokenizer alone, for tests: appends the pieces BPE runs on, in order (they concatenate
// to `text`). Invalid UTF-8 is cut out first, each invalid byte a piece of its own.
[[nodiscard]] Status SplitGpt2Pieces(std::string_view text, std::vector<std::string_view>* pieces);

}  // namespace strata::model
