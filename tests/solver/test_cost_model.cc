// Cost model tests (solver/cost): every collective formula by hand, roofline compute time, the
// mapping of logical mesh axes onto physical links, and ClusterSpec validation. Numbers are
// chosen so the arithmetic in the comments is exact or nearly so. Pure C++, no MPI.
#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

#include "solver/cost/cluster_spec.h"
#include "solver/cost/cost_model.h"

namespace strata::solver {
namespace {

using Catch::Matchers::Contains;

// alpha 1e-5 s, beta 1e-9 s/B (1 GB/s): 1e6 bytes cost 1e-3 s through the link.
const LinkSpec kLink{1e-5, 1e-9};

// A V100-like device with round numbers: f16 100 TFLOP/s, f32 10 TFLOP/s, 1 TB/s memory.
DeviceSpec test_device() {
  DeviceSpec d;
  d.kind = "test-gpu";
  d.peak_flops = {{"f16", 100e12}, {"f32", 10e12}};
  d.memory_bandwidth_bytes_per_s = 1e12;
  d.memory_bytes = 16e9;
  d.efficiency = {{"matmul", 0.5}};
  d.default_efficiency = 0.25;
  return d;
}

// One group of `hosts` x `devices_per_host`, intra-host link fast, inter-host link slow.
ClusterSpec test_cluster(std::int64_t hosts, std::int64_t devices_per_host) {
  ClusterSpec c;
  c.name = "test";
  HostGroup g;
  g.name = "group0";
  g.hosts = hosts;
  g.devices_per_host = devices_per_host;
  g.device = test_device();
  g.intra_host = {1e-6, 1e-11};
  c.groups.push_back(g);
  c.inter_host = {1e-4, 1e-9};
  return c;
}

TEST_CASE("collective names are the metrics keys", "[cost]") {
  CHECK(std::string(collective_name(Collective::kAllReduce)) == "all_reduce");
  CHECK(std::string(collective_name(Collective::kAllGather)) == "all_gather");
  CHECK(std::string(collective_name(Collective::kReduceScatter)) == "reduce_scatter");
  CHECK(std::string(collective_name(Collective::kAllToAll)) == "all_to_all");
  CHECK(std::string(collective_name(Collective::kP2P)) == "p2p");
}

TEST_CASE("collective formulas by hand", "[cost]") {
  const double bytes = 1e6;
  // all-reduce, n = 4: 1e-5 + 1e-9 * 2 * 3/4 * 1e6 = 1e-5 + 1.5e-3 = 1.51e-3
  CHECK(collective_time_s(Collective::kAllReduce, bytes, 4, kLink) == Approx(1.51e-3));
  // all-reduce, n = 2: 1e-5 + 1e-9 * 2 * 1/2 * 1e6 = 1e-5 + 1e-3 = 1.01e-3
  CHECK(collective_time_s(Collective::kAllReduce, bytes, 2, kLink) == Approx(1.01e-3));
  // all-gather, n = 4: 1e-5 + 1e-9 * 3/4 * 1e6 = 1e-5 + 7.5e-4 = 7.6e-4
  CHECK(collective_time_s(Collective::kAllGather, bytes, 4, kLink) == Approx(7.6e-4));
  // reduce-scatter, n = 8: 1e-5 + 1e-9 * 7/8 * 1e6 = 1e-5 + 8.75e-4 = 8.85e-4
  CHECK(collective_time_s(Collective::kReduceScatter, bytes, 8, kLink) == Approx(8.85e-4));
  // all-to-all, n = 4: 1e-5 + 1e-9 * 3/16 * 1e6 = 1e-5 + 1.875e-4 = 1.975e-4
  CHECK(collective_time_s(Collective::kAllToAll, bytes, 4, kLink) == Approx(1.975e-4));
  // p2p (n = 2): 1e-5 + 1e-9 * 1e6 = 1.01e-3
  CHECK(collective_time_s(Collective::kP2P, bytes, 2, kLink) == Approx(1.01e-3));
  // all-reduce = reduce-scatter + all-gather in the beta term; the sum pays alpha twice:
  // 2 * (1e-5 + 7.5e-4) = 1.52e-3 = 1.51e-3 + 1e-5
  CHECK(collective_time_s(Collective::kReduceScatter, bytes, 4, kLink) +
            collective_time_s(Collective::kAllGather, bytes, 4, kLink) ==
        Approx(collective_time_s(Collective::kAllReduce, bytes, 4, kLink) + kLink.alpha_s));
  // zero bytes still pay the latency: 1e-5
  CHECK(collective_time_s(Collective::kAllGather, 0, 4, kLink) == Approx(1e-5));
}

TEST_CASE("a collective over one device is free", "[cost]") {
  for (const Collective kind :
       {Collective::kAllReduce, Collective::kAllGather, Collective::kReduceScatter,
        Collective::kAllToAll, Collective::kP2P}) {
    CHECK(collective_time_s(kind, 1e9, 1, kLink) == 0.0);
  }
}

TEST_CASE("collective arguments are checked", "[cost]") {
  CHECK_THROWS_WITH(collective_time_s(Collective::kAllReduce, 1e6, 0, kLink),
                    Contains("group size 0"));
  CHECK_THROWS_WITH(collective_time_s(Collective::kAllGather, -1, 2, kLink), Contains("bytes -1"));
}

TEST_CASE("compute time: compute-bound and bandwidth-bound", "[cost]") {
  const DeviceSpec d = test_device();
  // matmul 1e12 FLOPs f16, 1e8 bytes: compute 1e12 / (100e12 * 0.5) = 0.02 s, memory
  // 1e8 / 1e12 = 1e-4 s -> 0.02 s (compute-bound)
  CHECK(compute_time_s(1e12, 1e8, d, "f16", "matmul") == Approx(0.02));
  // same in f32: 1e12 / (10e12 * 0.5) = 0.2 s
  CHECK(compute_time_s(1e12, 1e8, d, "f32", "matmul") == Approx(0.2));
  // gelu (no entry: default_efficiency 0.25) 1e9 FLOPs f16, 4e9 bytes: compute
  // 1e9 / (100e12 * 0.25) = 4e-5 s, memory 4e9 / 1e12 = 4e-3 s -> 4e-3 s (bandwidth-bound)
  CHECK(compute_time_s(1e9, 4e9, d, "f16", "gelu") == Approx(4e-3));
  // layernorm 1e12 FLOPs f32, default efficiency: 1e12 / (10e12 * 0.25) = 0.4 s > 1e-4 s
  CHECK(compute_time_s(1e12, 1e8, d, "f32", "layernorm") == Approx(0.4));
  // nothing to do: 0
  CHECK(compute_time_s(0, 0, d, "f16", "add") == 0.0);
}

TEST_CASE("compute time: a dtype without a peak throws", "[cost]") {
  const DeviceSpec d = test_device();  // f16 and f32 only, like a V100 has no bf16
  CHECK_THROWS_AS(compute_time_s(1e9, 0, d, "bf16", "matmul"), std::invalid_argument);
  CHECK_THROWS_WITH(compute_time_s(1e9, 0, d, "bf16", "matmul"),
                    Contains("bf16") && Contains("test-gpu") && Contains("f16, f32"));
  CHECK_THROWS_WITH(compute_time_s(-1, 0, d, "f16", "matmul"), Contains("flops -1"));
}

TEST_CASE("mesh axes inside one host use the intra-host link", "[cost]") {
  const ClusterSpec c = test_cluster(1, 8);
  // 1 host x 8 as 2 x 4: rows {0..3} {4..7}, columns {j, j+4}: all on host 0 -> neither crosses
  MeshAxisLinks m = mesh_axis_links(c, 0, 1, 8, 2, 4);
  CHECK_FALSE(m.crosses_hosts[0]);
  CHECK_FALSE(m.crosses_hosts[1]);
  CHECK(m.axis[0].beta_s_per_byte == 1e-11);
  CHECK(m.axis[1].beta_s_per_byte == 1e-11);
  CHECK(m.host_link_sharers[0] == 0);
  CHECK(m.host_link_sharers[1] == 0);
  // 8 x 1: one column {0..7} on host 0 -> no crossing
  m = mesh_axis_links(c, 0, 1, 8, 8, 1);
  CHECK_FALSE(m.crosses_hosts[0]);
  CHECK_FALSE(m.crosses_hosts[1]);
  // 1 x 8: one row {0..7} on host 0 -> no crossing
  m = mesh_axis_links(c, 0, 1, 8, 1, 8);
  CHECK_FALSE(m.crosses_hosts[0]);
  CHECK_FALSE(m.crosses_hosts[1]);
  CHECK(m.axis[1].alpha_s == 1e-6);
  // a sub-mesh of 4 of the 8 devices as 2 x 2: still one host
  m = mesh_axis_links(c, 0, 1, 4, 2, 2);
  CHECK_FALSE(m.crosses_hosts[0]);
  CHECK_FALSE(m.crosses_hosts[1]);
}

TEST_CASE("mesh axes over two hosts of 8", "[cost]") {
  const ClusterSpec c = test_cluster(2, 8);
  // host 0 holds devices 0..7, host 1 holds 8..15.
  // 2 x 8: rows {0..7} {8..15} inside a host; columns {j, j+8} span both; 8 columns per host
  MeshAxisLinks m = mesh_axis_links(c, 0, 2, 8, 2, 8);
  CHECK(m.crosses_hosts[0]);
  CHECK_FALSE(m.crosses_hosts[1]);
  // the 8 column groups share each host's link: beta 1e-9 x 8
  CHECK(m.axis[0].beta_s_per_byte == Approx(8e-9).epsilon(1e-12));
  CHECK(m.axis[0].alpha_s == 1e-4);
  CHECK(m.axis[1].beta_s_per_byte == 1e-11);
  CHECK(m.host_link_sharers[0] == 8);
  CHECK(m.host_link_sharers[1] == 0);
  // 4 x 4: rows {0..3} {4..7} {8..11} {12..15} inside hosts; columns {j, j+4, j+8, j+12}
  // span both hosts (j, j+4 on host 0; j+8, j+12 on host 1); 4 columns per host
  m = mesh_axis_links(c, 0, 2, 8, 4, 4);
  CHECK(m.crosses_hosts[0]);
  CHECK_FALSE(m.crosses_hosts[1]);
  CHECK(m.host_link_sharers[0] == 4);
  // 16 x 1: one column {0..15} spans both hosts; axis 1 has size 1 and never communicates
  m = mesh_axis_links(c, 0, 2, 8, 16, 1);
  CHECK(m.crosses_hosts[0]);
  CHECK_FALSE(m.crosses_hosts[1]);
  CHECK(m.host_link_sharers[0] == 1);
  // 1 x 16: one row {0..15} spans both hosts
  m = mesh_axis_links(c, 0, 2, 8, 1, 16);
  CHECK_FALSE(m.crosses_hosts[0]);
  CHECK(m.crosses_hosts[1]);
  CHECK(m.axis[1].beta_s_per_byte == 1e-9);
  CHECK(m.host_link_sharers[1] == 1);
  // 8 x 2: rows {0,1} .. {14,15}: 8 divides by 2, so no row straddles the host boundary;
  // columns {0,2,..,14} and {1,3,..,15} span both -> 2 per host
  m = mesh_axis_links(c, 0, 2, 8, 8, 2);
  CHECK(m.crosses_hosts[0]);
  CHECK_FALSE(m.crosses_hosts[1]);
  CHECK(m.host_link_sharers[0] == 2);
}

TEST_CASE("mesh axes over hosts of one device", "[cost]") {
  const ClusterSpec c = test_cluster(4, 1);
  // 4 hosts x 1 device: device k is alone on host k, so any group of two or more crosses.
  // 4 x 1: column {0,1,2,3} crosses; axis 1 has size 1
  MeshAxisLinks m = mesh_axis_links(c, 0, 4, 1, 4, 1);
  CHECK(m.crosses_hosts[0]);
  CHECK_FALSE(m.crosses_hosts[1]);
  CHECK(m.host_link_sharers[0] == 1);
  // 2 x 2: rows {0,1} {2,3} cross; columns {0,2} {1,3} cross; each host in one row, one column
  m = mesh_axis_links(c, 0, 4, 1, 2, 2);
  CHECK(m.crosses_hosts[0]);
  CHECK(m.crosses_hosts[1]);
  CHECK(m.host_link_sharers[0] == 1);
  CHECK(m.host_link_sharers[1] == 1);
  // 1 x 4: row {0,1,2,3} crosses
  m = mesh_axis_links(c, 0, 4, 1, 1, 4);
  CHECK_FALSE(m.crosses_hosts[0]);
  CHECK(m.crosses_hosts[1]);
  // 1 host of the 4, 1 x 1: nothing communicates
  m = mesh_axis_links(c, 0, 1, 1, 1, 1);
  CHECK_FALSE(m.crosses_hosts[0]);
  CHECK_FALSE(m.crosses_hosts[1]);
}

TEST_CASE("mesh axes whose rows straddle a host boundary", "[cost]") {
  const ClusterSpec c = test_cluster(2, 3);
  // 2 hosts x 3: host 0 = {0,1,2}, host 1 = {3,4,5}.
  // 3 x 2: rows {0,1} {2,3} {4,5}: row {2,3} straddles -> axis 1 crosses, 1 row per host;
  // columns {0,2,4} {1,3,5} both span hosts -> 2 per host
  MeshAxisLinks m = mesh_axis_links(c, 0, 2, 3, 3, 2);
  CHECK(m.crosses_hosts[0]);
  CHECK(m.crosses_hosts[1]);
  CHECK(m.host_link_sharers[0] == 2);
  CHECK(m.host_link_sharers[1] == 1);
  // 2 x 3: rows {0,1,2} {3,4,5} inside hosts; columns {j, j+3} cross, 3 per host
  m = mesh_axis_links(c, 0, 2, 3, 2, 3);
  CHECK(m.crosses_hosts[0]);
  CHECK_FALSE(m.crosses_hosts[1]);
  CHECK(m.host_link_sharers[0] == 3);
}

TEST_CASE("mesh axes use the chosen group's intra-host link", "[cost]") {
  ClusterSpec c = test_cluster(1, 8);
  HostGroup second = c.groups[0];
  second.name = "slow";
  second.hosts = 2;
  second.devices_per_host = 4;
  second.intra_host = {2e-6, 5e-11};
  c.groups.push_back(second);
  CHECK(c.total_devices() == 16);  // 1 x 8 + 2 x 4
  CHECK(c.first_device_of_group(0) == 0);
  CHECK(c.first_device_of_group(1) == 8);
  CHECK_THROWS_AS(c.first_device_of_group(2), std::invalid_argument);
  // group 1, 2 hosts x 4 as 2 x 4: rows inside hosts use group 1's link; columns cross
  const MeshAxisLinks m = mesh_axis_links(c, 1, 2, 4, 2, 4);
  CHECK(m.axis[1].beta_s_per_byte == 5e-11);
  // the 4 column groups share each host's link: beta 1e-9 x 4
  CHECK(m.axis[0].beta_s_per_byte == Approx(4e-9).epsilon(1e-12));
  CHECK(m.host_link_sharers[0] == 4);
}

TEST_CASE("mesh_axis_links rejects shapes that do not fit", "[cost]") {
  const ClusterSpec c = test_cluster(2, 8);
  // 3 x 4 = 12 but the sub-mesh has 2 x 8 = 16
  CHECK_THROWS_WITH(mesh_axis_links(c, 0, 2, 8, 3, 4), Contains("12") && Contains("16"));
  // 16 devices per host but the group has 8
  CHECK_THROWS_WITH(mesh_axis_links(c, 0, 1, 16, 4, 4),
                    Contains("devices 16") && Contains("devices_per_host 8"));
  // 4 hosts but the group has 2
  CHECK_THROWS_WITH(mesh_axis_links(c, 0, 4, 8, 4, 8), Contains("hosts 4") && Contains("hosts 2"));
  CHECK_THROWS_WITH(mesh_axis_links(c, 1, 1, 1, 1, 1), Contains("group 1"));
  CHECK_THROWS_WITH(mesh_axis_links(c, 0, 0, 8, 0, 8), Contains(">= 1"));
}

TEST_CASE("validate accepts a good cluster and names every bad field", "[cost]") {
  ClusterSpec c = test_cluster(2, 8);
  CHECK_NOTHROW(validate(c));
  CHECK(c.total_devices() == 16);

  c.groups[0].devices_per_host = 0;
  CHECK_THROWS_WITH(validate(c), Contains("groups[0].devices_per_host: 0 must be >= 1"));

  c = test_cluster(1, 1);
  c.groups[0].hosts = -2;
  c.groups[0].device.peak_flops["f8"] = 1e12;
  c.groups[0].device.peak_flops["f32"] = -1;
  c.groups[0].device.efficiency["matmull"] = 0.5;
  c.groups[0].device.default_efficiency = 1.5;
  c.groups[0].device.memory_bytes = 0;
  c.inter_host.beta_s_per_byte = -1e-9;
  try {
    validate(c);
    FAIL("validate accepted a bad cluster");
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    CHECK_THAT(m, Contains("groups[0].hosts: -2 must be >= 1"));
    CHECK_THAT(m, Contains("groups[0].device.peak_flops.f8: unknown dtype"));
    CHECK_THAT(m, Contains("groups[0].device.peak_flops.f32: -1 must be finite and > 0"));
    CHECK_THAT(m, Contains("groups[0].device.efficiency.matmull: unknown op kind"));
    CHECK_THAT(m, Contains("groups[0].device.default_efficiency: 1.5 must be in (0, 1]"));
    CHECK_THAT(m, Contains("groups[0].device.memory_bytes: 0 must be finite and > 0"));
    CHECK_THAT(m, Contains("inter_host.beta_s_per_byte"));
  }

  c = test_cluster(1, 1);
  c.groups.push_back(c.groups[0]);  // same name twice
  CHECK_THROWS_WITH(validate(c), Contains("groups[1].name: 'group0' is used by an earlier group"));
  c.groups.clear();
  CHECK_THROWS_WITH(validate(c), Contains("at least one group"));
}

}  // namespace
}  // namespace strata::solver
