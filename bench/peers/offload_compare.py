#!/usr/bin/env python3
"""strata's offload engine and DeepSpeed's async I/O op, side by side in one run.

    python3 bench/peers/offload_compare.py --params 1000000000 --path /tmp \
        --offload-ram 256MiB [--steps 3] [--strata build/strata] [--out FILE]

Runs `strata bench offload` (8-bit {master, m, v} state, the disk probed in the same
process), then bench/peers/offload_peers.py on the same directory with the same slot
size, the same number of chunks and as many chunks in flight as strata's staging
buffers (the same memory), and prints both with their ratio. The peer moves the same
bytes but computes nothing between read and write; strata also verifies, updates and
checksums every chunk. Writes both results into one JSON file (default
bench/peers/results/offload_<date>.json). If the peer is unavailable (exit 3), its
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
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sj = os.path.join(tmp, "strata.json")
        cmd = [args.strata, "bench", "offload", "--params", args.params, "--path", args.path,
               "--offload-ram", args.offload_ram, "--layout", args.layout, "--chunk", args.chunk,
               "--steps", str(args.steps), "--threads", args.threads, "--json", sj]
        print("$ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        with open(sj) as f:
            strata = json.load(f)
        pj = os.path.join(tmp, "peer.json")
        pcmd = [sys.executable, os.path.join(HERE, "offload_peers.py"), "--path", args.path,
                "--slot-bytes", str(strata["slot_bytes"]), "--chunks", str(strata["n_chunks"]),
                "--steps", str(args.steps), "--queue-depth", str(max(2, strata["staging_buffers"])),
                "--json", pj]
        print("$ " + " ".join(pcmd), flush=True)
        rc = subprocess.run(pcmd).returncode
        peer = None
        if os.path.exists(pj):
            with open(pj) as f:
                peer = json.load(f)
        if rc != 0 and not peer:
            peer = {"peer": "deepspeed_aio", "available": False, "reason": "offload_peers.py exited %d" % rc}

    out = {"date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M:%S UTC"), "strata": strata, "peer": peer}
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
    path = args.out or os.path.join(HERE, "results", "offload_%s.json" % datetime.date.today().isoformat())
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print("written to %s" % path)


if __name__ == "__main__":
    main()
