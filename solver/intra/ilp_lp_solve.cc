// lp_solve adapter for the intra-op MIP (ilp_mip.h). The only file that includes lp_lib.h: its
// ~600 macros (TRUE, EQ, OPTIMAL, TIMEOUT, ...) must not leak into other translation units.
// lprec lives in a unique_ptr whose deleter calls delete_lp; options are fixed (determinism):
// silent, MIP gaps 0, whole-second time limit.
#include <lpsolve/lp_lib.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "solver/intra/ilp_mip.h"

namespace strata::solver::detail {
namespace {

struct LpDeleter {
  void operator()(lprec* lp) const { delete_lp(lp); }
};
using LpPtr = std::unique_ptr<lprec, LpDeleter>;

}  // namespace

MipResult run_lp_solve(const MipModel& model, double time_limit_s) {
  const int ncols = static_cast<int>(model.obj.size());
  LpPtr lp(make_lp(0, ncols));
  if (!lp) return mip_failure("make_lp failed");
  set_verbose(lp.get(), NEUTRAL);
  set_minim(lp.get());

  // lp_solve columns are 1-based and its array arguments are non-const: fill scratch buffers.
  std::vector<int> colno;
  std::vector<REAL> vals;
  colno.reserve(model.obj.size());
  vals.reserve(model.obj.size());
  for (int c = 0; c < ncols; ++c) {
    if (model.obj[static_cast<std::size_t>(c)] != 0) {
      colno.push_back(c + 1);
      vals.push_back(model.obj[static_cast<std::size_t>(c)]);
    }
  }
  if (!set_obj_fnex(lp.get(), static_cast<int>(colno.size()), vals.data(), colno.data())) {
    return mip_failure("set_obj_fnex failed");
  }
  // Row mode: rows are appended without rebuilding the column-major matrix after each one.
  set_add_rowmode(lp.get(), TRUE);
  for (const MipRow& row : model.rows) {
    colno.assign(row.cols.begin(), row.cols.end());
    for (int& c : colno) ++c;
    vals.assign(row.coefs.begin(), row.coefs.end());
    const int type = row.sense == RowSense::kEqual ? EQ : LE;
    if (!add_constraintex(lp.get(), static_cast<int>(colno.size()), vals.data(), colno.data(), type,
                          row.rhs)) {
      return mip_failure("add_constraintex failed");
    }
  }
  set_add_rowmode(lp.get(), FALSE);
  for (int c = 1; c <= ncols; ++c) set_binary(lp.get(), c, TRUE);

  set_mip_gap(lp.get(), TRUE, 0);   // absolute gap
  set_mip_gap(lp.get(), FALSE, 0);  // relative gap
  // set_timeout takes whole seconds and 0 means "none": round up, at least 1 s.
  set_timeout(lp.get(), std::max(1L, static_cast<long>(std::ceil(time_limit_s))));

  const int ret = solve(lp.get());
  MipResult r;
  switch (ret) {
    case OPTIMAL:
      r.status = SolveStatus::kOptimal;
      break;
    case SUBOPTIMAL:  // B&B stopped early (time limit) holding an incumbent
      r.status = SolveStatus::kFeasible;
      break;
    case INFEASIBLE:
      r.status = SolveStatus::kInfeasible;
      break;
    case TIMEOUT:  // no incumbent
      r.status = SolveStatus::kTimeout;
      break;
    case UNBOUNDED:  // impossible with binaries only
      return mip_failure("solve() returned UNBOUNDED");
    case NOMEMORY:
      return mip_failure("solve() returned NOMEMORY");
    case DEGENERATE:
      return mip_failure("solve() returned DEGENERATE");
    case NUMFAILURE:
      return mip_failure("solve() returned NUMFAILURE");
    case ACCURACYERROR:
      return mip_failure("solve() returned ACCURACYERROR");
    default:  // USERABORT, PRESOLVED, PROCFAIL, NOBFP, ...: nothing this adapter asks for
      return mip_failure("solve() returned " + std::to_string(ret));
  }
  if (r.status == SolveStatus::kOptimal || r.status == SolveStatus::kFeasible) {
    r.x.resize(model.obj.size());
    if (!get_variables(lp.get(), r.x.data())) return mip_failure("get_variables failed");
    r.objective = get_objective(lp.get());
  }
  return r;
}

}  // namespace strata::solver::detail
