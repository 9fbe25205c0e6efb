#include "model/data.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <unordered_set>
#include <utility>

#include "runtime/file_util.h"
#include "runtime/le.h"
#include "runtime/random.h"

namespace strata::model {

namespace {

namespace fs = std::filesystem;

// Header layout (docs/formats/token-file.md). Offsets in bytes.
constexpr char kMagic[8] = {'S', 'T', 'R', 'A', 'T', 'A', 'T', 'K'};
constexpr size_t kOffVersion = 8, kOffHeaderBytes = 12, kOffWidth = 16, kOffVocab = 20, kOffCount = 24,
                 kOffDataChecksum = 32, kOffNameLen = 40, kOffReserved0 = 44, kOffName = 48,
                 kOffReserved1 = 112, kOffHeaderChecksum = 120;
static_assert(kOffName + kTokenFileMaxName == kOffReserved1, "the name field is 64 bytes");
static_assert(kOffHeaderChecksum + 8 == kTokenFileHeaderBytes, "the header checksum ends the header");

constexpr size_t kBinaryProbeBytes = 64 << 10;  // a NUL byte in this prefix marks a file as binary
constexpr size_t kIoChunk = 1 << 20;            // ids encoded, hashed and written this many bytes at a time

// Domains of the counter-based hashes, so the split and the training batches never share a stream.
constexpr uint64_t kDomainSplit = 0x73706c6974ull;  // "split"
constexpr uint64_t kDomainTrain = 0x747261696eull;  // "train"
constexpr uint64_t kCacheKeyVersion = 1;            // bump when the cached stream's recipe changes

__extension__ using u128 = unsigned __int128;


// The width of one stored id: 2 bytes when every id fits in 16 bits, else 4.
uint32_t IdWidth(uint32_t vocab) { return vocab <= 65536 ? 2 : 4; }

uint64_t Mix64(uint64_t x) { return SplitMix(x); }
uint64_t Hash2(uint64_t a, uint64_t b) { return Mix64(Mix64(a) ^ b); }
uint64_t Hash3(uint64_t a, uint64_t b, uint64_t c) { return Mix64(Hash2(a, b) ^ c); }
double UnitInterval(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }  // [0, 1)
// Uniform over [0, n) by a 64x64 -> 128 multiply (Lemire), no modulo bias.
uint64_t Below(uint64_t h, uint64_t n) { return static_cast<uint64_t>((static_cast<u128>(h) * n) >> 64); }

void Warn(const std::string& what) { std::fprintf(stderr, "strata: warning: %s\n", what.c_str()); }
void Note(const CorpusOptions& opt, const std::string& what) {
  if (opt.verbose) std::fprintf(stderr, "strata: data: %s\n", what.c_str());
}

// ---- Raw file I/O ------------------------------------------------------------------------------

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Status OpenForRead(const std::string& path, int* fd) {
  *fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (*fd >= 0) return Status::Ok();
  if (errno == ENOENT || errno == ENOTDIR) return Status::NotFound(path + ": no such file or folder");
  return Status::IOError(path + ": open: " + ErrnoText(errno));
}

// Reads until n bytes or end of file; *got says how many came.
Status ReadUpTo(int fd, uint8_t* buf, size_t n, const std::string& path, uint64_t off, size_t* got) {
  *got = 0;
  while (*got < n) {
    const ssize_t r = ::read(fd, buf + *got, n - *got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::IOError(path + ": read at offset " + std::to_string(off + *got) + ": " + ErrnoText(errno));
    if (r == 0) break;
    *got += static_cast<size_t>(r);
  }
  return Status::Ok();
}

// The first n bytes (fewer when the file is shorter).
Status ReadPrefix(const std::string& path, size_t n, std::string* out) {
  int raw = -1;
  STRATA_RETURN_IF_ERROR(OpenForRead(path, &raw));
  Fd fd(raw);
  out->resize(n);
  size_t got = 0;
  STRATA_RETURN_IF_ERROR(ReadUpTo(fd.get(), reinterpret_cast<uint8_t*>(out->data()), n, path, 0, &got));
  out->resize(got);
  return Status::Ok();
}

bool LooksBinary(std::string_view prefix) {
  return std::memchr(prefix.data(), 0, std::min(prefix.size(), kBinaryProbeBytes)) != nullptr;
}

// ---- Token file header ---------------------------------------------------------------------------

struct Header {
  uint32_t width = 0;
  uint32_t vocab = 0;
  uint64_t count = 0;
  uint64_t data_checksum = 0;
  std::string name;
};

void EncodeHeader(const Header& h, uint8_t* p) {
  std::memset(p, 0, kTokenFileHeaderBytes);
  std::memcpy(p, kMagic, 8);
  PutU32(p + kOffVersion, kTokenFileVersion);
  PutU32(p + kOffHeaderBytes, static_cast<uint32_t>(kTokenFileHeaderBytes));
  PutU32(p + kOffWidth, h.width);
  PutU32(p + kOffVocab, h.vocab);
  PutU64(p + kOffCount, h.count);
  PutU64(p + kOffDataChecksum, h.data_checksum);
  PutU32(p + kOffNameLen, static_cast<uint32_t>(h.name.size()));
  std::memcpy(p + kOffName, h.name.data(), h.name.size());
  PutU64(p + kOffHeaderChecksum, XXH3_64bits(p, kOffHeaderChecksum));
}

bool AllZero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

// `in` holds the file's first bytes (all of them when the file is shorter than a header);
// file_bytes is the file's size.
Result<Header> DecodeHeader(std::span<const uint8_t> in, uint64_t file_bytes, const std::string& path) {
  auto bad = [&](const std::string& why) { return Status::Corruption(path + ": token file header: " + why); };
  const uint8_t* p = in.data();
  if (in.size() < sizeof kMagic)
    return bad("truncated: " + std::to_string(in.size()) + " bytes, want at least " +
               std::to_string(kTokenFileHeaderBytes));
  if (std::memcmp(p, kMagic, sizeof kMagic) != 0) return bad("bad magic (bytes 0..8): not a strata token file");
  if (in.size() < kTokenFileHeaderBytes)
    return bad("truncated: " + std::to_string(in.size()) + " bytes, want at least " +
               std::to_string(kTokenFileHeaderBytes));
  // The version comes before the checksum, so that a later version's header is refused by name.
  const uint32_t version = GetU32(p + kOffVersion);
  if (version != kTokenFileVersion)
    return bad("version " + std::to_string(version) + " (offset 8); this strata reads version " +
               std::to_string(kTokenFileVersion));
  if (XXH3_64bits(p, kOffHeaderChecksum) != GetU64(p + kOffHeaderChecksum))
    return bad("checksum mismatch at offset 120 (the header bytes 0..120 are damaged)");
  if (GetU32(p + kOffHeaderBytes) != kTokenFileHeaderBytes)
    return bad("header size " + std::to_string(GetU32(p + kOffHeaderBytes)) + " (offset 12); want 128");
  Header h;
  h.vocab = GetU32(p + kOffVocab);
  if (h.vocab == 0 || h.vocab > static_cast<uint32_t>(INT32_MAX))
    return bad("vocab_size " + std::to_string(h.vocab) + " (offset 20); want 1 .. 2^31-1");
  h.width = GetU32(p + kOffWidth);
  if (h.width != IdWidth(h.vocab))
    return bad("id width " + std::to_string(h.width) + " (offset 16); a vocabulary of " + std::to_string(h.vocab) +
               " is stored with " + std::to_string(IdWidth(h.vocab)) + "-byte ids");
  const uint32_t name_len = GetU32(p + kOffNameLen);
  if (name_len == 0 || name_len > kTokenFileMaxName)
    return bad("tokenizer name length " + std::to_string(name_len) + " (offset 40); want 1 .. 64");
  if (!AllZero(p + kOffName + name_len, kTokenFileMaxName - name_len))
    return bad("tokenizer name padding (offsets " + std::to_string(kOffName + name_len) + "..112) is not zero");
  if (!AllZero(p + kOffReserved0, 4) || !AllZero(p + kOffReserved1, 8))
    return bad("reserved bytes (offsets 44..48 or 112..120) are not zero");
  h.name.assign(reinterpret_cast<const char*>(p + kOffName), name_len);
  h.count = GetU64(p + kOffCount);
  h.data_checksum = GetU64(p + kOffDataChecksum);
  if (file_bytes < kTokenFileHeaderBytes)  // the file shrank while it was read
    return bad("truncated: " + std::to_string(file_bytes) + " bytes, want at least 128");
  // count * width must neither wrap around nor disagree with the file's size.
  const uint64_t room = file_bytes - kTokenFileHeaderBytes;  // file_bytes >= 128: the header was read
  if (h.count > room / h.width) {
    if (h.count > (UINT64_MAX - kTokenFileHeaderBytes) / h.width)
      return bad("token count " + std::to_string(h.count) + " (offset 24) overflows: it times " +
                 std::to_string(h.width) + " bytes exceeds 2^64");
    return bad("truncated: token count " + std::to_string(h.count) + " (offset 24) needs " +
               std::to_string(h.count * h.width) + " bytes of ids, the file holds " + std::to_string(room));
  }
  if (h.count * h.width != room)
    return bad(std::to_string(room - h.count * h.width) + " trailing bytes after the " + std::to_string(h.count) +
               " tokens that the count (offset 24) announces");
  return h;
}

// ---- Corpus sources -----------------------------------------------------------------------------

struct Source {
  std::string path;      // as the user spelled it, for messages
  std::string abs_path;  // absolute and normal, for the cache key
  uint64_t bytes = 0;
  int64_t mtime_ns = 0;
};

struct Listing {
  std::vector<Source> files;
  uint64_t binary = 0, duplicates = 0, other = 0;  // skipped entries, by reason
};

Status StatSource(const std::string& path, Source* s) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::IOError(path + ": stat: " + ErrnoText(errno));
  s->path = path;
  std::error_code ec;
  const fs::path abs = fs::absolute(path, ec);
  s->abs_path = ec ? path : abs.lexically_normal().string();
  s->bytes = static_cast<uint64_t>(st.st_size);
  s->mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return Status::Ok();
}

// Every text file under `root`, sorted by path; reads the first 64 KiB of each to tell text from
// binary (cheap next to tokenizing, and it lets the cache key name exactly the files tokenized).
Status ListFolder(const std::string& root, Listing* out) {
  std::vector<std::string> paths;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  if (ec) return Status::IOError(root + ": list folder: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return Status::IOError(root + ": list folder: " + ec.message());
    // is_regular_file follows a symlink: a link to a file counts (deduplicated below); a link to a
    // folder is not descended into (recursive_directory_iterator does not follow it), which also
    // rules out cycles.
    std::error_code type_ec;
    if (it->is_regular_file(type_ec)) {
      paths.push_back(it->path().string());
    } else if (!it->is_directory(type_ec) || it->is_symlink(type_ec)) {
      ++out->other;  // sockets, fifos, devices, dangling links, links to folders
    }
  }
  if (ec) return Status::IOError(root + ": list folder: " + ec.message());
  std::sort(paths.begin(), paths.end());
  std::unordered_set<std::string> seen;  // real paths taken so far
  std::string prefix;
  for (const std::string& path : paths) {
    const fs::path real = fs::canonical(path, ec);
    if (ec) return Status::IOError(path + ": resolve: " + ec.message());
    if (!seen.insert(real.string()).second) {
      ++out->duplicates;
      continue;
    }
    STRATA_RETURN_IF_ERROR(ReadPrefix(path, kBinaryProbeBytes, &prefix));
    if (LooksBinary(prefix)) {
      ++out->binary;
      continue;
    }
    Source s;
    STRATA_RETURN_IF_ERROR(StatSource(path, &s));
    out->files.push_back(std::move(s));
  }
  return Status::Ok();
}

std::string DefaultCacheDir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/strata/tokens";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/strata/tokens";
  return "";
}

void HashBytes(XXH3_state_t* st, const void* p, size_t n) { XXH3_64bits_update(st, p, n); }
void HashU64(XXH3_state_t* st, uint64_t v) {
  uint8_t b[8];
  PutU64(b, v);
  HashBytes(st, b, 8);
}
void HashString(XXH3_state_t* st, const std::string& s) {
  HashU64(st, s.size());
  HashBytes(st, s.data(), s.size());
}

// XXH3-64 of (key version, tokenizer name, vocab, eot, then each file's absolute path, size and
// mtime), every integer as 8 little-endian bytes and every string length-prefixed.
uint64_t CacheKey(const Tokenizer& tok, const std::vector<Source>& files) {
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> st(XXH3_createState(), &XXH3_freeState);
  STRATA_CHECK(st != nullptr);
  XXH3_64bits_reset(st.get());
  HashU64(st.get(), kCacheKeyVersion);
  HashString(st.get(), tok.name());
  HashU64(st.get(), static_cast<uint64_t>(tok.vocab_size()));
  HashU64(st.get(), tok.eot() ? static_cast<uint64_t>(*tok.eot()) : UINT64_MAX);
  HashU64(st.get(), files.size());
  for (const Source& s : files) {
    HashString(st.get(), s.abs_path);
    HashU64(st.get(), s.bytes);
    HashU64(st.get(), static_cast<uint64_t>(s.mtime_ns));
  }
  return XXH3_64bits_digest(st.get());
}

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Tokenizes file by file (each document whole, so a BPE merge never straddles a cut), joining
// non-empty documents with the end-of-text token when the tokenizer has one.
Status Tokenize(const std::vector<Source>& files, const Tokenizer& tok, const CorpusOptions& opt,
                std::vector<int32_t>* stream) {
  const std::optional<int32_t> eot = tok.eot();
  std::string text;
  for (size_t i = 0; i < files.size(); ++i) {
    const Source& s = files[i];
    STRATA_RETURN_IF_ERROR(ReadFile(s.path, &text));
    if (text.empty()) continue;
    const std::vector<int32_t> ids = tok.Encode(text);
    if (ids.empty()) continue;
    if (eot && !stream->empty()) stream->push_back(*eot);
    stream->insert(stream->end(), ids.begin(), ids.end());
    Note(opt, "tokenized " + s.path + ": " + std::to_string(text.size()) + " bytes -> " +
                  std::to_string(ids.size()) + " tokens (file " + std::to_string(i + 1) + " of " +
                  std::to_string(files.size()) + ")");
  }
  return Status::Ok();
}

// Splits `stream` in place: the train blocks slide to the front of it (it becomes train), the
// val blocks are copied out, so the peak is the stream plus val, not twice the stream.
void Split(std::vector<int32_t>* stream, const CorpusOptions& opt, std::vector<int32_t>* val) {
  std::vector<int32_t>& s = *stream;
  const uint64_t n = s.size();
  const uint64_t block = opt.split_block;
  const uint64_t n_blocks = n / block;  // the last block takes the remainder: every block >= split_block
  val->clear();
  if (n_blocks < 2) {
    // Too small for a block split (fewer than two whole blocks): fall back to a contiguous tail
    // of val_fraction of the tokens (at least one, and at least one left for train).
    if (n < 2) return;
    const auto rounded = static_cast<uint64_t>(static_cast<double>(n) * opt.val_fraction + 0.5);
    const uint64_t n_val = std::clamp<uint64_t>(rounded, 1, n - 1);
    val->assign(s.end() - static_cast<ptrdiff_t>(n_val), s.end());
    s.resize(n - n_val);
    return;
  }
  std::vector<double> u(n_blocks);
  std::vector<char> is_val(n_blocks);
  for (uint64_t i = 0; i < n_blocks; ++i) {
    u[i] = UnitInterval(Hash2(opt.split_seed ^ kDomainSplit, i));
    is_val[i] = u[i] < opt.val_fraction;
  }
  // At least one block each way: the lowest hash goes to val, the highest to train.
  const uint64_t lo = static_cast<uint64_t>(std::min_element(u.begin(), u.end()) - u.begin());
  uint64_t hi = static_cast<uint64_t>(std::max_element(u.begin(), u.end()) - u.begin());
  if (hi == lo) hi = (lo + 1) % n_blocks;  // only if every hash were equal; Mix64 is a bijection
  is_val[lo] = 1;
  is_val[hi] = 0;
  uint64_t write = 0;
  for (uint64_t i = 0; i < n_blocks; ++i) {
    const uint64_t b = i * block, e = (i + 1 == n_blocks) ? n : b + block;
    if (is_val[i]) {
      val->insert(val->end(), s.begin() + static_cast<ptrdiff_t>(b), s.begin() + static_cast<ptrdiff_t>(e));
    } else {
      if (write != b) std::copy(s.begin() + static_cast<ptrdiff_t>(b), s.begin() + static_cast<ptrdiff_t>(e),
                                s.begin() + static_cast<ptrdiff_t>(write));
      write += e - b;
    }
  }
  s.resize(write);  // no shrink_to_fit: it would copy train, the very peak this avoids
}

Status CheckOptions(const CorpusOptions& opt) {
  if (!(opt.val_fraction > 0.0 && opt.val_fraction <= 0.5))
    return Status::InvalidArgument("val_fraction " + std::to_string(opt.val_fraction) + ": want a share in (0, 0.5]");
  if (opt.split_block == 0) return Status::InvalidArgument("split_block: must be >= 1");
  return Status::Ok();
}

}  // namespace

// ---- Token files --------------------------------------------------------------------------------

Status WriteTokenFile(const std::string& path, std::span<const int32_t> tokens, const std::string& tokenizer,
                      int32_t vocab_size) {
  if (vocab_size < 1)
    return Status::InvalidArgument(path + ": vocab_size " + std::to_string(vocab_size) + ": want >= 1");
  if (tokenizer.empty() || tokenizer.size() > kTokenFileMaxName)
    return Status::InvalidArgument(path + ": tokenizer name '" + tokenizer + "': want 1 .. 64 bytes");
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab_size)
      return Status::InvalidArgument(path + ": token " + std::to_string(i) + " is " + std::to_string(tokens[i]) +
                                     ", outside the vocabulary of " + std::to_string(vocab_size));
  Header h;
  h.vocab = static_cast<uint32_t>(vocab_size);
  h.width = IdWidth(h.vocab);
  h.count = tokens.size();
  h.name = tokenizer;

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (raw < 0) return Status::IOError(tmp + ": create: " + ErrnoText(errno));
  Fd fd(raw);
  // fsync, rename over path, fsync the folder; on an error the tmp file goes and an old file at path stays.
  auto finish = [&](Status st) { return FinishAtomicWrite(fd.release(), tmp, path, std::move(st)); };
  // The ids first (hashed as they are encoded), then the header that holds their checksum.
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> hs(XXH3_createState(), &XXH3_freeState);
  STRATA_CHECK(hs != nullptr);
  XXH3_64bits_reset(hs.get());
  std::vector<uint8_t> buf(kIoChunk);
  const size_t per_chunk = kIoChunk / h.width;
  uint64_t off = kTokenFileHeaderBytes;
  for (size_t i = 0; i < tokens.size(); i += per_chunk) {
    const size_t n = std::min(per_chunk, tokens.size() - i);
    for (size_t j = 0; j < n; ++j) {
      const uint32_t v = static_cast<uint32_t>(tokens[i + j]);
      for (uint32_t k = 0; k < h.width; ++k) buf[j * h.width + k] = static_cast<uint8_t>(v >> (8 * k));
    }
    XXH3_64bits_update(hs.get(), buf.data(), n * h.width);
    if (Status st = PwriteAll(fd.get(), buf.data(), n * h.width, off, tmp); !st.ok()) return finish(std::move(st));
    off += n * h.width;
  }
  h.data_checksum = XXH3_64bits_digest(hs.get());
  uint8_t header[kTokenFileHeaderBytes];
  EncodeHeader(h, header);
  return finish(PwriteAll(fd.get(), header, sizeof header, 0, tmp));
}

Result<TokenFile> ReadTokenFile(const std::string& path) {
  int raw = -1;
  STRATA_RETURN_IF_ERROR(OpenForRead(path, &raw));
  Fd fd(raw);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::IOError(path + ": stat: " + ErrnoText(errno));
  uint8_t header[kTokenFileHeaderBytes];
  size_t got = 0;
  STRATA_RETURN_IF_ERROR(ReadUpTo(fd.get(), header, sizeof header, path, 0, &got));
  Result<Header> hr = DecodeHeader(std::span<const uint8_t>(header, got), static_cast<uint64_t>(st.st_size), path);
  if (!hr.ok()) return hr.status();
  const Header& h = *hr;

  TokenFile out;
  out.tokenizer = h.name;
  out.vocab_size = static_cast<int32_t>(h.vocab);
  out.tokens.resize(h.count);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> hs(XXH3_createState(), &XXH3_freeState);
  STRATA_CHECK(hs != nullptr);
  XXH3_64bits_reset(hs.get());
  std::vector<uint8_t> buf(kIoChunk);
  const size_t per_chunk = kIoChunk / h.width;
  uint64_t bad_index = UINT64_MAX;
  uint32_t bad_value = 0;
  for (uint64_t i = 0; i < h.count; i += per_chunk) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(per_chunk, h.count - i));
    const uint64_t off = kTokenFileHeaderBytes + i * h.width;
    STRATA_RETURN_IF_ERROR(ReadUpTo(fd.get(), buf.data(), n * h.width, path, off, &got));
    if (got != n * h.width)  // the file shrank after fstat
      return Status::Corruption(path + ": truncated at offset " + std::to_string(off + got) + " while reading ids");
    XXH3_64bits_update(hs.get(), buf.data(), got);
    for (size_t j = 0; j < n; ++j) {
      uint32_t v = 0;
      for (uint32_t k = 0; k < h.width; ++k) v |= static_cast<uint32_t>(buf[j * h.width + k]) << (8 * k);
      if (v >= h.vocab && bad_index == UINT64_MAX) {
        bad_index = i + j;
        bad_value = v;
      }
      out.tokens[i + j] = static_cast<int32_t>(v & 0x7fffffffu);
    }
  }
  // A damaged byte is more likely than a writer that stored an id outside its own vocabulary:
  // the checksum speaks first.
  if (XXH3_64bits_digest(hs.get()) != h.data_checksum)
    return Status::Corruption(path + ": token checksum mismatch (header offset 32): the ids (bytes 128.." +
                              std::to_string(st.st_size) + ") are damaged");
  if (bad_index != UINT64_MAX)
    return Status::Corruption(path + ": token " + std::to_string(bad_index) + " (offset " +
                              std::to_string(kTokenFileHeaderBytes + bad_index * h.width) + ") is " +
                              std::to_string(bad_value) + ", outside the vocabulary of " + std::to_string(h.vocab));
  return out;
}

// ---- The corpus ---------------------------------------------------------------------------------

Result<TokenCorpus> LoadCorpus(const std::string& data, const Tokenizer& tok, const CorpusOptions& opt) {
  STRATA_RETURN_IF_ERROR(CheckOptions(opt));
  struct stat st;
  if (::stat(data.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Status::NotFound(data + ": no such file or folder");
    return Status::IOError(data + ": stat: " + ErrnoText(errno));
  }
  TokenCorpus corpus;
  corpus.tokenizer = tok.name();
  corpus.vocab_size = tok.vocab_size();
  std::vector<int32_t> stream;
  Listing listing;

  if (S_ISREG(st.st_mode)) {
    std::string prefix;
    STRATA_RETURN_IF_ERROR(ReadPrefix(data, kBinaryProbeBytes, &prefix));
    if (prefix.size() >= sizeof kMagic && std::memcmp(prefix.data(), kMagic, sizeof kMagic) == 0) {
      // A token file: no tokenizing, no cache; it must come from this very tokenizer.
      Result<TokenFile> tf = ReadTokenFile(data);
      if (!tf.ok()) return tf.status();
      if (tf->tokenizer != tok.name() || tf->vocab_size != tok.vocab_size())
        return Status::InvalidArgument(data + ": token file of tokenizer '" + tf->tokenizer + "' (vocabulary " +
                                       std::to_string(tf->vocab_size) + "), but the tokenizer is '" + tok.name() +
                                       "' (vocabulary " + std::to_string(tok.vocab_size()) + ")");
      if (tf->tokens.empty()) return Status::InvalidArgument(data + ": token file holds no tokens");
      corpus.files = 1;
      corpus.source_bytes = static_cast<uint64_t>(st.st_size);
      stream = std::move(tf->tokens);
      Note(opt, data + ": token file, " + std::to_string(stream.size()) + " tokens");
    } else {
      if (prefix.empty()) return Status::InvalidArgument(data + ": empty file: no tokens");
      if (LooksBinary(prefix))
        return Status::InvalidArgument(data + ": binary (a NUL byte in the first 64 KiB); want a text file, "
                                       "a folder of text files or a strata token file");
      Source s;
      STRATA_RETURN_IF_ERROR(StatSource(data, &s));
      listing.files.push_back(std::move(s));
    }
  } else if (S_ISDIR(st.st_mode)) {
    STRATA_RETURN_IF_ERROR(ListFolder(data, &listing));
    if (listing.files.empty())
      return Status::InvalidArgument(data + ": no text files in this folder (skipped " +
                                     std::to_string(listing.binary) + " binary, " +
                                     std::to_string(listing.duplicates) + " duplicate and " +
                                     std::to_string(listing.other) + " other entries)");
    Note(opt, data + ": " + std::to_string(listing.files.size()) + " text files; skipped " +
                  std::to_string(listing.binary) + " binary, " + std::to_string(listing.duplicates) +
                  " duplicate (symlinked) and " + std::to_string(listing.other) + " other entries");
  } else {
    return Status::InvalidArgument(data + ": not a regular file or a folder");
  }

  if (!listing.files.empty()) {
    corpus.files = listing.files.size();
    for (const Source& s : listing.files) corpus.source_bytes += s.bytes;
    std::string cache_path;
    if (opt.use_cache) {
      const std::string dir = opt.cache_dir.empty() ? DefaultCacheDir() : opt.cache_dir;
      if (dir.empty()) Warn("no token cache: neither XDG_CACHE_HOME nor HOME is set");
      else cache_path = dir + "/" + Hex16(CacheKey(tok, listing.files)) + ".tokens";
    }
    if (!cache_path.empty()) {
      Result<TokenFile> cached = ReadTokenFile(cache_path);
      if (cached.ok() && cached->tokenizer == tok.name() && cached->vocab_size == tok.vocab_size() &&
          !cached->tokens.empty()) {
        stream = std::move(cached->tokens);
        corpus.from_cache = true;
        corpus.cache_path = cache_path;
        Note(opt, data + ": " + std::to_string(stream.size()) + " tokens from the cache " + cache_path);
      } else if (!cached.ok() && !cached.status().IsNotFound()) {
        Warn("ignoring a damaged token cache: " + cached.status().message() + "; tokenizing again");
      } else if (cached.ok()) {
        Warn("ignoring the token cache " + cache_path + ": it holds tokenizer '" + cached->tokenizer +
             "' (vocabulary " + std::to_string(cached->vocab_size) + ") or no tokens; tokenizing again");
      }
    }
    if (!corpus.from_cache) {
      STRATA_RETURN_IF_ERROR(Tokenize(listing.files, tok, opt, &stream));
      if (stream.empty())
        return Status::InvalidArgument(data + ": no tokens (" + std::to_string(listing.files.size()) +
                                       " files, all empty)");
      if (!cache_path.empty()) {
        std::error_code ec;
        fs::create_directories(fs::path(cache_path).parent_path(), ec);
        Status ws = ec ? Status::IOError(fs::path(cache_path).parent_path().string() + ": create: " + ec.message())
                       : WriteTokenFile(cache_path, stream, tok.name(), tok.vocab_size());
        if (ws.ok()) {
          corpus.cache_path = cache_path;
          Note(opt, "wrote the token cache " + cache_path);
        } else {
          Warn("could not write the token cache (" + ws.message() + "); going on without it");
        }
      }
    }
  }

  Split(&stream, opt, &corpus.val);
  corpus.train = std::move(stream);
  Note(opt, data + ": " + std::to_string(corpus.train.size()) + " train and " + std::to_string(corpus.val.size()) +
                " val tokens");
  return corpus;
}

// ---- Batches ------------------------------------------------------------------------------------

namespace {
void CheckBatchArgs(std::span<const int32_t> stream, int B, int T) {
  STRATA_CHECK(B >= 1 && T >= 1);
  STRATA_CHECK(stream.size() >= static_cast<size_t>(T) + 1);
}

void FillRow(std::span<const int32_t> stream, uint64_t start, int b, int T, Batch* out) {
  const size_t r = static_cast<size_t>(b) * static_cast<size_t>(T);
  std::copy_n(stream.begin() + static_cast<ptrdiff_t>(start), T, out->inputs.begin() + static_cast<ptrdiff_t>(r));
  std::copy_n(stream.begin() + static_cast<ptrdiff_t>(start + 1), T, out->targets.begin() + static_cast<ptrdiff_t>(r));
}

void Shape(int B, int T, Batch* out) {
  out->B = B;
  out->T = T;
  out->inputs.resize(static_cast<size_t>(B) * static_cast<size_t>(T));
  out->targets.resize(static_cast<size_t>(B) * static_cast<size_t>(T));
}
}  // namespace

void DrawTrainBatch(std::span<const int32_t> stream, uint64_t seed, uint64_t step, int B, int T, Batch* out) {
  CheckBatchArgs(stream, B, T);
  Shape(B, T, out);
  const uint64_t starts = stream.size() - static_cast<uint64_t>(T);  // a row starts in [0, size - T - 1]
  for (int b = 0; b < B; ++b)
    FillRow(stream, Below(Hash3(seed ^ kDomainTrain, step, static_cast<uint64_t>(b)), starts), b, T, out);
}

void DrawValBatch(std::span<const int32_t> stream, uint64_t index, int B, int T, Batch* out) {
  CheckBatchArgs(stream, B, T);
  Shape(B, T, out);
  const uint64_t windows = (stream.size() - 1) / static_cast<uint64_t>(T);  // >= 1
  // A stride coprime to the window count walks every window once per cycle (a Weyl sequence);
  // near windows / golden ratio, consecutive rows land far apart.
  uint64_t stride = static_cast<uint64_t>(static_cast<double>(windows) * 0.6180339887498949);
  while (std::gcd(stride, windows) != 1) ++stride;
  for (int b = 0; b < B; ++b) {
    const u128 j = static_cast<u128>(index) * static_cast<uint64_t>(B) + static_cast<uint64_t>(b);
    const uint64_t row = static_cast<uint64_t>(j % windows);
    const uint64_t w = static_cast<uint64_t>((static_cast<u128>(row) * stride) % windows);
    FillRow(stream, w * static_cast<uint64_t>(T), b, T, out);
  }
}

}  // namespace strata::model
