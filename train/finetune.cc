// The training loop of `strata finetune` (see finetune.h for the data flow and the output folder).
#include "train/finetune.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/checkpoint.h"
#include "model/data.h"
#include "model/config_json.h"
#include "model/tokenizer.h"
#include "offload/inspect.h"
#include "offload/offload_engine.h"
#include "offload/state_file.h"
#include "runtime/clock.h"
#include "runtime/file_util.h"
#include "runtime/fmt.h"
#include "runtime/progress.h"
#include "runtime/svg_plot.h"
#include "runtime/sysinfo.h"
#include "runtime/thread_pool.h"
#include "runtime/trace.h"
#include "train/step.h"

namespace strata::train {

using namespace strata::model;

std::atomic<bool> g_stop_requested{false};

// What run.json holds: every option that decides the arithmetic of the run.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(FinetuneOptions, model, init, data, tokenizer, steps, batch, seq, lr, warmup,
                                   min_lr_ratio, beta1, beta2, eps, weight_decay, optimizer, offload, chunk_params,
                                   eval_every, eval_batches, val_fraction, seed, threads, prompt, sample_tokens,
                                   temperature)

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr char kDefaultCorpus[] = "/usr/share/games/fortunes";
constexpr int kRunVersion = 1;

double Now() { return MonotonicSeconds(); }

nlohmann::json OptionsToJson(const FinetuneOptions& o, const ModelConfig& cfg, const std::string& state_dir,
                             const std::string& tokenizer_name) {
  FinetuneOptions arithmetic = o;
  arithmetic.model = cfg;
  nlohmann::json j = arithmetic;  // nlohmann 3.11.2's type macros convert to nlohmann::json (keys sorted)
  j["version"] = kRunVersion;
  j["tokenizer_name"] = tokenizer_name;
  j["state_dir"] = state_dir;
  return j;
}

// Restores what decides the arithmetic of a run from run.json; what only changes the display
// (progress, quiet, trace) stays as given.
Status OptionsFromJson(const nlohmann::json& j, const std::string& where, FinetuneOptions* o, std::string* state_dir) {
  try {
    if (j.at("version").get<int>() != kRunVersion) {
      return Status::InvalidArgument(where + ": version " + j.at("version").dump() + " is not " +
                                     std::to_string(kRunVersion));
    }
    j.get_to(*o);
    j.at("state_dir").get_to(*state_dir);
  } catch (const std::exception& e) {
    return Status::Corruption(where + ": " + e.what());
  }
  return Status::Ok();
}

Status CheckOptions(const FinetuneOptions& o) {
  auto bad = [](const std::string& m) { return Status::InvalidArgument(m); };
  if (o.steps < 1) return bad("--steps: must be >= 1");
  if (o.batch < 1 || o.batch > 65536) return bad("--batch: must be in [1, 65536]");
  if (o.seq < 1) return bad("--seq: must be >= 1");
  if (!(o.lr > 0) || !std::isfinite(o.lr)) return bad("--lr: must be finite and > 0");
  if (!(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1)) return bad("--min-lr-ratio: must be in [0, 1]");
  if (o.optimizer != "adamw" && o.optimizer != "adamw8bit") {
    return bad("--optimizer " + o.optimizer + ": want adamw or adamw8bit");
  }
  if (o.activations != "keep" && o.activations != "recompute") {
    return bad("--activations " + o.activations + ": want keep or recompute");
  }
  if (o.eval_batches < 1) return bad("--eval-batches: must be >= 1");
  if (!(o.val_fraction > 0 && o.val_fraction <= 0.5)) return bad("--val-fraction: must be in (0, 0.5]");
  if (o.chunk_params % 256 != 0) return bad("--chunk: must be a multiple of 256 (one quant block)");
  if (o.threads < 0) return bad("--threads: must be >= 0");
  if (o.sample_tokens < 0) return bad("--sample: must be >= 0");
  return Status::Ok();
}

// --out must be a folder we can write; made if missing.
Status PrepareOut(const std::string& out) {
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return Status::IOError("--out " + out + ": cannot create the folder: " + ec.message());
  if (!fs::is_directory(out)) return Status::InvalidArgument("--out " + out + ": not a folder");
  const std::string probe = out + "/.strata-write-test";
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Status::IOError("--out " + out + ": not writable: " + std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
  return Status::Ok();
}

// Keeps the lines of metrics.jsonl up to step `last` (a killed run may have logged nothing past
// its last commit, or a torn line).
std::vector<Json> ReadMetrics(const std::string& path, uint64_t last) {
  std::vector<Json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step")) continue;
    if (j["step"].get<uint64_t>() > last) continue;
    lines.push_back(std::move(j));
  }
  return lines;
}

// ---- --resume's guards -------------------------------------------------------------------------
//
// --resume continues from the committed step, or refuses; it never starts over on its own when
// committed work may exist, and never runs a step on state it has not verified.
//  - The state opens: every chunk of the committed step is verified (the header, its padding
//    included, on Open; every slot's checksum here) before the first forward pass. A damaged
//    chunk is refused by name.
//  - The state has no MANIFEST (Open says NotFound): starting at step 0 is right only if no step
//    was ever committed, i.e. the run was killed after writing run.json and before its first
//    commit. A commit is proven (docs/formats/state-file.md, "A state directory without a
//    manifest") by a slot of this run holding a step >= 1 (strata inspect's CommitEvidence),
//    assumed when the header is damaged (the slots cannot be found), and proven in --out by a
//    metrics.jsonl line of a step >= 1 or by model.safetensors (both written only after a commit).
//  - Anything else wrong with the state (a corrupt manifest, a bad header) is refused.
// Starting over takes --restart, which keeps every old file under a new name first.

// What --out shows of committed steps: "" when nothing, else which file proves one.
std::string CommittedStepInOut(const std::string& out) {
  const std::vector<Json> lines = ReadMetrics(out + "/metrics.jsonl", ~uint64_t{0});
  uint64_t last = 0;
  for (const Json& j : lines) last = std::max(last, j["step"].get<uint64_t>());
  if (last > 0) return out + "/metrics.jsonl logs step " + std::to_string(last);
  std::error_code ec;
  if (fs::exists(out + "/model.safetensors", ec))
    return out + "/model.safetensors exists (a run saves it only after a committed step)";
  return "";
}

// strata inspect's report on a state directory (without the chunk checksums), indented for a
// message.
std::string QuoteInspect(const std::string& state_dir) {
  auto r = offload::InspectState(state_dir, /*verify=*/false);
  const std::string text = r.ok() ? r->ToText(false) : r.status().ToString() + "\n";
  std::string s = "\n  strata inspect " + state_dir + " says:";
  for (size_t b = 0; b < text.size();) {
    size_t e = text.find('\n', b);
    if (e == std::string::npos) e = text.size();
    s += "\n    " + text.substr(b, e - b);
    b = e + 1;
  }
  return s;
}

std::string RecoveryText(const std::string& out, const std::string& state_dir, const std::string& restore) {
  return "\n  to recover: " + restore + " and run --resume again; or start the run over from step 0 with "
         "`strata finetune --restart --out " + out + "`, which first keeps the old files (the state as " +
         state_dir + ".old-N, the outputs in " + out + "/old-N)";
}

// A state directory without a MANIFEST: Ok when no step was ever committed (the run may start
// at step 0), else Corruption saying what proves a commit and how to recover.
Status CheckNothingCommitted(const std::string& out, const std::string& state_dir, const Status& open_error) {
  offload::CommitEvidence ev = offload::CommitEvidence::kNoStateFile;
  std::string state_says = state_dir + " does not exist";
  auto r = offload::InspectState(state_dir, /*verify=*/false);
  if (r.ok()) {
    ev = r->evidence;
    state_says = r->EvidenceText();
  } else if (!r.status().IsNotFound()) {
    return r.status().WithContext("--resume: optimizer state " + state_dir);
  }
  const std::string out_says = CommittedStepInOut(out);
  if (offload::NothingCommitted(ev) && out_says.empty()) return Status::Ok();
  const std::string why = offload::NothingCommitted(ev) ? out_says + ", but " + state_says : state_says;
  return Status::Corruption("--resume: the optimizer state in " + state_dir + " is damaged, and nothing was changed:\n  " +
                            open_error.message() + "\n  " + why + ": starting over would throw committed steps away" +
                            (r.ok() ? QuoteInspect(state_dir) : std::string()) +
                            RecoveryText(out, state_dir,
                                         "restore " + state_dir + "/" + offload::kManifestName +
                                             (r.ok() ? "" : " (or the whole folder)") + " from a backup"));
}

// Open refused the state for a reason other than a missing manifest.
Status ResumeRefused(const std::string& out, const std::string& state_dir, const Status& open_error) {
  if (!open_error.IsCorruption())
    return open_error.WithContext("--resume: optimizer state " + state_dir);
  return Status::Corruption("--resume: the optimizer state in " + state_dir + " is damaged, and nothing was changed:\n  " +
                            open_error.message() + QuoteInspect(state_dir) +
                            RecoveryText(out, state_dir, "restore " + state_dir + " from a backup"));
}

// Every chunk of the committed step, checked before the first forward pass (VerifyCommitted
// reports each chunk, from the engine's threads).
Status VerifyBeforeTheFirstStep(offload::OffloadEngine& engine, const std::string& out) {
  std::mutex mu;
  std::vector<std::pair<uint64_t, Status>> bad;
  Status st = engine.VerifyCommitted([&](uint64_t c, const Status& s) {
    if (s.ok()) return;
    std::lock_guard<std::mutex> lk(mu);
    bad.emplace_back(c, s);
  });
  if (st.ok()) return st;
  if (bad.empty()) return st.WithContext("--resume: verifying the committed step");
  std::sort(bad.begin(), bad.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string m = "--resume: the committed step " + std::to_string(engine.committed_step()) + " in " + engine.dir() +
                  " does not verify: " + std::to_string(bad.size()) + " of " +
                  std::to_string(engine.geometry().n_chunks()) +
                  " chunks are damaged, so no step was run and nothing was changed:";
  constexpr size_t kListed = 8;
  for (size_t i = 0; i < bad.size() && i < kListed; ++i) m += "\n  " + bad[i].second.message();
  if (bad.size() > kListed) m += "\n  ... (strata inspect --all " + engine.dir() + " lists every chunk)";
  return Status::Corruption(m + RecoveryText(out, engine.dir(), "restore " + engine.state_path() + " from a backup"));
}

// --restart: the previous attempt's files keep their bytes under new names (the state folder as
// STATE.old-N beside it, the outputs in OUT/old-N/ with a copy of run.json); nothing is truncated
// or deleted. Refused while another process holds the state directory.
Result<std::string> KeepOldRunAside(const std::string& out, std::string state_dir) {
  while (state_dir.size() > 1 && state_dir.back() == '/') state_dir.pop_back();
  std::error_code ec;
  const bool have_state = !state_dir.empty() && fs::exists(state_dir, ec);
  int lock = -1;
  if (have_state) {
    lock = ::open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock < 0) return Status::IOError("--restart: " + state_dir + ": open: " + std::strerror(errno));
    if (::flock(lock, LOCK_EX | LOCK_NB) != 0) {
      const int e = errno;
      ::close(lock);
      if (e == EWOULDBLOCK) return Status::Unavailable("--restart: " + state_dir + " is in use by another process");
      return Status::IOError("--restart: " + state_dir + ": flock: " + std::strerror(e));
    }
  }
  struct Unlock {
    int fd;
    ~Unlock() {
      if (fd >= 0) ::close(fd);
    }
  } unlock{lock};
  int n = 1;
  while (fs::exists(out + "/old-" + std::to_string(n), ec) ||
         (have_state && fs::exists(state_dir + ".old-" + std::to_string(n), ec)))
    ++n;
  const std::string old_out = out + "/old-" + std::to_string(n);
  if (!fs::create_directory(old_out, ec) || ec)
    return Status::IOError("--restart: cannot create " + old_out + ": " + ec.message());
  for (const char* name :
       {"model.safetensors", "config.json", "metrics.jsonl", "loss.svg", "samples.txt", ".pending-step.json"}) {
    const std::string from = out + "/" + name, to = old_out + "/" + name;
    if (!fs::exists(from, ec)) continue;
    if (::rename(from.c_str(), to.c_str()) != 0)
      return Status::IOError("--restart: rename " + from + " to " + to + ": " + std::strerror(errno));
  }
  fs::copy_file(out + "/run.json", old_out + "/run.json", ec);
  if (ec) return Status::IOError("--restart: copy " + out + "/run.json to " + old_out + ": " + ec.message());
  std::string kept = "the outputs in " + old_out;
  if (have_state) {
    const std::string to = state_dir + ".old-" + std::to_string(n);
    if (::rename(state_dir.c_str(), to.c_str()) != 0)
      return Status::IOError("--restart: rename " + state_dir + " to " + to + ": " + std::strerror(errno));
    STRATA_RETURN_IF_ERROR(FsyncDir(ParentDir(state_dir)));
    kept = "the state as " + to + ", " + kept;
  }
  STRATA_RETURN_IF_ERROR(FsyncDir(old_out));
  STRATA_RETURN_IF_ERROR(FsyncDir(out));
  return kept;
}

}  // namespace

LrSchedule Schedule(const FinetuneOptions& o) { return LrSchedule{o.lr, o.warmup, o.steps, o.min_lr_ratio}; }

namespace {

// One run of `strata finetune`, in the four phases RunFinetune calls in order.
class FinetuneRun {
 public:
  explicit FinetuneRun(FinetuneOptions opt) : opt_(std::move(opt)) {}
  ~FinetuneRun() {
    if (metrics_) std::fclose(metrics_);
  }
  FinetuneRun(const FinetuneRun&) = delete;
  FinetuneRun& operator=(const FinetuneRun&) = delete;

  // run.json, every check (tokenizer, model config, corpus), the model and its first weights.
  Status SetUp();
  // The optimizer: a fresh Trainer, or on --resume the committed state, verified.
  Status MakeOptimizer();
  // metrics.jsonl as the committed steps left it, step 0's evaluation, then every step.
  Status Loop();
  // Samples, the loss plot, the trace and the summary.
  Result<FinetuneResult> Finish();

 private:
  void Say(const std::string& s) const {
    if (!opt_.quiet) std::fprintf(stderr, "%s\n", s.c_str());
  }
  Status InitWeights();  // a fresh model's seeded weights, or the --init checkpoint
  Status WriteRunJson() const {
    return WriteFileAtomic(run_json_, OptionsToJson(opt_, cfg_, state_dir_, tok_->name()).dump(2) + "\n");
  }
  Result<double> Eval();
  Status Sample(const char* when);
  Status Save(uint64_t step) const {
    SaveOptions so;
    STRATA_ASSIGN_OR_RETURN(so.dtype, ParseSaveDType(opt_.save_dtype, loaded_dtype_));
    so.max_shard_bytes = opt_.shard_bytes;
    so.base_config_json = base_config_json_;
    so.metadata = {{"strata.step", std::to_string(step)}, {"strata.optimizer", opt_.optimizer}};
    STRATA_RETURN_IF_ERROR(SaveCheckpoint(opt_.out, cfg_, model_->params(), so));
    return CopyBeside();
  }
  // The files transformers looks for beside the weights: the generation config and the tokenizer.
  Status CopyBeside() const;
  bool EvalDue(uint64_t step) const { return step == opt_.steps || (opt_.eval_every && step % opt_.eval_every == 0); }
  Status OpenMetrics();
  void LogMetrics(const Json& j) {
    std::fprintf(metrics_, "%s\n", j.dump().c_str());
    std::fflush(metrics_);
    history_.push_back(j);
  }

  FinetuneOptions opt_;
  std::string state_dir_, run_json_, data_;
  std::unique_ptr<Tokenizer> tok_;
  ModelConfig cfg_;
  TokenCorpus corpus_;
  std::unique_ptr<Model> model_;
  std::string loaded_dtype_;      // the --init checkpoint's dtype ("" for a new model)
  std::string base_config_json_;  // the --init checkpoint's config.json, whose other keys a save keeps
  Tracer tracer_;
  Tracer* tr_ = nullptr;
  std::unique_ptr<Trainer> trainer_;
  uint64_t committed_ = 0;
  Batch batch_;
  std::string samples_;
  std::vector<Json> history_;
  FILE* metrics_ = nullptr;
  std::string metrics_path_, pending_path_;
  FinetuneResult res_;
};

Status FinetuneRun::SetUp() {
  FinetuneOptions& opt = opt_;
  // --- the output folder, and run.json when resuming
  if (opt.out.empty()) {
    if (opt.resume) return Status::InvalidArgument("--resume needs --out: the folder of the run to continue");
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/strata-finetune-XXXXXX";
    if (!::mkdtemp(tmpl.data())) return Status::IOError("mkdtemp " + tmpl + ": " + std::strerror(errno));
    opt.out = tmpl;
  }
  run_json_ = opt.out + "/run.json";
  if (opt.restart) opt.resume = true;  // the same run (run.json), from step 0
  const std::string resume_flag = opt.restart ? "--restart" : "--resume";
  if (opt.resume) {
    std::ifstream in(run_json_);
    if (!in) return Status::NotFound(resume_flag + ": " + run_json_ + " not found: is --out the folder of a run?");
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) return Status::Corruption(run_json_ + ": not valid JSON");
    STRATA_RETURN_IF_ERROR(OptionsFromJson(j, run_json_, &opt, &state_dir_));
    if (opt.offload == OffloadMode::kNone && !opt.restart) {
      return Status::InvalidArgument("--resume: the run in " + opt.out +
                                     " kept its optimizer state in memory (--offload none); nothing to resume");
    }
  } else if (fs::exists(run_json_)) {
    return Status::InvalidArgument("--out " + opt.out +
                                   " already holds a run (run.json): pass --resume to continue it, --restart to "
                                   "start it over (the old files are kept), or choose another --out");
  }
  STRATA_RETURN_IF_ERROR(CheckOptions(opt));
  STRATA_RETURN_IF_ERROR(PrepareOut(opt.out));

  // --- tokenizer, model config, corpus: every check before the first step
  STRATA_ASSIGN_OR_RETURN(tok_, LoadTokenizer(opt.tokenizer));
  const Tokenizer& tok = *tok_;
  cfg_ = opt.model;
  if (opt.resume) {
    // The config was restored from run.json.
  } else if (opt.init == "new") {
    cfg_.vocab = tok.vocab_size();
    FillFamilyDefaults(&cfg_);
  } else {
    Result<ModelConfig> c = ReadCheckpointConfig(opt.init);
    if (!c.ok()) return c.status().WithContext("--init");
    cfg_ = c.value();
  }
  STRATA_RETURN_IF_ERROR(cfg_.Validate());
  if (tok.vocab_size() > cfg_.vocab) {
    return Status::InvalidArgument("--tokenizer " + opt.tokenizer + " has " + std::to_string(tok.vocab_size()) +
                                   " tokens, more than the model's vocabulary of " + std::to_string(cfg_.vocab));
  }
  if (opt.seq > cfg_.n_ctx) {
    return Status::InvalidArgument("--seq " + std::to_string(opt.seq) + " is longer than the model's context of " +
                                   std::to_string(cfg_.n_ctx) + " tokens");
  }
  data_ = opt.data.empty() ? std::string(kDefaultCorpus) : opt.data;
  if (opt.data.empty() && !fs::exists(data_)) {
    return Status::NotFound("--data: the default corpus " + data_ +
                            " is not installed (Debian package fortunes: scripts/setup.sh installs it); pass --data");
  }
  CorpusOptions co;
  co.val_fraction = opt.val_fraction;
  co.split_seed = opt.seed;
  co.verbose = false;
  Result<TokenCorpus> corpus = LoadCorpus(data_, tok, co);
  if (!corpus.ok()) return corpus.status().WithContext("--data");
  corpus_ = std::move(corpus).value();
  if (corpus_.train.size() < static_cast<size_t>(opt.seq) + 1 || corpus_.val.size() < static_cast<size_t>(opt.seq) + 1) {
    return Status::InvalidArgument("--data " + data_ + ": " + std::to_string(corpus_.train.size()) + " training and " +
                                   std::to_string(corpus_.val.size()) + " validation tokens; each needs at least --seq + 1 = " +
                                   std::to_string(opt.seq + 1));
  }

  STRATA_ASSIGN_OR_RETURN(model_, Model::Create(cfg_, opt.threads));
  model_->SetRecompute(opt.activations == "recompute");
  // The starting weights (a resumed run with committed state takes them from the state instead).
  if (!opt.resume || opt.restart || opt.offload == OffloadMode::kNone) STRATA_RETURN_IF_ERROR(InitWeights());
  Say("strata finetune: " + cfg_.ToString() + " (" + std::to_string(model_->num_params()) + " parameters), " +
      std::to_string(model_->threads()) + " threads, kernels " + ModelKernelIsa() +
      (model_->recompute() ? ", activations recomputed in backward" : ""));
  Say("  data: " + data_ + ": " + std::to_string(corpus_.files) + " file(s), " + std::to_string(corpus_.train.size()) +
      " training and " + std::to_string(corpus_.val.size()) + " validation tokens (" + tok.name() + " tokenizer)");

  if (opt.restart) {
    // Every check has passed: only now do the old files move aside.
    Result<std::string> kept = KeepOldRunAside(opt.out, state_dir_);
    if (!kept.ok()) return kept.status();
    Say("  --restart: kept " + kept.value() + "; starting at step 0");
  }
  return Status::Ok();
}

Status FinetuneRun::InitWeights() {
  if (opt_.init == "new") {
    model_->InitRandom(opt_.seed);
    return Status::Ok();
  }
  STRATA_RETURN_IF_ERROR(LoadCheckpoint(opt_.init, *model_, &loaded_dtype_).WithContext("--init"));
  Result<CheckpointPaths> p = FindCheckpoint(opt_.init);
  if (p.ok() && !p->config.empty()) STRATA_RETURN_IF_ERROR(ReadFile(p->config, &base_config_json_));
  return Status::Ok();
}

Status FinetuneRun::CopyBeside() const {
  std::error_code ec;
  std::vector<std::string> from;
  if (opt_.init != "new") {
    Result<CheckpointPaths> p = FindCheckpoint(opt_.init);
    if (p.ok()) from.push_back(p->dir);
  }
  // The tokenizer's folder (a directory or the folder of a tokenizer.json).
  if (opt_.tokenizer != "byte") {
    std::string t = opt_.tokenizer;
    if (t.rfind("gpt2:", 0) == 0) t = t.substr(5);
    from.push_back(fs::is_directory(t, ec) ? t : fs::path(t).parent_path().string());
  }
  for (const char* name : {"generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                           "vocab.json", "merges.txt", "tokenizer.model"}) {
    for (const std::string& dir : from) {
      const fs::path src = fs::path(dir) / name;
      if (dir.empty() || !fs::is_regular_file(src, ec)) continue;
      if (fs::equivalent(src, fs::path(opt_.out) / name, ec)) break;
      std::string bytes;
      STRATA_RETURN_IF_ERROR(ReadFile(src.string(), &bytes));
      STRATA_RETURN_IF_ERROR(WriteFileAtomic((fs::path(opt_.out) / name).string(), bytes));
      break;
    }
  }
  // No generation config to copy: the one transformers derives from the model's config, with the
  // tokenizer's BOS and EOS.
  const fs::path gen = fs::path(opt_.out) / "generation_config.json";
  if (!fs::exists(gen, ec)) {
    Json g = Json::object();
    g["_from_model_config"] = true;
    if (tok_->bos()) g["bos_token_id"] = *tok_->bos();
    if (tok_->eos()) g["eos_token_id"] = *tok_->eos();
    STRATA_RETURN_IF_ERROR(WriteFileAtomic(gen.string(), g.dump(2) + "\n"));
  }
  return Status::Ok();
}

Status FinetuneRun::MakeOptimizer() {
  const FinetuneOptions& opt = opt_;
  tr_ = opt.trace.empty() ? nullptr : &tracer_;
  if (tr_) tr_->SetTrackName(trace_track::kTrain, "train (forward, backward)");
  if (opt_.chunk_params == 0) opt_.chunk_params = AutoChunk(model_->num_params());
  TrainerOptions to;
  to.optimizer = opt.optimizer;
  to.beta1 = opt.beta1;
  to.beta2 = opt.beta2;
  to.eps = opt.eps;
  to.weight_decay = opt.weight_decay;
  to.offload = opt.offload;
  to.master_weights = true;  // --resume restores the weights from the committed state
  to.chunk_params = opt.chunk_params;
  to.offload_ram = opt.offload_ram;
  to.direct_io = opt.direct_io;
  to.threads = opt.threads;
  to.tracer = tr_;
  if (opt.offload != OffloadMode::kNone) {
    if (state_dir_.empty()) {
      if (!opt.offload_dir.empty()) {
        state_dir_ = opt.offload_dir;
      } else if (opt.offload == OffloadMode::kNvme) {
        state_dir_ = opt.out + "/state";
      } else {
        std::string t = "/dev/shm/strata-state-XXXXXX";
        if (!::mkdtemp(t.data())) return Status::IOError("--offload ram: mkdtemp " + t + ": " + std::strerror(errno));
        state_dir_ = t;
      }
    }
    to.state_dir = state_dir_;
    // run.json first: from here on a kill leaves a run that --resume continues (from step 0 if
    // no step was committed yet).
    if (!opt.resume) STRATA_RETURN_IF_ERROR(WriteRunJson());
    if (opt.resume && !opt.restart) {
      auto t = Trainer::Open(*model_, to);
      if (t.ok()) {
        trainer_ = std::move(t).value();
        STRATA_RETURN_IF_ERROR(VerifyBeforeTheFirstStep(*trainer_->engine(), opt.out));
      } else if (t.status().IsNotFound()) {
        // No manifest. Killed before step 0 was committed: start the run again, it is
        // deterministic. But only when nothing proves a commit (see "--resume's guards").
        STRATA_RETURN_IF_ERROR(CheckNothingCommitted(opt.out, state_dir_, t.status()));
        Say("  no committed optimizer state in " + state_dir_ + " (" + t.status().message() +
            ", and no step was ever committed): starting at step 0");
        STRATA_RETURN_IF_ERROR(InitWeights());
      } else {
        return ResumeRefused(opt.out, state_dir_, t.status());
      }
    }
  }
  if (!trainer_) {
    STRATA_ASSIGN_OR_RETURN(trainer_, Trainer::Create(*model_, to));
  }
  committed_ = trainer_->step();
  Say("  optimizer: " + trainer_->Describe());
  if (!opt.resume && opt.offload == OffloadMode::kNone) STRATA_RETURN_IF_ERROR(WriteRunJson());
  if (committed_ >= opt.steps) Say("  the run in " + opt.out + " already finished at step " + std::to_string(committed_));
  return Status::Ok();
}

Result<double> FinetuneRun::Eval() {
  double sum = 0;
  for (int i = 0; i < opt_.eval_batches; ++i) {
    DrawValBatch(corpus_.val, static_cast<uint64_t>(i), opt_.batch, opt_.seq, &batch_);
    Result<float> l = model_->Forward(batch_.inputs, batch_.targets, opt_.batch, opt_.seq);
    if (!l.ok()) return l.status();
    sum += l.value();
  }
  return sum / opt_.eval_batches;
}

Status FinetuneRun::Sample(const char* when) {
  if (opt_.sample_tokens == 0) return Status::Ok();
  std::vector<int32_t> prompt = tok_->Encode(opt_.prompt);
  if (prompt.empty()) prompt.push_back(corpus_.val[0]);
  Result<std::vector<int32_t>> s = model_->Sample(prompt, opt_.sample_tokens, opt_.temperature, 40, opt_.seed);
  if (!s.ok()) return s.status();
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), s->begin(), s->end());
  std::string text;
  STRATA_RETURN_IF_ERROR(tok_->Decode(all, &text));
  // Shown as text: an untrained byte-level model emits any byte, so control bytes and bytes that
  // are not UTF-8 print as \xNN escapes (the terminal never sees them raw).
  text = EscapeForTerminal(text);
  const std::string block = std::string("--- sample ") + when + " ---\n" + text + "\n";
  samples_ += block;
  if (!opt_.quiet) std::fprintf(stdout, "%s", block.c_str());
  std::fflush(stdout);
  return Status::Ok();
}

// metrics.jsonl keeps the lines of committed steps; a step committed and not logged (killed in
// between) is logged from .pending-step.json.
Status FinetuneRun::OpenMetrics() {
  metrics_path_ = opt_.out + "/metrics.jsonl";
  pending_path_ = opt_.out + "/.pending-step.json";
  history_ = ReadMetrics(metrics_path_, committed_);
  if (committed_ > 0 && (history_.empty() || history_.back()["step"].get<uint64_t>() < committed_)) {
    std::ifstream in(pending_path_);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Json j = Json::parse(text, nullptr, false);
    if (!j.is_discarded() && j.contains("step") && j["step"].get<uint64_t>() == committed_) {
      if (EvalDue(committed_)) {
        STRATA_ASSIGN_OR_RETURN(const double v, Eval());
        j["val_loss"] = v;
      }
      history_.push_back(std::move(j));
    }
  }
  // Rewrite what survives (on a fresh run: nothing), then append one line per step.
  std::string text;
  for (const Json& j : history_) text += j.dump() + "\n";
  STRATA_RETURN_IF_ERROR(WriteFileAtomic(metrics_path_, text));
  metrics_ = std::fopen(metrics_path_.c_str(), "a");
  if (!metrics_) return Status::IOError(metrics_path_ + ": " + std::strerror(errno));
  return Status::Ok();
}

Status FinetuneRun::Loop() {
  const FinetuneOptions& opt = opt_;
  STRATA_RETURN_IF_ERROR(OpenMetrics());
  FinetuneResult& res = res_;
  res.out = opt.out;
  res.state_dir = state_dir_;
  res.first_step = committed_;
  for (const Json& j : history_) {
    if (j["step"] == 0 && j.contains("val_loss")) res.first_val_loss = j["val_loss"];
  }
  const bool have_step0 = std::any_of(history_.begin(), history_.end(), [](const Json& j) { return j["step"] == 0; });
  if (committed_ == 0 && !have_step0) {
    STRATA_ASSIGN_OR_RETURN(const double v, Eval());
    DrawTrainBatch(corpus_.train, opt.seed, 1, opt.batch, opt.seq, &batch_);
    STRATA_ASSIGN_OR_RETURN(const float tl, model_->Forward(batch_.inputs, batch_.targets, opt.batch, opt.seq));
    res.first_val_loss = v;
    LogMetrics(Json{{"step", 0}, {"train_loss", tl}, {"val_loss", v}});
    Say("  step 0: validation loss " + std::to_string(v));
    STRATA_RETURN_IF_ERROR(Sample("before training"));
  }
  res.last_val_loss = res.first_val_loss;
  for (const Json& j : history_) {
    if (j.contains("val_loss")) res.last_val_loss = j["val_loss"];
  }

  offload::OffloadEngine* engine = trainer_->engine();
  const LrSchedule schedule = Schedule(opt);
  Progress progress(stderr, opt.steps, ProgressMode::kAuto, 10);
  const bool show = opt.progress && !opt.quiet;
  const double t_start = Now();
  uint64_t tokens_run = 0;
  double compute_s = 0;
  const uint64_t tokens_per_step = static_cast<uint64_t>(opt.batch) * opt.seq;
  for (uint64_t step = committed_ + 1; step <= opt.steps; ++step) {
    const double t0 = Now();
    const double lr = schedule.At(step);
    const offload::OffloadStats st0 = engine ? engine->stats() : offload::OffloadStats{};
    DrawTrainBatch(corpus_.train, opt.seed, step, opt.batch, opt.seq, &batch_);
    Json line{{"step", step}, {"lr", lr}};
    // The step's line, kept beside the run until the line itself is logged: a kill between the
    // commit and the log leaves it for --resume to log.
    Result<float> loss = trainer_->Step(batch_, lr, [&](float l) {
      line["train_loss"] = l;
      return WriteFileAtomic(pending_path_, line.dump(), /*sync=*/false);
    });
    if (!loss.ok()) return loss.status();
    line["train_loss"] = loss.value();
    const double t1 = Now();
    compute_s += t1 - t0;
    tokens_run += tokens_per_step;
    if (!std::isfinite(loss.value())) {
      return Status::InvalidArgument("step " + std::to_string(step) + ": the training loss is " +
                                     std::to_string(loss.value()) + "; lower --lr");
    }
    line["step_seconds"] = t1 - t0;
    line["tokens_per_s"] = tokens_per_step / (t1 - t0);
    double disk = -1;
    if (engine) {
      const offload::OffloadStats st1 = engine->stats();
      disk = static_cast<double>(st1.bytes_read - st0.bytes_read + st1.bytes_written - st0.bytes_written) / (t1 - t0) / 1e9;
      line["disk_GBps"] = disk;
      line["grad_wait_seconds"] = st1.grad_wait_seconds - st0.grad_wait_seconds;
    }
    const bool last = step == opt.steps;
    const bool stop = g_stop_requested.load();
    double val = std::nan("");
    if (last || stop || EvalDue(step)) {
      STRATA_ASSIGN_OR_RETURN(val, Eval());
      line["val_loss"] = val;
      res.last_val_loss = val;
    }
    LogMetrics(line);
    res.last_train_loss = loss.value();
    res.last_step = step;
    if (!std::isnan(val) || last || stop || (opt.save_every && step % opt.save_every == 0)) {
      STRATA_RETURN_IF_ERROR(Save(step));
    }
    if (show) {
      ProgressFields f;
      f.step = step;
      f.loss = loss.value();
      f.tokens_per_s = static_cast<double>(tokens_run) / (Now() - t_start);
      f.disk_GBps = disk;
      f.val_loss = res.last_val_loss;
      f.elapsed_s = Now() - t_start;
      progress.Update(f);
    }
    if (stop && !last) {
      progress.Finish();
      Say("  interrupted: step " + std::to_string(step) + " is committed; continue with --resume --out " + opt.out);
      res.interrupted = true;
      break;
    }
  }
  progress.Finish();
  std::fclose(metrics_);
  metrics_ = nullptr;
  // Every committed step is logged: the pending line has served.
  if (::unlink(pending_path_.c_str()) != 0 && errno != ENOENT)
    return Status::IOError(pending_path_ + ": unlink: " + std::strerror(errno));
  res.tokens_per_s = compute_s > 0 ? static_cast<double>(tokens_run) / compute_s : 0;
  if (res.last_step == 0) {
    res.last_step = committed_;
    STRATA_RETURN_IF_ERROR(Save(committed_));
  }
  return Status::Ok();
}

Result<FinetuneResult> FinetuneRun::Finish() {
  if (!res_.interrupted) STRATA_RETURN_IF_ERROR(Sample("after training"));
  if (!samples_.empty()) {
    std::ofstream o(opt_.out + "/samples.txt", std::ios::app);
    o << samples_;
  }
  PlotSpec plot;
  plot.title = "strata finetune: " + cfg_.ToString();
  plot.x_label = "step";
  plot.y_label = "loss (nats per token)";
  Series train{"train", {}, {}, "", false}, valid{"validation", {}, {}, "", true};
  for (const Json& j : history_) {
    const double s = j["step"].get<double>();
    if (j.contains("train_loss") && j["train_loss"].is_number() && j["step"] != 0) {
      train.x.push_back(s);
      train.y.push_back(j["train_loss"].get<double>());
    }
    if (j.contains("val_loss") && j["val_loss"].is_number()) {
      valid.x.push_back(s);
      valid.y.push_back(j["val_loss"].get<double>());
    }
  }
  plot.series = {train, valid};
  STRATA_RETURN_IF_ERROR(WriteSvg(opt_.out + "/loss.svg", plot));
  if (tr_) STRATA_RETURN_IF_ERROR(tracer_.WriteJson(opt_.trace));
  res_.peak_rss_bytes = PeakRssBytes();
  res_.budget_bytes = 2 * model_->num_params() * sizeof(float) + model_->activation_bytes() + trainer_->optimizer_bytes() +
                      (corpus_.train.size() + corpus_.val.size()) * sizeof(int32_t);
  return res_;
}

}  // namespace

Result<FinetuneResult> RunFinetune(FinetuneOptions opt) {
  FinetuneRun run(std::move(opt));
  STRATA_RETURN_IF_ERROR(run.SetUp());
  STRATA_RETURN_IF_ERROR(run.MakeOptimizer());
  STRATA_RETURN_IF_ERROR(run.Loop());
  return run.Finish();
}

}  // namespace strata::train
