#include "train/swarm_peer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <filesystem>
#include <cstdio>
#include <cstring>
#include <thread>

#include <unistd.h>

#include "model/data.h"
#include "model/gpt2.h"
#include "model/tokenizer.h"
#include "net/agg_state.h"
#include "optim/merge.h"
#include "optim/pg_codec.h"
#include "net/run_config.h"
#include "net/swarm_common.h"
#include "net/zmq_security.h"
#include "optim/q8_book.h"
#include "runtime/le.h"

namespace strata::train {

using namespace strata::net;

std::atomic<bool> g_peer_stop{false};

namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kDefaultCorpus[] = "/usr/share/games/fortunes";

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

class Peer {
 public:
  explicit Peer(const PeerOptions& o) : opt_(o) {}
  Result<PeerReport> Run();

 private:
  Status Setup();
  Status Join();
  Status MakeTrainer();
  // Brings global_ to version `target` (its hash `hash`): updates, or theta when too far behind.
  Status CatchUp(uint64_t target, uint64_t hash);
  Status FetchTheta();
  // Fetches update v -> v + 1 into q. NotFound when the aggregator no longer keeps it.
  Status FetchUpdate(uint64_t v, optim::Q8Tensor* q, uint64_t* hash_after);
  Result<Json> Upload(uint64_t seq, uint64_t base, const optim::Q8Tensor& q, uint32_t inner, uint64_t tokens);
  Result<float> InnerStep();
  double ValLoss();
  void Lease(uint32_t inner_done, double step_s);
  void DrainAnnouncements();
  void Log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
  void Metric(const Json& j);
  bool Expired() const { return opt_.max_seconds > 0 && Since(t0_) >= opt_.max_seconds; }

  PeerOptions opt_;
  PeerReport rep_;
  zmq::context_t ctx_{1};
  Identity id_;
  PublicIdentity server_;
  std::unique_ptr<SwarmClient> cli_;
  zmq::socket_t sub_;
  SwarmRunConfig run_;
  std::unique_ptr<model::Gpt2> model_;
  model::TokenCorpus corpus_;
  std::span<const int32_t> shard_;
  std::vector<float> global_;  // the global theta at version gv_, bit for bit the aggregator's
  uint64_t gv_ = 0, gv_hash_ = 0;
  bool have_global_ = false;
  uint64_t latest_ = 0, latest_hash_ = 0;  // newest version heard of
  // Inner optimizer (kept across rounds, as DiLoCo does), in memory or offloaded.
  std::unique_ptr<Trainer> trainer_;
  LrSchedule schedule_;
  std::string state_dir_;
  uint64_t inner_step_ = 0;
  uint32_t round_h_ = 0;  // inner steps of the round in progress (for the lease's ETA)
  model::Batch batch_;
  FILE* metrics_ = nullptr;
  Clock::time_point t0_ = Clock::now(), last_lease_ = Clock::now();
};

void Peer::Log(const char* fmt, ...) {
  if (opt_.quiet) return;
  va_list ap;
  va_start(ap, fmt);
  std::fprintf(stderr, "[%s %7.1fs] ", id_.name.c_str(), Since(t0_));
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
}

void Peer::Metric(const Json& j) {
  if (!metrics_) return;
  std::fprintf(metrics_, "%s\n", j.dump().c_str());
  std::fflush(metrics_);
}

Status Peer::Setup() {
  if (opt_.shards == 0 || opt_.shard >= opt_.shards)
    return Status::InvalidArgument("--shard " + std::to_string(opt_.shard) + "/" + std::to_string(opt_.shards) +
                                   ": the shard must be below the number of shards");
  if (opt_.inner_steps == 0) return Status::InvalidArgument("--inner-steps must be at least 1");
  if (opt_.optimizer != "adamw" && opt_.optimizer != "adamw8bit")
    return Status::InvalidArgument("--optimizer must be adamw or adamw8bit (got " + opt_.optimizer + ")");
  if (opt_.merge != "hard" && opt_.merge != "dppf")
    return Status::InvalidArgument("--merge must be hard or dppf (got " + opt_.merge + ")");
  if (!(opt_.slowdown >= 1.0) || opt_.slowdown > 100)
    return Status::InvalidArgument("--slowdown must be in [1, 100]");
  if (opt_.window == 0 || opt_.window > 64) return Status::InvalidArgument("--window must be in [1, 64]");
  if (!(opt_.dppf_alpha >= 0 && opt_.dppf_alpha <= 1)) return Status::InvalidArgument("--dppf-alpha must be in [0, 1]");
  if (!(opt_.timeout_s > 0)) return Status::InvalidArgument("--timeout must be positive");
  if (!(opt_.min_lr_ratio >= 0 && opt_.min_lr_ratio <= 1)) return Status::InvalidArgument("--min-lr-ratio: must be in [0, 1]");
  if (opt_.chunk_params % 256 != 0) return Status::InvalidArgument("--chunk: must be a multiple of 256 (one quant block)");
  if (opt_.offload == OffloadMode::kNvme && opt_.offload_dir.empty() && opt_.out.empty())
    return Status::InvalidArgument("--offload nvme keeps the optimizer state in OUT/state: pass --out, or nvme:DIR");
  Result<Identity> id = LoadIdentity(opt_.key);
  if (!id.ok()) return id.status();
  id_ = std::move(*id);
  Result<PublicIdentity> srv = LoadPublicIdentity(opt_.server_key);
  if (!srv.ok()) return srv.status();
  server_ = std::move(*srv);
  if (!opt_.out.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(opt_.out, ec);
    metrics_ = std::fopen((opt_.out + "/metrics.jsonl").c_str(), "a");
    if (!metrics_) return Status::IOError("cannot open " + opt_.out + "/metrics.jsonl");
  }
  Result<std::unique_ptr<SwarmClient>> c = SwarmClient::Connect(ctx_, id_, opt_.server, server_);
  if (!c.ok()) return c.status();
  cli_ = std::move(*c);
  return Status::Ok();
}

Status Peer::Join() {
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

  Result<std::unique_ptr<model::Tokenizer>> tok = model::LoadTokenizer(run_.tokenizer);
  if (!tok.ok()) return tok.status();
  model::CorpusOptions co;
  std::string data = opt_.data.empty() ? std::string(kDefaultCorpus) : opt_.data;
  Result<model::TokenCorpus> corpus = model::LoadCorpus(data, **tok, co);
  if (!corpus.ok()) return corpus.status();
  corpus_ = std::move(*corpus);
  if (corpus_.vocab_size > run_.model.vocab)
    return Status::InvalidArgument("the corpus' tokenizer has " + std::to_string(corpus_.vocab_size) +
                                   " tokens, the run's model " + std::to_string(run_.model.vocab));
  const size_t len = corpus_.train.size();
  const size_t lo = len * opt_.shard / opt_.shards, hi = len * (opt_.shard + 1) / opt_.shards;
  shard_ = std::span<const int32_t>(corpus_.train).subspan(lo, hi - lo);
  if (shard_.size() < static_cast<size_t>(opt_.seq + 2))
    return Status::InvalidArgument("shard " + std::to_string(opt_.shard) + "/" + std::to_string(opt_.shards) + " of " +
                                   data + " has only " + std::to_string(shard_.size()) + " tokens");
  if (opt_.seq > run_.model.n_ctx)
    return Status::InvalidArgument("--seq " + std::to_string(opt_.seq) + " exceeds the model's context " +
                                   std::to_string(run_.model.n_ctx));
  Result<std::unique_ptr<model::Gpt2>> m = model::Gpt2::Create(run_.model, opt_.threads);
  if (!m.ok()) return m.status();
  model_ = std::move(*m);
  const size_t n = model_->num_params();
  if (Status s = MakeTrainer(); !s.ok()) return s;
  Log("joined run %llu: %s, %zu parameters; version %llu; shard %u/%u (%zu tokens); H=%u, %s",
      static_cast<unsigned long long>(run_.run_id), run_.model.ToString().c_str(), n,
      static_cast<unsigned long long>(latest_), opt_.shard, opt_.shards, shard_.size(), opt_.inner_steps,
      trainer_->Describe().c_str());
  // Version 0 is theta from the run's seed: build it here and check it against the hash.
  global_.assign(n, 0.0f);
  if (latest_ == 0) {
    model_->InitRandom(run_.init_seed);
    std::copy(model_->params().begin(), model_->params().end(), global_.begin());
    if (ThetaHash(global_) == latest_hash_) {
      gv_ = 0;
      gv_hash_ = latest_hash_;
      have_global_ = true;
    }
  }
  if (Status s = CatchUp(latest_, latest_hash_); !s.ok()) return s;
  std::copy(global_.begin(), global_.end(), model_->params().begin());
  return Status::Ok();
}

// The inner optimizer: in memory, or offloaded to a state directory that outlives the peer (a
// peer that comes back keeps its moments and its place in the schedule). The state keeps no
// master weights: the model's weights are the master, since every round ends by merging them
// with the global theta.
Status Peer::MakeTrainer() {
  TrainerOptions to;
  to.optimizer = opt_.optimizer;
  to.beta1 = opt_.beta1;
  to.beta2 = opt_.beta2;
  to.weight_decay = opt_.weight_decay;
  to.offload = opt_.offload;
  to.master_weights = false;
  to.chunk_params = opt_.chunk_params;
  to.offload_ram = opt_.offload_ram;
  to.direct_io = opt_.direct_io;
  to.threads = opt_.threads;
  if (opt_.offload != OffloadMode::kNone) {
    state_dir_ = !opt_.offload_dir.empty() ? opt_.offload_dir : opt_.out.empty() ? "" : opt_.out + "/state";
    if (state_dir_.empty()) {
      std::string t = "/dev/shm/strata-peer-state-XXXXXX";
      if (!::mkdtemp(t.data())) return Status::IOError("--offload ram: mkdtemp " + t + ": " + std::strerror(errno));
      state_dir_ = t;
    }
    to.state_dir = state_dir_;
    Result<std::unique_ptr<Trainer>> t = Trainer::Open(*model_, to);
    if (t.ok()) {
      trainer_ = std::move(*t);
      Log("optimizer state %s: continuing at inner step %llu", state_dir_.c_str(),
          static_cast<unsigned long long>(trainer_->step()));
    } else if (!t.status().IsNotFound()) {
      return t.status().WithContext("--offload");
    }
  }
  if (!trainer_) {
    Result<std::unique_ptr<Trainer>> t = Trainer::Create(*model_, to);
    if (!t.ok()) return t.status();
    trainer_ = std::move(*t);
  }
  inner_step_ = trainer_->step();
  schedule_ = LrSchedule{opt_.lr, opt_.warmup, opt_.decay_steps, opt_.min_lr_ratio};
  return Status::Ok();
}

Status Peer::FetchUpdate(uint64_t v, optim::Q8Tensor* q, uint64_t* hash_after) {
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

Status Peer::FetchTheta() {
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
    ++rep_.theta_downloads;
    Log("downloaded theta at version %llu", static_cast<unsigned long long>(version));
    return Status::Ok();
  }
  return Status::Unavailable("theta kept changing during 5 downloads");
}

Status Peer::CatchUp(uint64_t target, uint64_t hash) {
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

void Peer::DrainAnnouncements() {
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

void Peer::Lease(uint32_t inner_done, double step_s) {
  if (std::chrono::duration<double>(Clock::now() - last_lease_).count() * 1000 < run_.lease_ms) return;
  last_lease_ = Clock::now();
  const double tps = step_s > 0 ? opt_.batch * opt_.seq / step_s : 0;
  Json j = {{"round", rep_.rounds}, {"step", inner_step_}, {"inner", inner_done}, {"tokens_per_s", std::round(tps)},
            {"eta_s", std::round((round_h_ > inner_done ? round_h_ - inner_done : 0) * step_s * 10) / 10},
            {"version", gv_}};
  (void)cli_->SendJson(MsgType::kLease, j).ok();  // best effort: a full queue just skips a lease
}

Result<float> Peer::InnerStep() {
  model::DrawTrainBatch(shard_, opt_.seed * 1000003 + opt_.shard, inner_step_, opt_.batch, opt_.seq, &batch_);
  Result<float> loss = trainer_->Step(batch_, schedule_.At(inner_step_ + 1));
  if (!loss.ok()) return loss.status();
  inner_step_ = trainer_->step();
  return *loss;
}

double Peer::ValLoss() {
  double sum = 0;
  int n = 0;
  model::Batch b;
  for (int i = 0; i < opt_.eval_batches; ++i) {
    model::DrawValBatch(corpus_.val, static_cast<uint64_t>(i), opt_.batch, opt_.seq, &b);
    Result<float> l = model_->Forward(b.inputs, b.targets, opt_.batch, opt_.seq);
    if (l.ok()) {
      sum += *l;
      ++n;
    }
  }
  return n ? sum / n : NAN;
}

Result<Json> Peer::Upload(uint64_t seq, uint64_t base, const optim::Q8Tensor& q, uint32_t inner, uint64_t tokens) {
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

Result<PeerReport> Peer::Run() {
  if (Status s = Setup(); !s.ok()) return s;
  if (Status s = Join(); !s.ok()) return s;
  const size_t n = global_.size();
  optim::ErrorFeedbackEncoder ef(n);
  std::vector<float> start(n), delta(n);
  optim::Q8Tensor q;
  double last_val = NAN;
  uint32_t h = opt_.inner_steps;  // this round's inner steps (adapted to the staleness seen)
  while (!g_peer_stop.load() && !Expired()) {
    if (opt_.rounds && rep_.rounds >= opt_.rounds) break;
    DrainAnnouncements();
    if (opt_.stop_at_version && std::max(latest_, gv_) >= opt_.stop_at_version) break;
    const uint64_t base = gv_;
    round_h_ = h;
    std::copy(model_->params().begin(), model_->params().end(), start.begin());
    const auto round_t0 = Clock::now();
    double loss_sum = 0;
    uint32_t done = 0;
    double step_s = 0;
    for (; done < h && !g_peer_stop.load(); ++done) {
      const auto t = Clock::now();
      Result<float> l = InnerStep();
      if (!l.ok()) return l.status();
      loss_sum += *l;
      double dt = Since(t);
      if (opt_.slowdown > 1.0) {
        std::this_thread::sleep_for(std::chrono::duration<double>((opt_.slowdown - 1.0) * dt));
        dt = Since(t);
      }
      step_s = step_s == 0 ? dt : 0.8 * step_s + 0.2 * dt;
      Lease(done + 1, step_s);
    }
    if (done == 0) break;
    const auto params = model_->params();
    for (size_t i = 0; i < n; ++i) delta[i] = start[i] - params[i];
    if (Status s = ef.EncodeChecked(delta, q); !s.ok())
      return Status::InvalidArgument("round " + std::to_string(rep_.rounds) + ": " + s.message() +
                                     " (training diverged: lower --lr)");
    const uint64_t tokens = uint64_t{done} * opt_.batch * opt_.seq;
    const uint64_t seq = cli_->NextSequence();
    Result<Json> res = Upload(seq, base, q, done, tokens);
    if (!res.ok()) return res.status();
    ++rep_.rounds;
    const std::string verdict = res->value("verdict", "");
    const uint64_t version = res->value("version", uint64_t{0});
    Result<uint64_t> hash = ParseHashHex(res->value("theta_hash", std::string("0000000000000000")));
    if (!hash.ok()) return hash.status();
    if (verdict == "applied" || verdict == "pending") ++rep_.applied;
    else if (verdict == "duplicate") ++rep_.duplicates;
    else {
      ++rep_.refused;
      ++rep_.resyncs;
      Log("contribution %llu refused: %s; resynchronising", static_cast<unsigned long long>(seq),
          res->value("reason", "").c_str());
    }
    if (version > latest_) {
      latest_ = version;
      latest_hash_ = *hash;
    }
    if (opt_.adapt_h && run_.sync_peers == 0) {
      // Dynamic local updates: a slow peer contributes more often with fewer steps, so its
      // contributions stay fresh enough to be applied (and are rescaled by H_ref / H).
      const uint32_t tau_max = run_.outer.tau_max;
      const bool stale = verdict == "refused" ? res->value("reason", "").find("too_stale") != std::string::npos
                                              : res->value("tau", 0u) * 2 > tau_max;
      if (stale && h > 1) h = std::max<uint32_t>(1, h / 2);
      else if (!stale && res->value("tau", 0u) * 4 <= tau_max && h < opt_.inner_steps)
        h = std::min(opt_.inner_steps, h * 2);
    }
    DrainAnnouncements();
    if (run_.sync_peers > 0) {
      // Synchronous baseline: wait for the round's new version (everyone's contribution in it).
      const auto wait_t0 = Clock::now();
      while (latest_ <= base && !g_peer_stop.load()) {
        if (Since(wait_t0) > opt_.timeout_s) return Status::Unavailable("waiting for the synchronous round to end");
        std::this_thread::sleep_for(milliseconds(20));
        DrainAnnouncements();
        if (opt_.stop_at_version && latest_ >= opt_.stop_at_version) break;
      }
    }
    if (Status s = CatchUp(latest_, latest_hash_); !s.ok()) return s;
    // Merge rule.
    auto x = model_->params();
    if (opt_.merge == "hard") {
      std::copy(global_.begin(), global_.end(), x.begin());
    } else {
      optim::DppfMerge(x, global_, opt_.dppf_alpha, opt_.dppf_lambda);
    }
    Json m = {{"t", Since(t0_)},     {"round", rep_.rounds}, {"base_version", base},
              {"verdict", verdict},  {"version", gv_},       {"tau", res->value("tau", 0)},
              {"train_loss", loss_sum / done}, {"inner_steps", done}, {"next_inner_steps", h}, {"tokens", tokens},
              {"round_s", Since(round_t0)}, {"bytes_up", cli_->bytes_out()}, {"bytes_down", cli_->bytes_in()},
              {"bad_frames", cli_->bad()}, {"reconnects", cli_->reconnects()}};
    if (opt_.eval_every && rep_.rounds % opt_.eval_every == 0) {
      // Validation of the global model (what the swarm produced), not of the local merge.
      std::vector<float> keep(x.begin(), x.end());
      std::copy(global_.begin(), global_.end(), x.begin());
      last_val = ValLoss();
      std::copy(keep.begin(), keep.end(), x.begin());
      m["val_loss"] = last_val;
    }
    Metric(m);
    Log("round %llu: %s (base %llu, tau %d) -> version %llu, train %.4f%s", static_cast<unsigned long long>(rep_.rounds),
        verdict.c_str(), static_cast<unsigned long long>(base), res->value("tau", 0),
        static_cast<unsigned long long>(gv_), loss_sum / done,
        std::isnan(last_val) ? "" : (", val " + std::to_string(last_val).substr(0, 6)).c_str());
  }
  rep_.version = gv_;
  rep_.val_loss = last_val;
  rep_.bytes_up = cli_->bytes_out();
  rep_.bytes_down = cli_->bytes_in();
  if (metrics_) std::fclose(metrics_);
  metrics_ = nullptr;
  return rep_;
}

}  // namespace

Result<PeerReport> RunPeer(const PeerOptions& opt) {
  Peer p(opt);
  return p.Run();
}

}  // namespace strata::train
