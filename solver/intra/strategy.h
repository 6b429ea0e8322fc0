// Sharding strategies of one op (DESIGN.md section 4), derived from its index map (ir/index_map.h)
// and never from per-kind tables: a strategy assigns each mesh axis of size > 1 to at most one
// index letter (both axes to one letter = S01, axis 0 major); operand layouts follow from where
// the letters occur. The ILP picks one strategy per op; the executor runs the op's local kernel on
// the shards plus the strategy's internal collectives. Pure C++, deterministic.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "solver/cost/cost_model.h"
#include "solver/intra/layout.h"
#include "solver/ir/graph.h"

namespace strata::solver {

// A collective the op itself runs between its local kernels (not a resharding of an operand).
// Used by the vocab-parallel cross-entropy (and its gradient): with v split on `axis`, each
// device reduces its vocabulary slice, then all-reduces the row max (an all-reduce with max) and
// the row sum of exp(x - max) (an all-reduce with sum) over `axis`.
struct InternalComm {
  Collective kind = Collective::kAllReduce;
  int axis = 0;
  std::int64_t bytes = 0;  // B of DESIGN.md section 4 (all-reduce: each member's buffer)
  std::string what;        // "row_max", "row_sum"
};

struct Strategy {
  // "<in 0> x <in 1> x ... -> <out 0> x <out 1> ...", each operand in the layout notation of
  // layout.h, e.g. matmul bsk,kn->bsn with b on axis 0 and n on axis 1: "S0,R,R x R,S1 ->
  // S0,R,S1"; "()" for an op without outputs (optimizer ops update in place). Unique per op.
  std::string name;
  // The index letter each mesh axis splits ('\0': none). S01 on letter x: {x, x}.
  std::array<char, 2> axis_letter{'\0', '\0'};
  std::vector<Layout> inputs;      // required layout of each op input (never partial)
  std::vector<Layout> outputs;     // layout of each op output as produced (may be partial)
  std::vector<InternalComm> comm;  // in execution order
  double local_flops = 0;  // op_flops / (product of the sizes of the axes assigned a letter)
};

// Every valid strategy of `op` on `mesh`, in a fixed order: for axis-0 choice over
// [letters..., none] (letters in order of first appearance in the index map's inputs, then
// outputs), for axis-1 choice over the same list; so the fully replicated strategy is last
// (Alpa breaks ties toward R, the highest index). A size-1 axis is always "none".
//
// Rules (the layouts follow from the index map):
//  (a) a letter split on axis m splits every operand dim that carries it on m; an operand
//      without the letter is replicated over m (inputs), or partial over m (outputs: a summed
//      `reduced` letter, layernorm-grad's dw/db over split leading indices, a scalar loss).
//  (b) the letter's extent must divide by the product of its axes' sizes (S01: d0 * d1);
//      letters of extent 1, or whose extent cannot be inferred, are never split.
//  (c) composite dims (a reshape written as a group, e.g. "bs(pad)"): a block split of the dim
//      is a split of its major-most letter of extent > 1, so only that letter may be split
//      there. No op kind uses a composite today (tensors carry factored shapes: GPT's qkv is
//      [B,S,3,A,D], so heads a split like any dim and attention is head-parallel); the rule
//      keeps the enumeration correct if a reshape kind comes back.
//  (d) `normalized` letters are not split, except the vocab-parallel cross-entropy and its
//      gradient (v split): internal all-reduces of the row max and row sum over v's axes,
//      [rows] in f32 (f64 for f64 logits), rows = the local token count. The loss comes out
//      partial over v's axes: the device owning a token's target adds that token's term.
//  (e) `gathered` letters are not split, except the vocab-parallel embedding (table split on v:
//      each device looks up its own rows and writes zeros for the others, so the output is
//      partial over v's axes) and its gradient (dtable split on v: each device accumulates only
//      its rows; no communication).
//  (f) a letter absent from every output and not `reduced` is not split (split heads' p: a
//      device cannot hold only some of the op's outputs).
//  (g) optimizer ops (kAdamW, kSgd) are elementwise over the parameter: p, g and the state share
//      one layout, the parameter's storage layout (ZeRO: stored split, the gradient then arrives
//      reduce-scattered and the forward all-gathers the parameter). Their norm/scale pair (the
//      letter c, also kClipByGlobalNorm's output) is never split. kSumSquares on a split gradient
//      yields a scalar partial over the split axes.
//  (h) local_flops is the busiest device's share. It is op_flops / devices, except for causal
//      attention (and its gradient) with the queries s split n ways: the block of the last S / n
//      queries sees the most keys and every device waits for it, so its share of the causal
//      pairs, b (2S - b + 1) / (S (S + 1)) with b = S / n (3/4 for n = 2, 7/16 for n = 4),
//      replaces 1/n.
// Throws std::invalid_argument when the mesh is invalid or the op's shapes contradict its index
// map.
std::vector<Strategy> enumerate_strategies(const Graph& graph, const Op& op, MeshShape mesh);

// The extent of each index letter of `op` (composite letters inferred when exactly one is
// unknown, e.g. split heads' p = 3H / (A * D)); letters that cannot be inferred are absent.
// Throws std::invalid_argument when two occurrences of a letter disagree.
std::vector<std::pair<char, std::int64_t>> index_extents(const Graph& graph, const Op& op);

}  // namespace strata::solver
