// Peer identities and the membership list of a swarm.
//
// A peer is one Ed25519 key pair (libsodium). Its CURVE (Curve25519) key pair, which ZeroMQ uses to
// encrypt and authenticate connections, is derived from it, so one file is the whole identity and a
// member is named by its Ed25519 public key alone. Formats: docs/formats/identity.md.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/status.h"

namespace strata::net {

// A peer's full key material. The secret halves never leave this process except through
// SaveIdentity's 0600 file.
struct Identity {
  std::string name;                  // [A-Za-z0-9._-]{1,64}: for logs and the membership list
  std::array<uint8_t, 32> sign_pk;   // Ed25519 public key: the peer's identity everywhere
  std::array<uint8_t, 64> sign_sk;   // Ed25519 secret key in libsodium's layout: seed (32) | public (32)
  std::array<uint8_t, 32> curve_pk;  // Curve25519 public key, derived from sign_pk (ZMQ_CURVE_PUBLICKEY)
  std::array<uint8_t, 32> curve_sk;  // Curve25519 secret key, derived from sign_sk (ZMQ_CURVE_SECRETKEY)
};

// What others may know of a peer.
struct PublicIdentity {
  std::string name;                  // as in Identity
  std::array<uint8_t, 32> sign_pk;   // Ed25519 public key
  std::array<uint8_t, 32> curve_pk;  // Curve25519 public key, derived from sign_pk
};

// True when name matches [A-Za-z0-9._-]{1,64}.
bool IsValidPeerName(std::string_view name);

// A fresh random identity.
[[nodiscard]] Result<Identity> GenerateIdentity(std::string name);

// The identity whose Ed25519 seed is `seed` (32 bytes): deterministic, for tests and for recovery.
[[nodiscard]] Result<Identity> IdentityFromSeed(std::string name, std::span<const uint8_t> seed);

// Writes the secret file at path (mode 0600) and the public file at path + ".pub" (mode 0644),
// each atomically (a temporary file in the same folder, fsync, link into place, fsync the folder).
// Refuses, naming the file, when either already exists: an identity is never overwritten.
[[nodiscard]] Status SaveIdentity(const Identity& id, const std::string& path);

// Reads a secret file. Refuses (InvalidArgument) a file that group or others may access: a secret
// key that others can read is no longer secret. Checks the format, the checksum, and that the
// public key is the one the seed gives.
[[nodiscard]] Result<Identity> LoadIdentity(const std::string& path);

// Reads a public file (the ".pub" written by SaveIdentity).
[[nodiscard]] Result<PublicIdentity> LoadPublicIdentity(const std::string& path);

PublicIdentity PublicOf(const Identity& id);

// Lowercase hex of a key (64 characters for 32 bytes).
std::string KeyHex(std::span<const uint8_t> key);

// 64 hex digits (either case) -> 32 bytes.
[[nodiscard]] Result<std::array<uint8_t, 32>> ParseKeyHex(std::string_view hex);

// One line of a membership list.
struct Member {
  std::string name;                  // as in Identity
  std::array<uint8_t, 32> sign_pk;   // Ed25519 public key, as listed
  std::array<uint8_t, 32> curve_pk;  // Curve25519 public key derived from sign_pk: what ZAP sees
};

// The peers admitted to a run. Names, Ed25519 keys and Curve25519 keys are each unique.
struct Membership {
  std::vector<Member> members;       // in file order
  std::optional<uint64_t> run_id;    // the file's "run" line, when it has one
  bool signed_by_authority = false;  // true only when LoadMembership verified the authority's signature

  // The member with this key, or nullptr (also for a key that is not 32 bytes).
  const Member* FindByCurve(std::span<const uint8_t> curve_pk) const;
  const Member* FindBySign(std::span<const uint8_t> sign_pk) const;
};

// Reads a membership list. With an authority key the file must end with a valid signature by it
// (refused otherwise, naming the file). Without one a signature line is checked for form only and
// signed_by_authority stays false. Duplicate names or keys are refused, naming both lines; every
// error names the file and the line.
[[nodiscard]] Result<Membership> LoadMembership(const std::string& path,
                                                const std::array<uint8_t, 32>* authority_sign_pk);

// Writes a membership list atomically (replacing an old one), signed when authority is non-null.
// Refuses duplicate names or keys.
[[nodiscard]] Status WriteMembership(const std::string& path, const std::vector<PublicIdentity>& members,
                                     const Identity* authority, std::optional<uint64_t> run_id = std::nullopt);

}  // namespace strata::net
