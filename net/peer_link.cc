// The peer's side of the swarm protocol (see peer_link.h).
#include "net/peer_link.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include "model/config.h"
#include "net/agg_state.h"
#include "net/zmq_security.h"
#include "optim/q8_book.h"
#include "runtime/le.h"

namespace strata::net {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

Result<std::unique_ptr<PeerLink>> PeerLink::Connect(const PeerLinkOptions& o) {
  if (o.window == 0 || o.window > 64) return Status::InvalidArgument("--window must be in [1, 64]");
  if (!(o.timeout_s > 0)) return Status::InvalidArgument("--timeout must be positive");
  std::unique_ptr<PeerLink> l(new PeerLink());
  l->opt_ = o;
  Result<Identity> id = LoadIdentity(o.key);
  if (!id.ok()) return id.status();
  l->id_ = std::move(*id);
  Result<PublicIdentity> srv = LoadPublicIdentity(o.server_key);
  if (!srv.ok()) return srv.status();
  l->server_ = std::move(*srv);
  Result<std::unique_ptr<SwarmClient>> c = SwarmClient::Connect(l->ctx_, l->id_, o.server, l->server_);
  if (!c.ok()) return c.status();
  l->cli_ = std::move(*c);
  return l;
}

void PeerLink::Log(const char* fmt, ...) {
  if (!opt_.log) return;
  va_list ap;
  va_start(ap, fmt);
  char buf[1024];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  opt_.log(buf);
}

Status PeerLink::SyncTheta() {
  const uint64_t n = run_.NumParams();
  global_.assign(n, 0.0f);
  if (latest_ == 0) {
    // Version 0 is theta from the run's seed: build it here and check it against the hash.
    model::InitWeights(run_.model, run_.init_seed, global_);
    if (ThetaHash(global_) == latest_hash_) {
      gv_ = 0;
      gv_hash_ = latest_hash_;
      have_global_ = true;
    }
  }
  return CatchUp(latest_, latest_hash_);
}

void PeerLink::Heard(uint64_t version, uint64_t hash) {
  if (version > latest_) {
    latest_ = version;
    latest_hash_ = hash;
  }
}

void PeerLink::Lease(const Json& j) {
  if (std::chrono::duration<double>(Clock::now() - last_lease_).count() * 1000 < run_.lease_ms) return;
  last_lease_ = Clock::now();
  (void)cli_->SendJson(MsgType::kLease, j).ok();  // best effort: a full queue just skips a lease
}

Status PeerLink::Join() {
  Result<Json> w = cli_->Request(MsgType::kHello, Json{{"name", id_.name}}, MsgType::kWelcome,
                                 milliseconds(static_cast<int64_t>(opt_.timeout_s * 1000)));
  if (!w.ok())
    return Status(w.status().code(), "joining " + opt_.server + ": " + w.status().message() +
                                         " (is `strata swarm serve` running there, with this key on its list?)");
  if (!w->contains("run") || !w->contains("version") || !w->contains("theta_hash") || !w->contains("pub"))
    return Status::Corruption("Welcome from the aggregator lacks run, version, theta_hash or pub");
  Result<SwarmRunConfig> run = SwarmRunConfigFromJson((*w)["run"].dump());
  if (!run.ok()) return run.status();
  run_ = *run;
  cli_->set_run_id(run_.run_id);
  latest_ = (*w)["version"].get<uint64_t>();
  Result<uint64_t> hh = ParseHashHex((*w)["theta_hash"].get<std::string>());
  if (!hh.ok()) return hh.status();
  latest_hash_ = *hh;
  // Announcements: version and hash, so a peer knows when it is behind without asking.
  std::string pub = (*w)["pub"].get<std::string>();
  {
    // The PUB endpoint the aggregator reports may be a wildcard: reach it on the ROUTER's host.
    std::string host_ep = opt_.server;
    const size_t colon = host_ep.rfind(':');
    const size_t pcolon = pub.rfind(':');
    if (colon != std::string::npos && pcolon != std::string::npos)
      pub = host_ep.substr(0, colon) + pub.substr(pcolon);
  }
  try {
    sub_ = zmq::socket_t(ctx_, zmq::socket_type::sub);
    if (Status s = ConfigureCurveClient(sub_, id_, server_.curve_pk); !s.ok()) return s;
    LivenessOptions lo;
    lo.max_msg_bytes = 4096;
    ConfigureLiveness(sub_, lo);
    sub_.set(zmq::sockopt::subscribe, "");
    sub_.connect(pub);
  } catch (const zmq::error_t& e) {
    return Status::IOError("cannot subscribe to " + pub + ": " + e.what());
  }

  return Status::Ok();
}

Status PeerLink::FetchUpdate(uint64_t v, optim::Q8Tensor* q, uint64_t* hash_after) {
  const uint64_t n = global_.size();
  const ChunkPlan plan = ChunkPlan::Of(n, run_.chunk_elems);
  const uint32_t count = plan.count;
  q->n = n;
  q->codes.assign(n, 0);
  q->absmax.assign(q8::NumBlocks(static_cast<int64_t>(n)), 0.0f);
  std::vector<uint8_t> got(count, 0);
  uint32_t received = 0, next = 0;
  *hash_after = 0;
  auto request = [&](uint32_t i) {
    FrameHeader h;
    h.type = MsgType::kFetchUpdates;
    h.base_version = v;
    h.chunk_index = i;
    h.chunk_count = count;
    return cli_->Send(h, {});
  };
  auto last_progress = Clock::now();
  int quiet = 0;
  while (next < std::min(count, opt_.window)) {
    if (Status s = request(next++); !s.ok()) return s;
  }
  while (received < count) {
    if (Since(last_progress) > opt_.timeout_s)
      return Status::Unavailable("fetching update " + std::to_string(v) + ": the aggregator is silent");
    Result<Received> r = cli_->Recv(milliseconds(1000));
    if (!r.ok()) {
      if (!r.status().IsUnavailable()) return r.status();
      if (opt_.verbose) Log("update %llu: no reply for 1 s, asking again", static_cast<unsigned long long>(v));
      if (++quiet >= 4) {  // 4 s of silence: a fresh connection
        quiet = 0;
        if (Status s = cli_->Reconnect(); !s.ok()) return s;
      }
      for (uint32_t i = 0; i < next; ++i)  // re-ask what has not come (lost, or the aggregator restarted)
        if (!got[i]) {
          if (Status s = request(i); !s.ok() && !s.IsUnavailable()) return s;
        }
      continue;
    }
    const FrameView& f = r->view;
    if (f.h.type == MsgType::kRefusal) {
      Result<Json> j = ParseJsonPayload(f);
      const std::string reason = j.ok() ? j->value("reason", "") : "";
      if (reason == "behind") return Status::NotFound("update " + std::to_string(v) + " is no longer kept");
      if (reason == "up_to_date") return Status::NotFound("no update after " + std::to_string(v));
      Log("refusal while fetching: %s", j.ok() ? j->dump().c_str() : "?");
      continue;
    }
    if (f.h.type != MsgType::kUpdateChunk || f.h.base_version != v || f.h.chunk_index >= count || got[f.h.chunk_index])
      continue;  // a late reply to an earlier request
    if (!plan.Matches(f.h))
      return Status::Corruption("update chunk " + std::to_string(f.h.chunk_index) + " has the wrong shape");
    const uint64_t off = f.h.element_offset, cnt = f.h.element_count;
    if (Status s = UnpackQ8(f.payload, cnt, std::span<uint8_t>(q->codes).subspan(off, cnt),
                            std::span<float>(q->absmax).subspan(off / q8::kBlock, q8::NumBlocks(cnt)));
        !s.ok())
      return s;
    if (*hash_after == 0) *hash_after = f.h.content_hash;
    if (f.h.content_hash != *hash_after) return Status::Corruption("update chunks disagree on the resulting hash");
    got[f.h.chunk_index] = 1;
    ++received;
    quiet = 0;
    last_progress = Clock::now();
    if (next < count) {
      if (Status s = request(next++); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

Status PeerLink::FetchTheta() {
  const ChunkPlan plan = ChunkPlan::Of(global_.size(), run_.chunk_elems);
  const uint32_t count = plan.count;
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::vector<uint8_t> got(count, 0);
    uint32_t received = 0, next = 0;
    uint64_t version = 0, hash = 0;
    bool restart = false;
    auto request = [&](uint32_t i) {
      FrameHeader h;
      h.type = MsgType::kFetchTheta;
      h.chunk_index = i;
      h.chunk_count = count;
      return cli_->Send(h, {});
    };
    while (next < std::min(count, opt_.window)) {
      if (Status s = request(next++); !s.ok()) return s;
    }
    auto last_progress = Clock::now();
    int quiet = 0;
    while (received < count && !restart) {
      if (Since(last_progress) > opt_.timeout_s) return Status::Unavailable("fetching theta: the aggregator is silent");
      Result<Received> r = cli_->Recv(milliseconds(1000));
      if (!r.ok()) {
        if (!r.status().IsUnavailable()) return r.status();
        if (opt_.verbose) Log("theta: no reply for 1 s, asking again");
        if (++quiet >= 4) {  // 4 s of silence: a fresh connection
          quiet = 0;
          if (Status s = cli_->Reconnect(); !s.ok()) return s;
        }
        for (uint32_t i = 0; i < next; ++i)
          if (!got[i]) {
            if (Status s = request(i); !s.ok() && !s.IsUnavailable()) return s;
          }
        continue;
      }
      const FrameView& f = r->view;
      if (f.h.type != MsgType::kThetaChunk || f.h.chunk_index >= count) continue;
      if (received == 0 && version == 0 && hash == 0) {
        version = f.h.base_version;
        hash = f.h.content_hash;
      } else if (f.h.base_version != version || f.h.content_hash != hash) {
        restart = true;  // the aggregator moved its frozen copy: start again at the new version
        break;
      }
      if (got[f.h.chunk_index]) continue;
      if (!plan.Matches(f.h))
        return Status::Corruption("theta chunk " + std::to_string(f.h.chunk_index) + " has the wrong shape");
      const uint64_t off = f.h.element_offset, cnt = f.h.element_count;
      for (uint64_t i = 0; i < cnt; ++i) global_[off + i] = GetF32(f.payload.data() + 4 * i);
      got[f.h.chunk_index] = 1;
      ++received;
      quiet = 0;
      last_progress = Clock::now();
      if (next < count) {
        if (Status s = request(next++); !s.ok()) return s;
      }
    }
    if (restart) continue;
    if (ThetaHash(global_) != hash)
      return Status::Corruption("theta of version " + std::to_string(version) + " does not match its hash");
    gv_ = version;
    gv_hash_ = hash;
    have_global_ = true;
    ++theta_downloads_;
    Log("downloaded theta at version %llu", static_cast<unsigned long long>(version));
    return Status::Ok();
  }
  return Status::Unavailable("theta kept changing during 5 downloads");
}

Status PeerLink::CatchUp(uint64_t target, uint64_t hash) {
  if (!have_global_) {
    if (Status s = FetchTheta(); !s.ok()) return s;
  }
  optim::Q8Tensor q;
  while (gv_ < target) {
    uint64_t after = 0;
    Status s = FetchUpdate(gv_, &q, &after);
    if (s.IsNotFound()) {
      if (Status t = FetchTheta(); !t.ok()) return t;
      continue;
    }
    if (!s.ok()) return s;
    optim::ApplyQ8Step(q, global_);
    gv_ += 1;
    gv_hash_ = ThetaHash(global_);
    if (gv_hash_ != after)
      return Status::Corruption("replica diverged: theta of version " + std::to_string(gv_) + " hashes to " +
                                HashHex(gv_hash_) + ", the aggregator's to " + HashHex(after));
  }
  if (gv_ == target && hash != 0 && gv_hash_ != hash)
    return Status::Corruption("replica diverged at version " + std::to_string(gv_));
  return Status::Ok();
}

void PeerLink::DrainAnnouncements() {
  for (;;) {
    zmq::message_t m;
    zmq::recv_result_t r;
    try {
      r = sub_.recv(m, zmq::recv_flags::dontwait);
    } catch (const zmq::error_t&) {
      return;
    }
    if (!r) return;
    Result<FrameView> f = DecodeFrame({static_cast<const uint8_t*>(m.data()), m.size()});
    if (!f.ok() || f->h.type != MsgType::kAnnounce || f->h.peer_key != server_.sign_pk || f->h.run_id != run_.run_id ||
        !VerifyFrame(*f).ok())
      continue;
    if (f->h.base_version > latest_) {
      latest_ = f->h.base_version;
      latest_hash_ = f->h.content_hash;
    }
  }
}

Result<PeerLink::Json> PeerLink::Upload(uint64_t seq, uint64_t base, const optim::Q8Tensor& q, uint32_t inner, uint64_t tokens) {
  const ChunkPlan plan = ChunkPlan::Of(q.n, run_.chunk_elems);
  const uint32_t count = plan.count;
  std::vector<uint8_t> acked(count, 0);
  uint32_t next = 0, nacked = 0;
  std::vector<uint8_t> payload;
  auto send = [&](uint32_t i) {
    const uint64_t off = plan.Offset(i), cnt = plan.Elements(i);
    payload.clear();
    PackQ8(std::span<const uint8_t>(q.codes).subspan(off, cnt),
           std::span<const float>(q.absmax).subspan(off / q8::kBlock, q8::NumBlocks(static_cast<int64_t>(cnt))),
           payload);
    FrameHeader h;
    h.type = MsgType::kContribChunk;
    h.codec = Codec::kQ8Signed;
    h.sequence = seq;
    h.base_version = base;
    plan.Describe(i, h);
    h.inner_steps = inner;
    h.tokens = tokens;
    return cli_->Send(h, payload);
  };
  while (next < std::min(count, opt_.window)) {
    if (Status s = send(next++); !s.ok()) return s;
  }
  auto last_progress = Clock::now();
  int quiet_rounds = 0;
  for (;;) {
    if (Since(last_progress) > opt_.timeout_s)
      return Status::Unavailable("uploading contribution " + std::to_string(seq) + ": the aggregator is silent");
    Result<Received> r = cli_->Recv(milliseconds(2000));
    if (!r.ok()) {
      if (!r.status().IsUnavailable()) return r.status();
      // Nothing for 2 s: resend what was not acknowledged; after two quiet rounds with everything
      // acknowledged (an aggregator restart loses uploads in progress), resend it all.
      ++quiet_rounds;
      const bool all = nacked == count || quiet_rounds >= 3;
      if (quiet_rounds >= 3) {  // 6 s of silence: start over on a fresh connection
        if (opt_.verbose) Log("upload %llu: reconnecting", static_cast<unsigned long long>(seq));
        if (Status s = cli_->Reconnect(); !s.ok()) return s;
      }
      if (opt_.verbose)
        Log("upload %llu: nothing for 2 s (%u of %u chunks acknowledged), resending %s",
            static_cast<unsigned long long>(seq), nacked, count, all ? "all" : "the rest");
      for (uint32_t i = 0; i < next; ++i)
        if (all || !acked[i]) {
          if (Status s = send(i); !s.ok() && !s.IsUnavailable()) return s;
        }
      if (all) quiet_rounds = 0;
      continue;
    }
    const FrameView& f = r->view;
    if (f.h.type == MsgType::kChunkAck && f.h.sequence == seq && f.h.chunk_index < count) {
      last_progress = Clock::now();
      quiet_rounds = 0;
      if (!acked[f.h.chunk_index]) {
        acked[f.h.chunk_index] = 1;
        ++nacked;
      }
      if (next < count) {
        if (Status s = send(next++); !s.ok()) return s;
      }
      continue;
    }
    if (f.h.type == MsgType::kResult && f.h.sequence == seq) return ParseJsonPayload(f);
    if (f.h.type == MsgType::kRefusal) {
      Result<Json> j = ParseJsonPayload(f);
      Log("refusal during upload: %s", j.ok() ? j->dump().c_str() : "?");
    }
  }
}

}  // namespace strata::net
