#include "net/zmq_security.h"

#include <zmq.h>

#include <cerrno>
#include <utility>
#include <vector>

namespace strata::net {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";  // fixed by RFC 27

std::string ZmqErr(const std::string& what, int e) { return what + ": " + zmq_strerror(e); }

Status SetOpt(zmq::socket_t& s, int option, const void* value, size_t size, const char* name) {
  if (zmq_setsockopt(s.handle(), option, value, size) != 0)
    return Status::InvalidArgument(ZmqErr(std::string("zmq_setsockopt ") + name, zmq_errno()));
  return Status::Ok();
}

std::string_view View(const zmq::message_t& m) { return {static_cast<const char*>(m.data()), m.size()}; }

}  // namespace

// ---- ZapHandler -------------------------------------------------------------------------------

ZapHandler::ZapHandler(zmq::context_t& ctx, Membership members)
    : zap_(ctx, zmq::socket_type::rep),
      stop_rx_(ctx, zmq::socket_type::pair),
      stop_tx_(ctx, zmq::socket_type::pair),
      members_(std::move(members)) {}

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& ctx, Membership members) {
  std::unique_ptr<ZapHandler> h;
  try {
    h.reset(new ZapHandler(ctx, std::move(members)));
    for (zmq::socket_t* s : {&h->zap_, &h->stop_rx_, &h->stop_tx_}) s->set(zmq::sockopt::linger, 0);
    // A name no other handler in this process has used: a closed socket's inproc name stays taken
    // until libzmq's reaper gets to it.
    static std::atomic<uint64_t> next_id{0};
    const std::string stop_ep = "inproc://strata.zap.stop." + std::to_string(next_id.fetch_add(1));
    h->stop_rx_.bind(stop_ep);
    h->stop_tx_.connect(stop_ep);
  } catch (const zmq::error_t& e) {
    return Status::Unavailable(ZmqErr("ZAP handler: set-up", e.num()));
  }
  try {
    h->zap_.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    if (e.num() == EADDRINUSE)
      return Status::InvalidArgument(std::string("ZAP handler: ") + kZapEndpoint +
                                     " is already bound on this context (one handler per context)");
    return Status::Unavailable(ZmqErr(std::string("ZAP handler: bind ") + kZapEndpoint, e.num()));
  }
  // The sockets move to the new thread; starting a thread is the full barrier libzmq asks for.
  h->thread_ = std::thread([p = h.get()] { p->Run(); });
  return h;
}

ZapHandler::~ZapHandler() {
  if (thread_.joinable()) {
    try {
      stop_tx_.send(zmq::message_t(), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      // The context is being terminated: the handler's poll fails with ETERM and it exits too.
    }
    thread_.join();
  }
}

void ZapHandler::Replace(Membership members) {
  std::lock_guard<std::mutex> lock(mu_);
  members_ = std::move(members);
}

std::vector<ZapHandler::Denial> ZapHandler::TakeDenials() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Denial> out;
  out.swap(denials_);
  return out;
}

void ZapHandler::Answer(const std::vector<zmq::message_t>& req, std::string* status, std::string* text,
                        std::string* user_id) {
  // Request (RFC 27): version, request id, domain, address, routing id, mechanism, credentials...
  *status = "400";
  user_id->clear();
  if (req.size() < 6) {
    *text = "malformed ZAP request: " + std::to_string(req.size()) + " frames";
    return;
  }
  if (View(req[0]) != "1.0") {
    *text = "unsupported ZAP version";
    return;
  }
  if (View(req[2]) != kZapDomain) {
    *text = "wrong domain (strata servers set ZMQ_ZAP_DOMAIN \"strata\")";
    return;
  }
  if (View(req[5]) != "CURVE") {
    *text = "mechanism " + std::string(View(req[5]).substr(0, 16)) + " refused: CURVE only";
    return;
  }
  if (req.size() != 7 || req[6].size() != 32) {
    *text = "malformed CURVE credentials";
    return;
  }
  const std::span<const uint8_t> key(static_cast<const uint8_t*>(req[6].data()), 32);
  std::lock_guard<std::mutex> lock(mu_);
  const Member* m = members_.FindByCurve(key);
  if (m == nullptr) {
    *text = "CURVE key " + KeyHex(key) + " is not on the membership list";
    return;
  }
  *status = "200";
  *text = "OK";
  *user_id = KeyHex(m->sign_pk);
}

void ZapHandler::Run() {
  try {
    zmq::pollitem_t items[] = {{zap_.handle(), 0, ZMQ_POLLIN, 0}, {stop_rx_.handle(), 0, ZMQ_POLLIN, 0}};
    for (;;) {
      zmq::poll(items, 2, std::chrono::milliseconds(-1));
      if (items[1].revents & ZMQ_POLLIN) {
        // Closing alone releases the endpoint later, on libzmq's reaper thread; unbinding releases it
        // now, so a new handler can start on this context as soon as the destructor returns.
        zap_.unbind(kZapEndpoint);
        return;
      }
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> req;
      constexpr size_t kMaxFrames = 16;  // a real request has 7; more is junk we drain but do not keep
      size_t frames = 0;
      for (bool more = true; more;) {
        zmq::message_t part;
        if (!zap_.recv(part, zmq::recv_flags::none)) break;
        more = part.more();
        if (++frames <= kMaxFrames) req.push_back(std::move(part));
      }
      std::string status, text, user_id;
      if (frames > kMaxFrames) {
        status = "400";
        text = "malformed ZAP request: too many frames";
      } else {
        Answer(req, &status, &text, &user_id);
      }
      (status == "200" ? admitted_ : denied_).fetch_add(1, std::memory_order_relaxed);
      if (status != "200") {
        std::lock_guard<std::mutex> lock(mu_);
        if (denials_.size() < kMaxDenialsKept)
          denials_.push_back({req.size() > 3 ? std::string(View(req[3]).substr(0, 64)) : std::string(),
                              req.size() > 5 ? std::string(View(req[5]).substr(0, 16)) : std::string(), text});
      }
      // Reply: version, request id (echoed), status code, status text, user id, metadata (none).
      const std::string request_id = req.size() >= 2 ? std::string(View(req[1])) : std::string();
      zap_.send(zmq::buffer(std::string_view("1.0")), zmq::send_flags::sndmore);
      zap_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
      zap_.send(zmq::buffer(status), zmq::send_flags::sndmore);
      zap_.send(zmq::buffer(text), zmq::send_flags::sndmore);
      zap_.send(zmq::buffer(user_id), zmq::send_flags::sndmore);
      zap_.send(zmq::message_t(), zmq::send_flags::none);
    }
  } catch (const zmq::error_t&) {
    // ETERM: the context is shutting down. Nothing is left to answer.
  }
}

// ---- socket configuration ---------------------------------------------------------------------

Status ConfigureCurveServer(zmq::socket_t& s, const Identity& id, const ZapHandler* zap) {
  if (zap == nullptr)
    return Status::InvalidArgument("no ZAP handler: refusing to run a CURVE server that would admit anyone");
  if (!zmq_has("curve")) return Status::Unavailable("this libzmq was built without CURVE");
  const int one = 1;
  STRATA_RETURN_IF_ERROR(SetOpt(s, ZMQ_CURVE_SERVER, &one, sizeof one, "ZMQ_CURVE_SERVER"));
  STRATA_RETURN_IF_ERROR(SetOpt(s, ZMQ_CURVE_SECRETKEY, id.curve_sk.data(), 32, "ZMQ_CURVE_SECRETKEY"));
  const std::string_view domain = kZapDomain;
  return SetOpt(s, ZMQ_ZAP_DOMAIN, domain.data(), domain.size(), "ZMQ_ZAP_DOMAIN");
}

Status ConfigureCurveClient(zmq::socket_t& s, const Identity& id, std::span<const uint8_t> server_curve_pk) {
  if (server_curve_pk.size() != 32)
    return Status::InvalidArgument("server CURVE public key has " + std::to_string(server_curve_pk.size()) +
                                   " bytes; expected 32");
  if (!zmq_has("curve")) return Status::Unavailable("this libzmq was built without CURVE");
  STRATA_RETURN_IF_ERROR(SetOpt(s, ZMQ_CURVE_SERVERKEY, server_curve_pk.data(), 32, "ZMQ_CURVE_SERVERKEY"));
  STRATA_RETURN_IF_ERROR(SetOpt(s, ZMQ_CURVE_PUBLICKEY, id.curve_pk.data(), 32, "ZMQ_CURVE_PUBLICKEY"));
  return SetOpt(s, ZMQ_CURVE_SECRETKEY, id.curve_sk.data(), 32, "ZMQ_CURVE_SECRETKEY");
}

void ConfigureLiveness(zmq::socket_t& s, const LivenessOptions& o) {
  // Out-of-range values are the caller's bug; libzmq would refuse them with EINVAL anyway.
  STRATA_CHECK(o.heartbeat_ivl_ms >= 0 && o.heartbeat_timeout_ms >= 0 && o.handshake_ivl_ms >= 0);
  STRATA_CHECK(o.heartbeat_ttl_ms >= 0 && o.heartbeat_ttl_ms <= 6553599);  // 16 bits of 0.1 s
  STRATA_CHECK(o.max_msg_bytes == -1 || (o.max_msg_bytes >= kMinMaxMsgBytes && o.max_msg_bytes <= INT64_MAX / 2));
  STRATA_CHECK(o.sndhwm >= 0 && o.rcvhwm >= 0 && o.linger_ms >= -1);
  auto set_int = [&](int option, int v) { STRATA_CHECK(zmq_setsockopt(s.handle(), option, &v, sizeof v) == 0); };
  // Heartbeats notice a peer that vanished without closing TCP (NAT timeout, power loss, kill -9)
  // within seconds instead of the kernel's hours, and keep NAT mappings alive between rounds.
  set_int(ZMQ_HEARTBEAT_IVL, o.heartbeat_ivl_ms);
  set_int(ZMQ_HEARTBEAT_TIMEOUT, o.heartbeat_timeout_ms);
  set_int(ZMQ_HEARTBEAT_TTL, o.heartbeat_ttl_ms);
  // A client that connects and never finishes CURVE would otherwise hold a session for 30 s.
  set_int(ZMQ_HANDSHAKE_IVL, o.handshake_ivl_ms);
  // The largest legitimate message is one chunk of a pseudo-gradient; a bigger length prefix is an
  // attack on our memory, and libzmq drops that connection before allocating it. libzmq applies the
  // limit to the frame on the wire, which CURVE makes longer than the payload.
  const int64_t max = o.max_msg_bytes < 0 ? -1 : o.max_msg_bytes + kCurveFrameOverheadBytes;
  STRATA_CHECK(zmq_setsockopt(s.handle(), ZMQ_MAXMSGSIZE, &max, sizeof max) == 0);
  // Bounded queues: back-pressure instead of unbounded memory when a peer is slow.
  set_int(ZMQ_SNDHWM, o.sndhwm);
  set_int(ZMQ_RCVHWM, o.rcvhwm);
  // Close must not wait on messages to a peer that may be gone; the protocol resends what matters.
  set_int(ZMQ_LINGER, o.linger_ms);
}

Result<std::array<uint8_t, 32>> AuthenticatedSignKey(const zmq::message_t& msg) {
  const char* uid = zmq_msg_gets(msg.handle(), "User-Id");
  if (uid == nullptr)
    return Status::NotFound("message has no User-Id: it did not arrive over a ZAP-admitted CURVE connection");
  Result<std::array<uint8_t, 32>> key = ParseKeyHex(uid);
  if (!key.ok()) return Status::Corruption("message User-Id is not an Ed25519 key: " + key.status().message());
  return key;
}

}  // namespace strata::net
