// libFuzzer target for the wire decoder (docs/formats/wire.md). Any input must be refused or
// accepted without crashing or reading out of bounds; an accepted frame is also signature-checked,
// its q8 payload unpacked, and its header re-encoded, which must reproduce the input's header bytes
// (the format has one encoding per header). Build and run: tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "net/wire.h"

namespace {

void Trap() { __builtin_trap(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace strata::net;
  auto f = DecodeFrame(std::span<const uint8_t>(data, size));
  if (!f.ok()) {
    if (!f.status().IsCorruption()) Trap();  // the decoder only ever says "corrupt"
    return 0;
  }
  const FrameView& v = *f;
  if (v.signed_region.data() != data || v.payload.data() != data + kHeaderBytes ||
      v.signature.data() + kSignatureBytes != data + size) {
    Trap();
  }
  std::array<uint8_t, kHeaderBytes> again;
  EncodeHeader(v.h, static_cast<uint32_t>(v.payload.size()), again);
  if (std::memcmp(again.data(), data, kHeaderBytes) != 0) Trap();

  // Fuzzed inputs almost never carry a valid signature; what matters is that checking is safe.
  VerifyFrame(v).IgnoreError();  // the outcome is irrelevant here, only its memory safety
  if (v.h.codec == Codec::kQ8Signed) {
    // DecodeFrame bounded element_count by payload_bytes <= 64 MiB, so these allocations are small.
    std::vector<uint8_t> codes(v.h.element_count);
    std::vector<float> absmax((v.h.element_count + kQ8Block - 1) / kQ8Block);
    const strata::Status s = UnpackQ8(v.payload, v.h.element_count, codes, absmax);
    if (!s.ok() && !s.IsCorruption()) Trap();  // sizes came from the decoder: only bad absmax may fail
  }
  return 0;
}

#ifdef STRATA_FUZZ_STANDALONE
// Without libFuzzer (e.g. g++ in CI): run every file named on the command line through the target once.
#include <cstdio>
#include <fstream>
#include <iterator>

int main(int argc, char** argv) {
  int n = 0;
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "wire_fuzz: cannot read %s\n", argv[i]);
      return 1;
    }
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    ++n;
  }
  std::printf("wire_fuzz: %d inputs ran\n", n);
  return 0;
}
#endif
