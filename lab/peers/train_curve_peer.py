#!/usr/bin/env python3
"""Loss per step of the torch peer on strata finetune's default run, to set against strata's curve.

    python3 lab/peers/train_curve_peer.py [--steps 600 --lr 2e-3 --warmup 20 --min-lr-ratio 0.1]
        [--data /usr/share/games/fortunes] [--split strata|every20] [--batches strata|torch]
        [--optimizer adamw|bnb8bit] [--init torch|strata] [--init-seed N] [--init-from DIR] [--save-init DIR]
        [--threads 2] [--label NAME] [--strata-metrics [LABEL=]FILE ...] [--json OUT] [--plot OUT.png]
    python3 lab/peers/train_curve_peer.py --from-json [LABEL=]OLD.json ... --strata-metrics [LABEL=]DIR ...
        [--panel 'TITLE=LABEL#COLOR|LABEL|...' ...] [--note TEXT] --json OUT --plot OUT.png
    python3 lab/peers/train_curve_peer.py --check-checkpoint DIR [--check-train-step S]

Takes about 2.5 minutes for 600 steps on 2 idle cores (much longer when other processes compete
for them: torch's 2 threads slow down about 7x on an oversubscribed machine; --threads 1 then
fares better). Seeds (--seed) default to strata's (1).

The torch run copies `strata finetune`'s defaults:

  data      every text file under --data (walked recursively, sorted by path, a file with a NUL
            byte in its first 64 KiB skipped, a second path to the same file skipped), bytes joined
            with no separator; token = byte value, vocabulary 256.
  split     --split strata (default): the stream cut into blocks of 4096 tokens, block i held out
            when SplitMix64(...(seed, i)) / 2^64 < 0.05 (model/data.cc, Split), so the very blocks
            strata holds out; --split every20: every 20th block held out.
  batches   --batches strata (default): row b of step s starts at strata's DrawTrainBatch(seed, s, b)
            position and validation batch i is strata's DrawValBatch(i), so torch sees the same
            bytes in the same order as strata; --batches torch: uniform random windows from
            torch.Generator(seed), and validation windows spaced evenly over the held-out stream.
  model     transformers.GPT2LMHeadModel, attn_implementation "eager", float32, n_layer 4, n_head 4,
            n_embd 256, n_positions 256, vocab 256, tied head, gelu_new (tanh), dropout 0, LayerNorm
            eps 1e-5; weights normal(0, 0.02), every c_proj weight normal(0, 0.02/sqrt(2*n_layer)),
            biases 0, LayerNorm weight 1 / bias 0. --init torch (default): each weight tensor drawn
            independently by torch.Generator(seed); --init strata: strata's Gpt2::InitRandom(seed)
            as it was before commit 38fb501 (SplitMix64 + Box-Muller, tensor i seeded with
            seed*K + i*golden + 1: the correlated init this script found; docs/EXPERIMENTS.md,
            issue 4, section 6). strata's current init seeds each tensor from a hashed point.
  step      batch 8 x 128, loss = mean cross-entropy of the logits against the next byte;
            torch.optim.AdamW(betas (0.9, 0.95), eps 1e-8, weight_decay 0), no gradient clipping;
            lr at step s (1-based) = lr*s/warmup for s <= warmup, then cosine from lr down to
            lr*min_lr_ratio at step --steps (strata's ScheduledLr).
  eval      before the first step, every --eval-every steps and after the last: mean loss over
            --eval-batches fixed validation batches of the same shape.

--optimizer bnb8bit swaps in bitsandbytes.optim.AdamW8bit (block-wise 8-bit m and v, the scheme
strata's adamw8bit copies) when bitsandbytes runs on this CPU.

--save-init DIR writes torch's initial weights as DIR/model.safetensors + config.json, so that
`strata finetune --init DIR` starts from the very same weights (the two runs then see the same
weights, batches and validation bytes, and their first steps agree to float rounding when both
compute the same gradient and update); --init-from DIR makes torch start from DIR's weights.

--strata-metrics takes strata's DIR/metrics.jsonl files (or their folders); LABEL= names a curve,
otherwise the label comes from DIR/run.json (optimizer, offload, lr, init). Their curves go into
the JSON and the plot next to torch's. --from-json re-uses the torch curves of earlier --json
files instead of training again (to put many runs into one JSON and plot). --panel picks the runs
of one plot panel by label (repeat it for more panels), '#COLOR' a matplotlib colour.

--check-checkpoint DIR loads strata's DIR/model.safetensors into the same GPT2LMHeadModel and
prints its validation loss on the reproduced validation batches next to the last val_loss in
DIR/metrics.jsonl: when they agree to ~1e-5 the model, the split and the validation batches are
strata's own, so the curves are comparable point for point. --check-train-step S adds the loss of
training batch S (compare with the train_loss strata logs for step S of a run whose checkpoint
holds the weights after step S-1, e.g. a --steps S-1 run). Nothing is trained.

--json OUT writes {"peer": "torch", "config": {...}, "runs": [{"label", "source", "steps": [...],
"train_loss": [...], "val_steps": [...], "val_loss": [...]}, ...], "torch": version, ...}.
"""

import argparse
import datetime
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_env  # noqa: E402

TORCH_SPEC = os.environ.get("STRATA_PEERS_TORCH", "torch==2.15.0")
TRANSFORMERS_SPEC = os.environ.get("STRATA_PEERS_TRANSFORMERS", "transformers==5.23.0")
MATPLOTLIB_SPEC = os.environ.get("STRATA_PEERS_MATPLOTLIB", "matplotlib")
SAFETENSORS_SPEC = os.environ.get("STRATA_PEERS_SAFETENSORS", "safetensors==0.8.0")
REQUIREMENTS = [("torch", TORCH_SPEC), ("transformers", TRANSFORMERS_SPEC), ("matplotlib", MATPLOTLIB_SPEC),
                ("safetensors", SAFETENSORS_SPEC)]

M64 = (1 << 64) - 1
DOMAIN_SPLIT = 0x73706C6974  # "split", model/data.cc kDomainSplit
DOMAIN_TRAIN = 0x747261696E  # "train", kDomainTrain
BINARY_PROBE = 64 << 10


# ---- strata's counter-based hashes (model/data.cc), in Python integers ------------------------------

def mix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def hash2(a, b):
    return mix64(mix64(a) ^ b)


def hash3(a, b, c):
    return mix64(hash2(a, b) ^ c)


def unit_interval(h):
    return (h >> 11) * 2.0 ** -53


def below(h, n):
    return (h * n) >> 64


# ---- the corpus ---------------------------------------------------------------------------------------

def list_text_files(root):
    """strata's ListFolder: regular files (links to files count), sorted by path, binary and
    duplicate real paths skipped. Returns (paths, skipped_binary, skipped_duplicate)."""
    if os.path.isfile(root):
        return [root], 0, 0
    paths = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if os.path.isfile(p):
                paths.append(p)
    paths.sort(key=lambda p: p.encode("utf-8", "surrogateescape"))
    seen, out, binary, dup = set(), [], 0, 0
    for p in paths:
        real = os.path.realpath(p)
        if real in seen:
            dup += 1
            continue
        seen.add(real)
        with open(p, "rb") as f:
            if b"\0" in f.read(BINARY_PROBE):
                binary += 1
                continue
        out.append(p)
    return out, binary, dup


def load_stream(root):
    import numpy as np

    files, binary, dup = list_text_files(root)
    if not files:
        sys.exit("%s: no text files" % root)
    parts = []
    for p in files:
        with open(p, "rb") as f:
            parts.append(f.read())
    data = b"".join(parts)
    return np.frombuffer(data, dtype=np.uint8).astype(np.int64), {"files": len(files), "skipped_binary": binary,
                                                                  "skipped_duplicate": dup, "bytes": len(data)}


def split_stream(stream, how, seed, val_fraction=0.05, block=4096):
    """(train, val) numpy arrays. 'strata' copies model/data.cc Split (needs >= 2 blocks)."""
    import numpy as np

    n = len(stream)
    n_blocks = n // block
    if n_blocks < 2:
        sys.exit("corpus of %d tokens: fewer than two blocks of %d" % (n, block))
    if how == "strata":
        u = [unit_interval(hash2((seed ^ DOMAIN_SPLIT) & M64, i)) for i in range(n_blocks)]
        is_val = [x < val_fraction for x in u]
        lo = min(range(n_blocks), key=lambda i: u[i])
        hi = max(range(n_blocks), key=lambda i: u[i])
        if hi == lo:
            hi = (lo + 1) % n_blocks
        is_val[lo], is_val[hi] = True, False
    else:
        every = max(2, int(round(1.0 / val_fraction)))
        is_val = [i % every == every - 1 for i in range(n_blocks)]
    train, val = [], []
    for i in range(n_blocks):
        b, e = i * block, (n if i + 1 == n_blocks else (i + 1) * block)
        (val if is_val[i] else train).append(stream[b:e])
    return np.concatenate(train), np.concatenate(val)


def strata_train_starts(n_tokens, seed, step, B, T):
    starts = n_tokens - T
    return [below(hash3((seed ^ DOMAIN_TRAIN) & M64, step, b), starts) for b in range(B)]


def strata_val_starts(n_tokens, index, B, T):
    windows = (n_tokens - 1) // T
    stride = int(windows * 0.6180339887498949)
    while math.gcd(stride, windows) != 1:
        stride += 1
    return [((((index * B + b) % windows) * stride) % windows) * T for b in range(B)]


def make_batch(stream_t, starts, T):
    import torch

    idx = torch.tensor(starts, dtype=torch.long)[:, None] + torch.arange(T + 1)[None, :]
    w = stream_t[idx]
    return w[:, :-1].contiguous(), w[:, 1:].contiguous()


# ---- model and schedule -------------------------------------------------------------------------------

def strata_tensor_names(n_layer):
    """model/gpt2.cc Gpt2Tensors order (the index i seeds tensor i's draws in InitRandom)."""
    names = ["wte.weight", "wpe.weight"]
    for layer in range(n_layer):
        names += ["h.%d.%s" % (layer, t) for t in ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                                                  "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight",
                                                  "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                                                  "mlp.c_proj.weight", "mlp.c_proj.bias")]
    return names + ["ln_f.weight", "ln_f.bias"]


def strata_init_draws(seed, index, n, sd):
    """strata's Gpt2::InitRandom before 38fb501, for tensor `index`: SplitMix64 from state
    seed*0x2545F4914F6CDD1D + index*0x9E3779B97F4A7C15 + 1, Box-Muller on pairs of uniforms
    ((z >> 11) + 0.5) / 2^53. Returns n float32 values (numpy)."""
    import numpy as np

    m = (n + 1) // 2
    with np.errstate(over="ignore"):
        s0 = np.uint64((seed * 0x2545F4914F6CDD1D + index * 0x9E3779B97F4A7C15 + 1) & M64)
        k = np.arange(1, 2 * m + 1, dtype=np.uint64)
        z = s0 + k * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0 ** -53
    u1, u2 = u[0::2], u[1::2]
    r = np.sqrt(-2.0 * np.log(u1))
    out = np.empty(2 * m, dtype=np.float64)
    out[0::2] = sd * r * np.cos(2.0 * np.pi * u2)
    out[1::2] = sd * r * np.sin(2.0 * np.pi * u2)
    return out[:n].astype(np.float32)


def build_model(args):
    import torch
    import transformers

    cfg = transformers.GPT2Config(
        vocab_size=256, n_positions=args.ctx, n_embd=args.n_embd, n_layer=args.n_layer, n_head=args.n_head,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
        initializer_range=0.02, tie_word_embeddings=True, use_cache=False, bos_token_id=None, eos_token_id=None)
    model = transformers.GPT2LMHeadModel._from_config(cfg, attn_implementation="eager")
    model.float()
    init_seed = args.seed if getattr(args, "init_seed", None) is None else args.init_seed
    g = torch.Generator().manual_seed(init_seed)
    resid_std = 0.02 / math.sqrt(2 * args.n_layer)
    index = {"transformer." + n: i for i, n in enumerate(strata_tensor_names(args.n_layer))}
    with torch.no_grad():
        for name, p in model.named_parameters():  # lm_head.weight is wte.weight: not listed twice
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "transformer.ln_f.weight":
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.zero_()
            else:
                sd = resid_std if name.endswith("c_proj.weight") else 0.02
                if getattr(args, "init", "torch") == "strata":
                    # HF's Conv1D weight is [in, out], the layout strata stores too.
                    w = strata_init_draws(init_seed, index[name], p.numel(), sd)
                    p.copy_(torch.from_numpy(w).reshape(p.shape))
                else:
                    p.copy_(torch.randn(p.shape, generator=g) * sd)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(), "head not tied"
    return model


def load_weights(model, d):
    """strata's (or HF's) DIR/model.safetensors into `model`; the head stays tied."""
    from safetensors.torch import load_file

    sd = load_file(os.path.join(d, "model.safetensors") if os.path.isdir(d) else d)
    sd = {k: v for k, v in sd.items() if not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        sys.exit("%s: checkpoint keys: missing %s, unexpected %s" % (d, missing, unexpected))
    model.tie_weights()
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(), "head not tied"


def save_weights(model, d):
    """DIR/model.safetensors (no lm_head.weight: tied) + config.json, which `strata finetune --init DIR` reads."""
    from safetensors.torch import save_file

    os.makedirs(d, exist_ok=True)
    sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    model.config.to_json_file(os.path.join(d, "config.json"))
    print("wrote the initial weights to %s" % d, flush=True)


def scheduled_lr(args, step):
    """strata's LrSchedule (train/step.cc); step is 1-based."""
    if args.warmup > 0 and step <= args.warmup:
        return args.lr * step / args.warmup
    span = max(1, args.steps - min(args.steps, args.warmup))
    t = min(1.0, (step - min(step, args.warmup)) / span)
    floor = args.lr * args.min_lr_ratio
    return floor + 0.5 * (args.lr - floor) * (1.0 + math.cos(math.pi * t))


def make_optimizer(args, model):
    import torch

    params = list(model.parameters())
    kw = dict(lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps, weight_decay=args.weight_decay)
    if args.optimizer == "adamw":
        return torch.optim.AdamW(params, **kw), "torch.optim.AdamW (fp32 state)"
    import bitsandbytes as bnb

    return bnb.optim.AdamW8bit(params, **kw), "bitsandbytes.optim.AdamW8bit %s" % bnb.__version__


class Data:
    def __init__(self, args):
        import torch

        stream, self.info = load_stream(args.data)
        train, val = split_stream(stream, args.split, args.seed)
        self.info.update({"train_tokens": int(len(train)), "val_tokens": int(len(val)), "split": args.split,
                          "batches": args.batches})
        self.train = torch.from_numpy(train)
        self.val = torch.from_numpy(val)
        self.args = args
        B, T = args.batch, args.seq
        if args.batches == "strata":
            self.val_batches = [make_batch(self.val, strata_val_starts(len(val), i, B, T), T)
                                for i in range(args.eval_batches)]
        else:
            n = args.eval_batches * B
            w = (len(val) - T - 1) / max(1, n - 1)
            starts = [int(i * w) for i in range(n)]
            self.val_batches = [make_batch(self.val, starts[i * B:(i + 1) * B], T) for i in range(args.eval_batches)]
            self.gen = torch.Generator().manual_seed(args.seed + 1)

    def train_batch(self, step):
        import torch

        B, T = self.args.batch, self.args.seq
        if self.args.batches == "strata":
            starts = strata_train_starts(len(self.train), self.args.seed, step, B, T)
        else:
            starts = torch.randint(0, len(self.train) - T, (B,), generator=self.gen).tolist()
        return make_batch(self.train, starts, T)


def loss_of(model, x, y):
    import torch.nn.functional as F

    logits = model(input_ids=x).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def evaluate(model, data):
    import torch

    model.eval()
    with torch.no_grad():
        total = sum(loss_of(model, x, y).item() for x, y in data.val_batches)
    model.train()
    return total / len(data.val_batches)


def run_torch(args, data):
    import torch

    model = build_model(args)
    if args.init_from:
        load_weights(model, args.init_from)
    if args.save_init:
        save_weights(model, args.save_init)
    opt, opt_name = make_optimizer(args, model)
    steps, train_loss, val_steps, val_loss, lrs = [], [], [], [], []
    v0 = evaluate(model, data)
    val_steps.append(0)
    val_loss.append(v0)
    print("  step %4d  val %.4f" % (0, v0), flush=True)
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        lr = scheduled_lr(args, step)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = data.train_batch(step)
        loss = loss_of(model, x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        lv = loss.item()
        if not math.isfinite(lv):
            sys.exit("step %d: loss %r" % (step, lv))
        steps.append(step)
        train_loss.append(lv)
        lrs.append(lr)
        if step == args.steps or (args.eval_every and step % args.eval_every == 0):
            v = evaluate(model, data)
            val_steps.append(step)
            val_loss.append(v)
            print("  step %4d  train %.4f  val %.4f  lr %.3g  (%.1f s)" % (step, lv, v, lr, time.perf_counter() - t0),
                  flush=True)
    seconds = time.perf_counter() - t0
    label = args.label or "torch %s" % ("AdamW fp32" if args.optimizer == "adamw" else "bnb AdamW8bit")
    return {"label": label,
            "source": "torch", "optimizer": opt_name, "steps": steps, "train_loss": train_loss, "lr": lrs,
            "val_steps": val_steps, "val_loss": val_loss, "seconds": seconds, "threads": torch.get_num_threads(),
            "init": args.init, "init_seed": args.seed if args.init_seed is None else args.init_seed,
            "init_from": args.init_from, "params": sum(p.numel() for p in model.parameters())}


# ---- strata's metrics ---------------------------------------------------------------------------------

def read_strata(spec):
    label, path = None, spec
    if "=" in spec and not os.path.exists(spec):
        label, path = spec.split("=", 1)
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.jsonl")
    run = {}
    rj = os.path.join(os.path.dirname(os.path.abspath(path)), "run.json")
    if os.path.exists(rj):
        with open(rj) as f:
            run = json.load(f)
    if label is None:
        label = "strata %s" % {"adamw8bit": "AdamW 8-bit", "adamw": "AdamW fp32"}.get(run.get("optimizer"),
                                                                                      run.get("optimizer", "?"))
        extra = []
        if run.get("offload") not in (None, "nvme"):
            extra.append("offload %s" % run["offload"])
        if run.get("lr") not in (None, 2e-3):
            extra.append("lr %g" % run["lr"])
        if run.get("init") not in (None, "new"):
            extra.append("init %s" % run["init"])
        if extra:
            label += " (" + ", ".join(extra) + ")"
    steps, train_loss, val_steps, val_loss, secs = [], [], [], [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            j = json.loads(line)
            s = int(j["step"])
            if s > 0 and "train_loss" in j:
                steps.append(s)
                train_loss.append(float(j["train_loss"]))
                secs.append(float(j.get("step_seconds", 0.0)))
            if "val_loss" in j:
                val_steps.append(s)
                val_loss.append(float(j["val_loss"]))
    keep = {k: run[k] for k in ("init", "optimizer", "offload", "threads", "lr", "steps", "batch", "seq", "warmup",
                                "min_lr_ratio", "beta1", "beta2", "eps", "weight_decay", "seed", "model") if k in run}
    return {"label": label, "source": os.path.abspath(path), "strata_run": keep, "steps": steps,
            "train_loss": train_loss, "val_steps": val_steps, "val_loss": val_loss, "seconds": sum(secs)}


def val_at(run, step):
    for s, v in zip(run["val_steps"], run["val_loss"]):
        if s == step:
            return v
    return None


# ---- the plot -----------------------------------------------------------------------------------------

COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def smooth(y, k):
    out, acc = [], 0.0
    for i, v in enumerate(y):
        acc += v
        if i >= k:
            acc -= y[i - k]
        out.append(acc / min(i + 1, k))
    return out


def parse_panel(spec):
    """'TITLE=LABEL[#COLOR]|LABEL[#COLOR]|...' -> (title, [(label, color or None)])."""
    title, _, labels = spec.partition("=")
    out = []
    for x in labels.split("|"):
        if x:
            lab, _, color = x.partition("#")
            out.append((lab, color or None))
    return title, out


def plot(runs, out, title, panels):
    """One panel per (title, labels) in `panels` (all runs in one panel when empty): validation loss
    with markers, train loss faint (raw, and smoothed over 25 steps; only in panels of at most 4
    runs); torch dashed, strata solid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_label = {r["label"]: r for r in runs}
    if not panels:
        panels = [("", [(r["label"], None) for r in runs])]
    for _, labels in panels:
        for lab, _ in labels:
            if lab not in by_label:
                sys.exit("--panel: no run labelled %r (runs: %s)" % (lab, ", ".join(by_label)))
    color = {r["label"]: COLORS[i % len(COLORS)] for i, r in enumerate(runs)}
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    lo = min(min(r["val_loss"]) for r in runs)
    for ax, (ptitle, labels) in zip(axes[0], panels):
        for lab, forced in labels:
            r = by_label[lab]
            c = forced or color[lab]
            ls = "--" if r["source"] == "torch" else "-"
            if len(labels) <= 4:  # more train curves than that only hide the validation ones
                ax.plot(r["steps"], r["train_loss"], color=c, lw=0.5, alpha=0.12)
                ax.plot(r["steps"], smooth(r["train_loss"], 25), color=c, lw=0.8, alpha=0.35, ls=ls)
            ax.plot(r["val_steps"], r["val_loss"], color=c, lw=1.7, ls=ls, marker="o", ms=3,
                    label="%s: %.3f" % (lab, r["val_loss"][-1]))
        ax.set_ylim(lo - 0.08, 3.6)
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats per byte)")
        ax.grid(alpha=0.3)
        ax.set_title(ptitle, fontsize=9)
        ax.legend(fontsize=7.5, title="validation loss at the last step", title_fontsize=7.5)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    print("wrote %s" % out)


def dump_json(out):
    """Indented JSON with each run's lists on one line each (the curves stay readable and short)."""
    def rnd(v):
        return [round(x, 6) if isinstance(x, float) else x for x in v] if isinstance(v, list) else v

    head = {k: v for k, v in out.items() if k != "runs"}
    lines = json.dumps(head, indent=1)[:-2].rstrip().rstrip(",") + ",\n \"runs\": [\n"
    rows = []
    for r in out.get("runs", []):
        keys = [k for k in r if k != "lr"]  # the schedule is in the config
        rows.append("  {\n" + ",\n".join("   %s: %s" % (json.dumps(k), json.dumps(rnd(r[k]), separators=(",", ":")))
                                         for k in keys) + "\n  }")
    return lines + ",\n".join(rows) + "\n ]\n}\n"


# ---- main ---------------------------------------------------------------------------------------------

def check_checkpoint(args, data):
    import torch

    d = args.check_checkpoint
    model = build_model(args)
    load_weights(model, d)
    v = evaluate(model, data)
    if args.check_train_step:
        x, y = data.train_batch(args.check_train_step)
        with torch.no_grad():
            print("torch loss of training batch %d on this checkpoint: %.6f"
                  % (args.check_train_step, loss_of(model.eval(), x, y).item()))
    last = None
    with open(os.path.join(d, "metrics.jsonl")) as f:
        for line in f:
            j = json.loads(line)
            if "val_loss" in j:
                last = (j["step"], j["val_loss"])
    print("torch val loss of %s/model.safetensors on the reproduced validation batches: %.6f" % (d, v))
    if last:
        print("strata's val_loss at step %d: %.6f (difference %.2e)" % (last[0], last[1], v - last[1]))
    return v, last


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", default="/usr/share/games/fortunes", help="text file or folder (strata's default)")
    ap.add_argument("--split", choices=("strata", "every20"), default="strata", help="validation blocks")
    ap.add_argument("--batches", choices=("strata", "torch"), default="strata", help="batch positions")
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=256)
    ap.add_argument("--ctx", type=int, default=256, help="n_positions")
    ap.add_argument("--batch", type=int, default=8, help="sequences per step")
    ap.add_argument("--seq", type=int, default=128, help="tokens per sequence")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    ap.add_argument("--warmup", type=int, default=20, help="linear warm-up steps")
    ap.add_argument("--min-lr-ratio", type=float, default=0.1, help="cosine decay ends at lr times this")
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--optimizer", choices=("adamw", "bnb8bit"), default="adamw")
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--eval-batches", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1, help="split, batches (strata's --seed) and torch's init")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--strata-metrics", nargs="*", default=[], metavar="[LABEL=]FILE",
                    help="strata metrics.jsonl files (or run folders) to put beside torch's curve")
    ap.add_argument("--from-json", nargs="*", default=[], metavar="[LABEL=]FILE",
                    help="take torch runs from earlier --json files instead of training (LABEL= renames)")
    ap.add_argument("--init", choices=("torch", "strata"), default="torch",
                    help="initial weights: torch.randn per tensor, or strata's pre-38fb501 InitRandom(--seed) reproduced")
    ap.add_argument("--init-seed", type=int, help="seed of the initial weights (default: --seed)")
    ap.add_argument("--label", help="name of the torch curve (default: from --optimizer)")
    ap.add_argument("--init-from", metavar="DIR", help="start from the weights in DIR/model.safetensors")
    ap.add_argument("--save-init", metavar="DIR",
                    help="write the initial weights to DIR (for strata finetune --init DIR: the same start)")
    ap.add_argument("--check-checkpoint", metavar="DIR", help="evaluate strata's checkpoint in DIR and exit")
    ap.add_argument("--check-train-step", type=int, metavar="S",
                    help="with --check-checkpoint: also the loss of training batch S on the checkpoint")
    ap.add_argument("--json", metavar="OUT", help="write curves and figures as JSON ('-' for stdout)")
    ap.add_argument("--plot", metavar="OUT.png", help="write the plot")
    ap.add_argument("--panel", action="append", default=[], metavar="TITLE=LABEL[#COLOR]|...",
                    help="a plot panel with these runs, optionally coloured (repeat for more panels; "
                         "default: one panel with all runs)")
    ap.add_argument("--note", help="a sentence about the runs, kept in the JSON")
    ap.add_argument("--title", default="strata finetune vs torch: GPT-2 4x256 byte-level on fortunes, "
                                        "batch 8x128, lr 2e-3 cosine, AdamW (0.9, 0.95)")
    args = ap.parse_args()

    peers_env.ensure_venv(REQUIREMENTS)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    transformers.utils.logging.set_verbosity_error()

    need_data = bool(args.check_checkpoint or not args.from_json)
    data = Data(args) if need_data else None
    if data:
        print("data %s: %s" % (args.data, json.dumps(data.info)), flush=True)
    if args.check_checkpoint:
        check_checkpoint(args, data)
        return

    runs = []
    out = None
    for spec in args.from_json:
        label, path = None, spec
        if "=" in spec and not os.path.exists(spec):
            label, path = spec.split("=", 1)
        with open(path) as f:
            old = json.load(f)
        if out is None:
            out = old
        got = [r for r in old["runs"] if r["source"] == "torch"]
        for r in got:
            r["config"] = old.get("config")
            if label:
                r["label"] = label if len(got) == 1 else "%s (%s)" % (label, r["label"])
        runs += got
    if not args.from_json:
        print("torch %s (transformers %s), %d threads, %s" % (torch.__version__, transformers.__version__,
                                                            torch.get_num_threads(), peers_env.cpu_name()), flush=True)
        runs.append(run_torch(args, data))
    for spec in args.strata_metrics:
        runs.append(read_strata(spec))
    if out is None:
        config = {k: getattr(args, k) for k in (
            "data", "split", "batches", "n_layer", "n_head", "n_embd", "ctx", "batch", "seq", "steps", "lr", "warmup",
            "min_lr_ratio", "beta1", "beta2", "eps", "weight_decay", "optimizer", "eval_every", "eval_batches", "seed",
            "threads", "init", "init_seed", "init_from", "save_init")}
        out = {"peer": "torch",
               "model": "transformers.GPT2LMHeadModel eager float32, tied head, dropout 0, gelu_new",
               "config": config, "data_info": data.info, "torch": torch.__version__,
               "transformers": transformers.__version__, "threads": torch.get_num_threads(), "cpu": peers_env.cpu_name(),
               "nproc": os.cpu_count(),
               "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")}
    if args.note:
        out["note"] = args.note
    out["runs"] = runs
    marks = [0, 100, 300, args.steps]
    out["val_loss_at"] = {r["label"]: {str(s): val_at(r, s) for s in marks} for r in runs}
    print("validation loss (nats per byte) at steps %s:" % marks)
    for r in runs:
        vals = [val_at(r, s) for s in marks]
        print("  %-34s %s" % (r["label"], "  ".join("%.4f" % v if v is not None else "   -  " for v in vals)))
    if args.json:
        text = dump_json(out)
        if args.json == "-":
            sys.stdout.write(text)
        else:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json, "w") as f:
                f.write(text)
            print("wrote %s" % args.json)
    if args.plot:
        plot(runs, args.plot, args.title, [parse_panel(p) for p in args.panel])


if __name__ == "__main__":
    main()
