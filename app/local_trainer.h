// LocalTrainer: one optimizer step of a training graph on one device, with gradient accumulation
// over micro-batches. The loss seed of each micro-batch is 1/M, so the accumulated gradient is
// the gradient of the mean loss over the global batch, as one big batch would give it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "app/executor.h"
#include "solver/ir/autodiff.h"

namespace strata::app {

struct StepResult {
  double loss = 0.0;       // mean over micro-batches (= over the global batch's tokens)
  double grad_norm = 0.0;  // global gradient norm before clipping
};

class LocalTrainer {
 public:
  // `training` is built for the micro-batch size; global batch = micro_batches x that size.
  LocalTrainer(solver::TrainingGraph training, kernels::Backend& backend,
               std::int64_t micro_batches);

  std::int64_t micro_batch_size() const;
  std::int64_t seq_len() const;
  const solver::Graph& graph() const { return training_.graph; }
  Executor& executor() { return *executor_; }

  // Sets every parameter (by name; all must be present, shapes as in the graph).
  void set_parameters(const std::map<std::string, std::vector<double>>& values);
  std::map<std::string, std::vector<double>> parameters() const;
  // Gradients (before clipping) of the last step; by parameter name.
  std::map<std::string, std::vector<double>> gradients() const;

  // `rows`: global_batch rows of seq_len+1 tokens (inputs row[:S], targets row[1:]).
  // update=false runs forward and backward only (gradient checks, gradient dumps).
  StepResult step(const std::vector<std::int32_t>& rows, const StepContext& ctx,
                  bool update = true);
  // Mean loss of `rows` (a multiple of the micro-batch size) by forward passes only.
  double evaluate(const std::vector<std::int32_t>& rows);

 private:
  void load_micro_batch(const std::vector<std::int32_t>& rows, std::int64_t first_row);
  double read_scalar(solver::TensorId id) const;

  solver::TrainingGraph training_;
  std::int64_t micro_batches_;
  std::unique_ptr<Executor> executor_;
  solver::TensorId tokens_ = solver::kNoTensor, targets_ = solver::kNoTensor;
  solver::OpId forward_end_ = 0, backward_end_ = 0;
  std::vector<std::int32_t> inputs_, targets_host_;  // staging for one micro-batch
};

}  // namespace strata::app
