// Brute-force oracle for the stage DP (tests only): every slicing into contiguous layer ranges,
// every (group, sub-mesh, logical mesh, recompute) per stage that uses every device exactly and
// places on the hosts, every micro-batch count; scored with the same formula and order as the
// DP. Exponential: small L and device counts only. Pure C++.
#include <chrono>
#include <limits>
#include <map>
#include <tuple>

#include "solver/inter/stage_dp.h"
#include "solver/inter/stage_dp_detail.h"

namespace strata::solver {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Search {
  const StageDpOptions* opt;
  const StageCostFn* cost;
  std::int64_t micro_batches = 1, micro_batch_size = 1;
  std::int64_t* evaluations;
  // The cost cache for this micro-batch size, keyed by every field of the candidate.
  using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                         std::int64_t, std::int64_t, bool, std::int32_t>;
  std::map<Key, std::optional<StageEstimate>> cache;
  std::vector<StageCandidate> stages;
  std::vector<StageEstimate> estimates;
  std::vector<std::int64_t> remaining;  // devices left per group
  // Results.
  std::optional<StagePlan> best;
  detail::PlanKey best_key{kInf, 0, 0};
  double least_over = kInf;  // least (over plans) worst-stage memory overshoot
  std::string over_message;

  const std::optional<StageEstimate>& estimate(const StageCandidate& c) {
    const Key key{c.layer_begin, c.layer_end, c.group,     c.submesh.hosts, c.submesh.devices,
                  c.mesh.d0,     c.mesh.d1,   c.recompute, c.variant};
    auto it = cache.find(key);
    if (it == cache.end()) {
      ++*evaluations;
      std::optional<StageEstimate> e = (*cost)(c);
      if (e) detail::check_estimate(*e, c);
      it = cache.emplace(key, e).first;
    }
    return it->second;
  }

  void score() {
    for (std::int64_t r : remaining) {
      if (r != 0) return;
    }
    StagePlan plan;
    plan.stages = stages;
    plan.estimates = estimates;
    plan.micro_batches = micro_batches;
    if (!detail::finish_plan(*opt, plan)) return;
    const auto q = static_cast<std::int64_t>(stages.size());
    double worst = -kInf;
    std::string message;
    for (std::int64_t j = 0; j < q; ++j) {
      const double cap = opt->groups[stages[j].group].memory_bytes_per_device;
      const double need = stage_memory_bytes(
          estimates[j], in_flight_microbatches(opt->schedule, j, q, micro_batches));
      if (need - cap > worst) {
        worst = need - cap;
        message = detail::memory_failure_message(j, stages[j], need, cap);
      }
    }
    if (worst < least_over) {
      least_over = worst;
      over_message = message;
    }
    if (worst > 0) return;  // some stage does not fit
    const detail::PlanKey key{plan.iteration_s, micro_batches, q};
    if (detail::plan_better(key, best_key)) {
      best_key = key;
      best = std::move(plan);
    }
  }

  void extend(std::int64_t i) {
    if (i == opt->num_layers) return score();
    if (opt->max_stages > 0 && static_cast<std::int64_t>(stages.size()) >= opt->max_stages) return;
    for (std::int64_t k = i + 1; k <= opt->num_layers; ++k) {
      for (std::size_t g = 0; g < opt->groups.size(); ++g) {
        for (const SubmeshShape& s : submesh_shapes(opt->groups[g])) {
          if (s.size() > remaining[g]) continue;
          for (const LogicalMesh& mesh : logical_meshes(s)) {
            for (int r = 0; r < (opt->allow_recompute ? 2 : 1); ++r) {
              for (std::int32_t v = 0; v < std::max(1, opt->max_variants); ++v) {
                const StageCandidate c{
                    i, k, static_cast<std::int64_t>(g), s, mesh, r == 1, micro_batch_size, v};
                const std::optional<StageEstimate>& e = estimate(c);
                if (!e) break;
                stages.push_back(c);
                estimates.push_back(*e);
                remaining[g] -= s.size();
                extend(k);
                remaining[g] += s.size();
                stages.pop_back();
                estimates.pop_back();
              }
            }
          }
        }
      }
    }
  }
};

}  // namespace

StageDpResult plan_stages_brute_force(const StageDpOptions& options, const StageCostFn& cost) {
  const auto start = std::chrono::steady_clock::now();
  detail::validate_stage_dp_options(options);
  StageDpResult result;
  std::optional<StagePlan> best;
  detail::PlanKey best_key{kInf, 0, 0};
  double least_over = kInf;
  std::string over_message;
  for (std::int64_t b : detail::micro_batch_counts(options)) {
    Search s;
    s.opt = &options;
    s.cost = &cost;
    s.micro_batches = b;
    s.micro_batch_size = options.global_batch / b;
    s.evaluations = &result.cost_evaluations;
    for (const DeviceGroup& g : options.groups) s.remaining.push_back(g.hosts * g.devices_per_host);
    s.extend(0);
    if (s.best && detail::plan_better(s.best_key, best_key)) {
      best_key = s.best_key;
      best = std::move(s.best);
    }
    if (s.least_over < least_over) {
      least_over = s.least_over;
      over_message = s.over_message;
    }
  }
  result.plan = std::move(best);
  if (!result.plan)
    result.failure.message =
        least_over == kInf ? detail::no_slicing_message(options) : over_message;
  result.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace strata::solver
