#!/usr/bin/env python3
"""CPU training throughput of the torch peer (transformers GPT2LMHeadModel or LlamaForCausalLM), to set against strata's.

    python3 lab/peers/train_peers.py [--arch gpt2 --n-layer 4 --n-head 4 --n-embd 256 --vocab 256 --ctx 256]
                                       [--batch 8 --seq 256 --threads 2 --steps 10 --warmup 2] [--json OUT]
    python3 lab/peers/train_peers.py --arch llama --n-layer 2 --n-head 32 --kv-heads 8 --head-dim 64
                                       --n-embd 2048 --mlp 8192 --vocab 32000 --ctx 131072
                                       --rope-theta 500000 --norm-eps 1e-5 --tie --batch 2 --seq 128 ...

Builds a randomly initialised model, float32, nothing downloaded: for --arch gpt2
a GPT2LMHeadModel (tied LM head, dropout 0, gelu_new); for --arch llama a
LlamaForCausalLM (RMSNorm, rotary positions with rope_type "default" and
--rope-theta, grouped-query attention with --kv-heads, SwiGLU MLP of --mlp, no
biases, attention dropout 0, head tied with --tie). It sets
torch.set_num_threads(--threads), and times full
training steps on random token batches drawn from a fixed seed:

    logits = model(input_ids=x).logits
    loss = cross_entropy(logits.reshape(-1, V), y.reshape(-1))   # mean over batch*seq, no shift
    loss.backward(); opt.step(); opt.zero_grad()                  # torch.optim.AdamW, foreach default

after --warmup untimed steps. It does this twice: with attn_implementation
"eager" (the main figure: explicit matmul, mask, softmax, matmul) and with "sdpa"
(torch's fused scaled_dot_product_attention). It also times forward-only passes
(forward + loss under torch.no_grad()).

Reported: train tokens/s = batch*seq*steps / (total time of the timed steps),
the same from the fastest step alone ("_best", the figure least skewed by other
processes on a shared machine), the median step time, forward-only tokens/s,
the median split of a step (forward with the loss, backward, AdamW), the first and
last loss, the parameter count, torch's version, the thread
count and the load average before and after. --json OUT writes

    {"peer": "torch", "config": {...}, "train_tokens_per_s": ..., "train_tokens_per_s_sdpa": ...,
     "step_seconds_median": ..., "forward_tokens_per_s": ..., "torch": version, "threads": n, ...}
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_env  # noqa: E402

TORCH_SPEC = os.environ.get("STRATA_PEERS_TORCH", "torch==2.15.0")
TRANSFORMERS_SPEC = os.environ.get("STRATA_PEERS_TRANSFORMERS", "transformers==5.23.0")
REQUIREMENTS = [("torch", TORCH_SPEC), ("transformers", TRANSFORMERS_SPEC)]


def loadavg():
    """The 1, 5 and 15 minute load averages, or None where /proc/loadavg is absent."""
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def build(args, attn):
    import torch
    import transformers

    torch.manual_seed(args.seed)
    if args.arch == "llama":
        # transformers 5.x takes the rotary settings as one rope_parameters dict.
        cfg = transformers.LlamaConfig(
            vocab_size=args.vocab, hidden_size=args.n_embd, intermediate_size=args.mlp,
            num_hidden_layers=args.n_layer, num_attention_heads=args.n_head, num_key_value_heads=args.kv_heads,
            head_dim=args.head_dim, max_position_embeddings=args.ctx, rms_norm_eps=args.norm_eps,
            hidden_act="silu", attention_bias=False, mlp_bias=False, attention_dropout=0.0,
            tie_word_embeddings=args.tie, use_cache=False, bos_token_id=None, eos_token_id=None,
            pad_token_id=None, rope_parameters={"rope_type": "default", "rope_theta": args.rope_theta})
        model = transformers.LlamaForCausalLM._from_config(cfg, attn_implementation=attn)
        model.float().train()
        return model
    cfg = transformers.GPT2Config(
        vocab_size=args.vocab, n_positions=args.ctx, n_embd=args.n_embd, n_layer=args.n_layer, n_head=args.n_head,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
        tie_word_embeddings=True, use_cache=False, bos_token_id=None, eos_token_id=None)
    model = transformers.GPT2LMHeadModel._from_config(cfg, attn_implementation=attn)
    model.float().train()
    return model


def batches(args, n):
    import torch

    g = torch.Generator().manual_seed(args.seed + 1)
    out = []
    for _ in range(n):
        x = torch.randint(0, args.vocab, (args.batch, args.seq), generator=g)
        y = torch.randint(0, args.vocab, (args.batch, args.seq), generator=g)
        out.append((x, y))
    return out


def measure(args, attn):
    """Returns a dict of figures for one attention implementation."""
    import torch
    import torch.nn.functional as F

    model = build(args, attn)
    nparam = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    data = batches(args, min(args.warmup + args.steps, 8))
    V = args.vocab

    split = []  # (forward + loss, backward, optimizer) seconds of each step

    def step(i):
        x, y = data[i % len(data)]
        t0 = time.perf_counter()
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        opt.zero_grad()
        split.append((t1 - t0, t2 - t1, time.perf_counter() - t2))
        return loss.item()

    for i in range(args.warmup):
        step(i)
    times, losses = [], []
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(args.steps):
        t0 = time.perf_counter()
        losses.append(step(args.warmup + i))
        times.append(time.perf_counter() - t0)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    tokens = args.batch * args.seq
    res = {
        # process CPU time / (wall time * threads) over the timed steps: well below 1 when other
        # processes took the cores (or when torch left threads idle)
        "cpu_utilisation": cpu / (wall * max(1, torch.get_num_threads())),
        "train_tokens_per_s": tokens * args.steps / sum(times),
        "step_seconds_median": statistics.median(times),
        "step_seconds_min": min(times),
        "train_tokens_per_s_best": tokens / min(times),
        "step_seconds": times,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "params": nparam,
        # medians over the timed steps of each part: forward with the loss, backward, AdamW step
        "step_split_seconds": {k: statistics.median(v[j] for v in split[args.warmup:])
                               for j, k in enumerate(("forward", "backward", "optimizer"))},
    }

    model.eval()
    ftimes = []
    with torch.no_grad():
        for i in range(args.warmup + args.fwd_steps):
            x, y = data[i % len(data)]
            t0 = time.perf_counter()
            logits = model(input_ids=x).logits
            F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)).item()
            if i >= args.warmup:
                ftimes.append(time.perf_counter() - t0)
    res["forward_tokens_per_s"] = tokens * len(ftimes) / sum(ftimes)
    res["forward_tokens_per_s_best"] = tokens / min(ftimes)
    res["forward_seconds_median"] = statistics.median(ftimes)
    del model, opt
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--arch", default="gpt2", choices=["gpt2", "llama"], help="model family")
    ap.add_argument("--n-layer", type=int, default=4, help="transformer blocks")
    ap.add_argument("--n-head", type=int, default=4, help="attention heads")
    ap.add_argument("--n-embd", type=int, default=256, help="model width")
    ap.add_argument("--vocab", type=int, default=256, help="vocabulary size (tied LM head)")
    ap.add_argument("--ctx", type=int, default=256, help="n_positions (context length of the model)")
    ap.add_argument("--kv-heads", type=int, default=None, help="llama: key-value heads (None: --n-head)")
    ap.add_argument("--head-dim", type=int, default=None, help="llama: width of a head (None: --n-embd / --n-head)")
    ap.add_argument("--mlp", type=int, default=None, help="llama: intermediate_size of the SwiGLU MLP (required)")
    ap.add_argument("--rope-theta", type=float, default=10000.0, help="llama: rope_theta")
    ap.add_argument("--norm-eps", type=float, default=1e-5, help="llama: RMSNorm epsilon")
    ap.add_argument("--tie", action=argparse.BooleanOptionalAction, default=True,
                    help="llama: tie the LM head to the embedding (gpt2 is always tied)")
    ap.add_argument("--batch", type=int, default=8, help="sequences per step")
    ap.add_argument("--seq", type=int, default=256, help="tokens per sequence (<= --ctx)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps before timing (also for forward-only)")
    ap.add_argument("--fwd-steps", type=int, default=None, help="timed forward-only passes (None: as many as --steps)")
    ap.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate")
    ap.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    ap.add_argument("--seed", type=int, default=1234, help="seed of the weights and of the token batches")
    ap.add_argument("--attn", default="eager,sdpa",
                    help="attention implementations to time, comma separated; the first is the main figure")
    ap.add_argument("--json", metavar="OUT", help="write the figures as JSON to OUT ('-' for stdout)")
    args = ap.parse_args()
    if args.seq > args.ctx:
        ap.error("--seq %d is longer than --ctx %d" % (args.seq, args.ctx))
    if args.arch == "gpt2":
        if args.n_embd % args.n_head:
            ap.error("--n-embd must be a multiple of --n-head")
        if args.kv_heads not in (None, args.n_head) or args.mlp is not None or args.head_dim is not None \
                or not args.tie:
            ap.error("--kv-heads, --head-dim, --mlp and --no-tie are llama's (gpt2 has none of them)")
    else:
        if args.mlp is None:
            ap.error("--arch llama needs --mlp (intermediate_size)")
        if args.kv_heads is None:
            args.kv_heads = args.n_head
        if args.head_dim is None:
            if args.n_embd % args.n_head:
                ap.error("--n-embd must be a multiple of --n-head when --head-dim is not given")
            args.head_dim = args.n_embd // args.n_head
        if args.n_head % args.kv_heads:
            ap.error("--n-head must be a multiple of --kv-heads")
    if args.fwd_steps is None:
        args.fwd_steps = args.steps
    attns = [a.strip() for a in args.attn.split(",") if a.strip()]

    peers_env.ensure_venv(REQUIREMENTS)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    keys = ["arch", "n_layer", "n_head", "n_embd", "vocab", "ctx", "batch", "seq", "steps", "warmup", "lr",
            "weight_decay", "seed"]
    if args.arch == "llama":
        keys[4:4] = ["kv_heads", "head_dim", "mlp", "rope_theta", "norm_eps", "tie"]
    config = {k: getattr(args, k) for k in keys}
    model_name = {
        "gpt2": "transformers.GPT2LMHeadModel float32, tied head, dropout 0, gelu_new",
        "llama": "transformers.LlamaForCausalLM float32, %s head, RMSNorm, rope default, SwiGLU, no biases"
                 % ("tied" if args.tie else "untied"),
    }[args.arch]
    out = {
        "peer": "torch",
        "model": model_name,
        "optimizer": "torch.optim.AdamW (foreach default)",
        "config": config,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "cpu": peers_env.cpu_name(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
        "attn": attns[0] if attns else None,
    }
    print("torch %s (transformers %s), %d threads, %s" % (torch.__version__, transformers.__version__,
                                                        torch.get_num_threads(), out["cpu"]), flush=True)
    print("config %s" % json.dumps(config), flush=True)
    out["loadavg_start"] = loadavg()
    for j, attn in enumerate(attns):
        r = measure(args, attn)
        print("  %-6s %d params: train %.1f tokens/s (best step %.1f; median step %.4f s, min %.4f s), "
              "forward %.1f tokens/s (best %.1f), loss %.4f -> %.4f, cpu utilisation %.2f"
              % (attn, r["params"], r["train_tokens_per_s"], r["train_tokens_per_s_best"], r["step_seconds_median"],
                 r["step_seconds_min"], r["forward_tokens_per_s"], r["forward_tokens_per_s_best"], r["loss_first"],
                 r["loss_last"], r["cpu_utilisation"]), flush=True)
        print("         step split (median s): forward %.4f, backward %.4f, optimizer %.4f"
              % tuple(r["step_split_seconds"][k] for k in ("forward", "backward", "optimizer")), flush=True)
        sfx = "" if j == 0 else "_" + attn
        out["params"] = r["params"]
        for k in ("train_tokens_per_s", "train_tokens_per_s_best", "cpu_utilisation", "step_seconds_median", "step_seconds_min",
                  "forward_tokens_per_s", "forward_tokens_per_s_best", "forward_seconds_median", "loss_first",
                  "loss_last", "step_seconds", "step_split_seconds"):
            out[k + sfx] = r[k]

    out["loadavg_end"] = loadavg()
    print("load average %s at the start, %s at the end (other processes on the machine skew the figures)"
          % (out["loadavg_start"], out["loadavg_end"]))
    if args.json:
        text = json.dumps(out, indent=2) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
            with open(args.json, "w") as f:
                f.write(text)
            print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
