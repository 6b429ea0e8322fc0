// build_stage_programs and program_bytes_per_step (stage_program.h).
#include "solver/plan/stage_program.h"

#include <set>
#include <stdexcept>
#include <tuple>

#include "solver/intra/cross_mesh.h"
#include "solver/intra/resharding.h"

namespace strata::solver {

const char* op_bucket_name(OpBucket bucket) {
  switch (bucket) {
    case OpBucket::kForward:
      return "forward";
    case OpBucket::kBackward:
      return "backward";
    case OpBucket::kIteration:
      return "iteration";
  }
  return "?";
}

Layout without_partial(const Layout& layout) {
  Layout out = layout;
  out.partial = kNoAxes;
  return out;
}

namespace {

bool is_update(OpKind kind) { return kind == OpKind::kAdamW || kind == OpKind::kSgd; }

std::int64_t stage_of_layer(const Plan& plan, int layer, const std::string& op) {
  for (std::size_t s = 0; s < plan.stages.size(); ++s) {
    if (layer >= plan.stages[s].layer_begin && layer < plan.stages[s].layer_end)
      return static_cast<std::int64_t>(s);
  }
  throw std::invalid_argument("plan: op " + op + " has layer " + std::to_string(layer) +
                              ", outside every stage (the plan covers layers [0, " +
                              std::to_string(plan.num_layers()) + "))");
}

std::vector<Layout> normalized_layouts(const Graph& g, const std::vector<TensorId>& tensors,
                                       const std::vector<Layout>& layouts, MeshShape mesh,
                                       const std::string& what) {
  if (layouts.size() != tensors.size()) {
    throw std::invalid_argument("plan: " + what + ": " + std::to_string(layouts.size()) +
                                " layouts for " + std::to_string(tensors.size()) + " tensors");
  }
  std::vector<Layout> out;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    check_layout(g.tensor(tensors[i]).shape, layouts[i], mesh, "plan: " + what);
    out.push_back(normalized(layouts[i], mesh));
  }
  return out;
}

// Layouts of every op of the graph from the plan's per-stage op lists.
void read_layouts(const Graph& g, const Plan& plan, ProgramSet& ps) {
  std::vector<std::map<std::string, const PlanOp*>> by_name(plan.stages.size());
  for (std::size_t s = 0; s < plan.stages.size(); ++s)
    for (const PlanOp& op : plan.stages[s].ops) by_name[s][op.op] = &op;
  for (const Op& op : g.ops) {
    const std::int64_t s = stage_of_layer(plan, op.layer, op.name);
    const auto it = by_name[static_cast<std::size_t>(s)].find(op.name);
    if (it == by_name[static_cast<std::size_t>(s)].end()) {
      throw std::invalid_argument("plan: stage " + std::to_string(s) + " has no strategy for op " +
                                  op.name + " (was the plan made for another model?)");
    }
    const PlanOp& p = *it->second;
    if (p.input_layouts.empty() && !op.inputs.empty()) {
      throw std::invalid_argument("plan: op " + op.name + ": no layouts recorded");
    }
    const MeshShape mesh{plan.stages[static_cast<std::size_t>(s)].logical_mesh.d0,
                         plan.stages[static_cast<std::size_t>(s)].logical_mesh.d1};
    OpLayouts l;
    std::vector<Layout> inputs = p.input_layouts;
    if (op.kind == OpKind::kClipByGlobalNorm) {
      // One scalar per parameter of the whole model, replicated: the planner prices a stage's
      // own part of the graph and may list only its stage's sums.
      inputs.assign(op.inputs.size(), Layout::replicated(0));
    }
    l.inputs = normalized_layouts(g, op.inputs, inputs, mesh, op.name + " inputs");
    l.outputs = normalized_layouts(g, op.outputs, p.output_layouts, mesh, op.name + " outputs");
    ps.stage_of_op.push_back(s);
    ps.layouts.push_back(std::move(l));
  }
}

OpBucket bucket_of(const Op& op, const std::vector<char>& accumulated) {
  if (op.phase == OpPhase::kForward) return OpBucket::kForward;
  if (op.phase == OpPhase::kOptimizer) return OpBucket::kIteration;
  for (TensorId t : op.inputs)
    if (accumulated[static_cast<std::size_t>(t)]) return OpBucket::kIteration;
  return OpBucket::kBackward;
}

TransferTime time_of(const ProgramSet& ps, const Graph& g, TensorId t, OpId producer) {
  if (producer < 0) return TransferTime::kStepStart;
  if (ps.accumulated[static_cast<std::size_t>(t)]) return TransferTime::kIteration;
  switch (ps.bucket_of_op[static_cast<std::size_t>(producer)]) {
    case OpBucket::kForward:
      return TransferTime::kForward;
    case OpBucket::kBackward:
      return TransferTime::kBackward;
    case OpBucket::kIteration:
      return TransferTime::kIteration;
  }
  (void)g;
  return TransferTime::kIteration;
}

void find_transfers(const Graph& g, ProgramSet& ps) {
  std::vector<std::pair<OpId, int>> producer(g.tensors.size(), {-1, -1});
  for (std::size_t o = 0; o < g.ops.size(); ++o)
    for (std::size_t j = 0; j < g.ops[o].outputs.size(); ++j)
      producer[static_cast<std::size_t>(g.ops[o].outputs[j])] = {static_cast<OpId>(o),
                                                                 static_cast<int>(j)};
  std::set<std::tuple<TensorId, std::int64_t, Layout>> seen;
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    const std::int64_t dst = ps.stage_of_op[o];
    for (std::size_t k = 0; k < g.ops[o].inputs.size(); ++k) {
      const TensorId t = g.ops[o].inputs[k];
      const auto [p, slot] = producer[static_cast<std::size_t>(t)];
      Transfer tr;
      tr.tensor = t;
      tr.dst_stage = dst;
      tr.dst_layout = ps.layouts[o].inputs[k];
      if (p >= 0) {
        tr.src_stage = ps.stage_of_op[static_cast<std::size_t>(p)];
        tr.src_layout = without_partial(
            ps.layouts[static_cast<std::size_t>(p)].outputs[static_cast<std::size_t>(slot)]);
      } else if (ps.owner_stage[static_cast<std::size_t>(t)] >= 0) {
        tr.src_stage = ps.owner_stage[static_cast<std::size_t>(t)];
        tr.src_layout = ps.storage_layout.at(t);
      } else {
        continue;  // dataset input or seed: loaded by each stage
      }
      if (tr.src_stage == dst || !seen.insert({t, dst, tr.dst_layout}).second) continue;
      tr.time = time_of(ps, g, t, p);
      tr.land_layout = landing_layout(g.tensor(t).shape, tr.dst_layout, ps.stage(dst).mesh);
      tr.tag = static_cast<int>(ps.transfers.size());
      if (tr.tag > 32767) {
        throw std::invalid_argument("plan: more than 32768 cross-stage transfers");
      }
      ps.transfers.push_back(tr);
    }
  }
  for (std::size_t i = 0; i < ps.transfers.size(); ++i) {
    const Transfer& tr = ps.transfers[i];
    ps.stages[static_cast<std::size_t>(tr.src_stage)].sends.push_back(static_cast<int>(i));
    ps.stages[static_cast<std::size_t>(tr.dst_stage)].recvs.push_back(static_cast<int>(i));
  }
}

// The op's internal collectives: those of the enumerated strategy with the plan's layouts (a
// gradient-accumulation add's partial strategy is not enumerated and has none).
std::vector<InternalComm> internal_comm_of(const Graph& g, const Op& op, const OpLayouts& l,
                                           MeshShape mesh) {
  if (op.kind != OpKind::kCrossEntropy && op.kind != OpKind::kCrossEntropyGrad) return {};
  for (const Strategy& s : enumerate_strategies(g, op, mesh)) {
    bool same = s.inputs.size() == l.inputs.size() && s.outputs.size() == l.outputs.size();
    for (std::size_t i = 0; same && i < s.inputs.size(); ++i)
      same = normalized(s.inputs[i], mesh) == l.inputs[i];
    for (std::size_t i = 0; same && i < s.outputs.size(); ++i)
      same = normalized(s.outputs[i], mesh) == l.outputs[i];
    if (same) return s.comm;
  }
  throw std::invalid_argument("plan: op " + op.name + ": its layouts match no strategy");
}

}  // namespace

ProgramSet build_stage_programs(const TrainingGraph& training, const Plan& plan) {
  const Graph& g = training.graph;
  ProgramSet ps;
  for (std::size_t s = 0; s < plan.stages.size(); ++s) {
    const PlanStage& st = plan.stages[s];
    StageProgram sp;
    sp.stage = static_cast<std::int64_t>(s);
    sp.mesh = MeshShape{st.logical_mesh.d0, st.logical_mesh.d1};
    sp.devices = st.devices;
    sp.recompute = st.recompute;
    ps.stages.push_back(std::move(sp));
  }
  read_layouts(g, plan, ps);
  ps.accumulated = gradient_accumulated(g);
  ps.producer_stage.assign(g.tensors.size(), -1);
  ps.owner_stage.assign(g.tensors.size(), -1);
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    const Op& op = g.ops[o];
    const OpBucket b = bucket_of(op, ps.accumulated);
    ps.bucket_of_op.push_back(b);
    StageProgram& sp = ps.stages[static_cast<std::size_t>(ps.stage_of_op[o])];
    (b == OpBucket::kForward    ? sp.forward_ops
     : b == OpBucket::kBackward ? sp.backward_ops
                                : sp.iteration_ops)
        .push_back(static_cast<OpId>(o));
    for (TensorId t : op.outputs) ps.producer_stage[static_cast<std::size_t>(t)] = sp.stage;
    if (is_update(op.kind)) {
      const TensorId p = op.inputs.at(0);
      ps.owner_stage[static_cast<std::size_t>(p)] = sp.stage;
      ps.storage_layout[p] = ps.layouts[o].inputs.at(0);
      if (ps.storage_layout[p].partial != kNoAxes) {
        throw std::invalid_argument("plan: op " + op.name + " stores its parameter partial");
      }
    }
  }
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    const MeshShape mesh = ps.stages[static_cast<std::size_t>(ps.stage_of_op[o])].mesh;
    ps.internal_comm.push_back(internal_comm_of(g, g.ops[o], ps.layouts[o], mesh));
  }
  ps.keep_gathered_parameters = plan.method == "zero2";
  find_transfers(g, ps);
  return ps;
}

namespace {

using KindBytes = std::map<Collective, double>;

void add_scaled(KindBytes& to, const KindBytes& from, double factor) {
  for (const auto& [k, b] : from) to[k] += factor * b;
}

// What one device of stage `sp` moves in one execution of `ops` (one bucket), by the runtime's
// rules: per input, the resharding from where the tensor is to the layout the op needs, once per
// (tensor, layout) per execution (per iteration for kept parameters, in `kept`); received
// tensors and dataset inputs arrive in place; plus the ops' internal collectives.
KindBytes execution_bytes(const Graph& g, const ProgramSet& ps, const StageProgram& sp,
                          const std::vector<OpId>& ops, std::set<std::pair<TensorId, Layout>>& kept,
                          KindBytes& kept_bytes) {
  KindBytes out;
  std::set<std::pair<TensorId, Layout>> done;
  std::map<TensorId, Layout> produced;  // tensors made in this stage: their output layout
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    if (ps.stage_of_op[o] != sp.stage) continue;
    for (std::size_t j = 0; j < g.ops[o].outputs.size(); ++j)
      produced[g.ops[o].outputs[j]] = ps.layouts[o].outputs[j];
  }
  for (OpId id : ops) {
    const Op& op = g.ops[static_cast<std::size_t>(id)];
    const OpLayouts& l = ps.layouts[static_cast<std::size_t>(id)];
    for (std::size_t k = 0; k < op.inputs.size(); ++k) {
      const TensorId t = op.inputs[k];
      const Layout& want = l.inputs[k];
      Layout from;
      bool is_kept = false;
      if (const auto p = produced.find(t); p != produced.end()) {
        from = p->second;
      } else if (ps.owner_stage[static_cast<std::size_t>(t)] == sp.stage) {
        from = ps.storage_layout.at(t);
        is_kept = ps.keep_gathered_parameters;
      } else {
        continue;  // received or loaded in place
      }
      if (from == want) continue;
      auto& seen = is_kept ? kept : done;
      if (!seen.insert({t, want}).second) continue;
      const Tensor& tensor = g.tensor(t);
      add_scaled(is_kept ? kept_bytes : out,
                 bytes_by_kind(plan_resharding(tensor.shape, tensor.dtype, from, want, sp.mesh)),
                 1.0);
    }
    for (const InternalComm& c : ps.internal_comm[static_cast<std::size_t>(id)])
      out[c.kind] += static_cast<double>(c.bytes);
  }
  return out;
}

// Exit reductions of the tensors stage `sp` sends at `time`, once per tensor.
KindBytes exit_bytes(const Graph& g, const ProgramSet& ps, const StageProgram& sp,
                     TransferTime time) {
  KindBytes out;
  std::set<TensorId> done;
  for (int i : sp.sends) {
    const Transfer& tr = ps.transfers[static_cast<std::size_t>(i)];
    if (tr.time != time || !done.insert(tr.tensor).second) continue;
    for (std::size_t o = 0; o < g.ops.size(); ++o) {
      const auto& outs = g.ops[o].outputs;
      for (std::size_t j = 0; j < outs.size(); ++j) {
        if (outs[j] != tr.tensor) continue;
        const Layout& made = ps.layouts[o].outputs[j];
        if (made.partial == kNoAxes) continue;
        const Tensor& tensor = g.tensor(tr.tensor);
        add_scaled(out,
                   bytes_by_kind(plan_resharding(tensor.shape, tensor.dtype, made,
                                                 without_partial(made), sp.mesh)),
                   1.0);
      }
    }
  }
  return out;
}

void add_to(BytesPerStep& b, const KindBytes& k) {
  for (const auto& [kind, bytes] : k) {
    switch (kind) {
      case Collective::kAllReduce:
        b.all_reduce += bytes;
        break;
      case Collective::kAllGather:
        b.all_gather += bytes;
        break;
      case Collective::kReduceScatter:
        b.reduce_scatter += bytes;
        break;
      case Collective::kAllToAll:
        b.all_to_all += bytes;
        break;
      case Collective::kP2P:
        b.p2p += bytes;
        break;
    }
  }
}

}  // namespace

BytesPerStep program_bytes_per_step(const TrainingGraph& training, const ProgramSet& ps,
                                    std::int64_t micro_batches) {
  const Graph& g = training.graph;
  const double mb = static_cast<double>(micro_batches);
  BytesPerStep total;
  for (const StageProgram& sp : ps.stages) {
    std::set<std::pair<TensorId, Layout>> kept;
    KindBytes kept_bytes, step;
    const double forwards = sp.recompute ? 2.0 * mb : mb;
    add_scaled(step, execution_bytes(g, ps, sp, sp.forward_ops, kept, kept_bytes), forwards);
    add_scaled(step, execution_bytes(g, ps, sp, sp.backward_ops, kept, kept_bytes), mb);
    add_scaled(step, execution_bytes(g, ps, sp, sp.iteration_ops, kept, kept_bytes), 1.0);
    add_scaled(step, kept_bytes, 1.0);
    add_scaled(step, exit_bytes(g, ps, sp, TransferTime::kForward), mb);
    add_scaled(step, exit_bytes(g, ps, sp, TransferTime::kBackward), mb);
    add_scaled(step, exit_bytes(g, ps, sp, TransferTime::kIteration), 1.0);
    // the all-gathers from each received transfer's landing layout
    for (int i : sp.recvs) {
      const Transfer& tr = ps.transfers[static_cast<std::size_t>(i)];
      const Tensor& t = g.tensor(tr.tensor);
      add_scaled(
          step,
          bytes_by_kind(plan_resharding(t.shape, t.dtype, tr.land_layout, tr.dst_layout, sp.mesh)),
          tr.per_microbatch() ? mb : 1.0);
    }
    // p2p: every piece this stage sends, averaged over its devices
    double sent = 0;
    for (int i : sp.sends) {
      const Transfer& tr = ps.transfers[static_cast<std::size_t>(i)];
      const Tensor& t = g.tensor(tr.tensor);
      const MeshShape dst_mesh = ps.stage(tr.dst_stage).mesh;
      const double bytes = static_cast<double>(
          local_bytes(t.shape, t.dtype, tr.land_layout, dst_mesh) * dst_mesh.num_devices());
      sent += bytes * (tr.per_microbatch() ? mb : 1.0);
    }
    step[Collective::kP2P] += sent / static_cast<double>(sp.mesh.num_devices());
    add_to(total, step);
  }
  return total;
}

}  // namespace strata::solver
