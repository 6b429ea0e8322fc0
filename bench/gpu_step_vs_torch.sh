#!/usr/bin/env bash
# gpu_step_vs_torch.sh: Strata's training step on one GPU against PyTorch eager on the same GPU
# (issue 6's benchmark): GPT layers 24, hidden 1024, heads 16, seq 1024, vocab 51200, AdamW, as
# tokens/s and MFU (model FLOPs per second over the bf16 GEMM rate torch/cuBLAS reaches in the same
# run, and over the cluster spec's bf16 peak), with Strata's per-op-kind profile.
# Run: bench/gpu_step_vs_torch.sh          (after scripts/build.sh cuda; scripts/gpu-check.sh runs it)
#   env: STRATA_BUILD_DIR (default <repo>/build-cuda), BATCHES (batch sizes to try, largest first,
#   default "8 4 2 1": the first that Strata trains without running out of memory is used for
#   both), STEPS (Strata steps, default 8; the median is over steps 3..), TORCH_WARMUP (3) /
#   TORCH_STEPS (8), STRATA_DTYPE (bf16: Strata's train.dtype, f32 master weights and state),
#   PRESET (dgx-h100: the cluster spec the plan and the peak come from), STRATA_ATTENTION (fused
#   | unfused, default fused: the model file's attention form), KEEP_WORK=1 keeps the temp dir.
#   A dry run of the plumbing on a CPU: BACKEND=host DEVICE=cpu PRESET=local-cpu STRATA_DTYPE=f32
#   LAYERS=2 HIDDEN=64 HEADS=4 SEQ=32 VOCAB=128 BATCHES=4.
# PyTorch runs twice with its best eager setup (torch_gpt_step.py --fast: flash attention where
# torch has it, fused AdamW): f32 (Strata's arithmetic) and bf16 autocast (what its users run).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STRATA_BUILD_DIR:-$repo/build-cuda}
strata=$build/strata
py=${PYTHON:-/usr/bin/python3}
layers=${LAYERS:-24} hidden=${HIDDEN:-1024} heads=${HEADS:-16} seq=${SEQ:-1024}
vocab=${VOCAB:-51200}
batches=${BATCHES:-8 4 2 1}
steps=${STEPS:-8}
torch_warmup=${TORCH_WARMUP:-3}
torch_steps=${TORCH_STEPS:-8}
dtype=${STRATA_DTYPE:-bf16}
backend=${BACKEND:-cuda}
device=${DEVICE:-cuda}
preset=${PRESET:-dgx-h100}
attention=${STRATA_ATTENTION:-fused}
lr=3.0e-4 weight_decay=0.1 clip=1.0

fail() { echo "gpu_step_vs_torch: $*" >&2; exit 2; }
[[ -x $strata ]] || fail "$strata not found; build it: scripts/build.sh cuda"
(( steps >= 3 )) || fail "STEPS=$steps, need >= 3 (the median is over steps 3..)"
spec=$repo/configs/clusters/$preset.yaml
[[ -f $spec ]] || fail "no cluster spec $spec"
# The bf16 peak FLOP/s per device from the spec's peak_flops map (or PEAK_BF16).
peak=${PEAK_BF16:-$(sed -n 's/.*peak_flops:.*bf16: *\([0-9.e+]*\).*/\1/p' "$spec" | head -1)}
[[ -n $peak ]] || fail "$spec has no bf16 peak_flops (set PEAK_BF16)"

work=$(mktemp -d /tmp/strata_gpu_step.XXXXXX)
if [[ ${KEEP_WORK:-0} != 1 ]]; then trap 'rm -rf "$work"' EXIT; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

run_logged() {  # run_logged LOG CMD...: run quietly, show the log's end on failure
  local log=$1; shift
  if ! "$@" > "$log" 2>&1; then
    echo "gpu_step_vs_torch: failed: $*" >&2
    tail -n 30 "$log" >&2
    return 1
  fi
}

echo "# Strata vs PyTorch training step on one GPU"
echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine:  $(hostname); $(nvidia-smi --query-gpu=name,driver_version,memory.total \
  --format=csv,noheader 2> /dev/null | head -1 || echo 'no nvidia-smi')"
echo "command:  $0  (STRATA_BUILD_DIR=$build BACKEND=$backend DEVICE=$device STRATA_DTYPE=$dtype" \
  "PRESET=$preset STRATA_ATTENTION=$attention STEPS=$steps TORCH_WARMUP=$torch_warmup" \
  "TORCH_STEPS=$torch_steps)"

# ---- model and data (rows enough for every program's steps at the largest batch)
max_batch=$(echo "$batches" | tr ' ' '\n' | sort -n | tail -1)
rows=$((max_batch * (steps > torch_warmup + torch_steps ? steps : torch_warmup + torch_steps)))
run_logged "$work/model.log" "$strata" model gpt --layers "$layers" --hidden "$hidden" \
  --heads "$heads" --seq "$seq" --vocab "$vocab" --dtype f32 --seed 1 --attention "$attention" \
  -o "$work/model.h5" ||
  exit 1
run_logged "$work/data.log" "$strata" data synthetic --vocab "$vocab" --seq "$seq" --count "$rows" \
  --seed 2 -o "$work/data.h5" || exit 1

write_config() {  # write_config BATCH STEPS FILE
  cat > "$3" << EOF
model: {path: model.h5}
data: {path: data.h5}
cluster: {preset: $preset, hosts: 1, devices_per_host: 1, backend: $backend}
train:
  steps: $2
  global_batch: $1
  micro_batches: 1
  dtype: $dtype
  shuffle: false
  log_every: 1
  clip_grad_norm: $clip
  optimizer: {kind: adamw, lr: $lr, betas: [0.9, 0.999], eps: 1.0e-8, weight_decay: $weight_decay}
output: {dir: out, save_model: false}
EOF
}

# ---- Strata: the largest batch that fits
batch=""
for b in $batches; do
  write_config "$b" "$steps" "$work/bench.yaml"
  if run_logged "$work/strata.log" "$strata" train "$work/bench.yaml" --set output.dir="$work/strata"
  then
    batch=$b
    break
  fi
  grep -qi "out of memory\|bad_alloc" "$work/strata.log" || exit 1
  echo "batch $b does not fit; trying the next"
done
[[ -n $batch ]] || fail "no batch in '$batches' fits"
echo "batch:    $batch (the largest of '$batches' Strata trains)"

# ---- Strata's profile (slower: synchronised after every op), then PyTorch f32 and bf16
write_config "$batch" 3 "$work/profile.yaml"
STRATA_PROFILE=1 run_logged "$work/strata_profile.log" "$strata" train "$work/profile.yaml" \
  --set output.dir="$work/profile_out" || exit 1
for torch_dtype in f32 bf16; do
  run_logged "$work/torch_$torch_dtype.log" "$py" "$repo/bench/torch_gpt_step.py" \
    --model "$work/model.h5" --data "$work/data.h5" --heads "$heads" --batch "$batch" \
    --warmup "$torch_warmup" --steps "$torch_steps" --lr $lr --weight-decay $weight_decay \
    --clip $clip --device "$device" --dtype "$torch_dtype" --fast --threads "$(nproc)" || exit 1
done

echo
"$py" "$repo/bench/step_report.py" gpu "$work" "$layers" "$hidden" "$seq" "$vocab" "$batch" \
  "$peak" "$dtype"
