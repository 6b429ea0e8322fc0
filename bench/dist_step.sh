#!/usr/bin/env bash
# dist_step.sh: a small GPT trained on 1, 2 and 4 MPI ranks of this machine (host backend):
# measured step time against the plan's predicted iteration time, the share of the step spent in
# communication (resharding collectives with their packing, stage-to-stage transfers, waiting for
# them), and the bytes counted against the bytes predicted. Reports the cost model's error on this
# machine (configs/clusters/local-cpu.yaml; a later issue calibrates it).
# Run: bench/dist_step.sh   (after building strata in build/)
#   env: STRATA_BUILD_DIR (default <repo>/build), STEPS (default 12; means over steps 3..),
#   RANKS (default "1 2 4"), METHODS (default "data-parallel megatron auto"), KEEP_WORK=1.
# OPENBLAS_NUM_THREADS=1: one core per rank, as the cost model's local-cpu device assumes.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STRATA_BUILD_DIR:-$repo/build}
strata=$build/strata
steps=${STEPS:-12}
ranks_list=${RANKS:-"1 2 4"}
methods=${METHODS:-"data-parallel megatron auto"}
py=/usr/bin/python3
[[ -x $strata ]] || { echo "dist_step: $strata not found; build it first" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_mpi_yield_when_idle=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

work=$(mktemp -d /tmp/strata-dist-XXXXXX)
[[ ${KEEP_WORK:-0} == 1 ]] || trap 'rm -rf "$work"' EXIT
cd "$work"
"$strata" model gpt --layers 4 --hidden 256 --heads 8 --seq 128 --vocab 256 --seed 1 -o model.h5 > /dev/null
"$strata" data synthetic --vocab 256 --seq 128 --count 256 --seed 1 -o data.h5 > /dev/null
cat > run.yaml <<YAML
model: {path: model.h5}
data: {path: data.h5}
train: {steps: $steps, global_batch: 16, micro_batches: 2, dtype: f32, clip_grad_norm: 1.0}
output: {dir: out}
YAML

echo "GPT L4 H256 A8 S128 V256, global batch 16 = 2 micro-batches, f32, AdamW; $(nproc --all) cores, load $(cut -d" " -f1 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "| ranks | method | plan | measured s/step | predicted s/step | error | comm share | bytes counted = predicted |"
echo "|---|---|---|---|---|---|---|---|"
for n in $ranks_list; do
  for m in $methods; do
    [[ $n == 1 && $m != data-parallel ]] && continue
    extra=()
    [[ $m == megatron ]] && extra=(--set plan.tp="$n")
    if ! mpirun -np "$n" "$strata" train run.yaml --set plan.method="$m" "${extra[@]}" \
        --set output.dir="out_${n}_$m" > "log_${n}_$m.txt" 2>&1; then
      echo "| $n | $m | failed: $(grep -m1 error "log_${n}_$m.txt") | | | | | |"
      continue
    fi
    "$py" - "out_${n}_$m" "$n" "$m" << 'PY'
import json, sys
d, n, m = sys.argv[1:4]
plan = json.load(open(d + "/plan.json"))
rows = [json.loads(l) for l in open(d + "/metrics.jsonl") if '"loss"' in l][2:]
t = sum(r["step_time_s"] for r in rows) / len(rows)
share = sum(r["comm_share"] for r in rows) / len(rows)
pred = plan["predicted"]["iteration_s"]
bp = plan["predicted"]["bytes_per_step"]
same = all(abs(r["bytes"][k] - v) <= 1e-12 * max(v, 1) for r in rows for k, v in bp.items())
summary = " + ".join(f'{s["summary"] or "-"} on {s["logical_mesh"][0]}x{s["logical_mesh"][1]}'
                     for s in plan["stages"])
print(f"| {n} | {m} | {summary} | {t:.4f} | {pred:.4f} | {100 * (pred - t) / t:+.0f} % | "
      f"{100 * share:.0f} % | {'yes' if same else 'NO'} |")
PY
  done
done
