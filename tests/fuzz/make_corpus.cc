// Writes the seed corpora of the fuzz targets other than wire (make_wire_corpus.cc does that one):
// for each target, valid inputs (named ok-*, which the corpus replay requires to be accepted) and
// near-valid ones (bad-*: one field, byte or line wrong). Deterministic: fixed contents, fixed
// seeds, Ed25519 signatures are deterministic, and the aggregator's math is bit-exact, so
// regenerating gives the same bytes. Usage: make_fuzz_corpus OUT_DIR [TARGET...]
// (see tests/fuzz/README.md). Two seeds are copies of files in tests/data, made by the README's
// commands, not by this program.
#include <xxhash.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/checkpoint.h"
#include "model/data.h"
#include "model/safetensors.h"
#include "net/agg_state.h"
#include "net/identity.h"
#include "optim/pg_codec.h"
#include "offload/state_file.h"
#include "runtime/le.h"
#include "tests/fuzz/fixtures.h"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;
using nlohmann::json;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "make_fuzz_corpus: %s\n", what.c_str());
  std::exit(1);
}
void Must(const strata::Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

Bytes Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die("cannot read " + path);
  return {std::istreambuf_iterator<char>(in), {}};
}
Bytes Of(const std::string& s) { return {s.begin(), s.end()}; }
std::string Str(const Bytes& b) { return {b.begin(), b.end()}; }

// A scratch folder for the writers that take a path.
struct Scratch {
  std::string path;
  Scratch() {
    std::string t = (fs::temp_directory_path() / "strata-make-corpus-XXXXXX").string();
    if (::mkdtemp(t.data()) == nullptr) Die("mkdtemp");
    path = t;
  }
  ~Scratch() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

class Out {
 public:
  Out(std::string dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }
  void Put(const std::string& name, const Bytes& b) {
    std::ofstream f(dir_ + "/" + name, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    if (!f) Die("cannot write " + dir_ + "/" + name);
    ++count_;
  }
  int count() const { return count_; }

 private:
  std::string dir_;
  int count_ = 0;
};

// ---- safetensors --------------------------------------------------------------------------------

// A file from a header written by hand (space-padded to 8) and a data buffer.
Bytes Safetensors(const std::string& header, const Bytes& data) {
  std::string h = header;
  while (h.size() % 8) h += ' ';
  Bytes b(8);
  strata::PutU64(b.data(), h.size());
  b.insert(b.end(), h.begin(), h.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void SafetensorsSeeds(Out& out) {
  using namespace strata::model;
  Scratch tmp;
  auto written = [&](const std::vector<TensorOut>& t, const std::map<std::string, std::string>& meta) {
    Must(WriteSafetensors(tmp / "x.safetensors", t, meta), "safetensors");
    return Read(tmp / "x.safetensors");
  };
  Bytes f32(24);
  for (int i = 0; i < 6; ++i) strata::PutF32(f32.data() + 4 * i, 0.5f * static_cast<float>(i) - 1.0f);
  const Bytes matrix = written({{"w", DType::kF32, {2, 3}, f32}}, {});
  out.Put("ok-f32-matrix", matrix);

  Bytes raw(64);
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(i * 29 + 3);
  const std::span<const uint8_t> r(raw);
  out.Put("ok-every-kind", written({{"half", DType::kF16, {3}, r.subspan(0, 6)},
                                    {"bf16", DType::kBF16, {2, 2}, r.subspan(8, 8)},
                                    {"i64", DType::kI64, {2}, r.subspan(16, 16)},
                                    {"u8", DType::kU8, {5}, r.subspan(32, 5)},
                                    {"flag", DType::kBool, {1}, Bytes{1}},
                                    {"fp8", DType::kF8E4M3, {4}, r.subspan(40, 4)},
                                    {"scalar", DType::kF32, {}, r.subspan(44, 4)},
                                    {"empty", DType::kF32, {0, 3}, {}}},
                                   {{"note", "fuzz seed"}, {"format", "pt"}}));
  // Without strata's checksum (as other tools write it), and two tensors in reverse header order.
  out.Put("ok-no-checksum", Safetensors(R"({"b":{"dtype":"I32","shape":[1],"data_offsets":[4,8]},)"
                                        R"("a":{"dtype":"U16","shape":[2],"data_offsets":[0,4]}})",
                                        Bytes{1, 0, 2, 0, 7, 0, 0, 0}));
  Bytes flipped = matrix;
  flipped.back() ^= 0x40;
  out.Put("bad-checksum", flipped);
  out.Put("bad-overlap", Safetensors(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                                     R"("b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}})",
                                     Bytes(12, 1)));
  out.Put("bad-hole", Safetensors(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                                  R"("b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}})",
                                  Bytes(12, 2)));
  out.Put("bad-shape-size", Safetensors(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", Bytes(8, 0)));
  out.Put("bad-dtype-f4", Safetensors(R"({"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}})", Bytes(1, 0)));
  Bytes longer = matrix;
  strata::PutU64(longer.data(), matrix.size());
  out.Put("bad-header-length", longer);
}

// ---- state file ---------------------------------------------------------------------------------

void StateFileSeeds(Out& out) {
  using namespace strata::offload;
  auto with = [](uint8_t kind, std::initializer_list<uint8_t> pre, const uint8_t* p, size_t n) {
    Bytes b;
    b.reserve(1 + pre.size() + n);
    b.push_back(kind);
    for (uint8_t x : pre) b.push_back(x);
    b.insert(b.end(), p, p + n);
    return b;
  };
  const Geometry headers[] = {{Layout::kQ8MV, 1000, 512},
                              {Layout::kQ8MasterMV, 124'000'000, 1u << 20},
                              {Layout::kFp32MV, 256, 256},
                              {Layout::kFp32MasterMV, 1'000'003, 65536}};
  for (const Geometry& g : headers) {
    FileHeader h;
    h.geo = g;
    h.run_id = 0x1234'5678'9abc'def0ull;
    Bytes b(kFileHeaderBytes);
    EncodeFileHeader(h, b);
    out.Put(std::string("ok-header-") + LayoutName(g.layout), with(0, {}, b.data(), kFileHeaderFields));
    if (g.layout == Layout::kQ8MV) {
      PutU32(b.data() + 8, 2);  // a later version, checksum recomputed: refused by name
      PutU64(b.data() + 120, Checksum(b.data(), 120));
      out.Put("bad-header-version", with(0, {}, b.data(), kFileHeaderFields));
      EncodeFileHeader(h, b);
      PutU64(b.data() + 32, 3);  // a chunk count that does not match the geometry
      PutU64(b.data() + 120, Checksum(b.data(), 120));
      out.Put("bad-header-chunks", with(0, {}, b.data(), kFileHeaderFields));
    }
  }
  Manifest m;
  m.run_id = 42;
  m.committed_step = 7;
  m.n_chunks = 2;
  m.file_bytes = 4096 + 4 * 8192;
  m.unix_seconds = 1'800'000'000;
  const auto mb = EncodeManifest(m);
  out.Put("ok-manifest", with(1, {}, mb.data(), mb.size()));
  out.Put("bad-manifest-truncated", with(1, {}, mb.data(), mb.size() - 1));

  // Slots: the fuzz target's geometries (state_file_fuzz.cc), run 42, step 7, slot B.
  const Geometry slots[] = {{Layout::kQ8MV, 1000, 512},
                            {Layout::kQ8MasterMV, 300, 256},
                            {Layout::kFp32MV, 256, 256},
                            {Layout::kFp32MasterMV, 700, 512}};
  for (uint8_t gi = 0; gi < 4; ++gi) {
    const Geometry& g = slots[gi];
    const uint8_t chunk = static_cast<uint8_t>(g.n_chunks() - 1);  // the last, partial where it can be
    const uint32_t n = g.chunk_len(chunk);
    const uint64_t payload = Geometry::PayloadBytes(g.layout, n);
    Bytes s(kSlotHeaderBytes + payload);
    for (uint64_t i = 0; i < payload; ++i) s[kSlotHeaderBytes + i] = static_cast<uint8_t>(i * 131 + gi);
    SlotHeader h{n, chunk, 7, payload, 42, 0};
    SealSlot(s.data(), h);
    out.Put(std::string("ok-slot-") + LayoutName(g.layout), with(2, {gi, chunk}, s.data(), s.size()));
    if (gi == 1) {
      h.step = 8;  // a slot of another step, sealed: refused by the step check alone
      SealSlot(s.data(), h);
      out.Put("bad-slot-step", with(2, {gi, chunk}, s.data(), s.size()));
    }
  }
}

// ---- token file ---------------------------------------------------------------------------------

void Reseal(Bytes& b) {  // the two checksums of a token file, after a field was changed
  strata::PutU64(b.data() + 32, XXH3_64bits(b.data() + 128, b.size() - 128));
  strata::PutU64(b.data() + 120, XXH3_64bits(b.data(), 120));
}

void TokenFileSeeds(Out& out) {
  using namespace strata::model;
  Scratch tmp;
  auto written = [&](const std::vector<int32_t>& ids, const std::string& name, int32_t vocab) {
    Must(WriteTokenFile(tmp / "t.tokens", ids, name, vocab), "token file");
    return Read(tmp / "t.tokens");
  };
  const std::string text = "Seeds for the token file reader.";
  const std::vector<int32_t> bytes(text.begin(), text.end());
  const Bytes byte = written(bytes, "byte", 256);
  out.Put("ok-byte", byte);
  out.Put("ok-gpt2-two-byte-ids", written({15496, 11, 995, 0, 50256, 318}, "gpt2-bpe", 50257));
  out.Put("ok-three-byte-ids", written({0, 65535, 65536, 99999}, "wide", 100000));
  out.Put("ok-empty", written({}, "byte", 256));
  out.Put("ok-longest-name", written({1, 2, 3}, std::string(kTokenFileMaxName, 'n'), 7));
  Bytes trailing = byte;
  trailing.push_back(0);
  out.Put("bad-trailing-byte", trailing);
  Bytes outside = written({1, 2, 299}, "small", 300);
  outside[128 + 4] = 0x2d;  // id 2 -> 301, then the checksums made right: refused for the id alone
  outside[128 + 5] = 0x01;
  Reseal(outside);
  out.Put("bad-id-outside-vocab", outside);
  Bytes padding = byte;
  padding[48 + 4 + 3] = 'x';  // after the 4-byte name "byte"
  Reseal(padding);
  out.Put("bad-name-padding", padding);
  out.Put("bad-truncated-header", Bytes(byte.begin(), byte.begin() + 100));
}

// ---- tokenizers ---------------------------------------------------------------------------------

// GPT-2's byte alphabet: the printable bytes stand for themselves, the others for 256, 257, ...
std::string Spell(unsigned char b) {
  auto printable = [](int c) { return (c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae); };
  int cp = b;
  if (!printable(b)) {
    int k = 0;
    for (int c = 0; c < b; ++c) k += !printable(c);
    cp = 256 + k;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xc0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return s;
}

// The tiny vocabulary: the 256 bytes as ids 0..255, then five merges, then <|endoftext|> (261).
json TinyVocab() {
  json v = json::object();
  for (int b = 0; b < 256; ++b) v[Spell(static_cast<unsigned char>(b))] = b;
  v["bc"] = 256;
  v["ab"] = 257;
  v["abc"] = 258;
  v[Spell(' ') + "a"] = 259;
  v["aa"] = 260;
  v["<|endoftext|>"] = 261;
  return v;
}
const std::vector<std::pair<std::string, std::string>>& TinyMerges() {
  static const std::vector<std::pair<std::string, std::string>> m = {
      {"b", "c"}, {"a", "b"}, {"a", "bc"}, {Spell(' '), "a"}, {"a", "a"}};
  return m;
}

json HfTokenizer(bool pairs) {
  json merges = json::array();
  for (const auto& [a, b] : TinyMerges()) merges.push_back(pairs ? json::array({a, b}) : json(a + " " + b));
  return {{"version", "1.0"},
          {"added_tokens", json::array({{{"id", 261}, {"content", "<|endoftext|>"}, {"special", true}}})},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", TinyVocab()}, {"merges", merges}}}};
}

void HfTokenizerSeeds(Out& out) {
  out.Put("ok-merge-pairs", Of(HfTokenizer(true).dump()));
  out.Put("ok-merge-strings", Of(HfTokenizer(false).dump(1)));
  json added = HfTokenizer(true);
  added["added_tokens"].push_back({{"id", 262}, {"content", "<|pad|>"}});  // extends the vocabulary
  out.Put("ok-added-token", Of(added.dump()));
  json older = HfTokenizer(true);
  older["model"].erase("type");  // older files leave it out
  out.Put("ok-no-model-type", Of(older.dump()));
  json missing = HfTokenizer(true);
  missing["model"]["vocab"].erase(Spell('q'));
  out.Put("bad-missing-byte", Of(missing.dump()));
  json norm = HfTokenizer(true);
  norm["normalizer"] = {{"type", "NFKC"}};
  out.Put("bad-normalizer", Of(norm.dump()));
  json gap = HfTokenizer(true);
  gap["model"]["vocab"]["aa"] = 300;
  out.Put("bad-id-gap", Of(gap.dump()));
  json unknown = HfTokenizer(true);
  unknown["model"]["merges"].push_back(json::array({"zz", "q"}));
  out.Put("bad-merge-symbol", Of(unknown.dump()));
  json prefix = HfTokenizer(true);
  prefix["pre_tokenizer"]["add_prefix_space"] = true;
  out.Put("bad-prefix-space", Of(prefix.dump()));
}

void Gpt2TokenizerSeeds(Out& out) {
  std::string bpe = "#version: 0.2\n";
  for (const auto& [a, b] : TinyMerges()) bpe += a + " " + b + "\n";
  const std::string enc = TinyVocab().dump(), sep = strata::fuzz::kGpt2Separator;
  out.Put("ok-tiny", Of(enc + sep + bpe));
  std::string crlf;
  for (char c : bpe) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  out.Put("ok-crlf-and-no-version", Of(enc + sep + crlf.substr(crlf.find('\n') + 1) + "\n\n"));
  out.Put("ok-no-merges", Of(enc + sep));
  out.Put("bad-blank-line", Of(enc + sep + "#version: 0.2\nb c\n\na b\n"));
  out.Put("bad-merge-result", Of(enc + sep + "#version: 0.2\nc b\n"));
  out.Put("bad-no-separator", Of(enc));
  out.Put("bad-three-symbols", Of(enc + sep + "a b c\n"));
}

// ---- config.json ---------------------------------------------------------------------------------

void ModelConfigSeeds(Out& out) {
  using strata::model::ModelConfig;
  ModelConfig c;
  out.Put("ok-hf-written", Of(strata::model::HfConfigJson(c)));
  out.Put("ok-aliases", Of(R"({"num_hidden_layers": 2, "num_attention_heads": 3, "hidden_size": 96,)"
                           R"( "n_ctx": 64, "vocab_size": 50257, "n_inner": 384, "layer_norm_epsilon": 1e-6,)"
                           R"( "activation_function": "gelu_pytorch_tanh"})"));
  out.Put("ok-minimal", Of(R"({"n_layer":1,"n_head":1,"n_embd":1,"n_positions":1,"vocab_size":1})"));
  // The llama family, as transformers 5 writes it (rope_parameters) and as older files say it.
  ModelConfig l;
  l.arch = "llama";
  l.n_kv_head = 2;
  l.n_mlp = 96;
  l.head_dim = 16;
  l.rope.type = "llama3";
  l.tie_embeddings = false;
  out.Put("ok-llama-written", Of(strata::model::HfConfigJson(l)));
  ModelConfig m = l;
  m.arch = "mistral";
  m.rope = {};
  m.sliding_window = 64;
  out.Put("ok-mistral-written", Of(strata::model::HfConfigJson(m)));
  ModelConfig q = m;
  q.arch = "qwen2";
  q.sliding_window = 0;
  q.qkv_bias = true;
  q.tie_embeddings = true;
  out.Put("ok-qwen2-written", Of(strata::model::HfConfigJson(q)));
  out.Put("ok-llama-old-spelling",
          Of(R"({"model_type":"llama","num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,)"
             R"("hidden_size":64,"intermediate_size":128,"max_position_embeddings":256,"vocab_size":300,)"
             R"("rms_norm_eps":1e-5,"rope_theta":500000.0,"rope_scaling":{"rope_type":"llama3","factor":32.0,)"
             R"("low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192},)"
             R"("hidden_act":"silu","tie_word_embeddings":true})"));
  out.Put("bad-llama-yarn",
          Of(R"({"model_type":"llama","num_hidden_layers":2,"num_attention_heads":4,"hidden_size":64,)"
             R"("intermediate_size":128,"max_position_embeddings":256,"vocab_size":300,)"
             R"("rope_scaling":{"type":"yarn","factor":4.0}})"));
  out.Put("bad-model-type", Of(R"({"model_type":"falcon","num_hidden_layers":2})"));
  out.Put("bad-not-a-multiple", Of(R"({"n_layer":2,"n_head":3,"n_embd":100,"n_positions":8,"vocab_size":9})"));
  out.Put("bad-activation", Of(R"({"n_layer":2,"n_head":2,"n_embd":8,"n_positions":8,"vocab_size":9,)"
                               R"("activation_function":"relu"})"));
  out.Put("bad-untied", Of(R"({"n_layer":2,"n_head":2,"n_embd":8,"n_positions":8,"vocab_size":9,)"
                           R"("tie_word_embeddings":false})"));
  out.Put("bad-missing-vocab", Of(R"({"n_layer":2,"n_head":2,"n_embd":8,"n_positions":8})"));
  out.Put("bad-float-layers", Of(R"({"n_layer":2.5,"n_head":2,"n_embd":8,"n_positions":8,"vocab_size":9})"));
  out.Put("bad-not-json", Of(R"({"n_layer":2,"n_head":2,)"));
}

// ---- aggregator state ----------------------------------------------------------------------------

strata::net::Contribution Contribution(uint64_t n, uint64_t i, uint64_t base_version, uint8_t peer) {
  strata::net::Contribution c;
  c.peer.fill(peer);
  c.sequence = 1000 + i;
  c.base_version = base_version;
  c.inner_steps = 4;
  c.tokens = 256;
  std::vector<float> delta(n);
  for (uint64_t k = 0; k < n; ++k) delta[k] = 1e-3f * std::sin(static_cast<float>(k * 7 + i));
  strata::optim::ErrorFeedbackEncoder(n).Encode(delta, c.delta);
  return c;
}

void AggStateSeeds(Out& out) {
  using namespace strata::net;
  Scratch tmp;
  const std::string dir = tmp / "agg", sep = strata::fuzz::kAggWalSeparator;
  const SwarmRunConfig cfg = strata::fuzz::TinyAggRun();
  auto a = AggState::Open(dir, cfg);
  Must(a.status(), "aggregator");
  const Bytes snap0 = Read(dir + "/snapshot.bin"), wal0 = Read(dir + "/wal.log");
  out.Put("ok-fresh", Of(Str(snap0) + sep + Str(wal0)));
  out.Put("ok-no-wal", snap0);
  const uint64_t n = cfg.NumParams();
  for (uint64_t i = 0; i < 3; ++i) {
    auto r = (*a)->Submit(Contribution(n, i, (*a)->version(), static_cast<uint8_t>(1 + i % 2)));
    Must(r.status(), "submit");
    if (r->verdict != SubmitVerdict::kApplied) Die("submit " + std::to_string(i) + ": " + r->reason);
  }
  const Bytes wal3 = Read(dir + "/wal.log");
  out.Put("ok-replay-three", Of(Str(snap0) + sep + Str(wal3)));
  const size_t rec = (wal3.size() - wal0.size()) / 3;
  out.Put("ok-torn-tail", Of(Str(snap0) + sep + Str(wal3).substr(0, wal3.size() - rec / 2)));
  std::string gap = Str(wal3);
  gap.erase(wal0.size() + rec, rec);  // records 0 and 2: a gap
  out.Put("bad-gap", Of(Str(snap0) + sep + gap));
  std::string damaged = Str(wal3);
  damaged[wal0.size() + 100] ^= 1;  // inside record 0, with records after it
  out.Put("bad-damaged-record", Of(Str(snap0) + sep + damaged));
  Must((*a)->Snapshot(), "snapshot");
  const Bytes snap3 = Read(dir + "/snapshot.bin"), wal3b = Read(dir + "/wal.log");
  out.Put("ok-snapshot-with-peers", Of(Str(snap3) + sep + Str(wal3b)));
  out.Put("ok-snapshot-and-old-wal", Of(Str(snap3) + sep + Str(wal3)));  // the replay skips all three
  Bytes other = snap3;
  strata::PutU64(other.data() + 8, 78);  // another run, checksum made right
  strata::PutU64(other.data() + other.size() - 8, XXH3_64bits(other.data(), other.size() - 8));
  out.Put("bad-other-run", Of(Str(other) + sep + Str(wal3b)));
  out.Put("bad-truncated-snapshot", Of(Str(snap3).substr(0, snap3.size() - 9) + sep + Str(wal3b)));
}

// ---- membership list -----------------------------------------------------------------------------

void MembershipSeeds(Out& out) {
  using namespace strata::net;
  Scratch tmp;
  std::vector<PublicIdentity> members;
  for (uint8_t i = 1; i <= 3; ++i) {
    std::array<uint8_t, 32> seed;
    seed.fill(i);
    auto id = IdentityFromSeed("peer-" + std::to_string(i), seed);
    Must(id.status(), "identity");
    members.push_back(PublicOf(*id));
  }
  auto authority = IdentityFromSeed("authority", strata::fuzz::AuthoritySeed());
  Must(authority.status(), "authority");
  Must(WriteMembership(tmp / "m", members, nullptr, 77), "membership");
  const std::string plain = Str(Read(tmp / "m"));
  out.Put("ok-unsigned", Of(plain));
  Must(WriteMembership(tmp / "m", members, &*authority, 77), "membership");
  const std::string signed_list = Str(Read(tmp / "m"));
  out.Put("ok-signed", Of(signed_list));
  Must(WriteMembership(tmp / "m", {members[0]}, nullptr), "membership");
  const std::string one = Str(Read(tmp / "m"));
  out.Put("ok-comments-and-blank-lines", Of(one + "\n# a comment \xc3\xa9\n   \n"));
  const std::string second = plain.substr(plain.find("member peer-2"));
  out.Put("bad-duplicate-key", Of(plain + second.substr(0, second.find('\n') + 1)));
  std::string crlf = plain;
  crlf.insert(crlf.find('\n'), "\r");
  out.Put("bad-carriage-return", Of(crlf));
  out.Put("bad-no-final-newline", Of(plain.substr(0, plain.size() - 1)));
  std::string late = signed_list;
  late.insert(late.find("member"), "run 78\n");  // changed after signing
  out.Put("bad-changed-after-signing", Of(late));
}

}  // namespace

// ---- model.safetensors.index.json --------------------------------------------------------------

void CheckpointIndexSeeds(Out& out) {
  namespace m = strata::model;
  const m::ModelConfig c = strata::fuzz::IndexFuzzConfig();
  const std::string dir = fs::temp_directory_path() / "strata-index-seeds";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<float> w(c.NumParams(), 0.5f);
  m::SaveOptions so;
  so.max_shard_bytes = strata::fuzz::IndexFuzzShardBytes();
  if (!m::SaveCheckpoint(dir, c, w, so).ok()) Die("SaveCheckpoint");
  std::ifstream f(dir + "/model.safetensors.index.json");
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  fs::remove_all(dir);
  out.Put("ok-written", Of(text));
  nlohmann::json j = nlohmann::json::parse(text);
  nlohmann::json one_line = j;
  out.Put("ok-compact", Of(one_line.dump()));
  nlohmann::json missing = j;
  missing["weight_map"]["model.norm.weight"] = "model-00003-of-00003.safetensors";
  out.Put("bad-missing-shard", Of(missing.dump()));
  nlohmann::json wrong = j;
  wrong["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
  out.Put("bad-wrong-shard", Of(wrong.dump()));
  nlohmann::json dropped = j;
  dropped["weight_map"].erase("lm_head.weight");
  out.Put("bad-unlisted-tensor", Of(dropped.dump()));
  nlohmann::json slash = j;
  slash["weight_map"]["model.norm.weight"] = "../model-00002-of-00002.safetensors";
  out.Put("bad-path", Of(slash.dump()));
  out.Put("bad-no-weight-map", Of(R"({"metadata": {"total_size": 1280}})"));
  out.Put("bad-not-json", Of("{\"weight_map\": "));
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR [TARGET...]\n", argv[0]);
    return 2;
  }
  const std::map<std::string, std::function<void(Out&)>> targets = {
      {"safetensors", SafetensorsSeeds},   {"state_file", StateFileSeeds},     {"token_file", TokenFileSeeds},
      {"hf_tokenizer", HfTokenizerSeeds},  {"gpt2_tokenizer", Gpt2TokenizerSeeds},
      {"model_config", ModelConfigSeeds},  {"agg_state", AggStateSeeds},       {"membership", MembershipSeeds},
      {"checkpoint_index", CheckpointIndexSeeds}};
  std::vector<std::string> pick(argv + 2, argv + argc);
  if (pick.empty())
    for (const auto& [name, fn] : targets) pick.push_back(name);
  for (const std::string& name : pick) {
    auto it = targets.find(name);
    if (it == targets.end()) Die("unknown target " + name);
    Out out(std::string(argv[1]) + "/" + name);
    it->second(out);
    std::printf("%s: %d seeds\n", name.c_str(), out.count());
  }
  return 0;
}
