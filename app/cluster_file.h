// Cluster presets (configs/clusters/<name>.yaml, format in docs/clusters.md): located, parsed and
// validated here, then handed on as data. read_cluster_spec gives the planner's full model
// (solver::ClusterSpec: host groups, devices, links); read_cluster_preset gives the runtime what
// it needs now, the preset's shape and the device's peak FLOP/s per dtype (metrics' MFU).
// YAML stays in app/: solver/ never reads files. Every problem is an InputError line
// "<file>:<line>: <key>: <what is wrong>".
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "solver/cost/cluster_spec.h"

namespace strata::app {

struct ClusterPreset {
  std::string name;
  std::string path;
  std::int64_t hosts = 1;
  std::int64_t devices_per_host = 0;         // 0: one device per MPI rank
  std::map<std::string, double> peak_flops;  // by dtype name, FLOP/s per device
};

// The configs/ directory: $STRATA_CONFIG_DIR, else <executable dir>/../configs (build tree),
// else <executable dir>/../share/strata/configs (install tree). "" when none exists.
std::string find_config_dir();

// Reads configs/clusters/<name>.yaml, or `name` itself when it is a path to a .yaml file, and
// validates all of it. InputError naming the config key cluster.preset and the value when the
// file is missing; one line per problem of a malformed file. For a multi-group preset: hosts is
// the sum over groups and devices_per_host their common value (1 x total devices when they
// differ); peak_flops holds the dtypes every group supports, at the device-weighted mean peak.
ClusterPreset read_cluster_preset(const std::string& name);

// The planner's view of preset `preset` (a name or a .yaml path, as above), validated, with the
// run config's shape overrides applied (DESIGN.md section 7):
//   hosts_override, devices_override: cluster.hosts / cluster.devices_per_host; 0 = not set.
//     They replace a single-group preset's shape; on a multi-group preset a set override is an
//     error (edit the groups instead).
//   world_size: MPI ranks, or 0 when not under MPI (`strata plan`). It only resolves a
//     devices_per_host of 0 ("one device per rank", local-cpu): devices = world_size / hosts, or
//     1 when world_size is 0. Checking hosts x devices against the world size is the caller's.
// Throws InputError listing every problem (file:line: key), std::invalid_argument when
// world_size < 0.
solver::ClusterSpec read_cluster_spec(const std::string& preset, std::int64_t hosts_override,
                                      std::int64_t devices_override, std::int64_t world_size);

// The same for cluster-file text already in memory; `path` only names it in messages.
solver::ClusterSpec parse_cluster_spec(const std::string& text, const std::string& path,
                                       std::int64_t hosts_override, std::int64_t devices_override,
                                       std::int64_t world_size);

}  // namespace strata::app
