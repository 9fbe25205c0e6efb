// The swarm wire format (docs/formats/wire.md): one frame = a fixed 128-byte little-endian header |
// payload | 64-byte Ed25519 signature. Pure functions over bytes, so the decoder can be fuzzed
// (tests/fuzz/wire_fuzz.cc). The decoder checks structure only; VerifyFrame checks the signature,
// and what a message means (membership, staleness, finiteness) is the receiver's business.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/status.h"

namespace strata::net {

inline constexpr uint32_t kWireMagic = 0x31575453;  // bytes 'S','T','W','1'
inline constexpr uint16_t kWireVersion = 1;
inline constexpr size_t kHeaderBytes = 128, kSignatureBytes = 64, kKeyBytes = 32;
inline constexpr size_t kSecretKeyBytes = 64;  // libsodium's Ed25519 secret key: seed | public key
inline constexpr uint32_t kMaxPayloadBytes = 64u << 20;  // decoder refuses larger
// The largest frame: what ZMQ_MAXMSGSIZE should be set to on sockets that carry frames.
inline constexpr size_t kMaxFrameBytes = kHeaderBytes + kMaxPayloadBytes + kSignatureBytes;
inline constexpr uint8_t kFlagLastFrame = 1;  // flags bit 0: last frame of a reply stream
inline constexpr uint32_t kQ8Block = 256;     // q8::kBlock: elements per absmax

enum class MsgType : uint16_t {
  kHello = 1,
  kWelcome = 2,
  kContribChunk = 3,
  kChunkAck = 4,
  kRefusal = 5,
  kAnnounce = 6,
  kFetchUpdates = 7,
  kUpdateChunk = 8,
  kFetchTheta = 9,
  kThetaChunk = 10,
  kLease = 11,
  kStatusRequest = 12,
  kStatusReply = 13,
  kResult = 14,
};

enum class Codec : uint8_t {
  kNone = 0,      // no payload
  kFp32 = 1,      // element_count little-endian IEEE binary32
  kQ8Signed = 2,  // element_count codes (signed book) | NumBlocks(element_count) f32 absmax
  kJson = 3,      // UTF-8 JSON text (not parsed here)
};

// The header's fields less the derived ones (magic, version, payload_bytes, reserved).
struct FrameHeader {
  MsgType type{};                        // 0 is no type: EncodeFrame refuses it until set
  uint64_t run_id = 0;                   // the run's id; receivers check it
  std::array<uint8_t, kKeyBytes> peer_key{};  // Ed25519 public key of the signer
  uint64_t base_version = 0;   // contribution: global version started from; update: applies v -> v+1
                               // with base_version = v; theta chunk: its version
  uint64_t sequence = 0;       // per-sender monotonic message / contribution sequence
  uint32_t fragment = 0;       // model fragment id; 0 = whole model
  uint32_t chunk_index = 0;    // this chunk, < chunk_count
  uint32_t chunk_count = 1;    // chunks of the tensor (or reply stream), >= 1
  Codec codec = Codec::kNone;  // payload encoding
  uint8_t flags = 0;           // kFlagLastFrame or 0
  uint64_t total_elements = 0;  // elements of the whole tensor this chunk belongs to
  uint64_t element_offset = 0;  // first element of this chunk (q8: a multiple of 256)
  uint64_t element_count = 0;   // elements in this chunk's payload
  uint32_t inner_steps = 0;     // local optimizer steps behind a contribution
  uint64_t tokens = 0;          // tokens processed behind a contribution
  uint64_t content_hash = 0;    // XXH3-64 of theta's bytes: Announce and ThetaChunk: at base_version;
                                // UpdateChunk: after the update (base_version + 1); 0 on other types

  bool operator==(const FrameHeader&) const = default;
};

// A decoded frame. The spans point into the bytes given to DecodeFrame: they live as long as those.
struct FrameView {
  FrameHeader h;
  std::span<const uint8_t> payload;        // payload_bytes bytes
  std::span<const uint8_t> signature;      // kSignatureBytes bytes
  std::span<const uint8_t> signed_region;  // header + payload
};

// Encodes and signs with the 64-byte libsodium Ed25519 secret key (crypto_sign_SECRETKEYBYTES).
// InvalidArgument if h.peer_key is not the key's public half, if the key has the wrong size, or if
// h and the payload break a rule the decoder enforces (the message names it).
[[nodiscard]] Result<std::vector<uint8_t>> EncodeFrame(const FrameHeader& h, std::span<const uint8_t> payload,
                                                       std::span<const uint8_t> secret_key);

// Writes the 128 header bytes for h and payload_bytes (no checks: EncodeFrame validates). Any header
// that DecodeFrame accepts re-encodes to the same bytes (the fuzz target checks this).
void EncodeHeader(const FrameHeader& h, uint32_t payload_bytes, std::span<uint8_t, kHeaderBytes> out);

// Structural decode (no signature check). Errors are kCorruption with a message naming the field,
// e.g. "wire: bad magic 0x...", "wire: truncated frame: 57 bytes, header needs 128".
[[nodiscard]] Result<FrameView> DecodeFrame(std::span<const uint8_t> bytes);

// Ed25519 over the signing message = header bytes (128) || SHA-256(payload) (OpenSSL's EVP,
// 32 bytes), checked against h.peer_key, which must equal the key inside the signed header bytes
// (always so for a view from DecodeFrame; kInvalidArgument for an edited view). kCorruption when the
// signature does not verify.
[[nodiscard]] Status VerifyFrame(const FrameView& f);

std::string_view MsgTypeName(MsgType t);  // "ContribChunk"; "Unknown" for a value outside the enum
std::string_view CodecName(Codec c);      // "Q8Signed"; "Unknown" likewise

// ---- q8 payload: element_count code bytes | ceil(element_count / 256) little-endian f32 absmax ----

// Payload bytes of n q8 elements; UINT64_MAX when that does not fit in 64 bits.
uint64_t Q8PayloadBytes(uint64_t element_count);
// Appends codes then absmax (little-endian). absmax.size() must be ceil(codes.size() / 256) (a bug
// otherwise: aborts).
void PackQ8(std::span<const uint8_t> codes, std::span<const float> absmax, std::vector<uint8_t>& out);
// Splits a q8 payload. kInvalidArgument if codes/absmax do not have element_count / ceil(n/256)
// entries; kCorruption if the payload size is wrong or an absmax is not finite and >= 0 (names the block).
[[nodiscard]] Status UnpackQ8(std::span<const uint8_t> payload, uint64_t element_count, std::span<uint8_t> codes,
                              std::span<float> absmax);

// ---- Chunks: how a tensor of n elements travels as frames of `chunk` elements ----
struct ChunkPlan {
  uint64_t n = 0;      // elements of the tensor
  uint64_t chunk = 0;  // elements per frame (the last one may be shorter); q8: a multiple of 256
  uint32_t count = 0;  // frames
  static ChunkPlan Of(uint64_t n, uint64_t chunk) {
    return {n, chunk, static_cast<uint32_t>(n == 0 ? 1 : (n + chunk - 1) / chunk)};
  }
  uint64_t Offset(uint32_t i) const { return uint64_t{i} * chunk; }
  uint64_t Elements(uint32_t i) const { return n > Offset(i) ? std::min(chunk, n - Offset(i)) : 0; }
  // Sets h's chunk fields (index, count, total, offset, element count) for chunk i.
  void Describe(uint32_t i, FrameHeader& h) const {
    h.chunk_index = i;
    h.chunk_count = count;
    h.total_elements = n;
    h.element_offset = Offset(i);
    h.element_count = Elements(i);
  }
  // Whether h's chunk fields are exactly those of its chunk_index in this plan.
  bool Matches(const FrameHeader& h) const {
    return h.chunk_count == count && h.chunk_index < count && h.total_elements == n &&
           h.element_offset == Offset(h.chunk_index) && h.element_count == Elements(h.chunk_index);
  }
};

// ---- JSON payload convenience ----
inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsText(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace strata::net
