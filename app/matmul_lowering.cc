// einsum -> GEMM planning (see the header for the letter groups).
#include "app/matmul_lowering.h"

#include <algorithm>
#include <map>
#include <stdexcept>

namespace strata::app {
namespace {

struct Equation {
  std::string a, b, c;
};

Equation parse_equation(const std::string& equation) {
  const auto comma = equation.find(',');
  const auto arrow = equation.find("->");
  if (comma == std::string::npos || arrow == std::string::npos || arrow < comma) {
    throw std::invalid_argument("matmul equation '" + equation + "': expected \"A,B->C\"");
  }
  return {equation.substr(0, comma), equation.substr(comma + 1, arrow - comma - 1),
          equation.substr(arrow + 2)};
}

bool has(const std::string& s, char c) { return s.find(c) != std::string::npos; }

std::string filter(const std::string& order, const std::string& in1, const std::string& in2,
                   const std::string& not_in) {
  std::string out;
  for (char c : order)
    if (has(in1, c) && has(in2, c) && !has(not_in, c)) out += c;
  return out;
}

std::int64_t extent(const std::string& letters, const std::map<char, std::int64_t>& dims) {
  std::int64_t n = 1;
  for (char c : letters) n *= dims.at(c);
  return n;
}

// Permute of `have` (operand letters) into `want`; not needed when they are equal.
OperandPermute make_permute(const std::string& have, const std::string& want,
                            const std::map<char, std::int64_t>& dims) {
  OperandPermute p;
  p.needed = have != want;
  for (char c : have) p.in_shape.push_back(dims.at(c));
  for (char c : want) p.perm.push_back(static_cast<int>(have.find(c)));
  p.elements = extent(have, dims);
  return p;
}

}  // namespace

MatMulPlan plan_matmul(const std::string& equation, const solver::Shape& a_shape,
                       const solver::Shape& b_shape, double alpha) {
  Equation eq = parse_equation(equation);
  std::map<char, std::int64_t> dims;
  for (std::size_t i = 0; i < eq.a.size() && i < a_shape.size(); ++i) dims[eq.a[i]] = a_shape[i];
  for (std::size_t i = 0; i < eq.b.size() && i < b_shape.size(); ++i) dims[eq.b[i]] = b_shape[i];
  if (eq.a.size() != a_shape.size() || eq.b.size() != b_shape.size()) {
    throw std::invalid_argument("matmul equation '" + equation +
                                "': operand ranks differ from shapes");
  }
  for (char c : eq.a + eq.b) {
    if (!has(eq.c, c) && !(has(eq.a, c) && has(eq.b, c))) {
      throw std::invalid_argument("matmul equation '" + equation + "': letter '" +
                                  std::string(1, c) + "' is summed in one operand only");
    }
  }
  const std::string batch = filter(eq.c, eq.a, eq.b, "");
  std::string m = filter(eq.c, eq.a, eq.c, eq.b);
  std::string n = filter(eq.c, eq.b, eq.c, eq.a);
  MatMulPlan plan;
  // A result stored [batch, N, M] is the transposed product: exchange the operands.
  if (eq.c != batch + m + n && eq.c == batch + n + m) {
    plan.swap_operands = true;
    std::swap(eq.a, eq.b);
    std::swap(m, n);
  }
  const std::string k = filter(eq.a, eq.a, eq.b, eq.c);  // K in A's order

  // GEMM's A: [batch, M, K] as is, [batch, K, M] transposed, else permuted to [batch, M, K].
  auto& g = plan.gemm;
  g.trans_a = eq.a == batch + k + m && eq.a != batch + m + k;
  plan.a = make_permute(eq.a, g.trans_a ? batch + k + m : batch + m + k, dims);
  g.trans_b = eq.b == batch + n + k && eq.b != batch + k + n;
  plan.b = make_permute(eq.b, g.trans_b ? batch + n + k : batch + k + n, dims);
  plan.c = make_permute(batch + m + n, eq.c, dims);

  g.m = extent(m, dims);
  g.n = extent(n, dims);
  g.k = extent(k, dims);
  g.batch = extent(batch, dims);
  g.alpha = alpha;
  g.beta = 0.0;
  g.lda = g.trans_a ? g.m : g.k;
  g.ldb = g.trans_b ? g.k : g.n;
  g.ldc = g.n;
  g.stride_a = g.m * g.k;
  g.stride_b = g.k * g.n;
  g.stride_c = g.m * g.n;
  return plan;
}

}  // namespace strata::app
