"""Shared pieces of the step benchmarks' reports (bench/step_vs_torch.sh, bench/gpu_step_vs_torch.sh),
and the GPU benchmark's report itself.

Run (by bench/gpu_step_vs_torch.sh):
  /usr/bin/python3 bench/step_report.py gpu WORK L H S V B PEAK DTYPE
  WORK holds strata/metrics.jsonl, strata_profile.log, torch_f32.log and torch_bf16.log; PEAK is the
  cluster spec's bf16 FLOP/s per device; DTYPE is Strata's train.dtype. Prints a markdown table and
  the goal lines of issue 6.
"""
import json
import statistics
import sys


def gpt_step_flops(L, H, S, V, B):
    """Alpa's GPT count (ALPA_FACTS.md 4.1) = 6 * (12 L H^2) * tokens (block GEMMs, fwd + bwd)
    + 12 B S^2 H L (QK^T and AV, full S x S, fwd + bwd) + 6 B S H V (tied LM head)."""
    return 72 * B * S * H ** 2 * L * (1 + S / (6 * H)) + 6 * B * S * H * V


def strata_step_times(metrics_path, first_step=3):
    """step_time_s of the steps >= first_step of a metrics.jsonl (the earlier ones warm up)."""
    with open(metrics_path) as f:
        metrics = [json.loads(line) for line in f if line.strip()]
    times = [m["step_time_s"] for m in metrics if m["step"] >= first_step]
    if not times:
        sys.exit(f"step_report: {metrics_path} has no step >= {first_step}")
    return metrics, times


def last_json(path):
    """The last line of a log that parses as a JSON object (torch_gpt_step.py's result)."""
    with open(path) as f:
        for line in reversed(f.read().strip().splitlines()):
            if line.startswith("{"):
                return json.loads(line)
    sys.exit(f"step_report: no JSON result in {path}")


def print_table(rows):
    w = max(len(r[0]) for r in rows)
    print(f"| {'quantity'.ljust(w)} | value |")
    print(f"|{'-' * (w + 2)}|-------|")
    for k, v in rows:
        print(f"| {k.ljust(w)} | {v} |")


def profile_lines(log_path):
    """The per-op-kind lines Strata prints at the end of a STRATA_PROFILE=1 run."""
    with open(log_path) as f:
        lines = f.read().splitlines()
    start = next((i for i, l in enumerate(lines) if "profile (STRATA_PROFILE=1)" in l), None)
    if start is None:
        return ["(no profile in " + log_path + ")"]
    return [l for l in lines[start:] if "s/step" in l][:16]


def gpu_report(work, L, H, S, V, B, peak_flops, dtype):
    metrics, times = strata_step_times(f"{work}/strata/metrics.jsonl")
    strata_s = statistics.median(times)
    t32 = last_json(f"{work}/torch_f32.log")
    t16 = last_json(f"{work}/torch_bf16.log")
    flop = gpt_step_flops(L, H, S, V, B)
    tokens = B * S
    gemm = t16["matmul_gflops"] * 1e9  # cuBLAS bf16, measured by torch in this run

    def rate(step_s):
        return (f"{tokens / step_s:,.0f} tokens/s, {flop / step_s / 1e12:.1f} TFLOP/s, MFU "
                f"{100 * flop / step_s / gemm:.1f} % of measured bf16 GEMM, "
                f"{100 * flop / step_s / peak_flops:.1f} % of peak")

    print(f"model: GPT L {L}, H {H}, S {S}, V {V}; batch {B} ({tokens} tokens/step), "
          f"{flop / 1e12:.2f} TFLOP/step; GPU {t16['device']}; torch {t16['torch']}")
    print(f"bf16 GEMM {t16['matmul_n']}^3 (torch/cuBLAS, this run): {t16['matmul_gflops'] / 1e3:.1f} "
          f"TFLOP/s; peak from the cluster spec: {peak_flops / 1e12:.1f} TFLOP/s")
    print()
    rows = [
        (f"Strata ({dtype}) median step, steps 3..{metrics[-1]['step']}", f"{strata_s:.4f} s"),
        ("Strata rate", rate(strata_s)),
        (f"PyTorch f32 (fast={t32['fast']}, sdpa={t32['sdpa']}) median step",
         f"{t32['median_step_s']:.4f} s"),
        ("PyTorch f32 rate", rate(t32["median_step_s"])),
        (f"PyTorch bf16 autocast (fast={t16['fast']}, sdpa={t16['sdpa']}) median step",
         f"{t16['median_step_s']:.4f} s"),
        ("PyTorch bf16 rate", rate(t16["median_step_s"])),
        ("Strata / PyTorch f32 step", f"{strata_s / t32['median_step_s']:.3f}"),
        ("Strata / PyTorch bf16 step", f"{strata_s / t16['median_step_s']:.3f}"),
        ("losses step 1: Strata / torch f32 / torch bf16",
         f"{metrics[0]['loss']:.4f} / {t32['first_loss']:.4f} / {t16['first_loss']:.4f}"),
        ("PyTorch peak memory f32 / bf16",
         f"{(t32['peak_memory_bytes'] or 0) / 2**30:.1f} / "
         f"{(t16['peak_memory_bytes'] or 0) / 2**30:.1f} GiB"),
    ]
    print_table(rows)
    print()
    print("Where Strata's time goes (STRATA_PROFILE=1, synchronised after every op):")
    for line in profile_lines(f"{work}/strata_profile.log"):
        print("  " + line.split("] ", 1)[-1])
    mfu = flop / strata_s / gemm
    print()
    print("goals (issue 6): Strata tokens/s >= PyTorch bf16: " +
          ("MET" if strata_s <= t16["median_step_s"] else "NOT MET") +
          f"; MFU >= 40 % of the measured bf16 GEMM: {'MET' if mfu >= 0.4 else 'NOT MET'}" +
          ("" if dtype == "bf16" else f" (Strata trained in {dtype}, not bf16)"))


if __name__ == "__main__":
    if len(sys.argv) != 10 or sys.argv[1] != "gpu":
        sys.exit(__doc__)
    w, L, H, S, V, B = sys.argv[2], *map(int, sys.argv[3:8])
    gpu_report(w, L, H, S, V, B, float(sys.argv[8]), sys.argv[9])
