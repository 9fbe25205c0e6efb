// The state file format (docs/formats/state-file.md): geometry, encodings, and named corruption
// cases for the header, the slots and the manifest: bad magic, unknown version, truncation at
// every length, every flipped byte, overflowing sizes, checksum mismatch.
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include <xxhash.h>

#include "offload/state_file.h"
#include "runtime/thread_pool.h"
#include "optim/q8_codec.h"
#include "tests/offload/temp_dir.h"

namespace strata::offload {
namespace {

FileHeader SampleHeader() {
  FileHeader h;
  h.geo = {Layout::kQ8MasterMV, 1000003, 4096};
  h.run_id = 0x0123456789abcdefull;
  h.hyper = {0.9, 0.95, 1e-6, 0.1};
  return h;
}

TEST(StateFile, GeometryOfEveryLayout) {
  for (Layout l : {Layout::kQ8MV, Layout::kQ8MasterMV, Layout::kFp32MV, Layout::kFp32MasterMV}) {
    Geometry g{l, 10 * 1280 + 7, 1280};  // chunks of 5 blocks; the payload is no multiple of 4 KiB
    ASSERT_TRUE(g.Validate().ok());
    EXPECT_EQ(g.n_chunks(), 11u);
    EXPECT_EQ(g.chunk_len(0), 1280u);
    EXPECT_EQ(g.chunk_len(10), 7u);
    EXPECT_EQ(g.slot_bytes() % kAlign, 0u);
    EXPECT_GE(g.slot_bytes(), kSlotHeaderBytes + Geometry::PayloadBytes(l, 1280));
    EXPECT_LT(g.slot_bytes(), kSlotHeaderBytes + Geometry::PayloadBytes(l, 1280) + kAlign);
    // All A slots, then all B slots, each region last chunk first.
    EXPECT_EQ(g.slot_offset(10, 0), kFileHeaderBytes);
    EXPECT_EQ(g.slot_offset(0, 0), kFileHeaderBytes + 10 * g.slot_bytes());
    EXPECT_EQ(g.slot_offset(10, 1), kFileHeaderBytes + 11 * g.slot_bytes());
    EXPECT_EQ(g.slot_offset(3, 1), kFileHeaderBytes + (11 + 7) * g.slot_bytes());
    EXPECT_EQ(g.file_bytes(), kFileHeaderBytes + 22 * g.slot_bytes());
  }
  EXPECT_EQ(Geometry::PayloadBytes(Layout::kQ8MV, 257), 2 * 257 + 8 * 2u);
  EXPECT_EQ(Geometry::PayloadBytes(Layout::kQ8MasterMV, 257), 6 * 257 + 8 * 2u);
  EXPECT_EQ(Geometry::PayloadBytes(Layout::kFp32MV, 257), 8 * 257u);
  EXPECT_EQ(Geometry::PayloadBytes(Layout::kFp32MasterMV, 257), 12 * 257u);
}

// The byte target: 8-bit {m, v} moves at most 0.27x the bytes of fp32 {m, v} per step.
TEST(StateFile, EightBitStateMovesAQuarterOfTheBytes) {
  for (uint32_t chunk : {1u << 16, 1u << 20}) {
    Geometry q8{Layout::kQ8MV, 1000000000, chunk}, f32{Layout::kFp32MV, 1000000000, chunk};
    const double ratio = double(q8.step_io_bytes()) / double(f32.step_io_bytes());
    EXPECT_LE(ratio, 0.27) << "chunk " << chunk;
    EXPECT_GT(ratio, 0.25);
  }
}

TEST(StateFile, GeometryRejectsBadSizes) {
  EXPECT_FALSE((Geometry{Layout::kQ8MV, 0, 256}).Validate().ok());
  EXPECT_FALSE((Geometry{Layout::kQ8MV, 100, 100}).Validate().ok());  // not a whole quant block
  EXPECT_FALSE((Geometry{Layout::kQ8MV, 100, 0}).Validate().ok());
  EXPECT_FALSE((Geometry{Layout::kQ8MV, uint64_t{1} << 60, 256}).Validate().ok());
  EXPECT_FALSE((Geometry{static_cast<Layout>(9), 100, 256}).Validate().ok());
  EXPECT_TRUE(ParseLayout("q8_master_mv").ok());
  EXPECT_EQ(ParseLayout("q4").status().code(), StatusCode::kInvalidArgument);
}

TEST(StateFile, HeaderRoundTrip) {
  std::vector<uint8_t> b(kFileHeaderBytes);
  EncodeFileHeader(SampleHeader(), b);
  for (size_t i = kFileHeaderFields; i < b.size(); ++i) ASSERT_EQ(b[i], 0);
  auto h = DecodeFileHeader(b, "f");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->geo.n_params, 1000003u);
  EXPECT_EQ(h->geo.chunk_params, 4096u);
  EXPECT_EQ(h->geo.layout, Layout::kQ8MasterMV);
  EXPECT_EQ(h->run_id, 0x0123456789abcdefull);
  EXPECT_EQ(h->hyper.beta2, 0.95);
  EXPECT_EQ(h->hyper.eps, 1e-6);
  // Little-endian on disk, whatever the host: n_params at offset 16.
  EXPECT_EQ(b[16], 1000003 & 0xff);
  EXPECT_EQ(b[17], (1000003 >> 8) & 0xff);
}

TEST(StateFile, HeaderBadMagic) {
  std::vector<uint8_t> b(kFileHeaderBytes);
  EncodeFileHeader(SampleHeader(), b);
  b[0] = 'X';
  auto h = DecodeFileHeader(b, "dir/state.strata");
  ASSERT_EQ(h.status().code(), StatusCode::kCorruption);
  EXPECT_NE(h.status().message().find("dir/state.strata"), std::string::npos);
  EXPECT_NE(h.status().message().find("magic"), std::string::npos);
}

TEST(StateFile, HeaderTruncatedAtEveryLength) {
  std::vector<uint8_t> b(kFileHeaderBytes);
  EncodeFileHeader(SampleHeader(), b);
  for (size_t n = 0; n < kFileHeaderFields; ++n) {
    auto h = DecodeFileHeader(std::span<const uint8_t>(b.data(), n), "f");
    ASSERT_EQ(h.status().code(), StatusCode::kCorruption) << n;
  }
}

// HEADER_PADDING_NOT_ZERO: the checksum covers bytes 0..120 only; the spec makes the padding
// (128..4096) zero, so each of its bytes is checked on its own, and the error names the byte.
TEST(StateFile, HeaderNonZeroPaddingIsCorruption) {
  std::vector<uint8_t> b(kFileHeaderBytes);
  EncodeFileHeader(SampleHeader(), b);
  for (size_t i = kFileHeaderFields; i < kFileHeaderBytes; ++i) {
    std::vector<uint8_t> c = b;
    c[i] = 0x5a;
    auto h = DecodeFileHeader(c, "dir/state.strata");
    ASSERT_EQ(h.status().code(), StatusCode::kCorruption) << "byte " << i;
    const std::string& m = h.status().message();
    ASSERT_NE(m.find("dir/state.strata: header: padding (offsets 128..4096) is not zero: byte " + std::to_string(i) +
                     " is 0x5a"),
              std::string::npos)
        << m;
  }
}

// HEADER_RESERVED_NOT_ZERO: bytes 104..120 are covered by the checksum, so non-zero bytes there
// with a valid checksum were written by something that is not this version of strata.
TEST(StateFile, HeaderNonZeroReservedIsCorruption) {
  std::vector<uint8_t> b(kFileHeaderBytes);
  EncodeFileHeader(SampleHeader(), b);
  for (size_t i = 104; i < 120; ++i) {
    std::vector<uint8_t> c = b;
    c[i] = 1;
    PutU64(c.data() + 120, Checksum(c.data(), 120));
    auto h = DecodeFileHeader(c, "f");
    ASSERT_EQ(h.status().code(), StatusCode::kCorruption) << "byte " << i;
    EXPECT_NE(h.status().message().find("reserved field (offsets 104..120) is not zero: byte " + std::to_string(i)),
              std::string::npos)
        << h.status();
  }
}

TEST(StateFile, HeaderEveryFlippedByteIsCaught) {
  std::vector<uint8_t> b(kFileHeaderBytes);
  EncodeFileHeader(SampleHeader(), b);
  for (size_t i = 0; i < kFileHeaderFields; ++i) {
    for (uint8_t bit : {1, 0x80}) {
      std::vector<uint8_t> c = b;
      c[i] ^= bit;
      ASSERT_EQ(DecodeFileHeader(c, "f").status().code(), StatusCode::kCorruption) << "byte " << i;
    }
  }
}

// A header whose checksum is right but whose fields are not: a newer version, an unknown
// layout, sizes that overflow or disagree.
TEST(StateFile, HeaderWithValidChecksumButBadFields) {
  auto reseal = [](std::vector<uint8_t>& b) { PutU64(b.data() + 120, Checksum(b.data(), 120)); };
  std::vector<uint8_t> b(kFileHeaderBytes);
  EncodeFileHeader(SampleHeader(), b);
  struct Case {
    const char* name;
    size_t off;
    uint64_t value;
    bool u64;
    const char* expect;
  } cases[] = {
      {"version", 8, 2, false, "version 2"},
      {"layout", 12, 77, false, "unknown layout"},
      {"params overflow", 16, ~uint64_t{0}, true, "2^48"},
      {"chunk not a block multiple", 24, 1000, false, "multiple of 256"},
      {"chunk count", 32, 5, true, "chunk count"},
      {"slot size", 40, 4096, true, "slot size"},
      {"file size", 48, 1, true, "file size"},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> x = b;
    if (c.u64) PutU64(x.data() + c.off, c.value); else PutU32(x.data() + c.off, static_cast<uint32_t>(c.value));
    reseal(x);
    auto h = DecodeFileHeader(x, "f");
    ASSERT_EQ(h.status().code(), StatusCode::kCorruption) << c.name;
    EXPECT_NE(h.status().message().find(c.expect), std::string::npos) << c.name << ": " << h.status();
  }
}

struct SlotFixture {
  Geometry geo{Layout::kQ8MasterMV, 3000, 1280};
  uint64_t chunk = 2;  // the partial last chunk: 440 values
  std::vector<uint8_t> slot = std::vector<uint8_t>(geo.slot_bytes());
  SlotFixture() {
    const uint32_t n = geo.chunk_len(chunk);
    SlotView v = ViewSlot(geo.layout, slot.data(), n);
    InitSlotPayload(geo.layout, v);
    for (uint32_t i = 0; i < n; ++i) v.master[i] = 0.5f * i;
    SlotHeader h;
    h.chunk_len = n;
    h.chunk = chunk;
    h.step = 4;
    h.payload_bytes = Geometry::PayloadBytes(geo.layout, n);
    h.run_id = 42;
    SealSlot(slot.data(), h);
  }
  Status Verify(uint64_t step = 4) { return VerifySlot(slot.data(), geo, 42, chunk, 0, step, "d/state.strata"); }
};

TEST(StateFile, SlotSealAndVerify) {
  SlotFixture f;
  EXPECT_TRUE(f.Verify().ok());
  SlotView v = ViewSlot(f.geo.layout, f.slot.data(), 440);
  EXPECT_EQ(v.m_codes[0], q8::kSignedZero);
  EXPECT_EQ(v.master[3], 1.5f);
}

TEST(StateFile, SlotEveryFlippedPayloadByteNamesTheSlot) {
  SlotFixture f;
  const size_t end = kSlotHeaderBytes + Geometry::PayloadBytes(f.geo.layout, 440);
  for (size_t i = 0; i < end; i += (i < 64 ? 1 : 37)) {
    f.slot[i] ^= 0x10;
    Status st = f.Verify();
    f.slot[i] ^= 0x10;
    ASSERT_EQ(st.code(), StatusCode::kCorruption) << "byte " << i;
    EXPECT_NE(st.message().find("chunk 2"), std::string::npos) << st;
    EXPECT_NE(st.message().find("d/state.strata"), std::string::npos) << st;
    EXPECT_NE(st.message().find("bytes " + std::to_string(f.geo.slot_offset(2, 0))), std::string::npos) << st;
  }
  EXPECT_TRUE(f.Verify().ok());
}

TEST(StateFile, SlotOfAnotherStepOrRunOrChunk) {
  SlotFixture f;
  Status st = f.Verify(5);
  ASSERT_EQ(st.code(), StatusCode::kCorruption);
  EXPECT_NE(st.message().find("holds step 4"), std::string::npos) << st;
  st = VerifySlot(f.slot.data(), f.geo, 43, 2, 0, 4, "f");
  EXPECT_NE(st.message().find("another run"), std::string::npos) << st;
  st = VerifySlot(f.slot.data(), f.geo, 42, 1, 0, 4, "f");
  EXPECT_NE(st.message().find("want chunk 1"), std::string::npos) << st;
  std::vector<uint8_t> zero(f.slot.size(), 0);
  st = VerifySlot(zero.data(), f.geo, 42, 2, 0, 4, "f");
  EXPECT_NE(st.message().find("never written"), std::string::npos) << st;
}

// The two-level checksum as the spec writes it, computed here from XXH3 directly, and the same
// value with the segments hashed on a pool, on awkward payload sizes.
TEST(StateFile, SlotChecksumFollowsTheSpecWithAndWithoutAPool) {
  ThreadPool pool(3);
  for (uint64_t payload : {uint64_t{1}, uint64_t{4000}, kChecksumSegment - 1, kChecksumSegment, kChecksumSegment + 1,
                           3 * kChecksumSegment + 12345}) {
    std::vector<uint8_t> slot(kSlotHeaderBytes + payload);
    for (size_t i = 0; i < slot.size(); ++i) slot[i] = static_cast<uint8_t>(i * 131 + (i >> 9));
    const uint64_t seed = XXH3_64bits_withSeed(slot.data(), 56, 0);
    std::vector<uint8_t> level;
    for (uint64_t off = 0; off < payload; off += kChecksumSegment) {
      uint8_t le[8];
      PutU64(le, XXH3_64bits_withSeed(slot.data() + 64 + off, std::min(kChecksumSegment, payload - off), seed));
      level.insert(level.end(), le, le + 8);
    }
    const uint64_t want = XXH3_64bits_withSeed(level.data(), level.size(), seed);
    EXPECT_EQ(SlotChecksum(slot.data(), payload), want) << payload;
    EXPECT_EQ(SlotChecksum(slot.data(), payload, &pool), want) << payload;
  }
}

TEST(StateFile, ManifestRoundTripAndCorruption) {
  Manifest m;
  m.run_id = 9;
  m.committed_step = 123456789012ull;
  m.n_chunks = 77;
  m.file_bytes = 1 << 30;
  auto b = EncodeManifest(m);
  auto d = DecodeManifest(b, "MANIFEST");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->committed_step, 123456789012ull);
  for (size_t n = 0; n < kManifestBytes; ++n)
    ASSERT_EQ(DecodeManifest(std::span<const uint8_t>(b.data(), n), "M").status().code(), StatusCode::kCorruption);
  for (size_t i = 0; i < kManifestBytes; ++i) {
    auto c = b;
    c[i] ^= 4;
    ASSERT_EQ(DecodeManifest(c, "M").status().code(), StatusCode::kCorruption) << i;
  }
  std::vector<uint8_t> longer(b.begin(), b.end());
  longer.push_back(0);
  EXPECT_NE(DecodeManifest(longer, "M").status().message().find("trailing"), std::string::npos);
  auto v = b;
  PutU32(v.data() + 8, 3);
  PutU64(v.data() + 56, Checksum(v.data(), 56));
  EXPECT_NE(DecodeManifest(v, "M").status().message().find("version 3"), std::string::npos);
}

TEST(StateFile, ManifestAtomicReplace) {
  TempDir d;
  EXPECT_EQ(ReadManifest(d.path()).status().code(), StatusCode::kNotFound);
  Manifest m;
  m.committed_step = 1;
  ASSERT_TRUE(WriteManifestAtomic(d.path(), m).ok());
  m.committed_step = 2;
  ASSERT_TRUE(WriteManifestAtomic(d.path(), m).ok());
  auto r = ReadManifest(d.path());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->committed_step, 2u);
  EXPECT_FALSE(std::filesystem::exists(d / "MANIFEST.tmp"));
  // A directory that cannot be written keeps the old manifest.
  Status st = WriteManifestAtomic(d.path() + "/missing-subdir", m);
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find("missing-subdir"), std::string::npos);
}

}  // namespace
}  // namespace strata::offload
