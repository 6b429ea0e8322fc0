#!/usr/bin/python3
"""Plan invariance check (DESIGN.md section 6): a run against the one-rank reference.

usage: compare_runs.py REF_DIR RUN_DIR RTOL [--grads STEP] [--no-params]
Compares the per-step losses of metrics.jsonl (relative), and per tensor, norm-wise,
||a - b|| <= rtol * ||b|| + atol, either the final parameters (model_final.h5) or, with
--grads STEP, the gradients dumped at STEP (gradients_stepSTEP.h5). Exit 0 when all agree, 1
with one line per difference otherwise."""
import json
import sys

import h5py
import numpy as np


def losses(path):
    with open(path) as f:
        return [json.loads(line)["loss"] for line in f if '"loss"' in line]


def tensors(path, group):
    out = {}
    with h5py.File(path, "r") as f:
        f[group].visititems(lambda name, obj: out.__setitem__(name, np.array(obj, dtype=np.float64))
                            if isinstance(obj, h5py.Dataset) else None)
    return out


def main():
    ref, run, rtol = sys.argv[1], sys.argv[2], float(sys.argv[3])
    atol = 1e-14
    bad = []
    a, b = losses(run + "/metrics.jsonl"), losses(ref + "/metrics.jsonl")
    if len(a) != len(b):
        bad.append(f"{len(a)} loss lines vs {len(b)} in the reference")
    for i, (x, y) in enumerate(zip(a, b)):
        if abs(x - y) > rtol * abs(y) + atol:
            bad.append(f"step {i + 1}: loss {x!r} vs reference {y!r}")
    if "--grads" in sys.argv:
        step = sys.argv[sys.argv.index("--grads") + 1]
        name, group = f"/gradients_step{step}.h5", "grads"
    else:
        name, group = "/model_final.h5", "params"
    if "--no-params" not in sys.argv:
        ta, tb = tensors(run + name, group), tensors(ref + name, group)
        if sorted(ta) != sorted(tb):
            bad.append(f"tensor names differ: {sorted(set(ta) ^ set(tb))}")
        worst = 0.0
        for key in sorted(set(ta) & set(tb)):
            diff = np.linalg.norm(ta[key] - tb[key])
            scale = np.linalg.norm(tb[key])
            worst = max(worst, diff / (scale + atol))
            if diff > rtol * scale + atol:
                bad.append(f"{key}: ||a-b|| = {diff:.3e}, ||b|| = {scale:.3e}")
        print(f"compare_runs: {len(ta)} tensors, worst relative difference {worst:.3e}")
    for line in bad:
        print("compare_runs: " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
