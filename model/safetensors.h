// Safetensors files (spec: docs/formats/safetensors.md): read any file the Hugging Face
// `safetensors` package writes (byte-sized dtypes), write files it reads.
//
//   u64 N (little-endian) | N bytes of JSON header, space-padded | data buffer
//   header: {"__metadata__": {str: str}, NAME: {"dtype": "F32", "shape": [2, 3],
//            "data_offsets": [BEGIN, END]}, ...}   (offsets relative to the data buffer)
//
// strata adds one metadata key, "strata.xxh3": XXH3-64 of the data buffer as 16 lowercase hex
// digits. The writer always sets it; the reader verifies it when present (other tools ignore it).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/status.h"

namespace strata::model {

// Every byte-sized dtype of the safetensors format. Sub-byte dtypes (F4, F6_*) are refused.
enum class DType : uint8_t {
  kF64, kF32, kF16, kBF16,
  kI64, kI32, kI16, kI8,
  kU64, kU32, kU16, kU8,
  kBool,
  kF8E4M3, kF8E5M2, kF8E8M0, kF8E4M3Fnuz, kF8E5M2Fnuz,  // stored and handed out as bytes only
  kC64,                                                   // complex64: two F32, stored as bytes only
};
std::string_view DTypeName(DType dtype);  // the header spelling: "F32", "BF16", "BOOL", "F8_E4M3"
uint64_t DTypeSize(DType dtype);           // bytes per element
// "F32" -> kF32. InvalidArgument names the dtype and says whether it is a safetensors dtype
// strata does not handle (F4, F6_E2M3, F6_E3M2) or not a safetensors dtype at all.
[[nodiscard]] Result<DType> ParseDType(std::string_view name);

// Exact conversions (every half and bfloat16 value is a float): NaN payloads are kept, signaling
// NaNs are not quieted, subnormals become normal floats.
float HalfToFloat(uint16_t bits);
float BF16ToFloat(uint16_t bits);
// fp32 -> bfloat16 / half, rounding to nearest even as torch's .to() does; NaN stays a (quiet)
// NaN, overflow becomes infinity, half's subnormals are rounded exactly.
uint16_t FloatToBF16(float f);
uint16_t FloatToHalf(float f);

inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;  // the reference's limit
inline constexpr char kSafetensorsChecksumKey[] = "strata.xxh3";
inline constexpr uint64_t kSafetensorsStreamBufferBytes = uint64_t{8} << 20;  // each of StreamF32's two buffers

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // row-major; [] is a scalar (one element)
  uint64_t begin = 0, end = 0;  // byte range [begin, end) in the data buffer

  int64_t numel() const;  // product of shape (1 for a scalar); Open guarantees it fits
  uint64_t nbytes() const { return end - begin; }
};

// A whole safetensors file read into memory and validated up front (every check in the spec):
// once Open succeeds, every tensor's bytes are in bounds and the accessors cannot fail on the
// file's account, only on the caller's (wrong name, wrong size, unconvertible dtype).
// One tensor of SafetensorsFile::StreamF32: where its values go as its bytes arrive.
struct StreamTarget {
  std::string_view name;  // a tensor of the file, of dtype F64, F32, F16 or BF16
  std::span<float> out;   // numel() floats, written in order (F64 rounds to nearest)
  // Compare instead of write: when differs is set, out must be empty, `expect` holds numel()
  // floats, and *differs becomes true when a converted value differs from it bit for bit (else
  // false). expect may be another target's `out` of the same call if that tensor comes earlier
  // in the data buffer (it is then complete before this one's first byte is compared).
  std::span<const float> expect;
  bool* differs = nullptr;
};
struct StreamOptions {
  uint64_t buffer_bytes = kSafetensorsStreamBufferBytes;  // each of the two read buffers
  // Hash the whole data buffer in the same pass and compare with "strata.xxh3" (when present).
  // false: read only the targets' bytes (gaps of at most buffer_bytes are read through).
  bool verify_checksum = true;
  // Read with O_DIRECT (4 KiB-aligned reads straight into the buffers, no page cache) when the
  // file system allows it; else, or when false, buffered reads with posix_fadvise SEQUENTIAL.
  bool direct = true;
};

class SafetensorsFile {
 public:
  // Errors: NotFound (no such file), IOError (the OS refused), Corruption (the bytes fail a
  // check). Every message starts with the path and names the field or tensor.
  [[nodiscard]] static Result<SafetensorsFile> Open(const std::string& path);
  // The header alone (every check but the checksum, which needs the data): tensors(), Find() and
  // metadata() work; data(), Bytes() and the readers must not be used (the readers refuse).
  [[nodiscard]] static Result<SafetensorsFile> OpenHeader(const std::string& path);
  // The same checks on bytes already in memory; `name` stands for the path in messages.
  [[nodiscard]] static Result<SafetensorsFile> FromBytes(std::vector<uint8_t> bytes, std::string name);

  SafetensorsFile(SafetensorsFile&&) = default;
  SafetensorsFile& operator=(SafetensorsFile&&) = default;

  const std::string& path() const { return path_; }
  // In data-buffer order (for a strata-written file, the order given to WriteSafetensors).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* Find(std::string_view name) const;  // nullptr when absent
  // "__metadata__" (empty when the file has none), "strata.xxh3" included when present.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::span<const uint8_t> data() const;  // the whole data buffer
  std::span<const uint8_t> Bytes(const TensorInfo& t) const;  // t from tensors() or Find()

  // F64, F32, F16 or BF16 -> float (F64 rounds to nearest). out.size() must equal numel().
  // NotFound: no such tensor; InvalidArgument: wrong size or dtype. Messages name file and tensor.
  [[nodiscard]] Status ReadF32(std::string_view name, std::span<float> out) const;
  [[nodiscard]] Result<std::vector<float>> ReadF32(std::string_view name) const;
  // Any integer dtype (I64, I32, I16, I8, U64, U32, U16, U8) -> int32; InvalidArgument names the
  // first element outside int32's range.
  [[nodiscard]] Result<std::vector<int32_t>> ReadI32(std::string_view name) const;

  // A streaming read of several tensors at once, for a file opened with OpenHeader (a file read
  // whole by Open or FromBytes is converted from memory, the same way). The data buffer is read
  // from path() in data-buffer order with large sequential preads (buffer_bytes each; O_DIRECT
  // when allowed, see StreamOptions) into two reusable buffers: a reader thread fills one while this
  // thread converts the other into the targets (BF16, F16 exactly; F64 rounded) and feeds the
  // same bytes to XXH3's streaming hash. Memory: the two buffers, whatever the file's size.
  // Bytes of tensors that are not targets are hashed and otherwise skipped (with
  // verify_checksum false, large runs of them are not read at all).
  //
  // Errors, each naming the file (and, for the file's own faults, the tensor):
  //   NotFound / InvalidArgument (before any read): no such tensor, a tensor given twice, a
  //     dtype that is not a float, a span of the wrong size;
  //   Corruption: the file is shorter than its header says (truncated before or during the
  //     read; names the tensor whose bytes are missing), or longer (changed since it was opened),
  //     a malformed "strata.xxh3", a checksum mismatch (found only after the last byte);
  //   IOError: the OS refused to open, stat or read it (names the tensor being read).
  // On an error found during the read (truncation, read error, checksum mismatch) the targets
  // have been partly or wholly overwritten with values that must not be used.
  [[nodiscard]] Status StreamF32(std::span<const StreamTarget> targets, const StreamOptions& opt = {}) const;

 private:
  SafetensorsFile() = default;
  // bytes: the file (or, header_only, its first 8 + N bytes); size: the file's size.
  [[nodiscard]] static Result<SafetensorsFile> Parse(std::vector<uint8_t> bytes, std::string name, uint64_t size,
                                                     bool header_only);
  [[nodiscard]] Result<const TensorInfo*> Lookup(std::string_view name) const;

  std::string path_;
  std::vector<uint8_t> bytes_;  // the whole file
  uint64_t data_offset_ = 0;    // 8 + N
  uint64_t file_size_ = 0;      // when opened: data_offset_ + the data buffer's size
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
  bool header_only_ = false;
};

// One tensor to write: `bytes` holds numel * DTypeSize(dtype) bytes, little-endian, row-major.
struct TensorOut {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::span<const uint8_t> bytes;
};

// Writes a safetensors file atomically: PATH.tmp.XXXXXX, fsync, rename over PATH, fsync the
// directory, so a crash leaves the old file or the new one, never a part. Tensors are laid out
// contiguously in the order given; the header is padded with spaces to a multiple of 8 bytes, so
// the data buffer starts 8-aligned. `metadata` goes into "__metadata__" together with
// "strata.xxh3" (computed here; a value passed in, e.g. from a file read earlier, is replaced).
// InvalidArgument (nothing written): a duplicate name, the name "__metadata__", a name or
// metadata that is not valid UTF-8, a negative dimension, a size overflow, bytes.size() not
// numel * itemsize, a header over kSafetensorsMaxHeaderBytes. IOError names the path and the call.
[[nodiscard]] Status WriteSafetensors(const std::string& path, std::span<const TensorOut> tensors,
                                      const std::map<std::string, std::string>& metadata);

}  // namespace strata::model
