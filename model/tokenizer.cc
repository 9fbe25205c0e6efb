// Tokenizers (model/tokenizer.h): the byte tokenizer, GPT-2's byte-level BPE loaded from the OpenAI
// files (encoder.json + vocab.bpe), and the BPE tokenizers of Hugging Face tokenizer.json files.
//
// GPT-2 BPE, encoding: the text is cut into pieces by GPT-2's regular expression (PCRE2, JIT when
// the library has it), then each piece's bytes are merged pairwise, lowest merge rank first (ties:
// leftmost first). Tokens are held as raw bytes; the files spell them in GPT-2's byte alphabet (each
// byte one printable code point), which is translated once, at load.
//
// Any byte string round-trips: invalid UTF-8 never reaches the regex. The text is cut into valid
// runs and invalid bytes, and each invalid byte is a piece of its own (a single-byte token).
//
// tokenizer.json (HfBpe, below): the library's pipeline, one step per component of the file, each
// implemented exactly as the library does it or refused by name: normalizers NFC / Prepend /
// Replace, pre-tokenizers Split (the file's regex, rewritten where Oniguruma and PCRE2 differ) /
// ByteLevel / Metaspace, BPE with ignore_merges, byte_fallback and fuse_unk, added tokens, the
// TemplateProcessing post-processor, decoders ByteLevel / Replace / ByteFallback / Fuse / Strip /
// Metaspace. The library's Unicode data (NFC; the regex classes) is in tables made from it.
//
// A loaded tokenizer is immutable; Encode keeps its scratch (BPE heap, piece cache) per call, so one
// tokenizer may serve several threads at once.
#include "model/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

namespace strata::model {
namespace {

using json = nlohmann::json;

Status CheckIds(std::span<const int32_t> ids, int32_t vocab_size) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      return Status::InvalidArgument("token id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                                     " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
    }
  }
  return Status::Ok();
}

// ------------------------------------------------------------------------------------------------
// Byte tokenizer

class ByteTokenizer final : public Tokenizer {
 public:
  std::string name() const override { return "byte"; }
  int32_t vocab_size() const override { return 256; }
  std::optional<int32_t> eot() const override { return std::nullopt; }
  std::vector<int32_t> Encode(std::string_view text) const override {
    std::vector<int32_t> ids(text.size());
    for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
    return ids;
  }
  Status Decode(std::span<const int32_t> ids, std::string* out) const override {
    STRATA_RETURN_IF_ERROR(CheckIds(ids, 256));
    out->reserve(out->size() + ids.size());
    for (int32_t id : ids) out->push_back(static_cast<char>(id));
    return Status::Ok();
  }
};

// ------------------------------------------------------------------------------------------------
// UTF-8 and GPT-2's byte alphabet

// Length (1..4) of the valid UTF-8 sequence at the start of s[0, n), or 0 when none starts there.
// Strict, as PCRE2 requires: no overlong forms, no surrogates, nothing above U+10FFFF.
size_t Utf8SeqLen(const unsigned char* s, size_t n) {
  const unsigned c = s[0];
  if (c < 0x80) return 1;
  auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) { return k < n && s[k] >= lo && s[k] <= hi; };
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

// The code point of a valid sequence of `len` bytes (from Utf8SeqLen).
uint32_t Utf8Decode(const unsigned char* s, size_t len) {
  switch (len) {
    case 1: return s[0];
    case 2: return (s[0] & 0x1Fu) << 6 | (s[1] & 0x3Fu);
    case 3: return (s[0] & 0x0Fu) << 12 | (s[1] & 0x3Fu) << 6 | (s[2] & 0x3Fu);
    default: return (s[0] & 0x07u) << 18 | (s[1] & 0x3Fu) << 12 | (s[2] & 0x3Fu) << 6 | (s[3] & 0x3Fu);
  }
}

void Utf8Append(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | cp >> 6));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | cp >> 12));
    out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | cp >> 18));
    out->push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// GPT-2 spells every byte as one printable code point, so that vocabulary files are plain text:
// the printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves and
// the other 68 (controls, space, DEL, NBSP, soft hyphen) take U+0100 upward, in byte order.
struct ByteAlphabet {
  static constexpr uint32_t kCodePoints = 256 + 68;
  std::array<uint32_t, 256> code_point{};      // byte -> code point
  std::array<int16_t, kCodePoints> byte{};     // code point -> byte, -1 where none
  std::array<std::string, 256> spelling{};     // byte -> its code point in UTF-8
};

const ByteAlphabet& Alphabet() {
  static const ByteAlphabet a = [] {
    ByteAlphabet t;
    t.byte.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t.code_point[b] = printable ? b : next++;
      t.byte[t.code_point[b]] = static_cast<int16_t>(b);
      Utf8Append(t.code_point[b], &t.spelling[b]);
    }
    return t;
  }();
  return a;
}

// Translates a token spelled in the byte alphabet to its bytes. On failure returns false and sets
// *bad to the first code point outside the alphabet (0xFFFFFFFF for invalid UTF-8).
bool AlphabetToBytes(std::string_view spelled, std::string* bytes, uint32_t* bad) {
  const ByteAlphabet& a = Alphabet();
  const auto* s = reinterpret_cast<const unsigned char*>(spelled.data());
  bytes->clear();
  for (size_t i = 0; i < spelled.size();) {
    const size_t len = Utf8SeqLen(s + i, spelled.size() - i);
    if (len == 0) {
      *bad = 0xFFFFFFFFu;
      return false;
    }
    const uint32_t cp = Utf8Decode(s + i, len);
    if (cp >= ByteAlphabet::kCodePoints || a.byte[cp] < 0) {
      *bad = cp;
      return false;
    }
    bytes->push_back(static_cast<char>(a.byte[cp]));
    i += len;
  }
  return true;
}

// A token or symbol for an error message: JSON-quoted, cut short if long.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 48;
  std::string q = json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
  if (q.size() > kMax + 2) {
    size_t cut = kMax;
    while (cut > 1 && (static_cast<unsigned char>(q[cut]) & 0xC0) == 0x80) --cut;  // whole characters
    q = q.substr(0, cut) + "...\"";
  }
  return q;
}

std::string CodePointName(uint32_t cp) {
  if (cp == 0xFFFFFFFFu) return "invalid UTF-8";
  char buf[16];
  std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
  return buf;
}

// ------------------------------------------------------------------------------------------------
// The pre-tokenizer

constexpr char kGpt2Pattern[] = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// GPT-2's regex, compiled once per process; pcre2_code (and its JIT code) may be shared by threads.
class Gpt2Regex {
 public:
  static const Gpt2Regex& Get() {
    static const Gpt2Regex re;
    return re;
  }
  const Status& status() const { return status_; }
  const pcre2_code* code() const { return code_; }
  ~Gpt2Regex() { pcre2_code_free(code_); }
  Gpt2Regex(const Gpt2Regex&) = delete;
  Gpt2Regex& operator=(const Gpt2Regex&) = delete;

 private:
  Gpt2Regex() {
    int err = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kGpt2Pattern), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                          &err, &offset, nullptr);
    if (code_ == nullptr) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      status_ = Status::Unavailable("PCRE2 cannot compile GPT-2's pre-tokenizer regex (at offset " +
                                    std::to_string(offset) + "): " + reinterpret_cast<const char*>(msg));
      return;
    }
    // Without JIT (a library built without it) pcre2_match interprets: slower, same pieces.
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);
  }
  pcre2_code* code_ = nullptr;
  Status status_;
};

struct MatchDataFree {
  void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
};
using MatchData = std::unique_ptr<pcre2_match_data, MatchDataFree>;

MatchData NewMatchData(const pcre2_code* re) {
  MatchData md(pcre2_match_data_create_from_pattern(re, nullptr));
  if (!md) throw std::bad_alloc();
  return md;
}

// Splits a run of valid UTF-8 with the regex.
template <typename Emit>
void SplitValidRun(const pcre2_code* re, pcre2_match_data* md, std::string_view run, Emit& emit) {
  const auto* s = reinterpret_cast<const unsigned char*>(run.data());
  size_t pos = 0;
  while (pos < run.size()) {
    const int rc = pcre2_match(re, s, run.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    size_t begin = run.size(), end = run.size();
    if (rc > 0) {
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      begin = ov[0];
      end = ov[1];
    }
    // The pattern matches at every position of valid UTF-8. Were it ever to skip text, match empty,
    // or fail (a resource limit), that text still becomes a piece: round trips never depend on it.
    if (begin > pos) emit(run.substr(pos, begin - pos));
    if (end == begin && begin < run.size()) end = begin + Utf8SeqLen(s + begin, run.size() - begin);
    if (end > begin) emit(run.substr(begin, end - begin));
    pos = end;
  }
}

// Calls emit(piece) for each piece of `text`, in order.
template <typename Emit>
void ForEachPiece(const pcre2_code* re, pcre2_match_data* md, std::string_view text, Emit&& emit) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n) {
      if (s[j] < 0x80) {
        ++j;
        continue;
      }
      const size_t len = Utf8SeqLen(s + j, n - j);
      if (len == 0) break;
      j += len;
    }
    if (j > i) SplitValidRun(re, md, text.substr(i, j - i), emit);
    if (j < n) emit(text.substr(j++, 1));  // an invalid byte: a piece of its own
    i = j;
  }
}

// ------------------------------------------------------------------------------------------------
// GPT-2 BPE

struct MergeRule {
  int32_t rank;    // the merge's line among the merges: lower merges first
  int32_t merged;  // the token the pair becomes
};

// (left, right) -> merge rule, by open addressing with linear probing. This is the innermost
// lookup of encoding, where std::unordered_map (chained buckets, prime modulus) took twice as long.
class MergeTable {
 public:
  // Sizes the table for n rules (at most half full, so probes stay short); empties it.
  void Reserve(size_t n) {
    int bits = 4;
    while ((size_t{1} << bits) < 2 * n) ++bits;
    shift_ = 64 - bits;
    slots_.assign(size_t{1} << bits, Slot{kEmpty, {}});
  }
  // Inserts the rule unless the pair has one; returns the rule already there, or nullptr. At most
  // the n of Reserve(n) rules.
  const MergeRule* Insert(int32_t left, int32_t right, MergeRule rule) {
    const uint64_t key = Key(left, right);
    for (size_t i = Home(key);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].key == key) return &slots_[i].rule;
      if (slots_[i].key == kEmpty) {
        slots_[i] = {key, rule};
        return nullptr;
      }
    }
  }
  const MergeRule* Find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = Key(left, right);
    for (size_t i = Home(key);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].key == key) return &slots_[i].rule;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  struct Slot {
    uint64_t key;
    MergeRule rule;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // no pair of ids below 2^31 makes this key
  static uint64_t Key(int32_t left, int32_t right) {
    return static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32 | static_cast<uint32_t>(right);
  }
  size_t Home(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  std::vector<Slot> slots_;
  int shift_ = 60;
};

// Encode's per-call piece cache: piece -> where its ids were first written in the output (start,
// count). Open addressing over views into the text being encoded, so no piece is copied.
class PieceCache {
 public:
  static constexpr size_t kMaxPiece = 64;           // longer pieces rarely repeat: not cached
  static constexpr size_t kMaxEntries = size_t{1} << 16;  // bounded: a text of unique pieces stops here

  bool Find(std::string_view piece, size_t* start, size_t* count) const {
    if (slots_.empty()) return false;
    const uint32_t h = Hash(piece);
    for (size_t i = h & (slots_.size() - 1);; i = (i + 1) & (slots_.size() - 1)) {
      const Slot& s = slots_[i];
      if (s.data == nullptr) return false;
      if (s.hash == h && s.size == piece.size() && std::memcmp(s.data, piece.data(), piece.size()) == 0) {
        *start = s.start;
        *count = s.count;
        return true;
      }
    }
  }
  void Insert(std::string_view piece, size_t start, size_t count) {
    if (piece.size() > kMaxPiece || used_ >= kMaxEntries) return;
    if (2 * (used_ + 1) > slots_.size()) Grow();
    Place({piece.data(), static_cast<uint32_t>(piece.size()), Hash(piece), start, count});
    ++used_;
  }

 private:
  struct Slot {
    const char* data = nullptr;  // nullptr: empty
    uint32_t size = 0, hash = 0;
    size_t start = 0, count = 0;
  };
  static uint32_t Hash(std::string_view s) {  // FNV-1a: pieces are short
    uint64_t h = 0xcbf29ce484222325ull;
    for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    return static_cast<uint32_t>(h ^ h >> 32);
  }
  void Place(const Slot& slot) {
    size_t i = slot.hash & (slots_.size() - 1);
    while (slots_[i].data != nullptr) i = (i + 1) & (slots_.size() - 1);
    slots_[i] = slot;
  }
  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 256 : 2 * old.size(), Slot{});
    for (const Slot& s : old) {
      if (s.data != nullptr) Place(s);
    }
  }
  std::vector<Slot> slots_;  // a power of two in size, at most half full
  size_t used_ = 0;
};

// Encode's scratch for BpeMerge, reused from piece to piece.
struct BpeScratch {
  struct Symbol {
    int32_t id;    // -1 once merged into the symbol on its left
    int32_t prev;  // index of the live neighbours, -1 at the ends
    int32_t next;
  };
  struct Candidate {  // the pair (left, right) at symbols [pos, next of pos] can merge
    int32_t rank, pos, left, right;
  };
  std::vector<int32_t> initial;  // the piece's symbols before merging
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
};

// Byte-pair merging of one piece: start from its symbols (s->initial), and repeatedly merge the
// adjacent pair of lowest rank (leftmost first among equals) until no adjacent pair has a rule;
// appends the result. A min-heap of candidates keeps this O(n log n), so a 10k-letter "word" costs
// no more than its length; candidates made stale by an earlier merge are recognised by their ids
// and dropped.
void BpeMerge(const MergeTable& merges, BpeScratch* s, std::vector<int32_t>* out) {
  using Candidate = BpeScratch::Candidate;
  const int32_t n = static_cast<int32_t>(s->initial.size());
  if (n == 0) return;
  auto& sym = s->symbols;
  auto& heap = s->heap;
  sym.resize(n);
  heap.clear();
  for (int32_t i = 0; i < n; ++i) sym[i] = {s->initial[i], i - 1, i + 1};
  sym[n - 1].next = -1;

  auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  auto push = [&](int32_t pos) {
    const int32_t right = sym[pos].next;
    if (right < 0) return;
    if (const MergeRule* r = merges.Find(sym[pos].id, sym[right].id)) {
      heap.push_back({r->rank, pos, sym[pos].id, sym[right].id});
      std::push_heap(heap.begin(), heap.end(), later);
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Candidate c = heap.back();
    heap.pop_back();
    // A symbol's id changes only when it absorbs its right neighbour (and then grows), so equal
    // ids mean neither side has merged since this candidate was pushed.
    const int32_t right = sym[c.pos].next;
    if (sym[c.pos].id != c.left || right < 0 || sym[right].id != c.right) continue;
    sym[c.pos].id = merges.Find(c.left, c.right)->merged;
    sym[c.pos].next = sym[right].next;
    if (sym[right].next >= 0) sym[sym[right].next].prev = c.pos;
    sym[right].id = -1;
    if (sym[c.pos].prev >= 0) push(sym[c.pos].prev);
    push(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out->push_back(sym[i].id);
}

// What a loader hands to the constructor; checked by BuildGpt2Bpe.
struct Gpt2BpeModel {
  std::string token_bytes;              // all tokens' bytes, back to back
  std::vector<uint32_t> token_offset;   // (vocab_size + 1): token i is [offset[i], offset[i + 1])
  std::array<int32_t, 256> byte_token;  // the single-byte token of each byte
  MergeTable merges;
  std::optional<int32_t> eot;
};

class Gpt2Bpe final : public Tokenizer {
 public:
  Gpt2Bpe(Gpt2BpeModel m, const pcre2_code* re) : m_(std::move(m)), re_(re) {}

  std::string name() const override { return "gpt2-bpe"; }
  int32_t vocab_size() const override { return static_cast<int32_t>(m_.token_offset.size() - 1); }
  std::optional<int32_t> eot() const override { return m_.eot; }

  std::vector<int32_t> Encode(std::string_view text) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 4 + 16);
    MatchData md = NewMatchData(re_);
    BpeScratch scratch;
    // A piece seen before in this call copies the ids it got then. English text repeats most of
    // its words, so this skips most merging.
    PieceCache cache;
    ForEachPiece(re_, md.get(), text, [&](std::string_view piece) {
      if (piece.size() == 1) {
        ids.push_back(m_.byte_token[static_cast<unsigned char>(piece[0])]);
        return;
      }
      if (size_t start, count; cache.Find(piece, &start, &count)) {
        for (size_t k = 0; k < count; ++k) ids.push_back(ids[start + k]);  // by index: ids may move
        return;
      }
      const size_t start = ids.size();
      MergePiece(piece, &scratch, &ids);
      cache.Insert(piece, start, ids.size() - start);
    });
    return ids;
  }

  Status Decode(std::span<const int32_t> ids, std::string* out) const override {
    STRATA_RETURN_IF_ERROR(CheckIds(ids, vocab_size()));  // before appending: on error *out is untouched
    for (int32_t id : ids) {
      const uint32_t b = m_.token_offset[id], e = m_.token_offset[id + 1];
      out->append(m_.token_bytes, b, e - b);
    }
    return Status::Ok();
  }

 private:
  // Byte-pair merging of one piece, from its bytes.
  void MergePiece(std::string_view piece, BpeScratch* s, std::vector<int32_t>* out) const {
    s->initial.resize(piece.size());
    for (size_t i = 0; i < piece.size(); ++i) s->initial[i] = m_.byte_token[static_cast<unsigned char>(piece[i])];
    BpeMerge(m_.merges, s, out);
  }

  Gpt2BpeModel m_;
  const pcre2_code* re_;
};

// ------------------------------------------------------------------------------------------------
// Building a GPT-2 BPE from parsed files

struct AddedToken {
  int32_t id;
  std::string content;  // raw text, not spelled in the byte alphabet
  std::string where;    // "tokenizer.json added_tokens[0]"
};

// What the two file formats have in common. Ids are already checked to be in [0, 2^31).
struct BpeSource {
  std::string vocab_where;                             // "PATH" or "PATH model.vocab"
  std::vector<std::pair<std::string, int32_t>> vocab;  // token spelled in the byte alphabet -> id
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::function<std::string(size_t)> merge_where;      // merge index -> "PATH line 17"
  std::vector<AddedToken> added;
};

Result<std::unique_ptr<Tokenizer>> BuildGpt2Bpe(BpeSource src) {
  const Gpt2Regex& re = Gpt2Regex::Get();
  STRATA_RETURN_IF_ERROR(re.status());
  const std::string& vw = src.vocab_where;

  // Added tokens are raw text: a vocabulary entry with an added token's id takes its bytes from it.
  std::unordered_map<int32_t, const AddedToken*> added_by_id;
  for (const AddedToken& a : src.added) {
    if (!added_by_id.emplace(a.id, &a).second) {
      return Status::Corruption(a.where + ": id " + std::to_string(a.id) + " is already an added token");
    }
  }

  struct Entry {
    int32_t id;
    std::string bytes;
    const std::string* name;  // the token as the file spells it, for messages
  };
  std::vector<Entry> entries;
  entries.reserve(src.vocab.size() + src.added.size());
  std::unordered_map<std::string, int32_t> id_of;  // spelled token -> id, to resolve merges
  id_of.reserve(src.vocab.size());
  std::string bytes;
  for (const auto& [spelled, id] : src.vocab) {
    if (spelled.empty()) return Status::Corruption(vw + ": an empty token (id " + std::to_string(id) + ")");
    if (auto a = added_by_id.find(id); a != added_by_id.end()) {
      if (a->second->content != spelled) {
        return Status::Corruption(a->second->where + ": id " + std::to_string(id) + " is " +
                                  Quote(a->second->content) + " here but " + Quote(spelled) + " in " + vw);
      }
      bytes = spelled;
    } else if (uint32_t bad = 0; !AlphabetToBytes(spelled, &bytes, &bad)) {
      return Status::Corruption(vw + " entry " + Quote(spelled) + ": " + CodePointName(bad) +
                                " is not in GPT-2's byte alphabet");
    }
    entries.push_back({id, bytes, &spelled});
    id_of.emplace(spelled, id);
    added_by_id.erase(id);
  }
  for (const AddedToken& a : src.added) {  // those not in the vocabulary extend it
    if (added_by_id.count(a.id)) entries.push_back({a.id, a.content, &a.content});
  }

  // Ids must be exactly 0..N-1: a gap would be a token Decode could not spell.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.id < b.id; });
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i > 0 && entries[i].id == entries[i - 1].id) {
      return Status::Corruption(vw + ": id " + std::to_string(entries[i].id) + " is used by both " +
                                Quote(*entries[i - 1].name) + " and " + Quote(*entries[i].name));
    }
    if (entries[i].id != static_cast<int32_t>(i)) {
      return Status::Corruption(vw + ": no token has id " + std::to_string(i) + " (ids must run from 0 to " +
                                std::to_string(entries.size() - 1) + " without gaps; found " +
                                std::to_string(entries[i].id) + ")");
    }
  }
  if (entries.empty()) return Status::Corruption(vw + ": the vocabulary is empty");

  Gpt2BpeModel m;
  m.token_offset.reserve(entries.size() + 1);
  for (const auto& e : entries) {
    m.token_offset.push_back(static_cast<uint32_t>(m.token_bytes.size()));
    m.token_bytes += e.bytes;
    if (e.bytes == "<|endoftext|>") m.eot = e.id;
  }
  m.token_offset.push_back(static_cast<uint32_t>(m.token_bytes.size()));

  const ByteAlphabet& alpha = Alphabet();
  for (int b = 0; b < 256; ++b) {
    auto it = id_of.find(alpha.spelling[b]);
    if (it == id_of.end()) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", b);
      return Status::Corruption(vw + ": no token for byte " + hex + " (spelled " + Quote(alpha.spelling[b]) +
                                "); byte-level BPE needs all 256");
    }
    m.byte_token[b] = it->second;
  }

  m.merges.Reserve(src.merges.size());
  for (size_t k = 0; k < src.merges.size(); ++k) {
    const auto& [a, b] = src.merges[k];
    auto ia = id_of.find(a), ib = id_of.find(b), iab = id_of.find(a + b);
    for (auto [it, sym] : {std::pair{ia, &a}, std::pair{ib, &b}}) {
      if (it == id_of.end()) {
        return Status::Corruption(src.merge_where(k) + ": symbol " + Quote(*sym) + " is not in " + vw);
      }
    }
    if (iab == id_of.end()) {
      return Status::Corruption(src.merge_where(k) + ": the merge of " + Quote(a) + " and " + Quote(b) + " (" +
                                Quote(a + b) + ") is not in " + vw);
    }
    if (const MergeRule* had = m.merges.Insert(ia->second, ib->second, {static_cast<int32_t>(k), iab->second})) {
      return Status::Corruption(src.merge_where(k) + ": merge " + Quote(a + " " + b) + " repeats " +
                                src.merge_where(static_cast<size_t>(had->rank)));
    }
  }
  return std::unique_ptr<Tokenizer>(std::make_unique<Gpt2Bpe>(std::move(m), re.code()));
}

// ------------------------------------------------------------------------------------------------
// Files

Result<std::string> ReadFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return Status::InvalidArgument(path + ": a directory, not a file");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound(path + ": no such file");
    return Status::IOError(path + ": cannot open: " + std::strerror(err));
  }
  std::string text;
  char buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f.get())) > 0) text.append(buf, got);
  if (std::ferror(f.get())) return Status::IOError(path + ": read failed: " + std::strerror(errno));
  return text;
}

Result<json> ParseJson(const std::string& path, const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    // Not only parse_error: a number too large for a double is an out_of_range (406).
    // e.what() is "[json.exception.parse_error.101] parse error at line 3, column 7: ..."
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    return Status::Corruption(path + ": not valid JSON: " + what);
  }
}

std::string JsonTypeName(const json& v) { return v.type_name(); }

// A token id: an integer in [0, 2^31 - 1).
std::optional<int32_t> JsonId(const json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u < uint64_t{INT32_MAX}) return static_cast<int32_t>(u);
  } else if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i >= 0 && i < int64_t{INT32_MAX}) return static_cast<int32_t>(i);
  }
  return std::nullopt;
}

// A vocabulary object { "token": id, ... } -> entries; `where` names it in messages.
Status ReadVocab(const json& obj, const std::string& where, std::vector<std::pair<std::string, int32_t>>* out) {
  out->reserve(obj.size());
  for (const auto& [key, value] : obj.items()) {
    const std::string at = where + " entry " + Quote(key);
    if (!value.is_number_integer()) {
      return Status::Corruption(at + ": the id is not an integer (" + JsonTypeName(value) + " " +
                                value.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 32) + ")");
    }
    const std::optional<int32_t> id = JsonId(value);
    if (!id) return Status::Corruption(at + ": id " + value.dump() + " is out of range");
    out->emplace_back(key, *id);
  }
  return Status::Ok();
}

// "a b" -> (a, b); false unless exactly two non-empty symbols separated by one space.
bool SplitMerge(std::string_view line, std::pair<std::string, std::string>* out) {
  const size_t sp = line.find(' ');
  if (sp == std::string_view::npos || sp == 0 || sp + 1 == line.size()) return false;
  if (line.find(' ', sp + 1) != std::string_view::npos) return false;
  *out = {std::string(line.substr(0, sp)), std::string(line.substr(sp + 1))};
  return true;
}

// ------------------------------------------------------------------------------------------------
// Unicode for tokenizer.json: NFC, White_Space, and the regex classes
//
// The tables are the Hugging Face library's own behaviour (lab/peers/make_tokenizers.py reads them
// out of it): its NFC keeps older Unicode data than Python's, and its regex engine (Oniguruma)
// newer data than PCRE2's.

// clang-format off
// Generated by lab/peers/make_tokenizers.py --unicode-tables from tokenizers 0.23.3 and Python 3.11.7's
// unicodedata (Unicode 14.0.0).
// {code point | 1 << 31 when it is a primary composite, first, second (0: a singleton)}
constexpr uint32_t kNfcDecompositions[][3] = {
    {0x800000C0,0x41,0x300},{0x800000C1,0x41,0x301},{0x800000C2,0x41,0x302},{0x800000C3,0x41,0x303},
    {0x800000C4,0x41,0x308},{0x800000C5,0x41,0x30A},{0x800000C7,0x43,0x327},{0x800000C8,0x45,0x300},
    {0x800000C9,0x45,0x301},{0x800000CA,0x45,0x302},{0x800000CB,0x45,0x308},{0x800000CC,0x49,0x300},
    {0x800000CD,0x49,0x301},{0x800000CE,0x49,0x302},{0x800000CF,0x49,0x308},{0x800000D1,0x4E,0x303},
    {0x800000D2,0x4F,0x300},{0x800000D3,0x4F,0x301},{0x800000D4,0x4F,0x302},{0x800000D5,0x4F,0x303},
    {0x800000D6,0x4F,0x308},{0x800000D9,0x55,0x300},{0x800000DA,0x55,0x301},{0x800000DB,0x55,0x302},
    {0x800000DC,0x55,0x308},{0x800000DD,0x59,0x301},{0x800000E0,0x61,0x300},{0x800000E1,0x61,0x301},
    {0x800000E2,0x61,0x302},{0x800000E3,0x61,0x303},{0x800000E4,0x61,0x308},{0x800000E5,0x61,0x30A},
    {0x800000E7,0x63,0x327},{0x800000E8,0x65,0x300},{0x800000E9,0x65,0x301},{0x800000EA,0x65,0x302},
    {0x800000EB,0x65,0x308},{0x800000EC,0x69,0x300},{0x800000ED,0x69,0x301},{0x800000EE,0x69,0x302},
    {0x800000EF,0x69,0x308},{0x800000F1,0x6E,0x303},{0x800000F2,0x6F,0x300},{0x800000F3,0x6F,0x301},
    {0x800000F4,0x6F,0x302},{0x800000F5,0x6F,0x303},{0x800000F6,0x6F,0x308},{0x800000F9,0x75,0x300},
    {0x800000FA,0x75,0x301},{0x800000FB,0x75,0x302},{0x800000FC,0x75,0x308},{0x800000FD,0x79,0x301},
    {0x800000FF,0x79,0x308},{0x80000100,0x41,0x304},{0x80000101,0x61,0x304},{0x80000102,0x41,0x306},
    {0x80000103,0x61,0x306},{0x80000104,0x41,0x328},{0x80000105,0x61,0x328},{0x80000106,0x43,0x301},
    {0x80000107,0x63,0x301},{0x80000108,0x43,0x302},{0x80000109,0x63,0x302},{0x8000010A,0x43,0x307},
    {0x8000010B,0x63,0x307},{0x8000010C,0x43,0x30C},{0x8000010D,0x63,0x30C},{0x8000010E,0x44,0x30C},
    {0x8000010F,0x64,0x30C},{0x80000112,0x45,0x304},{0x80000113,0x65,0x304},{0x80000114,0x45,0x306},
    {0x80000115,0x65,0x306},{0x80000116,0x45,0x307},{0x80000117,0x65,0x307},{0x80000118,0x45,0x328},
    {0x80000119,0x65,0x328},{0x8000011A,0x45,0x30C},{0x8000011B,0x65,0x30C},{0x8000011C,0x47,0x302},
    {0x8000011D,0x67,0x302},{0x8000011E,0x47,0x306},{0x8000011F,0x67,0x306},{0x80000120,0x47,0x307},
    {0x80000121,0x67,0x307},{0x80000122,0x47,0x327},{0x80000123,0x67,0x327},{0x80000124,0x48,0x302},
    {0x80000125,0x68,0x302},{0x80000128,0x49,0x303},{0x80000129,0x69,0x303},{0x8000012A,0x49,0x304},
    {0x8000012B,0x69,0x304},{0x8000012C,0x49,0x306},{0x8000012D,0x69,0x306},{0x8000012E,0x49,0x328},
    {0x8000012F,0x69,0x328},{0x80000130,0x49,0x307},{0x80000134,0x4A,0x302},{0x80000135,0x6A,0x302},
    {0x80000136,0x4B,0x327},{0x80000137,0x6B,0x327},{0x80000139,0x4C,0x301},{0x8000013A,0x6C,0x301},
    {0x8000013B,0x4C,0x327},{0x8000013C,0x6C,0x327},{0x8000013D,0x4C,0x30C},{0x8000013E,0x6C,0x30C},
    {0x80000143,0x4E,0x301},{0x80000144,0x6E,0x301},{0x80000145,0x4E,0x327},{0x80000146,0x6E,0x327},
    {0x80000147,0x4E,0x30C},{0x80000148,0x6E,0x30C},{0x8000014C,0x4F,0x304},{0x8000014D,0x6F,0x304},
    {0x8000014E,0x4F,0x306},{0x8000014F,0x6F,0x306},{0x80000150,0x4F,0x30B},{0x80000151,0x6F,0x30B},
    {0x80000154,0x52,0x301},{0x80000155,0x72,0x301},{0x80000156,0x52,0x327},{0x80000157,0x72,0x327},
    {0x80000158,0x52,0x30C},{0x80000159,0x72,0x30C},{0x8000015A,0x53,0x301},{0x8000015B,0x73,0x301},
    {0x8000015C,0x53,0x302},{0x8000015D,0x73,0x302},{0x8000015E,0x53,0x327},{0x8000015F,0x73,0x327},
    {0x80000160,0x53,0x30C},{0x80000161,0x73,0x30C},{0x80000162,0x54,0x327},{0x80000163,0x74,0x327},
    {0x80000164,0x54,0x30C},{0x80000165,0x74,0x30C},{0x80000168,0x55,0x303},{0x80000169,0x75,0x303},
    {0x8000016A,0x55,0x304},{0x8000016B,0x75,0x304},{0x8000016C,0x55,0x306},{0x8000016D,0x75,0x306},
    {0x8000016E,0x55,0x30A},{0x8000016F,0x75,0x30A},{0x80000170,0x55,0x30B},{0x80000171,0x75,0x30B},
    {0x80000172,0x55,0x328},{0x80000173,0x75,0x328},{0x80000174,0x57,0x302},{0x80000175,0x77,0x302},
    {0x80000176,0x59,0x302},{0x80000177,0x79,0x302},{0x80000178,0x59,0x308},{0x80000179,0x5A,0x301},
    {0x8000017A,0x7A,0x301},{0x8000017B,0x5A,0x307},{0x8000017C,0x7A,0x307},{0x8000017D,0x5A,0x30C},
    {0x8000017E,0x7A,0x30C},{0x800001A0,0x4F,0x31B},{0x800001A1,0x6F,0x31B},{0x800001AF,0x55,0x31B},
    {0x800001B0,0x75,0x31B},{0x800001CD,0x41,0x30C},{0x800001CE,0x61,0x30C},{0x800001CF,0x49,0x30C},
    {0x800001D0,0x69,0x30C},{0x800001D1,0x4F,0x30C},{0x800001D2,0x6F,0x30C},{0x800001D3,0x55,0x30C},
    {0x800001D4,0x75,0x30C},{0x800001D5,0xDC,0x304},{0x800001D6,0xFC,0x304},{0x800001D7,0xDC,0x301},
    {0x800001D8,0xFC,0x301},{0x800001D9,0xDC,0x30C},{0x800001DA,0xFC,0x30C},{0x800001DB,0xDC,0x300},
    {0x800001DC,0xFC,0x300},{0x800001DE,0xC4,0x304},{0x800001DF,0xE4,0x304},{0x800001E0,0x226,0x304},
    {0x800001E1,0x227,0x304},{0x800001E2,0xC6,0x304},{0x800001E3,0xE6,0x304},{0x800001E6,0x47,0x30C},
    {0x800001E7,0x67,0x30C},{0x800001E8,0x4B,0x30C},{0x800001E9,0x6B,0x30C},{0x800001EA,0x4F,0x328},
    {0x800001EB,0x6F,0x328},{0x800001EC,0x1EA,0x304},{0x800001ED,0x1EB,0x304},{0x800001EE,0x1B7,0x30C},
    {0x800001EF,0x292,0x30C},{0x800001F0,0x6A,0x30C},{0x800001F4,0x47,0x301},{0x800001F5,0x67,0x301},
    {0x800001F8,0x4E,0x300},{0x800001F9,0x6E,0x300},{0x800001FA,0xC5,0x301},{0x800001FB,0xE5,0x301},
    {0x800001FC,0xC6,0x301},{0x800001FD,0xE6,0x301},{0x800001FE,0xD8,0x301},{0x800001FF,0xF8,0x301},
    {0x80000200,0x41,0x30F},{0x80000201,0x61,0x30F},{0x80000202,0x41,0x311},{0x80000203,0x61,0x311},
    {0x80000204,0x45,0x30F},{0x80000205,0x65,0x30F},{0x80000206,0x45,0x311},{0x80000207,0x65,0x311},
    {0x80000208,0x49,0x30F},{0x80000209,0x69,0x30F},{0x8000020A,0x49,0x311},{0x8000020B,0x69,0x311},
    {0x8000020C,0x4F,0x30F},{0x8000020D,0x6F,0x30F},{0x8000020E,0x4F,0x311},{0x8000020F,0x6F,0x311},
    {0x80000210,0x52,0x30F},{0x80000211,0x72,0x30F},{0x80000212,0x52,0x311},{0x80000213,0x72,0x311},
    {0x80000214,0x55,0x30F},{0x80000215,0x75,0x30F},{0x80000216,0x55,0x311},{0x80000217,0x75,0x311},
    {0x80000218,0x53,0x326},{0x80000219,0x73,0x326},{0x8000021A,0x54,0x326},{0x8000021B,0x74,0x326},
    {0x8000021E,0x48,0x30C},{0x8000021F,0x68,0x30C},{0x80000226,0x41,0x307},{0x80000227,0x61,0x307},
    {0x80000228,0x45,0x327},{0x80000229,0x65,0x327},{0x8000022A,0xD6,0x304},{0x8000022B,0xF6,0x304},
    {0x8000022C,0xD5,0x304},{0x8000022D,0xF5,0x304},{0x8000022E,0x4F,0x307},{0x8000022F,0x6F,0x307},
    {0x80000230,0x22E,0x304},{0x80000231,0x22F,0x304},{0x80000232,0x59,0x304},{0x80000233,0x79,0x304},
    {0x340,0x300,0},{0x341,0x301,0},{0x343,0x313,0},{0x344,0x308,0x301},
    {0x374,0x2B9,0},{0x37E,0x3B,0},{0x80000385,0xA8,0x301},{0x80000386,0x391,0x301},
    {0x387,0xB7,0},{0x80000388,0x395,0x301},{0x80000389,0x397,0x301},{0x8000038A,0x399,0x301},
    {0x8000038C,0x39F,0x301},{0x8000038E,0x3A5,0x301},{0x8000038F,0x3A9,0x301},{0x80000390,0x3CA,0x301},
    {0x800003AA,0x399,0x308},{0x800003AB,0x3A5,0x308},{0x800003AC,0x3B1,0x301},{0x800003AD,0x3B5,0x301},
    {0x800003AE,0x3B7,0x301},{0x800003AF,0x3B9,0x301},{0x800003B0,0x3CB,0x301},{0x800003CA,0x3B9,0x308},
    {0x800003CB,0x3C5,0x308},{0x800003CC,0x3BF,0x301},{0x800003CD,0x3C5,0x301},{0x800003CE,0x3C9,0x301},
    {0x800003D3,0x3D2,0x301},{0x800003D4,0x3D2,0x308},{0x80000400,0x415,0x300},{0x80000401,0x415,0x308},
    {0x80000403,0x413,0x301},{0x80000407,0x406,0x308},{0x8000040C,0x41A,0x301},{0x8000040D,0x418,0x300},
    {0x8000040E,0x423,0x306},{0x80000419,0x418,0x306},{0x80000439,0x438,0x306},{0x80000450,0x435,0x300},
    {0x80000451,0x435,0x308},{0x80000453,0x433,0x301},{0x80000457,0x456,0x308},{0x8000045C,0x43A,0x301},
    {0x8000045D,0x438,0x300},{0x8000045E,0x443,0x306},{0x80000476,0x474,0x30F},{0x80000477,0x475,0x30F},
    {0x800004C1,0x416,0x306},{0x800004C2,0x436,0x306},{0x800004D0,0x410,0x306},{0x800004D1,0x430,0x306},
    {0x800004D2,0x410,0x308},{0x800004D3,0x430,0x308},{0x800004D6,0x415,0x306},{0x800004D7,0x435,0x306},
    {0x800004DA,0x4D8,0x308},{0x800004DB,0x4D9,0x308},{0x800004DC,0x416,0x308},{0x800004DD,0x436,0x308},
    {0x800004DE,0x417,0x308},{0x800004DF,0x437,0x308},{0x800004E2,0x418,0x304},{0x800004E3,0x438,0x304},
    {0x800004E4,0x418,0x308},{0x800004E5,0x438,0x308},{0x800004E6,0x41E,0x308},{0x800004E7,0x43E,0x308},
    {0x800004EA,0x4E8,0x308},{0x800004EB,0x4E9,0x308},{0x800004EC,0x42D,0x308},{0x800004ED,0x44D,0x308},
    {0x800004EE,0x423,0x304},{0x800004EF,0x443,0x304},{0x800004F0,0x423,0x308},{0x800004F1,0x443,0x308},
    {0x800004F2,0x423,0x30B},{0x800004F3,0x443,0x30B},{0x800004F4,0x427,0x308},{0x800004F5,0x447,0x308},
    {0x800004F8,0x42B,0x308},{0x800004F9,0x44B,0x308},{0x80000622,0x627,0x653},{0x80000623,0x627,0x654},
    {0x80000624,0x648,0x654},{0x80000625,0x627,0x655},{0x80000626,0x64A,0x654},{0x800006C0,0x6D5,0x654},
    {0x800006C2,0x6C1,0x654},{0x800006D3,0x6D2,0x654},{0x80000929,0x928,0x93C},{0x80000931,0x930,0x93C},
    {0x80000934,0x933,0x93C},{0x958,0x915,0x93C},{0x959,0x916,0x93C},{0x95A,0x917,0x93C},
    {0x95B,0x91C,0x93C},{0x95C,0x921,0x93C},{0x95D,0x922,0x93C},{0x95E,0x92B,0x93C},
    {0x95F,0x92F,0x93C},{0x800009CB,0x9C7,0x9BE},{0x800009CC,0x9C7,0x9D7},{0x9DC,0x9A1,0x9BC},
    {0x9DD,0x9A2,0x9BC},{0x9DF,0x9AF,0x9BC},{0xA33,0xA32,0xA3C},{0xA36,0xA38,0xA3C},
    {0xA59,0xA16,0xA3C},{0xA5A,0xA17,0xA3C},{0xA5B,0xA1C,0xA3C},{0xA5E,0xA2B,0xA3C},
    {0x80000B48,0xB47,0xB56},{0x80000B4B,0xB47,0xB3E},{0x80000B4C,0xB47,0xB57},{0xB5C,0xB21,0xB3C},
    {0xB5D,0xB22,0xB3C},{0x80000B94,0xB92,0xBD7},{0x80000BCA,0xBC6,0xBBE},{0x80000BCB,0xBC7,0xBBE},
    {0x80000BCC,0xBC6,0xBD7},{0x80000C48,0xC46,0xC56},{0x80000CC0,0xCBF,0xCD5},{0x80000CC7,0xCC6,0xCD5},
    {0x80000CC8,0xCC6,0xCD6},{0x80000CCA,0xCC6,0xCC2},{0x80000CCB,0xCCA,0xCD5},{0x80000D4A,0xD46,0xD3E},
    {0x80000D4B,0xD47,0xD3E},{0x80000D4C,0xD46,0xD57},{0x80000DDA,0xDD9,0xDCA},{0x80000DDC,0xDD9,0xDCF},
    {0x80000DDD,0xDDC,0xDCA},{0x80000DDE,0xDD9,0xDDF},{0xF43,0xF42,0xFB7},{0xF4D,0xF4C,0xFB7},
    {0xF52,0xF51,0xFB7},{0xF57,0xF56,0xFB7},{0xF5C,0xF5B,0xFB7},{0xF69,0xF40,0xFB5},
    {0xF73,0xF71,0xF72},{0xF75,0xF71,0xF74},{0xF76,0xFB2,0xF80},{0xF78,0xFB3,0xF80},
    {0xF81,0xF71,0xF80},{0xF93,0xF92,0xFB7},{0xF9D,0xF9C,0xFB7},{0xFA2,0xFA1,0xFB7},
    {0xFA7,0xFA6,0xFB7},{0xFAC,0xFAB,0xFB7},{0xFB9,0xF90,0xFB5},{0x80001026,0x1025,0x102E},
    {0x80001B06,0x1B05,0x1B35},{0x80001B08,0x1B07,0x1B35},{0x80001B0A,0x1B09,0x1B35},{0x80001B0C,0x1B0B,0x1B35},
    {0x80001B0E,0x1B0D,0x1B35},{0x80001B12,0x1B11,0x1B35},{0x80001B3B,0x1B3A,0x1B35},{0x80001B3D,0x1B3C,0x1B35},
    {0x80001B40,0x1B3E,0x1B35},{0x80001B41,0x1B3F,0x1B35},{0x80001B43,0x1B42,0x1B35},{0x80001E00,0x41,0x325},
    {0x80001E01,0x61,0x325},{0x80001E02,0x42,0x307},{0x80001E03,0x62,0x307},{0x80001E04,0x42,0x323},
    {0x80001E05,0x62,0x323},{0x80001E06,0x42,0x331},{0x80001E07,0x62,0x331},{0x80001E08,0xC7,0x301},
    {0x80001E09,0xE7,0x301},{0x80001E0A,0x44,0x307},{0x80001E0B,0x64,0x307},{0x80001E0C,0x44,0x323},
    {0x80001E0D,0x64,0x323},{0x80001E0E,0x44,0x331},{0x80001E0F,0x64,0x331},{0x80001E10,0x44,0x327},
    {0x80001E11,0x64,0x327},{0x80001E12,0x44,0x32D},{0x80001E13,0x64,0x32D},{0x80001E14,0x112,0x300},
    {0x80001E15,0x113,0x300},{0x80001E16,0x112,0x301},{0x80001E17,0x113,0x301},{0x80001E18,0x45,0x32D},
    {0x80001E19,0x65,0x32D},{0x80001E1A,0x45,0x330},{0x80001E1B,0x65,0x330},{0x80001E1C,0x228,0x306},
    {0x80001E1D,0x229,0x306},{0x80001E1E,0x46,0x307},{0x80001E1F,0x66,0x307},{0x80001E20,0x47,0x304},
    {0x80001E21,0x67,0x304},{0x80001E22,0x48,0x307},{0x80001E23,0x68,0x307},{0x80001E24,0x48,0x323},
    {0x80001E25,0x68,0x323},{0x80001E26,0x48,0x308},{0x80001E27,0x68,0x308},{0x80001E28,0x48,0x327},
    {0x80001E29,0x68,0x327},{0x80001E2A,0x48,0x32E},{0x80001E2B,0x68,0x32E},{0x80001E2C,0x49,0x330},
    {0x80001E2D,0x69,0x330},{0x80001E2E,0xCF,0x301},{0x80001E2F,0xEF,0x301},{0x80001E30,0x4B,0x301},
    {0x80001E31,0x6B,0x301},{0x80001E32,0x4B,0x323},{0x80001E33,0x6B,0x323},{0x80001E34,0x4B,0x331},
    {0x80001E35,0x6B,0x331},{0x80001E36,0x4C,0x323},{0x80001E37,0x6C,0x323},{0x80001E38,0x1E36,0x304},
    {0x80001E39,0x1E37,0x304},{0x80001E3A,0x4C,0x331},{0x80001E3B,0x6C,0x331},{0x80001E3C,0x4C,0x32D},
    {0x80001E3D,0x6C,0x32D},{0x80001E3E,0x4D,0x301},{0x80001E3F,0x6D,0x301},{0x80001E40,0x4D,0x307},
    {0x80001E41,0x6D,0x307},{0x80001E42,0x4D,0x323},{0x80001E43,0x6D,0x323},{0x80001E44,0x4E,0x307},
    {0x80001E45,0x6E,0x307},{0x80001E46,0x4E,0x323},{0x80001E47,0x6E,0x323},{0x80001E48,0x4E,0x331},
    {0x80001E49,0x6E,0x331},{0x80001E4A,0x4E,0x32D},{0x80001E4B,0x6E,0x32D},{0x80001E4C,0xD5,0x301},
    {0x80001E4D,0xF5,0x301},{0x80001E4E,0xD5,0x308},{0x80001E4F,0xF5,0x308},{0x80001E50,0x14C,0x300},
    {0x80001E51,0x14D,0x300},{0x80001E52,0x14C,0x301},{0x80001E53,0x14D,0x301},{0x80001E54,0x50,0x301},
    {0x80001E55,0x70,0x301},{0x80001E56,0x50,0x307},{0x80001E57,0x70,0x307},{0x80001E58,0x52,0x307},
    {0x80001E59,0x72,0x307},{0x80001E5A,0x52,0x323},{0x80001E5B,0x72,0x323},{0x80001E5C,0x1E5A,0x304},
    {0x80001E5D,0x1E5B,0x304},{0x80001E5E,0x52,0x331},{0x80001E5F,0x72,0x331},{0x80001E60,0x53,0x307},
    {0x80001E61,0x73,0x307},{0x80001E62,0x53,0x323},{0x80001E63,0x73,0x323},{0x80001E64,0x15A,0x307},
    {0x80001E65,0x15B,0x307},{0x80001E66,0x160,0x307},{0x80001E67,0x161,0x307},{0x80001E68,0x1E62,0x307},
    {0x80001E69,0x1E63,0x307},{0x80001E6A,0x54,0x307},{0x80001E6B,0x74,0x307},{0x80001E6C,0x54,0x323},
    {0x80001E6D,0x74,0x323},{0x80001E6E,0x54,0x331},{0x80001E6F,0x74,0x331},{0x80001E70,0x54,0x32D},
    {0x80001E71,0x74,0x32D},{0x80001E72,0x55,0x324},{0x80001E73,0x75,0x324},{0x80001E74,0x55,0x330},
    {0x80001E75,0x75,0x330},{0x80001E76,0x55,0x32D},{0x80001E77,0x75,0x32D},{0x80001E78,0x168,0x301},
    {0x80001E79,0x169,0x301},{0x80001E7A,0x16A,0x308},{0x80001E7B,0x16B,0x308},{0x80001E7C,0x56,0x303},
    {0x80001E7D,0x76,0x303},{0x80001E7E,0x56,0x323},{0x80001E7F,0x76,0x323},{0x80001E80,0x57,0x300},
    {0x80001E81,0x77,0x300},{0x80001E82,0x57,0x301},{0x80001E83,0x77,0x301},{0x80001E84,0x57,0x308},
    {0x80001E85,0x77,0x308},{0x80001E86,0x57,0x307},{0x80001E87,0x77,0x307},{0x80001E88,0x57,0x323},
    {0x80001E89,0x77,0x323},{0x80001E8A,0x58,0x307},{0x80001E8B,0x78,0x307},{0x80001E8C,0x58,0x308},
    {0x80001E8D,0x78,0x308},{0x80001E8E,0x59,0x307},{0x80001E8F,0x79,0x307},{0x80001E90,0x5A,0x302},
    {0x80001E91,0x7A,0x302},{0x80001E92,0x5A,0x323},{0x80001E93,0x7A,0x323},{0x80001E94,0x5A,0x331},
    {0x80001E95,0x7A,0x331},{0x80001E96,0x68,0x331},{0x80001E97,0x74,0x308},{0x80001E98,0x77,0x30A},
    {0x80001E99,0x79,0x30A},{0x80001E9B,0x17F,0x307},{0x80001EA0,0x41,0x323},{0x80001EA1,0x61,0x323},
    {0x80001EA2,0x41,0x309},{0x80001EA3,0x61,0x309},{0x80001EA4,0xC2,0x301},{0x80001EA5,0xE2,0x301},
    {0x80001EA6,0xC2,0x300},{0x80001EA7,0xE2,0x300},{0x80001EA8,0xC2,0x309},{0x80001EA9,0xE2,0x309},
    {0x80001EAA,0xC2,0x303},{0x80001EAB,0xE2,0x303},{0x80001EAC,0x1EA0,0x302},{0x80001EAD,0x1EA1,0x302},
    {0x80001EAE,0x102,0x301},{0x80001EAF,0x103,0x301},{0x80001EB0,0x102,0x300},{0x80001EB1,0x103,0x300},
    {0x80001EB2,0x102,0x309},{0x80001EB3,0x103,0x309},{0x80001EB4,0x102,0x303},{0x80001EB5,0x103,0x303},
    {0x80001EB6,0x1EA0,0x306},{0x80001EB7,0x1EA1,0x306},{0x80001EB8,0x45,0x323},{0x80001EB9,0x65,0x323},
    {0x80001EBA,0x45,0x309},{0x80001EBB,0x65,0x309},{0x80001EBC,0x45,0x303},{0x80001EBD,0x65,0x303},
    {0x80001EBE,0xCA,0x301},{0x80001EBF,0xEA,0x301},{0x80001EC0,0xCA,0x300},{0x80001EC1,0xEA,0x300},
    {0x80001EC2,0xCA,0x309},{0x80001EC3,0xEA,0x309},{0x80001EC4,0xCA,0x303},{0x80001EC5,0xEA,0x303},
    {0x80001EC6,0x1EB8,0x302},{0x80001EC7,0x1EB9,0x302},{0x80001EC8,0x49,0x309},{0x80001EC9,0x69,0x309},
    {0x80001ECA,0x49,0x323},{0x80001ECB,0x69,0x323},{0x80001ECC,0x4F,0x323},{0x80001ECD,0x6F,0x323},
    {0x80001ECE,0x4F,0x309},{0x80001ECF,0x6F,0x309},{0x80001ED0,0xD4,0x301},{0x80001ED1,0xF4,0x301},
    {0x80001ED2,0xD4,0x300},{0x80001ED3,0xF4,0x300},{0x80001ED4,0xD4,0x309},{0x80001ED5,0xF4,0x309},
    {0x80001ED6,0xD4,0x303},{0x80001ED7,0xF4,0x303},{0x80001ED8,0x1ECC,0x302},{0x80001ED9,0x1ECD,0x302},
    {0x80001EDA,0x1A0,0x301},{0x80001EDB,0x1A1,0x301},{0x80001EDC,0x1A0,0x300},{0x80001EDD,0x1A1,0x300},
    {0x80001EDE,0x1A0,0x309},{0x80001EDF,0x1A1,0x309},{0x80001EE0,0x1A0,0x303},{0x80001EE1,0x1A1,0x303},
    {0x80001EE2,0x1A0,0x323},{0x80001EE3,0x1A1,0x323},{0x80001EE4,0x55,0x323},{0x80001EE5,0x75,0x323},
    {0x80001EE6,0x55,0x309},{0x80001EE7,0x75,0x309},{0x80001EE8,0x1AF,0x301},{0x80001EE9,0x1B0,0x301},
    {0x80001EEA,0x1AF,0x300},{0x80001EEB,0x1B0,0x300},{0x80001EEC,0x1AF,0x309},{0x80001EED,0x1B0,0x309},
    {0x80001EEE,0x1AF,0x303},{0x80001EEF,0x1B0,0x303},{0x80001EF0,0x1AF,0x323},{0x80001EF1,0x1B0,0x323},
    {0x80001EF2,0x59,0x300},{0x80001EF3,0x79,0x300},{0x80001EF4,0x59,0x323},{0x80001EF5,0x79,0x323},
    {0x80001EF6,0x59,0x309},{0x80001EF7,0x79,0x309},{0x80001EF8,0x59,0x303},{0x80001EF9,0x79,0x303},
    {0x80001F00,0x3B1,0x313},{0x80001F01,0x3B1,0x314},{0x80001F02,0x1F00,0x300},{0x80001F03,0x1F01,0x300},
    {0x80001F04,0x1F00,0x301},{0x80001F05,0x1F01,0x301},{0x80001F06,0x1F00,0x342},{0x80001F07,0x1F01,0x342},
    {0x80001F08,0x391,0x313},{0x80001F09,0x391,0x314},{0x80001F0A,0x1F08,0x300},{0x80001F0B,0x1F09,0x300},
    {0x80001F0C,0x1F08,0x301},{0x80001F0D,0x1F09,0x301},{0x80001F0E,0x1F08,0x342},{0x80001F0F,0x1F09,0x342},
    {0x80001F10,0x3B5,0x313},{0x80001F11,0x3B5,0x314},{0x80001F12,0x1F10,0x300},{0x80001F13,0x1F11,0x300},
    {0x80001F14,0x1F10,0x301},{0x80001F15,0x1F11,0x301},{0x80001F18,0x395,0x313},{0x80001F19,0x395,0x314},
    {0x80001F1A,0x1F18,0x300},{0x80001F1B,0x1F19,0x300},{0x80001F1C,0x1F18,0x301},{0x80001F1D,0x1F19,0x301},
    {0x80001F20,0x3B7,0x313},{0x80001F21,0x3B7,0x314},{0x80001F22,0x1F20,0x300},{0x80001F23,0x1F21,0x300},
    {0x80001F24,0x1F20,0x301},{0x80001F25,0x1F21,0x301},{0x80001F26,0x1F20,0x342},{0x80001F27,0x1F21,0x342},
    {0x80001F28,0x397,0x313},{0x80001F29,0x397,0x314},{0x80001F2A,0x1F28,0x300},{0x80001F2B,0x1F29,0x300},
    {0x80001F2C,0x1F28,0x301},{0x80001F2D,0x1F29,0x301},{0x80001F2E,0x1F28,0x342},{0x80001F2F,0x1F29,0x342},
    {0x80001F30,0x3B9,0x313},{0x80001F31,0x3B9,0x314},{0x80001F32,0x1F30,0x300},{0x80001F33,0x1F31,0x300},
    {0x80001F34,0x1F30,0x301},{0x80001F35,0x1F31,0x301},{0x80001F36,0x1F30,0x342},{0x80001F37,0x1F31,0x342},
    {0x80001F38,0x399,0x313},{0x80001F39,0x399,0x314},{0x80001F3A,0x1F38,0x300},{0x80001F3B,0x1F39,0x300},
    {0x80001F3C,0x1F38,0x301},{0x80001F3D,0x1F39,0x301},{0x80001F3E,0x1F38,0x342},{0x80001F3F,0x1F39,0x342},
    {0x80001F40,0x3BF,0x313},{0x80001F41,0x3BF,0x314},{0x80001F42,0x1F40,0x300},{0x80001F43,0x1F41,0x300},
    {0x80001F44,0x1F40,0x301},{0x80001F45,0x1F41,0x301},{0x80001F48,0x39F,0x313},{0x80001F49,0x39F,0x314},
    {0x80001F4A,0x1F48,0x300},{0x80001F4B,0x1F49,0x300},{0x80001F4C,0x1F48,0x301},{0x80001F4D,0x1F49,0x301},
    {0x80001F50,0x3C5,0x313},{0x80001F51,0x3C5,0x314},{0x80001F52,0x1F50,0x300},{0x80001F53,0x1F51,0x300},
    {0x80001F54,0x1F50,0x301},{0x80001F55,0x1F51,0x301},{0x80001F56,0x1F50,0x342},{0x80001F57,0x1F51,0x342},
    {0x80001F59,0x3A5,0x314},{0x80001F5B,0x1F59,0x300},{0x80001F5D,0x1F59,0x301},{0x80001F5F,0x1F59,0x342},
    {0x80001F60,0x3C9,0x313},{0x80001F61,0x3C9,0x314},{0x80001F62,0x1F60,0x300},{0x80001F63,0x1F61,0x300},
    {0x80001F64,0x1F60,0x301},{0x80001F65,0x1F61,0x301},{0x80001F66,0x1F60,0x342},{0x80001F67,0x1F61,0x342},
    {0x80001F68,0x3A9,0x313},{0x80001F69,0x3A9,0x314},{0x80001F6A,0x1F68,0x300},{0x80001F6B,0x1F69,0x300},
    {0x80001F6C,0x1F68,0x301},{0x80001F6D,0x1F69,0x301},{0x80001F6E,0x1F68,0x342},{0x80001F6F,0x1F69,0x342},
    {0x80001F70,0x3B1,0x300},{0x1F71,0x3AC,0},{0x80001F72,0x3B5,0x300},{0x1F73,0x3AD,0},
    {0x80001F74,0x3B7,0x300},{0x1F75,0x3AE,0},{0x80001F76,0x3B9,0x300},{0x1F77,0x3AF,0},
    {0x80001F78,0x3BF,0x300},{0x1F79,0x3CC,0},{0x80001F7A,0x3C5,0x300},{0x1F7B,0x3CD,0},
    {0x80001F7C,0x3C9,0x300},{0x1F7D,0x3CE,0},{0x80001F80,0x1F00,0x345},{0x80001F81,0x1F01,0x345},
    {0x80001F82,0x1F02,0x345},{0x80001F83,0x1F03,0x345},{0x80001F84,0x1F04,0x345},{0x80001F85,0x1F05,0x345},
    {0x80001F86,0x1F06,0x345},{0x80001F87,0x1F07,0x345},{0x80001F88,0x1F08,0x345},{0x80001F89,0x1F09,0x345},
    {0x80001F8A,0x1F0A,0x345},{0x80001F8B,0x1F0B,0x345},{0x80001F8C,0x1F0C,0x345},{0x80001F8D,0x1F0D,0x345},
    {0x80001F8E,0x1F0E,0x345},{0x80001F8F,0x1F0F,0x345},{0x80001F90,0x1F20,0x345},{0x80001F91,0x1F21,0x345},
    {0x80001F92,0x1F22,0x345},{0x80001F93,0x1F23,0x345},{0x80001F94,0x1F24,0x345},{0x80001F95,0x1F25,0x345},
    {0x80001F96,0x1F26,0x345},{0x80001F97,0x1F27,0x345},{0x80001F98,0x1F28,0x345},{0x80001F99,0x1F29,0x345},
    {0x80001F9A,0x1F2A,0x345},{0x80001F9B,0x1F2B,0x345},{0x80001F9C,0x1F2C,0x345},{0x80001F9D,0x1F2D,0x345},
    {0x80001F9E,0x1F2E,0x345},{0x80001F9F,0x1F2F,0x345},{0x80001FA0,0x1F60,0x345},{0x80001FA1,0x1F61,0x345},
    {0x80001FA2,0x1F62,0x345},{0x80001FA3,0x1F63,0x345},{0x80001FA4,0x1F64,0x345},{0x80001FA5,0x1F65,0x345},
    {0x80001FA6,0x1F66,0x345},{0x80001FA7,0x1F67,0x345},{0x80001FA8,0x1F68,0x345},{0x80001FA9,0x1F69,0x345},
    {0x80001FAA,0x1F6A,0x345},{0x80001FAB,0x1F6B,0x345},{0x80001FAC,0x1F6C,0x345},{0x80001FAD,0x1F6D,0x345},
    {0x80001FAE,0x1F6E,0x345},{0x80001FAF,0x1F6F,0x345},{0x80001FB0,0x3B1,0x306},{0x80001FB1,0x3B1,0x304},
    {0x80001FB2,0x1F70,0x345},{0x80001FB3,0x3B1,0x345},{0x80001FB4,0x3AC,0x345},{0x80001FB6,0x3B1,0x342},
    {0x80001FB7,0x1FB6,0x345},{0x80001FB8,0x391,0x306},{0x80001FB9,0x391,0x304},{0x80001FBA,0x391,0x300},
    {0x1FBB,0x386,0},{0x80001FBC,0x391,0x345},{0x1FBE,0x3B9,0},{0x80001FC1,0xA8,0x342},
    {0x80001FC2,0x1F74,0x345},{0x80001FC3,0x3B7,0x345},{0x80001FC4,0x3AE,0x345},{0x80001FC6,0x3B7,0x342},
    {0x80001FC7,0x1FC6,0x345},{0x80001FC8,0x395,0x300},{0x1FC9,0x388,0},{0x80001FCA,0x397,0x300},
    {0x1FCB,0x389,0},{0x80001FCC,0x397,0x345},{0x80001FCD,0x1FBF,0x300},{0x80001FCE,0x1FBF,0x301},
    {0x80001FCF,0x1FBF,0x342},{0x80001FD0,0x3B9,0x306},{0x80001FD1,0x3B9,0x304},{0x80001FD2,0x3CA,0x300},
    {0x1FD3,0x390,0},{0x80001FD6,0x3B9,0x342},{0x80001FD7,0x3CA,0x342},{0x80001FD8,0x399,0x306},
    {0x80001FD9,0x399,0x304},{0x80001FDA,0x399,0x300},{0x1FDB,0x38A,0},{0x80001FDD,0x1FFE,0x300},
    {0x80001FDE,0x1FFE,0x301},{0x80001FDF,0x1FFE,0x342},{0x80001FE0,0x3C5,0x306},{0x80001FE1,0x3C5,0x304},
    {0x80001FE2,0x3CB,0x300},{0x1FE3,0x3B0,0},{0x80001FE4,0x3C1,0x313},{0x80001FE5,0x3C1,0x314},
    {0x80001FE6,0x3C5,0x342},{0x80001FE7,0x3CB,0x342},{0x80001FE8,0x3A5,0x306},{0x80001FE9,0x3A5,0x304},
    {0x80001FEA,0x3A5,0x300},{0x1FEB,0x38E,0},{0x80001FEC,0x3A1,0x314},{0x80001FED,0xA8,0x300},
    {0x1FEE,0x385,0},{0x1FEF,0x60,0},{0x80001FF2,0x1F7C,0x345},{0x80001FF3,0x3C9,0x345},
    {0x80001FF4,0x3CE,0x345},{0x80001FF6,0x3C9,0x342},{0x80001FF7,0x1FF6,0x345},{0x80001FF8,0x39F,0x300},
    {0x1FF9,0x38C,0},{0x80001FFA,0x3A9,0x300},{0x1FFB,0x38F,0},{0x80001FFC,0x3A9,0x345},
    {0x1FFD,0xB4,0},{0x2000,0x2002,0},{0x2001,0x2003,0},{0x2126,0x3A9,0},
    {0x212A,0x4B,0},{0x212B,0xC5,0},{0x8000219A,0x2190,0x338},{0x8000219B,0x2192,0x338},
    {0x800021AE,0x2194,0x338},{0x800021CD,0x21D0,0x338},{0x800021CE,0x21D4,0x338},{0x800021CF,0x21D2,0x338},
    {0x80002204,0x2203,0x338},{0x80002209,0x2208,0x338},{0x8000220C,0x220B,0x338},{0x80002224,0x2223,0x338},
    {0x80002226,0x2225,0x338},{0x80002241,0x223C,0x338},{0x80002244,0x2243,0x338},{0x80002247,0x2245,0x338},
    {0x80002249,0x2248,0x338},{0x80002260,0x3D,0x338},{0x80002262,0x2261,0x338},{0x8000226D,0x224D,0x338},
    {0x8000226E,0x3C,0x338},{0x8000226F,0x3E,0x338},{0x80002270,0x2264,0x338},{0x80002271,0x2265,0x338},
    {0x80002274,0x2272,0x338},{0x80002275,0x2273,0x338},{0x80002278,0x2276,0x338},{0x80002279,0x2277,0x338},
    {0x80002280,0x227A,0x338},{0x80002281,0x227B,0x338},{0x80002284,0x2282,0x338},{0x80002285,0x2283,0x338},
    {0x80002288,0x2286,0x338},{0x80002289,0x2287,0x338},{0x800022AC,0x22A2,0x338},{0x800022AD,0x22A8,0x338},
    {0x800022AE,0x22A9,0x338},{0x800022AF,0x22AB,0x338},{0x800022E0,0x227C,0x338},{0x800022E1,0x227D,0x338},
    {0x800022E2,0x2291,0x338},{0x800022E3,0x2292,0x338},{0x800022EA,0x22B2,0x338},{0x800022EB,0x22B3,0x338},
    {0x800022EC,0x22B4,0x338},{0x800022ED,0x22B5,0x338},{0x2329,0x3008,0},{0x232A,0x3009,0},
    {0x2ADC,0x2ADD,0x338},{0x8000304C,0x304B,0x3099},{0x8000304E,0x304D,0x3099},{0x80003050,0x304F,0x3099},
    {0x80003052,0x3051,0x3099},{0x80003054,0x3053,0x3099},{0x80003056,0x3055,0x3099},{0x80003058,0x3057,0x3099},
    {0x8000305A,0x3059,0x3099},{0x8000305C,0x305B,0x3099},{0x8000305E,0x305D,0x3099},{0x80003060,0x305F,0x3099},
    {0x80003062,0x3061,0x3099},{0x80003065,0x3064,0x3099},{0x80003067,0x3066,0x3099},{0x80003069,0x3068,0x3099},
    {0x80003070,0x306F,0x3099},{0x80003071,0x306F,0x309A},{0x80003073,0x3072,0x3099},{0x80003074,0x3072,0x309A},
    {0x80003076,0x3075,0x3099},{0x80003077,0x3075,0x309A},{0x80003079,0x3078,0x3099},{0x8000307A,0x3078,0x309A},
    {0x8000307C,0x307B,0x3099},{0x8000307D,0x307B,0x309A},{0x80003094,0x3046,0x3099},{0x8000309E,0x309D,0x3099},
    {0x800030AC,0x30AB,0x3099},{0x800030AE,0x30AD,0x3099},{0x800030B0,0x30AF,0x3099},{0x800030B2,0x30B1,0x3099},
    {0x800030B4,0x30B3,0x3099},{0x800030B6,0x30B5,0x3099},{0x800030B8,0x30B7,0x3099},{0x800030BA,0x30B9,0x3099},
    {0x800030BC,0x30BB,0x3099},{0x800030BE,0x30BD,0x3099},{0x800030C0,0x30BF,0x3099},{0x800030C2,0x30C1,0x3099},
    {0x800030C5,0x30C4,0x3099},{0x800030C7,0x30C6,0x3099},{0x800030C9,0x30C8,0x3099},{0x800030D0,0x30CF,0x3099},
    {0x800030D1,0x30CF,0x309A},{0x800030D3,0x30D2,0x3099},{0x800030D4,0x30D2,0x309A},{0x800030D6,0x30D5,0x3099},
    {0x800030D7,0x30D5,0x309A},{0x800030D9,0x30D8,0x3099},{0x800030DA,0x30D8,0x309A},{0x800030DC,0x30DB,0x3099},
    {0x800030DD,0x30DB,0x309A},{0x800030F4,0x30A6,0x3099},{0x800030F7,0x30EF,0x3099},{0x800030F8,0x30F0,0x3099},
    {0x800030F9,0x30F1,0x3099},{0x800030FA,0x30F2,0x3099},{0x800030FE,0x30FD,0x3099},{0xF900,0x8C48,0},
    {0xF901,0x66F4,0},{0xF902,0x8ECA,0},{0xF903,0x8CC8,0},{0xF904,0x6ED1,0},
    {0xF905,0x4E32,0},{0xF906,0x53E5,0},{0xF907,0x9F9C,0},{0xF908,0x9F9C,0},
    {0xF909,0x5951,0},{0xF90A,0x91D1,0},{0xF90B,0x5587,0},{0xF90C,0x5948,0},
    {0xF90D,0x61F6,0},{0xF90E,0x7669,0},{0xF90F,0x7F85,0},{0xF910,0x863F,0},
    {0xF911,0x87BA,0},{0xF912,0x88F8,0},{0xF913,0x908F,0},{0xF914,0x6A02,0},
    {0xF915,0x6D1B,0},{0xF916,0x70D9,0},{0xF917,0x73DE,0},{0xF918,0x843D,0},
    {0xF919,0x916A,0},{0xF91A,0x99F1,0},{0xF91B,0x4E82,0},{0xF91C,0x5375,0},
    {0xF91D,0x6B04,0},{0xF91E,0x721B,0},{0xF91F,0x862D,0},{0xF920,0x9E1E,0},
    {0xF921,0x5D50,0},{0xF922,0x6FEB,0},{0xF923,0x85CD,0},{0xF924,0x8964,0},
    {0xF925,0x62C9,0},{0xF926,0x81D8,0},{0xF927,0x881F,0},{0xF928,0x5ECA,0},
    {0xF929,0x6717,0},{0xF92A,0x6D6A,0},{0xF92B,0x72FC,0},{0xF92C,0x90CE,0},
    {0xF92D,0x4F86,0},{0xF92E,0x51B7,0},{0xF92F,0x52DE,0},{0xF930,0x64C4,0},
    {0xF931,0x6AD3,0},{0xF932,0x7210,0},{0xF933,0x76E7,0},{0xF934,0x8001,0},
    {0xF935,0x8606,0},{0xF936,0x865C,0},{0xF937,0x8DEF,0},{0xF938,0x9732,0},
    {0xF939,0x9B6F,0},{0xF93A,0x9DFA,0},{0xF93B,0x788C,0},{0xF93C,0x797F,0},
    {0xF93D,0x7DA0,0},{0xF93E,0x83C9,0},{0xF93F,0x9304,0},{0xF940,0x9E7F,0},
    {0xF941,0x8AD6,0},{0xF942,0x58DF,0},{0xF943,0x5F04,0},{0xF944,0x7C60,0},
    {0xF945,0x807E,0},{0xF946,0x7262,0},{0xF947,0x78CA,0},{0xF948,0x8CC2,0},
    {0xF949,0x96F7,0},{0xF94A,0x58D8,0},{0xF94B,0x5C62,0},{0xF94C,0x6A13,0},
    {0xF94D,0x6DDA,0},{0xF94E,0x6F0F,0},{0xF94F,0x7D2F,0},{0xF950,0x7E37,0},
    {0xF951,0x964B,0},{0xF952,0x52D2,0},{0xF953,0x808B,0},{0xF954,0x51DC,0},
    {0xF955,0x51CC,0},{0xF956,0x7A1C,0},{0xF957,0x7DBE,0},{0xF958,0x83F1,0},
    {0xF959,0x9675,0},{0xF95A,0x8B80,0},{0xF95B,0x62CF,0},{0xF95C,0x6A02,0},
    {0xF95D,0x8AFE,0},{0xF95E,0x4E39,0},{0xF95F,0x5BE7,0},{0xF960,0x6012,0},
    {0xF961,0x7387,0},{0xF962,0x7570,0},{0xF963,0x5317,0},{0xF964,0x78FB,0},
    {0xF965,0x4FBF,0},{0xF966,0x5FA9,0},{0xF967,0x4E0D,0},{0xF968,0x6CCC,0},
    {0xF969,0x6578,0},{0xF96A,0x7D22,0},{0xF96B,0x53C3,0},{0xF96C,0x585E,0},
    {0xF96D,0x7701,0},{0xF96E,0x8449,0},{0xF96F,0x8AAA,0},{0xF970,0x6BBA,0},
    {0xF971,0x8FB0,0},{0xF972,0x6C88,0},{0xF973,0x62FE,0},{0xF974,0x82E5,0},
    {0xF975,0x63A0,0},{0xF976,0x7565,0},{0xF977,0x4EAE,0},{0xF978,0x5169,0},
    {0xF979,0x51C9,0},{0xF97A,0x6881,0},{0xF97B,0x7CE7,0},{0xF97C,0x826F,0},
    {0xF97D,0x8AD2,0},{0xF97E,0x91CF,0},{0xF97F,0x52F5,0},{0xF980,0x5442,0},
    {0xF981,0x5973,0},{0xF982,0x5EEC,0},{0xF983,0x65C5,0},{0xF984,0x6FFE,0},
    {0xF985,0x792A,0},{0xF986,0x95AD,0},{0xF987,0x9A6A,0},{0xF988,0x9E97,0},
    {0xF989,0x9ECE,0},{0xF98A,0x529B,0},{0xF98B,0x66C6,0},{0xF98C,0x6B77,0},
    {0xF98D,0x8F62,0},{0xF98E,0x5E74,0},{0xF98F,0x6190,0},{0xF990,0x6200,0},
    {0xF991,0x649A,0},{0xF992,0x6F23,0},{0xF993,0x7149,0},{0xF994,0x7489,0},
    {0xF995,0x79CA,0},{0xF996,0x7DF4,0},{0xF997,0x806F,0},{0xF998,0x8F26,0},
    {0xF999,0x84EE,0},{0xF99A,0x9023,0},{0xF99B,0x934A,0},{0xF99C,0x5217,0},
    {0xF99D,0x52A3,0},{0xF99E,0x54BD,0},{0xF99F,0x70C8,0},{0xF9A0,0x88C2,0},
    {0xF9A1,0x8AAA,0},{0xF9A2,0x5EC9,0},{0xF9A3,0x5FF5,0},{0xF9A4,0x637B,0},
    {0xF9A5,0x6BAE,0},{0xF9A6,0x7C3E,0},{0xF9A7,0x7375,0},{0xF9A8,0x4EE4,0},
    {0xF9A9,0x56F9,0},{0xF9AA,0x5BE7,0},{0xF9AB,0x5DBA,0},{0xF9AC,0x601C,0},
    {0xF9AD,0x73B2,0},{0xF9AE,0x7469,0},{0xF9AF,0x7F9A,0},{0xF9B0,0x8046,0},
    {0xF9B1,0x9234,0},{0xF9B2,0x96F6,0},{0xF9B3,0x9748,0},{0xF9B4,0x9818,0},
    {0xF9B5,0x4F8B,0},{0xF9B6,0x79AE,0},{0xF9B7,0x91B4,0},{0xF9B8,0x96B8,0},
    {0xF9B9,0x60E1,0},{0xF9BA,0x4E86,0},{0xF9BB,0x50DA,0},{0xF9BC,0x5BEE,0},
    {0xF9BD,0x5C3F,0},{0xF9BE,0x6599,0},{0xF9BF,0x6A02,0},{0xF9C0,0x71CE,0},
    {0xF9C1,0x7642,0},{0xF9C2,0x84FC,0},{0xF9C3,0x907C,0},{0xF9C4,0x9F8D,0},
    {0xF9C5,0x6688,0},{0xF9C6,0x962E,0},{0xF9C7,0x5289,0},{0xF9C8,0x677B,0},
    {0xF9C9,0x67F3,0},{0xF9CA,0x6D41,0},{0xF9CB,0x6E9C,0},{0xF9CC,0x7409,0},
    {0xF9CD,0x7559,0},{0xF9CE,0x786B,0},{0xF9CF,0x7D10,0},{0xF9D0,0x985E,0},
    {0xF9D1,0x516D,0},{0xF9D2,0x622E,0},{0xF9D3,0x9678,0},{0xF9D4,0x502B,0},
    {0xF9D5,0x5D19,0},{0xF9D6,0x6DEA,0},{0xF9D7,0x8F2A,0},{0xF9D8,0x5F8B,0},
    {0xF9D9,0x6144,0},{0xF9DA,0x6817,0},{0xF9DB,0x7387,0},{0xF9DC,0x9686,0},
    {0xF9DD,0x5229,0},{0xF9DE,0x540F,0},{0xF9DF,0x5C65,0},{0xF9E0,0x6613,0},
    {0xF9E1,0x674E,0},{0xF9E2,0x68A8,0},{0xF9E3,0x6CE5,0},{0xF9E4,0x7406,0},
    {0xF9E5,0x75E2,0},{0xF9E6,0x7F79,0},{0xF9E7,0x88CF,0},{0xF9E8,0x88E1,0},
    {0xF9E9,0x91CC,0},{0xF9EA,0x96E2,0},{0xF9EB,0x533F,0},{0xF9EC,0x6EBA,0},
    {0xF9ED,0x541D,0},{0xF9EE,0x71D0,0},{0xF9EF,0x7498,0},{0xF9F0,0x85FA,0},
    {0xF9F1,0x96A3,0},{0xF9F2,0x9C57,0},{0xF9F3,0x9E9F,0},{0xF9F4,0x6797,0},
    {0xF9F5,0x6DCB,0},{0xF9F6,0x81E8,0},{0xF9F7,0x7ACB,0},{0xF9F8,0x7B20,0},
    {0xF9F9,0x7C92,0},{0xF9FA,0x72C0,0},{0xF9FB,0x7099,0},{0xF9FC,0x8B58,0},
    {0xF9FD,0x4EC0,0},{0xF9FE,0x8336,0},{0xF9FF,0x523A,0},{0xFA00,0x5207,0},
    {0xFA01,0x5EA6,0},{0xFA02,0x62D3,0},{0xFA03,0x7CD6,0},{0xFA04,0x5B85,0},
    {0xFA05,0x6D1E,0},{0xFA06,0x66B4,0},{0xFA07,0x8F3B,0},{0xFA08,0x884C,0},
    {0xFA09,0x964D,0},{0xFA0A,0x898B,0},{0xFA0B,0x5ED3,0},{0xFA0C,0x5140,0},
    {0xFA0D,0x55C0,0},{0xFA10,0x585A,0},{0xFA12,0x6674,0},{0xFA15,0x51DE,0},
    {0xFA16,0x732A,0},{0xFA17,0x76CA,0},{0xFA18,0x793C,0},{0xFA19,0x795E,0},
    {0xFA1A,0x7965,0},{0xFA1B,0x798F,0},{0xFA1C,0x9756,0},{0xFA1D,0x7CBE,0},
    {0xFA1E,0x7FBD,0},{0xFA20,0x8612,0},{0xFA22,0x8AF8,0},{0xFA25,0x9038,0},
    {0xFA26,0x90FD,0},{0xFA2A,0x98EF,0},{0xFA2B,0x98FC,0},{0xFA2C,0x9928,0},
    {0xFA2D,0x9DB4,0},{0xFA2E,0x90DE,0},{0xFA2F,0x96B7,0},{0xFA30,0x4FAE,0},
    {0xFA31,0x50E7,0},{0xFA32,0x514D,0},{0xFA33,0x52C9,0},{0xFA34,0x52E4,0},
    {0xFA35,0x5351,0},{0xFA36,0x559D,0},{0xFA37,0x5606,0},{0xFA38,0x5668,0},
    {0xFA39,0x5840,0},{0xFA3A,0x58A8,0},{0xFA3B,0x5C64,0},{0xFA3C,0x5C6E,0},
    {0xFA3D,0x6094,0},{0xFA3E,0x6168,0},{0xFA3F,0x618E,0},{0xFA40,0x61F2,0},
    {0xFA41,0x654F,0},{0xFA42,0x65E2,0},{0xFA43,0x6691,0},{0xFA44,0x6885,0},
    {0xFA45,0x6D77,0},{0xFA46,0x6E1A,0},{0xFA47,0x6F22,0},{0xFA48,0x716E,0},
    {0xFA49,0x722B,0},{0xFA4A,0x7422,0},{0xFA4B,0x7891,0},{0xFA4C,0x793E,0},
    {0xFA4D,0x7949,0},{0xFA4E,0x7948,0},{0xFA4F,0x7950,0},{0xFA50,0x7956,0},
    {0xFA51,0x795D,0},{0xFA52,0x798D,0},{0xFA53,0x798E,0},{0xFA54,0x7A40,0},
    {0xFA55,0x7A81,0},{0xFA56,0x7BC0,0},{0xFA57,0x7DF4,0},{0xFA58,0x7E09,0},
    {0xFA59,0x7E41,0},{0xFA5A,0x7F72,0},{0xFA5B,0x8005,0},{0xFA5C,0x81ED,0},
    {0xFA5D,0x8279,0},{0xFA5E,0x8279,0},{0xFA5F,0x8457,0},{0xFA60,0x8910,0},
    {0xFA61,0x8996,0},{0xFA62,0x8B01,0},{0xFA63,0x8B39,0},{0xFA64,0x8CD3,0},
    {0xFA65,0x8D08,0},{0xFA66,0x8FB6,0},{0xFA67,0x9038,0},{0xFA68,0x96E3,0},
    {0xFA69,0x97FF,0},{0xFA6A,0x983B,0},{0xFA6B,0x6075,0},{0xFA6C,0x242EE,0},
    {0xFA6D,0x8218,0},{0xFA70,0x4E26,0},{0xFA71,0x51B5,0},{0xFA72,0x5168,0},
    {0xFA73,0x4F80,0},{0xFA74,0x5145,0},{0xFA75,0x5180,0},{0xFA76,0x52C7,0},
    {0xFA77,0x52FA,0},{0xFA78,0x559D,0},{0xFA79,0x5555,0},{0xFA7A,0x5599,0},
    {0xFA7B,0x55E2,0},{0xFA7C,0x585A,0},{0xFA7D,0x58B3,0},{0xFA7E,0x5944,0},
    {0xFA7F,0x5954,0},{0xFA80,0x5A62,0},{0xFA81,0x5B28,0},{0xFA82,0x5ED2,0},
    {0xFA83,0x5ED9,0},{0xFA84,0x5F69,0},{0xFA85,0x5FAD,0},{0xFA86,0x60D8,0},
    {0xFA87,0x614E,0},{0xFA88,0x6108,0},{0xFA89,0x618E,0},{0xFA8A,0x6160,0},
    {0xFA8B,0x61F2,0},{0xFA8C,0x6234,0},{0xFA8D,0x63C4,0},{0xFA8E,0x641C,0},
    {0xFA8F,0x6452,0},{0xFA90,0x6556,0},{0xFA91,0x6674,0},{0xFA92,0x6717,0},
    {0xFA93,0x671B,0},{0xFA94,0x6756,0},{0xFA95,0x6B79,0},{0xFA96,0x6BBA,0},
    {0xFA97,0x6D41,0},{0xFA98,0x6EDB,0},{0xFA99,0x6ECB,0},{0xFA9A,0x6F22,0},
    {0xFA9B,0x701E,0},{0xFA9C,0x716E,0},{0xFA9D,0x77A7,0},{0xFA9E,0x7235,0},
    {0xFA9F,0x72AF,0},{0xFAA0,0x732A,0},{0xFAA1,0x7471,0},{0xFAA2,0x7506,0},
    {0xFAA3,0x753B,0},{0xFAA4,0x761D,0},{0xFAA5,0x761F,0},{0xFAA6,0x76CA,0},
    {0xFAA7,0x76DB,0},{0xFAA8,0x76F4,0},{0xFAA9,0x774A,0},{0xFAAA,0x7740,0},
    {0xFAAB,0x78CC,0},{0xFAAC,0x7AB1,0},{0xFAAD,0x7BC0,0},{0xFAAE,0x7C7B,0},
    {0xFAAF,0x7D5B,0},{0xFAB0,0x7DF4,0},{0xFAB1,0x7F3E,0},{0xFAB2,0x8005,0},
    {0xFAB3,0x8352,0},{0xFAB4,0x83EF,0},{0xFAB5,0x8779,0},{0xFAB6,0x8941,0},
    {0xFAB7,0x8986,0},{0xFAB8,0x8996,0},{0xFAB9,0x8ABF,0},{0xFABA,0x8AF8,0},
    {0xFABB,0x8ACB,0},{0xFABC,0x8B01,0},{0xFABD,0x8AFE,0},{0xFABE,0x8AED,0},
    {0xFABF,0x8B39,0},{0xFAC0,0x8B8A,0},{0xFAC1,0x8D08,0},{0xFAC2,0x8F38,0},
    {0xFAC3,0x9072,0},{0xFAC4,0x9199,0},{0xFAC5,0x9276,0},{0xFAC6,0x967C,0},
    {0xFAC7,0x96E3,0},{0xFAC8,0x9756,0},{0xFAC9,0x97DB,0},{0xFACA,0x97FF,0},
    {0xFACB,0x980B,0},{0xFACC,0x983B,0},{0xFACD,0x9B12,0},{0xFACE,0x9F9C,0},
    {0xFACF,0x2284A,0},{0xFAD0,0x22844,0},{0xFAD1,0x233D5,0},{0xFAD2,0x3B9D,0},
    {0xFAD3,0x4018,0},{0xFAD4,0x4039,0},{0xFAD5,0x25249,0},{0xFAD6,0x25CD0,0},
    {0xFAD7,0x27ED3,0},{0xFAD8,0x9F43,0},{0xFAD9,0x9F8E,0},{0xFB1D,0x5D9,0x5B4},
    {0xFB1F,0x5F2,0x5B7},{0xFB2A,0x5E9,0x5C1},{0xFB2B,0x5E9,0x5C2},{0xFB2C,0xFB49,0x5C1},
    {0xFB2D,0xFB49,0x5C2},{0xFB2E,0x5D0,0x5B7},{0xFB2F,0x5D0,0x5B8},{0xFB30,0x5D0,0x5BC},
    {0xFB31,0x5D1,0x5BC},{0xFB32,0x5D2,0x5BC},{0xFB33,0x5D3,0x5BC},{0xFB34,0x5D4,0x5BC},
    {0xFB35,0x5D5,0x5BC},{0xFB36,0x5D6,0x5BC},{0xFB38,0x5D8,0x5BC},{0xFB39,0x5D9,0x5BC},
    {0xFB3A,0x5DA,0x5BC},{0xFB3B,0x5DB,0x5BC},{0xFB3C,0x5DC,0x5BC},{0xFB3E,0x5DE,0x5BC},
    {0xFB40,0x5E0,0x5BC},{0xFB41,0x5E1,0x5BC},{0xFB43,0x5E3,0x5BC},{0xFB44,0x5E4,0x5BC},
    {0xFB46,0x5E6,0x5BC},{0xFB47,0x5E7,0x5BC},{0xFB48,0x5E8,0x5BC},{0xFB49,0x5E9,0x5BC},
    {0xFB4A,0x5EA,0x5BC},{0xFB4B,0x5D5,0x5B9},{0xFB4C,0x5D1,0x5BF},{0xFB4D,0x5DB,0x5BF},
    {0xFB4E,0x5E4,0x5BF},{0x8001109A,0x11099,0x110BA},{0x8001109C,0x1109B,0x110BA},{0x800110AB,0x110A5,0x110BA},
    {0x8001112E,0x11131,0x11127},{0x8001112F,0x11132,0x11127},{0x8001134B,0x11347,0x1133E},{0x8001134C,0x11347,0x11357},
    {0x800114BB,0x114B9,0x114BA},{0x800114BC,0x114B9,0x114B0},{0x800114BE,0x114B9,0x114BD},{0x800115BA,0x115B8,0x115AF},
    {0x800115BB,0x115B9,0x115AF},{0x1D15E,0x1D157,0x1D165},{0x1D15F,0x1D158,0x1D165},{0x1D160,0x1D15F,0x1D16E},
    {0x1D161,0x1D15F,0x1D16F},{0x1D162,0x1D15F,0x1D170},{0x1D163,0x1D15F,0x1D171},{0x1D164,0x1D15F,0x1D172},
    {0x1D1BB,0x1D1B9,0x1D165},{0x1D1BC,0x1D1BA,0x1D165},{0x1D1BD,0x1D1BB,0x1D16E},{0x1D1BE,0x1D1BC,0x1D16E},
    {0x1D1BF,0x1D1BB,0x1D16F},{0x1D1C0,0x1D1BC,0x1D16F},{0x2F800,0x4E3D,0},{0x2F801,0x4E38,0},
    {0x2F802,0x4E41,0},{0x2F803,0x20122,0},{0x2F804,0x4F60,0},{0x2F805,0x4FAE,0},
    {0x2F806,0x4FBB,0},{0x2F807,0x5002,0},{0x2F808,0x507A,0},{0x2F809,0x5099,0},
    {0x2F80A,0x50E7,0},{0x2F80B,0x50CF,0},{0x2F80C,0x349E,0},{0x2F80D,0x2063A,0},
    {0x2F80E,0x514D,0},{0x2F80F,0x5154,0},{0x2F810,0x5164,0},{0x2F811,0x5177,0},
    {0x2F812,0x2051C,0},{0x2F813,0x34B9,0},{0x2F814,0x5167,0},{0x2F815,0x518D,0},
    {0x2F816,0x2054B,0},{0x2F817,0x5197,0},{0x2F818,0x51A4,0},{0x2F819,0x4ECC,0},
    {0x2F81A,0x51AC,0},{0x2F81B,0x51B5,0},{0x2F81C,0x291DF,0},{0x2F81D,0x51F5,0},
    {0x2F81E,0x5203,0},{0x2F81F,0x34DF,0},{0x2F820,0x523B,0},{0x2F821,0x5246,0},
    {0x2F822,0x5272,0},{0x2F823,0x5277,0},{0x2F824,0x3515,0},{0x2F825,0x52C7,0},
    {0x2F826,0x52C9,0},{0x2F827,0x52E4,0},{0x2F828,0x52FA,0},{0x2F829,0x5305,0},
    {0x2F82A,0x5306,0},{0x2F82B,0x5317,0},{0x2F82C,0x5349,0},{0x2F82D,0x5351,0},
    {0x2F82E,0x535A,0},{0x2F82F,0x5373,0},{0x2F830,0x537D,0},{0x2F831,0x537F,0},
    {0x2F832,0x537F,0},{0x2F833,0x537F,0},{0x2F834,0x20A2C,0},{0x2F835,0x7070,0},
    {0x2F836,0x53CA,0},{0x2F837,0x53DF,0},{0x2F838,0x20B63,0},{0x2F839,0x53EB,0},
    {0x2F83A,0x53F1,0},{0x2F83B,0x5406,0},{0x2F83C,0x549E,0},{0x2F83D,0x5438,0},
    {0x2F83E,0x5448,0},{0x2F83F,0x5468,0},{0x2F840,0x54A2,0},{0x2F841,0x54F6,0},
    {0x2F842,0x5510,0},{0x2F843,0x5553,0},{0x2F844,0x5563,0},{0x2F845,0x5584,0},
    {0x2F846,0x5584,0},{0x2F847,0x5599,0},{0x2F848,0x55AB,0},{0x2F849,0x55B3,0},
    {0x2F84A,0x55C2,0},{0x2F84B,0x5716,0},{0x2F84C,0x5606,0},{0x2F84D,0x5717,0},
    {0x2F84E,0x5651,0},{0x2F84F,0x5674,0},{0x2F850,0x5207,0},{0x2F851,0x58EE,0},
    {0x2F852,0x57CE,0},{0x2F853,0x57F4,0},{0x2F854,0x580D,0},{0x2F855,0x578B,0},
    {0x2F856,0x5832,0},{0x2F857,0x5831,0},{0x2F858,0x58AC,0},{0x2F859,0x214E4,0},
    {0x2F85A,0x58F2,0},{0x2F85B,0x58F7,0},{0x2F85C,0x5906,0},{0x2F85D,0x591A,0},
    {0x2F85E,0x5922,0},{0x2F85F,0x5962,0},{0x2F860,0x216A8,0},{0x2F861,0x216EA,0},
    {0x2F862,0x59EC,0},{0x2F863,0x5A1B,0},{0x2F864,0x5A27,0},{0x2F865,0x59D8,0},
    {0x2F866,0x5A66,0},{0x2F867,0x36EE,0},{0x2F868,0x36FC,0},{0x2F869,0x5B08,0},
    {0x2F86A,0x5B3E,0},{0x2F86B,0x5B3E,0},{0x2F86C,0x219C8,0},{0x2F86D,0x5BC3,0},
    {0x2F86E,0x5BD8,0},{0x2F86F,0x5BE7,0},{0x2F870,0x5BF3,0},{0x2F871,0x21B18,0},
    {0x2F872,0x5BFF,0},{0x2F873,0x5C06,0},{0x2F874,0x5F53,0},{0x2F875,0x5C22,0},
    {0x2F876,0x3781,0},{0x2F877,0x5C60,0},{0x2F878,0x5C6E,0},{0x2F879,0x5CC0,0},
    {0x2F87A,0x5C8D,0},{0x2F87B,0x21DE4,0},{0x2F87C,0x5D43,0},{0x2F87D,0x21DE6,0},
    {0x2F87E,0x5D6E,0},{0x2F87F,0x5D6B,0},{0x2F880,0x5D7C,0},{0x2F881,0x5DE1,0},
    {0x2F882,0x5DE2,0},{0x2F883,0x382F,0},{0x2F884,0x5DFD,0},{0x2F885,0x5E28,0},
    {0x2F886,0x5E3D,0},{0x2F887,0x5E69,0},{0x2F888,0x3862,0},{0x2F889,0x22183,0},
    {0x2F88A,0x387C,0},{0x2F88B,0x5EB0,0},{0x2F88C,0x5EB3,0},{0x2F88D,0x5EB6,0},
    {0x2F88E,0x5ECA,0},{0x2F88F,0x2A392,0},{0x2F890,0x5EFE,0},{0x2F891,0x22331,0},
    {0x2F892,0x22331,0},{0x2F893,0x8201,0},{0x2F894,0x5F22,0},{0x2F895,0x5F22,0},
    {0x2F896,0x38C7,0},{0x2F897,0x232B8,0},{0x2F898,0x261DA,0},{0x2F899,0x5F62,0},
    {0x2F89A,0x5F6B,0},{0x2F89B,0x38E3,0},{0x2F89C,0x5F9A,0},{0x2F89D,0x5FCD,0},
    {0x2F89E,0x5FD7,0},{0x2F89F,0x5FF9,0},{0x2F8A0,0x6081,0},{0x2F8A1,0x393A,0},
    {0x2F8A2,0x391C,0},{0x2F8A3,0x6094,0},{0x2F8A4,0x226D4,0},{0x2F8A5,0x60C7,0},
    {0x2F8A6,0x6148,0},{0x2F8A7,0x614C,0},{0x2F8A8,0x614E,0},{0x2F8A9,0x614C,0},
    {0x2F8AA,0x617A,0},{0x2F8AB,0x618E,0},{0x2F8AC,0x61B2,0},{0x2F8AD,0x61A4,0},
    {0x2F8AE,0x61AF,0},{0x2F8AF,0x61DE,0},{0x2F8B0,0x61F2,0},{0x2F8B1,0x61F6,0},
    {0x2F8B2,0x6210,0},{0x2F8B3,0x621B,0},{0x2F8B4,0x625D,0},{0x2F8B5,0x62B1,0},
    {0x2F8B6,0x62D4,0},{0x2F8B7,0x6350,0},{0x2F8B8,0x22B0C,0},{0x2F8B9,0x633D,0},
    {0x2F8BA,0x62FC,0},{0x2F8BB,0x6368,0},{0x2F8BC,0x6383,0},{0x2F8BD,0x63E4,0},
    {0x2F8BE,0x22BF1,0},{0x2F8BF,0x6422,0},{0x2F8C0,0x63C5,0},{0x2F8C1,0x63A9,0},
    {0x2F8C2,0x3A2E,0},{0x2F8C3,0x6469,0},{0x2F8C4,0x647E,0},{0x2F8C5,0x649D,0},
    {0x2F8C6,0x6477,0},{0x2F8C7,0x3A6C,0},{0x2F8C8,0x654F,0},{0x2F8C9,0x656C,0},
    {0x2F8CA,0x2300A,0},{0x2F8CB,0x65E3,0},{0x2F8CC,0x66F8,0},{0x2F8CD,0x6649,0},
    {0x2F8CE,0x3B19,0},{0x2F8CF,0x6691,0},{0x2F8D0,0x3B08,0},{0x2F8D1,0x3AE4,0},
    {0x2F8D2,0x5192,0},{0x2F8D3,0x5195,0},{0x2F8D4,0x6700,0},{0x2F8D5,0x669C,0},
    {0x2F8D6,0x80AD,0},{0x2F8D7,0x43D9,0},{0x2F8D8,0x6717,0},{0x2F8D9,0x671B,0},
    {0x2F8DA,0x6721,0},{0x2F8DB,0x675E,0},{0x2F8DC,0x6753,0},{0x2F8DD,0x233C3,0},
    {0x2F8DE,0x3B49,0},{0x2F8DF,0x67FA,0},{0x2F8E0,0x6785,0},{0x2F8E1,0x6852,0},
    {0x2F8E2,0x6885,0},{0x2F8E3,0x2346D,0},{0x2F8E4,0x688E,0},{0x2F8E5,0x681F,0},
    {0x2F8E6,0x6914,0},{0x2F8E7,0x3B9D,0},{0x2F8E8,0x6942,0},{0x2F8E9,0x69A3,0},
    {0x2F8EA,0x69EA,0},{0x2F8EB,0x6AA8,0},{0x2F8EC,0x236A3,0},{0x2F8ED,0x6ADB,0},
    {0x2F8EE,0x3C18,0},{0x2F8EF,0x6B21,0},{0x2F8F0,0x238A7,0},{0x2F8F1,0x6B54,0},
    {0x2F8F2,0x3C4E,0},{0x2F8F3,0x6B72,0},{0x2F8F4,0x6B9F,0},{0x2F8F5,0x6BBA,0},
    {0x2F8F6,0x6BBB,0},{0x2F8F7,0x23A8D,0},{0x2F8F8,0x21D0B,0},{0x2F8F9,0x23AFA,0},
    {0x2F8FA,0x6C4E,0},{0x2F8FB,0x23CBC,0},{0x2F8FC,0x6CBF,0},{0x2F8FD,0x6CCD,0},
    {0x2F8FE,0x6C67,0},{0x2F8FF,0x6D16,0},{0x2F900,0x6D3E,0},{0x2F901,0x6D77,0},
    {0x2F902,0x6D41,0},{0x2F903,0x6D69,0},{0x2F904,0x6D78,0},{0x2F905,0x6D85,0},
    {0x2F906,0x23D1E,0},{0x2F907,0x6D34,0},{0x2F908,0x6E2F,0},{0x2F909,0x6E6E,0},
    {0x2F90A,0x3D33,0},{0x2F90B,0x6ECB,0},{0x2F90C,0x6EC7,0},{0x2F90D,0x23ED1,0},
    {0x2F90E,0x6DF9,0},{0x2F90F,0x6F6E,0},{0x2F910,0x23F5E,0},{0x2F911,0x23F8E,0},
    {0x2F912,0x6FC6,0},{0x2F913,0x7039,0},{0x2F914,0x701E,0},{0x2F915,0x701B,0},
    {0x2F916,0x3D96,0},{0x2F917,0x704A,0},{0x2F918,0x707D,0},{0x2F919,0x7077,0},
    {0x2F91A,0x70AD,0},{0x2F91B,0x20525,0},{0x2F91C,0x7145,0},{0x2F91D,0x24263,0},
    {0x2F91E,0x719C,0},{0x2F91F,0x243AB,0},{0x2F920,0x7228,0},{0x2F921,0x7235,0},
    {0x2F922,0x7250,0},{0x2F923,0x24608,0},{0x2F924,0x7280,0},{0x2F925,0x7295,0},
    {0x2F926,0x24735,0},{0x2F927,0x24814,0},{0x2F928,0x737A,0},{0x2F929,0x738B,0},
    {0x2F92A,0x3EAC,0},{0x2F92B,0x73A5,0},{0x2F92C,0x3EB8,0},{0x2F92D,0x3EB8,0},
    {0x2F92E,0x7447,0},{0x2F92F,0x745C,0},{0x2F930,0x7471,0},{0x2F931,0x7485,0},
    {0x2F932,0x74CA,0},{0x2F933,0x3F1B,0},{0x2F934,0x7524,0},{0x2F935,0x24C36,0},
    {0x2F936,0x753E,0},{0x2F937,0x24C92,0},{0x2F938,0x7570,0},{0x2F939,0x2219F,0},
    {0x2F93A,0x7610,0},{0x2F93B,0x24FA1,0},{0x2F93C,0x24FB8,0},{0x2F93D,0x25044,0},
    {0x2F93E,0x3FFC,0},{0x2F93F,0x4008,0},{0x2F940,0x76F4,0},{0x2F941,0x250F3,0},
    {0x2F942,0x250F2,0},{0x2F943,0x25119,0},{0x2F944,0x25133,0},{0x2F945,0x771E,0},
    {0x2F946,0x771F,0},{0x2F947,0x771F,0},{0x2F948,0x774A,0},{0x2F949,0x4039,0},
    {0x2F94A,0x778B,0},{0x2F94B,0x4046,0},{0x2F94C,0x4096,0},{0x2F94D,0x2541D,0},
    {0x2F94E,0x784E,0},{0x2F94F,0x788C,0},{0x2F950,0x78CC,0},{0x2F951,0x40E3,0},
    {0x2F952,0x25626,0},{0x2F953,0x7956,0},{0x2F954,0x2569A,0},{0x2F955,0x256C5,0},
    {0x2F956,0x798F,0},{0x2F957,0x79EB,0},{0x2F958,0x412F,0},{0x2F959,0x7A40,0},
    {0x2F95A,0x7A4A,0},{0x2F95B,0x7A4F,0},{0x2F95C,0x2597C,0},{0x2F95D,0x25AA7,0},
    {0x2F95E,0x25AA7,0},{0x2F95F,0x7AEE,0},{0x2F960,0x4202,0},{0x2F961,0x25BAB,0},
    {0x2F962,0x7BC6,0},{0x2F963,0x7BC9,0},{0x2F964,0x4227,0},{0x2F965,0x25C80,0},
    {0x2F966,0x7CD2,0},{0x2F967,0x42A0,0},{0x2F968,0x7CE8,0},{0x2F969,0x7CE3,0},
    {0x2F96A,0x7D00,0},{0x2F96B,0x25F86,0},{0x2F96C,0x7D63,0},{0x2F96D,0x4301,0},
    {0x2F96E,0x7DC7,0},{0x2F96F,0x7E02,0},{0x2F970,0x7E45,0},{0x2F971,0x4334,0},
    {0x2F972,0x26228,0},{0x2F973,0x26247,0},{0x2F974,0x4359,0},{0x2F975,0x262D9,0},
    {0x2F976,0x7F7A,0},{0x2F977,0x2633E,0},{0x2F978,0x7F95,0},{0x2F979,0x7FFA,0},
    {0x2F97A,0x8005,0},{0x2F97B,0x264DA,0},{0x2F97C,0x26523,0},{0x2F97D,0x8060,0},
    {0x2F97E,0x265A8,0},{0x2F97F,0x8070,0},{0x2F980,0x2335F,0},{0x2F981,0x43D5,0},
    {0x2F982,0x80B2,0},{0x2F983,0x8103,0},{0x2F984,0x440B,0},{0x2F985,0x813E,0},
    {0x2F986,0x5AB5,0},{0x2F987,0x267A7,0},{0x2F988,0x267B5,0},{0x2F989,0x23393,0},
    {0x2F98A,0x2339C,0},{0x2F98B,0x8201,0},{0x2F98C,0x8204,0},{0x2F98D,0x8F9E,0},
    {0x2F98E,0x446B,0},{0x2F98F,0x8291,0},{0x2F990,0x828B,0},{0x2F991,0x829D,0},
    {0x2F992,0x52B3,0},{0x2F993,0x82B1,0},{0x2F994,0x82B3,0},{0x2F995,0x82BD,0},
    {0x2F996,0x82E6,0},{0x2F997,0x26B3C,0},{0x2F998,0x82E5,0},{0x2F999,0x831D,0},
    {0x2F99A,0x8363,0},{0x2F99B,0x83AD,0},{0x2F99C,0x8323,0},{0x2F99D,0x83BD,0},
    {0x2F99E,0x83E7,0},{0x2F99F,0x8457,0},{0x2F9A0,0x8353,0},{0x2F9A1,0x83CA,0},
    {0x2F9A2,0x83CC,0},{0x2F9A3,0x83DC,0},{0x2F9A4,0x26C36,0},{0x2F9A5,0x26D6B,0},
    {0x2F9A6,0x26CD5,0},{0x2F9A7,0x452B,0},{0x2F9A8,0x84F1,0},{0x2F9A9,0x84F3,0},
    {0x2F9AA,0x8516,0},{0x2F9AB,0x273CA,0},{0x2F9AC,0x8564,0},{0x2F9AD,0x26F2C,0},
    {0x2F9AE,0x455D,0},{0x2F9AF,0x4561,0},{0x2F9B0,0x26FB1,0},{0x2F9B1,0x270D2,0},
    {0x2F9B2,0x456B,0},{0x2F9B3,0x8650,0},{0x2F9B4,0x865C,0},{0x2F9B5,0x8667,0},
    {0x2F9B6,0x8669,0},{0x2F9B7,0x86A9,0},{0x2F9B8,0x8688,0},{0x2F9B9,0x870E,0},
    {0x2F9BA,0x86E2,0},{0x2F9BB,0x8779,0},{0x2F9BC,0x8728,0},{0x2F9BD,0x876B,0},
    {0x2F9BE,0x8786,0},{0x2F9BF,0x45D7,0},{0x2F9C0,0x87E1,0},{0x2F9C1,0x8801,0},
    {0x2F9C2,0x45F9,0},{0x2F9C3,0x8860,0},{0x2F9C4,0x8863,0},{0x2F9C5,0x27667,0},
    {0x2F9C6,0x88D7,0},{0x2F9C7,0x88DE,0},{0x2F9C8,0x4635,0},{0x2F9C9,0x88FA,0},
    {0x2F9CA,0x34BB,0},{0x2F9CB,0x278AE,0},{0x2F9CC,0x27966,0},{0x2F9CD,0x46BE,0},
    {0x2F9CE,0x46C7,0},{0x2F9CF,0x8AA0,0},{0x2F9D0,0x8AED,0},{0x2F9D1,0x8B8A,0},
    {0x2F9D2,0x8C55,0},{0x2F9D3,0x27CA8,0},{0x2F9D4,0x8CAB,0},{0x2F9D5,0x8CC1,0},
    {0x2F9D6,0x8D1B,0},{0x2F9D7,0x8D77,0},{0x2F9D8,0x27F2F,0},{0x2F9D9,0x20804,0},
    {0x2F9DA,0x8DCB,0},{0x2F9DB,0x8DBC,0},{0x2F9DC,0x8DF0,0},{0x2F9DD,0x208DE,0},
    {0x2F9DE,0x8ED4,0},{0x2F9DF,0x8F38,0},{0x2F9E0,0x285D2,0},{0x2F9E1,0x285ED,0},
    {0x2F9E2,0x9094,0},{0x2F9E3,0x90F1,0},{0x2F9E4,0x9111,0},{0x2F9E5,0x2872E,0},
    {0x2F9E6,0x911B,0},{0x2F9E7,0x9238,0},{0x2F9E8,0x92D7,0},{0x2F9E9,0x92D8,0},
    {0x2F9EA,0x927C,0},{0x2F9EB,0x93F9,0},{0x2F9EC,0x9415,0},{0x2F9ED,0x28BFA,0},
    {0x2F9EE,0x958B,0},{0x2F9EF,0x4995,0},{0x2F9F0,0x95B7,0},{0x2F9F1,0x28D77,0},
    {0x2F9F2,0x49E6,0},{0x2F9F3,0x96C3,0},{0x2F9F4,0x5DB2,0},{0x2F9F5,0x9723,0},
    {0x2F9F6,0x29145,0},{0x2F9F7,0x2921A,0},{0x2F9F8,0x4A6E,0},{0x2F9F9,0x4A76,0},
    {0x2F9FA,0x97E0,0},{0x2F9FB,0x2940A,0},{0x2F9FC,0x4AB2,0},{0x2F9FD,0x29496,0},
    {0x2F9FE,0x980B,0},{0x2F9FF,0x980B,0},{0x2FA00,0x9829,0},{0x2FA01,0x295B6,0},
    {0x2FA02,0x98E2,0},{0x2FA03,0x4B33,0},{0x2FA04,0x9929,0},{0x2FA05,0x99A7,0},
    {0x2FA06,0x99C2,0},{0x2FA07,0x99FE,0},{0x2FA08,0x4BCE,0},{0x2FA09,0x29B30,0},
    {0x2FA0A,0x9B12,0},{0x2FA0B,0x9C40,0},{0x2FA0C,0x9CFD,0},{0x2FA0D,0x4CCE,0},
    {0x2FA0E,0x4CED,0},{0x2FA0F,0x9D67,0},{0x2FA10,0x2A0CE,0},{0x2FA11,0x4CF8,0},
    {0x2FA12,0x2A105,0},{0x2FA13,0x2A20E,0},{0x2FA14,0x2A291,0},{0x2FA15,0x9EBB,0},
    {0x2FA16,0x4D56,0},{0x2FA17,0x9EF9,0},{0x2FA18,0x9EFE,0},{0x2FA19,0x9F05,0},
    {0x2FA1A,0x9F0F,0},{0x2FA1B,0x9F16,0},{0x2FA1C,0x9F3B,0},{0x2FA1D,0x2A600,0},
};
// {first, last, canonical combining class} of every code point whose class is not 0
constexpr uint32_t kNfcCombiningClasses[][3] = {
    {0x300,0x314,0xE6},{0x315,0x315,0xE8},{0x316,0x319,0xDC},{0x31A,0x31A,0xE8},{0x31B,0x31B,0xD8},
    {0x31C,0x320,0xDC},{0x321,0x322,0xCA},{0x323,0x326,0xDC},{0x327,0x328,0xCA},{0x329,0x333,0xDC},
    {0x334,0x338,1},{0x339,0x33C,0xDC},{0x33D,0x344,0xE6},{0x345,0x345,0xF0},{0x346,0x346,0xE6},
    {0x347,0x349,0xDC},{0x34A,0x34C,0xE6},{0x34D,0x34E,0xDC},{0x350,0x352,0xE6},{0x353,0x356,0xDC},
    {0x357,0x357,0xE6},{0x358,0x358,0xE8},{0x359,0x35A,0xDC},{0x35B,0x35B,0xE6},{0x35C,0x35C,0xE9},
    {0x35D,0x35E,0xEA},{0x35F,0x35F,0xE9},{0x360,0x361,0xEA},{0x362,0x362,0xE9},{0x363,0x36F,0xE6},
    {0x483,0x487,0xE6},{0x591,0x591,0xDC},{0x592,0x595,0xE6},{0x596,0x596,0xDC},{0x597,0x599,0xE6},
    {0x59A,0x59A,0xDE},{0x59B,0x59B,0xDC},{0x59C,0x5A1,0xE6},{0x5A2,0x5A7,0xDC},{0x5A8,0x5A9,0xE6},
    {0x5AA,0x5AA,0xDC},{0x5AB,0x5AC,0xE6},{0x5AD,0x5AD,0xDE},{0x5AE,0x5AE,0xE4},{0x5AF,0x5AF,0xE6},
    {0x5B0,0x5B0,0xA},{0x5B1,0x5B1,0xB},{0x5B2,0x5B2,0xC},{0x5B3,0x5B3,0xD},{0x5B4,0x5B4,0xE},
    {0x5B5,0x5B5,0xF},{0x5B6,0x5B6,0x10},{0x5B7,0x5B7,0x11},{0x5B8,0x5B8,0x12},{0x5B9,0x5BA,0x13},
    {0x5BB,0x5BB,0x14},{0x5BC,0x5BC,0x15},{0x5BD,0x5BD,0x16},{0x5BF,0x5BF,0x17},{0x5C1,0x5C1,0x18},
    {0x5C2,0x5C2,0x19},{0x5C4,0x5C4,0xE6},{0x5C5,0x5C5,0xDC},{0x5C7,0x5C7,0x12},{0x610,0x617,0xE6},
    {0x618,0x618,0x1E},{0x619,0x619,0x1F},{0x61A,0x61A,0x20},{0x64B,0x64B,0x1B},{0x64C,0x64C,0x1C},
    {0x64D,0x64D,0x1D},{0x64E,0x64E,0x1E},{0x64F,0x64F,0x1F},{0x650,0x650,0x20},{0x651,0x651,0x21},
    {0x652,0x652,0x22},{0x653,0x654,0xE6},{0x655,0x656,0xDC},{0x657,0x65B,0xE6},{0x65C,0x65C,0xDC},
    {0x65D,0x65E,0xE6},{0x65F,0x65F,0xDC},{0x670,0x670,0x23},{0x6D6,0x6DC,0xE6},{0x6DF,0x6E2,0xE6},
    {0x6E3,0x6E3,0xDC},{0x6E4,0x6E4,0xE6},{0x6E7,0x6E8,0xE6},{0x6EA,0x6EA,0xDC},{0x6EB,0x6EC,0xE6},
    {0x6ED,0x6ED,0xDC},{0x711,0x711,0x24},{0x730,0x730,0xE6},{0x731,0x731,0xDC},{0x732,0x733,0xE6},
    {0x734,0x734,0xDC},{0x735,0x736,0xE6},{0x737,0x739,0xDC},{0x73A,0x73A,0xE6},{0x73B,0x73C,0xDC},
    {0x73D,0x73D,0xE6},{0x73E,0x73E,0xDC},{0x73F,0x741,0xE6},{0x742,0x742,0xDC},{0x743,0x743,0xE6},
    {0x744,0x744,0xDC},{0x745,0x745,0xE6},{0x746,0x746,0xDC},{0x747,0x747,0xE6},{0x748,0x748,0xDC},
    {0x749,0x74A,0xE6},{0x7EB,0x7F1,0xE6},{0x7F2,0x7F2,0xDC},{0x7F3,0x7F3,0xE6},{0x816,0x819,0xE6},
    {0x81B,0x823,0xE6},{0x825,0x827,0xE6},{0x829,0x82D,0xE6},{0x859,0x85B,0xDC},{0x8D4,0x8E1,0xE6},
    {0x8E3,0x8E3,0xDC},{0x8E4,0x8E5,0xE6},{0x8E6,0x8E6,0xDC},{0x8E7,0x8E8,0xE6},{0x8E9,0x8E9,0xDC},
    {0x8EA,0x8EC,0xE6},{0x8ED,0x8EF,0xDC},{0x8F0,0x8F0,0x1B},{0x8F1,0x8F1,0x1C},{0x8F2,0x8F2,0x1D},
    {0x8F3,0x8F5,0xE6},{0x8F6,0x8F6,0xDC},{0x8F7,0x8F8,0xE6},{0x8F9,0x8FA,0xDC},{0x8FB,0x8FF,0xE6},
    {0x93C,0x93C,7},{0x94D,0x94D,9},{0x951,0x951,0xE6},{0x952,0x952,0xDC},{0x953,0x954,0xE6},
    {0x9BC,0x9BC,7},{0x9CD,0x9CD,9},{0xA3C,0xA3C,7},{0xA4D,0xA4D,9},{0xABC,0xABC,7},
    {0xACD,0xACD,9},{0xB3C,0xB3C,7},{0xB4D,0xB4D,9},{0xBCD,0xBCD,9},{0xC4D,0xC4D,9},
    {0xC55,0xC55,0x54},{0xC56,0xC56,0x5B},{0xCBC,0xCBC,7},{0xCCD,0xCCD,9},{0xD4D,0xD4D,9},
    {0xDCA,0xDCA,9},{0xE38,0xE39,0x67},{0xE3A,0xE3A,9},{0xE48,0xE4B,0x6B},{0xEB8,0xEB9,0x76},
    {0xEC8,0xECB,0x7A},{0xF18,0xF19,0xDC},{0xF35,0xF35,0xDC},{0xF37,0xF37,0xDC},{0xF39,0xF39,0xD8},
    {0xF71,0xF71,0x81},{0xF72,0xF72,0x82},{0xF74,0xF74,0x84},{0xF7A,0xF7D,0x82},{0xF80,0xF80,0x82},
    {0xF82,0xF83,0xE6},{0xF84,0xF84,9},{0xF86,0xF87,0xE6},{0xFC6,0xFC6,0xDC},{0x1037,0x1037,7},
    {0x1039,0x103A,9},{0x108D,0x108D,0xDC},{0x135D,0x135F,0xE6},{0x1714,0x1714,9},{0x1734,0x1734,9},
    {0x17D2,0x17D2,9},{0x17DD,0x17DD,0xE6},{0x18A9,0x18A9,0xE4},{0x1939,0x1939,0xDE},{0x193A,0x193A,0xE6},
    {0x193B,0x193B,0xDC},{0x1A17,0x1A17,0xE6},{0x1A18,0x1A18,0xDC},{0x1A60,0x1A60,9},{0x1A75,0x1A7C,0xE6},
    {0x1A7F,0x1A7F,0xDC},{0x1AB0,0x1AB4,0xE6},{0x1AB5,0x1ABA,0xDC},{0x1ABB,0x1ABC,0xE6},{0x1ABD,0x1ABD,0xDC},
    {0x1B34,0x1B34,7},{0x1B44,0x1B44,9},{0x1B6B,0x1B6B,0xE6},{0x1B6C,0x1B6C,0xDC},{0x1B6D,0x1B73,0xE6},
    {0x1BAA,0x1BAB,9},{0x1BE6,0x1BE6,7},{0x1BF2,0x1BF3,9},{0x1C37,0x1C37,7},{0x1CD0,0x1CD2,0xE6},
    {0x1CD4,0x1CD4,1},{0x1CD5,0x1CD9,0xDC},{0x1CDA,0x1CDB,0xE6},{0x1CDC,0x1CDF,0xDC},{0x1CE0,0x1CE0,0xE6},
    {0x1CE2,0x1CE8,1},{0x1CED,0x1CED,0xDC},{0x1CF4,0x1CF4,0xE6},{0x1CF8,0x1CF9,0xE6},{0x1DC0,0x1DC1,0xE6},
    {0x1DC2,0x1DC2,0xDC},{0x1DC3,0x1DC9,0xE6},{0x1DCA,0x1DCA,0xDC},{0x1DCB,0x1DCC,0xE6},{0x1DCD,0x1DCD,0xEA},
    {0x1DCE,0x1DCE,0xD6},{0x1DCF,0x1DCF,0xDC},{0x1DD0,0x1DD0,0xCA},{0x1DD1,0x1DF5,0xE6},{0x1DFB,0x1DFB,0xE6},
    {0x1DFC,0x1DFC,0xE9},{0x1DFD,0x1DFD,0xDC},{0x1DFE,0x1DFE,0xE6},{0x1DFF,0x1DFF,0xDC},{0x20D0,0x20D1,0xE6},
    {0x20D2,0x20D3,1},{0x20D4,0x20D7,0xE6},{0x20D8,0x20DA,1},{0x20DB,0x20DC,0xE6},{0x20E1,0x20E1,0xE6},
    {0x20E5,0x20E6,1},{0x20E7,0x20E7,0xE6},{0x20E8,0x20E8,0xDC},{0x20E9,0x20E9,0xE6},{0x20EA,0x20EB,1},
    {0x20EC,0x20EF,0xDC},{0x20F0,0x20F0,0xE6},{0x2CEF,0x2CF1,0xE6},{0x2D7F,0x2D7F,9},{0x2DE0,0x2DFF,0xE6},
    {0x302A,0x302A,0xDA},{0x302B,0x302B,0xE4},{0x302C,0x302C,0xE8},{0x302D,0x302D,0xDE},{0x302E,0x302F,0xE0},
    {0x3099,0x309A,8},{0xA66F,0xA66F,0xE6},{0xA674,0xA67D,0xE6},{0xA69E,0xA69F,0xE6},{0xA6F0,0xA6F1,0xE6},
    {0xA806,0xA806,9},{0xA8C4,0xA8C4,9},{0xA8E0,0xA8F1,0xE6},{0xA92B,0xA92D,0xDC},{0xA953,0xA953,9},
    {0xA9B3,0xA9B3,7},{0xA9C0,0xA9C0,9},{0xAAB0,0xAAB0,0xE6},{0xAAB2,0xAAB3,0xE6},{0xAAB4,0xAAB4,0xDC},
    {0xAAB7,0xAAB8,0xE6},{0xAABE,0xAABF,0xE6},{0xAAC1,0xAAC1,0xE6},{0xAAF6,0xAAF6,9},{0xABED,0xABED,9},
    {0xFB1E,0xFB1E,0x1A},{0xFE20,0xFE26,0xE6},{0xFE27,0xFE2D,0xDC},{0xFE2E,0xFE2F,0xE6},{0x101FD,0x101FD,0xDC},
    {0x102E0,0x102E0,0xDC},{0x10376,0x1037A,0xE6},{0x10A0D,0x10A0D,0xDC},{0x10A0F,0x10A0F,0xE6},{0x10A38,0x10A38,0xE6},
    {0x10A39,0x10A39,1},{0x10A3A,0x10A3A,0xDC},{0x10A3F,0x10A3F,9},{0x10AE5,0x10AE5,0xE6},{0x10AE6,0x10AE6,0xDC},
    {0x11046,0x11046,9},{0x1107F,0x1107F,9},{0x110B9,0x110B9,9},{0x110BA,0x110BA,7},{0x11100,0x11102,0xE6},
    {0x11133,0x11134,9},{0x11173,0x11173,7},{0x111C0,0x111C0,9},{0x111CA,0x111CA,7},{0x11235,0x11235,9},
    {0x11236,0x11236,7},{0x112E9,0x112E9,7},{0x112EA,0x112EA,9},{0x1133C,0x1133C,7},{0x1134D,0x1134D,9},
    {0x11366,0x1136C,0xE6},{0x11370,0x11374,0xE6},{0x11442,0x11442,9},{0x11446,0x11446,7},{0x114C2,0x114C2,9},
    {0x114C3,0x114C3,7},{0x115BF,0x115BF,9},{0x115C0,0x115C0,7},{0x1163F,0x1163F,9},{0x116B6,0x116B6,9},
    {0x116B7,0x116B7,7},{0x1172B,0x1172B,9},{0x11C3F,0x11C3F,9},{0x16AF0,0x16AF4,1},{0x16B30,0x16B36,0xE6},
    {0x1BC9E,0x1BC9E,1},{0x1D165,0x1D166,0xD8},{0x1D167,0x1D169,1},{0x1D16D,0x1D16D,0xE2},{0x1D16E,0x1D172,0xD8},
    {0x1D17B,0x1D182,0xDC},{0x1D185,0x1D189,0xE6},{0x1D18A,0x1D18B,0xDC},{0x1D1AA,0x1D1AD,0xE6},{0x1D242,0x1D244,0xE6},
    {0x1E000,0x1E006,0xE6},{0x1E008,0x1E018,0xE6},{0x1E01B,0x1E021,0xE6},{0x1E023,0x1E024,0xE6},{0x1E026,0x1E02A,0xE6},
    {0x1E8D0,0x1E8D6,0xDC},{0x1E944,0x1E949,0xE6},{0x1E94A,0x1E94A,7},
};
// {first, last}: letters (\p{L}) and numbers (\p{N}) to the library that are not in Unicode 14.0.0
constexpr uint32_t kRegexExtraLetters[][2] = {
    {0x1C89,0x1C8A},{0xA7CB,0xA7CD},{0xA7DA,0xA7DC},{0x105C0,0x105F3},{0x10D4A,0x10D65},{0x10D6F,0x10D85},
    {0x10EC2,0x10EC4},{0x1123F,0x11240},{0x11380,0x11389},{0x1138B,0x1138B},{0x1138E,0x1138E},{0x11390,0x113B5},
    {0x113B7,0x113B7},{0x113D1,0x113D1},{0x113D3,0x113D3},{0x11BC0,0x11BE0},{0x11F02,0x11F02},{0x11F04,0x11F10},
    {0x11F12,0x11F33},{0x1342F,0x1342F},{0x13441,0x13446},{0x13460,0x143FA},{0x16100,0x1611D},{0x16D40,0x16D6C},
    {0x18CFF,0x18CFF},{0x1B132,0x1B132},{0x1B155,0x1B155},{0x1DF25,0x1DF2A},{0x1E030,0x1E06D},{0x1E4D0,0x1E4EB},
    {0x1E5D0,0x1E5ED},{0x1E5F0,0x1E5F0},{0x2B739,0x2B739},{0x2EBF0,0x2EE5D},{0x31350,0x323AF},
};
constexpr uint32_t kRegexExtraNumbers[][2] = {
    {0x10D40,0x10D49},{0x116D0,0x116E3},{0x11BF0,0x11BF9},{0x11F50,0x11F59},{0x16130,0x16139},{0x16D70,0x16D79},
    {0x1CCF0,0x1CCF9},{0x1D2C0,0x1D2D3},{0x1E4F0,0x1E4F9},{0x1E5F1,0x1E5FA},
};
// clang-format on

uint8_t CombiningClass(uint32_t cp) {
  if (cp < 0x300) return 0;
  size_t lo = 0, hi = std::size(kNfcCombiningClasses);
  while (lo < hi) {  // the first range whose end is >= cp
    const size_t mid = (lo + hi) / 2;
    if (kNfcCombiningClasses[mid][1] < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < std::size(kNfcCombiningClasses) && kNfcCombiningClasses[lo][0] <= cp
             ? static_cast<uint8_t>(kNfcCombiningClasses[lo][2])
             : 0;
}

struct NfcMaps {
  std::unordered_map<uint32_t, std::pair<uint32_t, uint32_t>> decomposition;  // one step
  std::unordered_map<uint64_t, uint32_t> composition;                         // (first, second) -> composite
};

const NfcMaps& Nfc() {
  static const NfcMaps m = [] {
    NfcMaps t;
    t.decomposition.reserve(std::size(kNfcDecompositions));
    for (const auto& d : kNfcDecompositions) {
      const uint32_t cp = d[0] & 0x7FFFFFFFu;
      t.decomposition.emplace(cp, std::pair{d[1], d[2]});
      if (d[0] >> 31) t.composition.emplace(uint64_t{d[1]} << 32 | d[2], cp);
    }
    return t;
  }();
  return m;
}

// Hangul syllables decompose and compose by arithmetic (Unicode 3.12).
constexpr uint32_t kHangulS = 0xAC00, kHangulL = 0x1100, kHangulV = 0x1161, kHangulT = 0x11A7;
constexpr uint32_t kHangulVCount = 21, kHangulTCount = 28, kHangulN = kHangulVCount * kHangulTCount;
constexpr uint32_t kHangulSCount = 19 * kHangulN;

void DecomposeCodePoint(const NfcMaps& m, uint32_t cp, std::vector<uint32_t>* out) {
  if (cp - kHangulS < kHangulSCount) {
    const uint32_t s = cp - kHangulS;
    out->push_back(kHangulL + s / kHangulN);
    out->push_back(kHangulV + s % kHangulN / kHangulTCount);
    if (s % kHangulTCount != 0) out->push_back(kHangulT + s % kHangulTCount);
    return;
  }
  auto it = m.decomposition.find(cp);
  if (it == m.decomposition.end()) {
    out->push_back(cp);
    return;
  }
  DecomposeCodePoint(m, it->second.first, out);
  if (it->second.second != 0) DecomposeCodePoint(m, it->second.second, out);
}

// The primary composite of (a, b), or 0.
uint32_t ComposePair(const NfcMaps& m, uint32_t a, uint32_t b) {
  if (a - kHangulL < 19 && b - kHangulV < kHangulVCount) {
    return kHangulS + ((a - kHangulL) * kHangulVCount + (b - kHangulV)) * kHangulTCount;
  }
  if (a - kHangulS < kHangulSCount && (a - kHangulS) % kHangulTCount == 0 && b - kHangulT - 1 < kHangulTCount - 1) {
    return a + (b - kHangulT);
  }
  auto it = m.composition.find(uint64_t{a} << 32 | b);
  return it == m.composition.end() ? 0 : it->second;
}

// NFC of a run of valid UTF-8: full canonical decomposition, canonical order, canonical composition.
void NfcValidRun(std::string_view run, std::string* out) {
  const NfcMaps& m = Nfc();
  const auto* s = reinterpret_cast<const unsigned char*>(run.data());
  std::vector<uint32_t> cps;
  cps.reserve(run.size());
  for (size_t i = 0; i < run.size();) {
    const size_t len = Utf8SeqLen(s + i, run.size() - i);
    DecomposeCodePoint(m, Utf8Decode(s + i, len), &cps);
    i += len;
  }
  // Canonical order: a stable sort of each run of non-starters by combining class.
  for (size_t i = 1; i < cps.size(); ++i) {
    const uint8_t c = CombiningClass(cps[i]);
    if (c == 0) continue;
    for (size_t j = i; j > 0 && CombiningClass(cps[j - 1]) > c; --j) std::swap(cps[j], cps[j - 1]);
  }
  // Composition: each character joins the last starter unless something between blocks it (a
  // character of the same or a higher class, or a starter).
  std::vector<uint32_t> done;
  done.reserve(cps.size());
  size_t starter = SIZE_MAX;
  for (uint32_t cp : cps) {
    const uint8_t c = CombiningClass(cp);
    if (starter != SIZE_MAX) {
      const bool adjacent = done.size() - 1 == starter;
      if (adjacent || CombiningClass(done.back()) < c) {
        if (const uint32_t composite = ComposePair(m, done[starter], cp)) {
          done[starter] = composite;
          continue;
        }
      }
    }
    if (c == 0) starter = done.size();
    done.push_back(cp);
  }
  for (uint32_t cp : done) Utf8Append(cp, out);
}

// NFC of any bytes: invalid UTF-8 stays as it is, and no character composes across it.
std::string NfcNormalize(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  // Text below U+0300 is already NFC (lab/peers/make_tokenizers.py checks it): no byte >= 0xCC.
  if (std::none_of(s, s + text.size(), [](unsigned char b) { return b >= 0xCC; })) return std::string(text);
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t j = i;
    while (j < text.size()) {
      const size_t len = Utf8SeqLen(s + j, text.size() - j);
      if (len == 0) break;
      j += len;
    }
    NfcValidRun(text.substr(i, j - i), &out);
    if (j < text.size()) out.push_back(text[j++]);
    i = j;
  }
  return out;
}

// Unicode White_Space (Rust's char::is_whitespace and regex \s): what lstrip / rstrip take.
bool IsWhiteSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// ------------------------------------------------------------------------------------------------
// Regular expressions from tokenizer.json
//
// The library compiles a Split pattern with Oniguruma; strata with PCRE2 (UTF, UCP). The two read
// the patterns of Llama 3, Qwen2 and GPT-2 alike once these are rewritten:
//   \s      Oniguruma: \t \n \v \f \r, U+0085 and the separators (Zs Zl Zp); PCRE2 also takes U+180E
//           -> spelled out as that class; \S its complement (outside a class only)
//   \p{L}   -> [\p{L} + the letters the library's newer Unicode has]; \p{N} likewise
// and everything whose meaning differs or is not checked is refused: other escapes of letters (\w
// \d \h \b \v \R \X ...), other properties, ^ and $ (line anchors to Oniguruma), nested classes
// and POSIX classes ([[:alpha:]]), inline options other than (?i:. Case-insensitive groups: PCRE2
// and Oniguruma fold the same single characters (s S ſ; k K K); Oniguruma's folds of one character
// to several (ß ~ ss) never apply to the patterns above, which hold no such sequence.

std::string RangesClassBody(std::span<const uint32_t[2]> ranges) {
  std::string out;
  char buf[40];
  for (const auto& r : ranges) {
    std::snprintf(buf, sizeof buf, "\\x{%X}-\\x{%X}", static_cast<unsigned>(r[0]), static_cast<unsigned>(r[1]));
    out += buf;
  }
  return out;
}

// On failure returns false with *why saying what was refused.
bool TranslateOnigRegex(std::string_view pat, std::string* out, std::string* why) {
  static const std::string kSpace = "\\t-\\r\\x{85}\\p{Z}";
  static const std::string kLetters = "\\p{L}" + RangesClassBody(kRegexExtraLetters);
  static const std::string kNumbers = "\\p{N}" + RangesClassBody(kRegexExtraNumbers);
  out->clear();
  bool in_class = false;
  for (size_t i = 0; i < pat.size(); ++i) {
    const char c = pat[i];
    if (c == '\\') {
      if (i + 1 >= pat.size()) {
        *why = "it ends in a lone backslash";
        return false;
      }
      const char e = pat[++i];
      if (e == 's') {
        *out += in_class ? kSpace : "[" + kSpace + "]";
      } else if (e == 'S') {
        if (in_class) {
          *why = "\\S inside a character class is not supported";
          return false;
        }
        *out += "[^" + kSpace + "]";
      } else if (e == 'p') {
        const size_t close = pat.find('}', i);
        const std::string_view prop = close == std::string_view::npos ? "" : pat.substr(i + 1, close - i);
        if (prop != "{L}" && prop != "{N}") {
          *why = "the property \\p" + std::string(prop.substr(0, 16)) + " is not supported (supported: \\p{L}, \\p{N})";
          return false;
        }
        const std::string& body = prop == "{L}" ? kLetters : kNumbers;
        *out += in_class ? body : "[" + body + "]";
        i = close;
      } else if (e == 'r' || e == 'n' || e == 't' || e == 'f') {
        *out += '\\';
        *out += e;
      } else if (e == 'x') {  // \xHH or \x{H...}: the same in both
        *out += "\\x";
      } else if (std::isalnum(static_cast<unsigned char>(e))) {
        *why = std::string("the escape \\") + e + " is not supported (its meaning differs between Oniguruma and PCRE2)";
        return false;
      } else {
        *out += '\\';
        *out += e;  // an escaped punctuation character: itself
      }
      continue;
    }
    if (in_class) {
      if (c == '[') {
        *why = "a nested character class is not supported";
        return false;
      }
      if (c == ']') in_class = false;
      *out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      *out += c;
      if (i + 1 < pat.size() && pat[i + 1] == '^') *out += pat[++i];
      if (i + 1 < pat.size() && pat[i + 1] == ']') {
        *why = "a class starting with ] is not supported";
        return false;
      }
      continue;
    }
    if (c == '^' || c == '$') {
      *why = std::string("the anchor ") + c + " is not supported (a line anchor to Oniguruma)";
      return false;
    }
    if (c == '(' && i + 1 < pat.size() && pat[i + 1] == '?') {
      const std::string_view rest = pat.substr(i + 2);
      if (!(rest.starts_with(":") || rest.starts_with("=") || rest.starts_with("!") || rest.starts_with("i:"))) {
        *why = "the group (?" + std::string(rest.substr(0, 3)) + "... is not supported (supported: (?: (?= (?! (?i:)";
        return false;
      }
    }
    *out += c;
  }
  return true;
}

struct PcreFree {
  void operator()(pcre2_code* re) const { pcre2_code_free(re); }
};
using PcreCode = std::shared_ptr<pcre2_code>;

Result<PcreCode> CompileSplitRegex(const std::string& pattern, bool literal, const std::string& where) {
  std::string translated;
  if (literal) {
    translated = pattern;
  } else if (std::string why; !TranslateOnigRegex(pattern, &translated, &why)) {
    return Status::InvalidArgument(where + " " + Quote(pattern) + ": " + why);
  }
  int err = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                 PCRE2_UTF | PCRE2_UCP | (literal ? PCRE2_LITERAL : 0), &err, &offset, nullptr);
  if (re == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return Status::InvalidArgument(where + " " + Quote(pattern) +
                                   ": PCRE2 cannot compile it: " + reinterpret_cast<const char*>(msg));
  }
  pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
  return PcreCode(re, PcreFree{});
}

// ------------------------------------------------------------------------------------------------
// Hugging Face tokenizer.json
//
// Encoding, as the library does it: the added tokens whose "normalized" is false are cut out of the
// raw text (leftmost, then longest); each remaining segment is normalized; the added tokens whose
// "normalized" is true are cut out of that; each remaining part is cut into pieces by the
// pre-tokenizer; each piece goes through the BPE model. EncodeDocument then puts the
// post-processor's tokens around the whole. Decoding turns each id into its token string and runs
// the decoder chain over the list.

enum class PrependScheme { kFirst, kNever, kAlways };

struct NormStep {
  enum class Kind { kNfc, kPrepend, kReplace } kind;
  std::string a, b;  // Prepend: a; Replace: a -> b
};

struct PreStep {
  enum class Kind { kSplit, kMetaspace } kind;  // ByteLevel's own regex is a Split step
  const pcre2_code* re = nullptr;
  std::string replacement;  // Metaspace
  PrependScheme scheme = PrependScheme::kAlways;
  bool split = true;
};

struct DecStep {
  enum class Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace } kind;
  std::string a, b;  // Replace: a -> b; Strip: a, the character; Metaspace: a, the replacement
  size_t start = 0, stop = 0;
  PrependScheme scheme = PrependScheme::kAlways;
};

struct HfAddedToken {
  int32_t id;
  std::string content;
  std::string pattern;  // what is matched (and decoded): content, normalized when "normalized"
  bool special, normalized, lstrip, rstrip;
};

// Leftmost-longest matching of a set of strings (the library's Aho-Corasick, MatchKind::
// LeftmostLongest): the match starting first, and of those the longest.
class TokenMatcher {
 public:
  void Add(const std::string& pattern, int index) {
    if (pattern.empty()) return;
    by_first_[static_cast<unsigned char>(pattern[0])].emplace_back(pattern, index);
  }
  void Finish() {
    for (auto& v : by_first_) {
      std::stable_sort(v.begin(), v.end(),
                       [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    }
  }
  bool empty() const {
    return std::all_of(by_first_.begin(), by_first_.end(), [](const auto& v) { return v.empty(); });
  }
  // The first match at or after pos: true, with its start, length and index.
  bool Find(std::string_view text, size_t pos, size_t* start, size_t* len, int* index) const {
    for (size_t i = pos; i < text.size(); ++i) {
      for (const auto& [pat, idx] : by_first_[static_cast<unsigned char>(text[i])]) {
        if (text.compare(i, pat.size(), pat) == 0) {
          *start = i;
          *len = pat.size();
          *index = idx;
          return true;
        }
      }
    }
    return false;
  }

 private:
  std::array<std::vector<std::pair<std::string, int>>, 256> by_first_;
};

struct HfModel {
  std::string name;                                // "gpt2-bpe", "byte-bpe", "sentencepiece-bpe"
  bool byte_level = false;                         // the model's symbols are bytes, else characters
  std::vector<std::string> spelled;                // id -> the token string decoding starts from
  std::unordered_map<std::string, int32_t> vocab;  // model.vocab as the model sees it -> id
  std::array<int32_t, 256> byte_token{};           // byte-level: each byte's token
  std::array<int32_t, 256> fallback_token{};       // <0xNN>, -1 where absent
  bool byte_fallback = false, fuse_unk = false, ignore_merges = false;
  int32_t unk = -1;
  MergeTable merges;
  std::vector<NormStep> normalizer;
  std::vector<PreStep> pre_tokenizer;
  std::vector<DecStep> decoder;
  std::vector<HfAddedToken> added;
  TokenMatcher raw_tokens, normalized_tokens;
  std::vector<int32_t> doc_prefix, doc_suffix;
  std::optional<int32_t> bos, eos;
  std::vector<PcreCode> regexes;  // owns the Split steps' regexes
};

std::string ReplaceAll(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0;;) {
    const size_t hit = from.empty() ? std::string_view::npos : s.find(from, pos);
    if (hit == std::string_view::npos) {
      out.append(s.substr(pos));
      return out;
    }
    out.append(s.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
}

std::string Normalize(const std::vector<NormStep>& steps, std::string_view text) {
  std::string s(text);
  for (const NormStep& n : steps) {
    switch (n.kind) {
      case NormStep::Kind::kNfc:
        s = NfcNormalize(s);
        break;
      case NormStep::Kind::kPrepend:
        if (!s.empty()) s.insert(0, n.a);
        break;
      case NormStep::Kind::kReplace:
        s = ReplaceAll(s, n.a, n.b);
        break;
    }
  }
  return s;
}

// The length of the UTF-8 character (or invalid byte) at s[i].
size_t CharLen(std::string_view s, size_t i) {
  const size_t len = Utf8SeqLen(reinterpret_cast<const unsigned char*>(s.data()) + i, s.size() - i);
  return len == 0 ? 1 : len;
}

class HfBpe final : public Tokenizer {
 public:
  explicit HfBpe(HfModel m) : m_(std::move(m)) {}

  std::string name() const override { return m_.name; }
  int32_t vocab_size() const override { return static_cast<int32_t>(m_.spelled.size()); }
  std::optional<int32_t> eot() const override { return m_.eos; }
  std::optional<int32_t> bos() const override { return m_.bos; }
  std::optional<int32_t> eos() const override { return m_.eos; }

  std::vector<int32_t> Encode(std::string_view text) const override { return Run(text, Specials::kText); }
  std::vector<int32_t> EncodeWithSpecial(std::string_view text) const override {
    return Run(text, Specials::kRecognised);
  }
  std::vector<int32_t> EncodeDocument(std::string_view text) const override {
    std::vector<int32_t> ids = m_.doc_prefix;
    const std::vector<int32_t> body = Run(text, Specials::kRecognised);
    ids.insert(ids.end(), body.begin(), body.end());
    ids.insert(ids.end(), m_.doc_suffix.begin(), m_.doc_suffix.end());
    return ids;
  }

  Status Decode(std::span<const int32_t> ids, std::string* out) const override {
    STRATA_RETURN_IF_ERROR(CheckIds(ids, vocab_size()));
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) tokens.push_back(m_.spelled[id]);
    for (const DecStep& d : m_.decoder) tokens = DecodeStep(d, std::move(tokens));
    for (const std::string& t : tokens) out->append(t);
    return Status::Ok();
  }

 private:
  enum class Specials { kText, kRecognised };  // the library's encode_special_tokens true / false

  struct State {
    std::vector<MatchData> md;  // per pre-tokenizer step
    BpeScratch scratch;
    std::unordered_map<std::string, std::pair<size_t, size_t>> cache;  // piece -> its ids in the output
  };

  std::vector<int32_t> Run(std::string_view text, Specials specials) const {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 16);
    State st;
    for (const PreStep& p : m_.pre_tokenizer) st.md.push_back(p.re ? NewMatchData(p.re) : MatchData());
    ForEachAdded(m_.raw_tokens, text, specials, [&](size_t begin, size_t end, int added) {
      if (added >= 0) {
        ids.push_back(m_.added[added].id);
        return;
      }
      const std::string norm = Normalize(m_.normalizer, text.substr(begin, end - begin));
      ForEachAdded(m_.normalized_tokens, norm, specials, [&](size_t b2, size_t e2, int added2) {
        if (added2 >= 0) {
          ids.push_back(m_.added[added2].id);
          return;
        }
        PreTokenize(std::string_view(norm).substr(b2, e2 - b2), begin == 0 && b2 == 0, &st, &ids);
      });
    });
    return ids;
  }

  // Cuts text at the added tokens of `matcher`: emit(begin, end, index of the token or -1), in order,
  // never an empty text part. kText skips the special tokens' matches (they stay text).
  template <typename Emit>
  void ForEachAdded(const TokenMatcher& matcher, std::string_view text, Specials specials, Emit&& emit) const {
    size_t done = 0;  // text before this is emitted
    size_t pos = 0, start = 0, len = 0;
    int index = -1;
    while (!matcher.empty() && matcher.Find(text, pos, &start, &len, &index)) {
      const HfAddedToken& a = m_.added[index];
      pos = start + len;
      if (specials == Specials::kText && a.special) continue;
      size_t begin = start, end = start + len;
      if (a.lstrip) {
        while (begin > done) {  // back over whole White_Space characters
          size_t k = begin - 1;
          while (k > done && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
          const size_t l = Utf8SeqLen(reinterpret_cast<const unsigned char*>(text.data()) + k, text.size() - k);
          if (l != begin - k || !IsWhiteSpace(Utf8Decode(reinterpret_cast<const unsigned char*>(text.data()) + k, l))) {
            break;
          }
          begin = k;
        }
      }
      if (a.rstrip) {
        while (end < text.size()) {
          const size_t l = Utf8SeqLen(reinterpret_cast<const unsigned char*>(text.data()) + end, text.size() - end);
          if (l == 0 || !IsWhiteSpace(Utf8Decode(reinterpret_cast<const unsigned char*>(text.data()) + end, l))) break;
          end += l;
        }
        pos = end;
      }
      if (begin > done) emit(done, begin, -1);
      emit(begin, end, index);
      done = end;
    }
    if (done < text.size()) emit(done, text.size(), -1);
  }

  // Pre-tokenizes one normalized part into pieces and encodes each. `origin`: the part starts the
  // text (Metaspace's prepend_scheme "first").
  void PreTokenize(std::string_view part, bool origin, State* st, std::vector<int32_t>* ids) const {
    std::vector<std::string> pieces{std::string(part)}, next;
    for (size_t k = 0; k < m_.pre_tokenizer.size(); ++k) {
      const PreStep& p = m_.pre_tokenizer[k];
      next.clear();
      for (size_t i = 0; i < pieces.size(); ++i) {
        const std::string& piece = pieces[i];
        if (p.kind == PreStep::Kind::kSplit) {
          ForEachPiece(p.re, st->md[k].get(), piece, [&](std::string_view s) { next.emplace_back(s); });
          continue;
        }
        std::string s = ReplaceAll(piece, " ", p.replacement);
        const bool prepend =
            p.scheme == PrependScheme::kAlways || (p.scheme == PrependScheme::kFirst && origin && i == 0);
        if (prepend && !std::string_view(s).starts_with(p.replacement)) s.insert(0, p.replacement);
        if (!p.split) {
          next.push_back(std::move(s));
          continue;
        }
        // Split before each replacement, which joins the text after it (MergedWithNext).
        size_t from = 0;
        for (size_t hit = s.find(p.replacement, 1); hit != std::string::npos; hit = s.find(p.replacement, hit + 1)) {
          next.push_back(s.substr(from, hit - from));
          from = hit;
        }
        next.push_back(s.substr(from));
      }
      pieces.swap(next);  // only the first piece can start the text: Metaspace's i == 0
    }
    for (const std::string& piece : pieces) EncodePiece(piece, st, ids);
  }

  void EncodePiece(const std::string& piece, State* st, std::vector<int32_t>* ids) const {
    if (piece.empty()) return;
    if (auto hit = st->cache.find(piece); hit != st->cache.end()) {
      for (size_t k = 0; k < hit->second.second; ++k) ids->push_back((*ids)[hit->second.first + k]);
      return;
    }
    const size_t start = ids->size();
    if (auto whole = m_.ignore_merges ? m_.vocab.find(piece) : m_.vocab.end(); whole != m_.vocab.end()) {
      ids->push_back(whole->second);
    } else {
      std::vector<int32_t>& sym = st->scratch.initial;
      sym.clear();
      if (m_.byte_level) {
        for (char c : piece) sym.push_back(m_.byte_token[static_cast<unsigned char>(c)]);
      } else {
        CharSymbols(piece, &sym);
      }
      BpeMerge(m_.merges, &st->scratch, ids);
    }
    if (piece.size() <= PieceCache::kMaxPiece) st->cache.emplace(piece, std::pair{start, ids->size() - start});
  }

  // The symbols of a piece for a character-level model: each character's token; one missing from
  // the vocabulary becomes its bytes' <0xNN> tokens (byte_fallback), else <unk> (a run of them one
  // <unk> with fuse_unk), else nothing, all as the library orders them.
  void CharSymbols(std::string_view piece, std::vector<int32_t>* sym) const {
    std::optional<int32_t> pending_unk;
    std::string ch;
    for (size_t i = 0; i < piece.size();) {
      const size_t len = CharLen(piece, i);
      ch.assign(piece.substr(i, len));
      i += len;
      if (auto it = m_.vocab.find(ch); it != m_.vocab.end()) {
        if (pending_unk) sym->push_back(*pending_unk);
        pending_unk.reset();
        sym->push_back(it->second);
        continue;
      }
      if (m_.byte_fallback && std::all_of(ch.begin(), ch.end(), [&](char c) {
            return m_.fallback_token[static_cast<unsigned char>(c)] >= 0;
          })) {
        for (char c : ch) sym->push_back(m_.fallback_token[static_cast<unsigned char>(c)]);
        continue;  // (a pending <unk> stays pending, as in the library)
      }
      if (m_.unk < 0) continue;
      if (pending_unk && !m_.fuse_unk) sym->push_back(*pending_unk);
      pending_unk = m_.unk;
    }
    if (pending_unk) sym->push_back(*pending_unk);
  }

  static std::vector<std::string> DecodeStep(const DecStep& d, std::vector<std::string> tokens) {
    switch (d.kind) {
      case DecStep::Kind::kByteLevel: {  // one string: each token's alphabet to bytes, or the token as it is
        std::string all, bytes;
        uint32_t bad = 0;
        for (const std::string& t : tokens) all += AlphabetToBytes(t, &bytes, &bad) ? bytes : t;
        return {std::move(all)};
      }
      case DecStep::Kind::kReplace:
        for (std::string& t : tokens) t = ReplaceAll(t, d.a, d.b);
        return tokens;
      case DecStep::Kind::kByteFallback: {
        std::vector<std::string> out;
        std::string run;  // bytes of consecutive <0xNN> tokens
        bool in_run = false;
        for (std::string& t : tokens) {
          if (int b = FallbackByte(t); b >= 0) {
            run.push_back(static_cast<char>(b));
            in_run = true;
            continue;
          }
          if (in_run) out.push_back(std::move(run));
          run.clear();
          in_run = false;
          out.push_back(std::move(t));
        }
        if (in_run) out.push_back(std::move(run));
        return out;
      }
      case DecStep::Kind::kFuse: {
        std::string all;
        for (const std::string& t : tokens) all += t;
        return {std::move(all)};
      }
      case DecStep::Kind::kStrip:
        for (std::string& t : tokens) {
          size_t b = 0, e = t.size();
          for (size_t k = 0; k < d.start && t.compare(b, d.a.size(), d.a) == 0; ++k) b += d.a.size();
          for (size_t k = 0; k < d.stop && e >= b + d.a.size() && t.compare(e - d.a.size(), d.a.size(), d.a) == 0;
               ++k) {
            e -= d.a.size();
          }
          t = t.substr(b, e - b);
        }
        return tokens;
      case DecStep::Kind::kMetaspace:
        for (size_t i = 0; i < tokens.size(); ++i) {
          tokens[i] = ReplaceAll(tokens[i], d.a, i == 0 && d.scheme != PrependScheme::kNever ? "" : " ");
        }
        return tokens;
    }
    return tokens;
  }

  // The byte of a token "<0xNN>" as the library's ByteFallback reads it (Rust's u8::from_str_radix
  // of the two characters: hex digits, or '+' and one hex digit), else -1.
  static int FallbackByte(std::string_view t) {
    if (t.size() != 6 || !t.starts_with("<0x") || t.back() != '>') return -1;
    auto hex = [](char c) {
      return c >= '0' && c <= '9'   ? c - '0'
             : c >= 'a' && c <= 'f' ? c - 'a' + 10
             : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                    : -1;
    };
    if (t[3] == '+') return hex(t[4]);
    const int hi = hex(t[3]), lo = hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }

  HfModel m_;
};

// Reading tokenizer.json. Paths in messages are JSON paths: "normalizer.normalizers[1].type".
class HfReader {
 public:
  explicit HfReader(std::string file) : p_(std::move(file)) {}

  static const json* Field(const json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }

  Status Unsupported(const std::string& path, const std::string& what) const {
    return Status::InvalidArgument(p_ + ": " + path + " " + what);
  }
  Status Damaged(const std::string& path, const std::string& what) const {
    return Status::Corruption(p_ + ": " + path + " " + what);
  }

  // The "type" of a component; refused unless one of `supported` (a comma-separated list).
  Status Type(const json& obj, const std::string& path, const std::string& supported, std::string* type) const {
    if (!obj.is_object()) return Damaged(path, "is not an object (a " + JsonTypeName(obj) + ")");
    const json* t = Field(obj, "type");
    if (!t) return Damaged(path + ".type", "is missing");
    if (!t->is_string()) return Damaged(path + ".type", "is not a string");
    *type = t->get<std::string>();
    const std::string padded = ", " + supported + ",";
    if (padded.find(", " + *type + ",") == std::string::npos) {
      return Unsupported(path + ".type", Quote(*type) + " is not supported (supported: " + supported + ")");
    }
    return Status::Ok();
  }

  Status Bool(const json& obj, const std::string& path, const char* key, bool def, bool* out) const {
    *out = def;
    if (const json* v = Field(obj, key)) {
      if (!v->is_boolean()) return Damaged(path + "." + key, "is not true or false");
      *out = v->get<bool>();
    }
    return Status::Ok();
  }

  Status String(const json& obj, const std::string& path, const char* key, std::string* out) const {
    const json* v = Field(obj, key);
    if (!v) return Damaged(path + "." + key, "is missing");
    if (!v->is_string()) return Damaged(path + "." + key, "is not a string");
    *out = v->get<std::string>();
    return Status::Ok();
  }

  // A single character (Metaspace's replacement, Strip's content).
  Status Char(const json& obj, const std::string& path, const char* key, std::string* out) const {
    STRATA_RETURN_IF_ERROR(String(obj, path, key, out));
    const size_t len = out->empty() ? 0 : Utf8SeqLen(reinterpret_cast<const unsigned char*>(out->data()), out->size());
    if (len == 0 || len != out->size()) return Damaged(path + "." + key, Quote(*out) + " is not one character");
    return Status::Ok();
  }

  // A string pattern {"String": s}; {"Regex": ...} is refused where `regex_ok` is false.
  Status Pattern(const json& obj, const std::string& path, bool regex_ok, std::string* out, bool* is_regex) const {
    const json* pat = Field(obj, "pattern");
    if (!pat || !pat->is_object()) return Damaged(path + ".pattern", "is missing or not an object");
    if (const json* s = Field(*pat, "String")) {
      if (!s->is_string()) return Damaged(path + ".pattern.String", "is not a string");
      *out = s->get<std::string>();
      *is_regex = false;
      if (out->empty()) return Unsupported(path + ".pattern.String", "\"\" (empty) is not supported");
      return Status::Ok();
    }
    if (const json* r = Field(*pat, "Regex")) {
      if (!regex_ok) return Unsupported(path + ".pattern.Regex", "is not supported here (supported: String)");
      if (!r->is_string()) return Damaged(path + ".pattern.Regex", "is not a string");
      *out = r->get<std::string>();
      *is_regex = true;
      return Status::Ok();
    }
    return Damaged(path + ".pattern", "has neither \"String\" nor \"Regex\"");
  }

  Status PrependSchemeOf(const json& obj, const std::string& path, PrependScheme* out) const {
    *out = PrependScheme::kAlways;  // the library's default
    if (const json* v = Field(obj, "prepend_scheme")) {
      if (!v->is_string()) return Damaged(path + ".prepend_scheme", "is not a string");
      const std::string s = v->get<std::string>();
      if (s == "first")
        *out = PrependScheme::kFirst;
      else if (s == "never")
        *out = PrependScheme::kNever;
      else if (s == "always")
        *out = PrependScheme::kAlways;
      else
        return Unsupported(path + ".prepend_scheme", Quote(s) + " is not supported (supported: first, never, always)");
    }
    if (const json* v = Field(obj, "add_prefix_space")) {  // older files
      if (!v->is_boolean()) return Damaged(path + ".add_prefix_space", "is not true or false");
      if (!v->get<bool>()) {
        if (Field(obj, "prepend_scheme") && *out != PrependScheme::kNever) {
          return Damaged(path + ".add_prefix_space", "is false but prepend_scheme is not \"never\"");
        }
        *out = PrependScheme::kNever;
      }
    }
    return Status::Ok();
  }

  Status Normalizer(const json& j, const std::string& path, std::vector<NormStep>* out) const {
    std::string type;
    STRATA_RETURN_IF_ERROR(Type(j, path, "NFC, Prepend, Replace, Sequence", &type));
    if (type == "Sequence") {
      const json* list = Field(j, "normalizers");
      if (!list || !list->is_array()) return Damaged(path + ".normalizers", "is missing or not an array");
      for (size_t k = 0; k < list->size(); ++k) {
        STRATA_RETURN_IF_ERROR(Normalizer((*list)[k], path + ".normalizers[" + std::to_string(k) + "]", out));
      }
    } else if (type == "NFC") {
      out->push_back({NormStep::Kind::kNfc, {}, {}});
    } else if (type == "Prepend") {
      NormStep n{NormStep::Kind::kPrepend, {}, {}};
      STRATA_RETURN_IF_ERROR(String(j, path, "prepend", &n.a));
      out->push_back(std::move(n));
    } else {
      NormStep n{NormStep::Kind::kReplace, {}, {}};
      bool regex = false;
      STRATA_RETURN_IF_ERROR(Pattern(j, path, false, &n.a, &regex));
      STRATA_RETURN_IF_ERROR(String(j, path, "content", &n.b));
      out->push_back(std::move(n));
    }
    return Status::Ok();
  }

  // byte_level: set when a ByteLevel step is met (it must be the last).
  Status PreTokenizer(const json& j, const std::string& path, HfModel* m, bool* byte_level) const {
    std::string type;
    STRATA_RETURN_IF_ERROR(Type(j, path, "ByteLevel, Metaspace, Sequence, Split", &type));
    if (*byte_level) return Unsupported(path, "follows ByteLevel: ByteLevel must come last");
    if (type == "Sequence") {
      const json* list = Field(j, "pretokenizers");
      if (!list || !list->is_array()) return Damaged(path + ".pretokenizers", "is missing or not an array");
      for (size_t k = 0; k < list->size(); ++k) {
        STRATA_RETURN_IF_ERROR(
            PreTokenizer((*list)[k], path + ".pretokenizers[" + std::to_string(k) + "]", m, byte_level));
      }
      return Status::Ok();
    }
    if (type == "ByteLevel") {
      bool prefix = false, regex = true;  // their defaults when absent or null
      STRATA_RETURN_IF_ERROR(Bool(j, path, "add_prefix_space", false, &prefix));
      STRATA_RETURN_IF_ERROR(Bool(j, path, "use_regex", true, &regex));
      if (prefix) return Unsupported(path + ".add_prefix_space", "true is not supported");
      if (std::any_of(m->pre_tokenizer.begin(), m->pre_tokenizer.end(),
                      [](const PreStep& s) { return s.kind == PreStep::Kind::kMetaspace; })) {
        return Unsupported(path, "ByteLevel after Metaspace is not supported");
      }
      *byte_level = true;
      if (regex) {
        Result<PcreCode> re = CompileSplitRegex(kGpt2Pattern, false, p_ + ": " + path + " (its GPT-2 regex)");
        if (!re.ok()) return re.status();
        m->regexes.push_back(*re);
        m->pre_tokenizer.push_back({PreStep::Kind::kSplit, re->get(), {}, PrependScheme::kAlways, true});
      }
      return Status::Ok();
    }
    if (type == "Split") {
      std::string pattern, behavior;
      bool regex = false, invert = false;
      STRATA_RETURN_IF_ERROR(Pattern(j, path, true, &pattern, &regex));
      STRATA_RETURN_IF_ERROR(String(j, path, "behavior", &behavior));
      if (behavior != "Isolated") {
        return Unsupported(path + ".behavior", Quote(behavior) + " is not supported (supported: Isolated)");
      }
      STRATA_RETURN_IF_ERROR(Bool(j, path, "invert", false, &invert));
      if (invert) return Unsupported(path + ".invert", "true is not supported");
      Result<PcreCode> re = CompileSplitRegex(pattern, !regex, p_ + ": " + path + ".pattern");
      if (!re.ok()) return re.status();
      m->regexes.push_back(*re);
      m->pre_tokenizer.push_back({PreStep::Kind::kSplit, re->get(), {}, PrependScheme::kAlways, true});
      return Status::Ok();
    }
    PreStep s{PreStep::Kind::kMetaspace, nullptr, {}, PrependScheme::kAlways, true};
    STRATA_RETURN_IF_ERROR(Char(j, path, "replacement", &s.replacement));
    STRATA_RETURN_IF_ERROR(PrependSchemeOf(j, path, &s.scheme));
    STRATA_RETURN_IF_ERROR(Bool(j, path, "split", true, &s.split));
    m->pre_tokenizer.push_back(std::move(s));
    return Status::Ok();
  }

  Status Decoder(const json& j, const std::string& path, std::vector<DecStep>* out) const {
    std::string type;
    STRATA_RETURN_IF_ERROR(Type(j, path, "ByteFallback, ByteLevel, Fuse, Metaspace, Replace, Sequence, Strip", &type));
    DecStep d{DecStep::Kind::kFuse, {}, {}, 0, 0, PrependScheme::kAlways};
    if (type == "Sequence") {
      const json* list = Field(j, "decoders");
      if (!list || !list->is_array()) return Damaged(path + ".decoders", "is missing or not an array");
      for (size_t k = 0; k < list->size(); ++k) {
        STRATA_RETURN_IF_ERROR(Decoder((*list)[k], path + ".decoders[" + std::to_string(k) + "]", out));
      }
      return Status::Ok();
    }
    if (type == "ByteLevel") {
      d.kind = DecStep::Kind::kByteLevel;  // its options change offsets only
    } else if (type == "ByteFallback") {
      d.kind = DecStep::Kind::kByteFallback;
    } else if (type == "Fuse") {
      d.kind = DecStep::Kind::kFuse;
    } else if (type == "Replace") {
      d.kind = DecStep::Kind::kReplace;
      bool regex = false;
      STRATA_RETURN_IF_ERROR(Pattern(j, path, false, &d.a, &regex));
      STRATA_RETURN_IF_ERROR(String(j, path, "content", &d.b));
    } else if (type == "Strip") {
      d.kind = DecStep::Kind::kStrip;
      STRATA_RETURN_IF_ERROR(Char(j, path, "content", &d.a));
      for (const char* key : {"start", "stop"}) {
        const json* v = Field(j, key);
        if (!v || !v->is_number_unsigned() || v->get<uint64_t>() > 1u << 20) {
          return Damaged(path + "." + key, "is missing or not a small non-negative integer");
        }
        (std::string_view(key) == "start" ? d.start : d.stop) = static_cast<size_t>(v->get<uint64_t>());
      }
    } else {
      d.kind = DecStep::Kind::kMetaspace;
      STRATA_RETURN_IF_ERROR(Char(j, path, "replacement", &d.a));
      STRATA_RETURN_IF_ERROR(PrependSchemeOf(j, path, &d.scheme));
    }
    out->push_back(std::move(d));
    return Status::Ok();
  }

  // ids_of: a special token's name -> its ids (TemplateProcessing's own table).
  Status PostProcessor(const json& j, const std::string& path, int32_t vocab_size, HfModel* m, bool* templated) const {
    std::string type;
    STRATA_RETURN_IF_ERROR(Type(j, path, "ByteLevel, Sequence, TemplateProcessing", &type));
    if (type == "ByteLevel") return Status::Ok();  // it trims offsets; the ids stay as they are
    if (type == "Sequence") {
      const json* list = Field(j, "processors");
      if (!list || !list->is_array()) return Damaged(path + ".processors", "is missing or not an array");
      for (size_t k = 0; k < list->size(); ++k) {
        STRATA_RETURN_IF_ERROR(
            PostProcessor((*list)[k], path + ".processors[" + std::to_string(k) + "]", vocab_size, m, templated));
      }
      return Status::Ok();
    }
    if (*templated) return Unsupported(path, "is a second TemplateProcessing; one is supported");
    *templated = true;
    const json* single = Field(j, "single");
    if (!single || !single->is_array()) return Damaged(path + ".single", "is missing or not an array");
    const json* specials = Field(j, "special_tokens");
    bool seen_a = false;
    for (size_t k = 0; k < single->size(); ++k) {
      const std::string at = path + ".single[" + std::to_string(k) + "]";
      const json& item = (*single)[k];
      if (const json* seq = Field(item, "Sequence")) {
        const json* id = Field(*seq, "id");
        if (!id || *id != "A" || seen_a) return Unsupported(at, "is not the one sequence \"A\" (supported: one $A)");
        seen_a = true;
        continue;
      }
      const json* tok = Field(item, "SpecialToken");
      const json* name = tok ? Field(*tok, "id") : nullptr;
      if (!name || !name->is_string())
        return Damaged(at, "is neither {\"Sequence\": ...} nor {\"SpecialToken\": {\"id\": ...}}");
      const json* entry = specials ? Field(*specials, name->get<std::string>().c_str()) : nullptr;
      const json* ids = entry ? Field(*entry, "ids") : nullptr;
      if (!ids || !ids->is_array()) {
        return Damaged(at, "names " + Quote(name->get<std::string>()) + ", which " + path + ".special_tokens lacks");
      }
      for (const json& id : *ids) {
        const std::optional<int32_t> id32 = JsonId(id);
        if (!id32 || *id32 >= vocab_size) {
          return Damaged(path + ".special_tokens",
                         Quote(name->get<std::string>()) + ": id " + id.dump() + " is outside the vocabulary");
        }
        (seen_a ? m->doc_suffix : m->doc_prefix).push_back(*id32);
      }
    }
    if (!seen_a) return Unsupported(path + ".single", "has no sequence $A");
    return Status::Ok();
  }

 private:
  std::string p_;
};

// tokenizer_config.json: bos_token / eos_token (a string, null, or {"content": ...}), and
// add_bos_token / add_eos_token, which must agree with the post-processor.
Status ReadTokenizerConfig(const std::string& path, const std::unordered_map<std::string, int32_t>& id_of_content,
                           const std::vector<std::string>& spelled, HfModel* m) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  Result<json> parsed = ParseJson(path, *text);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->is_object()) return Status::Corruption(path + ": not a JSON object (a " + JsonTypeName(*parsed) + ")");
  // A key that is absent leaves what the post-processor gave; null means none.
  auto token = [&](const char* key, std::optional<int32_t>* out) -> Status {
    if (!parsed->contains(key)) return Status::Ok();
    out->reset();
    const json* v = HfReader::Field(*parsed, key);
    if (!v) return Status::Ok();
    if (v->is_object()) v = HfReader::Field(*v, "content");
    if (!v || !v->is_string())
      return Status::Corruption(path + ": " + key + " is not a string, null or {\"content\": string}");
    const std::string name = v->get<std::string>();
    if (auto it = id_of_content.find(name); it != id_of_content.end()) {
      *out = it->second;
      return Status::Ok();
    }
    return Status::Corruption(path + ": " + key + " " + Quote(name) + " is not a token of tokenizer.json");
  };
  STRATA_RETURN_IF_ERROR(token("bos_token", &m->bos));
  STRATA_RETURN_IF_ERROR(token("eos_token", &m->eos));
  for (int k = 0; k < 2; ++k) {
    const char* key = k == 0 ? "add_bos_token" : "add_eos_token";
    const json* v = HfReader::Field(*parsed, key);
    if (!v) continue;
    if (!v->is_boolean()) return Status::Corruption(path + ": " + key + " is not true or false");
    const std::optional<int32_t>& tok = k == 0 ? m->bos : m->eos;
    const std::vector<int32_t>& added = k == 0 ? m->doc_prefix : m->doc_suffix;
    const bool agrees = v->get<bool>() ? tok && added == std::vector<int32_t>{*tok} : added.empty();
    if (!agrees) {
      return Status::InvalidArgument(
          path + ": " + key + " is " + (v->get<bool>() ? "true" : "false") + " but tokenizer.json's post_processor " +
          (added.empty() ? std::string("adds nothing ") : "adds " + Quote(spelled[added[0]]) + " ") +
          (k == 0 ? "before" : "after") +
          " the text; strata encodes documents as the post-processor does, and "
          "the two files disagree");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<Tokenizer>> LoadHfJson(const std::string& path) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  Result<json> parsed = ParseJson(path, *text);
  if (!parsed.ok()) return parsed.status();
  const json& root = *parsed;
  const std::string& p = path;
  if (!root.is_object()) return Status::Corruption(p + ": not a JSON object (a " + JsonTypeName(root) + ")");
  const HfReader r(p);
  auto field = HfReader::Field;

  for (const char* key : {"truncation", "padding"}) {
    if (field(root, key)) return r.Unsupported(key, "is set; strata encodes whole texts, unpadded");
  }
  const json* model = field(root, "model");
  if (!model || !model->is_object()) return Status::Corruption(p + ": no \"model\" object");
  // Older files leave out model.type; a vocab and merges then mean BPE.
  if (const json* type = field(*model, "type")) {
    if (!type->is_string()) return Status::Corruption(p + ": model.type is not a string");
    if (*type != "BPE")
      return r.Unsupported("model.type", Quote(type->get<std::string>()) + " is not supported (supported: BPE)");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json* v = field(*model, key);
    if (v && !(v->is_string() && v->get<std::string>().empty())) {
      return r.Unsupported(std::string("model.") + key, "is set; not supported");
    }
  }
  if (const json* v = field(*model, "dropout"); v && !(v->is_number() && v->get<double>() == 0.0)) {
    return r.Unsupported("model.dropout", v->dump() + " is not supported (supported: null, 0)");
  }

  HfModel m;
  STRATA_RETURN_IF_ERROR(r.Bool(*model, "model", "byte_fallback", false, &m.byte_fallback));
  STRATA_RETURN_IF_ERROR(r.Bool(*model, "model", "fuse_unk", false, &m.fuse_unk));
  STRATA_RETURN_IF_ERROR(r.Bool(*model, "model", "ignore_merges", false, &m.ignore_merges));

  if (const json* norm = field(root, "normalizer"))
    STRATA_RETURN_IF_ERROR(r.Normalizer(*norm, "normalizer", &m.normalizer));
  bool byte_level = false;
  if (const json* pre = field(root, "pre_tokenizer")) {
    STRATA_RETURN_IF_ERROR(r.PreTokenizer(*pre, "pre_tokenizer", &m, &byte_level));
  }
  m.byte_level = byte_level;
  const json* dec = field(root, "decoder");
  if (!dec) return r.Unsupported("decoder", "is missing (null); strata needs one to decode");
  STRATA_RETURN_IF_ERROR(r.Decoder(*dec, "decoder", &m.decoder));

  // The vocabulary, then the added tokens.
  const std::string vw = p + " model.vocab";
  const json* vocab = field(*model, "vocab");
  if (!vocab || !vocab->is_object()) return Status::Corruption(p + ": model.vocab is missing or not an object");
  std::vector<std::pair<std::string, int32_t>> entries;
  STRATA_RETURN_IF_ERROR(ReadVocab(*vocab, vw, &entries));

  struct Added {
    HfAddedToken t;
    std::string where;
  };
  std::vector<Added> added;
  if (const json* list = field(root, "added_tokens")) {
    if (!list->is_array()) return Status::Corruption(p + ": added_tokens is not an array");
    for (size_t k = 0; k < list->size(); ++k) {
      const json& a = (*list)[k];
      const std::string at = "added_tokens[" + std::to_string(k) + "]";
      const std::string where = p + " " + at;
      const json* id = field(a, "id");
      const json* content = field(a, "content");
      if (!id || !id->is_number_integer() || !content || !content->is_string() || content->empty()) {
        return Status::Corruption(where + ": expected {\"id\": integer, \"content\": non-empty string, ...}");
      }
      const std::optional<int32_t> id32 = JsonId(*id);
      if (!id32) return Status::Corruption(where + ": id " + id->dump() + " is out of range");
      HfAddedToken t{*id32, content->get<std::string>(), {}, false, false, false, false};
      bool single_word = false;
      STRATA_RETURN_IF_ERROR(r.Bool(a, at, "special", false, &t.special));
      STRATA_RETURN_IF_ERROR(r.Bool(a, at, "normalized", !t.special, &t.normalized));
      STRATA_RETURN_IF_ERROR(r.Bool(a, at, "lstrip", false, &t.lstrip));
      STRATA_RETURN_IF_ERROR(r.Bool(a, at, "rstrip", false, &t.rstrip));
      STRATA_RETURN_IF_ERROR(r.Bool(a, at, "single_word", false, &single_word));
      if (single_word) return r.Unsupported(at + ".single_word", "true is not supported");
      added.push_back({std::move(t), where});
    }
  }
  std::unordered_map<int32_t, const Added*> added_by_id;
  for (const Added& a : added) {
    if (!added_by_id.emplace(a.t.id, &a).second) {
      return Status::Corruption(a.where + ": id " + std::to_string(a.t.id) + " is already an added token");
    }
  }

  // Ids must be exactly 0..N-1: a gap would be a token Decode could not spell.
  struct Entry {
    int32_t id;
    const std::string* spelled;
  };
  std::vector<Entry> all;
  all.reserve(entries.size() + added.size());
  std::unordered_map<std::string, int32_t> id_of;  // spelled model token -> id, to resolve merges
  id_of.reserve(entries.size());
  std::string bytes;
  for (const auto& [spelled, id] : entries) {
    if (spelled.empty()) return Status::Corruption(vw + ": an empty token (id " + std::to_string(id) + ")");
    auto a = added_by_id.find(id);
    if (a != added_by_id.end() && a->second->t.content != spelled) {
      return Status::Corruption(a->second->where + ": id " + std::to_string(id) + " is " + Quote(a->second->t.content) +
                                " here but " + Quote(spelled) + " in " + vw);
    }
    if (byte_level) {
      if (uint32_t bad = 0; AlphabetToBytes(spelled, &bytes, &bad)) {
        m.vocab.emplace(bytes, id);
      } else if (a == added_by_id.end()) {
        return Status::Corruption(vw + " entry " + Quote(spelled) + ": " + CodePointName(bad) +
                                  " is not in GPT-2's byte alphabet");
      }
    } else {
      m.vocab.emplace(spelled, id);
    }
    all.push_back({id, &spelled});
    id_of.emplace(spelled, id);
    if (a != added_by_id.end()) added_by_id.erase(a);
  }
  for (const Added& a : added) {
    if (added_by_id.count(a.t.id)) all.push_back({a.t.id, &a.t.content});
  }
  std::sort(all.begin(), all.end(), [](const Entry& a, const Entry& b) { return a.id < b.id; });
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0 && all[i].id == all[i - 1].id) {
      return Status::Corruption(vw + ": id " + std::to_string(all[i].id) + " is used by both " +
                                Quote(*all[i - 1].spelled) + " and " + Quote(*all[i].spelled));
    }
    if (all[i].id != static_cast<int32_t>(i)) {
      return Status::Corruption(vw + ": no token has id " + std::to_string(i) + " (ids must run from 0 to " +
                                std::to_string(all.size() - 1) + " without gaps; found " + std::to_string(all[i].id) +
                                ")");
    }
  }
  if (all.empty()) return Status::Corruption(vw + ": the vocabulary is empty");
  m.spelled.reserve(all.size());
  for (const Entry& e : all) m.spelled.push_back(*e.spelled);

  // Added tokens: what is matched, and (normalized ones) decoded, is their normalized content.
  std::unordered_map<std::string, int32_t> id_of_content(id_of);  // for tokenizer_config.json
  for (size_t k = 0; k < added.size(); ++k) {
    HfAddedToken& t = added[k].t;
    t.pattern = t.normalized ? Normalize(m.normalizer, t.content) : t.content;
    m.spelled[t.id] = t.pattern;
    (t.normalized ? m.normalized_tokens : m.raw_tokens).Add(t.pattern, static_cast<int>(k));
    id_of_content[t.content] = t.id;
    m.added.push_back(t);
  }
  m.raw_tokens.Finish();
  m.normalized_tokens.Finish();

  if (byte_level) {
    const ByteAlphabet& alpha = Alphabet();
    for (int b = 0; b < 256; ++b) {
      auto it = id_of.find(alpha.spelling[b]);
      if (it == id_of.end()) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", b);
        return Status::Corruption(vw + ": no token for byte " + hex + " (spelled " + Quote(alpha.spelling[b]) +
                                  "); byte-level BPE needs all 256");
      }
      m.byte_token[b] = it->second;
    }
  }
  m.fallback_token.fill(-1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    if (auto it = m.vocab.find(name); it != m.vocab.end()) m.fallback_token[b] = it->second;
  }
  if (const json* unk = field(*model, "unk_token")) {
    if (!unk->is_string()) return Status::Corruption(p + ": model.unk_token is not a string");
    auto it = id_of.find(unk->get<std::string>());
    if (it == id_of.end())
      return Status::Corruption(p + ": model.unk_token " + Quote(unk->get<std::string>()) + " is not in " + vw);
    m.unk = it->second;
  }

  const json* merges = field(*model, "merges");
  if (!merges || !merges->is_array()) return Status::Corruption(p + ": model.merges is missing or not an array");
  m.merges.Reserve(merges->size());
  for (size_t k = 0; k < merges->size(); ++k) {
    const json& mj = (*merges)[k];
    const std::string where = p + " model.merges[" + std::to_string(k) + "]";
    std::pair<std::string, std::string> ab;
    bool ok = false;
    if (mj.is_string()) {  // "a b", the older form
      ok = SplitMerge(mj.get_ref<const std::string&>(), &ab);
    } else if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string()) {  // ["a", "b"]
      ab = {mj[0].get<std::string>(), mj[1].get<std::string>()};
      ok = !ab.first.empty() && !ab.second.empty();
    }
    if (!ok) {
      return Status::Corruption(where + ": expected \"a b\" or [\"a\", \"b\"], got " +
                                mj.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 48));
    }
    const auto& [a, b] = ab;
    auto ia = id_of.find(a), ib = id_of.find(b), iab = id_of.find(a + b);
    for (auto [it, sym] : {std::pair{ia, &a}, std::pair{ib, &b}}) {
      if (it == id_of.end()) return Status::Corruption(where + ": symbol " + Quote(*sym) + " is not in " + vw);
    }
    if (iab == id_of.end()) {
      return Status::Corruption(where + ": the merge of " + Quote(a) + " and " + Quote(b) + " (" + Quote(a + b) +
                                ") is not in " + vw);
    }
    if (const MergeRule* had = m.merges.Insert(ia->second, ib->second, {static_cast<int32_t>(k), iab->second})) {
      return Status::Corruption(where + ": merge " + Quote(a + " " + b) + " repeats " + p + " model.merges[" +
                                std::to_string(had->rank) + "]");
    }
  }

  bool templated = false;
  if (const json* post = field(root, "post_processor")) {
    STRATA_RETURN_IF_ERROR(
        r.PostProcessor(*post, "post_processor", static_cast<int32_t>(m.spelled.size()), &m, &templated));
  }
  const std::string config = (std::filesystem::path(p).parent_path() / "tokenizer_config.json").string();
  if (m.doc_prefix.size() == 1) m.bos = m.doc_prefix[0];
  if (m.doc_suffix.size() == 1) m.eos = m.doc_suffix[0];
  if (!m.eos) {
    if (auto it = id_of_content.find("<|endoftext|>"); it != id_of_content.end()) m.eos = it->second;
  }
  std::error_code ec;
  if (std::filesystem::exists(config, ec))
    STRATA_RETURN_IF_ERROR(ReadTokenizerConfig(config, id_of_content, m.spelled, &m));

  const bool gpt2 = byte_level && m.normalizer.empty() && m.pre_tokenizer.size() == 1 && field(root, "pre_tokenizer") &&
                    *field(*field(root, "pre_tokenizer"), "type") == "ByteLevel";
  m.name = !byte_level ? "sentencepiece-bpe" : gpt2 ? "gpt2-bpe" : "byte-bpe";
  return std::unique_ptr<Tokenizer>(std::make_unique<HfBpe>(std::move(m)));
}

}  // namespace

std::unique_ptr<Tokenizer> MakeByteTokenizer() { return std::make_unique<ByteTokenizer>(); }

Result<std::unique_ptr<Tokenizer>> LoadGpt2Tokenizer(const std::string& encoder_json, const std::string& vocab_bpe) {
  Result<std::string> enc_text = ReadFile(encoder_json);
  if (!enc_text.ok()) return enc_text.status();
  Result<std::string> bpe_text = ReadFile(vocab_bpe);
  if (!bpe_text.ok()) return bpe_text.status();

  BpeSource src;
  src.vocab_where = encoder_json;
  {
    Result<json> enc = ParseJson(encoder_json, *enc_text);
    if (!enc.ok()) return enc.status();
    if (!enc->is_object()) {
      return Status::Corruption(encoder_json + ": not a JSON object (a " + JsonTypeName(*enc) + ")");
    }
    STRATA_RETURN_IF_ERROR(ReadVocab(*enc, encoder_json, &src.vocab));
  }

  // vocab.bpe: "#version: 0.2", then one merge a line, "a b", highest priority first. Blank lines
  // may end the file, nothing else may be blank ("# #" is a merge, not a comment).
  std::string_view text = *bpe_text;
  std::vector<int> line_of;  // merge index -> line number (from 1)
  int line_no = 0;
  size_t blank_at = 0;  // the first blank line, if more text follows it
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1 && line.starts_with("#version")) continue;
    if (line.empty()) {
      if (blank_at == 0) blank_at = line_no;
      continue;
    }
    if (blank_at != 0) return Status::Corruption(vocab_bpe + " line " + std::to_string(blank_at) + ": blank line");
    std::pair<std::string, std::string> merge;
    if (!SplitMerge(line, &merge)) {
      return Status::Corruption(vocab_bpe + " line " + std::to_string(line_no) +
                                ": expected two symbols separated by one space, got " + Quote(line));
    }
    src.merges.push_back(std::move(merge));
    line_of.push_back(line_no);
  }
  src.merge_where = [vocab_bpe, line_of = std::move(line_of)](size_t k) {
    return vocab_bpe + " line " + std::to_string(line_of[k]);
  };
  return BuildGpt2Bpe(std::move(src));
}

Result<std::unique_ptr<Tokenizer>> LoadHfTokenizer(const std::string& tokenizer_json) {
  return LoadHfJson(tokenizer_json);
}

Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& spec) {
  namespace fs = std::filesystem;
  const std::string forms =
      "--tokenizer takes \"byte\", a directory holding encoder.json + vocab.bpe or tokenizer.json, a path to a "
      "tokenizer.json, or \"gpt2:DIR\"";
  if (spec == "byte") return MakeByteTokenizer();
  if (spec.empty()) return Status::InvalidArgument("empty tokenizer; " + forms);
  if (spec.starts_with("gpt2:")) {
    const std::string dir = spec.substr(5);
    if (dir.empty()) return Status::InvalidArgument("\"gpt2:\" names no directory; " + forms);
    return LoadGpt2Tokenizer(dir + "/encoder.json", dir + "/vocab.bpe");
  }
  std::error_code ec;
  const fs::file_status st = fs::status(spec, ec);
  if (st.type() == fs::file_type::not_found) {
    return Status::NotFound("tokenizer \"" + spec + "\": no such file or directory; " + forms);
  }
  if (ec) return Status::IOError("tokenizer \"" + spec + "\": " + ec.message());
  if (fs::is_directory(st)) {
    const std::string enc = spec + "/encoder.json", bpe = spec + "/vocab.bpe", hf = spec + "/tokenizer.json";
    const bool has_enc = fs::exists(enc, ec), has_bpe = fs::exists(bpe, ec);
    // The OpenAI pair first: they are the originals the other is converted from.
    if (has_enc && has_bpe) return LoadGpt2Tokenizer(enc, bpe);
    if (fs::exists(hf, ec)) return LoadHfTokenizer(hf);
    if (has_enc != has_bpe) {
      return Status::NotFound(spec + ": has " + (has_enc ? "encoder.json" : "vocab.bpe") + " but not " +
                              (has_enc ? "vocab.bpe" : "encoder.json"));
    }
    return Status::NotFound(spec + ": holds neither encoder.json + vocab.bpe nor tokenizer.json; " + forms);
  }
  return LoadHfTokenizer(spec);
}

Status SplitGpt2Pieces(std::string_view text, std::vector<std::string_view>* pieces) {
  const Gpt2Regex& re = Gpt2Regex::Get();
  STRATA_RETURN_IF_ERROR(re.status());
  MatchData md = NewMatchData(re.code());
  ForEachPiece(re.code(), md.get(), text, [&](std::string_view piece) { pieces->push_back(piece); });
  return Status::Ok();
}

}  // namespace strata::model
