// One training step, for every job that trains: `strata finetune`, the swarm peer's inner steps
// (`strata swarm join`) and `strata bench train` all call Trainer::Step.
//
//   batch -> forward -> backward, last layer first --+--> optimizer in memory (AdamW, 8-bit AdamW),
//                                                    |    after backward
//                                                    +--> offloaded (offload/): each chunk's
//                                                         gradient handed in as soon as backward is
//                                                         done with it; its new weights land in the
//                                                         model while backward runs on lower layers
//
// With the state offloaded, every step commits (crash-consistent); the learning rate comes from
// an LrSchedule, the same formula for every job.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "model/data.h"
#include "model/model.h"
#include "runtime/status.h"

namespace strata {
class Tracer;
namespace offload {
class OffloadEngine;
}
}  // namespace strata

namespace strata::train {

// Where the optimizer state lives: in memory (none), in a state file on a RAM file system (ram)
// or on disk (nvme).
enum class OffloadMode { kNone, kRam, kNvme };
const char* OffloadName(OffloadMode m);
// As JSON: "none", "ram" or "nvme"; any other string is refused (nlohmann's exception, naming it).
template <class BasicJson>
void to_json(BasicJson& j, OffloadMode m) {
  j = OffloadName(m);
}
template <class BasicJson>
void from_json(const BasicJson& j, OffloadMode& m) {
  const std::string s = j.template get<std::string>();
  if (s == "none") m = OffloadMode::kNone;
  else if (s == "ram") m = OffloadMode::kRam;
  else if (s == "nvme") m = OffloadMode::kNvme;
  else throw std::invalid_argument("offload \"" + s + "\": want none, ram or nvme");
}
// "none", "ram", "nvme" or "nvme:DIR" (DIR set in *dir); InvalidArgument naming `flag` otherwise.
[[nodiscard]] Status ParseOffload(const std::string& text, const std::string& flag, OffloadMode* mode, std::string* dir);

// Learning rate at step s (1-based): linear warm-up over `warmup` steps, then a cosine decay that
// reaches lr * min_lr_ratio at step `total_steps`; total_steps == 0 keeps lr after the warm-up
// (the swarm peer, which has no last step).
struct LrSchedule {
  double lr = 1e-3;
  uint64_t warmup = 0;
  uint64_t total_steps = 0;
  double min_lr_ratio = 0.1;
  double At(uint64_t step) const;
};

struct TrainerOptions {
  std::string optimizer = "adamw8bit";  // adamw | adamw8bit
  double beta1 = 0.9, beta2 = 0.99, eps = 1e-8, weight_decay = 0.0;
  OffloadMode offload = OffloadMode::kNone;
  std::string state_dir;  // the state directory (ram, nvme)
  // The state holds fp32 master weights, and Open restores the model from them (finetune: a
  // resumed run continues bit for bit). Without (the swarm peer), the model's weights are the
  // master: the caller may change them between steps (a merge with the global theta), and the
  // offloaded update reads and writes them in place.
  bool master_weights = true;
  uint32_t chunk_params = 0;  // 0 = AutoChunk
  uint64_t offload_ram = uint64_t{64} << 20;
  bool direct_io = true;  // O_DIRECT with nvme
  int threads = 0;        // the in-memory optimizer's threads (0 = all cores)
  Tracer* tracer = nullptr;
};

// About a sixteenth of the model, a multiple of 64 Ki, in [64 Ki, 1 Mi].
uint32_t AutoChunk(uint64_t n_params);

class Trainer {
 public:
  // A fresh optimizer over the model's current weights: zero moments; with offload, a new state
  // directory holding step 0 (refused if it already holds a committed state).
  [[nodiscard]] static Result<std::unique_ptr<Trainer>> Create(model::Model& model, const TrainerOptions& o);
  // The committed state of o.state_dir (offload only). With master weights the model takes the
  // committed weights. NotFound when the folder has no manifest (no committed state).
  [[nodiscard]] static Result<std::unique_ptr<Trainer>> Open(model::Model& model, const TrainerOptions& o);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // One step at learning rate lr: forward, backward and the optimizer. With the state offloaded,
  // `before_commit` (if set) runs after backward, before the step commits: a kill after it
  // leaves the step committed or not, and the caller's file written either way.
  [[nodiscard]] Result<float> Step(const model::Batch& b, double lr,
                                   const std::function<Status(float loss)>& before_commit = {});

  uint64_t step() const;  // steps taken (with offload: the committed step)
  offload::OffloadEngine* engine() { return engine_.get(); }
  // Host memory of the optimizer: its state (in memory) or its staging buffers (offloaded).
  uint64_t optimizer_bytes() const;
  // One line for the log: the optimizer and where its state lives.
  std::string Describe() const;

 private:
  Trainer(model::Model& model, const TrainerOptions& o);
  void InitInMemory();
  Result<float> ForwardBackward(const model::Batch& b);
  Result<float> StepOffloaded(const model::Batch& b, double lr, const std::function<Status(float)>& before_commit);

  model::Model& model_;
  TrainerOptions opt_;
  uint64_t step_ = 0;  // in memory
  std::unique_ptr<offload::OffloadEngine> engine_;
  struct InMemory;
  std::unique_ptr<InMemory> mem_;
};

}  // namespace strata::train
