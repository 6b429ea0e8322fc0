// Memory model of the intra-op pass: which tensors of a stage occupy device memory, per device,
// as sharded by the chosen strategies (DESIGN.md sections 3 and 5). Static bytes (parameters,
// gradients, optimizer state, and with recomputation the working set of one recomputed forward)
// plus stored activations of one micro-batch (the DP multiplies those by the in-flight count).
// Transient buffers (a ZeRO parameter gathered for one op, resharding scratch) are not counted.
// Pure C++.
#include "solver/intra/intra_model.h"

namespace strata::solver::detail {
namespace {

bool is_update(OpKind kind) { return kind == OpKind::kAdamW || kind == OpKind::kSgd; }
bool is_16bit(const std::string& dtype) { return dtype == "bf16" || dtype == "f16"; }

}  // namespace

// Terms (bytes per device; "local" = elements of the shard the strategy's layout gives):
//  (m1) a parameter updated in the stage (its optimizer op with k state tensors, k = 2 AdamW,
//       1 SGD), in its storage layout (the update's input 0; p, g and the state share it). With
//       e = bytes of the compute dtype (2 under 16-bit compute, else the parameter's in the
//       graph) and w = bytes of the master dtype (IntraOptions::master_dtype; by default 4
//       under 16-bit compute, else e):
//         mixed (w > e):   local x (w master + w gradient accumulator + w k state + e compute
//                          copy); bf16 with f32 masters: 10 + 4k
//         else:            local x e (1 + 1 + k)
//       keep_gathered_params (ZeRO-2): the split storage holds master, gradient and state
//       (w (2 + k), or e (1 + k)), and a whole compute copy (e) is kept gathered.
//  (m2) a parameter read in the stage but updated elsewhere (GPT's tied wte in the head stage):
//       a copy and its gradient, 2e per element, in the first reader's input layout.
//  (m3) a forward output read by a backward op of the stage: stored for the backward pass (a
//       tensor only the next stage's backward reads is stored there, by m4), in the layout
//       its producer makes it (one micro-batch). With recomputation (per layer, as Megatron's
//       activation checkpointing and Alpa's remat of each layer): backward recomputes one layer
//       at a time from its stored input, so only one layer's forward outputs exist at once:
//       the m3 terms of the layer with the most such bytes (unsharded; ties to the lowest
//       layer), static, not activation; other layers' m3 terms are not counted.
//  (m4) a stage input (activation from the previous stage, dataset tokens and targets) read by
//       a backward op of the stage, or by any op when recomputing: stored per micro-batch, in the
//       layout of its first reader in the stage.
//  (m5) with recomputation, each layer's input checkpoint: a forward output read by a forward
//       op of a later layer of the stage (GPT's residual stream between blocks), stored per
//       micro-batch in the layout its producer makes it.
void add_memory_terms(StageModel& m, bool recompute, bool keep_gathered_params) {
  const Graph& g = *m.graph;
  const bool half = is_16bit(m.dtype);
  const double master_bytes =
      !m.master_dtype.empty() ? static_cast<double>(dtype_size_bytes(parse_dtype(m.master_dtype)))
                              : 0.0;
  // Readers of every tensor, across the whole graph, and the stage's own products.
  std::map<TensorId, std::vector<OpId>> readers;
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    for (TensorId t : g.ops[o].inputs) readers[t].push_back(static_cast<OpId>(o));
  }
  std::map<TensorId, StageOpIdx> made_in_stage;
  std::map<TensorId, StageOpIdx> update_of_param;
  for (std::size_t i = 0; i < m.ops.size(); ++i) {
    const Op& op = g.ops[static_cast<std::size_t>(m.ops[i].op)];
    for (TensorId t : op.outputs) made_in_stage[t] = static_cast<StageOpIdx>(i);
    if (is_update(op.kind)) update_of_param[op.inputs.at(0)] = static_cast<StageOpIdx>(i);
  }
  const auto read_by_backward = [&](TensorId t, bool stage_only) {
    const auto it = readers.find(t);
    if (it == readers.end()) return false;
    for (OpId o : it->second) {
      if (g.ops[static_cast<std::size_t>(o)].phase != OpPhase::kBackward) continue;
      if (!stage_only || m.index_of.count(o)) return true;
    }
    return false;
  };

  // The layer whose forward outputs are the recompute working set (m3 with recomputation).
  const auto stored_for_backward = [&](TensorId t) { return read_by_backward(t, true); };
  int working_layer = -1;
  if (recompute) {
    std::map<int, double> bytes_of_layer;
    for (const StageOp& sop : m.ops) {
      const Op& op = g.ops[static_cast<std::size_t>(sop.op)];
      if (op.phase != OpPhase::kForward) continue;
      for (TensorId t : op.outputs) {
        if (!stored_for_backward(t)) continue;
        const Tensor& tensor = g.tensor(t);
        bytes_of_layer[op.layer] += static_cast<double>(num_elements(tensor.shape)) *
                                    static_cast<double>(dtype_size_bytes(tensor.dtype));
      }
    }
    double most = -1;
    for (const auto& [layer, bytes] : bytes_of_layer) {
      if (bytes > most) most = bytes, working_layer = layer;
    }
  }
  const auto read_by_later_forward = [&](TensorId t, int layer) {
    const auto it = readers.find(t);
    if (it == readers.end()) return false;
    for (OpId o : it->second) {
      const Op& r = g.ops[static_cast<std::size_t>(o)];
      if (r.phase == OpPhase::kForward && r.layer > layer && m.index_of.count(o)) return true;
    }
    return false;
  };

  std::map<TensorId, bool> seen_input;  // (m2), (m4): first reader only
  for (std::size_t i = 0; i < m.ops.size(); ++i) {
    const auto si = static_cast<StageOpIdx>(i);
    const Op& op = g.ops[static_cast<std::size_t>(m.ops[i].op)];
    if (is_update(op.kind)) {  // (m1)
      const Tensor& p = g.tensor(op.inputs.at(0));
      // 16-bit compute keeps a 2-byte compute copy whatever the template graph's dtype
      const double e = half ? 2.0 : static_cast<double>(dtype_size_bytes(p.dtype));
      const double w = master_bytes > 0 ? master_bytes : half ? 4.0 : e;
      const double k = static_cast<double>(op.inputs.size()) - 3;  // p, g, state..., scale
      const bool mixed = w > e;
      if (!keep_gathered_params) {
        m.memory.push_back(
            {si, false, 0, op.inputs[0], mixed ? w * (2 + k) + e : e * (2 + k), false});
      } else {
        m.memory.push_back({si, false, 0, op.inputs[0], mixed ? w * (2 + k) : e * (1 + k), false});
        m.memory.push_back({si, false, 0, op.inputs[0], e, false, true});
      }
      continue;
    }
    if (op.phase != OpPhase::kForward) continue;
    for (std::size_t j = 0; j < op.outputs.size(); ++j) {
      const TensorId t = op.outputs[j];
      const double e = static_cast<double>(dtype_size_bytes(g.tensor(t).dtype));
      if (recompute && read_by_later_forward(t, op.layer)) {  // (m5)
        m.memory.push_back({si, true, static_cast<int>(j), t, e, true});
      }
      if (!stored_for_backward(t)) continue;  // (m3)
      if (recompute && op.layer != working_layer) continue;
      m.memory.push_back({si, true, static_cast<int>(j), t, e, !recompute});
    }
    for (std::size_t k = 0; k < op.inputs.size(); ++k) {
      const TensorId t = op.inputs[k];
      if (made_in_stage.count(t) || seen_input.count(t)) continue;
      const Tensor& tensor = g.tensor(t);
      const double e = static_cast<double>(dtype_size_bytes(tensor.dtype));
      if (tensor.role == TensorRole::kParameter) {  // (m2)
        if (update_of_param.count(t)) continue;
        seen_input[t] = true;
        m.memory.push_back({si, false, static_cast<int>(k), t, 2 * e, false, false, true});
      } else if (tensor.role == TensorRole::kActivation || tensor.role == TensorRole::kInput) {
        seen_input[t] = true;  // (m4)
        if (recompute || read_by_backward(t, true)) {
          m.memory.push_back({si, false, static_cast<int>(k), t, e, true});
        }
      }
    }
  }
}

double memory_bytes(const StageModel& m, const MemoryTerm& t, StrategyIdx s) {
  const Tensor& tensor = m.graph->tensor(t.tensor);
  if (t.full) return static_cast<double>(num_elements(tensor.shape)) * t.bytes_per_element;
  const Strategy& st =
      m.ops[static_cast<std::size_t>(t.op)].strategies()[static_cast<std::size_t>(s)];
  const Layout& layout = t.output ? st.outputs.at(static_cast<std::size_t>(t.slot))
                                  : st.inputs.at(static_cast<std::size_t>(t.slot));
  return static_cast<double>(num_elements(local_shape(tensor.shape, layout, m.mesh))) *
         t.bytes_per_element;
}

}  // namespace strata::solver::detail
