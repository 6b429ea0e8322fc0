#!/usr/bin/env bash
# Installs Strata's build, test and oracle dependencies from Debian packages.
# Idempotent: packages already present are skipped; apt runs only when something is missing.
# CUDA, cuBLAS and NCCL are not Debian packages here: they come from /usr/local/cuda when present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin libhdf5-dev hdf5-tools liblpsolve55-dev lp-solve coinor-libcbc-dev
  catch2 libtrilinos-kokkos-dev libyaml-cpp-dev libopenblas-dev libcli11-dev libfmt-dev nlohmann-json3-dev
  clang libclang-rt-14-dev clang-format
  # test oracles and benchmark reference (run with /usr/bin/python3); OpenBLAS runtime so that
  # PyTorch's generic BLAS is the fast one (TOOLCHAIN.md section 8)
  python3-torch python3-h5py python3-numpy libopenblas0-pthread
  # a one-host Slurm for the sbatch templates' test (tests/slurm; TOOLCHAIN.md section 7.1);
  # the packages start no daemons, scripts/slurm/local-slurm.sh does
  slurmctld slurmd slurm-client munge
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${#missing[@]} missing package(s): ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
