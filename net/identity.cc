#include "net/identity.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "runtime/file_util.h"

namespace strata::net {
namespace {

constexpr std::string_view kSecretMagic = "strata-identity";
constexpr std::string_view kPublicMagic = "strata-public-key";
constexpr std::string_view kMembersMagic = "strata-members";
constexpr size_t kMaxKeyFileBytes = 4096;            // a key file is ~250 bytes; more is not one
constexpr size_t kMaxMembershipBytes = 16u << 20;    // ~150 bytes a member: room for 100k members

Status SodiumReady() {
  // sodium_init is idempotent and thread-safe; it fails only when the OS has no randomness.
  if (sodium_init() < 0) return Status::Unavailable("libsodium failed to initialise (no system randomness?)");
  return Status::Ok();
}

// The members seen so far by name, Ed25519 key and Curve25519 key, for duplicate checks by lookup
// (a pairwise check is quadratic: a list near the 16 MiB limit would take hours).
class MemberIndex {
 public:
  enum Clash { kNone, kName, kSignKey, kCurveKey };
  // The first clash of a new member with one already added, and that member's index.
  std::pair<Clash, size_t> Find(const std::string& name, const std::array<uint8_t, 32>& sign_pk,
                                const std::array<uint8_t, 32>& curve_pk) const {
    if (auto it = by_name_.find(name); it != by_name_.end()) return {kName, it->second};
    if (auto it = by_sign_.find(Key(sign_pk)); it != by_sign_.end()) return {kSignKey, it->second};
    if (auto it = by_curve_.find(Key(curve_pk)); it != by_curve_.end()) return {kCurveKey, it->second};
    return {kNone, 0};
  }
  void Add(const std::string& name, const std::array<uint8_t, 32>& sign_pk, const std::array<uint8_t, 32>& curve_pk,
           size_t index) {
    by_name_.emplace(name, index);
    by_sign_.emplace(Key(sign_pk), index);
    by_curve_.emplace(Key(curve_pk), index);
  }

 private:
  static std::string Key(const std::array<uint8_t, 32>& k) { return std::string(k.begin(), k.end()); }
  std::unordered_map<std::string, size_t> by_name_, by_sign_, by_curve_;
};


std::string Quote(std::string_view s) {
  // Enough of a line to recognise it, never a whole garbage file in a message.
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 40; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > 40) out += "...";
  return out + "'";
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Exactly 2 * out.size() hex digits -> out. Returns false on a wrong length or a non-hex digit.
bool ParseHexInto(std::string_view hex, std::span<uint8_t> out) {
  if (hex.size() != 2 * out.size()) return false;
  for (size_t i = 0; i < out.size(); ++i) {
    const int hi = HexDigit(hex[2 * i]), lo = HexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

std::string HexOf(std::span<const uint8_t> bytes) {
  std::string out(2 * bytes.size() + 1, '\0');
  // sodium_bin2hex runs in constant time: it also writes the secret seed.
  sodium_bin2hex(out.data(), out.size(), bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

// The checksum of key files: XXH3-64 (seed 0) as 16 lowercase hex digits, most significant first.
std::string Checksum16(std::string_view bytes) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(XXH3_64bits(bytes.data(), bytes.size())));
  return std::string(buf, 16);
}

// Reads a whole regular file of at most max_bytes. st receives its fstat.
Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes, const char* what, struct stat* st) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT) return Status::NotFound(path + ": no such " + what);
    return Status::IOError(path + ": open: " + ErrnoText(e));
  }
  std::string bytes;
  Status status;
  if (::fstat(fd, st) != 0) {
    status = Status::IOError(path + ": fstat: " + ErrnoText(errno));
  } else if (!S_ISREG(st->st_mode)) {
    status = Status::InvalidArgument(path + ": not a regular file");
  } else if (static_cast<uint64_t>(st->st_size) > max_bytes) {
    status = Status::Corruption(path + ": " + std::to_string(st->st_size) + " bytes is too large for a " + what +
                                " (at most " + std::to_string(max_bytes) + ")");
  } else {
    bytes.resize(static_cast<size_t>(st->st_size));
    size_t got = 0;
    while (got < bytes.size()) {
      const ssize_t r = ::read(fd, bytes.data() + got, bytes.size() - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        status = Status::IOError(path + ": read at offset " + std::to_string(got) + ": " + ErrnoText(errno));
        break;
      }
      if (r == 0) break;  // shrank while we read: the checks below see a short file
      got += static_cast<size_t>(r);
    }
    bytes.resize(got);
  }
  ::close(fd);
  if (!status.ok()) return status;
  return bytes;
}

// Writes bytes to a new file at path with the given mode, atomically and never over an existing
// file: a temporary file in the same folder is written and fsynced, then link(2)ed to path, which
// fails with EEXIST instead of replacing (rename would replace).
Status WriteNewFile(const std::string& path, std::string_view bytes, mode_t mode) {
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());  // mode 0600 from the start: the secret is never exposed
  if (fd < 0) return Status::IOError(path + ": create temporary file: " + ErrnoText(errno));
  Status st = WriteAll(fd, bytes.data(), bytes.size(), tmp);
  if (st.ok() && ::fchmod(fd, mode) != 0) st = Status::IOError(tmp + ": fchmod: " + ErrnoText(errno));
  if (st.ok() && ::fsync(fd) != 0) st = Status::IOError(tmp + ": fsync: " + ErrnoText(errno));
  if (::close(fd) != 0 && st.ok()) st = Status::IOError(tmp + ": close: " + ErrnoText(errno));
  if (st.ok() && ::link(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    st = e == EEXIST ? Status::InvalidArgument(path + ": already exists; refusing to overwrite a key file")
                     : Status::IOError(tmp + ": link to " + path + ": " + ErrnoText(e));
  }
  ::unlink(tmp.c_str());
  STRATA_RETURN_IF_ERROR(st);
  return FsyncDir(ParentDir(path));
}

Status DeriveCurve(const std::array<uint8_t, 32>& sign_pk, std::array<uint8_t, 32>* curve_pk) {
  // Fails for an encoding that is not a point of the prime-order group (small order, not on the
  // curve): such a key cannot be anybody's.
  if (crypto_sign_ed25519_pk_to_curve25519(curve_pk->data(), sign_pk.data()) != 0)
    return Status::Corruption("ed25519 public key " + KeyHex(sign_pk) + " is not a valid curve point");
  return Status::Ok();
}

// ---- key files ------------------------------------------------------------------------------

// One "key value" line of a key file.
struct KeyLine {
  std::string_view key, value;
};

// Reads a key file's lines: the first is "MAGIC 1"; then fields, in this order, each "key value";
// the last is "checksum HEX16" over all bytes before it; then the end of the file.
// Returns the values of `fields` (which excludes the checksum) in order.
Result<std::vector<std::string_view>> ParseKeyFile(const std::string& path, std::string_view bytes,
                                                   std::string_view magic, std::string_view kind,
                                                   const std::vector<std::string_view>& fields) {
  auto err = [&](size_t line, const std::string& m) {
    return Status::Corruption(path + ":" + std::to_string(line) + ": " + m);
  };
  // Line 1: the magic, checked on the bytes before anything else so a wrong file says so by name.
  const std::string magic_sp = std::string(magic) + " ";
  if (bytes.substr(0, magic_sp.size()) != magic_sp) {
    if (magic_sp.starts_with(bytes)) return err(1, "truncated (" + std::to_string(bytes.size()) + " bytes)");
    const std::string other = std::string(magic == kSecretMagic ? kPublicMagic : kSecretMagic) + " ";
    if (bytes.starts_with(other))
      return err(1, magic == kSecretMagic ? "this is a public key file, not a secret identity file"
                                          : "this is a secret identity file, not a public key file");
    const size_t nl = bytes.find('\n');
    return err(1, "not a strata " + std::string(kind) + " (first line " +
                      Quote(bytes.substr(0, nl == std::string_view::npos ? bytes.size() : nl)) + ", expected '" +
                      magic_sp + "1')");
  }
  size_t pos = 0;
  size_t line_no = 0;
  auto next_line = [&](std::string_view* line) -> Status {
    ++line_no;
    if (pos == bytes.size()) return err(line_no, "truncated: the file ends before this line");
    const size_t nl = bytes.find('\n', pos);
    if (nl == std::string_view::npos) return err(line_no, "truncated: the line has no end of line");
    *line = bytes.substr(pos, nl - pos);
    pos = nl + 1;
    return Status::Ok();
  };
  std::string_view line;
  STRATA_RETURN_IF_ERROR(next_line(&line));
  const std::string_view version = line.substr(magic_sp.size());
  if (version != "1") return err(1, "unsupported version " + Quote(version) + " (this build reads version 1)");

  std::vector<std::string_view> all = fields;
  all.push_back("checksum");
  std::vector<std::string_view> values;
  size_t checksum_offset = 0;
  for (size_t f = 0; f < all.size(); ++f) {
    if (f + 1 == all.size()) checksum_offset = pos;
    STRATA_RETURN_IF_ERROR(next_line(&line));
    const size_t sp = line.find(' ');
    const std::string_view key = line.substr(0, sp);
    if (key != all[f]) {
      const bool later = std::find(all.begin() + static_cast<ptrdiff_t>(f), all.end(), key) != all.end();
      return err(line_no, later ? "missing field '" + std::string(all[f]) + "' (found '" + std::string(key) + "')"
                                : "expected field '" + std::string(all[f]) + "', found " + Quote(line));
    }
    if (sp == std::string_view::npos) return err(line_no, "field '" + std::string(key) + "' has no value");
    values.push_back(line.substr(sp + 1));
  }
  if (pos != bytes.size())
    return err(line_no + 1, "trailing bytes after the checksum line (" + std::to_string(bytes.size() - pos) +
                                " bytes at offset " + std::to_string(pos) + ")");
  const std::string_view stored = values.back();
  values.pop_back();
  const std::string want = Checksum16(bytes.substr(0, checksum_offset));
  // Lowercase only: the file has one spelling, so no byte of it can change unnoticed.
  if (stored.size() != 16 ||
      !std::all_of(stored.begin(), stored.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
    return err(line_no, "checksum " + Quote(stored) + " is not 16 lowercase hex digits");
  if (stored != want) return err(line_no, "checksum mismatch: stored " + std::string(stored) + ", computed " + want);
  return values;
}

Status CheckName(std::string_view name, const std::string& where) {
  if (!IsValidPeerName(name))
    return Status::InvalidArgument(where + "name " + Quote(name) + " must be 1 to 64 of [A-Za-z0-9._-]");
  return Status::Ok();
}

std::string SecretFileBytes(const Identity& id) {
  std::string s;
  s += std::string(kSecretMagic) + " 1\n";
  s += "name " + id.name + "\n";
  s += "ed25519-public " + KeyHex(id.sign_pk) + "\n";
  s += "ed25519-seed " + HexOf(std::span<const uint8_t>(id.sign_sk.data(), 32)) + "\n";
  s += "checksum " + Checksum16(s) + "\n";
  return s;
}

std::string PublicFileBytes(const PublicIdentity& p) {
  std::string s;
  s += std::string(kPublicMagic) + " 1\n";
  s += "name " + p.name + "\n";
  s += "ed25519-public " + KeyHex(p.sign_pk) + "\n";
  s += "checksum " + Checksum16(s) + "\n";
  return s;
}

// ---- membership -----------------------------------------------------------------------------

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

std::vector<std::string_view> Tokens(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsBlank(line[i])) ++i;
    const size_t start = i;
    while (i < line.size() && !IsBlank(line[i])) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

template <size_t N>
bool SameKey(const std::array<uint8_t, N>& a, std::span<const uint8_t> b) {
  return b.size() == N && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

bool IsValidPeerName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

std::string KeyHex(std::span<const uint8_t> key) { return HexOf(key); }

Result<std::array<uint8_t, 32>> ParseKeyHex(std::string_view hex) {
  std::array<uint8_t, 32> key{};
  if (hex.size() != 64)
    return Status::InvalidArgument("key " + Quote(hex) + " has " + std::to_string(hex.size()) +
                                   " characters; expected 64 hex digits");
  if (!ParseHexInto(hex, key)) return Status::InvalidArgument("key " + Quote(hex) + " is not 64 hex digits");
  return key;
}

PublicIdentity PublicOf(const Identity& id) { return PublicIdentity{id.name, id.sign_pk, id.curve_pk}; }

Result<Identity> IdentityFromSeed(std::string name, std::span<const uint8_t> seed) {
  STRATA_RETURN_IF_ERROR(SodiumReady());
  STRATA_RETURN_IF_ERROR(CheckName(name, "identity: "));
  if (seed.size() != crypto_sign_SEEDBYTES)
    return Status::InvalidArgument("identity: seed has " + std::to_string(seed.size()) + " bytes; expected 32");
  Identity id;
  id.name = std::move(name);
  STRATA_CHECK(crypto_sign_seed_keypair(id.sign_pk.data(), id.sign_sk.data(), seed.data()) == 0);
  // A key made from a seed is always a valid point, so both conversions cannot fail.
  STRATA_CHECK(crypto_sign_ed25519_pk_to_curve25519(id.curve_pk.data(), id.sign_pk.data()) == 0);
  STRATA_CHECK(crypto_sign_ed25519_sk_to_curve25519(id.curve_sk.data(), id.sign_sk.data()) == 0);
  return id;
}

Result<Identity> GenerateIdentity(std::string name) {
  STRATA_RETURN_IF_ERROR(SodiumReady());
  std::array<uint8_t, crypto_sign_SEEDBYTES> seed;
  randombytes_buf(seed.data(), seed.size());
  Result<Identity> id = IdentityFromSeed(std::move(name), seed);
  sodium_memzero(seed.data(), seed.size());
  return id;
}

Status SaveIdentity(const Identity& id, const std::string& path) {
  STRATA_RETURN_IF_ERROR(CheckName(id.name, path + ": "));
  const std::string pub_path = path + ".pub";
  for (const std::string& p : {path, pub_path}) {
    struct stat st;
    if (::lstat(p.c_str(), &st) == 0)
      return Status::InvalidArgument(p + ": already exists; refusing to overwrite a key file");
  }
  std::string secret = SecretFileBytes(id);
  Status st = WriteNewFile(path, secret, 0600);
  sodium_memzero(secret.data(), secret.size());
  STRATA_RETURN_IF_ERROR(st);
  st = WriteNewFile(pub_path, PublicFileBytes(PublicOf(id)), 0644);
  if (!st.ok()) ::unlink(path.c_str());  // we created it just now: no half-saved identity stays
  return st;
}

Result<Identity> LoadIdentity(const std::string& path) {
  STRATA_RETURN_IF_ERROR(SodiumReady());
  struct stat st;
  Result<std::string> bytes = ReadSmallFile(path, kMaxKeyFileBytes, "identity file", &st);
  if (!bytes.ok()) return bytes.status();
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    sodium_memzero(bytes->data(), bytes->size());
    return Status::InvalidArgument(path + ": mode " + mode +
                                   " lets group or others access a secret key; run chmod 600 " + path);
  }
  Identity id;
  Status status;
  {
    Result<std::vector<std::string_view>> v =
        ParseKeyFile(path, *bytes, kSecretMagic, "identity file", {"name", "ed25519-public", "ed25519-seed"});
    if (!v.ok()) {
      status = v.status();
    } else {
      std::array<uint8_t, 32> pk{}, seed{};
      const std::vector<std::string_view>& f = *v;
      if (!IsValidPeerName(f[0])) {
        status = Status::Corruption(path + ":2: name " + Quote(f[0]) + " must be 1 to 64 of [A-Za-z0-9._-]");
      } else if (!ParseHexInto(f[1], pk)) {
        status = Status::Corruption(path + ":3: ed25519-public is not 64 hex digits");
      } else if (!ParseHexInto(f[2], seed)) {
        status = Status::Corruption(path + ":4: ed25519-seed is not 64 hex digits");  // never quote a secret
      } else {
        Result<Identity> made = IdentityFromSeed(std::string(f[0]), seed);
        if (!made.ok()) {
          status = Status::Corruption(path + ": " + made.status().message());
        } else if (made->sign_pk != pk) {
          status = Status::Corruption(path + ":3: ed25519-public " + KeyHex(pk) +
                                      " is not the public key of the seed on line 4 (that is " +
                                      KeyHex(made->sign_pk) + ")");
        } else {
          id = std::move(*made);
        }
      }
      sodium_memzero(seed.data(), seed.size());
    }
  }
  sodium_memzero(bytes->data(), bytes->size());
  if (!status.ok()) return status;
  return id;
}

Result<PublicIdentity> LoadPublicIdentity(const std::string& path) {
  STRATA_RETURN_IF_ERROR(SodiumReady());
  struct stat st;
  Result<std::string> bytes = ReadSmallFile(path, kMaxKeyFileBytes, "public key file", &st);
  if (!bytes.ok()) return bytes.status();
  Result<std::vector<std::string_view>> v =
      ParseKeyFile(path, *bytes, kPublicMagic, "public key file", {"name", "ed25519-public"});
  if (!v.ok()) return v.status();
  const std::vector<std::string_view>& f = *v;
  PublicIdentity p;
  if (!IsValidPeerName(f[0]))
    return Status::Corruption(path + ":2: name " + Quote(f[0]) + " must be 1 to 64 of [A-Za-z0-9._-]");
  if (!ParseHexInto(f[1], p.sign_pk))
    return Status::Corruption(path + ":3: ed25519-public " + Quote(f[1]) + " is not 64 hex digits");
  p.name = std::string(f[0]);
  Status d = DeriveCurve(p.sign_pk, &p.curve_pk);
  if (!d.ok()) return Status::Corruption(path + ":3: " + d.message());
  return p;
}

// ---- membership -----------------------------------------------------------------------------

// A linear scan: lists are small (hundreds) and ZAP runs once per connection, not per message.
const Member* Membership::FindByCurve(std::span<const uint8_t> curve_pk) const {
  for (const Member& m : members)
    if (SameKey(m.curve_pk, curve_pk)) return &m;
  return nullptr;
}

const Member* Membership::FindBySign(std::span<const uint8_t> sign_pk) const {
  for (const Member& m : members)
    if (SameKey(m.sign_pk, sign_pk)) return &m;
  return nullptr;
}

Result<Membership> LoadMembership(const std::string& path, const std::array<uint8_t, 32>* authority_sign_pk) {
  STRATA_RETURN_IF_ERROR(SodiumReady());
  struct stat st;
  Result<std::string> read = ReadSmallFile(path, kMaxMembershipBytes, "membership list", &st);
  if (!read.ok()) return read.status();
  const std::string_view bytes = *read;
  auto err = [&](size_t line, const std::string& m) {
    return Status::Corruption(path + ":" + std::to_string(line) + ": " + m);
  };
  if (bytes.empty()) return err(1, "empty file (expected 'strata-members 1')");

  // Split into lines first: the signature covers the bytes before its line.
  struct Line {
    size_t offset;  // byte offset of the line's first byte
    std::string_view text;
  };
  std::vector<Line> lines;
  for (size_t pos = 0; pos < bytes.size();) {
    const size_t nl = bytes.find('\n', pos);
    if (nl == std::string_view::npos)
      return err(lines.size() + 1, "truncated: the last line has no end of line");
    lines.push_back({pos, bytes.substr(pos, nl - pos)});
    pos = nl + 1;
  }

  // With an authority, authenticate before trusting anything else in the file.
  std::array<uint8_t, crypto_sign_BYTES> sig{};
  const std::vector<std::string_view> last = Tokens(lines.back().text);
  const bool has_sig_line = !last.empty() && last[0] == "signature";
  if (authority_sign_pk != nullptr) {
    if (!has_sig_line)
      return Status::InvalidArgument(path + ": not signed (no final 'signature' line), but the run's authority key " +
                                     KeyHex(*authority_sign_pk) + " requires a signed membership list");
    if (last.size() != 2 || !ParseHexInto(last[1], sig))
      return err(lines.size(), "signature must be 128 hex digits");
    const size_t signed_len = lines.back().offset;
    if (crypto_sign_verify_detached(sig.data(), reinterpret_cast<const unsigned char*>(bytes.data()), signed_len,
                                    authority_sign_pk->data()) != 0)
      return Status::InvalidArgument(path + ":" + std::to_string(lines.size()) +
                                     ": the signature does not verify against the authority key " +
                                     KeyHex(*authority_sign_pk) +
                                     " (the list was changed after signing, or another key signed it)");
  }

  Membership out;
  out.signed_by_authority = authority_sign_pk != nullptr;
  std::vector<size_t> member_line;  // line number of each member, for duplicate messages
  MemberIndex index;
  for (size_t i = 0; i < lines.size(); ++i) {
    const size_t n = i + 1;
    const std::string_view text = lines[i].text;
    for (char c : text) {
      if (c == '\r') return err(n, "carriage return (save the file with Unix line ends)");
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return err(n, "control character in line");
    }
    const std::vector<std::string_view> t = Tokens(text);
    if (i == 0) {
      if (t.size() != 2 || t[0] != kMembersMagic)
        return err(n, "not a strata membership list (first line " + Quote(text) + ", expected 'strata-members 1')");
      if (t[1] != "1") return err(n, "unsupported version " + Quote(t[1]) + " (this build reads version 1)");
      continue;
    }
    if (t.empty() || t[0].starts_with('#')) continue;
    if (t[0] == "signature") {
      if (i + 1 != lines.size()) return err(n, "the signature line must be the last line");
      if (t.size() != 2 || !ParseHexInto(t[1], sig)) return err(n, "signature must be 128 hex digits");
      continue;
    }
    for (char c : text)
      if (static_cast<unsigned char>(c) >= 0x7f) return err(n, "non-ASCII byte outside a comment");
    if (t[0] == "run") {
      if (t.size() != 2) return err(n, "expected 'run RUN_ID'");
      if (out.run_id) return err(n, "a second 'run' line");
      uint64_t v = 0;
      const auto [p, ec] = std::from_chars(t[1].data(), t[1].data() + t[1].size(), v);
      if (ec != std::errc() || p != t[1].data() + t[1].size())
        return err(n, "run id " + Quote(t[1]) + " is not a decimal number below 2^64");
      out.run_id = v;
      continue;
    }
    if (t[0] != "member")
      return err(n, "unknown keyword " + Quote(t[0]) + " (expected member, run, signature or a # comment)");
    if (t.size() != 3) return err(n, "expected 'member NAME ED25519_PUBLIC_HEX'");
    Member m;
    if (!IsValidPeerName(t[1])) return err(n, "name " + Quote(t[1]) + " must be 1 to 64 of [A-Za-z0-9._-]");
    m.name = std::string(t[1]);
    if (!ParseHexInto(t[2], m.sign_pk)) return err(n, "key " + Quote(t[2]) + " is not 64 hex digits");
    Status d = DeriveCurve(m.sign_pk, &m.curve_pk);
    if (!d.ok()) return err(n, d.message());
    const auto [clash, j] = index.Find(m.name, m.sign_pk, m.curve_pk);
    if (clash != MemberIndex::kNone) {
      const std::string first = " (first on line " + std::to_string(member_line[j]) + ")";
      if (clash == MemberIndex::kName) return err(n, "duplicate name '" + m.name + "'" + first);
      if (clash == MemberIndex::kSignKey)
        return err(n, "duplicate key of '" + m.name + "'" + first + " as '" + out.members[j].name + "'");
      // Two Ed25519 keys that differ only in the sign bit map to one Curve25519 key: ZAP could not
      // tell these members apart.
      return err(n, "member '" + m.name + "' has the same CURVE key as '" + out.members[j].name + "'" + first);
    }
    index.Add(m.name, m.sign_pk, m.curve_pk, out.members.size());
    out.members.push_back(std::move(m));
    member_line.push_back(n);
  }
  return out;
}

Status WriteMembership(const std::string& path, const std::vector<PublicIdentity>& members,
                       const Identity* authority, std::optional<uint64_t> run_id) {
  STRATA_RETURN_IF_ERROR(SodiumReady());
  std::string s = std::string(kMembersMagic) + " 1\n";
  s += "# " + std::to_string(members.size()) + " members" +
       (authority ? ", signed by " + authority->name + " " + KeyHex(authority->sign_pk) : std::string()) + "\n";
  if (run_id) s += "run " + std::to_string(*run_id) + "\n";
  MemberIndex index;
  for (size_t i = 0; i < members.size(); ++i) {
    const PublicIdentity& m = members[i];
    const std::string where = path + ": member " + std::to_string(i) + ": ";
    STRATA_RETURN_IF_ERROR(CheckName(m.name, where));
    std::array<uint8_t, 32> curve{};
    Status d = DeriveCurve(m.sign_pk, &curve);
    if (!d.ok()) return Status::InvalidArgument(where + d.message());
    if (const auto [clash, j] = index.Find(m.name, m.sign_pk, curve); clash != MemberIndex::kNone)
      return Status::InvalidArgument(where + "'" + m.name + "' duplicates the name or key of member " +
                                     std::to_string(j) + " '" + members[j].name + "'");
    index.Add(m.name, m.sign_pk, curve, i);
    s += "member " + m.name + " " + KeyHex(m.sign_pk) + "\n";
  }
  if (authority) {
    std::array<uint8_t, crypto_sign_BYTES> sig;
    STRATA_CHECK(crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(s.data()),
                                      s.size(), authority->sign_sk.data()) == 0);
    s += "signature " + HexOf(sig) + "\n";
  }
  return WriteFileAtomic(path, s);
}

}  // namespace strata::net
