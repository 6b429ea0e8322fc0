// Op kind and phase names (stable: graph JSON and plans use them) and typed attribute access.
// One table maps kinds to names so op_kind_name and parse_op_kind cannot disagree.
// Pure C++.
#include "solver/ir/op.h"

#include <array>
#include <stdexcept>
#include <utility>

namespace strata::solver {
namespace {

constexpr std::array<std::pair<OpKind, const char*>, 25> kKindNames = {{
    {OpKind::kEmbedding, "embedding"},
    {OpKind::kPositionEmbedding, "position_embedding"},
    {OpKind::kLayerNorm, "layernorm"},
    {OpKind::kMatMul, "matmul"},
    {OpKind::kBiasAdd, "bias_add"},
    {OpKind::kGelu, "gelu"},
    {OpKind::kSplitHeads, "split_heads"},
    {OpKind::kMergeHeads, "merge_heads"},
    {OpKind::kCausalMask, "causal_mask"},
    {OpKind::kSoftmax, "softmax"},
    {OpKind::kAttention, "attention"},
    {OpKind::kAdd, "add"},
    {OpKind::kCrossEntropy, "cross_entropy"},
    {OpKind::kEmbeddingGrad, "embedding_grad"},
    {OpKind::kReduceSum, "reduce_sum"},
    {OpKind::kLayerNormGrad, "layernorm_grad"},
    {OpKind::kGeluGrad, "gelu_grad"},
    {OpKind::kSoftmaxGrad, "softmax_grad"},
    {OpKind::kAttentionGrad, "attention_grad"},
    {OpKind::kCausalMaskGrad, "causal_mask_grad"},
    {OpKind::kCrossEntropyGrad, "cross_entropy_grad"},
    {OpKind::kSumSquares, "sum_squares"},
    {OpKind::kClipByGlobalNorm, "clip_by_global_norm"},
    {OpKind::kAdamW, "adamw"},
    {OpKind::kSgd, "sgd"},
}};

const AttrValue& find_attr(const Op& op, const std::string& key) {
  auto it = op.attrs.find(key);
  if (it == op.attrs.end()) {
    throw std::invalid_argument("op " + op.name + " (" + op_kind_name(op.kind) +
                                "): missing attribute '" + key + "'");
  }
  return it->second;
}

[[noreturn]] void wrong_type(const Op& op, const std::string& key, const char* expected) {
  throw std::invalid_argument("op " + op.name + " (" + op_kind_name(op.kind) + "): attribute '" +
                              key + "' is not " + expected);
}

}  // namespace

const char* op_kind_name(OpKind kind) {
  for (const auto& [k, name] : kKindNames) {
    if (k == kind) return name;
  }
  return "unknown";
}

OpKind parse_op_kind(const std::string& text) {
  for (const auto& [k, name] : kKindNames) {
    if (text == name) return k;
  }
  throw std::invalid_argument("unknown op kind '" + text + "'");
}

const char* op_phase_name(OpPhase phase) {
  switch (phase) {
    case OpPhase::kForward:
      return "forward";
    case OpPhase::kBackward:
      return "backward";
    case OpPhase::kOptimizer:
      return "optimizer";
  }
  return "unknown";
}

std::int64_t attr_int(const Op& op, const std::string& key) {
  const AttrValue& v = find_attr(op, key);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  wrong_type(op, key, "an integer");
}

double attr_float(const Op& op, const std::string& key) {
  const AttrValue& v = find_attr(op, key);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  wrong_type(op, key, "a number");
}

const std::string& attr_str(const Op& op, const std::string& key) {
  const AttrValue& v = find_attr(op, key);
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  wrong_type(op, key, "a string");
}

std::int64_t attr_int_or(const Op& op, const std::string& key, std::int64_t fallback) {
  return op.attrs.count(key) ? attr_int(op, key) : fallback;
}

double attr_float_or(const Op& op, const std::string& key, double fallback) {
  return op.attrs.count(key) ? attr_float(op, key) : fallback;
}

}  // namespace strata::solver
