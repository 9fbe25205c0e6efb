#!/usr/bin/env python3
"""Writes the seed corpus of outer_fuzz.cc (tests/fuzz/corpus/outer/): deterministic bytes laid
out as the target reads them: 12 config bytes, then per contribution 4 header bytes (inner steps,
staleness, peer, sequence step), 1056 codes and 5 float32 block scales (the tiny model's size)."""
import os
import struct
import sys

N, BLOCKS = 1056, 5
FLT_MAX = 3.4028234663852886e38


def config(clip=1, nesterov=1, h_ref=None, apply_every=1, eta_exp=-2, mu=0, a=16, upper=22, lower=0,
           beta=230, tau_max=8, theta_bound=32, outlier=228, snapshot=0):
    flags = clip | (nesterov << 1) | ((h_ref is not None) << 2) | ((apply_every - 1) << 3)
    return bytes([flags, h_ref or 0, (eta_exp * 4) & 0xFF, mu, a, upper, lower, beta, tau_max,
                  theta_bound, outlier, snapshot])


def contrib(inner, codes, scales, stale=0, peer=0, seq=0):
    return bytes([inner, stale, peer, seq]) + bytes(codes) + b"".join(struct.pack("<f", s) for s in scales)


def honest(i):
    codes = [(127 + ((j * 37 + i * 11) % 61) - 30) & 0xFF for j in range(N)]
    return contrib(8, codes, [1e-3 * (1 + b) for b in range(BLOCKS)], seq=i)


SEEDS = {
    "ok-honest": config() + honest(0) + honest(1) + honest(2),
    "ok-delayed-nesterov": config(apply_every=3, mu=230) + honest(0) + honest(1) + honest(2) + honest(3),
    "ok-no-clip": config(clip=0, theta_bound=0, outlier=0) + honest(0) + honest(1),
    # The first defect: --h-ref 20, one code 255 at absmax 3e38, 1 inner step.
    "href-overflow": config(h_ref=20, theta_bound=0) + contrib(1, [127] * 5 + [255] + [127] * (N - 6),
                                                                [3e38, 1, 1, 1, 1]) + honest(1),
    # The second: every code 255 at FLT_MAX on a fresh run.
    "fresh-poison": config() + contrib(5, [255] * N, [FLT_MAX] * BLOCKS) + honest(1),
    "theta-overflow": config(clip=0, theta_bound=0, outlier=0, eta_exp=0) +
                      contrib(1, [0] * N, [3e38] * BLOCKS) + contrib(1, [0] * N, [3e38] * BLOCKS, seq=1),
    "nan-inf-denormal": config() + contrib(4, [255] * N, [float("nan"), float("inf"), 1e-45, 0.0, 3e38]) + honest(1),
    "stale-future-zero": config(tau_max=0) + contrib(0, [200] * N, [1e-3] * BLOCKS) +
                         contrib(4, [200] * N, [1e-3] * BLOCKS, stale=255) + honest(2),
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "outer")
os.makedirs(out, exist_ok=True)
for name, data in SEEDS.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"{len(SEEDS)} seeds in {out}")
