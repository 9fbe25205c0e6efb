// Training data (model/data.h): the token file (docs/formats/token-file.md) and its named
// corruption cases, corpus loading from a file, a folder or a token file, the token cache, the
// train/val split, and batches drawn from (seed, step).
#include "model/data.h"

#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/offload/temp_dir.h"

namespace strata::model {
namespace {

namespace fs = std::filesystem;

// ---- Test tokenizers ----------------------------------------------------------------------------

// One token per byte plus an end-of-text token 256 (vocabulary 257): the EOT path without the
// GPT-2 tokenizer's files.
class EotByteTokenizer final : public Tokenizer {
 public:
  std::string name() const override { return "test-byte-eot"; }
  int32_t vocab_size() const override { return 257; }
  std::optional<int32_t> eot() const override { return 256; }
  std::vector<int32_t> Encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }
  Status Decode(std::span<const int32_t> ids, std::string* out) const override {
    for (int32_t id : ids) {
      if (id < 0 || id >= 256) return Status::InvalidArgument("id " + std::to_string(id));
      out->push_back(static_cast<char>(id));
    }
    return Status::Ok();
  }
};

std::unique_ptr<Tokenizer> ByteTokenizer() {
  std::unique_ptr<Tokenizer> tok = MakeByteTokenizer();
  EXPECT_EQ(tok->name(), "byte");
  EXPECT_EQ(tok->vocab_size(), 256);
  EXPECT_FALSE(tok->eot().has_value());
  return tok;
}

// ---- Helpers ------------------------------------------------------------------------------------

void WriteText(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  fs::remove(path);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  ASSERT_TRUE(f.good()) << path;
}

std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// Replaces the file by a new one: truncating a file in place is slow on ext4 (a flush on close).
void WriteBytes(const std::string& path, const std::vector<uint8_t>& b) {
  fs::remove(path);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  ASSERT_TRUE(f.good()) << path;
}

void PutU32(std::vector<uint8_t>& b, size_t off, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(std::vector<uint8_t>& b, size_t off, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t GetU32(const std::vector<uint8_t>& b, size_t off) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(b[off + i]) << (8 * i);
  return v;
}
uint64_t GetU64(const std::vector<uint8_t>& b, size_t off) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(b[off + i]) << (8 * i);
  return v;
}

// Recomputes both checksums, so a test can make one field wrong and nothing else.
void Reseal(std::vector<uint8_t>& b) {
  PutU64(b, 32, XXH3_64bits(b.data() + 128, b.size() - 128));
  PutU64(b, 120, XXH3_64bits(b.data(), 120));
}

std::string Text(size_t n, uint64_t seed) {  // printable, no NUL
  std::mt19937_64 rng(seed);
  std::string s(n, ' ');
  for (char& c : s) c = static_cast<char>(32 + rng() % 95);
  return s;
}

std::vector<int32_t> Ids(size_t n, int32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> v(n);
  for (int32_t& x : v) x = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return v;
}

std::vector<int32_t> Concat(const TokenCorpus& c) {
  std::vector<int32_t> all = c.train;
  all.insert(all.end(), c.val.begin(), c.val.end());
  return all;
}

std::vector<int32_t> AsIds(const std::string& s) {
  std::vector<int32_t> v(s.size());
  for (size_t i = 0; i < s.size(); ++i) v[i] = static_cast<unsigned char>(s[i]);
  return v;
}

CorpusOptions Opts(const TempDir& tmp) {
  CorpusOptions o;
  o.cache_dir = tmp / "cache";
  return o;
}

// A valid 10-token file (vocabulary 256, so 2-byte ids): 148 bytes.
std::string SampleTokenFile(const TempDir& tmp, std::vector<int32_t>* tokens = nullptr) {
  const std::string path = tmp / "sample.tokens";
  std::vector<int32_t> t = {0, 1, 2, 255, 128, 7, 42, 42, 9, 200};
  EXPECT_TRUE(WriteTokenFile(path, t, "byte", 256).ok());
  if (tokens) *tokens = t;
  return path;
}

// The status is a Corruption naming the file, and its message holds `what`.
void ExpectCorrupt(const Result<TokenFile>& r, const std::string& path, const std::string& what) {
  ASSERT_FALSE(r.ok()) << what;
  EXPECT_TRUE(r.status().IsCorruption()) << r.status();
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status();
}

// ---- Token file ---------------------------------------------------------------------------------

TEST(TokenFile, RoundTripTwoByteIds) {
  TempDir tmp;
  for (int32_t vocab : {1, 256, 50257, 65536}) {
    const std::string path = tmp / ("v" + std::to_string(vocab));
    std::vector<int32_t> t = Ids(1001, vocab, 1);
    t.push_back(vocab - 1);  // the largest id
    ASSERT_TRUE(WriteTokenFile(path, t, "gpt2-bpe", vocab).ok());
    EXPECT_EQ(fs::file_size(path), 128 + 2 * t.size()) << vocab;
    Result<TokenFile> r = ReadTokenFile(path);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->tokens, t);
    EXPECT_EQ(r->tokenizer, "gpt2-bpe");
    EXPECT_EQ(r->vocab_size, vocab);
  }
}

TEST(TokenFile, RoundTripFourByteIds) {
  TempDir tmp;
  for (int32_t vocab : {65537, 100277, 2147483647}) {
    const std::string path = tmp / ("v" + std::to_string(vocab));
    std::vector<int32_t> t = Ids(777, vocab, 2);
    t.push_back(vocab - 1);
    t.push_back(0);
    ASSERT_TRUE(WriteTokenFile(path, t, "x", vocab).ok());
    EXPECT_EQ(fs::file_size(path), 128 + 4 * t.size()) << vocab;
    Result<TokenFile> r = ReadTokenFile(path);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->tokens, t);
    EXPECT_EQ(r->vocab_size, vocab);
  }
}

// More ids than one 1 MiB I/O chunk, and a count that is not a multiple of it.
TEST(TokenFile, RoundTripAcrossIoChunks) {
  TempDir tmp;
  const std::string path = tmp / "big";
  const std::vector<int32_t> t = Ids((1 << 20) + 12345, 70000, 3);
  ASSERT_TRUE(WriteTokenFile(path, t, "big", 70000).ok());
  Result<TokenFile> r = ReadTokenFile(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tokens, t);
}

TEST(TokenFile, EmptyTokenListRoundTrips) {
  TempDir tmp;
  ASSERT_TRUE(WriteTokenFile(tmp / "e", {}, "byte", 256).ok());
  EXPECT_EQ(fs::file_size(tmp / "e"), 128u);
  Result<TokenFile> r = ReadTokenFile(tmp / "e");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->tokens.empty());
}

// Pins the byte layout of the spec's table.
TEST(TokenFile, HeaderLayoutMatchesTheSpec) {
  TempDir tmp;
  std::vector<int32_t> t;
  const std::string path = SampleTokenFile(tmp, &t);
  const std::vector<uint8_t> b = ReadBytes(path);
  ASSERT_EQ(b.size(), 148u);
  EXPECT_EQ(std::string(b.begin(), b.begin() + 8), "STRATATK");
  EXPECT_EQ(GetU32(b, 8), 1u);     // version
  EXPECT_EQ(GetU32(b, 12), 128u);  // header size
  EXPECT_EQ(GetU32(b, 16), 2u);    // id width
  EXPECT_EQ(GetU32(b, 20), 256u);  // vocab
  EXPECT_EQ(GetU64(b, 24), 10u);   // count
  EXPECT_EQ(GetU64(b, 32), XXH3_64bits(b.data() + 128, 20));
  EXPECT_EQ(GetU32(b, 40), 4u);  // name length
  EXPECT_EQ(GetU32(b, 44), 0u);
  EXPECT_EQ(std::string(b.begin() + 48, b.begin() + 52), "byte");
  EXPECT_TRUE(std::all_of(b.begin() + 52, b.begin() + 120, [](uint8_t x) { return x == 0; }));
  EXPECT_EQ(GetU64(b, 120), XXH3_64bits(b.data(), 120));
  for (size_t i = 0; i < t.size(); ++i) {  // little-endian ids
    EXPECT_EQ(b[128 + 2 * i], static_cast<uint8_t>(t[i] & 0xff));
    EXPECT_EQ(b[129 + 2 * i], static_cast<uint8_t>(t[i] >> 8));
  }
}

TEST(TokenFile, WriteRejectsBadInputNamingThePath) {
  TempDir tmp;
  const std::string path = tmp / "w.tokens";
  const std::vector<int32_t> ok = {1, 2, 3};
  struct Case {
    std::vector<int32_t> t;
    std::string name;
    int32_t vocab;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{{{1, 256, 3}, "byte", 256, "token 1 is 256"},
                                         {{1, -1}, "byte", 256, "token 1 is -1"},
                                         {ok, "", 256, "tokenizer name"},
                                         {ok, std::string(65, 'n'), 256, "tokenizer name"},
                                         {ok, "byte", 0, "vocab_size 0"},
                                         {ok, "byte", -5, "vocab_size -5"}}) {
    const Status st = WriteTokenFile(path, c.t, c.name, c.vocab);
    ASSERT_FALSE(st.ok()) << c.want;
    EXPECT_TRUE(st.IsInvalidArgument()) << st;
    EXPECT_NE(st.message().find(path), std::string::npos) << st;
    EXPECT_NE(st.message().find(c.want), std::string::npos) << st;
    EXPECT_FALSE(fs::exists(path));
  }
  EXPECT_TRUE(WriteTokenFile(path, ok, std::string(64, 'n'), 256).ok());  // 64 bytes fit
}

TEST(TokenFile, OverwriteIsAtomicAndLeavesNoTemporary) {
  TempDir tmp;
  const std::string path = tmp / "t.tokens";
  ASSERT_TRUE(WriteTokenFile(path, Ids(100, 256, 1), "byte", 256).ok());
  const std::vector<int32_t> second = Ids(50, 256, 2);
  ASSERT_TRUE(WriteTokenFile(path, second, "byte", 256).ok());
  Result<TokenFile> r = ReadTokenFile(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tokens, second);
  int entries = 0;
  for (const auto& e : fs::directory_iterator(tmp.path())) entries += (e.path().string() == path) ? 0 : 1;
  EXPECT_EQ(entries, 0) << "a temporary file was left behind";
  // A folder that does not exist: IOError naming the temporary.
  const Status st = WriteTokenFile(tmp / "no/such/dir/t.tokens", second, "byte", 256);
  EXPECT_TRUE(st.IsIOError()) << st;
  EXPECT_NE(st.message().find(tmp / "no/such/dir/t.tokens"), std::string::npos) << st;
}

TEST(TokenFile, MissingFileIsNotFound) {
  TempDir tmp;
  Result<TokenFile> r = ReadTokenFile(tmp / "absent.tokens");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound()) << r.status();
  EXPECT_NE(r.status().message().find(tmp / "absent.tokens"), std::string::npos);
}

// The named corruption cases (docs/formats/token-file.md, "Named corruption tests").

TEST(TokenFileCorruption, HEADER_BAD_MAGIC) {
  TempDir tmp;
  const std::string path = SampleTokenFile(tmp);
  std::vector<uint8_t> b = ReadBytes(path);
  b[3] ^= 0x20;
  WriteBytes(path, b);
  ExpectCorrupt(ReadTokenFile(path), path, "bad magic");
}

TEST(TokenFileCorruption, HEADER_TRUNCATED_AtEveryLength) {
  TempDir tmp;
  const std::string path = SampleTokenFile(tmp);
  const std::vector<uint8_t> full = ReadBytes(path);
  for (size_t n = 0; n < 128; ++n) {
    WriteBytes(path, std::vector<uint8_t>(full.begin(), full.begin() + static_cast<ptrdiff_t>(n)));
    ExpectCorrupt(ReadTokenFile(path), path, "truncated");
  }
}

TEST(TokenFileCorruption, DATA_TRUNCATED_AtEveryLength) {
  TempDir tmp;
  const std::string path = SampleTokenFile(tmp);
  const std::vector<uint8_t> full = ReadBytes(path);
  for (size_t n = 128; n < full.size(); ++n) {
    WriteBytes(path, std::vector<uint8_t>(full.begin(), full.begin() + static_cast<ptrdiff_t>(n)));
    ExpectCorrupt(ReadTokenFile(path), path, "truncated: token count 10");
  }
}

TEST(TokenFileCorruption, DATA_TRAILING_BYTES) {
  TempDir tmp;
  const std::string path = SampleTokenFile(tmp);
  for (size_t extra : {1, 2, 3}) {
    std::vector<uint8_t> b = ReadBytes(tmp / "sample.tokens");
    b.resize(148 + extra, 0);
    WriteBytes(path + ".x", b);
    ExpectCorrupt(ReadTokenFile(path + ".x"), path + ".x", "trailing bytes");
  }
}

TEST(TokenFileCorruption, HEADER_EVERY_BYTE_FLIPPED) {
  TempDir tmp;
  const std::string path = SampleTokenFile(tmp);
  const std::vector<uint8_t> full = ReadBytes(path);
  for (size_t i = 0; i < 128; ++i) {
    for (uint8_t mask : {0x01, 0x80}) {
      std::vector<uint8_t> b = full;
      b[i] ^= mask;
      WriteBytes(path, b);
      ExpectCorrupt(ReadTokenFile(path), path, "token file header");
    }
  }
}

TEST(TokenFileCorruption, DATA_EVERY_BYTE_FLIPPED) {
  TempDir tmp;
  const std::string path = SampleTokenFile(tmp);
  const std::vector<uint8_t> full = ReadBytes(path);
  for (size_t i = 128; i < full.size(); ++i) {
    std::vector<uint8_t> b = full;
    b[i] ^= 0x04;
    WriteBytes(path, b);
    ExpectCorrupt(ReadTokenFile(path), path, "checksum mismatch");
  }
}

// Each field made wrong under a valid header checksum, so the field's own check must fire.
TEST(TokenFileCorruption, HEADER_BAD_FIELDS_WithValidChecksum) {
  TempDir tmp;
  const std::string path = SampleTokenFile(tmp);
  const std::vector<uint8_t> full = ReadBytes(path);
  struct Case {
    const char* name;
    void (*edit)(std::vector<uint8_t>&);
    const char* want;
  };
  const Case cases[] = {
      {"HEADER_VERSION_2", [](std::vector<uint8_t>& b) { PutU32(b, 8, 2); }, "version 2 (offset 8)"},
      {"HEADER_SIZE", [](std::vector<uint8_t>& b) { PutU32(b, 12, 4096); }, "header size 4096 (offset 12)"},
      {"HEADER_WIDTH_4_FOR_SMALL_VOCAB", [](std::vector<uint8_t>& b) { PutU32(b, 16, 4); }, "id width 4 (offset 16)"},
      {"HEADER_WIDTH_3", [](std::vector<uint8_t>& b) { PutU32(b, 16, 3); }, "id width 3 (offset 16)"},
      {"HEADER_VOCAB_0", [](std::vector<uint8_t>& b) { PutU32(b, 20, 0); }, "vocab_size 0 (offset 20)"},
      {"HEADER_VOCAB_OVER_INT32", [](std::vector<uint8_t>& b) { PutU32(b, 20, 0x80000000u); },
       "vocab_size 2147483648 (offset 20)"},
      {"HEADER_VOCAB_NEEDS_WIDE_IDS", [](std::vector<uint8_t>& b) { PutU32(b, 20, 65537); }, "id width 2 (offset 16)"},
      {"HEADER_NAME_LEN_0", [](std::vector<uint8_t>& b) { PutU32(b, 40, 0); }, "name length 0 (offset 40)"},
      {"HEADER_NAME_LEN_65", [](std::vector<uint8_t>& b) { PutU32(b, 40, 65); }, "name length 65 (offset 40)"},
      {"HEADER_NAME_PADDING", [](std::vector<uint8_t>& b) { b[60] = 'x'; }, "name padding"},
      {"HEADER_RESERVED_44", [](std::vector<uint8_t>& b) { b[45] = 1; }, "reserved"},
      {"HEADER_RESERVED_112", [](std::vector<uint8_t>& b) { b[119] = 1; }, "reserved"},
      {"DATA_COUNT_TOO_BIG", [](std::vector<uint8_t>& b) { PutU64(b, 24, 11); }, "truncated: token count 11"},
      {"DATA_COUNT_TOO_SMALL", [](std::vector<uint8_t>& b) { PutU64(b, 24, 9); }, "2 trailing bytes"},
      // 2^63 + 10 ids of 2 bytes is 2^64 + 20 bytes: wraps to exactly the 20 bytes present.
      {"DATA_COUNT_OVERFLOW", [](std::vector<uint8_t>& b) { PutU64(b, 24, (uint64_t{1} << 63) + 10); }, "overflows"},
      {"DATA_COUNT_MAX", [](std::vector<uint8_t>& b) { PutU64(b, 24, UINT64_MAX); }, "overflows"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::vector<uint8_t> b = full;
    c.edit(b);
    PutU64(b, 120, XXH3_64bits(b.data(), 120));
    WriteBytes(path, b);
    ExpectCorrupt(ReadTokenFile(path), path, c.want);
  }
}

TEST(TokenFileCorruption, DATA_ID_BEYOND_VOCAB) {
  TempDir tmp;
  const std::string path = SampleTokenFile(tmp);
  std::vector<uint8_t> b = ReadBytes(path);
  b[128 + 2 * 6] = 0x00;  // token 6 := 256, one past the vocabulary
  b[129 + 2 * 6] = 0x01;
  Reseal(b);
  WriteBytes(path, b);
  ExpectCorrupt(ReadTokenFile(path), path, "token 6 (offset 140) is 256, outside the vocabulary of 256");
  // Four-byte ids: an id with the top bit set is beyond every vocabulary.
  const std::string wide = tmp / "wide.tokens";
  ASSERT_TRUE(WriteTokenFile(wide, std::vector<int32_t>{1, 2, 3}, "w", 70000).ok());
  b = ReadBytes(wide);
  PutU32(b, 128 + 4 * 2, 0x80000001u);
  Reseal(b);
  WriteBytes(wide, b);
  ExpectCorrupt(ReadTokenFile(wide), wide, "token 2 (offset 136) is 2147483649");
}

// A fuzz seed: random damage (flips, truncations, extensions, spliced garbage) never crashes the
// reader, and anything it accepts is the original.
TEST(TokenFileCorruption, RandomDamageIsRejected) {
  TempDir tmp;
  const std::string path = tmp / "f.tokens";
  const std::vector<int32_t> t = Ids(300, 70000, 9);
  ASSERT_TRUE(WriteTokenFile(path, t, "fuzz", 70000).ok());
  const std::vector<uint8_t> full = ReadBytes(path);
  std::mt19937_64 rng(12345);
  int accepted = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::vector<uint8_t> b = full;
    switch (rng() % 4) {
      case 0: b[rng() % b.size()] ^= static_cast<uint8_t>(1 + rng() % 255); break;
      case 1: b.resize(rng() % b.size()); break;
      case 2: b.resize(b.size() + 1 + rng() % 16, static_cast<uint8_t>(rng())); break;
      default:
        for (int k = 0; k < 8; ++k) b[rng() % b.size()] = static_cast<uint8_t>(rng());
        break;
    }
    WriteBytes(path, b);
    Result<TokenFile> r = ReadTokenFile(path);
    if (r.ok()) {
      ++accepted;
      EXPECT_EQ(r->tokens, t);  // only a no-op edit (a byte overwritten with itself) may pass
    } else {
      EXPECT_TRUE(r.status().IsCorruption()) << r.status();
    }
  }
  EXPECT_LT(accepted, 20);
}

// ---- Corpus: sources ----------------------------------------------------------------------------

TEST(Corpus, SingleTextFile) {
  TempDir tmp;
  const std::string text = Text(3000, 1);
  WriteText(tmp / "a.txt", text);
  auto tok = ByteTokenizer();
  Result<TokenCorpus> c = LoadCorpus(tmp / "a.txt", *tok, Opts(tmp));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Concat(*c), AsIds(text));  // under two blocks: val is the tail, so the order is kept
  EXPECT_EQ(c->files, 1u);
  EXPECT_EQ(c->source_bytes, 3000u);
  EXPECT_EQ(c->tokenizer, "byte");
  EXPECT_EQ(c->vocab_size, 256);
}

TEST(Corpus, FolderIsSortedRecursiveAndJoinedWithEot) {
  TempDir tmp;
  const std::string root = tmp / "corpus";
  // Created out of order; taken in byte order of the paths: B, a, a/z, b/c, e (empty, no EOT).
  WriteText(root + "/b/c", "cd");
  WriteText(root + "/e", "");
  WriteText(root + "/a/z", "z");
  WriteText(root + "/a.txt", "ab");
  WriteText(root + "/B", "X");
  EotByteTokenizer tok;
  Result<TokenCorpus> c = LoadCorpus(root, tok, Opts(tmp));
  ASSERT_TRUE(c.ok()) << c.status();
  const std::vector<int32_t> want = {'X', 256, 'a', 'b', 256, 'z', 256, 'c', 'd'};
  EXPECT_EQ(Concat(*c), want);
  EXPECT_EQ(c->files, 5u);
  EXPECT_EQ(c->source_bytes, 6u);
  EXPECT_EQ(c->tokenizer, "test-byte-eot");
  // Without an EOT token, documents simply follow each other.
  Result<TokenCorpus> plain = LoadCorpus(root, *ByteTokenizer(), Opts(tmp));
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(Concat(*plain), AsIds("Xabzcd"));
}

TEST(Corpus, FolderSkipsBinarySymlinkDuplicatesAndSpecialFiles) {
  TempDir tmp;
  const std::string root = tmp / "corpus";
  WriteText(root + "/text", "hello");
  std::string bin = "abc";
  bin += '\0';
  WriteText(root + "/text.dat", bin + "def");  // a NUL early: binary, skipped
  const std::string late = std::string(64 << 10, 'y') + '\0' + "tail";  // a NUL after the first 64 KiB: text
  WriteText(root + "/late", late);
  fs::create_symlink("text", root + "/text.u8");      // a second name for "text": skipped
  fs::create_symlink("../corpus", root + "/loop");    // a link to a folder: not followed
  fs::create_symlink("nowhere", root + "/dangling");  // skipped
  ASSERT_EQ(::mkfifo((root + "/fifo").c_str(), 0600), 0);
  CorpusOptions o = Opts(tmp);
  o.split_block = 1 << 20;  // one block: val is the tail, the order is kept
  Result<TokenCorpus> c = LoadCorpus(root, *ByteTokenizer(), o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->files, 2u);
  EXPECT_EQ(Concat(*c), AsIds(late + "hello"));
}

TEST(Corpus, SymlinkSortedFirstIsTakenOnce) {
  TempDir tmp;
  const std::string root = tmp / "corpus";
  WriteText(root + "/z", "zzz");
  fs::create_symlink("z", root + "/a");  // "a" sorts first: the file is read once, under that name
  Result<TokenCorpus> c = LoadCorpus(root, *ByteTokenizer(), Opts(tmp));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->files, 1u);
  EXPECT_EQ(Concat(*c), AsIds("zzz"));
}

TEST(Corpus, TokenFileAsData) {
  TempDir tmp;
  const std::vector<int32_t> t = Ids(20000, 256, 4);
  ASSERT_TRUE(WriteTokenFile(tmp / "c.tokens", t, "byte", 256).ok());
  CorpusOptions o = Opts(tmp);
  o.split_block = 1000;
  Result<TokenCorpus> c = LoadCorpus(tmp / "c.tokens", *ByteTokenizer(), o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->train.size() + c->val.size(), t.size());
  EXPECT_FALSE(c->from_cache);
  EXPECT_EQ(c->cache_path, "");
  EXPECT_EQ(c->files, 1u);
  EXPECT_FALSE(fs::exists(tmp / "cache")) << "a token file needs no cache";
}

TEST(Corpus, TokenFileOfAnotherTokenizerIsRefused) {
  TempDir tmp;
  ASSERT_TRUE(WriteTokenFile(tmp / "g.tokens", std::vector<int32_t>{1, 2, 3}, "gpt2-bpe", 50257).ok());
  Result<TokenCorpus> c = LoadCorpus(tmp / "g.tokens", *ByteTokenizer(), Opts(tmp));
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.status().IsInvalidArgument()) << c.status();
  EXPECT_NE(c.status().message().find(tmp / "g.tokens"), std::string::npos);
  EXPECT_NE(c.status().message().find("gpt2-bpe"), std::string::npos);
}

// ---- Corpus: bad input --------------------------------------------------------------------------

void ExpectLoadFails(const std::string& data, const Tokenizer& tok, const CorpusOptions& o, StatusCode code,
                     const std::string& want) {
  Result<TokenCorpus> c = LoadCorpus(data, tok, o);
  ASSERT_FALSE(c.ok()) << data;
  EXPECT_EQ(c.status().code(), code) << c.status();
  EXPECT_NE(c.status().message().find(data), std::string::npos) << c.status();
  EXPECT_NE(c.status().message().find(want), std::string::npos) << c.status();
}

TEST(CorpusBadInput, MissingPath) {
  TempDir tmp;
  ExpectLoadFails(tmp / "nope", *ByteTokenizer(), Opts(tmp), StatusCode::kNotFound, "no such file");
}

TEST(CorpusBadInput, EmptyFile) {
  TempDir tmp;
  WriteText(tmp / "empty.txt", "");
  ExpectLoadFails(tmp / "empty.txt", *ByteTokenizer(), Opts(tmp), StatusCode::kInvalidArgument, "empty");
}

TEST(CorpusBadInput, EmptyFolder) {
  TempDir tmp;
  fs::create_directories(tmp / "empty/sub");
  ExpectLoadFails(tmp / "empty", *ByteTokenizer(), Opts(tmp), StatusCode::kInvalidArgument, "no text files");
}

TEST(CorpusBadInput, FolderOfEmptyFiles) {
  TempDir tmp;
  WriteText(tmp / "d/a", "");
  WriteText(tmp / "d/b", "");
  ExpectLoadFails(tmp / "d", *ByteTokenizer(), Opts(tmp), StatusCode::kInvalidArgument, "no tokens");
}

TEST(CorpusBadInput, FolderWithOnlyBinaryFiles) {
  TempDir tmp;
  WriteText(tmp / "bin/x.dat", std::string("\x00\x00\x00\x02", 4));
  WriteText(tmp / "bin/y.dat", std::string("ab\0cd", 5));
  ExpectLoadFails(tmp / "bin", *ByteTokenizer(), Opts(tmp), StatusCode::kInvalidArgument, "2 binary");
}

TEST(CorpusBadInput, BinaryFile) {
  TempDir tmp;
  WriteText(tmp / "x.bin", std::string("ab\0cd", 5));
  ExpectLoadFails(tmp / "x.bin", *ByteTokenizer(), Opts(tmp), StatusCode::kInvalidArgument, "binary");
}

TEST(CorpusBadInput, TokenFileWithIdBeyondVocab) {
  TempDir tmp;
  const std::string path = SampleTokenFile(tmp);
  std::vector<uint8_t> b = ReadBytes(path);
  b[128] = 0x2c;  // token 0 := 300
  b[129] = 0x01;
  Reseal(b);
  WriteBytes(path, b);
  ExpectLoadFails(path, *ByteTokenizer(), Opts(tmp), StatusCode::kCorruption, "token 0 (offset 128) is 300");
}

TEST(CorpusBadInput, EmptyTokenFile) {
  TempDir tmp;
  ASSERT_TRUE(WriteTokenFile(tmp / "e.tokens", {}, "byte", 256).ok());
  ExpectLoadFails(tmp / "e.tokens", *ByteTokenizer(), Opts(tmp), StatusCode::kInvalidArgument, "no tokens");
}

TEST(CorpusBadInput, BadOptions) {
  TempDir tmp;
  WriteText(tmp / "a", "abc");
  for (double f : {0.0, -0.1, 0.51, 1.0, std::nan("")}) {
    CorpusOptions o = Opts(tmp);
    o.val_fraction = f;
    Result<TokenCorpus> c = LoadCorpus(tmp / "a", *ByteTokenizer(), o);
    EXPECT_TRUE(!c.ok() && c.status().IsInvalidArgument()) << f;
  }
  CorpusOptions o = Opts(tmp);
  o.split_block = 0;
  Result<TokenCorpus> c = LoadCorpus(tmp / "a", *ByteTokenizer(), o);
  EXPECT_TRUE(!c.ok() && c.status().IsInvalidArgument());
}

// ---- Corpus: cache ------------------------------------------------------------------------------

TEST(CorpusCache, SecondLoadComesFromTheCache) {
  TempDir tmp;
  WriteText(tmp / "d/a", Text(5000, 1));
  WriteText(tmp / "d/b", Text(7000, 2));
  CorpusOptions o = Opts(tmp);
  o.cache_dir = tmp / "deep/cache/dir";  // created when missing
  o.split_block = 512;
  auto tok = ByteTokenizer();
  Result<TokenCorpus> first = LoadCorpus(tmp / "d", *tok, o);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->from_cache);
  ASSERT_NE(first->cache_path, "");
  EXPECT_EQ(fs::path(first->cache_path).parent_path(), fs::path(o.cache_dir));
  EXPECT_EQ(fs::path(first->cache_path).filename().string().size(), 16 + std::string(".tokens").size());
  Result<TokenFile> cached = ReadTokenFile(first->cache_path);
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(cached->tokens.size(), 12000u);

  Result<TokenCorpus> second = LoadCorpus(tmp / "d", *tok, o);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(second->cache_path, first->cache_path);
  EXPECT_EQ(second->train, first->train);
  EXPECT_EQ(second->val, first->val);
  EXPECT_EQ(second->files, 2u);
  EXPECT_EQ(second->source_bytes, 12000u);
}

TEST(CorpusCache, KeyFollowsFilesAndTokenizer) {
  TempDir tmp;
  WriteText(tmp / "d/a", "first version");
  CorpusOptions o = Opts(tmp);
  Result<TokenCorpus> a = LoadCorpus(tmp / "d", *ByteTokenizer(), o);
  ASSERT_TRUE(a.ok()) << a.status();
  WriteText(tmp / "d/a", "second, longer version");  // new size (and mtime): a new key
  Result<TokenCorpus> b = LoadCorpus(tmp / "d", *ByteTokenizer(), o);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE(b->from_cache);
  EXPECT_NE(b->cache_path, a->cache_path);
  EXPECT_EQ(Concat(*b), AsIds("second, longer version"));
  WriteText(tmp / "d/new", "x");  // a new file: a new key
  Result<TokenCorpus> c = LoadCorpus(tmp / "d", *ByteTokenizer(), o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->from_cache);
  EotByteTokenizer other;  // another tokenizer: a new key
  Result<TokenCorpus> d = LoadCorpus(tmp / "d", other, o);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->from_cache);
  EXPECT_NE(d->cache_path, c->cache_path);
}

TEST(CorpusCache, CorruptCacheIsRebuilt) {
  TempDir tmp;
  WriteText(tmp / "a", Text(4000, 3));
  CorpusOptions o = Opts(tmp);
  Result<TokenCorpus> first = LoadCorpus(tmp / "a", *ByteTokenizer(), o);
  ASSERT_TRUE(first.ok()) << first.status();
  for (int damage = 0; damage < 3; ++damage) {
    std::vector<uint8_t> b = ReadBytes(first->cache_path);
    if (damage == 0) b[1000] ^= 1;          // a flipped id byte
    if (damage == 1) b.resize(b.size() / 2);  // truncated
    if (damage == 2) b.assign(7, 'x');      // garbage
    WriteBytes(first->cache_path, b);
    Result<TokenCorpus> again = LoadCorpus(tmp / "a", *ByteTokenizer(), o);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_FALSE(again->from_cache);
    EXPECT_EQ(Concat(*again), Concat(*first));
    EXPECT_EQ(again->cache_path, first->cache_path);
    Result<TokenCorpus> third = LoadCorpus(tmp / "a", *ByteTokenizer(), o);  // rewritten: a hit
    ASSERT_TRUE(third.ok()) << third.status();
    EXPECT_TRUE(third->from_cache);
  }
}

TEST(CorpusCache, UnwritableCacheIsOnlyAWarning) {
  TempDir tmp;
  WriteText(tmp / "a", "some text");
  WriteText(tmp / "file", "a file where the cache folder should be");
  CorpusOptions o = Opts(tmp);
  o.cache_dir = tmp / "file/cache";
  Result<TokenCorpus> c = LoadCorpus(tmp / "a", *ByteTokenizer(), o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->from_cache);
  EXPECT_EQ(c->cache_path, "");
  EXPECT_EQ(Concat(*c), AsIds("some text"));
}

TEST(CorpusCache, UseCacheFalseWritesNothing) {
  TempDir tmp;
  WriteText(tmp / "a", "some text");
  CorpusOptions o = Opts(tmp);
  o.use_cache = false;
  Result<TokenCorpus> c = LoadCorpus(tmp / "a", *ByteTokenizer(), o);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->cache_path, "");
  EXPECT_FALSE(fs::exists(o.cache_dir));
}

TEST(CorpusCache, DefaultFolderFollowsXdgCacheHome) {
  TempDir tmp;
  WriteText(tmp / "a", "some text");
  const char* old = std::getenv("XDG_CACHE_HOME");
  const std::string saved = old ? old : "";
  ASSERT_EQ(::setenv("XDG_CACHE_HOME", (tmp / "xdg").c_str(), 1), 0);
  CorpusOptions o;  // cache_dir ""
  Result<TokenCorpus> c = LoadCorpus(tmp / "a", *ByteTokenizer(), o);
  if (old) ::setenv("XDG_CACHE_HOME", saved.c_str(), 1); else ::unsetenv("XDG_CACHE_HOME");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(fs::path(c->cache_path).parent_path(), fs::path(tmp / "xdg/strata/tokens"));
  EXPECT_TRUE(fs::exists(c->cache_path));
}

TEST(CorpusCache, VerboseSaysWhatItDoes) {
  TempDir tmp;
  WriteText(tmp / "d/one.txt", "first");
  WriteText(tmp / "d/two.txt", "second");
  WriteText(tmp / "d/skip.dat", std::string("\0\0\0\2", 4));
  CorpusOptions o = Opts(tmp);
  o.verbose = true;
  ::testing::internal::CaptureStderr();
  Result<TokenCorpus> first = LoadCorpus(tmp / "d", *ByteTokenizer(), o);
  const std::string log1 = ::testing::internal::GetCapturedStderr();
  ::testing::internal::CaptureStderr();
  Result<TokenCorpus> second = LoadCorpus(tmp / "d", *ByteTokenizer(), o);
  const std::string log2 = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(first.ok() && second.ok());
  const std::string one = "tokenized " + tmp / "d/one.txt" + ": 5 bytes -> 5 tokens (file 1 of 2)";
  EXPECT_NE(log1.find(one), std::string::npos) << log1;
  EXPECT_NE(log1.find("tokenized " + tmp / "d/two.txt"), std::string::npos) << log1;
  EXPECT_NE(log1.find("1 binary"), std::string::npos) << log1;
  EXPECT_NE(log1.find("wrote the token cache"), std::string::npos) << log1;
  EXPECT_EQ(log2.find("tokenized"), std::string::npos) << log2;
  EXPECT_NE(log2.find("from the cache " + second->cache_path), std::string::npos) << log2;
  o.verbose = false;
  ::testing::internal::CaptureStderr();
  Result<TokenCorpus> quiet = LoadCorpus(tmp / "d", *ByteTokenizer(), o);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ASSERT_TRUE(quiet.ok());
}

// ---- Corpus: split ------------------------------------------------------------------------------

// Assigns each block of `all` to train or val by matching it against the two streams in order;
// fails when the streams are not whole blocks of `all` in order.
std::vector<bool> ValBlocks(const std::vector<int32_t>& all, const TokenCorpus& c, size_t block) {
  const size_t n_blocks = all.size() / block;
  std::vector<bool> is_val;
  size_t ti = 0, vi = 0;
  for (size_t i = 0; i < n_blocks; ++i) {
    const size_t b = i * block, e = (i + 1 == n_blocks) ? all.size() : b + block;
    auto match = [&](const std::vector<int32_t>& s, size_t at) {
      return at + (e - b) <= s.size() && std::equal(all.begin() + b, all.begin() + e, s.begin() + at);
    };
    if (match(c.train, ti)) {
      is_val.push_back(false);
      ti += e - b;
    } else if (match(c.val, vi)) {
      is_val.push_back(true);
      vi += e - b;
    } else {
      ADD_FAILURE() << "block " << i << " is in neither stream";
      return {};
    }
  }
  EXPECT_EQ(ti, c.train.size());
  EXPECT_EQ(vi, c.val.size());
  return is_val;
}

TEST(CorpusSplit, WholeBlocksNearTheValFraction) {
  TempDir tmp;
  const std::string text = Text(2000 * 16 + 7, 5);  // 2000 blocks of 16, the last one 23 tokens
  WriteText(tmp / "a", text);
  CorpusOptions o = Opts(tmp);
  o.split_block = 16;
  o.val_fraction = 0.1;
  Result<TokenCorpus> c = LoadCorpus(tmp / "a", *ByteTokenizer(), o);
  ASSERT_TRUE(c.ok()) << c.status();
  const std::vector<bool> is_val = ValBlocks(AsIds(text), *c, 16);
  ASSERT_EQ(is_val.size(), 2000u);
  const auto n_val = std::count(is_val.begin(), is_val.end(), true);
  EXPECT_NEAR(static_cast<double>(n_val), 200.0, 4 * std::sqrt(2000 * 0.1 * 0.9));  // binomial, 4 sd
  // Another seed: another split of the same size, roughly.
  o.split_seed = 1;
  Result<TokenCorpus> d = LoadCorpus(tmp / "a", *ByteTokenizer(), o);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->from_cache);
  EXPECT_NE(ValBlocks(AsIds(text), *d, 16), is_val);
}

TEST(CorpusSplit, AtLeastOneBlockEachWay) {
  TempDir tmp;
  const std::string text = Text(2 * 100 + 5, 6);  // exactly two blocks, the second 105 tokens
  WriteText(tmp / "a", text);
  for (double f : {0.0001, 0.5}) {
    for (uint64_t seed = 0; seed < 20; ++seed) {
      CorpusOptions o = Opts(tmp);
      o.split_block = 100;
      o.val_fraction = f;
      o.split_seed = seed;
      Result<TokenCorpus> c = LoadCorpus(tmp / "a", *ByteTokenizer(), o);
      ASSERT_TRUE(c.ok()) << c.status();
      const std::vector<bool> is_val = ValBlocks(AsIds(text), *c, 100);
      ASSERT_EQ(is_val.size(), 2u);
      EXPECT_NE(is_val[0], is_val[1]) << "seed " << seed << " fraction " << f;
    }
  }
}

// Under two whole blocks there is no block split: val is the last val_fraction of the tokens.
TEST(CorpusSplit, SmallCorpusFallsBackToTheTail) {
  TempDir tmp;
  struct Case {
    size_t n;
    double f;
    size_t want_val;
  };
  for (const Case& c : std::vector<Case>{{1000, 0.1, 100}, {199, 0.05, 10}, {2, 0.05, 1}, {3, 0.5, 2}, {1, 0.05, 0}}) {
    const std::string text = Text(c.n, c.n);
    WriteText(tmp / "a", text);
    CorpusOptions o = Opts(tmp);
    o.split_block = 600;
    o.val_fraction = c.f;
    Result<TokenCorpus> r = LoadCorpus(tmp / "a", *ByteTokenizer(), o);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->val.size(), c.want_val) << c.n;
    EXPECT_EQ(Concat(*r), AsIds(text));
  }
}

// ---- The real corpus ----------------------------------------------------------------------------

TEST(Fortunes, LoadsFromTextAndThenFromTheCache) {
  const std::string dir = "/usr/share/games/fortunes";
  if (!fs::is_directory(dir)) GTEST_SKIP() << dir << " is absent (Debian package `fortunes`)";
  // What the loader should take: the regular files that are not symlinks (the *.u8 names) and
  // not fortune's binary *.dat indexes.
  uint64_t want_files = 0, want_bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_symlink() || !e.is_regular_file() || e.path().extension() == ".dat") continue;
    ++want_files;
    want_bytes += e.file_size();
  }
  TempDir tmp;
  CorpusOptions o = Opts(tmp);
  auto tok = ByteTokenizer();
  Result<TokenCorpus> first = LoadCorpus(dir, *tok, o);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_GT(first->files, 0u);
  EXPECT_EQ(first->files, want_files);
  EXPECT_EQ(first->source_bytes, want_bytes);
  EXPECT_GT(first->source_bytes, 2000000u);  // about 2.5 MB
  EXPECT_LT(first->source_bytes, 3000000u);
  const uint64_t total = first->train.size() + first->val.size();
  EXPECT_EQ(total, want_bytes);  // one token per byte, no EOT
  EXPECT_EQ(std::count(first->train.begin(), first->train.end(), 0), 0) << "NUL bytes: a .dat file was read";
  EXPECT_EQ(std::count(first->val.begin(), first->val.end(), 0), 0);
  const double share = static_cast<double>(first->val.size()) / static_cast<double>(total);
  EXPECT_NEAR(share, o.val_fraction, 0.025) << "~630 blocks: one standard deviation is ~0.009";
  EXPECT_FALSE(first->from_cache);

  Result<TokenCorpus> second = LoadCorpus(dir, *tok, o);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(second->train, first->train);
  EXPECT_EQ(second->val, first->val);
  EXPECT_EQ(second->files, first->files);

  // Averaged over seeds, the val share is val_fraction.
  double sum = 0;
  for (uint64_t seed = 0; seed < 16; ++seed) {
    o.split_seed = seed;
    Result<TokenCorpus> c = LoadCorpus(dir, *tok, o);
    ASSERT_TRUE(c.ok()) << c.status();
    sum += static_cast<double>(c->val.size()) / static_cast<double>(total);
  }
  EXPECT_NEAR(sum / 16, o.val_fraction, 0.008);
}

// ---- Batches ------------------------------------------------------------------------------------

std::vector<int32_t> Iota(size_t n) {
  std::vector<int32_t> s(n);
  std::iota(s.begin(), s.end(), 0);
  return s;
}

// With stream[i] = i, a row's first input is its start; checks the row is a contiguous window
// with targets shifted by one and in bounds.
std::vector<int64_t> Starts(const Batch& batch, size_t size) {
  std::vector<int64_t> starts;
  for (int b = 0; b < batch.B; ++b) {
    const int64_t s = batch.inputs[static_cast<size_t>(b * batch.T)];
    EXPECT_GE(s, 0);
    EXPECT_LE(s + batch.T + 1, static_cast<int64_t>(size)) << "row " << b << " runs off the stream";
    for (int t = 0; t < batch.T; ++t) {
      EXPECT_EQ(batch.inputs[static_cast<size_t>(b * batch.T + t)], s + t);
      EXPECT_EQ(batch.targets[static_cast<size_t>(b * batch.T + t)], s + t + 1);
    }
    starts.push_back(s);
  }
  return starts;
}

TEST(TrainBatch, SameSeedAndStepGiveTheSameBatch) {
  const std::vector<int32_t> s = Ids(10007, 50257, 7);
  Batch a, b;
  DrawTrainBatch(s, 42, 17, 8, 64, &a);
  DrawTrainBatch(s, 42, 17, 8, 64, &b);
  EXPECT_EQ(a.B, 8);
  EXPECT_EQ(a.T, 64);
  ASSERT_EQ(a.inputs.size(), 8u * 64u);
  EXPECT_EQ(a.inputs, b.inputs);
  EXPECT_EQ(a.targets, b.targets);
  DrawTrainBatch(s, 42, 18, 8, 64, &b);  // another step
  EXPECT_NE(a.inputs, b.inputs);
  DrawTrainBatch(s, 43, 17, 8, 64, &b);  // another seed
  EXPECT_NE(a.inputs, b.inputs);
}

// A row depends on (seed, step, b) alone: not on B, nor on what was drawn before.
TEST(TrainBatch, RowDependsOnlyOnSeedStepAndRow) {
  const std::vector<int32_t> s = Iota(5000);
  Batch small, big;
  DrawTrainBatch(s, 1, 9, 3, 16, &small);
  DrawTrainBatch(s, 1, 9, 11, 16, &big);
  EXPECT_TRUE(std::equal(small.inputs.begin(), small.inputs.end(), big.inputs.begin()));
}

TEST(TrainBatch, TargetsShiftByOneAndRowsStayInBoundsAtAwkwardSizes) {
  for (int T : {1, 2, 7, 64}) {
    for (size_t extra : {1, 2, 3, 97, 101, 4099}) {  // stream of exactly T + 1 tokens, then primes
      const size_t size = static_cast<size_t>(T) + extra;
      const std::vector<int32_t> s = Iota(size);
      for (int B : {1, 3, 13}) {
        for (uint64_t step = 0; step < 20; ++step) {
          Batch batch;
          DrawTrainBatch(s, 5, step, B, T, &batch);
          for (int64_t start : Starts(batch, size)) {
            if (extra == 1) {
              EXPECT_EQ(start, 0);
            }
          }
        }
      }
    }
  }
}

TEST(TrainBatch, StartsAreUniform) {
  const int T = 1;
  const std::vector<int32_t> s = Iota(6);  // starts 0..4
  std::map<int64_t, int> hist;
  for (uint64_t step = 0; step < 2000; ++step) {
    Batch batch;
    DrawTrainBatch(s, 3, step, 5, T, &batch);
    for (int64_t start : Starts(batch, s.size())) ++hist[start];
  }
  ASSERT_EQ(hist.size(), 5u);  // the last start, size - T - 1, is reached
  for (const auto& [start, n] : hist) EXPECT_NEAR(n, 2000, 4 * std::sqrt(10000 * 0.2 * 0.8)) << start;
}

TEST(TrainBatchDeathTest, StreamShorterThanAWindowIsABug) {
  const std::vector<int32_t> s = Iota(8);
  Batch batch;
  EXPECT_DEATH(DrawTrainBatch(s, 0, 0, 1, 8, &batch), "check failed");
  EXPECT_DEATH(DrawValBatch(s, 0, 1, 8, &batch), "check failed");
  EXPECT_DEATH(DrawTrainBatch(s, 0, 0, 0, 4, &batch), "check failed");
}

TEST(ValBatch, FixedWindowsVisitingEveryWindowOnce) {
  for (int T : {1, 5, 64}) {
    for (size_t size : {static_cast<size_t>(T) + 1, static_cast<size_t>(T) + 2, size_t{997}, size_t{4096}}) {
      if (size < static_cast<size_t>(T) + 1) continue;
      const std::vector<int32_t> s = Iota(size);
      const size_t windows = (size - 1) / static_cast<size_t>(T);
      for (int B : {1, 4, 7}) {
        std::multiset<int64_t> seen;
        const uint64_t batches = (windows + static_cast<size_t>(B) - 1) / static_cast<size_t>(B);
        for (uint64_t index = 0; index < batches; ++index) {
          Batch a, b;
          DrawValBatch(s, index, B, T, &a);
          DrawValBatch(s, index, B, T, &b);
          EXPECT_EQ(a.inputs, b.inputs);  // the same every time
          const std::vector<int64_t> starts = Starts(a, size);
          for (int r = 0; r < B && seen.size() < windows; ++r) {
            EXPECT_EQ(starts[static_cast<size_t>(r)] % T, 0);
            seen.insert(starts[static_cast<size_t>(r)]);
          }
        }
        EXPECT_EQ(seen.size(), windows);
        EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), windows)
            << "T " << T << " size " << size << " B " << B << ": a window came twice in one cycle";
      }
    }
  }
}

// The first few batches already sample the whole stream, not just its beginning.
TEST(ValBatch, FirstBatchSpansTheStream) {
  const std::vector<int32_t> s = Iota(100000);
  Batch batch;
  DrawValBatch(s, 0, 8, 64, &batch);
  const std::vector<int64_t> starts = Starts(batch, s.size());
  EXPECT_LT(*std::min_element(starts.begin(), starts.end()), 100000 / 4);
  EXPECT_GT(*std::max_element(starts.begin(), starts.end()), 3 * 100000 / 4);
}

}  // namespace
}  // namespace strata::model
