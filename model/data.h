// Training data: text -> token stream (cached) -> a train and a validation split -> batches drawn
// deterministically from (seed, step), so a resumed run sees exactly the batches it would have seen.
#pragma once

#include <cstddef>
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
  uint64_t files = 0, source_bytes = 0;  // the text (or token) files read, and their sizes in bytes
  bool from_cache = false;
  std::string cache_path;  // "" when no cache was used
};

// --data: a text file, a folder of text files (searched recursively), or a token file written by
// WriteTokenFile (recognised by its magic). Documents are joined with the tokenizer's end-of-text
// token when it has one. Errors name the path: missing, unreadable, empty, no text files in a
// folder, a token id outside the tokenizer's vocabulary.
//
// A folder is walked recursively and its files taken in byte order of their paths. Skipped: what
// is not a regular file (symlinked folders are not followed), a file with a NUL byte in its first
// 64 KiB (binary, e.g. fortune's *.dat), and a second path to a file already taken (a symlink).
// A token file must name the same tokenizer and vocabulary size as `tok`.
//
// The stream is cut into blocks of split_block tokens (the last block takes the remainder); block
// i goes to val when a hash of (split_seed, i) is below val_fraction, and at least one block goes
// to each side. A stream shorter than two blocks gives its last val_fraction to val instead.
[[nodiscard]] Result<TokenCorpus> LoadCorpus(const std::string& data, const Tokenizer& tok,
                                             const CorpusOptions& opt);

// The token file (docs/formats/token-file.md): header with magic, version, tokenizer name, vocab
// size, count, checksum; then the ids, little-endian. Written atomically (tmp, fsync, rename).
inline constexpr size_t kTokenFileHeaderBytes = 128;
inline constexpr uint32_t kTokenFileVersion = 1;
inline constexpr size_t kTokenFileMaxName = 64;  // bytes of the tokenizer's name
[[nodiscard]] Status WriteTokenFile(const std::string& path, std::span<const int32_t> tokens,
                                    const std::string& tokenizer, int32_t vocab_size);
struct TokenFile {
  std::vector<int32_t> tokens;
  std::string tokenizer;
  int32_t vocab_size = 0;
};
// Every failure to decode is a Corruption naming the file and the field (or token) at fault.
[[nodiscard]] Result<TokenFile> ReadTokenFile(const std::string& path);

// A batch of B rows of T tokens: inputs[b*T + t] and targets[b*T + t] = the next token.
struct Batch {
  int B = 0, T = 0;
  std::vector<int32_t> inputs, targets;  // (B, T) each
};
// Row b of training step `step` starts at a position drawn from (seed, step, b) alone, uniform
// over [0, stream.size() - T - 1]. Requires B >= 1, T >= 1 and stream.size() >= T + 1.
void DrawTrainBatch(std::span<const int32_t> stream, uint64_t seed, uint64_t step, int B, int T, Batch* out);
// The index-th validation batch: fixed windows spread evenly over the stream (the same every run).
// The stream holds W = (size - 1) / T disjoint windows; row b of batch `index` is window
// (index * B + b) * S mod W, with S coprime to W near W / golden ratio, so any run of W rows visits
// every window once and a short prefix of batches already samples the whole stream.
// Same requirements as DrawTrainBatch.
void DrawValBatch(std::span<const int32_t> stream, uint64_t index, int B, int T, Batch* out);

}  // namespace strata::model
