// The reduced intra-op ILP as a solver-neutral 0/1 program: ilp.cc builds it (forbidden choices
// already removed, objective already scaled), ilp_lp_solve.cc and ilp_cbc.cc solve it.
// Private to solver/intra. No solver header is included here, so lp_lib.h's ~600 macros stay
// inside ilp_lp_solve.cc and the CBC headers inside ilp_cbc.cc.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "solver/intra/ilp.h"

namespace strata::solver::detail {

enum class RowSense : std::uint8_t { kEqual, kLessEqual };

// One linear row: sum coefs[k] * x[cols[k]] (sense) rhs. Columns are distinct and ascending.
struct MipRow {
  std::vector<std::int32_t> cols;
  std::vector<double> coefs;
  RowSense sense = RowSense::kEqual;
  double rhs = 0;
};

// minimise obj . x subject to rows, every x binary. At least one column and one row.
struct MipModel {
  std::vector<double> obj;  // one per column
  std::vector<MipRow> rows;
};

struct MipResult {
  SolveStatus status = SolveStatus::kError;
  std::vector<double> x;  // column values when status is kOptimal or kFeasible
  double objective = 0;   // the solver's own objective value of x, in the model's units
  std::string message;    // why, when status is kError
};

// A kError result carrying `why` (the adapters' one failure path).
inline MipResult mip_failure(std::string why) {
  MipResult r;
  r.status = SolveStatus::kError;
  r.message = std::move(why);
  return r;
}

// Both honour time_limit_s (lp_solve only in whole seconds, rounded up) and prove optimality with
// absolute and relative MIP gaps of 0. Neither throws on solver failure: that is kError + message.
MipResult run_lp_solve(const MipModel& model, double time_limit_s);
MipResult run_cbc(const MipModel& model, double time_limit_s);

}  // namespace strata::solver::detail
