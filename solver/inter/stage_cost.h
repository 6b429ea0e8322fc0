// The stage DP's cost function (stage_dp.h StageCostFn) for a GPT model, backed by the intra-op
// pass (solver/intra/intra_pass.h). GPT's blocks are structurally identical, so a stage's cost is
// composed from three per-layer ILPs (embedding, one block, head) per (micro-batch size,
// placement, logical mesh, recomputation), solved once and cached. Lives in solver/inter because
// it speaks StageCandidate; solver/intra never includes solver/inter. Pure C++.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include "solver/cost/cluster_spec.h"
#include "solver/inter/stage_dp.h"
#include "solver/intra/intra_pass.h"
#include "solver/ir/gpt.h"
#include "solver/ir/optimizer.h"

namespace strata::solver {

// How a stage of layers [b, e) of GPT (0 embedding, 1..L blocks, L+1 head) is priced. Its cost
// depends only on (embedding in it, k = blocks in it, head in it, micro-batch size, placement,
// logical mesh, recomputation, variant), the key of the cache. For k <= max_whole_blocks + 1 the
// whole range is one intra-op ILP (exact), on a template GPT of k blocks. Longer ranges
// extrapolate from the two largest exact ones, K = max_whole_blocks:
//   t(k) = t(K) + (k - K) (t(K + 1) - t(K))       (time, tail, static and activation memory)
// The marginal block t(K+1) - t(K) is priced inside a whole-range ILP, seams (the residual
// stream and its gradient between blocks) included, so this is exact whenever the optimal plan
// of a range is periodic in its middle blocks (every block planned alike: data parallel,
// Megatron, ...); the test checks a case. (Summing blocks solved alone is not: a block alone
// takes its input in any layout for free, and the sum undercuts the whole range by 2-40% on
// small GPTs.)
//
// Memory (variants). Variant 0 is the least-time plan (no memory row). When it would not fit
// with the most micro-batches the stage could ever keep in flight, f = min(B, later stages + 1)
// under 1F1B and B under GPipe (set_schedule), variants 1, 2, ... are fitted to in-flight counts
// f, ..., 1 (at most kMaxVariants - 1 distinct counts, geometrically spaced): each is the fastest
// vertex of the range's memory/time frontier (intra_pass.h IntraStage::frontier: the minimisers
// of time + lambda x memory, each the exact least-time plan for a budget of its own memory) whose
// stage memory with that many micro-batches fits the device. The frontier is computed coarsely
// up front (kFrontierPoints vertices, once per template for every stage length); when only its
// leanest vertex fits (or, with set_refine_every_gap, whichever vertex fits first), the gap
// before it is bisected for skipped vertices (kRefineSteps at most, while its ends differ by more
// than kRefineGap in cost). An extrapolated range solves both templates at the weight lambda of a
// (K + 1)-block template's vertex. The stage DP keeps the fastest variant that fits the
// micro-batches its position holds in flight (its exact per-stage memory test), so no ILP ever
// carries a memory row here. Plans strictly between two vertices (not on the convex hull) are not
// offered.
//
// Sending the boundary activation [b, S, H] forward and its gradient back (2 p2p transfers per
// micro-batch) is added to every stage but the last: over the inter-host link when the
// sub-mesh fills whole hosts (the next stage is then on another host), else over the
// intra-host link; each device sends its shard, through its host's link for inter-host.
class IntraStageCostModel {
 public:
  // global_batch: sequences per iteration (B = global_batch / micro_batch_size micro-batches).
  // base: options for every solve (solver, dtype, restrict_to; micro_batches, recompute and the
  // memory budget are set per candidate). Throws std::invalid_argument on a bad model or batch.
  IntraStageCostModel(const GptConfig& model, const OptimizerSpec& optimizer,
                      const ClusterSpec& cluster, std::int64_t global_batch, IntraOptions base,
                      std::int64_t max_whole_blocks = 1);

  // nullopt: the micro-batch size does not divide the global batch, the mesh does not match the
  // sub-mesh, or the intra-op pass finds no (memory-feasible) plan.
  std::optional<StageEstimate> operator()(const StageCandidate& candidate);

  // A StageCostFn sharing this model (and its cache).
  static StageCostFn as_function(std::shared_ptr<IntraStageCostModel> model);

  // Whether a leaner variant bisects any frontier gap its memory target falls in, not only the
  // one before the leanest vertex (see the class comment): for searches of few candidates.
  void set_refine_every_gap(bool on) { refine_every_gap_ = on; }
  // The pipeline schedule the stage DP assumes ("1f1b", the default, or "gpipe"): it sets how
  // many micro-batches a stage can hold in flight, so when leaner variants are offered and what
  // they are fitted to. Throws std::invalid_argument on another name.
  void set_schedule(const std::string& schedule);

  // Intra-op solves so far (each weight and frontier vertex counts); readable from any thread.
  std::int64_t ilp_solves() const { return ilp_solves_.load(); }

  // The intra-op summary ("dp2 x tp4", intra_pass.h) of the range that prices the candidate (the
  // candidate's own range, or the (K + 1)-block template when extrapolated). "" when the
  // candidate is invalid.
  std::string describe(const StageCandidate& candidate);

  // What describe() reads, for filling a plan's stage. `result` is the solve describe() reports,
  // on a template GPT (`graph`, owned by this model and valid while it lives) whose blocks are
  // named h.0 .. h.{blocks - 1} (the range's first block is h.0; its embedding and head ops,
  // when in the range, carry no block index). `stage_blocks` is the candidate's own number of
  // blocks: equal to `blocks` when the range is exact, larger when it is extrapolated (the last
  // template block then stands for the candidate's remaining blocks). bytes_per_iteration is
  // extrapolated in the number of blocks as the cost is (a + (k - K)(b - a) over the K- and
  // (K + 1)-block solves). nullopt when the candidate is invalid.
  struct Piece {
    IntraResult result;
    const TrainingGraph* graph = nullptr;
    std::int64_t blocks = 0;
    std::int64_t stage_blocks = 0;
    std::map<std::string, double> bytes_per_iteration;  // per device, by collective name
  };
  std::optional<Piece> piece(const StageCandidate& candidate);

  // The intra-op solve of a range (embedding?, `blocks` blocks, head?) for the candidate's
  // micro-batch size, placement, mesh and recomputation, minimising time + lambda x memory
  // (lambda 0: the least-time plan). Cached: the reference stays valid while the model lives.
  const IntraResult& solve_template(bool embedding, std::int64_t blocks, bool head,
                                    const StageCandidate& candidate, double lambda_s_per_byte);

  // Most variants a candidate can have (the stage DP's StageDpOptions::max_variants): the
  // least-time plan and 4 in-flight targets (docs/planner.md).
  static constexpr int kMaxVariants = 5;
  // Vertices of a template's memory/time frontier computed up front, and the most further
  // vertices one leaner variant adds by bisecting the gap where its memory target falls.
  static constexpr int kFrontierPoints = 4;
  static constexpr int kRefineSteps = 6;
  static constexpr double kRefineGap = 0.02;

 private:
  // The solves that price a candidate: `lo` the exact range or the K-block template, `hi` the
  // (K + 1)-block one when extrapolated (null when exact); both point into the cache. operator()
  // and piece() both go through it, so a plan's ops come from the very solves that priced its
  // stages.
  // (embedding, blocks, head, mbs, group, hosts, devices, d0, d1, recompute)
  using RangeKey = std::tuple<bool, std::int64_t, bool, std::int64_t, std::int64_t, std::int64_t,
                              std::int64_t, std::int64_t, std::int64_t, bool>;
  struct Priced {
    StageEstimate estimate;
    const IntraResult* lo = nullptr;  // IntraStage::Detail::kCosts results
    const IntraResult* hi = nullptr;
    RangeKey lo_key, hi_key;
  };
  std::optional<Priced> price(const StageCandidate& candidate);
  // A stage's layers as the templates see them: embedding?, k blocks, head?.
  struct Range {
    bool embedding = false;
    std::int64_t blocks = 0;
    bool head = false;
  };
  bool estimate_at(const Range& range, const StageCandidate& c, double lambda, Priced& out);
  bool leaner_variant(const Range& range, const StageCandidate& c, std::int64_t in_flight,
                      double capacity, Priced& p);
  bool refine_frontier(bool embedding, std::int64_t blocks, bool head, const StageCandidate& c,
                       std::size_t j);

  RangeKey range_key(bool embedding, std::int64_t blocks, bool head, const StageCandidate& c) const;
  const IntraStage& stage(const RangeKey& key, const StageCandidate& c);
  double least_memory(bool embedding, std::int64_t blocks, bool head, const StageCandidate& c);
  const std::vector<IntraResult>& frontier(bool embedding, std::int64_t blocks, bool head,
                                           const StageCandidate& c);

  const TrainingGraph& template_graph(std::int64_t micro_batch_size, std::int64_t blocks);

  GptConfig model_;
  OptimizerSpec optimizer_;
  ClusterSpec cluster_;
  std::int64_t global_batch_ = 1;
  IntraOptions base_;
  std::int64_t max_whole_blocks_ = 1;
  // per (micro-batch size, blocks): the training graph of a GPT with that many blocks
  std::map<std::pair<std::int64_t, std::int64_t>, TrainingGraph> templates_;
  IntraCache intra_cache_;  // strategies and resharding times shared by the stages below
  std::map<RangeKey, IntraStage> stages_;                       // built ILPs
  std::map<std::pair<RangeKey, double>, IntraResult> results_;  // (range, lambda) -> solve
  std::map<RangeKey, std::vector<IntraResult>> frontiers_;
  std::atomic<std::int64_t> ilp_solves_{0};
  bool refine_every_gap_ = false;
  bool gpipe_ = false;
};

}  // namespace strata::solver
