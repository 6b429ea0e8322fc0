// Helpers shared by the intra-op ILP's solver paths (ilp.cc: MIP, chain DP, brute force;
// ilp_elimination.cc: variable elimination). Private to solver/intra.
#pragma once

#include "solver/intra/ilp.h"

namespace strata::solver::detail {

// Whether a memory budget constrains the problem (a positive budget and a non-empty set).
bool budget_active(const IlpProblem& problem);

// Re-evaluates s->choice on `problem` into s->objective_s and turns s into kError (naming
// s->solver) when the choice uses a forbidden entry, breaks the budget, or its objective differs
// from what the solver reported beyond floating-point summation order.
void cross_check(const IlpProblem& problem, double solver_objective_s, IlpSolution* s);

}  // namespace strata::solver::detail
