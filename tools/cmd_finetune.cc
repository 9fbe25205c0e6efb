// `strata finetune` (the main job) and `strata eval` (the loss of a checkpoint on a fixed batch).
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "train/finetune.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "tools/commands.h"

namespace strata::tools {
namespace {

struct FinetuneFlags {
  train::FinetuneOptions opt;
  std::string offload = "nvme";
  bool no_progress = false;
  bool buffered = false;
};

void OnStopSignal(int) { train::g_stop_requested.store(true); }

int RunFinetuneCommand(FinetuneFlags& f) {
  train::FinetuneOptions& o = f.opt;
  if (Status s = train::ParseOffload(f.offload, "--offload", &o.offload, &o.offload_dir); !s.ok()) {
    std::fprintf(stderr, "strata finetune: %s\n", s.message().c_str());
    return 2;
  }
  o.progress = !f.no_progress;
  o.direct_io = !f.buffered;
  // Ctrl-C (or SIGTERM) finishes and commits the current step; a second one stops at once.
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  auto r = train::RunFinetune(o);
  if (!r.ok()) {
    std::fprintf(stderr, "strata finetune: %s\n", r.status().ToString().c_str());
    return 1;
  }
  const train::FinetuneResult& res = r.value();
  if (!o.quiet) {
    const double ratio = res.first_val_loss > 0 ? res.last_val_loss / res.first_val_loss : 0;
    std::fprintf(stderr,
                 "\nstrata finetune: %s at step %llu\n"
                 "  validation loss %.4f -> %.4f (%.0f%% of the first)\n"
                 "  %.0f tokens/s over this run's steps; peak RSS %.0f MiB (weights, grads, activations, "
                 "staging and tokens: %.0f MiB)\n"
                 "  checkpoint: %s (config.json + safetensors; loads in transformers)\n"
                 "  loss plot:  %s/loss.svg\n"
                 "  metrics:    %s/metrics.jsonl\n"
                 "  samples:    %s/samples.txt\n",
                 res.interrupted ? "interrupted" : "done", static_cast<unsigned long long>(res.last_step),
                 res.first_val_loss, res.last_val_loss, 100 * ratio, res.tokens_per_s,
                 res.peak_rss_bytes / 1048576.0, res.budget_bytes / 1048576.0, res.out.c_str(), res.out.c_str(),
                 res.out.c_str(), res.out.c_str());
    if (o.offload != train::OffloadMode::kNone) {
      std::fprintf(stderr, "  state:      %s%s\n", res.state_dir.c_str(),
                   o.offload == train::OffloadMode::kRam ? " (in memory until removed: rm -r it when done)" : "");
      std::fprintf(stderr, "  resume:     strata finetune --resume --out %s\n", res.out.c_str());
    }
  }
  return 0;
}

struct EvalFlags {
  std::string init, batch_file, json;
  int threads = 0;
};

// The loss of a checkpoint on the inputs/targets of a safetensors batch file (as the reference
// scripts write them): the other half of the transformers round trip.
int RunEval(const EvalFlags& f) {
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "strata eval: %s\n", s.ToString().c_str());
    return 1;
  };
  auto cfg = model::ReadCheckpointConfig(f.init);
  if (!cfg.ok()) return fail(cfg.status());
  auto m = model::Model::Create(cfg.value(), f.threads);
  if (!m.ok()) return fail(m.status());
  if (Status s = model::LoadCheckpoint(f.init, *m.value()); !s.ok()) return fail(s);
  auto batch = model::SafetensorsFile::Open(f.batch_file);
  if (!batch.ok()) return fail(batch.status());
  const model::TensorInfo* in = batch->Find("inputs");
  if (!in || in->shape.size() != 2) {
    return fail(Status::InvalidArgument(f.batch_file + ": want a tensor \"inputs\" of shape [B, T]"));
  }
  auto inputs = batch->ReadI32("inputs");
  auto targets = batch->ReadI32("targets");
  if (!inputs.ok()) return fail(inputs.status());
  if (!targets.ok()) return fail(targets.status());
  auto loss = m.value()->Forward(inputs.value(), targets.value(), static_cast<int>(in->shape[0]),
                                 static_cast<int>(in->shape[1]));
  if (!loss.ok()) return fail(loss.status());
  nlohmann::json j{{"loss", loss.value()}, {"checkpoint", f.init}, {"batch", f.batch_file},
                   {"B", in->shape[0]}, {"T", in->shape[1]}, {"arch", cfg->arch}};
  if (f.json == "-") {
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("loss %.7f on %lld x %lld tokens\n", loss.value(), static_cast<long long>(in->shape[0]),
              static_cast<long long>(in->shape[1]));
  return f.json.empty() ? 0 : WriteJsonFigures("eval", f.json, j);
}

}  // namespace

void AddFinetuneCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<FinetuneFlags>();
  train::FinetuneOptions& o = flags->opt;
  auto* cmd = app.add_subcommand(
      "finetune",
      "Fine-tune (or train from scratch) a GPT-2, Llama, Mistral or Qwen2 model on text, with the optimizer state\n"
      "offloaded to disk in 8-bit blocks, updated chunk by chunk while backward runs.\n"
      "With no flags: a small byte-level model (about 3 M parameters) on the Debian fortunes corpus,\n"
      "state on disk in a new temporary folder, a few minutes on two cores.\n\n"
      "Output (--out DIR): model.safetensors + config.json (latest committed weights, loadable by\n"
      "transformers), state/ (optimizer state), metrics.jsonl, loss.svg, samples.txt, run.json.\n"
      "Ctrl-C finishes and commits the current step; --resume --out DIR continues bit for bit, also\n"
      "after a kill -9. --resume first verifies every chunk of the committed step, and refuses (naming\n"
      "the file and chunk) a damaged or incomplete state instead of starting over; --restart --out DIR\n"
      "starts the run over at step 0 and keeps the old files (state as STATE.old-N, outputs in DIR/old-N).\n\n"
      "Examples:\n"
      "  strata finetune\n"
      "  strata finetune --data notes/ --steps 2000 --out runs/notes\n"
      "  strata finetune --init gpt2/ --tokenizer gpt2/ --data book.txt --seq 256 --batch 4 --lr 1e-4 \\\n"
      "      --offload nvme:/mnt/nvme/state --out runs/book\n"
      "  strata finetune --init Llama-3.2-1B/ --tokenizer Llama-3.2-1B/ --data book.txt --lr 2e-5 --out runs/l1b\n"
      "  strata finetune --arch llama --layers 4 --heads 8 --kv-heads 2 --width 256 --mlp 704 --tokenizer tok/\n"
      "  strata finetune --resume --out runs/book\n"
      "  strata --config book.toml finetune      (flags from [finetune] in book.toml)");
  cmd->add_option("--init", o.init,
                  "Start from a checkpoint: a Hugging Face folder (config.json + model.safetensors or shards with "
                  "model.safetensors.index.json; gpt2, llama, mistral or qwen2), or a .safetensors file; or 'new' "
                  "for a fresh model sized by --arch/--layers/--heads/--width/--context/...")
      ->capture_default_str();
  cmd->add_option("--arch", o.model.arch, "Family of a new model: gpt2, llama, mistral or qwen2")
      ->capture_default_str()->check(CLI::IsMember(model::ModelArchs()));
  cmd->add_option("--layers", o.model.n_layer, "Layers of a new model")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--kv-heads", o.model.n_kv_head, "Key-value heads of a new llama-family model (0 = --heads)")
      ->capture_default_str()->check(CLI::Range(0, 1024));
  cmd->add_option("--head-dim", o.model.head_dim, "Head size of a new llama-family model (0 = width / heads)")
      ->capture_default_str()->check(CLI::Range(0, 4096));
  cmd->add_option("--mlp", o.model.n_mlp, "MLP width (intermediate_size) of a new llama-family model (0 = 8/3 width, "
                  "rounded up to 64)")
      ->capture_default_str()->check(CLI::Range(0, 1 << 20));
  cmd->add_option("--rope-theta", o.model.rope_theta, "Rotary base of a new llama-family model")->capture_default_str();
  cmd->add_option("--sliding-window", o.model.sliding_window, "Attention window of a new mistral model (0 = none)")
      ->capture_default_str()->check(CLI::Range(0, 1 << 20));
  cmd->add_flag("--untied{false},--tied", o.model.tie_embeddings,
                "A new llama-family model with its own output head (--untied) or the embedding's (--tied)");
  cmd->add_option("--heads", o.model.n_head, "Attention heads of a new model")->capture_default_str()->check(CLI::Range(1, 1024));
  cmd->add_option("--width", o.model.n_embd, "Width (n_embd) of a new model; a multiple of --heads")
      ->capture_default_str()->check(CLI::Range(1, 65536));
  cmd->add_option("--context", o.model.n_ctx, "Context length (positions) of a new model")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--data", o.data,
                  "Text file, folder of text files, or token file (default: /usr/share/games/fortunes)");
  cmd->add_option("--tokenizer", o.tokenizer,
                  "'byte', a folder with encoder.json + vocab.bpe or tokenizer.json, or a tokenizer.json")
      ->capture_default_str();
  cmd->add_option("--steps", o.steps, "Optimizer steps in total (a resumed run keeps its own)")
      ->capture_default_str()->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40));
  cmd->add_option("--batch", o.batch, "Sequences per step")->capture_default_str()->check(CLI::Range(1, 65536));
  cmd->add_option("--seq", o.seq, "Tokens per sequence (at most the model's context)")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--lr", o.lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--warmup", o.warmup, "Steps of linear warm-up; then cosine decay")->capture_default_str();
  cmd->add_option("--min-lr-ratio", o.min_lr_ratio, "The cosine decay ends at lr times this")->capture_default_str();
  cmd->add_option("--weight-decay", o.weight_decay, "Decoupled weight decay (AdamW)")->capture_default_str();
  cmd->add_option("--beta2", o.beta2, "AdamW's beta2")->capture_default_str();
  cmd->add_option("--optimizer", o.optimizer, "adamw8bit (8-bit m and v) or adamw (fp32 m and v)")
      ->capture_default_str()->check(CLI::IsMember({"adamw", "adamw8bit"}));
  cmd->add_option("--offload", flags->offload,
                  "Where the optimizer state lives: nvme (OUT/state), nvme:DIR, ram (a file in /dev/shm), or none "
                  "(in memory, updated after backward; no --resume)")
      ->capture_default_str();
  cmd->add_option("--offload-ram", o.offload_ram, "Staging memory for the offloaded state, e.g. 64MiB")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  cmd->add_option("--chunk", o.chunk_params, "Parameters per offload chunk (0 = about 1/16 of the model, at most 1 Mi)")
      ->capture_default_str();
  cmd->add_flag("--buffered", flags->buffered, "Offload through the page cache instead of O_DIRECT");
  cmd->add_option("--out", o.out, "Output folder (default: a new folder under $TMPDIR)");
  cmd->add_flag("--resume", o.resume,
                "Continue the run in --out from its last committed step, after verifying it; a damaged state "
                "is refused, never started over");
  cmd->add_flag("--restart", o.restart,
                "Start the run in --out over at step 0 with its run.json, after keeping its old files under new "
                "names (the state folder as STATE.old-N, the outputs in OUT/old-N); deletes nothing");
  cmd->add_option("--eval-every", o.eval_every, "Validation loss every N steps (and before and after)")
      ->capture_default_str();
  cmd->add_option("--eval-batches", o.eval_batches, "Validation batches per evaluation")->capture_default_str();
  cmd->add_option("--val-fraction", o.val_fraction, "Share of the corpus held out for validation")->capture_default_str();
  cmd->add_option("--sample", o.sample_tokens, "Tokens of sample text before and after training (0 = none)")
      ->capture_default_str();
  cmd->add_option("--prompt", o.prompt, "Start of the sample text")->capture_default_str();
  cmd->add_option("--temperature", o.temperature, "Sampling temperature (0 = greedy)")->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of the initial weights, the batches and the split")->capture_default_str();
  cmd->add_option("--threads", o.threads, "Compute threads (0 = all cores); results are bitwise reproducible per count")
      ->capture_default_str();
  cmd->add_option("--activations", o.activations,
                  "keep (every layer's activations from forward to backward) or recompute (only each layer's input; "
                  "the rest recomputed in backward: bitwise the same steps in about 1/layers of the activation "
                  "memory, for a second forward's compute)")
      ->capture_default_str()->check(CLI::IsMember({"keep", "recompute"}));
  cmd->add_option("--trace", o.trace, "Write a Chrome trace (chrome://tracing, Perfetto) of every step to FILE");
  cmd->add_option("--save-every", o.save_every, "Write model.safetensors every N steps (0 = at evaluations and the end)")
      ->capture_default_str();
  cmd->add_option("--save-dtype", o.save_dtype,
                  "dtype of the saved weights: auto (the --init checkpoint's, F32 for a new model), F32, BF16, F16")
      ->capture_default_str()->check(CLI::IsMember({"auto", "F32", "BF16", "F16"}));
  cmd->add_option("--shard-size", o.shard_bytes, "Shards of model.safetensors of at most this, e.g. 4GiB (0 = one file)")
      ->capture_default_str()->transform(CLI::AsSizeValue(false));
  cmd->add_flag("--quiet", o.quiet, "Print errors only");
  cmd->add_flag("--no-progress", flags->no_progress, "No progress line");
  cmd->callback([flags, exit_code] { *exit_code = RunFinetuneCommand(*flags); });

  auto eflags = std::make_shared<EvalFlags>();
  auto* ev = app.add_subcommand(
      "eval",
      "The loss of a checkpoint on a fixed batch (a safetensors file with int tensors \"inputs\" and\n"
      "\"targets\" of shape [B, T]), e.g. to compare with transformers on the same weights.\n"
      "Example: strata eval --init runs/x --batch-file batch.safetensors --json -");
  ev->add_option("--init", eflags->init, "Checkpoint folder or .safetensors file")->required();
  ev->add_option("--batch-file", eflags->batch_file, "safetensors file with inputs and targets")->required();
  ev->add_option("--json", eflags->json, "Write {\"loss\": ...} to FILE, or to stdout with -");
  ev->add_option("--threads", eflags->threads, "Compute threads (0 = all cores)");
  ev->callback([eflags, exit_code] { *exit_code = RunEval(*eflags); });
}

}  // namespace strata::tools
