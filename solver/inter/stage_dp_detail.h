// Private helpers of the stage DP (stage_dp.h), shared by the DP, its brute-force oracle and
// their tests: option validation, the iteration-time formula, plan comparison, placement of
// sub-meshes on hosts and the out-of-memory message. Not part of the planner's interface.
// Pure C++.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "solver/inter/stage_dp.h"

namespace strata::solver::detail {

// Relative tolerance under which two iteration times count as a tie (then the tie-breakers of
// plan_better decide).
constexpr double kTieRelTol = 1e-12;

// Throws std::invalid_argument naming the field ("stage_dp: groups[1].hosts: 0 must be >= 1").
void validate_stage_dp_options(const StageDpOptions& options);

// Micro-batch counts searched: options.micro_batches if > 0, else every divisor of
// global_batch; ascending.
std::vector<std::int64_t> micro_batch_counts(const StageDpOptions& options);

// Throws std::runtime_error when the cost function returns a negative or non-finite number.
void check_estimate(const StageEstimate& estimate, const StageCandidate& candidate);

// sum_i t_i + (B - 1) * max_i t_i + max_i tail_i, summed in pipeline order.
double iteration_time_s(const std::vector<StageEstimate>& estimates, std::int64_t micro_batches);

// The plan order: lower iteration time (beyond kTieRelTol), then fewer micro-batches, then
// fewer stages, then the lower time. True when a beats b.
struct PlanKey {
  double iteration_s = 0;
  std::int64_t micro_batches = 0;
  std::int64_t stages = 0;
};
bool plan_better(const PlanKey& a, const PlanKey& b);

// World rank of each stage's first device, or nullopt when the stages do not pack into the hosts
// with every device used exactly once. Devices are numbered group by group, host by host, device
// by device (ClusterSpec's world rank). Rule (Alpa's get_sliced_virtual_submeshes): per group,
// stages whose sub-mesh spans whole hosts ((n, M), including (1, M)) take consecutive hosts from
// host 0 in pipeline order; then sub-host stages, by decreasing size (ties in pipeline order),
// go first-fit into the remaining hosts, each at its host's lowest free device. With sizes from
// submesh_shapes (a divisibility chain of divisors of M) this always succeeds and every sub-host
// mesh starts at a multiple of its size.
std::optional<std::vector<std::int64_t>> place_stages(const std::vector<DeviceGroup>& groups,
                                                      const std::vector<StageCandidate>& stages);

// Fills first_device, iteration_s and peak_memory_bytes of a plan whose stages, estimates and
// micro_batches are set. False when the stages do not place (see place_stages).
bool finish_plan(const StageDpOptions& options, StagePlan& plan);

// "stage 2 (layers 10-19) needs 21.4 GiB per device; 16.0 GiB available" (stage index and
// layers 0-based, layers inclusive).
std::string memory_failure_message(std::int64_t stage_index, const StageCandidate& stage,
                                   double need_bytes, double available_bytes);

// Message when no slicing uses every device at all, memory aside.
std::string no_slicing_message(const StageDpOptions& options);

}  // namespace strata::solver::detail
