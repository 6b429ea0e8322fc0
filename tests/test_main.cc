// Catch2 runner for suites that need MPI and Kokkos: MPI_Init, Kokkos::ScopeGuard, then the
// session. Only rank 0 reports unless CATCH_MPI_ALL_RANKS=1; the exit code is the max over ranks,
// so a failure on any rank fails the test and no rank is left waiting (STYLE.md 37).
#define CATCH_CONFIG_RUNNER
#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>

#include <Kokkos_Core.hpp>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char* argv[]) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const char* all = std::getenv("CATCH_MPI_ALL_RANKS");
  if (rank != 0 && !(all && all[0] == '1')) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, STDOUT_FILENO);
    close(devnull);
  }
  int rc = 0;
  {
    Kokkos::ScopeGuard kokkos(argc, argv);
    Catch::Session session;
    rc = session.applyCommandLine(argc, argv);
    if (rc == 0) rc = session.run();
  }
  // Listing (test discovery) returns a count, not a failure.
  bool listing = false;
  for (int i = 1; i < argc; ++i) listing = listing || std::string(argv[i]).rfind("--list", 0) == 0;
  if (listing) rc = 0;
  int worst = 0;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);  // collective over world
  if (rank == 0 && worst != 0) std::fprintf(stderr, "MPI: some rank failed -> exit %d\n", worst);
  MPI_Finalize();
  return worst;
}
