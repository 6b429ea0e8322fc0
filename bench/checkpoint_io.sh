#!/usr/bin/env bash
# checkpoint_io.sh: checkpoint write and read speed for a large GPT against the disk's sequential
# write speed measured in the same run (dd with fdatasync), one MPI rank (rank 0 writes every
# checkpoint in the first version, docs/checkpoints.md).
# Run: bench/checkpoint_io.sh   (after building strata in build/)
#   env: STRATA_BUILD_DIR (default <repo>/build), LAYERS (24), HIDDEN (1024), HEADS (16),
#   VOCAB (50257), SEQ (128), RANKS (1), WORK (a folder on the disk to measure; default a temp dir
#   under /tmp), KEEP_WORK=1.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${STRATA_BUILD_DIR:-$repo/build}
strata=$build/strata
layers=${LAYERS:-24} hidden=${HIDDEN:-1024} heads=${HEADS:-16} vocab=${VOCAB:-50257} seq=${SEQ:-128}
ranks=${RANKS:-1}
[[ -x $strata ]] || { echo "checkpoint_io: $strata not found; build it first" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_mpi_yield_when_idle=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

work=${WORK:-$(mktemp -d /tmp/strata-ckpt-XXXXXX)}
mkdir -p "$work"
[[ ${KEEP_WORK:-0} == 1 ]] || trap 'rm -rf "$work"' EXIT
cd "$work"
"$strata" model gpt --layers "$layers" --hidden "$hidden" --heads "$heads" --seq "$seq" \
  --vocab "$vocab" --seed 1 --no-weights -o model.h5 > /dev/null
"$strata" data synthetic --vocab "$vocab" --seq "$seq" --count 8 --seed 1 -o data.h5 > /dev/null
# local-cpu with this host's memory as the one rank's capacity (the preset assumes 4 GB per rank).
mem=$(awk '/MemTotal/ {print $2 * 1024}' /proc/meminfo)
sed "s/^  memory_bytes: .*/  memory_bytes: $mem/" "$repo/configs/clusters/local-cpu.yaml" > cluster.yaml
cat > run.yaml <<YAML
model: {path: model.h5}
data: {path: data.h5}
cluster: {preset: cluster.yaml}
train: {steps: 1, global_batch: 1, micro_batches: 1, dtype: f32}
plan: {method: data-parallel}
checkpoint: {dir: ck, keep: 1}
output: {dir: out}
YAML

mpirun -np "$ranks" "$strata" train run.yaml > write.log 2>&1 || { tail -5 write.log >&2; exit 1; }
write_s=$(grep -oP 'checkpoint .* written in \K[0-9.]+' write.log)
ckpt=$(realpath ck/ckpt_step*.h5)
bytes=$(stat -c %s "$ckpt")
# Resume from it (an explicit path, no checkpoint.dir: this run writes none).
mpirun -np "$ranks" "$strata" train run.yaml --set train.steps=2 --set output.dir=out2 \
  --set checkpoint.resume="$ckpt" --set checkpoint.dir='""' > read.log 2>&1 ||
  { tail -5 read.log >&2; exit 1; }
read_s=$(grep -oP 'loaded in \K[0-9.]+' read.log)
# The disk: the same number of bytes, sequential, flushed (as the checkpoint's fsync does).
dd_out=$(dd if=/dev/zero of=dd.bin bs=16M count=$(( bytes / 16777216 + 1 )) conv=fdatasync 2>&1 | tail -1)
dd_s=$(grep -oP ', \K[0-9.]+(?= s,)' <<< "$dd_out")
rm -f dd.bin
python3 - "$bytes" "$write_s" "$read_s" "$dd_s" "$layers" "$hidden" "$vocab" "$ranks" << 'PY'
import sys
b, w, r, d = (float(x) for x in sys.argv[1:5])
L, H, V, n = sys.argv[5:9]
gb = 1e9
print(f"GPT L{L} H{H} V{V}, {n} rank(s): checkpoint {b / gb:.2f} GB "
      f"(parameters + AdamW m, v in f32)")
print("| what | seconds | GB/s | vs disk |")
print("|---|---|---|---|")
print(f"| disk sequential write (dd, fdatasync) | {d:.2f} | {b / d / gb:.3f} | 1.00 |")
print(f"| checkpoint write (gather + HDF5 + fsync) | {w:.2f} | {b / w / gb:.3f} | {d / w:.2f} |")
print(f"| checkpoint read (resume, every tensor) | {r:.2f} | {b / r / gb:.3f} | {d / r:.2f} |")
PY
