"""PyTorch AdamW training step of a Strata GPT model file: the anchor of bench/step_vs_torch.sh
(CPU, one thread, f32) and bench/gpu_step_vs_torch.sh (GPU).

Run: /usr/bin/python3 bench/torch_gpt_step.py --model model.h5 --data data.h5 --heads 8
         [--batch 8] [--warmup 3] [--steps 10] [--lr 3e-4] [--weight-decay 0.1] [--clip 1.0]
         [--device cpu|cuda] [--dtype f32|bf16] [--fast]
on the CPU with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1. Builds tests/python/gpt_reference.py's
GPT-2 from the file, runs warm-up + timed steps on the dataset's rows in Strata's unshuffled order
(step s uses rows [(s-1)*B, s*B) mod N), and prints one JSON line: median/min step seconds, losses,
and a matmul rate measured in the same run (CPU: f32 1024^3; GPU: the step dtype at 8192^3, the
GEMM rate MFU is measured against). --dtype bf16 is mixed precision as PyTorch users run it:
forward and loss under torch.autocast(bfloat16), f32 weights, gradients and AdamW state. --fast
gives PyTorch its best eager setup: scaled_dot_product_attention (flash on GPUs; torch >= 2.0),
the one-kernel tanh GELU, and the fused AdamW on a GPU. On the CPU, exits 3 without timing if the
matmul is below 20 GFLOP/s: torch is then on the reference BLAS, not OpenBLAS (TOOLCHAIN.md
section 8), and any comparison would be meaningless.
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


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device, dtype, n, reps=10):
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    a @ b  # warm-up
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t0)
    return 2.0 * n ** 3 / min(times) * 1e-9


def fused_adamw(model, opt):
    """The same AdamW with fused=True (one kernel for all tensors; torch >= 2.0 on GPUs)."""
    g = opt.param_groups[0]
    try:
        return torch.optim.AdamW(model.parameters(), lr=g["lr"], betas=g["betas"], eps=g["eps"],
                                 weight_decay=g["weight_decay"], fused=True)
    except (TypeError, RuntimeError):
        return opt


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
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"],
                    help="f32, or bf16 mixed precision (autocast)")
    ap.add_argument("--fast", action="store_true", help="torch's fused kernels (see the file head)")
    args = ap.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("torch_gpt_step: --device cuda but torch sees no GPU", file=sys.stderr)
        return 2
    ref.FAST = args.fast
    amp_dtype = torch.bfloat16 if args.dtype == "bf16" else None
    torch.set_num_threads(args.threads)
    on_gpu = device.type == "cuda"
    n = 8192 if on_gpu else 1024
    gflops = matmul_gflops(device, amp_dtype or torch.float32, n)
    blas_info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                 "device": torch.cuda.get_device_name(device) if on_gpu else "cpu",
                 "dtype": args.dtype, "fast": args.fast,
                 "sdpa": args.fast and hasattr(torch.nn.functional, "scaled_dot_product_attention"),
                 "matmul_n": n, "matmul_dtype": str(amp_dtype or torch.float32),
                 "matmul_gflops": round(gflops, 2),
                 "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
                 "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "(unset)")}
    if not on_gpu and gflops < MIN_MATMUL_GFLOPS:
        print(json.dumps(dict(blas_info, error=(
            f"torch's 1024^3 f32 matmul runs at {gflops:.1f} GFLOP/s (< {MIN_MATMUL_GFLOPS}): the "
            "BLAS behind torch is not OpenBLAS (reference libblas3?). Install libopenblas0-pthread "
            "and check `update-alternatives --display libblas.so.3-x86_64-linux-gnu`; not reporting "
            "a step time."))))
        return 3

    model = ref.load_strata_gpt(args.model, args.heads, torch.float32).to(device)
    tokens = ref.read_tokens(args.data)
    if tokens.shape[1] != model.seq + 1:
        print(f"torch_gpt_step: {args.data} rows hold {tokens.shape[1]} tokens, the model's seq is "
              f"{model.seq} (want seq+1)", file=sys.stderr)
        return 2
    opt_cfg = dict(kind="adamw", lr=args.lr, weight_decay=args.weight_decay, schedule="constant")
    opt = ref.make_optimizer(model, opt_cfg)
    if args.fast and on_gpu:
        opt = fused_adamw(model, opt)
    times, losses = [], []
    for s in range(1, args.warmup + args.steps + 1):
        idx, tgt = (t.to(device) for t in ref.batch_rows(tokens, s, args.batch))
        sync(device)
        t0 = time.perf_counter()
        loss, _ = ref.train_step(model, opt, idx, tgt, args.lr, args.clip, amp_dtype)
        sync(device)
        dt = time.perf_counter() - t0
        losses.append(loss)
        if s > args.warmup:
            times.append(dt)
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps(dict(blas_info, median_step_s=statistics.median(times), min_step_s=min(times),
                          timed_steps=len(times), warmup_steps=args.warmup, batch=args.batch,
                          seq=model.seq, params=n_params, first_loss=losses[0],
                          last_loss=losses[-1],
                          peak_memory_bytes=torch.cuda.max_memory_allocated(device) if on_gpu
                          else None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
