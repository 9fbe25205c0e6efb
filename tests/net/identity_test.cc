#include "net/identity.h"

#include <sodium.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/offload/temp_dir.h"

namespace strata::net {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Put(const std::string& path, const std::string& bytes, mode_t mode = 0600) {
  std::filesystem::remove(path);
  std::ofstream(path, std::ios::binary) << bytes;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// The test's own checksum line, computed independently of the code under test.
std::string WithChecksum(const std::string& body) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "checksum %016llx\n",
                static_cast<unsigned long long>(XXH3_64bits(body.data(), body.size())));
  return body + buf;
}

std::array<uint8_t, 32> Seed(uint32_t k) {
  std::array<uint8_t, 32> s;
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<uint8_t>(k * 31 + i * 7);
  s[0] = static_cast<uint8_t>(k >> 8);  // distinct seeds for k up to 65535
  s[1] = static_cast<uint8_t>(k);
  return s;
}

Identity Make(const std::string& name, uint32_t k) {
  Result<Identity> id = IdentityFromSeed(name, Seed(k));
  EXPECT_TRUE(id.ok()) << id.status();
  return *id;
}

std::string SecretBody(const Identity& id, const std::string& version = "1") {
  return "strata-identity " + version + "\nname " + id.name + "\ned25519-public " + KeyHex(id.sign_pk) +
         "\ned25519-seed " + KeyHex(std::span<const uint8_t>(id.sign_sk.data(), 32)) + "\n";
}

// Expects a failed load whose message contains `want`.
template <typename R>
void ExpectFails(const R& r, StatusCode code, const std::string& want) {
  ASSERT_FALSE(r.ok()) << "expected failure containing: " << want;
  EXPECT_EQ(r.status().code(), code) << r.status();
  EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status();
}

// ---- keys and names -----------------------------------------------------------------------------

TEST(KeyHex, RoundTripsAndRefusesBadInput) {
  std::array<uint8_t, 32> k;
  for (size_t i = 0; i < 32; ++i) k[i] = static_cast<uint8_t>(i * 37 + 251);
  const std::string hex = KeyHex(k);
  ASSERT_EQ(hex.size(), 64u);
  EXPECT_EQ(hex.substr(0, 4), "fb20");  // 251 = 0xfb, 288 mod 256 = 0x20: most significant nibble first
  Result<std::array<uint8_t, 32>> back = ParseKeyHex(hex);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, k);
  std::string upper = hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ASSERT_TRUE(ParseKeyHex(upper).ok());
  EXPECT_EQ(ParseKeyHex(upper).value(), k);
  for (const std::string& bad : {std::string(), hex.substr(0, 63), hex + "0", hex.substr(0, 62) + "g0",
                                 " " + hex.substr(1), hex.substr(0, 63) + "\n"})
    EXPECT_FALSE(ParseKeyHex(bad).ok()) << bad;
  EXPECT_EQ(KeyHex(std::span<const uint8_t>()), "");
}

TEST(PeerName, AllowsOnlyTheDocumentedAlphabetAndLength) {
  for (const std::string& ok : {std::string("a"), std::string(64, 'x'), std::string("Node-7.eu_west"),
                                std::string("0"), std::string("...")})
    EXPECT_TRUE(IsValidPeerName(ok)) << ok;
  for (const std::string& bad : {std::string(), std::string(65, 'x'), std::string("a b"), std::string("a/b"),
                                 std::string("caf\xc3\xa9"), std::string("a\n"), std::string("a:b"),
                                 std::string(1, '\0')})
    EXPECT_FALSE(IsValidPeerName(bad)) << bad;
  ExpectFails(GenerateIdentity("has space"), StatusCode::kInvalidArgument, "'has space'");
}

TEST(Identity, FromSeedIsDeterministicAndItsCurveKeysAreAPair) {
  const Identity a = Make("a", 1), a2 = Make("a", 1), b = Make("b", 2);
  EXPECT_EQ(a.sign_pk, a2.sign_pk);
  EXPECT_EQ(a.sign_sk, a2.sign_sk);
  EXPECT_EQ(a.curve_sk, a2.curve_sk);
  EXPECT_NE(a.sign_pk, b.sign_pk);
  EXPECT_NE(a.curve_pk, b.curve_pk);
  // libsodium's secret key is seed | public key.
  EXPECT_TRUE(std::equal(a.sign_sk.begin(), a.sign_sk.begin() + 32, Seed(1).begin()));
  EXPECT_TRUE(std::equal(a.sign_sk.begin() + 32, a.sign_sk.end(), a.sign_pk.begin()));
  // The Curve25519 public key is the one its secret key gives: X25519 works with this pair.
  std::array<uint8_t, 32> from_sk;
  ASSERT_EQ(crypto_scalarmult_base(from_sk.data(), a.curve_sk.data()), 0);
  EXPECT_EQ(from_sk, a.curve_pk);
  // And the Ed25519 pair signs.
  const uint8_t msg[3] = {1, 2, 3};
  uint8_t sig[crypto_sign_BYTES];
  ASSERT_EQ(crypto_sign_detached(sig, nullptr, msg, 3, a.sign_sk.data()), 0);
  EXPECT_EQ(crypto_sign_verify_detached(sig, msg, 3, a.sign_pk.data()), 0);
  EXPECT_NE(crypto_sign_verify_detached(sig, msg, 3, b.sign_pk.data()), 0);

  const PublicIdentity p = PublicOf(a);
  EXPECT_EQ(p.name, "a");
  EXPECT_EQ(p.sign_pk, a.sign_pk);
  EXPECT_EQ(p.curve_pk, a.curve_pk);

  const std::array<uint8_t, 33> long_seed{};
  ExpectFails(IdentityFromSeed("a", std::span<const uint8_t>(long_seed.data(), 31)), StatusCode::kInvalidArgument,
              "31 bytes");
  ExpectFails(IdentityFromSeed("a", long_seed), StatusCode::kInvalidArgument, "33 bytes");
}

TEST(Identity, GenerateGivesDistinctKeys) {
  Result<Identity> a = GenerateIdentity("a"), b = GenerateIdentity("a");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->sign_pk, b->sign_pk);
  EXPECT_NE(a->curve_sk, b->curve_sk);
}

// ---- key files ----------------------------------------------------------------------------------

TEST(IdentityFile, RoundTripWithModesAndTheDocumentedLayout) {
  TempDir dir;
  const std::string path = dir / "alice.key";
  Result<Identity> id = GenerateIdentity(std::string(64, 'z'));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(SaveIdentity(*id, path).ok());
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_EQ(ModeOf(path + ".pub"), 0644u);
  EXPECT_EQ(Slurp(path), WithChecksum(SecretBody(*id)));
  EXPECT_EQ(Slurp(path + ".pub"),
            WithChecksum("strata-public-key 1\nname " + id->name + "\ned25519-public " + KeyHex(id->sign_pk) + "\n"));

  Result<Identity> back = LoadIdentity(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, id->name);
  EXPECT_EQ(back->sign_pk, id->sign_pk);
  EXPECT_EQ(back->sign_sk, id->sign_sk);
  EXPECT_EQ(back->curve_pk, id->curve_pk);
  EXPECT_EQ(back->curve_sk, id->curve_sk);

  Result<PublicIdentity> pub = LoadPublicIdentity(path + ".pub");
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ(pub->name, id->name);
  EXPECT_EQ(pub->sign_pk, id->sign_pk);
  EXPECT_EQ(pub->curve_pk, id->curve_pk);

  // Nothing else is left in the folder (no temporary files).
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) n += e.is_regular_file();
  EXPECT_EQ(n, 2u);
}

TEST(IdentityFile, SaveRefusesToOverwriteAndNamesTheFile) {
  TempDir dir;
  const Identity a = Make("a", 1), b = Make("b", 2);
  const std::string path = dir / "k";
  ASSERT_TRUE(SaveIdentity(a, path).ok());
  const std::string before = Slurp(path);
  Status st = SaveIdentity(b, path);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(path), std::string::npos) << st;
  EXPECT_NE(st.message().find("already exists"), std::string::npos) << st;
  EXPECT_EQ(Slurp(path), before);

  // Only the .pub exists: refused, naming it, and no secret file is left behind.
  const std::string path2 = dir / "k2";
  Put(path2 + ".pub", "x", 0644);
  st = SaveIdentity(b, path2);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(path2 + ".pub"), std::string::npos) << st;
  EXPECT_FALSE(std::filesystem::exists(path2));

  Identity bad = a;
  bad.name = "no/slash";
  EXPECT_FALSE(SaveIdentity(bad, dir / "k3").ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "k3"));
}

TEST(IdentityFile, LoadRefusesASecretThatGroupOrOthersCanAccess) {
  TempDir dir;
  const std::string path = dir / "k";
  ASSERT_TRUE(SaveIdentity(Make("a", 1), path).ok());
  for (mode_t mode : {0644, 0640, 0604, 0601, 0610, 0666}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    Result<Identity> r = LoadIdentity(path);
    char want[8];
    std::snprintf(want, sizeof want, "%04o", static_cast<unsigned>(mode));
    ExpectFails(r, StatusCode::kInvalidArgument, want);
    EXPECT_NE(r.status().message().find(path), std::string::npos);
  }
  ASSERT_EQ(::chmod(path.c_str(), 0400), 0);
  EXPECT_TRUE(LoadIdentity(path).ok());
  ExpectFails(LoadIdentity(dir / "absent"), StatusCode::kNotFound, dir / "absent");
}

// One named corruption case: file bytes -> the message it must give.
struct CorruptCase {
  const char* name;
  std::string bytes;
  std::string want;
};

TEST(IdentityFile, NamedCorruptionCases) {
  TempDir dir;
  const Identity a = Make("alice", 1), b = Make("bob", 2);
  const std::string good = WithChecksum(SecretBody(a));
  std::string flipped = good;
  flipped[good.find("ed25519-public ") + 20] ^= 1;  // a hex digit becomes another hex digit
  std::string bad_hex_body = SecretBody(a);
  bad_hex_body[bad_hex_body.find("ed25519-public ") + 15] = 'g';
  std::string bad_seed_body = SecretBody(a);
  bad_seed_body.replace(bad_seed_body.find("ed25519-seed ") + 13, 2, "x");  // 63 characters
  std::string mismatch_body = SecretBody(a);
  const size_t pk_at = mismatch_body.find("ed25519-public ") + 15;
  mismatch_body.replace(pk_at, 64, KeyHex(b.sign_pk));
  std::string no_seed = SecretBody(a);
  no_seed.erase(no_seed.find("ed25519-seed "));
  const std::vector<CorruptCase> cases = {
      {"BAD_FIRST_LINE", "strata-identitx 1\n" + good.substr(good.find('\n') + 1), "not a strata identity file"},
      {"BINARY_GARBAGE", std::string("\x7f" "ELF\x02\x01", 6), "not a strata identity file"},
      {"PUBLIC_FILE", WithChecksum("strata-public-key 1\nname alice\ned25519-public " + KeyHex(a.sign_pk) + "\n"),
       "public key file"},
      {"UNKNOWN_VERSION", WithChecksum(SecretBody(a, "2")), "unsupported version '2'"},
      {"MISSING_FIELD", WithChecksum(no_seed), "missing field 'ed25519-seed'"},
      {"FIELD_ORDER", WithChecksum("strata-identity 1\ned25519-public " + KeyHex(a.sign_pk) + "\nname alice\n"),
       "missing field 'name'"},
      {"UNKNOWN_FIELD", WithChecksum("strata-identity 1\nnick alice\n"), "expected field 'name'"},
      {"BAD_HEX", WithChecksum(bad_hex_body), ":3: ed25519-public is not 64 hex digits"},
      {"SHORT_SEED_HEX", WithChecksum(bad_seed_body), ":4: ed25519-seed is not 64 hex digits"},
      {"BAD_NAME", WithChecksum("strata-identity 1\nname al ice\ned25519-public " + KeyHex(a.sign_pk) +
                                "\ned25519-seed 00\n"),
       "name 'al ice'"},
      {"SEED_PUBLIC_MISMATCH", WithChecksum(mismatch_body), "is not the public key of the seed"},
      {"CHECKSUM_MISMATCH", flipped, "checksum mismatch"},
      {"CHECKSUM_NOT_HEX", SecretBody(a) + "checksum 0123456789abcdeX\n", "not 16 lowercase hex digits"},
      {"CHECKSUM_UPPERCASE", SecretBody(a) + "checksum 0123456789ABCDEF\n", "not 16 lowercase hex digits"},
      {"CHECKSUM_SHORT", SecretBody(a) + "checksum 0123\n", "not 16 lowercase hex digits"},
      {"TRAILING_GARBAGE", good + "x", "trailing bytes"},
      {"TRAILING_NEWLINE", good + "\n", "trailing bytes"},
      {"TRAILING_SECOND_CHECKSUM", good + good.substr(good.rfind("checksum")), "trailing bytes"},
      {"CRLF", WithChecksum("strata-identity 1\r\nname alice\n"), "unsupported version"},
      {"EMPTY", "", "truncated"},
  };
  for (const CorruptCase& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir / c.name;
    Put(path, c.bytes);
    ExpectFails(LoadIdentity(path), StatusCode::kCorruption, c.want);
  }
  Put(dir / "good", good);
  EXPECT_TRUE(LoadIdentity(dir / "good").ok());
}

TEST(IdentityFile, TruncationAtEveryLengthIsRefused) {
  TempDir dir;
  const std::string good = WithChecksum(SecretBody(Make("t", 3)));
  const std::string path = dir / "k";
  for (size_t len = 0; len < good.size(); ++len) {
    Put(path, good.substr(0, len));
    Result<Identity> r = LoadIdentity(path);
    ASSERT_FALSE(r.ok()) << "length " << len;
    EXPECT_TRUE(r.status().IsCorruption()) << len << ": " << r.status();
  }
}

TEST(IdentityFile, EveryFlippedByteIsRefused) {
  TempDir dir;
  const std::string good = WithChecksum(SecretBody(Make("flip", 4)));
  const std::string path = dir / "k";
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t x : {0x01, 0x20, 0x80}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ x);
      Put(path, bad);
      Result<Identity> r = LoadIdentity(path);
      ASSERT_FALSE(r.ok()) << "byte " << i << " ^ " << int(x);
    }
  }
}

TEST(IdentityFile, TooLargeFileIsRefused) {
  TempDir dir;
  Put(dir / "big", WithChecksum(SecretBody(Make("a", 1))) + std::string(5000, '#'));
  ExpectFails(LoadIdentity(dir / "big"), StatusCode::kCorruption, "too large");
}

TEST(PublicFile, NamedCorruptionCases) {
  TempDir dir;
  const Identity a = Make("alice", 1);
  const std::string body = "strata-public-key 1\nname alice\ned25519-public " + KeyHex(a.sign_pk) + "\n";
  const std::string good = WithChecksum(body);
  Put(dir / "good.pub", good, 0644);
  Result<PublicIdentity> ok = LoadPublicIdentity(dir / "good.pub");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->curve_pk, a.curve_pk);

  std::string flipped = good;
  flipped[body.size() - 3] ^= 1;
  const std::vector<CorruptCase> cases = {
      {"SECRET_FILE", WithChecksum(SecretBody(a)), "secret identity file"},
      {"BAD_FIRST_LINE", "strata-public-kex 1\n", "not a strata public key file"},
      {"UNKNOWN_VERSION", WithChecksum("strata-public-key 10\nname alice\n"), "unsupported version '10'"},
      {"MISSING_FIELD", WithChecksum("strata-public-key 1\nname alice\n"), "missing field 'ed25519-public'"},
      {"CHECKSUM_MISMATCH", flipped, "checksum mismatch"},
      {"NOT_A_CURVE_POINT",
       WithChecksum("strata-public-key 1\nname alice\ned25519-public " + std::string(64, '0') + "\n"),
       "not a valid curve point"},
      {"TRAILING_GARBAGE", good + "garbage\n", "trailing bytes"},
  };
  for (const CorruptCase& c : cases) {
    SCOPED_TRACE(c.name);
    Put(dir / c.name, c.bytes, 0644);
    ExpectFails(LoadPublicIdentity(dir / c.name), StatusCode::kCorruption, c.want);
  }
  for (size_t len = 0; len < good.size(); ++len) {
    Put(dir / "t.pub", good.substr(0, len), 0644);
    Result<PublicIdentity> r = LoadPublicIdentity(dir / "t.pub");
    ASSERT_FALSE(r.ok()) << "length " << len;
    EXPECT_TRUE(r.status().IsCorruption()) << r.status();
  }
}

// ---- membership ---------------------------------------------------------------------------------

std::vector<Identity> Peers(size_t n, uint32_t base = 1000) {
  std::vector<Identity> v;
  for (size_t i = 0; i < n; ++i) v.push_back(Make("peer-" + std::to_string(i), base + static_cast<uint32_t>(i)));
  return v;
}

std::vector<PublicIdentity> Publics(const std::vector<Identity>& ids) {
  std::vector<PublicIdentity> v;
  for (const Identity& id : ids) v.push_back(PublicOf(id));
  return v;
}

TEST(Membership, RoundTripsAtAwkwardSizes) {
  TempDir dir;
  for (size_t n : {0u, 1u, 7u, 257u}) {
    SCOPED_TRACE(n);
    const std::vector<Identity> ids = Peers(n);
    const std::string path = dir / ("m" + std::to_string(n));
    ASSERT_TRUE(WriteMembership(path, Publics(ids), nullptr, n == 7 ? std::optional<uint64_t>(UINT64_MAX)
                                                                      : std::nullopt)
                    .ok());
    Result<Membership> m = LoadMembership(path, nullptr);
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_FALSE(m->signed_by_authority);
    EXPECT_EQ(m->run_id.has_value(), n == 7);
    if (n == 7) {
      EXPECT_EQ(*m->run_id, UINT64_MAX);
    }
    ASSERT_EQ(m->members.size(), n);
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(m->members[i].name, ids[i].name);
      EXPECT_EQ(m->members[i].sign_pk, ids[i].sign_pk);
      EXPECT_EQ(m->members[i].curve_pk, ids[i].curve_pk);
      EXPECT_EQ(m->FindByCurve(ids[i].curve_pk), &m->members[i]);
      EXPECT_EQ(m->FindBySign(ids[i].sign_pk), &m->members[i]);
    }
    const Identity stranger = Make("stranger", 200);
    EXPECT_EQ(m->FindByCurve(stranger.curve_pk), nullptr);
    EXPECT_EQ(m->FindBySign(stranger.sign_pk), nullptr);
    if (n > 0) {
      // A key of the wrong length never matches, even as a prefix of a member's key.
      EXPECT_EQ(m->FindByCurve(std::span<const uint8_t>(ids[0].curve_pk.data(), 31)), nullptr);
      // The signing key is not a CURVE key and the other way round.
      EXPECT_EQ(m->FindByCurve(ids[0].sign_pk), nullptr);
      EXPECT_EQ(m->FindBySign(ids[0].curve_pk), nullptr);
    }
  }
}

// The example in docs/formats/identity.md, byte for byte (Ed25519 signatures are deterministic).
TEST(Membership, WritesTheDocumentedExample) {
  TempDir dir;
  std::array<uint8_t, 32> s1{1}, s2{2}, s3{3};
  const Identity auth = IdentityFromSeed("authority", s1).value(), alice = IdentityFromSeed("alice", s2).value(),
                 bob = IdentityFromSeed("bob", s3).value();
  ASSERT_TRUE(WriteMembership(dir / "m", {PublicOf(alice), PublicOf(bob)}, &auth, 42).ok());
  EXPECT_EQ(Slurp(dir / "m"),
            "strata-members 1\n"
            "# 2 members, signed by authority cecc1507dc1ddd7295951c290888f095adb9044d1b73d696e6df065d683bd4fc\n"
            "run 42\n"
            "member alice 6b79c57e6a095239282c04818e96112f3f03a4001ba97a564c23852a3f1ea5fc\n"
            "member bob dadbd184a2d526f1ebdd5c06fdad9359b228759b4d7f79d66689fa254aad8546\n"
            "signature e5b6bdeb1245937ad0f56333f4395a8c94772c6fed335201d4b7a0dceb6c9bd1"
            "ee8ecc4c9a6af05d9874e029fc06e174c6e204cbb6e990801b1b1407d4b11a0d\n");
  ASSERT_TRUE(SaveIdentity(alice, dir / "alice.key").ok());
  EXPECT_EQ(Slurp(dir / "alice.key.pub"),
            "strata-public-key 1\nname alice\n"
            "ed25519-public 6b79c57e6a095239282c04818e96112f3f03a4001ba97a564c23852a3f1ea5fc\n"
            "checksum dceb0323f956bb98\n");
}

TEST(Membership, HandWrittenFileWithCommentsBlankLinesAndTabs) {
  TempDir dir;
  const std::vector<Identity> ids = Peers(2);
  const std::string text = "strata-members 1\n# the eu peers\n\n   \nrun 12345\n\tmember  " + ids[0].name + "\t" +
                           KeyHex(ids[0].sign_pk) + "  \n# caf\xc3\xa9 comment\nmember " + ids[1].name + " " +
                           KeyHex(ids[1].sign_pk) + "\n";
  Put(dir / "m", text, 0644);
  Result<Membership> m = LoadMembership(dir / "m", nullptr);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->members.size(), 2u);
  EXPECT_EQ(*m->run_id, 12345u);
  EXPECT_EQ(m->members[1].curve_pk, ids[1].curve_pk);
}

TEST(Membership, SignedListVerifiesAndAnyTamperingFails) {
  TempDir dir;
  const Identity authority = Make("authority", 99), other = Make("other", 98);
  const std::string path = dir / "m";
  ASSERT_TRUE(WriteMembership(path, Publics(Peers(3)), &authority, 7).ok());
  Result<Membership> m = LoadMembership(path, &authority.sign_pk);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->signed_by_authority);
  EXPECT_EQ(m->members.size(), 3u);
  // Without an authority the signature is not checked, and the result says so.
  Result<Membership> unchecked = LoadMembership(path, nullptr);
  ASSERT_TRUE(unchecked.ok());
  EXPECT_FALSE(unchecked->signed_by_authority);

  // Signed by another key.
  ExpectFails(LoadMembership(path, &other.sign_pk), StatusCode::kInvalidArgument, "does not verify");

  // One changed byte anywhere before the signature line.
  const std::string good = Slurp(path);
  const size_t sig_at = good.rfind("signature ");
  ASSERT_NE(sig_at, std::string::npos);
  const std::string tampered_path = dir / "t";
  for (size_t i = 0; i < sig_at; ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] == 'x' ? 'y' : 'x');
    Put(tampered_path, bad, 0644);
    Result<Membership> r = LoadMembership(tampered_path, &authority.sign_pk);
    ASSERT_FALSE(r.ok()) << "byte " << i << " changed";
    EXPECT_NE(r.status().message().find(tampered_path), std::string::npos) << r.status();
  }
  // A changed signature.
  std::string bad_sig = good;
  bad_sig[sig_at + 10] = bad_sig[sig_at + 10] == '0' ? '1' : '0';
  Put(tampered_path, bad_sig, 0644);
  ExpectFails(LoadMembership(tampered_path, &authority.sign_pk), StatusCode::kInvalidArgument, "does not verify");
  // The signature removed: refused when an authority is required.
  Put(tampered_path, good.substr(0, sig_at), 0644);
  ExpectFails(LoadMembership(tampered_path, &authority.sign_pk), StatusCode::kInvalidArgument, "not signed");
  EXPECT_TRUE(LoadMembership(tampered_path, nullptr).ok());
  // Something appended after the signature.
  Put(tampered_path, good + "member evil " + KeyHex(other.sign_pk) + "\n", 0644);
  EXPECT_FALSE(LoadMembership(tampered_path, &authority.sign_pk).ok());
  EXPECT_FALSE(LoadMembership(tampered_path, nullptr).ok());
}

TEST(Membership, DuplicatesAreRefusedNamingBothLines) {
  TempDir dir;
  const std::vector<Identity> ids = Peers(2);
  const std::string head = "strata-members 1\n# x\nmember a " + KeyHex(ids[0].sign_pk) + "\n\n";
  // An Ed25519 key with the x sign bit flipped is another valid key with the same Curve25519 key.
  std::array<uint8_t, 32> twin = ids[0].sign_pk;
  twin[31] ^= 0x80;
  const std::vector<CorruptCase> cases = {
      {"DUP_NAME", head + "member a " + KeyHex(ids[1].sign_pk) + "\n", ":5: duplicate name 'a' (first on line 3)"},
      {"DUP_KEY", head + "member b " + KeyHex(ids[0].sign_pk) + "\n", ":5: duplicate key of 'b' (first on line 3)"},
      {"DUP_CURVE", head + "member b " + KeyHex(twin) + "\n", ":5: member 'b' has the same CURVE key as 'a'"},
  };
  for (const CorruptCase& c : cases) {
    SCOPED_TRACE(c.name);
    Put(dir / c.name, c.bytes, 0644);
    ExpectFails(LoadMembership(dir / c.name, nullptr), StatusCode::kCorruption, c.want);
  }
  std::vector<PublicIdentity> dup = Publics(ids);
  dup[1].name = dup[0].name;
  EXPECT_FALSE(WriteMembership(dir / "w", dup, nullptr).ok());
  dup = Publics(ids);
  dup[1].sign_pk = twin;
  EXPECT_FALSE(WriteMembership(dir / "w", dup, nullptr).ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "w"));
}

// Duplicates are found by lookup, not pairwise (a pairwise check built a message for every pair:
// 5,000 members took over a minute under ASan, a list near the 16 MiB limit hours): 20,011 members
// load, and a duplicate of a member far back in the list is named with that member's line.
TEST(Membership, ALargeListLoadsAndItsDuplicatesAreNamed) {
  TempDir dir;
  const size_t n = 20011;
  const std::vector<Identity> ids = Peers(n);
  ASSERT_TRUE(WriteMembership(dir / "big", Publics(ids), nullptr).ok());
  Result<Membership> m = LoadMembership(dir / "big", nullptr);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m.value().members.size(), n);
  EXPECT_EQ(m.value().FindBySign(ids[n - 1].sign_pk)->name, "peer-" + std::to_string(n - 1));
  // The written file: the magic, a comment, then one member per line (member i on line i + 3).
  std::ifstream in(dir / "big");
  std::stringstream text;
  text << in.rdbuf();
  const std::string body = text.str();
  Put(dir / "dup_key", body + "member late " + KeyHex(ids[7].sign_pk) + "\n", 0644);
  ExpectFails(LoadMembership(dir / "dup_key", nullptr), StatusCode::kCorruption,
              ":" + std::to_string(n + 3) + ": duplicate key of 'late' (first on line 10) as 'peer-7'");
  Put(dir / "dup_name", body + "member peer-19999 " + KeyHex(Make("x", 7).sign_pk) + "\n", 0644);
  ExpectFails(LoadMembership(dir / "dup_name", nullptr), StatusCode::kCorruption,
              "duplicate name 'peer-19999' (first on line 20002)");
  std::vector<PublicIdentity> dup = Publics(ids);
  dup.push_back(dup[12345]);
  dup.back().name = "other";
  const Status w = WriteMembership(dir / "w", dup, nullptr);
  EXPECT_EQ(w.code(), StatusCode::kInvalidArgument) << w;
  EXPECT_NE(w.message().find("duplicates the name or key of member 12345 'peer-12345'"), std::string::npos) << w;
}

TEST(Membership, BadLinesAreRefusedWithTheirLineNumber) {
  TempDir dir;
  const Identity a = Make("a", 1);
  const std::string hex = KeyHex(a.sign_pk);
  const std::string head = "strata-members 1\n";
  const std::vector<CorruptCase> cases = {
      {"EMPTY", "", "empty file"},
      {"BAD_FIRST_LINE", "strata-member 1\n", ":1: not a strata membership list"},
      {"MEMBER_FIRST", "member a " + hex + "\n", ":1: not a strata membership list"},
      {"UNKNOWN_VERSION", "strata-members 2\n", ":1: unsupported version '2'"},
      {"NO_END_OF_LINE", head + "member a " + hex, ":2: truncated"},
      {"UNKNOWN_KEYWORD", head + "# c\nmembre a " + hex + "\n", ":3: unknown keyword 'membre'"},
      {"BAD_HEX", head + "member a " + hex.substr(0, 63) + "q\n", ":2: key "},
      {"SHORT_KEY", head + "\n\nmember a " + hex.substr(0, 62) + "\n", ":4: key "},
      {"MISSING_KEY", head + "member a\n", ":2: expected 'member NAME ED25519_PUBLIC_HEX'"},
      {"EXTRA_TOKEN", head + "member a " + hex + " x\n", ":2: expected 'member NAME"},
      {"BAD_NAME", head + "member a/b " + hex + "\n", ":2: name 'a/b'"},
      {"NOT_A_POINT", head + "member a " + std::string(64, '0') + "\n", ":2: ed25519 public key"},
      {"CARRIAGE_RETURN", head + "member a " + hex + "\r\n", ":2: carriage return"},
      {"NUL_BYTE", head + std::string("# a\0b\n", 6), ":2: control character"},
      {"TWO_RUN_LINES", head + "run 1\nrun 2\n", ":3: a second 'run' line"},
      {"NEGATIVE_RUN", head + "run -1\n", ":2: run id '-1'"},
      {"RUN_OVERFLOW", head + "run 18446744073709551616\n", ":2: run id"},
      {"RUN_NOT_NUMBER", head + "run 12ab\n", ":2: run id"},
      {"SIGNATURE_NOT_LAST", head + "signature " + std::string(128, '0') + "\nmember a " + hex + "\n",
       ":2: the signature line must be the last line"},
      {"SIGNATURE_SHORT", head + "signature " + std::string(127, '0') + "\n", ":2: signature must be 128 hex"},
      {"NON_ASCII_OUTSIDE_COMMENT", head + "member caf\xc3\xa9 " + hex + "\n", ":2: non-ASCII"},
  };
  for (const CorruptCase& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir / c.name;
    Put(path, c.bytes, 0644);
    Result<Membership> r = LoadMembership(path, nullptr);
    ExpectFails(r, StatusCode::kCorruption, c.want);
    EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status();
  }
  ExpectFails(LoadMembership(dir / "absent", nullptr), StatusCode::kNotFound, dir / "absent");
}

}  // namespace
}  // namespace strata::net
