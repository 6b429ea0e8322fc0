// FLOP and byte accounting (flops.h). A matmul costs 2 x the product of all its index extents
// (one multiply and one add per term of the einsum; alpha is folded into the epilogue). Every
// other kind costs a small constant per element of the tensor it streams, from the table below;
// data-movement kinds (embedding lookup, split/merge heads) cost 0. Pure C++.
#include "solver/ir/flops.h"

#include <map>
#include <stdexcept>

#include "solver/ir/shape_inference.h"

namespace strata::solver {
namespace {

double elements(const Graph& g, TensorId id) {
  return static_cast<double>(num_elements(g.tensor(id).shape, g.tensor(id).name));
}

// FLOPs per element and which tensor counts the elements (input 0 unless noted):
//   position_embedding, bias_add, add             1   (one add)
//   causal_mask, causal_mask_grad                 1   (one compare-select)
//   reduce_sum, embedding_grad (dy)               1   (one add per summed element)
//   sum_squares                                   2   (multiply, add)
//   gelu                                          8   (x^3, fma, tanh, 0.5 x (1 + t))
//   gelu_grad                                     16
//   layernorm                                     8   (mean, var, normalise, scale, shift)
//   layernorm_grad                                14
//   softmax (causal or not)                       5   (max, subtract, exp, sum, divide)
//   softmax_grad                                  4   (dot, subtract, multiply)
//   cross_entropy, cross_entropy_grad (logits)    5
//   adamw (parameter)                             12
//   sgd (parameter)                               4
//   clip_by_global_norm                           2 per input
//   embedding, split_heads, merge_heads           0
double per_element(OpKind kind) {
  switch (kind) {
    case OpKind::kPositionEmbedding:
    case OpKind::kBiasAdd:
    case OpKind::kAdd:
    case OpKind::kCausalMask:
    case OpKind::kCausalMaskGrad:
    case OpKind::kReduceSum:
      return 1;
    case OpKind::kSumSquares:
      return 2;
    case OpKind::kGelu:
      return 8;
    case OpKind::kGeluGrad:
      return 16;
    case OpKind::kLayerNorm:
      return 8;
    case OpKind::kLayerNormGrad:
      return 14;
    case OpKind::kSoftmax:
      return 5;
    case OpKind::kSoftmaxGrad:
      return 4;
    case OpKind::kCrossEntropy:
    case OpKind::kCrossEntropyGrad:
      return 5;
    case OpKind::kAdamW:
      return 12;
    case OpKind::kSgd:
      return 4;
    case OpKind::kEmbeddingGrad:
      return 1;
    case OpKind::kClipByGlobalNorm:
      return 2;
    case OpKind::kAttention:  // op_flops counts it (attention_flops)
    case OpKind::kAttentionGrad:
    case OpKind::kEmbedding:
    case OpKind::kSplitHeads:
    case OpKind::kMergeHeads:
    case OpKind::kMatMul:
      return 0;
  }
  return 0;
}

// Fused attention (kernels/attention.cc). P = the (query, key) pairs a batch item computes: S T,
// or S (S + 1) / 2 when causal (keys past a query are skipped; the kernel's chunks add up to
// chunk / S more, ignored here). Per pair and batch item (D = head dim):
//   forward   2 GEMMs (scores, P V): 4 D, softmax 5                        -> 4 D + 5
//   backward  scores again, P^T dO, dO V^T, dS K, dS^T Q: 10 D; softmax 5,
//             softmax_grad 4                                                -> 10 D + 9
// Scratch traffic per pair (elements of the dtype): forward writes S, reads it, writes P, reads
// it (4); backward adds dP written and read, dS written and read twice, P read twice more (10).
struct AttentionWork {
  double pairs = 0, head_dim = 0;  // pairs summed over the batch items
};

AttentionWork attention_work(const Graph& g, const Op& op) {
  const Shape& q = g.tensor(op.inputs.at(0)).shape;
  const Shape& k = g.tensor(op.inputs.at(1)).shape;
  const double items = static_cast<double>(q.at(0)) * static_cast<double>(q.at(1));
  const double s = static_cast<double>(q.at(2)), t = static_cast<double>(k.at(2));
  const bool causal = attr_int_or(op, "causal", 0) != 0;
  return {items * (causal ? s * (s + 1) / 2 : s * t), static_cast<double>(q.at(3))};
}

}  // namespace

double op_scratch_bytes(const Graph& graph, const Op& op) {
  if (op.kind != OpKind::kAttention && op.kind != OpKind::kAttentionGrad) return 0;
  const AttentionWork w = attention_work(graph, op);
  const double passes = op.kind == OpKind::kAttention ? 4 : 10;
  return passes * w.pairs * static_cast<double>(dtype_size_bytes(graph.tensor(op.inputs[0]).dtype));
}

double op_flops(const Graph& graph, const Op& op) {
  switch (op.kind) {
    case OpKind::kMatMul: {
      // 2 * prod over distinct letters of the extent
      const MatMulEquation eq = parse_matmul_equation(attr_str(op, "equation"));
      std::map<char, std::int64_t> extent;
      for (std::size_t i = 0; i < 2; ++i) {
        const std::string& operand = i == 0 ? eq.lhs : eq.rhs;
        const Shape& shape = graph.tensor(op.inputs.at(i)).shape;
        for (std::size_t d = 0; d < operand.size() && d < shape.size(); ++d) {
          extent[operand[d]] = shape[d];
        }
      }
      double flops = 2.0;
      for (const auto& [letter, n] : extent) flops *= static_cast<double>(n);
      return flops;
    }
    case OpKind::kAttention:
    case OpKind::kAttentionGrad: {
      const AttentionWork w = attention_work(graph, op);
      return op.kind == OpKind::kAttention ? w.pairs * (4 * w.head_dim + 5)
                                           : w.pairs * (10 * w.head_dim + 9);
    }
    case OpKind::kClipByGlobalNorm:
      return per_element(op.kind) * static_cast<double>(op.inputs.size());
    case OpKind::kEmbeddingGrad:
      return per_element(op.kind) * elements(graph, op.inputs.at(1));
    default:
      if (op.inputs.empty()) return 0;
      return per_element(op.kind) * elements(graph, op.inputs.at(0));
  }
}

double graph_flops(const Graph& graph, OpPhase phase) {
  double total = 0;
  for (const Op& op : graph.ops) {
    if (op.phase == phase) total += op_flops(graph, op);
  }
  return total;
}

// ALPA_FACTS.md 4.1: 72 B S H^2 L (1 + S / (6H)) + 6 B S H V
double gpt_model_flops(std::int64_t batch, std::int64_t seq, std::int64_t hidden,
                       std::int64_t layers, std::int64_t vocab) {
  const double b = static_cast<double>(batch), s = static_cast<double>(seq);
  const double h = static_cast<double>(hidden), l = static_cast<double>(layers);
  const double v = static_cast<double>(vocab);
  if (hidden <= 0) throw std::invalid_argument("gpt_model_flops: hidden must be positive");
  return 72.0 * b * s * h * h * l * (1.0 + s / (6.0 * h)) + 6.0 * b * s * h * v;
}

std::int64_t bytes_with_role(const Graph& graph, TensorRole role) {
  std::int64_t total = 0;
  for (const Tensor& t : graph.tensors) {
    if (t.role == role) total += num_bytes(t);
  }
  return total;
}

}  // namespace strata::solver
