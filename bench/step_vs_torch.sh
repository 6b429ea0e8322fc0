#!/usr/bin/env bash
# step_vs_torch.sh: Strata's single-thread training step against PyTorch's and against the GEMM
# floor, for GPT layers 4, hidden 256, heads 8, seq 128, vocab 256, batch 8, f32, AdamW.
# Run: bench/step_vs_torch.sh            (after building strata and sgemm_rate in build/)
#   env: STRATA_BUILD_DIR (default <repo>/build), STEPS (Strata steps, default 12; the median is
#   over steps 3..), TORCH_WARMUP (2) / TORCH_STEPS (10), ROUNDS (1; Strata and PyTorch alternate
#   ROUNDS times and the table takes each one's best round median: use 3+ on a shared machine),
#   KEEP_WORK=1 keeps the temp dir, STRATA_ATTENTION (fused | unfused, default fused: the model
#   file's attention form, `strata model gpt --attention`).
# All three programs run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 and with OPENBLAS_CORETYPE
# and OPENBLAS_L2_SIZE unset for these commands only (TOOLCHAIN.md section 8). Prints a table; the
# lead records results in docs/benchmarks.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STRATA_BUILD_DIR:-$repo/build}
strata=$build/strata
sgemm=$build/bench/sgemm_rate
py=/usr/bin/python3  # Debian's torch; the pyenv python3 on PATH has none (TOOLCHAIN.md section 5)
steps=${STEPS:-12}
torch_warmup=${TORCH_WARMUP:-2}
torch_steps=${TORCH_STEPS:-10}
rounds=${ROUNDS:-1}
attention=${STRATA_ATTENTION:-fused}
layers=4 hidden=256 heads=8 seq=128 vocab=256 batch=8
lr=3.0e-4 weight_decay=0.1 clip=1.0

for exe in "$strata" "$sgemm"; do
  if [[ ! -x $exe ]]; then
    echo "step_vs_torch: $exe not found; build it: cmake --build $build --target strata sgemm_rate" >&2
    exit 2
  fi
done
if (( steps < 3 )); then
  echo "step_vs_torch: STEPS=$steps, need >= 3 (the median is over steps 3..)" >&2
  exit 2
fi

work=$(mktemp -d /tmp/strata_step_vs_torch.XXXXXX)
if [[ ${KEEP_WORK:-0} != 1 ]]; then trap 'rm -rf "$work"' EXIT; fi

# The benchmark environment, for these commands only.
bench_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
           OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)

echo "# Strata vs PyTorch single-thread training step"
echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine:  $(uname -m), $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores online, load average $(cut -d" " -f1-3 /proc/loadavg)"
echo "command:  $0 $*  (STRATA_BUILD_DIR=$build STEPS=$steps TORCH_WARMUP=$torch_warmup TORCH_STEPS=$torch_steps ROUNDS=$rounds)"
echo "env:      OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1; OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset" \
     "for the benchmarked commands only (were: CORETYPE=${OPENBLAS_CORETYPE:-unset}, L2_SIZE=${OPENBLAS_L2_SIZE:-unset})"
echo "model:    GPT layers $layers, hidden $hidden, heads $heads, seq $seq, vocab $vocab; batch $batch, f32," \
     "AdamW lr $lr wd $weight_decay, clip $clip, micro_batches 1; Strata attention $attention"

run_logged() {  # run_logged LOG CMD...: run quietly, show the log on failure
  local log=$1; shift
  if ! "$@" >"$log" 2>&1; then
    echo "step_vs_torch: failed: $*" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}

# ---- model and data
run_logged "$work/model.log" "$strata" model gpt --layers $layers --hidden $hidden --heads $heads \
  --seq $seq --vocab $vocab --dtype f32 --seed 1 --attention "$attention" -o "$work/model.h5"
run_logged "$work/data.log" "$strata" data synthetic --vocab $vocab --seq $seq \
  --count $((batch * (steps > torch_warmup + torch_steps ? steps : torch_warmup + torch_steps))) \
  --seed 2 -o "$work/data.h5"

# ---- Strata
cat >"$work/bench.yaml" <<EOF
model: {path: model.h5}
data: {path: data.h5}
train:
  steps: $steps
  global_batch: $batch
  micro_batches: 1
  dtype: f32
  shuffle: false
  log_every: 1
  clip_grad_norm: $clip
  optimizer: {kind: adamw, lr: $lr, betas: [0.9, 0.999], eps: 1.0e-8, weight_decay: $weight_decay}
output: {dir: out, save_model: false}
EOF

# ---- Strata and PyTorch, alternating
for ((r = 1; r <= rounds; ++r)); do
  run_logged "$work/strata_$r.log" "${bench_env[@]}" "$strata" train "$work/bench.yaml" \
    --set output.dir="$work/out_$r"
  run_logged "$work/torch_$r.log" "${bench_env[@]}" "$py" "$repo/bench/torch_gpt_step.py" \
    --model "$work/model.h5" --data "$work/data.h5" --heads $heads --batch $batch \
    --warmup "$torch_warmup" --steps "$torch_steps" --lr $lr --weight-decay $weight_decay --clip $clip
done

# ---- GEMM rate
run_logged "$work/sgemm.log" "${bench_env[@]}" "$sgemm"

# ---- table
PYTHONPATH="$repo/bench" "$py" - "$work" $rounds $layers $hidden $seq $vocab $batch <<'EOF'
import json, statistics, sys
from step_report import gpt_step_flops
work, rounds, L, H, S, V, B = sys.argv[1], *map(int, sys.argv[2:])
strata_medians, torch_medians, strata_mins, torch_mins = [], [], [], []
for r in range(1, rounds + 1):
    metrics = [json.loads(l) for l in open(f"{work}/out_{r}/metrics.jsonl") if l.strip()]
    strata_times = [m["step_time_s"] for m in metrics if m["step"] >= 3]
    if not strata_times:
        sys.exit("step_vs_torch: metrics.jsonl has no step >= 3")
    strata_medians.append(statistics.median(strata_times))
    strata_mins.append(min(strata_times))
    torch_rec = json.loads(open(f"{work}/torch_{r}.log").read().strip().splitlines()[-1])
    torch_medians.append(torch_rec["median_step_s"])
    torch_mins.append(torch_rec["min_step_s"])
strata_s, torch_s = min(strata_medians), min(torch_medians)
if rounds > 1:
    print("per-round medians (s): Strata " + " ".join(f"{t:.4f}" for t in strata_medians) +
          "; PyTorch " + " ".join(f"{t:.4f}" for t in torch_medians))
sgemm = [json.loads(l) for l in open(f"{work}/sgemm.log") if l.startswith("{")]
best = sgemm[-1]["best_gflops"]
flop = gpt_step_flops(L, H, S, V, B)
floor_s = flop / (best * 1e9)
print()
print(f"sgemm (1 thread, OpenBLAS): " + ", ".join(f"{r['m']}x{r['n']}x{r['k']} {r['gflops_best']:.0f}"
                                                   for r in sgemm[:-1]) + f" GFLOP/s; best {best:.1f}")
print(f"torch 1024^3 matmul: {torch_rec['matmul_gflops']:.1f} GFLOP/s; Strata losses "
      f"{metrics[0]['loss']:.4f} -> {metrics[-1]['loss']:.4f}, torch {torch_rec['first_loss']:.4f}"
      f" -> {torch_rec['last_loss']:.4f}")
best_of = f", best of {rounds} rounds" if rounds > 1 else ""
rows = [
    ("Strata median step (steps 3..%d%s)" % (metrics[-1]["step"], best_of), f"{strata_s:.4f} s"),
    ("PyTorch median step (%d timed after %d warm-up%s)" % (torch_rec["timed_steps"],
                                                           torch_rec["warmup_steps"], best_of),
     f"{torch_s:.4f} s"),
    ("Strata / PyTorch", f"{strata_s / torch_s:.3f}"),
    ("model FLOPs per step", f"{flop / 1e9:.3f} GFLOP"),
    ("GEMM floor (FLOPs / best sgemm)", f"{floor_s:.4f} s"),
    ("Strata / floor", f"{strata_s / floor_s:.3f}"),
    ("PyTorch / floor", f"{torch_s / floor_s:.3f}"),
    ("Strata min / PyTorch min step", f"{min(strata_mins):.4f} s / {min(torch_mins):.4f} s"),
]
w = max(len(r[0]) for r in rows)
print()
print(f"| {'quantity'.ljust(w)} | value |")
print(f"|{'-' * (w + 2)}|-------|")
for k, v in rows:
    print(f"| {k.ljust(w)} | {v} |")
rel = abs(metrics[0]["loss"] - torch_rec["first_loss"]) / abs(torch_rec["first_loss"])
if rel > 1e-4:
    print(f"WARNING: step-1 losses differ by {rel:.1e} relative: the two programs do not train the same model")
load1 = float(open("/proc/loadavg").read().split()[0])
if load1 > 1.5:
    print(f"WARNING: load average {load1} at the end (2 cores): other processes shared the CPU; "
          "the timings are unreliable, rerun on a quiet machine")
print()
print("goals: Strata/PyTorch <= 1: " + ("MET" if strata_s <= torch_s else "NOT MET") +
      "; Strata/floor <= 2: " + ("MET" if strata_s <= 2 * floor_s else "NOT MET"))
EOF
