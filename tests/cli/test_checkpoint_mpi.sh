#!/usr/bin/env bash
# Checkpoints and resume (DESIGN.md section 7): a resumed run equals the straight run, bit for
# bit on the same plan and rank count, and to rtol 1e-10 on another plan and rank count; a rank
# killed while the checkpoint is written leaves the previous one intact and loadable; a corrupt
# newest checkpoint is detected (resume: auto falls back to the previous one; an explicit path is
# a one-line error, exit 2); SIGUSR1 ends the job after a checkpoint with exit 3 (requeue); a
# rank killed mid-step ends the whole job within 30 s.
source "$(dirname "$0")/lib.sh"
MPIRUN=(mpirun --oversubscribe --allow-run-as-root)
COMPARE=(/usr/bin/python3 "$(dirname "$0")/compare_runs.py")
/usr/bin/python3 -c "import h5py, numpy" 2>/dev/null || { echo "skip: no h5py"; exit 77; }

"$STRATA" model gpt --layers 2 --hidden 32 --heads 4 --seq 16 --vocab 64 --seed 5 --dtype f64 -o m64.h5 > /dev/null
"$STRATA" data synthetic --vocab 64 --seq 16 --count 64 --seed 7 -o data.h5 > /dev/null
cat > run.yaml <<YAML
model: {path: m64.h5}
data: {path: data.h5}
train: {steps: 6, global_batch: 8, micro_batches: 2, dtype: f64, clip_grad_norm: 0.5,
        optimizer: {kind: adamw, lr: 1.0e-2, weight_decay: 0.01, schedule: cosine, warmup_steps: 1}}
plan: {method: megatron, dp: 2, tp: 2}
output: {dir: straight, save_model: true}
YAML

# 6 steps straight, and 3 + 3 resumed on the same plan and ranks: identical. The first part is
# a 6-step run that dies at the start of step 4 (SIGKILL on rank 0), after step 3's checkpoint.
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 4 "$STRATA" train run.yaml
expect_exit 137 "checkpoint .*ckpt_step00000003.h5 written" -- env STRATA_INJECT_FAILURE=0:4:kill \
  "${MPIRUN[@]}" -np 4 "$STRATA" train run.yaml --set output.dir=same --set checkpoint.dir=ck_same \
  --set checkpoint.every_steps=3
expect_exit 0 "resumed from .*ckpt_step00000003.h5 after step 3" -- "${MPIRUN[@]}" -np 4 "$STRATA" train run.yaml \
  --set output.dir=same --set checkpoint.dir=ck_same
check "same plan: losses and parameters bit-identical" -- "${COMPARE[@]}" straight same 0
expect_exit 0 "strata-checkpoint v1: step 3" -- "$STRATA" inspect ck_same/ckpt_step00000003.h5
check "h5py reads the checkpoint" -- /usr/bin/python3 -c "
import h5py; f = h5py.File('ck_same/ckpt_step00000003.h5', 'r')
assert f.attrs['format'] == 'strata-checkpoint' and f.attrs['step'] == 3
assert f['params/transformer.wte.weight'].shape == (64, 32) and 'm' in f['optimizer/transformer.wte.weight']"

# Checkpointed on 4 ranks with dp2 x tp2, resumed on 2 ranks with pp=2.
expect_exit 137 "" -- env STRATA_INJECT_FAILURE=0:4:kill "${MPIRUN[@]}" -np 4 "$STRATA" train run.yaml \
  --set output.dir=moved --set checkpoint.dir=ck_moved --set checkpoint.every_steps=3
expect_exit 0 "resumed from .*step 3" -- "${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml --set output.dir=moved \
  --set checkpoint.dir=ck_moved --set plan.dp=1 --set plan.tp=1 --set plan.pp=2
check "4 ranks dp2 x tp2 -> 2 ranks pp2: equal to the straight run (1e-10)" -- "${COMPARE[@]}" straight moved 1e-10

# Rank 0 killed while writing step 6's checkpoint: step 3's stays complete; resume finishes the run.
expect_exit 137 "" -- env STRATA_INJECT_FAILURE=0:6:checkpoint-kill "${MPIRUN[@]}" -np 4 "$STRATA" train run.yaml \
  --set output.dir=killed --set checkpoint.dir=ck_killed --set checkpoint.every_steps=3
check "no complete checkpoint of step 6" -- test ! -e ck_killed/ckpt_step00000006.h5
expect_exit 0 "strata-checkpoint v1: step 3" -- "$STRATA" inspect ck_killed/ckpt_step00000003.h5
expect_exit 0 "resumed from .*step 3" -- "${MPIRUN[@]}" -np 4 "$STRATA" train run.yaml \
  --set output.dir=killed --set checkpoint.dir=ck_killed
check "after the crash: equal to the straight run" -- "${COMPARE[@]}" straight killed 1e-10

# A truncated newest checkpoint: auto falls back to the previous one; naming it is an error.
mkdir -p ck_bad && cp ck_same/ckpt_step00000003.h5 ck_bad/ && cp ck_same/ckpt_step00000006.h5 ck_bad/
truncate -s 5000 ck_bad/ckpt_step00000006.h5
expect_exit 0 "ckpt_step00000006.h5.*trying an older checkpoint" -- "${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml \
  --set output.dir=bad --set checkpoint.dir=ck_bad --set plan.dp=2 --set plan.tp=1
mkdir -p ck_bad2 && head -c 5000 ck_same/ckpt_step00000006.h5 > ck_bad2/ckpt_step00000006.h5
expect_exit 2 "ckpt_step00000006.h5" -- "${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml --set output.dir=bad2 \
  --set checkpoint.resume=ck_bad2/ckpt_step00000006.h5 --set plan.dp=2 --set plan.tp=1
check "no output from the rejected resume" -- test ! -e bad2

# SIGUSR1 (Slurm's warning): checkpoint, then exit 3 on every rank.
"${MPIRUN[@]}" -np 2 "$STRATA" train run.yaml --set output.dir=sig --set train.steps=100000 \
  --set checkpoint.dir=ck_sig --set plan.dp=2 --set plan.tp=1 > sig.log 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "step .*/100000" sig.log 2>/dev/null && break; sleep 0.2; done
kill -USR1 "$pid"
wait "$pid"
rc=$?
check "SIGUSR1: exit 3" -- test "$rc" -eq 3
check "SIGUSR1: a line says the checkpoint was written and the exit code" -- grep -q "checkpoint written; exit 3" sig.log
check "SIGUSR1: a complete checkpoint" -- test -n "$(ls ck_sig/ckpt_step*.h5 2>/dev/null)"

# A rank killed mid-step ends the job within 30 s; the last checkpoint stays intact.
start=$(date +%s)
expect_exit 137 "" -- env STRATA_INJECT_FAILURE=1:5:kill "${MPIRUN[@]}" -np 4 "$STRATA" train run.yaml \
  --set output.dir=sigkill --set checkpoint.dir=ck_sigkill --set checkpoint.every_steps=2
check "SIGKILL of one rank: the job ended within 30 s" -- test $(( $(date +%s) - start )) -lt 30
expect_exit 0 "strata-checkpoint v1: step 4" -- "$STRATA" inspect ck_sigkill/ckpt_step00000004.h5
finish
