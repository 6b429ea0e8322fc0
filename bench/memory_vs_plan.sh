#!/usr/bin/env bash
# memory_vs_plan.sh: the memory the planner predicts per device against what the runtime
# allocates (the largest rank of each stage), for several plans of one model, with transient
# tensors sharing an arena (the default) and with one buffer per tensor (STRATA_BUFFER_REUSE=0).
# Allocation is counted by the executor (every backend buffer, scratch included), so the figures
# are exact and do not depend on load; one run per plan.
# Model GPT layers 4, hidden 256, heads 4, seq 256, vocab 1024; global batch 8 in 2 micro-batches,
# f32, AdamW, 2 steps.
# Run: bench/memory_vs_plan.sh   (after building strata in build/; env STRATA_BUILD_DIR)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
strata=${STRATA_BUILD_DIR:-$repo/build}/strata
[[ -x $strata ]] || { echo "memory_vs_plan: $strata not found; build it first" >&2; exit 2; }
work=$(mktemp -d /tmp/strata_memory_vs_plan.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_mpi_yield_when_idle=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

echo "# planned vs allocated memory per device"
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: $(uname -m), $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "commit:  $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "command: $0"
"$strata" model gpt --layers 4 --hidden 256 --heads 4 --seq 256 --vocab 1024 --seed 1 \
  -o model.h5 > /dev/null
"$strata" data synthetic --vocab 1024 --seq 256 --count 32 --seed 2 -o data.h5 > /dev/null
cat > run.yaml << 'YAML'
model: {path: model.h5}
data: {path: data.h5}
train: {steps: 2, global_batch: 8, micro_batches: 2, log_every: 1,
        optimizer: {kind: adamw, lr: 1.0e-3}}
plan: {method: data-parallel}
YAML
{ sed '/^plan:/d' run.yaml; cat << 'YAML'; } > manual.yaml
plan:
  method: manual
  stages:
    - {layers: [0, 3], submesh: [1, 2], logical_mesh: [1, 2]}
    - {layers: [3, 6], submesh: [1, 2], logical_mesh: [1, 2], recompute: true}
YAML

# memory NAME RANKS REUSE CONFIG [--set ...]: "stage S planned allocated" lines (GiB) from the
# run's predicted-vs-measured table.
memory() {
  local name=$1 ranks=$2 reuse=$3 config=$4
  shift 4
  STRATA_BUFFER_REUSE=$reuse mpirun -np "$ranks" "$strata" train "$config" \
    --set output.dir="out_${name}_$reuse" "$@" 2>&1 |
    sed -n 's/.*stage \([0-9]*\) memory *\([0-9.]*\) GiB *\([0-9.]*\) GiB (allocated).*/\1 \2 \3/p'
}
printf '\n| plan | ranks | stage | planned (MiB) | allocated, shared arena (MiB) | allocated, one buffer per tensor (MiB) | shared / planned | unshared / planned |\n'
printf '|---|---|---|---|---|---|---|---|\n'
run_plan() {  # run_plan NAME RANKS CONFIG [--set ...]
  local name=$1 ranks=$2 config=$3
  shift 3
  local shared unshared
  shared=$(memory "$name" "$ranks" 1 "$config" "$@")
  unshared=$(memory "$name" "$ranks" 0 "$config" "$@")
  paste -d' ' <(echo "$shared") <(echo "$unshared") |
    awk -v name="$name" -v ranks="$ranks" '{
      mib = 1024; printf "| %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", name, ranks, $1,
        $2 * mib, $3 * mib, $6 * mib, $3 / $2, $6 / $2 }'
}
run_plan data-parallel 1 run.yaml
run_plan megatron-tp2 2 run.yaml --set plan.method=megatron --set plan.tp=2
run_plan megatron-pp2 2 run.yaml --set plan.method=megatron --set plan.pp=2
run_plan pp2-tp2-recompute 4 manual.yaml
