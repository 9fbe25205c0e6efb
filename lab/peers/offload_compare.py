#!/usr/bin/env python3
"""strata's offload engine and DeepSpeed's async I/O op, side by side in one run.

    python3 lab/peers/offload_compare.py --params 1000000000 --path /tmp \
        --offload-ram 256MiB [--steps 3] [--strata build/strata] [--out FILE]

Runs `strata bench offload` (8-bit {master, m, v} state, the disk probed in the same
process), then lab/peers/offload_peers.py on the same directory with the same slot
size, the same number of chunks and as many chunks in flight as strata's staging
buffers (the same memory), and prints both with their ratio. The peer moves the same
bytes but computes nothing between read and write; strata also verifies, updates and
checksums every chunk. Writes both results into one JSON file (default
lab/results/offload_<date>.json). If the peer is unavailable (exit 3), its
entry says why and strata's figures are still recorded.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def parse_size(text):
    units = {"": 1, "k": 1000, "m": 1000 ** 2, "g": 1000 ** 3, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}
    t = text.strip().lower()
    num = t.rstrip("abcdefghijklmnopqrstuvwxyz")
    return int(float(num) * units[t[len(num):]])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="1000000000")
    ap.add_argument("--path", default=os.environ.get("TMPDIR", "/tmp"))
    ap.add_argument("--offload-ram", default="256MiB")
    ap.add_argument("--layout", default="q8_master_mv")
    ap.add_argument("--chunk", default="1048576")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", default="0")
    ap.add_argument("--strata", default=os.path.join(ROOT, "build", "strata"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--peer-first", action="store_true",
                    help="run the peer before strata (alternate runs to balance a disk that drifts)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sj = os.path.join(tmp, "strata.json")
        cmd = [args.strata, "bench", "offload", "--params", args.params, "--path", args.path,
               "--offload-ram", args.offload_ram, "--layout", args.layout, "--chunk", args.chunk,
               "--steps", str(args.steps), "--threads", args.threads, "--json", sj]
        pj = os.path.join(tmp, "peer.json")

        def run_strata():
            print("$ " + " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
            with open(sj) as f:
                return json.load(f)

        def run_peer(slot_bytes, chunks, buffers):
            pcmd = [sys.executable, os.path.join(HERE, "offload_peers.py"), "--path", args.path,
                    "--slot-bytes", str(slot_bytes), "--chunks", str(chunks),
                    "--steps", str(args.steps), "--queue-depth", str(max(2, buffers)), "--json", pj]
            print("$ " + " ".join(pcmd), flush=True)
            rc = subprocess.run(pcmd).returncode
            peer = None
            if os.path.exists(pj):
                with open(pj) as f:
                    peer = json.load(f)
            if rc != 0 and not peer:
                peer = {"peer": "deepspeed_aio", "available": False, "reason": "offload_peers.py exited %d" % rc}
            return peer

        if args.peer_first:
            chunk = int(args.chunk)
            params = parse_size(args.params)
            nb = (chunk + 255) // 256
            per = {"q8_master_mv": 6 * chunk + 8 * nb, "q8_mv": 2 * chunk + 8 * nb, "fp32_mv": 8 * chunk}[args.layout]
            slot = (64 + per + 4095) // 4096 * 4096
            chunks = (params + chunk - 1) // chunk
            budget = parse_size(args.offload_ram)
            buffers = min(budget // slot, chunks)
            peer = run_peer(slot, chunks, buffers)
            strata = run_strata()
        else:
            strata = run_strata()
            peer = run_peer(strata["slot_bytes"], strata["n_chunks"], strata["staging_buffers"])

    out = {"peer_first": args.peer_first, "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S UTC"), "strata": strata, "peer": peer}
    print()
    print("%-28s %12s %12s" % ("", "strata", "deepspeed aio"))
    rows = [("step seconds", "step_seconds", "step_seconds"),
            ("state moved GB/s", "offload_GBps", "swap_GBps"),
            ("disk read GB/s (probe)", "disk_read_GBps", "read_GBps_probe"),
            ("disk write GB/s (probe)", "disk_write_GBps", "write_GBps_probe"),
            ("disk efficiency", "disk_efficiency", "efficiency")]
    ok_peer = peer and peer.get("available", True) and "step_seconds" in peer
    for name, sk, pk in rows:
        pv = "%12.3f" % peer[pk] if ok_peer else "%12s" % "n/a"
        print("%-28s %12.3f %s" % (name, strata[sk], pv))
    if ok_peer:
        out["ratio_step_seconds_peer_over_strata"] = peer["step_seconds"] / strata["step_seconds"]
        print("strata's step is %.2fx the peer's speed (the peer computes nothing between read and write)"
              % out["ratio_step_seconds_peer_over_strata"])
    else:
        print("peer unavailable: %s" % (peer or {}).get("reason", "?"))
    path = args.out or os.path.join(HERE, "..", "results", "offload_%s.json" % datetime.date.today().isoformat())
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print("written to %s" % path)


if __name__ == "__main__":
    main()
