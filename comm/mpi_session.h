// MpiSession: RAII owner of MPI_Init/MPI_Finalize with MPI_ERRORS_RETURN on world (STYLE.md 17,
// 19), plus the check macro family for MPI calls. Declare it first in main() so every other
// handle dies before MPI_Finalize.
#pragma once

#include <mpi.h>

#include <stdexcept>
#include <string>

namespace strata::comm {

// Thrown by every failed library check; carries file, line, world rank and the call text.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
[[noreturn]] void throw_check_failure(const char* lib, const char* expr, const std::string& why,
                                      const char* file, int line);
std::string mpi_error_string(int code);
}  // namespace detail

// Evaluates `expr` once; throws comm::Error naming lib, expression, reason, file, line and rank.
#define STRATA_CHECK_GEN(expr, ok, lib, why_fn)                                                   \
  do {                                                                                            \
    const auto strata_check_rc_ = (expr);                                                         \
    if (strata_check_rc_ != (ok))                                                                 \
      ::strata::comm::detail::throw_check_failure(lib, #expr, why_fn(strata_check_rc_), __FILE__, \
                                                  __LINE__);                                      \
  } while (0)
#define STRATA_MPI_CHECK(expr) \
  STRATA_CHECK_GEN(expr, MPI_SUCCESS, "MPI", ::strata::comm::detail::mpi_error_string)

class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int world_rank() const { return rank_; }
  int world_size() const { return size_; }
  // Ends every rank of the job (MPI_Abort on world); used when one rank fails during a run.
  [[noreturn]] static void abort(int code);

 private:
  int rank_ = 0;
  int size_ = 1;
};

// World rank of this process, or 0 before MPI_Init / after MPI_Finalize.
int world_rank_or_zero();
int world_size_or_one();

}  // namespace strata::comm
