// Sub-mesh shapes, logical meshes, per-stage memory and the placement of a plan's sub-meshes on
// hosts (stage_dp.h, stage_dp_detail.h; ALPA_FACTS.md 2.3-2.5). Sub-host sizes are the powers of
// two that divide M, then M: a divisibility chain, so any mix of them that fills the hosts packs
// into them (first-fit by decreasing size), and the DP, which only counts devices, never produces
// a plan that cannot be placed. Pure C++.
#include <algorithm>
#include <stdexcept>

#include "solver/inter/stage_dp.h"
#include "solver/inter/stage_dp_detail.h"

namespace strata::solver {

double stage_memory_bytes(const StageEstimate& estimate, std::int64_t in_flight) {
  return estimate.static_memory_bytes +
         static_cast<double>(in_flight) * estimate.activation_memory_bytes;
}

std::int64_t in_flight_microbatches(const std::string& schedule, std::int64_t index,
                                    std::int64_t num_stages, std::int64_t micro_batches) {
  if (index < 0 || index >= num_stages)
    throw std::invalid_argument("in_flight_microbatches: stage index " + std::to_string(index) +
                                " outside 0.." + std::to_string(num_stages - 1));
  if (schedule == "1f1b") return std::min(micro_batches, num_stages - index);
  if (schedule == "gpipe") return micro_batches;
  throw std::invalid_argument("in_flight_microbatches: schedule '" + schedule +
                              "' is not 1f1b or gpipe");
}

// (1, m) for the powers of two m < M dividing M, then (1, M), then (n, M) for n = 2..hosts.
// For M a power of two this is Alpa's power-of-two list (1,1), (1,2), ..., (1,M), (2,M), ...,
// with every host count ("all" space). For other M, (1, m) with m not dividing M (e.g. (1, 4)
// on 6-device hosts) is left out: two (1, 4) stages would need 8 devices of one 6-device host
// pair that cannot hold them, and only a divisibility chain guarantees packing.
std::vector<SubmeshShape> submesh_shapes(const DeviceGroup& group) {
  std::vector<SubmeshShape> shapes;
  const std::int64_t m_max = group.devices_per_host;
  for (std::int64_t m = 1; m < m_max && m_max % m == 0; m *= 2) shapes.push_back({1, m});
  shapes.push_back({1, m_max});
  for (std::int64_t n = 2; n <= group.hosts; ++n) shapes.push_back({n, m_max});
  return shapes;
}

// Every d0 x d1 = size, d0 ascending: (1, n), ..., (n, 1).
std::vector<LogicalMesh> logical_meshes(const SubmeshShape& submesh) {
  std::vector<LogicalMesh> meshes;
  const std::int64_t n = submesh.size();
  for (std::int64_t d0 = 1; d0 <= n; ++d0) {
    if (n % d0 == 0) meshes.push_back({d0, n / d0});
  }
  return meshes;
}

namespace detail {

std::optional<std::vector<std::int64_t>> place_stages(const std::vector<DeviceGroup>& groups,
                                                      const std::vector<StageCandidate>& stages) {
  std::vector<std::int64_t> first(stages.size(), -1);
  std::int64_t base = 0;  // world rank of the group's first device
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const std::int64_t hosts = groups[g].hosts, per_host = groups[g].devices_per_host;
    std::vector<std::int64_t> used(static_cast<std::size_t>(hosts), 0);  // devices taken per host
    std::int64_t next_host = 0;
    std::vector<std::size_t> sub_host;  // stages inside one host, placed second
    for (std::size_t j = 0; j < stages.size(); ++j) {
      const StageCandidate& st = stages[j];
      if (st.group != static_cast<std::int64_t>(g)) continue;
      const SubmeshShape& s = st.submesh;
      if (s.hosts < 1 || s.devices < 1 || s.devices > per_host) return std::nullopt;
      if (s.devices == per_host) {  // whole hosts
        if (next_host + s.hosts > hosts) return std::nullopt;
        first[j] = base + next_host * per_host;
        for (std::int64_t h = 0; h < s.hosts; ++h) used[next_host + h] = per_host;
        next_host += s.hosts;
      } else {
        if (s.hosts != 1) return std::nullopt;
        sub_host.push_back(j);
      }
    }
    std::stable_sort(sub_host.begin(), sub_host.end(), [&](std::size_t a, std::size_t b) {
      return stages[a].submesh.devices > stages[b].submesh.devices;
    });
    for (std::size_t j : sub_host) {
      const std::int64_t size = stages[j].submesh.devices;
      bool placed = false;
      for (std::int64_t h = next_host; h < hosts && !placed; ++h) {
        if (per_host - used[h] >= size) {
          first[j] = base + h * per_host + used[h];
          used[h] += size;
          placed = true;
        }
      }
      if (!placed) return std::nullopt;
    }
    for (std::int64_t h = 0; h < hosts; ++h) {
      if (used[h] != per_host) return std::nullopt;  // every device must be used
    }
    base += hosts * per_host;
  }
  for (std::int64_t f : first) {
    if (f < 0) return std::nullopt;  // a stage names a group that does not exist
  }
  return first;
}

}  // namespace detail
}  // namespace strata::solver
