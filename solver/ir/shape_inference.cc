// Shape inference for every op kind (shape_inference.h), following op.h's calling conventions.
// Every check throws std::invalid_argument whose one-line message names the op, its kind (and
// equation), the problem and the input shapes. Graphs decoded from files reach this code, so it
// checks counts, ranks, dtypes and attributes before any arithmetic (no division by a zero
// attribute, no out-of-range index). Pure C++.
#include "solver/ir/shape_inference.h"

#include <cmath>
#include <stdexcept>

namespace strata::solver {
namespace {

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Checks of one op against the graph; fail() throws with the op's name and input shapes.
class Checker {
 public:
  Checker(const Graph& graph, const Op& op) : graph_(graph), op_(op) {}

  [[noreturn]] void fail(const std::string& problem) const {
    std::string kind = op_kind_name(op_.kind);
    if (op_.kind == OpKind::kMatMul) {
      auto it = op_.attrs.find("equation");
      if (it != op_.attrs.end() && std::holds_alternative<std::string>(it->second)) {
        kind += " " + std::get<std::string>(it->second);
      }
    }
    std::string text = "op " + op_.name + " (" + kind + "): " + problem + "; inputs:";
    if (op_.inputs.empty()) text += " none";
    constexpr std::size_t kListed = 8;  // a clip op may read thousands of scalars
    for (std::size_t i = 0; i < op_.inputs.size(); ++i) {
      if (i == kListed) {
        text += ", ... (" + std::to_string(op_.inputs.size()) + " inputs)";
        break;
      }
      const Tensor& t = graph_.tensor(op_.inputs[i]);
      text +=
          (i ? ", " : " ") + t.name + " " + shape_to_string(t.shape) + " " + dtype_name(t.dtype);
    }
    throw std::invalid_argument(text);
  }

  void expect_inputs(std::size_t n) const {
    if (op_.inputs.size() != n) {
      fail("expects " + std::to_string(n) + " inputs, got " + std::to_string(op_.inputs.size()));
    }
  }
  const Tensor& in(std::size_t i) const { return graph_.tensor(op_.inputs.at(i)); }
  const Shape& shape(std::size_t i) const { return in(i).shape; }
  std::size_t rank(std::size_t i) const { return shape(i).size(); }

  void expect_rank(std::size_t i, std::size_t r, const char* what) const {
    if (rank(i) != r) {
      fail(std::string(what) + " (input " + std::to_string(i) + ") must have rank " +
           std::to_string(r) + ", got " + shape_to_string(shape(i)));
    }
  }
  void expect_min_rank(std::size_t i, std::size_t r, const char* what) const {
    if (rank(i) < r) {
      fail(std::string(what) + " (input " + std::to_string(i) +
           ") must have rank >= " + std::to_string(r) + ", got " + shape_to_string(shape(i)));
    }
  }
  void expect_floating(std::size_t i) const {
    if (!is_floating(in(i).dtype)) {
      fail("input " + std::to_string(i) + " must be floating, got " + dtype_name(in(i).dtype));
    }
  }
  void expect_i32(std::size_t i) const {
    if (in(i).dtype != DType::kI32) {
      fail("input " + std::to_string(i) + " must be i32 token ids, got " + dtype_name(in(i).dtype));
    }
  }
  void expect_dtype(std::size_t i, DType dtype) const {
    if (in(i).dtype != dtype) {
      fail("input " + std::to_string(i) + " must be " + dtype_name(dtype) + ", got " +
           dtype_name(in(i).dtype));
    }
  }
  void expect_same_dtype(std::size_t i, std::size_t j) const {
    if (in(i).dtype != in(j).dtype) {
      fail("inputs " + std::to_string(i) + " and " + std::to_string(j) +
           " differ in dtype: " + dtype_name(in(i).dtype) + " vs " + dtype_name(in(j).dtype));
    }
  }
  void expect_same_shape(std::size_t i, std::size_t j) const {
    if (shape(i) != shape(j)) {
      fail("inputs " + std::to_string(i) + " and " + std::to_string(j) +
           " differ in shape: " + shape_to_string(shape(i)) + " vs " + shape_to_string(shape(j)));
    }
  }
  void expect_shape(std::size_t i, const Shape& s, const char* what) const {
    if (shape(i) != s) {
      fail(std::string(what) + " (input " + std::to_string(i) + ") must be " + shape_to_string(s) +
           ", got " + shape_to_string(shape(i)));
    }
  }

  // Integer attribute in [lo, hi].
  std::int64_t int_attr(const std::string& key, std::int64_t lo, std::int64_t hi) const {
    auto it = op_.attrs.find(key);
    if (it == op_.attrs.end()) fail("missing attribute '" + key + "'");
    const auto* v = std::get_if<std::int64_t>(&it->second);
    if (!v) fail("attribute '" + key + "' must be an integer");
    if (*v < lo || *v > hi) {
      fail("attribute '" + key + "' = " + std::to_string(*v) + " outside [" + std::to_string(lo) +
           ", " + std::to_string(hi) + "]");
    }
    return *v;
  }
  // Optional finite numeric attribute, at least `lo` when present.
  void float_attr(const std::string& key, bool required, double lo) const {
    auto it = op_.attrs.find(key);
    if (it == op_.attrs.end()) {
      if (required) fail("missing attribute '" + key + "'");
      return;
    }
    double v = 0;
    if (const auto* d = std::get_if<double>(&it->second)) {
      v = *d;
    } else if (const auto* i = std::get_if<std::int64_t>(&it->second)) {
      v = static_cast<double>(*i);
    } else {
      fail("attribute '" + key + "' must be a number");
    }
    if (!std::isfinite(v) || v < lo) {
      fail("attribute '" + key + "' = " + std::to_string(v) +
           " must be finite and >= " + std::to_string(lo));
    }
  }
  const std::string& str_attr(const std::string& key) const {
    auto it = op_.attrs.find(key);
    if (it == op_.attrs.end()) fail("missing attribute '" + key + "'");
    const auto* v = std::get_if<std::string>(&it->second);
    if (!v) fail("attribute '" + key + "' must be a string");
    return *v;
  }

  const Op& op() const { return op_; }

 private:
  const Graph& graph_;
  const Op& op_;
};

Shape leading(const Shape& s, std::size_t drop_last) {
  return Shape(s.begin(), s.end() - static_cast<std::ptrdiff_t>(drop_last));
}

constexpr std::int64_t kMaxAttrDim = std::int64_t{1} << 40;  // bound on parts, heads, vocab

// Rank of the merged side of split/merge heads: [B,S,P,A,D], the P dim omitted when P == 1.
std::size_t merged_rank(std::int64_t parts) { return parts == 1 ? 4 : 5; }

std::vector<OutputSpec> infer(const Checker& c) {
  const Op& op = c.op();
  switch (op.kind) {
    // (tokens i32 [B,S], table [V,H]) -> [B,S,H]
    case OpKind::kEmbedding: {
      c.expect_inputs(2);
      c.expect_i32(0);
      c.expect_rank(0, 2, "tokens");
      c.expect_floating(1);
      c.expect_rank(1, 2, "table");
      return {{{c.shape(0)[0], c.shape(0)[1], c.shape(1)[1]}, c.in(1).dtype}};
    }
    // (x [B,S,H], table [S,H]) -> [B,S,H]
    case OpKind::kPositionEmbedding: {
      c.expect_inputs(2);
      c.expect_floating(0);
      c.expect_rank(0, 3, "x");
      c.expect_same_dtype(0, 1);
      c.expect_shape(1, {c.shape(0)[1], c.shape(0)[2]}, "table");
      return {{c.shape(0), c.in(0).dtype}};
    }
    // (x [...,H], w [H], b [H]) -> (y [...,H], mean [...], rstd [...])
    case OpKind::kLayerNorm: {
      c.expect_inputs(3);
      c.expect_floating(0);
      c.expect_min_rank(0, 1, "x");
      c.expect_same_dtype(0, 1);
      c.expect_same_dtype(0, 2);
      const Shape h = {c.shape(0).back()};
      c.expect_shape(1, h, "weight");
      c.expect_shape(2, h, "bias");
      c.float_attr("eps", false, 0.0);
      const Shape stats = leading(c.shape(0), 1);
      const DType dt = c.in(0).dtype;
      return {{c.shape(0), dt}, {stats, dt}, {stats, dt}};
    }
    // c = alpha * einsum(equation; a, b)
    case OpKind::kMatMul: {
      c.expect_inputs(2);
      c.expect_floating(0);
      c.expect_same_dtype(0, 1);
      MatMulEquation eq;
      try {
        eq = parse_matmul_equation(c.str_attr("equation"));
      } catch (const std::invalid_argument& e) {
        c.fail(e.what());
      }
      c.float_attr("alpha", false, -HUGE_VAL);
      const std::string operands[2] = {eq.lhs, eq.rhs};
      std::int64_t extent[128] = {};
      int where[128];
      for (int& w : where) w = -1;
      for (std::size_t i = 0; i < 2; ++i) {
        if (operands[i].size() != c.rank(i)) {
          c.fail("operand '" + operands[i] + "' has " + std::to_string(operands[i].size()) +
                 " letters but input " + std::to_string(i) + " has shape " +
                 shape_to_string(c.shape(i)));
        }
        for (std::size_t d = 0; d < operands[i].size(); ++d) {
          const auto l = static_cast<unsigned char>(operands[i][d]);
          const std::int64_t n = c.shape(i)[d];
          if (where[l] >= 0 && extent[l] != n) {
            c.fail("index " + std::string(1, operands[i][d]) + " is " + std::to_string(extent[l]) +
                   " in input " + std::to_string(where[l]) + " but " + std::to_string(n) +
                   " in input " + std::to_string(i));
          }
          where[l] = static_cast<int>(i);
          extent[l] = n;
        }
      }
      Shape out;
      for (char l : eq.out) out.push_back(extent[static_cast<unsigned char>(l)]);
      return {{out, c.in(0).dtype}};
    }
    // (x [...,N...], bias [N...]) -> x's shape; the bias covers x's trailing rank(bias) dims
    case OpKind::kBiasAdd: {
      c.expect_inputs(2);
      c.expect_floating(0);
      c.expect_same_dtype(0, 1);
      c.expect_min_rank(1, 1, "bias");
      c.expect_min_rank(0, c.rank(1), "x");
      const Shape& x = c.shape(0);
      c.expect_shape(1, Shape(x.end() - static_cast<std::ptrdiff_t>(c.rank(1)), x.end()), "bias");
      return {{x, c.in(0).dtype}};
    }
    // (x [..., n...], bias [n...]) -> gelu(x + bias): the MLP's bias and activation fused
    case OpKind::kGelu:
      if (op.inputs.size() == 2) {
        c.expect_floating(0);
        c.expect_same_dtype(0, 1);
        c.expect_min_rank(0, c.rank(1), "x");
        const Shape& x = c.shape(0);
        c.expect_shape(1, Shape(x.end() - static_cast<std::ptrdiff_t>(c.rank(1)), x.end()), "bias");
        return {{x, c.in(0).dtype}};
      }
      [[fallthrough]];
    case OpKind::kCausalMaskGrad:
    case OpKind::kCausalMask:
    case OpKind::kSoftmax: {
      c.expect_inputs(1);
      c.expect_floating(0);
      const bool causal = op.kind == OpKind::kCausalMask || op.kind == OpKind::kCausalMaskGrad ||
                          (op.kind == OpKind::kSoftmax && attr_int_or(op, "causal", 0) != 0);
      if (op.kind == OpKind::kSoftmax && op.attrs.count("causal")) c.int_attr("causal", 0, 1);
      if (causal) {
        c.expect_min_rank(0, 2, "x");
        const Shape& s = c.shape(0);
        if (s[s.size() - 1] != s[s.size() - 2]) {
          c.fail("last two dims must be equal (square [S,S] scores), got " + shape_to_string(s));
        }
      }
      if (op.kind == OpKind::kSoftmax) c.expect_min_rank(0, 1, "x");
      return {{c.shape(0), c.in(0).dtype}};
    }
    // (q [B,A,S,D], k [B,A,T,D], v [B,A,T,D]) -> o [B,A,S,D]; backward (q, k, v, do) ->
    // (dq, dk, dv). Causal attention is square (S == T) in a global graph, as softmax's.
    case OpKind::kAttention:
    case OpKind::kAttentionGrad: {
      const bool grad = op.kind == OpKind::kAttentionGrad;
      c.expect_inputs(grad ? 4 : 3);
      c.expect_floating(0);
      for (std::size_t i = 1; i < op.inputs.size(); ++i) c.expect_same_dtype(0, i);
      c.expect_rank(0, 4, "q [B,A,S,D]");
      c.expect_rank(1, 4, "k [B,A,T,D]");
      c.expect_same_shape(1, 2);
      if (grad) c.expect_same_shape(0, 3);
      const Shape& q = c.shape(0);
      const Shape& k = c.shape(1);
      if (q[0] != k[0] || q[1] != k[1] || q[3] != k[3]) {
        c.fail("q " + shape_to_string(q) + " and k " + shape_to_string(k) +
               " must agree in batch, heads and head dim");
      }
      c.float_attr("scale", true, 0.0);
      if (c.int_attr("causal", 0, 1) == 1 && q[2] != k[2]) {
        c.fail("causal attention must be square (S == T), got q " + shape_to_string(q) + " and k " +
               shape_to_string(k));
      }
      const DType dt = c.in(0).dtype;
      if (!grad) return {{q, dt}};
      return {{q, dt}, {k, dt}, {k, dt}};
    }
    // (x [B,S,P,A,D], or [B,S,A,D] when P == 1) -> P x [B,A,S,D]
    case OpKind::kSplitHeads: {
      c.expect_inputs(1);
      c.expect_floating(0);
      const std::int64_t parts = c.int_attr("parts", 1, 64);
      const std::int64_t heads = c.int_attr("heads", 1, kMaxAttrDim);
      c.expect_rank(0, merged_rank(parts), parts == 1 ? "x [B,S,A,D]" : "x [B,S,P,A,D]");
      const Shape& s = c.shape(0);
      if (parts > 1 && s[2] != parts) {
        c.fail("dim 2 of " + shape_to_string(s) + " must equal parts = " + std::to_string(parts));
      }
      if (s[s.size() - 2] != heads) {
        c.fail("dim " + std::to_string(s.size() - 2) + " of " + shape_to_string(s) +
               " must equal heads = " + std::to_string(heads));
      }
      return std::vector<OutputSpec>(static_cast<std::size_t>(parts),
                                     OutputSpec{{s[0], heads, s[1], s.back()}, c.in(0).dtype});
    }
    // P x [B,A,S,D] -> [B,S,P,A,D], or [B,S,A,D] when P == 1
    case OpKind::kMergeHeads: {
      const std::int64_t parts = c.int_attr("parts", 1, 64);
      const std::int64_t heads = c.int_attr("heads", 1, kMaxAttrDim);
      c.expect_inputs(static_cast<std::size_t>(parts));
      c.expect_floating(0);
      c.expect_rank(0, 4, "x [B,A,S,D]");
      const Shape& s = c.shape(0);
      if (s[1] != heads) {
        c.fail("dim 1 of " + shape_to_string(s) + " must equal heads = " + std::to_string(heads));
      }
      for (std::size_t i = 1; i < op.inputs.size(); ++i) {
        c.expect_same_shape(0, i);
        c.expect_same_dtype(0, i);
      }
      // The output holds the same elements as the inputs together, so its byte count is checked
      // by add_op like any output's.
      Shape out = {s[0], s[2], heads, s[3]};
      if (parts > 1) out.insert(out.begin() + 2, parts);
      return {{out, c.in(0).dtype}};
    }
    // (x, bias, dy) -> dh = gelu'(x + bias) dy, the fused form's gradient
    case OpKind::kGeluGrad:
      if (op.inputs.size() == 3) {
        c.expect_floating(0);
        c.expect_same_dtype(0, 1);
        c.expect_same_dtype(0, 2);
        c.expect_same_shape(0, 2);
        c.expect_min_rank(0, c.rank(1), "x");
        const Shape& x = c.shape(0);
        c.expect_shape(1, Shape(x.end() - static_cast<std::ptrdiff_t>(c.rank(1)), x.end()), "bias");
        return {{x, c.in(0).dtype}};
      }
      [[fallthrough]];
    case OpKind::kAdd:
    case OpKind::kSoftmaxGrad: {
      c.expect_inputs(2);
      c.expect_floating(0);
      c.expect_same_dtype(0, 1);
      c.expect_same_shape(0, 1);
      if (op.kind == OpKind::kSoftmaxGrad) c.expect_min_rank(0, 1, "y");
      return {{c.shape(0), c.in(0).dtype}};
    }
    // (logits [...,V], targets i32 [...]) -> loss []
    case OpKind::kCrossEntropy: {
      c.expect_inputs(2);
      c.expect_floating(0);
      c.expect_min_rank(0, 1, "logits");
      c.expect_i32(1);
      c.expect_shape(1, leading(c.shape(0), 1), "targets");
      return {{{}, c.in(0).dtype}};
    }
    // (tokens [B,S], dy [B,S,H]) -> dtable [V,H]
    case OpKind::kEmbeddingGrad: {
      c.expect_inputs(2);
      c.expect_i32(0);
      c.expect_rank(0, 2, "tokens");
      c.expect_floating(1);
      c.expect_rank(1, 3, "dy");
      if (c.shape(1)[0] != c.shape(0)[0] || c.shape(1)[1] != c.shape(0)[1]) {
        c.fail("dy " + shape_to_string(c.shape(1)) + " does not match tokens " +
               shape_to_string(c.shape(0)));
      }
      const std::int64_t vocab = c.int_attr("vocab", 1, kMaxAttrDim);
      return {{{vocab, c.shape(1)[2]}, c.in(1).dtype}};
    }
    // (x [..., K...]) -> the last `keep` dims of x
    case OpKind::kReduceSum: {
      c.expect_inputs(1);
      c.expect_floating(0);
      const auto keep = c.int_attr("keep", 0, static_cast<std::int64_t>(c.rank(0)));
      const Shape& s = c.shape(0);
      return {{Shape(s.end() - keep, s.end()), c.in(0).dtype}};
    }
    // (dy, x [...,H], w [H], mean [...], rstd [...]) -> (dx, dw [H], db [H])
    case OpKind::kLayerNormGrad: {
      c.expect_inputs(5);
      c.expect_floating(0);
      c.expect_min_rank(0, 1, "dy");
      for (std::size_t i = 1; i < 5; ++i) c.expect_same_dtype(0, i);
      c.expect_same_shape(0, 1);
      const Shape h = {c.shape(0).back()};
      c.expect_shape(2, h, "weight");
      const Shape stats = leading(c.shape(0), 1);
      c.expect_shape(3, stats, "mean");
      c.expect_shape(4, stats, "rstd");
      const DType dt = c.in(0).dtype;
      return {{c.shape(0), dt}, {h, dt}, {h, dt}};
    }
    // (logits [...,V], targets i32 [...], dloss []) -> dlogits
    case OpKind::kCrossEntropyGrad: {
      c.expect_inputs(3);
      c.expect_floating(0);
      c.expect_min_rank(0, 1, "logits");
      c.expect_i32(1);
      c.expect_shape(1, leading(c.shape(0), 1), "targets");
      c.expect_floating(2);
      c.expect_shape(2, {}, "dloss");
      return {{c.shape(0), c.in(0).dtype}};
    }
    // (g) -> f64 []
    case OpKind::kSumSquares: {
      c.expect_inputs(1);
      c.expect_floating(0);
      return {{{}, DType::kF64}};
    }
    // (s_1 .. s_n f64 []) -> f64 [2]
    case OpKind::kClipByGlobalNorm: {
      if (op.inputs.empty()) c.fail("expects at least one input");
      for (std::size_t i = 0; i < op.inputs.size(); ++i) {
        c.expect_dtype(i, DType::kF64);
        c.expect_shape(i, {}, "sum of squares");
      }
      c.float_attr("max_norm", true, 0.0);
      return {{{2}, DType::kF64}};
    }
    // (p, g, m, v, norm_scale) -> () | (p, g, buf, norm_scale) -> ()
    case OpKind::kAdamW:
    case OpKind::kSgd: {
      const std::size_t n = op.kind == OpKind::kAdamW ? 5 : 4;
      c.expect_inputs(n);
      for (std::size_t i = 0; i + 1 < n; ++i) {
        c.expect_floating(i);
        c.expect_same_shape(0, i);
      }
      c.expect_shape(n - 1, {2}, "norm_scale");
      c.expect_dtype(n - 1, DType::kF64);
      if (op.kind == OpKind::kAdamW) {
        c.float_attr("beta1", true, 0.0);
        c.float_attr("beta2", true, 0.0);
        c.float_attr("eps", true, 0.0);
        c.float_attr("weight_decay", true, 0.0);
      } else {
        c.float_attr("momentum", true, 0.0);
        c.float_attr("weight_decay", true, 0.0);
      }
      return {};
    }
  }
  c.fail("unknown op kind " + std::to_string(static_cast<int>(op.kind)));
}

}  // namespace

MatMulEquation parse_matmul_equation(const std::string& equation) {
  const auto bad = [&](const std::string& why) {
    return std::invalid_argument("bad matmul equation '" + equation + "': " + why);
  };
  const auto arrow = equation.find("->");
  if (arrow == std::string::npos) throw bad("missing '->'");
  const std::string ins = equation.substr(0, arrow);
  const auto comma = ins.find(',');
  if (comma == std::string::npos) throw bad("expects two inputs 'a,b->c'");
  MatMulEquation eq{ins.substr(0, comma), ins.substr(comma + 1), equation.substr(arrow + 2)};
  for (const std::string* s : {&eq.lhs, &eq.rhs, &eq.out}) {
    bool seen[128] = {};
    for (char l : *s) {
      if (!is_letter(l)) throw bad("operands are letters a-z, A-Z");
      if (seen[static_cast<unsigned char>(l)]) {
        throw bad(std::string("letter ") + l + " repeats in operand '" + *s + "'");
      }
      seen[static_cast<unsigned char>(l)] = true;
    }
  }
  for (char l : eq.out) {
    if (eq.lhs.find(l) == std::string::npos && eq.rhs.find(l) == std::string::npos) {
      throw bad(std::string("output letter ") + l + " is in no input");
    }
  }
  return eq;
}

std::vector<OutputSpec> infer_output_specs(const Graph& graph, const Op& op) {
  for (TensorId id : op.inputs) {
    if (id < 0 || static_cast<std::size_t>(id) >= graph.tensors.size()) {
      throw std::invalid_argument("op " + op.name + " (" + op_kind_name(op.kind) +
                                  "): input tensor id " + std::to_string(id) + " out of range");
    }
  }
  return infer(Checker(graph, op));
}

}  // namespace strata::solver
