// The stage DP's cost function (stage_dp.h StageCostFn) for a GPT model, backed by the intra-op
// pass (solver/intra/intra_pass.h). GPT's blocks are structurally identical, so a stage's cost is
// composed from three per-layer ILPs (embedding, one block, head) per (micro-batch size,
// placement, logical mesh, recomputation), solved once and cached. Lives in solver/inter because
// it speaks StageCandidate; solver/intra never includes solver/inter. Pure C++.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <tuple>

#include "solver/cost/cluster_spec.h"
#include "solver/inter/stage_dp.h"
#include "solver/intra/intra_pass.h"
#include "solver/ir/gpt.h"
#include "solver/ir/optimizer.h"

namespace strata::solver {

// Composition (exactness argument): a stage of layers [b, e) of GPT (0 embedding, 1..L blocks,
// L+1 head) costs
//   E [b == 0] + k x M + H [e == L + 2],   k = blocks in the range,
// where E, M and H are the intra-op optima of the embedding layer, one block and the head
// layer, each solved alone (tensors entering or leaving the piece free, as at a stage boundary).
// Each piece's ILP is a relaxation of that piece inside the whole-range ILP (the seams between
// pieces, i.e. the residual stream and its gradient, are priced there and free here), so the
// composition is a lower bound of the whole-range optimum, and equal to it when the pieces'
// plans agree on the residual stream's layout at the seams (data parallel, Megatron: the test
// checks a case). Memory and the tail add up the same way. When the composed memory (one
// micro-batch of activations) exceeds the device, the pieces are re-solved with budgets in
// proportion to their unconstrained memory. Sending the boundary activation [b, S, H] forward
// and its gradient back (2 p2p transfers per micro-batch, over the inter-host link when the
// sub-mesh fills whole hosts, else over the intra-host link; each device sends its shard,
// through the host's link for inter-host) is added to every stage but the last.
class IntraStageCostModel {
 public:
  // global_batch: sequences per iteration (B = global_batch / micro_batch_size micro-batches).
  // base: options for every solve (solver, dtype, restrict_to; micro_batches, recompute and the
  // memory budget are set per candidate). Throws std::invalid_argument on a bad model or batch.
  IntraStageCostModel(const GptConfig& model, const OptimizerSpec& optimizer,
                      const ClusterSpec& cluster, std::int64_t global_batch, IntraOptions base);

  // nullopt: the micro-batch size does not divide the global batch, the mesh does not match the
  // sub-mesh, or the intra-op pass finds no (memory-feasible) plan.
  std::optional<StageEstimate> operator()(const StageCandidate& candidate);

  // A StageCostFn sharing this model (and its cache).
  static StageCostFn as_function(std::shared_ptr<IntraStageCostModel> model);

  std::int64_t ilp_solves() const { return ilp_solves_; }  // distinct pieces solved so far

  // One piece alone: 0 = embedding, 1 = block, 2 = head (tests compare the composition with
  // solve_intra_op on a whole range).
  IntraResult solve_piece(int piece, const StageCandidate& candidate, double budget_bytes);

 private:
  const TrainingGraph& template_graph(std::int64_t micro_batch_size);

  GptConfig model_;
  OptimizerSpec optimizer_;
  ClusterSpec cluster_;
  std::int64_t global_batch_ = 1;
  IntraOptions base_;
  std::map<std::int64_t, TrainingGraph> templates_;  // per micro-batch size: 3 blocks
  // (piece, mbs, group, hosts, devices, d0, d1, recompute, budget) -> result
  using Key = std::tuple<int, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                         std::int64_t, std::int64_t, bool, double>;
  std::map<Key, IntraResult> cache_;
  std::int64_t ilp_solves_ = 0;
};

}  // namespace strata::solver
