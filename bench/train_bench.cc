// `strata bench train` (see train_bench.h).
#include "bench/train_bench.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>
#include <tuple>

#include "model/data.h"
#include "offload/offload_engine.h"
#include "runtime/clock.h"
#include "runtime/thread_pool.h"
#include "runtime/trace.h"
#include "train/step.h"

#ifndef STRATA_SOURCE_DIR
#define STRATA_SOURCE_DIR "."
#endif

namespace strata::bench {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

double Now() { return MonotonicSeconds(); }

uint64_t StatusField(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t k = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, k, key) == 0) return std::stoull(line.substr(k)) * 1024;
  }
  return 0;
}
// Resets the kernel's peak-RSS mark to the current RSS, so each case reports its own peak.
void ResetPeakRss() {
  std::ofstream o("/proc/self/clear_refs");
  o << "5";
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Random token batches from a fixed seed (throughput does not depend on the text).
std::vector<model::Batch> Batches(const TrainShape& s, int n) {
  std::mt19937 g(1234);
  std::vector<model::Batch> out(n);
  for (auto& b : out) {
    b.B = s.batch;
    b.T = s.seq;
    b.inputs.resize(static_cast<size_t>(s.batch) * s.seq);
    b.targets.resize(b.inputs.size());
    for (auto& x : b.inputs) x = static_cast<int32_t>(g() % s.cfg.vocab);
    for (auto& x : b.targets) x = static_cast<int32_t>(g() % s.cfg.vocab);
  }
  return out;
}

struct CaseResult {
  std::vector<double> times;  // every timed step
  // Of every timed step, from the trainer's trace: forward, backward, and the rest of the step
  // (in memory: the optimizer; on disk: EndStep's wait for the last chunks and the commit).
  std::vector<double> forward, backward, rest;
  double step_seconds = 0, tokens_per_s = 0, first_loss = 0, last_loss = 0;
  uint64_t peak_rss = 0, base_rss = 0, budget = 0, io_bytes_per_step = 0;
  double disk_GBps = 0, grad_wait_seconds = 0;
};

Result<CaseResult> RunCase(const TrainShape& s, bool offloaded, const TrainBenchOptions& opt, bool recompute = false) {
  ResetPeakRss();
  CaseResult r;
  r.base_rss = StatusField("VmRSS:");
  auto m = model::Model::Create(s.cfg, opt.threads);
  if (!m.ok()) return m.status();
  model::Model& model = *m.value();
  model.InitRandom(1);
  model.SetRecompute(recompute);
  const uint64_t n = model.num_params();
  std::string dir;
  train::TrainerOptions to;
  to.optimizer = "adamw8bit";
  to.beta1 = 0.9;
  to.beta2 = 0.95;
  to.eps = 1e-8;
  to.weight_decay = 0.0;
  to.offload_ram = opt.offload_ram;
  to.threads = opt.threads;
  Tracer tracer(size_t{1} << 18);
  to.tracer = &tracer;
  if (offloaded) {
    dir = opt.path + "/strata-bench-train-" + std::to_string(::getpid());
    std::error_code ec;
    fs::remove_all(dir, ec);
    to.offload = train::OffloadMode::kNvme;
    to.state_dir = dir;
  }
  auto t = train::Trainer::Create(model, to);
  if (!t.ok()) return t.status().WithContext("--path " + opt.path);
  std::unique_ptr<train::Trainer> trainer = std::move(t).value();
  offload::OffloadEngine* engine = trainer->engine();
  const auto batches = Batches(s, opt.warmup + opt.steps);
  std::vector<double> times;
  uint64_t io0 = 0;
  double wait0 = 0, io_t0 = 0;
  Status st;
  for (int i = 0; i < opt.warmup + opt.steps && st.ok(); ++i) {
    if (i == opt.warmup && engine) {
      const auto x = engine->stats();
      io0 = x.bytes_read + x.bytes_written;
      wait0 = x.grad_wait_seconds;
      io_t0 = Now();
    }
    const double t0 = Now();
    Result<float> loss = trainer->Step(batches[i], 1e-4);
    if (!loss.ok()) {
      st = loss.status();
      break;
    }
    if (i >= opt.warmup) times.push_back(Now() - t0);
    if (i == 0) r.first_loss = loss.value();
    r.last_loss = loss.value();
  }
  if (engine) {
    const auto x = engine->stats();
    r.io_bytes_per_step = (x.bytes_read + x.bytes_written - io0) / std::max(1, opt.steps);
    r.disk_GBps = static_cast<double>(x.bytes_read + x.bytes_written - io0) / (Now() - io_t0) / 1e9;
    r.grad_wait_seconds = (x.grad_wait_seconds - wait0) / std::max(1, opt.steps);
  }
  // The trainer's spans of each timed step (its "step" arg counts from 1, warmup included).
  {
    std::vector<double> fwd(times.size(), -1), bwd(times.size(), -1);
    const Json tj = Json::parse(tracer.ToJson(), nullptr, false);
    if (!tj.is_discarded()) {
      for (const Json& e : tj["traceEvents"]) {
        if (e.value("tid", 0) != trace_track::kTrain || e.value("ph", "") != "X" || !e.contains("args")) continue;
        const int64_t i = e["args"].value("step", int64_t{0}) - 1 - opt.warmup;
        if (i < 0 || i >= static_cast<int64_t>(times.size())) continue;
        const std::string name = e.value("name", "");
        if (name == "forward") fwd[i] = e.value("dur", 0.0) * 1e-6;
        if (name == "backward") bwd[i] = e.value("dur", 0.0) * 1e-6;
      }
    }
    for (size_t i = 0; i < times.size(); ++i) {
      if (fwd[i] < 0 || bwd[i] < 0) continue;
      r.forward.push_back(fwd[i]);
      r.backward.push_back(bwd[i]);
      r.rest.push_back(std::max(0.0, times[i] - fwd[i] - bwd[i]));
    }
  }
  r.budget = trainer->optimizer_bytes();
  r.budget += 2 * n * sizeof(float) + model.activation_bytes();
  r.peak_rss = StatusField("VmHWM:");
  trainer.reset();
  if (!dir.empty()) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  STRATA_RETURN_IF_ERROR(st);
  r.times = times;
  r.step_seconds = Median(times);
  r.tokens_per_s = static_cast<double>(s.batch) * s.seq / r.step_seconds;
  return r;
}

// Runs the torch peer in the peers' venv; an empty object when it cannot run (with the reason).
Json RunPeer(const TrainShape& s, const TrainBenchOptions& opt, int threads) {
  std::string py = opt.peers_python;
  if (py.empty()) {
    const char* v = std::getenv("STRATA_PEERS_VENV");
    const char* home = std::getenv("HOME");
    const std::string venv = v && *v ? v : std::string(home ? home : "") + "/.cache/strata/peers-venv";
    py = venv + "/bin/python";
  }
  const std::string script =
      opt.peer_script.empty() ? std::string(STRATA_SOURCE_DIR) + "/lab/peers/train_peers.py" : opt.peer_script;
  if (!fs::exists(py)) {
    return Json{{"skipped", "no peers venv at " + py +
                                " (python3 lab/peers/train_peers.py creates it: torch and transformers from pip)"}};
  }
  if (!fs::exists(script)) return Json{{"skipped", "peer script " + script + " not found"}};
  char tmpl[] = "/tmp/strata-train-peer-XXXXXX.json";
  const int fd = ::mkstemps(tmpl, 5);
  if (fd < 0) return Json{{"skipped", "mkstemps failed"}};
  ::close(fd);
  std::ostringstream cmd;
  const model::ModelConfig& c = s.cfg;
  cmd << "'" << py << "' '" << script << "' --arch " << c.arch << " --n-layer " << c.n_layer << " --n-head "
      << c.n_head << " --n-embd " << c.n_embd << " --vocab " << c.vocab << " --ctx " << c.n_ctx << " --batch " << s.batch
      << " --seq " << s.seq << " --threads " << threads << " --steps " << opt.steps << " --warmup " << opt.warmup;
  if (!c.is_gpt2()) {
    char theta[32], eps[32];
    std::snprintf(theta, sizeof theta, "%.17g", c.rope_theta);
    std::snprintf(eps, sizeof eps, "%.9g", static_cast<double>(c.ln_eps));
    cmd << " --kv-heads " << c.kv_heads() << " --head-dim " << c.head_size() << " --mlp " << c.mlp()
        << " --rope-theta " << theta << " --norm-eps " << eps << (c.tie_embeddings ? " --tie" : " --no-tie");
  }
  cmd << " --json " << tmpl << (opt.quiet ? " >/dev/null 2>&1" : " 1>&2");
  const int rc = std::system(cmd.str().c_str());
  Json j;
  std::ifstream in(tmpl);
  if (rc == 0 && in) j = Json::parse(in, nullptr, false);
  ::unlink(tmpl);
  if (rc != 0 || j.is_discarded()) return Json{{"skipped", "the peer failed (exit " + std::to_string(rc) + "): " + cmd.str()}};
  return j;
}

}  // namespace

Result<TrainShape> NamedShape(const std::string& name) {
  TrainShape s;
  s.name = name;
  if (name == "default") {
    s.cfg = model::ModelConfig{};  // 4 layers, 4 heads, width 256, context 256, byte vocabulary
    s.batch = 8;
    s.seq = 128;
  } else if (name == "gpt2-small-layers") {
    s.cfg = model::ModelConfig{"gpt2", 2, 12, 768, 1024, 256};
    s.batch = 4;
    s.seq = 256;
  } else if (name == "llama-1b-layers") {
    // Two layers of Llama 3.2 1B (its rope_scaling "llama3" left out: it changes the rotation's
    // frequencies, not the work) over a 32 k vocabulary; context 131072 as Llama 3.2's (for
    // llama nothing is sized by it in training).
    model::ModelConfig& c = s.cfg;
    c.arch = "llama";
    c.n_layer = 2;
    c.n_head = 32;
    c.n_kv_head = 8;
    c.head_dim = 64;
    c.n_embd = 2048;
    c.n_mlp = 8192;
    c.n_ctx = 131072;
    c.vocab = 32000;
    c.rope_theta = 500000.0;
    c.ln_eps = 1e-5f;
    c.tie_embeddings = true;
    s.batch = 2;
    s.seq = 128;
  } else {
    return Status::InvalidArgument("--shape " + name + ": want default, gpt2-small-layers or llama-1b-layers");
  }
  return s;
}

Result<Json> RunTrainBench(const TrainBenchOptions& opt) {
  if (opt.steps < 1 || opt.warmup < 0 || opt.rounds < 1) {
    return Status::InvalidArgument("--steps and --rounds must be >= 1 and --warmup >= 0");
  }
  Json out;
  out["benchmark"] = "train";
  out["cases"] = Json::array();
  const int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::thread::hardware_concurrency());
  out["threads"] = threads;
  out["model_kernels"] = model::ModelKernelIsa();
  for (const std::string& name : opt.shapes) {
    Result<TrainShape> s = NamedShape(name);
    if (!s.ok()) return s.status();
    if (!opt.quiet) std::fprintf(stderr, "bench train: %s (%s), batch %d x %d tokens, %d threads\n", name.c_str(),
                                 s->cfg.ToString().c_str(), s->batch, s->seq, threads);
    // The three cases alternate, round by round (nvme, none, torch), so a machine whose speed
    // drifts (a shared VM) shifts all alike; each reports the median over all its rounds' steps.
    // The offloaded case goes first, so its peak RSS is measured before the other case has touched
    // memory (the torch peer is a process of its own).
    const double tokens = static_cast<double>(s->batch) * s->seq;
    Result<CaseResult> nvme = Status::Internal("no round ran"), none = Status::Internal("no round ran");
    std::vector<double> nvme_times, none_times, torch_times, sdpa_times, recompute_times;
    CaseResult none_split, nvme_split;  // forward, backward, rest of every round's timed steps
    std::map<std::string, std::map<std::string, std::vector<double>>> peer_split;  // per round
    Json rounds = {{"strata", Json::array()}, {"strata_nvme", Json::array()}, {"torch", Json::array()},
                   {"torch_sdpa", Json::array()}};
    Json peer = opt.peer ? Json() : Json{{"skipped", "--no-peer"}};
    for (int round = 0; round < opt.rounds; ++round) {
      Result<CaseResult> a = RunCase(*s, true, opt);
      if (!a.ok()) return a.status();
      Result<CaseResult> b = RunCase(*s, false, opt);
      if (!b.ok()) return b.status();
      nvme_times.insert(nvme_times.end(), a->times.begin(), a->times.end());
      none_times.insert(none_times.end(), b->times.begin(), b->times.end());
      if (opt.recompute) {
        Result<CaseResult> rc = RunCase(*s, false, opt, /*recompute=*/true);
        if (!rc.ok()) return rc.status();
        recompute_times.insert(recompute_times.end(), rc->times.begin(), rc->times.end());
        if (!rounds.contains("strata_recompute")) rounds["strata_recompute"] = Json::array();
        rounds["strata_recompute"].push_back(rc->tokens_per_s);
      }
      for (auto [from, to] : {std::pair{&a.value(), &nvme_split}, std::pair{&b.value(), &none_split}}) {
        to->forward.insert(to->forward.end(), from->forward.begin(), from->forward.end());
        to->backward.insert(to->backward.end(), from->backward.begin(), from->backward.end());
        to->rest.insert(to->rest.end(), from->rest.begin(), from->rest.end());
      }
      rounds["strata_nvme"].push_back(a->tokens_per_s);
      rounds["strata"].push_back(b->tokens_per_s);
      if (round == 0) {
        nvme = std::move(a);
        none = std::move(b);
      }
      // The peer once a round, unless it could not run in the first (then its reason is kept).
      if (opt.peer && (round == 0 || !peer.contains("skipped"))) {
        Json p = RunPeer(*s, opt, threads);
        if (p.contains("skipped")) {
          if (round == 0) peer = p;
        } else {
          for (auto [key, out, name] : {std::tuple{"step_seconds", &torch_times, "torch"},
                                        std::tuple{"step_seconds_sdpa", &sdpa_times, "torch_sdpa"}}) {
            if (!p.contains(key)) continue;
            std::vector<double> t = p[key].get<std::vector<double>>();
            out->insert(out->end(), t.begin(), t.end());
            rounds[name].push_back(tokens / Median(t));
          }
          for (auto [key, name] : {std::pair{"step_split_seconds", "torch"}, std::pair{"step_split_seconds_sdpa", "torch_sdpa"}}) {
            if (!p.contains(key) || !p[key].is_object()) continue;
            for (auto& [part, v] : p[key].items()) peer_split[name][part].push_back(v.get<double>());
          }
          if (round == 0) peer = p;  // the first round's full report
          if (!opt.quiet && round + 1 < opt.rounds) std::fprintf(stderr, "  (round %d of %d done)\n", round + 1, opt.rounds);
        }
      }
    }
    for (auto [r, t] : {std::pair{&nvme.value(), &nvme_times}, std::pair{&none.value(), &none_times}}) {
      r->step_seconds = Median(*t);
      r->tokens_per_s = tokens / r->step_seconds;
    }
    Json c;
    c["shape"] = name;
    c["config"] = {{"arch", s->cfg.arch},
                   {"n_layer", s->cfg.n_layer},
                   {"n_head", s->cfg.n_head},
                   {"n_kv_head", s->cfg.kv_heads()},
                   {"head_dim", s->cfg.head_size()},
                   {"n_embd", s->cfg.n_embd},
                   {"n_mlp", s->cfg.mlp()},
                   {"n_ctx", s->cfg.n_ctx},
                   {"vocab", s->cfg.vocab},
                   {"tie_embeddings", s->cfg.tie_embeddings},
                   {"params", s->cfg.NumParams()}};
    if (!s->cfg.is_gpt2()) {
      c["config"]["rope_theta"] = s->cfg.rope_theta;
      c["config"]["norm_eps"] = s->cfg.ln_eps;
    }
    c["batch"] = s->batch;
    c["rounds"] = opt.rounds;
    c["steps_per_round"] = opt.steps;
    c["seq"] = s->seq;
    c["strata_tokens_per_s"] = none->tokens_per_s;
    c["strata_step_seconds"] = none->step_seconds;
    c["strata_nvme_tokens_per_s"] = nvme->tokens_per_s;
    c["strata_nvme_step_seconds"] = nvme->step_seconds;
    // Where a step goes (medians of each part over all rounds' timed steps, so they need not add
    // up to the median step exactly).
    c["strata_split_seconds"] = {{"forward", Median(none_split.forward)},
                                 {"backward", Median(none_split.backward)},
                                 {"optimizer", Median(none_split.rest)}};
    c["strata_nvme_split_seconds"] = {{"forward", Median(nvme_split.forward)},
                                      {"backward", Median(nvme_split.backward)},
                                      {"end_step", Median(nvme_split.rest)}};
    c["offload_cost"] = 1.0 - nvme->tokens_per_s / none->tokens_per_s;
    if (opt.recompute && !recompute_times.empty()) {
      c["strata_recompute_tokens_per_s"] = tokens / Median(recompute_times);
      c["recompute_cost"] = 1.0 - c["strata_recompute_tokens_per_s"].get<double>() / none->tokens_per_s;
      if (!opt.quiet) {
        std::fprintf(stderr, "  strata %.0f tok/s with activations recomputed in backward (state in memory): "
                     "recomputation costs %.1f%%\n", c["strata_recompute_tokens_per_s"].get<double>(),
                     100 * c["recompute_cost"].get<double>());
      }
    }
    c["nvme_io_bytes_per_step"] = nvme->io_bytes_per_step;
    c["nvme_disk_GBps"] = nvme->disk_GBps;
    c["nvme_grad_wait_seconds_per_step"] = nvme->grad_wait_seconds;
    c["nvme_peak_rss_bytes"] = nvme->peak_rss;
    c["nvme_base_rss_bytes"] = nvme->base_rss;
    c["nvme_budget_bytes"] = nvme->budget;
    c["nvme_rss_within_budget"] = nvme->peak_rss - nvme->base_rss <= nvme->budget;
    c["loss_first_last"] = {none->first_loss, none->last_loss};
    c["peer"] = peer;
    // Each round's tokens/s (batch * seq over the round's median step), for the spread.
    c["round_tokens_per_s"] = rounds;
    if (!torch_times.empty()) {
      c["torch_step_seconds"] = Median(torch_times);
      c["torch_tokens_per_s"] = tokens / Median(torch_times);
      c["ratio_vs_torch"] = none->tokens_per_s / c["torch_tokens_per_s"].get<double>();
    }
    for (auto& [name, parts] : peer_split) {
      Json j;  // the median over the rounds of each round's median
      for (auto& [part, v] : parts) j[part] = Median(v);
      c[name + "_split_seconds"] = j;
    }
    if (!sdpa_times.empty()) {
      c["torch_sdpa_step_seconds"] = Median(sdpa_times);
      c["torch_sdpa_tokens_per_s"] = tokens / Median(sdpa_times);
      c["ratio_vs_torch_sdpa"] = none->tokens_per_s / c["torch_sdpa_tokens_per_s"].get<double>();
    }
    // batch * seq over the fastest step of all rounds: the figure least skewed by other processes
    // on a shared machine (torch's threads lose most when a core is taken from them).
    Json best;
    for (auto [k, t] : {std::pair{"strata", &none_times}, std::pair{"strata_nvme", &nvme_times},
                        std::pair{"torch", &torch_times}, std::pair{"torch_sdpa", &sdpa_times}}) {
      if (!t->empty()) best[k] = tokens / *std::min_element(t->begin(), t->end());
    }
    c["best_step_tokens_per_s"] = best;
    if (best.contains("torch")) c["ratio_vs_torch_best"] = best["strata"].get<double>() / best["torch"].get<double>();
    if (best.contains("torch_sdpa")) {
      c["ratio_vs_torch_sdpa_best"] = best["strata"].get<double>() / best["torch_sdpa"].get<double>();
    }
    if (!opt.quiet) {
      std::fprintf(stderr,
                   "  strata %.0f tok/s (state in memory), %.0f tok/s (state on disk: offload costs %.1f%%, "
                   "%.2f GB/s)\n  nvme peak RSS %.0f MiB over a base of %.0f MiB; budget %.0f MiB\n",
                   none->tokens_per_s, nvme->tokens_per_s, 100 * c["offload_cost"].get<double>(), nvme->disk_GBps,
                   (nvme->peak_rss - nvme->base_rss) / 1048576.0, nvme->base_rss / 1048576.0,
                   nvme->budget / 1048576.0);
      std::fprintf(stderr,
                   "  strata step (median s): in memory forward %.3f, backward %.3f, optimizer %.3f; on disk "
                   "forward %.3f, backward %.3f, end of step %.3f\n",
                   Median(none_split.forward), Median(none_split.backward), Median(none_split.rest),
                   Median(nvme_split.forward), Median(nvme_split.backward), Median(nvme_split.rest));
      if (c.contains("ratio_vs_torch")) {
        std::fprintf(stderr, "  torch %.0f tok/s (eager attention), %.0f tok/s (sdpa): strata is %.2fx and %.2fx\n",
                     c["torch_tokens_per_s"].get<double>(), c.value("torch_sdpa_tokens_per_s", 0.0),
                     c["ratio_vs_torch"].get<double>(), c.value("ratio_vs_torch_sdpa", 0.0));
        for (const char* k : {"torch", "torch_sdpa"}) {
          const std::string key = std::string(k) + "_split_seconds";
          if (!c.contains(key)) continue;
          std::fprintf(stderr, "  %s step (median s): forward %.3f, backward %.3f, optimizer %.3f\n", k,
                       c[key].value("forward", 0.0), c[key].value("backward", 0.0), c[key].value("optimizer", 0.0));
        }
      } else {
        std::fprintf(stderr, "  torch: %s\n", peer.value("skipped", std::string("?")).c_str());
      }
      if (c.contains("ratio_vs_torch_best")) {
        std::fprintf(stderr,
                     "  fastest step: strata %.0f tok/s, torch %.0f (eager), %.0f (sdpa): strata is %.2fx and %.2fx\n",
                     best["strata"].get<double>(), best["torch"].get<double>(), best.value("torch_sdpa", 0.0),
                     c["ratio_vs_torch_best"].get<double>(), c.value("ratio_vs_torch_sdpa_best", 0.0));
      }
      if (opt.rounds > 1) {
        std::string line = "  per round (tok/s, min-max):";
        for (const char* k : {"strata", "strata_nvme", "strata_recompute", "torch", "torch_sdpa"}) {
          if (!rounds.contains(k)) continue;
          const auto& v = rounds[k];
          if (v.empty()) continue;
          double lo = v[0].get<double>(), hi = lo;
          for (const auto& x : v) lo = std::min(lo, x.get<double>()), hi = std::max(hi, x.get<double>());
          char buf[96];
          std::snprintf(buf, sizeof buf, " %s %.0f-%.0f (%.1f%%)", k, lo, hi, lo > 0 ? 100 * (hi - lo) / lo : 0.0);
          line += buf;
        }
        std::fprintf(stderr, "%s\n", line.c_str());
      }
    }
    out["cases"].push_back(c);
  }
  return out;
}

}  // namespace strata::bench
