// libFuzzer target for the offload state file's decoders (offload/state_file.h,
// docs/formats/state-file.md): the 4 KiB file header, the 64-byte MANIFEST and the slot header with
// its payload checksum. The first byte picks the decoder (mod 3), the rest is its input:
//
//   0: DecodeFileHeader(rest)
//   1: DecodeManifest(rest)
//   2: VerifySlot of one of four small geometries (byte 1, mod 4) and chunk (byte 2, mod chunks),
//      the slot being rest, zero-padded or cut to the geometry's slot size
//
// Each input is decoded twice: as it is, and resealed (its checksum field recomputed), so the
// fuzzer reaches the checks behind the checksum. Any input is refused with a Corruption or
// accepted; an accepted header or manifest re-encodes to the same bytes, and an accepted slot
// reseals to the same header (the reserved bytes aside: the checksums cover them, the decoders do
// not read them, so a nonzero one changes the checksum of the re-encoding). Build and run:
// tests/fuzz/README.md.
#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "offload/state_file.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace strata::offload;

constexpr uint64_t kRunId = 42;
constexpr uint64_t kStep = 7;

// Small geometries of every layout, with a partial last chunk where the layout allows one.
const Geometry kGeometries[4] = {
    {Layout::kQ8MV, 1000, 512},
    {Layout::kQ8MasterMV, 300, 256},
    {Layout::kFp32MV, 256, 256},
    {Layout::kFp32MasterMV, 700, 512},
};

bool AllZero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

bool SameBytes(const uint8_t* a, const uint8_t* b, size_t begin, size_t end) {
  return std::memcmp(a + begin, b + begin, end - begin) == 0;
}

void HeaderBytes(std::span<const uint8_t> in) {
  auto h = DecodeFileHeader(in, "fuzz/state.strata");
  if (!h.ok()) {
    STRATA_FUZZ_CHECK(h.status().IsCorruption());
    return;
  }
  STRATA_FUZZ_CHECK(in.size() >= kFileHeaderFields && h->geo.Validate().ok());
  std::vector<uint8_t> again(kFileHeaderBytes);
  EncodeFileHeader(*h, again);
  // Bytes 0..104 are the fields; 104..120 reserved; 120..128 the checksum of 0..120.
  STRATA_FUZZ_CHECK(SameBytes(again.data(), in.data(), 0, 104));
  auto back = DecodeFileHeader(again, "again");
  STRATA_FUZZ_CHECK(back.ok());
  std::array<uint8_t, kFileHeaderBytes> twice;
  EncodeFileHeader(*back, twice);
  STRATA_FUZZ_CHECK(std::memcmp(twice.data(), again.data(), kFileHeaderBytes) == 0);
  strata::fuzz::Accept();
}

void ManifestBytes(std::span<const uint8_t> in) {
  auto m = DecodeManifest(in, "fuzz/MANIFEST");
  if (!m.ok()) {
    STRATA_FUZZ_CHECK(m.status().IsCorruption());
    return;
  }
  STRATA_FUZZ_CHECK(in.size() == kManifestBytes);
  const std::array<uint8_t, kManifestBytes> again = EncodeManifest(*m);
  // Bytes 12..16 are reserved (written as zero; the checksum covers them, the decoder does not read
  // them); the fields must come back, and the checksum too when the reserved bytes were zero.
  STRATA_FUZZ_CHECK(SameBytes(again.data(), in.data(), 0, 12) && SameBytes(again.data(), in.data(), 16, 56));
  if (AllZero(in.data() + 12, 4)) STRATA_FUZZ_CHECK(SameBytes(again.data(), in.data(), 56, 64));
  strata::fuzz::Accept();
}

void Slot(const Geometry& geo, uint64_t chunk, std::vector<uint8_t>& slot) {
  const strata::Status st = VerifySlot(slot.data(), geo, kRunId, chunk, 1, kStep, "fuzz/state.strata");
  if (!st.ok()) {
    STRATA_FUZZ_CHECK(st.IsCorruption());
    return;
  }
  uint32_t magic = 0;
  const SlotHeader h = PeekSlotHeader(slot.data(), &magic);
  STRATA_FUZZ_CHECK(h.chunk == chunk && h.chunk_len == geo.chunk_len(chunk) && h.run_id == kRunId && h.step == kStep);
  std::vector<uint8_t> again = slot;
  SealSlot(again.data(), h);
  // Bytes 40..56 of the slot header are reserved (as in the manifest); the fields must come back,
  // and the checksum too when the reserved bytes were zero.
  STRATA_FUZZ_CHECK(SameBytes(again.data(), slot.data(), 0, 40));
  if (AllZero(slot.data() + 40, 16)) STRATA_FUZZ_CHECK(SameBytes(again.data(), slot.data(), 56, 64));
  strata::fuzz::Accept();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::span<const uint8_t> rest(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      HeaderBytes(rest);
      if (rest.size() >= kFileHeaderFields) {
        std::vector<uint8_t> sealed(rest.begin(), rest.end());
        PutU64(sealed.data() + 120, Checksum(sealed.data(), 120));
        HeaderBytes(sealed);
      }
      break;
    }
    case 1: {
      ManifestBytes(rest);
      if (rest.size() == kManifestBytes) {
        std::vector<uint8_t> sealed(rest.begin(), rest.end());
        PutU64(sealed.data() + 56, Checksum(sealed.data(), 56));
        ManifestBytes(sealed);
      }
      break;
    }
    case 2: {
      if (rest.size() < 2) return 0;
      const Geometry& geo = kGeometries[rest[0] % 4];
      const uint64_t chunk = rest[1] % geo.n_chunks();
      std::vector<uint8_t> slot(geo.slot_bytes(), 0);
      std::memcpy(slot.data(), rest.data() + 2, std::min<size_t>(rest.size() - 2, slot.size()));
      Slot(geo, chunk, slot);
      // Resealed: the checksum over the header fields and the payload this chunk should have.
      PutU64(slot.data() + 56, SlotChecksum(slot.data(), Geometry::PayloadBytes(geo.layout, geo.chunk_len(chunk))));
      Slot(geo, chunk, slot);
      break;
    }
  }
  return 0;
}
