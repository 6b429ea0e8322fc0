// Gradient checks in f64: the analytic gradients of the training graph (autodiff rules + host
// kernels) against central finite differences of the loss, for every op kind and a whole 2-layer
// GPT. Norm-wise per parameter, rtol 1e-6 (h = 1e-5: truncation ~h^2, rounding ~1e-16/h).
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "app/local_trainer.h"
#include "kernels/host/host_backend.h"
#include "solver/ir/gpt.h"
#include "test_support.h"

namespace strata {
namespace {

using solver::DType;
using solver::Graph;
using solver::OpKind;
using solver::Tensor;
using solver::TensorRole;

constexpr double kStep = 1e-5;

solver::TensorId param(Graph& g, const std::string& name, solver::Shape shape) {
  return g.add_tensor(Tensor{name, std::move(shape), DType::kF64, TensorRole::kParameter, 0});
}
solver::TensorId input(Graph& g, const std::string& name, solver::Shape shape) {
  return g.add_tensor(Tensor{name, std::move(shape), DType::kI32, TensorRole::kInput, 0});
}
solver::TensorId out(const Graph& g, solver::OpId op, int i = 0) {
  return g.ops[static_cast<std::size_t>(op)].outputs[static_cast<std::size_t>(i)];
}
// Ends a graph whose last activation is [B, S, X] with a cross-entropy loss over X classes.
solver::TensorId add_loss(Graph& g, solver::TensorId logits, solver::TensorId targets) {
  auto op = g.add_op(OpKind::kCrossEntropy, "loss", {logits, targets}, {}, 0,
                     solver::OpPhase::kForward, TensorRole::kLoss, {"loss"});
  return out(g, op);
}

// Runs forward + backward, then compares every parameter's gradient with central differences.
void check_gradients(const Graph& forward, solver::TensorId loss, std::int64_t classes,
                     double rtol) {
  kernels::HostBackend backend;
  app::LocalTrainer trainer(solver::build_training_graph(forward, loss, solver::OptimizerSpec{}),
                            backend, 1);
  const auto& tokens = forward.tensor(forward.at("tokens")).shape;
  const std::int64_t b = tokens[0], s = tokens[1];
  // Rows of s+1 tokens: inputs row[:s], targets row[1:], all < classes.
  std::vector<std::int32_t> rows(static_cast<std::size_t>(b * (s + 1)));
  std::mt19937_64 rng(7);
  for (auto& t : rows) t = static_cast<std::int32_t>(rng() % static_cast<std::uint64_t>(classes));

  std::map<std::string, std::vector<double>> params;
  std::uint64_t seed = 1;
  for (auto id : forward.tensors_with_role(TensorRole::kParameter)) {
    const auto& t = forward.tensor(id);
    params[t.name] =
        test::random_values(static_cast<std::size_t>(solver::num_elements(t.shape)), seed++, 0.5);
  }
  trainer.set_parameters(params);
  trainer.step(rows, app::StepContext{}, /*update=*/false);
  const auto analytic = trainer.gradients();

  for (auto& [name, values] : params) {
    std::vector<double> numeric(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      const double saved = values[i];
      values[i] = saved + kStep;
      trainer.set_parameters(params);
      const double plus = trainer.evaluate(rows);
      values[i] = saved - kStep;
      trainer.set_parameters(params);
      const double minus = trainer.evaluate(rows);
      values[i] = saved;
      numeric[i] = (plus - minus) / (2 * kStep);
    }
    trainer.set_parameters(params);
    REQUIRE(analytic.count(name) == 1);
    CHECK(test::close_normwise(analytic.at(name), numeric, rtol, 1e-10, "gradient of " + name));
  }
}

TEST_CASE("gradients of embedding and position embedding", "[gradcheck]") {
  Graph g;
  const std::int64_t B = 2, S = 3, V = 7, H = 5;
  auto tokens = input(g, "tokens", {B, S});
  auto targets = input(g, "targets", {B, S});
  auto wte = param(g, "wte", {V, H});
  auto wpe = param(g, "wpe", {S, H});
  auto emb = g.add_op(OpKind::kEmbedding, "emb", {tokens, wte}, {}, 0);
  auto pos = g.add_op(OpKind::kPositionEmbedding, "pos", {out(g, emb), wpe}, {}, 0);
  check_gradients(g, add_loss(g, out(g, pos), targets), H, 1e-6);
}

TEST_CASE("gradients of layernorm, bias add, gelu and residual add", "[gradcheck]") {
  Graph g;
  const std::int64_t B = 2, S = 3, X = 6;
  input(g, "tokens", {B, S});
  auto targets = input(g, "targets", {B, S});
  auto x = param(g, "x", {B, S, X});
  auto w = param(g, "ln.w", {X});
  auto b = param(g, "ln.b", {X});
  auto bias = param(g, "bias", {X});
  auto ln = g.add_op(OpKind::kLayerNorm, "ln", {x, w, b}, {{"eps", 1e-5}}, 0);
  auto biased = g.add_op(OpKind::kBiasAdd, "bias_add", {out(g, ln), bias}, {}, 0);
  auto gelu = g.add_op(OpKind::kGelu, "gelu", {out(g, biased)}, {}, 0);
  auto res = g.add_op(OpKind::kAdd, "res", {out(g, gelu), x}, {}, 0);
  check_gradients(g, add_loss(g, out(g, res), targets), X, 1e-6);
}

TEST_CASE("gradients of the attention pieces", "[gradcheck]") {
  // GPT's attention with heads as dims of their own: x [B,S,K] -> qkv [B,S,3,A,D] (+ bias
  // [3,A,D]) -> split -> scores -> mask -> softmax -> ctx -> merge [B,S,A,D] -> proj [B,S,N].
  Graph g;
  const std::int64_t B = 2, S = 4, K = 3, A = 2, D = 3, N = 5;
  input(g, "tokens", {B, S});
  auto targets = input(g, "targets", {B, S});
  auto x = param(g, "x", {B, S, K});
  auto w = param(g, "c_attn", {K, 3, A, D});
  auto bias = param(g, "c_attn.bias", {3, A, D});
  auto wp = param(g, "c_proj", {A, D, N});
  auto qkv =
      g.add_op(OpKind::kMatMul, "qkv", {x, w}, {{"equation", std::string("bsk,kpad->bspad")}}, 0);
  auto qkv_b = g.add_op(OpKind::kBiasAdd, "qkv_bias", {out(g, qkv), bias}, {}, 0);
  auto split = g.add_op(OpKind::kSplitHeads, "split", {out(g, qkv_b)},
                        {{"parts", std::int64_t{3}}, {"heads", A}}, 0);
  auto scores =
      g.add_op(OpKind::kMatMul, "scores", {out(g, split, 0), out(g, split, 1)},
               {{"equation", std::string("basd,batd->bast")}, {"alpha", 1 / std::sqrt(3.0)}}, 0);
  auto masked = g.add_op(OpKind::kCausalMask, "mask", {out(g, scores)}, {}, 0);
  auto probs = g.add_op(OpKind::kSoftmax, "softmax", {out(g, masked)}, {}, 0);
  auto ctx = g.add_op(OpKind::kMatMul, "av", {out(g, probs), out(g, split, 2)},
                      {{"equation", std::string("bast,batd->basd")}}, 0);
  auto merged = g.add_op(OpKind::kMergeHeads, "merge", {out(g, ctx)},
                         {{"parts", std::int64_t{1}}, {"heads", A}}, 0);
  auto proj = g.add_op(OpKind::kMatMul, "proj", {out(g, merged), wp},
                       {{"equation", std::string("bsad,adn->bsn")}}, 0);
  check_gradients(g, add_loss(g, out(g, proj), targets), N, 1e-6);
}

TEST_CASE("gradients of the fused attention, causal and not", "[gradcheck]") {
  // q, k, v as parameters straight into `attention`: its gradient op (kernels/attention.cc,
  // chunks of 128 rows, so one chunk here) against finite differences of the whole loss.
  for (std::int64_t causal : {1, 0}) {
    INFO("causal " << causal);
    Graph g;
    const std::int64_t B = 2, S = 5, A = 2, D = 3, N = 4;
    input(g, "tokens", {B, S});
    auto targets = input(g, "targets", {B, S});
    auto q = param(g, "q", {B, A, S, D});
    auto k = param(g, "k", {B, A, S, D});
    auto v = param(g, "v", {B, A, S, D});
    auto wp = param(g, "c_proj", {A, D, N});
    auto att = g.add_op(OpKind::kAttention, "attention", {q, k, v},
                        {{"scale", 0.8}, {"causal", causal}}, 0);
    auto merged = g.add_op(OpKind::kMergeHeads, "merge", {out(g, att)},
                           {{"parts", std::int64_t{1}}, {"heads", A}}, 0);
    auto proj = g.add_op(OpKind::kMatMul, "proj", {out(g, merged), wp},
                         {{"equation", std::string("bsad,adn->bsn")}}, 0);
    check_gradients(g, add_loss(g, out(g, proj), targets), N, 1e-6);
  }
}

TEST_CASE("gradients of merge heads with parts and split heads of one part", "[gradcheck]") {
  // The kinds autodiff emits for each other, used forward: merge 3 parts [B,A,S,D] into
  // [B,S,3,A,D]; split [B,S,A,D] (one part) into [B,A,S,D] and merge it back.
  Graph g;
  const std::int64_t B = 2, S = 3, A = 2, D = 2, N = 4;
  input(g, "tokens", {B, S});
  auto targets = input(g, "targets", {B, S});
  std::vector<solver::TensorId> parts;
  for (const char* name : {"q", "k", "v"}) parts.push_back(param(g, name, {B, A, S, D}));
  auto y = param(g, "y", {B, S, A, D});
  auto w = param(g, "w", {3, A, D, N});
  auto wy = param(g, "wy", {A, D, N});
  auto m3 =
      g.add_op(OpKind::kMergeHeads, "merge3", parts, {{"parts", std::int64_t{3}}, {"heads", A}}, 0);
  auto s1 =
      g.add_op(OpKind::kSplitHeads, "split1", {y}, {{"parts", std::int64_t{1}}, {"heads", A}}, 0);
  auto m1 = g.add_op(OpKind::kMergeHeads, "merge1", {out(g, s1)},
                     {{"parts", std::int64_t{1}}, {"heads", A}}, 0);
  auto a = g.add_op(OpKind::kMatMul, "a", {out(g, m3), w},
                    {{"equation", std::string("bspad,padn->bsn")}}, 0);
  auto c = g.add_op(OpKind::kMatMul, "c", {out(g, m1), wy},
                    {{"equation", std::string("bsad,adn->bsn")}}, 0);
  auto sum = g.add_op(OpKind::kAdd, "sum", {out(g, a), out(g, c)}, {}, 0);
  check_gradients(g, add_loss(g, out(g, sum), targets), N, 1e-6);
}

TEST_CASE("gradients of matmuls with transposed and permuted operands", "[gradcheck]") {
  Graph g;
  const std::int64_t B = 2, S = 3, K = 4, N = 5;
  input(g, "tokens", {B, S});
  auto targets = input(g, "targets", {B, S});
  auto x = param(g, "x", {B, S, K});
  auto w = param(g, "w", {N, K});     // used transposed, like the tied LM head
  auto y = param(g, "y", {S, B, K});  // needs a permute: "sbk" is not [batch, M, K]
  auto a = g.add_op(OpKind::kMatMul, "head", {x, w}, {{"equation", std::string("bsk,nk->bsn")}}, 0);
  auto c = g.add_op(OpKind::kMatMul, "perm", {y, w},
                    {{"equation", std::string("sbk,nk->bsn")}, {"alpha", 0.5}}, 0);
  auto sum = g.add_op(OpKind::kAdd, "sum", {out(g, a), out(g, c)}, {}, 0);
  check_gradients(g, add_loss(g, out(g, sum), targets), N, 1e-6);
}

TEST_CASE("gradients of a whole 2-layer GPT (tied embedding), both attention forms",
          "[gradcheck]") {
  for (bool fused : {true, false}) {
    INFO("fused attention " << fused);
    solver::GptConfig config;
    config.layers = 2;
    config.hidden = 8;
    config.heads = 2;
    config.seq_len = 4;
    config.vocab = 11;
    config.dtype = DType::kF64;
    config.fused_attention = fused;
    const Graph g = solver::build_gpt(config, 2);
    check_gradients(g, g.at("loss"), config.vocab, 1e-6);
  }
}

}  // namespace
}  // namespace strata
