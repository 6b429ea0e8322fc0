#!/usr/bin/env bash
# The demo: installs what is missing, builds, makes a small GPT and a byte-level dataset from a
# real text (the GPL-3 licence text every Debian system ships), plans it for 4 MPI ranks (the
# plan table comes first), trains it on them with live progress and prints where the metrics and
# outputs are. Output folder: demo-out/ (override with STRATA_DEMO_DIR); STRATA_DEMO_RANKS=N
# trains on N ranks instead.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$STRATA_ROOT"
out="${STRATA_DEMO_DIR:-$STRATA_ROOT/demo-out}"

scripts/build.sh cpu --target strata
strata="$STRATA_ROOT/build/strata"
mkdir -p "$out"

train_text=/usr/share/common-licenses/GPL-3
val_text=/usr/share/common-licenses/Apache-2.0
if [ ! -f "$train_text" ] || [ ! -f "$val_text" ]; then   # not Debian: use our own docs
  train_text="$STRATA_ROOT/README.md"; val_text="$STRATA_ROOT/docs/config.md"
fi
echo "== dataset: bytes of $train_text (validation: $val_text)"
"$strata" data bytes --input "$train_text" --seq 64 -o "$out/train.h5"
"$strata" data bytes --input "$val_text" --seq 64 -o "$out/val.h5"
echo "== model: GPT-2, 2 layers, hidden 128, 4 heads, seq 64, byte vocabulary"
"$strata" model gpt --layers 2 --hidden 128 --heads 4 --seq 64 --vocab 256 --seed 1 -o "$out/model.h5"
"$strata" inspect "$out/model.h5"

cat > "$out/demo.yaml" <<YAML
# Written by scripts/demo.sh; every key is documented in docs/config.md.
model: {path: model.h5}
data: {path: train.h5, val_path: val.h5}
train:
  steps: 300
  global_batch: 16
  micro_batches: 2            # fixed, so the plan search takes seconds (auto: the planner picks)
  dtype: f32
  log_every: 25
  eval_every: 100
  clip_grad_norm: 1.0
  optimizer: {kind: adamw, lr: 3.0e-3, weight_decay: 0.01, schedule: cosine, warmup_steps: 20,
              min_lr: 3.0e-4}
plan: {method: auto}         # rank 0 searches the plan, prints its table, broadcasts it
output: {dir: run}
YAML
ranks="${STRATA_DEMO_RANKS:-4}"
echo "== training on $ranks MPI ranks (mpirun -np $ranks), auto plan"
mpirun --oversubscribe -np "$ranks" "$strata" train "$out/demo.yaml"
echo "== outputs in $out/run: metrics.jsonl (one JSON line per step), plan.json, model_final.h5, config.yaml"
