#!/usr/bin/env python3
"""Write a token batch for `strata eval` and the roundtrip checks: a safetensors file with I32
tensors `inputs` and `targets` [B, T], drawn uniformly from [0, vocab) by a seeded generator.

    python3 lab/peers/make_batch.py --vocab 256 --batch 4 --seq 64 --seed 5 --out batch.safetensors
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_env  # noqa: E402

TORCH_SPEC = os.environ.get("STRATA_PEERS_TORCH", "torch==2.15.0")
SAFETENSORS_SPEC = os.environ.get("STRATA_PEERS_SAFETENSORS", "safetensors==0.8.0")


def main():
    peers_env.ensure_venv([("torch", TORCH_SPEC), ("safetensors", SAFETENSORS_SPEC)])
    import torch
    from safetensors.torch import save_file

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    g = torch.Generator().manual_seed(a.seed)
    shape = (a.batch, a.seq)
    save_file({"inputs": torch.randint(0, a.vocab, shape, generator=g, dtype=torch.int32),
               "targets": torch.randint(0, a.vocab, shape, generator=g, dtype=torch.int32)}, a.out)


if __name__ == "__main__":
    main()
