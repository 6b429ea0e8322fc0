// Index maps of every op kind (index_map.h). Letters are local to one op; GPT's usual letters are
// used where the rank matches (b batch, s/t sequence, h hidden, v vocab, a heads, d head dim,
// p parts, n a matmul/bias output feature) and generic leading letters otherwise. Backward kinds
// mirror their forward kind; optimizer ops are elementwise over the parameter. Pure C++.
#include "solver/ir/index_map.h"

#include <stdexcept>

#include "solver/ir/shape_inference.h"

namespace strata::solver {
namespace {

// First n letters of `pool` that are not in `exclude`.
std::string letters(std::size_t n, const std::string& pool, const std::string& exclude) {
  std::string out;
  for (char c : pool) {
    if (out.size() == n) break;
    if (exclude.find(c) == std::string::npos) out += c;
  }
  if (out.size() != n)
    throw std::invalid_argument("index map: rank " + std::to_string(n) + " too large");
  return out;
}

constexpr const char* kActivationPool = "bsijklmoqruwxyz";  // leading dims of activations
constexpr const char* kScoresPool = "basijklmoqruwxyz";     // leading dims of [B,A,S,T] scores
constexpr const char* kParamPool = "ijklmoqruwxyz";         // dims of parameters (optimizer)

// Activation-like operand of rank r whose last index is `last`: "bs" + last for rank 3.
std::string with_last(std::size_t r, char last, const char* pool = kActivationPool) {
  if (r == 0) return "";
  return letters(r - 1, pool, std::string(1, last)) + last;
}

std::size_t rank_of(const Graph& g, TensorId id) { return g.tensor(id).shape.size(); }

}  // namespace

std::vector<std::string> operand_dims(const std::string& operand) {
  std::vector<std::string> dims;
  for (std::size_t i = 0; i < operand.size(); ++i) {
    if (operand[i] == '(') {
      const auto close = operand.find(')', i);
      if (close == std::string::npos || close == i + 1 || operand.find('(', i + 1) < close) {
        throw std::invalid_argument("operand '" + operand + "': unbalanced or empty group");
      }
      dims.push_back(operand.substr(i + 1, close - i - 1));
      i = close;
    } else if (operand[i] == ')') {
      throw std::invalid_argument("operand '" + operand + "': unbalanced ')'");
    } else {
      dims.emplace_back(1, operand[i]);
    }
  }
  return dims;
}

IndexMap index_map(const Graph& graph, const Op& op) {
  const auto in_rank = [&](std::size_t i) {
    if (i >= op.inputs.size()) {
      throw std::invalid_argument("index map: op " + op.name + " (" + op_kind_name(op.kind) +
                                  ") has too few inputs");
    }
    return rank_of(graph, op.inputs[i]);
  };
  IndexMap m;
  switch (op.kind) {
    case OpKind::kEmbedding:  // out[b,s,h] = table[tokens[b,s], h]
      m = {{"bs", "vh"}, {"bsh"}, "", "", "v"};
      break;
    case OpKind::kPositionEmbedding:  // out[b,s,h] = x[b,s,h] + table[s,h]
      m = {{"bsh", "sh"}, {"bsh"}, "", "", ""};
      break;
    case OpKind::kLayerNorm: {  // normalised over h; mean, rstd keep the leading indices
      const std::string x = with_last(in_rank(0), 'h');
      const std::string lead = x.substr(0, x.size() - 1);
      m = {{x, "h", "h"}, {x, lead, lead}, "", "h", ""};
      break;
    }
    case OpKind::kMatMul: {  // c[out] = alpha * sum_{reduced} a[lhs] b[rhs]
      const MatMulEquation eq = parse_matmul_equation(attr_str(op, "equation"));
      std::string reduced;
      for (const std::string* s : {&eq.lhs, &eq.rhs}) {
        for (char c : *s) {
          if (eq.out.find(c) == std::string::npos && reduced.find(c) == std::string::npos) {
            reduced += c;
          }
        }
      }
      m = {{eq.lhs, eq.rhs}, {eq.out}, reduced, "", ""};
      break;
    }
    // out[..., n...] = x[..., n...] + bias[n...]; the fused gelu(x + bias) and its gradient
    // (x, bias, dy) -> dh read the same way.
    case OpKind::kBiasAdd:
    case OpKind::kGelu:
    case OpKind::kGeluGrad: {
      const bool fused = (op.kind == OpKind::kGelu && op.inputs.size() == 2) ||
                         (op.kind == OpKind::kGeluGrad && op.inputs.size() == 3);
      if (op.kind != OpKind::kBiasAdd && !fused) {
        const std::string x = with_last(in_rank(0), 'h');
        m = {
            op.kind == OpKind::kGelu ? std::vector<std::string>{x} : std::vector<std::string>{x, x},
            {x},
            "",
            "",
            ""};
        break;
      }
      const std::size_t r = in_rank(0), rb = in_rank(1);
      if (rb > r) throw std::invalid_argument("index map: op " + op.name + ": bias rank > x rank");
      // GPT's qkv bias [3,A,D] reads "pad"; a plain [N] bias "n".
      const std::string bias = rb == 1   ? "n"
                               : rb <= 3 ? std::string("pad").substr(3 - rb)
                                         : letters(rb, kParamPool, "");
      const std::string x = letters(r - rb, kActivationPool, bias) + bias;
      m = {op.kind == OpKind::kGeluGrad ? std::vector<std::string>{x, bias, x}
                                        : std::vector<std::string>{x, bias},
           {x},
           "",
           "",
           ""};
      break;
    }
    case OpKind::kCausalMaskGrad:
    case OpKind::kCausalMask: {  // [..., S, T]: the mask compares s and t
      const std::size_t r = in_rank(0);
      const std::string x =
          r < 2 ? with_last(r, 't', kScoresPool) : letters(r - 2, kScoresPool, "st") + "st";
      m = {{x}, {x}, "", "", ""};
      break;
    }
    // out_p[b,a,s,d] = x[b,s,p,a,d]: pure permutations. p picks the part tensor, so it is in no
    // output of split (never split: a device cannot hold only some of the outputs); with one
    // part the merged side is "bsad".
    case OpKind::kSplitHeads:
    case OpKind::kMergeHeads: {
      const bool split = op.kind == OpKind::kSplitHeads;
      const std::size_t parts = split ? op.outputs.size() : op.inputs.size();
      const std::vector<std::string> heads(parts, "basd");
      const std::string merged = parts == 1 ? "bsad" : "bspad";
      if (split) {
        m = {{merged}, heads, "", "", ""};
      } else {
        m = {heads, {merged}, "", "", ""};
      }
      break;
    }
    case OpKind::kSoftmax: {
      const std::string x = with_last(in_rank(0), 't', kScoresPool);
      m = {{x}, {x}, "", "t", ""};
      break;
    }
    // o[b,a,s,:] = sum_t softmax_t(scale q[b,a,s,:] . k[b,a,t,:]) v[b,a,t,:]: t and d are
    // normalised over (never split); s may be split (a device takes some queries and every key;
    // its dk, dv come out partial over that axis, as layernorm_grad's dw); b and a freely.
    case OpKind::kAttention:
      m = {{"basd", "batd", "batd"}, {"basd"}, "", "td", ""};
      break;
    case OpKind::kAttentionGrad:
      m = {{"basd", "batd", "batd", "basd"}, {"basd", "batd", "batd"}, "", "td", ""};
      break;
    case OpKind::kAdd: {
      const std::string x = with_last(in_rank(0), 'h');
      m = {{x, x}, {x}, "", "", ""};
      break;
    }
    case OpKind::kSoftmaxGrad: {  // dx = y * (dy - sum_t dy y)
      const std::string x = with_last(in_rank(0), 't', kScoresPool);
      m = {{x, x}, {x}, "", "t", ""};
      break;
    }
    case OpKind::kCrossEntropy: {  // loss = mean_{b,s} CE(logits[b,s,:], targets[b,s])
      const std::string x = with_last(in_rank(0), 'v');
      const std::string lead = x.substr(0, x.size() - 1);
      m = {{x, lead}, {""}, lead, "v", ""};
      break;
    }
    case OpKind::kCrossEntropyGrad: {
      const std::string x = with_last(in_rank(0), 'v');
      const std::string lead = x.substr(0, x.size() - 1);
      m = {{x, lead, ""}, {x}, "", "v", ""};
      break;
    }
    case OpKind::kEmbeddingGrad:  // dtable[v,h] = sum_{b,s: tokens[b,s]=v} dy[b,s,h]
      m = {{"bs", "bsh"}, {"vh"}, "bs", "", "v"};
      break;
    case OpKind::kReduceSum: {  // out[kept] = sum_{lead} x[lead, kept]
      const std::size_t r = in_rank(0);
      const std::string x = with_last(r, 'h');
      const auto keep = static_cast<std::size_t>(attr_int(op, "keep"));
      if (keep > r) throw std::invalid_argument("index map: op " + op.name + ": keep > rank");
      m = {{x}, {x.substr(r - keep)}, x.substr(0, r - keep), "", ""};
      break;
    }
    case OpKind::kLayerNormGrad: {
      // dw, db sum over the leading indices, but dx keeps them, so `reduced` (absent from every
      // output) is empty: a split leading index leaves dw, db partial because their operands
      // lack it, as for any output.
      const std::string x = with_last(in_rank(0), 'h');
      const std::string lead = x.substr(0, x.size() - 1);
      m = {{x, x, "h", lead, lead}, {x, "h", "h"}, "", "h", ""};
      break;
    }
    case OpKind::kSumSquares: {  // s = sum_all g^2
      const std::string p = letters(in_rank(0), kParamPool, "");
      m = {{p}, {""}, p, "", ""};
      break;
    }
    case OpKind::kClipByGlobalNorm:  // scalars in, {norm, scale} out (index c of extent 2)
      m = {std::vector<std::string>(op.inputs.size(), ""), {"c"}, "", "", ""};
      break;
    case OpKind::kAdamW:
    case OpKind::kSgd: {  // elementwise over the parameter; norm_scale replicated
      const std::string p = letters(in_rank(0), kParamPool, "c");
      m.inputs.assign(op.inputs.size(), p);
      m.inputs.back() = "c";
      break;
    }
  }
  return m;
}

}  // namespace strata::solver
