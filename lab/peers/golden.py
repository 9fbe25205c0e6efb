#!/usr/bin/env python3
"""Write the golden files that strata's C++ tests read (tests/data/golden/).

    python3 lab/peers/golden.py [--out DIR] [--skip-cpu-check]

Creates/reuses the peers virtualenv (see peers_env.py), installs torch and
bitsandbytes there from PyPI when missing, and writes:

  q8map_signed.txt / q8map_unsigned.txt
      bitsandbytes.functional.create_dynamic_map(signed=True/False), float32:
      256 lines "index decimal hex".
  codec_cases.txt
      8-bit block-wise quantization cases (blocks of 256) computed by the small
      numpy float32 model below of bitsandbytes' CUDA rule (kQuantizeBlockwise +
      dQuantize), and, as comments, how often bitsandbytes' CPU backend disagrees
      with that rule.
  adamw_torch.txt
      torch.optim.AdamW (CPU, foreach=False) trajectories.

Every float is written as the 8-hex-digit lowercase bit pattern of a float32.
Lines starting with '#' are comments; the first line of each file names the
script, the versions and the date.  The output is deterministic: a file whose
content (ignoring the first line) would not change is left untouched, so running
the script twice leaves every file byte-identical.
"""

import argparse
import datetime
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_env  # noqa: E402

TORCH_SPEC = os.environ.get("STRATA_PEERS_TORCH", "torch==2.15.0")
BNB_SPEC = os.environ.get("STRATA_PEERS_BNB", "bitsandbytes==0.50.2")

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BLOCK = 256

# ----------------------------------------------------------------------------- formatting


def hx(a):
    """float32 array (or scalar) -> list of 8-hex-digit bit patterns."""
    import numpy as np

    a = np.ascontiguousarray(np.asarray(a, dtype=np.float32).reshape(-1))
    return ["%08x" % int(u) for u in a.view(np.uint32)]


def hexline(tag, a):
    return tag + " " + " ".join(hx(a))


def write_if_changed(path, header, body_lines):
    body = "\n".join(body_lines) + "\n"
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        old_body = old.split("\n", 1)[1] if "\n" in old else ""
        if old.startswith("#") and old_body == body:
            print("unchanged %s (%d bytes)" % (os.path.relpath(path, REPO), len(old)))
            return
    with open(path, "w") as f:
        f.write(header + "\n" + body)
    print("wrote     %s (%d bytes)" % (os.path.relpath(path, REPO), len(header) + 1 + len(body)))


# ----------------------------------------------------------------------------- the CUDA rule, in numpy float32


def cuda_rule_absmax(x):
    """Per-block absmax: max |x| ignoring NaN (fmaxf), +inf counts, all-NaN -> 0."""
    import numpy as np

    x = np.asarray(x, dtype=np.float32)
    n = x.size
    nb = -(-n // BLOCK)
    pad = np.zeros(nb * BLOCK, dtype=np.float32)  # padding with 0 does not change a max of |x|
    pad[:n] = np.abs(x)
    return np.fmax.reduce(pad.reshape(nb, BLOCK), axis=1, initial=np.float32(0.0)).astype(np.float32)


def cuda_rule_encode(book, xn):
    """dQuantize (non-stochastic) on an array of normalized float32 values."""
    import numpy as np

    book = np.asarray(book, dtype=np.float32)
    xn = np.asarray(xn, dtype=np.float32)
    shape = xn.shape
    xn = xn.reshape(-1)
    m = xn.size
    pivot = np.full(m, 127, dtype=np.int64)
    upper_pivot = np.full(m, 255, dtype=np.int64)
    lower_pivot = np.zeros(m, dtype=np.int64)
    lower = np.full(m, -1.0, dtype=np.float32)
    upper = np.full(m, 1.0, dtype=np.float32)
    val = book[pivot]
    for i in (64, 32, 16, 8, 4, 2, 1):
        gt = xn > val  # False for NaN
        lower_pivot = np.where(gt, pivot, lower_pivot)
        lower = np.where(gt, val, lower)
        upper_pivot = np.where(gt, upper_pivot, pivot)
        upper = np.where(gt, upper, val)
        pivot = np.where(gt, pivot + i, pivot - i)
        val = book[pivot]
    upper = np.where(upper_pivot == 255, book[255], upper).astype(np.float32)
    lower = np.where(lower_pivot == 0, book[0], lower).astype(np.float32)
    half = np.float32(0.5)
    gt = xn > val
    mid_up = ((upper + val) * half).astype(np.float32)
    mid_lo = ((lower + val) * half).astype(np.float32)
    code_up = np.where(xn > mid_up, upper_pivot, pivot)
    code_lo = np.where(xn < mid_lo, lower_pivot, pivot)
    return np.where(gt, code_up, code_lo).astype(np.uint8).reshape(shape)


def cuda_rule_quantize(book, x):
    """Returns (absmax[nblocks], codes[n]) following the rule above."""
    import numpy as np

    x = np.asarray(x, dtype=np.float32).reshape(-1)
    n = x.size
    absmax = cuda_rule_absmax(x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        inv = (np.float32(1.0) / absmax).astype(np.float32)  # 0 -> +inf
        xn = (x * np.repeat(inv, BLOCK)[:n]).astype(np.float32)  # 0*inf -> NaN
    return absmax, cuda_rule_encode(book, xn)


# ----------------------------------------------------------------------------- code books


def books():
    import bitsandbytes.functional as F
    import numpy as np

    s = F.create_dynamic_map(signed=True).to("cpu").float().numpy().astype(np.float32)
    u = F.create_dynamic_map(signed=False).to("cpu").float().numpy().astype(np.float32)
    assert s.shape == (256,) and u.shape == (256,)
    return s, u


def book_lines(book):
    return ["%d %.9e %s" % (i, float(v), h) for i, (v, h) in enumerate(zip(book, hx(book)))]


def compare_with_shared(book, path):
    """Compare with /work/shared-style files ('idx dec 0xhex'); returns a sentence."""
    import numpy as np

    if not os.path.exists(path):
        return "%s: not present" % path
    bits = []
    with open(path) as f:
        for line in f:
            t = line.split()
            if len(t) >= 3 and not t[0].startswith("#"):
                bits.append(int(t[2], 16))
    ours = [int(b) for b in np.asarray(book, dtype=np.float32).view(np.uint32)]
    if bits == ours:
        return "%s: identical (256 bit patterns)" % path
    ndiff = sum(1 for a, b in zip(bits, ours) if a != b) + abs(len(bits) - len(ours))
    return "%s: DIFFERS in %d entries" % (path, ndiff)


# ----------------------------------------------------------------------------- codec cases


def f32(a):
    import numpy as np

    return np.asarray(a, dtype=np.float32)


def codec_case_inputs(sbook, ubook):
    """List of (name, signed: bool, x float32 array)."""
    import numpy as np

    cases = []

    def rng(seed):
        return np.random.Generator(np.random.PCG64(seed))

    def add(name, signed, x):
        cases.append((name, signed, f32(x).reshape(-1)))

    # single value
    add("single", True, f32([-0.3125]))
    add("single", False, f32([2.75e-3]))

    # random normal, several scales per block
    r = rng(101)
    x = r.standard_normal(1000).astype(np.float32)
    x[:256] *= np.float32(1e-3)
    x[512:768] *= np.float32(1e3)
    add("normal", True, x)
    r = rng(102)
    add("normal", False, np.abs(r.standard_normal(1000)).astype(np.float32))

    # heavy tailed: student-t df=2, like Adam m (signed) and its square like v (unsigned)
    r = rng(103)
    t = (r.standard_t(2, 4099) * 1e-3).astype(np.float32)
    add("student_t", True, t)
    r = rng(104)
    t = (r.standard_t(2, 1000) * 1e-3).astype(np.float32)
    add("student_t_sq", False, (t * t).astype(np.float32))

    # all zeros (absmax 0 -> inv = +inf -> 0*inf = NaN -> code 0)
    add("zeros", True, np.zeros(257, np.float32))
    add("zeros", False, np.zeros(257, np.float32))

    # one NaN in a block; a block that is all NaN; a trailing all-NaN partial block
    r = rng(105)
    x = r.standard_normal(257).astype(np.float32)
    x[17] = np.nan
    x[256] = np.nan
    add("one_nan", True, x)
    add("one_nan", False, np.abs(x))
    add("all_nan", True, np.full(256, np.nan, np.float32))
    add("all_nan", False, np.full(256, np.nan, np.float32))

    # +inf and -inf (absmax = inf -> inv = 0 -> finite x map to +-0, inf*0 = NaN)
    r = rng(106)
    x = r.standard_normal(255).astype(np.float32)
    x[3] = np.inf
    x[200] = -np.inf
    add("inf", True, x)
    y = np.abs(x)
    y[200] = 0.5
    add("inf", False, y)

    # denormals: a block of denormals only, then denormals mixed with 1.0 (partial block)
    r = rng(107)
    d = (r.uniform(0.05, 1.0, 512) * 1e-40).astype(np.float32)  # float32 denormals
    assert np.all(np.abs(d) < np.finfo(np.float32).tiny)
    sgn = np.where(r.uniform(size=512) < 0.5, -1.0, 1.0).astype(np.float32)
    x = (d * sgn).astype(np.float32)[:300]
    x[256] = 1.0
    x[299] = -1.0
    add("denormal", True, x)
    y = d[:300].copy()
    y[256] = 1.0
    add("denormal", False, y)

    # huge values near FLT_MAX (1/absmax is a denormal)
    r = rng(108)
    x = (r.uniform(-1.0, 1.0, 256) * 3.0e38).astype(np.float32)
    x[10] = np.finfo(np.float32).max
    x[11] = -np.finfo(np.float32).max
    add("huge", True, x)
    y = np.abs(x)
    add("huge", False, y)

    # negative zero: alone, and mixed with normal values
    add("neg_zero_single", True, f32([-0.0]))
    add("neg_zero_single", False, f32([-0.0]))
    r = rng(109)
    x = r.standard_normal(256).astype(np.float32)
    x[::7] = -0.0
    add("neg_zero", True, x)
    y = np.abs(x)
    y[::7] = -0.0
    add("neg_zero", False, y)

    # the book values themselves times an absmax (a power of two and a general scale)
    for name, a in (("book_pow2", 4.0), ("book_scaled", 3.7)):
        a = np.float32(a)
        add(name, True, (sbook * a).astype(np.float32))
        add(name, False, (ubook * a).astype(np.float32))

    # exact ties: absmax 1.0 (last element), x = float32 midpoint of book[j], book[j+1]
    half = np.float32(0.5)
    for signed, book in ((True, sbook), (False, ubook)):
        mids = ((book[:-1] + book[1:]) * half).astype(np.float32)  # 255 values
        add("ties", signed, np.concatenate([mids, f32([1.0])]))
        up = np.nextafter(mids, np.float32(np.inf)).astype(np.float32)
        add("ties_ulp_up", signed, np.concatenate([up, f32([1.0])]))
        dn = np.nextafter(mids, np.float32(-np.inf)).astype(np.float32)
        if not signed:
            dn = np.maximum(dn, np.float32(0.0))  # nextafter(0) < 0 would not be non-negative
        add("ties_ulp_down", signed, np.concatenate([dn, f32([1.0])]))
    return cases


def cpu_backend_check(sbook, ubook, n=1_000_000):
    """Compare bitsandbytes' CPU quantize_blockwise with the CUDA rule. Returns comment lines."""
    import numpy as np
    import torch
    import bitsandbytes.functional as F

    lines = []
    try:
        probe = torch.zeros(256, dtype=torch.float32)
        F.quantize_blockwise(probe, code=torch.from_numpy(sbook), blocksize=256)
    except Exception as e:  # noqa: BLE001
        return ["bitsandbytes CPU quantize_blockwise did not run here: %s: %s" % (type(e).__name__, e)]

    r = np.random.Generator(np.random.PCG64(2024))
    tm = (r.standard_t(2, n) * 1e-3).astype(np.float32)
    sets = [
        ("normal (signed book)", sbook, r.standard_normal(n).astype(np.float32)),
        ("student-t df=2 x1e-3, Adam-m-like (signed book)", sbook, tm),
        ("its square, Adam-v-like (unsigned book)", ubook, (tm * tm).astype(np.float32)),
    ]
    for label, book, x in sets:
        q, st = F.quantize_blockwise(torch.from_numpy(x.copy()), code=torch.from_numpy(book.copy()), blocksize=256)
        qb = q.numpy().reshape(-1)
        ab = st.absmax.float().numpy().reshape(-1)
        am, cm = cuda_rule_quantize(book, x)
        dcode = np.abs(qb.astype(np.int32) - cm.astype(np.int32))
        nd = int(np.count_nonzero(dcode))
        na = int(np.count_nonzero(ab.view(np.uint32) != am.view(np.uint32)))
        # dequantized error of each, relative to absmax
        sc = np.repeat(am, BLOCK)[: x.size]
        err_cpu = np.abs(book[qb] * sc - x)
        err_cuda = np.abs(book[cm] * sc - x)
        worse = int(np.count_nonzero(err_cpu > err_cuda))
        lines.append(
            "%s: n=%d codes differ %d (%.4f%%), max |code diff| %d, CPU code strictly farther from x %d; "
            "absmax differ %d of %d blocks"
            % (label, x.size, nd, 100.0 * nd / x.size, int(dcode.max()), worse, na, am.size)
        )
    return lines


def codec_lines(sbook, ubook):
    out = []
    for name, signed, x in codec_case_inputs(sbook, ubook):
        book = sbook if signed else ubook
        absmax, codes = cuda_rule_quantize(book, x)
        assert absmax.size == -(-x.size // BLOCK)
        out.append("case %s %s %d" % (name, "signed" if signed else "unsigned", x.size))
        out.append(hexline("x", x))
        out.append(hexline("absmax", absmax))
        out.append("codes " + " ".join(str(int(c)) for c in codes))
        out.append("end")
    return out


# ----------------------------------------------------------------------------- AdamW


ADAMW_CASES = [
    # name, N, K, lr, beta1, beta2, eps, weight_decay
    ("n1_k3", 1, 3, 1e-3, 0.9, 0.999, 1e-8, 0.01),
    ("n257_k5_wd", 257, 5, 1e-3, 0.9, 0.999, 1e-8, 0.01),
    ("n509_k10", 509, 10, 1e-2, 0.9, 0.95, 1e-6, 0.1),
    ("n1031_k4_defaults", 1031, 4, 1e-3, 0.9, 0.999, 1e-8, 0.01),
]


def adamw_inputs(idx, n, k):
    import numpy as np

    r = np.random.Generator(np.random.PCG64(500 + idx))
    p0 = r.standard_normal(n).astype(np.float32)
    grads = []
    for step in range(1, k + 1):
        g = r.standard_normal(n).astype(np.float32)
        if n == 1:
            g *= np.float32((1.0, 1e-3, 1e3)[(step - 1) % 3])
        else:
            third = n // 3
            g[:third] *= np.float32(1e-3)
            g[2 * third :] *= np.float32(1e3)
            if step == 2:
                g[third + 1] = 0.0  # a zero gradient in the middle of a trajectory
        grads.append(g.astype(np.float32))
    return p0, grads


def run_torch_adamw(p0, grads, lr, b1, b2, eps, wd, **impl):
    import numpy as np
    import torch

    p = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = torch.optim.AdamW([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd, **impl)
    for g in grads:
        p.grad = torch.from_numpy(g.copy())
        opt.step()
    st = opt.state[p]
    return (
        p.detach().numpy().astype(np.float32).copy(),
        st["exp_avg"].numpy().astype(np.float32).copy(),
        st["exp_avg_sq"].numpy().astype(np.float32).copy(),
    )


def numpy_adamw_model(p0, grads, lr, b1, b2, eps, wd):
    """float32 model of torch's CPU single-tensor AdamW found to match it bit for bit here.

    fma(a, b, c) is emulated as float32(double(a)*double(b) + double(c)) (a*b is exact in double).
    """
    import numpy as np

    f = np.float32

    def fma(a, b, c):
        return (np.float64(a) * np.float64(b) + np.float64(c)).astype(f)

    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for t, g in enumerate(grads, 1):
        p = (p * f(1 - lr * wd)).astype(f)
        m = fma(f(1 - b1), (g - m).astype(f), m)  # lerp(m, g, 1-b1), weight < 0.5 branch
        v = fma((f(1 - b2) * g).astype(f), g, (v * f(b2)).astype(f))  # v*b2, then addcmul
        step_size = lr / (1 - b1 ** t)  # double
        den = (np.sqrt(v) / f(math.sqrt(1 - b2 ** t))).astype(f)
        den = (den + f(eps)).astype(f)
        p = (p + ((f(-step_size) * m).astype(f) / den).astype(f)).astype(f)  # addcdiv
    return p, m, v


ADAMW_MODEL_DOC = [
    "numpy float32 model (b1, b2, lr, wd, eps as Python doubles; f() = round to float32):",
    "  p = p*f(1-lr*wd); m = fma(f(1-b1), g-m, m); v = fma(f(1-b2)*g, g, v*f(b2));",
    "  den = sqrt(v)/f(sqrt(1-b2^t)) + f(eps); p = p + (f(-lr/(1-b1^t))*m)/den",
]


def adamw_lines():
    import numpy as np

    out, notes = [], []
    for idx, (name, n, k, lr, b1, b2, eps, wd) in enumerate(ADAMW_CASES):
        p0, grads = adamw_inputs(idx, n, k)
        pk, mk, vk = run_torch_adamw(p0, grads, lr, b1, b2, eps, wd, foreach=False)
        q = numpy_adamw_model(p0, grads, lr, b1, b2, eps, wd)
        notes.append("%s numpy model vs torch: bit differences p %d m %d v %d of %d" % (
            name, *(int(np.count_nonzero(a.view(np.uint32) != b.view(np.uint32))) for a, b in zip(q, (pk, mk, vk))), n))
        for label, impl in (("foreach=True", dict(foreach=True)), ("fused=True", dict(fused=True))):
            try:
                p2, m2, v2 = run_torch_adamw(p0, grads, lr, b1, b2, eps, wd, **impl)
            except Exception as e:  # noqa: BLE001
                notes.append("%s %s: did not run (%s)" % (name, label, type(e).__name__))
                continue
            dp = int(np.count_nonzero(p2.view(np.uint32) != pk.view(np.uint32)))
            dm = int(np.count_nonzero(m2.view(np.uint32) != mk.view(np.uint32)))
            dv = int(np.count_nonzero(v2.view(np.uint32) != vk.view(np.uint32)))
            notes.append(
                "%s %s vs foreach=False: bit differences p %d m %d v %d of %d" % (name, label, dp, dm, dv, n)
            )
        out.append("case %s %d %d %r %r %r %r %r" % (name, n, k, lr, b1, b2, eps, wd))
        out.append(hexline("p0", p0))
        for i, g in enumerate(grads, 1):
            out.append(hexline("g%d" % i, g))
        out.append(hexline("p%d" % k, pk))
        out.append(hexline("m%d" % k, mk))
        out.append(hexline("v%d" % k, vk))
        out.append("end")
    return out, notes


# ----------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "golden"))
    ap.add_argument("--shared-q8map", default="/work/shared/data/q8map",
                    help="folder with dynamic_signed.txt/dynamic_unsigned.txt to compare with (optional)")
    ap.add_argument("--skip-cpu-check", action="store_true",
                    help="skip the 1M-value comparison with bitsandbytes' CPU backend")
    args = ap.parse_args()

    peers_env.ensure_venv([("numpy", "numpy"), ("torch", TORCH_SPEC), ("bitsandbytes", BNB_SPEC)])

    import numpy as np
    import torch
    import bitsandbytes

    torch.manual_seed(0)
    torch.set_num_threads(1)  # CPU reductions/ops stay deterministic
    os.makedirs(args.out, exist_ok=True)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    header = "# lab/peers/golden.py; bitsandbytes %s; torch %s; numpy %s; %s" % (
        bitsandbytes.__version__, torch.__version__, np.__version__, date)

    sbook, ubook = books()
    for name, book, shared in (("q8map_signed.txt", sbook, "dynamic_signed.txt"),
                               ("q8map_unsigned.txt", ubook, "dynamic_unsigned.txt")):
        write_if_changed(os.path.join(args.out, name), header, book_lines(book))
        print("  compare: " + compare_with_shared(book, os.path.join(args.shared_q8map, shared)))

    # exact-tie sanity: every midpoint is a tie of the CUDA rule and lands on one of its two neighbours
    for book in (sbook, ubook):
        mids = ((book[:-1] + book[1:]) * np.float32(0.5)).astype(np.float32)
        c = cuda_rule_encode(book, mids).astype(np.int64)
        j = np.arange(255)
        assert np.all((c == j) | (c == j + 1)), "tie midpoint mapped outside its neighbours"

    codec_header = [
        "# Blocks of 256. Codes: numpy float32 model of bitsandbytes' CUDA kQuantizeBlockwise + dQuantize:",
        "#   absmax = fmax-reduce |x| (NaN ignored, +inf counts, all-NaN block -> 0); inv = 1.0f/absmax;",
        "#   xn = x*inv (float32); code = dQuantize binary search with float32 midpoints (NaN -> code 0).",
        "# IEEE float32 throughout (no flush-to-zero, correctly rounded 1.0f/absmax).",
    ]
    if args.skip_cpu_check:
        codec_header.append("# bitsandbytes CPU backend comparison: skipped (--skip-cpu-check)")
    else:
        codec_header.append("# bitsandbytes %s CPU backend quantize_blockwise(blocksize=256) vs this rule:"
                            % bitsandbytes.__version__)
        codec_header += ["#   " + s for s in cpu_backend_check(sbook, ubook)]
    write_if_changed(os.path.join(args.out, "codec_cases.txt"), header, codec_header + codec_lines(sbook, ubook))

    lines, notes = adamw_lines()
    adamw_header = [
        "# torch.optim.AdamW on CPU, float32, foreach=False (torch's CPU default), amsgrad=False, maximize=False.",
        "# hyperparameters: lr beta1 beta2 eps weight_decay. pK/mK/vK = param/exp_avg/exp_avg_sq after K steps.",
    ] + ["# " + s for s in ADAMW_MODEL_DOC] + ["# " + s for s in notes]
    write_if_changed(os.path.join(args.out, "adamw_torch.txt"), header, adamw_header + lines)
    for s in notes:
        print("  " + s)


if __name__ == "__main__":
    main()
