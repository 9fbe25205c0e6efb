#include "net/swarm_common.h"

#include <chrono>
#include <cinttypes>
#include <cstdio>

#include "net/zmq_security.h"

namespace strata::net {

using Json = nlohmann::ordered_json;

std::string HashHex(uint64_t h) {
  char b[17];
  std::snprintf(b, sizeof b, "%016" PRIx64, h);
  return b;
}

Result<uint64_t> ParseHashHex(std::string_view s) {
  if (s.size() != 16) return Status::Corruption("hash must be 16 hex digits (got \"" + std::string(s) + "\")");
  uint64_t v = 0;
  for (char c : s) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return Status::Corruption("hash has a character that is not lower-case hex: \"" + std::string(s) + "\"");
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

zmq::message_t FrameMessage(std::vector<uint8_t>&& frame) {
  auto* v = new std::vector<uint8_t>(std::move(frame));
  return zmq::message_t(
      v->data(), v->size(), [](void*, void* hint) { delete static_cast<std::vector<uint8_t>*>(hint); }, v);
}

namespace {
// Splits "tcp://HOST:PORT".
bool SplitTcp(const std::string& ep, std::string* host, std::string* port) {
  if (ep.rfind("tcp://", 0) != 0) return false;
  const size_t colon = ep.rfind(':');
  if (colon == std::string::npos || colon < 6) return false;
  *host = ep.substr(6, colon - 6);
  *port = ep.substr(colon + 1);
  return true;
}
}  // namespace

Result<std::string> EndpointWithPortOffset(const std::string& bound, const std::string& requested, int offset) {
  std::string host, port, rhost, rport;
  if (!SplitTcp(bound, &host, &port))
    return Status::InvalidArgument("endpoint " + bound + " is not tcp://HOST:PORT: give the PUB endpoint (--pub)");
  if (SplitTcp(requested, &rhost, &rport) && rhost != "*") host = rhost;
  int p = 0;
  try {
    p = std::stoi(port);
  } catch (...) {
    return Status::InvalidArgument("endpoint " + bound + " has no numeric port");
  }
  if (rport == "*" || rport == "0") return "tcp://" + host + ":*";  // an ephemeral port for the PUB too
  return "tcp://" + host + ":" + std::to_string(p + offset);
}

Result<std::unique_ptr<SwarmClient>> SwarmClient::Connect(zmq::context_t& ctx, const Identity& id,
                                                         const std::string& endpoint, const PublicIdentity& server) {
  std::unique_ptr<SwarmClient> c(new SwarmClient(id, server));
  // Sequences must grow across restarts of this peer too (the aggregator refuses a sequence it
  // has already passed), so they start at the wall clock in microseconds.
  c->seq_ = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
  c->ctx_ = &ctx;
  c->endpoint_ = endpoint;
  if (Status s = c->Open(); !s.ok()) return s;
  return c;
}

Status SwarmClient::Open() {
  try {
    sock_ = zmq::socket_t(*ctx_, zmq::socket_type::dealer);
    if (Status s = ConfigureCurveClient(sock_, id_, server_.curve_pk); !s.ok()) return s;
    LivenessOptions lo;
    lo.max_msg_bytes = static_cast<int64_t>(kMaxFrameBytes) + 4096;
    ConfigureLiveness(sock_, lo);
    // Reconnect every 100 ms without backing off: a peer that lost its link should be back as soon
    // as the link is (an aggregator restart, a cut connection), and an attempt costs little.
    sock_.set(zmq::sockopt::reconnect_ivl, 100);
    sock_.connect(endpoint_);
  } catch (const zmq::error_t& e) {
    return Status::InvalidArgument("cannot connect to " + endpoint_ + ": " + e.what());
  }
  return Status::Ok();
}

Status SwarmClient::Reconnect() {
  sock_.close();  // linger 0: what was queued for the old connection goes with it
  ++reconnects_;
  return Open();
}

SwarmClient::~SwarmClient() = default;

Status SwarmClient::Send(FrameHeader h, std::span<const uint8_t> payload) {
  h.run_id = run_id_;
  h.peer_key = id_.sign_pk;
  if (h.sequence == 0) h.sequence = NextSequence();
  Result<std::vector<uint8_t>> bytes = EncodeFrame(h, payload, id_.sign_sk);
  if (!bytes.ok()) return bytes.status();
  try {
    const size_t size = bytes->size();
    zmq::message_t m = FrameMessage(std::move(*bytes));
    if (!sock_.send(m, zmq::send_flags::dontwait))
      return Status::Unavailable("the send queue to the aggregator is full (is it reachable?)");
    bytes_out_ += size;
    return Status::Ok();
  } catch (const zmq::error_t& e) {
    return Status::IOError(std::string("send: ") + e.what());
  }
}

Status SwarmClient::SendRaw(std::span<const uint8_t> frame) {
  try {
    zmq::message_t m(frame.data(), frame.size());
    if (!sock_.send(m, zmq::send_flags::dontwait)) return Status::Unavailable("the send queue is full");
  } catch (const zmq::error_t& e) {
    return Status::IOError(std::string("send: ") + e.what());
  }
  bytes_out_ += frame.size();
  return Status::Ok();
}

Status SwarmClient::SendJson(MsgType type, const Json& j, uint64_t base_version) {
  FrameHeader h;
  h.type = type;
  h.codec = Codec::kJson;
  h.base_version = base_version;
  std::string text = j.dump();
  return Send(h, AsBytes(text));
}

Result<Received> SwarmClient::Recv(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Unavailable("no reply from the aggregator");
    zmq::pollitem_t items[] = {{static_cast<void*>(sock_), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 1, left);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return Status::IOError(std::string("poll: ") + e.what());
    }
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    auto msg = std::make_unique<zmq::message_t>();
    try {
      if (!sock_.recv(*msg, zmq::recv_flags::dontwait)) continue;
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return Status::IOError(std::string("receive: ") + e.what());
    }
    bytes_in_ += msg->size();
    Result<FrameView> f = DecodeFrame({static_cast<const uint8_t*>(msg->data()), msg->size()});
    if (!f.ok() || f->h.peer_key != server_.sign_pk || (run_id_ != 0 && f->h.run_id != run_id_) ||
        !VerifyFrame(*f).ok()) {
      ++bad_;
      continue;
    }
    return Received{std::move(msg), *f};
  }
}

Result<Json> ParseJsonPayload(const FrameView& f) {
  if (f.h.codec != Codec::kJson) return Status::Corruption(std::string(MsgTypeName(f.h.type)) + " carries no JSON");
  Json j = Json::parse(AsText(f.payload), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Status::Corruption(std::string(MsgTypeName(f.h.type)) + ": payload is not a JSON object");
  return j;
}

Result<Json> SwarmClient::Request(MsgType type, const Json& j, MsgType want, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (Status s = SendJson(type, j); !s.ok()) return s;
  auto last_send = std::chrono::steady_clock::now();
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      return Status::Unavailable("no " + std::string(MsgTypeName(want)) + " from the aggregator within " +
                                 std::to_string(timeout.count() / 1000.0).substr(0, 4) + " s");
    auto wait = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                         std::chrono::milliseconds(1000));
    Result<Received> r = Recv(wait);
    if (!r.ok()) {
      if (!r.status().IsUnavailable()) return r.status();
      if (std::chrono::steady_clock::now() - last_send >= std::chrono::seconds(1)) {
        if (Status s = SendJson(type, j); !s.ok() && !s.IsUnavailable()) return s;
        last_send = std::chrono::steady_clock::now();
      }
      continue;
    }
    const FrameHeader& h = r->view.h;
    if (h.type == MsgType::kRefusal) {
      Result<Json> rj = ParseJsonPayload(r->view);
      std::string reason = rj.ok() ? rj->value("reason", "?") + ": " + rj->value("detail", "") : "refused";
      return Status::InvalidArgument("the aggregator refused " + std::string(MsgTypeName(type)) + ": " + reason);
    }
    if (h.type != want) continue;  // a late reply to something earlier
    return ParseJsonPayload(r->view);
  }
}

}  // namespace strata::net
