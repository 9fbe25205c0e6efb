// The crash-consistent optimizer state file and its manifest (spec: docs/formats/state-file.md).
//
//   STATE_DIR/state.strata   header (4 KiB) | A slots, last chunk first | B slots, last chunk first
//   STATE_DIR/MANIFEST       64 bytes: the last committed step, replaced atomically
//
// Step t writes slot t mod 2 of every chunk and reads slot (t-1) mod 2. Only once every chunk of
// step t is durable (fdatasync) does the manifest move to t (write MANIFEST.tmp, fsync, rename,
// fsync the directory). So the slots of the committed step are never overwritten, and a kill at
// any instant leaves a directory that opens at its last committed step.
//
// Every multi-byte field is little-endian and encoded byte by byte; nothing casts bytes to
// structs. Each header and each slot carries an XXH3-64 checksum.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "runtime/le.h"
#include "runtime/status.h"

namespace strata {
class ThreadPool;
}

namespace strata::offload {

enum class Layout : uint32_t {
  kQ8MV = 1,        // 8-bit m and v (weights stay with the caller)
  kQ8MasterMV = 2,  // fp32 master weights + 8-bit m and v
  kFp32MV = 3,      // fp32 m and v, for comparison (weights stay with the caller)
  kFp32MasterMV = 4,  // fp32 master weights + fp32 m and v (plain AdamW with durable weights)
};
const char* LayoutName(Layout layout);  // "q8_mv", "q8_master_mv", "fp32_mv", "fp32_master_mv"
[[nodiscard]] Result<Layout> ParseLayout(std::string_view name);
bool HasMaster(Layout layout);
bool IsFp32(Layout layout);  // fp32 m and v (fp32_mv, fp32_master_mv)

inline constexpr uint64_t kAlign = 4096;  // O_DIRECT alignment of offsets, lengths and buffers
inline constexpr uint64_t kFileHeaderBytes = 4096;
inline constexpr uint64_t kSlotHeaderBytes = 64;
inline constexpr uint64_t kManifestBytes = 64;
inline constexpr uint32_t kStateVersion = 1;
inline constexpr uint32_t kSlotMagic = 0x544F4C53;  // "SLOT", little-endian
inline constexpr char kStateFileName[] = "state.strata";
inline constexpr char kManifestName[] = "MANIFEST";

inline uint64_t AlignUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// Where everything is in the state file.
struct Geometry {
  Layout layout = Layout::kQ8MasterMV;
  uint64_t n_params = 0;
  uint32_t chunk_params = 0;  // a multiple of 256 (one quant block)

  [[nodiscard]] Status Validate() const;
  uint64_t n_chunks() const { return (n_params + chunk_params - 1) / chunk_params; }
  uint64_t chunk_begin(uint64_t c) const { return c * chunk_params; }  // its first parameter
  uint32_t chunk_len(uint64_t c) const;  // the last chunk may be partial
  static uint64_t PayloadBytes(Layout layout, uint64_t n);
  // Header + payload of a full chunk, rounded up to 4 KiB; every slot has this size.
  uint64_t slot_bytes() const { return AlignUp(kSlotHeaderBytes + PayloadBytes(layout, chunk_params), kAlign); }
  // All A slots, then all B slots, each region holding the chunks last first: backward hands in
  // the last chunk first, so a step reads one region and writes the other as two ascending
  // sequential streams, which disks serve fastest.
  uint64_t slot_offset(uint64_t chunk, uint32_t slot) const {
    return kFileHeaderBytes + (slot * n_chunks() + (n_chunks() - 1 - chunk)) * slot_bytes();
  }
  uint64_t file_bytes() const { return kFileHeaderBytes + 2 * n_chunks() * slot_bytes(); }
  // Bytes one step reads and writes (every chunk's slot, padding included).
  uint64_t step_io_bytes() const { return n_chunks() * slot_bytes(); }
};

// The AdamW constants the moments were built with (the learning rate may change every step).
struct StateHyper {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
};

struct FileHeader {
  uint32_t version = kStateVersion;
  Geometry geo;
  uint64_t run_id = 0;  // random at creation; binds slots and manifest to this file
  StateHyper hyper;
};
inline constexpr size_t kFileHeaderFields = 128;  // encoded bytes before the zero padding
void EncodeFileHeader(const FileHeader& h, std::span<uint8_t> out);  // out.size() >= kFileHeaderBytes
// Decodes the header from the first bytes of the file (at least kFileHeaderFields; Open and
// inspect pass the whole 4 KiB block). The reserved field (104..120) and every padding byte
// given (128..4096) must be zero. Errors are Corruption naming the offset.
[[nodiscard]] Result<FileHeader> DecodeFileHeader(std::span<const uint8_t> in, const std::string& file);

struct SlotHeader {
  uint32_t chunk_len = 0;
  uint64_t chunk = 0;
  uint64_t step = 0;
  uint64_t payload_bytes = 0;
  uint64_t run_id = 0;
  uint64_t checksum = 0;
};
// The slot checksum: seed = XXH3-64(slot header bytes 0..56); each kChecksumSegment of the
// payload hashed with that seed; XXH3-64 of those hashes (little-endian) with the seed. The
// segments are hashed on the pool when one is given (same value either way).
inline constexpr uint64_t kChecksumSegment = uint64_t{1} << 20;
uint64_t SlotChecksum(const uint8_t* slot, uint64_t payload_bytes, ThreadPool* pool = nullptr);
// Writes the slot header with the checksum over header fields and payload (payload in place).
void SealSlot(uint8_t* slot, SlotHeader h, ThreadPool* pool = nullptr);
// Checks a slot read from disk: magic, chunk, length, run, step and checksum. Errors are
// Corruption naming the file, chunk, slot and byte range.
[[nodiscard]] Status VerifySlot(const uint8_t* slot, const Geometry& geo, uint64_t run_id, uint64_t chunk,
                                uint32_t slot_index, uint64_t expect_step, const std::string& file,
                                ThreadPool* pool = nullptr);
// Decodes a slot header without checking it (for `strata inspect`).
SlotHeader PeekSlotHeader(const uint8_t* slot, uint32_t* magic);

struct Manifest {
  uint32_t version = kStateVersion;
  uint64_t run_id = 0;
  uint64_t committed_step = 0;
  uint64_t n_chunks = 0;
  uint64_t file_bytes = 0;
  uint64_t unix_seconds = 0;  // when it was committed (informational)
};
std::array<uint8_t, kManifestBytes> EncodeManifest(const Manifest& m);
[[nodiscard]] Result<Manifest> DecodeManifest(std::span<const uint8_t> in, const std::string& file);
// MANIFEST.tmp, fsync, rename over MANIFEST, fsync the directory. *renamed says whether the
// rename happened (then readers of the directory see the new manifest, even if the error that
// follows means it may not survive a crash).
[[nodiscard]] Status WriteManifestAtomic(const std::string& dir, const Manifest& m, bool* renamed = nullptr);
[[nodiscard]] Result<Manifest> ReadManifest(const std::string& dir);
// pread until n bytes or end of file (*got says how many); EINTR retried; errors name path and offset.
[[nodiscard]] Status PreadFull(int fd, uint8_t* buf, size_t n, uint64_t off, const std::string& path, size_t* got);

// The payload arrays of one slot in memory (pointers into a staging buffer).
struct SlotView {
  uint32_t n = 0;
  float* master = nullptr;  // n, q8_master_mv only
  float* m_absmax = nullptr;  // NumBlocks(n), q8 layouts
  float* v_absmax = nullptr;
  uint8_t* m_codes = nullptr;  // n, q8 layouts
  uint8_t* v_codes = nullptr;
  float* m32 = nullptr;  // n, fp32_mv only
  float* v32 = nullptr;
};
SlotView ViewSlot(Layout layout, uint8_t* slot, uint32_t n);
// Zero moments (and zero master weights; the caller overwrites them) for step 0.
void InitSlotPayload(Layout layout, const SlotView& v);

// Reads and writes little-endian integers at byte offsets (runtime/le.h).
using ::strata::GetU32;
using ::strata::GetU64;
using ::strata::PutU32;
using ::strata::PutU64;
uint64_t Checksum(const void* data, size_t len, uint64_t seed = 0);

// "slot A of chunk 7 (bytes 28672..6324224 of DIR/state.strata)"
std::string DescribeSlot(const Geometry& geo, uint64_t chunk, uint32_t slot, const std::string& file);

}  // namespace strata::offload
