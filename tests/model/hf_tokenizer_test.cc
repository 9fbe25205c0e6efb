// Hugging Face tokenizer.json files of the four families strata reads (model/tokenizer.h), held to
// the ids and text of the `tokenizers` library itself: tests/data/tokenizers/KIND/ holds a small
// tokenizer of each kind, trained by lab/peers/make_tokenizers.py with its family's normalizer,
// pre-tokenizer, decoder, post-processor and special tokens, and golden.json, the library's ids and
// decoded text for tests/data/tokenizers/test_text.txt and for short awkward cases. The committed
// files are required: a missing one is a failure, not a skip.
//
// Then round trips on many inputs, and refusals: each component strata does not implement is an
// InvalidArgument naming the file and the JSON path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "model/tokenizer.h"
#include "tests/offload/temp_dir.h"
#include "tests/test_data.h"

namespace strata::model {
namespace {

using json = nlohmann::json;

const char* const kKinds[] = {"llama3", "qwen2", "llama2", "mistral"};
// The same with added tokens of the rarer kinds (lstrip / rstrip, normalized): golden cases only.
const char* const kAddedKinds[] = {"llama3-added", "qwen2-added", "llama2-added"};

std::string DataPath(const std::string& name) { return std::string(STRATA_TEST_DATA_DIR) + "/tokenizers/" + name; }

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

std::vector<int32_t> Ids(const json& j) { return j.get<std::vector<int32_t>>(); }

std::string Printable(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

// Equal, or the first position where they differ with a few ids either side and the text of the
// expected tokens there.
::testing::AssertionResult SameIds(const Tokenizer& tok, const std::vector<int32_t>& want,
                                   const std::vector<int32_t>& got) {
  if (want == got) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  const size_t from = i < 6 ? 0 : i - 6;
  auto around = [&](const std::vector<int32_t>& v) {
    std::string s;
    for (size_t k = from; k < std::min(v.size(), i + 6); ++k) {
      if (k == i) s += '[';
      s += std::to_string(v[k]);
      s += k == i ? "] " : " ";
    }
    std::string text;
    const std::span<const int32_t> span(v.data() + std::min(from, v.size()),
                                        std::min(v.size(), i + 6) - std::min(from, v.size()));
    if (!tok.Decode(span, &text).ok()) text = "(undecodable)";
    return s + " = " + Printable(text);
  };
  return ::testing::AssertionFailure() << "ids differ first at position " << i << " (library: " << want.size()
                                       << " ids, strata: " << got.size() << ")\n  library: " << around(want)
                                       << "\n  strata:  " << around(got);
}

// Decode writes the bytes the tokens stand for; the library's decoders write U+FFFD where those are
// not UTF-8 (ByteLevel: one per maximal invalid subpart, Rust's String::from_utf8_lossy), as an
// added token "café" of a byte-level tokenizer does: its "é" is read through the byte alphabet, as
// the byte 0xE9. This does the same to strata's output, so the two compare.
std::string LossyUtf8(std::string_view s) {
  std::string out;
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = b[i];
    size_t want = 1;  // the length c announces, and the range of the byte after it
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
      want = 2;
    else if (c >= 0xE0 && c <= 0xEF)
      want = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
      want = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    size_t k = 1;
    if (want > 1 && i + 1 < n && b[i + 1] >= lo && b[i + 1] <= hi) {
      k = 2;
      while (k < want && i + k < n && b[i + k] >= 0x80 && b[i + k] <= 0xBF) ++k;
    }
    if (c < 0x80 || (want > 1 && k == want)) {
      out.append(s.substr(i, k));
    } else {
      out += "\xef\xbf\xbd";
    }
    i += k;
  }
  return out;
}

std::unique_ptr<Tokenizer> Load(const std::string& kind) {
  auto tok = LoadHfTokenizer(DataPath(kind + "/tokenizer.json"));
  EXPECT_TRUE(tok.ok()) << kind << ": " << tok.status();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

json Golden(const std::string& kind) {
  const std::string path = DataPath(kind + "/golden.json");
  EXPECT_TRUE(testing::FileExists(path)) << path << " is missing (lab/peers/make_tokenizers.py writes it)";
  return json::parse(ReadAll(path), nullptr, /*allow_exceptions=*/false);
}

std::string Decoded(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::string out;
  const Status s = tok.Decode(ids, &out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// ------------------------------------------------------------------------------------------------
// The golden files

class HfTokenizerGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(HfTokenizerGolden, TestTextGivesTheLibrarysIdsAndText) {
  const std::string kind = GetParam();
  const std::string text_path = DataPath("test_text.txt");
  ASSERT_TRUE(testing::FileExists(text_path)) << text_path << " is missing";
  const std::string text = ReadAll(text_path);
  const json g = Golden(kind);
  ASSERT_TRUE(g.is_object()) << kind << ": golden.json is missing or not JSON";
  auto tok = Load(kind);
  ASSERT_NE(tok, nullptr);

  EXPECT_EQ(tok->name(), kind == "llama3" || kind == "qwen2" ? "byte-bpe" : "sentencepiece-bpe");
  EXPECT_EQ(tok->vocab_size(), g["vocab_size"].get<int32_t>());
  EXPECT_EQ(tok->bos(), g["bos"].is_null() ? std::nullopt : std::optional<int32_t>(g["bos"].get<int32_t>()));
  EXPECT_EQ(tok->eos(), g["eos"].is_null() ? std::nullopt : std::optional<int32_t>(g["eos"].get<int32_t>()));
  EXPECT_EQ(tok->eot(), tok->eos());

  const std::vector<int32_t> plain = Ids(g["plain"]), special = Ids(g["special"]);
  ASSERT_GE(special.size(), 10000u) << kind << ": the test text is too short to hold much";
  EXPECT_TRUE(SameIds(*tok, plain, tok->Encode(text))) << kind << ": Encode (special tokens as text)";
  EXPECT_TRUE(SameIds(*tok, special, tok->EncodeWithSpecial(text))) << kind << ": EncodeWithSpecial";
  std::vector<int32_t> document = Ids(g["document_prefix"]);
  document.insert(document.end(), special.begin(), special.end());
  for (int32_t id : Ids(g["document_suffix"])) document.push_back(id);
  EXPECT_TRUE(SameIds(*tok, document, tok->EncodeDocument(text))) << kind << ": EncodeDocument";
  EXPECT_EQ(LossyUtf8(Decoded(*tok, plain)), g["decoded_plain"].get<std::string>()) << kind;
  EXPECT_EQ(LossyUtf8(Decoded(*tok, special)), g["decoded_special"].get<std::string>()) << kind;
  std::printf("[ %s ] %zu + %zu + %zu ids compared with the library's\n", kind.c_str(), plain.size(), special.size(),
              document.size());
}

class HfTokenizerGoldenCases : public ::testing::TestWithParam<const char*> {};

TEST_P(HfTokenizerGoldenCases, AwkwardCasesGiveTheLibrarysIdsAndText) {
  const std::string kind = GetParam();
  const json g = Golden(kind);
  ASSERT_TRUE(g.is_object());
  auto tok = Load(kind);
  ASSERT_NE(tok, nullptr);
  ASSERT_GE(g["cases"].size(), 150u);
  EXPECT_EQ(tok->vocab_size(), g["vocab_size"].get<int32_t>());
  EXPECT_EQ(tok->bos(), g["bos"].is_null() ? std::nullopt : std::optional<int32_t>(g["bos"].get<int32_t>()));
  EXPECT_EQ(tok->eos(), g["eos"].is_null() ? std::nullopt : std::optional<int32_t>(g["eos"].get<int32_t>()));
  size_t ids = 0;
  for (const json& c : g["cases"]) {
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE(kind + " case " + Printable(text));
    EXPECT_TRUE(SameIds(*tok, Ids(c["plain"]), tok->Encode(text))) << "Encode";
    EXPECT_TRUE(SameIds(*tok, Ids(c["special"]), tok->EncodeWithSpecial(text))) << "EncodeWithSpecial";
    EXPECT_TRUE(SameIds(*tok, Ids(c["document"]), tok->EncodeDocument(text))) << "EncodeDocument";
    EXPECT_EQ(LossyUtf8(Decoded(*tok, Ids(c["special"]))), c["decoded"].get<std::string>());
    ids += c["plain"].size() + c["special"].size() + c["document"].size();
  }
  std::printf("[ %s ] %zu cases, %zu ids compared with the library's\n", kind.c_str(), g["cases"].size(), ids);
}

std::string KindName(const ::testing::TestParamInfo<const char*>& info) {
  std::string name = info.param;
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

INSTANTIATE_TEST_SUITE_P(Kinds, HfTokenizerGolden, ::testing::ValuesIn(kKinds), KindName);
INSTANTIATE_TEST_SUITE_P(Kinds, HfTokenizerGoldenCases, ::testing::ValuesIn(kKinds), KindName);
INSTANTIATE_TEST_SUITE_P(AddedKinds, HfTokenizerGoldenCases, ::testing::ValuesIn(kAddedKinds), KindName);

// ------------------------------------------------------------------------------------------------
// Round trips

std::string RandomBytes(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

// Random text of characters drawn from a spread of scripts (no combining marks, no "▁").
std::string RandomText(std::mt19937& rng, size_t n) {
  static const std::vector<std::string> pool = {
      "a",    "b",      "z",         "Q",  " ",  "  ",   "\t",       "\n",
      "\r\n", "0",      "7",         "'",  "'s", "'LL",  ".",        ",",
      "!",    "<",      ">",         "|",  "é",  "ß",    "ø",        "Ω",
      "ж",    "日",     "本",        "한", "😀",  "🤖", "\xc2\xa0", "\xe3\x80\x80",
      "<s>",  "[INST]", "<|im_end|>"};
  std::string s;
  for (size_t k = 0; k < n; ++k) s += pool[rng() % pool.size()];
  return s;
}

size_t RoundTrips(const Tokenizer& tok, const std::vector<std::string>& inputs, bool with_special) {
  size_t n = 0;
  for (const std::string& x : inputs) {
    const std::vector<int32_t> ids = with_special ? tok.EncodeWithSpecial(x) : tok.Encode(x);
    for (int32_t id : ids) EXPECT_TRUE(id >= 0 && id < tok.vocab_size()) << id;
    EXPECT_EQ(Decoded(tok, ids), x) << tok.name() << (with_special ? " (special)" : "") << ": " << Printable(x);
    ++n;
  }
  return n;
}

std::vector<std::string> TestTextLines() {
  std::vector<std::string> lines;
  std::istringstream in(ReadAll(DataPath("test_text.txt")));
  for (std::string line; std::getline(in, line);) lines.push_back(line + "\n");
  EXPECT_GT(lines.size(), 500u);
  return lines;
}

TEST(HfTokenizer, ByteLevelKindsRoundTripAnyBytes) {
  std::mt19937 rng(13);
  std::vector<std::string> bytes, text;
  for (int k = 0; k < 400; ++k) bytes.push_back(RandomBytes(rng, rng() % 97));
  for (int k = 0; k < 400; ++k) text.push_back(RandomText(rng, rng() % 40));
  const std::vector<std::string> lines = TestTextLines();
  auto llama3 = Load("llama3");
  ASSERT_NE(llama3, nullptr);
  size_t n = RoundTrips(*llama3, bytes, false) + RoundTrips(*llama3, bytes, true) + RoundTrips(*llama3, text, false) +
             RoundTrips(*llama3, text, true) + RoundTrips(*llama3, lines, true);
  // Qwen2 normalizes to NFC: inputs without combining marks or decomposable letters stay as they are
  // (random bytes: those below 0xCC, where no such character starts, and text from the pool).
  auto qwen2 = Load("qwen2");
  ASSERT_NE(qwen2, nullptr);
  for (std::string& b : bytes) {
    for (char& c : b) c = static_cast<char>(static_cast<unsigned char>(c) % 0xCC);
  }
  n += RoundTrips(*qwen2, bytes, false) + RoundTrips(*qwen2, bytes, true) + RoundTrips(*qwen2, text, false) +
       RoundTrips(*qwen2, text, true);
  std::printf("[ byte-bpe ] %zu round trips\n", n);
}

TEST(HfTokenizer, QwenNormalizesToNfc) {
  auto qwen2 = Load("qwen2");
  ASSERT_NE(qwen2, nullptr);
  const std::pair<const char*, const char*> cases[] = {
      {"e\xcc\x81", "\xc3\xa9"},                                 // e + U+0301 -> é
      {"\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", "\xea\xb0\x81"},  // Hangul jamo -> 각
      {"\xe2\x84\xab", "\xc3\x85"},                              // U+212B ANGSTROM SIGN -> Å
      {"o\xcc\xa3\xcc\x82", "\xe1\xbb\x99"},                     // o + dot below + circumflex -> ộ
      {"o\xcc\x82\xcc\xa3", "\xe1\xbb\x99"},                     // the other order: the same
      {"\xcc\x81start", "\xcc\x81start"},                        // a mark with nothing to join
      {"a\xff\xcc\x81", "a\xff\xcc\x81"},                        // no composing across an invalid byte
  };
  for (const auto& [in, nfc] : cases) {
    EXPECT_EQ(Decoded(*qwen2, qwen2->Encode(in)), nfc) << Printable(in);
    EXPECT_EQ(qwen2->Encode(in), qwen2->Encode(nfc)) << Printable(in);
  }
}

TEST(HfTokenizer, SentencePieceKindsRoundTripWhatTheLibraryDoes) {
  // Their decoders turn "▁" into a space and drop the first space, so text holding "▁" does not
  // come back; neither does text around special tokens for llama2 (each segment gets its own "▁"),
  // nor, for mistral (Metaspace adds no "▁" before a leading space), text starting with a space.
  // Everything else does, invalid UTF-8 included (byte fallback, then Decode writes the bytes).
  std::mt19937 rng(29);
  std::vector<std::string> bytes, text;
  auto no_meta = [](const std::string& s) { return s.find("\xe2\x96\x81") == std::string::npos; };
  while (bytes.size() < 400) {
    std::string b = RandomBytes(rng, rng() % 97);
    if (no_meta(b)) bytes.push_back(std::move(b));
  }
  for (int k = 0; k < 400; ++k) text.push_back(RandomText(rng, rng() % 40));
  const std::vector<std::string> lines = TestTextLines();
  std::vector<std::string> plain_lines;
  std::copy_if(lines.begin(), lines.end(), std::back_inserter(plain_lines), no_meta);
  size_t n = 0;
  for (const char* kind : {"llama2", "mistral"}) {
    auto tok = Load(kind);
    ASSERT_NE(tok, nullptr);
    EXPECT_EQ(tok->name(), "sentencepiece-bpe");
    auto fit = [&](const std::vector<std::string>& in) {
      std::vector<std::string> out;
      for (const std::string& x : in) {
        if (std::string_view(kind) == "llama2" || !x.starts_with(' ')) out.push_back(x);
      }
      return out;
    };
    n += RoundTrips(*tok, fit(bytes), false) + RoundTrips(*tok, fit(text), false) +
         RoundTrips(*tok, fit(plain_lines), false);
  }
  std::printf("[ sentencepiece-bpe ] %zu round trips\n", n);
}

TEST(HfTokenizer, ByteFallbackSpellsUnknownCharactersInBytes) {
  auto tok = Load("llama2");
  ASSERT_NE(tok, nullptr);
  // "㐀" (U+3400) is in no vocabulary here: its three bytes' tokens <0xE3> <0x90> <0x80>.
  const std::vector<int32_t> ids = tok->Encode("\xe3\x90\x80");
  ASSERT_GE(ids.size(), 3u);
  std::vector<std::string> spelled;
  for (int32_t id : std::vector<int32_t>(ids.end() - 3, ids.end())) {
    std::string s;
    ASSERT_TRUE(tok->Decode(std::span<const int32_t>(&id, 1), &s).ok());
    spelled.push_back(s);
  }
  EXPECT_EQ(spelled, (std::vector<std::string>{"\xe3", "\x90", "\x80"}));
  EXPECT_EQ(ids.end()[-3], 3 + 0xE3);  // <0x00> is id 3 in the Llama 2 layout
}

// ------------------------------------------------------------------------------------------------
// ignore_merges, on a vocabulary made for it: "abc" is a token, but merging a, b, c gives a + bc
// (bc ranks before ab), so only ignore_merges gives "abc" whole.

std::string Spell(unsigned char b) {
  const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
  unsigned cp = b;
  if (!printable) {
    unsigned next = 256;
    for (unsigned c = 0; c < b; ++c) {
      if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE))) ++next;
    }
    cp = next;
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

json TinyByteLevel(bool ignore_merges) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[Spell(static_cast<unsigned char>(b))] = b;
  vocab["bc"] = 256;
  vocab["ab"] = 257;
  vocab["abc"] = 258;
  return {
      {"version", "1.0"},
      {"added_tokens", json::array({{{"id", 259}, {"content", "<|x|>"}, {"special", true}, {"normalized", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers", json::array({{{"type", "Split"},
                                        {"pattern", {{"Regex", "\\p{L}+|\\s+"}}},
                                        {"behavior", "Isolated"},
                                        {"invert", false}},
                                       {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"ignore_merges", ignore_merges},
        {"vocab", vocab},
        {"merges", json::array({"b c", "a b", "ab c"})}}}};
}

TEST(HfTokenizer, IgnoreMergesTakesWholePiecesFromTheVocabulary) {
  TempDir dir;
  for (bool ignore : {false, true}) {
    WriteAll(dir / "tokenizer.json", TinyByteLevel(ignore).dump());
    auto tok = LoadHfTokenizer(dir / "tokenizer.json");
    ASSERT_TRUE(tok.ok()) << tok.status();
    EXPECT_EQ((*tok)->name(), "byte-bpe");
    EXPECT_EQ((*tok)->vocab_size(), 260);
    const std::vector<int32_t> abc = ignore ? std::vector<int32_t>{258} : std::vector<int32_t>{'a', 256};
    EXPECT_EQ((*tok)->Encode("abc"), abc) << "ignore_merges " << ignore;
    std::vector<int32_t> want = abc;
    want.push_back(' ');
    want.insert(want.end(), {'a', 256, 'd'});  // "abcd": not in the vocabulary, merged either way
    EXPECT_EQ((*tok)->Encode("abc abcd"), want) << "ignore_merges " << ignore;
    std::vector<int32_t> with_x{259};
    with_x.insert(with_x.end(), abc.begin(), abc.end());
    EXPECT_EQ((*tok)->EncodeWithSpecial("<|x|>abc"), with_x);
    EXPECT_EQ((*tok)->Encode("<|x|>abc").front(), '<');  // special tokens are text to Encode
  }
}

// Llama 3's regex as Oniguruma reads it, where PCRE2 alone would not: U+180E (MONGOLIAN VOWEL
// SEPARATOR) is no \s to Oniguruma, so "a\u180e\u180eb" is "a", "\u180e\u180e" ( ?[^\s\p{L}\p{N}]+),
// "b"; PCRE2's \s takes it, which would give "a", "\u180e" (\s+(?!\S)), "\u180eb". And (?i:'s) takes
// "'ſ" (U+017F folds to s) as one piece. The vocabulary merges exactly those bytes, so the pieces
// show in the ids (checked against the library by hand: lab/peers has no generator for this one).
TEST(HfTokenizer, SplitReadsTheRegexAsOniguruma) {
  const std::string llama3 =
      json::parse(ReadAll(DataPath("llama3/tokenizer.json")))["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
          .get<std::string>();
  json j = TinyByteLevel(false);
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = llama3;
  const std::string mvs = Spell(0xE1) + Spell(0xA0) + Spell(0x8E), long_s = Spell(0xC5) + Spell(0xBF);
  j["model"]["vocab"][Spell(0xE1) + Spell(0xA0)] = 259;
  j["model"]["vocab"][mvs] = 260;
  j["model"]["vocab"][mvs + "y"] = 261;
  j["model"]["vocab"]["'" + Spell(0xC5)] = 262;
  j["model"]["vocab"]["'" + long_s] = 263;
  j["model"]["vocab"][mvs + mvs] = 264;
  j["added_tokens"][0]["id"] = 265;
  j["model"]["merges"] =
      json::array({json::array({Spell(0xE1), Spell(0xA0)}), json::array({Spell(0xE1) + Spell(0xA0), Spell(0x8E)}),
                   json::array({mvs, "y"}), json::array({"'", Spell(0xC5)}),
                   json::array({"'" + Spell(0xC5), Spell(0xBF)}), json::array({mvs, mvs})});
  TempDir dir;
  WriteAll(dir / "tokenizer.json", j.dump());
  auto tok = LoadHfTokenizer(dir / "tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->Encode("x\xe1\xa0\x8ey"), (std::vector<int32_t>{'x', 261}));
  EXPECT_EQ((*tok)->Encode("\xe1\xa0\x8e"), (std::vector<int32_t>{260}));
  EXPECT_EQ((*tok)->Encode("a\xe1\xa0\x8e\xe1\xa0\x8e"
                           "b"),
            (std::vector<int32_t>{'a', 264, 'b'}));  // PCRE2: a 260 260 b
  EXPECT_EQ((*tok)->Encode("it'\xc5\xbf"), (std::vector<int32_t>{'i', 't', 263}));
  EXPECT_EQ((*tok)->Encode("'\xc5\xbf"
                           "a"),
            (std::vector<int32_t>{263, 'a'}));
}

// ------------------------------------------------------------------------------------------------
// Refusals: each case edits a committed tokenizer.json.

struct RefusalCase {
  const char* name;
  const char* kind;
  std::function<void(json&)> edit;
  bool unsupported;  // InvalidArgument, else Corruption
  std::string needle;
};

TEST(HfTokenizer, RefusesWhatItDoesNotImplementNamingTheJsonPath) {
  const std::vector<RefusalCase> cases = {
      {"NORMALIZER_NFKC", "llama2",
       [](json& j) {
         j["normalizer"]["normalizers"][1] = {{"type", "NFKC"}};
       },
       true,
       "tokenizer.json: normalizer.normalizers[1].type \"NFKC\" is not supported (supported: NFC, Prepend, Replace, "
       "Sequence)"},
      {"NORMALIZER_REGEX_REPLACE", "llama2",
       [](json& j) {
         j["normalizer"]["normalizers"][1]["pattern"] = {{"Regex", " +"}};
       },
       true, "tokenizer.json: normalizer.normalizers[1].pattern.Regex is not supported here"},
      {"PRE_TOKENIZER_WHITESPACE", "llama3",
       [](json& j) {
         j["pre_tokenizer"]["pretokenizers"][0] = {{"type", "Whitespace"}};
       },
       true,
       "tokenizer.json: pre_tokenizer.pretokenizers[0].type \"Whitespace\" is not supported (supported: ByteLevel, "
       "Metaspace, Sequence, Split)"},
      {"SPLIT_BEHAVIOR", "llama3", [](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; },
       true,
       "tokenizer.json: pre_tokenizer.pretokenizers[0].behavior \"Removed\" is not supported (supported: Isolated)"},
      {"SPLIT_INVERT", "llama3", [](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["invert"] = true; }, true,
       "tokenizer.json: pre_tokenizer.pretokenizers[0].invert true is not supported"},
      {"SPLIT_REGEX_WORD_ESCAPE", "llama3",
       [](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\w+|\\s+"; }, true,
       "tokenizer.json: pre_tokenizer.pretokenizers[0].pattern \"\\\\w+|\\\\s+\": the escape \\w is not supported"},
      {"SPLIT_REGEX_PROPERTY", "qwen2",
       [](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\p{Lu}+"; }, true,
       "the property \\p{Lu} is not supported"},
      {"BYTE_LEVEL_NOT_LAST", "llama3",
       [](json& j) {
         auto& list = j["pre_tokenizer"]["pretokenizers"];
         std::swap(list[0], list[1]);
       },
       true, "tokenizer.json: pre_tokenizer.pretokenizers[1] follows ByteLevel"},
      {"METASPACE_SCHEME", "mistral", [](json& j) { j["pre_tokenizer"]["prepend_scheme"] = "sometimes"; }, true,
       "tokenizer.json: pre_tokenizer.prepend_scheme \"sometimes\" is not supported"},
      {"DECODER_CTC", "llama2",
       [](json& j) {
         j["decoder"]["decoders"][2] = {{"type", "CTC"}};
       },
       true,
       "tokenizer.json: decoder.decoders[2].type \"CTC\" is not supported (supported: ByteFallback, ByteLevel, Fuse, "
       "Metaspace, Replace, Sequence, Strip)"},
      {"DECODER_MISSING", "qwen2", [](json& j) { j["decoder"] = nullptr; }, true, "tokenizer.json: decoder is missing"},
      {"MODEL_UNIGRAM", "llama2", [](json& j) { j["model"]["type"] = "Unigram"; }, true,
       "tokenizer.json: model.type \"Unigram\" is not supported (supported: BPE)"},
      {"MODEL_DROPOUT", "llama2", [](json& j) { j["model"]["dropout"] = 0.1; }, true,
       "tokenizer.json: model.dropout 0.1 is not supported"},
      {"POST_PROCESSOR_ROBERTA", "llama3",
       [](json& j) {
         j["post_processor"]["processors"][1] = {{"type", "RobertaProcessing"}};
       },
       true, "tokenizer.json: post_processor.processors[1].type \"RobertaProcessing\" is not supported"},
      {"TEMPLATE_WITHOUT_A", "llama2", [](json& j) { j["post_processor"]["single"].erase(1); }, true,
       "tokenizer.json: post_processor.single has no sequence $A"},
      {"ADDED_SINGLE_WORD", "mistral", [](json& j) { j["added_tokens"][3]["single_word"] = true; }, true,
       "tokenizer.json: added_tokens[3].single_word true is not supported"},
      {"TRUNCATION", "qwen2",
       [](json& j) {
         j["truncation"] = {{"max_length", 8}};
       },
       true, "tokenizer.json: truncation is set"},
      {"DECODER_TYPE_NOT_STRING", "llama2", [](json& j) { j["decoder"]["type"] = 3; }, false,
       "tokenizer.json: decoder.type is not a string"},
      {"STRIP_NOT_ONE_CHARACTER", "llama2", [](json& j) { j["decoder"]["decoders"][3]["content"] = "ab"; }, false,
       "tokenizer.json: decoder.decoders[3].content \"ab\" is not one character"},
      {"TEMPLATE_UNKNOWN_TOKEN", "llama2", [](json& j) { j["post_processor"]["special_tokens"].erase("<s>"); }, false,
       "tokenizer.json: post_processor.single[0] names \"<s>\""},
  };
  for (const RefusalCase& c : cases) {
    json j = json::parse(ReadAll(DataPath(std::string(c.kind) + "/tokenizer.json")), nullptr, false);
    ASSERT_TRUE(j.is_object()) << c.kind;
    c.edit(j);
    TempDir dir;
    WriteAll(dir / "tokenizer.json", j.dump());
    auto tok = LoadHfTokenizer(dir / "tokenizer.json");
    ASSERT_FALSE(tok.ok()) << c.name << " loaded";
    EXPECT_EQ(tok.status().IsInvalidArgument(), c.unsupported) << c.name << ": " << tok.status();
    EXPECT_EQ(tok.status().IsCorruption(), !c.unsupported) << c.name << ": " << tok.status();
    EXPECT_NE(tok.status().message().find(c.needle), std::string::npos)
        << c.name << ": " << tok.status() << "\n  lacks: " << c.needle;
  }
}

TEST(HfTokenizer, ConfigMustAgreeWithThePostProcessor) {
  TempDir dir;
  WriteAll(dir / "tokenizer.json", ReadAll(DataPath("llama2/tokenizer.json")));
  json config = json::parse(ReadAll(DataPath("llama2/tokenizer_config.json")));
  config["add_eos_token"] = true;
  WriteAll(dir / "tokenizer_config.json", config.dump());
  auto tok = LoadHfTokenizer(dir / "tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_TRUE(tok.status().IsInvalidArgument()) << tok.status();
  EXPECT_NE(tok.status().message().find("tokenizer_config.json: add_eos_token is true but tokenizer.json's "
                                        "post_processor adds nothing after the text"),
            std::string::npos)
      << tok.status();

  config["add_eos_token"] = false;
  config["bos_token"] = "<nope>";
  WriteAll(dir / "tokenizer_config.json", config.dump());
  tok = LoadHfTokenizer(dir / "tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_TRUE(tok.status().IsCorruption()) << tok.status();
  EXPECT_NE(tok.status().message().find("tokenizer_config.json: bos_token \"<nope>\" is not a token"),
            std::string::npos)
      << tok.status();

  // Without the config, bos comes from the template; a directory spec finds the file too.
  std::filesystem::remove(dir / "tokenizer_config.json");
  auto plain = LoadTokenizer(dir.path());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ((*plain)->bos(), 1);
  EXPECT_EQ((*plain)->EncodeDocument("hi").front(), 1);
}

TEST(HfTokenizer, MissingCommittedFilesFail) {
  // The golden tests above must fail, not skip, without the files: loading a missing one is an error.
  auto tok = LoadHfTokenizer(DataPath("no-such-kind/tokenizer.json"));
  EXPECT_TRUE(tok.status().IsNotFound()) << tok.status();
  std::vector<const char*> all(std::begin(kKinds), std::end(kKinds));
  all.insert(all.end(), std::begin(kAddedKinds), std::end(kAddedKinds));
  for (const char* kind : all) {
    EXPECT_TRUE(testing::FileExists(DataPath(std::string(kind) + "/tokenizer.json"))) << kind;
    EXPECT_TRUE(testing::FileExists(DataPath(std::string(kind) + "/golden.json"))) << kind;
  }
}

}  // namespace
}  // namespace strata::model
