# Finds every dependency from Debian packages (scripts/install-deps.sh installs them) and patches
# the known packaging problems (TOOLCHAIN.md sections 2 and 6).
find_package(MPI REQUIRED COMPONENTS C CXX)
find_package(HDF5 REQUIRED COMPONENTS C)   # serial HDF5: rank 0 writes, every rank may read
find_package(LPSolve REQUIRED)             # cmake/FindLPSolve.cmake
find_package(PkgConfig REQUIRED)
pkg_check_modules(CBC REQUIRED IMPORTED_TARGET cbc)   # coinor-libcbc-dev (C API)
find_package(Kokkos 3.4 REQUIRED)          # Trilinos 13.2's Kokkos, Serial backend only
find_package(yaml-cpp REQUIRED)            # target `yaml-cpp` (0.7 has no namespace)
find_package(nlohmann_json 3 REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_path(CBLAS_INCLUDE_DIR cblas.h PATHS /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas NO_DEFAULT_PATH)
if(NOT CBLAS_INCLUDE_DIR)
  find_path(CBLAS_INCLUDE_DIR cblas.h REQUIRED)
endif()
if(STRATA_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED)
  include(Catch)
endif()

# Kokkos::kokkos points its include dir at the non-existent /usr/lib/include; the headers are in
# /usr/include/trilinos (= Kokkos_INCLUDE_DIRS).
get_filename_component(_strata_kokkos_inc "${Kokkos_INCLUDE_DIRS}" REALPATH)
set_target_properties(Kokkos::kokkos PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_strata_kokkos_inc}")
