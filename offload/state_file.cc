#include "offload/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include "optim/q8_book.h"
#include "runtime/file_util.h"
#include "runtime/thread_pool.h"
#include "optim/q8_codec.h"

namespace strata::offload {

namespace {
constexpr char kFileMagic[8] = {'S', 'T', 'R', 'A', 'T', 'A', 'O', 'S'};
constexpr char kManifestMagic[8] = {'S', 'T', 'R', 'A', 'T', 'A', 'M', 'F'};
constexpr uint32_t kChecksumXxh3 = 1;
constexpr uint64_t kMaxParams = uint64_t{1} << 48;
constexpr uint32_t kMaxChunkParams = uint32_t{1} << 28;


const uint8_t* FirstNonZero(const uint8_t* b, const uint8_t* e) {
  const uint8_t* nz = std::find_if(b, e, [](uint8_t x) { return x != 0; });
  return nz == e ? nullptr : nz;
}

std::string HexByte(uint8_t v) {
  static const char kDigits[] = "0123456789abcdef";
  return std::string("0x") + kDigits[v >> 4] + kDigits[v & 15];
}
}  // namespace

uint64_t Checksum(const void* data, size_t len, uint64_t seed) { return XXH3_64bits_withSeed(data, len, seed); }

const char* LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kQ8MV: return "q8_mv";
    case Layout::kQ8MasterMV: return "q8_master_mv";
    case Layout::kFp32MV: return "fp32_mv";
    case Layout::kFp32MasterMV: return "fp32_master_mv";
  }
  return "unknown";
}

Result<Layout> ParseLayout(std::string_view name) {
  for (Layout l : {Layout::kQ8MV, Layout::kQ8MasterMV, Layout::kFp32MV, Layout::kFp32MasterMV})
    if (name == LayoutName(l)) return l;
  return Status::InvalidArgument("layout '" + std::string(name) + "': want q8_master_mv, q8_mv, fp32_master_mv or fp32_mv");
}

bool HasMaster(Layout layout) { return layout == Layout::kQ8MasterMV || layout == Layout::kFp32MasterMV; }
bool IsFp32(Layout layout) { return layout == Layout::kFp32MV || layout == Layout::kFp32MasterMV; }

static bool KnownLayout(uint32_t v) { return v >= 1 && v <= 4; }

// ---- Geometry ----------------------------------------------------------------------------------

Status Geometry::Validate() const {
  if (!KnownLayout(static_cast<uint32_t>(layout))) return Status::InvalidArgument("unknown layout");
  if (n_params == 0) return Status::InvalidArgument("params: must be >= 1");
  if (n_params > kMaxParams) return Status::InvalidArgument("params: " + std::to_string(n_params) + " is above 2^48");
  if (chunk_params == 0 || chunk_params % q8::kBlock != 0 || chunk_params > kMaxChunkParams)
    return Status::InvalidArgument("chunk: " + std::to_string(chunk_params) +
                                   " parameters; want a multiple of 256 (one quant block), at most 2^28");
  return Status::Ok();
}

uint32_t Geometry::chunk_len(uint64_t c) const {
  const uint64_t begin = chunk_begin(c);
  return static_cast<uint32_t>(std::min<uint64_t>(chunk_params, n_params - begin));
}

uint64_t Geometry::PayloadBytes(Layout layout, uint64_t n) {
  const uint64_t nb = static_cast<uint64_t>(q8::NumBlocks(static_cast<int64_t>(n)));
  switch (layout) {
    case Layout::kQ8MV: return 2 * n + 8 * nb;
    case Layout::kQ8MasterMV: return 4 * n + 2 * n + 8 * nb;
    case Layout::kFp32MV: return 8 * n;
    case Layout::kFp32MasterMV: return 12 * n;
  }
  return 0;
}

std::string DescribeSlot(const Geometry& geo, uint64_t chunk, uint32_t slot, const std::string& file) {
  const uint64_t off = geo.slot_offset(chunk, slot);
  return std::string("slot ") + (slot == 0 ? "A" : "B") + " of chunk " + std::to_string(chunk) + " (bytes " +
         std::to_string(off) + ".." + std::to_string(off + geo.slot_bytes()) + " of " + file + ")";
}

// Field offsets of the three records (docs/formats/state-file.md draws the same tables).
namespace fh {  // the file header
constexpr size_t kMagic = 0, kVersion = 8, kLayout = 12, kNParams = 16, kChunkParams = 24, kHeaderBytes = 28,
                 kNChunks = 32, kSlotBytes = 40, kFileBytes = 48, kRunId = 56, kBeta1 = 64, kBeta2 = 72, kEps = 80,
                 kWeightDecay = 88, kSlotHeaderBytes = 96, kChecksumKind = 100, kReserved = 104, kChecksum = 120;
}  // namespace fh
namespace sh {  // a slot's header
constexpr size_t kMagic = 0, kChunkLen = 4, kChunk = 8, kStep = 16, kPayloadBytes = 24, kRunId = 32, kChecksum = 56;
}  // namespace sh
namespace mf {  // the MANIFEST
constexpr size_t kMagic = 0, kVersion = 8, kRunId = 16, kCommittedStep = 24, kNChunks = 32, kFileBytes = 40,
                 kUnixSeconds = 48, kChecksum = 56;
}  // namespace mf

// ---- File header -------------------------------------------------------------------------------

void EncodeFileHeader(const FileHeader& h, std::span<uint8_t> out) {
  STRATA_CHECK(out.size() >= kFileHeaderBytes);
  std::memset(out.data(), 0, kFileHeaderBytes);
  uint8_t* p = out.data();
  std::memcpy(p, kFileMagic, 8);
  PutU32(p + fh::kVersion, h.version);
  PutU32(p + fh::kLayout, static_cast<uint32_t>(h.geo.layout));
  PutU64(p + fh::kNParams, h.geo.n_params);
  PutU32(p + fh::kChunkParams, h.geo.chunk_params);
  PutU32(p + fh::kHeaderBytes, static_cast<uint32_t>(kFileHeaderBytes));
  PutU64(p + fh::kNChunks, h.geo.n_chunks());
  PutU64(p + fh::kSlotBytes, h.geo.slot_bytes());
  PutU64(p + fh::kFileBytes, h.geo.file_bytes());
  PutU64(p + fh::kRunId, h.run_id);
  PutF64(p + fh::kBeta1, h.hyper.beta1);
  PutF64(p + fh::kBeta2, h.hyper.beta2);
  PutF64(p + fh::kEps, h.hyper.eps);
  PutF64(p + fh::kWeightDecay, h.hyper.weight_decay);
  PutU32(p + fh::kSlotHeaderBytes, static_cast<uint32_t>(kSlotHeaderBytes));
  PutU32(p + fh::kChecksumKind, kChecksumXxh3);
  PutU64(p + fh::kChecksum, Checksum(p, fh::kChecksum));
}

Result<FileHeader> DecodeFileHeader(std::span<const uint8_t> in, const std::string& file) {
  auto bad = [&](const std::string& why) { return Status::Corruption(file + ": header: " + why); };
  if (in.size() < kFileHeaderFields)
    return bad("truncated: " + std::to_string(in.size()) + " bytes, want at least " + std::to_string(kFileHeaderFields));
  const uint8_t* p = in.data();
  if (std::memcmp(p, kFileMagic, 8) != 0) return bad("bad magic (bytes 0..8): not a strata state file");
  const uint64_t want = Checksum(p, fh::kChecksum), got = GetU64(p + fh::kChecksum);
  if (want != got) return bad("checksum mismatch at offset 120 (the header bytes 0..120 are damaged)");
  FileHeader h;
  h.version = GetU32(p + fh::kVersion);
  if (h.version != kStateVersion)
    return bad("version " + std::to_string(h.version) + " (offset 8); this strata reads version " +
               std::to_string(kStateVersion));
  const uint32_t layout = GetU32(p + fh::kLayout);
  if (!KnownLayout(layout)) return bad("unknown layout " + std::to_string(layout) + " (offset 12)");
  h.geo.layout = static_cast<Layout>(layout);
  h.geo.n_params = GetU64(p + fh::kNParams);
  h.geo.chunk_params = GetU32(p + fh::kChunkParams);
  if (Status st = h.geo.Validate(); !st.ok()) return bad(st.message() + " (offsets 16..28)");
  if (GetU32(p + fh::kHeaderBytes) != kFileHeaderBytes) return bad("header size field (offset 28) is not 4096");
  if (GetU64(p + fh::kNChunks) != h.geo.n_chunks()) return bad("chunk count (offset 32) does not match params and chunk size");
  if (GetU64(p + fh::kSlotBytes) != h.geo.slot_bytes()) return bad("slot size (offset 40) does not match the layout");
  if (GetU64(p + fh::kFileBytes) != h.geo.file_bytes()) return bad("file size (offset 48) does not match the geometry");
  h.run_id = GetU64(p + fh::kRunId);
  h.hyper.beta1 = GetF64(p + fh::kBeta1);
  h.hyper.beta2 = GetF64(p + fh::kBeta2);
  h.hyper.eps = GetF64(p + fh::kEps);
  h.hyper.weight_decay = GetF64(p + fh::kWeightDecay);
  if (GetU32(p + fh::kSlotHeaderBytes) != kSlotHeaderBytes) return bad("slot header size (offset 96) is not 64");
  if (GetU32(p + fh::kChecksumKind) != kChecksumXxh3) return bad("unknown checksum kind (offset 100)");
  // The checksum covers bytes 0..120 only, so the zeros it leaves out are checked one by one: a
  // non-zero byte there is damage (or another program's bytes), never something to ignore.
  if (const uint8_t* nz = FirstNonZero(p + fh::kReserved, p + fh::kChecksum))
    return bad("reserved field (offsets 104..120) is not zero: byte " + std::to_string(nz - p) + " is " + HexByte(*nz));
  const uint8_t* end = p + std::min<size_t>(in.size(), kFileHeaderBytes);
  if (const uint8_t* nz = FirstNonZero(p + kFileHeaderFields, end))
    return bad("padding (offsets " + std::to_string(kFileHeaderFields) + ".." + std::to_string(kFileHeaderBytes) +
               ") is not zero: byte " + std::to_string(nz - p) + " is " + HexByte(*nz) +
               " (the header block was damaged after it was written)");
  return h;
}

// ---- Slots -------------------------------------------------------------------------------------

// Two levels, so the segments can be hashed in parallel: with seed = XXH3(slot header bytes
// 0..56), each 1 MiB segment of the payload gets XXH3(segment, seed), and the checksum is
// XXH3(those 64-bit hashes as little-endian bytes, seed).
uint64_t SlotChecksum(const uint8_t* slot, uint64_t payload_bytes, ThreadPool* pool) {
  const uint64_t seed = Checksum(slot, 56);
  const uint8_t* payload = slot + kSlotHeaderBytes;
  const int64_t segments = static_cast<int64_t>((payload_bytes + kChecksumSegment - 1) / kChecksumSegment);
  std::vector<uint8_t> hashes(static_cast<size_t>(segments) * 8);
  auto run = [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const uint64_t off = static_cast<uint64_t>(i) * kChecksumSegment;
      PutU64(hashes.data() + 8 * i, Checksum(payload + off, std::min(kChecksumSegment, payload_bytes - off), seed));
    }
  };
  if (pool && segments > 1) pool->ParallelFor(segments, 1, run); else run(0, segments);
  return Checksum(hashes.data(), hashes.size(), seed);
}

void SealSlot(uint8_t* slot, SlotHeader h, ThreadPool* pool) {
  std::memset(slot, 0, kSlotHeaderBytes);
  PutU32(slot, kSlotMagic);
  PutU32(slot + sh::kChunkLen, h.chunk_len);
  PutU64(slot + sh::kChunk, h.chunk);
  PutU64(slot + sh::kStep, h.step);
  PutU64(slot + sh::kPayloadBytes, h.payload_bytes);
  PutU64(slot + sh::kRunId, h.run_id);
  PutU64(slot + sh::kChecksum, SlotChecksum(slot, h.payload_bytes, pool));
}

SlotHeader PeekSlotHeader(const uint8_t* slot, uint32_t* magic) {
  if (magic) *magic = GetU32(slot);
  SlotHeader h;
  h.chunk_len = GetU32(slot + sh::kChunkLen);
  h.chunk = GetU64(slot + sh::kChunk);
  h.step = GetU64(slot + sh::kStep);
  h.payload_bytes = GetU64(slot + sh::kPayloadBytes);
  h.run_id = GetU64(slot + sh::kRunId);
  h.checksum = GetU64(slot + sh::kChecksum);
  return h;
}

Status VerifySlot(const uint8_t* slot, const Geometry& geo, uint64_t run_id, uint64_t chunk, uint32_t slot_index,
                  uint64_t expect_step, const std::string& file, ThreadPool* pool) {
  auto bad = [&](const std::string& why) {
    return Status::Corruption(DescribeSlot(geo, chunk, slot_index, file) + ": " + why);
  };
  uint32_t magic = 0;
  const SlotHeader h = PeekSlotHeader(slot, &magic);
  if (magic != kSlotMagic) return bad("bad slot magic (never written, or overwritten)");
  const uint32_t n = geo.chunk_len(chunk);
  const uint64_t payload = Geometry::PayloadBytes(geo.layout, n);
  if (h.chunk != chunk || h.chunk_len != n || h.payload_bytes != payload)
    return bad("header names chunk " + std::to_string(h.chunk) + " of " + std::to_string(h.chunk_len) +
               " values and " + std::to_string(h.payload_bytes) + " payload bytes; want chunk " +
               std::to_string(chunk) + " of " + std::to_string(n) + " values and " + std::to_string(payload));
  if (h.run_id != run_id) return bad("belongs to another run (run id differs from the file header)");
  if (SlotChecksum(slot, payload, pool) != h.checksum)
    return bad("checksum mismatch: the slot's bytes were damaged after they were written");
  if (h.step != expect_step)
    return bad("holds step " + std::to_string(h.step) + ", but the manifest commits step " +
               std::to_string(expect_step));
  return Status::Ok();
}

SlotView ViewSlot(Layout layout, uint8_t* slot, uint32_t n) {
  SlotView v;
  v.n = n;
  uint8_t* p = slot + kSlotHeaderBytes;
  const size_t nb = static_cast<size_t>(q8::NumBlocks(n));
  if (IsFp32(layout)) {
    if (layout == Layout::kFp32MasterMV) {
      v.master = reinterpret_cast<float*>(p);
      p += size_t{4} * n;
    }
    v.m32 = reinterpret_cast<float*>(p);
    v.v32 = v.m32 + n;
    return v;
  }
  if (layout == Layout::kQ8MasterMV) {
    v.master = reinterpret_cast<float*>(p);
    p += size_t{4} * n;
  }
  v.m_absmax = reinterpret_cast<float*>(p);
  v.v_absmax = v.m_absmax + nb;
  v.m_codes = reinterpret_cast<uint8_t*>(v.v_absmax + nb);
  v.v_codes = v.m_codes + n;
  return v;
}

void InitSlotPayload(Layout layout, const SlotView& v) {
  const size_t nb = static_cast<size_t>(q8::NumBlocks(v.n));
  if (IsFp32(layout)) {
    if (v.master) std::memset(v.master, 0, sizeof(float) * v.n);
    std::memset(v.m32, 0, sizeof(float) * v.n * 2);
    return;
  }
  if (v.master) std::memset(v.master, 0, sizeof(float) * v.n);
  std::memset(v.m_absmax, 0, sizeof(float) * nb * 2);
  std::memset(v.m_codes, q8::kSignedZero, v.n);
  std::memset(v.v_codes, q8::kUnsignedZero, v.n);
}

// ---- Manifest ----------------------------------------------------------------------------------

std::array<uint8_t, kManifestBytes> EncodeManifest(const Manifest& m) {
  std::array<uint8_t, kManifestBytes> b{};
  std::memcpy(b.data(), kManifestMagic, 8);
  PutU32(b.data() + mf::kVersion, m.version);
  PutU64(b.data() + mf::kRunId, m.run_id);
  PutU64(b.data() + mf::kCommittedStep, m.committed_step);
  PutU64(b.data() + mf::kNChunks, m.n_chunks);
  PutU64(b.data() + mf::kFileBytes, m.file_bytes);
  PutU64(b.data() + mf::kUnixSeconds, m.unix_seconds);
  PutU64(b.data() + mf::kChecksum, Checksum(b.data(), mf::kChecksum));
  return b;
}

Result<Manifest> DecodeManifest(std::span<const uint8_t> in, const std::string& file) {
  auto bad = [&](const std::string& why) { return Status::Corruption(file + ": " + why); };
  if (in.size() != kManifestBytes)
    return bad("size " + std::to_string(in.size()) + " bytes, want " + std::to_string(kManifestBytes) +
               (in.size() < kManifestBytes ? " (truncated)" : " (trailing bytes)"));
  const uint8_t* p = in.data();
  if (std::memcmp(p, kManifestMagic, 8) != 0) return bad("bad magic (bytes 0..8): not a strata manifest");
  if (Checksum(p, mf::kChecksum) != GetU64(p + mf::kChecksum)) return bad("checksum mismatch at offset 56 (bytes 0..56 are damaged)");
  Manifest m;
  m.version = GetU32(p + mf::kVersion);
  if (m.version != kStateVersion)
    return bad("version " + std::to_string(m.version) + " (offset 8); this strata reads version " +
               std::to_string(kStateVersion));
  m.run_id = GetU64(p + mf::kRunId);
  m.committed_step = GetU64(p + mf::kCommittedStep);
  m.n_chunks = GetU64(p + mf::kNChunks);
  m.file_bytes = GetU64(p + mf::kFileBytes);
  m.unix_seconds = GetU64(p + mf::kUnixSeconds);
  return m;
}

Status PreadFull(int fd, uint8_t* buf, size_t n, uint64_t off, const std::string& path, size_t* got) {
  *got = 0;
  while (*got < n) {
    const ssize_t r = ::pread(fd, buf + *got, n - *got, static_cast<off_t>(off + *got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::IOError(path + ": read at offset " + std::to_string(off + *got) + ": " + ErrnoText(errno));
    if (r == 0) break;
    *got += static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status WriteManifestAtomic(const std::string& dir, const Manifest& m, bool* renamed) {
  if (renamed) *renamed = false;
  const std::string tmp = dir + "/" + kManifestName + ".tmp";
  const std::string dst = dir + "/" + kManifestName;
  const auto bytes = EncodeManifest(m);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(tmp + ": create: " + ErrnoText(errno));
  Status st = WriteAll(fd, bytes.data(), bytes.size(), tmp);
  if (st.ok() && ::fsync(fd) != 0) st = Status::IOError(tmp + ": fsync: " + ErrnoText(errno));
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), dst.c_str()) != 0)
    st = Status::IOError(tmp + ": rename to " + dst + ": " + ErrnoText(errno));
  if (!st.ok()) {
    ::unlink(tmp.c_str());  // the old MANIFEST is untouched
    return st;
  }
  if (renamed) *renamed = true;
  return FsyncDir(dir);
}

Result<Manifest> ReadManifest(const std::string& dir) {
  const std::string path = dir + "/" + kManifestName;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return Status::NotFound(path + ": missing: " + dir +
                              " is not a strata state directory, or its creation never finished");
    return Status::IOError(path + ": open: " + ErrnoText(errno));
  }
  uint8_t buf[kManifestBytes + 1];
  size_t got = 0;
  while (got < sizeof buf) {
    const ssize_t r = ::read(fd, buf + got, sizeof buf - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int e = errno;
      ::close(fd);
      return Status::IOError(path + ": read: " + ErrnoText(e));
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  return DecodeManifest(std::span<const uint8_t>(buf, got), path);
}

}  // namespace strata::offload
