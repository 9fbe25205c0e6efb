// Training data: text -> token stream (cached) -> a train and a validation split -> batches drawn
// deterministically from (seed, step), so a resumed run sees exactly the batches it would have seen.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model/tokenizer.h"
#include "runtime/status.h"

namespace strata::model {

struct CorpusOptions {
  double val_fraction = 0.05;  // share of tokens held out for validation, in (0, 0.5]
  uint32_t split_block = 4096;  // the split assigns whole blocks of this many tokens to val or train
  uint64_t split_seed = 0;
  std::string cache_dir;  // token caches; "" = $XDG_CACHE_HOME/strata/tokens or ~/.cache/strata/tokens
  bool use_cache = true;
  bool verbose = false;  // one line on stderr per file tokenized, and on cache hits
};

struct TokenCorpus {
  std::vector<int32_t> train, val;
  int32_t vocab_size = 0;
  std::string tokenizer;  // Tokenizer::name()
  uint64_t files = 0, source_bytes = 0;
  bool from_cache = false;
  std::string cache_path;  // "" when no cache was used
};

// --data: a text file, a folder of text files (searched recursively), or a token file written by
// WriteTokenFile (recognised by its magic). Documents are joined with the tokenizer's end-of-text
// token when it has one. Errors name the path: missing, unreadable, empty, no text files in a
// folder, a token id outside the tokenizer's vocabulary.
[[nodiscard]] Result<TokenCorpus> LoadCorpus(const std::string& data, const Tokenizer& tok,
                                             const CorpusOptions& opt);

// The token file (docs/formats/token-file.md): header with magic, version, tokenizer name, vocab
// size, count, checksum; then the ids, little-endian. Written atomically (tmp, fsync, rename).
[[nodiscard]] Status WriteTokenFile(const std::string& path, std::span<const int32_t> tokens,
                                    const std::string& tokenizer, int32_t vocab_size);
struct TokenFile {
  std::vector<int32_t> tokens;
  std::string tokenizer;
  int32_t vocab_size = 0;
};
[[nodiscard]] Result<TokenFile> ReadTokenFile(const std::string& path);

// A batch of B rows of T tokens: inputs[b*T + t] and targets[b*T + t] = the next token.
struct Batch {
  int B = 0, T = 0;
  std::vector<int32_t> inputs, targets;
};
// Row b of training step `step` starts at a position drawn from (seed, step, b) alone.
// stream.size() must be >= T + 1.
void DrawTrainBatch(std::span<const int32_t> stream, uint64_t seed, uint64_t step, int B, int T, Batch* out);
// The index-th validation batch: fixed windows spread evenly over the stream (the same every run).
void DrawValBatch(std::span<const int32_t> stream, uint64_t index, int B, int T, Batch* out);

}  // namespace strata::model
