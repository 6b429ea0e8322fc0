// Preset lookup and the fields of a cluster file the runtime reads today.
#include "app/cluster_file.h"

#include <yaml-cpp/yaml.h>
#include <unistd.h>

#include <filesystem>

#include "app/errors.h"

namespace strata::app {
namespace fs = std::filesystem;

std::string find_config_dir() {
  if (const char* env = std::getenv("STRATA_CONFIG_DIR"); env && fs::is_directory(env)) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  for (const fs::path& candidate : {exe.parent_path().parent_path() / "configs",
                                    exe.parent_path().parent_path() / "share/strata/configs"}) {
    if (fs::is_directory(candidate / "clusters")) return candidate.string();
  }
  return "";
}

ClusterPreset read_cluster_preset(const std::string& name) {
  ClusterPreset preset;
  preset.name = name;
  if (name.size() > 5 && name.substr(name.size() - 5) == ".yaml") {
    preset.path = name;
  } else {
    const std::string dir = find_config_dir();
    if (dir.empty()) {
      throw InputError("cluster.preset: '" + name +
                       "': no configs/ directory found (set STRATA_CONFIG_DIR)");
    }
    preset.path = dir + "/clusters/" + name + ".yaml";
  }
  const std::string where = preset.path + ": cluster.preset '" + name + "': ";
  if (!fs::is_regular_file(preset.path)) throw InputError(where + "no such preset file");
  try {
    const YAML::Node root = YAML::LoadFile(preset.path);
    preset.hosts = root["hosts"].as<std::int64_t>(1);
    preset.devices_per_host = root["devices_per_host"].as<std::int64_t>(0);
    const YAML::Node peaks = root["device"]["peak_flops"];
    if (!peaks || !peaks.IsMap()) throw InputError(where + "device.peak_flops is missing");
    for (const auto& entry : peaks) {
      const double value = entry.second.as<double>();
      if (!(value > 0)) throw InputError(where + "device.peak_flops must be > 0");
      preset.peak_flops[entry.first.as<std::string>()] = value;
    }
    if (preset.hosts < 1 || preset.devices_per_host < 0) throw InputError(where + "hosts must be >= 1");
  } catch (const YAML::Exception& e) {
    throw InputError(where + e.what());
  }
  return preset;
}

}  // namespace strata::app
