// One training step (see step.h): forward, backward and the optimizer, in memory or offloaded.
#include "train/step.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "offload/offload_engine.h"
#include "offload/state_file.h"
#include "optim/adamw.h"
#include "runtime/thread_pool.h"
#include "runtime/trace.h"

namespace strata::train {

const char* OffloadName(OffloadMode m) {
  switch (m) {
    case OffloadMode::kNone: return "none";
    case OffloadMode::kRam: return "ram";
    case OffloadMode::kNvme: return "nvme";
  }
  return "?";
}

Status ParseOffload(const std::string& text, const std::string& flag, OffloadMode* mode, std::string* dir) {
  if (text == "none") {
    *mode = OffloadMode::kNone;
  } else if (text == "ram") {
    *mode = OffloadMode::kRam;
  } else if (text == "nvme") {
    *mode = OffloadMode::kNvme;
  } else if (text.rfind("nvme:", 0) == 0 && text.size() > 5) {
    *mode = OffloadMode::kNvme;
    *dir = text.substr(5);
  } else {
    return Status::InvalidArgument(flag + " " + text + ": want none, ram, nvme or nvme:DIR");
  }
  return Status::Ok();
}

double LrSchedule::At(uint64_t step) const {
  if (warmup > 0 && step <= warmup) return lr * static_cast<double>(step) / static_cast<double>(warmup);
  if (total_steps == 0) return lr;
  const double span = static_cast<double>(std::max<uint64_t>(1, total_steps - std::min(total_steps, warmup)));
  const double t = std::min(1.0, static_cast<double>(step - std::min(step, warmup)) / span);
  const double floor = lr * min_lr_ratio;
  return floor + 0.5 * (lr - floor) * (1.0 + std::cos(M_PI * t));
}

uint32_t AutoChunk(uint64_t n_params) {
  uint64_t c = (n_params / 16 + 65535) / 65536 * 65536;
  return static_cast<uint32_t>(std::clamp<uint64_t>(c, 65536, uint64_t{1} << 20));
}

// The optimizer state when it stays in memory.
struct Trainer::InMemory {
  std::unique_ptr<optim::AdamW8bitState> q8;
  std::vector<float> m, v;
  std::unique_ptr<ThreadPool> pool;
};

namespace {

offload::Layout LayoutOf(const TrainerOptions& o) {
  const bool q8 = o.optimizer == "adamw8bit";
  if (o.master_weights) return q8 ? offload::Layout::kQ8MasterMV : offload::Layout::kFp32MasterMV;
  return q8 ? offload::Layout::kQ8MV : offload::Layout::kFp32MV;
}

offload::OffloadOptions EngineOptions(const TrainerOptions& o) {
  offload::OffloadOptions oo;
  oo.layout = LayoutOf(o);
  oo.chunk_params = o.chunk_params;
  oo.ram_budget = o.offload_ram;
  oo.threads = 1;  // the update of one chunk is small next to backward, which holds the cores
  oo.direct = o.direct_io && o.offload == OffloadMode::kNvme;
  oo.tracer = o.tracer;
  return oo;
}

Status CheckOptions(const TrainerOptions& o) {
  if (o.optimizer != "adamw" && o.optimizer != "adamw8bit")
    return Status::InvalidArgument("--optimizer " + o.optimizer + ": want adamw or adamw8bit");
  if (o.chunk_params % 256 != 0) return Status::InvalidArgument("--chunk: must be a multiple of 256 (one quant block)");
  if (o.offload != OffloadMode::kNone && o.state_dir.empty())
    return Status::InvalidArgument("the optimizer state needs a folder (--offload " + std::string(OffloadName(o.offload)) + ")");
  return Status::Ok();
}

}  // namespace

Trainer::Trainer(model::Model& model, const TrainerOptions& o) : model_(model), opt_(o) {
  if (opt_.chunk_params == 0) opt_.chunk_params = AutoChunk(model.num_params());
}

Trainer::~Trainer() = default;

void Trainer::InitInMemory() {
  const uint64_t n = model_.num_params();
  mem_ = std::make_unique<InMemory>();
  mem_->pool = std::make_unique<ThreadPool>(opt_.threads);
  if (opt_.optimizer == "adamw8bit") {
    mem_->q8 = std::make_unique<optim::AdamW8bitState>(static_cast<int64_t>(n));
  } else {
    mem_->m.assign(n, 0.0f);
    mem_->v.assign(n, 0.0f);
  }
}

Result<std::unique_ptr<Trainer>> Trainer::Create(model::Model& model, const TrainerOptions& o) {
  STRATA_RETURN_IF_ERROR(CheckOptions(o));
  std::unique_ptr<Trainer> t(new Trainer(model, o));
  if (o.offload == OffloadMode::kNone) {
    t->InitInMemory();
    return t;
  }
  std::error_code ec;
  std::filesystem::create_directories(o.state_dir, ec);
  if (ec) return Status::IOError("--offload: cannot create " + o.state_dir + ": " + ec.message());
  const offload::StateHyper hyper{o.beta1, o.beta2, o.eps, o.weight_decay};
  const offload::OffloadOptions oo = EngineOptions(t->opt_);
  const float* p = model.params().data();
  const offload::Geometry geo{oo.layout, model.num_params(), t->opt_.chunk_params};
  auto e = offload::OffloadEngine::Create(o.state_dir, model.num_params(), hyper, oo,
                                          [&](uint64_t c, std::span<float> master) {
                                            std::memcpy(master.data(), p + geo.chunk_begin(c), master.size_bytes());
                                          });
  if (!e.ok()) return e.status().WithContext("--offload: optimizer state " + o.state_dir);
  t->engine_ = std::move(e).value();
  return t;
}

Result<std::unique_ptr<Trainer>> Trainer::Open(model::Model& model, const TrainerOptions& o) {
  STRATA_RETURN_IF_ERROR(CheckOptions(o));
  if (o.offload == OffloadMode::kNone) return Status::InvalidArgument("Trainer::Open: an optimizer in memory has no state to open");
  std::unique_ptr<Trainer> t(new Trainer(model, o));
  auto e = offload::OffloadEngine::Open(o.state_dir, EngineOptions(t->opt_));
  if (!e.ok()) return e.status();
  t->engine_ = std::move(e).value();
  const offload::Geometry& g = t->engine_->geometry();
  const uint64_t n = model.num_params();
  if (g.n_params != n)
    return Status::Corruption("optimizer state " + o.state_dir + " holds " + std::to_string(g.n_params) +
                              " parameters, the model has " + std::to_string(n));
  if (g.layout != LayoutOf(o))
    return Status::InvalidArgument("optimizer state " + o.state_dir + " has layout " + offload::LayoutName(g.layout) +
                                   ", this run wants " + offload::LayoutName(LayoutOf(o)) + " (another --optimizer?)");
  t->opt_.chunk_params = g.chunk_params;
  if (o.master_weights) {
    // The committed master weights are the model.
    for (uint64_t c = 0; c < g.n_chunks(); ++c) {
      auto slot = t->engine_->ReadCommittedSlot(c);
      if (!slot.ok()) return slot.status();
      const uint32_t len = g.chunk_len(c);
      const offload::SlotView v = offload::ViewSlot(g.layout, slot->data(), len);
      std::memcpy(model.params().data() + g.chunk_begin(c), v.master, sizeof(float) * len);
    }
  }
  return t;
}

uint64_t Trainer::step() const { return engine_ ? engine_->committed_step() : step_; }

uint64_t Trainer::optimizer_bytes() const {
  if (engine_) return engine_->staging_bytes();
  if (mem_->q8) return static_cast<uint64_t>(mem_->q8->StateBytes());
  return (mem_->m.size() + mem_->v.size()) * sizeof(float);
}

std::string Trainer::Describe() const {
  if (!engine_) return opt_.optimizer + ", state in memory (" + std::to_string(optimizer_bytes() >> 10) + " KiB)";
  return opt_.optimizer + ", state in " + engine_->dir() + " (" + OffloadName(opt_.offload) + ", " +
         offload::LayoutName(engine_->geometry().layout) + ", " + (engine_->direct_io() ? "O_DIRECT, " : "buffered, ") +
         engine_->backend_name() + ", " + std::to_string(engine_->geometry().n_chunks()) + " chunks of " +
         std::to_string(engine_->geometry().chunk_params) + " parameters, " + std::to_string(engine_->staging_buffers()) +
         " staging buffers = " + std::to_string(engine_->staging_bytes() >> 10) + " KiB)";
}

Result<float> Trainer::ForwardBackward(const model::Batch& b) {
  Tracer* tr = opt_.tracer;
  const int64_t step = static_cast<int64_t>(this->step() + 1);
  const double tf = tr ? tr->NowMicros() : 0;
  Result<float> loss = model_.Forward(b.inputs, b.targets, b.B, b.T);
  if (!loss.ok()) return loss.status();
  const double tb = tr ? tr->NowMicros() : 0;
  if (tr) tr->Complete("forward", "train", trace_track::kTrain, tf, tb - tf, {{"step", step}});
  STRATA_RETURN_IF_ERROR(model_.Backward());
  if (tr) tr->Complete("backward", "train", trace_track::kTrain, tb, tr->NowMicros() - tb, {{"step", step}});
  return loss;
}

Result<float> Trainer::StepOffloaded(const model::Batch& b, double lr, const std::function<Status(float)>& before_commit) {
  Tracer* tr = opt_.tracer;
  offload::OffloadEngine& engine = *engine_;
  const int64_t step = static_cast<int64_t>(engine.committed_step() + 1);
  const std::span<float> params = model_.params();
  const offload::Geometry& g = engine.geometry();
  // New weights of a chunk arrive on the engine's thread while backward runs on lower layers,
  // which never read them (Gpt2::Backward's on_ready contract). Without master weights the
  // update wrote them in place already.
  STRATA_RETURN_IF_ERROR(engine.BeginStep(lr, [params, g](uint64_t c, std::span<const float> w) {
    float* dst = params.data() + g.chunk_begin(c);
    if (dst != w.data()) std::memcpy(dst, w.data(), w.size_bytes());
  }));
  const std::span<float> weights = HasMaster(g.layout) ? std::span<float>{} : params;
  const double tf = tr ? tr->NowMicros() : 0;
  Result<float> loss = model_.Forward(b.inputs, b.targets, b.B, b.T);
  if (!loss.ok()) return loss.status();  // EndStep then reports the chunks never handed in
  const double tb = tr ? tr->NowMicros() : 0;
  if (tr) tr->Complete("forward", "train", trace_track::kTrain, tf, tb - tf, {{"step", step}});
  Status submit_error;
  const std::span<const float> grads = model_.grads();
  Status s = model_.Backward([&](uint64_t lo) {
    Status e = engine.SubmitReadyFrom(lo, grads, weights);
    if (!e.ok() && submit_error.ok()) submit_error = std::move(e);
  });
  STRATA_RETURN_IF_ERROR(s);
  STRATA_RETURN_IF_ERROR(submit_error);
  const double te = tr ? tr->NowMicros() : 0;
  if (tr) tr->Complete("backward", "train", trace_track::kTrain, tb, te - tb, {{"step", step}});
  if (before_commit) STRATA_RETURN_IF_ERROR(before_commit(loss.value()));
  Status e = engine.EndStep();
  if (!e.ok()) return e.WithContext("step " + std::to_string(step));
  if (tr) tr->Complete("end step (wait, commit)", "train", trace_track::kTrain, te, tr->NowMicros() - te, {{"step", step}});
  return loss;
}

Result<float> Trainer::Step(const model::Batch& b, double lr, const std::function<Status(float)>& before_commit) {
  if (engine_) return StepOffloaded(b, lr, before_commit);
  Result<float> loss = ForwardBackward(b);
  if (!loss.ok()) return loss;
  optim::AdamWConfig cfg;
  cfg.lr = lr;
  cfg.beta1 = opt_.beta1;
  cfg.beta2 = opt_.beta2;
  cfg.eps = opt_.eps;
  cfg.weight_decay = opt_.weight_decay;
  ++step_;
  Status s = mem_->q8 ? mem_->q8->Step(cfg, model_.params(), model_.grads(), mem_->pool.get())
                      : optim::AdamWStep(cfg, static_cast<int64_t>(step_), model_.params(), model_.grads(), mem_->m,
                                         mem_->v, mem_->pool.get());
  if (!s.ok()) return s;
  return loss;
}

}  // namespace strata::train
