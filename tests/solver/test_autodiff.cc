// Autodiff structure on tiny graphs: which tensors get gradients, the gradient rules' ops and
// equations, the tied embedding's summed gradient, and the optimizer ops (count, order, state,
// no_decay). Numerical gradient checks live in tests/app (they need kernels).
#include <catch2/catch.hpp>

#include "solver/ir/autodiff.h"
#include "solver/ir/gpt.h"
#include "tests/solver/ir_test_util.h"

using namespace strata::solver;
using namespace strata::solver::test;
using Catch::Matchers::Contains;

namespace {

GptConfig tiny(bool fused_attention = true) {  // L = 2: layers 0 (embedding), 1, 2, 3 (head)
  GptConfig c;
  c.fused_attention = fused_attention;
  c.layers = 2;
  c.hidden = 8;
  c.heads = 2;
  c.seq_len = 4;
  c.vocab = 16;
  return c;
}

const Op* producer(const Graph& g, TensorId t) {
  for (const Op& op : g.ops) {
    for (TensorId o : op.outputs) {
      if (o == t) return &op;
    }
  }
  return nullptr;
}

const Op& op_named(const Graph& g, const std::string& name) {
  for (const Op& op : g.ops) {
    if (op.name == name) return op;
  }
  throw std::runtime_error("no op " + name);
}

}  // namespace

TEST_CASE("every GPT parameter gets a gradient; inputs get none", "[ir][autodiff]") {
  const Graph fwd = build_gpt(tiny(), 2);
  const TrainingGraph tg = build_training_graph(fwd, fwd.at("loss"), OptimizerSpec{});
  const Graph& g = tg.graph;
  const std::vector<TensorId> params = fwd.tensors_with_role(TensorRole::kParameter);
  REQUIRE(params.size() == 28);  // 2 + 12 L + 2
  CHECK(tg.grad_of.size() == params.size());
  for (TensorId p : params) {
    const TensorId grad = tg.grad_of.at(p);
    CHECK(g.tensor(grad).name == "grad:" + g.tensor(p).name);
    CHECK(g.tensor(grad).shape == g.tensor(p).shape);
    CHECK(g.tensor(grad).dtype == g.tensor(p).dtype);
    CHECK(g.tensor(grad).role == TensorRole::kGradient);
  }
  CHECK(g.find("grad:tokens") == kNoTensor);
  CHECK(g.find("grad:targets") == kNoTensor);
  // seed: scalar "grad:loss" with no producer
  CHECK(g.tensor(tg.loss_grad).name == "grad:loss");
  CHECK(g.tensor(tg.loss_grad).shape.empty());
  CHECK(producer(g, tg.loss_grad) == nullptr);
  CHECK(tg.loss == fwd.at("loss"));
}

TEST_CASE("gradient rules produce the documented ops", "[ir][autodiff]") {
  const Graph fwd = build_gpt(tiny(/*fused_attention=*/false), 2);
  const TrainingGraph tg = build_training_graph(fwd, fwd.at("loss"), OptimizerSpec{});
  const Graph& g = tg.graph;

  // C = einsum(bsk,kn->bsn; A, B): dA = einsum(bsn,kn->bsk; dC, B), dB = einsum(bsk,bsn->kn)
  const Op& ga = op_named(g, "h.1.mlp.fc.grad_a");
  CHECK(attr_str(ga, "equation") == "bsn,kn->bsk");
  CHECK(ga.layer == 2);
  CHECK(ga.phase == OpPhase::kBackward);
  const Op& gb = op_named(g, "h.1.mlp.fc.grad_b");
  CHECK(attr_str(gb, "equation") == "bsk,bsn->kn");
  CHECK(g.tensor(gb.outputs[0]).name == "grad:transformer.h.1.mlp.c_fc.weight");
  // scores keep alpha: dq = alpha * einsum(bast,batd->basd; dS, k)
  const Op& sq = op_named(g, "h.0.attn.scores.grad_a");
  CHECK(attr_str(sq, "equation") == "bast,batd->basd");
  CHECK(attr_float(sq, "alpha") == Approx(0.5));  // 1/sqrt(D), D = 8/2 = 4
  CHECK(attr_str(op_named(g, "h.0.attn.scores.grad_b"), "equation") == "basd,bast->batd");
  // bias: reduce_sum keeping the bias's rank (1, or 3 for qkv's [3,A,D]); positions: keep 2;
  // embedding: embedding_grad vocab V
  CHECK(attr_int(op_named(g, "h.0.mlp.gelu.grad_bias"), "keep") == 1);  // fused bias + GELU
  CHECK(op_named(g, "h.0.mlp.gelu.grad").inputs.size() == 3);           // (x, bias, dy)
  const Op& qkv_bias = op_named(g, "h.0.attn.qkv_bias.grad_bias");
  CHECK(attr_int(qkv_bias, "keep") == 3);
  CHECK(g.tensor(qkv_bias.outputs[0]).shape == Shape{3, 2, 4});  // [3, A, D], A 2, D 4
  // the factored matmuls' gradients are plain einsums of the same letters
  CHECK(attr_str(op_named(g, "h.0.attn.qkv.grad_a"), "equation") == "bspad,kpad->bsk");
  CHECK(attr_str(op_named(g, "h.0.attn.qkv.grad_b"), "equation") == "bsk,bspad->kpad");
  CHECK(attr_str(op_named(g, "h.0.attn.proj.grad_a"), "equation") == "bsn,adn->bsad");
  CHECK(attr_str(op_named(g, "h.0.attn.proj.grad_b"), "equation") == "bsad,bsn->adn");
  CHECK(attr_int(op_named(g, "embed.wpe.grad_table"), "keep") == 2);
  const Op& eg = op_named(g, "embed.wte.grad");
  CHECK(eg.kind == OpKind::kEmbeddingGrad);
  CHECK(attr_int(eg, "vocab") == 16);
  CHECK(eg.layer == 0);
  // layernorm_grad(dy, x, w, mean, rstd) -> dx, dw, db
  const Op& lg = op_named(g, "h.0.ln_1.grad");
  CHECK(lg.kind == OpKind::kLayerNormGrad);
  REQUIRE(lg.inputs.size() == 5);
  CHECK(lg.inputs[3] == fwd.at("h.0.ln_1:out1"));
  CHECK(g.tensor(lg.outputs[1]).name == "grad:transformer.h.0.ln_1.weight");
  // split_heads <-> merge_heads with the same attributes; each gradient has the shape of the
  // forward tensor it belongs to ([B,S,P,A,D] = [2,4,3,2,4] and [B,A,S,D] = [2,2,4,4])
  const Op& sg = op_named(g, "h.0.attn.split.grad");
  CHECK(sg.kind == OpKind::kMergeHeads);
  CHECK(sg.inputs.size() == 3);
  CHECK(attr_int(sg, "parts") == 3);
  CHECK(g.tensor(sg.outputs[0]).shape == Shape{2, 4, 3, 2, 4});
  const Op& mg = op_named(g, "h.0.attn.merge.grad");
  CHECK(mg.kind == OpKind::kSplitHeads);
  REQUIRE(mg.outputs.size() == 1);
  CHECK(g.tensor(mg.outputs[0]).shape == Shape{2, 2, 4, 4});
  CHECK(op_named(g, "loss.grad").kind == OpKind::kCrossEntropyGrad);
  CHECK(op_named(g, "loss.grad").inputs[2] == tg.loss_grad);

  // backward op count: embedding 2 (embedding_grad, reduce_sum) + 22 per block
  // (ln 2x1, matmuls 5x2, bias 3x1, split, causal softmax, merge, gelu) + head 4 (ln_f,
  // lm_head 2, cross_entropy) + sums: 2 per block (residual stream read twice) + 1 (wte)
  //   = 2 + 22*2 + 4 + 2*2 + 1 = 55
  int backward = 0;
  for (const Op& op : g.ops) backward += op.phase == OpPhase::kBackward;
  CHECK(backward == 55);
  // The causal softmax's gradient is the plain softmax gradient: its y is 0 where it masked.
  CHECK(op_named(g, "h.0.attn.softmax.grad").kind == OpKind::kSoftmaxGrad);
}

TEST_CASE("the fused attention's gradient is one attention_grad", "[ir][autodiff]") {
  const Graph fwd = build_gpt(tiny(), 2);
  const TrainingGraph tg = build_training_graph(fwd, fwd.at("loss"), OptimizerSpec{});
  const Graph& g = tg.graph;
  const Op& att = op_named(fwd, "h.0.attn.attention");
  const Op& ag = op_named(g, "h.0.attn.attention.grad");
  CHECK(ag.kind == OpKind::kAttentionGrad);
  CHECK(ag.phase == OpPhase::kBackward);
  CHECK(ag.attrs == att.attrs);  // scale, causal
  // (q, k, v, dctx) -> (dq, dk, dv), the gradients the split heads' gradient merges
  REQUIRE(ag.inputs.size() == 4);
  for (int i = 0; i < 3; ++i)
    CHECK(ag.inputs[static_cast<std::size_t>(i)] == att.inputs[static_cast<std::size_t>(i)]);
  CHECK(ag.outputs == op_named(g, "h.0.attn.split.grad").inputs);
  // 55 unfused backward ops less, per block, the scores and ctx gradients (2 each) and the
  // softmax gradient, plus one attention_grad: 55 - 2 * 4 = 47
  int backward = 0;
  for (const Op& op : g.ops) backward += op.phase == OpPhase::kBackward;
  CHECK(backward == 47);
}

TEST_CASE("the tied embedding's gradient is the sum of two partials", "[ir][autodiff]") {
  const Graph fwd = build_gpt(tiny(), 2);
  const TrainingGraph tg = build_training_graph(fwd, fwd.at("loss"), OptimizerSpec{});
  const Graph& g = tg.graph;
  const TensorId wte = fwd.at("transformer.wte.weight");
  const Op* sum = producer(g, tg.grad_of.at(wte));
  REQUIRE(sum != nullptr);
  CHECK(sum->kind == OpKind::kAdd);
  CHECK(sum->phase == OpPhase::kBackward);
  CHECK(sum->layer == 0);  // the owner layer
  REQUIRE(sum->inputs.size() == 2);
  // reverse order: the LM head (layer 3) contributes first, the embedding (layer 0) second
  const Op* first = producer(g, sum->inputs[0]);
  const Op* second = producer(g, sum->inputs[1]);
  REQUIRE(first != nullptr);
  REQUIRE(second != nullptr);
  CHECK(first->name == "lm_head.grad_b");
  CHECK(attr_str(*first, "equation") == "bsh,bsv->vh");
  CHECK(first->layer == 3);
  CHECK(second->kind == OpKind::kEmbeddingGrad);
  CHECK(g.tensor(sum->inputs[0]).name == "grad:transformer.wte.weight#0");
  CHECK(g.tensor(sum->inputs[1]).name == "grad:transformer.wte.weight#1");

  // block 0's output (layer 1) is read by block 1's ln_1 and residual add (layer 2): its two
  // partials are summed in layer 2, so one gradient crosses the 2 -> 1 boundary
  const Op& acc = op_named(g, "grad_acc:h.0.mlp.residual:out#1");
  CHECK(acc.layer == 2);
  CHECK(g.tensor(acc.outputs[0]).name == "grad:h.0.mlp.residual:out");
}

TEST_CASE("execution order and optimizer ops", "[ir][autodiff]") {
  const Graph fwd = build_gpt(tiny(), 2);
  OptimizerSpec spec;
  spec.weight_decay = 0.1;
  spec.clip_grad_norm = 1.0;
  spec.no_decay = {"*.bias", "*ln_*"};
  const TrainingGraph tg = build_training_graph(fwd, fwd.at("loss"), spec);
  const Graph& g = tg.graph;

  // phases never go back: forward*, backward*, optimizer*
  int phase = 0;
  for (const Op& op : g.ops) {
    CHECK(static_cast<int>(op.phase) >= phase);
    phase = static_cast<int>(op.phase);
  }
  // 28 sum_squares, then one clip, then 28 adamw
  std::vector<const Op*> opt;
  for (const Op& op : g.ops) {
    if (op.phase == OpPhase::kOptimizer) opt.push_back(&op);
  }
  REQUIRE(opt.size() == 28 + 1 + 28);
  for (std::size_t i = 0; i < 28; ++i) CHECK(opt[i]->kind == OpKind::kSumSquares);
  const Op& clip = *opt[28];
  CHECK(clip.kind == OpKind::kClipByGlobalNorm);
  CHECK(clip.inputs.size() == 28);
  CHECK(attr_float(clip, "max_norm") == 1.0);
  CHECK(clip.outputs[0] == tg.norm_scale);
  CHECK(g.tensor(tg.norm_scale).shape == Shape{2});
  for (std::size_t i = 29; i < opt.size(); ++i) {
    CHECK(opt[i]->kind == OpKind::kAdamW);
    CHECK(opt[i]->outputs.empty());
    CHECK(opt[i]->inputs.back() == tg.norm_scale);
  }
  // layers: the parameter's owner layer (wte: 0, shared with 3)
  CHECK(op_named(g, "adamw:transformer.wte.weight").layer == 0);
  CHECK(op_named(g, "sumsq:transformer.h.1.mlp.c_fc.weight").layer == 2);
  CHECK(op_named(g, "adamw:transformer.ln_f.weight").layer == 3);
  // state: m, v with the parameter's shape, file shape (checkpoints) and dtype
  const TensorId w = fwd.at("transformer.h.0.attn.c_attn.weight");
  const std::vector<TensorId>& state = tg.state_of.at(w);
  REQUIRE(state.size() == 2);
  CHECK(g.tensor(state[0]).name == "adam_m:transformer.h.0.attn.c_attn.weight");
  CHECK(g.tensor(state[1]).name == "adam_v:transformer.h.0.attn.c_attn.weight");
  CHECK(g.tensor(state[1]).shape == Shape{8, 3, 2, 4});
  CHECK(g.tensor(state[1]).file_shape == Shape{8, 24});
  CHECK(g.tensor(state[1]).role == TensorRole::kOptimizerState);
  // no_decay patterns
  CHECK(attr_float(op_named(g, "adamw:transformer.h.0.attn.c_attn.weight"), "weight_decay") == 0.1);
  CHECK(attr_float(op_named(g, "adamw:transformer.h.0.attn.c_attn.bias"), "weight_decay") == 0.0);
  CHECK(attr_float(op_named(g, "adamw:transformer.h.1.ln_2.weight"), "weight_decay") == 0.0);
  CHECK(attr_float(op_named(g, "adamw:transformer.h.0.attn.c_attn.weight"), "beta2") == 0.999);
}

TEST_CASE("sgd, pruned branches and bad requests", "[ir][autodiff]") {
  const Graph fwd = build_gpt(tiny(), 2);
  OptimizerSpec sgd;
  sgd.kind = "sgd";
  sgd.momentum = 0.9;
  const TrainingGraph tg = build_training_graph(fwd, fwd.at("loss"), sgd);
  int updates = 0;
  for (const Op& op : tg.graph.ops) updates += op.kind == OpKind::kSgd;
  CHECK(updates == 28);
  const TensorId wpe = fwd.at("transformer.wpe.weight");
  REQUIRE(tg.state_of.at(wpe).size() == 1);
  CHECK(tg.graph.tensor(tg.state_of.at(wpe)[0]).name == "momentum:transformer.wpe.weight");
  CHECK(attr_float(op_named(tg.graph, "sgd:transformer.wpe.weight"), "momentum") == 0.9);

  // y = x w1 (reaches the loss); z = x w2 (does not): only w1 gets a gradient.
  // loss = CE(y, t); a parameter used twice (w1 in both matmul slots) gets 2 partials.
  Graph g;
  const TensorId x = input(g, "x", {2, 3, 5}, DType::kF32);
  const TensorId w1 = param(g, "w1", {5, 5});
  const TensorId w2 = param(g, "w2", {5, 5});
  const TensorId t = input(g, "t", {2, 3});
  const TensorId y =
      apply(g, OpKind::kMatMul, "y", {x, w1}, {{"equation", std::string("bsk,kn->bsn")}})[0];
  const TensorId y2 =
      apply(g, OpKind::kMatMul, "y2", {w1, w1}, {{"equation", std::string("ij,jk->ik")}})[0];
  apply(g, OpKind::kMatMul, "z", {x, w2}, {{"equation", std::string("bsk,kn->bsn")}});
  const TensorId yy =
      apply(g, OpKind::kMatMul, "yy", {y, y2}, {{"equation", std::string("bsk,kn->bsn")}})[0];
  const TensorId loss = apply(g, OpKind::kCrossEntropy, "ce", {yy, t})[0];
  const TrainingGraph small = build_training_graph(g, loss, OptimizerSpec{});
  CHECK(small.grad_of.count(w1) == 1);
  CHECK(small.grad_of.count(w2) == 0);
  CHECK(small.graph.find("grad:x") == kNoTensor);  // an input: no gradient
  // w1: one partial from y.grad_b, two from y2 (grad_a, grad_b): two adds
  int sums = 0;
  for (const Op& op : small.graph.ops) sums += op.name.rfind("grad_acc:w1#", 0) == 0;
  CHECK(sums == 2);
  CHECK(small.graph.tensor(small.grad_of.at(w1)).name == "grad:w1");

  CHECK_THROWS_WITH(build_training_graph(g, y, OptimizerSpec{}), Contains("scalar"));
  CHECK_THROWS_AS(build_training_graph(g, 999, OptimizerSpec{}), std::invalid_argument);
  OptimizerSpec bad;
  bad.kind = "lamb";
  CHECK_THROWS_WITH(build_training_graph(g, loss, bad), Contains("lamb"));
}
