// Op: one operator of the IR graph, and the catalogue of op kinds with their calling conventions.
// Every kind is described by an index map (index_map.h); inputs and outputs are TensorIds into the
// owning Graph. Backward and optimizer ops inherit the layer of the forward op or parameter they
// belong to. Pure C++.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "solver/ir/tensor.h"

namespace strata::solver {

// Calling conventions (inputs -> outputs; attributes). B batch, S sequence, H hidden, V vocab,
// A heads, D head dim, P parts (3 for q,k,v). "..." is any number of leading dims. Heads are
// separate dims everywhere ([B,S,P,A,D], never [B,S,P*A*D]), so each index map names whole dims;
// the "merged" side of split/merge heads is [B,S,P,A,D], written [B,S,A,D] when P == 1.
enum class OpKind : std::uint8_t {
  // ---- forward
  kEmbedding,          // (tokens i32 [B,S], table [V,H]) -> [B,S,H]
  kPositionEmbedding,  // (x [B,S,H], table [S,H]) -> x + table broadcast over B
  kLayerNorm,          // (x [...,H], w [H], b [H]) -> (y [...,H], mean [...], rstd [...]); eps
  kMatMul,             // (a, b) -> c; equation "bsk,kn->bsn" (einsum, one letter per dim), alpha
  kBiasAdd,            // (x [...,N...], bias [N...]) -> x + bias over x's trailing dims
  kGelu,               // (x) -> y, tanh form; fused (x, bias) -> gelu(x + bias), bias as bias_add
  kSplitHeads,         // (x [B,S,P,A,D] | [B,S,A,D] if P == 1) -> P x [B,A,S,D]; parts, heads
  kMergeHeads,         // P x [B,A,S,D] -> [B,S,P,A,D] | [B,S,A,D] if P == 1; parts, heads
  kCausalMask,         // (x [...,S,S]) -> y, elements with column > row set to -inf
  kSoftmax,            // (x [...,T]) -> y, over the last dim; attr causal = 1: x [..., S, T]
                       // causally masked first (c > r is left out and 0 in y; "row_offset",
                       // "col_offset" on a shard), the fused form of causal_mask + softmax
  kAttention,          // (q [B,A,S,D], k [B,A,T,D], v [B,A,T,D]) -> o [B,A,S,D]; scale, causal
                       // (0|1; "row_offset", "col_offset" on a shard as softmax): o =
                       // softmax(scale q k^T) v fused, no [S,T] tensor (kernels' attention)
  kAdd,                // (a, b) -> a + b, same shapes (residual add; gradient accumulation)
  kCrossEntropy,       // (logits [B,S,V], targets i32 [B,S]) -> loss [] = mean over B*S tokens
  // ---- backward
  kEmbeddingGrad,     // (tokens [B,S], dy [B,S,H]) -> dtable [V,H]; vocab V
  kReduceSum,         // (x [...,K]) -> sum over leading dims, keeping the last `keep` dims
  kLayerNormGrad,     // (dy, x, w, mean, rstd) -> (dx, dw, db)
  kGeluGrad,          // (x, dy) -> dx; fused (x, bias, dy) -> dh = gelu'(x + bias) dy
  kSoftmaxGrad,       // (y, dy) -> dx
  kAttentionGrad,     // (q, k, v, do) -> (dq, dk, dv); attention's attrs; recomputes the scores
  kCausalMaskGrad,    // (dy) -> dx with elements column > row set to 0
  kCrossEntropyGrad,  // (logits, targets, dloss []) -> dlogits
  // ---- optimizer. kAdamW and kSgd have no outputs: they update p and their state in place, so
  // a parameter's storage is the layout its optimizer op reads it in (DESIGN.md section 4).
  // lr and the step number are runtime values, not attributes (the schedule changes them).
  kSumSquares,        // (g) -> f64 [] = sum of squares of g
  kClipByGlobalNorm,  // (s_1 .. s_n f64 []) -> f64 [2] = {norm, scale}; max_norm (0: scale 1)
  kAdamW,             // (p, g, m, v, norm_scale f64 [2]) -> (); beta1 beta2 eps weight_decay
  kSgd,               // (p, g, buf, norm_scale f64 [2]) -> (); momentum weight_decay
};

// "embedding", "matmul", ... (stable: used in graph JSON and plans).
const char* op_kind_name(OpKind kind);
// Inverse of op_kind_name; throws std::invalid_argument naming the text.
OpKind parse_op_kind(const std::string& text);

enum class OpPhase : std::uint8_t { kForward, kBackward, kOptimizer };
const char* op_phase_name(OpPhase phase);

using AttrValue = std::variant<std::int64_t, double, std::string>;
using Attrs = std::map<std::string, AttrValue>;  // ordered: serialises deterministically

struct Op {
  OpKind kind = OpKind::kAdd;
  std::string name;  // unique in the graph, e.g. "h.0.attn.qkv" or "h.0.attn.qkv.grad_a"
  std::vector<TensorId> inputs;
  std::vector<TensorId> outputs;
  Attrs attrs;
  int layer = 0;
  OpPhase phase = OpPhase::kForward;
};

// Typed attribute access; throw std::invalid_argument naming the op and attribute when missing
// or of another type. The *_or forms return `fallback` when the attribute is absent.
std::int64_t attr_int(const Op& op, const std::string& key);
double attr_float(const Op& op, const std::string& key);  // accepts an integer value too
const std::string& attr_str(const Op& op, const std::string& key);
std::int64_t attr_int_or(const Op& op, const std::string& key, std::int64_t fallback);
double attr_float_or(const Op& op, const std::string& key, double fallback);

}  // namespace strata::solver
