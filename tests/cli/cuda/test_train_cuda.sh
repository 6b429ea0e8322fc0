#!/usr/bin/env bash
# `strata train` on the cuda backend (CUDA build only; ctest label cuda). Plan invariance on the
# GPU (DESIGN.md section 6), within what one GPU can run: NCCL refuses two ranks of one
# communicator on the same GPU, so the multi-rank runs are pipelines whose stages are single
# devices (their stage-to-stage transfers go through pinned host buffers, their collectives are
# all on one-member axes). f32, 2 SGD steps with momentum and gradient clipping:
#   - one-rank cuda against one-rank host: losses, first-step gradients, final parameters;
#   - 2 and 4 ranks (megatron pp 2 / pp 4, 1f1b and gpipe; a manual 2-stage plan with
#     recomputation) against the one-rank cuda run, and their counted bytes against the plan's;
#   - bf16 compute with f32 master weights (train.dtype: bf16) on one rank and on a 2-stage
#     pipeline against the host's f32 run, to bf16 accuracy (rtol 2e-2).
# rtol 1e-4, norm-wise per tensor. SGD, not AdamW, so parameters stay proportional to gradients
# (AdamW's first step turns rounding noise in near-zero gradients into +-lr). Exit 77 when no GPU
# is visible (the one-rank cuda run is refused), so ctest reports the test as skipped.
source "$(dirname "$0")/../lib.sh"
MPIRUN=(mpirun --oversubscribe --allow-run-as-root)
HERE="$(cd "$(dirname "$0")/.." && pwd)"
COMPARE=(/usr/bin/python3 "$HERE/compare_runs.py")
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import h5py, numpy" 2>/dev/null || { echo "skipped: no h5py"; exit 77; }

"$STRATA" model gpt --layers 4 --hidden 32 --heads 4 --seq 16 --vocab 64 --seed 5 -o m32.h5 > /dev/null
"$STRATA" data synthetic --vocab 64 --seq 16 --count 48 --seed 7 -o data.h5 > /dev/null
cat > base.yaml <<YAML
model: {path: m32.h5}
data: {path: data.h5}
cluster: {backend: cuda}
train: {steps: 2, global_batch: 8, micro_batches: 2, dtype: f32, clip_grad_norm: 0.5, shuffle: false,
        optimizer: {kind: sgd, lr: 0.1, momentum: 0.9}}
plan: {method: data-parallel}
output: {dir: cuda1, save_model: true, dump_gradients_step: 1}
YAML

# The one-rank cuda run doubles as the GPU probe: refused (exit 2) without a visible GPU.
probe="$(timeout 300 "${MPIRUN[@]}" -np 1 "$STRATA" train base.yaml 2>&1)"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "'cuda' is not available" <<< "$probe"; then
  echo "skipped: no GPU ($(grep -o "'cuda' is not available.*" <<< "$probe" | head -1))"
  exit 77
fi
if [ "$rc" -ne 0 ]; then
  echo "FAIL: one-rank cuda run -> exit $rc, output:"
  sed 's/^/    /' <<< "$probe" | tail -20
  exit 1
fi

# same_run REF RUN: losses, first-step gradients and final parameters within rtol 1e-4.
same_run() {
  "${COMPARE[@]}" "$1" "$2" 1e-4 --grads 1 && "${COMPARE[@]}" "$1" "$2" 1e-4
}

expect_exit 0 "done" -- "${MPIRUN[@]}" -np 1 "$STRATA" train base.yaml \
  --set cluster.backend=host --set output.dir=host1
check "one-rank cuda equals one-rank host" -- same_run host1 cuda1

# run NAME RANKS [--set ...]: a multi-rank cuda run against the one-rank cuda run.
run() {
  local name="$1" ranks="$2"
  shift 2
  expect_exit 0 "cuda device [0-9]+ of [0-9]+ visible" -- "${MPIRUN[@]}" -np "$ranks" \
    "$STRATA" train base.yaml --set output.dir="$name" "$@"
  check "$name: losses, gradients and parameters equal the one-rank cuda run" -- \
    same_run cuda1 "$name"
  check "$name: counted bytes equal the plan's" -- bytes_match "$name"
}
run pp2_1f1b 2 --set plan.method=megatron --set plan.pp=2
run pp4_1f1b 4 --set plan.method=megatron --set plan.pp=4
run pp4_gpipe 4 --set plan.method=megatron --set plan.pp=4 --set plan.schedule=gpipe
# Uneven stages (0 embedding + 1 block; 3 blocks + head), recomputation on the second.
sed '/^plan:/d' base.yaml > manual.yaml
cat >> manual.yaml <<YAML
plan:
  method: manual
  stages:
    - {layers: [0, 2], submesh: [1, 1], logical_mesh: [1, 1]}
    - {layers: [2, 6], submesh: [1, 1], logical_mesh: [1, 1], recompute: true}
YAML
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 2 "$STRATA" train manual.yaml --set output.dir=manual2
check "manual2: losses, gradients and parameters equal the one-rank cuda run" -- \
  same_run cuda1 manual2
check "manual2: counted bytes equal the plan's" -- bytes_match manual2

# bf16: forward and backward in bf16 (f32 accumulation inside the kernels), f32 masters and state.
# Planned on the dgx-h100 spec, one device per rank.
BF16=(--set train.dtype=bf16 --set cluster.preset=dgx-h100 --set cluster.hosts=1)
expect_exit 0 "mixed precision: compute in bf16, master weights and optimizer state in f32" -- \
  "${MPIRUN[@]}" -np 1 "$STRATA" train base.yaml "${BF16[@]}" --set cluster.devices_per_host=1 \
  --set output.dir=bf16_1
check "bf16 one rank: losses, step-1 gradients and parameters within 2e-2 of the host f32 run" -- \
  "${COMPARE[@]}" host1 bf16_1 2e-2 --grads 1
check "bf16 one rank: final parameters within 2e-2 of the host f32 run" -- \
  "${COMPARE[@]}" host1 bf16_1 2e-2
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 2 "$STRATA" train base.yaml "${BF16[@]}" \
  --set cluster.devices_per_host=2 --set output.dir=bf16_pp2 --set plan.method=megatron \
  --set plan.pp=2
check "bf16 pp2: within 2e-2 of the host f32 run" -- "${COMPARE[@]}" host1 bf16_pp2 2e-2
check "bf16 pp2: counted bytes equal the plan's" -- bytes_match bf16_pp2
# The same bf16 run on the host backend, which emulates bf16 with its f32 kernels (rounding on
# every store, as the GPU's kernels do): the two differ only in summation order and the GPU's
# fast math, so the step-1 gradients agree within bf16 rounding.
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 1 "$STRATA" train base.yaml "${BF16[@]}" \
  --set cluster.devices_per_host=1 --set cluster.backend=host --set output.dir=bf16_host
check "bf16 one rank: step-1 gradients within 2e-2 of the host's emulated bf16 run" -- \
  "${COMPARE[@]}" bf16_host bf16_1 2e-2 --grads 1
finish
