#!/usr/bin/env python3
"""Write the Llama-family reference files that strata's model tests read (tests/data/llama_ref/).

    python3 lab/peers/llama_reference.py [--out DIR] [--check-only]

Builds three small, randomly initialised transformers models (nothing is
downloaded): `llama` (LlamaForCausalLM, head_dim 16 != hidden/heads, llama3 RoPE
scaling), `mistral` (MistralForCausalLM, sliding window 5 < T) and `qwen2`
(Qwen2ForCausalLM, q/k/v biases, LM head tied to the embedding). All three have
vocabulary 101, width 48, 2 layers, 4 query heads sharing 2 key/value heads
(GQA), SwiGLU MLP of width 80, eager attention. For each case NAME it writes
under DIR/NAME/:

  fp32/      model.save_pretrained(): config.json, model.safetensors,
             generation_config.json; float32, Hugging Face key names
             ("model.layers.0.self_attn.q_proj.weight", ..., nn.Linear weights
             [out, in]); qwen2 stores no lm_head.weight (tied).
  bf16/      the same weights rounded to bfloat16, save_pretrained(); for llama
             sharded (max_shard_size "20KB": model-0000K-of-0000N.safetensors +
             model.safetensors.index.json), for the others one model.safetensors.
  reference.safetensors        B=3, T=17, from the fp32 weights
  reference_bf16.safetensors   B=3, T=17 (same inputs/targets), from the bf16
                               checkpoint loaded back with from_pretrained(dtype=
                               float32), i.e. the bf16 weights upcast exactly;
                               no grad.* tensors unless --bf16-grads (size)
  reference_t1.safetensors     llama only: B=2, T=1, from the fp32 weights
      inputs   I32 [B, T]       random token ids
      targets  I32 [B, T]       random token ids, drawn independently of inputs
      logits   F32 [B, T, V]    model(input_ids=inputs).logits
      loss     F32 [1]          mean cross-entropy of logits vs targets over all
                                B*T positions (no shift: position t predicts
                                targets[b, t])
      grad.<name> F32           d loss / d parameter for every entry of
                                model.named_parameters() (HF names; for qwen2 the
                                tied model.embed_tokens.weight gradient includes
                                the LM head's contribution)
      metadata: the config.json text, the seeds, the versions, and the
      float32-vs-float64 errors of this reference.

Every parameter is drawn from a seeded torch.Generator by this script (the
weights do not depend on transformers' own initialisation): matrices and
embeddings normal(0, 0.2), o_proj and down_proj normal(0, 0.1), RMSNorm weights
1 + normal(0, 0.1), biases normal(0, 0.1), so that every parameter changes the
output.

The forward/backward pass is run in float32 (the stored reference) and again in
float64 from the same float32 weights, twice: with the transformers model cast
to float64 (which still computes the RoPE cos/sin in float32: transformers
forces that), and with a short, independent float64 implementation written here
(`manual_forward`: RMSNorm, RoPE rotate-half, GQA, causal and sliding-window
masks, SwiGLU). The script prints how far the float32 figures are from both,
checks that the hand-written model matches transformers (which pins down the
conventions: the sliding-window rule, the llama3 frequencies), that "sdpa"
attention agrees with "eager", that the mistral window changes the logits, and
that both checkpoints load back. CPU, one thread, deterministic: a file whose
bytes would not change is left untouched; --check-only writes nothing.
"""

import argparse
import copy
import datetime
import json
import math
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

SEED = 4321
COMMON = dict(
    vocab_size=101,
    hidden_size=48,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    intermediate_size=80,
    max_position_embeddings=64,
    rms_norm_eps=1e-5,
    hidden_act="silu",
    attention_dropout=0.0,
    bos_token_id=1,
    eos_token_id=2,
    use_cache=False,
)
# transformers 5.x spells the rotary settings as one `rope_parameters` dict (rope_theta inside it);
# the 4.x spelling (rope_theta=..., rope_scaling={...}) is converted to it (checked in main()).
# original_max_position_embeddings 48 (not 16): with head_dim 16 and theta 5e5 the wavelengths are
# 2*pi*5e5^(i/8) = 6.3, 32.2, 167, ...; low/high wavelength bounds 48/1 and 48/4 = 12 then keep
# frequency 0, smooth frequency 1 and divide frequencies 2..7 by the factor (16 would divide all but
# one and keep none, since no wavelength is below 2*pi).
CASES = {
    "llama": dict(
        cls="LlamaForCausalLM", config_cls="LlamaConfig",
        config=dict(COMMON, head_dim=16, attention_bias=False, mlp_bias=False, tie_word_embeddings=False,
                    rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                     "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 48}),
        shard="20KB", t1=True),
    "mistral": dict(
        cls="MistralForCausalLM", config_cls="MistralConfig",
        config=dict(COMMON, sliding_window=5, tie_word_embeddings=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        shard=None, t1=False),
    "qwen2": dict(
        cls="Qwen2ForCausalLM", config_cls="Qwen2Config",
        config=dict(COMMON, rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
        shard=None, t1=False),
}
WEIGHT_STD = 0.2   # matrices and embeddings
PROJ_STD = 0.1     # o_proj, down_proj (the residual projections)
BIAS_STD = 0.1     # biases; RMSNorm weights are 1 + normal(0, BIAS_STD)
B, T = 3, 17
B1, T1 = 2, 1


# ----------------------------------------------------------------------------- model


def build_model(name, attn="eager", dtype=None, **overrides):
    """The float32 model of case `name` with every parameter drawn by randomize()."""
    import torch
    import transformers

    case = CASES[name]
    torch.manual_seed(SEED)
    cfg = getattr(transformers, case["config_cls"])(**copy.deepcopy(dict(case["config"], **overrides)))
    model = getattr(transformers, case["cls"])._from_config(cfg, attn_implementation=attn)
    model.float()
    randomize(model, case_seed(name))
    model.eval()  # dropout is 0 anyway
    tied = model.lm_head.weight is model.model.embed_tokens.weight
    assert tied == bool(case["config"]["tie_word_embeddings"]), "%s: lm_head tied=%s" % (name, tied)
    return model


def case_seed(name):
    return SEED + 100 * sorted(CASES).index(name)


def randomize(model, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():  # a tied lm_head appears once, as model.embed_tokens.weight
            leaf = name.split(".")
            z = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if leaf[-1] == "bias":
                v = z * BIAS_STD
            elif "norm" in leaf[-2]:  # input_layernorm, post_attention_layernorm, model.norm
                v = 1.0 + z * BIAS_STD
            elif leaf[-2] in ("o_proj", "down_proj"):
                v = z * PROJ_STD
            else:  # embed_tokens, lm_head, q/k/v_proj, gate_proj, up_proj
                v = z * WEIGHT_STD
            p.copy_(v)


def ce_loss(logits, targets):
    import torch.nn.functional as F

    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long(), reduction="mean")


def forward_backward(model, inputs, targets):
    """Returns (logits, loss, {name: grad}) in the model's dtype."""
    model.zero_grad(set_to_none=True)
    logits = model(input_ids=inputs.long()).logits
    loss = ce_loss(logits, targets)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return logits.detach(), loss.detach().reshape(1), grads


# ----------------------------------------------------------------------------- independent float64 model


def rope_inv_freq(cfg):
    """Inverse frequencies [head_dim/2] in float64, written from the rope_parameters of `cfg` (a dict)."""
    import torch

    rp = cfg["rope_parameters"]
    d = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    inv = torch.tensor([rp["rope_theta"] ** (-(2.0 * i) / d) for i in range(d // 2)], dtype=torch.float64)
    kinds = ["plain"] * (d // 2)
    if rp["rope_type"] == "llama3":
        f, lo, hi = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
        n0 = rp["original_max_position_embeddings"]
        out, kinds = [], []
        for w in inv.tolist():
            wavelen = 2 * math.pi / w
            if wavelen < n0 / hi:
                out.append(w)
                kinds.append("kept")
            elif wavelen > n0 / lo:
                out.append(w / f)
                kinds.append("divided")
            else:
                s = (n0 / wavelen - lo) / (hi - lo)
                out.append((1 - s) * w / f + s * w)
                kinds.append("smoothed")
        inv = torch.tensor(out, dtype=torch.float64)
    else:
        assert rp["rope_type"] == "default", rp
    return inv, kinds


def manual_forward(params, cfg, inputs, window="config"):
    """Logits [B, T, V] in float64 from a {HF name: float64 tensor} dict, written without transformers.

    window: "config" takes cfg["sliding_window"] (None for full causal attention); an int W allows key j
    for query i when 0 <= i - j < W; ("le", W) allows 0 <= i - j <= W (the other convention, for testing).
    """
    import torch

    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    D = cfg.get("head_dim") or cfg["hidden_size"] // H
    eps = cfg["rms_norm_eps"]
    b, t = inputs.shape
    if window == "config":
        window = cfg.get("sliding_window") if cfg.get("use_sliding_window", True) else None

    def rms(x, w):
        return w * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))

    def lin(x, prefix):
        y = x @ params[prefix + ".weight"].T
        if prefix + ".bias" in params:
            y = y + params[prefix + ".bias"]
        return y

    inv, _ = rope_inv_freq(cfg)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]        # [T, D/2]
    cos, sin = torch.cos(ang), torch.sin(ang)

    def rope(x):  # x [B, heads, T, D]; pairs (k, k + D/2) rotate by angle k (the "rotate half" layout)
        x1, x2 = x[..., : D // 2], x[..., D // 2:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)

    i = torch.arange(t)[:, None]
    j = torch.arange(t)[None, :]
    allowed = j <= i
    if isinstance(window, int):
        allowed = allowed & (i - j < window)
    elif isinstance(window, tuple):
        allowed = allowed & (i - j <= window[1])

    x = params["model.embed_tokens.weight"][inputs.long()]
    for layer in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        h = rms(x, params[p + "input_layernorm.weight"])
        q = lin(h, p + "self_attn.q_proj").reshape(b, t, H, D).transpose(1, 2)
        k = lin(h, p + "self_attn.k_proj").reshape(b, t, KV, D).transpose(1, 2)
        v = lin(h, p + "self_attn.v_proj").reshape(b, t, KV, D).transpose(1, 2)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(H // KV, dim=1)  # query head h reads key/value head h // (H / KV)
        v = v.repeat_interleave(H // KV, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        s = s.masked_fill(~allowed, float("-inf"))
        a = torch.softmax(s, dim=-1) @ v                                   # [B, H, T, D]
        x = x + lin(a.transpose(1, 2).reshape(b, t, H * D), p + "self_attn.o_proj")
        h = rms(x, params[p + "post_attention_layernorm.weight"])
        g = lin(h, p + "mlp.gate_proj")
        x = x + lin(g * torch.sigmoid(g) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = rms(x, params["model.norm.weight"])
    head = params.get("lm_head.weight", params["model.embed_tokens.weight"])
    return x @ head.T


def manual_forward_backward(model, cfg, inputs, targets):
    """float64 logits, loss and grads of the hand-written model from `model`'s float32 weights."""
    params = {n: p.detach().double().clone().requires_grad_(True) for n, p in model.named_parameters()}
    logits = manual_forward(params, cfg, inputs)
    loss = ce_loss(logits, targets)
    loss.backward()
    return logits.detach(), loss.detach().reshape(1), {n: v.grad.detach() for n, v in params.items()}


# ----------------------------------------------------------------------------- errors


def max_abs(a, b):
    return (a.double() - b.double()).abs().max().item()


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


def error_report(r32, r64):
    """Figures for (logits, loss, grads) float32 against float64."""
    logits, loss, grads = r32
    logits64, loss64, grads64 = r64
    gabs = {n: max_abs(grads[n], grads64[n]) for n in grads}
    grel = {n: rel_err(grads[n], grads64[n]) for n in grads}
    gelem = {n: elem_rel_err(grads[n], grads64[n]) for n in grads}
    return {
        "loss_abs": max_abs(loss, loss64),
        "loss_rel": rel_err(loss, loss64),
        "logits_abs": max_abs(logits, logits64),
        "logits_rel": rel_err(logits, logits64),
        "logits_elementwise": elem_rel_err(logits, logits64),
        "grads_abs_max": max(gabs.values()),
        "grads_abs_max_name": max(gabs, key=gabs.get),
        "grads_rel_max": max(grel.values()),
        "grads_rel_max_name": max(grel, key=grel.get),
        "grads_elementwise_max": max(gelem.values()),
        "grads_elementwise_max_name": max(gelem, key=gelem.get),
        "grad_abs_max_value": max(v.abs().max().item() for v in grads64.values()),
    }


def fmt_errs(e):
    return {k: (v if isinstance(v, str) else float("%.3e" % v)) for k, v in e.items()}


def print_errs(label, e):
    print("    %-26s loss %.2e  logits %.2e (rel %.2e, elementwise %.2e)  grads %.2e (rel %.2e, worst %s; "
          "elementwise %.2e)" % (label, e["loss_abs"], e["logits_abs"], e["logits_rel"], e["logits_elementwise"],
                                 e["grads_abs_max"], e["grads_rel_max"], e["grads_rel_max_name"],
                                 e["grads_elementwise_max"]))


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


def replace_if_changed(tmp_path, path, dry):
    with open(tmp_path, "rb") as f:
        new = f.read()
    rel = os.path.relpath(path, REPO)
    if os.path.exists(path):
        with open(path, "rb") as f:
            if _canonical(f.read(), path) == _canonical(new, path):
                print("  unchanged %s (%d bytes)" % (rel, len(new)))
                return
    if dry:
        print("  WOULD WRITE %s (%d bytes)" % (rel, len(new)))
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shutil.copyfile(tmp_path, path)
    print("  wrote     %s (%d bytes)" % (rel, len(new)))


def sync_dir(src, dst, dry):
    """Copy the files of src into dst (only those whose bytes change) and remove files of dst not in src."""
    names = sorted(os.listdir(src))
    for n in names:
        replace_if_changed(os.path.join(src, n), os.path.join(dst, n), dry)
    if os.path.isdir(dst):
        for n in sorted(set(os.listdir(dst)) - set(names)):
            print("  %s %s" % ("WOULD REMOVE" if dry else "removed  ", os.path.relpath(os.path.join(dst, n), REPO)))
            if not dry:
                os.remove(os.path.join(dst, n))
    return names


def make_batch(vocab, b, t, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    inputs = torch.randint(0, vocab, (b, t), generator=g, dtype=torch.int64).to(torch.int32)
    targets = torch.randint(0, vocab, (b, t), generator=g, dtype=torch.int64).to(torch.int32)
    return inputs, targets


def reference(model, cfg_json, inputs, targets, meta_base, label, with_grads=True):
    """Tensors, metadata and errors of one reference file from a float32 model."""
    model64 = copy.deepcopy(model).double()
    r32 = forward_backward(model, inputs, targets)
    r64 = forward_backward(model64, inputs, targets)
    rman = manual_forward_backward(model, cfg_json, inputs, targets)
    e64 = error_report(r32, r64)
    eman = error_report(r32, rman)
    ehf = error_report(r64, rman)  # transformers float64 (float32 RoPE tables) vs the hand-written float64
    logits, loss, grads = r32
    # with T=1 the softmax has one key, so q_proj / k_proj get no gradient; every other parameter must
    dead = [n for n, v in rman[2].items() if v.abs().max().item() < 1e-6
            and not (inputs.shape[1] == 1 and (".q_proj." in n or ".k_proj." in n))]
    assert not dead, "parameters without effect on the loss: %s" % dead
    tensors = {"inputs": inputs.contiguous(), "targets": targets.contiguous(),
               "logits": logits.float().contiguous(), "loss": loss.float().contiguous()}
    if with_grads:
        for n, v in grads.items():
            tensors["grad." + n] = v.float().contiguous()
    meta = dict(meta_base)
    meta.update({
        "weights": label,
        "batch": "B=%d T=%d" % tuple(inputs.shape),
        "grad_tensors": "yes" if with_grads else "no (errors below still cover the gradients)",
        "fp32_vs_fp64": json.dumps(fmt_errs(e64), sort_keys=True),
        "fp32_vs_manual_fp64": json.dumps(fmt_errs(eman), sort_keys=True),
        "loss_fp64": "%.17g" % r64[1].item(),
        "loss_manual_fp64": "%.17g" % rman[1].item(),
    })
    return tensors, meta, {"fp64": e64, "manual": eman, "hf64_vs_manual": ehf,
                           "loss": loss.item(), "loss64": rman[1].item()}


def load_back(path, attn="eager"):
    import torch
    import transformers

    return transformers.AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.float32, attn_implementation=attn, local_files_only=True).eval()


def check_conventions(name, model, cfg_json, inputs, targets):
    """Prints what transformers does that a reimplementation must match; returns a dict for the README."""
    import torch

    notes = {}
    params = {n: p.detach().double() for n, p in model.named_parameters()}
    with torch.no_grad():
        hf64 = copy.deepcopy(model).double()(input_ids=inputs.long()).logits
        man = manual_forward(params, cfg_json, inputs)
    notes["manual_vs_hf_fp64_logits"] = max_abs(man, hf64)
    print("    hand-written float64 model vs transformers float64: max|d logits| %.2e"
          % notes["manual_vs_hf_fp64_logits"])
    assert notes["manual_vs_hf_fp64_logits"] < 1e-4, "hand-written model disagrees with transformers"

    inv_hf = model.model.rotary_emb.inv_freq.double()
    inv, kinds = rope_inv_freq(cfg_json)
    notes["inv_freq_rel"] = ((inv_hf - inv).abs() / inv).max().item()
    print("    inv_freq (transformers, float32): %s" % ", ".join("%.6g" % v for v in inv_hf.tolist()))
    print("    inv_freq kinds: %s; max rel diff vs float64 formula %.1e" % (", ".join(
        "%d:%s" % (i, k) for i, k in enumerate(kinds)), notes["inv_freq_rel"]))
    notes["inv_freq_kinds"] = kinds
    assert notes["inv_freq_rel"] < 1e-6

    w = cfg_json.get("sliding_window") if cfg_json.get("use_sliding_window", True) else None
    if w is not None:
        with torch.no_grad():
            lt = manual_forward(params, cfg_json, inputs, window=w)
            le = manual_forward(params, cfg_json, inputs, window=("le", w))
            full = manual_forward(params, cfg_json, inputs, window=None)
            nowin = build_model(name, sliding_window=None)(input_ids=inputs.long()).logits.double()
        notes["window_lt"] = max_abs(lt, hf64)
        notes["window_le"] = max_abs(le, hf64)
        notes["window_off"] = max_abs(nowin, model(input_ids=inputs.long()).logits)
        notes["window_off_manual"] = max_abs(full, hf64)
        print("    sliding window %d: transformers vs hand mask 'i-j < W' %.2e, vs 'i-j <= W' %.2e; "
              "model with sliding_window=None differs by %.2e" % (w, notes["window_lt"], notes["window_le"],
                                                                  notes["window_off"]))
        assert notes["window_lt"] < 1e-4 < notes["window_le"] and notes["window_off"] > 1e-3

    sd = build_model(name, attn="sdpa")
    r_e = forward_backward(model, inputs, targets)
    r_s = forward_backward(sd, inputs, targets)
    notes["sdpa_vs_eager"] = {"loss": max_abs(r_e[1], r_s[1]), "logits": max_abs(r_e[0], r_s[0]),
                              "grads": max(max_abs(r_e[2][n], r_s[2][n]) for n in r_e[2])}
    print("    sdpa vs eager (float32): loss %.2e, logits %.2e, grads %.2e" % (
        notes["sdpa_vs_eager"]["loss"], notes["sdpa_vs_eager"]["logits"], notes["sdpa_vs_eager"]["grads"]))
    return notes


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See the module docstring (head -55 lab/peers/llama_reference.py) "
                                        "for the content of each file.")
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "llama_ref"),
                    help="output folder (default: tests/data/llama_ref)")
    ap.add_argument("--check-only", action="store_true", help="compute and compare, write nothing")
    ap.add_argument("--bf16-grads", action="store_true",
                    help="also store grad.* in reference_bf16.safetensors (left out by default to keep the "
                         "committed folder small)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of %s" % ",".join(CASES))
    args = ap.parse_args()

    peers_env.ensure_venv(REQUIREMENTS)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import numpy as np
    import safetensors
    import torch
    import transformers
    from safetensors.torch import load_file, save_file

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(1)  # deterministic CPU reductions
    torch.use_deterministic_algorithms(True)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "safetensors": safetensors.__version__, "numpy": np.__version__}
    print("torch %s, transformers %s, safetensors %s; %s" % (
        torch.__version__, transformers.__version__, safetensors.__version__,
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")))

    # The 4.x spelling of the llama rotary settings lands on the same rope_parameters.
    lc = dict(CASES["llama"]["config"])
    rp = dict(lc.pop("rope_parameters"))
    legacy = transformers.LlamaConfig(**lc, rope_theta=rp.pop("rope_theta"), rope_scaling=rp)
    assert legacy.rope_parameters == CASES["llama"]["config"]["rope_parameters"], legacy.rope_parameters
    print("LlamaConfig(rope_theta=..., rope_scaling={...}) gives rope_parameters %s" % legacy.rope_parameters)

    summary = {}
    for name in [c for c in args.cases.split(",") if c]:
        case = CASES[name]
        out = os.path.join(args.out, name)
        print("\n== %s (%s)" % (name, case["cls"]))
        model = build_model(name)
        nparam = sum(p.numel() for p in model.parameters())
        with tempfile.TemporaryDirectory() as tmp:
            fp32_dir, bf16_dir = os.path.join(tmp, "fp32"), os.path.join(tmp, "bf16")
            model.save_pretrained(fp32_dir)
            mb = copy.deepcopy(model).to(torch.bfloat16)
            kw = {"max_shard_size": case["shard"]} if case["shard"] else {}
            mb.save_pretrained(bf16_dir, **kw)
            with open(os.path.join(fp32_dir, "config.json")) as f:
                cfg_text = f.read()
            cfg_json = json.loads(cfg_text)
            print("  %d parameters; config.json keys: %s" % (nparam, ", ".join(sorted(cfg_json))))
            print("  rope_parameters: %s; head_dim %s; sliding_window %s; tie_word_embeddings %s" % (
                json.dumps(cfg_json.get("rope_parameters"), sort_keys=True), cfg_json.get("head_dim"),
                cfg_json.get("sliding_window"), cfg_json.get("tie_word_embeddings")))
            keys = list(load_file(os.path.join(fp32_dir, "model.safetensors")))
            print("  fp32/model.safetensors: %d tensors, lm_head.weight %s" % (
                len(keys), "stored" if "lm_head.weight" in keys else "absent (tied)"))
            print("  bf16/: %s" % ", ".join(sorted(os.listdir(bf16_dir))))

            # both checkpoints load back: fp32 exactly, bf16 as the upcast of the rounded weights
            m32 = load_back(fp32_dir)
            mbf = load_back(bf16_dir)
            p_orig = dict(model.named_parameters())
            for n, p in m32.named_parameters():
                assert torch.equal(p, p_orig[n]), "fp32 reload differs: " + n
            for n, p in mbf.named_parameters():
                assert p.dtype == torch.float32 and torch.equal(p, p_orig[n].bfloat16().float()), "bf16: " + n
            assert sorted(n for n, _ in mbf.named_parameters()) == sorted(p_orig)
            bf16_change = max(max_abs(p_orig[n], p) for n, p in mbf.named_parameters())
            print("  checkpoints load back (from_pretrained dtype=float32): fp32 identical, bf16 = weights "
                  "rounded to bfloat16 (max |change| %.2e)" % bf16_change)

            inputs, targets = make_batch(cfg_json["vocab_size"], B, T, case_seed(name) + 1)
            notes = check_conventions(name, model, cfg_json, inputs, targets)
            meta_base = {
                "generator": "lab/peers/llama_reference.py",
                "model": "transformers.%s, attn_implementation=eager, CPU, 1 thread" % case["cls"],
                "config": cfg_text,
                "param_seed": str(case_seed(name)),
                "loss": "torch.nn.functional.cross_entropy(logits.reshape(-1, V), targets.reshape(-1)), "
                        "mean over B*T, no shift",
                "grads": "grad.<name> for model.named_parameters()" + (
                    "; lm_head tied to model.embed_tokens.weight" if cfg_json["tie_word_embeddings"] else ""),
            }
            meta_base.update(versions)
            refs = [("reference.safetensors", m32, inputs, targets, case_seed(name) + 1,
                     "fp32/ (float32)", True),
                    ("reference_bf16.safetensors", mbf, inputs, targets, case_seed(name) + 1,
                     "bf16/ loaded with from_pretrained(dtype=torch.float32)", args.bf16_grads)]
            if case["t1"]:
                i1, t1 = make_batch(cfg_json["vocab_size"], B1, T1, case_seed(name) + 2)
                refs.append(("reference_t1.safetensors", m32, i1, t1, case_seed(name) + 2, "fp32/ (float32)", True))
            figs = {}
            for fname, m, inp, tgt, bseed, label, with_grads in refs:
                tensors, meta, errs = reference(m, cfg_json, inp, tgt, dict(meta_base, batch_seed=str(bseed)), label,
                                                with_grads)
                save_file(tensors, os.path.join(tmp, fname), metadata=meta)
                print("  %s: B=%d T=%d loss %.9g (float64 %.17g)" % (fname, inp.shape[0], inp.shape[1],
                                                                     errs["loss"], errs["loss64"]))
                print_errs("fp32 vs transformers fp64", errs["fp64"])
                print_errs("fp32 vs hand-written fp64", errs["manual"])
                print("    transformers fp64 vs hand-written fp64: logits %.2e, grads %.2e (RoPE tables in float32)"
                      % (errs["hf64_vs_manual"]["logits_abs"], errs["hf64_vs_manual"]["grads_abs_max"]))
                print("    max |grad| %.3g, max |logit| %.3g" % (errs["manual"]["grad_abs_max_value"],
                                                                 tensors["logits"].abs().max().item()))
                figs[fname] = errs
            summary[name] = {"notes": notes, "errors": figs, "config_keys": sorted(cfg_json),
                             "bf16_files": sorted(os.listdir(bf16_dir))}

            sync_dir(fp32_dir, os.path.join(out, "fp32"), args.check_only)
            sync_dir(bf16_dir, os.path.join(out, "bf16"), args.check_only)
            for fname, *_ in refs:
                replace_if_changed(os.path.join(tmp, fname), os.path.join(out, fname), args.check_only)

    total = 0
    for root, _, files in os.walk(args.out):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print("\n%s: %d bytes in all" % (os.path.relpath(args.out, REPO), total))


if __name__ == "__main__":
    main()
