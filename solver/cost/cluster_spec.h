// ClusterSpec: the machines a plan runs on, as plain data (DESIGN.md section 4; issue: cluster
// model). app/ parses configs/clusters/<preset>.yaml into it; the planner never reads files.
// Devices are numbered group by group, host by host, device by device: that number is the MPI
// world rank. Pure C++.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace strata::solver {

// alpha-beta link: sending B bytes takes alpha_s + beta_s_per_byte * B.
struct LinkSpec {
  double alpha_s = 0;          // latency (seconds)
  double beta_s_per_byte = 0;  // inverse bandwidth (seconds per byte)
};

struct DeviceSpec {
  std::string kind;                          // "V100-16GB", "A100-80GB", "cpu-core", ...
  std::map<std::string, double> peak_flops;  // by dtype name ("f64", "f32", "bf16", "f16"),
                                             // FLOP/s; a dtype absent here is unsupported
  double memory_bandwidth_bytes_per_s = 0;
  double memory_bytes = 0;  // capacity per device
  // Achieved fraction of peak per op kind name ("matmul", "layernorm", ...); absent kinds use
  // default_efficiency.
  std::map<std::string, double> efficiency;
  double default_efficiency = 1.0;
};

struct HostGroup {
  std::string name;  // "group0", or from the file
  std::int64_t hosts = 1;
  std::int64_t devices_per_host = 1;
  DeviceSpec device;
  LinkSpec intra_host;  // between devices of one host (NVLink, shared memory)
};

struct ClusterSpec {
  std::string name;
  std::vector<HostGroup> groups;  // homogeneous clusters have one
  LinkSpec inter_host;            // between hosts, within and across groups

  std::int64_t total_devices() const;
  // World rank of the first device of group g.
  std::int64_t first_device_of_group(std::int64_t group) const;
};

namespace detail {
// A double with 17 significant digits, for messages that must show the exact value.
std::string number_text(double x);
}  // namespace detail

// Throws std::invalid_argument naming the field ("groups[1].devices_per_host: 0 must be >= 1").
void validate(const ClusterSpec& cluster);

}  // namespace strata::solver
