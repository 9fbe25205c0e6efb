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

// checkpoint_index: the llama whose two-shard checkpoint the index describes (1 layer, width 8,
// 2 heads sharing 1 key-value head, MLP 8, vocabulary 11, untied: 320 parameters), its weights all
// 0.5, and the shard limit that splits them in two.
inline model::ModelConfig IndexFuzzConfig() {
  model::ModelConfig c;
  c.arch = "llama";
  c.n_layer = 1;
  c.n_head = 2;
  c.n_kv_head = 1;
  c.n_embd = 8;
  c.n_mlp = 8;
  c.n_ctx = 16;
  c.vocab = 11;
  c.tie_embeddings = false;
  return c;
}
inline uint64_t IndexFuzzShardBytes() { return 4 * IndexFuzzConfig().NumParams() / 2; }

// membership: the authority's Ed25519 seed (every byte 0xA5).
inline std::array<uint8_t, 32> AuthoritySeed() {
  std::array<uint8_t, 32> s;
  s.fill(0xA5);
  return s;
}

// gpt2_tokenizer: the line between encoder.json and vocab.bpe in one input.
inline constexpr char kGpt2Separator[] = "\n--vocab.bpe--\n";

}  // namespace strata::fuzz
