#!/usr/bin/env python3
"""Plots fp32 AdamW against 8-bit AdamW loss curves recorded by the training tests.

    STRATA_TRAINING_CSV=/tmp/train.csv build/tests/strata_tests --gtest_filter='Training*'
    python3 lab/peers/plot_training.py /tmp/train.csv [more.csv ...] docs/img/training_DATE.png

Each CSV line is "run,optimizer,step,loss"; one panel per run, log-scale loss.
"""

import collections
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_env  # noqa: E402

peers_env.ensure_venv([("matplotlib", "matplotlib")])

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    runs = collections.OrderedDict()
    for path in sys.argv[1:-1]:
        for run, opt, step, loss in csv.reader(open(path)):
            runs.setdefault(run, {}).setdefault(opt, []).append((int(step), float(loss)))
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 3.6), squeeze=False)
    for ax, (run, opts) in zip(axes[0], runs.items()):
        for opt, pts in opts.items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=opt, lw=1.2,
                    color="#6baed6" if opt == "fp32" else "#1f77b4", ls="-" if opt == "fp32" else "--")
        ax.set_yscale("log")
        ax.set_title(run.replace("_", " "), fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(sys.argv[-1], dpi=110)
    print("wrote %s" % sys.argv[-1])


if __name__ == "__main__":
    main()
