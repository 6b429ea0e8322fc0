// Lowering of an einsum matmul (OpKind::kMatMul) to one strided batched GEMM.
// Letters of "A,B->C" fall into four groups: batch (in A, B and C), M (A and C), N (B and C) and
// K (A and B, summed). The GEMM computes C[batch, M, N] = alpha * A[batch, M, K] B[batch, K, N];
// an operand whose memory order is [batch, K, M] (or [batch, N, K]) is used transposed, a result
// ordered [batch, N, M] is computed as C^T = B^T A^T, and anything else is permuted into place
// (a copy), so every index map the IR can express runs, and the common ones run without copies.
#pragma once

#include <string>
#include <vector>

#include "kernels/backend.h"
#include "solver/ir/tensor.h"

namespace strata::app {

// A permutation of an operand into (or out of) the GEMM's canonical order.
struct OperandPermute {
  bool needed = false;
  solver::Shape in_shape;  // shape of the tensor being permuted
  std::vector<int> perm;   // out dim j = in dim perm[j]
  std::int64_t elements = 0;
};

struct MatMulPlan {
  bool swap_operands = false;  // the GEMM's A is the op's input 1 (result computed transposed)
  OperandPermute a, b;         // permutes of the GEMM's A and B operands before the GEMM
  OperandPermute c;            // permute of the GEMM's result into the op's output order
  kernels::GemmArgs gemm;      // sizes, transposes, leading dims and strides; pointers unset
};

// Plans `equation` ("bsk,kn->bsn") for input shapes `a_shape`, `b_shape`. Throws
// std::invalid_argument naming the equation when a letter is summed in only one operand.
MatMulPlan plan_matmul(const std::string& equation, const solver::Shape& a_shape,
                       const solver::Shape& b_shape, double alpha);

}  // namespace strata::app
