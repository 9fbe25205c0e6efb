#include "net/aggregator.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "net/agg_state.h"
#include "net/identity.h"
#include "net/swarm_common.h"
#include "net/wire.h"
#include "optim/q8_book.h"
#include "net/zmq_security.h"
#include "runtime/clock.h"
#include "runtime/file_util.h"
#include "runtime/fmt.h"
#include "runtime/le.h"

namespace strata::net {

std::atomic<bool> g_aggregator_stop{false};
std::atomic<bool> g_aggregator_reload{false};

namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

std::string_view View(const zmq::message_t& m) { return {static_cast<const char*>(m.data()), m.size()}; }

double Now() { return MonotonicSeconds(); }
double WallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// What the aggregator knows of a member it has heard from.
struct PeerLive {
  std::string name;
  double last_seen = 0;   // steady clock, s
  Json lease;             // the last lease as sent (step, tokens_per_s, eta_s, version, ...)
  uint64_t lease_sequence = 0;  // of that lease: a lease at or below it is a replay
  uint64_t bytes_in = 0, bytes_out = 0;
  uint64_t refused = 0;
  std::string state = "active";  // active | suspect | evicted
};

// A contribution being received, chunk by chunk. One per peer: a newer sequence replaces it.
struct Partial {
  uint64_t sequence = 0, base_version = 0, tokens = 0;
  uint32_t inner_steps = 0, chunk_count = 0, received = 0;
  std::vector<uint8_t> have;  // per chunk
  optim::Q8Tensor q;
};

// A completed upload on its way through the applier (net/agg_state.h: Prepare on the worker,
// Commit on the loop), or a snapshot.
struct Job {
  enum class Kind { kPrepare, kSnapshot } kind = Kind::kPrepare;
  std::string rid;  // the routing id to answer
  Contribution c;
  Result<SubmitOutcome> outcome = Status::Internal("not run");
  Status snapshot;
};

// One thread that runs the slow part of applying a contribution (decode, checks, the outer step's
// dry run, the WAL's fdatasync: about a second at 100 M parameters) and snapshots, so the socket
// loop keeps answering leases, status requests and other peers' chunks meanwhile. One job at a
// time; the loop hands the next only after it has taken the last one back (and committed it), so
// the worker only ever reads the state while the loop reads it too.
class Applier {
 public:
  explicit Applier(AggState* st) : st_(st) {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    STRATA_CHECK(wake_fd_ >= 0);
    thread_ = std::thread([this] { Run(); });
  }
  ~Applier() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_one();
    thread_.join();  // a job in hand finishes first: a logged record is never half written
    ::close(wake_fd_);
  }
  int wake_fd() const { return wake_fd_; }
  bool busy() const { return busy_; }  // loop thread only
  void Start(Job job) {
    STRATA_CHECK(!busy_);
    busy_ = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_ = std::move(job);
    }
    cv_.notify_one();
  }
  // The finished job, if there is one (loop thread).
  std::optional<Job> Take() {
    uint64_t v;
    while (::read(wake_fd_, &v, sizeof v) == sizeof v) {
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (!out_) return std::nullopt;
    std::optional<Job> j = std::move(out_);
    out_.reset();
    busy_ = false;
    return j;
  }

 private:
  void Run() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return quit_ || in_.has_value(); });
        if (!in_) return;  // quit with nothing in hand
        job = std::move(*in_);
        in_.reset();
      }
      if (job.kind == Job::Kind::kPrepare) {
        job.outcome = st_->Prepare(job.c);
      } else {
        job.snapshot = st_->MaybeSnapshot();
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        out_ = std::move(job);
      }
      const uint64_t one = 1;
      (void)!::write(wake_fd_, &one, sizeof one);
    }
  }

  AggState* st_;
  int wake_fd_ = -1;
  bool busy_ = false;  // loop thread only
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Job> in_, out_;
  bool quit_ = false;
  std::thread thread_;
};

class Server {
 public:
  explicit Server(const AggregatorOptions& opt) : opt_(opt) {}
  Status Setup();
  Status Loop();

 private:
  void Handle(zmq::message_t& rid, zmq::message_t& frame);
  void OnContribChunk(zmq::message_t& rid, const PeerKey& who, const FrameView& f);
  void OnFetchUpdates(zmq::message_t& rid, const FrameView& f);
  void OnFetchTheta(zmq::message_t& rid, const FrameView& f);
  void OnStatus(zmq::message_t& rid);
  Json WelcomeJson() const;
  Json StatusJson() const;

  bool Send(zmq::message_t& rid, FrameHeader h, std::span<const uint8_t> payload, const PeerKey* who = nullptr);
  bool SendJson(zmq::message_t& rid, MsgType type, const Json& j, const PeerKey* who = nullptr,
                uint64_t base_version = 0, uint64_t sequence = 0);
  // Counts and answers a refusal. counted=false for answers that are not misbehaviour (behind).
  void Refuse(zmq::message_t& rid, const PeerKey* who, const std::string& reason, const std::string& detail,
              uint64_t sequence = 0, bool counted = true);
  void Announce();
  void CheckLeases();
  void Metric(Json j);
  // Counts a refusal under `reason` and logs it (metrics.jsonl), at the given level: zap, socket,
  // message or frame (the frame level also answers the peer: Refuse).
  void Count(const std::string& level, const std::string& reason, const std::string& detail,
             const PeerKey* who = nullptr, uint64_t sequence = 0);
  void OnJobDone(Job job);
  void StartNextJob();
  void DrainZapDenials();
  void OnMonitorEvent();
  Result<Membership> LoadMembers() const;
  void Reload();

  AggregatorOptions opt_;
  zmq::context_t ctx_{1};
  std::unique_ptr<ZapHandler> zap_;
  Identity id_;
  Membership members_;
  zmq::socket_t router_, pub_;
  std::unique_ptr<AggState> st_;
  std::string router_ep_, pub_ep_;
  std::map<PeerKey, PeerLive> live_;
  std::map<PeerKey, Partial> partial_;
  // Per peer, the upload refused last and why (its later chunks get the same answer, uncounted).
  std::map<PeerKey, std::pair<uint64_t, std::string>> refused_;
  // Per peer, the upload whose chunks were dropped when the peer was evicted: its later chunks are
  // refused by name (without this they would start a new partial that never completes, and the
  // peer, holding an ack for every chunk, would wait for a Result that never comes).
  std::map<PeerKey, uint64_t> dropped_;
  std::map<std::string, uint64_t> refusals_;
  std::map<std::string, uint64_t> socket_events_;  // handshake failures, dropped connections
  std::unique_ptr<Applier> applier_;
  std::deque<Job> queued_;                 // completed uploads waiting for the applier
  std::map<PeerKey, uint64_t> in_apply_;   // per peer, the sequence queued or with the applier
  bool snapshot_due_ = false;
  zmq::socket_t monitor_;                  // the ROUTER's socket events (handshake failures, drops)
  std::vector<uint64_t> tau_hist_;
  uint64_t bytes_in_ = 0, bytes_out_ = 0, frames_in_ = 0, applied_ = 0, dropped_sends_ = 0;
  uint64_t out_seq_ = 0;
  // A frozen copy of theta that FetchTheta serves, so a download sees one version throughout.
  std::vector<float> frozen_;
  uint64_t frozen_version_ = 0, frozen_hash_ = 0;
  bool frozen_set_ = false;
  FILE* metrics_ = nullptr;
  double t0_ = 0, last_announce_ = 0;
};

Result<Membership> Server::LoadMembers() const {
  std::array<uint8_t, 32> authority{};
  bool have_authority = false;
  if (!opt_.authority.empty()) {
    Result<PublicIdentity> a = LoadPublicIdentity(opt_.authority);
    if (!a.ok()) return a.status();
    authority = a->sign_pk;
    have_authority = true;
  }
  Result<Membership> m = LoadMembership(opt_.members, have_authority ? &authority : nullptr);
  if (!m.ok()) return m.status();
  if (m->run_id && *m->run_id != st_->config().run_id)
    return Status::InvalidArgument(opt_.members + " is the list of run " + std::to_string(*m->run_id) +
                                   ", not of run " + std::to_string(st_->config().run_id));
  return m;
}

void Server::Reload() {
  Result<Membership> m = LoadMembers();
  if (!m.ok()) {
    std::fprintf(stderr, "aggregator: keeping the old membership list: %s\n", m.status().ToString().c_str());
    Metric({{"event", "reload_failed"}, {"error", m.status().ToString()}});
    return;
  }
  members_ = *m;
  zap_->Replace(std::move(*m));
  Metric({{"event", "reload"}, {"members", members_.members.size()}});
  if (!opt_.quiet) std::fprintf(stderr, "strata swarm serve: membership list reloaded (%zu members)\n", members_.members.size());
}

Status Server::Setup() {
  Result<Identity> id = LoadIdentity(opt_.key);
  if (!id.ok()) return id.status();
  id_ = std::move(*id);
  Result<std::unique_ptr<AggState>> st = AggState::Open(opt_.dir, opt_.run, opt_.threads);
  if (!st.ok()) return st.status();
  st_ = std::move(*st);
  if (st_->replay_refused() > 0)
    std::fprintf(stderr, "aggregator: the replay of %s/wal.log refused %llu record(s), as they would be now; last: %s\n",
                 opt_.dir.c_str(), static_cast<unsigned long long>(st_->replay_refused()),
                 st_->replay_refusal().c_str());
  applier_ = std::make_unique<Applier>(st_.get());
  Result<Membership> m = LoadMembers();
  if (!m.ok()) return m.status();
  members_ = std::move(*m);
  tau_hist_.assign(st_->config().outer.tau_max + 2, 0);

  Result<std::unique_ptr<ZapHandler>> zap = ZapHandler::Start(ctx_, members_);
  if (!zap.ok()) return zap.status();
  zap_ = std::move(*zap);
  try {
    router_ = zmq::socket_t(ctx_, zmq::socket_type::router);
    pub_ = zmq::socket_t(ctx_, zmq::socket_type::pub);
    for (zmq::socket_t* s : {&router_, &pub_}) {
      if (Status c = ConfigureCurveServer(*s, id_, zap_.get()); !c.ok()) return c;
      LivenessOptions lo;
      lo.max_msg_bytes = static_cast<int64_t>(kMaxFrameBytes) + 4096;
      lo.sndhwm = 256;
      lo.rcvhwm = 256;
      ConfigureLiveness(*s, lo);
    }
    // A reply to a peer that has gone is an error we see, not a silent drop.
    router_.set(zmq::sockopt::router_mandatory, 1);
    // The connection-level refusals that never reach the ZAP handler or the application (a NULL
    // or PLAIN client, a broken handshake, a message above ZMQ_MAXMSGSIZE) show only as socket
    // events: watched so that they are counted and logged too.
    const std::string mon_ep = "inproc://strata-router-monitor";
    if (zmq_socket_monitor(router_.handle(), mon_ep.c_str(),
                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) != 0)
      return Status::IOError(std::string("aggregator: cannot monitor the ROUTER socket: ") + zmq_strerror(zmq_errno()));
    monitor_ = zmq::socket_t(ctx_, zmq::socket_type::pair);
    monitor_.connect(mon_ep);
    router_.bind(opt_.bind);
    router_ep_ = router_.get(zmq::sockopt::last_endpoint);
    std::string pub_bind = opt_.pub_bind;
    if (pub_bind.empty()) {
      Result<std::string> p = EndpointWithPortOffset(router_ep_, opt_.bind, 1);
      if (!p.ok()) return p.status();
      pub_bind = *p;
    }
    pub_.bind(pub_bind);
    pub_ep_ = pub_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::IOError(std::string("aggregator: cannot bind ") + opt_.bind + ": " + e.what());
  }
  metrics_ = std::fopen((opt_.dir + "/metrics.jsonl").c_str(), "a");
  if (!metrics_) return Status::IOError("cannot open " + opt_.dir + "/metrics.jsonl for appending");
  if (!opt_.ready_file.empty()) {
    Json r = {{"router", router_ep_}, {"pub", pub_ep_}, {"version", st_->version()},
              {"replayed", st_->replayed()}, {"pid", static_cast<int64_t>(::getpid())}};
    if (Status s = WriteFileAtomic(opt_.ready_file, r.dump()); !s.ok()) return s;
  }
  if (!opt_.quiet) {
    std::fprintf(stderr,
                 "strata swarm serve: run %llu, %s, %llu parameters\n"
                 "  state %s: version %llu (%llu log records replayed)\n"
                 "  peers connect to %s (announcements on %s); %zu members%s\n",
                 static_cast<unsigned long long>(st_->config().run_id), st_->config().model.ToString().c_str(),
                 static_cast<unsigned long long>(st_->config().NumParams()), opt_.dir.c_str(),
                 static_cast<unsigned long long>(st_->version()),
                 static_cast<unsigned long long>(st_->replayed()), router_ep_.c_str(), pub_ep_.c_str(),
                 members_.members.size(), members_.signed_by_authority ? " (signed list)" : "");
  }
  Metric({{"event", "start"}, {"version", st_->version()}, {"replayed", st_->replayed()},
          {"replay_refused", st_->replay_refused()}, {"replay_refusal", st_->replay_refusal()}});
  return Status::Ok();
}

void Server::Metric(Json j) {
  Json line = {{"t", WallNow()}};
  line.update(j);
  std::fprintf(metrics_, "%s\n", line.dump().c_str());
  std::fflush(metrics_);
}

bool Server::Send(zmq::message_t& rid, FrameHeader h, std::span<const uint8_t> payload, const PeerKey* who) {
  h.run_id = st_->config().run_id;
  h.peer_key = id_.sign_pk;
  h.sequence = h.sequence ? h.sequence : ++out_seq_;
  Result<std::vector<uint8_t>> bytes = EncodeFrame(h, payload, id_.sign_sk);
  if (!bytes.ok()) {
    std::fprintf(stderr, "aggregator: cannot encode a %s frame: %s\n", std::string(MsgTypeName(h.type)).c_str(),
                 bytes.status().ToString().c_str());
    std::abort();  // our own frames always encode: a failure is a bug
  }
  const size_t size = bytes->size();
  try {
    zmq::message_t r(rid.data(), rid.size());
    if (!router_.send(r, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
      ++dropped_sends_;
      return false;
    }
    zmq::message_t m = FrameMessage(std::move(*bytes));  // no copy of a 1 MB chunk
    if (!router_.send(m, zmq::send_flags::dontwait)) {
      ++dropped_sends_;
      return false;
    }
  } catch (const zmq::error_t&) {  // EHOSTUNREACH: the peer is gone (router_mandatory)
    ++dropped_sends_;
    return false;
  }
  bytes_out_ += size;
  if (who) live_[*who].bytes_out += size;
  return true;
}

bool Server::SendJson(zmq::message_t& rid, MsgType type, const Json& j, const PeerKey* who, uint64_t base_version,
                      uint64_t sequence) {
  FrameHeader h;
  h.type = type;
  h.codec = Codec::kJson;
  h.base_version = base_version;
  h.sequence = sequence;
  std::string text = j.dump();
  return Send(rid, h, AsBytes(text), who);
}

void Server::Refuse(zmq::message_t& rid, const PeerKey* who, const std::string& reason, const std::string& detail,
                    uint64_t sequence, bool counted) {
  if (counted) Count("frame", reason, detail, who, sequence);
  Json j = {{"reason", reason}, {"detail", detail}, {"version", st_->version()},
            {"oldest_update", st_->oldest_update()}, {"sequence", sequence}};
  SendJson(rid, MsgType::kRefusal, j, who, st_->version(), 0);
}

void Server::Count(const std::string& level, const std::string& reason, const std::string& detail, const PeerKey* who,
                   uint64_t sequence) {
  ++refusals_[reason];
  Json m = {{"event", "refused"}, {"level", level}, {"reason", reason}, {"detail", detail}};
  if (sequence) m["sequence"] = sequence;
  if (who) {
    ++live_[*who].refused;
    m["peer"] = live_[*who].name;
  }
  Metric(m);
}

void Server::DrainZapDenials() {
  for (ZapHandler::Denial& d : zap_->TakeDenials())
    Metric({{"event", "refused"}, {"level", "zap"}, {"reason", "zap_denied"}, {"address", d.address},
            {"mechanism", d.mechanism}, {"detail", d.reason}});
}

// One event of the ROUTER's monitor: two parts, (u16 event, u32 value) and the endpoint.
void Server::OnMonitorEvent() {
  for (;;) {
    zmq::message_t ev, addr;
    if (!monitor_.recv(ev, zmq::recv_flags::dontwait)) return;
    if (ev.more()) (void)monitor_.recv(addr, zmq::recv_flags::none);
    if (ev.size() < 6) continue;
    const auto* p = static_cast<const uint8_t*>(ev.data());
    const uint16_t event = static_cast<uint16_t>(p[0] | p[1] << 8);
    const uint32_t value = GetU32(p + 2);
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      ++socket_events_["handshakes"];
      continue;
    }
    std::string reason, detail;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
      switch (value) {
        case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
          reason = "handshake_mechanism";
          detail = "the client's security mechanism is not CURVE (NULL or PLAIN)";
          break;
        case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
          reason = "handshake_crypto";
          detail = "the CURVE handshake failed its cryptographic checks (wrong server key?)";
          break;
        default:
          reason = "handshake_protocol";
          detail = "ZMTP protocol error 0x" + Fmt("%x", value) + " in the handshake";
      }
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
      reason = "handshake_failed";
      detail = std::string("the handshake failed: ") + zmq_strerror(static_cast<int>(value));
    } else if (event == ZMQ_EVENT_DISCONNECTED) {
      // libzmq 4.3 gives no reason: the peer closed, a heartbeat timed out, or it sent a message
      // above ZMQ_MAXMSGSIZE (which closes the connection before the message reaches us).
      ++socket_events_["disconnected"];
      Metric({{"event", "disconnected"}, {"level", "socket"}, {"address", std::string(View(addr))}});
      continue;
    } else {
      continue;
    }
    ++socket_events_[reason];
    Count("socket", reason, detail + " (" + std::string(View(addr)) + ")");
  }
}

Json Server::WelcomeJson() const {
  Json j = Json::parse(SwarmRunConfigToJson(st_->config()));
  return Json{{"run", j},
              {"version", st_->version()},
              {"theta_hash", HashHex(st_->theta_hash())},
              {"oldest_update", st_->oldest_update()},
              {"pub", pub_ep_},
              {"aggregator", id_.name}};
}

void Server::Handle(zmq::message_t& rid, zmq::message_t& frame) {
  ++frames_in_;
  bytes_in_ += frame.size();
  Result<std::array<uint8_t, 32>> auth = AuthenticatedSignKey(frame);
  if (!auth.ok()) {  // cannot happen behind CURVE + ZAP; never serve an unauthenticated message
    Refuse(rid, nullptr, "no_identity", auth.status().message());
    return;
  }
  const PeerKey who = *auth;
  const Member* member = members_.FindBySign(who);
  if (!member) {
    Refuse(rid, nullptr, "not_member", "key " + KeyHex(who) + " is not on the list");
    return;
  }
  PeerLive& pl = live_[who];
  if (pl.name.empty()) pl.name = member->name;
  pl.last_seen = Now();
  pl.bytes_in += frame.size();
  if (pl.state != "active") {
    Metric({{"event", "peer_back"}, {"peer", pl.name}, {"was", pl.state}});
    pl.state = "active";
  }
  Result<FrameView> f = DecodeFrame({static_cast<const uint8_t*>(frame.data()), frame.size()});
  if (!f.ok()) {
    Refuse(rid, &who, "malformed", f.status().message());
    return;
  }
  const FrameHeader& h = f->h;
  // A Hello may come before the peer knows the run id (it learns it from the Welcome).
  if (h.run_id != st_->config().run_id && !(h.type == MsgType::kHello && h.run_id == 0)) {
    Refuse(rid, &who, "wrong_run", "frame of run " + std::to_string(h.run_id), h.sequence);
    return;
  }
  if (h.peer_key != who) {
    Refuse(rid, &who, "key_mismatch",
           "frame signed as " + KeyHex(h.peer_key) + " arrived on the connection of " + member->name, h.sequence);
    return;
  }
  if (Status s = VerifyFrame(*f); !s.ok()) {
    Refuse(rid, &who, "bad_signature", s.message(), h.sequence);
    return;
  }
  switch (h.type) {
    case MsgType::kHello:
      SendJson(rid, MsgType::kWelcome, WelcomeJson(), &who, st_->version());
      Metric({{"event", "hello"}, {"peer", pl.name}});
      break;
    case MsgType::kContribChunk: OnContribChunk(rid, who, *f); break;
    case MsgType::kFetchUpdates: OnFetchUpdates(rid, *f); break;
    case MsgType::kFetchTheta: OnFetchTheta(rid, *f); break;
    case MsgType::kLease: {
      Json j = Json::parse(AsText(f->payload), nullptr, false);
      if (j.is_discarded() || !j.is_object()) {
        Refuse(rid, &who, "malformed", "lease is not a JSON object", h.sequence);
        break;
      }
      if (h.sequence <= pl.lease_sequence) {
        Refuse(rid, &who, "replay",
               "lease sequence " + std::to_string(h.sequence) + " is not after " + std::to_string(pl.lease_sequence),
               h.sequence);
        break;
      }
      pl.lease_sequence = h.sequence;
      pl.lease = std::move(j);
      break;
    }
    case MsgType::kStatusRequest: OnStatus(rid); break;
    default:
      Refuse(rid, &who, "unexpected_type", std::string(MsgTypeName(h.type)) + " is not a request", h.sequence);
  }
}

void Server::OnContribChunk(zmq::message_t& rid, const PeerKey& who, const FrameView& f) {
  const FrameHeader& h = f.h;
  const uint64_t n = st_->theta().size();
  const ChunkPlan plan = ChunkPlan::Of(n, st_->config().chunk_elems);
  // tau: the contribution's staleness when known (the version minus its base).
  const uint64_t tau = h.base_version <= st_->version() ? st_->version() - h.base_version : 0;
  auto result = [&](const std::string& verdict, const std::string& reason, const SubmitOutcome* o) {
    Json j = {{"verdict", verdict}, {"sequence", h.sequence}, {"version", st_->version()},
              {"theta_hash", HashHex(st_->theta_hash())}, {"tau", tau}};
    if (!reason.empty()) j["reason"] = reason;
    if (o) j.update(Json{{"tau", o->tau}, {"upper", o->upper}, {"lower", o->lower}, {"g_rms", o->g_rms}});
    SendJson(rid, MsgType::kResult, j, &who, st_->version(), h.sequence);
  };
  const PeerRecord* rec = nullptr;
  if (auto it = st_->peers().find(who); it != st_->peers().end()) rec = &it->second;
  if (rec && h.sequence <= rec->last_sequence) {
    // A replay, or a retransmission after a lost Result: nothing changes either way.
    Count("frame", "replay", "sequence " + std::to_string(h.sequence) + " was already applied", &who, h.sequence);
    result("duplicate", "sequence " + std::to_string(h.sequence) + " was already applied", nullptr);
    return;
  }
  auto ack_chunk = [&] {
    FrameHeader ack;
    ack.type = MsgType::kChunkAck;
    ack.chunk_index = h.chunk_index;
    ack.chunk_count = plan.count;
    ack.base_version = st_->version();
    ack.sequence = h.sequence;  // echoes the upload it acknowledges
    Send(rid, ack, {}, &who);   // sequence: ours; the peer matches acks by chunk index
  };
  if (auto it = in_apply_.find(who); it != in_apply_.end() && it->second == h.sequence) {
    // A resent chunk of an upload already complete and being applied: acknowledged again, and
    // its Result follows when the applier is done.
    if (plan.Matches(h)) ack_chunk();
    return;
  }
  auto refuse_result = [&](const std::string& reason, const std::string& detail) {
    if (reason == "too_stale") tau_hist_.back()++;  // the histogram's last bin: beyond tau_max
    Count("frame", reason, detail, &who, h.sequence);
    partial_.erase(who);
    refused_[who] = {h.sequence, reason + ": " + detail};
    result("refused", reason + ": " + detail, nullptr);
  };
  // A later chunk of an upload already refused: the same answer again (the first may have been
  // lost), not counted again.
  if (auto it = refused_.find(who); it != refused_.end() && it->second.first == h.sequence)
    return result("refused", it->second.second, nullptr);
  if (h.codec != Codec::kQ8Signed) return refuse_result("wrong_codec", std::string(CodecName(h.codec)));
  if (h.total_elements != n)
    return refuse_result("wrong_shape", std::to_string(h.total_elements) + " elements, the model has " +
                                            std::to_string(n));
  if (!plan.Matches(h))
    return refuse_result("wrong_shape", "chunk " + std::to_string(h.chunk_index) + " of " +
                                            std::to_string(h.chunk_count) + " at " + std::to_string(h.element_offset) +
                                            " does not match chunks of " + std::to_string(plan.chunk));
  const uint64_t off = h.element_offset;
  // Too stale already: say so at the first chunk, not after the whole upload (the final check is
  // Submit's, since the version may move while the rest arrives).
  const uint64_t version = st_->version(), tau_max = st_->config().outer.tau_max;
  if (h.base_version > version || version - h.base_version > tau_max) {
    const bool future = h.base_version > version;
    return refuse_result(future ? "from_future" : "too_stale",
                         "base version " + std::to_string(h.base_version) + ", global " + std::to_string(version) +
                             ", tau_max " + std::to_string(tau_max));
  }
  if (auto it = dropped_.find(who); it != dropped_.end() && it->second == h.sequence) {
    dropped_.erase(it);
    return refuse_result("evicted_mid_upload",
                         "the member was evicted (no frame for 6 lease periods) while this upload was in progress, "
                         "and its chunks were dropped: send it again");
  }
  Partial& p = partial_[who];
  if (p.sequence != h.sequence) {
    if (p.sequence > h.sequence && p.received > 0) return refuse_result("replay", "older than the upload in progress");
    p = Partial{};
    p.sequence = h.sequence;
    p.base_version = h.base_version;
    p.inner_steps = h.inner_steps;
    p.tokens = h.tokens;
    p.chunk_count = plan.count;
    p.have.assign(plan.count, 0);
    p.q.n = n;
    p.q.codes.assign(n, 0);
    p.q.absmax.assign(q8::NumBlocks(static_cast<int64_t>(n)), 0.0f);
  } else if (p.base_version != h.base_version || p.inner_steps != h.inner_steps || p.tokens != h.tokens) {
    return refuse_result("inconsistent_chunks", "chunks of one contribution disagree on base version or steps");
  }
  if (!p.have[h.chunk_index]) {
    const uint64_t nb_off = off / q8::kBlock;
    const uint64_t nb = q8::NumBlocks(static_cast<int64_t>(h.element_count));
    Status s = UnpackQ8(f.payload, h.element_count, std::span<uint8_t>(p.q.codes).subspan(off, h.element_count),
                        std::span<float>(p.q.absmax).subspan(nb_off, nb));
    if (!s.ok()) return refuse_result("non_finite", s.message());
    p.have[h.chunk_index] = 1;
    ++p.received;
  }
  ack_chunk();
  if (p.received < p.chunk_count) return;

  // Complete: to the applier (one upload per peer at a time; an honest peer waits for its Result).
  if (in_apply_.count(who)) {
    Count("frame", "busy", "an earlier upload of this member is still being applied", &who, h.sequence);
    partial_.erase(who);
    return result("refused", "busy: an earlier upload of this member is still being applied", nullptr);
  }
  Job job;
  job.rid.assign(static_cast<const char*>(rid.data()), rid.size());
  job.c.peer = who;
  job.c.sequence = p.sequence;
  job.c.base_version = p.base_version;
  job.c.inner_steps = p.inner_steps;
  job.c.tokens = p.tokens;
  job.c.delta = std::move(p.q);
  partial_.erase(who);
  in_apply_[who] = job.c.sequence;
  queued_.push_back(std::move(job));
  StartNextJob();
}

void Server::StartNextJob() {
  if (applier_->busy()) return;
  if (snapshot_due_) {
    snapshot_due_ = false;
    Job j;
    j.kind = Job::Kind::kSnapshot;
    applier_->Start(std::move(j));
    return;
  }
  if (queued_.empty()) return;
  Job j = std::move(queued_.front());
  queued_.pop_front();
  applier_->Start(std::move(j));
}

void Server::OnJobDone(Job job) {
  if (job.kind == Job::Kind::kSnapshot) {
    if (!job.snapshot.ok()) {
      std::fprintf(stderr, "aggregator: snapshot failed (%s); the write-ahead log keeps the state\n",
                   job.snapshot.ToString().c_str());
      Metric({{"event", "snapshot_failed"}, {"error", job.snapshot.ToString()}});
    }
    return;
  }
  const Contribution& c = job.c;
  const PeerKey who = c.peer;
  in_apply_.erase(who);
  if (!job.outcome.ok()) {
    std::fprintf(stderr, "aggregator: %s\n", job.outcome.status().ToString().c_str());
    g_aggregator_stop = true;  // the durable state cannot advance: stop, a restart resumes from disk
    return;
  }
  SubmitOutcome o = *job.outcome;
  if (o.verdict == SubmitVerdict::kApplied || o.verdict == SubmitVerdict::kPending) {
    o = st_->Commit();  // logged by the applier: it applies
    snapshot_due_ = o.verdict == SubmitVerdict::kApplied;  // the applier checks the period
  }
  const char* verdict = o.verdict == SubmitVerdict::kApplied   ? "applied"
                        : o.verdict == SubmitVerdict::kPending ? "pending"
                        : o.verdict == SubmitVerdict::kDuplicate ? "duplicate"
                                                                 : "refused";
  if (o.verdict == SubmitVerdict::kRefused) {
    ++refusals_[o.code];
    ++live_[who].refused;
  } else if (o.verdict != SubmitVerdict::kDuplicate) {
    tau_hist_[std::min<size_t>(o.tau, tau_hist_.size() - 1)]++;
  }
  Metric({{"event", "contribution"}, {"peer", live_[who].name}, {"sequence", c.sequence}, {"verdict", verdict},
          {"base_version", c.base_version}, {"tau", o.tau}, {"inner_steps", c.inner_steps}, {"tokens", c.tokens},
          {"version", o.version}, {"upper", o.upper}, {"lower", o.lower}, {"g_rms", o.g_rms},
          {"theta_rms", o.theta_rms}, {"reason", o.reason}});
  zmq::message_t rid(job.rid.data(), job.rid.size());
  Json j = {{"verdict", verdict}, {"sequence", c.sequence}, {"version", st_->version()},
            {"theta_hash", HashHex(st_->theta_hash())}, {"tau", o.tau}, {"upper", o.upper}, {"lower", o.lower},
            {"g_rms", o.g_rms}, {"theta_rms", o.theta_rms}};
  if (!o.reason.empty()) j["reason"] = o.reason;
  SendJson(rid, MsgType::kResult, j, &who, st_->version(), c.sequence);
  if (o.verdict == SubmitVerdict::kApplied) {
    ++applied_;
    Announce();
  }
}

void Server::OnFetchUpdates(zmq::message_t& rid, const FrameView& f) {
  const uint64_t v = f.h.base_version;
  const PeerKey who = f.h.peer_key;
  if (v >= st_->version()) {
    Refuse(rid, &who, "up_to_date", "no update after version " + std::to_string(v), 0, false);
    return;
  }
  const optim::Q8Tensor* q = st_->Update(v);
  if (!q) {
    Refuse(rid, &who, "behind",
           "update " + std::to_string(v) + " is no longer kept (oldest " + std::to_string(st_->oldest_update()) +
               "): fetch theta",
           0, false);
    return;
  }
  const ChunkPlan plan = ChunkPlan::Of(q->n, st_->config().chunk_elems);
  if (f.h.chunk_index >= plan.count) {
    Refuse(rid, &who, "wrong_shape", "update chunk " + std::to_string(f.h.chunk_index) + " of " +
                                         std::to_string(plan.count));
    return;
  }
  const uint64_t off = plan.Offset(f.h.chunk_index), cnt = plan.Elements(f.h.chunk_index);
  std::vector<uint8_t> payload;
  payload.reserve(Q8PayloadBytes(cnt));
  PackQ8(std::span<const uint8_t>(q->codes).subspan(off, cnt),
         std::span<const float>(q->absmax).subspan(off / q8::kBlock, q8::NumBlocks(static_cast<int64_t>(cnt))),
         payload);
  FrameHeader h;
  h.type = MsgType::kUpdateChunk;
  h.codec = Codec::kQ8Signed;
  h.base_version = v;
  plan.Describe(f.h.chunk_index, h);
  h.content_hash = st_->UpdateHash(v);
  Send(rid, h, payload, &who);
}

void Server::OnFetchTheta(zmq::message_t& rid, const FrameView& f) {
  const PeerKey who = f.h.peer_key;
  // Refreshed only when peers could no longer catch up from it, so a download in progress keeps
  // seeing one version (a refresh mid-download changes base_version, and the peer starts again).
  if (!frozen_set_ || frozen_version_ < st_->oldest_update() ||
      (f.h.chunk_index == 0 && frozen_version_ + st_->config().history / 2 < st_->version())) {
    frozen_.assign(st_->theta().begin(), st_->theta().end());
    frozen_version_ = st_->version();
    frozen_hash_ = st_->theta_hash();
    frozen_set_ = true;
  }
  const ChunkPlan plan = ChunkPlan::Of(frozen_.size(), st_->config().chunk_elems);
  if (f.h.chunk_index >= plan.count) {
    Refuse(rid, &who, "wrong_shape", "theta chunk " + std::to_string(f.h.chunk_index) + " of " +
                                         std::to_string(plan.count));
    return;
  }
  const uint64_t off = plan.Offset(f.h.chunk_index), cnt = plan.Elements(f.h.chunk_index);
  std::vector<uint8_t> payload(4 * cnt);
  for (uint64_t i = 0; i < cnt; ++i) PutF32(payload.data() + 4 * i, frozen_[off + i]);
  FrameHeader h;
  h.type = MsgType::kThetaChunk;
  h.codec = Codec::kFp32;
  h.base_version = frozen_version_;
  plan.Describe(f.h.chunk_index, h);
  h.content_hash = frozen_hash_;
  Send(rid, h, payload, &who);
}

Json Server::StatusJson() const {
  Json peers = Json::array();
  const double now = Now();
  for (const auto& [key, pl] : live_) {
    Json p = {{"name", pl.name}, {"key", KeyHex(key)}, {"state", pl.state},
              {"seen_s_ago", std::round((now - pl.last_seen) * 10) / 10}, {"bytes_in", pl.bytes_in},
              {"bytes_out", pl.bytes_out}, {"refused", pl.refused}, {"lease", pl.lease}};
    if (auto it = st_->peers().find(key); it != st_->peers().end()) {
      p["contributions"] = it->second.contributions;
      p["tokens"] = it->second.tokens;
    } else {
      p["contributions"] = 0;
      p["tokens"] = 0;
    }
    peers.push_back(p);
  }
  return Json{{"run_id", st_->config().run_id},
              {"version", st_->version()},
              {"theta_hash", HashHex(st_->theta_hash())},
              {"accepted", st_->accepted()},
              {"applied_since_start", applied_},
              {"uptime_s", std::round((now - t0_) * 10) / 10},
              {"peers", peers},
              {"staleness_histogram", tau_hist_},
              {"bytes_in", bytes_in_},
              {"bytes_out", bytes_out_},
              {"frames_in", frames_in_},
              {"dropped_sends", dropped_sends_},
              {"refusals", refusals_},
              {"socket_events", socket_events_},
              {"applying", in_apply_.size()},
              {"zap_admitted", zap_->admitted()},
              {"zap_denied", zap_->denied()},
              {"members", members_.members.size()}};
}

void Server::OnStatus(zmq::message_t& rid) { SendJson(rid, MsgType::kStatusReply, StatusJson(), nullptr, st_->version()); }

void Server::Announce() {
  FrameHeader h;
  h.type = MsgType::kAnnounce;
  h.base_version = st_->version();
  h.content_hash = st_->theta_hash();
  h.run_id = st_->config().run_id;
  h.peer_key = id_.sign_pk;
  h.sequence = ++out_seq_;
  Result<std::vector<uint8_t>> bytes = EncodeFrame(h, {}, id_.sign_sk);
  if (bytes.ok()) {
    zmq::message_t m(bytes->data(), bytes->size());
    (void)pub_.send(m, zmq::send_flags::dontwait);  // PUB drops for slow subscribers by design
  }
  last_announce_ = Now();
}

void Server::CheckLeases() {
  const double now = Now(), lease = st_->config().lease_ms / 1000.0;
  for (auto& [key, pl] : live_) {
    const double missed = (now - pl.last_seen) / lease;
    const char* next = missed >= 6 ? "evicted" : missed >= 3 ? "suspect" : "active";
    if (pl.state != next) {
      if (std::string(next) == "evicted") {  // its half-sent upload goes
        if (auto it = partial_.find(key); it != partial_.end()) {
          if (it->second.received > 0) dropped_[key] = it->second.sequence;
          partial_.erase(it);
        }
      }
      Metric({{"event", next}, {"peer", pl.name}, {"missed_leases", std::floor(missed)}});
      pl.state = next;
    }
  }
}

Status Server::Loop() {
  t0_ = Now();
  Announce();
  double last_check = Now();
  while (!g_aggregator_stop.load()) {
    zmq::pollitem_t items[] = {{static_cast<void*>(router_), 0, ZMQ_POLLIN, 0},
                               {static_cast<void*>(monitor_), 0, ZMQ_POLLIN, 0},
                               {nullptr, applier_->wake_fd(), ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 3, std::chrono::milliseconds(100));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      return Status::IOError(std::string("aggregator: poll: ") + e.what());
    }
    if (items[2].revents & ZMQ_POLLIN) {
      if (std::optional<Job> done = applier_->Take()) OnJobDone(std::move(*done));
      StartNextJob();
    }
    if (items[1].revents & ZMQ_POLLIN) OnMonitorEvent();
    if (items[0].revents & ZMQ_POLLIN) {
      for (int burst = 0; burst < 64; ++burst) {
        std::vector<zmq::message_t> parts;
        zmq::recv_result_t r;
        try {
          r = zmq::recv_multipart(router_, std::back_inserter(parts), zmq::recv_flags::dontwait);
        } catch (const zmq::error_t& e) {
          if (e.num() == EINTR) break;
          return Status::IOError(std::string("aggregator: receive: ") + e.what());
        }
        if (!r) break;
        if (parts.size() != 2) {
          // Routing id + one frame is all a peer may send; the sender is unknown here (no frame to
          // take its identity from), so this is counted and logged but not answered.
          ++frames_in_;
          Count("message", "malformed", "a message of " + std::to_string(parts.size()) + " parts (want 2)");
          continue;
        }
        Handle(parts[0], parts[1]);
        if (g_aggregator_stop.load()) break;
      }
    }
    DrainZapDenials();
    if (g_aggregator_reload.exchange(false)) Reload();
    const double now = Now();
    if (now - last_announce_ >= 1.0) Announce();
    if (now - last_check >= 0.25) {
      CheckLeases();
      last_check = now;
    }
    if (opt_.stop_at_version && st_->version() >= opt_.stop_at_version) break;
    if (opt_.max_seconds > 0 && now - t0_ >= opt_.max_seconds) break;
  }
  applier_.reset();  // a job in hand finishes (a logged record is replayed by the next start)
  Json s = StatusJson();
  Metric({{"event", "stop"}, {"version", st_->version()}, {"status", s}});
  if (!opt_.quiet)
    std::fprintf(stderr, "strata swarm serve: stopped at version %llu (%llu contributions applied since start)\n",
                 static_cast<unsigned long long>(st_->version()), static_cast<unsigned long long>(applied_));
  // Sockets close before the ZAP handler they rely on.
  zmq_socket_monitor(router_.handle(), nullptr, 0);
  monitor_.close();
  router_.close();
  pub_.close();
  zap_.reset();
  if (metrics_) std::fclose(metrics_);
  metrics_ = nullptr;
  return Status::Ok();
}

}  // namespace

Status RunAggregator(const AggregatorOptions& opt) {
  if (opt.dir.empty()) return Status::InvalidArgument("--out: the aggregator needs a folder for its state");
  if (opt.key.empty()) return Status::InvalidArgument("--key: the aggregator needs its identity file");
  if (opt.members.empty()) return Status::InvalidArgument("--members: the aggregator needs the membership list");
  Server s(opt);
  if (Status st = s.Setup(); !st.ok()) return st;
  return s.Loop();
}

}  // namespace strata::net
