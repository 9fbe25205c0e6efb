// libFuzzer target for the safetensors reader (model/safetensors.h, docs/formats/safetensors.md).
// Any input is refused with a Corruption or accepted. An accepted file keeps every promise Open
// makes: each tensor's bytes lie inside the data buffer and match its shape and dtype, Find finds
// it, the float and integer readers succeed on their dtypes; and it round-trips: written again by
// WriteSafetensors and read back, it gives the same tensors, bytes and metadata (and, when the
// input carried "strata.xxh3", the same checksum). Build and run: tests/fuzz/README.md.
#include <map>
#include <string>
#include <vector>

#include "model/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using strata::model::DType;

bool IsFloat(DType d) { return d == DType::kF64 || d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }
bool IsInt(DType d) {
  switch (d) {
    case DType::kI64: case DType::kI32: case DType::kI16: case DType::kI8:
    case DType::kU64: case DType::kU32: case DType::kU16: case DType::kU8: return true;
    default: return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata::model;
  auto f = SafetensorsFile::FromBytes(std::vector<uint8_t>(data, data + size), "fuzz.safetensors");
  if (!f.ok()) {
    STRATA_FUZZ_CHECK(f.status().IsCorruption());  // the reader only ever says "corrupt"
    return 0;
  }
  const std::span<const uint8_t> buffer = f->data();
  STRATA_FUZZ_CHECK(buffer.size() <= size);
  std::vector<TensorOut> out;
  for (const TensorInfo& t : f->tensors()) {
    STRATA_FUZZ_CHECK(t.begin <= t.end && t.end <= buffer.size());
    STRATA_FUZZ_CHECK(t.numel() >= 1 || t.nbytes() == 0);
    STRATA_FUZZ_CHECK(static_cast<uint64_t>(t.numel()) * DTypeSize(t.dtype) == t.nbytes());
    STRATA_FUZZ_CHECK(f->Find(t.name) == &t);
    const std::span<const uint8_t> bytes = f->Bytes(t);
    STRATA_FUZZ_CHECK(bytes.size() == t.nbytes());
    // Reading the values touches every byte (the sanitizers see any out-of-bounds read). Float
    // reads cannot fail on a dtype they accept; integer reads may refuse a value outside int32.
    if (IsFloat(t.dtype) && t.numel() <= (1 << 20)) STRATA_FUZZ_CHECK(f->ReadF32(t.name).ok());
    if (IsInt(t.dtype) && t.numel() <= (1 << 20)) {
      auto v = f->ReadI32(t.name);
      STRATA_FUZZ_CHECK(v.ok() || v.status().IsInvalidArgument());
    }
    out.push_back({t.name, t.dtype, t.shape, bytes});
  }
  if (buffer.size() > (1 << 20)) return 0;  // the round trip below is for small files

  // Round trip: the writer takes back what the reader accepted.
  std::map<std::string, std::string> meta = f->metadata();
  meta.erase(kSafetensorsChecksumKey);
  const std::string path = strata::fuzz::ScratchDir() + "/rt.safetensors";
  const strata::Status w = WriteSafetensors(path, out, meta);
  if (!w.ok()) std::fprintf(stderr, "%s\n", w.ToString().c_str());
  STRATA_FUZZ_CHECK(w.ok());
  auto g = SafetensorsFile::Open(path);
  STRATA_FUZZ_CHECK(g.ok());
  STRATA_FUZZ_CHECK(g->tensors().size() == f->tensors().size());
  for (size_t i = 0; i < f->tensors().size(); ++i) {
    const TensorInfo &a = f->tensors()[i], &b = g->tensors()[i];
    STRATA_FUZZ_CHECK(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape);
    const auto ab = f->Bytes(a), bb = g->Bytes(b);
    STRATA_FUZZ_CHECK(ab.size() == bb.size() && std::equal(ab.begin(), ab.end(), bb.begin()));
  }
  std::map<std::string, std::string> back = g->metadata();
  const auto sum = back.find(kSafetensorsChecksumKey);
  STRATA_FUZZ_CHECK(sum != back.end());
  if (auto had = f->metadata().find(kSafetensorsChecksumKey); had != f->metadata().end()) {
    STRATA_FUZZ_CHECK(had->second == sum->second);  // it was verified, and the data buffer is the same
  }
  back.erase(sum);
  STRATA_FUZZ_CHECK(back == meta);
  strata::fuzz::Accept();
  return 0;
}
