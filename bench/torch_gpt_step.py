"""PyTorch single-thread AdamW training step of a Strata GPT model file (f32): the anchor of
bench/step_vs_torch.sh.

Run: /usr/bin/python3 bench/torch_gpt_step.py --model model.h5 --data data.h5 --heads 8
         [--batch 8] [--warmup 3] [--steps 10] [--lr 3e-4] [--weight-decay 0.1] [--clip 1.0]
with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1. Builds tests/python/gpt_reference.py's GPT-2 from the
file, runs warm-up + timed steps on the dataset's rows in Strata's unshuffled order (step s uses rows
[(s-1)*B, s*B) mod N), and prints one JSON line: median/min step seconds, losses, and torch's
1024^3 matmul GFLOP/s. Exits 3 without timing if that matmul is below 20 GFLOP/s: torch is then on
the reference BLAS, not OpenBLAS (TOOLCHAIN.md section 8), and any comparison would be meaningless.
"""
import argparse
import json
import os
import statistics
import sys
import time

try:
    import torch
except ImportError as e:
    print(f"torch_gpt_step: cannot import torch ({e}); run with /usr/bin/python3 "
          "(Debian's python3-torch)", file=sys.stderr)
    sys.exit(2)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import gpt_reference as ref  # noqa: E402

MIN_MATMUL_GFLOPS = 20.0


def matmul_gflops(n=1024, reps=10):
    a, b = torch.randn(n, n, dtype=torch.float32), torch.randn(n, n, dtype=torch.float32)
    a @ b  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2.0 * n ** 3 / min(times) * 1e-9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="Strata model file (f32)")
    ap.add_argument("--data", required=True, help="Strata dataset file")
    ap.add_argument("--heads", type=int, required=True, help="attention heads (not in the shapes)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0, help="clip_grad_norm, 0 = off")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    gflops = matmul_gflops()
    blas_info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                 "matmul_1024_gflops": round(gflops, 2),
                 "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
                 "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "(unset)")}
    if gflops < MIN_MATMUL_GFLOPS:
        print(json.dumps(dict(blas_info, error=(
            f"torch's 1024^3 f32 matmul runs at {gflops:.1f} GFLOP/s (< {MIN_MATMUL_GFLOPS}): the "
            "BLAS behind torch is not OpenBLAS (reference libblas3?). Install libopenblas0-pthread "
            "and check `update-alternatives --display libblas.so.3-x86_64-linux-gnu`; not reporting "
            "a step time."))))
        return 3

    model = ref.load_strata_gpt(args.model, args.heads, torch.float32)
    tokens = ref.read_tokens(args.data)
    if tokens.shape[1] != model.seq + 1:
        print(f"torch_gpt_step: {args.data} rows hold {tokens.shape[1]} tokens, the model's seq is "
              f"{model.seq} (want seq+1)", file=sys.stderr)
        return 2
    opt_cfg = dict(kind="adamw", lr=args.lr, weight_decay=args.weight_decay, schedule="constant")
    opt = ref.make_optimizer(model, opt_cfg)
    times, losses = [], []
    for s in range(1, args.warmup + args.steps + 1):
        idx, tgt = ref.batch_rows(tokens, s, args.batch)
        t0 = time.perf_counter()
        loss, _ = ref.train_step(model, opt, idx, tgt, args.lr, args.clip)
        dt = time.perf_counter() - t0
        losses.append(loss)
        if s > args.warmup:
            times.append(dt)
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps(dict(blas_info, median_step_s=statistics.median(times), min_step_s=min(times),
                          timed_steps=len(times), warmup_steps=args.warmup, batch=args.batch,
                          seq=model.seq, params=n_params, first_loss=losses[0],
                          last_loss=losses[-1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
