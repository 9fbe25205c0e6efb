#!/usr/bin/env python3
"""Check that a Llama-family checkpoint written by strata loads in transformers and gives strata's loss.

    python3 lab/peers/hf_llama_roundtrip.py --checkpoint DIR --batch FILE --strata-loss X
    python3 lab/peers/hf_llama_roundtrip.py --checkpoint DIR --batch FILE --strata build/strata [--json OUT]

DIR holds config.json and the weights in the Hugging Face layout of
LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM (whatever
config.json's model_type says): either one model.safetensors or shards listed
by model.safetensors.index.json; keys "model.layers.0.self_attn.q_proj.weight",
..., nn.Linear weights [out, in]; lm_head.weight may be absent when
tie_word_embeddings is true. The tensors may be float32 or bfloat16 / float16.
The script loads DIR with transformers.AutoModelForCausalLM.from_pretrained
(dtype=torch.float32, eager attention, local files only, nothing is downloaded),
refuses a checkpoint with missing, unexpected or mismatched keys (a missing
lm_head.weight is fine when the head is tied), and computes the mean
cross-entropy of the logits for the `inputs` tensor of FILE against its
`targets` tensor over all B*T positions (no shift: position t predicts
targets[b, t]), in float32 and in float64 (the model cast to float64).

FILE is a safetensors file with I32 tensors `inputs` [B, T] and `targets` [B, T],
like tests/data/llama_ref/llama/reference.safetensors. When FILE also has a
`loss` tensor it is reported next to the others.

The expected loss comes from --strata-loss X (alias --expected-loss), or from
running

    BIN eval --init DIR --batch-file FILE --json -

which prints a JSON object with a "loss" field on stdout. The script writes a
few readable lines on stderr and one JSON object on stdout: the transformers
loss, the expected loss, their absolute and relative difference, and the
loading report. Exit status 1 when |expected - hf| / |hf| > --rtol (default
1e-5), 2 when the checkpoint does not load cleanly or strata fails.
--json OUT also writes the object to OUT.
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


def say(msg):
    print(msg, file=sys.stderr, flush=True)


class _Capture(logging.Handler):
    """Collects transformers' warnings while the checkpoint loads."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


def stored_tensors(ckpt):
    """{key: (dtype, shape)} over model.safetensors or the shards named by model.safetensors.index.json,
    and the list of files read."""
    from safetensors import safe_open

    index = os.path.join(ckpt, "model.safetensors.index.json")
    single = os.path.join(ckpt, "model.safetensors")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        files = sorted(set(weight_map.values()))
    elif os.path.exists(single):
        weight_map, files = None, ["model.safetensors"]
    else:
        raise SystemExit("%s: neither model.safetensors nor model.safetensors.index.json" % ckpt)
    out = {}
    for fn in files:
        with safe_open(os.path.join(ckpt, fn), framework="pt") as f:
            for k in f.keys():
                s = f.get_slice(k)
                if k in out:
                    raise SystemExit("%s: tensor %s stored twice" % (ckpt, k))
                if weight_map is not None and weight_map.get(k) != fn:
                    raise SystemExit("%s: %s is in %s but the index says %s" % (ckpt, k, fn, weight_map.get(k)))
                out[k] = (s.get_dtype(), list(s.get_shape()))
    if weight_map is not None and set(weight_map) != set(out):
        raise SystemExit("%s: index and shards disagree on %s" % (ckpt, sorted(set(weight_map) ^ set(out))))
    return out, files


def load_checkpoint(ckpt):
    """Returns (model float32 eval, loading report dict, captured warnings)."""
    import warnings

    import torch
    import transformers

    cap = _Capture()
    tlog = transformers.utils.logging.get_logger("transformers")
    tlog.addHandler(cap)
    try:
        with warnings.catch_warnings(record=True) as pyw:
            warnings.simplefilter("always")
            model, info = transformers.AutoModelForCausalLM.from_pretrained(
                ckpt, dtype=torch.float32, local_files_only=True, attn_implementation="eager",
                output_loading_info=True)
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
    """Runs `BIN eval --init DIR --batch-file FILE --json -`; returns (loss, command)."""
    cmd = [binary, "eval", "--init", ckpt, "--batch-file", batch, "--json", "-"]
    say("$ " + " ".join(cmd))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.stderr.strip():
        sys.stderr.write(p.stderr)
    if p.returncode != 0:
        raise RuntimeError("strata eval exited with status %d" % p.returncode)
    out = p.stdout.strip()
    for c in [out] + [ln.strip() for ln in reversed(out.splitlines())]:
        try:
            obj = json.loads(c)
        except ValueError:
            continue
        if isinstance(obj, dict) and "loss" in obj:
            return float(obj["loss"]), cmd
    raise RuntimeError("no JSON object with a \"loss\" field in strata's output:\n" + out[-2000:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Exit status: 0 agree, 1 loss differs by more than --rtol, "
                                        "2 checkpoint or strata failure.")
    ap.add_argument("--checkpoint", required=True, metavar="DIR",
                    help="folder with config.json and model.safetensors (or an index + shards)")
    ap.add_argument("--batch", required=True, metavar="FILE",
                    help="safetensors file with I32 inputs [B,T] and targets [B,T] (e.g. reference.safetensors)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--strata-loss", "--expected-loss", dest="strata_loss", type=float, metavar="X",
                     help="the expected (strata's) loss on FILE, given by hand")
    src.add_argument("--strata", metavar="BIN", help="strata binary; runs `BIN eval --init DIR --batch-file FILE "
                     "--json -` and reads its \"loss\"")
    ap.add_argument("--rtol", type=float, default=1e-5, help="largest relative difference accepted (default 1e-5)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, deterministic)")
    ap.add_argument("--json", metavar="OUT", help="also write the JSON object to OUT")
    args = ap.parse_args()

    peers_env.ensure_venv(REQUIREMENTS)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    import transformers

    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    ckpt = os.path.abspath(args.checkpoint)
    if not os.path.exists(os.path.join(ckpt, "config.json")):
        sys.exit("%s: no config.json" % ckpt)
    with open(os.path.join(ckpt, "config.json")) as f:
        cfg = json.load(f)
    stored, files = stored_tensors(ckpt)

    model, report, msgs = load_checkpoint(ckpt)
    head, emb = model.get_output_embeddings().weight, model.get_input_embeddings().weight
    tied = head is emb or head.data_ptr() == emb.data_ptr()
    bad = []
    missing = [k for k in report["missing_keys"] if not (k == "lm_head.weight" and tied)]
    if missing:
        bad.append("missing keys: " + ", ".join(missing))
    for k in ("unexpected_keys", "mismatched_keys", "error_msgs"):
        if report[k]:
            bad.append("%s: %s" % (k.replace("_", " "), ", ".join(report[k])))
    if not tied and "lm_head.weight" not in stored:
        bad.append("lm_head.weight absent and the model's head is not tied to the embedding")
    expected_keys = set(model.state_dict()) - ({"lm_head.weight"} if tied else set())
    extra = sorted(set(stored) - expected_keys - {"lm_head.weight"})
    if extra:
        bad.append("stored tensors the model does not have: " + ", ".join(extra))
    if sorted(expected_keys - set(stored)):
        bad.append("model tensors not stored: " + ", ".join(sorted(expected_keys - set(stored))))
    dtypes = sorted({d for d, _ in stored.values()})

    say("checkpoint %s: %s (model_type %s), %d tensors in %d file(s), dtypes %s, head tied: %s" % (
        ckpt, type(model).__name__, cfg.get("model_type"), len(stored), len(files), ",".join(dtypes),
        "yes" if tied else "no"))
    for m in msgs:
        say("  transformers said: " + m.strip().replace("\n", "\n    "))
    for b in bad:
        say("  LOAD PROBLEM: " + b)

    batch = load_batch(args.batch)
    inputs, targets = batch["inputs"], batch["targets"]
    if int(inputs.max()) >= cfg["vocab_size"] or int(inputs.min()) < 0:
        sys.exit("%s: token ids outside [0, %d)" % (args.batch, cfg["vocab_size"]))
    loss32 = hf_loss(model, inputs, targets)
    loss64 = hf_loss(model.double(), inputs, targets)
    model.float()
    ref = float(batch["loss"].reshape(-1)[0]) if "loss" in batch else None

    res = {
        "checkpoint": ckpt, "batch": os.path.abspath(args.batch), "B": int(inputs.shape[0]), "T": int(inputs.shape[1]),
        "architecture": type(model).__name__, "model_type": cfg.get("model_type"),
        "hf_loss": loss32, "hf_loss_fp64": loss64, "file_loss": ref,
        "expected_loss": None, "abs_diff": None, "rel_diff": None, "rtol": args.rtol, "pass": False,
        "tensors": len(stored), "files": files, "stored_dtypes": dtypes,
        "lm_head_stored": "lm_head.weight" in stored, "tied": bool(tied),
        "load_report": report, "load_problems": bad,
        "torch": torch.__version__, "transformers": transformers.__version__,
    }
    status = 0
    try:
        if args.strata:
            s, cmd = run_strata(args.strata, ckpt, args.batch)
            res["strata_cmd"] = " ".join(cmd)
        else:
            s = args.strata_loss
        res["expected_loss"] = s
        res["abs_diff"] = s - loss32
        res["rel_diff"] = abs(s - loss32) / abs(loss32) if loss32 != 0 else abs(s)
        res["rel_diff_fp64"] = abs(s - loss64) / abs(loss64) if loss64 != 0 else abs(s)
    except (OSError, RuntimeError) as e:
        say("strata: %s" % e)
        res["error"] = str(e)
        status = 2

    say("batch %s: B=%d T=%d" % (args.batch, res["B"], res["T"]))
    say("  transformers loss (float32) %.9g" % loss32)
    say("  transformers loss (float64) %.17g" % loss64)
    if ref is not None:
        say("  loss stored in the batch file %.9g" % ref)
    if res["expected_loss"] is not None:
        say("  expected loss               %.9g" % res["expected_loss"])
        say("  difference %.3e; relative %.3e vs float32, %.3e vs float64 (rtol %.1e)"
            % (res["abs_diff"], res["rel_diff"], res["rel_diff_fp64"], args.rtol))
        if res["rel_diff"] > args.rtol:
            status = max(status, 1)
    # The tokenizer strata copied beside the weights (when the run had one): AutoTokenizer finds it,
    # and its vocabulary fits the model's.
    if os.path.exists(os.path.join(ckpt, "tokenizer.json")):
        try:
            tok = transformers.AutoTokenizer.from_pretrained(ckpt, local_files_only=True)
            res["tokenizer"] = {"class": type(tok).__name__, "vocab": len(tok),
                                "ids": tok("Hello, strata: 1234 tokens.")["input_ids"]}
            say("  AutoTokenizer: %s, %d tokens" % (type(tok).__name__, len(tok)))
            if len(tok) > cfg["vocab_size"]:
                bad.append("tokenizer has %d tokens, more than the model's vocabulary" % len(tok))
        except Exception as e:  # noqa: BLE001 (any failure to load is the finding)
            bad.append("AutoTokenizer.from_pretrained: %s" % e)
    if bad:
        status = 2
    res["pass"] = status == 0
    say("PASS" if status == 0 else "FAIL")

    text = json.dumps(res, indent=2, sort_keys=True) + "\n"
    sys.stdout.write(text)
    if args.json and args.json != "-":
        with open(args.json, "w") as f:
            f.write(text)
    sys.exit(status)


if __name__ == "__main__":
    main()
