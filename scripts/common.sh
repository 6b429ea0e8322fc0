# Shared by scripts/*.sh: repository root, MPI-as-root and thread settings for 2-core machines.
STRATA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# More ranks than cores: waiting ranks must yield the core, or a step takes 20x longer.
export OMPI_MCA_mpi_yield_when_idle=1
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
STRATA_JOBS="${STRATA_JOBS:-$(nproc)}"
