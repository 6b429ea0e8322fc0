// Reverse-mode autodiff over the forward ops plus gradient clipping and optimizer updates
// (autodiff.h). One gradient rule per forward kind, written out above its code. A tensor gets a
// gradient only when it depends on a parameter and reaches the loss; a tensor read by several
// ops gets its partial gradients summed by kAdd ops as soon as the last partial exists.
// Pure C++.
#include "solver/ir/autodiff.h"

#include <algorithm>
#include <stdexcept>

#include "solver/ir/shape_inference.h"

namespace strata::solver {
namespace {

// The layer holding a parameter's master copy and optimizer state: the first layer of a shared
// parameter, else the tensor's own layer.
int owner_layer(const Graph& g, TensorId p) {
  for (const SharedParameter& sp : g.shared_parameters) {
    if (sp.tensor == p && !sp.layers.empty()) return sp.layers.front();
  }
  return g.tensor(p).layer;
}

class Builder {
 public:
  Builder(Graph& g, std::size_t num_forward_tensors)
      : g_(g),
        expected_(num_forward_tensors, 0),
        reserved_(num_forward_tensors, 0),
        partials_(num_forward_tensors),
        total_(num_forward_tensors, kNoTensor) {}

  std::vector<int>& expected() { return expected_; }
  TensorId total(TensorId t) const { return total_[static_cast<std::size_t>(t)]; }

  // Name for the next partial gradient of t: "grad:X" when it is the only one, else "grad:X#k".
  std::string partial_name(TensorId t) {
    const auto i = static_cast<std::size_t>(t);
    const std::string base = "grad:" + g_.tensor(t).name;
    const int k = reserved_[i]++;
    return expected_[i] == 1 ? base : base + "#" + std::to_string(k);
  }

  // Records one partial gradient of t; the last one triggers the sum
  //   grad:X = p_0 + p_1 + ... + p_{n-1}   (left to right, one kAdd per term after the first)
  // For a parameter the sum runs at its owner layer (where its optimizer state lives); for an
  // activation at the lowest layer among the partials, i.e. next to the consumers, so a
  // gradient crossing a stage boundary crosses it once, already summed.
  void contribute(TensorId t, TensorId grad) {
    const auto i = static_cast<std::size_t>(t);
    std::vector<TensorId>& parts = partials_[i];
    parts.push_back(grad);
    if (static_cast<int>(parts.size()) < expected_[i]) return;
    if (static_cast<int>(parts.size()) > expected_[i]) {
      throw std::logic_error("autodiff: more gradient contributions than counted for " +
                             g_.tensor(t).name);
    }
    TensorId acc = parts[0];
    const std::string name = g_.tensor(t).name;  // a copy: add_op grows g_.tensors
    int layer = g_.tensor(parts[0]).layer;
    for (TensorId p : parts) layer = std::min(layer, g_.tensor(p).layer);
    if (g_.tensor(t).role == TensorRole::kParameter) layer = owner_layer(g_, t);
    for (std::size_t k = 1; k < parts.size(); ++k) {
      const std::string out =
          k + 1 == parts.size() ? "grad:" + name : "grad:" + name + "#sum" + std::to_string(k);
      const OpId op =
          g_.add_op(OpKind::kAdd, "grad_acc:" + name + "#" + std::to_string(k), {acc, parts[k]}, {},
                    layer, OpPhase::kBackward, TensorRole::kGradient, {out});
      acc = g_.ops[static_cast<std::size_t>(op)].outputs[0];
    }
    total_[i] = acc;
  }

  // Adds one backward op of forward op `fwd`; output i goes to forward tensor targets[i]
  // (kNoTensor: unused output, named "<op>:out<i>").
  std::vector<TensorId> emit(OpKind kind, const Op& fwd, const std::string& suffix,
                             std::vector<TensorId> inputs, Attrs attrs,
                             const std::vector<TensorId>& targets) {
    const std::string name = fwd.name + suffix;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < targets.size(); ++i) {
      names.push_back(targets[i] == kNoTensor ? name + ":out" + std::to_string(i)
                                              : partial_name(targets[i]));
    }
    const OpId id = g_.add_op(kind, name, std::move(inputs), std::move(attrs), fwd.layer,
                              OpPhase::kBackward, TensorRole::kGradient, names);
    const std::vector<TensorId> outs = g_.ops[static_cast<std::size_t>(id)].outputs;
    for (std::size_t i = 0; i < targets.size(); ++i) {
      if (targets[i] != kNoTensor) contribute(targets[i], outs[i]);
    }
    return outs;
  }

 private:
  Graph& g_;
  std::vector<int> expected_;  // partial gradients each forward tensor will receive
  std::vector<int> reserved_;  // partial names handed out so far
  std::vector<std::vector<TensorId>> partials_;
  std::vector<TensorId> total_;  // total gradient, once all partials are in
};

[[noreturn]] void no_rule(const Op& op, const std::string& why) {
  throw std::invalid_argument("autodiff: op " + op.name + " (" + op_kind_name(op.kind) +
                              "): " + why);
}

// Matmul gradient equation: the operand `target` from the other two operands `x`, `y`.
std::string grad_equation(const Op& op, const std::string& x, const std::string& y,
                          const std::string& target) {
  for (char c : target) {
    if (x.find(c) == std::string::npos && y.find(c) == std::string::npos) {
      no_rule(op, std::string("index ") + c + " appears in one input only (a sum over one " +
                      "operand has no matmul gradient)");
    }
  }
  return x + "," + y + "->" + target;
}

}  // namespace

TrainingGraph build_training_graph(const Graph& forward, TensorId loss,
                                   const OptimizerSpec& optimizer) {
  if (loss < 0 || static_cast<std::size_t>(loss) >= forward.tensors.size()) {
    throw std::invalid_argument("autodiff: loss tensor id " + std::to_string(loss) +
                                " out of range");
  }
  const Tensor& loss_t = forward.tensor(loss);
  if (!loss_t.shape.empty() || !is_floating(loss_t.dtype)) {
    throw std::invalid_argument("autodiff: loss '" + loss_t.name +
                                "' must be a floating scalar, "
                                "got " +
                                shape_to_string(loss_t.shape) + " " + dtype_name(loss_t.dtype));
  }
  if (optimizer.kind != "adamw" && optimizer.kind != "sgd") {
    throw std::invalid_argument("autodiff: unknown optimizer kind '" + optimizer.kind +
                                "' (expected adamw or sgd)");
  }
  for (const Op& op : forward.ops) {
    if (op.phase != OpPhase::kForward) {
      throw std::invalid_argument("autodiff: op " + op.name +
                                  " of the forward graph is not a "
                                  "forward op");
    }
  }

  TrainingGraph tg;
  tg.graph = forward;
  tg.loss = loss;
  Graph& g = tg.graph;
  const std::size_t n = forward.tensors.size();
  const auto at = [](auto& v, TensorId t) -> auto& { return v[static_cast<std::size_t>(t)]; };

  // (a) depends[t]: t is a parameter or computed from one (forward sweep)
  std::vector<char> depends(n, 0), reaches(n, 0), needs(n, 0);  // bool per tensor
  for (std::size_t i = 0; i < n; ++i)
    depends[i] = forward.tensors[i].role == TensorRole::kParameter;
  for (const Op& op : forward.ops) {
    bool any = false;
    for (TensorId t : op.inputs) any = any || at(depends, t);
    for (TensorId t : op.outputs) at(depends, t) = any;
  }
  // (b) reaches[t]: the loss is computed from t (reverse sweep)
  at(reaches, loss) = true;
  for (auto it = forward.ops.rbegin(); it != forward.ops.rend(); ++it) {
    bool any = false;
    for (TensorId t : it->outputs) any = any || at(reaches, t) != 0;
    if (any) {
      for (TensorId t : it->inputs) at(reaches, t) = true;
    }
  }
  // (c) needs[t] = depends and reaches; every reading of a needing tensor by an op whose output
  // needs a gradient is one partial gradient (all forward rules differentiate every such input).
  for (std::size_t i = 0; i < n; ++i) needs[i] = depends[i] && reaches[i];
  Builder b(g, n);
  const auto op_needed = [&](const Op& op) {
    for (TensorId t : op.outputs) {
      if (at(needs, t)) return true;
    }
    return false;
  };
  for (const Op& op : forward.ops) {
    if (!op_needed(op)) continue;
    for (TensorId t : op.inputs) {
      if (at(needs, t)) ++at(b.expected(), t);
    }
  }

  // Seed: d loss / d loss = 1, filled by the executor.
  tg.loss_grad =
      g.add_tensor({"grad:" + loss_t.name, {}, loss_t.dtype, TensorRole::kGradient, loss_t.layer});
  if (at(needs, loss)) {
    at(b.expected(), loss) = 1;
    b.contribute(loss, tg.loss_grad);
  }

  // (d) backward ops, forward ops in reverse
  for (auto it = forward.ops.rbegin(); it != forward.ops.rend(); ++it) {
    const Op& op = *it;
    if (!op_needed(op)) continue;
    const auto need = [&](std::size_t i) { return at(needs, op.inputs[i]); };
    const auto target = [&](std::size_t i) { return need(i) ? op.inputs[i] : kNoTensor; };
    std::vector<TensorId> gy;
    for (TensorId t : op.outputs) {
      if (at(needs, t) && b.total(t) == kNoTensor) {
        throw std::logic_error("autodiff: gradient of " + g.tensor(t).name + " incomplete");
      }
      gy.push_back(at(needs, t) ? b.total(t) : kNoTensor);
    }
    switch (op.kind) {
      // C = alpha * einsum(lhs,rhs->out; A, B):
      //   dA = alpha * einsum(out,rhs->lhs; dC, B),  dB = alpha * einsum(lhs,out->rhs; A, dC)
      case OpKind::kMatMul: {
        const MatMulEquation eq = parse_matmul_equation(attr_str(op, "equation"));
        Attrs attrs;
        if (op.attrs.count("alpha")) attrs["alpha"] = op.attrs.at("alpha");
        if (need(0)) {
          attrs["equation"] = grad_equation(op, eq.out, eq.rhs, eq.lhs);
          b.emit(OpKind::kMatMul, op, ".grad_a", {gy[0], op.inputs[1]}, attrs, {op.inputs[0]});
        }
        if (need(1)) {
          attrs["equation"] = grad_equation(op, eq.lhs, eq.out, eq.rhs);
          b.emit(OpKind::kMatMul, op, ".grad_b", {op.inputs[0], gy[0]}, attrs, {op.inputs[1]});
        }
        break;
      }
      // y = x + bias[n...]: dx = dy (same tensor), dbias = sum over the leading dims of dy,
      //   keeping the bias's rank (GPT's qkv bias [3,A,D] keeps 3)
      // y = x + table[s,h]: dx = dy, dtable = sum over b of dy
      case OpKind::kBiasAdd:
      case OpKind::kPositionEmbedding: {
        if (need(0)) b.contribute(op.inputs[0], gy[0]);
        if (need(1)) {
          const bool bias = op.kind == OpKind::kBiasAdd;
          const auto keep = static_cast<std::int64_t>(g.tensor(op.inputs[1]).shape.size());
          b.emit(OpKind::kReduceSum, op, bias ? ".grad_bias" : ".grad_table", {gy[0]},
                 {{"keep", keep}}, {op.inputs[1]});
        }
        break;
      }
      // y[b,s,:] = table[tokens[b,s], :]:  dtable[v,:] = sum_{tokens[b,s] = v} dy[b,s,:]
      case OpKind::kEmbedding: {
        if (need(1)) {
          const std::int64_t vocab = g.tensor(op.inputs[1]).shape.at(0);
          b.emit(OpKind::kEmbeddingGrad, op, ".grad", {op.inputs[0], gy[0]}, {{"vocab", vocab}},
                 {op.inputs[1]});
        }
        break;
      }
      // y = (x - mean) rstd w + b: (dx, dw, db) = layernorm_grad(dy, x, w, mean, rstd)
      case OpKind::kLayerNorm: {
        if (gy[1] != kNoTensor || gy[2] != kNoTensor) {
          no_rule(op, "gradients through the mean/rstd outputs are not supported");
        }
        b.emit(OpKind::kLayerNormGrad, op, ".grad",
               {gy[0], op.inputs[0], op.inputs[1], op.outputs[1], op.outputs[2]}, {},
               {target(0), target(1), target(2)});
        break;
      }
      // y = gelu(x): dx = gelu'(x) dy. Fused y = gelu(x + bias): dh = gelu'(x + bias) dy (h
      // recomputed, never stored) is dx, and dbias sums dh over the leading dims (as bias_add).
      case OpKind::kGelu: {
        if (op.inputs.size() == 1) {
          b.emit(OpKind::kGeluGrad, op, ".grad", {op.inputs[0], gy[0]}, {}, {op.inputs[0]});
          break;
        }
        const TensorId dh =
            b.emit(OpKind::kGeluGrad, op, ".grad", {op.inputs[0], op.inputs[1], gy[0]}, {},
                   {need(0) ? op.inputs[0] : kNoTensor})[0];
        if (need(1)) {
          const auto keep = static_cast<std::int64_t>(g.tensor(op.inputs[1]).shape.size());
          b.emit(OpKind::kReduceSum, op, ".grad_bias", {dh}, {{"keep", keep}}, {op.inputs[1]});
        }
        break;
      }
      // y = softmax(x): dx = y (dy - sum_t dy y)
      case OpKind::kSoftmax:
        b.emit(OpKind::kSoftmaxGrad, op, ".grad", {op.outputs[0], gy[0]}, {}, {op.inputs[0]});
        break;
      // o = softmax(scale q k^T) v: (dq, dk, dv) = attention_grad(q, k, v, do), which recomputes
      // the probabilities (kernels/attention.cc writes the formulas out)
      case OpKind::kAttention:
        b.emit(OpKind::kAttentionGrad, op, ".grad",
               {op.inputs[0], op.inputs[1], op.inputs[2], gy[0]}, op.attrs,
               {target(0), target(1), target(2)});
        break;
      // y = x masked to -inf above the diagonal: dx = dy with those elements 0
      case OpKind::kCausalMask:
        b.emit(OpKind::kCausalMaskGrad, op, ".grad", {gy[0]}, {}, {op.inputs[0]});
        break;
      // (q, k, v) = split(x): dx = merge(dq, dk, dv)
      case OpKind::kSplitHeads: {
        for (std::size_t i = 0; i < gy.size(); ++i) {
          if (gy[i] == kNoTensor) {
            no_rule(op, "output " + g.tensor(op.outputs[i]).name +
                            " has no gradient (needs a zero gradient, which no op makes)");
          }
        }
        b.emit(OpKind::kMergeHeads, op, ".grad", gy, op.attrs, {op.inputs[0]});
        break;
      }
      // y = merge(x_1..x_P): (dx_1..dx_P) = split(dy)
      case OpKind::kMergeHeads: {
        std::vector<TensorId> targets;
        for (std::size_t i = 0; i < op.inputs.size(); ++i) targets.push_back(target(i));
        b.emit(OpKind::kSplitHeads, op, ".grad", {gy[0]}, op.attrs, targets);
        break;
      }
      // y = a + b: da = dy, db = dy (same tensor)
      case OpKind::kAdd:
        if (need(0)) b.contribute(op.inputs[0], gy[0]);
        if (need(1)) b.contribute(op.inputs[1], gy[0]);
        break;
      // loss = mean CE: dlogits = (softmax(logits) - onehot(targets)) dloss / rows
      case OpKind::kCrossEntropy:
        b.emit(OpKind::kCrossEntropyGrad, op, ".grad", {op.inputs[0], op.inputs[1], gy[0]}, {},
               {op.inputs[0]});
        break;
      default:
        no_rule(op, "no gradient rule for this kind");
    }
  }

  // (e) parameter gradients
  for (std::size_t i = 0; i < n; ++i) {
    const auto t = static_cast<TensorId>(i);
    if (forward.tensors[i].role != TensorRole::kParameter || !needs[i]) continue;
    if (b.total(t) == kNoTensor) {
      throw std::logic_error("autodiff: no total gradient for " + forward.tensors[i].name);
    }
    tg.grad_of[t] = b.total(t);
  }
  if (tg.grad_of.empty()) return tg;

  // (f) optimizer: sum of squares per gradient, one global clip, one update per parameter
  std::vector<TensorId> sumsq;
  for (const auto& [p, grad] : tg.grad_of) {
    const std::string name = "sumsq:" + g.tensor(p).name;
    const OpId id = g.add_op(OpKind::kSumSquares, name, {grad}, {}, owner_layer(g, p),
                             OpPhase::kOptimizer, TensorRole::kGradient, {name});
    sumsq.push_back(g.ops[static_cast<std::size_t>(id)].outputs[0]);
  }
  const OpId clip = g.add_op(OpKind::kClipByGlobalNorm, "clip_grad_norm", sumsq,
                             {{"max_norm", optimizer.clip_grad_norm}}, 0, OpPhase::kOptimizer,
                             TensorRole::kGradient, {"norm_scale"});
  tg.norm_scale = g.ops[static_cast<std::size_t>(clip)].outputs[0];
  for (const auto& [p, grad] : tg.grad_of) {
    const Tensor param = g.tensor(p);
    const int layer = owner_layer(g, p);
    bool decay = true;
    for (const std::string& pattern : optimizer.no_decay) {
      decay = decay && !matches_pattern(param.name, pattern);
    }
    const double wd = decay ? optimizer.weight_decay : 0.0;
    // Checkpoints store optimizer state in its parameter's layout (DESIGN.md section 7), so the
    // state keeps the parameter's file shape.
    const auto state = [&](const std::string& prefix) {
      return g.add_tensor({prefix + param.name, param.shape, param.dtype,
                           TensorRole::kOptimizerState, layer, param.file_shape});
    };
    if (optimizer.kind == "adamw") {
      const TensorId m = state("adam_m:"), v = state("adam_v:");
      tg.state_of[p] = {m, v};
      g.add_op(OpKind::kAdamW, "adamw:" + param.name, {p, grad, m, v, tg.norm_scale},
               {{"beta1", optimizer.beta1},
                {"beta2", optimizer.beta2},
                {"eps", optimizer.eps},
                {"weight_decay", wd}},
               layer, OpPhase::kOptimizer);
    } else {
      const TensorId buf = state("momentum:");
      tg.state_of[p] = {buf};
      g.add_op(OpKind::kSgd, "sgd:" + param.name, {p, grad, buf, tg.norm_scale},
               {{"momentum", optimizer.momentum}, {"weight_decay", wd}}, layer,
               OpPhase::kOptimizer);
    }
  }
  return tg;
}

// Gradient accumulation across micro-batches: a tensor every reader of which is an optimizer
// op, or a backward add whose output is itself accumulated (the sums of a parameter read
// several times, e.g. GPT's tied wte). Such tensors are summed locally over the micro-batches
// (as partial sums where the strategy leaves them partial) and their collectives run once per
// iteration, on the last micro-batch (ALPA_FACTS 1.9; DESIGN.md section 4).
std::vector<char> gradient_accumulated(const Graph& g) {
  std::vector<std::vector<OpId>> readers(g.tensors.size());
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    for (TensorId t : g.ops[o].inputs)
      readers[static_cast<std::size_t>(t)].push_back(static_cast<OpId>(o));
  }
  std::vector<char> acc(g.tensors.size(), 0);
  for (auto it = g.ops.rbegin(); it != g.ops.rend(); ++it) {
    for (TensorId t : it->outputs) {
      const auto& rs = readers[static_cast<std::size_t>(t)];
      bool all = !rs.empty();
      for (OpId r : rs) {
        const Op& c = g.ops[static_cast<std::size_t>(r)];
        const bool opt = c.phase == OpPhase::kOptimizer;
        const bool acc_add = c.kind == OpKind::kAdd && c.phase == OpPhase::kBackward &&
                             acc[static_cast<std::size_t>(c.outputs.at(0))];
        all = all && (opt || acc_add);
      }
      acc[static_cast<std::size_t>(t)] = all;
    }
  }
  return acc;
}

}  // namespace strata::solver
