#!/usr/bin/env python3
"""The swarm's convergence experiment: asynchronous peers with a straggler against synchronous
DiLoCo, at equal total compute, as real processes on loopback.

    python3 lab/swarm_convergence.py --strata build/strata
    python3 lab/swarm_convergence.py --plot-only lab/results/swarm_convergence_DATE.json

Every run starts `strata swarm serve` and four `strata swarm join` peers on shards of the fortunes
corpus; peer 3 is a straggler (`--slowdown 4`: each of its inner steps takes four times as long).

Equal compute. A run stops once the aggregator has *received* contributions worth T inner steps
(--total-steps), summed over all peers, counting refused (too stale) ones too: compute a
configuration wastes still counts. The harness tails the aggregator's metrics.jsonl, and at T
sends SIGINT to the peers and then to the aggregator. Work after T is ignored.

Evaluation, offline, so that it costs no config any training time. No peer evaluates
(`--eval-every 0`). The aggregator writes snapshot.bin (theta) every S versions, S chosen so that a
snapshot falls every --snap-contribs contributions in every mode (a synchronous version is
4 contributions). The harness copies each snapshot as it appears (the aggregator replaces it
atomically), and after the run evaluates each copy with `strata eval` on a fixed batch: the first
--eval-batches validation batches of 8 x 64 tokens exactly as a peer draws them (the corpus'
validation split, rebuilt here byte for byte). A snapshot's time and compute are those of the
contribution that produced its version, from the aggregator's metrics.jsonl.

Runs go round-robin: seed 0 of every config, then seed 1 (configs rotated), ... so machine drift
hits all configs alike. The strata binary is copied once at the start, so a rebuild during the
experiment changes nothing.

Output: one JSON file (every run's curve and summary, the machine, the exact commands) and, when
matplotlib can be imported here or in the peers venv (lab/peers/peers_env.py), a PNG.
Standard library only otherwise.
"""

import argparse
import array
import datetime
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers"))
import peers_env  # noqa: E402  (lab/peers/: the peers' venv and the machine's name)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# ---- Configurations ---------------------------------------------------------------------------------

# name -> (serve flags, join flags, description). H_REF is filled in from --inner-steps.
CONFIGS = {
    "sync": (["--sync", "4"], ["--fixed-h"],
             "synchronous DiLoCo: rounds of 4 (eta 0.7, Nesterov mu 0.9), fixed H"),
    "async": (["--h-ref", "{H}"], [],
              "asynchronous, staleness-aware Bi2Clip (a 0.5, upper 3 RMS, tau_max 8), adaptive H, "
              "eta 0.7/4, mu 0"),
    "async-no-staleness": (["--staleness-power", "0", "--no-clip", "--tau-max", "1000", "--h-ref", "{H}"], [],
                           "asynchronous, no staleness handling (a 0, no clip, tau_max 1000), peers' "
                           "adaptive-H flag on"),
    "async-no-staleness-fixed-h": (["--staleness-power", "0", "--no-clip", "--tau-max", "1000"], ["--fixed-h"],
                                   "plain asynchronous DiLoCo: no staleness handling, fixed H"),
    "async-no-href": ([], [],
                      "asynchronous, staleness-aware Bi2Clip as 'async', adaptive H, but no H_ref rescale "
                      "(a short contribution counts for what it did)"),
    "async-fixed-h": (["--h-ref", "{H}"], ["--fixed-h"],
                      "asynchronous Bi2Clip as 'async' but fixed H (no adaptive local steps)"),
    # A check of the baseline, not part of the default set: synchronous rounds with the outer step the
    # asynchronous runs take per 4 arrivals (eta 0.7 on the mean, no momentum).
    "sync-mu0": (["--sync", "4", "--mu", "0"], ["--fixed-h"],
                 "synchronous rounds of 4, eta 0.7, no outer momentum, fixed H"),
}
DEFAULT_CONFIGS = "sync,async,async-no-staleness,async-fixed-h"

# ---- The corpus and the validation batch, as strata's model/data.cc builds them ---------------------

M64 = (1 << 64) - 1


def _mix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def _hash2(a, b):
    return _mix64(_mix64(a) ^ b)


def fortunes_bytes(root):
    """The byte tokenizer's stream of a folder: regular files in byte order of their paths, each file
    once (a symlink to a file already taken is skipped), files with a NUL in their first 64 KiB
    skipped, concatenated (the byte tokenizer has no end-of-text token)."""
    paths = []
    for dp, _dn, fn in os.walk(root):
        paths += [os.path.join(dp, f) for f in fn]
    paths.sort(key=lambda p: p.encode())
    seen, out = set(), bytearray()
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in seen:
            continue
        with open(p, "rb") as f:
            b = f.read()
        if b"\0" in b[:65536]:
            continue
        seen.add((st.st_dev, st.st_ino))
        out += b
    return bytes(out)


def cache_check(stream):
    """Compares with strata's token cache when one of the same length exists: 'match', 'differs', or
    'no cache'."""
    d = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "strata", "tokens")
    try:
        names = os.listdir(d)
    except OSError:
        return "no cache"
    for n in names:
        with open(os.path.join(d, n), "rb") as f:
            b = f.read()
        if len(b) < 128 or b[:8] != b"STRATATK":
            continue
        width, = struct.unpack_from("<I", b, 16)
        count, = struct.unpack_from("<Q", b, 24)
        nl, = struct.unpack_from("<I", b, 40)
        if b[48:48 + nl] == b"byte" and width == 2 and count == len(stream):
            return "match" if b[128::2] == stream and not any(b[129::2]) else "differs"
    return "no cache"


def split_val(stream, val_fraction=0.05, block=4096, seed=0):
    """model::Split: blocks of `block` tokens (the last takes the remainder) go to val when a hash of
    (seed ^ 'split', i) is below val_fraction; the lowest hash is forced to val, the highest to train."""
    n = len(stream)
    nb = n // block
    assert nb >= 2, "corpus too small for the block split"
    u = [(_hash2(seed ^ 0x73706C6974, i) >> 11) * 2.0 ** -53 for i in range(nb)]
    is_val = [x < val_fraction for x in u]
    is_val[min(range(nb), key=u.__getitem__)] = True
    is_val[max(range(nb), key=u.__getitem__)] = False
    val = bytearray()
    for i in range(nb):
        if is_val[i]:
            b = i * block
            val += stream[b:n if i + 1 == nb else b + block]
    return bytes(val)


def val_rows(val, batches, B, T):
    """model::DrawValBatch for index 0..batches-1, rows stacked: the same windows a peer evaluates."""
    W = (len(val) - 1) // T
    stride = int(W * 0.6180339887498949)
    while math.gcd(stride, W) != 1:
        stride += 1
    ins, tgt = array.array("i"), array.array("i")
    for idx in range(batches):
        for b in range(B):
            w = (((idx * B + b) % W) * stride) % W
            ins.extend(val[w * T:w * T + T])
            tgt.extend(val[w * T + 1:w * T + T + 1])
    return ins, tgt


def write_safetensors(path, tensors, meta=None):
    """tensors: (name, dtype, shape, bytes), written in order with no gaps."""
    hdr, off = {}, 0
    for name, dt, shape, data in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    if meta:
        hdr["__metadata__"] = meta
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _n, _d, _s, data in tensors:
            f.write(data)


def gpt2_tensors(L, C, ctx, V=256):
    """model::Gpt2Tensors: (name, shape, offset in floats) of the flat parameter buffer."""
    out, off = [], 0

    def add(name, shape):
        nonlocal off
        out.append((name, shape, off))
        off += math.prod(shape)

    add("wte.weight", [V, C])
    add("wpe.weight", [ctx, C])
    for l in range(L):
        for n, sh in [("ln_1.weight", [C]), ("ln_1.bias", [C]), ("attn.c_attn.weight", [C, 3 * C]),
                      ("attn.c_attn.bias", [3 * C]), ("attn.c_proj.weight", [C, C]), ("attn.c_proj.bias", [C]),
                      ("ln_2.weight", [C]), ("ln_2.bias", [C]), ("mlp.c_fc.weight", [C, 4 * C]),
                      ("mlp.c_fc.bias", [4 * C]), ("mlp.c_proj.weight", [4 * C, C]), ("mlp.c_proj.bias", [C])]:
            add("h.%d.%s" % (l, n), sh)
    add("ln_f.weight", [C])
    add("ln_f.bias", [C])
    return out, off


def write_checkpoint(d, theta, a):
    """theta (raw little-endian fp32 bytes) -> d/model.safetensors + d/config.json for `strata eval`."""
    specs, n = gpt2_tensors(a.layers, a.width, a.context)
    assert len(theta) == 4 * n, "snapshot holds %d parameters, the model %d" % (len(theta) // 4, n)
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "model.safetensors"),
                      [("transformer." + nm, "F32", sh, theta[4 * o:4 * (o + math.prod(sh))]) for nm, sh, o in specs],
                      {"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"model_type": "gpt2", "n_layer": a.layers, "n_head": a.heads, "n_embd": a.width,
                   "n_positions": a.context, "vocab_size": 256, "layer_norm_epsilon": 1e-5}, f)


# ---- Snapshots ------------------------------------------------------------------------------------------


class SnapshotWatcher(threading.Thread):
    """Copies theta out of DIR/snapshot.bin each time the aggregator replaces it (an atomic rename, so
    an open sees a whole file). Header: docs/formats/aggregator-state.md."""

    def __init__(self, path, period=0.004):
        super().__init__(daemon=True)
        self.path, self.period = path, period
        self.thetas = {}  # version -> theta bytes
        self.stop = threading.Event()
        self.bad = 0

    def run(self):
        last = None
        while not self.stop.is_set():
            try:
                st = os.stat(self.path)
                key = (st.st_ino, st.st_mtime_ns, st.st_size)
                if key != last:
                    with open(self.path, "rb") as f:
                        b = f.read()
                    last = key
                    if len(b) >= 72 and b[:4] == b"STSN":
                        version, = struct.unpack_from("<Q", b, 16)
                        n, = struct.unpack_from("<Q", b, 48)
                        if len(b) >= 72 + 4 * n:
                            self.thetas.setdefault(version, b[72:72 + 4 * n])
                        else:
                            self.bad += 1
                    else:
                        self.bad += 1
            except OSError:
                pass
            self.stop.wait(self.period)


# ---- One run ------------------------------------------------------------------------------------------------


def free_port_pair():
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p + 1 > 65535:
            continue
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
        finally:
            t.close()
    raise RuntimeError("no free pair of ports on 127.0.0.1")


def read_jsonl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass  # a line being written
    except OSError:
        pass
    return out


def log_problems(path):
    """Lines of a log that look like trouble (errors, refusals, resyncs, divergence); a peer's closing
    summary line is left out (it always says "0 refused" and, without evaluation, "loss nan")."""
    keys = ("error", "refus", "resync", "diverg", "abort", "fail", "timeout", "silent", "evict", "suspect",
            "warning", " nan", " inf")
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                low = line.lower()
                if low.startswith("strata swarm join: ") and " rounds (" in low and "error" not in low:
                    continue
                if any(k in low for k in keys):
                    out.append(line.rstrip()[:300])
    except OSError:
        pass
    return out


def stop_procs(procs, sig, timeout):
    for p in procs:
        if p.poll() is None:
            try:
                p.send_signal(sig)
            except OSError:
                pass
    t_end = time.time() + timeout
    for p in procs:
        try:
            p.wait(max(0.0, t_end - time.time()))
        except subprocess.TimeoutExpired:
            pass


def run_one(a, binary, keys, cfg, seed, run_dir, eval_batch):
    serve_extra, join_extra, _desc = CONFIGS[cfg]
    H = a.inner_steps
    serve_extra = [x.replace("{H}", str(H)) for x in serve_extra]
    sync = "--sync" in serve_extra
    # One snapshot every snap_contribs contributions: a synchronous version is 4 contributions.
    snap_every = max(1, a.snap_contribs // 4) if sync else a.snap_contribs
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    port = free_port_pair()
    safety = a.max_run_seconds
    serve_cmd = [binary, "swarm", "serve", "--key", keys["agg"], "--members", keys["members"], "--out",
                 os.path.join(run_dir, "agg"), "--bind", "tcp://127.0.0.1:%d" % port, "--pub",
                 "tcp://127.0.0.1:%d" % (port + 1), "--ready-file", os.path.join(run_dir, "ready.json"),
                 "--layers", str(a.layers), "--heads", str(a.heads), "--width", str(a.width), "--context",
                 str(a.context), "--chunk", "8192", "--init-seed", str(seed + 1), "--snapshot-every",
                 str(snap_every), "--max-seconds", str(safety)] + serve_extra
    join_cmds = []
    for i in range(4):
        c = [binary, "swarm", "join", "--key", keys["p%d" % i], "--server", "tcp://127.0.0.1:%d" % port,
             "--server-key", keys["agg_pub"], "--shard", str(i), "--shards", "4", "--inner-steps", str(H),
             "--lr", str(a.lr), "--batch", str(a.batch), "--seq", str(a.seq), "--threads", "1",
             "--eval-every", "0", "--seed", str(seed + 1), "--timeout", "30", "--max-seconds", str(safety),
             "--out", os.path.join(run_dir, "p%d" % i)] + join_extra
        if i == 3:
            c += ["--slowdown", str(a.slowdown)]
        join_cmds.append(c)

    load_before = os.getloadavg()
    cpu_before, kids_before = _busy_cpu_s(), _children_cpu_s()
    logs = []
    serve_log = open(os.path.join(run_dir, "serve.log"), "w")
    logs.append(serve_log)
    serve = subprocess.Popen(serve_cmd, stdout=serve_log, stderr=subprocess.STDOUT)
    ready = os.path.join(run_dir, "ready.json")
    t_wait = time.time()
    while not os.path.exists(ready):
        if serve.poll() is not None or time.time() - t_wait > 30:
            raise RuntimeError("%s seed %d: the aggregator did not start (see %s/serve.log)" % (cfg, seed, run_dir))
        time.sleep(0.02)
    watcher = SnapshotWatcher(os.path.join(run_dir, "agg", "snapshot.bin"))
    watcher.start()
    agg_metrics = os.path.join(run_dir, "agg", "metrics.jsonl")
    while not os.path.exists(agg_metrics):
        time.sleep(0.01)
    t0 = time.time()
    peers = []
    for i, c in enumerate(join_cmds):
        lf = open(os.path.join(run_dir, "p%d.log" % i), "w")
        logs.append(lf)
        peers.append(subprocess.Popen(c, stdout=lf, stderr=subprocess.STDOUT))

    # Tail the aggregator's metrics until T inner steps have been received.
    steps, t_T, buf = 0, None, ""
    timed_out = False
    with open(agg_metrics) as mf:
        while True:
            chunk = mf.read()
            if chunk:
                buf += chunk
                *lines, buf = buf.split("\n")
                for line in lines:
                    if not line.strip():
                        continue
                    m = json.loads(line)
                    if m.get("event") == "contribution" and m.get("verdict") != "duplicate":
                        steps += int(m["inner_steps"])
                        if steps >= a.total_steps and t_T is None:
                            t_T = m["t"]
                if t_T is not None:
                    break
            if time.time() - t0 > safety or all(p.poll() is not None for p in peers):
                timed_out = True
                break
            time.sleep(0.02)
    t_stop = time.time()
    stop_procs(peers, signal.SIGINT, 10)
    stop_procs([serve], signal.SIGINT, 10)
    stop_procs(peers + [serve], signal.SIGKILL, 5)
    watcher.stop.set()
    watcher.join()
    for f in logs:
        f.close()
    load_after = os.getloadavg()
    # CPU seconds the machine spent on other work while this run trained (all busy time less ours).
    busy = _busy_cpu_s() - cpu_before
    ours = _children_cpu_s() - kids_before
    foreign_cpu_s = max(0.0, busy - ours) if busy >= 0 else None

    # Versions -> (time, cumulative inner steps received), from the aggregator's log.
    events = read_jsonl(agg_metrics)
    cum, at_version = 0, {0: (t0, 0)}
    refusals, verdicts, stale_hist = {}, {}, {}
    per_peer = {}
    for m in events:
        if m.get("event") == "contribution":
            v = m.get("verdict")
            verdicts[v] = verdicts.get(v, 0) + 1
            if v == "duplicate":
                continue
            cum += int(m["inner_steps"])
            pp = per_peer.setdefault(m["peer"], {"contributions": 0, "inner_steps": 0, "refused": 0, "tau": []})
            pp["contributions"] += 1
            pp["inner_steps"] += int(m["inner_steps"])
            if v == "refused":
                pp["refused"] += 1
                refusals[m.get("reason", "")[:60]] = refusals.get(m.get("reason", "")[:60], 0) + 1
            else:
                pp["tau"].append(int(m.get("tau", 0)))
                stale_hist[int(m.get("tau", 0))] = stale_hist.get(int(m.get("tau", 0)), 0) + 1
            if v == "applied":
                at_version.setdefault(int(m["version"]), (m["t"], cum))
        elif m.get("event") == "refused":
            refusals[m.get("reason", "?")] = refusals.get(m.get("reason", "?"), 0) + 1
    for pp in per_peer.values():
        taus = pp.pop("tau")
        pp["tau_mean"] = sum(taus) / len(taus) if taus else None
        pp["tau_max"] = max(taus) if taus else None
    stop_event = next((m for m in reversed(events) if m.get("event") == "stop"), None)

    # The straggler's H over its rounds (adaptive H), from its own metrics.
    p3 = read_jsonl(os.path.join(run_dir, "p3", "metrics.jsonl"))
    h_trace = [int(m.get("inner_steps", 0)) for m in p3]
    # Did adaptive H ever act? (The last round may be cut short by the stop signal.)
    h_adapted = any(h != H for h in h_trace[:-1])

    # Evaluate every snapshot copied at or before T (the one that crosses T included when it is exact).
    curve = []
    ck = os.path.join(run_dir, "ck")
    for v in sorted(watcher.thetas):
        if v not in at_version:
            continue
        tv, sv = at_version[v]
        if sv > a.total_steps:
            continue
        write_checkpoint(ck, watcher.thetas[v], a)
        r = subprocess.run([binary, "eval", "--init", ck, "--batch-file", eval_batch, "--json", "-", "--threads",
                            str(a.eval_threads)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("strata eval failed on %s v%d: %s" % (cfg, v, r.stderr.strip()))
        loss = json.loads(r.stdout.strip().splitlines()[-1])["loss"]
        curve.append({"t": round(tv - t0, 4), "steps": sv, "version": v, "val_loss": loss})
    shutil.rmtree(ck, ignore_errors=True)
    if not a.keep_runs:
        shutil.rmtree(os.path.join(run_dir, "agg"), ignore_errors=True)  # snapshot + WAL, MBs

    problems = {n: log_problems(os.path.join(run_dir, n + ".log")) for n in ["serve", "p0", "p1", "p2", "p3"]}
    rec = {
        "config": cfg, "seed": seed, "run_dir": run_dir,
        "commands": {"serve": serve_cmd, "join": join_cmds},
        "snapshot_every_versions": snap_every,
        "wall_to_T_s": (t_T - t0) if t_T is not None else None,
        "reached_T": t_T is not None, "timed_out": timed_out,
        "steps_received_at_stop": steps, "stop_signal_after_s": t_stop - t0,
        "exit_codes": {"serve": serve.returncode, "peers": [p.returncode for p in peers]},
        "verdicts": verdicts, "refusals": refusals, "staleness_histogram": {str(k): stale_hist[k] for k in
                                                                           sorted(stale_hist)},
        "per_peer": per_peer, "straggler_h_trace": h_trace, "straggler_h_adapted": h_adapted,
        "aggregator_stop_status": stop_event.get("status") if stop_event else None,
        "snapshots_copied": len(watcher.thetas), "snapshot_read_errors": watcher.bad,
        "load_before": load_before, "load_after": load_after,
        "cpu_busy_s": busy, "cpu_ours_s": ours, "cpu_foreign_s": foreign_cpu_s,
        "cpu_foreign_share": (foreign_cpu_s / busy) if busy and foreign_cpu_s is not None else None,
        "log_problems": {k: v[:20] for k, v in problems.items() if v},
        "curve": curve,
    }
    return rec


# ---- Summaries ----------------------------------------------------------------------------------------------


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else 0.5 * (xs[k - 1] + xs[k])


def final_at_T(curve, T):
    """The loss of the last evaluated theta received within T steps, and its steps."""
    pts = [p for p in curve if p["steps"] <= T]
    return (pts[-1]["val_loss"], pts[-1]["steps"], pts[-1]["t"]) if pts else (None, None, None)


def time_to(curve, target, key="t"):
    """First time (or inner steps, key="steps") the curve is at or below target, linear between the
    two evaluated points around the crossing; None if never."""
    for i, p in enumerate(curve):
        if p["val_loss"] <= target:
            if i == 0:
                return p[key]
            q = curve[i - 1]
            f = (q["val_loss"] - target) / (q["val_loss"] - p["val_loss"])
            return q[key] + f * (p[key] - q[key])
    return None


def summarise(runs, configs, T, baseline="sync", levels=(2.6, 2.3, 2.1)):
    by = {c: {r["seed"]: r for r in runs if r["config"] == c} for c in configs}
    seeds = sorted({r["seed"] for r in runs})
    targets = {s: final_at_T(by[baseline][s]["curve"], T)[0] for s in seeds if s in by.get(baseline, {})}
    summ = {"baseline": baseline,
            "target_definition": "per seed: the %s run's val loss at T (same seed: same init, same batches)"
                                 % baseline,
            "targets": {str(s): targets[s] for s in targets}, "levels": list(levels), "configs": {}}
    for c in configs:
        rs = by.get(c, {})
        finals = {s: final_at_T(rs[s]["curve"], T)[0] for s in rs}
        ttt = {s: time_to(rs[s]["curve"], targets[s]) if s in targets else None for s in rs}
        stt = {s: time_to(rs[s]["curve"], targets[s], "steps") if s in targets else None for s in rs}
        walls = {s: rs[s]["wall_to_T_s"] for s in rs}
        fv = [v for v in finals.values() if v is not None]
        summ["configs"][c] = {
            "final_val_at_T": {str(s): finals[s] for s in finals},
            "final_median": median(fv), "final_min": min(fv) if fv else None, "final_max": max(fv) if fv else None,
            "wall_to_T_s": {str(s): walls[s] for s in walls}, "wall_to_T_median_s": median(walls.values()),
            "time_to_sync_final_s": {str(s): ttt[s] for s in ttt},
            "time_to_sync_final_median_s": median(ttt.values()) if all(v is not None for v in ttt.values()) else None,
            "reached_sync_final": sum(v is not None for v in ttt.values()),
            "steps_to_sync_final": {str(s): stt[s] for s in stt},
            "steps_to_sync_final_median": median(stt.values()) if all(v is not None for v in stt.values()) else None,
            # Seconds to fixed loss levels (None: not reached within T), per seed.
            "time_to_level_s": {"%g" % lv: {str(s): time_to(rs[s]["curve"], lv) for s in rs} for lv in levels},
            "runs": len(rs),
        }
    # No staleness handling against the default: paired differences against the seed spread.
    if "async" in by and "async-no-staleness" in by:
        common = sorted(set(by["async"]) & set(by["async-no-staleness"]))
        d = [final_at_T(by["async-no-staleness"][s]["curve"], T)[0] - final_at_T(by["async"][s]["curve"], T)[0]
             for s in common]
        sa, sn = summ["configs"]["async"], summ["configs"]["async-no-staleness"]
        spread = max((sa["final_max"] or 0) - (sa["final_min"] or 0), (sn["final_max"] or 0) - (sn["final_min"] or 0))
        summ["no_staleness_minus_async"] = {
            "paired_diff_per_seed": {str(s): x for s, x in zip(common, d)},
            "median_diff": median(d), "worse_in_seeds": sum(x > 0 for x in d), "seeds": len(d),
            "largest_seed_spread_of_either": spread,
            "median_diff_exceeds_spread": (median(d) or 0) > spread,
            "medians_differ_by": (sn["final_median"] or 0) - (sa["final_median"] or 0),
        }
    return summ


# ---- Plot -----------------------------------------------------------------------------------------------------

COLOURS = {"sync": "#444444", "async": "#1f77b4", "async-no-staleness": "#d62728",
           "async-no-staleness-fixed-h": "#ff7f0e", "async-fixed-h": "#2ca02c", "sync-mu0": "#9467bd"}


def plot(res, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    T = res["params"]["total_steps"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    runs = res["runs"]
    configs = res["params"]["configs"]
    all_losses = [p["val_loss"] for r in runs for p in r["curve"]]
    for c in configs:
        col = COLOURS.get(c, None)
        rs = [r for r in runs if r["config"] == c]
        for k, r in enumerate(rs):
            xs_t = [p["t"] for p in r["curve"]]
            xs_s = [p["steps"] for p in r["curve"]]
            ys = [p["val_loss"] for p in r["curve"]]
            lab = "%s (%d seeds)" % (c, len(rs)) if k == 0 else None
            axes[0].plot(xs_t, ys, color=col, lw=1.0, alpha=0.75, label=lab)
            axes[1].plot(xs_s, ys, color=col, lw=1.0, alpha=0.75)
    tg = res["summary"].get("targets", {})
    if tg:
        m = median(list(tg.values()))
        for ax in axes:
            ax.axhline(m, color="#444444", ls=":", lw=0.8)
        axes[0].text(0.99, m, " %s final (median)" % res["summary"].get("baseline", "sync"), transform=axes[0].get_yaxis_transform(), ha="right",
                     va="bottom", fontsize=8, color="#444444")
    lo = min(all_losses) if all_losses else 2.0
    top = (median(list(tg.values())) + 0.45) if tg else 3.6
    axes[0].set_ylim(lo - 0.03, min(top, max(all_losses) if all_losses else 4))
    # Each config's median time to the sync final, on the left panel.
    for c in configs:
        s = res["summary"]["configs"].get(c, {})
        tm = s.get("time_to_sync_final_median_s")
        if tm is not None and tg and c != res["summary"].get("baseline", "sync"):
            axes[0].plot([tm], [median(list(tg.values()))], marker="o", ms=5, color=COLOURS.get(c), zorder=5)
    axes[0].set_xlabel("wall-clock seconds since the peers started")
    axes[1].set_xlabel("inner steps received by the aggregator, all peers (stop at T = %d)" % T)
    axes[0].set_ylabel("validation loss of the global model (nats/byte)")
    axes[0].legend(fontsize=8, loc="upper right")
    for ax in axes:
        ax.grid(alpha=0.3)
    p = res["params"]
    fig.suptitle("strata swarm, 4 peers on loopback, peer 3 a %gx straggler; %d layers, width %d; H = %d; "
                 "equal compute; %s" % (p["slowdown"], p["layers"], p["width"], p["inner_steps"],
                                        res["machine"]["cpu"]), fontsize=9)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print("wrote %s" % png)


def plot_somewhere(json_path, png):
    try:
        import matplotlib  # noqa: F401
        with open(json_path) as f:
            plot(json.load(f), png)
        return True
    except ImportError:
        if os.environ.get("STRATA_CONV_PLOT_CHILD") == "1":
            return False  # already the venv's interpreter: do not look again
    cands = [os.environ.get("STRATA_PEERS_VENV"), peers_env.venv_dir()]
    for v in cands:
        py = v and os.path.join(v, "bin", "python")
        if py and os.path.exists(py):
            env = dict(os.environ, STRATA_CONV_PLOT_CHILD="1")
            r = subprocess.run([py, os.path.abspath(__file__), "--plot-only", json_path, "--png", png], env=env)
            if r.returncode == 0:
                return True
    print("matplotlib not found (here, nor in a peers venv): no plot; the JSON has everything", file=sys.stderr)
    return False


# ---- Main -------------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--strata", default=os.path.join(REPO, "build", "strata"))
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    ap.add_argument("--json", help="default lab/results/swarm_convergence_DATE.json")
    ap.add_argument("--png", help="default docs/img/swarm_convergence.png")
    ap.add_argument("--work", help="folder for the runs (default: a new temporary folder)")
    ap.add_argument("--keep-runs", action="store_true", help="keep the aggregators' state folders")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="from: " + ", ".join(CONFIGS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--baseline", default="sync", help="the config whose final loss is the target")
    ap.add_argument("--levels", default="2.6,2.3,2.1", help="loss levels to time every config to")
    ap.add_argument("--total-steps", type=int, default=4800, help="T: inner steps summed over peers")
    ap.add_argument("--inner-steps", type=int, default=10, help="H")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--slowdown", type=float, default=4.0)
    ap.add_argument("--snap-contribs", type=int, default=8, help="contributions between snapshots")
    ap.add_argument("--eval-batches", type=int, default=16, help="validation batches of batch x seq")
    ap.add_argument("--eval-threads", type=int, default=2)
    ap.add_argument("--max-run-seconds", type=float, default=400)
    ap.add_argument("--data", default="/usr/share/games/fortunes")
    ap.add_argument("--plot-only", metavar="JSON", help="only draw the plot of an existing result")
    ap.add_argument("--resummarise", metavar="JSON", help="recompute the summary of an existing result (and plot)")
    a = ap.parse_args()

    if a.resummarise:
        with open(a.resummarise) as f:
            res = json.load(f)
        p = res["params"]
        p.setdefault("baseline", "sync")
        p.setdefault("levels", [2.6, 2.3, 2.1])
        res["summary"] = summarise(res["runs"], p["configs"], p["total_steps"], p.get("baseline", "sync"),
                                   p.get("levels", (2.6, 2.3, 2.1)))
        with open(a.resummarise + ".tmp", "w") as f:
            json.dump(res, f, indent=1)
        os.replace(a.resummarise + ".tmp", a.resummarise)
        print(json.dumps(res["summary"], indent=1))
        if a.png:
            plot_somewhere(a.resummarise, a.png)
        return

    if a.plot_only:
        png = a.png or os.path.join(REPO, "docs", "img", "swarm_convergence.png")
        sys.exit(0 if plot_somewhere(a.plot_only, png) else 1)
    configs = [c.strip() for c in a.configs.split(",") if c.strip()]
    a.levels = [float(x) for x in a.levels.split(",") if x.strip()]
    for c in configs:
        if c not in CONFIGS:
            sys.exit("unknown config %r (want: %s)" % (c, ", ".join(CONFIGS)))
    json_path = a.json or os.path.join(REPO, "lab", "results", "swarm_convergence_%s.json" % a.date)
    png = a.png or os.path.join(REPO, "docs", "img", "swarm_convergence.png")
    if not os.path.exists(a.strata):
        sys.exit("%s: no strata binary (build it, or pass --strata PATH)" % a.strata)
    work = a.work or tempfile.mkdtemp(prefix="swarm_conv_")
    os.makedirs(work, exist_ok=True)
    binary = os.path.join(work, "strata")
    shutil.copy2(a.strata, binary)  # a rebuild of the original during the runs changes nothing here
    with open(binary, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()

    # The evaluation batch: the first eval_batches validation batches a peer would draw.
    stream = fortunes_bytes(a.data)
    val = split_val(stream)
    ins, tgt = val_rows(val, a.eval_batches, a.batch, a.seq)
    eval_batch = os.path.join(work, "val_batch.safetensors")
    rows = a.eval_batches * a.batch
    write_safetensors(eval_batch, [("inputs", "I32", [rows, a.seq], ins.tobytes()),
                                   ("targets", "I32", [rows, a.seq], tgt.tobytes())])
    corpus = {"path": a.data, "tokens": len(stream), "val_tokens": len(val), "strata_cache": cache_check(stream),
              "eval_rows": rows, "eval_tokens": rows * a.seq}

    keys = {}
    for k in ["agg", "p0", "p1", "p2", "p3"]:
        subprocess.run([binary, "swarm", "keygen", "--name", k, "--out", os.path.join(work, k + ".key")], check=True,
                       capture_output=True)
        keys[k] = os.path.join(work, k + ".key")
    keys["agg_pub"] = keys["agg"] + ".pub"
    keys["members"] = os.path.join(work, "members.txt")
    subprocess.run([binary, "swarm", "members", "--out", keys["members"]] +
                   [keys["p%d" % i] + ".pub" for i in range(4)], check=True, capture_output=True)

    res = {
        "experiment": "swarm convergence at equal total compute (lab/swarm_convergence.py)",
        "date": a.date,
        "machine": {"cpu": peers_env.cpu_name(), "cores": os.cpu_count(), "kernel": platform.release(),
                    "python": platform.python_version()},
        "strata": {"path": a.strata, "sha256": sha, "version": version},
        "params": {"configs": configs, "config_flags": {c: {"serve": CONFIGS[c][0], "join": CONFIGS[c][1],
                                                            "what": CONFIGS[c][2]} for c in configs},
                   "seeds": a.seeds, "total_steps": a.total_steps, "inner_steps": a.inner_steps, "lr": a.lr,
                   "layers": a.layers, "heads": a.heads, "width": a.width, "context": a.context,
                   "batch": a.batch, "seq": a.seq, "slowdown": a.slowdown, "straggler": "p3",
                   "snap_contribs": a.snap_contribs, "eval_batches": a.eval_batches, "baseline": a.baseline,
                   "levels": a.levels},
        "method": {
            "stop": "at T inner steps received by the aggregator (refused ones included), from its metrics.jsonl",
            "eval": "offline: snapshot.bin copied as the aggregator replaces it, evaluated after the run with "
                    "`strata eval` on the first eval_batches validation batches a peer draws; no peer evaluates",
            "time": "seconds from starting the peers to the aggregator's log line of the version",
            "order": "round-robin over seeds, config order rotated by one per seed",
        },
        "corpus": corpus,
        "runs": [],
    }
    t_all = time.time()
    for s in range(a.seeds):
        order = configs[s % len(configs):] + configs[:s % len(configs)]
        for c in order:
            t = time.time()
            rec = run_one(a, binary, keys, c, s, os.path.join(work, "%s_s%d" % (c, s)), eval_batch)
            rec["order_position"] = len(res["runs"])
            res["runs"].append(rec)
            fin = final_at_T(rec["curve"], a.total_steps)
            print("[%6.0fs] %-28s seed %d: wall to T %s s, val at T %s (%s steps), %d snapshots, took %.0f s%s" % (
                time.time() - t_all, c, s, "%.1f" % rec["wall_to_T_s"] if rec["wall_to_T_s"] else "-",
                "%.4f" % fin[0] if fin[0] else "-", fin[1], len(rec["curve"]), time.time() - t,
                "  PROBLEMS: %s" % sorted(rec["log_problems"]) if rec["log_problems"] else ""), flush=True)
            res["summary"] = summarise(res["runs"], configs, a.total_steps, a.baseline, a.levels)
            res["elapsed_s"] = time.time() - t_all
            os.makedirs(os.path.dirname(json_path), exist_ok=True)
            with open(json_path + ".tmp", "w") as f:
                json.dump(res, f, indent=1)
            os.replace(json_path + ".tmp", json_path)
    print(json.dumps(res["summary"], indent=1))
    print("wrote %s (%.0f s)" % (json_path, time.time() - t_all))
    plot_somewhere(json_path, png)


def _busy_cpu_s():
    """Busy CPU seconds of the whole machine since boot (/proc/stat, all but idle and iowait)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return -1.0


def _children_cpu_s():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


if __name__ == "__main__":
    main()
