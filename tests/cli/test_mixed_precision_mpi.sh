#!/usr/bin/env bash
# Mixed precision (train.master_dtype; DESIGN.md section 3): master weights and optimizer state
# wider than the compute dtype keep updates that the compute dtype rounds away. Tested on the host
# as f32 compute with f64 masters, the same executor path as bf16 compute with f32 masters on a
# GPU. With lr 2e-10 each AdamW step moves a weight by about 2e-10, under half an f32 step for
# weights above 0.004: a pure-f32 run loses the updates, while the f64-master run's final weights
# move as the pure-f64 run's do (to 5 % of the move), on one rank and on dp2 x tp2, pp2 and ZeRO-3
# plans (the last two sum 2 micro-batches' gradients in the f64 accumulator).
# A checkpointed and resumed mixed run equals the straight one bit for bit. Bad combinations exit 2.
source "$(dirname "$0")/lib.sh"
MPIRUN=(mpirun --oversubscribe --allow-run-as-root)
COMPARE=(/usr/bin/python3 "$(dirname "$0")/compare_runs.py")
/usr/bin/python3 -c "import h5py, numpy" 2> /dev/null || { echo "skip: no h5py"; exit 77; }

"$STRATA" model gpt --layers 2 --hidden 32 --heads 4 --seq 16 --vocab 64 --seed 5 --dtype f64 \
  -o m64.h5 > /dev/null
# 8 rows and batch 8: every step sees the same rows, so the runs differ only by their precision.
"$STRATA" data synthetic --vocab 64 --seq 16 --count 8 --seed 7 -o data.h5 > /dev/null
cat > run.yaml << YAML
model: {path: m64.h5}
data: {path: data.h5}
train: {steps: 20, global_batch: 8, micro_batches: 1, dtype: f32, master_dtype: f64,
        shuffle: false, clip_grad_norm: 0,
        optimizer: {kind: adamw, lr: 2.0e-10, weight_decay: 0}}
output: {dir: mixed, save_model: true}
YAML

expect_exit 0 "mixed precision: compute in f32, master weights and optimizer state in f64" -- \
  "$STRATA" train run.yaml
expect_exit 0 "done" -- "$STRATA" train run.yaml --set train.master_dtype=auto --set output.dir=f32
expect_exit 0 "done" -- "$STRATA" train run.yaml --set train.dtype=f64 --set output.dir=f64
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 4 "$STRATA" train run.yaml --set output.dir=dp2tp2 \
  --set plan.method=megatron --set plan.dp=2 --set plan.tp=2
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml --set output.dir=pp2 \
  --set plan.method=megatron --set plan.pp=2 --set train.micro_batches=2
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml --set output.dir=zero3 \
  --set plan.method=zero3 --set train.micro_batches=2

/usr/bin/python3 - << 'PY' || { echo "FAIL: master weights"; FAILURES=$((FAILURES + 1)); }
import h5py, numpy as np, sys

def params(path):
    with h5py.File(path, "r") as f:
        return {k: np.asarray(v, dtype=np.float64) for k, v in f["params"].items()}

w0 = params("m64.h5")
def move(run):
    w = params(run + "/model_final.h5")
    return np.concatenate([(w[k] - w0[k]).ravel() for k in sorted(w0)])

ref = move("f64")
scale = np.abs(ref).max()
ok = 1e-9 < scale < 1e-8  # 20 steps of ~2e-10
for run, lo, hi in [("mixed", 0, 0.05), ("dp2tp2", 0, 0.05), ("pp2", 0, 0.05), ("zero3", 0, 0.05),
                     ("f32", 0.5, 1e9)]:
    err = np.abs(move(run) - ref).max() / scale
    print(f"{run}: max |move - f64 move| = {err:.4f} of the f64 move ({scale:.2e})")
    ok = ok and lo <= err < hi
sys.exit(0 if ok else 1)
PY

# Resume: checkpoint after step 10, killed at step 11, resumed: the same as straight.
expect_exit 137 "checkpoint .*ckpt_step00000010.h5 written" -- env STRATA_INJECT_FAILURE=0:11:kill \
  "${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml --set output.dir=resumed --set checkpoint.dir=ck \
  --set checkpoint.every_steps=10 --set plan.method=megatron --set plan.dp=2
expect_exit 0 "resumed from .*ckpt_step00000010.h5 after step 10" -- "${MPIRUN[@]}" -np 2 \
  "$STRATA" train run.yaml --set output.dir=resumed --set checkpoint.dir=ck \
  --set plan.method=megatron --set plan.dp=2
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml --set output.dir=straight \
  --set plan.method=megatron --set plan.dp=2
check "resumed mixed run equals the straight one bit for bit" -- "${COMPARE[@]}" straight resumed 0
check "the checkpoint holds f64 masters" -- /usr/bin/python3 -c "
import h5py; f = h5py.File('ck/ckpt_step00000010.h5', 'r')
assert f['params/transformer.wte.weight'].dtype == 'float64'
assert f['optimizer/transformer.wte.weight/m'].dtype == 'float64'"

expect_exit 2 "run.yaml: train.master_dtype: 'f32' is narrower than train.dtype 'f64'" -- \
  "$STRATA" train run.yaml --set train.dtype=f64 --set train.master_dtype=f32
# bf16 compute with f32 masters (train.master_dtype auto), on the host backend's emulation (f32
# kernels, bf16 storage rounded on every store, bf16 collectives summing in f32 and rounding each
# partial sum): every step's loss (20 steps at lr 1e-4) and the first step's gradients against
# the f32 run within bf16 rounding (rtol 2e-2, norm-wise per tensor), on one rank and on dp2 x tp2
# and pp2 plans; a resumed bf16 run (f32 masters in the checkpoint, the bf16 copy rounded from
# them again) equals the straight one bit for bit.
bf16() {  # bf16 NAME RANKS [--set ...]
  local name="$1" ranks="$2"
  shift 2
  expect_exit 0 "done" -- "${MPIRUN[@]}" -np "$ranks" "$STRATA" train run.yaml \
    --set output.dir="$name" --set train.master_dtype=auto --set output.dump_gradients_step=1 \
    --set train.optimizer.lr=1.0e-4 "$@"
}
bf16 ref_f32 1 --set train.dtype=f32
bf16 bf16_1 1 --set train.dtype=bf16
bf16 bf16_dp2tp2 4 --set train.dtype=bf16 --set plan.method=megatron --set plan.dp=2 --set plan.tp=2
bf16 bf16_pp2 2 --set train.dtype=bf16 --set plan.method=megatron --set plan.pp=2 \
  --set train.micro_batches=2
for run in bf16_1 bf16_dp2tp2 bf16_pp2; do
  check "$run: first-step loss and gradients within bf16 rounding of f32" -- \
    "${COMPARE[@]}" ref_f32 "$run" 2e-2 --grads 1
done
BF16_DP2=(--set train.dtype=bf16 --set train.master_dtype=auto --set train.optimizer.lr=1.0e-4
          --set plan.method=megatron --set plan.dp=2 --set checkpoint.dir=ck_bf16)
expect_exit 137 "checkpoint .*ckpt_step00000010.h5 written" -- env STRATA_INJECT_FAILURE=0:11:kill \
  "${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml --set output.dir=bf16_resumed "${BF16_DP2[@]}" \
  --set checkpoint.every_steps=10
expect_exit 0 "resumed from .*ckpt_step00000010.h5 after step 10" -- "${MPIRUN[@]}" -np 2 \
  "$STRATA" train run.yaml --set output.dir=bf16_resumed "${BF16_DP2[@]}"
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml \
  --set output.dir=bf16_straight "${BF16_DP2[@]}" --set checkpoint.dir=ck_bf16_unused
check "resumed bf16 run equals the straight one bit for bit" -- \
  "${COMPARE[@]}" bf16_straight bf16_resumed 0
check "the bf16 run's gradient dump is in its f32 master dtype" -- /usr/bin/python3 -c "
import h5py
f = h5py.File('bf16_1/gradients_step1.h5', 'r')
assert f['grads/transformer.wte.weight'].dtype == 'float32', f['grads/transformer.wte.weight'].dtype"
expect_exit 2 "train.master_dtype: \"f16\" is not one of auto, f32, f64" -- \
  "$STRATA" train run.yaml --set train.master_dtype=f16
finish
