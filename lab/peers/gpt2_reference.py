#!/usr/bin/env python3
"""Write the GPT-2 reference files that strata's model tests read (tests/data/gpt2_ref/).

    python3 lab/peers/gpt2_reference.py [--out DIR]

Builds a small, randomly initialised transformers GPT2LMHeadModel (nothing is
downloaded), and writes:

  model.safetensors, config.json
      model.save_pretrained(DIR): Hugging Face key names ("transformer.h.0.attn.
      c_attn.weight", ...), Conv1D weights in [in, out] layout; the LM head is
      tied to transformer.wte.weight, so lm_head.weight is not stored.
  reference.safetensors       batch B=3, T=17
  reference_t1.safetensors    batch B=2, T=1
      inputs   I32 [B, T]       random token ids
      targets  I32 [B, T]       random token ids, drawn independently of inputs
      logits   F32 [B, T, V]    model(input_ids=inputs).logits
      loss     F32 [1]          mean cross-entropy of logits vs targets over all
                                B*T positions (no shift: position t predicts
                                targets[b, t])
      grad.<name> F32           d loss / d parameter for every entry of
                                model.named_parameters() (HF names; the tied
                                transformer.wte.weight gradient includes the LM
                                head's contribution)
      metadata: the model config (JSON), the seeds, torch / transformers versions,
      and the float32-vs-float64 errors of this reference.

Every parameter is drawn from a seeded torch.Generator by this script (the
weights do not depend on transformers' own initialisation): matrices and
embeddings normal(0, 0.2) (the residual projections c_proj normal(0, 0.1), the
GPT-2 1/sqrt(2*n_layer) scaling), LayerNorm weights 1 + normal(0, 0.1), LayerNorm
and linear biases normal(0, 0.1), so that every parameter changes the output.

The forward/backward pass is run in float32 (the stored reference) and again in
float64 from the same float32 weights; the script prints how far the float32
figures are from the float64 ones, which tells what tolerance a float32
implementation can be held to. CPU, one thread, deterministic: a file whose bytes
would not change is left untouched.
"""

import argparse
import copy
import datetime
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers_env  # noqa: E402

TORCH_SPEC = os.environ.get("STRATA_PEERS_TORCH", "torch==2.15.0")
TRANSFORMERS_SPEC = os.environ.get("STRATA_PEERS_TRANSFORMERS", "transformers==5.23.0")
SAFETENSORS_SPEC = os.environ.get("STRATA_PEERS_SAFETENSORS", "safetensors==0.8.0")
REQUIREMENTS = [("numpy", "numpy"), ("torch", TORCH_SPEC), ("transformers", TRANSFORMERS_SPEC),
                ("safetensors", SAFETENSORS_SPEC)]

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

SEED = 1234
CONFIG = dict(
    vocab_size=97,
    n_positions=24,
    n_embd=48,
    n_layer=2,
    n_head=4,
    activation_function="gelu_new",
    resid_pdrop=0.0,
    embd_pdrop=0.0,
    attn_pdrop=0.0,
    layer_norm_epsilon=1e-5,
    initializer_range=0.2,
    tie_word_embeddings=True,
    bos_token_id=None,  # GPT-2's 50256 is outside this vocabulary; no token is special here
    eos_token_id=None,
)
WEIGHT_STD = 0.2   # matrices and embeddings
BIAS_STD = 0.1     # all biases; LayerNorm weights are 1 + normal(0, BIAS_STD)
# name, B, T, seed of the batch generator
CASES = [("reference.safetensors", 3, 17, SEED + 1), ("reference_t1.safetensors", 2, 1, SEED + 2)]


# ----------------------------------------------------------------------------- model


def build_model():
    """The float32 GPT2LMHeadModel with every parameter drawn by randomize()."""
    import torch
    import transformers

    torch.manual_seed(SEED)
    cfg = transformers.GPT2Config(**CONFIG)
    model = transformers.GPT2LMHeadModel._from_config(cfg, attn_implementation="eager")
    model.float()
    randomize(model, cfg)
    model.eval()  # dropout is 0 anyway; eval() keeps it that way whatever the config says
    assert model.lm_head.weight is model.transformer.wte.weight, "lm_head is not tied to wte"
    return model


def randomize(model, cfg):
    import torch

    g = torch.Generator().manual_seed(SEED)
    proj_std = WEIGHT_STD / (2 * cfg.n_layer) ** 0.5
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied lm_head appears once, as transformer.wte.weight
            leaf = name.split(".")
            if leaf[-1] == "bias":
                v = torch.randn(p.shape, generator=g, dtype=torch.float32) * BIAS_STD
            elif any(s.startswith("ln_") for s in leaf):  # ln_1 / ln_2 / ln_f weight
                v = 1.0 + torch.randn(p.shape, generator=g, dtype=torch.float32) * BIAS_STD
            elif "c_proj" in leaf:
                v = torch.randn(p.shape, generator=g, dtype=torch.float32) * proj_std
            else:  # wte, wpe, c_attn, c_fc
                v = torch.randn(p.shape, generator=g, dtype=torch.float32) * WEIGHT_STD
            p.copy_(v)


def forward_backward(model, inputs, targets):
    """Returns (logits, loss, {name: grad}) in the model's dtype."""
    import torch.nn.functional as F

    model.zero_grad(set_to_none=True)
    logits = model(input_ids=inputs.long()).logits
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long(), reduction="mean")
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return logits.detach(), loss.detach().reshape(1), grads


# ----------------------------------------------------------------------------- errors


def rel_err(a32, a64):
    """Max |a32 - a64| / max |a64| (norm-wise, robust to entries near zero)."""
    d = (a32.double() - a64).abs().max().item()
    s = a64.abs().max().item()
    return d / s if s > 0 else d


def elem_rel_err(a32, a64, floor_frac=1e-3):
    """Max elementwise |a32 - a64| / |a64| over entries with |a64| >= floor_frac * max|a64|."""
    s = a64.abs().max().item()
    m = a64.abs() >= floor_frac * s
    if not bool(m.any()):
        return 0.0
    return ((a32.double() - a64).abs()[m] / a64.abs()[m]).max().item()


# ----------------------------------------------------------------------------- writing


def _canonical(blob, name):
    """safetensors files: (parsed header, data bytes); the header's metadata order is not stable
    (a hash map in the safetensors writer). Other files: the bytes themselves."""
    if not name.endswith(".safetensors") or len(blob) < 8:
        return blob
    n = int.from_bytes(blob[:8], "little")
    try:
        return json.loads(blob[8:8 + n].decode("utf-8")), blob[8 + n:]
    except ValueError:
        return blob


def replace_if_changed(tmp_path, path):
    with open(tmp_path, "rb") as f:
        new = f.read()
    if os.path.exists(path):
        with open(path, "rb") as f:
            if _canonical(f.read(), path) == _canonical(new, path):
                print("unchanged %s (%d bytes)" % (os.path.relpath(path, REPO), len(new)))
                return
    shutil.copyfile(tmp_path, path)
    print("wrote     %s (%d bytes)" % (os.path.relpath(path, REPO), len(new)))


def save_model(model, out, tmp):
    import inspect

    kw = {}
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:  # transformers 4.x
        kw["safe_serialization"] = True
    d = os.path.join(tmp, "model")
    model.save_pretrained(d, **kw)
    for name in ("model.safetensors", "config.json"):
        replace_if_changed(os.path.join(d, name), os.path.join(out, name))
    extra = sorted(set(os.listdir(d)) - {"model.safetensors", "config.json"})
    if extra:
        print("  (save_pretrained also wrote %s; not kept)" % ", ".join(extra))
    from safetensors import safe_open

    with safe_open(os.path.join(d, "model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
        print("  model.safetensors keys (%d):" % len(keys))
        for k in keys:
            t = f.get_slice(k)
            print("    %-40s %s %s" % (k, t.get_dtype(), list(t.get_shape())))
    print("  lm_head.weight stored: %s" % ("yes" if "lm_head.weight" in keys else "no (tied to transformer.wte.weight)"))
    return keys


def make_case(model, model64, b, t, seed, versions):
    import torch

    g = torch.Generator().manual_seed(seed)
    V = CONFIG["vocab_size"]
    inputs = torch.randint(0, V, (b, t), generator=g, dtype=torch.int64).to(torch.int32)
    targets = torch.randint(0, V, (b, t), generator=g, dtype=torch.int64).to(torch.int32)

    logits, loss, grads = forward_backward(model, inputs, targets)
    logits64, loss64, grads64 = forward_backward(model64, inputs, targets)

    errs = {
        "logits": rel_err(logits, logits64),
        "loss": rel_err(loss, loss64),
    }
    gerr = {n: rel_err(grads[n], grads64[n]) for n in grads}
    gelem = {n: elem_rel_err(grads[n], grads64[n]) for n in grads}
    errs["grads_max"] = max(gerr.values())
    errs["grads_max_name"] = max(gerr, key=gerr.get)
    errs["logits_elementwise"] = elem_rel_err(logits, logits64)
    errs["grads_elementwise_max"] = max(gelem.values())
    errs["grads_elementwise_max_name"] = max(gelem, key=gelem.get)

    tensors = {"inputs": inputs.contiguous(), "targets": targets.contiguous(),
               "logits": logits.float().contiguous(), "loss": loss.float().contiguous()}
    for n, v in grads.items():
        tensors["grad." + n] = v.float().contiguous()
    meta = {
        "generator": "lab/peers/gpt2_reference.py",
        "model": "transformers.GPT2LMHeadModel, attn_implementation=eager, float32, CPU, 1 thread",
        "config": json.dumps(CONFIG, sort_keys=True),
        "param_seed": str(SEED),
        "batch_seed": str(seed),
        "batch": "B=%d T=%d" % (b, t),
        "loss": "torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1)), mean over B*T, no shift",
        "grads": "grad.<name> for model.named_parameters(); lm_head tied to transformer.wte.weight",
        "fp32_vs_fp64": json.dumps({k: (v if isinstance(v, str) else float("%.3e" % v)) for k, v in errs.items()},
                                   sort_keys=True),
    }
    meta.update(versions)
    return tensors, meta, errs, float(loss.item()), float(loss64.item())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See the module docstring (head -40 lab/peers/gpt2_reference.py) "
                                        "for the content of each file.")
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "gpt2_ref"),
                    help="output folder (default: tests/data/gpt2_ref)")
    args = ap.parse_args()

    peers_env.ensure_venv(REQUIREMENTS)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import numpy as np
    import safetensors
    import torch
    import transformers
    from safetensors.torch import save_file

    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)  # deterministic CPU reductions
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "safetensors": safetensors.__version__, "numpy": np.__version__}
    print("torch %s, transformers %s, safetensors %s; %s" % (
        torch.__version__, transformers.__version__, safetensors.__version__,
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")))

    model = build_model()
    model64 = copy.deepcopy(model).double()
    assert model64.lm_head.weight is model64.transformer.wte.weight
    nparam = sum(p.numel() for p in model.parameters())
    print("GPT2LMHeadModel %s: %d parameters" % (json.dumps(CONFIG, sort_keys=True), nparam))

    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, args.out, tmp)
        for fname, b, t, seed in CASES:
            tensors, meta, errs, loss, loss64 = make_case(model, model64, b, t, seed, versions)
            p = os.path.join(tmp, fname)
            save_file(tensors, p, metadata=meta)
            replace_if_changed(p, os.path.join(args.out, fname))
            print("  B=%d T=%d loss %.9g (float64 %.17g)" % (b, t, loss, loss64))
            print("  tensors: " + ", ".join("%s %s %s" % (k, str(v.dtype).replace("torch.", ""), list(v.shape))
                                             for k, v in tensors.items() if not k.startswith("grad.")))
            print("           %d grad.* tensors (float32, shapes of the parameters)"
                  % sum(1 for k in tensors if k.startswith("grad.")))
            print("  float32 vs float64, max|d|/max|ref|: logits %.2e, loss %.2e, grads %.2e (worst %s)"
                  % (errs["logits"], errs["loss"], errs["grads_max"], errs["grads_max_name"]))
            print("  float32 vs float64, max elementwise rel (|ref| >= 1e-3 max|ref|): logits %.2e, "
                  "grads %.2e (worst %s)"
                  % (errs["logits_elementwise"], errs["grads_elementwise_max"], errs["grads_elementwise_max_name"]))


if __name__ == "__main__":
    main()
