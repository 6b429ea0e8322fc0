// Learning-rate schedules and no_decay patterns computed by hand; FLOPs of matmuls by hand and
// the GPT model-FLOP formula of ALPA_FACTS.md 4.1 against the graph's own matmul FLOPs.
#include <catch2/catch.hpp>
#include <cmath>

#include "solver/ir/autodiff.h"
#include "solver/ir/flops.h"
#include "solver/ir/gpt.h"
#include "solver/ir/optimizer.h"
#include "tests/solver/ir_test_util.h"

using namespace strata::solver;
using namespace strata::solver::test;

TEST_CASE("learning-rate schedules", "[ir][optimizer]") {
  OptimizerSpec s;
  s.lr = 3e-4;
  CHECK(learning_rate(s, 1, 100) == 3e-4);  // constant
  CHECK(learning_rate(s, 100, 100) == 3e-4);

  s.schedule = "cosine";
  s.lr = 1e-3;
  s.min_lr = 1e-4;
  s.warmup_steps = 10;
  // warm-up: 1e-3 * 5 / 10 = 5e-4; step 10 reaches the peak
  CHECK(learning_rate(s, 5, 110) == Approx(5e-4));
  CHECK(learning_rate(s, 10, 110) == Approx(1e-3));
  // step 35: progress (35-10)/(110-10) = 0.25; 1e-4 + 9e-4 (1 + cos(pi/4))/2
  //   = 1e-4 + 9e-4 * 0.853553390 = 8.68198052e-4
  CHECK(learning_rate(s, 35, 110) == Approx(8.68198052e-4));
  // step 60: progress 0.5; 1e-4 + 9e-4 * 0.5 = 5.5e-4
  CHECK(learning_rate(s, 60, 110) == Approx(5.5e-4));
  // the last step uses min_lr
  CHECK(learning_rate(s, 110, 110) == Approx(1e-4));
  // no warm-up, T = 3: step 1 progress 1/3, (1 + cos(pi/3))/2 = 0.75: 1e-4 + 9e-4*0.75 = 7.75e-4
  s.warmup_steps = 0;
  CHECK(learning_rate(s, 1, 3) == Approx(7.75e-4));
  // T <= w keeps the ramp: w = 10, T = 5, step 3: 1e-3 * 3/10 = 3e-4
  s.warmup_steps = 10;
  CHECK(learning_rate(s, 3, 5) == Approx(3e-4));

  CHECK_THROWS_AS(learning_rate(s, 0, 5), std::invalid_argument);
  s.schedule = "linear";
  CHECK_THROWS_AS(learning_rate(s, 1, 5), std::invalid_argument);
}

TEST_CASE("no_decay name patterns", "[ir][optimizer]") {
  CHECK(matches_pattern("transformer.h.0.ln_1.bias", "*.bias"));
  CHECK(matches_pattern("transformer.h.0.ln_1.weight", "*ln_*"));
  CHECK(matches_pattern("transformer.ln_f.weight", "transformer.ln_f.weight"));
  CHECK_FALSE(matches_pattern("transformer.h.0.mlp.c_fc.weight", "*.bias"));
  CHECK(matches_pattern("abc", "a*b*c"));
  CHECK(matches_pattern("", ""));
  CHECK(matches_pattern("", "*"));
  CHECK(matches_pattern("anything", "*"));
  CHECK_FALSE(matches_pattern("a", "ab"));
  CHECK_FALSE(matches_pattern("ab", "a"));
  // the greedy matcher needs no exponential backtracking
  CHECK_FALSE(matches_pattern(std::string(2000, 'a'), "a*a*a*a*a*a*a*a*b"));
}

TEST_CASE("op FLOPs by hand", "[ir][flops]") {
  Graph g;
  const TensorId x = activation(g, "x", {2, 4, 6});
  const TensorId w = param(g, "w", {6, 18});
  // bsk,kn->bsn: 2 * b2 * s4 * k6 * n18 = 1728
  apply(g, OpKind::kMatMul, "mm", {x, w}, {{"equation", std::string("bsk,kn->bsn")}});
  CHECK(op_flops(g, g.ops[0]) == 1728.0);
  // basd,batd->bast with alpha: 2 * b2 * a3 * s4 * d2 * t4 = 384 (alpha is free)
  const TensorId q = activation(g, "q", {2, 3, 4, 2});
  apply(g, OpKind::kMatMul, "sc", {q, q},
        {{"equation", std::string("basd,batd->bast")}, {"alpha", 0.5}});
  CHECK(op_flops(g, g.ops[1]) == 384.0);
  // gelu: 8 per element of [2, 4, 6] = 384; add: 1 per element = 48
  apply(g, OpKind::kGelu, "gelu", {x});
  CHECK(op_flops(g, g.ops[2]) == 8.0 * 48);
  apply(g, OpKind::kAdd, "add", {x, x});
  CHECK(op_flops(g, g.ops[3]) == 48.0);
  CHECK(graph_flops(g, OpPhase::kForward) == 1728.0 + 384.0 + 384.0 + 48.0);
  CHECK(graph_flops(g, OpPhase::kBackward) == 0.0);
  // parameters: 6 * 18 * 4 bytes = 432
  CHECK(bytes_with_role(g, TensorRole::kParameter) == 432);
}

TEST_CASE("GPT model FLOPs: formula by hand and against the graph", "[ir][flops]") {
  // B=8, S=1024, H=768, L=12, V=51200:
  //   72 B S H^2 L (1 + S/(6H)) + 6 B S H V = 72 B S H^2 L + 12 B S^2 H L + 6 B S H V
  //   = 5.708e12 + 8.05e11 + 1.933e12 + ... = 7035156430848 (exact in double)
  CHECK(gpt_model_flops(8, 1024, 768, 12, 51200) == 7035156430848.0);

  // Per block the forward matmuls are qkv 6BSH^2 (bsk,kpad->bspad: 2 B S H 3 A D, A D = H),
  // scores 2BS^2H, ctx 2BS^2H, proj 2BSH^2 (bsad,adn->bsn), fc 8BSH^2, mlp proj 8BSH^2
  // = 24BSH^2 + 4BS^2H, plus the head 2BSHV; backward is twice forward, so 3 x forward matmul
  // FLOPs is the formula exactly: factoring the heads into dims of their own changes no total.
  GptConfig c;                // L=2, H=64, A=4, S=32, V=256
  c.fused_attention = false;  // the formula counts the full S x S scores
  const Graph fwd = build_gpt(c, 3);
  double matmul_fwd = 0;
  for (const Op& op : fwd.ops) {
    if (op.kind == OpKind::kMatMul) matmul_fwd += op_flops(fwd, op);
  }
  CHECK(3.0 * matmul_fwd == gpt_model_flops(3, 32, 64, 2, 256));
  const auto flops_of = [&](const std::string& name) {
    for (const Op& op : fwd.ops) {
      if (op.name == name) return op_flops(fwd, op);
    }
    FAIL("no op " << name);
    return 0.0;
  };
  CHECK(flops_of("h.0.attn.qkv") == 6.0 * 3 * 32 * 64 * 64);   // 6 B S H^2
  CHECK(flops_of("h.0.attn.proj") == 2.0 * 3 * 32 * 64 * 64);  // 2 B S H^2
  const TrainingGraph tg = build_training_graph(fwd, fwd.at("loss"), OptimizerSpec{});
  double matmul_bwd = 0;
  for (const Op& op : tg.graph.ops) {
    if (op.kind == OpKind::kMatMul && op.phase == OpPhase::kBackward) {
      matmul_bwd += op_flops(tg.graph, op);
    }
  }
  CHECK(matmul_bwd == 2.0 * matmul_fwd);
  CHECK(graph_flops(tg.graph, OpPhase::kForward) > matmul_fwd);  // elementwise work on top
  // 118528 parameters (test_gpt.cc) x 4 bytes; AdamW state twice that
  CHECK(bytes_with_role(fwd, TensorRole::kParameter) == 118528 * 4);
  CHECK(bytes_with_role(tg.graph, TensorRole::kOptimizerState) == 2 * 118528 * 4);
}

TEST_CASE("fused attention FLOPs and scratch bytes count the causal pairs", "[ir][flops]") {
  // B=3, A=4, S=32, D=16: causal pairs per item S (S + 1) / 2 = 528, 12 items -> 6336 pairs.
  // forward 4 D + 5 = 69 per pair; backward 10 D + 9 = 169; scratch 4 and 10 passes of f32.
  GptConfig c;  // fused by default
  const Graph fwd = build_gpt(c, 3);
  const TrainingGraph tg = build_training_graph(fwd, fwd.at("loss"), OptimizerSpec{});
  const auto op_of = [&](const std::string& name) -> const Op& {
    for (const Op& op : tg.graph.ops) {
      if (op.name == name) return op;
    }
    FAIL("no op " << name);
    return tg.graph.ops.front();
  };
  const Op& att = op_of("h.0.attn.attention");
  const Op& grad = op_of("h.0.attn.attention.grad");
  const double pairs = 12.0 * 528;
  CHECK(op_flops(tg.graph, att) == pairs * 69);
  CHECK(op_flops(tg.graph, grad) == pairs * 169);
  CHECK(op_scratch_bytes(tg.graph, att) == pairs * 4 * 4);
  CHECK(op_scratch_bytes(tg.graph, grad) == pairs * 10 * 4);
  CHECK(op_scratch_bytes(tg.graph, op_of("h.0.attn.qkv")) == 0);
  // About half the unfused scores + ctx GEMMs (2 x 2 B A S S D = 2 x 786432 FLOPs).
  CHECK(pairs * 4 * 16 < 2.0 * 786432 * 0.52);
}
