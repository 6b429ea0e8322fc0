// solve_intra_op (intra_pass.h): builds the stage's cost model from strategies, the cost model
// and THE resharding function, lowers it to the ILP of ilp.h (written out below), solves it, and
// re-evaluates the chosen strategies op by op to cross-check the objective (STYLE.md 28).
// Follower merging is in intra_merge.cc, the memory model in intra_memory.cc. Pure C++,
// deterministic: ordered containers only.
#include "solver/intra/intra_pass.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "solver/intra/ilp_reduce.h"
#include "solver/intra/intra_model.h"
#include "solver/ir/flops.h"

namespace strata::solver {
namespace detail {
namespace {

bool is_update(OpKind kind) { return kind == OpKind::kAdamW || kind == OpKind::kSgd; }

// A gradient-accumulation add may sum partial buffers (addition is linear): for every strategy
// and every non-empty set Q of mesh axes (of size > 1) it leaves unused, one more strategy with
// both inputs and the output partial over Q. Then the gradient of a parameter read twice is
// reduced once, after the sum, not once per partial.
void add_partial_add_strategies(IntraCache::OpChoices& op, MeshShape mesh) {
  const std::size_t n = op.strategies.size();
  for (std::size_t s = 0; s < n; ++s) {
    const Strategy base = op.strategies[s];
    AxisSet used = base.outputs.at(0).used_axes();
    for (const Layout& in : base.inputs) used = static_cast<AxisSet>(used | in.used_axes());
    AxisSet free_axes = kNoAxes;
    for (int a = 0; a < 2; ++a) {
      if (mesh.axis_size(a) > 1 && !(used & axis_bit(a))) free_axes |= axis_bit(a);
    }
    for (AxisSet q = 1; q <= kBothAxes; ++q) {
      if ((q & free_axes) != q) continue;
      Strategy p = base;
      for (Layout& in : p.inputs) in.partial = q;
      p.outputs[0].partial = static_cast<AxisSet>(p.outputs[0].partial | q);
      p.name = join_layouts(p.inputs) + " -> " + join_layouts(p.outputs);
      op.strategies.push_back(p);
      op.original.push_back(static_cast<std::int32_t>(op.strategies.size()) - 1);
    }
  }
}

// restrict_to (plan methods). 'b' is the batch index letter (GPT's equations and every index
// map name the batch index b).
//   data-parallel, zero2, zero3: forward and backward ops split b on every mesh axis of size > 1
//     (S01 on b for a 2-D mesh); an op with no such strategy (no b, or b does not divide) runs
//     replicated. Parameters: data-parallel stores them replicated; zero2 and zero3 store them
//     (with gradient and optimizer state) split over as many devices as any strategy allows
//     (all of them when a dim divides), zero2 keeping a gathered copy (intra_pass.h).
//   megatron: forward and backward ops split b on axis 0 (if > 1) and anything but b on axis 1
//     (heads, MLP columns, contracted rows, or nothing); parameters are replicated over axis 0.
//     An op with no such strategy keeps b on axis 0 and nothing on axis 1, else runs replicated.
//   Other optimizer-phase ops (sum of squares, clipping) are not restricted: they follow.
//   batch-axis0 (IntraOptions::force_batch_axis0 on a 2-D mesh): forward and backward ops split b
//     on axis 0 and anything (or nothing) on axis 1; an op without such a strategy is unrestricted.
bool allowed(const std::string& restrict, const Op& op, const Strategy& s, MeshShape mesh,
             int pass) {
  const bool big0 = mesh.d0 > 1, big1 = mesh.d1 > 1;
  const char l0 = s.axis_letter[0], l1 = s.axis_letter[1];
  const bool replicated = l0 == '\0' && l1 == '\0';
  if (restrict == "batch-axis0") {
    if (op.phase == OpPhase::kOptimizer || pass > 0) return true;
    return l0 == 'b';
  }
  if (is_update(op.kind)) {
    if (restrict == "data-parallel") return replicated;
    if (restrict == "megatron") return !big0 || l0 == '\0';
    return true;  // zero2 / zero3: filtered by split size below
  }
  if (op.phase == OpPhase::kOptimizer) return true;
  if (restrict == "megatron") {
    if (pass == 0) return (!big0 || l0 == 'b') && (!big1 || l1 != 'b');
    if (pass == 1) return (!big0 || l0 == 'b') && l1 == '\0';
    return replicated;
  }
  if (pass == 0) return (!big0 || l0 == 'b') && (!big1 || l1 == 'b');
  return replicated;
}

void restrict_strategies(IntraCache::OpChoices& sop, const Op& op, const std::string& restrict,
                         MeshShape mesh) {
  if (restrict.empty()) return;
  std::vector<Strategy> kept;
  std::vector<std::int32_t> orig;
  for (int pass = 0; pass < 3 && kept.empty(); ++pass) {
    for (std::size_t s = 0; s < sop.strategies.size(); ++s) {
      if (allowed(restrict, op, sop.strategies[s], mesh, pass)) {
        kept.push_back(sop.strategies[s]);
        orig.push_back(sop.original[s]);
      }
    }
  }
  if (is_update(op.kind) && (restrict == "zero2" || restrict == "zero3")) {
    const auto split_devices = [&](const Strategy& s) {
      std::int64_t n = 1;
      for (int a = 0; a < 2; ++a)
        n *= s.axis_letter[static_cast<std::size_t>(a)] ? mesh.axis_size(a) : 1;
      return n;
    };
    std::int64_t most = 1;
    for (const Strategy& s : kept) most = std::max(most, split_devices(s));
    std::vector<Strategy> k2;
    std::vector<std::int32_t> o2;
    for (std::size_t s = 0; s < kept.size(); ++s) {
      if (split_devices(kept[s]) == most) k2.push_back(kept[s]), o2.push_back(orig[s]);
    }
    kept.swap(k2), orig.swap(o2);
  }
  sop.strategies.swap(kept);
  sop.original.swap(orig);
}

std::string axis_class(char letter) {
  if (letter == '\0') return "rep";
  return letter == 'b' ? "dp" : "tp";
}

// "dp2 x tp4": per mesh axis of size > 1, the class of the letter the forward matmuls split on
// it, weighted by their FLOPs (b = dp, another letter = tp, none = rep); "+zero" when a
// parameter is stored split over a dp axis; "single" on one device.
std::string summarize(const StageModel& m, const std::vector<StrategyIdx>& op_choice) {
  const Graph& g = *m.graph;
  std::map<std::string, double> votes[2];
  bool zero = false;
  for (std::size_t i = 0; i < m.ops.size(); ++i) {
    const Op& op = g.ops[static_cast<std::size_t>(m.ops[i].op)];
    const Strategy& s = m.ops[i].strategies()[static_cast<std::size_t>(op_choice[i])];
    if (op.kind == OpKind::kMatMul && op.phase == OpPhase::kForward) {
      for (int a = 0; a < 2; ++a)
        votes[a][axis_class(s.axis_letter[static_cast<std::size_t>(a)])] += s.local_flops + 1;
    }
    if (is_update(op.kind)) {
      for (int a = 0; a < 2; ++a) zero = zero || s.inputs.at(0).dim_of_axis(a) >= 0;
    }
  }
  std::vector<std::string> parts;
  std::string cls[2];
  for (int a = 0; a < 2; ++a) {
    if (m.mesh.axis_size(a) <= 1) continue;
    double best = -1;
    cls[a] = "rep";
    for (const auto& [c, w] : votes[a]) {
      if (w > best) best = w, cls[a] = c;
    }
  }
  if (m.mesh.d0 > 1 && m.mesh.d1 > 1 && cls[0] == cls[1]) {
    parts.push_back(cls[0] + std::to_string(m.mesh.num_devices()));
  } else {
    for (int a = 0; a < 2; ++a) {
      if (m.mesh.axis_size(a) > 1) parts.push_back(cls[a] + std::to_string(m.mesh.axis_size(a)));
    }
  }
  if (parts.empty()) return "single";
  std::string out = parts[0];
  for (std::size_t i = 1; i < parts.size(); ++i) out += " x " + parts[i];
  if (zero) out += " +zero";
  return out;
}

double bucket_coef(const StageModel& m, Bucket b, double weight) {
  return b == Bucket::kMicrobatch ? weight : weight / static_cast<double>(m.micro_batches);
}

}  // namespace

double reshard_time_s(const StageModel& m, TensorId t, const Layout& from, const Layout& to) {
  const Tensor& tensor = m.graph->tensor(t);
  return m.reshards->time_s(tensor.shape, tensor.dtype, from, to);
}

double node_time_s(const StageModel& m, StageOpIdx i, StrategyIdx si) {
  const StageOp& sop = m.ops[static_cast<std::size_t>(i)];
  const Op& op = m.graph->ops[static_cast<std::size_t>(sop.op)];
  const Strategy& s = sop.strategies()[static_cast<std::size_t>(si)];
  // Bytes touched: every input read and output written once; an in-place update also writes
  // back the parameter and its state (all inputs but the gradient and the scale pair).
  double bytes = 0;
  for (std::size_t k = 0; k < op.inputs.size(); ++k) {
    const Tensor& t = m.graph->tensor(op.inputs[k]);
    const double b = static_cast<double>(local_bytes(t.shape, t.dtype, s.inputs[k], m.mesh));
    bytes += b;
    if (is_update(op.kind) && k != 1 && k + 1 != op.inputs.size()) bytes += b;
  }
  for (std::size_t k = 0; k < op.outputs.size(); ++k) {
    const Tensor& t = m.graph->tensor(op.outputs[k]);
    bytes += static_cast<double>(local_bytes(t.shape, t.dtype, s.outputs[k], m.mesh));
  }
  // Workspace traffic (the fused attention's score blocks) shrinks with the op's share of the work.
  const double scratch = op_scratch_bytes(*m.graph, op);
  if (scratch > 0) bytes += scratch * s.local_flops / op_flops(*m.graph, op);
  double time = compute_time_s(s.local_flops, bytes, m.device, m.dtype, op_kind_name(op.kind));
  for (const InternalComm& c : s.comm) {
    time += collective_time_s(c.kind, static_cast<double>(c.bytes), m.mesh.axis_size(c.axis),
                              m.links.axis[c.axis]);
  }
  return time;
}

const Layout& edge_src_layout(const StageModel& m, const EdgeTerm& e, StrategyIdx src_s) {
  const Strategy& s =
      m.ops[static_cast<std::size_t>(e.src)].strategies()[static_cast<std::size_t>(src_s)];
  return e.src_is_storage ? s.inputs.at(0) : s.outputs.at(static_cast<std::size_t>(e.src_slot));
}
const Layout& edge_dst_layout(const StageModel& m, const EdgeTerm& e, StrategyIdx dst_s) {
  return m.ops[static_cast<std::size_t>(e.dst)]
      .strategies()[static_cast<std::size_t>(dst_s)]
      .inputs.at(static_cast<std::size_t>(e.dst_input));
}
double exit_time_s(const StageModel& m, const EdgeTerm& e, StrategyIdx src_s) {
  const Layout& from = edge_src_layout(m, e, src_s);
  Layout to = from;
  to.partial = kNoAxes;
  return reshard_time_s(m, e.tensor, from, to);
}
double edge_time_s(const StageModel& m, const EdgeTerm& e, StrategyIdx src_s, StrategyIdx dst_s) {
  return reshard_time_s(m, e.tensor, edge_src_layout(m, e, src_s), edge_dst_layout(m, e, dst_s));
}

}  // namespace detail

using namespace detail;

namespace {

// The stage's ops, their strategies and buckets, and the edge terms (module comment of
// build_problem below for what each term costs).
StageModel build_model(const TrainingGraph& training, std::int64_t layer_begin,
                       std::int64_t layer_end, const ClusterSpec& cluster,
                       const StagePlacement& placement, const IntraOptions& options,
                       IntraCache& cache) {
  const Graph& g = training.graph;
  StageModel m;
  m.graph = &g;
  m.mesh = placement.mesh;
  validate(m.mesh);
  if (placement.group < 0 || placement.group >= static_cast<std::int64_t>(cluster.groups.size())) {
    throw std::invalid_argument("solve_intra_op: placement.group " +
                                std::to_string(placement.group) + " out of range");
  }
  if (m.mesh.num_devices() != placement.hosts * placement.devices) {
    throw std::invalid_argument("solve_intra_op: mesh " + std::to_string(m.mesh.d0) + "x" +
                                std::to_string(m.mesh.d1) + " does not have hosts x devices = " +
                                std::to_string(placement.hosts * placement.devices) + " devices");
  }
  if (options.micro_batches < 1) {
    throw std::invalid_argument("solve_intra_op: micro_batches must be >= 1");
  }
  const std::string& r = options.restrict_to;
  if (!(r.empty() || r == "data-parallel" || r == "zero2" || r == "zero3" || r == "megatron")) {
    throw std::invalid_argument("solve_intra_op: restrict_to '" + r +
                                "' (expected data-parallel, zero2, zero3 or megatron)");
  }
  m.device = cluster.groups[static_cast<std::size_t>(placement.group)].device;
  m.links = mesh_axis_links(cluster, placement.group, placement.hosts, placement.devices, m.mesh.d0,
                            m.mesh.d1);
  m.dtype = options.dtype;
  m.master_dtype = options.master_dtype;
  m.micro_batches = options.micro_batches;
  m.in_flight = std::max<std::int64_t>(1, options.in_flight_microbatches);
  m.reshards = &cache.reshards(m.mesh, m.links);

  const std::vector<char> acc = gradient_accumulated(g);
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    const Op& op = g.ops[o];
    if (op.layer < layer_begin || op.layer >= layer_end) continue;
    StageOp sop;
    sop.op = static_cast<OpId>(o);
    const bool partial_add = op.kind == OpKind::kAdd && op.phase == OpPhase::kBackward &&
                             acc[static_cast<std::size_t>(op.outputs.at(0))];
    const bool force_batch =
        r.empty() && options.force_batch_axis0 && m.mesh.d0 > 1 && m.mesh.d1 > 1;
    const std::string restrict = force_batch ? std::string("batch-axis0") : r;
    const auto make = [&](const std::vector<Strategy>& all) {
      IntraCache::OpChoices c;
      c.strategies = all;
      for (std::size_t s = 0; s < all.size(); ++s)
        c.original.push_back(static_cast<std::int32_t>(s));
      if (partial_add) add_partial_add_strategies(c, m.mesh);
      restrict_strategies(c, op, restrict, m.mesh);
      return c;
    };
    sop.choices =
        &cache.op_choices(g, op, m.mesh, (partial_add ? "partial-add " : "") + restrict, make);
    sop.bucket = op.phase == OpPhase::kOptimizer ? Bucket::kIteration : Bucket::kMicrobatch;
    m.index_of[sop.op] = static_cast<StageOpIdx>(m.ops.size());
    m.ops.push_back(std::move(sop));
  }
  return m;
}

void add_edge_terms(StageModel& m, const IntraOptions& options) {
  const Graph& g = *m.graph;
  const std::vector<char> acc = gradient_accumulated(g);
  const bool zero2 = options.restrict_to == "zero2";
  std::map<TensorId, std::pair<StageOpIdx, int>> producer;
  std::map<TensorId, StageOpIdx> update_of_param;
  for (std::size_t i = 0; i < m.ops.size(); ++i) {
    const Op& op = g.ops[static_cast<std::size_t>(m.ops[i].op)];
    for (std::size_t j = 0; j < op.outputs.size(); ++j) {
      producer[op.outputs[j]] = {static_cast<StageOpIdx>(i), static_cast<int>(j)};
    }
    if (is_update(op.kind)) update_of_param[op.inputs.at(0)] = static_cast<StageOpIdx>(i);
  }
  // Exits: outputs read by an op outside the stage (the next stage, or clipping in stage 0).
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    if (m.index_of.count(static_cast<OpId>(o))) continue;
    for (TensorId t : g.ops[o].inputs) {
      const auto p = producer.find(t);
      if (p == producer.end()) continue;
      const StageOp& src = m.ops[static_cast<std::size_t>(p->second.first)];
      EdgeTerm e;
      e.src = p->second.first;
      e.src_slot = p->second.second;
      e.tensor = t;
      e.bucket = src.bucket;
      if (acc[static_cast<std::size_t>(t)]) e.bucket = Bucket::kIteration;
      producer.erase(p);  // once per tensor
      m.exits.push_back(e);
    }
  }
  for (std::size_t i = 0; i < m.ops.size(); ++i) {
    const Op& op = g.ops[static_cast<std::size_t>(m.ops[i].op)];
    for (std::size_t j = 0; j < op.outputs.size(); ++j) {
      producer[op.outputs[j]] = {static_cast<StageOpIdx>(i), static_cast<int>(j)};
    }
  }
  for (std::size_t i = 0; i < m.ops.size(); ++i) {
    const StageOp& dst = m.ops[i];
    const Op& op = g.ops[static_cast<std::size_t>(dst.op)];
    for (std::size_t k = 0; k < op.inputs.size(); ++k) {
      const TensorId t = op.inputs[k];
      if (k == 0 && dst.shares_input_reshard) continue;  // paid on the optimizer's edge
      EdgeTerm e;
      e.dst = static_cast<StageOpIdx>(i);
      e.dst_input = static_cast<int>(k);
      e.tensor = t;
      e.bucket = dst.bucket;
      const auto p = producer.find(t);
      if (p != producer.end()) {
        e.src = p->second.first;
        e.src_slot = p->second.second;
        if (acc[static_cast<std::size_t>(t)]) e.bucket = Bucket::kIteration;
      } else {
        const auto u = update_of_param.find(t);
        if (u == update_of_param.end() || u->second == e.dst) continue;  // free: see (d)
        e.src = u->second;
        e.src_is_storage = true;
        if (zero2) e.bucket = Bucket::kIteration;
      }
      m.edges.push_back(e);
    }
  }
}

// The weights w of the ILP below: forward ops run r = 2 times per micro-batch with
// recomputation, other ops once per bucket; a per-micro-batch term takes the weight of the op
// that pays it (an edge: its consumer, an exit: its producer), a per-iteration term 1. The only
// part of a stage model, besides its memory terms, that recomputation changes.
void set_weights(StageModel& m, bool recompute) {
  const Graph& g = *m.graph;
  for (StageOp& op : m.ops) {
    const bool forward = g.ops[static_cast<std::size_t>(op.op)].phase == OpPhase::kForward;
    op.weight = forward && recompute ? 2 : 1;
  }
  for (EdgeTerm& e : m.edges)
    e.weight = e.bucket == Bucket::kMicrobatch ? m.ops[static_cast<std::size_t>(e.dst)].weight : 1;
  for (EdgeTerm& e : m.exits)
    e.weight = e.bucket == Bucket::kMicrobatch ? m.ops[static_cast<std::size_t>(e.src)].weight : 1;
}

double budget_of(const ClusterSpec& cluster, const StagePlacement& placement,
                 const IntraOptions& options) {
  if (options.memory_budget_bytes > 0) return options.memory_budget_bytes;
  return cluster.groups[static_cast<std::size_t>(placement.group)].device.memory_bytes;
}

// The ILP (solved by solve_ilp of ilp.h). Ops of the stage: forward, backward and optimizer ops
// with layer in [layer_begin, layer_end); after follower merging (intra_merge.cc) node v stands
// for a leader op and its followers, and its strategy a fixes every member op's strategy
// (of_node). B = micro-batches; r = 2 with recomputation, else 1.
//
//  (a) variables: s_v in {0,1}^{|S_v|} per node (one-hot), e_uv in {0,1}^{|S_u| x |S_v|} per
//      edge (linearised product s_u s_v^T; solvers drop them for 1-strategy endpoints).
//  (b) node cost c_v[a] = sum over member ops o of w_o * t_o(a), where t_o = compute_time_s(
//      local FLOPs, local bytes read + written, device, dtype, kind) + sum of the strategy's
//      internal collectives (collective_time_s on the axis's link of mesh_axis_links), and
//      w_o = r for forward ops, 1 for backward ops, 1/B for optimizer ops (once per iteration).
//  (c) edge cost r_uv[a][b] = sum over edge terms (tensor x from op o in u to op o' in v) of
//      w_x * resharding_time_s(plan_resharding(shape, dtype, layout_o(a), layout_o'(b)), links):
//        - activation / gradient produced in the stage, read by a forward op: w = r; by a
//          backward op: w = 1;
//        - a gradient accumulated across micro-batches (gradient_accumulated(): read only by
//          optimizer ops or accumulation adds), or any tensor read by an optimizer op: w = 1/B
//          (the gradient all-reduce / reduce-scatter runs once, on the last micro-batch);
//        - a parameter is loop-carried: its storage layout is its optimizer op's input-0 layout,
//          and every forward / backward op reading it pays the resharding from storage to its
//          own layout, w = r (forward) or 1 (backward) per micro-batch: ZeRO-3 (stored split,
//          gathered before each use) costs its all-gathers every micro-batch. With
//          restrict_to "zero2" the gathered copy is kept for the iteration: w = 1/B, and (m1)
//          counts the copy's memory.
//      Terms whose two ops share a node add to that node's c_v[a] with b = a.
//  (d) free (no term): dataset inputs, tensors made by other stages (activations from the
//      previous stage, gradients from the next, the tied wte in the head stage, clip's scale)
//      arrive in whatever layout the consumer chooses; the cross-stage transfer is priced by
//      the stage DP. A tensor leaving the stage leaves complete: a partial output read outside
//      pays its reduction (all-reduce to the same split) in its producer's cost, w as its
//      producer's (1/B for accumulated gradients). Also free: a sum of squares' read of a gradient
//      it shares with its optimizer op (intra_merge.cc rule 3).
//  (e) objective: minimise sum_v c_v . s_v + sum_(u,v) r_uv . e_uv
//      = time per micro-batch + (optimizer + gradient sync per iteration) / B.
//  (f) one-hot: sum_a s_v[a] = 1;  edge consistency: sum_b e_uv[a][b] = s_u[a],
//      sum_a e_uv[a][b] = s_v[b] (ilp.h's solvers write these rows).
//  (g) memory (intra_memory.cc terms m1-m4): one liveness row holding every node,
//        sum_v sum_a s_v[a] (static_v[a] + F * act_v[a]) <= M,
//      F = in_flight_microbatches, M = memory_budget_bytes or the device's memory_bytes. A
//      single row sums every tensor as if all were live at once: conservative (the peak of a
//      stage under 1F1B is reached in its first backward, when all stored activations, all
//      parameters, gradients and state are live, so the row is the peak up to transients).
//      Dropped when even the largest choice per node fits; infeasible when the smallest does not.
//  (h) forbidden choices: restrict_to removes strategies from S_v before the model is built
//      (never a huge cost), and followers have no variables of their own.
// The distinct layouts among n (layout_of(i) for i < n), and which one each i has.
struct DistinctLayouts {
  std::vector<const Layout*> layouts;
  std::vector<std::size_t> index;
  template <class F>
  DistinctLayouts(std::size_t n, F layout_of) : index(n) {
    for (std::size_t i = 0; i < n; ++i) {
      const Layout& l = layout_of(i);
      std::size_t k = 0;
      while (k < layouts.size() && !(*layouts[k] == l)) ++k;
      if (k == layouts.size()) layouts.push_back(&l);
      index[i] = k;
    }
  }
};

IlpProblem build_problem(const StageModel& m, double budget_bytes, std::int64_t* num_edges) {
  IlpProblem p;
  std::vector<std::size_t> size(static_cast<std::size_t>(m.num_nodes), 0);
  for (const StageOp& op : m.ops) size[static_cast<std::size_t>(op.node)] = op.of_node.size();
  p.nodes.resize(size.size());
  for (std::size_t v = 0; v < size.size(); ++v) {
    p.nodes[v].cost_s.assign(size[v], 0.0);
    p.nodes[v].memory_bytes.assign(size[v], 0.0);
  }
  // (b) node costs
  for (std::size_t i = 0; i < m.ops.size(); ++i) {
    const StageOp& op = m.ops[i];
    const double coef = bucket_coef(m, op.bucket, op.weight);
    IlpNode& node = p.nodes[static_cast<std::size_t>(op.node)];
    for (std::size_t a = 0; a < op.of_node.size(); ++a) {
      node.cost_s[a] += coef * node_time_s(m, static_cast<StageOpIdx>(i), op.of_node[a]);
    }
  }
  // (c') exits: a partial output read outside the stage is reduced before it leaves
  for (const EdgeTerm& e : m.exits) {
    const StageOp& src = m.ops[static_cast<std::size_t>(e.src)];
    const double coef = bucket_coef(m, e.bucket, e.weight);
    IlpNode& node = p.nodes[static_cast<std::size_t>(src.node)];
    for (std::size_t a = 0; a < src.of_node.size(); ++a) {
      node.cost_s[a] += coef * exit_time_s(m, e, src.of_node[a]);
    }
  }
  // (c) edge costs, one matrix per unordered node pair (u < v), folded into a node's cost
  // when the other end has a single strategy or both ends share a node.
  std::map<std::pair<NodeIdx, NodeIdx>, std::vector<double>> edges;
  for (const EdgeTerm& e : m.edges) {
    const StageOp& src = m.ops[static_cast<std::size_t>(e.src)];
    const StageOp& dst = m.ops[static_cast<std::size_t>(e.dst)];
    const double coef = bucket_coef(m, e.bucket, e.weight);
    const NodeIdx u = src.node, v = dst.node;
    if (u == v) {
      for (std::size_t a = 0; a < src.of_node.size(); ++a) {
        p.nodes[static_cast<std::size_t>(u)].cost_s[a] +=
            coef * edge_time_s(m, e, src.of_node[a], dst.of_node[a]);
      }
      continue;
    }
    const std::size_t nu = src.of_node.size(), nv = dst.of_node.size();
    if (nu == 1 || nv == 1) {
      const bool fold_into_dst = nu == 1;
      IlpNode& node = p.nodes[static_cast<std::size_t>(fold_into_dst ? v : u)];
      for (std::size_t a = 0; a < (fold_into_dst ? nv : nu); ++a) {
        node.cost_s[a] +=
            coef * (fold_into_dst ? edge_time_s(m, e, src.of_node[0], dst.of_node[a])
                                  : edge_time_s(m, e, src.of_node[a], dst.of_node[0]));
      }
      continue;
    }
    const bool flip = u > v;
    const std::pair<NodeIdx, NodeIdx> key = flip ? std::make_pair(v, u) : std::make_pair(u, v);
    std::vector<double>& cost = edges[key];
    const std::size_t rows = flip ? nv : nu, cols = flip ? nu : nv;
    cost.resize(rows * cols, 0.0);
    // edge_time_s(m, e, a, b), priced once per distinct pair of layouts (many strategies of an
    // op lay a given operand out alike).
    const DistinctLayouts from(
        nu, [&](std::size_t a) -> const Layout& { return edge_src_layout(m, e, src.of_node[a]); });
    const DistinctLayouts to(
        nv, [&](std::size_t b) -> const Layout& { return edge_dst_layout(m, e, dst.of_node[b]); });
    std::vector<double> pair_s(from.layouts.size() * to.layouts.size());
    for (std::size_t i = 0; i < from.layouts.size(); ++i) {
      for (std::size_t j = 0; j < to.layouts.size(); ++j) {
        pair_s[i * to.layouts.size() + j] =
            reshard_time_s(m, e.tensor, *from.layouts[i], *to.layouts[j]);
      }
    }
    for (std::size_t a = 0; a < nu; ++a) {
      for (std::size_t b = 0; b < nv; ++b) {
        const double c = coef * pair_s[from.index[a] * to.layouts.size() + to.index[b]];
        cost[flip ? b * cols + a : a * cols + b] += c;
      }
    }
  }
  for (auto& [key, cost] : edges) {
    if (std::all_of(cost.begin(), cost.end(), [](double c) { return c == 0.0; })) continue;
    p.edges.push_back({key.first, key.second, std::move(cost)});
  }
  *num_edges = static_cast<std::int64_t>(p.edges.size());
  // (g) memory row
  for (const MemoryTerm& t : m.memory) {
    const StageOp& op = m.ops[static_cast<std::size_t>(t.op)];
    const double copies = t.activation ? static_cast<double>(m.in_flight) : 1.0;
    IlpNode& node = p.nodes[static_cast<std::size_t>(op.node)];
    for (std::size_t a = 0; a < op.of_node.size(); ++a) {
      node.memory_bytes[a] += copies * memory_bytes(m, t, op.of_node[a]);
    }
  }
  if (budget_bytes > 0) {
    double most = 0;
    std::vector<NodeIdx> live;
    for (std::size_t v = 0; v < p.nodes.size(); ++v) {
      const auto& mem = p.nodes[v].memory_bytes;
      const double hi = *std::max_element(mem.begin(), mem.end());
      most += hi;
      if (hi > 0) live.push_back(static_cast<NodeIdx>(v));
    }
    if (most > budget_bytes) {
      p.liveness.push_back(live);
      p.memory_budget_bytes = budget_bytes;
    }
  }
  return p;
}

}  // namespace

struct IntraStage::Impl {
  std::shared_ptr<IntraCache> own_cache;  // when the caller shares none (kept by with_recompute)
  double budget_bytes = 0;
  double least_memory_bytes = 0;  // every node at its leanest strategy
  const Graph* graph = nullptr;
  IntraOptions options;
  StageModel model;
  IlpProblem problem;
  IntraResult base;    // counts; status kOptimal unless an op has no strategy (then final)
  bool final = false;  // base is the answer whatever the memory treatment
};

IntraStage::IntraStage(const TrainingGraph& training, std::int64_t layer_begin,
                       std::int64_t layer_end, const ClusterSpec& cluster,
                       const StagePlacement& placement, const IntraOptions& options,
                       IntraCache* cache)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.graph = &training.graph;
  s.options = options;
  if (cache == nullptr) {
    s.own_cache = std::make_shared<IntraCache>();
    cache = s.own_cache.get();
  }
  s.budget_bytes = budget_of(cluster, placement, options);
  s.model = build_model(training, layer_begin, layer_end, cluster, placement, options, *cache);
  StageModel& m = s.model;
  s.base.num_ops = static_cast<std::int64_t>(m.ops.size());
  for (const StageOp& op : m.ops) {
    if (op.strategies().empty()) {
      s.base.status = SolveStatus::kInfeasible;
      s.base.message = "op " + training.graph.ops[static_cast<std::size_t>(op.op)].name +
                       " has no strategy under restrict_to '" + options.restrict_to + "'";
      s.final = true;
      return;
    }
  }
  merge_followers(m, options.merge_followers);
  add_edge_terms(m, options);
  lower(s);
}

// Weights, memory terms and the ILP: the parts of a stage that depend on recomputation.
void IntraStage::lower(Impl& s) {
  StageModel& m = s.model;
  set_weights(m, s.options.recompute);
  m.memory.clear();
  add_memory_terms(m, s.options.recompute, s.options.restrict_to == "zero2");
  s.problem = build_problem(m, s.budget_bytes, &s.base.num_edges);
  s.base.num_nodes = m.num_nodes;
  s.least_memory_bytes = 0;
  for (const IlpNode& n : s.problem.nodes) {
    if (!n.memory_bytes.empty())
      s.least_memory_bytes += *std::min_element(n.memory_bytes.begin(), n.memory_bytes.end());
  }
  if (s.problem.nodes.empty()) {
    s.base.status = SolveStatus::kOptimal;
    s.base.summary = "empty";
    s.final = true;
  }
}

IntraStage IntraStage::with_recompute(bool recompute) const {
  IntraStage out;
  out.impl_ = std::make_unique<Impl>(*impl_);
  Impl& s = *out.impl_;
  s.options.recompute = recompute;
  if (!s.final) lower(s);
  return out;
}

IntraStage::~IntraStage() = default;
IntraStage::IntraStage(IntraStage&&) noexcept = default;
IntraStage& IntraStage::operator=(IntraStage&&) noexcept = default;

double IntraStage::least_memory_bytes() const { return impl_->least_memory_bytes; }

IntraResult IntraStage::solve() const {
  const Impl& s = *impl_;
  if (s.final) return s.base;
  const IlpProblem& problem = s.problem;
  if (!problem.liveness.empty()) {
    const double least = least_memory_bytes();
    if (least > problem.memory_budget_bytes) {
      IntraResult result = s.base;
      result.status = SolveStatus::kInfeasible;
      result.message = "stage needs at least " + std::to_string(least) +
                       " bytes per device; budget " + std::to_string(problem.memory_budget_bytes);
      return result;
    }
  }
  return finish(solve_exact(problem, s.options.ilp), 0, Detail::kFull);
}

IntraResult IntraStage::solve_weighted(double lambda_s_per_byte, Detail detail) const {
  const Impl& s = *impl_;
  if (s.final) return s.base;
  return finish(strata::solver::solve_weighted(s.problem, lambda_s_per_byte, s.options.ilp),
                lambda_s_per_byte, detail);
}

std::vector<IntraResult> IntraStage::frontier(int max_points, Detail detail,
                                              const IntraResult* least_time) const {
  const Impl& s = *impl_;
  if (s.final) return {s.base};
  std::vector<IntraResult> out;
  const IlpSolution* first = least_time != nullptr ? &least_time->ilp : nullptr;
  for (FrontierPoint& p : memory_frontier(s.problem, s.options.ilp, max_points, first)) {
    out.push_back(finish(std::move(p.solution), p.lambda_s_per_byte, detail));
  }
  return out;
}

IntraResult IntraStage::complete(const IntraResult& costs) const {
  if (impl_->final) return impl_->base;
  return finish(costs.ilp, costs.memory_weight_s_per_byte, Detail::kFull);
}

IntraResult solve_intra_op(const TrainingGraph& training, std::int64_t layer_begin,
                           std::int64_t layer_end, const ClusterSpec& cluster,
                           const StagePlacement& placement, const IntraOptions& options) {
  return IntraStage(training, layer_begin, layer_end, cluster, placement, options).solve();
}

// The result of a solution of the stage's ILP: times, bytes and memory re-evaluated op by op.
IntraResult IntraStage::finish(IlpSolution solution, double lambda_s_per_byte,
                               Detail detail) const {
  const bool full = detail == Detail::kFull;
  const Impl& st = *impl_;
  const StageModel& m = st.model;
  const Graph& graph = *st.graph;
  IntraResult result = st.base;
  result.memory_weight_s_per_byte = lambda_s_per_byte;
  result.ilp = std::move(solution);
  result.status = result.ilp.status;
  if (result.status != SolveStatus::kOptimal && result.status != SolveStatus::kFeasible) {
    result.message =
        result.ilp.message.empty() ? solve_status_name(result.status) : result.ilp.message;
    return result;
  }
  // Re-evaluate the choice op by op (not through the ILP's matrices): STYLE.md 28.
  std::vector<StrategyIdx> op_choice(m.ops.size());
  for (std::size_t i = 0; i < m.ops.size(); ++i) {
    const StageOp& op = m.ops[i];
    op_choice[i] =
        op.of_node[static_cast<std::size_t>(result.ilp.choice[static_cast<std::size_t>(op.node)])];
  }
  double per_mb = 0, per_it = 0;
  const double B = static_cast<double>(m.micro_batches);
  const auto count_per_iteration = [&](Bucket b, double w) {
    return b == Bucket::kMicrobatch ? w * B : w;
  };
  for (std::size_t i = 0; i < m.ops.size(); ++i) {
    const StageOp& op = m.ops[i];
    const double t = op.weight * node_time_s(m, static_cast<StageOpIdx>(i), op_choice[i]);
    (op.bucket == Bucket::kMicrobatch ? per_mb : per_it) += t;
    if (!full) continue;
    const Strategy& s = op.strategies()[static_cast<std::size_t>(op_choice[i])];
    for (const InternalComm& c : s.comm) {
      if (m.mesh.axis_size(c.axis) > 1) {
        result.bytes_per_iteration[collective_name(c.kind)] +=
            count_per_iteration(op.bucket, op.weight) * static_cast<double>(c.bytes);
      }
    }
    result.strategy[op.op] = op.original()[static_cast<std::size_t>(op_choice[i])];
    result.strategy_name[op.op] = s.name;
    result.chosen[op.op] = s;
  }
  for (const EdgeTerm& e : m.edges) {
    const StrategyIdx a = op_choice[static_cast<std::size_t>(e.src)];
    const StrategyIdx b = op_choice[static_cast<std::size_t>(e.dst)];
    (e.bucket == Bucket::kMicrobatch ? per_mb : per_it) += e.weight * edge_time_s(m, e, a, b);
    const Layout& from = edge_src_layout(m, e, a);
    const Layout& to = edge_dst_layout(m, e, b);
    if (!full || from == to) continue;
    const Tensor& t = graph.tensor(e.tensor);
    for (const auto& [kind, bytes] :
         bytes_by_kind(plan_resharding(t.shape, t.dtype, from, to, m.mesh))) {
      result.bytes_per_iteration[collective_name(kind)] +=
          count_per_iteration(e.bucket, e.weight) * bytes;
    }
  }
  for (const EdgeTerm& e : m.exits) {
    const StrategyIdx a = op_choice[static_cast<std::size_t>(e.src)];
    (e.bucket == Bucket::kMicrobatch ? per_mb : per_it) += e.weight * exit_time_s(m, e, a);
    Layout from = edge_src_layout(m, e, a), to = from;
    to.partial = kNoAxes;
    if (!full || from == to) continue;
    const Tensor& t = graph.tensor(e.tensor);
    for (const auto& [kind, bytes] :
         bytes_by_kind(plan_resharding(t.shape, t.dtype, from, to, m.mesh))) {
      result.bytes_per_iteration[collective_name(kind)] +=
          count_per_iteration(e.bucket, e.weight) * bytes;
    }
  }
  for (const MemoryTerm& t : m.memory) {
    const double b = memory_bytes(m, t, op_choice[static_cast<std::size_t>(t.op)]);
    (t.activation ? result.activation_memory_bytes : result.static_memory_bytes) += b;
    if (t.borrowed) result.borrowed_parameter_bytes += b;
  }
  result.time_per_microbatch_s = per_mb;
  result.tail_s = per_it;
  const double recomputed = per_mb + per_it / B;
  if (std::abs(recomputed - result.ilp.objective_s) > 1e-9 * std::max(1e-6, recomputed)) {
    throw std::logic_error("solve_intra_op: ILP objective " +
                           std::to_string(result.ilp.objective_s) +
                           " s differs from the re-evaluated " + std::to_string(recomputed) + " s");
  }
  if (full) result.summary = summarize(m, op_choice);
  return result;
}

}  // namespace strata::solver
