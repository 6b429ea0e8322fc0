// build_local_program: variants, local ops, shard attributes.
#include "app/local_program.h"

#include <stdexcept>

namespace strata::app {

using solver::Layout;
using solver::OpKind;
using solver::TensorId;

TensorId LocalProgram::local(TensorId global, const Layout& layout) const {
  const auto it = variants.find({global, layout});
  if (it == variants.end()) {
    throw std::out_of_range("local program: no local tensor for tensor " + std::to_string(global) +
                            " in layout " + solver::to_string(layout));
  }
  return it->second;
}

namespace {

class Builder {
 public:
  Builder(const solver::Graph& g, LocalProgram& lp) : g_(g), lp_(lp) {}

  TensorId variant(TensorId t, const Layout& layout) {
    const auto key = std::make_pair(t, layout);
    if (const auto it = lp_.variants.find(key); it != lp_.variants.end()) return it->second;
    solver::Tensor local = g_.tensor(t);
    local.name += "@" + solver::to_string(layout);
    local.shape = solver::local_shape(g_.tensor(t).shape, layout, lp_.mesh);
    local.file_shape = {};
    const auto id = static_cast<TensorId>(lp_.graph.tensors.size());
    lp_.graph.tensors.push_back(std::move(local));
    lp_.variants[key] = id;
    return id;
  }

  // The block this device holds of global tensor t in `layout`.
  std::vector<solver::DimSlice> slice(TensorId t, const Layout& layout) const {
    return solver::shard_slice(g_.tensor(t).shape, layout, lp_.mesh, lp_.c0, lp_.c1);
  }

 private:
  const solver::Graph& g_;
  LocalProgram& lp_;
};

std::int64_t elements(const solver::Shape& s) {
  std::int64_t n = 1;
  for (std::int64_t d : s) n *= d;
  return n;
}

// Attributes telling the kernels where the shard sits (executor.h).
void add_shard_attrs(const solver::Graph& g, const solver::Op& global, const solver::OpLayouts& l,
                     const Builder& b, const LocalProgram& lp, solver::Op& local) {
  const auto& shape_of = [&](TensorId id) -> const solver::Shape& {
    return lp.graph.tensor(id).shape;
  };
  switch (global.kind) {
    case OpKind::kSplitHeads:
    case OpKind::kMergeHeads: {
      const TensorId part =
          global.kind == OpKind::kSplitHeads ? local.outputs.at(0) : local.inputs.at(0);
      local.attrs["heads"] = shape_of(part).at(1);  // [B, A, S, D]: local heads
      if (global.kind == OpKind::kMergeHeads) {
        // merged [B, S, P, A, D]: with P split, this device writes parts [offset, offset + n)
        const Layout& merged = l.outputs.at(0);
        if (merged.rank() == 5 && merged.dims[2] != solver::kNoAxes) {
          const auto s = b.slice(global.outputs[0], merged);
          local.attrs["parts"] = s[2].size;
          local.attrs["part_offset"] = s[2].offset;
        }
      }
      return;
    }
    case OpKind::kEmbedding: {
      if (l.inputs.at(1).dims.at(0) != solver::kNoAxes)
        local.attrs["vocab_offset"] = b.slice(global.inputs[1], l.inputs[1])[0].offset;
      return;
    }
    case OpKind::kEmbeddingGrad: {
      if (l.outputs.at(0).dims.at(0) != solver::kNoAxes)
        local.attrs["vocab_offset"] = b.slice(global.outputs[0], l.outputs[0])[0].offset;
      return;
    }
    case OpKind::kSoftmax:
      if (solver::attr_int_or(global, "causal", 0) == 0) return;
      [[fallthrough]];
    case OpKind::kCausalMask:
    case OpKind::kCausalMaskGrad: {
      const auto s = b.slice(global.inputs[0], l.inputs[0]);
      local.attrs["row_offset"] = s[s.size() - 2].offset;
      local.attrs["col_offset"] = s[s.size() - 1].offset;
      return;
    }
    case OpKind::kAttention:
    case OpKind::kAttentionGrad: {  // q [B,A,S,D] and k [B,A,T,D]: the shard's first query, key
      local.attrs["row_offset"] = b.slice(global.inputs[0], l.inputs[0])[2].offset;
      local.attrs["col_offset"] = b.slice(global.inputs[1], l.inputs[1])[2].offset;
      return;
    }
    case OpKind::kCrossEntropy:
    case OpKind::kCrossEntropyGrad: {
      const solver::Shape& logits = g.tensor(global.inputs[0]).shape;
      const std::int64_t global_rows = elements(logits) / logits.back();
      const solver::Shape& local_logits = shape_of(local.inputs[0]);
      if (local_logits == logits) return;  // unsharded: the plain kernels
      local.attrs["shard_scale"] = 1.0 / static_cast<double>(global_rows);
      local.attrs["vocab_offset"] = b.slice(global.inputs[0], l.inputs[0]).back().offset;
      return;
    }
    default:
      return;
  }
}

}  // namespace

LocalProgram build_local_program(const solver::TrainingGraph& training,
                                 const solver::ProgramSet& ps, std::int64_t stage, std::int64_t c0,
                                 std::int64_t c1) {
  const solver::Graph& g = training.graph;
  LocalProgram lp;
  lp.stage = stage;
  lp.mesh = ps.stage(stage).mesh;
  lp.c0 = c0;
  lp.c1 = c1;
  lp.graph.meta = g.meta;
  Builder b(g, lp);
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    if (ps.stage_of_op[o] != stage) continue;
    const solver::Op& op = g.ops[o];
    const solver::OpLayouts& l = ps.layouts[o];
    solver::Op local = op;
    for (std::size_t k = 0; k < op.inputs.size(); ++k)
      local.inputs[k] = b.variant(op.inputs[k], l.inputs[k]);
    for (std::size_t j = 0; j < op.outputs.size(); ++j)
      local.outputs[j] = b.variant(op.outputs[j], l.outputs[j]);
    add_shard_attrs(g, op, l, b, lp, local);
    lp.local_op[static_cast<solver::OpId>(o)] = static_cast<solver::OpId>(lp.graph.ops.size());
    lp.global_op.push_back(static_cast<solver::OpId>(o));
    lp.graph.ops.push_back(std::move(local));
  }
  for (const auto& [p, layout] : ps.storage_layout)
    if (ps.owner_stage[static_cast<std::size_t>(p)] == stage) b.variant(p, layout);
  for (int i : ps.stage(stage).sends) {
    const solver::Transfer& tr = ps.transfers[static_cast<std::size_t>(i)];
    b.variant(tr.tensor, tr.src_layout);
  }
  for (int i : ps.stage(stage).recvs) {
    const solver::Transfer& tr = ps.transfers[static_cast<std::size_t>(i)];
    b.variant(tr.tensor, tr.land_layout);
  }
  return lp;
}

}  // namespace strata::app
