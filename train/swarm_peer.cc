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
#include "model/model.h"
#include "model/tokenizer.h"
#include "net/peer_link.h"
#include "net/run_config.h"
#include "optim/merge.h"
#include "optim/pg_codec.h"

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
  Result<float> InnerStep();
  double ValLoss();
  void Lease(uint32_t inner_done, double step_s);
  void Log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
  void Metric(const Json& j);
  bool Expired() const { return opt_.max_seconds > 0 && Since(t0_) >= opt_.max_seconds; }

  PeerOptions opt_;
  PeerReport rep_;
  std::unique_ptr<net::PeerLink> link_;  // the protocol: join, theta, uploads, leases
  std::string name_;
  std::unique_ptr<model::Model> model_;
  model::TokenCorpus corpus_;
  std::span<const int32_t> shard_;
  // Inner optimizer (kept across rounds, as DiLoCo does), in memory or offloaded.
  std::unique_ptr<Trainer> trainer_;
  LrSchedule schedule_;
  std::string state_dir_;
  uint64_t inner_step_ = 0;
  uint32_t round_h_ = 0;  // inner steps of the round in progress (for the lease's ETA)
  model::Batch batch_;
  FILE* metrics_ = nullptr;
  Clock::time_point t0_ = Clock::now();
};

void Peer::Lease(uint32_t inner_done, double step_s) {
  const double tps = step_s > 0 ? opt_.batch * opt_.seq / step_s : 0;
  link_->Lease({{"round", rep_.rounds}, {"step", inner_step_}, {"inner", inner_done}, {"tokens_per_s", std::round(tps)},
                {"eta_s", std::round((round_h_ > inner_done ? round_h_ - inner_done : 0) * step_s * 10) / 10},
                {"version", link_->version()}});
}

void Peer::Log(const char* fmt, ...) {
  if (opt_.quiet) return;
  va_list ap;
  va_start(ap, fmt);
  std::fprintf(stderr, "[%s %7.1fs] ", name_.c_str(), Since(t0_));
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
  if (!(opt_.dppf_alpha >= 0 && opt_.dppf_alpha <= 1)) return Status::InvalidArgument("--dppf-alpha must be in [0, 1]");
  if (!(opt_.min_lr_ratio >= 0 && opt_.min_lr_ratio <= 1)) return Status::InvalidArgument("--min-lr-ratio: must be in [0, 1]");
  if (opt_.chunk_params % 256 != 0) return Status::InvalidArgument("--chunk: must be a multiple of 256 (one quant block)");
  if (opt_.offload == OffloadMode::kNvme && opt_.offload_dir.empty() && opt_.out.empty())
    return Status::InvalidArgument("--offload nvme keeps the optimizer state in OUT/state: pass --out, or nvme:DIR");
  if (!opt_.out.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(opt_.out, ec);
    metrics_ = std::fopen((opt_.out + "/metrics.jsonl").c_str(), "a");
    if (!metrics_) return Status::IOError("cannot open " + opt_.out + "/metrics.jsonl");
  }
  net::PeerLinkOptions lo;
  lo.key = opt_.key;
  lo.server = opt_.server;
  lo.server_key = opt_.server_key;
  lo.window = opt_.window;
  lo.timeout_s = opt_.timeout_s;
  lo.verbose = opt_.verbose;
  if (!opt_.quiet) lo.log = [this](const std::string& line) { Log("%s", line.c_str()); };
  Result<std::unique_ptr<net::PeerLink>> l = net::PeerLink::Connect(lo);
  if (!l.ok()) return l.status();
  link_ = std::move(*l);
  name_ = link_->id().name;
  return Status::Ok();
}

Status Peer::Join() {
  STRATA_RETURN_IF_ERROR(link_->Join());
  const SwarmRunConfig& run_ = link_->run();
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
  Result<std::unique_ptr<model::Model>> m = model::Model::Create(run_.model, opt_.threads);
  if (!m.ok()) return m.status();
  model_ = std::move(*m);
  const size_t n = model_->num_params();
  if (Status s = MakeTrainer(); !s.ok()) return s;
  Log("joined run %llu: %s, %zu parameters; version %llu; shard %u/%u (%zu tokens); H=%u, %s",
      static_cast<unsigned long long>(run_.run_id), run_.model.ToString().c_str(), n,
      static_cast<unsigned long long>(link_->latest()), opt_.shard, opt_.shards, shard_.size(), opt_.inner_steps,
      trainer_->Describe().c_str());
  STRATA_RETURN_IF_ERROR(link_->SyncTheta());
  std::copy(link_->theta().begin(), link_->theta().end(), model_->params().begin());
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


Result<PeerReport> Peer::Run() {
  if (Status s = Setup(); !s.ok()) return s;
  if (Status s = Join(); !s.ok()) return s;
  const size_t n = link_->theta().size();
  const SwarmRunConfig& run_ = link_->run();
  optim::ErrorFeedbackEncoder ef(n);
  std::vector<float> start(n), delta(n);
  optim::Q8Tensor q;
  double last_val = NAN;
  uint32_t h = opt_.inner_steps;  // this round's inner steps (adapted to the staleness seen)
  while (!g_peer_stop.load() && !Expired()) {
    if (opt_.rounds && rep_.rounds >= opt_.rounds) break;
    link_->DrainAnnouncements();
    if (opt_.stop_at_version && std::max(link_->latest(), link_->version()) >= opt_.stop_at_version) break;
    const uint64_t base = link_->version();
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
    const uint64_t seq = link_->NextSequence();
    Result<Json> res = link_->Upload(seq, base, q, done, tokens);
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
    link_->Heard(version, *hash);
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
    link_->DrainAnnouncements();
    if (run_.sync_peers > 0) {
      // Synchronous baseline: wait for the round's new version (everyone's contribution in it).
      const auto wait_t0 = Clock::now();
      while (link_->latest() <= base && !g_peer_stop.load()) {
        if (Since(wait_t0) > opt_.timeout_s) return Status::Unavailable("waiting for the synchronous round to end");
        std::this_thread::sleep_for(milliseconds(20));
        link_->DrainAnnouncements();
        if (opt_.stop_at_version && link_->latest() >= opt_.stop_at_version) break;
      }
    }
    if (Status s = link_->CatchUp(); !s.ok()) return s;
    const std::vector<float>& global = link_->theta();
    // Merge rule.
    auto x = model_->params();
    if (opt_.merge == "hard") {
      std::copy(global.begin(), global.end(), x.begin());
    } else {
      optim::DppfMerge(x, global, opt_.dppf_alpha, opt_.dppf_lambda);
    }
    Json m = {{"t", Since(t0_)},     {"round", rep_.rounds}, {"base_version", base},
              {"verdict", verdict},  {"version", link_->version()},       {"tau", res->value("tau", 0)},
              {"train_loss", loss_sum / done}, {"inner_steps", done}, {"next_inner_steps", h}, {"tokens", tokens},
              {"round_s", Since(round_t0)}, {"bytes_up", link_->bytes_out()}, {"bytes_down", link_->bytes_in()},
              {"bad_frames", link_->bad_frames()}, {"reconnects", link_->reconnects()}};
    if (opt_.eval_every && rep_.rounds % opt_.eval_every == 0) {
      // Validation of the global model (what the swarm produced), not of the local merge.
      std::vector<float> keep(x.begin(), x.end());
      std::copy(global.begin(), global.end(), x.begin());
      last_val = ValLoss();
      std::copy(keep.begin(), keep.end(), x.begin());
      m["val_loss"] = last_val;
    }
    Metric(m);
    Log("round %llu: %s (base %llu, tau %d) -> version %llu, train %.4f%s", static_cast<unsigned long long>(rep_.rounds),
        verdict.c_str(), static_cast<unsigned long long>(base), res->value("tau", 0),
        static_cast<unsigned long long>(link_->version()), loss_sum / done,
        std::isnan(last_val) ? "" : (", val " + std::to_string(last_val).substr(0, 6)).c_str());
  }
  rep_.version = link_->version();
  rep_.theta_downloads = link_->theta_downloads();
  rep_.val_loss = last_val;
  rep_.bytes_up = link_->bytes_out();
  rep_.bytes_down = link_->bytes_in();
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
