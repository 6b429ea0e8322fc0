#!/usr/bin/env bash
# attention_forms.sh: the fused attention (strata model gpt --attention fused, the default) against
# the unfused reference graph on one CPU thread at a long sequence: step time and the memory the
# run reports (planned and allocated), same weights, same data, same losses expected.
# Model GPT layers 2, hidden 256, heads 4 (head dim 64), seq 1024, vocab 256; batch 2, f32, AdamW.
# Run: bench/attention_forms.sh   (after building strata in build/)
#   env: STRATA_BUILD_DIR (default <repo>/build), ROUNDS (2: the forms alternate, best median
#   kept), STEPS (6; the median is over steps 3..). OpenBLAS single-threaded, OPENBLAS_CORETYPE /
#   OPENBLAS_L2_SIZE unset for the runs (TOOLCHAIN.md section 8).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
strata=${STRATA_BUILD_DIR:-$repo/build}/strata
rounds=${ROUNDS:-2}
steps=${STEPS:-6}
[[ -x $strata ]] || { echo "attention_forms: $strata not found; build it first" >&2; exit 2; }
(( steps >= 3 )) || { echo "attention_forms: STEPS=$steps, need >= 3" >&2; exit 2; }
work=$(mktemp -d /tmp/strata_attention_forms.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
run_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
         OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)

echo "# fused vs unfused attention, one CPU thread"
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: $(uname -m), $(lscpu | sed -n 's/^Model name: *//p' | head -1), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: $0  (ROUNDS=$rounds STEPS=$steps)"
"$strata" data synthetic --vocab 256 --seq 1024 --count $((2 * steps)) --seed 2 -o data.h5 > /dev/null
for form in fused unfused; do
  "$strata" model gpt --layers 2 --hidden 256 --heads 4 --seq 1024 --vocab 256 --seed 1 \
    --attention $form -o "model_$form.h5" > /dev/null
done
cat > bench.yaml <<YAML
model: {path: model_fused.h5}
data: {path: data.h5}
train: {steps: $steps, global_batch: 2, micro_batches: 1, dtype: f32, shuffle: false, log_every: 1,
        optimizer: {kind: adamw, lr: 3.0e-4}}
output: {dir: out, save_model: false}
YAML
for ((r = 1; r <= rounds; ++r)); do
  for form in fused unfused; do
    "${run_env[@]}" "$strata" train bench.yaml --set model.path="model_$form.h5" \
      --set output.dir="out_${form}_$r" > "log_${form}_$r.txt" 2>&1 ||
      { tail -20 "log_${form}_$r.txt" >&2; exit 1; }
  done
done
/usr/bin/python3 - "$rounds" <<'PY'
import json, re, statistics, sys
rounds = int(sys.argv[1])
rows = {}
for form in ("fused", "unfused"):
    medians, losses, memory = [], None, None
    for r in range(1, rounds + 1):
        m = [json.loads(l) for l in open(f"out_{form}_{r}/metrics.jsonl") if '"step_time_s"' in l]
        medians.append(statistics.median(x["step_time_s"] for x in m if x["step"] >= 3))
        losses = (m[0]["loss"], m[-1]["loss"])
        for line in open(f"log_{form}_{r}.txt"):
            g = re.search(r"stage 0 memory\s+([\d.]+) GiB\s+([\d.]+) GiB", line)
            if g: memory = (float(g.group(1)), float(g.group(2)))
    rows[form] = (min(medians), medians, losses, memory)
print("\n| attention | median step (best of %d) | per round | losses | memory planned / allocated (GiB) |" % rounds)
print("|---|---|---|---|---|")
for form, (best, med, loss, mem) in rows.items():
    print(f"| {form} | {best:.4f} s | {' '.join(f'{t:.4f}' for t in med)} | {loss[0]:.5f} -> {loss[1]:.5f} | {mem[0]:.4f} / {mem[1]:.4f} |")
f, u = rows["fused"], rows["unfused"]
print(f"\nfused / unfused: step {f[0] / u[0]:.3f}, allocated memory {f[3][1] / u[3][1]:.3f}; "
      f"same losses: {'yes' if f[2] == u[2] else 'NO'}")
PY
