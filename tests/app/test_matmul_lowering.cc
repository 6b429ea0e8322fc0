// einsum -> GEMM lowering: the plans of the GPT's equations use no copies, and every plan
// (transposed, swapped, permuted) computes what a naive einsum computes.
#include <catch2/catch.hpp>
#include <map>

#include "app/executor.h"
#include "kernels/host/host_backend.h"
#include "test_support.h"

namespace strata {
namespace {

using solver::Shape;

// Naive einsum over all index assignments (tiny shapes only).
std::vector<double> naive_einsum(const std::string& eq, const std::vector<double>& a,
                                 const Shape& as, const std::vector<double>& b, const Shape& bs,
                                 Shape* cs) {
  const auto comma = eq.find(','), arrow = eq.find("->");
  const std::string ia = eq.substr(0, comma), ib = eq.substr(comma + 1, arrow - comma - 1),
                    ic = eq.substr(arrow + 2);
  std::map<char, std::int64_t> dim;
  for (std::size_t i = 0; i < ia.size(); ++i) dim[ia[i]] = as[i];
  for (std::size_t i = 0; i < ib.size(); ++i) dim[ib[i]] = bs[i];
  cs->clear();
  for (char c : ic) cs->push_back(dim[c]);
  std::string letters;
  for (auto& [c, n] : dim) letters += c;
  std::vector<double> out(static_cast<std::size_t>(solver::num_elements(*cs)), 0.0);
  std::map<char, std::int64_t> at;
  for (char c : letters) at[c] = 0;
  auto offset = [&](const std::string& idx, const Shape& shape) {
    std::int64_t o = 0;
    for (std::size_t i = 0; i < idx.size(); ++i) o = o * shape[i] + at[idx[i]];
    return static_cast<std::size_t>(o);
  };
  while (true) {
    out[offset(ic, *cs)] += a[offset(ia, as)] * b[offset(ib, bs)];
    std::size_t i = 0;
    for (; i < letters.size(); ++i) {
      if (++at[letters[i]] < dim[letters[i]]) break;
      at[letters[i]] = 0;
    }
    if (i == letters.size()) break;
  }
  return out;
}

void check_equation(const std::string& eq, const Shape& as, const Shape& bs, bool expect_copies) {
  const app::MatMulPlan plan = app::plan_matmul(eq, as, bs, 1.0);
  CHECK((plan.a.needed || plan.b.needed || plan.c.needed) == expect_copies);

  solver::Graph g;
  auto a = g.add_tensor({"a", as, solver::DType::kF64, solver::TensorRole::kParameter, 0});
  auto b = g.add_tensor({"b", bs, solver::DType::kF64, solver::TensorRole::kParameter, 0});
  g.add_op(solver::OpKind::kMatMul, "mm", {a, b}, {{"equation", eq}, {"alpha", 0.5}}, 0);
  kernels::HostBackend backend;
  app::Executor exec(g, backend);
  const auto av = test::random_values(static_cast<std::size_t>(solver::num_elements(as)), 1);
  const auto bv = test::random_values(static_cast<std::size_t>(solver::num_elements(bs)), 2);
  exec.write(a, av);
  exec.write(b, bv);
  exec.run(0, 1, app::StepContext{});
  Shape cs;
  auto want = naive_einsum(eq, av, as, bv, bs, &cs);
  for (auto& x : want) x *= 0.5;
  CHECK(g.tensor(g.ops[0].outputs[0]).shape == cs);
  CHECK(test::close_normwise(exec.read(g.ops[0].outputs[0]), want, 1e-13, 0, eq));
}

TEST_CASE("GPT's matmuls lower to one GEMM without copies", "[lowering]") {
  check_equation("bsk,kn->bsn", {2, 3, 4}, {4, 5}, false);               // projections
  check_equation("bsk,bsn->kn", {2, 3, 4}, {2, 3, 5}, false);            // weight gradient: A^T B
  check_equation("basd,batd->bast", {2, 2, 3, 4}, {2, 2, 3, 4}, false);  // scores: A B^T
  check_equation("bast,batd->basd", {2, 2, 3, 3}, {2, 2, 3, 4}, false);  // probs x values
  check_equation("basd,bast->batd", {2, 2, 3, 4}, {2, 2, 3, 3}, false);  // dK: result transposed
  check_equation("bsh,vh->bsv", {2, 3, 4}, {6, 4}, false);               // tied LM head
  check_equation("bsh,bsv->vh", {2, 3, 4}, {2, 3, 6}, false);            // its weight gradient
  // factored attention projections: qkv = x . c_attn[H,3,A,D]; proj = ctx[B,S,A,D] . c_proj[A,D,H]
  check_equation("bsk,kpad->bspad", {2, 3, 4}, {4, 3, 2, 2}, false);
  check_equation("bspad,kpad->bsk", {2, 3, 3, 2, 2}, {4, 3, 2, 2}, false);  // d input
  check_equation("bsk,bspad->kpad", {2, 3, 4}, {2, 3, 3, 2, 2}, false);     // d weight
  check_equation("bsad,adn->bsn", {2, 3, 2, 2}, {2, 2, 5}, false);
  check_equation("bsn,adn->bsad", {2, 3, 5}, {2, 2, 5}, false);     // d input
  check_equation("bsad,bsn->adn", {2, 3, 2, 2}, {2, 3, 5}, false);  // d weight
}

TEST_CASE("matmuls in other layouts are permuted and still exact", "[lowering]") {
  check_equation("sbk,kn->bsn", {3, 2, 4}, {4, 5}, true);
  check_equation("bks,nk->snb", {2, 4, 3}, {5, 4}, true);
  check_equation("iak,akj->aij", {3, 2, 5}, {2, 5, 6}, true);
}

TEST_CASE("a letter summed in one operand only is rejected", "[lowering]") {
  CHECK_THROWS_AS(app::plan_matmul("bsk,kn->bn", {2, 3, 4}, {4, 5}, 1.0), std::invalid_argument);
}

}  // namespace
}  // namespace strata
