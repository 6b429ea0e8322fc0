// Unit tests of the IR basics: dtypes, tensors, op names and attributes, Graph bookkeeping.
// Tiny hand-built graphs; no MPI.
#include <catch2/catch.hpp>
#include <limits>
#include <stdexcept>

#include "solver/ir/graph.h"
#include "tests/solver/ir_test_util.h"

using namespace strata::solver;
using namespace strata::solver::test;
using Catch::Matchers::Contains;

TEST_CASE("dtype sizes, names and parsing", "[ir][dtype]") {
  CHECK(dtype_size_bytes(DType::kF64) == 8);
  CHECK(dtype_size_bytes(DType::kF32) == 4);
  CHECK(dtype_size_bytes(DType::kBF16) == 2);
  CHECK(dtype_size_bytes(DType::kF16) == 2);
  CHECK(dtype_size_bytes(DType::kI32) == 4);
  for (DType d : {DType::kF64, DType::kF32, DType::kBF16, DType::kF16, DType::kI32}) {
    CHECK(parse_dtype(dtype_name(d)) == d);
  }
  CHECK(is_floating(DType::kBF16));
  CHECK_FALSE(is_floating(DType::kI32));
  CHECK_THROWS_WITH(parse_dtype("f8"), Contains("'f8'"));
}

TEST_CASE("tensor element and byte counts", "[ir][tensor]") {
  CHECK(num_elements({}) == 1);  // scalar
  CHECK(num_elements({2, 3, 4}) == 24);
  CHECK(num_elements({5, 0}) == 0);
  // 2^32 * 2^32 = 2^64 does not fit int64
  CHECK_THROWS_AS(num_elements({std::int64_t{1} << 32, std::int64_t{1} << 32}),
                  std::overflow_error);
  CHECK_THROWS_WITH(num_elements({std::int64_t{1} << 32, std::int64_t{1} << 32}, "w"),
                    Contains("w"));
  // [2, 3] f64 = 6 * 8 = 48 bytes
  CHECK(num_bytes({"x", {2, 3}, DType::kF64, TensorRole::kActivation, 0}) == 48);
  // 2^62 elements of 4 bytes = 2^64 bytes: overflow
  CHECK_THROWS_AS(num_bytes({"x", {std::int64_t{1} << 62}, DType::kF32}), std::overflow_error);
  CHECK(shape_to_string({8, 128, 256}) == "[8, 128, 256]");
  CHECK(shape_to_string({}) == "[]");
  for (TensorRole r : {TensorRole::kParameter, TensorRole::kInput, TensorRole::kActivation,
                       TensorRole::kGradient, TensorRole::kOptimizerState, TensorRole::kLoss}) {
    CHECK(parse_role(role_name(r)) == r);
  }
  CHECK_THROWS_AS(parse_role("weights"), std::invalid_argument);
}

TEST_CASE("op kind names round trip and attributes are typed", "[ir][op]") {
  for (int k = 0; k <= static_cast<int>(OpKind::kSgd); ++k) {
    const auto kind = static_cast<OpKind>(k);
    CHECK(parse_op_kind(op_kind_name(kind)) == kind);
  }
  CHECK(std::string(op_kind_name(OpKind::kMatMul)) == "matmul");
  CHECK(std::string(op_phase_name(OpPhase::kOptimizer)) == "optimizer");
  CHECK_THROWS_WITH(parse_op_kind("conv"), Contains("'conv'"));

  Op op;
  op.name = "h.0.attn.scores";
  op.kind = OpKind::kMatMul;
  op.attrs = {
      {"equation", std::string("basd,batd->bast")}, {"alpha", 0.125}, {"parts", std::int64_t{3}}};
  CHECK(attr_str(op, "equation") == "basd,batd->bast");
  CHECK(attr_float(op, "alpha") == 0.125);
  CHECK(attr_float(op, "parts") == 3.0);  // integers are accepted as floats
  CHECK(attr_int(op, "parts") == 3);
  CHECK(attr_int_or(op, "heads", 7) == 7);
  CHECK(attr_float_or(op, "eps", 1e-5) == 1e-5);
  CHECK_THROWS_WITH(attr_int(op, "alpha"), Contains("h.0.attn.scores") && Contains("alpha"));
  CHECK_THROWS_WITH(attr_str(op, "heads"), Contains("missing") && Contains("heads"));
}

TEST_CASE("graph names tensors and outputs and rejects duplicates", "[ir][graph]") {
  Graph g;
  const TensorId x = activation(g, "x", {2, 3});
  const TensorId w = param(g, "w", {3, 4});
  CHECK(g.find("x") == x);
  CHECK(g.at("w") == w);
  CHECK(g.find("nope") == kNoTensor);
  CHECK_THROWS_AS(g.at("nope"), std::out_of_range);
  CHECK_THROWS_AS(activation(g, "x", {1}), std::invalid_argument);
  CHECK_THROWS_AS(activation(g, "", {1}), std::invalid_argument);
  CHECK_THROWS_AS(activation(g, "neg", {-2}), std::invalid_argument);

  // one output: name + ":out"
  const auto y = apply(g, OpKind::kMatMul, "mm", {x, w}, {{"equation", std::string("ik,kn->in")}});
  REQUIRE(y.size() == 1);
  CHECK(g.tensor(y[0]).name == "mm:out");
  CHECK(g.tensor(y[0]).shape == Shape{2, 4});
  // several outputs: name + ":out<i>"
  const TensorId lw = param(g, "lw", {4}), lb = param(g, "lb", {4});
  const auto ln = apply(g, OpKind::kLayerNorm, "ln", {y[0], lw, lb}, {{"eps", 1e-5}});
  REQUIRE(ln.size() == 3);
  CHECK(g.tensor(ln[0]).name == "ln:out0");
  CHECK(g.tensor(ln[2]).name == "ln:out2");
  // explicit names, role and layer
  const OpId id = g.add_op(OpKind::kGelu, "act", {ln[0]}, {}, 3, OpPhase::kForward,
                           TensorRole::kActivation, {"hidden"});
  CHECK(g.ops[static_cast<std::size_t>(id)].layer == 3);
  CHECK(g.tensor(g.at("hidden")).layer == 3);
  // a duplicate output name fails and leaves the graph unchanged
  const std::size_t tensors = g.tensors.size(), ops = g.ops.size();
  CHECK_THROWS_WITH(g.add_op(OpKind::kGelu, "act2", {x}, {}, 0, OpPhase::kForward,
                             TensorRole::kActivation, {"hidden"}),
                    Contains("duplicate") && Contains("hidden"));
  CHECK_THROWS_AS(g.add_op(OpKind::kGelu, "act3", {x}, {}, 0, OpPhase::kForward,
                           TensorRole::kActivation, {"a", "b"}),
                  std::invalid_argument);
  CHECK_THROWS_AS(g.add_op(OpKind::kGelu, "act4", {99}, {}, 0), std::invalid_argument);
  CHECK(g.tensors.size() == tensors);
  CHECK(g.ops.size() == ops);
  CHECK(g.tensors_with_role(TensorRole::kParameter) == std::vector<TensorId>{w, lw, lb});
}

TEST_CASE("a file shape is a row-major reshape of the shape", "[ir][tensor]") {
  Graph g;
  // HF's c_attn [H, 3H] = [4, 12] held as [H, 3, A, D] = [4, 3, 2, 2]: 48 elements either way
  const TensorId w =
      g.add_tensor({"c_attn", {4, 3, 2, 2}, DType::kF32, TensorRole::kParameter, 1, {4, 12}});
  CHECK(file_shape_of(g.tensor(w)) == Shape{4, 12});
  CHECK(g.tensor(w).shape == Shape{4, 3, 2, 2});
  const TensorId b = param(g, "bias", {12});  // no file shape: files store the shape
  CHECK(g.tensor(b).file_shape.empty());
  CHECK(file_shape_of(g.tensor(b)) == Shape{12});
  // another element count, or a negative dim, is rejected and leaves the graph unchanged
  CHECK_THROWS_WITH(
      g.add_tensor({"bad", {4, 3, 2, 2}, DType::kF32, TensorRole::kParameter, 1, {4, 13}}),
      Contains("bad") && Contains("file_shape [4, 13]") && Contains("[4, 3, 2, 2]"));
  CHECK_THROWS_AS(g.add_tensor({"neg", {4, 3}, DType::kF32, TensorRole::kParameter, 1, {-4, -3}}),
                  std::invalid_argument);
  CHECK(g.tensors.size() == 2);
}
