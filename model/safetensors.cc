#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cmath>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <set>
#include <utility>

#include "runtime/file_util.h"
#include "runtime/le.h"

namespace strata::model {

// Tensor bytes are little-endian on disk and are copied into host values with memcpy.
static_assert(std::endian::native == std::endian::little, "strata's safetensors code assumes a little-endian host");

namespace {

constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());


// Built by appending: at -O3, GCC 12 gives a false -Wrestrict warning for "literal" + std::string here.
std::string Quote(std::string_view s) {
  std::string q = "'";
  q.append(s);
  q += '\'';
  return q;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// ---- dtypes ------------------------------------------------------------------------------------

struct DTypeEntry {
  DType dtype;
  std::string_view name;
  uint64_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::kF64, "F64", 8},          {DType::kF32, "F32", 4},          {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2},        {DType::kI64, "I64", 8},          {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2},          {DType::kI8, "I8", 1},            {DType::kU64, "U64", 8},
    {DType::kU32, "U32", 4},          {DType::kU16, "U16", 2},          {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},        {DType::kF8E4M3, "F8_E4M3", 1},   {DType::kF8E5M2, "F8_E5M2", 1},
    {DType::kF8E8M0, "F8_E8M0", 1},   {DType::kF8E4M3Fnuz, "F8_E4M3FNUZ", 1},
    {DType::kF8E5M2Fnuz, "F8_E5M2FNUZ", 1}, {DType::kC64, "C64", 8},
};
const DTypeEntry* FindDType(DType d) {
  for (const auto& e : kDTypes)
    if (e.dtype == d) return &e;
  return nullptr;
}

// ---- UTF-8 -------------------------------------------------------------------------------------

// Offset of the first byte that is not part of a well-formed UTF-8 sequence (no overlong forms,
// no surrogates, nothing above U+10FFFF), or s.size() when all of s is well formed.
size_t FirstBadUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c < 0x80) { ++i; continue; }
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c == 0xED) { len = 3; hi = 0x9F; }  // no surrogates
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; }
    else return i;
    if (i + len > n) return i;
    if (p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    i += len;
  }
  return n;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// ---- JSON (RFC 8259, strict) -------------------------------------------------------------------

struct Json {
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::string text;                                   // kString: decoded; kNumber: the literal
  std::vector<Json> items;                            // kArray
  std::vector<std::string> keys;                      // kObject, in header order, duplicates kept;
  std::vector<Json> values;                           // values[i] belongs to keys[i]
};

const char* KindName(const Json& v) {
  switch (v.kind) {
    case Json::Kind::kNull: return "null";
    case Json::Kind::kBool: return "a boolean";
    case Json::Kind::kNumber: return "a number";
    case Json::Kind::kString: return "a string";
    case Json::Kind::kArray: return "a list";
    case Json::Kind::kObject: return "an object";
  }
  return "?";
}

// Recursive descent over text already checked to be UTF-8. Nesting is limited, so hostile input
// cannot exhaust the stack; safetensors headers nest three deep.
class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  bool ParseDocument(Json* out) {
    SkipSpace();
    if (!Value(out, 0)) return false;
    SkipSpace();
    if (pos_ != s_.size()) return Fail("unexpected " + Describe() + " after the top-level value");
    return true;
  }
  const std::string& error() const { return error_; }
  size_t error_offset() const { return error_offset_; }

 private:
  static constexpr int kMaxDepth = 64;

  bool Fail(std::string why) {
    if (error_.empty()) {
      error_ = std::move(why);
      error_offset_ = pos_;
    }
    return false;
  }
  std::string Describe() const {
    if (pos_ >= s_.size()) return "end of header";
    const unsigned char c = static_cast<unsigned char>(s_[pos_]);
    if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
    char buf[16];
    std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    return buf;
  }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool Expect(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return Fail(std::string("expected '") + c + "', found " + Describe());
  }

  bool Value(Json* out, int depth) {
    if (depth > kMaxDepth) return Fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    if (pos_ >= s_.size()) return Fail("expected a value, found end of header");
    switch (s_[pos_]) {
      case '{': return Object(out, depth);
      case '[': return Array(out, depth);
      case '"': out->kind = Json::Kind::kString; return String(&out->text);
      case 't': out->kind = Json::Kind::kBool; out->boolean = true; return Literal("true");
      case 'f': out->kind = Json::Kind::kBool; out->boolean = false; return Literal("false");
      case 'n': out->kind = Json::Kind::kNull; return Literal("null");
      default:
        if (s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9')) {
          out->kind = Json::Kind::kNumber;
          return Number(&out->text);
        }
        return Fail("expected a value, found " + Describe());
    }
  }

  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Fail("expected '" + std::string(word) + "'");
    pos_ += word.size();
    return true;
  }

  bool Object(Json* out, int depth) {
    out->kind = Json::Kind::kObject;
    ++pos_;  // '{'
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected a key string, found " + Describe());
      std::string key;
      if (!String(&key)) return false;
      SkipSpace();
      if (!Expect(':')) return false;
      SkipSpace();
      out->values.emplace_back();
      if (!Value(&out->values.back(), depth + 1)) return false;
      out->keys.push_back(std::move(key));
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      return Expect('}');
    }
  }

  bool Array(Json* out, int depth) {
    out->kind = Json::Kind::kArray;
    ++pos_;  // '['
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      SkipSpace();
      out->items.emplace_back();
      if (!Value(&out->items.back(), depth + 1)) return false;
      SkipSpace();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      return Expect(']');
    }
  }

  bool Hex4(uint32_t* v) {
    if (pos_ + 4 > s_.size()) return Fail("truncated \\u escape");
    *v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      uint32_t d;
      if (c >= '0' && c <= '9') d = static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') d = static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = static_cast<uint32_t>(c - 'A' + 10);
      else { --pos_; return Fail("bad hex digit in \\u escape"); }
      *v = *v << 4 | d;
    }
    return true;
  }

  bool String(std::string* out) {
    ++pos_;  // opening quote
    for (;;) {
      if (pos_ >= s_.size()) return Fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return Fail("control character " + Describe() + " in a string");
      if (c != '\\') {
        out->push_back(c);
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size()) return Fail("unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return Fail("lone low surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (s_.substr(pos_, 2) != "\\u") return Fail("high surrogate not followed by a \\u escape");
            pos_ += 2;
            if (!Hex4(&lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) return Fail("high surrogate not followed by a low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default: --pos_; return Fail("bad escape \\" + Describe());
      }
    }
  }

  bool Digits() {
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return pos_ > start || Fail("expected a digit, found " + Describe());
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; the literal is kept, read later as needed.
  bool Number(std::string* out) {
    const size_t start = pos_;
    if (s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
    } else if (!Digits()) {
      return false;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!Digits()) return false;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!Digits()) return false;
    }
    out->assign(s_.substr(start, pos_ - start));
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
  size_t error_offset_ = 0;
};

// A JSON number written as a plain non-negative integer (no sign, fraction or exponent, as the
// reference's serde_json reads usize) that fits in `max`.
bool AsUnsigned(const Json& v, uint64_t max, uint64_t* out) {
  if (v.kind != Json::Kind::kNumber || v.text.empty()) return false;
  uint64_t x = 0;
  for (char c : v.text) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (x > (max - d) / 10) return false;
    x = x * 10 + d;
  }
  *out = x;
  return true;
}

std::string Show(const Json& v) {
  if (v.kind == Json::Kind::kNumber) return v.text;
  if (v.kind == Json::Kind::kString) return "\"" + v.text + "\"";
  return KindName(v);
}

// ---- files -------------------------------------------------------------------------------------

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool ParseHex16(std::string_view s, uint64_t* v) {
  if (s.size() != 16) return false;
  *v = 0;
  for (char c : s) {
    uint64_t d;
    if (c >= '0' && c <= '9') d = static_cast<uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<uint64_t>(c - 'a' + 10);
    else return false;
    *v = *v << 4 | d;
  }
  return true;
}

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          *out += buf;
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

// numel * itemsize, or false when either product overflows (numel must also fit in int64).
bool TensorBytes(const std::vector<int64_t>& shape, DType dtype, uint64_t* numel, uint64_t* nbytes) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    const uint64_t u = static_cast<uint64_t>(d);
    if (n != 0 && u > kInt64Max / n) return false;
    n *= u;
  }
  const uint64_t size = DTypeSize(dtype);
  if (n > std::numeric_limits<uint64_t>::max() / size) return false;
  *numel = n;
  *nbytes = n * size;
  return true;
}

}  // namespace

// ---- dtypes and conversions --------------------------------------------------------------------

std::string_view DTypeName(DType dtype) {
  const DTypeEntry* e = FindDType(dtype);
  return e ? e->name : "?";
}

uint64_t DTypeSize(DType dtype) {
  const DTypeEntry* e = FindDType(dtype);
  return e ? e->size : 1;
}

Result<DType> ParseDType(std::string_view name) {
  for (const auto& e : kDTypes)
    if (e.name == name) return e.dtype;
  if (name == "F4" || name == "F6_E2M3" || name == "F6_E3M2")
    return Status::InvalidArgument("dtype " + Quote(name) +
                                   " is a sub-byte safetensors dtype, which strata does not read");
  std::string known;
  for (const auto& e : kDTypes) known += (known.empty() ? "" : ", ") + std::string(e.name);
  return Status::InvalidArgument("unknown dtype " + Quote(name) + " (known: " + known + ")");
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf, or NaN with its payload
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal: mant * 2^-24. Shift until the implicit bit (0x400) is set: s shifts give
    // 1.f * 2^(-14 - s), a normal float with biased exponent 113 - s.
    uint32_t s = 0;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      ++s;
    }
    bits = sign | ((113 - s) << 23) | ((mant & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

float BF16ToFloat(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

uint16_t FloatToBF16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN: quiet, sign kept
  const uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}

uint16_t FloatToHalf(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: infinity
  if (a < 0x38800000u) {
    // Below half's smallest normal (2^-14): a subnormal m * 2^-24, rounded to nearest even.
    const float mag = std::bit_cast<float>(a);
    const float scaled = mag * 16777216.0f;  // exact: a power of two
    const float r = std::nearbyint(scaled);  // the default rounding mode: to nearest even
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(r));
  }
  // Normal: rebias the exponent (127 -> 15) and round the 23-bit mantissa to 10 bits.
  const uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- reader ------------------------------------------------------------------------------------

Result<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  std::vector<uint8_t> bytes;
  STRATA_RETURN_IF_ERROR(ReadFile(path, &bytes));
  return FromBytes(std::move(bytes), path);
}

Result<SafetensorsFile> SafetensorsFile::OpenHeader(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT) return Status::NotFound(path + ": no such file");
    return Status::IOError(path + ": open: " + ErrnoText(e));
  }
  struct stat st;
  std::vector<uint8_t> head(8);
  auto read_at = [&](uint8_t* p, uint64_t n, uint64_t off) -> bool {
    while (n > 0) {
      const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
      if (r <= 0) return false;
      p += r;
      n -= static_cast<uint64_t>(r);
      off += static_cast<uint64_t>(r);
    }
    return true;
  };
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return Status::IOError(path + ": fstat: " + ErrnoText(e));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size >= 8) {
    if (!read_at(head.data(), 8, 0)) {
      ::close(fd);
      return Status::IOError(path + ": cannot read the header length");
    }
    const uint64_t n = GetU64(head.data());
    if (n <= kSafetensorsMaxHeaderBytes && n <= size - 8) {
      head.resize(8 + n);
      if (!read_at(head.data() + 8, n, 8)) {
        ::close(fd);
        return Status::IOError(path + ": cannot read the header");
      }
    }
  } else {
    head.clear();
  }
  ::close(fd);
  return Parse(std::move(head), path, size, /*header_only=*/true);
}

Result<SafetensorsFile> SafetensorsFile::FromBytes(std::vector<uint8_t> bytes, std::string name) {
  const uint64_t size = bytes.size();
  return Parse(std::move(bytes), std::move(name), size, /*header_only=*/false);
}

Result<SafetensorsFile> SafetensorsFile::Parse(std::vector<uint8_t> bytes, std::string name, uint64_t size,
                                               bool header_only) {
  SafetensorsFile f;
  f.path_ = std::move(name);
  f.header_only_ = header_only;
  auto bad = [&](const std::string& why) { return Status::Corruption(f.path_ + ": " + why); };

  // 1. The header length.
  if (size < 8)
    return bad("file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length field");
  const uint64_t n = GetU64(bytes.data());
  if (n == 0) return bad("header length (bytes 0..8) is 0; the smallest header is \"{}\"");
  if (n > kSafetensorsMaxHeaderBytes)
    return bad("header length " + std::to_string(n) + " (bytes 0..8) is over the limit of " +
               std::to_string(kSafetensorsMaxHeaderBytes) + " bytes");
  if (n > size - 8)
    return bad("header length " + std::to_string(n) + " (bytes 0..8) runs past the end of the file (" +
               std::to_string(size) + " bytes)");

  // 2. The header text: UTF-8, starting with '{', one JSON object, then only whitespace.
  const std::string_view header(reinterpret_cast<const char*>(bytes.data()) + 8, n);
  if (const size_t at = FirstBadUtf8(header); at != header.size())
    return bad("header is not valid UTF-8 at file offset " + std::to_string(8 + at));
  if (header[0] != '{') return bad("header does not start with '{' (file offset 8)");
  Json root;
  JsonParser parser(header);
  if (!parser.ParseDocument(&root))
    return bad("header is not valid JSON at file offset " + std::to_string(8 + parser.error_offset()) + ": " +
               parser.error());
  if (root.kind != Json::Kind::kObject) return bad("header is " + std::string(KindName(root)) + ", not an object");

  f.data_offset_ = 8 + n;
  f.file_size_ = size;
  const uint64_t data_size = size - f.data_offset_;
  auto range = [&](uint64_t b, uint64_t e) {
    std::string r = "[";  // appended, not "[" + ...: see Quote
    r += std::to_string(b);
    r += ", ";
    r += std::to_string(e);
    r += ")";
    return r;
  };

  // 3. Each entry.
  bool saw_metadata = false;
  for (size_t e = 0; e < root.keys.size(); ++e) {
    const std::string& key = root.keys[e];
    Json& value = root.values[e];
    if (key == "__metadata__") {
      if (saw_metadata) return bad("header has \"__metadata__\" twice");
      saw_metadata = true;
      if (value.kind == Json::Kind::kNull) continue;  // the reference reads null as no metadata
      if (value.kind != Json::Kind::kObject)
        return bad("\"__metadata__\" is " + std::string(KindName(value)) + ", not an object of strings");
      for (size_t m = 0; m < value.keys.size(); ++m) {
        const std::string& mk = value.keys[m];
        Json& mv = value.values[m];
        if (mv.kind != Json::Kind::kString)
          return bad("\"__metadata__\" key " + Quote(mk) + " is " + KindName(mv) + ", not a string");
        if (!f.metadata_.emplace(mk, std::move(mv.text)).second)
          return bad("\"__metadata__\" has key " + Quote(mk) + " twice");
      }
      continue;
    }
    const std::string what = "tensor " + Quote(key);
    if (f.index_.count(key)) return bad(what + " appears twice in the header");
    if (value.kind != Json::Kind::kObject) return bad(what + ": entry is " + KindName(value) + ", not an object");
    const Json *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
    for (size_t k = 0; k < value.keys.size(); ++k) {
      const std::string& fk = value.keys[k];
      const Json& fv = value.values[k];
      const Json** slot = fk == "dtype" ? &dtype : fk == "shape" ? &shape : fk == "data_offsets" ? &offsets : nullptr;
      if (!slot) continue;  // other keys are ignored, as the reference does
      if (*slot) return bad(what + ": key \"" + fk + "\" appears twice");
      *slot = &fv;
    }
    if (!dtype) return bad(what + ": no \"dtype\"");
    if (!shape) return bad(what + ": no \"shape\"");
    if (!offsets) return bad(what + ": no \"data_offsets\"");

    TensorInfo t;
    t.name = key;
    if (dtype->kind != Json::Kind::kString) return bad(what + ": dtype is " + KindName(*dtype) + ", not a string");
    Result<DType> dt = ParseDType(dtype->text);
    if (!dt.ok()) return bad(what + ": " + dt.status().message());
    t.dtype = *dt;

    if (shape->kind != Json::Kind::kArray) return bad(what + ": shape is " + KindName(*shape) + ", not a list");
    for (size_t i = 0; i < shape->items.size(); ++i) {
      uint64_t d;
      if (!AsUnsigned(shape->items[i], kInt64Max, &d))
        return bad(what + ": shape[" + std::to_string(i) + "] is " + Show(shape->items[i]) +
                   ", not a non-negative integer below 2^63");
      t.shape.push_back(static_cast<int64_t>(d));
    }
    uint64_t numel = 0, nbytes = 0;
    if (!TensorBytes(t.shape, t.dtype, &numel, &nbytes))
      return bad(what + ": shape " + ShapeString(t.shape) + " of " + std::string(DTypeName(t.dtype)) +
                 " overflows 64 bits (elements or bytes)");

    if (offsets->kind != Json::Kind::kArray || offsets->items.size() != 2 ||
        !AsUnsigned(offsets->items[0], std::numeric_limits<uint64_t>::max(), &t.begin) ||
        !AsUnsigned(offsets->items[1], std::numeric_limits<uint64_t>::max(), &t.end))
      return bad(what + ": data_offsets is not a list of two non-negative 64-bit integers");
    const std::string offs = "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "]";
    if (t.end < t.begin) return bad(what + ": " + offs + " ends before it begins");
    if (t.end - t.begin != nbytes)
      return bad(what + ": " + offs + " hold " + std::to_string(t.end - t.begin) + " bytes, but shape " +
                 ShapeString(t.shape) + " of " + std::string(DTypeName(t.dtype)) + " needs " +
                 std::to_string(nbytes));
    if (t.end > data_size)
      return bad(what + ": " + offs + " run past the end of the data buffer (" + std::to_string(data_size) +
                 " bytes, from file offset " + std::to_string(f.data_offset_) + ")");
    f.index_.emplace(key, f.tensors_.size());
    f.tensors_.push_back(std::move(t));
  }

  // 4. The tensors tile the data buffer: no overlap, no gap, no trailing bytes. Zero-size
  //    tensors sit at any boundary.
  std::vector<size_t> order(f.tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const TensorInfo &x = f.tensors_[a], &y = f.tensors_[b];
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  uint64_t pos = 0;
  const TensorInfo* prev = nullptr;  // the tensor that ends at pos
  for (size_t i : order) {
    const TensorInfo& t = f.tensors_[i];
    if (t.begin < pos)
      return bad("tensors " + Quote(prev->name) + " " + range(prev->begin, prev->end) + " and " + Quote(t.name) +
                 " " + range(t.begin, t.end) + " overlap in the data buffer");
    if (t.begin > pos)
      return bad("data buffer bytes " + range(pos, t.begin) + " (before tensor " + Quote(t.name) +
                 ") belong to no tensor; the format requires the tensors to cover the buffer");
    pos = t.end;
    prev = &t;
  }
  if (pos != data_size)
    return bad("data buffer bytes " + range(pos, data_size) + " (file offsets " +
               std::to_string(f.data_offset_ + pos) + ".." + std::to_string(size) +
               ") after the last tensor belong to no tensor; the format requires the tensors to cover the buffer");

  // Data-buffer order from here on.
  std::vector<TensorInfo> sorted;
  sorted.reserve(order.size());
  for (size_t i : order) sorted.push_back(std::move(f.tensors_[i]));
  f.tensors_ = std::move(sorted);
  for (size_t i = 0; i < f.tensors_.size(); ++i) f.index_[f.tensors_[i].name] = i;

  // 5. strata's checksum, when present (and the data was read).
  if (auto it = f.metadata_.find(kSafetensorsChecksumKey); it != f.metadata_.end() && !header_only) {
    uint64_t want;
    if (!ParseHex16(it->second, &want))
      return bad("metadata \"" + std::string(kSafetensorsChecksumKey) + "\" is \"" + it->second +
                 "\", not 16 lowercase hex digits");
    const uint64_t got = XXH3_64bits(bytes.data() + f.data_offset_, data_size);
    if (got != want)
      return bad("checksum mismatch: metadata \"" + std::string(kSafetensorsChecksumKey) + "\" is " + it->second +
                 " but the data buffer (file offsets " + std::to_string(f.data_offset_) + ".." +
                 std::to_string(size) + ") hashes to " + Hex16(got) + ": the tensor bytes were damaged");
  }
  f.bytes_ = std::move(bytes);
  return f;
}

const TensorInfo* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const uint8_t> SafetensorsFile::data() const {
  return std::span<const uint8_t>(bytes_).subspan(data_offset_);
}

std::span<const uint8_t> SafetensorsFile::Bytes(const TensorInfo& t) const {
  return data().subspan(t.begin, t.end - t.begin);
}

Result<const TensorInfo*> SafetensorsFile::Lookup(std::string_view name) const {
  if (header_only_) return Status::Internal(path_ + ": opened for its header only; tensor data not read");
  const TensorInfo* t = Find(name);
  if (!t) return Status::NotFound(path_ + ": no tensor " + Quote(name));
  return t;
}

namespace {
template <typename T>
T LoadAt(const uint8_t* p, size_t i) {
  T v;
  std::memcpy(&v, p + i * sizeof(T), sizeof(T));
  return v;
}
}  // namespace

Status SafetensorsFile::ReadF32(std::string_view name, std::span<float> out) const {
  Result<const TensorInfo*> found = Lookup(name);
  if (!found.ok()) return found.status();
  const TensorInfo& t = **found;
  const std::string what = path_ + ": tensor " + Quote(name) + " (" + std::string(DTypeName(t.dtype)) + " " +
                           ShapeString(t.shape) + ")";
  const size_t n = static_cast<size_t>(t.numel());
  if (out.size() != n)
    return Status::InvalidArgument(what + " has " + std::to_string(n) + " elements; the caller's buffer holds " +
                                   std::to_string(out.size()));
  const uint8_t* p = Bytes(t).data();
  switch (t.dtype) {
    case DType::kF32:
      if (n) std::memcpy(out.data(), p, n * sizeof(float));
      return Status::Ok();
    case DType::kF64:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(LoadAt<double>(p, i));
      return Status::Ok();
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) out[i] = HalfToFloat(LoadAt<uint16_t>(p, i));
      return Status::Ok();
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) out[i] = BF16ToFloat(LoadAt<uint16_t>(p, i));
      return Status::Ok();
    default:
      return Status::InvalidArgument(what + ": ReadF32 reads F64, F32, F16 or BF16");
  }
}

Result<std::vector<float>> SafetensorsFile::ReadF32(std::string_view name) const {
  Result<const TensorInfo*> found = Lookup(name);
  if (!found.ok()) return found.status();
  std::vector<float> out(static_cast<size_t>((*found)->numel()));
  STRATA_RETURN_IF_ERROR(ReadF32(name, out));
  return out;
}

Result<std::vector<int32_t>> SafetensorsFile::ReadI32(std::string_view name) const {
  Result<const TensorInfo*> found = Lookup(name);
  if (!found.ok()) return found.status();
  const TensorInfo& t = **found;
  const std::string what = path_ + ": tensor " + Quote(name) + " (" + std::string(DTypeName(t.dtype)) + " " +
                           ShapeString(t.shape) + ")";
  const size_t n = static_cast<size_t>(t.numel());
  const uint8_t* p = Bytes(t).data();
  std::vector<int32_t> out(n);
  auto convert = [&]<typename T>(T) -> Status {
    for (size_t i = 0; i < n; ++i) {
      const T v = LoadAt<T>(p, i);
      if (!std::in_range<int32_t>(v))
        return Status::InvalidArgument(what + ": element " + std::to_string(i) + " is " + std::to_string(v) +
                                       ", outside the int32 range");
      out[i] = static_cast<int32_t>(v);
    }
    return Status::Ok();
  };
  Status st;
  switch (t.dtype) {
    case DType::kI64: st = convert(int64_t{}); break;
    case DType::kI32: st = convert(int32_t{}); break;
    case DType::kI16: st = convert(int16_t{}); break;
    case DType::kI8: st = convert(int8_t{}); break;
    case DType::kU64: st = convert(uint64_t{}); break;
    case DType::kU32: st = convert(uint32_t{}); break;
    case DType::kU16: st = convert(uint16_t{}); break;
    case DType::kU8: st = convert(uint8_t{}); break;
    default: return Status::InvalidArgument(what + ": ReadI32 reads integer dtypes (I64 .. U8)");
  }
  if (!st.ok()) return st;
  return out;
}

// ---- streaming reader --------------------------------------------------------------------------

namespace {

void BF16ToF32Scalar(const uint8_t* p, size_t n, float* out) {
  for (size_t i = 0; i < n; ++i) {
    uint16_t b;
    std::memcpy(&b, p + 2 * i, 2);
    out[i] = std::bit_cast<float>(static_cast<uint32_t>(b) << 16);  // BF16ToFloat, inlined
  }
}

// BF16 -> fp32 into memory that is written once and read much later (the model's weights):
// non-temporal stores, so the destination is not read into the cache first (measured here:
// 2.3x the plain loop's rate, which matters when the loader shares the cores with other work).
// Interleaving a zero below each bfloat16 is exactly BF16ToFloat.
void BF16ToF32Stream(const uint8_t* p, size_t n, float* out) {
#if defined(__SSE2__)
  size_t i = 0;
  for (; i < n && (reinterpret_cast<uintptr_t>(out + i) & 15) != 0; ++i) BF16ToF32Scalar(p + 2 * i, 1, out + i);
  const __m128i zero = _mm_setzero_si128();
  for (; i + 8 <= n; i += 8) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i));
    _mm_stream_si128(reinterpret_cast<__m128i*>(out + i), _mm_unpacklo_epi16(zero, x));
    _mm_stream_si128(reinterpret_cast<__m128i*>(out + i + 4), _mm_unpackhi_epi16(zero, x));
  }
  _mm_sfence();
  BF16ToF32Scalar(p + 2 * i, n - i, out + i);
#else
  BF16ToF32Scalar(p, n, out);
#endif
}

// n elements of a float dtype at p (any alignment) -> out; `stream`: out is not read soon.
void ConvertToF32(DType dtype, const uint8_t* p, size_t n, float* out, bool stream = false) {
  switch (dtype) {
    case DType::kF32:
      if (n) std::memcpy(out, p, n * sizeof(float));
      break;
    case DType::kBF16:
      if (stream && n >= 64) BF16ToF32Stream(p, n, out);
      else BF16ToF32Scalar(p, n, out);
      break;
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) out[i] = HalfToFloat(LoadAt<uint16_t>(p, i));
      break;
    case DType::kF64:
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(LoadAt<double>(p, i));
      break;
    default:
      break;  // refused before the read
  }
}

bool IsFloatDType(DType d) { return d == DType::kF32 || d == DType::kBF16 || d == DType::kF16 || d == DType::kF64; }

// One target's progress through the stream.
struct Sink {
  const TensorInfo* t = nullptr;
  const StreamTarget* target = nullptr;
  uint64_t item = 0;
  uint64_t elem = 0;  // next element to produce
  uint8_t carry[8] = {};
  size_t ncarry = 0;  // bytes of a split element, from the previous chunk

  void Emit(const uint8_t* p, size_t n) {
    if (!target->differs) {
      ConvertToF32(t->dtype, p, n, target->out.data() + elem, /*stream=*/true);
    } else {
      float tile[1024];
      for (size_t i = 0; i < n; i += 1024) {
        const size_t k = std::min<size_t>(1024, n - i);
        ConvertToF32(t->dtype, p + i * item, k, tile);
        if (std::memcmp(tile, target->expect.data() + elem + i, k * sizeof(float)) != 0) *target->differs = true;
      }
    }
    elem += n;
  }
  // The tensor's bytes [at, at + n) (relative to its begin), in order.
  void Feed(const uint8_t* p, size_t n) {
    if (ncarry) {
      const size_t take = std::min<size_t>(item - ncarry, n);
      std::memcpy(carry + ncarry, p, take);
      ncarry += take;
      p += take;
      n -= take;
      if (ncarry < item) return;
      Emit(carry, 1);
      ncarry = 0;
    }
    const size_t whole = n / item;
    Emit(p, whole);
    p += whole * item;
    n -= whole * item;
    if (n) {
      std::memcpy(carry, p, n);
      ncarry = n;
    }
  }
};

// A reader thread filling two buffers in turn with the chunks of `plan` (data-buffer ranges), and
// the consumer taking them in order. With a direct fd (O_DIRECT), each chunk is read from the
// 4 KiB boundary before it to the one after it (or to the end of the file), straight into the
// buffer, bypassing the page cache; a chunk then starts a little into its buffer.
class ChunkReader {
 public:
  static constexpr uint64_t kAlign = 4096;
  struct Chunk {
    uint64_t begin = 0, len = 0;  // data-buffer offsets
  };
  ChunkReader(int fd, bool direct, uint64_t data_offset, std::vector<Chunk> plan, uint64_t buffer_bytes)
      : fd_(fd), direct_(direct), data_offset_(data_offset), plan_(std::move(plan)) {
    const uint64_t size = (buffer_bytes + kAlign - 1) / kAlign * kAlign + 2 * kAlign;
    for (auto& b : bufs_) b.mem.reset(static_cast<uint8_t*>(std::aligned_alloc(kAlign, size)));
    if (allocated()) thread_ = std::thread([this] { Run(); });
  }
  ~ChunkReader() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool allocated() const { return bufs_[0].mem && bufs_[1].mem; }
  // The next chunk's bytes, or the reader's error (then *failed_at is the file offset).
  // Release() hands the buffer back.
  Status Next(const uint8_t** p, uint64_t* failed_at) {
    Buf& b = bufs_[next_ % 2];
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return b.full; });
    *p = b.mem.get() + b.skip;
    *failed_at = b.failed_at;
    return b.st;
  }
  void Release() {
    Buf& b = bufs_[next_ % 2];
    {
      std::lock_guard<std::mutex> l(mu_);
      b.full = false;
    }
    cv_.notify_all();
    ++next_;
  }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  struct Buf {
    std::unique_ptr<uint8_t, Free> mem;
    bool full = false;
    Status st;
    uint64_t skip = 0;       // where the chunk starts in mem
    uint64_t failed_at = 0;  // file offset of the failed read
  };
  // Reads file bytes [from, to) into p; Corruption("end of file") when the file ends first.
  Status ReadRange(uint8_t* p, uint64_t from, uint64_t to, uint64_t* at) {
    uint64_t off = from, want = to;
    if (direct_) {
      off = from / kAlign * kAlign;
      want = (to + kAlign - 1) / kAlign * kAlign;
    }
    uint64_t got = 0;
    Status st;
    while (off + got < to) {
      const ssize_t r = ::pread(fd_, p + got, want - off - got, static_cast<off_t>(off + got));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        st = Status::IOError("read: " + ErrnoText(errno));
        break;
      }
      if (r == 0) {
        st = Status::Corruption("end of file");
        break;
      }
      got += static_cast<uint64_t>(r);
      if (direct_ && got % kAlign != 0 && off + got < to) {  // a direct read ends short only at the end
        st = Status::Corruption("end of file");
        break;
      }
    }
    *at = off + got;
    return st;
  }
  void Run() {
    for (size_t i = 0; i < plan_.size(); ++i) {
      Buf& b = bufs_[i % 2];
      {
        std::unique_lock<std::mutex> l(mu_);
        cv_.wait(l, [&] { return stop_ || !b.full; });
        if (stop_) return;
      }
      const uint64_t from = data_offset_ + plan_[i].begin, to = from + plan_[i].len;
      const uint64_t skip = direct_ ? from % kAlign : 0;
      uint64_t at = 0;
      Status st = ReadRange(b.mem.get(), from, to, &at);
      {
        std::lock_guard<std::mutex> l(mu_);
        b.st = st;
        b.skip = skip;
        b.failed_at = at;
        b.full = true;
      }
      cv_.notify_all();
      if (!st.ok()) return;
    }
  }

  int fd_;
  bool direct_;
  uint64_t data_offset_;
  std::vector<Chunk> plan_;
  Buf bufs_[2];
  size_t next_ = 0;  // the consumer's next chunk
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

Status SafetensorsFile::StreamF32(std::span<const StreamTarget> targets, const StreamOptions& opt) const {
  // 1. Every check on the caller's side, before any byte is read.
  std::vector<Sink> sinks;
  sinks.reserve(targets.size());
  std::set<std::string_view> seen;
  for (const StreamTarget& tg : targets) {
    const TensorInfo* t = Find(tg.name);
    if (!t) return Status::NotFound(path_ + ": no tensor " + Quote(tg.name));
    const std::string what = path_ + ": tensor " + Quote(tg.name) + " (" + std::string(DTypeName(t->dtype)) + " " +
                             ShapeString(t->shape) + ")";
    if (!seen.insert(tg.name).second) return Status::InvalidArgument(what + " is given twice to StreamF32");
    if (!IsFloatDType(t->dtype)) return Status::InvalidArgument(what + ": StreamF32 reads F64, F32, F16 or BF16");
    const uint64_t n = static_cast<uint64_t>(t->numel());
    const uint64_t got = tg.differs ? tg.expect.size() : tg.out.size();
    if (got != n || (tg.differs && !tg.out.empty()))
      return Status::InvalidArgument(what + " has " + std::to_string(n) + " elements; the caller's buffer holds " +
                                     std::to_string(got));
    if (tg.differs) *tg.differs = false;
    Sink s;
    s.t = t;
    s.target = &tg;
    s.item = DTypeSize(t->dtype);
    sinks.push_back(s);
  }
  std::sort(sinks.begin(), sinks.end(), [](const Sink& a, const Sink& b) { return a.t->begin < b.t->begin; });
  const uint64_t data_size = file_size_ - data_offset_;
  const auto cs = metadata_.find(kSafetensorsChecksumKey);
  const bool hash = opt.verify_checksum && cs != metadata_.end();
  uint64_t want = 0;
  if (hash && !ParseHex16(cs->second, &want))
    return Status::Corruption(path_ + ": metadata \"" + std::string(kSafetensorsChecksumKey) + "\" is \"" + cs->second +
                              "\", not 16 lowercase hex digits");
  const uint64_t buffer = std::max<uint64_t>(opt.buffer_bytes, 4096);

  // 2. The plan: data-buffer ranges in order, cut into chunks of at most `buffer` bytes.
  std::vector<ChunkReader::Chunk> plan;
  auto add_range = [&](uint64_t b, uint64_t e) {
    for (uint64_t o = b; o < e; o += buffer) plan.push_back({o, std::min(buffer, e - o)});
  };
  if (hash) {
    add_range(0, data_size);
  } else {
    uint64_t rb = 0, re = 0;
    bool open = false;
    for (const Sink& s : sinks) {
      if (s.t->nbytes() == 0) continue;
      if (open && s.t->begin <= re + buffer) {
        re = std::max(re, s.t->end);
        continue;
      }
      if (open) add_range(rb, re);
      rb = s.t->begin, re = s.t->end, open = true;
    }
    if (open) add_range(rb, re);
  }

  // The tensor that holds data-buffer offset d (the first non-empty one ending after it).
  auto tensor_at = [&](uint64_t d) -> std::string {
    for (const TensorInfo& t : tensors_)
      if (t.end > d && t.nbytes() > 0) return "tensor " + Quote(t.name) + " (file offsets " +
                                                std::to_string(data_offset_ + t.begin) + ".." +
                                                std::to_string(data_offset_ + t.end) + ")";
    return "the data buffer";
  };

  // 3. The pass: each chunk's bytes go to the hash and to the targets they belong to.
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), &XXH3_freeState);
  if (!state || XXH3_64bits_reset(state.get()) != XXH_OK) return Status::OutOfMemory(path_ + ": XXH3 state");
  size_t first = 0;  // sinks before this one are complete
  auto consume = [&](uint64_t c0, const uint8_t* p, uint64_t len) {
    if (hash) XXH3_64bits_update(state.get(), p, len);
    const uint64_t c1 = c0 + len;
    while (first < sinks.size() && sinks[first].t->end <= c0) ++first;
    for (size_t i = first; i < sinks.size() && sinks[i].t->begin < c1; ++i) {
      Sink& s = sinks[i];
      const uint64_t a = std::max(c0, s.t->begin), b = std::min(c1, s.t->end);
      if (a < b) s.Feed(p + (a - c0), b - a);
    }
  };
  if (!header_only_) {
    for (const ChunkReader::Chunk& c : plan) consume(c.begin, bytes_.data() + data_offset_ + c.begin, c.len);
  } else if (!plan.empty()) {
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int e = errno;
      if (e == ENOENT) return Status::NotFound(path_ + ": no such file (it was there when its header was read)");
      return Status::IOError(path_ + ": open: " + ErrnoText(e));
    }
    struct FdCloser {
      int fd;
      ~FdCloser() { ::close(fd); }
    } closer{fd};
    struct stat st;
    if (::fstat(fd, &st) != 0) return Status::IOError(path_ + ": fstat: " + ErrnoText(errno));
    if (!S_ISREG(st.st_mode)) return Status::IOError(path_ + ": not a regular file");
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    if (size < file_size_)
      return Status::Corruption(path_ + ": " + tensor_at(size > data_offset_ ? size - data_offset_ : 0) +
                                ": the file ends at byte " + std::to_string(size) + ", but its header says " +
                                std::to_string(file_size_) + " (the file was truncated)");
    if (size > file_size_)
      return Status::Corruption(path_ + ": the file is " + std::to_string(size) + " bytes, but was " +
                                std::to_string(file_size_) + " when its header was read (it changed)");
    // O_DIRECT when the file system allows it: the bytes go from the disk into the buffers
    // without a copy through the page cache (less CPU, steadier); else buffered, read ahead.
    int dfd = opt.direct ? ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT) : -1;
    struct FdCloser2 {
      int fd;
      ~FdCloser2() { if (fd >= 0) ::close(fd); }
    } dcloser{dfd};
    if (dfd < 0) (void)::posix_fadvise(fd, static_cast<off_t>(data_offset_), 0, POSIX_FADV_SEQUENTIAL);
    const uint64_t chunk = dfd >= 0 ? std::max<uint64_t>(buffer / ChunkReader::kAlign * ChunkReader::kAlign, ChunkReader::kAlign) : buffer;
    if (chunk != buffer) {  // re-cut the plan (ranges at most `chunk`)
      std::vector<ChunkReader::Chunk> cut;
      for (const ChunkReader::Chunk& c : plan)
        for (uint64_t o = 0; o < c.len; o += chunk) cut.push_back({c.begin + o, std::min(chunk, c.len - o)});
      plan = std::move(cut);
    }
    ChunkReader reader(dfd >= 0 ? dfd : fd, dfd >= 0, data_offset_, plan, chunk);
    if (!reader.allocated()) return Status::OutOfMemory(path_ + ": stream buffers");
    for (const ChunkReader::Chunk& c : plan) {
      const uint8_t* p = nullptr;
      uint64_t at = 0;
      Status rs = reader.Next(&p, &at);
      if (!rs.ok()) {
        const std::string where = tensor_at(at > data_offset_ ? at - data_offset_ : 0);
        if (rs.IsCorruption())
          return Status::Corruption(path_ + ": " + where + ": the file ends at byte " + std::to_string(at) +
                                    ", but its header says " + std::to_string(file_size_) +
                                    " (the file was truncated while it was read)");
        return Status::IOError(path_ + ": " + where + ": at file offset " + std::to_string(at) + ": " + rs.message());
      }
      consume(c.begin, p, c.len);
      reader.Release();
    }
  }
  for (const Sink& s : sinks) {
    if (s.elem != static_cast<uint64_t>(s.t->numel()) || s.ncarry != 0)
      return Status::Internal(path_ + ": tensor " + Quote(s.t->name) + ": the stream produced " +
                              std::to_string(s.elem) + " of " + std::to_string(s.t->numel()) + " elements");
  }
  if (hash) {
    const uint64_t got = XXH3_64bits_digest(state.get());
    if (got != want)
      return Status::Corruption(path_ + ": checksum mismatch: metadata \"" + std::string(kSafetensorsChecksumKey) +
                                "\" is " + cs->second + " but the data buffer (file offsets " +
                                std::to_string(data_offset_) + ".." + std::to_string(file_size_) + ") hashes to " +
                                Hex16(got) + ": the tensor bytes were damaged");
  }
  return Status::Ok();
}

// ---- writer ------------------------------------------------------------------------------------

Status WriteSafetensors(const std::string& path, std::span<const TensorOut> tensors,
                        const std::map<std::string, std::string>& metadata) {
  auto invalid = [&](const std::string& why) { return Status::InvalidArgument(path + ": " + why); };
  if (path.empty()) return Status::InvalidArgument("WriteSafetensors: empty path");

  // Check everything before touching the disk, and hash the data buffer as laid out.
  std::set<std::string_view> names;
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> hash(XXH3_createState(), &XXH3_freeState);
  if (!hash || XXH3_64bits_reset(hash.get()) != XXH_OK) return Status::OutOfMemory("WriteSafetensors: XXH3 state");
  for (const auto& [k, v] : metadata)
    if (FirstBadUtf8(k) != k.size() || FirstBadUtf8(v) != v.size())
      return invalid("metadata key " + Quote(k) + ": key or value is not valid UTF-8");
  uint64_t offset = 0;
  std::string entries;
  for (const TensorOut& t : tensors) {
    const std::string what = "tensor " + Quote(t.name);
    if (FindDType(t.dtype) == nullptr) return invalid(what + ": bad dtype value");
    if (t.name == "__metadata__") return invalid(what + ": the name is reserved for the metadata map");
    if (FirstBadUtf8(t.name) != t.name.size()) return invalid(what + ": the name is not valid UTF-8");
    if (!names.insert(t.name).second) return invalid(what + " is given twice");
    for (int64_t d : t.shape)
      if (d < 0) return invalid(what + ": shape " + ShapeString(t.shape) + " has a negative dimension");
    uint64_t numel = 0, nbytes = 0;
    if (!TensorBytes(t.shape, t.dtype, &numel, &nbytes))
      return invalid(what + ": shape " + ShapeString(t.shape) + " overflows 64 bits");
    if (t.bytes.size() != nbytes)
      return invalid(what + ": " + std::to_string(t.bytes.size()) + " bytes given, but shape " +
                     ShapeString(t.shape) + " of " + std::string(DTypeName(t.dtype)) + " needs " +
                     std::to_string(nbytes));
    if (!t.bytes.empty() && XXH3_64bits_update(hash.get(), t.bytes.data(), t.bytes.size()) != XXH_OK)
      return Status::Internal("WriteSafetensors: XXH3 update failed");
    entries += ",";
    AppendJsonString(t.name, &entries);
    entries += ":{\"dtype\":\"" + std::string(DTypeName(t.dtype)) + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) entries += (i ? "," : "") + std::to_string(t.shape[i]);
    entries += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + nbytes) + "]}";
    offset += nbytes;
  }

  // The header: metadata first (as the reference writes it), then the tensors in the given order.
  std::map<std::string, std::string> meta = metadata;
  meta[kSafetensorsChecksumKey] = Hex16(XXH3_64bits_digest(hash.get()));
  std::string json = "{\"__metadata__\":{";
  bool first = true;
  for (const auto& [k, v] : meta) {
    if (!first) json += ",";
    first = false;
    AppendJsonString(k, &json);
    json += ":";
    AppendJsonString(v, &json);
  }
  json += "}" + entries + "}";
  json.resize((json.size() + 7) / 8 * 8, ' ');  // the data buffer starts 8-aligned
  if (json.size() > kSafetensorsMaxHeaderBytes)
    return invalid("header is " + std::to_string(json.size()) + " bytes, over the limit of " +
                   std::to_string(kSafetensorsMaxHeaderBytes));

  // tmp, fsync, rename, fsync the directory.
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return Status::IOError(tmp + ": create: " + ErrnoText(errno));
  Status st;
  if (::fchmod(fd, 0644) != 0) st = Status::IOError(tmp + ": fchmod: " + ErrnoText(errno));

  // Small tensors are gathered into one buffer so a file of many tiny tensors is few writes.
  constexpr size_t kStage = size_t{1} << 20;
  std::vector<uint8_t> stage;
  stage.reserve(kStage);
  uint8_t json_len[8];
  PutU64(json_len, json.size());
  if (st.ok()) st = WriteAll(fd, json_len, sizeof json_len, tmp);
  if (st.ok()) st = WriteAll(fd, json.data(), json.size(), tmp);
  for (const TensorOut& t : tensors) {
    if (!st.ok()) break;
    if (stage.size() + t.bytes.size() > kStage) {
      st = WriteAll(fd, stage.data(), stage.size(), tmp);
      stage.clear();
      if (!st.ok()) break;
    }
    if (t.bytes.size() >= kStage) st = WriteAll(fd, t.bytes.data(), t.bytes.size(), tmp);
    else stage.insert(stage.end(), t.bytes.begin(), t.bytes.end());
  }
  if (st.ok()) st = WriteAll(fd, stage.data(), stage.size(), tmp);
  return FinishAtomicWrite(fd, tmp, path, std::move(st));  // on failure an existing file at path is untouched
}

}  // namespace strata::model
