// Gradient accumulation: micro-batch m's backward writes fresh gradients; for M > 1 they are
// summed into shadow buffers in backend memory (Executor::stash), restored before the optimizer.
#include "app/local_trainer.h"

#include <cmath>
#include <stdexcept>

namespace strata::app {

using solver::OpPhase;
using solver::TensorId;

LocalTrainer::LocalTrainer(solver::TrainingGraph training, kernels::Backend& backend,
                           std::int64_t micro_batches)
    : training_(std::move(training)), micro_batches_(micro_batches) {
  if (micro_batches_ < 1) throw std::invalid_argument("micro_batches must be >= 1");
  executor_ = std::make_unique<Executor>(training_.graph, backend);
  tokens_ = training_.graph.at("tokens");
  targets_ = training_.graph.at("targets");
  const auto& ops = training_.graph.ops;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].phase == OpPhase::kForward) forward_end_ = static_cast<solver::OpId>(i) + 1;
    if (ops[i].phase != OpPhase::kOptimizer) backward_end_ = static_cast<solver::OpId>(i) + 1;
  }
}

std::int64_t LocalTrainer::micro_batch_size() const {
  return training_.graph.tensor(tokens_).shape[0];
}
std::int64_t LocalTrainer::seq_len() const { return training_.graph.tensor(tokens_).shape[1]; }

void LocalTrainer::set_parameters(const std::map<std::string, std::vector<double>>& values) {
  for (TensorId id : training_.graph.tensors_with_role(solver::TensorRole::kParameter)) {
    const auto& name = training_.graph.tensor(id).name;
    auto it = values.find(name);
    if (it == values.end()) throw std::invalid_argument("no value for parameter " + name);
    executor_->write(id, it->second);
  }
}

std::map<std::string, std::vector<double>> LocalTrainer::parameters() const {
  std::map<std::string, std::vector<double>> out;
  for (TensorId id : training_.graph.tensors_with_role(solver::TensorRole::kParameter))
    out[training_.graph.tensor(id).name] = executor_->read(id);
  return out;
}

std::map<std::string, std::vector<double>> LocalTrainer::gradients() const {
  std::map<std::string, std::vector<double>> out;
  for (const auto& [param, grad] : training_.grad_of)
    out[training_.graph.tensor(param).name] = executor_->read(grad);
  return out;
}

void LocalTrainer::load_micro_batch(const std::vector<std::int32_t>& rows, std::int64_t first_row) {
  const std::int64_t b = micro_batch_size(), s = seq_len();
  inputs_.resize(static_cast<std::size_t>(b * s));
  targets_host_.resize(static_cast<std::size_t>(b * s));
  for (std::int64_t r = 0; r < b; ++r) {
    const std::int32_t* row = rows.data() + (first_row + r) * (s + 1);
    std::copy(row, row + s, inputs_.begin() + r * s);
    std::copy(row + 1, row + s + 1, targets_host_.begin() + r * s);
  }
  executor_->write_tokens(tokens_, inputs_.data(), b * s);
  executor_->write_tokens(targets_, targets_host_.data(), b * s);
}

double LocalTrainer::read_scalar(TensorId id) const { return executor_->read(id).at(0); }

StepResult LocalTrainer::step(const std::vector<std::int32_t>& rows, const StepContext& ctx,
                              bool update) {
  const std::int64_t b = micro_batch_size(), s = seq_len();
  if (static_cast<std::int64_t>(rows.size()) != micro_batches_ * b * (s + 1)) {
    throw std::invalid_argument("step: expected " + std::to_string(micro_batches_ * b) + " rows");
  }
  StepResult result;
  executor_->fill(training_.loss_grad, 1.0 / static_cast<double>(micro_batches_));
  for (std::int64_t m = 0; m < micro_batches_; ++m) {
    load_micro_batch(rows, m * b);
    executor_->run(0, backward_end_, ctx);
    result.loss += read_scalar(training_.loss) / static_cast<double>(micro_batches_);
    if (micro_batches_ == 1) continue;
    for (const auto& [param, grad] : training_.grad_of) executor_->stash(grad, m == 0);
  }
  if (micro_batches_ > 1) {
    for (const auto& [param, grad] : training_.grad_of) executor_->unstash(grad);
  }
  const solver::OpId end = static_cast<solver::OpId>(training_.graph.ops.size());
  if (update) {
    executor_->run(backward_end_, end, ctx);
    result.grad_norm = executor_->read(training_.norm_scale).at(0);
  } else {
    double sum = 0;
    for (const auto& [param, grad] : training_.grad_of)
      for (double g : executor_->read(grad)) sum += g * g;
    result.grad_norm = std::sqrt(sum);
  }
  return result;
}

double LocalTrainer::evaluate(const std::vector<std::int32_t>& rows) {
  const std::int64_t b = micro_batch_size(), s = seq_len();
  const std::int64_t n_rows = static_cast<std::int64_t>(rows.size()) / (s + 1);
  if (n_rows < b || n_rows % b != 0)
    throw std::invalid_argument("evaluate: rows not a multiple of the micro-batch");
  double total = 0;
  for (std::int64_t first = 0; first < n_rows; first += b) {
    load_micro_batch(rows, first);
    executor_->run(0, forward_end_, StepContext{});
    total += read_scalar(training_.loss);
  }
  return total / static_cast<double>(n_rows / b);
}

}  // namespace strata::app
