// `strata bench train` (see train_bench.h).
#include "bench/train_bench.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "model/data.h"
#include "offload/offload_engine.h"
#include "runtime/clock.h"
#include "runtime/thread_pool.h"
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
  double step_seconds = 0, tokens_per_s = 0, first_loss = 0, last_loss = 0;
  uint64_t peak_rss = 0, base_rss = 0, budget = 0, io_bytes_per_step = 0;
  double disk_GBps = 0, grad_wait_seconds = 0;
};

Result<CaseResult> RunCase(const TrainShape& s, bool offloaded, const TrainBenchOptions& opt) {
  ResetPeakRss();
  CaseResult r;
  r.base_rss = StatusField("VmRSS:");
  auto m = model::Model::Create(s.cfg, opt.threads);
  if (!m.ok()) return m.status();
  model::Model& model = *m.value();
  model.InitRandom(1);
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
  cmd << "'" << py << "' '" << script << "' --n-layer " << s.cfg.n_layer << " --n-head " << s.cfg.n_head
      << " --n-embd " << s.cfg.n_embd << " --vocab " << s.cfg.vocab << " --ctx " << s.cfg.n_ctx << " --batch "
      << s.batch << " --seq " << s.seq << " --threads " << threads << " --steps " << opt.steps << " --warmup "
      << opt.warmup << " --json " << tmpl << (opt.quiet ? " >/dev/null 2>&1" : " 1>&2");
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
  } else {
    return Status::InvalidArgument("--shape " + name + ": want default or gpt2-small-layers");
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
    // The two cases alternate, round by round, so a machine whose speed drifts (a shared VM)
    // shifts both alike; each reports the median over all its rounds' steps. The offloaded case
    // goes first, so its peak RSS is measured before the other case has touched memory.
    Result<CaseResult> nvme = Status::Internal("no round ran"), none = Status::Internal("no round ran");
    std::vector<double> nvme_times, none_times;
    for (int round = 0; round < opt.rounds; ++round) {
      Result<CaseResult> a = RunCase(*s, true, opt);
      if (!a.ok()) return a.status();
      Result<CaseResult> b = RunCase(*s, false, opt);
      if (!b.ok()) return b.status();
      nvme_times.insert(nvme_times.end(), a->times.begin(), a->times.end());
      none_times.insert(none_times.end(), b->times.begin(), b->times.end());
      if (round == 0) {
        nvme = std::move(a);
        none = std::move(b);
      }
    }
    for (auto [r, t] : {std::pair{&nvme.value(), &nvme_times}, std::pair{&none.value(), &none_times}}) {
      r->step_seconds = Median(*t);
      r->tokens_per_s = static_cast<double>(s->batch) * s->seq / r->step_seconds;
    }
    Json peer = opt.peer ? RunPeer(*s, opt, threads) : Json{{"skipped", "--no-peer"}};
    Json c;
    c["shape"] = name;
    c["config"] = {{"n_layer", s->cfg.n_layer}, {"n_head", s->cfg.n_head}, {"n_embd", s->cfg.n_embd},
                   {"n_ctx", s->cfg.n_ctx}, {"vocab", s->cfg.vocab}, {"params", s->cfg.NumParams()}};
    c["batch"] = s->batch;
    c["rounds"] = opt.rounds;
    c["steps_per_round"] = opt.steps;
    c["seq"] = s->seq;
    c["strata_tokens_per_s"] = none->tokens_per_s;
    c["strata_step_seconds"] = none->step_seconds;
    c["strata_nvme_tokens_per_s"] = nvme->tokens_per_s;
    c["strata_nvme_step_seconds"] = nvme->step_seconds;
    c["offload_cost"] = 1.0 - nvme->tokens_per_s / none->tokens_per_s;
    c["nvme_io_bytes_per_step"] = nvme->io_bytes_per_step;
    c["nvme_disk_GBps"] = nvme->disk_GBps;
    c["nvme_grad_wait_seconds_per_step"] = nvme->grad_wait_seconds;
    c["nvme_peak_rss_bytes"] = nvme->peak_rss;
    c["nvme_base_rss_bytes"] = nvme->base_rss;
    c["nvme_budget_bytes"] = nvme->budget;
    c["nvme_rss_within_budget"] = nvme->peak_rss - nvme->base_rss <= nvme->budget;
    c["loss_first_last"] = {none->first_loss, none->last_loss};
    c["peer"] = peer;
    if (peer.contains("train_tokens_per_s")) {
      c["torch_tokens_per_s"] = peer["train_tokens_per_s"];
      c["ratio_vs_torch"] = none->tokens_per_s / peer["train_tokens_per_s"].get<double>();
    }
    if (peer.contains("train_tokens_per_s_sdpa")) {
      c["torch_sdpa_tokens_per_s"] = peer["train_tokens_per_s_sdpa"];
      c["ratio_vs_torch_sdpa"] = none->tokens_per_s / peer["train_tokens_per_s_sdpa"].get<double>();
    }
    if (!opt.quiet) {
      std::fprintf(stderr,
                   "  strata %.0f tok/s (state in memory), %.0f tok/s (state on disk: offload costs %.1f%%, "
                   "%.2f GB/s)\n  nvme peak RSS %.0f MiB over a base of %.0f MiB; budget %.0f MiB\n",
                   none->tokens_per_s, nvme->tokens_per_s, 100 * c["offload_cost"].get<double>(), nvme->disk_GBps,
                   (nvme->peak_rss - nvme->base_rss) / 1048576.0, nvme->base_rss / 1048576.0,
                   nvme->budget / 1048576.0);
      if (c.contains("ratio_vs_torch")) {
        std::fprintf(stderr, "  torch %.0f tok/s (eager attention), %.0f tok/s (sdpa): strata is %.2fx and %.2fx\n",
                     c["torch_tokens_per_s"].get<double>(), c.value("torch_sdpa_tokens_per_s", 0.0),
                     c["ratio_vs_torch"].get<double>(), c.value("ratio_vs_torch_sdpa", 0.0));
      } else {
        std::fprintf(stderr, "  torch: %s\n", peer.value("skipped", std::string("?")).c_str());
      }
    }
    out["cases"].push_back(c);
  }
  return out;
}

}  // namespace strata::bench
