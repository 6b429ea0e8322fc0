// Cluster presets (configs/clusters/<name>.yaml): located here and read for what the runtime
// needs now, the device's peak FLOP/s per dtype (metrics' MFU) and the preset's shape. The full
// cluster model for the planner (links, host groups) is parsed into solver's ClusterSpec.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace strata::app {

struct ClusterPreset {
  std::string name;
  std::string path;
  std::int64_t hosts = 1;
  std::int64_t devices_per_host = 0;           // 0: one device per MPI rank
  std::map<std::string, double> peak_flops;    // by dtype name, FLOP/s per device
};

// The configs/ directory: $STRATA_CONFIG_DIR, else <executable dir>/../configs (build tree),
// else <executable dir>/../share/strata/configs (install tree). "" when none exists.
std::string find_config_dir();

// Reads configs/clusters/<name>.yaml, or `name` itself when it is a path to a .yaml file.
// InputError naming the config key cluster.preset and the value when missing or malformed.
ClusterPreset read_cluster_preset(const std::string& name);

}  // namespace strata::app
