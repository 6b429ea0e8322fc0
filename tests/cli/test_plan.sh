#!/usr/bin/env bash
# `strata plan`: no MPI, writes plan.json (DESIGN.md section 7 fields) and plan.svg, prints the
# table; restricted methods plan in well under a second; impossible requests exit 2 with one
# line. (The full auto search on 2-D meshes is minutes today: not run here.)
source "$(dirname "$0")/lib.sh"

"$STRATA" model gpt --layers 2 --hidden 64 --heads 4 --seq 32 --vocab 256 --no-weights -o model.h5 > /dev/null
cat > plan.yaml <<YAML
model: {path: model.h5}
cluster: {preset: local-cpu, hosts: 1, devices_per_host: 4}
train: {global_batch: 16, micro_batches: 4}
plan: {method: data-parallel}
output: {dir: out}
YAML

expect_exit 0 "dp4" -- "$STRATA" plan plan.yaml
check "plan.json and plan.svg written" -- test -s out/plan.json -a -s out/plan.svg
/usr/bin/python3 - << 'PY' || { echo "FAIL: plan.json contract"; FAILURES=$((FAILURES + 1)); }
import json
p = json.load(open("out/plan.json"))
for k in ["format", "version", "method", "cluster", "global_batch", "micro_batches", "schedule",
          "stages", "predicted", "search"]:
    assert k in p, k
assert p["format"] == "strata-plan" and p["method"] == "data-parallel"
s = p["stages"][0]
for k in ["layers", "devices", "logical_mesh", "recompute", "ops", "predicted"]:
    assert k in s, k
assert s["layers"] == [0, 4] and s["devices"] == [0, 1, 2, 3] and s["logical_mesh"] == [4, 1]
for k in ["iteration_s", "tflops_per_device", "memory_bytes_per_device", "bytes_per_step"]:
    assert k in p["predicted"], k
assert p["predicted"]["iteration_s"] > 0
PY

expect_exit 0 "manual" -- "$STRATA" plan plan.yaml --set plan.method=manual --out out_manual \
  --set 'plan.stages=[{layers: [0, 2], submesh: [1, 2], logical_mesh: [2, 1]}, {layers: [2, 4], submesh: [1, 2], logical_mesh: [1, 2]}]'
expect_exit 0 "tp2" -- "$STRATA" plan plan.yaml --set plan.method=megatron --set plan.dp=2 --set plan.tp=2 --out out_megatron

# The auto search (micro-batches fixed to keep CI short): a small GPT with a batch of 16 on 4
# devices is data parallel in one stage (the gradient all-reduce of ~0.8 M parameters is cheaper
# than any pipeline bubble or tensor-parallel activation traffic at this size).
expect_exit 0 "dp4" -- "$STRATA" plan plan.yaml --set plan.method=auto --set train.micro_batches=2 --out out_auto
# Progress while auto searches: one line per micro-batch count.
expect_exit 0 "auto: 2 micro-batches searched \(1/1\), best iteration so far [0-9.e-]+ s, [0-9]+ ILPs" -- \
  "$STRATA" plan plan.yaml --set plan.method=auto --set train.micro_batches=2 --out out_auto2
/usr/bin/python3 -c "
import json; p = json.load(open('out_auto/plan.json'))
assert len(p['stages']) == 1 and p['stages'][0]['summary'].startswith('dp4'), p['stages']
assert p['search']['ilps_solved'] > 0
" || { echo "FAIL: auto plan is not one data-parallel stage"; FAILURES=$((FAILURES + 1)); }

# Impossible requests: one line, exit 2, nothing written.
expect_exit 2 "does not equal" -- "$STRATA" plan plan.yaml --set plan.method=megatron --set plan.dp=3 --out out_bad
expect_exit 2 "no plan fits" -- "$STRATA" plan plan.yaml --set plan.method=manual --out out_bad \
  --set 'plan.stages=[{layers: [0, 4], submesh: [1, 2], logical_mesh: [2, 1]}]'
expect_exit 2 "bf16" -- "$STRATA" plan plan.yaml --set train.dtype=bf16 --out out_bad \
  --set cluster.preset=aws-p3.16xlarge  # V100 has no bf16
check "rejected plans write nothing" -- test ! -e out_bad
finish
