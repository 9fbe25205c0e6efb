// Tokenizer tests. The oracles: tiktoken's r50k_base test plans (shared data), GPT-2's original
// merge loop written out plainly below (ReferenceBpe), and Decode(Encode(x)) == x for any bytes.
// A tiny hand-made vocabulary covers what needs no shared data: merge order, errors, round trips.
#include "model/tokenizer.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/offload/temp_dir.h"
#include "tests/test_data.h"

namespace strata::model {
namespace {

// GPT-2's files, committed in tests/data/gpt2/ (so a plain clone runs these tests).
std::string Gpt2Data(const std::string& name) { return std::string(STRATA_TEST_DATA_DIR) + "/gpt2/" + name; }

using json = nlohmann::json;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void WriteAll(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  ASSERT_TRUE(f.good()) << path;
}

// GPT-2's byte alphabet, restated here so the test does not trust the code under test: printable
// Latin-1 bytes spell themselves, the other 68 take U+0100 upward in byte order.
std::string Spell(unsigned char b) {
  int n = 0;
  uint32_t cp = 0;
  for (int x = 0; x < 256; ++x) {
    const bool printable = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
    if (x == b) cp = printable ? x : 256 + n;
    if (!printable) ++n;
  }
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {
    s.push_back(static_cast<char>(0xC0 | cp >> 6));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

std::string Encoded(const Tokenizer& tok, std::string_view text) {
  std::string out;
  const std::vector<int32_t> ids = tok.Encode(text);
  Status s = tok.Decode(ids, &out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// ------------------------------------------------------------------------------------------------
// The tiny vocabulary: ids 0..255 are the bytes themselves (so expected ids read as characters),
// then the merges below in rank order, then <|endoftext|>.

constexpr int kTinyEot = 261;

std::string TinyEncoderJson() {
  json enc = json::object();
  for (int b = 0; b < 256; ++b) enc[Spell(static_cast<unsigned char>(b))] = b;
  enc["bc"] = 256;
  enc["ab"] = 257;
  enc["abc"] = 258;
  enc[Spell(' ') + "a"] = 259;
  enc["aa"] = 260;
  enc["<|endoftext|>"] = kTinyEot;
  return enc.dump();
}

std::string TinyVocabBpe() {
  return "#version: 0.2\nb c\na b\na bc\n" + Spell(' ') + " a\na a\n";
}

struct TinyFiles {
  TempDir dir;
  std::string encoder = dir / "encoder.json";
  std::string vocab = dir / "vocab.bpe";
  TinyFiles(const std::string& enc = TinyEncoderJson(), const std::string& bpe = TinyVocabBpe()) {
    WriteAll(encoder, enc);
    WriteAll(vocab, bpe);
  }
};

std::unique_ptr<Tokenizer> LoadTiny() {
  TinyFiles files;
  auto tok = LoadGpt2Tokenizer(files.encoder, files.vocab);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

// A tokenizer.json equivalent to an encoder.json + vocab.bpe pair, merges as "a b" or ["a", "b"].
enum class MergeForm { kString, kPair };
json HfJson(const std::string& encoder_json, const std::string& vocab_bpe, MergeForm form) {
  json vocab = json::parse(encoder_json);
  json merges = json::array();
  std::istringstream lines(vocab_bpe);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line.starts_with("#version")) continue;
    const size_t sp = line.find(' ');
    if (form == MergeForm::kString) {
      merges.push_back(line);
    } else {
      merges.push_back(json::array({line.substr(0, sp), line.substr(sp + 1)}));
    }
  }
  json added = json::array();
  if (vocab.contains("<|endoftext|>")) {
    added.push_back({{"id", vocab["<|endoftext|>"]}, {"content", "<|endoftext|>"}, {"single_word", false},
                     {"lstrip", false}, {"rstrip", false}, {"normalized", true}, {"special", true}});
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                             {"use_regex", true}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                       {"use_regex", true}}},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
                     {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""},
                     {"fuse_unk", false}, {"byte_fallback", false}, {"vocab", vocab}, {"merges", merges}}}};
}

// ------------------------------------------------------------------------------------------------
// GPT-2's merge loop as its encoder.py states it: find the adjacent pair of lowest rank, merge every
// occurrence of it left to right, repeat. Slow and obviously right; the oracle for the heap version.

class ReferenceBpe {
 public:
  ReferenceBpe(const std::string& encoder_json, const std::string& vocab_bpe) {
    const json enc = json::parse(encoder_json);
    for (const auto& [k, v] : enc.items()) id_[k] = v.get<int32_t>();
    std::istringstream lines(vocab_bpe);
    std::string line;
    int rank = 0;
    while (std::getline(lines, line)) {
      if (line.empty() || line.starts_with("#version")) continue;
      const size_t sp = line.find(' ');
      rank_[{line.substr(0, sp), line.substr(sp + 1)}] = rank++;
    }
  }

  std::vector<int32_t> EncodePiece(std::string_view piece) {
    std::string key(piece);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    std::vector<std::string> word;
    for (char c : piece) word.push_back(Spell(static_cast<unsigned char>(c)));
    while (word.size() > 1) {
      int best = INT_MAX;
      std::pair<std::string, std::string> pair;
      for (size_t i = 0; i + 1 < word.size(); ++i) {
        auto it = rank_.find({word[i], word[i + 1]});
        if (it != rank_.end() && it->second < best) {
          best = it->second;
          pair = it->first;
        }
      }
      if (best == INT_MAX) break;
      std::vector<std::string> merged;
      for (size_t i = 0; i < word.size();) {
        if (i + 1 < word.size() && word[i] == pair.first && word[i + 1] == pair.second) {
          merged.push_back(word[i] + word[i + 1]);
          i += 2;
        } else {
          merged.push_back(word[i++]);
        }
      }
      word = std::move(merged);
    }
    std::vector<int32_t> ids;
    for (const auto& w : word) ids.push_back(id_.at(w));
    return cache_[key] = ids;
  }

  std::vector<int32_t> Encode(std::string_view text) {
    std::vector<std::string_view> pieces;
    Status s = SplitGpt2Pieces(text, &pieces);
    EXPECT_TRUE(s.ok()) << s;
    std::vector<int32_t> ids;
    for (auto p : pieces) {
      auto part = EncodePiece(p);
      ids.insert(ids.end(), part.begin(), part.end());
    }
    return ids;
  }

 private:
  std::unordered_map<std::string, int32_t> id_;
  std::map<std::pair<std::string, std::string>, int> rank_;
  std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

// ------------------------------------------------------------------------------------------------
// Test data: the GPT-2 files and test plans (tests/data/gpt2/), the fortunes corpus.

bool HaveGpt2Files() {
  return testing::FileExists(Gpt2Data("encoder.json")) &&
         testing::FileExists(Gpt2Data("vocab.bpe"));
}

#define SKIP_WITHOUT_GPT2_FILES()                                                                  \
  if (!HaveGpt2Files())                                                                           \
  GTEST_SKIP() << "GPT-2 files absent (" << Gpt2Data("")                                     \
               << " has no encoder.json + vocab.bpe): GPT-2 tokenizer cases not run"

std::unique_ptr<Tokenizer> LoadGpt2() {
  auto tok = LoadGpt2Tokenizer(Gpt2Data("encoder.json"), Gpt2Data("vocab.bpe"));
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

struct PlanCase {
  int line = 0;  // of its "Sample:" line
  std::string sample;
  std::vector<int32_t> ids;
};

// Blocks of "EncodingName: r50k_base", "Sample: <text>", "Encoded: [ids]", separated by blank lines.
std::vector<PlanCase> ReadTestPlans(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<PlanCase> out;
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line.starts_with("EncodingName:")) {
      EXPECT_EQ(line, "EncodingName: r50k_base") << path << " line " << n;
      out.emplace_back();
    } else if (line.starts_with("Sample:") && !out.empty()) {
      out.back().line = n;
      out.back().sample = line.size() > 8 ? line.substr(8) : "";
    } else if (line.starts_with("Encoded:") && !out.empty()) {
      std::string nums = line.substr(line.find('[') + 1);
      std::replace(nums.begin(), nums.end(), ',', ' ');
      std::replace(nums.begin(), nums.end(), ']', ' ');
      std::istringstream ss(nums);
      for (int32_t id; ss >> id;) out.back().ids.push_back(id);
    }
  }
  return out;
}

// Every fortune file (not the *.dat indexes nor the *.u8 links), joined: ~2.6 MB of English.
std::string FortunesText() {
  const std::string dir = "/usr/share/games/fortunes";
  std::vector<std::string> paths;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.is_symlink() || !e.is_regular_file() || e.path().extension() == ".dat") continue;
    paths.push_back(e.path().string());
  }
  std::sort(paths.begin(), paths.end());
  std::string text;
  for (const auto& p : paths) text += ReadAll(p);
  return text;
}

#define SKIP_WITHOUT_FORTUNES(text) \
  if ((text).empty()) GTEST_SKIP() << "/usr/share/games/fortunes absent (Debian package `fortunes`)"

// Random byte strings built from the awkward parts of UTF-8 and of the regex.
std::string AwkwardBytes(std::mt19937_64& rng, size_t parts) {
  static const std::vector<std::string> kParts = {
      "a", "Z", "word", " the", "'s", "'ll", "'", "123", " 4", "!?", " ...", " ", "  ", "\t", "\n", "\r\n",
      std::string(1, '\0'), "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x8c\x8d", "\xe2\x80\x83" /* em space */,
      "\xc2\xa0" /* nbsp */, "\x80", "\xbf", "\xe4\xb8" /* truncated */, "\xc0\x80" /* overlong */,
      "\xed\xa0\x80" /* surrogate */, "\xf5\x80\x80\x80" /* above U+10FFFF */, "\xff", "\xfe"};
  std::string s;
  for (size_t i = 0; i < parts; ++i) {
    switch (rng() % 4) {
      case 0: s.push_back(static_cast<char>(rng() & 0xFF)); break;
      case 1: s.append(1 + rng() % 40, " \t\n"[rng() % 3]); break;  // whitespace runs
      default: s += kParts[rng() % kParts.size()];
    }
  }
  return s;
}

// ------------------------------------------------------------------------------------------------
// Byte tokenizer

TEST(ByteTokenizer, RoundTripsEveryByte) {
  auto tok = MakeByteTokenizer();
  EXPECT_EQ(tok->name(), "byte");
  EXPECT_EQ(tok->vocab_size(), 256);
  EXPECT_FALSE(tok->eot().has_value());
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::vector<int32_t> ids = tok->Encode(all);
  ASSERT_EQ(ids.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(ids[b], b);
  EXPECT_EQ(Encoded(*tok, all), all);
  EXPECT_TRUE(tok->Encode("").empty());
}

TEST(ByteTokenizer, DecodeRejectsOutOfRangeIds) {
  auto tok = MakeByteTokenizer();
  for (int32_t bad : {256, -1, INT32_MAX}) {
    std::string out = "kept";
    const std::vector<int32_t> ids = {104, 105, bad};
    Status s = tok->Decode(ids, &out);
    EXPECT_TRUE(s.IsInvalidArgument()) << s;
    EXPECT_NE(s.message().find(std::to_string(bad)), std::string::npos) << s;
    EXPECT_EQ(out, "kept");  // nothing appended on error
  }
}

// ------------------------------------------------------------------------------------------------
// GPT-2 BPE on the tiny vocabulary (no shared data needed)

TEST(Gpt2Bpe, TinyVocabularyMergesByRankLeftmostFirst) {
  auto tok = LoadTiny();
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->name(), "gpt2-bpe");
  EXPECT_EQ(tok->vocab_size(), 262);
  EXPECT_EQ(tok->eot(), kTinyEot);
  using V = std::vector<int32_t>;
  EXPECT_EQ(tok->Encode("abc"), (V{258}));    // "b c" (rank 0) before "a b" (rank 1), then "a bc"
  EXPECT_EQ(tok->Encode("ab"), (V{257}));
  EXPECT_EQ(tok->Encode("aaa"), (V{260, 'a'}));  // leftmost pair first
  EXPECT_EQ(tok->Encode("aaaa"), (V{260, 260}));
  EXPECT_EQ(tok->Encode(" a"), (V{259}));
  EXPECT_EQ(tok->Encode(" abc"), (V{' ', 258}));  // "b c", then "a bc" (rank 2) beats " a" (rank 3)
  EXPECT_EQ(tok->Encode("ab ab"), (V{257, ' ', 257}));  // " ab": "a b" first, then " ab" has no rule
  // "<|endoftext|>" in text is ordinary text, but decoding its id gives it back.
  const std::string eot_text = "<|endoftext|>";
  const V eot_ids = tok->Encode(eot_text);
  EXPECT_EQ(std::count(eot_ids.begin(), eot_ids.end(), kTinyEot), 0);
  EXPECT_EQ(Encoded(*tok, eot_text), eot_text);
  std::string out;
  ASSERT_TRUE(tok->Decode(V{kTinyEot}, &out).ok());
  EXPECT_EQ(out, eot_text);
}

TEST(Gpt2Bpe, TinyVocabularyAgreesWithReferenceOnAwkwardBytes) {
  auto tok = LoadTiny();
  ASSERT_TRUE(tok);
  ReferenceBpe ref(TinyEncoderJson(), TinyVocabBpe());
  std::mt19937_64 rng(7);
  for (int i = 0; i < 500; ++i) {
    const std::string s = AwkwardBytes(rng, rng() % 60);
    ASSERT_EQ(Encoded(*tok, s), s) << "case " << i;
    ASSERT_EQ(tok->Encode(s), ref.Encode(s)) << "case " << i;
  }
}

TEST(Gpt2Bpe, DecodeRejectsOutOfRangeIds) {
  auto tok = LoadTiny();
  ASSERT_TRUE(tok);
  for (int32_t bad : {262, -1, INT32_MIN}) {
    std::string out = "kept";
    Status s = tok->Decode(std::vector<int32_t>{'a', bad}, &out);
    EXPECT_TRUE(s.IsInvalidArgument()) << s;
    EXPECT_NE(s.message().find("position 1"), std::string::npos) << s;
    EXPECT_EQ(out, "kept");
  }
}

// What GPT-2's regex does with spaces, contractions and numbers (the r50k cases have few of these).
TEST(Gpt2Bpe, PiecesFollowGpt2Regex) {
  using P = std::vector<std::string_view>;
  const std::vector<std::pair<std::string, P>> cases = {
      {"Hello  world", {"Hello", " ", " world"}},   // the last space of a run goes with the word
      {"a\n\n b", {"a", "\n\n", " b"}},
      {"end   ", {"end", "   "}},                    // trailing whitespace stays one piece
      {"it's I'll we're 42nd", {"it", "'s", " I", "'ll", " we", "'re", " 42", "nd"}},
      {"don'T", {"don", "'", "T"}},                  // contractions are lower case only
      {"  !!x", {" ", " !!", "x"}},
      {"na\xc3\xafve caf\xc3\xa9", {"na\xc3\xafve", " caf\xc3\xa9"}},  // Unicode letters (UCP)
      {"a\xe2\x80\x83" "b", {"a", "\xe2\x80\x83", "b"}},                 // an em space is \s
      {"x \xd9\xa3\xd9\xa4", {"x", " \xd9\xa3\xd9\xa4"}},                // Arabic-Indic digits are \p{N}
  };
  for (const auto& [text, want] : cases) {
    std::vector<std::string_view> pieces;
    ASSERT_TRUE(SplitGpt2Pieces(text, &pieces).ok());
    EXPECT_EQ(pieces, want) << json(text).dump();
  }
}

TEST(Gpt2Bpe, PiecesCoverInvalidUtf8ByteByByte) {
  std::vector<std::string_view> pieces;
  const std::string text = "ok\xff\x80 caf\xc3\xa9\xe4\xb8 x";
  ASSERT_TRUE(SplitGpt2Pieces(text, &pieces).ok());
  const std::vector<std::string_view> want = {"ok", "\xff", "\x80", " caf\xc3\xa9", "\xe4", "\xb8", " x"};
  EXPECT_EQ(pieces, want);
}

// ------------------------------------------------------------------------------------------------
// GPT-2 BPE on the real files

TEST(Gpt2Bpe, MatchesR50kTestPlans) {
  SKIP_WITHOUT_GPT2_FILES();
  const std::string path = Gpt2Data("r50k_test_plans.txt");
  if (!testing::FileExists(path)) GTEST_SKIP() << path << " absent: the r50k cases not run";
  auto tok = LoadGpt2();
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->eot(), 50256);
  const std::vector<PlanCase> cases = ReadTestPlans(path);
  ASSERT_EQ(cases.size(), 64u);
  for (const PlanCase& c : cases) {
    EXPECT_EQ(tok->Encode(c.sample), c.ids) << path << " line " << c.line << ": " << c.sample;
    std::string back;
    ASSERT_TRUE(tok->Decode(c.ids, &back).ok());
    EXPECT_EQ(back, c.sample) << path << " line " << c.line;
  }
}

TEST(Gpt2Bpe, HfTokenizerJsonGivesTheSameIds) {
  SKIP_WITHOUT_GPT2_FILES();
  const std::string enc = ReadAll(Gpt2Data("encoder.json"));
  const std::string bpe = ReadAll(Gpt2Data("vocab.bpe"));
  auto gpt2 = LoadGpt2();
  ASSERT_TRUE(gpt2);
  std::vector<std::string> texts;
  for (const auto& c : ReadTestPlans(Gpt2Data("r50k_test_plans.txt"))) texts.push_back(c.sample);
  EXPECT_EQ(texts.size(), 64u);
  if (std::string f = FortunesText(); !f.empty()) texts.push_back(f.substr(0, 300000));
  std::mt19937_64 rng(11);
  texts.push_back(AwkwardBytes(rng, 2000));

  for (MergeForm form : {MergeForm::kString, MergeForm::kPair}) {
    TempDir dir;
    WriteAll(dir / "tokenizer.json", HfJson(enc, bpe, form).dump());
    auto by_path = LoadHfTokenizer(dir / "tokenizer.json");
    ASSERT_TRUE(by_path.ok()) << by_path.status();
    auto by_spec = LoadTokenizer(dir.path());  // a directory with only tokenizer.json in it
    ASSERT_TRUE(by_spec.ok()) << by_spec.status();
    for (const Tokenizer* hf : {by_path->get(), by_spec->get()}) {
      EXPECT_EQ(hf->name(), "gpt2-bpe");
      EXPECT_EQ(hf->vocab_size(), 50257);
      EXPECT_EQ(hf->eot(), 50256);
      for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(hf->Encode(texts[i]), gpt2->Encode(texts[i])) << "text " << i;
    }
  }
}

TEST(Gpt2Bpe, FortunesRoundTripAndMatchReference) {
  SKIP_WITHOUT_GPT2_FILES();
  const std::string text = FortunesText();
  SKIP_WITHOUT_FORTUNES(text);
  auto tok = LoadGpt2();
  ASSERT_TRUE(tok);

  // CPU time as well as wall time: the second counts whatever else the machine is doing.
  const auto t0 = std::chrono::steady_clock::now();
  const std::clock_t c0 = std::clock();
  const std::vector<int32_t> ids = tok->Encode(text);
  const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double mb = text.size() / 1e6;
  std::printf("[ info     ] fortunes: %.2f MB -> %zu tokens (%.2f bytes/token) in %.3f s CPU (%.1f MB/s), "
              "%.3f s wall (%.1f MB/s)\n",
              mb, ids.size(), text.size() / static_cast<double>(ids.size()), cpu, mb / cpu, wall, mb / wall);
#ifdef NDEBUG
  EXPECT_LT(cpu, 5.0) << "encoding " << mb << " MB took too long";
#endif

  std::string back;
  ASSERT_TRUE(tok->Decode(ids, &back).ok());
  EXPECT_TRUE(back == text) << "round trip differs (" << back.size() << " vs " << text.size() << " bytes)";

  ReferenceBpe ref(ReadAll(Gpt2Data("encoder.json")),
                   ReadAll(Gpt2Data("vocab.bpe")));
  const std::vector<int32_t> want = ref.Encode(text);
  ASSERT_EQ(ids.size(), want.size());
  EXPECT_TRUE(ids == want) << "ids differ from GPT-2's merge loop at token "
                           << (std::mismatch(ids.begin(), ids.end(), want.begin()).first - ids.begin());
}

TEST(Gpt2Bpe, RandomBytesRoundTrip) {
  SKIP_WITHOUT_GPT2_FILES();
  auto tok = LoadGpt2();
  ASSERT_TRUE(tok);
  ReferenceBpe ref(ReadAll(Gpt2Data("encoder.json")),
                   ReadAll(Gpt2Data("vocab.bpe")));
  std::mt19937_64 rng(1234);
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    if (i % 4 == 0) {  // uniformly random bytes
      s.resize(rng() % 200);
      for (char& c : s) c = static_cast<char>(rng() & 0xFF);
    } else {
      s = AwkwardBytes(rng, rng() % 80);
    }
    ASSERT_EQ(Encoded(*tok, s), s) << "case " << i;
    ASSERT_EQ(tok->Encode(s), ref.Encode(s)) << "case " << i;
  }
}

TEST(Gpt2Bpe, AwkwardInputs) {
  SKIP_WITHOUT_GPT2_FILES();
  auto tok = LoadGpt2();
  ASSERT_TRUE(tok);
  ReferenceBpe ref(ReadAll(Gpt2Data("encoder.json")),
                   ReadAll(Gpt2Data("vocab.bpe")));
  EXPECT_TRUE(tok->Encode("").empty());
  std::string out;
  ASSERT_TRUE(tok->Decode({}, &out).ok());
  EXPECT_EQ(out, "");

  for (int b = 0; b < 256; ++b) {  // one byte: one token, whatever the byte
    const std::string s(1, static_cast<char>(b));
    EXPECT_EQ(tok->Encode(s).size(), 1u) << "byte " << b;
    EXPECT_EQ(Encoded(*tok, s), s) << "byte " << b;
  }
  EXPECT_EQ(tok->Encode("<|endoftext|>"), ref.Encode("<|endoftext|>"));  // ordinary text, not 50256

  std::mt19937_64 rng(5);
  std::string letters(10000, 'a');
  for (char& c : letters) c = static_cast<char>('a' + rng() % 26);
  const std::vector<std::string> big = {
      std::string(10000, 'a'),                 // one 10k-letter word
      letters,                                 // a 10k-letter word of random letters
      std::string(1 << 20, ' ') + "x",         // a megabyte of spaces before a word
      std::string(100000, '\n'),               // whitespace to the end
      std::string(100000, '\xff'),             // invalid UTF-8 throughout
      std::string(50000, '\0') + "end",
  };
  for (size_t i = 0; i < big.size(); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(Encoded(*tok, big[i]), big[i]) << "input " << i;
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0) << "input " << i;
  }
  EXPECT_EQ(tok->Encode(big[0]), ref.Encode(big[0]));
  EXPECT_EQ(tok->Encode(letters.substr(0, 1000)), ref.Encode(letters.substr(0, 1000)));
}

// One tokenizer, several threads encoding at once (Encode keeps its scratch per call).
TEST(Gpt2Bpe, EncodesFromSeveralThreadsAtOnce) {
  auto tok = HaveGpt2Files() ? LoadGpt2() : LoadTiny();
  ASSERT_TRUE(tok);
  std::mt19937_64 rng(99);
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) texts.push_back(AwkwardBytes(rng, 500));
  std::vector<std::vector<int32_t>> want;
  for (const auto& t : texts) want.push_back(tok->Encode(t));
  std::vector<int> wrong(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t k = (i + t) % texts.size();  // each thread in its own order
          wrong[t] += tok->Encode(texts[k]) != want[k];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(wrong[t], 0) << "thread " << t;
}

// ------------------------------------------------------------------------------------------------
// Loading: the --tokenizer forms and malformed files

TEST(LoadTokenizer, AcceptsEachForm) {
  auto byte = LoadTokenizer("byte");
  ASSERT_TRUE(byte.ok()) << byte.status();
  EXPECT_EQ((*byte)->name(), "byte");

  TinyFiles files;
  for (const std::string& spec : {files.dir.path(), "gpt2:" + files.dir.path()}) {
    auto tok = LoadTokenizer(spec);
    ASSERT_TRUE(tok.ok()) << spec << ": " << tok.status();
    EXPECT_EQ((*tok)->vocab_size(), 262) << spec;
  }
  TempDir hf;
  WriteAll(hf / "my-tokenizer.json", HfJson(TinyEncoderJson(), TinyVocabBpe(), MergeForm::kPair).dump());
  auto tok = LoadTokenizer(hf / "my-tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->Encode("abc"), std::vector<int32_t>{258});
  EXPECT_EQ((*tok)->eot(), kTinyEot);

  if (HaveGpt2Files()) {
    auto shared = LoadTokenizer("gpt2:" + Gpt2Data(""));
    ASSERT_TRUE(shared.ok()) << shared.status();
    EXPECT_EQ((*shared)->Encode("hello"), std::vector<int32_t>{31373});
  }
}

TEST(LoadTokenizer, MissingThingsAreNotFoundNamingThePath) {
  TempDir dir;
  struct Case {
    const char* name;
    std::string spec;
    std::vector<std::string> needles;
  };
  std::filesystem::create_directory(dir / "empty");
  std::filesystem::create_directory(dir / "half");
  WriteAll(dir / "half/encoder.json", TinyEncoderJson());
  const std::vector<Case> cases = {
      {"NO_SUCH_PATH", dir / "nope", {dir / "nope", "\"byte\"", "gpt2:DIR"}},
      {"EMPTY_DIR", dir / "empty", {dir / "empty", "encoder.json", "tokenizer.json"}},
      {"DIR_WITHOUT_VOCAB_BPE", dir / "half", {dir / "half", "vocab.bpe"}},
      {"GPT2_DIR_MISSING", "gpt2:" + (dir / "nope"), {dir / "nope/encoder.json"}},
  };
  for (const Case& c : cases) {
    auto tok = LoadTokenizer(c.spec);
    ASSERT_FALSE(tok.ok()) << c.name;
    EXPECT_TRUE(tok.status().IsNotFound()) << c.name << ": " << tok.status();
    for (const auto& n : c.needles) EXPECT_NE(tok.status().message().find(n), std::string::npos) << c.name << ": " << tok.status() << " lacks " << n;
  }
  TinyFiles files;
  auto no_vocab = LoadGpt2Tokenizer(files.encoder, dir / "vocab.bpe");
  EXPECT_TRUE(no_vocab.status().IsNotFound()) << no_vocab.status();
  EXPECT_NE(no_vocab.status().message().find(dir / "vocab.bpe"), std::string::npos) << no_vocab.status();
  auto no_hf = LoadHfTokenizer(dir / "tokenizer.json");
  EXPECT_TRUE(no_hf.status().IsNotFound()) << no_hf.status();
  EXPECT_FALSE(LoadTokenizer("").ok());
  EXPECT_FALSE(LoadTokenizer("gpt2:").ok());
}

// A corrupt pair of OpenAI files: each case edits the tiny, valid pair.
struct OpenAiCase {
  const char* name;
  std::function<void(std::string& enc, std::string& bpe)> edit;
  std::vector<std::string> needles;  // the message names the file, and the line or entry
};

TEST(LoadGpt2Tokenizer, MalformedFilesNameFileAndLine) {
  const std::vector<OpenAiCase> cases = {
      {"ENCODER_TRUNCATED_JSON", [](auto& e, auto&) { e.resize(e.size() / 2); },
       {"encoder.json: not valid JSON", "line 1, column"}},
      {"ENCODER_EMPTY", [](auto& e, auto&) { e.clear(); }, {"encoder.json: not valid JSON"}},
      {"ENCODER_NOT_OBJECT", [](auto& e, auto&) { e = "[1, 2, 3]"; }, {"encoder.json: not a JSON object"}},
      // Found by tests/fuzz/gpt2_tokenizer_fuzz.cc: a number beyond a double's range threw
      // json::out_of_range (not a parse_error) out of the loader.
      {"ENCODER_NUMBER_OVERFLOW", [](auto& e, auto&) { e = "{\"a\": 5e555}"; },
       {"encoder.json: not valid JSON", "number overflow"}},
      {"ENCODER_NON_INTEGER_ID", [](auto& e, auto&) { e.replace(e.find("\"aa\":260"), 8, "\"aa\":\"260\""); },
       {"encoder.json entry \"aa\"", "not an integer"}},
      {"ENCODER_FLOAT_ID", [](auto& e, auto&) { e.replace(e.find("\"aa\":260"), 8, "\"aa\":260.5"); },
       {"encoder.json entry \"aa\"", "not an integer"}},
      {"ENCODER_NEGATIVE_ID", [](auto& e, auto&) { e.replace(e.find("\"aa\":260"), 8, "\"aa\":-3"); },
       {"encoder.json entry \"aa\"", "out of range"}},
      {"ENCODER_DUPLICATE_ID", [](auto& e, auto&) { e.replace(e.find("\"aa\":260"), 8, "\"aa\":259"); },
       {"encoder.json: id 259 is used by both"}},
      {"ENCODER_ID_GAP", [](auto& e, auto&) { e.replace(e.find("\"aa\":260"), 8, "\"aa\":400"); },
       {"encoder.json: no token has id 260"}},
      {"ENCODER_MISSING_BYTE", [](auto& e, auto&) { e.replace(e.find("\"~\":126"), 7, "\"~~\":126"); },
       {"encoder.json: no token for byte 0x7e"}},
      {"ENCODER_NOT_BYTE_ALPHABET", [](auto& e, auto&) { e.replace(e.find("\"aa\":260"), 8, "\"a\xe2\x82\xac\":260"); },
       {"encoder.json entry \"a\xe2\x82\xac\"", "U+20AC"}},
      {"VOCAB_ONE_SYMBOL", [](auto&, auto& b) { b += "abc\n"; }, {"vocab.bpe line 7: expected two symbols"}},
      {"VOCAB_THREE_SYMBOLS", [](auto&, auto& b) { b += "a b c\n"; }, {"vocab.bpe line 7: expected two symbols"}},
      {"VOCAB_DOUBLE_SPACE", [](auto&, auto& b) { b += "a  b\n"; }, {"vocab.bpe line 7: expected two symbols"}},
      {"VOCAB_BLANK_LINE_INSIDE", [](auto&, auto& b) { b.insert(b.find("a b\n"), 1, '\n'); },
       {"vocab.bpe line 3: blank line"}},
      {"VOCAB_UNKNOWN_SYMBOL", [](auto&, auto& b) { b += "zz a\n"; },
       {"vocab.bpe line 7: symbol \"zz\" is not in", "encoder.json"}},
      {"VOCAB_MERGE_NOT_IN_VOCAB", [](auto&, auto& b) { b += "b b\n"; },
       {"vocab.bpe line 7: the merge of \"b\" and \"b\" (\"bb\") is not in", "encoder.json"}},
      {"VOCAB_REPEATED_MERGE", [](auto&, auto& b) { b += "a b\n"; }, {"vocab.bpe line 7: merge \"a b\" repeats",
                                                                       "vocab.bpe line 3"}},
  };
  for (const OpenAiCase& c : cases) {
    std::string enc = TinyEncoderJson(), bpe = TinyVocabBpe();
    c.edit(enc, bpe);
    TinyFiles files(enc, bpe);
    auto tok = LoadGpt2Tokenizer(files.encoder, files.vocab);
    ASSERT_FALSE(tok.ok()) << c.name << " loaded";
    EXPECT_TRUE(tok.status().IsCorruption()) << c.name << ": " << tok.status();
    for (const auto& n : c.needles) {
      EXPECT_NE(tok.status().message().find(n), std::string::npos) << c.name << ": " << tok.status() << "\n  lacks: " << n;
    }
  }
  // What may vary: no version line, CRLF line ends, trailing blank lines, no merges at all.
  for (std::string bpe : {std::string("b c\na b\n"), std::string("#version: 0.2\r\nb c\r\na b\r\n\n\n"),
                          std::string("#version: 0.2\n"), std::string()}) {
    TinyFiles files(TinyEncoderJson(), bpe);
    auto tok = LoadGpt2Tokenizer(files.encoder, files.vocab);
    EXPECT_TRUE(tok.ok()) << json(bpe).dump() << ": " << tok.status();
  }
}

// A corrupt or unsupported tokenizer.json: each case edits the tiny, valid one.
struct HfCase {
  const char* name;
  std::function<void(json&)> edit;
  bool unsupported;  // InvalidArgument (a kind we do not implement), else Corruption
  std::vector<std::string> needles;
};

TEST(LoadHfTokenizer, MalformedFilesNameFileAndField) {
  const std::vector<HfCase> cases = {
      {"WORDPIECE_MODEL", [](json& j) { j["model"]["type"] = "WordPiece"; }, true,
       {"tokenizer.json: model.type \"WordPiece\" is not supported (supported: BPE)"}},
      {"NO_MODEL", [](json& j) { j.erase("model"); }, false, {"tokenizer.json: no \"model\" object"}},
      {"NO_VOCAB", [](json& j) { j["model"].erase("vocab"); }, false, {"tokenizer.json: model.vocab"}},
      {"NO_MERGES", [](json& j) { j["model"]["merges"] = "a b"; }, false, {"tokenizer.json: model.merges"}},
      {"MERGE_NOT_STRING_OR_PAIR", [](json& j) { j["model"]["merges"][3] = 5; }, false,
       {"tokenizer.json model.merges[3]: expected"}},
      {"MERGE_PAIR_OF_THREE", [](json& j) { j["model"]["merges"][1] = {"a", "b", "c"}; }, false,
       {"tokenizer.json model.merges[1]: expected"}},
      {"MERGE_STRING_ONE_SYMBOL", [](json& j) { j["model"]["merges"][0] = "abc"; }, false,
       {"tokenizer.json model.merges[0]: expected"}},
      {"MERGE_UNKNOWN_SYMBOL", [](json& j) { j["model"]["merges"][2] = {"zz", "a"}; }, false,
       {"tokenizer.json model.merges[2]: symbol \"zz\""}},
      {"VOCAB_NON_INTEGER_ID", [](json& j) { j["model"]["vocab"]["ab"] = nullptr; }, false,
       {"tokenizer.json model.vocab entry \"ab\"", "not an integer"}},
      {"ADDED_TOKEN_CONFLICT", [](json& j) { j["added_tokens"][0]["content"] = "<|end|>"; }, false,
       {"tokenizer.json added_tokens[0]: id 261"}},
      {"ADDED_TOKEN_NO_ID", [](json& j) { j["added_tokens"][0].erase("id"); }, false,
       {"tokenizer.json added_tokens[0]: expected"}},
      // NFC is supported now (tests/model/hf_tokenizer_test.cc); NFKC is not.
      {"NORMALIZER", [](json& j) { j["normalizer"] = {{"type", "NFKC"}}; }, true,
       {"tokenizer.json: normalizer.type \"NFKC\" is not supported (supported: NFC, Prepend, Replace, Sequence)"}},
      {"PRE_TOKENIZER_NOT_BYTE_LEVEL", [](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }, true,
       {"tokenizer.json: pre_tokenizer.type \"Whitespace\" is not supported"}},
      {"ADD_PREFIX_SPACE", [](json& j) { j["pre_tokenizer"]["add_prefix_space"] = true; }, true,
       {"tokenizer.json: pre_tokenizer.add_prefix_space true is not supported"}},
      // Caught by tests/fuzz/hf_tokenizer_fuzz.cc: a key of the wrong type threw
      // json::type_error out of the loader instead of giving a Status.
      {"NORMALIZER_TYPE_NOT_STRING", [](json& j) { j["normalizer"] = {{"type", 5}}; }, false,
       {"tokenizer.json: normalizer.type is not a string"}},
      {"PRE_TOKENIZER_TYPE_NOT_STRING", [](json& j) { j["pre_tokenizer"]["type"] = {1, 2}; }, false,
       {"tokenizer.json: pre_tokenizer.type is not a string"}},
      {"ADD_PREFIX_SPACE_NOT_BOOL", [](json& j) { j["pre_tokenizer"]["add_prefix_space"] = "no"; }, false,
       {"tokenizer.json: pre_tokenizer.add_prefix_space is not true or false"}},
      {"USE_REGEX_NOT_BOOL", [](json& j) { j["pre_tokenizer"]["use_regex"] = 1; }, false,
       {"tokenizer.json: pre_tokenizer.use_regex is not true or false"}},
  };
  for (const HfCase& c : cases) {
    json j = HfJson(TinyEncoderJson(), TinyVocabBpe(), MergeForm::kPair);
    c.edit(j);
    TempDir dir;
    WriteAll(dir / "tokenizer.json", j.dump());
    auto tok = LoadHfTokenizer(dir / "tokenizer.json");
    ASSERT_FALSE(tok.ok()) << c.name << " loaded";
    EXPECT_EQ(tok.status().IsInvalidArgument(), c.unsupported) << c.name << ": " << tok.status();
    EXPECT_EQ(tok.status().IsCorruption(), !c.unsupported) << c.name << ": " << tok.status();
    for (const auto& n : c.needles) {
      EXPECT_NE(tok.status().message().find(n), std::string::npos) << c.name << ": " << tok.status() << "\n  lacks: " << n;
    }
  }
  // Truncated and non-object files.
  TempDir dir;
  const std::string full = HfJson(TinyEncoderJson(), TinyVocabBpe(), MergeForm::kString).dump(1);
  WriteAll(dir / "tokenizer.json", full.substr(0, full.size() * 2 / 3));
  auto truncated = LoadHfTokenizer(dir / "tokenizer.json");
  EXPECT_TRUE(truncated.status().IsCorruption()) << truncated.status();
  EXPECT_NE(truncated.status().message().find("tokenizer.json: not valid JSON: parse error at line"), std::string::npos)
      << truncated.status();
  WriteAll(dir / "tokenizer.json", "\"BPE\"");
  auto scalar = LoadHfTokenizer(dir / "tokenizer.json");
  EXPECT_NE(scalar.status().message().find("tokenizer.json: not a JSON object"), std::string::npos) << scalar.status();
}

}  // namespace
}  // namespace strata::model
