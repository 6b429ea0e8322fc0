#!/usr/bin/python3
"""Two runs of one training that must compute the same numbers with different memory.

usage: same_run_less_memory.py RUN_DIR OTHER_DIR
Exit 0 when the per-step losses (metrics.jsonl) and the final parameters (model_final.h5) of
RUN_DIR equal OTHER_DIR's bit for bit and RUN_DIR's last peak_memory_bytes is below 0.9 times
OTHER_DIR's; else 1 with one line saying what differs."""
import json
import sys

import h5py
import numpy as np


def run(path):
    rows = [json.loads(line) for line in open(path + "/metrics.jsonl") if '"loss"' in line]
    params = {}
    with h5py.File(path + "/model_final.h5", "r") as f:
        f["params"].visititems(lambda name, obj: params.__setitem__(name, np.array(obj))
                               if isinstance(obj, h5py.Dataset) else None)
    return [r["loss"] for r in rows], params, rows[-1]["peak_memory_bytes"]


def main():
    (la, pa, ma), (lb, pb, mb) = run(sys.argv[1]), run(sys.argv[2])
    print(f"same_run_less_memory: allocated {ma:.0f} vs {mb:.0f} bytes")
    if la != lb:
        print(f"same_run_less_memory: losses differ: {la} vs {lb}")
        return 1
    if sorted(pa) != sorted(pb) or not all(np.array_equal(pa[k], pb[k]) for k in pa):
        print("same_run_less_memory: final parameters differ")
        return 1
    if not ma < 0.9 * mb:
        print("same_run_less_memory: the first run does not allocate 10 % less")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
