#!/usr/bin/env python3
"""Write tests/data/safetensors/python_fixture.safetensors with the Hugging Face
`safetensors` package, and check that package reads files strata writes.

    python3 lab/peers/make_safetensors_fixture.py [--out FILE]
    python3 lab/peers/make_safetensors_fixture.py --check FILE

The fixture (1774 bytes) holds one small tensor of every dtype strata reads,
with awkward values (signed zeros, subnormals, inf, NaN with a payload, the
integer limits) and awkward shapes (a scalar [], a zero-size [0, 5], primes
[3, 5, 7]), a non-ASCII tensor name and one with a quote, and a "__metadata__"
map whose value needs JSON escapes. tests/model/safetensors_test.cc
(SafetensorsPeer.*) reads it and compares every element bit for bit with the
same table as EXPECTED below.

The file is written only when its content would change: `safetensors` stores
"__metadata__" from a Rust HashMap, so the key order, and with it the bytes,
may differ from run to run although the content does not.

--check FILE loads FILE with `safetensors` (safe_open, framework "pt") and
asserts it holds exactly EXPECTED, bit for bit, plus strata's "strata.xxh3"
metadata key. Checked by hand with safetensors 0.8.0 and torch 2.15.0 on a file
that strata's WriteSafetensors wrote from the fixture's tensors, in the
fixture's data-buffer order (read with SafetensorsFile::Open, written back):
"ok: 18 tensors and 2 metadata keys match (plus strata.xxh3)". By hand too,
the package refused, as strata does, a gap between two tensors and overlapping
data_offsets (InvalidOffset), and bytes after the last tensor
(MetadataIncompleteBuffer); docs/formats/safetensors.md lists where it is more
lenient than strata.

Uses the peers virtualenv (peers_env.py) and installs torch and safetensors
there when missing.
"""

import argparse
import math
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_env  # noqa: E402

TORCH_SPEC = os.environ.get("STRATA_PEERS_TORCH", "torch==2.15.0")
SAFETENSORS_SPEC = os.environ.get("STRATA_PEERS_SAFETENSORS", "safetensors==0.8.0")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUT = os.path.join(REPO, "tests", "data", "safetensors", "python_fixture.safetensors")

METADATA = {
    "format": "pt",
    "note": 'quote" newline\n tab\t \u00e9 \u2211 \U0001f642 \x01',
}


def f64_bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


# name -> (safetensors dtype, shape, values). Floats are given as bit patterns (F32, F16, BF16,
# F64) so NaN payloads and signed zeros are pinned; F8_E4M3 as raw bytes; C64 as (re, im) pairs.
EXPECTED = {
    "f32": ("F32", [2, 3], [0x00000000, 0x3FC00000, 0xC0100000, 0x000116C2, 0x7F800000, 0x7FC00001]),
    "f16": ("F16", [3, 3], [0x0000, 0x8000, 0x3C00, 0x7BFF, 0x0400, 0x0001, 0x7C00, 0xFC00, 0x7E01]),
    "bf16": ("BF16", [5], [0x3F80, 0xC060, 0x0001, 0x7F80, 0x7F7F]),
    "f64": ("F64", [3], [f64_bits(1.0 / 3.0), f64_bits(-1e300), 0x0000000000000001]),
    "i64": ("I64", [2, 2], [0, -1, 2**40, -(2**31)]),
    "i32": ("I32", [3], [-(2**31), 0, 2**31 - 1]),
    "i16": ("I16", [2], [-32768, 32767]),
    "i8": ("I8", [3], [-128, 0, 127]),
    "u64": ("U64", [1], [2**64 - 1]),
    "u32": ("U32", [2], [7, 2**32 - 1]),
    "u16": ("U16", [2], [0, 65535]),
    "u8": ("U8", [4], [0, 1, 128, 255]),
    "bool": ("BOOL", [3], [1, 0, 1]),
    "f8": ("F8_E4M3", [4], [0x00, 0x38, 0x7E, 0xFF]),
    "c64": ("C64", [2], [(1.0, 2.0), (-0.5, 0.0)]),
    'quote"name': ("F32", [], [0x42280000]),  # a scalar: 42.0
    "empty": ("F32", [0, 5], []),
    "emb.wt\u00e9": ("F32", [3, 5, 7], [struct.unpack("<I", struct.pack("<f", i * 0.5 - 20.0))[0] for i in range(105)]),
}

# dtype -> (numpy dtype of the stored bits, torch dtype name)
_BITS = {
    "F32": ("<u4", "float32"), "F16": ("<u2", "float16"), "BF16": ("<u2", "bfloat16"), "F64": ("<u8", "float64"),
    "I64": ("<i8", "int64"), "I32": ("<i4", "int32"), "I16": ("<i2", "int16"), "I8": ("i1", "int8"),
    "U64": ("<u8", "uint64"), "U32": ("<u4", "uint32"), "U16": ("<u2", "uint16"), "U8": ("u1", "uint8"),
    "BOOL": ("u1", "bool"), "F8_E4M3": ("u1", "float8_e4m3fn"),
}


def make_tensor(torch, np, dtype, shape, values):
    if dtype == "C64":
        flat = np.array([c for pair in values for c in pair], dtype="<f4")
        return torch.from_numpy(flat.view("<c8").copy()).reshape(shape)
    npdt, tname = _BITS[dtype]
    raw = np.array(values, dtype=npdt).tobytes()
    t = torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else torch.empty(0, dtype=torch.uint8)
    return t.view(getattr(torch, tname)).reshape(shape).clone()


def tensor_bytes(t):
    """The tensor's bytes, little-endian, row-major."""
    import torch
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def check_file(path, allow_strata_key):
    """Returns a list of differences between the file and EXPECTED (empty when it matches)."""
    import torch
    from safetensors import safe_open
    problems = []
    with safe_open(path, framework="pt") as f:
        meta = dict(f.metadata() or {})
        names = set(f.keys())
        if names != set(EXPECTED):
            problems.append("tensor names differ: %s" % sorted(names ^ set(EXPECTED)))
        import numpy as np
        for name, (dtype, shape, values) in EXPECTED.items():
            if name not in names:
                continue
            got = f.get_tensor(name)
            want = make_tensor(torch, np, dtype, shape, values)
            if got.dtype != want.dtype or list(got.shape) != shape:
                problems.append("%s: %s %s, want %s %s" % (name, got.dtype, list(got.shape), want.dtype, shape))
            elif tensor_bytes(got) != tensor_bytes(want):
                problems.append("%s: bytes differ" % name)
    extra = set(meta) - set(METADATA)
    if allow_strata_key:
        extra.discard("strata.xxh3")
        if "strata.xxh3" not in meta:
            problems.append("metadata: no strata.xxh3")
    if extra:
        problems.append("metadata: unexpected keys %s" % sorted(extra))
    for k, v in METADATA.items():
        if meta.get(k) != v:
            problems.append("metadata %r: %r, want %r" % (k, meta.get(k), v))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check", metavar="FILE", help="check a strata-written file instead of writing the fixture")
    args = ap.parse_args()
    peers_env.ensure_venv([("numpy", "numpy"), ("torch", TORCH_SPEC), ("safetensors", SAFETENSORS_SPEC)])
    import numpy as np
    import safetensors
    import torch
    from safetensors.torch import save_file

    if args.check:
        problems = check_file(args.check, allow_strata_key=True)
        if problems:
            sys.exit("FAILED:\n  " + "\n  ".join(problems))
        print("ok: %d tensors and %d metadata keys match (plus strata.xxh3)" % (len(EXPECTED), len(METADATA)))
        return

    if os.path.exists(args.out) and not check_file(args.out, allow_strata_key=False):
        print("%s: unchanged" % args.out)
        return
    tensors = {name: make_tensor(torch, np, *spec) for name, spec in EXPECTED.items()}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_file(tensors, args.out, metadata=METADATA)
    os.chmod(args.out, 0o644)  # save_file leaves its temporary file's 0600
    problems = check_file(args.out, allow_strata_key=False)
    if problems:
        sys.exit("FAILED to read back:\n  " + "\n  ".join(problems))
    print("%s: %d bytes (safetensors %s, torch %s)" % (args.out, os.path.getsize(args.out),
                                                         safetensors.__version__, torch.__version__))


if __name__ == "__main__":
    main()
