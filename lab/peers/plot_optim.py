#!/usr/bin/env python3
"""Draws the figures of an optim_peers.py run (its --json file) as one PNG.

    python3 lab/peers/plot_optim.py RUN.json docs/img/optim_peers_DATE.png

Left: optimizer-step throughput of every implementation that ran, from the same run.
Right: bytes of optimizer state per parameter.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_env  # noqa: E402

peers_env.ensure_venv([("matplotlib", "matplotlib")])

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {
    "torch_foreach": "torch AdamW foreach",
    "torch_fused": "torch AdamW fused",
    "torch_single": "torch AdamW single-tensor",
    "bnb_adamw8bit": "bitsandbytes AdamW8bit",
    "torchao_adamw8bit": "torchao AdamW8bit",
    "deepspeed_cpuadam": "DeepSpeed CPU Adam",
}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    run = json.load(open(sys.argv[1]))
    rows = []
    s = (run.get("strata") or {}).get("result")
    if s:
        rows.append(("strata AdamW 8-bit", s["adamw8bit_params_per_s"], s["state_bytes_per_param_8bit"], "#1f77b4"))
        rows.append(("strata AdamW fp32", s["adamw_fp32_params_per_s"], 8.0, "#6baed6"))
    for key, r in run["peers"].items():
        if r.get("params_per_s"):
            eight = "8bit" in key
            rows.append((LABELS.get(key, key), r["params_per_s"], r.get("state_bytes_per_param", 8.0),
                         "#d62728" if eight else "#999999"))
    rows.sort(key=lambda r: r[1])
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 0.5 * len(rows) + 1.5), gridspec_kw={"width_ratios": [3, 1]})
    names = [r[0] for r in rows]
    a.barh(names, [r[1] / 1e9 for r in rows], color=[r[3] for r in rows])
    for i, r in enumerate(rows):
        a.text(r[1] / 1e9, i, " %.3g G" % (r[1] / 1e9), va="center", fontsize=8)
    a.set_xlabel("optimizer step, billion parameters per second (higher is better)")
    title = "N = %d params, %d threads, median of %d steps" % (run["params"], run["threads"], run["steps"])
    if s:
        title += "; triad %.1f GB/s" % s["triad_GBps"]
    a.set_title(title, fontsize=9)
    b.barh(names, [r[2] for r in rows], color=[r[3] for r in rows])
    b.set_yticklabels([])
    b.set_xlabel("state bytes / param")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    print("wrote %s" % sys.argv[2])


if __name__ == "__main__":
    main()
