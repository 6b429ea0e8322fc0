// CBC adapter for the intra-op MIP (ilp_mip.h), through CBC 2.10's C API (Cbc_C_Interface.h):
// the fast path for large memory-constrained models (TOOLCHAIN.md section 4). The model lives in
// a unique_ptr whose deleter calls Cbc_deleteModel; options are fixed (silent, single thread,
// absolute and relative gaps 0, a wall-clock time limit): deterministic unless the limit is hit.
#include <coin/Cbc_C_Interface.h>

#include <cfloat>
#include <memory>
#include <string>
#include <vector>

#include "solver/intra/ilp_mip.h"

namespace strata::solver::detail {
namespace {

struct CbcDeleter {
  void operator()(Cbc_Model* m) const { Cbc_deleteModel(m); }
};
using CbcPtr = std::unique_ptr<Cbc_Model, CbcDeleter>;

}  // namespace

MipResult run_cbc(const MipModel& model, double time_limit_s) {
  const std::size_t ncols = model.obj.size(), nrows = model.rows.size();
  // Cbc_loadProblem takes compressed sparse columns; the model is stored by rows.
  std::vector<CoinBigIndex> start(ncols + 1, 0);
  for (const MipRow& row : model.rows) {
    for (std::int32_t c : row.cols) ++start[static_cast<std::size_t>(c) + 1];
  }
  for (std::size_t c = 0; c < ncols; ++c) start[c + 1] += start[c];
  std::vector<int> index(static_cast<std::size_t>(start[ncols]));
  std::vector<double> value(index.size());
  std::vector<CoinBigIndex> fill(start.begin(), start.end() - 1);
  std::vector<double> row_lb(nrows), row_ub(nrows);
  for (std::size_t r = 0; r < nrows; ++r) {
    const MipRow& row = model.rows[r];
    for (std::size_t k = 0; k < row.cols.size(); ++k) {
      const auto at = static_cast<std::size_t>(fill[static_cast<std::size_t>(row.cols[k])]++);
      index[at] = static_cast<int>(r);
      value[at] = row.coefs[k];
    }
    row_lb[r] = row.sense == RowSense::kEqual ? row.rhs : -DBL_MAX;
    row_ub[r] = row.rhs;
  }
  const std::vector<double> col_lb(ncols, 0.0), col_ub(ncols, 1.0);

  CbcPtr m(Cbc_newModel());
  if (!m) return mip_failure("Cbc_newModel failed");
  Cbc_loadProblem(m.get(), static_cast<int>(ncols), static_cast<int>(nrows), start.data(),
                  index.data(), value.data(), col_lb.data(), col_ub.data(), model.obj.data(),
                  row_lb.data(), row_ub.data());
  for (std::size_t c = 0; c < ncols; ++c) Cbc_setInteger(m.get(), static_cast<int>(c));
  Cbc_setObjSense(m.get(), 1);  // minimise
  Cbc_setLogLevel(m.get(), 0);
  Cbc_setParameter(m.get(), "log", "0");
  Cbc_setParameter(m.get(), "slog", "0");  // the LP solver's log too
  // Wall-clock seconds, like lp_solve's set_timeout: CBC counts CPU seconds by default, which on
  // a loaded machine lets a solve run several times past the planner's limit.
  Cbc_setParameter(m.get(), "timeMode", "elapsed");
  Cbc_setParameter(m.get(), "sec", std::to_string(time_limit_s).c_str());
  Cbc_setParameter(m.get(), "ratio", "0");  // relative gap
  Cbc_setParameter(m.get(), "allow", "0");  // absolute gap

  Cbc_solve(m.get());
  MipResult r;
  const double* best = Cbc_bestSolution(m.get());  // NULL when no integer solution was found
  if (Cbc_isProvenOptimal(m.get())) {
    r.status = SolveStatus::kOptimal;
  } else if (Cbc_isProvenInfeasible(m.get())) {
    r.status = SolveStatus::kInfeasible;
    return r;
  } else if (Cbc_isSecondsLimitReached(m.get())) {
    r.status = best != nullptr ? SolveStatus::kFeasible : SolveStatus::kTimeout;
  } else if (Cbc_isAbandoned(m.get())) {
    return mip_failure("CBC abandoned the search (numerical difficulties)");
  } else {
    return mip_failure("CBC stopped with status " + std::to_string(Cbc_status(m.get())) +
                       ", secondary status " + std::to_string(Cbc_secondaryStatus(m.get())));
  }
  if (r.status == SolveStatus::kTimeout) return r;
  const double* x = best != nullptr ? best : Cbc_getColSolution(m.get());
  if (x == nullptr) return mip_failure("CBC reported a solution but returned no column values");
  r.x.assign(x, x + ncols);
  r.objective = Cbc_getObjValue(m.get());
  return r;
}

}  // namespace strata::solver::detail
