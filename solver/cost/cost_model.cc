// Cost model (cost_model.h): alpha-beta collectives, roofline compute time, and the mapping of a
// logical 2-D mesh's axes onto a host group's physical links. All times in seconds, sizes in
// bytes. Bad arguments throw std::invalid_argument naming the values (STYLE.md 13).
// Pure C++: no MPI, CUDA, Kokkos, HDF5 or YAML here.
#include "solver/cost/cost_model.h"

#include <cmath>
#include <stdexcept>
#include <vector>

namespace strata::solver {
namespace {}  // namespace

const char* collective_name(Collective kind) {
  switch (kind) {
    case Collective::kAllReduce:
      return "all_reduce";
    case Collective::kAllGather:
      return "all_gather";
    case Collective::kReduceScatter:
      return "reduce_scatter";
    case Collective::kAllToAll:
      return "all_to_all";
    case Collective::kP2P:
      return "p2p";
  }
  return "unknown";
}

// With B the bytes of the whole tensor held by the group and n its size (DESIGN.md section 4):
//   all-reduce       alpha + beta * 2 (n-1)/n * B     (ring: reduce-scatter, then all-gather)
//   all-gather       alpha + beta * (n-1)/n * B       (each member receives the n-1 shards it
//   lacks) reduce-scatter   alpha + beta * (n-1)/n * B all-to-all       alpha + beta * (n-1)/n^2 *
//   B     (each member keeps 1/n of its B/n buffer) p2p              alpha + beta * B
// A group of one device communicates with nobody: 0.
double collective_time_s(Collective kind, double bytes, std::int64_t n, const LinkSpec& link) {
  if (n < 1) {
    throw std::invalid_argument(std::string("collective_time_s(") + collective_name(kind) +
                                "): group size " + std::to_string(n) + " must be >= 1");
  }
  if (!std::isfinite(bytes) || bytes < 0) {
    throw std::invalid_argument(std::string("collective_time_s(") + collective_name(kind) +
                                "): bytes " + detail::number_text(bytes) +
                                " must be finite and >= 0");
  }
  if (n == 1) return 0.0;
  const double nd = static_cast<double>(n);
  double factor = 0;  // bytes through the slowest link, as a multiple of B
  switch (kind) {
    case Collective::kAllReduce:
      factor = 2.0 * (nd - 1.0) / nd;
      break;
    case Collective::kAllGather:
    case Collective::kReduceScatter:
      factor = (nd - 1.0) / nd;
      break;
    case Collective::kAllToAll:
      factor = (nd - 1.0) / (nd * nd);
      break;
    case Collective::kP2P:
      factor = 1.0;
      break;
    default:
      throw std::invalid_argument("collective_time_s: unknown collective kind " +
                                  std::to_string(static_cast<int>(kind)));
  }
  return link.alpha_s + link.beta_s_per_byte * factor * bytes;
}

// Roofline: an op is limited either by arithmetic or by memory traffic, whichever is slower.
//   compute_s = flops / (peak_flops[dtype] * efficiency[op_kind])   (default_efficiency if absent)
//   memory_s  = bytes / memory_bandwidth_bytes_per_s
//   time      = max(compute_s, memory_s)
double compute_time_s(double flops, double bytes, const DeviceSpec& device,
                      const std::string& dtype, const std::string& op_kind) {
  if (!std::isfinite(flops) || flops < 0 || !std::isfinite(bytes) || bytes < 0) {
    throw std::invalid_argument("compute_time_s(" + op_kind + "): flops " +
                                detail::number_text(flops) + " and bytes " +
                                detail::number_text(bytes) + " must be finite and >= 0");
  }
  const auto peak = device.peak_flops.find(dtype);
  if (peak == device.peak_flops.end()) {
    std::string have;
    for (const auto& entry : device.peak_flops) have += (have.empty() ? "" : ", ") + entry.first;
    throw std::invalid_argument("compute_time_s(" + op_kind + "): device '" + device.kind +
                                "' has no peak FLOP/s for dtype '" + dtype +
                                "' (it has: " + (have.empty() ? "none" : have) + ")");
  }
  const auto eff = device.efficiency.find(op_kind);
  const double efficiency =
      eff == device.efficiency.end() ? device.default_efficiency : eff->second;
  const double achieved_flops = peak->second * efficiency;
  double compute_s = 0;
  if (flops > 0) {
    if (!(achieved_flops > 0)) {
      throw std::invalid_argument("compute_time_s(" + op_kind + "): device '" + device.kind +
                                  "' peak " + detail::number_text(peak->second) + " x efficiency " +
                                  detail::number_text(efficiency) + " must be > 0");
    }
    compute_s = flops / achieved_flops;
  }
  double memory_s = 0;
  if (bytes > 0) {
    if (!(device.memory_bandwidth_bytes_per_s > 0)) {
      throw std::invalid_argument("compute_time_s(" + op_kind + "): device '" + device.kind +
                                  "' memory_bandwidth_bytes_per_s " +
                                  detail::number_text(device.memory_bandwidth_bytes_per_s) +
                                  " must be > 0");
    }
    memory_s = bytes / device.memory_bandwidth_bytes_per_s;
  }
  return compute_s > memory_s ? compute_s : memory_s;
}

// Sub-mesh device k (0 <= k < hosts * devices) sits on host k / devices. Logical position
// (i, j) of the d0 x d1 mesh is device i*d1 + j. The groups of axis 1 are the rows
// {i*d1 + j : j < d1}; the groups of axis 0 the columns {i*d1 + j : i < d0}. An axis crosses hosts
// when one of its groups holds devices of two hosts. Example, 2 hosts x 4 devices as 4 x 2:
//   host 0: 0 1 2 3 | host 1: 4 5 6 7
//   rows (axis 1)    {0,1} {2,3} {4,5} {6,7}  -> each inside a host
//   columns (axis 0) {0,2,4,6} {1,3,5,7}      -> both span hosts; 2 columns touch each host
// The scan is O(hosts * devices), which is small next to anything that uses its result.
MeshAxisLinks mesh_axis_links(const ClusterSpec& cluster, std::int64_t group, std::int64_t hosts,
                              std::int64_t devices, std::int64_t d0, std::int64_t d1) {
  const auto shape = [&] {
    return "sub-mesh " + std::to_string(hosts) + " host(s) x " + std::to_string(devices) +
           " device(s) as logical mesh " + std::to_string(d0) + " x " + std::to_string(d1);
  };
  if (group < 0 || group >= static_cast<std::int64_t>(cluster.groups.size())) {
    throw std::invalid_argument("mesh_axis_links: group " + std::to_string(group) +
                                " is out of range (the cluster has " +
                                std::to_string(cluster.groups.size()) + " group(s))");
  }
  const HostGroup& g = cluster.groups[group];
  if (hosts < 1 || devices < 1 || d0 < 1 || d1 < 1) {
    throw std::invalid_argument("mesh_axis_links: " + shape() + ": every size must be >= 1");
  }
  if (devices > g.devices_per_host) {
    throw std::invalid_argument("mesh_axis_links: " + shape() + ": devices " +
                                std::to_string(devices) + " exceeds group " +
                                std::to_string(group) + " ('" + g.name + "') devices_per_host " +
                                std::to_string(g.devices_per_host));
  }
  if (hosts > g.hosts) {
    throw std::invalid_argument("mesh_axis_links: " + shape() + ": hosts " + std::to_string(hosts) +
                                " exceeds group " + std::to_string(group) + " ('" + g.name +
                                "') hosts " + std::to_string(g.hosts));
  }
  if (d0 * d1 != hosts * devices) {
    throw std::invalid_argument(
        "mesh_axis_links: " + shape() + ": d0 x d1 = " + std::to_string(d0 * d1) +
        " but the sub-mesh has " + std::to_string(hosts * devices) + " devices");
  }

  // sharers[a][h]: groups of axis a that cross hosts and have a member on host h.
  std::vector<std::int64_t> sharers[2] = {std::vector<std::int64_t>(hosts, 0),
                                          std::vector<std::int64_t>(hosts, 0)};
  const auto host_of = [&](std::int64_t device) { return device / devices; };
  const auto scan_group = [&](int axis, std::int64_t first, std::int64_t stride,
                              std::int64_t count) {
    if (count < 2) return;  // a group of one never communicates
    const std::int64_t first_host = host_of(first);
    const std::int64_t last_host = host_of(first + stride * (count - 1));
    // Members are in increasing device order, so their hosts are non-decreasing: the group
    // crosses hosts exactly when its first and last members differ.
    if (first_host == last_host) return;
    std::int64_t previous = -1;
    for (std::int64_t m = 0; m < count; ++m) {
      const std::int64_t h = host_of(first + stride * m);
      if (h != previous) ++sharers[axis][h];
      previous = h;
    }
  };
  for (std::int64_t i = 0; i < d0; ++i) scan_group(1, i * d1, 1, d1);  // rows: axis 1
  for (std::int64_t j = 0; j < d1; ++j) scan_group(0, j, d1, d0);      // columns: axis 0

  MeshAxisLinks links;
  for (int axis = 0; axis < 2; ++axis) {
    std::int64_t most = 0;
    for (const std::int64_t count : sharers[axis]) most = count > most ? count : most;
    links.crosses_hosts[axis] = most > 0;
    links.host_link_sharers[axis] = most;
    links.axis[axis] = most > 0 ? cluster.inter_host : g.intra_host;
    // inter_host is a whole host's network bandwidth; the groups of this axis that meet on one
    // host run at once and share it, so each sees 1/most of it.
    if (most > 1) links.axis[axis].beta_s_per_byte *= static_cast<double>(most);
  }
  return links;
}

}  // namespace strata::solver
