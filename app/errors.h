// Error kinds of the program (STYLE.md 13-15).
//   InputError: bad input found before training (config, model, data, cluster, rank count,
//               infeasible request). One line per problem; `strata` exits with code 2.
//   anything else thrown during a run: exit code 1 (MPI_Abort under several ranks).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace strata::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;
// Stopped by SIGTERM / SIGUSR1 after writing a checkpoint: the job can be requeued and resumes.
inline constexpr int kExitRequeue = 3;

class InputError : public std::runtime_error {
 public:
  // Each problem is one line naming the file, key and value, e.g.
  // "run.yaml:12: train.steps: -3 is out of range (must be >= 1)".
  explicit InputError(std::vector<std::string> problems);
  explicit InputError(const std::string& problem) : InputError(std::vector<std::string>{problem}) {}
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

}  // namespace strata::app
