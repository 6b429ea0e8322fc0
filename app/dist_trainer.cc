// DistTrainer: the stage program's buckets driven by the pipeline schedule.
#include "app/dist_trainer.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <stdexcept>

#include "app/shard_block.h"
#include "comm/control.h"

namespace strata::app {

using solver::Layout;
using solver::OpId;
using solver::Shape;
using solver::TensorId;
using solver::TransferTime;

namespace {

// Adds the wall time of its scope to a counter (the step's communication time).
class ScopedTimer {
 public:
  explicit ScopedTimer(double& total) : total_(total), start_(std::chrono::steady_clock::now()) {}
  ~ScopedTimer() {
    total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  double& total_;
  std::chrono::steady_clock::time_point start_;
};

bool is_update(solver::OpKind kind) {
  return kind == solver::OpKind::kAdamW || kind == solver::OpKind::kSgd;
}

// Whether the device at (c0, c1) is the one that reports a block held in `layout`: coordinate 0
// on every axis the layout neither splits nor sums over (the replicas of a block).
bool reports_block(const Layout& layout, solver::MeshShape mesh, std::int64_t c0, std::int64_t c1) {
  const solver::AxisSet used = layout.used_axes();
  if (mesh.d0 > 1 && !(used & solver::kAxis0) && c0 != 0) return false;
  if (mesh.d1 > 1 && !(used & solver::kAxis1) && c1 != 0) return false;
  return true;
}

}  // namespace

DistTrainer::DistTrainer(solver::TrainingGraph training, const solver::Plan& plan,
                         const comm::Mesh& mesh, comm::Collectives& collectives,
                         comm::PointToPoint& p2p, comm::PointToPoint& control,
                         kernels::Backend& backend, MPI_Comm world,
                         std::optional<solver::DType> master_dtype)
    : training_(std::move(training)),
      plan_(plan),
      mesh_(mesh),
      coll_(collectives),
      p2p_(p2p),
      control_(control),
      backend_(backend),
      world_(world),
      master_dtype_(master_dtype) {
  if (mesh.stage < 0) throw std::invalid_argument("DistTrainer: this rank is in no stage");
  const solver::Graph& g = training_.graph;
  programs_ = solver::build_stage_programs(training_, plan);
  me_ = &programs_.stage(mesh.stage);
  local_ = build_local_program(training_, programs_, mesh.stage, mesh.c0, mesh.c1);
  reshard_ = std::make_unique<ReshardRunner>(backend, collectives, mesh.c0, mesh.c1);
  schedule_ = solver::make_schedule(plan.schedule, static_cast<std::int64_t>(plan.stages.size()),
                                    plan.micro_batches);
  tokens_ = g.at("tokens");
  targets_ = g.at("targets");

  source_.assign(g.tensors.size(), Source::kLoaded);
  for (std::size_t t = 0; t < g.tensors.size(); ++t) {
    if (g.tensors[t].role == solver::TensorRole::kOptimizerState) source_[t] = Source::kState;
    if (programs_.owner_stage[t] == mesh.stage) source_[t] = Source::kOwned;
  }
  for (int i : me_->recvs)
    source_[static_cast<std::size_t>(programs_.transfers[static_cast<std::size_t>(i)].tensor)] =
        Source::kReceived;
  // Forward outputs needed after their forward execution: read by a backward or iteration op
  // of the stage, sent to another stage, or the loss (read once the forward is done).
  std::set<TensorId> outlives_forward{training_.loss};
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    if (programs_.stage_of_op[o] == mesh.stage &&
        programs_.bucket_of_op[o] != solver::OpBucket::kForward)
      outlives_forward.insert(g.ops[o].inputs.begin(), g.ops[o].inputs.end());
  }
  for (int i : me_->sends)
    outlives_forward.insert(programs_.transfers[static_cast<std::size_t>(i)].tensor);
  const std::set<TensorId> checkpoints = layer_checkpoints();
  std::vector<TensorId> slotted;
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    if (programs_.stage_of_op[o] != mesh.stage) continue;
    for (std::size_t j = 0; j < g.ops[o].outputs.size(); ++j) {
      const TensorId t = g.ops[o].outputs[j];
      made_[t] = programs_.layouts[o].outputs[j];
      source_[static_cast<std::size_t>(t)] = Source::kProduced;
      const auto bucket = programs_.bucket_of_op[o];
      // A forward output the backward reads needs a buffer per micro-batch in flight; with
      // recomputation the backward reruns the forward layer by layer, so only the stage's inputs
      // and each layer's input checkpoint do: that is the memory recomputation saves. The other
      // forward outputs die with their execution (transient, dist_trainer_buffers.cc).
      const bool kept = me_->recompute ? checkpoints.count(t) > 0 : outlives_forward.count(t) > 0;
      if (bucket == solver::OpBucket::kForward && kept) slotted.push_back(local(t, made_[t]));
      if (bucket == solver::OpBucket::kBackward &&
          programs_.accumulated[static_cast<std::size_t>(t)]) {
        accumulated_.push_back(local(t, made_[t]));
        accumulated_global_.push_back(t);
      }
    }
  }
  for (const auto& [key, id] : local_.variants) {
    const auto s = source_[static_cast<std::size_t>(key.first)];
    if (s == Source::kLoaded) slotted.push_back(id);
  }
  for (int i : me_->recvs) {
    const solver::Transfer& tr = programs_.transfers[static_cast<std::size_t>(i)];
    if (tr.time == TransferTime::kForward) slotted.push_back(local(tr.tensor, tr.dst_layout));
  }
  for (int i : me_->sends) {
    const solver::Transfer& tr = programs_.transfers[static_cast<std::size_t>(i)];
    pieces_[i] = solver::plan_cross_mesh(g.tensor(tr.tensor).shape, tr.src_layout, me_->mesh,
                                         tr.land_layout, programs_.stage(tr.dst_stage).mesh);
  }
  for (int i : me_->recvs) {
    const solver::Transfer& tr = programs_.transfers[static_cast<std::size_t>(i)];
    pieces_[i] =
        solver::plan_cross_mesh(g.tensor(tr.tensor).shape, tr.src_layout,
                                programs_.stage(tr.src_stage).mesh, tr.land_layout, me_->mesh);
  }
  if (me_->recompute) {
    backward_sequence_ = recompute_order(checkpoints);
  } else {
    for (OpId o : me_->backward_ops) backward_sequence_.push_back({o, false});
  }
  plan_gradient_accumulation();
  slots_ = static_cast<int>(solver::max_in_flight(schedule_, mesh.stage));
  std::sort(slotted.begin(), slotted.end());
  slotted.erase(std::unique(slotted.begin(), slotted.end()), slotted.end());
  executor_ = std::make_unique<Executor>(local_.graph, backend, arena_layout(slotted));
  if (master_dtype_) executor_->set_master_dtype(*master_dtype_);
  executor_->set_stats_hook(
      [this](const solver::Op& op, const std::string& what, void* buf, std::int64_t count,
             kernels::DType dtype) { stats_all_reduce(op, what, buf, count, dtype); });
  executor_->add_slots(slotted, slots_);
}

DistTrainer::~DistTrainer() = default;

std::int64_t DistTrainer::micro_batch_size() const {
  return training_.graph.tensor(tokens_).shape[0];
}
std::int64_t DistTrainer::seq_len() const { return training_.graph.tensor(tokens_).shape[1]; }

void DistTrainer::stats_all_reduce(const solver::Op& local_op, const std::string& what, void* buf,
                                   std::int64_t count, kernels::DType dtype) {
  const auto index = static_cast<std::size_t>(&local_op - local_.graph.ops.data());
  const OpId global = local_.global_op.at(index);
  ScopedTimer timer(comm_s_);
  for (const auto& c : programs_.internal_comm[static_cast<std::size_t>(global)]) {
    if (c.what != what) continue;
    coll_.all_reduce(buf, count, to_elem_type(dtype),
                     what == "row_max" ? comm::ReduceOp::kMax : comm::ReduceOp::kSum, c.axis);
  }
}

void DistTrainer::prepare_input(TensorId t, const Layout& want, Execution& ex) {
  const solver::Tensor& tensor = training_.graph.tensor(t);
  Layout from;
  switch (source_[static_cast<std::size_t>(t)]) {
    case Source::kLoaded:
    case Source::kState:
      return;
    case Source::kReceived: {
      if (ex.recompute) return;
      for (int i : me_->recvs) {
        const solver::Transfer& tr = programs_.transfers[static_cast<std::size_t>(i)];
        if (tr.tensor != t || tr.dst_layout != want || tr.time != ex.time) continue;
        if (ex.received.insert({t, want}).second) recv_transfer(i);
      }
      return;
    }
    case Source::kProduced:
      from = made_.at(t);
      if (from == want || !ex.resharded.insert({t, want}).second) return;
      break;
    case Source::kOwned:
      from = programs_.storage_layout.at(t);
      if (from == want) return;
      if (!(programs_.keep_gathered_parameters ? kept_ : ex.resharded).insert({t, want}).second)
        return;
      break;
  }
  ScopedTimer timer(comm_s_);
  const solver::ReshardPlan plan =
      solver::plan_resharding(tensor.shape, tensor.dtype, from, want, me_->mesh);
  reshard_->run(plan, executor_->buffer(local(t, from)), executor_->buffer(local(t, want)));
}

void DistTrainer::send_transfer(int index) {
  ScopedTimer timer(comm_s_);
  const solver::Transfer& tr = programs_.transfers[static_cast<std::size_t>(index)];
  const solver::Tensor& tensor = training_.graph.tensor(tr.tensor);
  const TensorId id = local(tr.tensor, tr.src_layout);
  reshard_->send_pieces(pieces_.at(index), solver::mesh_rank(me_->mesh, mesh_.c0, mesh_.c1),
                        local_.graph.tensor(id).shape, executor_->buffer(id),
                        programs_.stage(tr.dst_stage).devices,
                        solver::dtype_size_bytes(tensor.dtype), tr.tag, p2p_);
}

void DistTrainer::recv_transfer(int index) {
  ScopedTimer timer(comm_s_);
  const solver::Transfer& tr = programs_.transfers[static_cast<std::size_t>(index)];
  const solver::Tensor& tensor = training_.graph.tensor(tr.tensor);
  const TensorId land = local(tr.tensor, tr.land_layout);
  reshard_->recv_pieces(pieces_.at(index), solver::mesh_rank(me_->mesh, mesh_.c0, mesh_.c1),
                        local_.graph.tensor(land).shape, executor_->buffer(land),
                        programs_.stage(tr.src_stage).devices,
                        solver::dtype_size_bytes(tensor.dtype), tr.tag, p2p_);
  if (tr.land_layout != tr.dst_layout) {  // one copy crossed: gather the replicas here
    reshard_->run(solver::plan_resharding(tensor.shape, tensor.dtype, tr.land_layout, tr.dst_layout,
                                          me_->mesh),
                  executor_->buffer(land), executor_->buffer(local(tr.tensor, tr.dst_layout)));
  }
}

// The tensors of `op` that leave the stage at this execution's time: reduced when partial (once
// per tensor), then sent as pieces.
void DistTrainer::send_outputs(const solver::Op& op, Execution& ex) {
  for (TensorId t : op.outputs) {
    for (int i : me_->sends) {
      const solver::Transfer& tr = programs_.transfers[static_cast<std::size_t>(i)];
      if (tr.tensor != t || tr.time != ex.time) continue;
      const Layout& made = made_.at(t);
      if (made != tr.src_layout && ex.exited.insert(t).second) {
        ScopedTimer timer(comm_s_);
        const solver::Tensor& tensor = training_.graph.tensor(t);
        reshard_->run(
            solver::plan_resharding(tensor.shape, tensor.dtype, made, tr.src_layout, me_->mesh),
            executor_->buffer(local(t, made)), executor_->buffer(local(t, tr.src_layout)));
      }
      send_transfer(i);
    }
  }
}

void DistTrainer::run_op(OpId id, Execution& ex, const StepContext& ctx) {
  const solver::Op& op = training_.graph.ops[static_cast<std::size_t>(id)];
  const solver::OpLayouts& l = programs_.layouts[static_cast<std::size_t>(id)];
  for (std::size_t k = 0; k < op.inputs.size(); ++k) prepare_input(op.inputs[k], l.inputs[k], ex);
  const OpId lo = local_.local_op.at(id);
  executor_->run(lo, lo + 1, ctx);
  if (!ex.recompute) send_outputs(op, ex);
}

void DistTrainer::run_ops(const std::vector<OpId>& ops, Execution& ex, const StepContext& ctx) {
  for (OpId id : ops) run_op(id, ex, ctx);
  if (!ex.recompute) receive_unread(ex);
}

void DistTrainer::receive_unread(Execution& ex) {
  // Transfers of this time that no op of the bucket read (e.g. activations only the backward
  // reads) are received now, so every message of the execution is consumed in order.
  for (int i : me_->recvs) {
    const solver::Transfer& tr = programs_.transfers[static_cast<std::size_t>(i)];
    if (tr.time == ex.time && ex.received.insert({tr.tensor, tr.dst_layout}).second)
      recv_transfer(i);
  }
}

void DistTrainer::load_inputs(const std::vector<std::int32_t>& rows, std::int64_t first_row) {
  const std::int64_t b = micro_batch_size(), s = seq_len();
  std::vector<std::int32_t> inputs(static_cast<std::size_t>(b * s)), targets(inputs.size());
  for (std::int64_t r = 0; r < b; ++r) {
    const std::int32_t* row = rows.data() + (first_row + r) * (s + 1);
    std::copy(row, row + s, inputs.begin() + r * s);
    std::copy(row + 1, row + s + 1, targets.begin() + r * s);
  }
  for (const auto& [key, id] : local_.variants) {
    const auto& [t, layout] = key;
    if (t != tokens_ && t != targets_) continue;
    const Shape global{b, s};
    const auto block =
        extract_block((t == tokens_ ? inputs : targets).data(), global,
                      solver::shard_slice(global, layout, me_->mesh, mesh_.c0, mesh_.c1));
    executor_->write_tokens(id, block.data(), static_cast<std::int64_t>(block.size()));
  }
  for (const auto& [key, id] : local_.variants)
    if (key.first == training_.loss_grad)
      executor_->fill(id, 1.0 / static_cast<double>(plan_.micro_batches));
}

double DistTrainer::local_loss_share() const {
  const auto it = made_.find(training_.loss);
  if (it == made_.end()) return 0.0;
  const Layout& l = it->second;
  if (!reports_block(l, me_->mesh, mesh_.c0, mesh_.c1)) return 0.0;
  return executor_->read(local(training_.loss, l)).at(0);
}

void DistTrainer::start_step() {
  for (int i : me_->sends)
    if (programs_.transfers[static_cast<std::size_t>(i)].time == TransferTime::kStepStart)
      send_transfer(i);
  for (int i : me_->recvs)
    if (programs_.transfers[static_cast<std::size_t>(i)].time == TransferTime::kStepStart)
      recv_transfer(i);
}

StepResult DistTrainer::step(const std::vector<std::int32_t>& rows, const StepContext& ctx) {
  const std::int64_t b = micro_batch_size(), s = seq_len(), m = plan_.micro_batches;
  if (static_cast<std::int64_t>(rows.size()) != m * b * (s + 1))
    throw std::invalid_argument("step: expected " + std::to_string(m * b) + " rows");
  coll_.counters().reset();
  p2p_.counters().reset();
  comm_s_ = 0;
  kept_.clear();
  executor_->restore_buffers();  // the last iteration's gradients read in their accumulators
  start_step();
  double loss = 0;
  int backwards = 0;
  for (const solver::Action& a : schedule_.stages.at(static_cast<std::size_t>(mesh_.stage))) {
    if (a.kind == solver::ActionKind::kForward) {
      executor_->select_slot(static_cast<int>(a.micro_batch % slots_));
      load_inputs(rows, a.micro_batch * b);
      Execution ex;
      ex.time = TransferTime::kForward;
      run_ops(me_->forward_ops, ex, ctx);
      loss += local_loss_share() / static_cast<double>(m);
    } else if (a.kind == solver::ActionKind::kBackward) {
      executor_->select_slot(static_cast<int>(a.micro_batch % slots_));
      Execution ex, again;
      ex.time = TransferTime::kBackward;
      again.recompute = true;
      for (std::size_t k = 0; k < backward_sequence_.size(); ++k) {
        run_op(backward_sequence_[k].first, backward_sequence_[k].second ? again : ex, ctx);
        if (m > 1)
          for (TensorId id : stash_after_[k]) executor_->stash(id, backwards == 0);
      }
      receive_unread(ex);
      ++backwards;
    } else {
      if (m > 1) {
        for (TensorId id : accumulated_) {
          if (read_in_accumulator_.count(id)) {
            executor_->read_from_stash(id);
          } else {
            executor_->unstash(id);
          }
        }
      }
      Execution ex;
      ex.time = TransferTime::kIteration;
      // Accumulated gradients leaving the stage (GPT's tied wte from the head) go first.
      solver::Op carrier;
      carrier.outputs = accumulated_global_;
      send_outputs(carrier, ex);
      run_ops(me_->iteration_ops, ex, ctx);
    }
  }
  {
    ScopedTimer timer(comm_s_);
    reshard_->finish_sends(p2p_);
  }
  StepResult r;
  r.loss = comm::sum_over_world(world_, loss);
  double norm = 0;
  for (const auto& [key, id] : local_.variants)
    if (key.first == training_.norm_scale) norm = executor_->read(id).at(0);
  r.grad_norm = comm::max_over_world(world_, norm);
  return r;
}

double DistTrainer::evaluate(const std::vector<std::int32_t>& rows) {
  const std::int64_t b = micro_batch_size(), s = seq_len();
  const std::int64_t n_rows = static_cast<std::int64_t>(rows.size()) / (s + 1);
  if (n_rows < b || n_rows % b != 0)
    throw std::invalid_argument("evaluate: rows not a multiple of the micro-batch");
  start_step();
  double total = 0;
  executor_->select_slot(0);
  for (std::int64_t first = 0; first < n_rows; first += b) {
    load_inputs(rows, first);
    Execution ex;
    ex.time = TransferTime::kForward;
    run_ops(me_->forward_ops, ex, StepContext{});
    total += local_loss_share();
  }
  reshard_->finish_sends(p2p_);
  return comm::sum_over_world(world_, total) / static_cast<double>(n_rows / b);
}

comm::ByteCounters DistTrainer::step_counters() const {
  comm::ByteCounters c = coll_.counters();
  c += p2p_.counters();
  return c;
}

void DistTrainer::set_parameters(const BlockSource& block_of) {
  const solver::Graph& g = training_.graph;
  for (const auto& [p, layout] : programs_.storage_layout) {
    if (programs_.owner_stage[static_cast<std::size_t>(p)] != mesh_.stage) continue;
    const solver::Tensor& t = g.tensor(p);
    executor_->write(local(p, layout), block_of(t, solver::shard_slice(t.shape, layout, me_->mesh,
                                                                       mesh_.c0, mesh_.c1)));
  }
}

// One tensor held by stage `owner` in `layout` (value: the global tensor whose local variant
// holds it) to world rank 0: the devices reporting a block send it, rank 0 assembles the full
// tensor (shape of `value`). Every rank calls it for the same tensors in the same order; the
// sends complete before it returns, so no rank holds more than one tensor's shard in flight.
// Control traffic (not counted).
std::vector<double> DistTrainer::gather_tensor(TensorId value, const Layout& layout,
                                               std::int64_t owner) {
  const solver::StageProgram& sp = programs_.stage(owner);
  const Shape& shape = training_.graph.tensor(value).shape;
  std::vector<double> mine;
  if (mesh_.stage == owner && reports_block(layout, sp.mesh, mesh_.c0, mesh_.c1) &&
      mesh_.world_rank != 0) {
    mine = executor_->read(local(value, layout));
    control_.isend(mine.data(), static_cast<std::int64_t>(mine.size() * sizeof(double)), 0, 0);
  }
  std::vector<double> full;
  if (mesh_.world_rank == 0) {
    full.resize(static_cast<std::size_t>(solver::num_elements(shape)));
    for (std::int64_t r = 0; r < sp.mesh.num_devices(); ++r) {
      const solver::MeshCoord c = solver::mesh_coords(sp.mesh, r);
      if (!reports_block(layout, sp.mesh, c.c0, c.c1)) continue;
      const auto slice = solver::shard_slice(shape, layout, sp.mesh, c.c0, c.c1);
      const int src = static_cast<int>(sp.devices[static_cast<std::size_t>(r)]);
      std::vector<double> block;
      if (src == 0) {
        block = executor_->read(local(value, layout));
      } else {
        std::int64_t n = 1;
        for (const auto& d : slice) n *= d.size;
        block.resize(static_cast<std::size_t>(n));
        control_.recv(block.data(), n * static_cast<std::int64_t>(sizeof(double)), src, 0);
      }
      insert_block(full, shape, slice, block);
    }
  }
  control_.wait_sends();
  return full;
}

std::map<TensorId, OpId> DistTrainer::update_ops() const {
  std::map<TensorId, OpId> out;
  const solver::Graph& g = training_.graph;
  for (std::size_t o = 0; o < g.ops.size(); ++o)
    if (is_update(g.ops[o].kind)) out[g.ops[o].inputs.at(0)] = static_cast<OpId>(o);
  return out;
}

std::map<std::string, std::vector<double>> DistTrainer::gather_parameters() {
  std::map<std::string, std::vector<double>> out;
  for (const auto& [p, layout] : programs_.storage_layout) {
    auto full = gather_tensor(p, layout, programs_.owner_stage[static_cast<std::size_t>(p)]);
    if (mesh_.world_rank == 0) out[training_.graph.tensor(p).name] = std::move(full);
  }
  return out;
}

std::map<std::string, std::vector<double>> DistTrainer::gather_gradients() {
  std::map<std::string, std::vector<double>> out;
  for (const auto& [p, o] : update_ops()) {
    const solver::Op& op = training_.graph.ops[static_cast<std::size_t>(o)];
    auto full =
        gather_tensor(op.inputs.at(1), programs_.layouts[static_cast<std::size_t>(o)].inputs.at(1),
                      programs_.owner_stage[static_cast<std::size_t>(p)]);
    if (mesh_.world_rank == 0) out[training_.graph.tensor(p).name] = std::move(full);
  }
  return out;
}

// The checkpoint's datasets of parameter p's update op: "params/<name>" (input 0) and
// "optimizer/<name>/<m | v | buf>" (the state inputs), with their input index.
std::vector<std::pair<std::string, std::size_t>> DistTrainer::checkpoint_entries(
    const solver::Op& update) const {
  const std::string& name = training_.graph.tensor(update.inputs.at(0)).name;
  std::vector<std::pair<std::string, std::size_t>> out{{"params/" + name, 0}};
  if (update.kind == solver::OpKind::kAdamW) {
    out.push_back({"optimizer/" + name + "/m", 2});
    out.push_back({"optimizer/" + name + "/v", 3});
  } else {
    out.push_back({"optimizer/" + name + "/buf", 2});
  }
  return out;
}

void DistTrainer::for_each_state_tensor(const TensorSink& sink) {
  for (const auto& [p, o] : update_ops()) {
    const solver::Op& op = training_.graph.ops[static_cast<std::size_t>(o)];
    const auto& layouts = programs_.layouts[static_cast<std::size_t>(o)].inputs;
    for (const auto& [dataset, k] : checkpoint_entries(op)) {
      auto full = gather_tensor(op.inputs[k], layouts[k],
                                programs_.owner_stage[static_cast<std::size_t>(p)]);
      if (mesh_.world_rank == 0) sink(dataset, training_.graph.tensor(p), std::move(full));
    }
  }
}

void DistTrainer::load_state(const TensorSource& source) {
  const solver::Graph& g = training_.graph;
  for (const auto& [p, o] : update_ops()) {
    if (programs_.owner_stage[static_cast<std::size_t>(p)] != mesh_.stage) continue;
    const solver::Op& op = g.ops[static_cast<std::size_t>(o)];
    const auto& layouts = programs_.layouts[static_cast<std::size_t>(o)].inputs;
    for (const auto& [dataset, k] : checkpoint_entries(op)) {
      const std::vector<double> full = source(dataset, g.tensor(p));
      const Shape& shape = g.tensor(p).shape;
      executor_->write(
          local(op.inputs[k], layouts[k]),
          extract_block(full.data(), shape,
                        solver::shard_slice(shape, layouts[k], me_->mesh, mesh_.c0, mesh_.c1)));
    }
  }
}

}  // namespace strata::app
