// Pieces shared by the aggregator, the peer, `strata swarm status` and the tests: the client side
// of the ROUTER protocol (one DEALER socket with CURVE, every frame signed and every reply
// verified as the aggregator's), and small helpers.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <zmq.hpp>

#include "net/identity.h"
#include "net/wire.h"
#include "runtime/status.h"

namespace strata::net {

std::string HashHex(uint64_t h);                    // 16 hex digits
[[nodiscard]] Result<uint64_t> ParseHashHex(std::string_view s);

// "tcp://HOST:PORT" with PORT + offset. bound: the socket's last endpoint (its real port);
// requested: what was asked for (its host is kept when the last endpoint is 0.0.0.0).
[[nodiscard]] Result<std::string> EndpointWithPortOffset(const std::string& bound, const std::string& requested,
                                                         int offset);
// A zmq message that owns frame without copying it (zero-copy send; freed by libzmq when sent).
zmq::message_t FrameMessage(std::vector<uint8_t>&& frame);

// A frame received and checked: structurally valid, signed by the expected key, of the run.
struct Received {
  std::unique_ptr<zmq::message_t> msg;  // owns the bytes that view points into
  FrameView view;
};

class SwarmClient {
 public:
  // A DEALER socket, CURVE client of the server whose public identity is given, connected to
  // endpoint. Nothing is sent yet.
  [[nodiscard]] static Result<std::unique_ptr<SwarmClient>> Connect(zmq::context_t& ctx, const Identity& id,
                                                                    const std::string& endpoint,
                                                                    const PublicIdentity& server);
  ~SwarmClient();

  void set_run_id(uint64_t run_id) { run_id_ = run_id; }
  uint64_t run_id() const { return run_id_; }
  const Identity& identity() const { return id_; }

  // Fills run_id, peer_key and (when 0) the sequence, signs and sends. Unavailable when the
  // send queue is full (the server is unreachable).
  [[nodiscard]] Status Send(FrameHeader h, std::span<const uint8_t> payload);
  // Sends bytes as they are (tests: replays and forgeries).
  [[nodiscard]] Status SendRaw(std::span<const uint8_t> frame);
  [[nodiscard]] Status SendJson(MsgType type, const nlohmann::ordered_json& j, uint64_t base_version = 0);
  // The next verified frame, or Unavailable after timeout. Frames that fail a check are dropped
  // and counted (bad()).
  [[nodiscard]] Result<Received> Recv(std::chrono::milliseconds timeout);
  // Sends a JSON request and waits for a reply of type want (or a Refusal, returned as an error
  // whose message holds the reason), resending once a second up to timeout.
  [[nodiscard]] Result<nlohmann::ordered_json> Request(MsgType type, const nlohmann::ordered_json& j, MsgType want,
                                                       std::chrono::milliseconds timeout);
  uint64_t bad() const { return bad_; }
  uint64_t bytes_out() const { return bytes_out_; }
  uint64_t bytes_in() const { return bytes_in_; }
  uint64_t NextSequence() { return ++seq_; }
  // A fresh socket and connection (ZeroMQ's "lazy pirate" recovery): after a long silence the old
  // one may hold a queue bound for a connection that is gone. Requests in flight must be resent.
  [[nodiscard]] Status Reconnect();
  uint64_t reconnects() const { return reconnects_; }
  zmq::socket_t& socket() { return sock_; }

 private:
  SwarmClient(const Identity& id, const PublicIdentity& server) : id_(id), server_(server) {}
  [[nodiscard]] Status Open();
  zmq::context_t* ctx_ = nullptr;
  std::string endpoint_;
  uint64_t reconnects_ = 0;
  Identity id_;
  PublicIdentity server_;
  zmq::socket_t sock_;
  uint64_t run_id_ = 0;
  uint64_t seq_ = 0;
  uint64_t bad_ = 0, bytes_out_ = 0, bytes_in_ = 0;
};

// Parses a JSON payload (Welcome, Result, Refusal, StatusReply). Corruption naming the type.
[[nodiscard]] Result<nlohmann::ordered_json> ParseJsonPayload(const FrameView& f);

}  // namespace strata::net
