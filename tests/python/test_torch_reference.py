"""PyTorch oracle for `strata train` on a tiny GPT-2 in f64 (DESIGN.md sections 6 and 7).

Run by ctest as `/usr/bin/python3 tests/python/test_torch_reference.py` with STRATA_BIN (the strata
binary) in the environment; by hand the same way. Exit 0 pass, 1 fail, 77 skip (torch or h5py
missing). Makes a model and a synthetic dataset with strata, trains 5 steps with strata, and
checks against tests/python/gpt_reference.py (norm-wise per tensor, ||a-b|| <= rtol*||b|| + atol):
step-1 loss and every gradient, the 5 losses, lr and grad norms, final parameters (AdamW + clipping +
cosine warm-up), then losses and final parameters of SGD with momentum.
"""
import math
import os
import subprocess
import sys
import tempfile
import time

try:
    import h5py
    import numpy as np
    import torch
except ImportError as e:  # ctest SKIP_RETURN_CODE 77
    print(f"SKIP: {e} (install python3-torch python3-h5py python3-numpy; run with /usr/bin/python3)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt_reference as ref  # noqa: E402

LAYERS, HIDDEN, HEADS, SEQ, VOCAB = 2, 32, 4, 16, 64
COUNT, STEPS, BATCH = 16, 5, 4

ADAMW = dict(kind="adamw", lr=1.0e-3, betas=[0.9, 0.999], eps=1.0e-8, weight_decay=0.1,
             schedule="cosine", warmup_steps=2, min_lr=1.0e-4)
SGD = dict(kind="sgd", lr=0.05, momentum=0.9, weight_decay=0.01, schedule="constant")

failures = []


def fail(msg):
    print("FAIL: " + msg)
    failures.append(msg)


def run(cmd, cwd):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    t0 = time.time()
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    print(f"$ {' '.join(cmd)}   [{time.time() - t0:.2f} s, exit {p.returncode}]")
    if p.returncode != 0:
        print(p.stdout)
        raise SystemExit(f"FAIL: command exited with {p.returncode}: {' '.join(cmd)}")
    return p.stdout


def write_config(path, opt, clip, out_dir):
    def yaml_val(v):
        if isinstance(v, list):
            return "[" + ", ".join(yaml_val(x) for x in v) + "]"
        if isinstance(v, float):  # YAML 1.1 wants a '.' in floats: 1.0e-08, not 1e-08
            t = repr(v)
            return t.replace("e", ".0e", 1) if "e" in t and "." not in t else t
        return str(v)
    opt_yaml = ", ".join(f"{k}: {yaml_val(v)}" for k, v in opt.items())
    with open(path, "w") as f:
        f.write(f"""model: {{path: model.h5}}
data: {{path: data.h5}}
train:
  steps: {STEPS}
  global_batch: {BATCH}
  micro_batches: 1
  dtype: f64
  shuffle: false
  seed: 0
  log_every: 1
  clip_grad_norm: {clip}
  optimizer: {{{opt_yaml}}}
output: {{dir: {out_dir}, save_model: true, dump_gradients_step: 1}}
""")


def close(a, b, rtol, atol=0.0):
    """Norm-wise: ||a-b|| <= rtol*||b|| + atol. Returns (ok, ||a-b||/||b||)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False, float("inf")
    diff, nb = np.linalg.norm(a - b), np.linalg.norm(b)
    return diff <= rtol * nb + atol, diff / nb if nb > 0 else diff


def compare_tensors(what, strata, torch_vals, rtol, atol):
    """Per tensor norm-wise comparison of two {name: array}; prints the 5 worst."""
    names_s, names_t = set(strata), set(torch_vals)
    if names_s != names_t:
        fail(f"{what}: names differ; only in strata {sorted(names_s - names_t)}, "
             f"only in torch {sorted(names_t - names_s)}")
    rows = []
    for n in sorted(names_s & names_t):
        s, t = strata[n], torch_vals[n]
        if s.shape != t.shape:
            fail(f"{what}: {n} shape {s.shape} != torch {t.shape}")
            continue
        ok, rel = close(s, t, rtol, atol)
        rows.append((rel, n, ok, np.linalg.norm(t)))
    rows.sort(reverse=True)
    print(f"{what}: {len(rows)} tensors, worst ||s-t||/||t|| (rtol {rtol:g}, atol {atol:g}):")
    for rel, n, ok, nt in rows[:5]:
        print(f"    {rel:10.3e}  ||t||={nt:10.3e}  {n}{'' if ok else '   <-- FAIL'}")
    bad = [n for rel, n, ok, _ in rows if not ok]
    if bad:
        fail(f"{what}: {len(bad)} tensors outside tolerance: {bad}")


def compare_series(what, strata, torch_vals, rtol, atol=0.0):
    print(f"{what}:")
    bad = []
    for i, (s, t) in enumerate(zip(strata, torch_vals), start=1):
        ok = abs(s - t) <= rtol * abs(t) + atol
        print(f"    step {i}: strata {s!r:24} torch {t!r:24} rel {abs(s - t) / max(abs(t), 1e-300):.2e}"
              f"{'' if ok else '   <-- FAIL'}")
        if not ok:
            bad.append(i)
    if len(strata) != len(torch_vals):
        fail(f"{what}: strata has {len(strata)} values, torch {len(torch_vals)}")
    if bad:
        fail(f"{what}: steps {bad} outside rtol {rtol:g}")


def metrics_series(metrics, key, what):
    steps = [m.get("step") for m in metrics]
    if steps != list(range(1, STEPS + 1)):
        fail(f"{what}: metrics.jsonl steps are {steps}, want 1..{STEPS}")
    missing = [m.get("step") for m in metrics if key not in m]
    if missing:
        fail(f"{what}: metrics.jsonl lines of steps {missing} have no '{key}'")
        return None
    return [float(m[key]) for m in metrics]


def oracle_self_check():
    """The reference's own gradients against finite differences (tiny model, f64 gradcheck)."""
    torch.manual_seed(0)
    m = ref.GPT(layers=1, hidden=8, heads=2, seq=4, vocab=8)
    with torch.no_grad():  # non-trivial LayerNorm affine parameters and biases
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    idx = torch.randint(0, 8, (2, 5))
    names = [n for n, _ in m.named_parameters()]

    def loss_of(*ps):
        logits = torch.nn.utils.stateless.functional_call(m, dict(zip(names, ps)), (idx[:, :-1],))
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 8), idx[:, 1:].reshape(-1))
    inputs = tuple(p.detach().clone().requires_grad_(True) for p in m.parameters())
    ok = torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-7, rtol=1e-5,
                                  raise_exception=False)
    print(f"oracle self-check (gradcheck of the reference GPT, all {len(inputs)} parameters): {ok}")
    if not ok:
        fail("the torch reference's own gradients fail gradcheck")


def torch_run(model_path, tokens, opt, clip):
    """Torch's 5 steps. Returns (losses, lrs, grad_norms, step-1 grads, final params, step-1 loss)."""
    model = ref.load_strata_gpt(model_path, HEADS, torch.float64)
    optim = ref.make_optimizer(model, opt)
    losses, lrs, norms = [], [], []
    grads1 = None
    for s in range(1, STEPS + 1):
        idx, tgt = ref.batch_rows(tokens, s, BATCH)
        if s == 1:  # unclipped step-1 gradients, from an identical separate backward
            model.zero_grad(set_to_none=True)
            model.loss(idx, tgt).backward()
            grads1 = {n: p.grad.detach().numpy().copy() for n, p in model.named_parameters()}
        lr = ref.lr_at(s, STEPS, opt)
        loss, norm = ref.train_step(model, optim, idx, tgt, lr, clip)
        losses.append(loss)
        lrs.append(lr)
        norms.append(norm)
    final = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    return losses, lrs, norms, grads1, final


def check_case(name, tmp, strata_bin, opt, clip, tokens, check_grads):
    print(f"\n=== case {name}: {opt} clip_grad_norm {clip}")
    cfg = os.path.join(tmp, f"{name}.yaml")
    out = os.path.join(tmp, f"out_{name}")
    write_config(cfg, opt, clip, f"out_{name}")
    run([strata_bin, "train", cfg], tmp)
    for f in ("metrics.jsonl", "model_final.h5", "gradients_step1.h5"):
        if not os.path.exists(os.path.join(out, f)):
            fail(f"{name}: strata wrote no {out}/{f} (has {sorted(os.listdir(out))})")
            return
    metrics = ref.read_metrics(os.path.join(out, "metrics.jsonl"))
    t_losses, t_lrs, t_norms, t_grads1, t_final = torch_run(os.path.join(tmp, "model.h5"),
                                                            tokens, opt, clip)
    s_losses = metrics_series(metrics, "loss", name)
    if s_losses is None:
        return

    if check_grads:
        if abs(s_losses[0] - math.log(VOCAB)) > 0.1:
            fail(f"{name}: fresh model's step-1 loss {s_losses[0]} is not within 0.1 of "
                 f"ln(vocab) = {math.log(VOCAB):.6f}")
        else:
            print(f"step-1 loss {s_losses[0]:.6f} vs ln({VOCAB}) = {math.log(VOCAB):.6f}: ok")
        compare_series("step-1 loss (rtol 1e-9)", s_losses[:1], t_losses[:1], 1e-9)
        with h5py.File(os.path.join(out, "gradients_step1.h5"), "r") as f:
            attrs = dict(f.attrs)
            if "loss" not in attrs or "step" not in attrs:
                fail(f"{name}: gradients_step1.h5 lacks root attributes loss/step (has {list(attrs)})")
            else:
                if int(np.asarray(attrs["step"]).reshape(-1)[0]) != 1:
                    fail(f"{name}: gradients_step1.h5 attribute step = {attrs['step']}, want 1")
                compare_series("gradients_step1.h5 attribute loss (rtol 1e-9)",
                               [float(np.asarray(attrs["loss"]).reshape(-1)[0])], t_losses[:1], 1e-9)
        s_grads = ref.read_params(os.path.join(out, "gradients_step1.h5"), "grads")
        non_f64 = [n for n, g in s_grads.items() if g.dtype != np.float64]
        if non_f64:
            fail(f"{name}: gradient datasets not f64 in an f64 run: {non_f64}")
        compare_tensors("step-1 gradients", s_grads, t_grads1, rtol=1e-9, atol=1e-12)

    compare_series(f"{STEPS} losses (rtol 1e-8)", s_losses, t_losses, 1e-8)
    s_lrs = metrics_series(metrics, "lr", name)
    if s_lrs is not None:
        compare_series("lr per step (rtol 1e-12)", s_lrs, t_lrs, 1e-12)
    s_norms = metrics_series(metrics, "grad_norm", name)
    if s_norms is not None:
        compare_series("pre-clip gradient norm per step (rtol 1e-8)", s_norms, t_norms, 1e-8)
    s_final = ref.read_params(os.path.join(out, "model_final.h5"))
    compare_tensors(f"parameters after {STEPS} steps", s_final, t_final, rtol=1e-8, atol=0.0)


def main():
    t0 = time.time()
    strata_bin = os.environ.get("STRATA_BIN", "")
    if not strata_bin or not os.access(strata_bin, os.X_OK):
        print(f"FAIL: STRATA_BIN={strata_bin!r} is not an executable (ctest sets it to the strata "
              f"binary; by hand: STRATA_BIN=build/strata /usr/bin/python3 {sys.argv[0]})")
        return 1
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, h5py {h5py.__version__}, strata {strata_bin}")
    oracle_self_check()
    with tempfile.TemporaryDirectory(prefix="strata_torch_ref_") as tmp:
        run([strata_bin, "model", "gpt", "--layers", str(LAYERS), "--hidden", str(HIDDEN),
             "--heads", str(HEADS), "--seq", str(SEQ), "--vocab", str(VOCAB), "--dtype", "f64",
             "--seed", "1", "-o", "model.h5"], tmp)
        run([strata_bin, "data", "synthetic", "--vocab", str(VOCAB), "--seq", str(SEQ),
             "--count", str(COUNT), "--seed", "2", "-o", "data.h5"], tmp)
        with h5py.File(os.path.join(tmp, "model.h5"), "r") as f:
            dtypes = {f["params"][n].dtype for n in f["params"]}
        if dtypes != {np.dtype("float64")}:
            fail(f"model written with --dtype f64 has parameter dtypes {dtypes}")
        tokens = ref.read_tokens(os.path.join(tmp, "data.h5"))
        if tokens.shape != (COUNT, SEQ + 1):
            fail(f"data.h5 /tokens shape {tokens.shape}, want {(COUNT, SEQ + 1)}")
        check_case("adamw", tmp, strata_bin, ADAMW, 1.0, tokens, check_grads=True)
        check_case("sgd", tmp, strata_bin, SGD, 0.0, tokens, check_grads=True)
    print(f"\nwall {time.time() - t0:.1f} s")
    if failures:
        print(f"FAILED: {len(failures)} check(s):")
        for m in failures:
            print("  - " + m)
        return 1
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
