#!/usr/bin/env bash
# Plan invariance (DESIGN.md section 6), the contract that guards the runtime: for every plan
# and rank count, 3 AdamW steps with gradient clipping give the one-rank run's losses and
# parameters (f64, rtol 1e-10, norm-wise per tensor), or its first-step gradients (f32,
# rtol 1e-5); and the bytes the runtime counts at its MPI call sites equal the bytes the plan
# predicts (plan.json predicted.bytes_per_step), kind by kind.
source "$(dirname "$0")/lib.sh"
MPIRUN=(mpirun --oversubscribe --allow-run-as-root)
COMPARE=(/usr/bin/python3 "$(dirname "$0")/compare_runs.py")
SAME_LESS=(/usr/bin/python3 "$(dirname "$0")/same_run_less_memory.py")
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import h5py, numpy" 2>/dev/null || { echo "skip: no h5py"; exit 77; }
HERE="$(cd "$(dirname "$0")" && pwd)"

"$STRATA" model gpt --layers 4 --hidden 32 --heads 4 --seq 16 --vocab 64 --seed 5 --dtype f64 -o m64.h5 > /dev/null
"$STRATA" model gpt --layers 4 --hidden 32 --heads 4 --seq 16 --vocab 64 --seed 5 -o m32.h5 > /dev/null
# The same model with the reference attention (scores matmul, causal softmax, matmul).
"$STRATA" model gpt --layers 4 --hidden 32 --heads 4 --seq 16 --vocab 64 --seed 5 --dtype f64 \
  --attention unfused -o m64u.h5 > /dev/null
"$STRATA" data synthetic --vocab 64 --seq 16 --count 96 --seed 7 -o data.h5 > /dev/null
cat > base.yaml <<YAML
model: {path: m64.h5}
data: {path: data.h5}
train: {steps: 3, global_batch: 24, micro_batches: 2, dtype: f64, clip_grad_norm: 0.5, shuffle: false,
        optimizer: {kind: adamw, lr: 1.0e-2, weight_decay: 0.01, schedule: cosine, warmup_steps: 1}}
plan: {method: data-parallel}
output: {dir: ref, save_model: true}
YAML

expect_exit 0 "done" -- "${MPIRUN[@]}" -np 1 "$STRATA" train base.yaml
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 1 "$STRATA" train base.yaml --set model.path=m32.h5 \
  --set train.dtype=f32 --set output.dump_gradients_step=1 --set output.dir=ref32 \
  --set train.steps=1

# run NAME RANKS [--set ...]: f64 run compared with the reference, bytes against the plan.
run() {
  local name="$1" ranks="$2"
  shift 2
  expect_exit 0 "done" -- "${MPIRUN[@]}" -np "$ranks" "$STRATA" train base.yaml --set output.dir="$name" "$@"
  check "$name: losses and parameters equal the one-rank run" -- "${COMPARE[@]}" ref "$name" 1e-10
  check "$name: counted bytes equal the plan's" -- bytes_match "$name"
}
run dp2 2
run dp3 3
run dp6 6
run zero2 4 --set plan.method=zero2
run zero3 4 --set plan.method=zero3
run tp2 2 --set plan.method=megatron --set plan.tp=2
run tp4 4 --set plan.method=megatron --set plan.tp=4
run pp2_1f1b 2 --set plan.method=megatron --set plan.pp=2
run pp4_gpipe 4 --set plan.method=megatron --set plan.pp=4 --set plan.schedule=gpipe
run dp2tp2pp2 8 --set plan.method=megatron --set plan.dp=2 --set plan.tp=2 --set plan.pp=2
run auto4 4 --set plan.method=auto
run intra_only4 4 --set plan.method=intra-only
run inter_only3 3 --set plan.method=inter-only
run megatron_best4 4 --set plan.method=megatron-best
# Recomputation layer by layer on every stage, tensor parallel under 1F1B and under GPipe.
run pp2tp2_recompute 4 --set plan.method=megatron --set plan.pp=2 --set plan.tp=2 \
  --set plan.recompute=always
run pp2_gpipe_recompute 2 --set plan.method=megatron --set plan.pp=2 --set plan.schedule=gpipe \
  --set plan.recompute=always
# The unfused reference graph, head-parallel, trains as the fused one-rank run.
run tp2_unfused 2 --set model.path=m64u.h5 --set plan.method=megatron --set plan.tp=2
# Manual: uneven stages (2 and 4 layers; 0 embedding, 1-4 blocks, 5 head), a different logical
# mesh per stage (data parallel 2x1, then 1x2), recomputation on the second: every boundary
# tensor crosses between differing layouts.
cat > manual.yaml <<YAML
plan:
  method: manual
  stages:
    - {layers: [0, 2], submesh: [1, 2], logical_mesh: [2, 1]}
    - {layers: [2, 6], submesh: [1, 2], logical_mesh: [1, 2], recompute: true}
YAML
cat base.yaml | sed '/^plan:/d' > manual_run.yaml
cat manual.yaml >> manual_run.yaml
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 4 "$STRATA" train manual_run.yaml --set output.dir=manual
check "manual: losses and parameters equal the one-rank run" -- "${COMPARE[@]}" ref manual 1e-10
check "manual: counted bytes equal the plan's" -- bytes_match manual
# Transient tensors share an arena (app/dist_trainer_buffers.cc; on the host it starts as NaN
# bytes, so a wrong lifetime shows above). With one buffer per tensor instead the same run
# gives bit-identical losses and parameters, and allocates more.
expect_exit 0 "done" -- env STRATA_BUFFER_REUSE=0 "${MPIRUN[@]}" -np 4 "$STRATA" train \
  manual_run.yaml --set output.dir=manual_unshared
check "manual: bit-identical with and without buffer sharing, and sharing allocates less" -- \
  "${SAME_LESS[@]}" manual manual_unshared
# Recomputation layer by layer (app/dist_trainer_recompute.cc): one stage on one rank, with and
# without; the same numbers, with less memory.
single_stage() {  # single_stage RECOMPUTE: a config with one manual stage over every layer
  sed '/^plan:/d' base.yaml
  echo "plan: {method: manual, stages: [{layers: [0, 6], submesh: [1, 1], logical_mesh: [1, 1], recompute: $1}]}"
}
single_stage true > recompute.yaml
single_stage false > stored.yaml
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 1 "$STRATA" train recompute.yaml --set output.dir=recompute
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 1 "$STRATA" train stored.yaml --set output.dir=stored
check "recompute: bit-identical to storing the activations, and allocates less" -- \
  "${SAME_LESS[@]}" recompute stored
check "recompute: losses and parameters equal the one-rank run" -- "${COMPARE[@]}" ref recompute 1e-10

# Sequence-parallel attention: one head and micro-batches of one row leave only the sequence to
# split, and at S = 512 the intra-op pass does (the attention splits its queries: row offsets in
# the causal mask, dk / dv partial sums all-reduced). Against the one-rank run of that model.
"$STRATA" model gpt --layers 1 --hidden 64 --heads 1 --seq 512 --vocab 64 --seed 5 --dtype f64 \
  -o mseq.h5 > /dev/null
"$STRATA" data synthetic --vocab 64 --seq 512 --count 8 --seed 7 -o dseq.h5 > /dev/null
SEQ=(--set model.path=mseq.h5 --set data.path=dseq.h5 --set train.global_batch=2
     --set train.micro_batches=2)
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 1 "$STRATA" train base.yaml "${SEQ[@]}" \
  --set output.dir=seq_ref
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 2 "$STRATA" train base.yaml "${SEQ[@]}" \
  --set output.dir=seq2 --set plan.method=intra-only
check "seq2: the attention's queries are split over the ranks" -- /usr/bin/python3 -c "
import json, sys
ops = [o for s in json.load(open('seq2/plan.json'))['stages'] for o in s['ops']]
att = [o['strategy'] for o in ops if o['op'] == 'h.0.attn.attention']
sys.exit(0 if att == ['R,R,S1,R x R,R,R,R x R,R,R,R -> R,R,S1,R'] else 'attention: %s' % att)"
check "seq2: losses and parameters equal the one-rank run" -- "${COMPARE[@]}" seq_ref seq2 1e-10
check "seq2: counted bytes equal the plan's" -- bytes_match seq2

# f32: the first step's loss and gradients (rtol 1e-5).
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 4 "$STRATA" train base.yaml --set model.path=m32.h5 \
  --set train.dtype=f32 --set output.dump_gradients_step=1 --set output.dir=f32_megatron \
  --set plan.method=megatron --set plan.dp=2 --set plan.tp=2 --set train.steps=1
check "f32 dp2 x tp2: first-step loss and gradients equal the one-rank run" -- \
  "${COMPARE[@]}" ref32 f32_megatron 1e-5 --grads 1
expect_exit 0 "done" -- "${MPIRUN[@]}" -np 4 "$STRATA" train base.yaml --set model.path=m32.h5 \
  --set train.dtype=f32 --set output.dump_gradients_step=1 --set output.dir=f32_pipeline \
  --set plan.method=megatron --set plan.pp=2 --set plan.tp=2 --set train.steps=1
check "f32 pp2 x tp2: first-step loss and gradients equal the one-rank run" -- \
  "${COMPARE[@]}" ref32 f32_pipeline 1e-5 --grads 1
finish
