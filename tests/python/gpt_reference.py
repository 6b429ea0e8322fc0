"""GPT-2 reference in plain PyTorch (torch 1.13), shared by the Strata oracle test and the benchmark.

Imported by tests/python/test_torch_reference.py and bench/torch_gpt_step.py; run those with
/usr/bin/python3 (Debian's torch/h5py are invisible to the pyenv python on PATH). Follows the GPT-2
of DESIGN.md section 7: HF parameter names and Conv1D [in, out] layouts, pre-LN blocks, LayerNorm
eps 1e-5, tanh GELU, causal attention scaled by 1/sqrt(D), final LN, LM head tied to wte, no dropout.
Also: Strata model/data/metrics readers and one training step with Strata's optimizer semantics.
"""
import contextlib
import json
import math

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LN_EPS = 1e-5
# The benchmark's fast path (bench/torch_gpt_step.py --fast): the same model with torch's fused
# kernels where they exist (scaled_dot_product_attention, torch >= 2.0, flash on GPUs; the tanh
# GELU in one kernel). The oracle tests keep the plain formulas (False).
FAST = False


class Conv1D(nn.Module):
    """HF GPT-2's Conv1D: y = x @ weight + bias, weight stored [in, out]."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(
            *x.shape[:-1], self.weight.shape[1])


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


class Attention(nn.Module):
    def __init__(self, hidden, heads, seq):
        super().__init__()
        assert hidden % heads == 0, f"hidden {hidden} not divisible by heads {heads}"
        self.heads = heads
        self.c_attn = Conv1D(hidden, 3 * hidden)
        self.c_proj = Conv1D(hidden, hidden)
        self.register_buffer("causal", torch.tril(torch.ones(seq, seq, dtype=torch.bool)),
                             persistent=False)

    def forward(self, x):
        B, S, H = x.shape
        D = H // self.heads
        q, k, v = self.c_attn(x).split(H, dim=2)
        q, k, v = (t.view(B, S, self.heads, D).transpose(1, 2) for t in (q, k, v))
        if FAST and hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
            scores = scores.masked_fill(~self.causal[:S, :S], float("-inf"))
            y = scores.softmax(dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).reshape(B, S, H))


class Mlp(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.c_fc = Conv1D(hidden, 4 * hidden)
        self.c_proj = Conv1D(4 * hidden, hidden)

    def forward(self, x):
        h = self.c_fc(x)
        return self.c_proj(F.gelu(h, approximate="tanh") if FAST else gelu_tanh(h))


class Block(nn.Module):
    def __init__(self, hidden, heads, seq):
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden, eps=LN_EPS)
        self.attn = Attention(hidden, heads, seq)
        self.ln_2 = nn.LayerNorm(hidden, eps=LN_EPS)
        self.mlp = Mlp(hidden)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """named_parameters() yields exactly the HF names Strata's model file uses."""

    def __init__(self, layers, hidden, heads, seq, vocab):
        super().__init__()
        self.vocab, self.seq = vocab, seq
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab, hidden),
            wpe=nn.Embedding(seq, hidden),
            h=nn.ModuleList(Block(hidden, heads, seq) for _ in range(layers)),
            ln_f=nn.LayerNorm(hidden, eps=LN_EPS),
        ))

    def forward(self, idx):
        t = self.transformer
        x = t.wte(idx) + t.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in t.h:
            x = block(x)
        return t.ln_f(x) @ t.wte.weight.t()  # tied LM head, no bias

    def loss(self, idx, targets):
        """Mean cross-entropy over all B*S tokens."""
        logits = self(idx)
        return F.cross_entropy(logits.reshape(-1, self.vocab), targets.reshape(-1))


# ----------------------------------------------------------------------------- Strata files

def read_params(path, group="params"):
    """{name: float64/float32 numpy array} of every dataset under /<group>/ of an HDF5 file."""
    out = {}
    with h5py.File(path, "r") as f:
        if group not in f:
            raise RuntimeError(f"{path}: no /{group} group (datasets: {list(f.keys())})")
        f[group].visititems(
            lambda name, obj: out.__setitem__(name, np.asarray(obj)) if isinstance(obj, h5py.Dataset) else None)
    return out


def load_strata_gpt(path, heads, dtype=torch.float64):
    """GPT with the weights of a Strata model file. Shapes give L, H, S, V; heads must be given
    (the file's shapes cannot tell it). Fails naming every missing, extra or misshaped tensor."""
    params = read_params(path)
    if "transformer.wte.weight" not in params or "transformer.wpe.weight" not in params:
        raise RuntimeError(f"{path}: no transformer.wte/wpe weights; has {sorted(params)[:8]}...")
    vocab, hidden = params["transformer.wte.weight"].shape
    seq = params["transformer.wpe.weight"].shape[0]
    layers = len({n.split(".")[2] for n in params if n.startswith("transformer.h.")})
    model = GPT(layers, hidden, heads, seq, vocab).to(dtype)
    mine = dict(model.named_parameters())
    problems = [f"missing {n}" for n in mine if n not in params]
    problems += [f"unexpected {n}" for n in params if n not in mine]
    problems += [f"{n}: file shape {params[n].shape} != {tuple(p.shape)}"
                 for n, p in mine.items() if n in params and params[n].shape != tuple(p.shape)]
    if problems:
        raise RuntimeError(f"{path}: parameters do not match GPT-2 (L={layers} H={hidden} S={seq} "
                           f"V={vocab}): " + "; ".join(problems))
    with torch.no_grad():
        for n, p in mine.items():
            p.copy_(torch.from_numpy(params[n]).to(dtype))
    return model


def read_tokens(path):
    with h5py.File(path, "r") as f:
        return np.asarray(f["tokens"]).astype(np.int64)


def batch_rows(tokens, step, batch):
    """Strata's unshuffled order: step s (from 1) uses rows [(s-1)*B, s*B) modulo N."""
    n = tokens.shape[0]
    rows = [(r % n) for r in range((step - 1) * batch, step * batch)]
    t = torch.from_numpy(tokens[rows])
    return t[:, :-1], t[:, 1:]


def read_metrics(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


# ----------------------------------------------------------------------------- training

def lr_at(step, total_steps, opt_cfg):
    """lr of step s (from 1), computed before its update (DESIGN.md section 7)."""
    lr = opt_cfg["lr"]
    if opt_cfg.get("schedule", "constant") == "constant":
        return lr
    w, min_lr = opt_cfg.get("warmup_steps", 0), opt_cfg.get("min_lr", 0.0)
    if step <= w:
        return lr * step / w
    return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * (step - w) / (total_steps - w))) / 2


def make_optimizer(model, opt_cfg):
    kind = opt_cfg.get("kind", "adamw")
    if kind == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=opt_cfg["lr"],
                                 betas=tuple(opt_cfg.get("betas", (0.9, 0.999))),
                                 eps=opt_cfg.get("eps", 1e-8),
                                 weight_decay=opt_cfg.get("weight_decay", 0.0))
    if kind == "sgd":
        return torch.optim.SGD(model.parameters(), lr=opt_cfg["lr"],
                               momentum=opt_cfg.get("momentum", 0.0),
                               weight_decay=opt_cfg.get("weight_decay", 0.0))
    raise ValueError(f"unknown optimizer kind {kind!r}")


def grad_norm(model):
    return torch.norm(torch.stack([p.grad.detach().norm() for p in model.parameters()])).item()


def train_step(model, opt, idx, targets, lr, clip_grad_norm, amp_dtype=None):
    """One step: loss, backward, clip (torch's clip_grad_norm_), lr, update. Returns
    (loss, pre-clip gradient norm); the gradients before clipping are lost (clip scales them).
    amp_dtype (e.g. torch.bfloat16): the forward and loss under torch.autocast in that dtype, the
    weights, gradients and optimizer state staying in the model's dtype (mixed precision)."""
    opt.zero_grad(set_to_none=True)
    amp = (torch.autocast(idx.device.type, dtype=amp_dtype) if amp_dtype is not None
           else contextlib.nullcontext())
    with amp:
        loss = model.loss(idx, targets)
    loss.backward()
    if clip_grad_norm > 0:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm).item()
    else:
        norm = grad_norm(model)
    for group in opt.param_groups:
        group["lr"] = lr
    opt.step()
    return loss.item(), norm
