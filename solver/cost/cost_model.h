// Cost model (DESIGN.md section 4): compute time of an op's local shard, collective time per
// logical mesh axis, and which physical links each axis of a logical mesh crosses. All times in
// seconds. Pure C++.
#pragma once

#include <cstdint>
#include <string>

#include "solver/cost/cluster_spec.h"

namespace strata::solver {

enum class Collective : std::uint8_t { kAllReduce, kAllGather, kReduceScatter, kAllToAll, kP2P };
const char* collective_name(Collective kind);  // "all_reduce", "all_gather", ... (metrics keys)

// Time of one collective over n devices joined by `link`. `bytes` is B of DESIGN.md section 4:
// the bytes of the whole tensor held by the group (the all-reduce buffer of each member; the
// gathered result of an all-gather; the input of a reduce-scatter; the sum of the members'
// buffers of an all-to-all; the message of a point-to-point send):
//   all-reduce   alpha + beta * 2 (n-1)/n * B
//   all-gather   alpha + beta * (n-1)/n * B
//   reduce-scat. alpha + beta * (n-1)/n * B
//   all-to-all   alpha + beta * (n-1)/n^2 * B
//   p2p          alpha + beta * B
// n == 1 costs 0.
double collective_time_s(Collective kind, double bytes, std::int64_t n, const LinkSpec& link);

// max(flops / (peak[dtype] * efficiency[op_kind]), bytes / memory bandwidth). Throws
// std::invalid_argument when the device has no peak for `dtype` (e.g. bf16 on a V100).
double compute_time_s(double flops, double bytes, const DeviceSpec& device,
                      const std::string& dtype, const std::string& op_kind);

// A logical 2-D mesh (d0 x d1, devices row-major) over a sub-mesh of `hosts` x `devices` of one
// host group. Axis 1 joins devices i*d1 .. i*d1 + d1-1; axis 0 joins devices j, j+d1, j+2 d1, ...
// An axis whose groups include devices of different hosts is priced by the inter-host link,
// otherwise by the group's intra-host link.
struct MeshAxisLinks {
  LinkSpec axis[2];
  bool crosses_hosts[2] = {false, false};
  // For an axis that crosses hosts: the most groups of that axis with members on one host, i.e.
  // how many of the axis's concurrent collectives share that host's inter-host link (a 2 x 8
  // mesh over 2 hosts x 8 devices: axis 0 is 8 groups {j, j+8}, all through each host's link,
  // so 8; a 1 x 16 mesh: 1). 0 for an axis inside hosts. axis[] is scaled by it: inter_host is
  // the bandwidth of a whole host, shared by the axis's groups that run at once through it.
  std::int64_t host_link_sharers[2] = {0, 0};
};
MeshAxisLinks mesh_axis_links(const ClusterSpec& cluster, std::int64_t group, std::int64_t hosts,
                              std::int64_t devices, std::int64_t d0, std::int64_t d1);

}  // namespace strata::solver
