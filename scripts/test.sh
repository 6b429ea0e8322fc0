#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the Catch2 suites, command-line and
# PyTorch-oracle tests through ctest, the sbatch templates on a local one-host Slurm, the fuzz
# targets for a fixed number of runs, the layering and formatting checks, and a compile-and-link
# of the cuda preset when the toolkit is present.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$STRATA_ROOT"
start=$(date +%s)

echo "== layering: solver/ includes no MPI, CUDA, NCCL, Kokkos, HDF5 or YAML header"
if grep -rnE '#\s*include\s*[<"](mpi\.h|nccl\.h|cuda|cublas|Kokkos|hdf5|H5|yaml-cpp)' solver; then
  echo "FAIL: solver/ must stay free of these headers"; exit 1
fi
echo "== formatting (.clang-format)"
if command -v clang-format > /dev/null; then
  git ls-files '*.h' '*.cc' '*.cu' | xargs clang-format --dry-run --Werror
fi

echo "== build (cpu preset)"
scripts/build.sh cpu
echo "== ctest"
ctest --preset cpu -j "$STRATA_JOBS" --timeout 900

echo "== slurm: the sbatch templates on a local one-host Slurm (tests/slurm)"
slurm_rc=0
STRATA_BIN="$STRATA_ROOT/build/strata" tests/slurm/test_slurm.sh || slurm_rc=$?
if [ "$slurm_rc" -eq 77 ]; then
  echo "== slurm: SKIPPED (Slurm or munge not installed, or not root)"
elif [ "$slurm_rc" -ne 0 ]; then
  exit "$slurm_rc"
fi

echo "== fuzz targets (fixed runs, committed seed corpus)"
fuzz_rc=0
scripts/fuzz.sh || fuzz_rc=$?
if [ "$fuzz_rc" -eq 77 ]; then
  echo "== fuzz targets: SKIPPED (libFuzzer runtime not installed)"
elif [ "$fuzz_rc" -ne 0 ]; then
  exit "$fuzz_rc"
fi

if [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc > /dev/null; then
  echo "== cuda preset: compile and link (no GPU needed)"
  scripts/build.sh cuda --target strata
else
  echo "== cuda preset: SKIPPED (no CUDA toolkit on this machine)"
fi
echo "== all tests passed in $(( $(date +%s) - start )) s"
