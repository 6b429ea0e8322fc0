#!/usr/bin/env bash
# One command on a GPU machine: builds the cuda preset when its test binaries are missing
# (scripts/build.sh cuda), runs test_kernels_cuda (every CudaBackend call against the host
# backend) and every ctest test labelled `cuda` (among them test_comm_cuda: NCCL collectives
# against MPI's, which needs 2 GPUs; test_train_cuda: `strata train` on 1, 2 and 4 ranks on the
# GPU against the one-rank cuda run and the host run), and writes a short report (GPU, date,
# commit, pass/fail counts) to gpu-check-report.txt in the repository root. When the tests pass
# on a GPU it then runs the GPU benchmark (bench/gpu_step_vs_torch.sh: Strata's step against
# PyTorch eager, tokens/s, MFU and Strata's per-op profile; GPU_CHECK_BENCH=0 skips it) and
# appends its table to the report.
# Exit status: 0 all passed on a GPU; 1 a test (or the benchmark) failed; 2 no GPU visible
# (nothing was verified).
# Usage: scripts/gpu-check.sh [build-dir]   (default: build-cuda, the cuda preset's directory)
set -uo pipefail
source "$(dirname "$0")/common.sh"
cd "$STRATA_ROOT"
build="${1:-build-cuda}"
report="$STRATA_ROOT/gpu-check-report.txt"
log_dir="$build/gpu-check"

# ---------------------------------------------------------------- build if needed
if [ ! -x "$build/tests/test_kernels_cuda" ] || [ ! -x "$build/tests/test_comm_cuda" ] ||
  [ ! -x "$build/strata" ]; then
  echo "== building the cuda preset into $build"
  if [ "$build" = "build-cuda" ]; then
    scripts/build.sh cuda || { echo "FAIL: cuda build"; exit 1; }
  else
    (cmake --preset cuda -B "$build" > /dev/null &&
      cmake --build "$build" -j "$STRATA_JOBS" --target strata test_kernels_cuda test_comm_cuda) ||
      { echo "FAIL: cuda build"; exit 1; }
  fi
fi
mkdir -p "$log_dir"

gpu="none visible"
gpu_count=0
if command -v nvidia-smi > /dev/null && nvidia-smi -L > /dev/null 2>&1; then
  gpu="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader |
    paste -sd ';' -)"
  gpu_count="$(nvidia-smi -L | grep -c '^GPU')"
fi

# ---------------------------------------------------------------- test_kernels_cuda
echo "== test_kernels_cuda"
xml="$log_dir/test_kernels_cuda.xml"
# STRATA_SYNC_CHECK=1: a fault inside a kernel is reported at its own launch, naming it. ctest
# below runs the same cases without it (asynchronous, as in training) and prints any failure.
STRATA_SYNC_CHECK=1 "$build/tests/test_kernels_cuda" --reporter xml --out "$xml" --use-colour no
kernels_rc=$?
# Catch2 2 XML: the last OverallResults / OverallResultsCases elements are the totals.
attr() { grep -o "<$1 [^>]*" "$xml" 2> /dev/null | tail -1 | grep -o "$2=\"[0-9]*\"" |
  grep -o '[0-9]*'; }
cases_ok="$(attr OverallResultsCases successes)"
cases_bad="$(attr OverallResultsCases failures)"
asserts_ok="$(attr OverallResults successes)"
asserts_bad="$(attr OverallResults failures)"
skipped="$(grep -c 'CudaBackend test skipped' "$xml" 2> /dev/null || true)"
if [ "$kernels_rc" -ne 0 ]; then
  echo "test_kernels_cuda failed (exit $kernels_rc); details: $xml and the ctest output below"
fi

# ---------------------------------------------------------------- ctest -L cuda
echo "== ctest -L cuda"
(cd "$build" && ctest -L cuda --output-on-failure --timeout 900) 2>&1 | tee "$log_dir/ctest.txt"
ctest_rc=${PIPESTATUS[0]}
ctest_line="$(grep -E 'tests passed, [0-9]+ tests failed out of' "$log_dir/ctest.txt" | tail -1)"
# Tests that exit 77 (test_train_cuda without a GPU) show as skipped, not failed.
ctest_skipped="$(grep -c '\*\*\*Skipped' "$log_dir/ctest.txt" 2> /dev/null || true)"

# ---------------------------------------------------------------- report
status=PASS
exit_code=0
if [ "$kernels_rc" -ne 0 ] || [ "$ctest_rc" -ne 0 ]; then
  status=FAIL
  exit_code=1
elif [ "${skipped:-0}" -gt 0 ] || [ "${ctest_skipped:-0}" -gt 0 ] ||
  [ "$gpu" = "none visible" ]; then
  status="NOT VERIFIED (no GPU visible: the CUDA tests skipped themselves)"
  exit_code=2
fi
commit="$(git rev-parse --short HEAD 2> /dev/null || echo unknown)"
if [ -n "$(git status --porcelain 2> /dev/null)" ]; then commit="$commit (with local changes)"; fi
{
  echo "Strata GPU check"
  echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  echo "host:    $(hostname)"
  echo "gpu:     $gpu"
  echo "commit:  $commit"
  echo "build:   $build"
  echo "test_kernels_cuda: test cases ${cases_ok:-?} passed, ${cases_bad:-?} failed;" \
    "assertions ${asserts_ok:-?} passed, ${asserts_bad:-?} failed; skipped for lack of a GPU:" \
    "${skipped:-0} (exit $kernels_rc)"
  echo "ctest -L cuda:     ${ctest_line:-no summary}; skipped ${ctest_skipped:-0} (exit $ctest_rc)"
  if [ "$gpu_count" -lt 2 ]; then
    echo "note:    $gpu_count GPU(s): test_comm_cuda compared NCCL with MPI on one-member axes" \
      "only (the comparison needs 2 GPUs); multi-rank training ran pipelines only"
  fi
  echo "result:  $status"
} > "$report"

# ---------------------------------------------------------------- benchmark
if [ "$exit_code" -eq 0 ] && [ "${GPU_CHECK_BENCH:-1}" != 0 ]; then
  echo "== bench/gpu_step_vs_torch.sh"
  if STRATA_BUILD_DIR="$build" bench/gpu_step_vs_torch.sh 2>&1 | tee "$log_dir/bench.txt"; then
    { echo; echo "benchmark (bench/gpu_step_vs_torch.sh):"; cat "$log_dir/bench.txt"; } >> "$report"
  else
    echo "benchmark: FAILED (log: $log_dir/bench.txt)" >> "$report"
    exit_code=1
  fi
fi
cat "$report"
exit "$exit_code"
