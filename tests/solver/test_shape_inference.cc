// Shape inference of every op kind (op.h's conventions) and its error messages, which must name
// the op, its kind and the offending shapes. Each graph is a handful of hand-made tensors:
// B = 2 batch, S = 4 sequence, H = 6 hidden, V = 10 vocab, A = 3 heads, D = 2 head dim, P = 3
// parts (q, k, v); heads are dims of their own ([B,S,P,A,D]), as in the GPT builder.
#include <catch2/catch.hpp>

#include "solver/ir/shape_inference.h"
#include "tests/solver/ir_test_util.h"

using namespace strata::solver;
using namespace strata::solver::test;
using Catch::Matchers::Contains;

namespace {

Attrs eq(const char* e) { return {{"equation", std::string(e)}}; }

}  // namespace

TEST_CASE("forward kinds infer their output shapes", "[ir][shape]") {
  Graph g;
  const TensorId tok = input(g, "tokens", {2, 4});
  const TensorId wte = param(g, "wte", {10, 6});
  const TensorId wpe = param(g, "wpe", {4, 6});
  const TensorId lw = param(g, "lw", {6}), lb = param(g, "lb", {6});
  // c_attn factored by head: [H, P, A, D] = [6, 3, 3, 2], bias [3, 3, 2]; c_proj [A, D, H]
  const TensorId w3 = param(g, "w3", {6, 3, 3, 2}), b3 = param(g, "b3", {3, 3, 2});
  const TensorId wp = param(g, "wp", {3, 2, 6}), bp = param(g, "bp", {6});

  const TensorId e = apply(g, OpKind::kEmbedding, "emb", {tok, wte})[0];
  CHECK(shape_of(g, e) == Shape{2, 4, 6});  // [B,S] x [V,H] -> [B,S,H]
  const TensorId x = apply(g, OpKind::kPositionEmbedding, "pos", {e, wpe})[0];
  CHECK(shape_of(g, x) == Shape{2, 4, 6});
  const auto ln = apply(g, OpKind::kLayerNorm, "ln", {x, lw, lb}, {{"eps", 1e-5}});
  CHECK(shape_of(g, ln[0]) == Shape{2, 4, 6});
  CHECK(shape_of(g, ln[1]) == Shape{2, 4});  // mean: leading dims
  CHECK(shape_of(g, ln[2]) == Shape{2, 4});  // rstd
  CHECK(g.tensor(ln[1]).dtype == DType::kF32);
  // bsk,kpad->bspad: [2,4,6] x [6,3,3,2] -> [2,4,3,3,2]
  const TensorId qkv = apply(g, OpKind::kMatMul, "qkv", {ln[0], w3}, eq("bsk,kpad->bspad"))[0];
  CHECK(shape_of(g, qkv) == Shape{2, 4, 3, 3, 2});
  // the bias covers the trailing 3 dims
  const TensorId qb = apply(g, OpKind::kBiasAdd, "qkv_bias", {qkv, b3})[0];
  CHECK(shape_of(g, qb) == Shape{2, 4, 3, 3, 2});
  // [B,S,P,A,D] = [2,4,3,3,2] -> three [B,A,S,D] = [2,3,4,2]
  const auto qkvs = apply(g, OpKind::kSplitHeads, "split", {qb},
                          {{"parts", std::int64_t{3}}, {"heads", std::int64_t{3}}});
  REQUIRE(qkvs.size() == 3);
  for (TensorId t : qkvs) CHECK(shape_of(g, t) == Shape{2, 3, 4, 2});
  // basd,batd->bast: [2,3,4,2] x [2,3,4,2] -> [2,3,4,4]
  const TensorId sc = apply(g, OpKind::kMatMul, "scores", {qkvs[0], qkvs[1]},
                            {{"equation", std::string("basd,batd->bast")}, {"alpha", 0.5}})[0];
  CHECK(shape_of(g, sc) == Shape{2, 3, 4, 4});
  const TensorId mk = apply(g, OpKind::kCausalMask, "mask", {sc})[0];
  const TensorId pr = apply(g, OpKind::kSoftmax, "softmax", {mk})[0];
  CHECK(shape_of(g, pr) == Shape{2, 3, 4, 4});
  const TensorId ctx = apply(g, OpKind::kMatMul, "ctx", {pr, qkvs[2]}, eq("bast,batd->basd"))[0];
  CHECK(shape_of(g, ctx) == Shape{2, 3, 4, 2});
  // merge, one part: [B,A,S,D] = [2,3,4,2] -> [B,S,A,D] = [2,4,3,2]
  const TensorId mg = apply(g, OpKind::kMergeHeads, "merge", {ctx},
                            {{"parts", std::int64_t{1}}, {"heads", std::int64_t{3}}})[0];
  CHECK(shape_of(g, mg) == Shape{2, 4, 3, 2});
  // bsad,adn->bsn: [2,4,3,2] x [3,2,6] -> [2,4,6]
  const TensorId pr2 = apply(g, OpKind::kMatMul, "proj", {mg, wp}, eq("bsad,adn->bsn"))[0];
  CHECK(shape_of(g, pr2) == Shape{2, 4, 6});
  const TensorId pb = apply(g, OpKind::kBiasAdd, "proj_bias", {pr2, bp})[0];
  const TensorId r = apply(g, OpKind::kAdd, "res", {x, pb})[0];
  const TensorId ge = apply(g, OpKind::kGelu, "gelu", {r})[0];
  CHECK(shape_of(g, ge) == Shape{2, 4, 6});
  // bsh,vh->bsv: [2,4,6] x [10,6] -> [2,4,10]
  const TensorId lg = apply(g, OpKind::kMatMul, "head", {ge, wte}, eq("bsh,vh->bsv"))[0];
  CHECK(shape_of(g, lg) == Shape{2, 4, 10});
  const TensorId tgt = input(g, "targets", {2, 4});
  const TensorId loss = apply(g, OpKind::kCrossEntropy, "ce", {lg, tgt})[0];
  CHECK(shape_of(g, loss).empty());
  CHECK(g.tensor(loss).dtype == DType::kF32);
}

TEST_CASE("backward and optimizer kinds infer their output shapes", "[ir][shape]") {
  Graph g;
  const TensorId tok = input(g, "tokens", {2, 4});
  const TensorId dy = activation(g, "dy", {2, 4, 6});
  const TensorId x = activation(g, "x", {2, 4, 6});
  const TensorId w = param(g, "w", {6});
  const TensorId mean = activation(g, "mean", {2, 4}), rstd = activation(g, "rstd", {2, 4});
  const TensorId dloss = activation(g, "dloss", {});

  CHECK(shape_of(g, apply(g, OpKind::kEmbeddingGrad, "eg", {tok, dy},
                          {{"vocab", std::int64_t{10}}})[0]) == Shape{10, 6});
  CHECK(shape_of(g, apply(g, OpKind::kReduceSum, "r1", {dy}, {{"keep", std::int64_t{1}}})[0]) ==
        Shape{6});
  CHECK(shape_of(g, apply(g, OpKind::kReduceSum, "r2", {dy}, {{"keep", std::int64_t{2}}})[0]) ==
        Shape{4, 6});
  CHECK(shape_of(g, apply(g, OpKind::kReduceSum, "r0", {dy}, {{"keep", std::int64_t{0}}})[0])
            .empty());
  const auto lng = apply(g, OpKind::kLayerNormGrad, "lng", {dy, x, w, mean, rstd});
  REQUIRE(lng.size() == 3);
  CHECK(shape_of(g, lng[0]) == Shape{2, 4, 6});
  CHECK(shape_of(g, lng[1]) == Shape{6});
  CHECK(shape_of(g, lng[2]) == Shape{6});
  CHECK(shape_of(g, apply(g, OpKind::kGeluGrad, "gg", {x, dy})[0]) == Shape{2, 4, 6});
  CHECK(shape_of(g, apply(g, OpKind::kSoftmaxGrad, "sg", {x, dy})[0]) == Shape{2, 4, 6});
  const TensorId sq = activation(g, "sq", {3, 4, 4});
  CHECK(shape_of(g, apply(g, OpKind::kCausalMaskGrad, "cg", {sq})[0]) == Shape{3, 4, 4});
  // split's gradient merges P = 3 parts [B,A,S,D] = [2,3,4,2] into [B,S,P,A,D] = [2,4,3,3,2];
  // merge's (P = 1) splits [B,S,A,D] back into one [B,A,S,D]
  const TensorId part = activation(g, "part", {2, 3, 4, 2});
  const Attrs three = {{"parts", std::int64_t{3}}, {"heads", std::int64_t{3}}};
  const Attrs one = {{"parts", std::int64_t{1}}, {"heads", std::int64_t{3}}};
  const TensorId m3 = apply(g, OpKind::kMergeHeads, "m3", {part, part, part}, three)[0];
  CHECK(shape_of(g, m3) == Shape{2, 4, 3, 3, 2});
  CHECK(shape_of(g, apply(g, OpKind::kSplitHeads, "s3", {m3}, three)[1]) == Shape{2, 3, 4, 2});
  const TensorId m1 = apply(g, OpKind::kMergeHeads, "m1", {part}, one)[0];
  CHECK(shape_of(g, m1) == Shape{2, 4, 3, 2});
  const auto s1p = apply(g, OpKind::kSplitHeads, "s1", {m1}, one);
  REQUIRE(s1p.size() == 1);
  CHECK(shape_of(g, s1p[0]) == Shape{2, 3, 4, 2});
  // reduce_sum keeping a factored bias's rank: [2,4,3,3,2] -> [3,3,2]
  CHECK(shape_of(g, apply(g, OpKind::kReduceSum, "r3", {m3}, {{"keep", std::int64_t{3}}})[0]) ==
        Shape{3, 3, 2});
  const TensorId logits = activation(g, "logits", {2, 4, 10});
  CHECK(shape_of(g, apply(g, OpKind::kCrossEntropyGrad, "ceg", {logits, tok, dloss})[0]) ==
        Shape{2, 4, 10});

  const TensorId p = param(g, "p", {3, 5});
  const TensorId grad = activation(g, "g", {3, 5});
  const TensorId s1 = apply(g, OpKind::kSumSquares, "ss", {grad})[0];
  CHECK(shape_of(g, s1).empty());
  CHECK(g.tensor(s1).dtype == DType::kF64);  // accumulated in double
  const TensorId ns = apply(g, OpKind::kClipByGlobalNorm, "clip", {s1, s1}, {{"max_norm", 1.0}})[0];
  CHECK(shape_of(g, ns) == Shape{2});  // {norm, scale}
  CHECK(g.tensor(ns).dtype == DType::kF64);
  const TensorId m = activation(g, "m", {3, 5}), v = activation(g, "v", {3, 5});
  const auto adam = apply(g, OpKind::kAdamW, "adamw", {p, grad, m, v, ns},
                          {{"beta1", 0.9}, {"beta2", 0.999}, {"eps", 1e-8}, {"weight_decay", 0.0}});
  CHECK(adam.empty());  // in-place update: no outputs
  CHECK(apply(g, OpKind::kSgd, "sgd", {p, grad, m, ns}, {{"momentum", 0.9}, {"weight_decay", 0.1}})
            .empty());
}

TEST_CASE("shape errors name the op, the kind and the shapes", "[ir][shape]") {
  Graph g;
  const TensorId tok = input(g, "tokens", {2, 4});
  const TensorId x = activation(g, "x", {2, 4, 256});
  const TensorId w = param(g, "w", {512, 8});
  const TensorId b7 = param(g, "b7", {7});
  const TensorId h6 = param(g, "h6", {6});
  const TensorId sq = activation(g, "sq", {2, 3, 4, 5});
  const TensorId x64 = activation(g, "x64", {2, 4, 256}, DType::kF64);

  // matmul: index k is 256 in input 0 but 512 in input 1
  CHECK_THROWS_WITH(
      apply(g, OpKind::kMatMul, "h.0.mlp.fc", {x, w}, {{"equation", std::string("bsk,kn->bsn")}}),
      Contains("op h.0.mlp.fc (matmul bsk,kn->bsn)") &&
          Contains("index k is 256 in input 0 but 512 in input 1") && Contains("[2, 4, 256]") &&
          Contains("[512, 8]"));
  CHECK_THROWS_WITH(
      apply(g, OpKind::kMatMul, "mm2", {x, w}, {{"equation", std::string("bs,kn->bsn")}}),
      Contains("mm2") && Contains("letters"));
  CHECK_THROWS_WITH(apply(g, OpKind::kMatMul, "mm3", {x, w}, {{"equation", std::string("bsk,kn")}}),
                    Contains("mm3") && Contains("->"));
  CHECK_THROWS_WITH(
      apply(g, OpKind::kMatMul, "mm4", {x, w}, {{"equation", std::string("bsk,kk->bs")}}),
      Contains("repeats"));
  CHECK_THROWS_WITH(
      apply(g, OpKind::kMatMul, "mm5", {x, w}, {{"equation", std::string("bsk,kn->bsz")}}),
      Contains("z is in no input"));
  CHECK_THROWS_WITH(apply(g, OpKind::kMatMul, "mm6", {x, w}), Contains("missing attribute"));
  CHECK_THROWS_WITH(
      apply(g, OpKind::kMatMul, "mm7", {x64, w}, {{"equation", std::string("bsk,kn->bsn")}}),
      Contains("dtype"));
  // bias of the wrong length; a bias of higher rank than x; a factored bias that does not
  // match x's trailing dims
  CHECK_THROWS_WITH(
      apply(g, OpKind::kBiasAdd, "h.0.attn.qkv_bias", {x, b7}),
      Contains("op h.0.attn.qkv_bias (bias_add)") && Contains("[256]") && Contains("[7]"));
  CHECK_THROWS_WITH(apply(g, OpKind::kBiasAdd, "bias_rank", {b7, w}),
                    Contains("op bias_rank (bias_add)") && Contains("rank >= 2"));
  const TensorId b35 = param(g, "b35", {3, 5});
  CHECK_THROWS_WITH(apply(g, OpKind::kBiasAdd, "bias2", {sq, b35}),
                    Contains("op bias2 (bias_add)") && Contains("must be [4, 5], got [3, 5]"));
  // layernorm weight of the wrong length
  CHECK_THROWS_WITH(apply(g, OpKind::kLayerNorm, "ln", {x, h6, h6}),
                    Contains("op ln (layernorm)") && Contains("weight") && Contains("[6]"));
  // embedding: float tokens, wrong input count
  CHECK_THROWS_WITH(apply(g, OpKind::kEmbedding, "emb", {x, w}),
                    Contains("op emb (embedding)") && Contains("i32"));
  CHECK_THROWS_WITH(apply(g, OpKind::kEmbedding, "emb2", {tok}),
                    Contains("expects 2 inputs, got 1"));
  // position table must be [S, H]
  CHECK_THROWS_WITH(apply(g, OpKind::kPositionEmbedding, "pos", {x, w}),
                    Contains("op pos (position_embedding)") && Contains("[4, 256]"));
  // split heads: a packed [B,S,P*A*D] input is no longer read (heads are dims of their own);
  // parts and heads must match dims 2 and 3 of [B,S,P,A,D]; zero heads is out of range
  CHECK_THROWS_WITH(apply(g, OpKind::kSplitHeads, "split", {x},
                          {{"parts", std::int64_t{3}}, {"heads", std::int64_t{5}}}),
                    Contains("op split (split_heads)") && Contains("must have rank 5"));
  const TensorId qkv5 = activation(g, "qkv5", {2, 4, 3, 5, 8});
  CHECK_THROWS_WITH(apply(g, OpKind::kSplitHeads, "split_p", {qkv5},
                          {{"parts", std::int64_t{2}}, {"heads", std::int64_t{5}}}),
                    Contains("op split_p (split_heads)") && Contains("parts = 2"));
  CHECK_THROWS_WITH(apply(g, OpKind::kSplitHeads, "split_a", {qkv5},
                          {{"parts", std::int64_t{3}}, {"heads", std::int64_t{4}}}),
                    Contains("op split_a (split_heads)") && Contains("heads = 4"));
  CHECK_THROWS_WITH(apply(g, OpKind::kSplitHeads, "split1", {qkv5},
                          {{"parts", std::int64_t{1}}, {"heads", std::int64_t{5}}}),
                    Contains("must have rank 4"));
  CHECK_THROWS_WITH(apply(g, OpKind::kSplitHeads, "split0", {qkv5},
                          {{"parts", std::int64_t{3}}, {"heads", std::int64_t{0}}}),
                    Contains("heads"));
  CHECK_THROWS_WITH(apply(g, OpKind::kMergeHeads, "merge", {sq, sq},
                          {{"parts", std::int64_t{2}}, {"heads", std::int64_t{4}}}),
                    Contains("op merge (merge_heads)") && Contains("heads = 4"));
  CHECK_THROWS_WITH(apply(g, OpKind::kMergeHeads, "merge2", {sq},
                          {{"parts", std::int64_t{2}}, {"heads", std::int64_t{3}}}),
                    Contains("expects 2 inputs"));
  // causal mask needs square trailing dims
  CHECK_THROWS_WITH(apply(g, OpKind::kCausalMask, "mask", {sq}),
                    Contains("op mask (causal_mask)") && Contains("[2, 3, 4, 5]"));
  // so does the causal softmax (a plain softmax does not), whose causal flag is 0 or 1
  CHECK_THROWS_WITH(apply(g, OpKind::kSoftmax, "csm", {sq}, {{"causal", std::int64_t{1}}}),
                    Contains("op csm (softmax)") && Contains("[2, 3, 4, 5]"));
  CHECK_NOTHROW(apply(g, OpKind::kSoftmax, "sm", {sq}, {{"causal", std::int64_t{0}}}));
  CHECK_THROWS_WITH(apply(g, OpKind::kSoftmax, "csm2", {sq}, {{"causal", std::int64_t{2}}}),
                    Contains("causal"));
  CHECK_THROWS_WITH(apply(g, OpKind::kAdd, "res", {x, sq}),
                    Contains("op res (add)") && Contains("differ in shape"));
  CHECK_THROWS_WITH(apply(g, OpKind::kCrossEntropy, "ce", {sq, tok}),
                    Contains("op ce (cross_entropy)") && Contains("targets"));
  CHECK_THROWS_WITH(apply(g, OpKind::kReduceSum, "rs", {x}, {{"keep", std::int64_t{4}}}),
                    Contains("keep"));
  CHECK_THROWS_WITH(apply(g, OpKind::kEmbeddingGrad, "eg", {tok, x}), Contains("vocab"));
  CHECK_THROWS_WITH(apply(g, OpKind::kClipByGlobalNorm, "clip", {x}, {{"max_norm", 1.0}}),
                    Contains("op clip (clip_by_global_norm)") && Contains("f64"));
  CHECK_THROWS_WITH(apply(g, OpKind::kSumSquares, "ss", {tok}), Contains("floating"));
  CHECK_THROWS_WITH(apply(g, OpKind::kAdamW, "adam", {w, w, w, w, w}),
                    Contains("op adam (adamw)") && Contains("norm_scale"));
  // an output whose element count overflows int64: [2^40 vocab, 2^24 hidden]
  const TensorId huge = activation(g, "huge", {2, 4, std::int64_t{1} << 24});
  CHECK_THROWS_WITH(
      apply(g, OpKind::kEmbeddingGrad, "eg2", {tok, huge}, {{"vocab", std::int64_t{1} << 40}}),
      Contains("eg2") && Contains("overflows"));
}
