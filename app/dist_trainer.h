// DistTrainer: one rank's part of a distributed training step (DESIGN.md sections 1 and 6). It
// runs its stage's program (solver/plan/stage_program.h) on its local graph (local_program.h):
// the pipeline schedule's actions (solver/plan/schedule.h) over micro-batches; before each op
// the inputs are resharded by THE resharding function (once per (tensor, layout) per bucket
// execution; a kept parameter once per step under zero2); after each op the tensors leaving the
// stage are reduced (when partial) and sent as cross-mesh pieces; accumulated gradients are summed
// locally and their collectives run once, in the iteration bucket. Loss and gradient norm are
// agreed over world (control messages, not counted). With one rank and one stage it computes
// exactly what LocalTrainer computes.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "app/executor.h"
#include "app/local_program.h"
#include "app/local_trainer.h"
#include "app/reshard_runner.h"
#include "comm/collectives.h"
#include "comm/mesh.h"
#include "comm/point_to_point.h"
#include "solver/plan/plan.h"
#include "solver/plan/schedule.h"
#include "solver/plan/stage_program.h"

namespace strata::app {

class DistTrainer {
 public:
  // `training` is built for the plan's micro-batch size; `mesh` from comm::build_mesh over the
  // plan's stages (this rank must be in one). Every object must outlive the trainer.
  // `master_dtype`: mixed precision (Executor::set_master_dtype), when set.
  DistTrainer(solver::TrainingGraph training, const solver::Plan& plan, const comm::Mesh& mesh,
              comm::Collectives& collectives, comm::PointToPoint& p2p, comm::PointToPoint& control,
              kernels::Backend& backend, MPI_Comm world,
              std::optional<solver::DType> master_dtype = std::nullopt);
  ~DistTrainer();

  std::int64_t micro_batch_size() const;
  std::int64_t seq_len() const;
  const solver::Graph& graph() const { return training_.graph; }
  const solver::ProgramSet& programs() const { return programs_; }

  // Loads this rank's shard of every parameter its stage owns: block_of(param, block) returns
  // the values of `block` (graph coordinates) of that parameter (ParamBlockReader: an HDF5
  // hyperslab of the model file).
  using BlockSource = std::function<std::vector<double>(
      const solver::Tensor& param, const std::vector<solver::DimSlice>& block)>;
  void set_parameters(const BlockSource& block_of);
  // Full values on world rank 0 (an empty map elsewhere). Collective over world.
  std::map<std::string, std::vector<double>> gather_parameters();
  // The last step's accumulated gradients (before clipping), full, on rank 0. Collective.
  std::map<std::string, std::vector<double>> gather_gradients();

  // Checkpoints (app/checkpoint.h): every parameter and its optimizer state, full and one
  // tensor at a time, as datasets "params/<name>", "optimizer/<name>/{m,v | buf}". The sink
  // runs on world rank 0 only (values in the parameter's graph shape); collective over world.
  using TensorSink = std::function<void(const std::string& dataset, const solver::Tensor& param,
                                        std::vector<double> values)>;
  void for_each_state_tensor(const TensorSink& sink);
  // Sets this rank's shards of every parameter and optimizer state its stage owns from
  // `source` (full values in the parameter's graph shape, by dataset name).
  using TensorSource =
      std::function<std::vector<double>(const std::string& dataset, const solver::Tensor& param)>;
  void load_state(const TensorSource& source);

  // One optimizer step on `rows` (global_batch rows of seq_len + 1 tokens; every rank passes
  // the same rows). Loss and grad_norm are returned on every rank.
  StepResult step(const std::vector<std::int32_t>& rows, const StepContext& ctx);
  // Mean loss of `rows` (a multiple of the micro-batch size) by forward passes; every rank.
  double evaluate(const std::vector<std::int32_t>& rows);

  // This rank's counters since the last step began (collectives + p2p).
  comm::ByteCounters step_counters() const;
  // Seconds of the last step this rank spent resharding (collectives and their packing),
  // in the cross-entropy's statistics all-reduces and in stage-to-stage transfers.
  double step_comm_s() const { return comm_s_; }
  std::int64_t allocated_bytes() const { return executor_->allocated_bytes(); }
  const MemoryBreakdown& allocated() const { return executor_->allocated(); }
  Executor& executor() { return *executor_; }

 private:
  enum class Source : std::uint8_t { kProduced, kOwned, kReceived, kLoaded, kState };
  struct Execution {  // one bucket execution: what it has resharded and received
    std::set<std::pair<solver::TensorId, solver::Layout>> resharded, received;
    std::set<solver::TensorId> exited;  // tensors reduced for leaving the stage
    bool recompute = false;  // a forward re-run inside a backward action: no sends, no receives
    solver::TransferTime time = solver::TransferTime::kForward;
  };

  void run_op(solver::OpId id, Execution& ex, const StepContext& ctx);
  void run_ops(const std::vector<solver::OpId>& ops, Execution& ex, const StepContext& ctx);
  void receive_unread(Execution& ex);
  // Recomputation layer by layer (dist_trainer_recompute.cc).
  std::set<solver::TensorId> layer_checkpoints() const;
  std::vector<std::pair<solver::OpId, bool>> recompute_order(
      const std::set<solver::TensorId>& checkpoints) const;
  void prepare_input(solver::TensorId t, const solver::Layout& want, Execution& ex);
  void send_outputs(const solver::Op& op, Execution& ex);
  void send_transfer(int index);
  void recv_transfer(int index);
  void load_inputs(const std::vector<std::int32_t>& rows, std::int64_t first_row);
  void stats_all_reduce(const solver::Op& local_op, const std::string& what, void* buf,
                        std::int64_t count, kernels::DType dtype);
  double local_loss_share() const;
  // Transient tensors share one arena (dist_trainer_buffers.cc). Per global tensor: whether its
  // made layout may be transient (t1, produced here), only its remade copies (t2, a parameter
  // gathered per execution), or none of its variants.
  enum class TransientKind : std::uint8_t { kNone, kAny, kRemadeCopies };
  std::vector<TransientKind> transient_kinds() const;
  ArenaLayout arena_layout(const std::vector<solver::TensorId>& slotted) const;
  std::vector<solver::TensorId> touched(solver::OpId id) const;  // local tensors op id touches
  void plan_gradient_accumulation();
  solver::TensorId origin(solver::TensorId t) const;  // what prepare_input reshards t from
  void start_step();                                  // parameter copies
  std::vector<double> gather_tensor(solver::TensorId value, const solver::Layout& layout,
                                    std::int64_t owner);
  std::map<solver::TensorId, solver::OpId> update_ops() const;  // parameter -> its update op
  std::vector<std::pair<std::string, std::size_t>> checkpoint_entries(
      const solver::Op& update) const;
  solver::TensorId local(solver::TensorId t, const solver::Layout& l) const {
    return local_.local(t, l);
  }

  solver::TrainingGraph training_;
  const solver::Plan& plan_;
  const comm::Mesh& mesh_;
  comm::Collectives& coll_;
  comm::PointToPoint& p2p_;
  comm::PointToPoint& control_;
  kernels::Backend& backend_;
  MPI_Comm world_;
  solver::ProgramSet programs_;
  LocalProgram local_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<ReshardRunner> reshard_;
  solver::PipelineSchedule schedule_;
  const solver::StageProgram* me_ = nullptr;
  std::vector<Source> source_;                       // per global tensor, for my stage
  std::map<solver::TensorId, solver::Layout> made_;  // tensors my ops produce: their layout
  std::map<int, std::vector<solver::CrossMeshPiece>> pieces_;   // by transfer index
  std::set<std::pair<solver::TensorId, solver::Layout>> kept_;  // zero2: gathered this step
  std::vector<solver::TensorId> accumulated_;                   // local ids stashed per micro-batch
  std::vector<solver::TensorId> accumulated_global_;            // their global ids
  solver::TensorId tokens_ = solver::kNoTensor, targets_ = solver::kNoTensor;
  int slots_ = 1;
  // The backward action's ops in order, each with whether it is a forward op run again
  // (recompute_order; without recomputation, the backward ops).
  std::vector<std::pair<solver::OpId, bool>> backward_sequence_;
  // With micro_batches > 1: the accumulated gradients to stash after each position of
  // backward_sequence_ (their last use), and which of them the iteration reads in their
  // accumulator (same dtype) instead of a copy (plan_gradient_accumulation).
  std::vector<std::vector<solver::TensorId>> stash_after_;
  std::set<solver::TensorId> read_in_accumulator_;
  std::optional<solver::DType> master_dtype_;
  double comm_s_ = 0;
};

}  // namespace strata::app
