// Internal to the intra-op pass (intra_pass.cc, intra_merge.cc, intra_memory.cc): the stage's
// cost model as plain data, before it is lowered to an IlpProblem. Every cost and memory term
// is kept per op and per op strategy, so the ILP (over merged nodes) and the re-evaluation of a
// solution (over ops, STYLE.md 28) read the same terms through different paths.
// Not a public header: only solver/intra/intra_*.cc include it. Pure C++.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "solver/intra/intra_cache.h"
#include "solver/intra/intra_pass.h"
#include "solver/intra/resharding.h"

namespace strata::solver::detail {

// When a cost term is paid: every micro-batch, or once per iteration (on the last micro-batch:
// gradient collectives and optimizer ops). The per-micro-batch ILP objective weighs the latter
// by 1 / B.
enum class Bucket : std::uint8_t { kMicrobatch, kIteration };

using StageOpIdx = std::int32_t;  // index into StageModel::ops

struct StageOp {
  OpId op = 0;
  // After restrict_to (and extra partial-add strategies), with per strategy its index in
  // enumerate_strategies or, for a partial-add strategy, its index after those. Shared with
  // other stages through the IntraCache (valid while it lives).
  const IntraCache::OpChoices* choices = nullptr;
  const std::vector<Strategy>& strategies() const { return choices->strategies; }
  const std::vector<std::int32_t>& original() const { return choices->original; }
  Bucket bucket = Bucket::kMicrobatch;
  double weight = 1;  // executions per bucket (2 for recomputed forward ops)
  // Follower merging (intra_merge.cc): the ILP node this op belongs to and, per strategy of
  // that node, this op's strategy.
  NodeIdx node = -1;
  std::vector<StrategyIdx> of_node;
  StageOpIdx leader = -1;             // the op it follows (-1: it leads its own node)
  bool shares_input_reshard = false;  // sum-of-squares following its optimizer op (input 0's
                                      // resharding is the optimizer's, paid once there)
};

// One resharding: `tensor` from a layout of op `src` (its output `src_slot`, or, for a
// parameter's storage, its optimizer op's input 0) to the layout op `dst` requires at input
// `dst_input`.
struct EdgeTerm {
  StageOpIdx src = 0, dst = 0;
  bool src_is_storage = false;  // src layout = src strategy's inputs[0] (the optimizer op)
  int src_slot = 0;             // output slot of src (ignored for storage)
  int dst_input = 0;
  TensorId tensor = kNoTensor;
  Bucket bucket = Bucket::kMicrobatch;
  double weight = 1;
};

// Memory of one tensor as laid out by one op's strategy: local elements x bytes_per_element.
struct MemoryTerm {
  StageOpIdx op = 0;
  bool output = false;  // layout of output `slot` (else of input `slot`)
  int slot = 0;
  TensorId tensor = kNoTensor;
  double bytes_per_element = 0;
  bool activation = false;  // stored per in-flight micro-batch (else static)
  bool full = false;        // count the whole tensor regardless of layout (a gathered copy)
  bool borrowed = false;    // a parameter updated by another stage (m2)
};

struct StageModel {
  const Graph* graph = nullptr;
  MeshShape mesh;
  MeshAxisLinks links;
  DeviceSpec device;
  std::string dtype;
  std::string master_dtype;  // IntraOptions::master_dtype
  std::int64_t micro_batches = 1;
  std::int64_t in_flight = 1;
  std::vector<StageOp> ops;  // the stage's ops in execution order
  std::map<OpId, StageOpIdx> index_of;
  std::vector<EdgeTerm> edges;
  // Tensors read outside the stage: they leave complete, so a partial output pays its reduction
  // (to the same layout without the partial axes) in the producing op. dst / dst_input unused.
  std::vector<EdgeTerm> exits;
  std::vector<MemoryTerm> memory;
  NodeIdx num_nodes = 0;
  // Resharding times of this mesh and links, shared with other stages (intra_cache.h).
  IntraCache::Reshards* reshards = nullptr;
};

// Seconds of one execution of op `i` with strategy `s`: local compute + internal collectives.
double node_time_s(const StageModel& m, StageOpIdx i, StrategyIdx s);
// Seconds of one resharding of `e` with the ops' strategies `src_s`, `dst_s`.
double edge_time_s(const StageModel& m, const EdgeTerm& e, StrategyIdx src_s, StrategyIdx dst_s);
// Seconds of reducing a partial exit (0 when the output is not partial).
double exit_time_s(const StageModel& m, const EdgeTerm& e, StrategyIdx src_s);
const Layout& edge_src_layout(const StageModel& m, const EdgeTerm& e, StrategyIdx src_s);
const Layout& edge_dst_layout(const StageModel& m, const EdgeTerm& e, StrategyIdx dst_s);
double reshard_time_s(const StageModel& m, TensorId t, const Layout& from, const Layout& to);
// Bytes per device of memory term `t` under strategy `s` of its op.
double memory_bytes(const StageModel& m, const MemoryTerm& t, StrategyIdx s);

// Follower merging (intra_merge.cc): sets node, of_node, leader of every op and num_nodes.
// With merge == false every op is its own node.
void merge_followers(StageModel& m, bool merge);
// Memory terms (intra_memory.cc).
void add_memory_terms(StageModel& m, bool recompute, bool keep_gathered_params);

}  // namespace strata::solver::detail
