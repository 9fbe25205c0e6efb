// Tokenizers (model/tokenizer.h): the byte tokenizer, and GPT-2's byte-level BPE loaded from the
// OpenAI files (encoder.json + vocab.bpe) or from a Hugging Face tokenizer.json.
//
// GPT-2 BPE, encoding: the text is cut into pieces by GPT-2's regular expression (PCRE2, JIT when
// the library has it), then each piece's bytes are merged pairwise, lowest merge rank first (ties:
// leftmost first). Tokens are held as raw bytes; the files spell them in GPT-2's byte alphabet (each
// byte one printable code point), which is translated once, at load.
//
// Any byte string round-trips: invalid UTF-8 never reaches the regex. The text is cut into valid
// runs and invalid bytes, and each invalid byte is a piece of its own (a single-byte token).
//
// A loaded tokenizer is immutable; Encode keeps its scratch (BPE heap, piece cache) per call, so one
// tokenizer may serve several threads at once.
#include "model/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
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
  } else {
    out->push_back(static_cast<char>(0xE0 | cp >> 12));
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
    Scratch scratch;
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
  struct Symbol {
    int32_t id;    // -1 once merged into the symbol on its left
    int32_t prev;  // index of the live neighbours, -1 at the ends
    int32_t next;
  };
  struct Candidate {  // the pair (left, right) at symbols [pos, next of pos] can merge
    int32_t rank, pos, left, right;
  };
  struct Scratch {
    std::vector<Symbol> symbols;
    std::vector<Candidate> heap;
  };

  const MergeRule* FindMerge(int32_t left, int32_t right) const { return m_.merges.Find(left, right); }

  // Byte-pair merging of one piece: start from its bytes, and repeatedly merge the adjacent pair of
  // lowest rank (leftmost first among equals) until no adjacent pair has a rule. A min-heap of
  // candidates keeps this O(n log n), so a 10k-letter "word" costs no more than its length;
  // candidates made stale by an earlier merge are recognised by their ids and dropped.
  void MergePiece(std::string_view piece, Scratch* s, std::vector<int32_t>* out) const {
    const int32_t n = static_cast<int32_t>(piece.size());
    if (n == 0) return;
    auto& sym = s->symbols;
    auto& heap = s->heap;
    sym.resize(n);
    heap.clear();
    for (int32_t i = 0; i < n; ++i) sym[i] = {m_.byte_token[static_cast<unsigned char>(piece[i])], i - 1, i + 1};
    sym[n - 1].next = -1;

    auto later = [](const Candidate& a, const Candidate& b) {
      return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
    };
    auto push = [&](int32_t pos) {
      const int32_t right = sym[pos].next;
      if (right < 0) return;
      if (const MergeRule* r = FindMerge(sym[pos].id, sym[right].id)) {
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
      sym[c.pos].id = FindMerge(c.left, c.right)->merged;
      sym[c.pos].next = sym[right].next;
      if (sym[right].next >= 0) sym[sym[right].next].prev = c.pos;
      sym[right].id = -1;
      if (sym[c.pos].prev >= 0) push(sym[c.pos].prev);
      push(c.pos);
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) out->push_back(sym[i].id);
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
  Result<std::string> text = ReadFile(tokenizer_json);
  if (!text.ok()) return text.status();
  Result<json> parsed = ParseJson(tokenizer_json, *text);
  if (!parsed.ok()) return parsed.status();
  const json& root = *parsed;
  const std::string& p = tokenizer_json;
  if (!root.is_object()) return Status::Corruption(p + ": not a JSON object (a " + JsonTypeName(root) + ")");
  auto field = [](const json& obj, const char* key) -> const json* {
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  };

  const json* model = field(root, "model");
  if (!model || !model->is_object()) return Status::Corruption(p + ": no \"model\" object");
  // Older files leave out model.type; a vocab and merges then mean BPE.
  if (const json* type = field(*model, "type")) {
    if (!type->is_string()) return Status::Corruption(p + ": model.type is not a string");
    if (*type != "BPE") {
      return Status::InvalidArgument(p + ": model.type is " + Quote(type->get<std::string>()) +
                                     ", only \"BPE\" is supported");
    }
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json* v = field(*model, key);
    if (v && !(v->is_string() && v->get<std::string>().empty())) {
      return Status::InvalidArgument(p + ": model." + key + " is set; GPT-2's BPE has none");
    }
  }
  // Encode applies GPT-2's pre-tokenizer and nothing else: refuse files that ask for more, rather
  // than give different ids than the library that wrote them. (Not json::value, which throws when
  // a key holds another type than its default's.)
  if (const json* norm = field(root, "normalizer")) {
    const json* type = norm->is_object() ? field(*norm, "type") : nullptr;
    return Status::InvalidArgument(
        p + ": normalizer " +
        Quote(!norm->is_object() ? norm->dump() : type && type->is_string() ? type->get<std::string>() : "?") +
        " is not supported (GPT-2 has none)");
  }
  const json* pre = field(root, "pre_tokenizer");
  const json* pre_type = pre && pre->is_object() ? field(*pre, "type") : nullptr;
  if (pre_type && !pre_type->is_string()) return Status::Corruption(p + ": pre_tokenizer.type is not a string");
  if (!pre_type || *pre_type != "ByteLevel") {
    return Status::InvalidArgument(
        p + ": pre_tokenizer is " +
        (pre && pre->is_object() ? Quote(pre_type ? pre_type->get<std::string>() : "?") : std::string("missing")) +
        ", only GPT-2's \"ByteLevel\" is supported");
  }
  bool flag[2] = {false, true};  // add_prefix_space, use_regex: their defaults when absent or null
  for (int k = 0; k < 2; ++k) {
    const char* key = k == 0 ? "add_prefix_space" : "use_regex";
    if (const json* v = field(*pre, key)) {
      if (!v->is_boolean()) return Status::Corruption(p + ": pre_tokenizer." + key + " is not true or false");
      flag[k] = v->get<bool>();
    }
  }
  if (flag[0] || !flag[1]) {
    return Status::InvalidArgument(p + ": pre_tokenizer ByteLevel with add_prefix_space true or use_regex false "
                                       "is not supported");
  }

  BpeSource src;
  src.vocab_where = p + " model.vocab";
  const json* vocab = field(*model, "vocab");
  if (!vocab || !vocab->is_object()) return Status::Corruption(p + ": model.vocab is missing or not an object");
  STRATA_RETURN_IF_ERROR(ReadVocab(*vocab, src.vocab_where, &src.vocab));

  const json* merges = field(*model, "merges");
  if (!merges || !merges->is_array()) return Status::Corruption(p + ": model.merges is missing or not an array");
  src.merges.reserve(merges->size());
  auto merge_where = [p](size_t k) { return p + " model.merges[" + std::to_string(k) + "]"; };
  for (size_t k = 0; k < merges->size(); ++k) {
    const json& m = (*merges)[k];
    std::pair<std::string, std::string> merge;
    bool ok = false;
    if (m.is_string()) {  // "a b", the older form
      ok = SplitMerge(m.get_ref<const std::string&>(), &merge);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["a", "b"]
      merge = {m[0].get<std::string>(), m[1].get<std::string>()};
      ok = !merge.first.empty() && !merge.second.empty();
    }
    if (!ok) {
      return Status::Corruption(merge_where(k) + ": expected \"a b\" or [\"a\", \"b\"], got " +
                                m.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 48));
    }
    src.merges.push_back(std::move(merge));
  }
  src.merge_where = merge_where;

  if (const json* added = field(root, "added_tokens")) {
    if (!added->is_array()) return Status::Corruption(p + ": added_tokens is not an array");
    for (size_t k = 0; k < added->size(); ++k) {
      const json& a = (*added)[k];
      const std::string where = p + " added_tokens[" + std::to_string(k) + "]";
      const json* id = a.is_object() ? field(a, "id") : nullptr;
      const json* content = a.is_object() ? field(a, "content") : nullptr;
      if (!id || !id->is_number_integer() || !content || !content->is_string() || content->empty()) {
        return Status::Corruption(where + ": expected {\"id\": integer, \"content\": non-empty string, ...}");
      }
      const std::optional<int32_t> id32 = JsonId(*id);
      if (!id32) return Status::Corruption(where + ": id " + id->dump() + " is out of range");
      src.added.push_back({*id32, content->get<std::string>(), where});
    }
  }
  return BuildGpt2Bpe(std::move(src));
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
