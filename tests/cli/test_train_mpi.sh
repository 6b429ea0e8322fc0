#!/usr/bin/env bash
# `strata train` under mpirun: the metrics contract, outputs that read back, gradient dumps,
# a non-finite loss naming its step, and a rank count the run cannot use ending every rank
# with exit 2 and one line (no hang).
source "$(dirname "$0")/lib.sh"
MPIRUN=(mpirun --oversubscribe --allow-run-as-root)

"$STRATA" model gpt --layers 2 --hidden 32 --heads 4 --seq 16 --vocab 64 --seed 3 -o model.h5 > /dev/null
"$STRATA" data synthetic --vocab 64 --seq 16 --count 40 --seed 1 -o train.h5 > /dev/null
"$STRATA" data synthetic --vocab 64 --seq 16 --count 8 --seed 2 -o val.h5 > /dev/null
cat > run.yaml <<YAML
model: {path: model.h5}
data: {path: train.h5, val_path: val.h5}
train: {steps: 6, global_batch: 8, micro_batches: 2, log_every: 2, eval_every: 3,
        optimizer: {kind: adamw, lr: 1.0e-3, schedule: cosine, warmup_steps: 2}}
output: {dir: out, dump_gradients_step: 2}
YAML

expect_exit 0 "step 6/6" -- "${MPIRUN[@]}" -np 1 "$STRATA" train run.yaml
check "6 step records and 2 validation records" -- test "$(grep -c '"loss"' out/metrics.jsonl)" -eq 6 -a "$(grep -c val_loss out/metrics.jsonl)" -eq 2
/usr/bin/python3 - << 'PY' || { echo "FAIL: metrics contract"; FAILURES=$((FAILURES + 1)); }
import json, math
rows = [json.loads(l) for l in open("out/metrics.jsonl")]
steps = [r for r in rows if "loss" in r]
keys = {"step", "loss", "lr", "grad_norm", "step_time_s", "tokens_per_s", "tflops_per_device",
        "mfu", "peak_memory_bytes", "bytes"}
for r in steps:
    assert keys <= set(r), set(keys) - set(r)
    assert math.isfinite(r["loss"]) and r["step_time_s"] > 0 and r["grad_norm"] > 0
assert [r["step"] for r in steps] == list(range(1, 7))
# warm-up then cosine: lr ramps 5e-4, 1e-3, then decays to 0 at the last step
assert abs(steps[0]["lr"] - 5e-4) < 1e-15 and abs(steps[1]["lr"] - 1e-3) < 1e-15
assert steps[-1]["lr"] == 0.0
# 17 significant digits in the file
line = open("out/metrics.jsonl").readline()
digits = line.split('"loss": ')[1].split(",")[0].replace(".", "").lstrip("0")
assert len(digits.rstrip("0")) >= 15, line
PY
expect_exit 0 "strata-gradients.*step 2" -- "$STRATA" inspect out/gradients_step2.h5
expect_exit 0 "parameters" -- "$STRATA" inspect out/model_final.h5

# Resuming from the trained weights is possible: model_final.h5 is a model file.
expect_exit 0 "done" -- "$STRATA" train run.yaml --set model.path=out/model_final.h5 --set output.dir=out2 --set train.steps=1

# A diverging run stops with an error naming the step (exit 1).
expect_exit 1 "step [0-9]+: loss is" -- "$STRATA" train run.yaml --set output.dir=out_nan \
  --set train.optimizer.kind=sgd --set train.optimizer.lr=1e30 --set train.optimizer.schedule=constant

# A plan needing 4 ranks launched on 2: every rank exits 2, rank 0 prints one line, nobody hangs.
expect_exit 2 "1 x 4 = 4 but 2 rank\(s\) were launched" -- "${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml \
  --set cluster.devices_per_host=4 --set output.dir=out_np2
check "no output from the rejected launch" -- test ! -e out_np2
# An infeasible plan (3 pipeline stages for 2 blocks): exit 2 on every rank.
expect_exit 2 "plan.pp: 3 stages for 2 blocks" -- "${MPIRUN[@]}" -np 3 "$STRATA" train run.yaml \
  --set plan.method=megatron --set plan.pp=3 --set output.dir=out_tp3
check "no output from the infeasible plan" -- test ! -e out_tp3
# A failure on one rank during a step ends the whole job (MPI_Abort), naming the rank and reason.
start=$(date +%s)
expect_exit 1 "\[r1/2\].*injected failure at step 2" -- env STRATA_INJECT_FAILURE=1:2 \
  "${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml --set output.dir=out_fail
check "the failed job ended within 30 s" -- test $(( $(date +%s) - start )) -lt 30
# Two ranks data parallel: trains to the end.
expect_exit 0 "step 6/6" -- "${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml --set output.dir=out_dp2
finish
