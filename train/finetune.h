// `strata finetune`: the training job of the built-in GPT-2 model (its step: train/step.h).
//
//   data -> tokens -> batch(seed, step) -> forward -> backward, last layer first
//                                                     | each chunk's gradients as soon as they are final
//                                                     v
//             optimizer state on disk (offload/) <-> 8-bit AdamW per chunk -> new weights
//   every step commits (state + master weights), so a kill at any instant resumes at the last
//   committed step and continues bit for bit.
//
// The output folder (--out DIR), which scripts rely on:
//   DIR/model.safetensors + DIR/config.json  the latest committed weights (Hugging Face layout)
//   DIR/state/                              the optimizer state (with --offload nvme, unless nvme:PATH)
//   DIR/metrics.jsonl                        one JSON object per step: step, train_loss, lr, tokens_per_s, ...
//                                            and val_loss on the steps that evaluate
//   DIR/loss.svg                             the loss curves
//   DIR/samples.txt                          sample text before and after training
//   DIR/run.json                             everything --resume needs to continue the same run
//   DIR/old-N/, STATE.old-N                  what --restart kept of an earlier attempt
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "model/data.h"
#include "model/model.h"
#include "runtime/status.h"
#include "train/step.h"

namespace strata::train {

using model::ModelConfig;

struct FinetuneOptions {
  // Model: a checkpoint (folder or .safetensors), or "new" for a fresh model of `model`'s size.
  std::string init = "new";
  ModelConfig model;  // for "new"; vocab is taken from the tokenizer
  std::string data;  // "" = the Debian fortunes corpus
  std::string tokenizer = "byte";
  uint64_t steps = 600;
  int batch = 8;
  int seq = 128;
  double lr = 1e-3;
  uint64_t warmup = 50;
  double min_lr_ratio = 0.1;  // cosine decay ends at lr * this
  double beta1 = 0.9, beta2 = 0.99, eps = 1e-8, weight_decay = 0.0;
  std::string optimizer = "adamw8bit";  // adamw | adamw8bit
  OffloadMode offload = OffloadMode::kNvme;
  std::string offload_dir;  // "" = OUT/state (nvme) or a folder in /dev/shm (ram)
  uint64_t offload_ram = uint64_t{64} << 20;
  uint32_t chunk_params = 0;  // 0 = about a sixteenth of the model, at most 1 Mi, a multiple of 64 Ki
  bool direct_io = true;
  std::string out;  // "" = a new folder under $TMPDIR
  bool resume = false;
  // Start the run in `out` over at step 0 with its run.json, after keeping every old file under
  // a new name (the state folder as STATE.old-N, the outputs in OUT/old-N/). Implies resume's
  // reading of run.json. --resume refuses a damaged state and names this as one way out.
  bool restart = false;
  uint64_t eval_every = 50;  // 0 = only before and after
  int eval_batches = 8;
  double val_fraction = 0.05;
  int sample_tokens = 200;
  std::string prompt = "The ";
  float temperature = 0.8f;
  uint64_t seed = 1;
  int threads = 0;
  // keep: every layer's activations held from forward to backward; recompute: only each layer's
  // input, the rest recomputed inside backward (bitwise the same steps, less memory, more compute).
  std::string activations = "keep";
  std::string trace;  // Chrome trace of every step
  uint64_t save_every = 0;  // model.safetensors every N steps (0 = at evaluations and at the end)
  std::string save_dtype = "auto";  // auto (the --init checkpoint's dtype; F32 for a new model) | F32 | BF16 | F16
  uint64_t shard_bytes = uint64_t{4} << 30;  // shards of at most this (0 = one file)
  bool quiet = false;
  bool progress = true;  // the progress line (on a terminal) or periodic lines (otherwise)
};

struct FinetuneResult {
  uint64_t first_step = 0, last_step = 0;  // steps run by this call: (first_step, last_step]
  double first_val_loss = 0, last_val_loss = 0;
  double last_train_loss = 0;
  double tokens_per_s = 0;  // over the steps this call ran
  uint64_t peak_rss_bytes = 0;
  uint64_t budget_bytes = 0;  // weights + grads + activations + offload staging
  bool interrupted = false;
  std::string out;
  std::string state_dir;  // "" with --offload none
};

// Set by the caller's SIGINT handler: the loop finishes and commits the current step, saves the
// checkpoint and returns with interrupted = true.
extern std::atomic<bool> g_stop_requested;

// Checks everything (checkpoint, corpus, tokenizer, --seq against the context, --out) before the
// first step; returns the first error with the file or flag it concerns.
[[nodiscard]] Result<FinetuneResult> RunFinetune(FinetuneOptions opt);

// The learning rate of the run: warm-up, then cosine decay to lr * min_lr_ratio at the last step.
LrSchedule Schedule(const FinetuneOptions& opt);

}  // namespace strata::train
