// Memoised pieces of intra-op stage models (intra_pass.h IntraStage), shared by every stage one
// planner builds. The stage cost model of solver/inter builds thousands of stages whose ops
// repeat: the same block at every stage length, with and without recomputation, beside or
// without the embedding. Enumerating an op's strategies and pricing a resharding are pure
// functions of what they read, so their results are kept by exactly that:
//   strategies:  enumerate_strategies(graph, op, mesh) reads the op's kind and the shapes and
//                dtypes of its operands (its index map, extents, FLOPs and internal collectives
//                follow from those), so the key is (kind, phase, operand shapes and dtypes,
//                mesh); the stage model's own list for the op (extended and filtered by rules
//                that read the same plus the op's phase) is kept under that key and a name the
//                caller gives those rules;
//   reshard:     resharding_time_s(plan_resharding(shape, dtype, from, to, mesh), links), keyed
//                by (shape, dtype, from, to) inside a context of (mesh, links).
// Deterministic (ordered maps). Not thread-safe: one per planning thread. Pure C++.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "solver/cost/cost_model.h"
#include "solver/intra/layout.h"
#include "solver/intra/strategy.h"
#include "solver/ir/graph.h"

namespace strata::solver {

class IntraCache {
 public:
  // Resharding times of one (mesh, links) context, by (shape, dtype, from, to).
  class Reshards {
   public:
    Reshards(MeshShape mesh, const MeshAxisLinks& links) : mesh_(mesh), links_(links) {}
    double time_s(const Shape& shape, DType dtype, const Layout& from, const Layout& to);

   private:
    MeshShape mesh_;
    MeshAxisLinks links_;
    // std::less<>: looked up by a tuple of references, without copying the key
    std::map<std::tuple<Shape, DType, Layout, Layout>, double, std::less<>> times_;
  };

  // The strategies a stage model offers an op, each with its index in enumerate_strategies'
  // list (or, for one the rules add, its index after that list).
  struct OpChoices {
    std::vector<Strategy> strategies;
    std::vector<std::int32_t> original;
  };
  // make(strategies(graph, op, mesh)) under the name `rules`, memoised: `make` must be a pure
  // function of that list, the op's kind and phase, the mesh and what `rules` names.
  const OpChoices& op_choices(const Graph& graph, const Op& op, MeshShape mesh,
                              const std::string& rules,
                              const std::function<OpChoices(const std::vector<Strategy>&)>& make);
  // The resharding context of (mesh, links); stable while the cache lives.
  Reshards& reshards(MeshShape mesh, const MeshAxisLinks& links);

 private:
  // enumerate_strategies(graph, op, mesh), memoised (what op_choices' `make` is given).
  const std::vector<Strategy>& strategies(const Graph& graph, const Op& op, MeshShape mesh);

  // (kind, phase, operands, d0, d1)
  using OpKey =
      std::tuple<OpKind, OpPhase, std::vector<std::pair<Shape, DType>>, std::int64_t, std::int64_t>;
  static OpKey op_key(const Graph& graph, const Op& op, MeshShape mesh);
  std::map<OpKey, std::vector<Strategy>> strategies_;
  std::map<std::pair<OpKey, std::string>, OpChoices> choices_;
  // (d0, d1, per axis: alpha, beta, crosses hosts, sharers)
  using LinksKey = std::tuple<std::int64_t, std::int64_t, double, double, bool, std::int64_t,
                              double, double, bool, std::int64_t>;
  std::map<LinksKey, std::unique_ptr<Reshards>> reshards_;
};

}  // namespace strata::solver
