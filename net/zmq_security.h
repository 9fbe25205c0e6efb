// CURVE on every socket, and a ZAP handler (ZeroMQ RFC 27) that denies by default.
//
// libzmq asks the socket bound at inproc://zeromq.zap.01 on the server's context whether to admit
// each new connection. ZapHandler answers: a CURVE client whose public key is on the membership list
// is admitted, with User-Id = the hex of its Ed25519 key; everything else is denied and counted.
// In libzmq 4.3 a CURVE server whose context has no ZAP handler admits any client that knows the
// server's public key, so ConfigureCurveServer refuses to run without one.
//
// Lifetimes: a ZapHandler must outlive every server socket that relies on it (destroy the sockets
// first), and the context must outlive the ZapHandler.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "net/identity.h"
#include "runtime/status.h"

namespace strata::net {

// The ZAP domain that strata's servers set and its handler requires.
inline constexpr const char* kZapDomain = "strata";

class ZapHandler {
 public:
  // Binds inproc://zeromq.zap.01 on ctx (fails when another handler holds it) and answers ZAP
  // requests on its own thread until destroyed.
  [[nodiscard]] static Result<std::unique_ptr<ZapHandler>> Start(zmq::context_t& ctx, Membership members);
  ~ZapHandler();  // stops the thread (within milliseconds) and closes its sockets
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  uint64_t admitted() const { return admitted_.load(std::memory_order_relaxed); }  // "200" replies
  uint64_t denied() const { return denied_.load(std::memory_order_relaxed); }      // "400" replies

  // The denials since the last call, oldest first, for the owner to log (at most kMaxDenialsKept
  // are kept between two calls; denied() counts them all).
  struct Denial {
    std::string address;  // the connecting peer's IP address, as libzmq reports it
    std::string mechanism;
    std::string reason;   // the status text sent back
  };
  static constexpr size_t kMaxDenialsKept = 256;
  std::vector<Denial> TakeDenials();

  // Hot reload: connections handshaking after this call are judged by the new list. Connections
  // already admitted stay open (a removed member is cut off at its next connection).
  void Replace(Membership members);

 private:
  ZapHandler(zmq::context_t& ctx, Membership members);
  void Run();
  // The reply to one request; frames as received (without the envelope).
  void Answer(const std::vector<zmq::message_t>& request, std::string* status, std::string* text,
              std::string* user_id);

  zmq::socket_t zap_;      // REP on inproc://zeromq.zap.01; used by the handler thread only once started
  zmq::socket_t stop_rx_;  // PAIR, handler thread side: one message means "stop"
  zmq::socket_t stop_tx_;  // PAIR, owner side (the destructor)
  std::mutex mu_;          // guards members_ and denials_
  Membership members_;
  std::vector<Denial> denials_;
  std::atomic<uint64_t> admitted_{0}, denied_{0};
  std::thread thread_;
};

// Makes s a CURVE server with id's Curve25519 secret key and the ZAP domain "strata". zap must be
// the running handler of s's context: with nullptr this refuses, because libzmq would then admit
// anyone. Call before bind.
[[nodiscard]] Status ConfigureCurveServer(zmq::socket_t& s, const Identity& id, const ZapHandler* zap);

// Makes s a CURVE client with id's key pair that accepts only a server holding the secret key of
// server_curve_pk (32 bytes). Call before connect.
[[nodiscard]] Status ConfigureCurveClient(zmq::socket_t& s, const Identity& id,
                                          std::span<const uint8_t> server_curve_pk);

// What CURVE adds to each message on the wire (libzmq 4.3): the "MESSAGE" command name (8 bytes),
// the short nonce (8), the Poly1305 tag (16) and the flags byte (1).
inline constexpr int64_t kCurveFrameOverheadBytes = 33;

// The smallest payload limit ConfigureLiveness accepts: libzmq applies ZMQ_MAXMSGSIZE to the CURVE
// handshake commands too, and INITIATE is about 300 bytes plus the socket's metadata.
inline constexpr int64_t kMinMaxMsgBytes = 1024;

// Socket options that keep a dead or hostile peer from holding resources. Set before bind/connect.
struct LivenessOptions {
  int heartbeat_ivl_ms = 1000;       // ms between ZMTP PINGs on an idle connection
  int heartbeat_timeout_ms = 5000;   // ms without any traffic after a PING before we drop the peer
  int heartbeat_ttl_ms = 10000;      // ms the remote should wait for our traffic before dropping us (0.1 s units)
  int handshake_ivl_ms = 10000;      // ms a connection may spend in the CURVE handshake
  int64_t max_msg_bytes = 80ll << 20;  // largest payload accepted (-1: any); a larger one drops the connection
  int sndhwm = 64, rcvhwm = 64;      // messages queued per peer before send blocks / receive drops
  int linger_ms = 0;                 // ms close waits for unsent messages
};

// Applies o to s (values must be >= 0; max_msg_bytes is -1 or at least kMinMaxMsgBytes; linger_ms
// may be -1). ZMQ_MAXMSGSIZE is
// set to max_msg_bytes + kCurveFrameOverheadBytes, so the limit is on the payload whether or not the
// socket uses CURVE. See the .cc for why each value.
void ConfigureLiveness(zmq::socket_t& s, const LivenessOptions& o);

// The Ed25519 key of the member that sent msg, from the "User-Id" property that ZapHandler set
// when it admitted the connection. Ask a payload frame: libzmq 4.3 tags a ROUTER's routing-id
// frame only on some paths (not after a poll), so its absence there means nothing. Check it on
// every message a server acts on: it is the second lock, since a message that reached a CURVE socket
// without our handler's admission (a socket configured by hand, a handler already destroyed) has no
// User-Id and is refused here. Never take identity from a routing id, which the peer chooses.
[[nodiscard]] Result<std::array<uint8_t, 32>> AuthenticatedSignKey(const zmq::message_t& msg);

}  // namespace strata::net
