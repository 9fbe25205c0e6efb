#include "net/wire.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <openssl/evp.h>
#include <sodium.h>

#include "optim/q8_book.h"
#include "runtime/fmt.h"
#include "runtime/le.h"

namespace strata::net {

static_assert(kQ8Block == static_cast<uint32_t>(q8::kBlock), "wire q8 block must be the codec's block");
static_assert(kSecretKeyBytes == crypto_sign_SECRETKEYBYTES);
static_assert(kKeyBytes == crypto_sign_PUBLICKEYBYTES);
static_assert(kSignatureBytes == crypto_sign_BYTES);

namespace {

// Header byte offsets (docs/formats/wire.md).
enum Off : size_t {
  kOffMagic = 0,
  kOffVersion = 4,
  kOffType = 6,
  kOffRunId = 8,
  kOffPeerKey = 16,
  kOffBaseVersion = 48,
  kOffSequence = 56,
  kOffFragment = 64,
  kOffChunkIndex = 68,
  kOffChunkCount = 72,
  kOffCodec = 76,
  kOffFlags = 77,
  kOffReserved0 = 78,
  kOffTotalElements = 80,
  kOffElementOffset = 88,
  kOffElementCount = 96,
  kOffInnerSteps = 104,
  kOffPayloadBytes = 108,
  kOffTokens = 112,
  kOffContentHash = 120,
};
static_assert(kOffContentHash + 8 == kHeaderBytes);

constexpr size_t kHashBytes = 32;  // SHA-256 of the payload
constexpr size_t kSigningMessageBytes = kHeaderBytes + kHashBytes;


// sodium_init is thread-safe and idempotent; a function-local static runs it once per process.
Status SodiumReady() {
  static const int rc = sodium_init();
  if (rc < 0) return Status::Unavailable("wire: libsodium failed to initialize (sodium_init returned -1)");
  return Status::Ok();
}

bool KnownType(uint16_t t) { return t >= 1 && t <= 14; }
bool KnownCodec(uint8_t c) { return c <= 3; }

// Which codecs a type may carry.
bool TypeCarries(MsgType t, Codec c) {
  switch (t) {
    case MsgType::kContribChunk:
    case MsgType::kUpdateChunk: return c == Codec::kQ8Signed || c == Codec::kFp32;
    case MsgType::kThetaChunk: return c == Codec::kFp32;
    case MsgType::kHello:
    case MsgType::kWelcome:
    case MsgType::kChunkAck:
    case MsgType::kRefusal:
    case MsgType::kAnnounce:
    case MsgType::kFetchUpdates:
    case MsgType::kFetchTheta:
    case MsgType::kLease:
    case MsgType::kStatusRequest:
    case MsgType::kStatusReply:
    case MsgType::kResult: return c == Codec::kNone || c == Codec::kJson;
  }
  return false;
}

// The rules shared by the encoder and the decoder, over a header whose type and codec are known.
// Returns "" when h with payload_bytes is well formed, else what is wrong (without the "wire: ").
std::string CheckHeader(const FrameHeader& h, uint64_t payload_bytes) {
  if (h.content_hash != 0 && h.type != MsgType::kAnnounce && h.type != MsgType::kUpdateChunk &&
      h.type != MsgType::kThetaChunk) {
    return Fmt("content_hash is 0x%016" PRIx64 " on a %s frame (must be 0)", h.content_hash,
               std::string(MsgTypeName(h.type)).c_str());
  }
  if (h.flags & ~kFlagLastFrame) return Fmt("unknown flag bits 0x%02x", unsigned(h.flags & ~kFlagLastFrame));
  if (h.chunk_count == 0) return "chunk_count 0 (must be >= 1)";
  if (h.chunk_index >= h.chunk_count) {
    return Fmt("chunk_index %" PRIu32 " out of range (chunk_count %" PRIu32 ")", h.chunk_index, h.chunk_count);
  }
  if (payload_bytes > kMaxPayloadBytes) {
    return Fmt("payload_bytes %" PRIu64 " exceeds the limit %" PRIu32, payload_bytes, kMaxPayloadBytes);
  }
  if (!TypeCarries(h.type, h.codec)) {
    return Fmt("codec mismatch: type %s does not carry codec %s", MsgTypeName(h.type).data(),
               CodecName(h.codec).data());
  }
  const uint64_t n = h.element_count;
  switch (h.codec) {
    case Codec::kNone:
      if (payload_bytes != 0 || n != 0) {
        return Fmt("codec None needs payload_bytes 0 and element_count 0 (got %" PRIu64 " and %" PRIu64 ")",
                   payload_bytes, n);
      }
      break;
    case Codec::kJson:
      if (n != 0) return Fmt("codec Json needs element_count 0 (got %" PRIu64 ")", n);
      break;
    case Codec::kFp32: {
      uint64_t need = 0;
      if (__builtin_mul_overflow(n, uint64_t{4}, &need)) {
        return Fmt("element_count %" PRIu64 " * 4 bytes overflows", n);
      }
      if (payload_bytes != need) {
        return Fmt("payload_bytes %" PRIu64 " does not match codec Fp32 with element_count %" PRIu64
                   " (needs %" PRIu64 ")",
                   payload_bytes, n, need);
      }
      break;
    }
    case Codec::kQ8Signed: {
      const uint64_t need = Q8PayloadBytes(n);
      if (need == UINT64_MAX) return Fmt("element_count %" PRIu64 " q8 payload size overflows", n);
      if (payload_bytes != need) {
        return Fmt("payload_bytes %" PRIu64 " does not match codec Q8Signed with element_count %" PRIu64
                   " (needs %" PRIu64 ")",
                   payload_bytes, n, need);
      }
      if (h.element_offset % kQ8Block != 0) {
        return Fmt("element_offset %" PRIu64 " of a Q8Signed chunk is not a multiple of %" PRIu32, h.element_offset,
                   kQ8Block);
      }
      break;
    }
  }
  uint64_t end = 0;
  if (__builtin_add_overflow(h.element_offset, n, &end)) {
    return Fmt("element_offset + element_count overflows (%" PRIu64 " + %" PRIu64 ")", h.element_offset, n);
  }
  if (end > h.total_elements) {
    return Fmt("elements [%" PRIu64 ", %" PRIu64 ") exceed total_elements %" PRIu64, h.element_offset, end,
               h.total_elements);
  }
  return {};
}

// SHA-256 through OpenSSL, which uses the CPU's SHA instructions (SHA-NI on x86, the SHA2
// extension on Arm): 1.37 GB/s per core here against 0.81 for libsodium's BLAKE2b and 0.25 for
// its SHA-256. Every payload byte is hashed twice per exchange (signing and verifying), so this is
// most of what strata adds to CURVE's cost (bench/swarm_bench.cc).
const EVP_MD* Sha256() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);  // fetched once, kept
  STRATA_CHECK(md != nullptr);
  return md;
}

// header (128) || SHA-256(payload)
std::array<uint8_t, kSigningMessageBytes> SigningMessage(std::span<const uint8_t> header,
                                                         std::span<const uint8_t> payload) {
  std::array<uint8_t, kSigningMessageBytes> m;
  std::memcpy(m.data(), header.data(), kHeaderBytes);
  unsigned int len = 0;
  // EVP_Digest fails only when OpenSSL cannot allocate its context: a broken process.
  const int ok = EVP_Digest(payload.data(), payload.size(), m.data() + kHeaderBytes, &len, Sha256(), nullptr);
  STRATA_CHECK(ok == 1 && len == kHashBytes);
  return m;
}

std::string KeyPrefix(std::span<const uint8_t> key) {
  std::string s;
  for (size_t i = 0; i < 8 && i < key.size(); ++i) s += Fmt("%02x", unsigned(key[i]));
  return s;
}

}  // namespace

std::string_view MsgTypeName(MsgType t) {
  switch (t) {
    case MsgType::kHello: return "Hello";
    case MsgType::kWelcome: return "Welcome";
    case MsgType::kContribChunk: return "ContribChunk";
    case MsgType::kChunkAck: return "ChunkAck";
    case MsgType::kRefusal: return "Refusal";
    case MsgType::kAnnounce: return "Announce";
    case MsgType::kFetchUpdates: return "FetchUpdates";
    case MsgType::kUpdateChunk: return "UpdateChunk";
    case MsgType::kFetchTheta: return "FetchTheta";
    case MsgType::kThetaChunk: return "ThetaChunk";
    case MsgType::kLease: return "Lease";
    case MsgType::kStatusRequest: return "StatusRequest";
    case MsgType::kStatusReply: return "StatusReply";
    case MsgType::kResult: return "Result";
  }
  return "Unknown";
}

std::string_view CodecName(Codec c) {
  switch (c) {
    case Codec::kNone: return "None";
    case Codec::kFp32: return "Fp32";
    case Codec::kQ8Signed: return "Q8Signed";
    case Codec::kJson: return "Json";
  }
  return "Unknown";
}

uint64_t Q8PayloadBytes(uint64_t element_count) {
  const uint64_t blocks = element_count / kQ8Block + (element_count % kQ8Block != 0);  // no overflow
  uint64_t total = 0;
  if (__builtin_add_overflow(element_count, blocks * 4, &total)) return UINT64_MAX;  // blocks*4 < 2^59
  return total;
}

void PackQ8(std::span<const uint8_t> codes, std::span<const float> absmax, std::vector<uint8_t>& out) {
  STRATA_CHECK(absmax.size() == static_cast<size_t>(q8::NumBlocks(static_cast<int64_t>(codes.size()))));
  const size_t at = out.size();
  out.resize(at + codes.size() + 4 * absmax.size());
  if (!codes.empty()) std::memcpy(out.data() + at, codes.data(), codes.size());
  uint8_t* p = out.data() + at + codes.size();
  for (size_t b = 0; b < absmax.size(); ++b) PutF32(p + 4 * b, absmax[b]);
}

Status UnpackQ8(std::span<const uint8_t> payload, uint64_t element_count, std::span<uint8_t> codes,
                std::span<float> absmax) {
  const uint64_t need = Q8PayloadBytes(element_count);
  if (need == UINT64_MAX || payload.size() != need) {
    return Status::Corruption(Fmt("wire: q8 payload is %zu bytes, element_count %" PRIu64 " needs %" PRIu64,
                                  payload.size(), element_count, need));
  }
  const uint64_t blocks = (need - element_count) / 4;
  if (codes.size() != element_count || absmax.size() != blocks) {
    return Status::InvalidArgument(Fmt("wire: UnpackQ8 into %zu codes and %zu absmax, element_count %" PRIu64
                                       " needs %" PRIu64 " and %" PRIu64,
                                       codes.size(), absmax.size(), element_count, element_count, blocks));
  }
  if (element_count != 0) std::memcpy(codes.data(), payload.data(), element_count);
  const uint8_t* p = payload.data() + element_count;
  for (uint64_t b = 0; b < blocks; ++b) {
    const float a = GetF32(p + 4 * b);
    // absmax is max |x| of the block: a NaN, infinite or negative one decodes to garbage.
    if (!(a >= 0.0f) || std::isinf(a)) {
      return Status::Corruption(Fmt("wire: q8 absmax of block %" PRIu64 " is %g (must be finite and >= 0)", b,
                                    static_cast<double>(a)));
    }
    absmax[b] = a;
  }
  return Status::Ok();
}

void EncodeHeader(const FrameHeader& h, uint32_t payload_bytes, std::span<uint8_t, kHeaderBytes> out) {
  uint8_t* p = out.data();
  std::memset(p, 0, kHeaderBytes);  // reserved fields
  PutU32(p + kOffMagic, kWireMagic);
  PutU16(p + kOffVersion, kWireVersion);
  PutU16(p + kOffType, static_cast<uint16_t>(h.type));
  PutU64(p + kOffRunId, h.run_id);
  std::memcpy(p + kOffPeerKey, h.peer_key.data(), kKeyBytes);
  PutU64(p + kOffBaseVersion, h.base_version);
  PutU64(p + kOffSequence, h.sequence);
  PutU32(p + kOffFragment, h.fragment);
  PutU32(p + kOffChunkIndex, h.chunk_index);
  PutU32(p + kOffChunkCount, h.chunk_count);
  p[kOffCodec] = static_cast<uint8_t>(h.codec);
  p[kOffFlags] = h.flags;
  PutU64(p + kOffTotalElements, h.total_elements);
  PutU64(p + kOffElementOffset, h.element_offset);
  PutU64(p + kOffElementCount, h.element_count);
  PutU32(p + kOffInnerSteps, h.inner_steps);
  PutU32(p + kOffPayloadBytes, payload_bytes);
  PutU64(p + kOffTokens, h.tokens);
  PutU64(p + kOffContentHash, h.content_hash);
}

Result<std::vector<uint8_t>> EncodeFrame(const FrameHeader& h, std::span<const uint8_t> payload,
                                         std::span<const uint8_t> secret_key) {
  STRATA_RETURN_IF_ERROR(SodiumReady());
  if (secret_key.size() != kSecretKeyBytes) {
    return Status::InvalidArgument(
        Fmt("wire: encode: secret key is %zu bytes, Ed25519 needs %zu", secret_key.size(), kSecretKeyBytes));
  }
  std::array<uint8_t, kKeyBytes> pk;
  if (crypto_sign_ed25519_sk_to_pk(pk.data(), secret_key.data()) != 0 || pk != h.peer_key) {
    return Status::InvalidArgument("wire: encode: peer_key " + KeyPrefix(h.peer_key) +
                                   "... is not the public half of the secret key (" + KeyPrefix(pk) + "...)");
  }
  if (!KnownType(static_cast<uint16_t>(h.type))) {
    return Status::InvalidArgument(Fmt("wire: encode: unknown type %u", unsigned(h.type)));
  }
  if (!KnownCodec(static_cast<uint8_t>(h.codec))) {
    return Status::InvalidArgument(Fmt("wire: encode: unknown codec %u", unsigned(h.codec)));
  }
  if (std::string why = CheckHeader(h, payload.size()); !why.empty()) {
    return Status::InvalidArgument("wire: encode: " + why);
  }
  std::vector<uint8_t> out(kHeaderBytes + payload.size() + kSignatureBytes);
  EncodeHeader(h, static_cast<uint32_t>(payload.size()), std::span<uint8_t, kHeaderBytes>(out.data(), kHeaderBytes));
  if (!payload.empty()) std::memcpy(out.data() + kHeaderBytes, payload.data(), payload.size());
  const auto msg = SigningMessage(std::span(out).first(kHeaderBytes), payload);
  // crypto_sign_detached cannot fail for a well-sized key; a failure would be a libsodium bug.
  const int rc = crypto_sign_detached(out.data() + kHeaderBytes + payload.size(), nullptr, msg.data(), msg.size(),
                                      secret_key.data());
  STRATA_CHECK(rc == 0);
  return out;
}

Result<FrameView> DecodeFrame(std::span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderBytes) {
    return Status::Corruption(Fmt("wire: truncated frame: %zu bytes, header needs %zu", bytes.size(), kHeaderBytes));
  }
  const uint8_t* p = bytes.data();
  const uint32_t magic = GetU32(p + kOffMagic);
  if (magic != kWireMagic) {
    return Status::Corruption(Fmt("wire: bad magic 0x%08" PRIx32 " (want 0x%08" PRIx32 ", \"STW1\")", magic, kWireMagic));
  }
  const uint16_t version = GetU16(p + kOffVersion);
  if (version != kWireVersion) {
    return Status::Corruption(Fmt("wire: unknown version %u (this build reads %u)", unsigned(version),
                                  unsigned(kWireVersion)));
  }
  const uint16_t type = GetU16(p + kOffType);
  if (!KnownType(type)) return Status::Corruption(Fmt("wire: unknown type %u", unsigned(type)));
  const uint8_t codec = p[kOffCodec];
  if (!KnownCodec(codec)) return Status::Corruption(Fmt("wire: unknown codec %u", unsigned(codec)));
  const uint16_t reserved0 = GetU16(p + kOffReserved0);
  if (reserved0 != 0) return Status::Corruption(Fmt("wire: reserved0 is 0x%04x (must be 0)", unsigned(reserved0)));

  FrameView f;
  FrameHeader& h = f.h;
  h.type = static_cast<MsgType>(type);
  h.run_id = GetU64(p + kOffRunId);
  std::memcpy(h.peer_key.data(), p + kOffPeerKey, kKeyBytes);
  h.base_version = GetU64(p + kOffBaseVersion);
  h.sequence = GetU64(p + kOffSequence);
  h.fragment = GetU32(p + kOffFragment);
  h.chunk_index = GetU32(p + kOffChunkIndex);
  h.chunk_count = GetU32(p + kOffChunkCount);
  h.codec = static_cast<Codec>(codec);
  h.flags = p[kOffFlags];
  h.total_elements = GetU64(p + kOffTotalElements);
  h.element_offset = GetU64(p + kOffElementOffset);
  h.element_count = GetU64(p + kOffElementCount);
  h.inner_steps = GetU32(p + kOffInnerSteps);
  h.tokens = GetU64(p + kOffTokens);
  h.content_hash = GetU64(p + kOffContentHash);
  const uint32_t payload_bytes = GetU32(p + kOffPayloadBytes);

  // The limit first, so the length check below never meets an absurd size.
  if (payload_bytes > kMaxPayloadBytes) {
    return Status::Corruption(Fmt("wire: payload_bytes %" PRIu32 " exceeds the limit %" PRIu32, payload_bytes,
                                  kMaxPayloadBytes));
  }
  const size_t want = kHeaderBytes + size_t{payload_bytes} + kSignatureBytes;
  if (bytes.size() < want) {
    return Status::Corruption(Fmt("wire: truncated frame: %zu bytes, header says %zu (128 header + %" PRIu32
                                  " payload + 64 signature)",
                                  bytes.size(), want, payload_bytes));
  }
  if (bytes.size() > want) {
    return Status::Corruption(Fmt("wire: frame is %zu bytes, header says %zu: %zu trailing bytes", bytes.size(),
                                  want, bytes.size() - want));
  }
  if (std::string why = CheckHeader(h, payload_bytes); !why.empty()) return Status::Corruption("wire: " + why);

  f.payload = bytes.subspan(kHeaderBytes, payload_bytes);
  f.signature = bytes.subspan(kHeaderBytes + payload_bytes, kSignatureBytes);
  f.signed_region = bytes.first(kHeaderBytes + payload_bytes);
  return f;
}

Status VerifyFrame(const FrameView& f) {
  STRATA_RETURN_IF_ERROR(SodiumReady());
  // A view from DecodeFrame always has these sizes; anything else was assembled by hand (a bug).
  STRATA_CHECK(f.signature.size() == kSignatureBytes);
  STRATA_CHECK(f.signed_region.size() == kHeaderBytes + f.payload.size());
  // The key must be the one inside the signed header: otherwise a view whose peer_key was edited
  // would accept a signature by that key over a header naming someone else.
  const uint8_t* signed_key = f.signed_region.data() + kOffPeerKey;
  if (std::memcmp(signed_key, f.h.peer_key.data(), kKeyBytes) != 0) {
    return Status::InvalidArgument("wire: VerifyFrame: view's peer_key " + KeyPrefix(f.h.peer_key) +
                                   "... differs from the signed header's " +
                                   KeyPrefix(f.signed_region.subspan(kOffPeerKey, kKeyBytes)) + "...");
  }
  const auto msg = SigningMessage(f.signed_region.first(kHeaderBytes), f.payload);
  if (crypto_sign_verify_detached(f.signature.data(), msg.data(), msg.size(), signed_key) != 0) {
    return Status::Corruption(Fmt("wire: bad signature on %s sequence %" PRIu64 " chunk %" PRIu32 "/%" PRIu32
                                  " from peer ",
                                  MsgTypeName(f.h.type).data(), f.h.sequence, f.h.chunk_index, f.h.chunk_count) +
                              KeyPrefix(f.h.peer_key) + "...");
  }
  return Status::Ok();
}

}  // namespace strata::net
