// Follower merging of the intra-op pass (Alpa's CostGraph "follow", ALPA_FACTS 1.6): a light op
// whose strategy is determined by one operand's layout shares the ILP node of that operand's
// producer, so a GPT block's ~70 ops become ~20 nodes. The rule and the choice of the follower's
// strategy are written out below; tests check that merging leaves the optimum unchanged on a
// small stage. Pure C++, deterministic.
#include <set>

#include "solver/intra/intra_model.h"

namespace strata::solver::detail {
namespace {

// Light ops: elementwise or a normalisation/reduction along one index, memory-bound, whose
// every index is carried by one operand (the one they follow). Matmuls, embeddings, the
// cross-entropy and the optimizer update are never followers: their strategy is the decision.
bool is_light(OpKind kind) {
  switch (kind) {
    case OpKind::kBiasAdd:
    case OpKind::kGelu:
    case OpKind::kGeluGrad:
    case OpKind::kCausalMask:
    case OpKind::kCausalMaskGrad:
    case OpKind::kSoftmax:
    case OpKind::kSoftmaxGrad:
    case OpKind::kAdd:
    case OpKind::kLayerNorm:
    case OpKind::kLayerNormGrad:
    case OpKind::kReduceSum:
    case OpKind::kSplitHeads:
    case OpKind::kMergeHeads:
    case OpKind::kPositionEmbedding:
    case OpKind::kSumSquares:
      return true;
    default:
      return false;
  }
}

bool is_update(OpKind kind) { return kind == OpKind::kAdamW || kind == OpKind::kSgd; }

// Whether op i's strategies are told apart by the layout of input k (the map strategy -> input
// k's layout is injective): then following that input determines the op.
bool determined_by_input(const StageOp& op, int k) {
  std::set<Layout> seen;
  for (const Strategy& s : op.strategies()) {
    if (!seen.insert(s.inputs.at(static_cast<std::size_t>(k))).second) return false;
  }
  return true;
}

struct FollowLink {
  StageOpIdx leader = -1;
  int input = 0;         // the follower's input that carries the leader's layout
  int leader_slot = 0;   // producer: the leader's output slot; sibling: the leader's input slot
  bool sibling = false;  // sum-of-squares following its optimizer op (both read the gradient)
};

// The follower's strategy for one leader layout L of the followed tensor:
//   1. the strategy whose input equals L exactly (a partial-accepting gradient add),
//   2. else the one whose input is L without its partial axes (Alpa's FollowInsCostVector: the
//      follower takes the operand's sharding; a pending sum is all-reduced on the edge),
//   3. else (the follower cannot split the way L does, e.g. softmax on split keys) the cheapest
//      resharding plus node time, ties to the highest index (Alpa's MergeNode ties go to R,
//      which enumerate_strategies lists last).
StrategyIdx choose(const StageModel& m, StageOpIdx f, int k, const Layout& leader_layout) {
  const StageOp& op = m.ops[static_cast<std::size_t>(f)];
  Layout plain = leader_layout;
  plain.partial = kNoAxes;
  const Layout* wants[2] = {&leader_layout, &plain};
  for (const Layout* want : wants) {
    for (std::size_t s = 0; s < op.strategies().size(); ++s) {
      if (op.strategies()[s].inputs[static_cast<std::size_t>(k)] == *want) {
        return static_cast<StrategyIdx>(s);
      }
    }
  }
  const TensorId t =
      m.graph->ops[static_cast<std::size_t>(op.op)].inputs[static_cast<std::size_t>(k)];
  StrategyIdx best = 0;
  double best_s = kForbidden;
  for (std::size_t s = 0; s < op.strategies().size(); ++s) {
    const double c = reshard_time_s(m, t, leader_layout,
                                    op.strategies()[s].inputs[static_cast<std::size_t>(k)]) +
                     node_time_s(m, f, static_cast<StrategyIdx>(s));
    if (c <= best_s) best_s = c, best = static_cast<StrategyIdx>(s);
  }
  return best;
}

}  // namespace

// Rule (which op follows which):
//  (1) op F is light (is_light) and has more than one strategy;
//  (2) producer follow: among F's inputs produced by another op of the stage (not parameters,
//      dataset inputs or tensors from other stages), those whose layout determines F's strategy
//      (determined_by_input); F follows the one produced last (the deepest operand, Alpa's
//      depth priority: the residual add follows the branch, not the older residual stream);
//  (3) sibling follow: a sum of squares of a parameter gradient follows the optimizer update of
//      that parameter in the stage, reading the gradient in the update's layout; the gradient's
//      resharding is then shared with the update and paid once, on the update's edge (without
//      this the gradient of a ZeRO plan would be reduced twice);
//  (4) chains compose: a follower of a follower joins the first leader's node;
//  (5) an op with an output read outside the stage (the stage's last residual add, the gradient
//      sum of the stage's input) leads its own node: such an output leaves in any layout for
//      free, so a layout other than its operand's (a free slice, then a smaller local op) can be
//      strictly better, and following would lose it. Elsewhere the deviation would have to be
//      undone for the follower's in-stage readers (a collective, >= alpha), which tests show is
//      never cheaper on GPT stages. The sum of squares is exempt: its scalar exit is reduced
//      either way (the exit term of intra_pass.cc).
// Strategy of F per node strategy: choose() above. A follower's edge to its leader becomes part
// of the node's cost (intra_pass.cc); its other edges attach to the node through of_node.
void merge_followers(StageModel& m, bool merge) {
  const Graph& g = *m.graph;
  // Producer (stage op, output slot) of every tensor made in the stage.
  std::map<TensorId, std::pair<StageOpIdx, int>> producer;
  std::map<TensorId, StageOpIdx> update_of_grad;  // gradient -> the optimizer op reading it
  for (std::size_t i = 0; i < m.ops.size(); ++i) {
    const Op& op = g.ops[static_cast<std::size_t>(m.ops[i].op)];
    for (std::size_t j = 0; j < op.outputs.size(); ++j) {
      producer[op.outputs[j]] = {static_cast<StageOpIdx>(i), static_cast<int>(j)};
    }
    if (is_update(op.kind)) update_of_grad[op.inputs.at(1)] = static_cast<StageOpIdx>(i);
  }

  // Tensors read by ops outside the stage.
  std::set<TensorId> leaves;
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    if (m.index_of.count(static_cast<OpId>(o))) continue;
    for (TensorId t : g.ops[o].inputs) leaves.insert(t);
  }
  std::vector<FollowLink> link(m.ops.size());
  for (std::size_t i = 0; merge && i < m.ops.size(); ++i) {
    StageOp& f = m.ops[i];
    const Op& op = g.ops[static_cast<std::size_t>(f.op)];
    if (!is_light(op.kind) || f.strategies().size() < 2) continue;  // (1)
    bool leaves_stage = false;                                      // (5)
    for (TensorId t : op.outputs) leaves_stage = leaves_stage || leaves.count(t) > 0;
    if (leaves_stage && op.kind != OpKind::kSumSquares) continue;
    if (op.kind == OpKind::kSumSquares) {  // (3)
      const auto it = update_of_grad.find(op.inputs.at(0));
      if (it != update_of_grad.end()) link[i] = {it->second, 0, 1, true};
      continue;
    }
    OpId latest = -1;  // (2)
    for (std::size_t k = 0; k < op.inputs.size(); ++k) {
      const auto it = producer.find(op.inputs[k]);
      if (it == producer.end() || it->second.first == static_cast<StageOpIdx>(i)) continue;
      if (!determined_by_input(f, static_cast<int>(k))) continue;
      const OpId p = m.ops[static_cast<std::size_t>(it->second.first)].op;
      if (p > latest) {
        latest = p;
        link[i] = {it->second.first, static_cast<int>(k), it->second.second, false};
      }
    }
  }

  // Leaders first (in op order), then followers in op order: a producer precedes its
  // follower, and a sibling's leader (an optimizer update) is never a follower.
  m.num_nodes = 0;
  for (std::size_t i = 0; i < m.ops.size(); ++i) {
    StageOp& op = m.ops[i];
    op.leader = link[i].leader;
    op.shares_input_reshard = false;
    if (op.leader >= 0) continue;
    op.node = m.num_nodes++;
    op.of_node.resize(op.strategies().size());
    for (std::size_t s = 0; s < op.strategies().size(); ++s)
      op.of_node[s] = static_cast<StrategyIdx>(s);
  }
  for (std::size_t i = 0; i < m.ops.size(); ++i) {
    if (link[i].leader < 0) continue;
    const FollowLink& l = link[i];
    const StageOp& leader = m.ops[static_cast<std::size_t>(l.leader)];
    StageOp& f = m.ops[i];
    f.node = leader.node;
    f.of_node.resize(leader.of_node.size());
    bool all_exact = true;
    for (std::size_t a = 0; a < leader.of_node.size(); ++a) {
      const Strategy& ls = leader.strategies()[static_cast<std::size_t>(leader.of_node[a])];
      const Layout& layout = l.sibling ? ls.inputs.at(static_cast<std::size_t>(l.leader_slot))
                                       : ls.outputs.at(static_cast<std::size_t>(l.leader_slot));
      f.of_node[a] = choose(m, static_cast<StageOpIdx>(i), l.input, layout);
      all_exact = all_exact && f.strategies()[static_cast<std::size_t>(f.of_node[a])]
                                       .inputs[static_cast<std::size_t>(l.input)] == layout;
    }
    // (3) the shared resharding needs the same layout for every choice; otherwise the sum of
    // squares keeps its own edge from the gradient's producer.
    f.shares_input_reshard = l.sibling && all_exact;
  }
}

}  // namespace strata::solver::detail
