#!/usr/bin/env python3
"""Check that a GPT-2 checkpoint written by strata loads in transformers and gives strata's loss.

    python3 lab/peers/hf_roundtrip.py --checkpoint DIR --batch FILE --strata-loss X
    python3 lab/peers/hf_roundtrip.py --checkpoint DIR --batch FILE --strata build/strata [--json OUT]

DIR holds model.safetensors and config.json in the Hugging Face GPT-2 layout (keys
"transformer.h.0.attn.c_attn.weight", ..., Conv1D weights [in, out], no
lm_head.weight because the head is tied to transformer.wte.weight). The script
loads it with transformers.GPT2LMHeadModel.from_pretrained (local files only,
nothing is downloaded), refuses a checkpoint with missing, unexpected or
mismatched keys (a missing lm_head.weight is fine when the head is tied), and
computes the mean cross-entropy of the logits for the `inputs` tensor of FILE
against its `targets` tensor over all B*T positions (no shift: position t
predicts targets[b, t]), in float32 and in float64.

FILE is a safetensors file with I32 tensors `inputs` [B, T] and `targets` [B, T],
like tests/data/gpt2_ref/reference.safetensors. When FILE also has a `loss`
tensor it is printed next to the others.

strata's loss comes from --strata-loss, or from running

    BIN eval --init DIR/model.safetensors --batch-file FILE --json -

which prints a JSON object with a "loss" field on stdout. The script prints the
transformers loss, strata's loss and their relative difference, and exits with
status 1 when |strata - hf| / |hf| > --rtol (default 1e-5), 2 when the
checkpoint does not load cleanly or strata fails. --json OUT writes the figures.
"""

import argparse
import json
import logging
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_env  # noqa: E402

TORCH_SPEC = os.environ.get("STRATA_PEERS_TORCH", "torch==2.15.0")
TRANSFORMERS_SPEC = os.environ.get("STRATA_PEERS_TRANSFORMERS", "transformers==5.23.0")
SAFETENSORS_SPEC = os.environ.get("STRATA_PEERS_SAFETENSORS", "safetensors==0.8.0")
REQUIREMENTS = [("torch", TORCH_SPEC), ("transformers", TRANSFORMERS_SPEC), ("safetensors", SAFETENSORS_SPEC)]


class _Capture(logging.Handler):
    """Collects transformers' warnings while the checkpoint loads."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def load_checkpoint(ckpt):
    """Returns (model float32 eval, loading report dict, captured warnings)."""
    import warnings

    import transformers

    cap = _Capture()
    tlog = transformers.utils.logging.get_logger("transformers")
    tlog.addHandler(cap)
    try:
        with warnings.catch_warnings(record=True) as pyw:
            warnings.simplefilter("always")
            model, info = transformers.GPT2LMHeadModel.from_pretrained(
                ckpt, local_files_only=True, attn_implementation="eager", output_loading_info=True)
    finally:
        tlog.removeHandler(cap)
    msgs = cap.records + ["%s: %s" % (w.category.__name__, w.message) for w in pyw]
    report = {k: sorted(str(x) for x in (info.get(k) or [])) for k in
              ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs")}
    model.float().eval()
    return model, report, msgs


def load_batch(path):
    from safetensors.torch import load_file

    t = load_file(path)
    for k in ("inputs", "targets"):
        if k not in t:
            raise SystemExit("%s has no %r tensor (has: %s)" % (path, k, ", ".join(sorted(t))))
    if t["inputs"].shape != t["targets"].shape or t["inputs"].dim() != 2:
        raise SystemExit("%s: inputs %s and targets %s must both be [B, T]"
                         % (path, list(t["inputs"].shape), list(t["targets"].shape)))
    return t


def hf_loss(model, inputs, targets):
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        logits = model(input_ids=inputs.long()).logits
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long()).item()


def run_strata(binary, ckpt, batch):
    """Runs `BIN eval ... --json -`; returns (loss, command, stdout)."""
    cmd = [binary, "eval", "--init", os.path.join(ckpt, "model.safetensors"), "--batch-file", batch, "--json", "-"]
    print("$ " + " ".join(cmd), flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.stderr.strip():
        sys.stderr.write(p.stderr)
    if p.returncode != 0:
        raise RuntimeError("strata eval exited with status %d" % p.returncode)
    out = p.stdout.strip()
    cands = [out] + [ln.strip() for ln in reversed(out.splitlines())]
    for c in cands:
        try:
            obj = json.loads(c)
        except ValueError:
            continue
        if isinstance(obj, dict) and "loss" in obj:
            return float(obj["loss"]), cmd, out
    raise RuntimeError("no JSON object with a \"loss\" field in strata's output:\n" + out[-2000:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Exit status: 0 agree, 1 loss differs by more than --rtol, "
                                        "2 checkpoint or strata failure.")
    ap.add_argument("--checkpoint", required=True, metavar="DIR", help="folder with model.safetensors and config.json")
    ap.add_argument("--batch", required=True, metavar="FILE",
                    help="safetensors file with I32 inputs [B,T] and targets [B,T] (e.g. reference.safetensors)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--strata-loss", type=float, metavar="X", help="strata's loss on FILE, given by hand")
    src.add_argument("--strata", metavar="BIN", help="strata binary; runs `BIN eval --init DIR/model.safetensors "
                     "--batch-file FILE --json -` and reads its \"loss\"")
    ap.add_argument("--rtol", type=float, default=1e-5, help="largest relative difference accepted (default 1e-5)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, deterministic)")
    ap.add_argument("--json", metavar="OUT", help="write the figures as JSON to OUT ('-' for stdout)")
    args = ap.parse_args()

    peers_env.ensure_venv(REQUIREMENTS)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    ckpt = os.path.abspath(args.checkpoint)
    for f in ("model.safetensors", "config.json"):
        if not os.path.exists(os.path.join(ckpt, f)):
            sys.exit("%s: no %s" % (ckpt, f))

    from safetensors import safe_open

    with safe_open(os.path.join(ckpt, "model.safetensors"), framework="pt") as f:
        keys = list(f.keys())

    model, report, msgs = load_checkpoint(ckpt)
    tied = model.lm_head.weight is model.transformer.wte.weight or \
        model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    bad = []
    missing = [k for k in report["missing_keys"] if not (k == "lm_head.weight" and tied)]
    if missing:
        bad.append("missing keys: " + ", ".join(missing))
    for k in ("unexpected_keys", "mismatched_keys", "error_msgs"):
        if report[k]:
            bad.append("%s: %s" % (k.replace("_", " "), ", ".join(report[k])))
    if not tied and "lm_head.weight" not in keys:
        bad.append("lm_head.weight absent and the model's head is not tied to transformer.wte.weight")
    load_warnings = [m for m in msgs if "lm_head" in m or "not initialized" in m.lower()
                     or "missing" in m.lower() or "unexpected" in m.lower()]

    print("checkpoint %s: %d tensors, lm_head.weight %s, head tied: %s" % (
        ckpt, len(keys), "stored" if "lm_head.weight" in keys else "absent", "yes" if tied else "no"))
    for m in msgs:
        print("  transformers said: " + m.strip().replace("\n", "\n    "))
    for b in bad:
        print("  LOAD PROBLEM: " + b)

    batch = load_batch(args.batch)
    inputs, targets = batch["inputs"], batch["targets"]
    loss32 = hf_loss(model, inputs, targets)
    loss64 = hf_loss(model.double(), inputs, targets)
    model.float()
    ref = float(batch["loss"].reshape(-1)[0]) if "loss" in batch else None

    res = {
        "checkpoint": ckpt, "batch": os.path.abspath(args.batch), "B": int(inputs.shape[0]), "T": int(inputs.shape[1]),
        "hf_loss": loss32, "hf_loss_fp64": loss64, "file_loss": ref,
        "strata_loss": None, "rel_diff": None, "rtol": args.rtol, "pass": False,
        "keys": len(keys), "lm_head_stored": "lm_head.weight" in keys, "tied": bool(tied),
        "load_report": report, "load_warnings": load_warnings, "load_problems": bad,
        "torch": torch.__version__, "transformers": transformers.__version__,
    }
    status = 0
    try:
        if args.strata:
            res["strata_cmd"] = None
            s, cmd, _ = run_strata(args.strata, ckpt, args.batch)
            res["strata_cmd"] = " ".join(cmd)
        else:
            s = args.strata_loss
        res["strata_loss"] = s
        res["rel_diff"] = abs(s - loss32) / abs(loss32) if loss32 != 0 else abs(s)
        res["rel_diff_fp64"] = abs(s - loss64) / abs(loss64) if loss64 != 0 else abs(s)
    except (OSError, RuntimeError) as e:
        print("strata: %s" % e)
        res["error"] = str(e)
        status = 2

    print("batch %s: B=%d T=%d" % (args.batch, res["B"], res["T"]))
    print("  transformers loss (float32) %.9g" % loss32)
    print("  transformers loss (float64) %.17g" % loss64)
    if ref is not None:
        print("  loss stored in the batch file %.9g" % ref)
    if res["strata_loss"] is not None:
        print("  strata loss                 %.9g" % res["strata_loss"])
        print("  relative difference %.3e vs float32, %.3e vs float64 (rtol %.1e)"
              % (res["rel_diff"], res["rel_diff_fp64"], args.rtol))
        if res["rel_diff"] > args.rtol:
            status = max(status, 1)
    if bad:
        status = 2
    res["pass"] = status == 0
    print("PASS" if status == 0 else "FAIL")

    if args.json:
        text = json.dumps(res, indent=2, sort_keys=True) + "\n"
        if args.json == "-":
            sys.stdout.write(text)
        else:
            with open(args.json, "w") as f:
                f.write(text)
    sys.exit(status)


if __name__ == "__main__":
    main()
