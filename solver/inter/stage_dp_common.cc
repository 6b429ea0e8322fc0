// Helpers shared by the stage DP and its brute-force oracle (stage_dp_detail.h): validation,
// micro-batch counts, the iteration-time formula, the plan order and the failure messages.
// One definition of each, so the DP and the oracle can only differ in how they search.
// Pure C++.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "solver/inter/stage_dp_detail.h"

namespace strata::solver::detail {
namespace {

void require(bool ok, const std::string& field, const std::string& what) {
  if (!ok) throw std::invalid_argument("stage_dp: " + field + ": " + what);
}

std::string gib(double bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

}  // namespace

void validate_stage_dp_options(const StageDpOptions& o) {
  require(o.num_layers >= 1, "num_layers", std::to_string(o.num_layers) + " must be >= 1");
  require(!o.groups.empty(), "groups", "at least one device group is needed");
  for (std::size_t g = 0; g < o.groups.size(); ++g) {
    const DeviceGroup& grp = o.groups[g];
    const std::string name = "groups[" + std::to_string(g) + "]";
    require(grp.hosts >= 1, name + ".hosts", std::to_string(grp.hosts) + " must be >= 1");
    require(grp.devices_per_host >= 1, name + ".devices_per_host",
            std::to_string(grp.devices_per_host) + " must be >= 1");
    require(std::isfinite(grp.memory_bytes_per_device) && grp.memory_bytes_per_device >= 0,
            name + ".memory_bytes_per_device", "must be finite and >= 0");
  }
  require(o.global_batch >= 1, "global_batch", std::to_string(o.global_batch) + " must be >= 1");
  require(o.micro_batches >= 0, "micro_batches", std::to_string(o.micro_batches) + " must be >= 0");
  require(o.micro_batches == 0 || o.global_batch % o.micro_batches == 0, "micro_batches",
          std::to_string(o.micro_batches) + " does not divide global_batch " +
              std::to_string(o.global_batch));
  require(o.schedule == "1f1b" || o.schedule == "gpipe", "schedule",
          "'" + o.schedule + "' is not 1f1b or gpipe");
  require(o.max_stages >= 0, "max_stages", std::to_string(o.max_stages) + " must be >= 0");
}

std::vector<std::int64_t> micro_batch_counts(const StageDpOptions& o) {
  if (o.micro_batches > 0) return {o.micro_batches};
  std::vector<std::int64_t> counts;
  for (std::int64_t b = 1; b <= o.global_batch; ++b) {
    if (o.global_batch % b == 0) counts.push_back(b);
  }
  return counts;
}

void check_estimate(const StageEstimate& e, const StageCandidate& c) {
  const double v[] = {e.time_per_microbatch_s, e.tail_s, e.static_memory_bytes,
                      e.activation_memory_bytes};
  for (double x : v) {
    if (!std::isfinite(x) || x < 0)
      throw std::runtime_error("stage cost: layers " + std::to_string(c.layer_begin) + "-" +
                               std::to_string(c.layer_end - 1) + " on group " +
                               std::to_string(c.group) +
                               " gave a negative or non-finite time or memory");
  }
}

double iteration_time_s(const std::vector<StageEstimate>& estimates, std::int64_t micro_batches) {
  double sum = 0, max_t = 0, max_tail = 0;
  for (const StageEstimate& e : estimates) {
    sum += e.time_per_microbatch_s;
    max_t = std::max(max_t, e.time_per_microbatch_s);
    max_tail = std::max(max_tail, e.tail_s);
  }
  return sum + static_cast<double>(micro_batches - 1) * max_t + max_tail;
}

bool plan_better(const PlanKey& a, const PlanKey& b) {
  if (!std::isfinite(a.iteration_s) || !std::isfinite(b.iteration_s))
    return a.iteration_s < b.iteration_s;  // "no plan yet" is +inf
  const double tol = kTieRelTol * std::max(std::abs(a.iteration_s), std::abs(b.iteration_s));
  if (a.iteration_s < b.iteration_s - tol) return true;
  if (a.iteration_s > b.iteration_s + tol) return false;
  if (a.micro_batches != b.micro_batches) return a.micro_batches < b.micro_batches;
  if (a.stages != b.stages) return a.stages < b.stages;
  return a.iteration_s < b.iteration_s;
}

bool finish_plan(const StageDpOptions& options, StagePlan& plan) {
  auto first = place_stages(options.groups, plan.stages);
  if (!first) return false;
  plan.first_device = *first;
  plan.iteration_s = iteration_time_s(plan.estimates, plan.micro_batches);
  const auto q = static_cast<std::int64_t>(plan.stages.size());
  plan.peak_memory_bytes = 0;
  for (std::int64_t j = 0; j < q; ++j) {
    const std::int64_t in_flight =
        in_flight_microbatches(options.schedule, j, q, plan.micro_batches);
    plan.peak_memory_bytes =
        std::max(plan.peak_memory_bytes,
                 stage_memory_bytes(plan.estimates[static_cast<std::size_t>(j)], in_flight));
  }
  return true;
}

std::string memory_failure_message(std::int64_t stage_index, const StageCandidate& stage,
                                   double need_bytes, double available_bytes) {
  return "stage " + std::to_string(stage_index) + " (layers " + std::to_string(stage.layer_begin) +
         "-" + std::to_string(stage.layer_end - 1) + ") needs " + gib(need_bytes) +
         " per device; " + gib(available_bytes) + " available";
}

std::string no_slicing_message(const StageDpOptions& options) {
  std::int64_t devices = 0;
  for (const DeviceGroup& g : options.groups) devices += g.hosts * g.devices_per_host;
  return "no slicing of " + std::to_string(options.num_layers) + " layers into " +
         (options.max_stages > 0 ? "at most " + std::to_string(options.max_stages) + " " : "") +
         "stages uses all " + std::to_string(devices) + " devices of " +
         std::to_string(options.groups.size()) +
         " group(s) with candidates the cost function accepts";
}

}  // namespace strata::solver::detail
