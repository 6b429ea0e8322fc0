// ClusterSpec helpers: device counting and validation (cluster_spec.h).
// validate() collects every problem and throws one std::invalid_argument whose message lists
// them separated by "; ", each naming its field ("groups[1].devices_per_host: 0 must be >= 1").
// Dtype and op-kind names are checked against the IR's own parsers so a typo cannot silently
// fall back to a default. Pure C++: no MPI, CUDA, Kokkos, HDF5 or YAML here.
#include "solver/cost/cluster_spec.h"

#include <cmath>
#include <set>
#include <sstream>
#include <stdexcept>

#include "solver/ir/dtype.h"
#include "solver/ir/op.h"

namespace strata::solver {
namespace {

bool is_float_dtype_name(const std::string& name) {
  try {
    return is_floating(parse_dtype(name));
  } catch (const std::invalid_argument&) {
    return false;
  }
}

bool is_op_kind_name(const std::string& name) {
  try {
    parse_op_kind(name);
    return true;
  } catch (const std::invalid_argument&) {
    return false;
  }
}

void check_link(const LinkSpec& link, const std::string& field,
                std::vector<std::string>* problems) {
  if (!std::isfinite(link.alpha_s) || link.alpha_s < 0) {
    problems->push_back(field + ".alpha_s: " + detail::number_text(link.alpha_s) +
                        " must be finite and >= 0");
  }
  if (!std::isfinite(link.beta_s_per_byte) || link.beta_s_per_byte < 0) {
    problems->push_back(field + ".beta_s_per_byte: " + detail::number_text(link.beta_s_per_byte) +
                        " must be finite and >= 0");
  }
}

void check_device(const DeviceSpec& device, const std::string& field,
                  std::vector<std::string>* problems) {
  const auto positive = [&](double value, const std::string& key) {
    if (!std::isfinite(value) || !(value > 0)) {
      problems->push_back(field + "." + key + ": " + detail::number_text(value) +
                          " must be finite and > 0");
    }
  };
  const auto fraction = [&](double value, const std::string& key) {
    if (!std::isfinite(value) || !(value > 0) || value > 1) {
      problems->push_back(field + "." + key + ": " + detail::number_text(value) +
                          " must be in (0, 1]");
    }
  };
  if (device.kind.empty()) problems->push_back(field + ".kind: must not be empty");
  if (device.peak_flops.empty()) {
    problems->push_back(field + ".peak_flops: needs at least one dtype (f64, f32, bf16, f16)");
  }
  for (const auto& [dtype, flops] : device.peak_flops) {
    if (!is_float_dtype_name(dtype)) {
      problems->push_back(field + ".peak_flops." + dtype +
                          ": unknown dtype (must be one of f64, f32, bf16, f16)");
    }
    positive(flops, "peak_flops." + dtype);
  }
  positive(device.memory_bandwidth_bytes_per_s, "memory_bandwidth_bytes_per_s");
  positive(device.memory_bytes, "memory_bytes");
  fraction(device.default_efficiency, "default_efficiency");
  for (const auto& [op_kind, value] : device.efficiency) {
    if (!is_op_kind_name(op_kind)) {
      problems->push_back(field + ".efficiency." + op_kind + ": unknown op kind");
    }
    fraction(value, "efficiency." + op_kind);
  }
}

}  // namespace

std::int64_t ClusterSpec::total_devices() const {
  std::int64_t total = 0;
  for (const HostGroup& group : groups) total += group.hosts * group.devices_per_host;
  return total;
}

// Devices are numbered group by group, so group g starts after all devices of groups < g.
std::int64_t ClusterSpec::first_device_of_group(std::int64_t group) const {
  if (group < 0 || group >= static_cast<std::int64_t>(groups.size())) {
    throw std::invalid_argument("first_device_of_group: group " + std::to_string(group) +
                                " is out of range (the cluster has " +
                                std::to_string(groups.size()) + " group(s))");
  }
  std::int64_t first = 0;
  for (std::int64_t g = 0; g < group; ++g) first += groups[g].hosts * groups[g].devices_per_host;
  return first;
}

void validate(const ClusterSpec& cluster) {
  std::vector<std::string> problems;
  if (cluster.groups.empty()) problems.push_back("groups: the cluster needs at least one group");
  std::set<std::string> names;
  for (std::size_t g = 0; g < cluster.groups.size(); ++g) {
    const HostGroup& group = cluster.groups[g];
    const std::string field = "groups[" + std::to_string(g) + "]";
    if (group.name.empty()) {
      problems.push_back(field + ".name: must not be empty");
    } else if (!names.insert(group.name).second) {
      problems.push_back(field + ".name: '" + group.name + "' is used by an earlier group");
    }
    if (group.hosts < 1) {
      problems.push_back(field + ".hosts: " + std::to_string(group.hosts) + " must be >= 1");
    }
    if (group.devices_per_host < 1) {
      problems.push_back(field + ".devices_per_host: " + std::to_string(group.devices_per_host) +
                         " must be >= 1");
    }
    check_device(group.device, field + ".device", &problems);
    check_link(group.intra_host, field + ".intra_host", &problems);
  }
  check_link(cluster.inter_host, "inter_host", &problems);
  if (problems.empty()) return;
  std::string message;
  for (std::size_t i = 0; i < problems.size(); ++i) message += (i ? "; " : "") + problems[i];
  throw std::invalid_argument(message);
}

namespace detail {
std::string number_text(double x) {
  std::ostringstream out;
  out.precision(17);
  out << x;
  return out.str();
}
}  // namespace detail

}  // namespace strata::solver
