// What a fuzz target and the seed generator (make_corpus.cc) must agree on, so the committed
// seeds stay valid inputs of their targets.
#pragma once

#include <array>
#include <cstdint>

#include "net/run_config.h"

namespace strata::fuzz {

// agg_state: the tiny run whose folder each input becomes. 1 layer, 1 head, width 1, context 1,
// vocabulary 1: 29 parameters, so a snapshot is about 430 bytes and a WAL record 137.
inline net::SwarmRunConfig TinyAggRun() {
  net::SwarmRunConfig c;
  c.run_id = 77;
  c.model.n_layer = 1;
  c.model.n_head = 1;
  c.model.n_embd = 1;
  c.model.n_ctx = 1;
  c.model.vocab = 1;
  c.chunk_elems = 256;
  c.snapshot_every = 1000;  // no snapshot during a fuzzed replay: the WAL is what is fuzzed
  c.history = 4;
  return c;
}
inline constexpr char kAggWalSeparator[] = "\n--wal.log--\n";

// membership: the authority's Ed25519 seed (every byte 0xA5).
inline std::array<uint8_t, 32> AuthoritySeed() {
  std::array<uint8_t, 32> s;
  s.fill(0xA5);
  return s;
}

// gpt2_tokenizer: the line between encoder.json and vocab.bpe in one input.
inline constexpr char kGpt2Separator[] = "\n--vocab.bpe--\n";

}  // namespace strata::fuzz
