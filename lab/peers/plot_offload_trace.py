#!/usr/bin/env python3
"""Draws one step of a `strata bench offload --trace FILE` run: one row per staging buffer,
each chunk's read, wait for its gradient, update and write as coloured bars, and the
compute thread's work below them.

    python3 lab/peers/plot_offload_trace.py TRACE.json --step 2 --out docs/img/offload_trace.png

Needs matplotlib (the peers' virtual environment has it: see peers_env.py).
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"read": "#4C72B0", "wait for gradient": "#DDDDDD", "update": "#DD8452", "write": "#55A868",
          "commit": "#C44E52"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trace")
    ap.add_argument("--step", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="")
    args = ap.parse_args()
    with open(args.trace) as f:
        events = json.load(f)["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M"}
    ev = [e for e in events if e["ph"] == "X" and e.get("args", {}).get("step") == args.step]
    if not ev:
        raise SystemExit("no events of step %d in %s" % (args.step, args.trace))
    t0 = min(e["ts"] for e in ev)
    t1 = max(e["ts"] + e["dur"] for e in ev)
    buffers = sorted({e["tid"] for e in ev if e["tid"] >= 100})
    fig, ax = plt.subplots(figsize=(11, 0.18 * len(buffers) + 2.2))
    for e in ev:
        if e["tid"] < 100 and e["name"] != "commit":
            continue
        row = len(buffers) + 1 if e["name"] == "commit" else buffers.index(e["tid"])
        ax.barh(row, e["dur"] / 1e3, left=(e["ts"] - t0) / 1e3, height=0.8,
                color=COLORS.get(e["name"], "#999999"), linewidth=0)
    ax.set_yticks([0, len(buffers) - 1, len(buffers) + 1])
    ax.set_yticklabels([names.get(buffers[0], "buffer 0"), names.get(buffers[-1], ""), "commit"])
    ax.invert_yaxis()
    ax.set_xlabel("ms since the step's first event (step %d: %.0f ms)" % (args.step, (t1 - t0) / 1e3))
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
    ax.legend(handles, COLORS.keys(), loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=5, frameon=False)
    ax.set_title(args.title or "strata offload: one step, one row per staging buffer")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print("written to %s" % args.out)


if __name__ == "__main__":
    main()
