// libFuzzer target for the membership list (LoadMembership, net/identity.h,
// docs/formats/identity.md). The input is written to a scratch file and loaded without an
// authority, and with one: as it is, and re-signed (a final "signature" line replaced by the
// authority's signature of the bytes before it), so the fuzzer gets past the signature to the
// member lines. Any input is refused with a Corruption or an InvalidArgument, or accepted; an
// accepted list round-trips: WriteMembership of its members and run id reads back as the same list.
// Build and run: tests/fuzz/README.md.
#include <sodium.h>

#include <array>
#include <string>
#include <vector>

#include "net/identity.h"
#include "tests/fuzz/fixtures.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace strata::net;

// The run's authority: a fixed seed, so the committed seeds' signatures verify.
const Identity& Authority() {
  static const Identity id = [] {
    auto r = IdentityFromSeed("authority", strata::fuzz::AuthoritySeed());
    STRATA_FUZZ_CHECK(r.ok());
    return *r;
  }();
  return id;
}

void LoadOne(const std::string& bytes, const Identity* authority) {
  const std::string& dir = strata::fuzz::ScratchDir();
  const std::string path = dir + "/members", again = dir + "/members.again";
  strata::fuzz::WriteBytes(path, bytes);
  const std::array<uint8_t, 32>* key = authority ? &authority->sign_pk : nullptr;
  auto m = LoadMembership(path, key);
  if (!m.ok()) {
    STRATA_FUZZ_CHECK(m.status().IsCorruption() || m.status().IsInvalidArgument());
    return;
  }
  STRATA_FUZZ_CHECK(m->signed_by_authority == (authority != nullptr));
  std::vector<PublicIdentity> pub;
  for (const Member& x : m->members) {
    STRATA_FUZZ_CHECK(IsValidPeerName(x.name));
    STRATA_FUZZ_CHECK(m->FindBySign(x.sign_pk) == &x && m->FindByCurve(x.curve_pk) == &x);
    pub.push_back({x.name, x.sign_pk, x.curve_pk});
  }
  STRATA_FUZZ_CHECK(WriteMembership(again, pub, authority, m->run_id).ok());
  auto back = LoadMembership(again, key);
  STRATA_FUZZ_CHECK(back.ok() && back->run_id == m->run_id && back->members.size() == m->members.size());
  for (size_t i = 0; i < m->members.size(); ++i) {
    const Member &a = m->members[i], &b = back->members[i];
    STRATA_FUZZ_CHECK(a.name == b.name && a.sign_pk == b.sign_pk && a.curve_pk == b.curve_pk);
  }
  strata::fuzz::Accept();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  LoadOne(bytes, nullptr);
  LoadOne(bytes, &Authority());
  // Re-signed: the last line, when it is a signature line, signed again over the bytes before it.
  if (bytes.empty() || bytes.back() != '\n') return 0;
  const size_t start = bytes.rfind('\n', bytes.size() - 2);
  const size_t line = start == std::string::npos ? 0 : start + 1;
  if (bytes.compare(line, 10, "signature ") != 0) return 0;
  std::array<uint8_t, crypto_sign_BYTES> sig;
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(bytes.data()), line,
                       Authority().sign_sk.data());
  std::string resigned = bytes.substr(0, line) + "signature ";
  static const char kHex[] = "0123456789abcdef";
  for (uint8_t b : sig) resigned += {kHex[b >> 4], kHex[b & 15]};
  LoadOne(resigned + "\n", &Authority());
  return 0;
}
