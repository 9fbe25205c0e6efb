// Writes the seed corpus of tests/fuzz/wire_fuzz.cc: one valid frame of every message type, tensor
// chunks at awkward sizes, and one frame whose q8 absmax is NaN (structurally valid, refused by
// UnpackQ8). Deterministic (fixed key; Ed25519 signatures are deterministic), so regenerating gives
// the same bytes. Usage: make_wire_corpus OUT_DIR   (see tests/fuzz/README.md)
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <sodium.h>

#include "net/wire.h"
#include "runtime/le.h"

namespace {

using namespace strata::net;

struct Seed {
  std::string name;
  FrameHeader h;
  std::vector<uint8_t> payload;
};

std::vector<uint8_t> Q8(uint64_t n, float first_absmax = 0.5f) {
  std::vector<uint8_t> codes(n);
  for (uint64_t i = 0; i < n; ++i) codes[i] = static_cast<uint8_t>(i * 37 + 11);
  std::vector<float> absmax((n + kQ8Block - 1) / kQ8Block, 0.25f);
  absmax[0] = first_absmax;
  std::vector<uint8_t> out;
  PackQ8(codes, absmax, out);
  return out;
}

std::vector<uint8_t> Fp32(uint64_t n) {
  std::vector<uint8_t> out(4 * n);
  for (uint64_t i = 0; i < n; ++i) strata::PutF32(out.data() + 4 * i, 0.125f * static_cast<float>(i) - 1.0f);
  return out;
}

std::vector<uint8_t> Json(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  if (sodium_init() < 0) return 1;
  std::array<uint8_t, crypto_sign_SEEDBYTES> seed;
  seed.fill(0x5e);
  std::array<uint8_t, kKeyBytes> pk;
  std::array<uint8_t, kSecretKeyBytes> sk;
  if (crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data()) != 0) return 1;

  auto head = [&](MsgType t, Codec c) {
    FrameHeader h;
    h.type = t;
    h.codec = c;
    h.run_id = 0x5eed5eed00000001ull;
    h.peer_key = pk;
    h.base_version = 12;
    h.sequence = 3;
    return h;
  };
  auto chunk = [&](MsgType t, Codec c, uint64_t total, uint64_t offset, uint64_t n, uint32_t i, uint32_t count) {
    FrameHeader h = head(t, c);
    h.fragment = 1;
    h.total_elements = total;
    h.element_offset = offset;
    h.element_count = n;
    h.chunk_index = i;
    h.chunk_count = count;
    h.inner_steps = 100;
    h.tokens = 409600;
    return h;
  };
  auto hashed = [](FrameHeader h) {
    h.content_hash = 0x0123456789abcdefull;
    return h;
  };
  auto last = [](FrameHeader h) {
    h.flags = kFlagLastFrame;
    return h;
  };

  const std::vector<Seed> seeds = {
      {"hello_json", head(MsgType::kHello, Codec::kJson), Json(R"({"name":"peer-1","fragments":[0]})")},
      {"welcome_json", last(head(MsgType::kWelcome, Codec::kJson)), Json(R"({"version":12,"tau_max":8})")},
      {"contrib_q8_257", chunk(MsgType::kContribChunk, Codec::kQ8Signed, 769, 512, 257, 2, 3), Q8(257)},
      {"contrib_q8_1", chunk(MsgType::kContribChunk, Codec::kQ8Signed, 1, 0, 1, 0, 1), Q8(1)},
      {"contrib_fp32_7", chunk(MsgType::kContribChunk, Codec::kFp32, 11, 4, 7, 1, 2), Fp32(7)},
      {"contrib_q8_nan_absmax", chunk(MsgType::kContribChunk, Codec::kQ8Signed, 300, 256, 44, 1, 2), Q8(44, NAN)},
      {"chunk_ack_none", head(MsgType::kChunkAck, Codec::kNone), {}},
      {"refusal_json", last(head(MsgType::kRefusal, Codec::kJson)), Json(R"({"reason":"stale","tau":9})")},
      {"announce_none", hashed(head(MsgType::kAnnounce, Codec::kNone)), {}},
      {"fetch_updates_json", head(MsgType::kFetchUpdates, Codec::kJson), Json(R"({"from":10})")},
      {"update_q8_512", hashed(last(chunk(MsgType::kUpdateChunk, Codec::kQ8Signed, 1024, 256, 512, 0, 1))), Q8(512)},
      {"fetch_theta_none", head(MsgType::kFetchTheta, Codec::kNone), {}},
      {"theta_fp32_255", hashed(last(chunk(MsgType::kThetaChunk, Codec::kFp32, 255, 0, 255, 0, 1))), Fp32(255)},
      {"lease_json", head(MsgType::kLease, Codec::kJson), Json(R"({"step":40,"tok_per_s":1234.5,"eta_s":60})")},
      {"status_request_none", head(MsgType::kStatusRequest, Codec::kNone), {}},
      {"status_reply_json", last(head(MsgType::kStatusReply, Codec::kJson)), Json(R"({"peers":3})")},
      {"result_json", last(head(MsgType::kResult, Codec::kJson)), Json(R"({"loss":3.25})")},
  };
  for (const Seed& s : seeds) {
    auto frame = EncodeFrame(s.h, s.payload, sk);
    if (!frame.ok()) {
      std::fprintf(stderr, "make_wire_corpus: %s: %s\n", s.name.c_str(), frame.status().ToString().c_str());
      return 1;
    }
    const std::string path = std::string(argv[1]) + "/" + s.name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(frame->data()), static_cast<std::streamsize>(frame->size()));
    if (!out.good()) {
      std::fprintf(stderr, "make_wire_corpus: cannot write %s\n", path.c_str());
      return 1;
    }
  }
  std::printf("make_wire_corpus: wrote %zu frames to %s\n", seeds.size(), argv[1]);
  return 0;
}
