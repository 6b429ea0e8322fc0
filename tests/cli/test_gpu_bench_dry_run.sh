#!/usr/bin/env bash
# bench/gpu_step_vs_torch.sh's plumbing on a CPU (the GPU benchmark of issue 6 can only run on a
# GPU machine; this keeps it from rotting between GPU sessions): a tiny GPT on the host backend
# and PyTorch on the CPU. Checks the report's table and that Strata's step-1 loss equals PyTorch's
# f32 loss on the same weights and data (the bf16-autocast run within bf16 rounding).
source "$(dirname "$0")/lib.sh"
repo="$(cd "$(dirname "$0")/../.." && pwd)"

STRATA_BUILD_DIR="$(dirname "$STRATA")" BACKEND=host DEVICE=cpu PRESET=local-cpu PEAK_BF16=1e12 STRATA_DTYPE=f32 \
  LAYERS=2 HIDDEN=64 HEADS=4 SEQ=32 VOCAB=128 BATCHES="4" STEPS=3 TORCH_WARMUP=1 TORCH_STEPS=2 \
  timeout 300 "$repo/bench/gpu_step_vs_torch.sh" > report.txt 2>&1
check "gpu_step_vs_torch.sh exits 0 (report: $(tail -3 report.txt | tr '\n' ' '))" -- test $? -eq 0
for row in "Strata rate" "PyTorch bf16 rate" "Strata / PyTorch bf16 step" "matmul (forward)" \
  "goals (issue 6)"; do
  check "report has '$row'" -- grep -q "$row" report.txt
done
/usr/bin/python3 - << 'PY' || { echo "FAIL: step-1 losses"; sed 's/^/    /' report.txt; FAILURES=$((FAILURES + 1)); }
import re, sys
m = re.search(r"losses step 1: Strata / torch f32 / torch bf16 *\| ([\d.]+) / ([\d.]+) / ([\d.]+)",
              open("report.txt").read())
s, f32, bf16 = map(float, m.groups())
print(f"step-1 loss: Strata {s}, torch f32 {f32}, torch bf16 {bf16}")
sys.exit(0 if abs(s - f32) <= 2e-4 * f32 and abs(s - bf16) <= 2e-2 * f32 else 1)
PY
finish
