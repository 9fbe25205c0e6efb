#!/usr/bin/env python3
"""CPU optimizer-step throughput: strata versus peer implementations.

    python3 lab/peers/optim_peers.py [--params 100_000_000] [--threads 2]
                                       [--steps 5] [--warmup 2] [--strata PATH] [--json OUT]

Times one optimizer step (median of --steps steps after --warmup steps) on a
single flat float32 nn.Parameter of --params values with a fixed random grad,
for each peer that runs here:

  torch_foreach      torch.optim.AdamW(foreach=True)
  torch_fused        torch.optim.AdamW(fused=True)          (when torch supports it on CPU)
  torch_single       torch.optim.AdamW(foreach=False)
  bnb_adamw8bit      bitsandbytes.optim.AdamW8bit on CPU
  torchao_adamw8bit  torchao.optim.AdamW8bit on CPU          (torch.compile; warm-up compiles)
  deepspeed_cpuadam  deepspeed.ops.adam.DeepSpeedCPUAdam     (JIT-builds a C++ op)

Each peer runs in its own subprocess (memory is returned between peers, and a
crash, a failed build or a hang only costs that peer, with the reason reported).
The script also runs `strata bench optim --params N --threads T --json FILE`
(binary from --strata, $STRATA_BIN, or build/strata) and prints one
table with params/s and the ratios strata-8bit/row and strata-fp32/row.

All hyperparameters are the same for every implementation: lr 1e-3,
betas (0.9, 0.999), eps 1e-8, weight_decay 0.01 (decoupled, AdamW).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_env  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PEERS = ["torch_foreach", "torch_fused", "torch_single", "bnb_adamw8bit", "torchao_adamw8bit", "deepspeed_cpuadam"]
LABELS = {
    "strata_8bit": "strata AdamW 8-bit",
    "strata_fp32": "strata AdamW fp32",
    "torch_foreach": "torch AdamW foreach=True",
    "torch_fused": "torch AdamW fused=True",
    "torch_single": "torch AdamW foreach=False",
    "bnb_adamw8bit": "bitsandbytes AdamW8bit",
    "torchao_adamw8bit": "torchao AdamW8bit",
    "deepspeed_cpuadam": "DeepSpeedCPUAdam",
}
# optional packages: import name -> pip spec
OPTIONAL = {
    "bitsandbytes": os.environ.get("STRATA_PEERS_BNB", "bitsandbytes==0.50.2"),
    "torchao": os.environ.get("STRATA_PEERS_TORCHAO", "torchao"),
    "deepspeed": os.environ.get("STRATA_PEERS_DEEPSPEED", "deepspeed"),
}
HP = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
RESULT_TAG = "PEER_RESULT "
EIGHT_BIT = ("bnb_adamw8bit", "torchao_adamw8bit")


def parse_count(s):
    return int(float(s.replace("_", ""))) if ("e" in s.lower()) else int(s.replace("_", ""))


# ----------------------------------------------------------------------------- child: one peer


def _state_bytes(opt, p, n):
    """Optimizer-state bytes per parameter, counting 8-bit tensor subclasses by their parts."""
    import torch

    total = 0
    for v in opt.state[p].values():
        if not torch.is_tensor(v) or v.dim() == 0:
            continue
        parts = [getattr(v, a) for a in ("codes", "scale", "qmap") if torch.is_tensor(getattr(v, a, None))]
        if parts:
            total += sum(t.numel() * t.element_size() for t in parts)
        else:
            total += v.numel() * v.element_size()
    return total / n


def make_optimizer(name, p):
    import torch

    if name == "torch_foreach":
        return torch.optim.AdamW([p], foreach=True, **HP)
    if name == "torch_fused":
        return torch.optim.AdamW([p], fused=True, **HP)
    if name == "torch_single":
        return torch.optim.AdamW([p], foreach=False, **HP)
    if name == "bnb_adamw8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit([p], **HP)
    if name == "torchao_adamw8bit":
        from torchao.optim import AdamW8bit

        return AdamW8bit([p], **HP)
    if name == "deepspeed_cpuadam":
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        return DeepSpeedCPUAdam([p], adamw_mode=True, **HP)
    raise ValueError(name)


def run_peer(name, n, threads, steps, warmup):
    import torch

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(1234)
    p = torch.nn.Parameter(torch.randn(n, generator=gen, dtype=torch.float32))
    p.grad = torch.randn(n, generator=gen, dtype=torch.float32)
    t0 = time.perf_counter()
    opt = make_optimizer(name, p)
    construct_s = time.perf_counter() - t0
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.step()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
        print("[%s] step %d: %.4f s" % (name, i, dt), file=sys.stderr, flush=True)
    if not bool(torch.isfinite(p.detach()[:1000]).all()):
        raise RuntimeError("non-finite parameters after the steps")
    med = statistics.median(times)
    sbytes = _state_bytes(opt, p, n)
    note = None
    if name in EIGHT_BIT and sbytes > 4.0:
        note = "kept fp32 state (%.2f B/param), not 8-bit" % sbytes
        if name == "torchao_adamw8bit" and n % 256 != 0:
            note += ": torchao quantizes only tensors whose size is a multiple of its block size 256"
    res = {
        "name": name,
        "params_per_s": n / med,
        "median_step_s": med,
        "step_s": times,
        "construct_s": construct_s,
        "state_bytes_per_param": sbytes,
        "note": note,
        "threads": torch.get_num_threads(),
    }
    print(RESULT_TAG + json.dumps(res), flush=True)


# ----------------------------------------------------------------------------- parent


def versions():
    from importlib import metadata

    out = {}
    for dist in ("torch", "bitsandbytes", "torchao", "deepspeed", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def install_optional(wanted):
    """pip-install optional peer packages that are missing; returns {import_name: reason} for failures."""
    failed = {}
    for mod in wanted:
        _, why = peers_env.try_import(mod)
        if why is None:
            continue
        r = peers_env.pip_install([OPTIONAL[mod]], check=False)
        if r.returncode != 0:
            failed[mod] = "pip install %s failed (exit %d)" % (OPTIONAL[mod], r.returncode)
    return failed


def last_reason(text):
    keep = [l.strip() for l in text.splitlines() if l.strip()]
    errs = [l for l in keep if ("Error" in l or "error:" in l or "Exception" in l) and not l.startswith("File ")]
    return (errs or keep or ["no output"])[-1][:300]


def spawn_peer(name, args, timeout):
    cmd = [sys.executable, os.path.abspath(__file__), "--_peer", name, "--params", str(args.params),
           "--threads", str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    print("[peers] running %s ..." % name, file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s" % timeout
    wall = time.perf_counter() - t0
    if args.verbose:
        sys.stderr.write(r.stderr)
    for line in r.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            res = json.loads(line[len(RESULT_TAG):])
            res["wall_s"] = wall
            return res, None
    if r.returncode < 0:
        return None, "killed by signal %d; %s" % (-r.returncode, last_reason(r.stderr))
    return None, last_reason(r.stderr + "\n" + r.stdout)


def run_strata(args):
    path = args.strata or os.environ.get("STRATA_BIN") or os.path.join(REPO, "build", "tools", "strata")
    path = os.path.abspath(path)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return path, None, "binary not found at %s (build it, or pass --strata PATH / STRATA_BIN)" % path
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "strata_bench.json")
        cmd = [path, "bench", "optim", "--params", str(args.params), "--threads", str(args.threads), "--json", out]
        print("[peers] running " + " ".join(cmd), file=sys.stderr, flush=True)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            return path, None, "timed out after %d s" % args.timeout
        if r.returncode != 0 or not os.path.exists(out):
            return path, None, "exit %d: %s" % (r.returncode, last_reason(r.stderr + "\n" + r.stdout))
        with open(out) as f:
            return path, json.load(f), None


def fmt_rate(x):
    return "-" if x is None else "%.1f M" % (x / 1e6)


def fmt_ratio(a, b):
    return "-" if (a is None or b is None or b == 0) else "%.2fx" % (a / b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", type=parse_count, default=100_000_000, help="parameter count N (default 100_000_000)")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads, OMP_NUM_THREADS)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed warm-up steps")
    ap.add_argument("--strata", default=None, help="strata binary (default $STRATA_BIN or build/strata)")
    ap.add_argument("--json", default=None, help="write all figures to this JSON file")
    ap.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset of: " + ",".join(PEERS))
    ap.add_argument("--timeout", type=int, default=900,
                    help="seconds allowed per peer (DeepSpeed's JIT build included) and for strata")
    ap.add_argument("--no-install", action="store_true", help="do not pip-install missing optional peers")
    ap.add_argument("--verbose", action="store_true", help="show the peers' stderr")
    ap.add_argument("--_peer", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    # thread settings must be in the environment before torch / OpenMP start (children inherit them)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.environ.setdefault("DS_ACCELERATOR", "cpu")  # DeepSpeed: no GPU here, use its CPU accelerator
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

    if args._peer:
        run_peer(args._peer, args.params, args.threads, args.steps, args.warmup)
        return

    peers_env.ensure_venv([("torch", os.environ.get("STRATA_PEERS_TORCH", "torch==2.15.0"))])
    wanted = [p.strip() for p in args.peers.split(",") if p.strip()]
    for p in wanted:
        if p not in PEERS:
            sys.exit("unknown peer %r (known: %s)" % (p, ", ".join(PEERS)))
    need = {"bnb_adamw8bit": "bitsandbytes", "torchao_adamw8bit": "torchao", "deepspeed_cpuadam": "deepspeed"}
    install_failed = {}
    if not args.no_install:
        install_failed = install_optional(sorted({need[p] for p in wanted if p in need}))

    results, skipped = {}, {}
    for name in wanted:
        mod = need.get(name)
        if mod and mod in install_failed:
            skipped[name] = install_failed[mod]
            continue
        if mod:
            _, why = peers_env.try_import(mod)
            if why:
                skipped[name] = "import %s failed: %s" % (mod, why)
                continue
        res, why = spawn_peer(name, args, args.timeout)
        if res:
            results[name] = res
        else:
            skipped[name] = why

    strata_path, strata, strata_why = run_strata(args)
    s8 = s32 = None
    if strata:
        s8 = strata.get("adamw8bit_params_per_s")
        s32 = strata.get("adamw_fp32_params_per_s")

    vers = versions()
    rows = []
    if strata:
        rows.append(("strata_8bit", s8, strata.get("state_bytes_per_param_8bit")))
        rows.append(("strata_fp32", s32, strata.get("state_bytes_per_param_fp32", 8.0)))
    for name in wanted:
        if name in results:
            rows.append((name, results[name]["params_per_s"], results[name]["state_bytes_per_param"]))

    print()
    print("optimizer step, CPU, N=%d params, %d threads, median of %d steps after %d warm-up"
          % (args.params, args.threads, args.steps, args.warmup))
    print("versions: " + ", ".join("%s %s" % (k, v) for k, v in vers.items() if v and k != "numpy"))
    hdr = ("implementation", "params/s", "state B/param", "strata-8bit/this", "strata-fp32/this")
    table = [hdr] + [(LABELS[n], fmt_rate(r), "-" if b is None else "%.3f" % b, fmt_ratio(s8, r), fmt_ratio(s32, r))
                     for n, r, b in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(hdr))]
    for i, row in enumerate(table):
        print("  ".join(c.ljust(widths[0]) if j == 0 else c.rjust(widths[j]) for j, c in enumerate(row)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if strata:
        if "triad_GBps" in strata:
            print("strata triad bandwidth: %.1f GB/s" % strata["triad_GBps"])
    else:
        print("strata: not run: %s" % strata_why)
    for name, res in results.items():
        if res.get("note"):
            print("%s: %s" % (LABELS[name], res["note"]))
    for name, why in skipped.items():
        print("%s: did not run: %s" % (LABELS[name], why))

    if args.json:
        doc = {
            "params": args.params, "threads": args.threads, "steps": args.steps, "warmup": args.warmup,
            "hyperparameters": {k: list(v) if isinstance(v, tuple) else v for k, v in HP.items()},
            "versions": vers, "python": sys.version.split()[0],
            "strata": {"binary": strata_path, "result": strata, "error": strata_why},
            "peers": results, "skipped": skipped,
            "table": [{"name": n, "label": LABELS[n], "params_per_s": r, "state_bytes_per_param": b,
                       "strata_8bit_over_this": (s8 / r) if (s8 and r) else None,
                       "strata_fp32_over_this": (s32 / r) if (s32 and r) else None} for n, r, b in rows],
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        print("wrote %s" % args.json)


if __name__ == "__main__":
    main()
