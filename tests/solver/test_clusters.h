// Clusters shared by the planner tests: hosts of V100-16GB devices with the figures of
// configs/clusters/aws-p3.16xlarge.yaml (125 TFLOP/s f16, 15.7 f32, 900 GB/s HBM, 16 GiB; NVLink
// alpha 10 us, beta 8e-12 s/B; 25 Gb/s between hosts), built in code so tests read no files.
#pragma once

#include <cstdint>
#include <string>

#include "solver/cost/cluster_spec.h"

namespace strata::solver::test {

inline ClusterSpec v100_cluster(std::int64_t hosts, std::int64_t devices_per_host,
                                const std::string& name = "v100") {
  HostGroup g;
  g.name = "group0";
  g.hosts = hosts;
  g.devices_per_host = devices_per_host;
  g.device.kind = "V100-16GB";
  g.device.peak_flops = {{"f16", 125e12}, {"f32", 15.7e12}, {"f64", 7.8e12}};
  g.device.memory_bandwidth_bytes_per_s = 900e9;
  g.device.memory_bytes = 16.0 * 1024 * 1024 * 1024;
  g.device.efficiency = {{"matmul", 0.6}};
  g.device.default_efficiency = 0.5;
  g.intra_host = {1e-5, 8e-12};
  ClusterSpec c;
  c.name = name;
  c.groups = {g};
  c.inter_host = {5e-5, 3.2e-10};
  return c;
}

}  // namespace strata::solver::test
