// Cluster files (configs/clusters/*.yaml; docs/clusters.md): preset lookup, a schema-checked
// parse into solver::ClusterSpec, and the run config's shape overrides.
// Rules: every problem becomes one line "<file>:<line>: <key>: <what>" (lines 1-based from
// yaml-cpp's Mark; a missing key names the line of the map that lacks it) and all of them are
// thrown together as one InputError; no yaml-cpp exception escapes. Unknown keys are errors.
// The walk has a fixed depth (the schema's), so hostile files cost time linear in their size.
#include "app/cluster_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "app/errors.h"
#include "solver/ir/dtype.h"
#include "solver/ir/op.h"

namespace strata::app {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxProblems = 100;              // more would only bury the first ones
constexpr std::size_t kMaxClusterFileBytes = 1 << 20;  // 1 MiB: far above any real preset
constexpr std::size_t kMaxShownChars = 60;             // of a value quoted in a message
constexpr std::int64_t kMaxDevices = 1 << 20;          // per count and in total: a sanity bound

const std::vector<std::string> kTopKeys = {"name",   "hosts", "devices_per_host",
                                           "device", "links", "groups"};
const std::vector<std::string> kDeviceKeys = {
    "kind",         "peak_flops",         "memory_bandwidth_bytes_per_s",
    "memory_bytes", "default_efficiency", "efficiency"};
const std::vector<std::string> kLinksKeys = {"intra_host", "inter_host"};
const std::vector<std::string> kLinkKeys = {"alpha_s", "beta_s_per_byte"};
const std::vector<std::string> kGroupKeys = {"name", "hosts", "devices_per_host", "device",
                                             "intra_host"};

std::string join_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

std::string dotted(const std::string& parent, const std::string& child) {
  return parent.empty() ? child : parent + "." + child;
}

// One-line form of user text for messages: control bytes as \xNN, cut after kMaxShownChars.
std::string printable(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == kMaxShownChars) {
      out += "...";
      break;
    }
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string in_quotes(const std::string& s) { return "\"" + printable(s) + "\""; }

std::string describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  return in_quotes(node.Scalar());
}

int line_of(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.line >= 0 ? mark.line + 1 : 0;
}

// The file as written: a single-group file's devices_per_host may still be 0 (one per rank).
struct ClusterFile {
  solver::ClusterSpec spec;
  bool multi_group = false;
};

// A map of the schema whose keys have been checked: known keys -> value nodes.
struct MapView {
  YAML::Node node;
  std::string key;  // dotted key of the map itself ("" at the top level)
  std::map<std::string, YAML::Node> values;
  std::map<std::string, int> key_lines;
  bool has(const std::string& name) const { return values.count(name) > 0; }
};

class Parser {
 public:
  explicit Parser(std::string path) : path_(std::move(path)) {}

  void report(int line, const std::string& key, const std::string& what) {
    if (problems_.size() >= kMaxProblems) {
      ++dropped_;
      return;
    }
    std::string text = path_;
    if (line > 0) text += ":" + std::to_string(line);
    text += ": ";
    if (!key.empty()) text += key + ": ";
    problems_.push_back({line, text + what});
  }

  // All problems, in file order (those without a line first).
  void throw_if_problems() const {
    if (problems_.empty()) return;
    std::vector<std::pair<int, std::string>> sorted = problems_;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> lines;
    for (const auto& p : sorted) lines.push_back(p.second);
    if (dropped_ > 0) lines.push_back("... and " + std::to_string(dropped_) + " more problems");
    throw InputError(lines);
  }

  const std::string& path() const { return path_; }

  // ---- structure
  // `node` as a map whose keys must come from `allowed` (nullopt after reporting when it is not
  // a map). Unknown, duplicate and non-scalar keys are reported; the rest are looked up later.
  std::optional<MapView> open_map(const YAML::Node& node, const std::string& key,
                                  const std::vector<std::string>& allowed) {
    if (!node.IsMap()) {
      report(line_of(node), key,
             "must be a map (with " + join_keys(allowed) + "), got " + describe(node));
      return std::nullopt;
    }
    MapView m{node, key, {}, {}};
    for (const auto& entry : node) {
      const int line = line_of(entry.first);
      if (!entry.first.IsScalar()) {
        report(line, key, "keys must be plain names, got " + describe(entry.first));
        continue;
      }
      const std::string name = entry.first.Scalar();
      const std::string full = dotted(key, printable(name));
      if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        report(line, full, "unknown key (expected one of " + join_keys(allowed) + ")");
      } else if (m.values.count(name)) {
        report(line, full,
               "duplicate key (first given on line " + std::to_string(m.key_lines[name]) + ")");
      } else {
        m.values[name] = entry.second;
        m.key_lines[name] = line;
      }
    }
    return m;
  }

  void missing(const MapView& m, const std::string& name, const std::string& what) {
    report(line_of(m.node), dotted(m.key, name), "missing (required: " + what + ")");
  }

  // ---- leaves
  // A finite number in [lo, hi] (lo exclusive when lo_open). nullopt after reporting.
  std::optional<double> number_value(const YAML::Node& v, const std::string& key, double lo,
                                     bool lo_open, double hi) {
    double x = 0;
    if (!v.IsScalar() || !YAML::convert<double>::decode(v, x)) {
      report(line_of(v), key, describe(v) + " is not a number");
      return std::nullopt;
    }
    if (!std::isfinite(x)) {
      report(line_of(v), key, in_quotes(v.Scalar()) + " is not a finite number");
      return std::nullopt;
    }
    const bool low = lo_open ? !(x > lo) : x < lo;
    if (low || x > hi) {
      std::string range = std::string(lo_open ? "> " : ">= ") + format_bound(lo);
      if (std::isfinite(hi)) range += " and <= " + format_bound(hi);
      report(line_of(v), key, printable(v.Scalar()) + " is out of range (must be " + range + ")");
      return std::nullopt;
    }
    return x;
  }

  std::optional<double> number(const MapView& m, const std::string& name, bool required, double lo,
                               bool lo_open, double hi, const std::string& what) {
    const auto it = m.values.find(name);
    if (it == m.values.end()) {
      if (required) missing(m, name, what);
      return std::nullopt;
    }
    return number_value(it->second, dotted(m.key, name), lo, lo_open, hi);
  }

  std::optional<std::int64_t> integer(const MapView& m, const std::string& name, std::int64_t lo,
                                      std::int64_t hi, const std::string& what) {
    const auto it = m.values.find(name);
    if (it == m.values.end()) {
      missing(m, name, what);
      return std::nullopt;
    }
    const YAML::Node& v = it->second;
    const std::string key = dotted(m.key, name);
    std::int64_t x = 0;
    if (!v.IsScalar() || !YAML::convert<std::int64_t>::decode(v, x)) {
      report(line_of(v), key, describe(v) + " is not an integer");
      return std::nullopt;
    }
    if (x < lo || x > hi) {
      report(line_of(v), key,
             std::to_string(x) + " is out of range (must be >= " + std::to_string(lo) +
                 " and <= " + std::to_string(hi) + ")");
      return std::nullopt;
    }
    return x;
  }

  std::optional<std::string> name_value(const MapView& m, const std::string& name, bool required,
                                        const std::string& what) {
    const auto it = m.values.find(name);
    if (it == m.values.end()) {
      if (required) missing(m, name, what);
      return std::nullopt;
    }
    const YAML::Node& v = it->second;
    if (!v.IsScalar() || v.Scalar().empty()) {
      report(line_of(v), dotted(m.key, name), "must be a non-empty name, got " + describe(v));
      return std::nullopt;
    }
    return v.Scalar();
  }

  // ---- schema parts
  // device: {kind, peak_flops, memory_bandwidth_bytes_per_s, memory_bytes,
  //          default_efficiency (optional, 1.0), efficiency (optional)}
  solver::DeviceSpec device(const YAML::Node& node, const std::string& key) {
    solver::DeviceSpec d;
    const auto m = open_map(node, key, kDeviceKeys);
    if (!m) return d;
    if (auto kind = name_value(*m, "kind", true, "the device's name, e.g. V100-16GB"))
      d.kind = *kind;
    const auto peaks = m->values.find("peak_flops");
    if (peaks == m->values.end()) {
      missing(*m, "peak_flops", "FLOP/s per dtype, e.g. {f32: 15.7e12}");
    } else {
      const std::string pkey = dotted(key, "peak_flops");
      if (!peaks->second.IsMap() || peaks->second.size() == 0) {
        report(line_of(peaks->second), pkey,
               "must be a non-empty map of dtype (f64, f32, bf16, f16) to FLOP/s, got " +
                   describe(peaks->second));
      } else {
        for (const auto& entry : peaks->second) {
          const std::string dtype = entry.first.IsScalar() ? entry.first.Scalar() : "?";
          const std::string full = dotted(pkey, printable(dtype));
          if (!is_float_dtype(dtype)) {
            report(line_of(entry.first), full, "unknown dtype (expected f64, f32, bf16 or f16)");
          } else if (d.peak_flops.count(dtype)) {
            report(line_of(entry.first), full, "duplicate key");
          } else if (auto x = number_value(entry.second, full, 0, true, HUGE_VAL)) {
            d.peak_flops[dtype] = *x;
          }
        }
      }
    }
    if (auto x = number(*m, "memory_bandwidth_bytes_per_s", true, 0, true, HUGE_VAL,
                        "bytes per second of device memory")) {
      d.memory_bandwidth_bytes_per_s = *x;
    }
    if (auto x = number(*m, "memory_bytes", true, 0, true, HUGE_VAL, "device memory capacity")) {
      d.memory_bytes = *x;
    }
    if (auto x = number(*m, "default_efficiency", false, 0, true, 1.0, "")) {
      d.default_efficiency = *x;
    }
    const auto eff = m->values.find("efficiency");
    if (eff != m->values.end()) {
      const std::string ekey = dotted(key, "efficiency");
      if (!eff->second.IsMap()) {
        report(line_of(eff->second), ekey,
               "must be a map of op kind (matmul, layernorm, ...) to a fraction, got " +
                   describe(eff->second));
      } else {
        for (const auto& entry : eff->second) {
          const std::string op = entry.first.IsScalar() ? entry.first.Scalar() : "?";
          const std::string full = dotted(ekey, printable(op));
          if (!is_op_kind(op)) {
            report(line_of(entry.first), full,
                   "unknown op kind (expected an IR op kind such as matmul, layernorm, softmax)");
          } else if (d.efficiency.count(op)) {
            report(line_of(entry.first), full, "duplicate key");
          } else if (auto x = number_value(entry.second, full, 0, true, 1.0)) {
            d.efficiency[op] = *x;
          }
        }
      }
    }
    return d;
  }

  // {alpha_s, beta_s_per_byte}, both required and >= 0.
  solver::LinkSpec link(const YAML::Node& node, const std::string& key) {
    solver::LinkSpec l;
    const auto m = open_map(node, key, kLinkKeys);
    if (!m) return l;
    if (auto x = number(*m, "alpha_s", true, 0, false, HUGE_VAL, "latency in seconds")) {
      l.alpha_s = *x;
    }
    if (auto x = number(*m, "beta_s_per_byte", true, 0, false, HUGE_VAL,
                        "seconds per byte = 1 / bandwidth")) {
      l.beta_s_per_byte = *x;
    }
    return l;
  }

  ClusterFile parse(const std::string& text, const std::string& default_name);

 private:
  static std::string format_bound(double x) {
    std::ostringstream out;
    out << x;
    return out.str();
  }
  static bool is_float_dtype(const std::string& name) {
    try {
      return solver::is_floating(solver::parse_dtype(name));
    } catch (const std::invalid_argument&) {
      return false;
    }
  }
  static bool is_op_kind(const std::string& name) {
    try {
      solver::parse_op_kind(name);
      return true;
    } catch (const std::invalid_argument&) {
      return false;
    }
  }

  std::string path_;
  std::vector<std::pair<int, std::string>> problems_;  // (line, text)
  std::size_t dropped_ = 0;
};

// Top level, one of two forms:
//   single group: name?, hosts, devices_per_host (0 = one per rank), device,
//                 links: {intra_host, inter_host}
//   multi group:  name?, groups: [{name?, hosts, devices_per_host, device, intra_host}, ...],
//                 links: {inter_host}
ClusterFile Parser::parse(const std::string& text, const std::string& default_name) {
  ClusterFile file;
  file.spec.name = default_name;
  if (text.size() > kMaxClusterFileBytes) {
    report(0, "",
           "the file has " + std::to_string(text.size()) + " bytes (more than " +
               std::to_string(kMaxClusterFileBytes) + "); is this a cluster file?");
    return file;
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    report(e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "YAML syntax error: " + e.msg);
    return file;
  }
  if (!root.IsMap()) {
    report(line_of(root), "",
           "the top level must be a map (name, hosts, devices_per_host, device, links; or name, "
           "groups, links), got " +
               describe(root));
    return file;
  }
  const auto top = open_map(root, "", kTopKeys);
  if (auto name = name_value(*top, "name", false, "")) file.spec.name = *name;
  file.multi_group = top->has("groups");

  // links: intra_host belongs to the single-group form only.
  std::optional<MapView> links;
  if (top->has("links")) {
    links = open_map(top->values.at("links"), "links", kLinksKeys);
  } else {
    missing(*top, "links", file.multi_group ? "{inter_host}" : "{intra_host, inter_host}");
  }
  if (links) {
    if (links->has("inter_host")) {
      file.spec.inter_host = link(links->values.at("inter_host"), "links.inter_host");
    } else {
      missing(*links, "inter_host", "{alpha_s, beta_s_per_byte} between hosts");
    }
  }

  if (!file.multi_group) {
    solver::HostGroup g;
    g.name = "group0";
    if (auto x = integer(*top, "hosts", 1, kMaxDevices, "the number of hosts")) g.hosts = *x;
    if (auto x = integer(*top, "devices_per_host", 0, kMaxDevices,
                         "devices per host, 0 for one per MPI rank")) {
      g.devices_per_host = *x;
    }
    if (top->has("device")) {
      g.device = device(top->values.at("device"), "device");
    } else {
      missing(*top, "device", "{kind, peak_flops, memory_bandwidth_bytes_per_s, memory_bytes}");
    }
    if (links) {
      if (links->has("intra_host")) {
        g.intra_host = link(links->values.at("intra_host"), "links.intra_host");
      } else {
        missing(*links, "intra_host", "{alpha_s, beta_s_per_byte} between devices of a host");
      }
    }
    if (g.hosts * g.devices_per_host > kMaxDevices) {
      report(line_of(root), "",
             "hosts x devices_per_host = " + std::to_string(g.hosts * g.devices_per_host) +
                 " devices is more than " + std::to_string(kMaxDevices));
    }
    file.spec.groups.push_back(g);
    return file;
  }

  // multi-group form: the shape, device and intra-host link live in each group.
  for (const char* name : {"hosts", "devices_per_host", "device"}) {
    if (top->has(name)) {
      report(top->key_lines.at(name), name, "not allowed with groups (each group has its own)");
    }
  }
  if (links && links->has("intra_host")) {
    report(links->key_lines.at("intra_host"), "links.intra_host",
           "not allowed with groups (each group has its own intra_host)");
  }
  const YAML::Node groups = top->values.at("groups");
  if (!groups.IsSequence() || groups.size() == 0) {
    report(line_of(groups), "groups",
           "must be a non-empty list of host groups, got " + describe(groups));
    return file;
  }
  std::map<std::string, int> name_lines;
  std::int64_t total = 0;
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const std::string key = "groups[" + std::to_string(i) + "]";
    solver::HostGroup g;
    g.name = "group" + std::to_string(i);
    const auto m = open_map(groups[i], key, kGroupKeys);
    if (!m) continue;
    if (auto name = name_value(*m, "name", false, "")) {
      g.name = *name;
      const int line = line_of(m->values.at("name"));
      if (name_lines.count(g.name)) {
        report(line, dotted(key, "name"),
               in_quotes(g.name) + " is also the name of the group on line " +
                   std::to_string(name_lines[g.name]));
      }
      name_lines.emplace(g.name, line);
    }
    if (auto x = integer(*m, "hosts", 1, kMaxDevices, "the number of hosts")) g.hosts = *x;
    if (auto x = integer(*m, "devices_per_host", 1, kMaxDevices, "devices per host")) {
      g.devices_per_host = *x;
    }
    if (m->has("device")) {
      g.device = device(m->values.at("device"), dotted(key, "device"));
    } else {
      missing(*m, "device", "{kind, peak_flops, memory_bandwidth_bytes_per_s, memory_bytes}");
    }
    if (m->has("intra_host")) {
      g.intra_host = link(m->values.at("intra_host"), dotted(key, "intra_host"));
    } else {
      missing(*m, "intra_host", "{alpha_s, beta_s_per_byte} between devices of a host");
    }
    total += g.hosts * g.devices_per_host;
    file.spec.groups.push_back(g);
  }
  if (total > kMaxDevices) {
    report(line_of(groups), "groups",
           std::to_string(total) + " devices in all is more than " + std::to_string(kMaxDevices));
  }
  return file;
}

// The path of preset `name`: itself when it names a .yaml file, else under configs/clusters/.
std::string preset_path(const std::string& name) {
  if (name.size() > 5 && name.substr(name.size() - 5) == ".yaml") return name;
  const std::string dir = find_config_dir();
  if (dir.empty()) {
    throw InputError("cluster.preset: '" + name +
                     "': no configs/ directory found (set STRATA_CONFIG_DIR)");
  }
  return dir + "/clusters/" + name + ".yaml";
}

std::string read_text(const std::string& name, const std::string& path) {
  const std::string where = path + ": cluster.preset '" + name + "': ";
  if (!fs::is_regular_file(path)) throw InputError(where + "no such preset file");
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || size > kMaxClusterFileBytes) {
    throw InputError(where + "cannot read the file or it is larger than " +
                     std::to_string(kMaxClusterFileBytes) + " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) throw InputError(where + "cannot read the file");
  return text.str();
}

ClusterFile load_cluster_file(const std::string& text, const std::string& path) {
  Parser parser(path);
  ClusterFile file;
  try {
    file = parser.parse(text, fs::path(path).stem().string());
  } catch (const YAML::Exception& e) {  // not expected: the walk checks types before converting
    parser.report(e.mark.line >= 0 ? e.mark.line + 1 : 0, "", "cannot read: " + e.msg);
  }
  parser.throw_if_problems();
  return file;
}

}  // namespace

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
  preset.path = preset_path(name);
  const ClusterFile file = load_cluster_file(read_text(name, preset.path), preset.path);
  const auto& groups = file.spec.groups;
  if (!file.multi_group) {
    preset.hosts = groups[0].hosts;
    preset.devices_per_host = groups[0].devices_per_host;
    preset.peak_flops = groups[0].device.peak_flops;
    return preset;
  }
  // Multi-group: the runtime only needs a shape whose product is the device count and one peak
  // per dtype for MFU, which over mixed devices is the device-weighted mean.
  std::int64_t hosts = 0;
  bool same_devices = true;
  for (const auto& g : groups) {
    hosts += g.hosts;
    same_devices = same_devices && g.devices_per_host == groups[0].devices_per_host;
  }
  const std::int64_t total = file.spec.total_devices();
  preset.hosts = same_devices ? hosts : 1;
  preset.devices_per_host = same_devices ? groups[0].devices_per_host : total;
  for (const auto& [dtype, first_peak] : groups[0].device.peak_flops) {
    (void)first_peak;
    double weighted = 0;
    bool everywhere = true;
    for (const auto& g : groups) {
      const auto it = g.device.peak_flops.find(dtype);
      if (it == g.device.peak_flops.end()) {
        everywhere = false;
        break;
      }
      weighted += it->second * static_cast<double>(g.hosts * g.devices_per_host);
    }
    if (everywhere) preset.peak_flops[dtype] = weighted / static_cast<double>(total);
  }
  return preset;
}

// Overrides (DESIGN.md section 7): cluster.hosts and cluster.devices_per_host replace a single
// group's shape when set (> 0). A devices_per_host of 0 left after that means one device per MPI
// rank: world_size / hosts devices, or 1 when not under MPI (world_size 0).
solver::ClusterSpec parse_cluster_spec(const std::string& text, const std::string& path,
                                       std::int64_t hosts_override, std::int64_t devices_override,
                                       std::int64_t world_size) {
  if (world_size < 0) {
    throw std::invalid_argument("parse_cluster_spec: world_size " + std::to_string(world_size) +
                                " must be >= 0");
  }
  ClusterFile file = load_cluster_file(text, path);
  std::vector<std::string> problems;
  const auto check_override = [&](std::int64_t value, const char* key) {
    if (value < 0 || value > kMaxDevices) {
      problems.push_back(path + ": " + key + ": " + std::to_string(value) +
                         " is out of range (must be >= 0 and <= " + std::to_string(kMaxDevices) +
                         ")");
    } else if (value > 0 && file.multi_group) {
      problems.push_back(path + ": " + key + ": " + std::to_string(value) +
                         ": overrides apply only to single-group presets; this one has " +
                         std::to_string(file.spec.groups.size()) + " groups (edit them instead)");
    }
  };
  check_override(hosts_override, "cluster.hosts");
  check_override(devices_override, "cluster.devices_per_host");
  if (!problems.empty()) throw InputError(problems);

  if (!file.multi_group) {
    solver::HostGroup& g = file.spec.groups[0];
    if (hosts_override > 0) g.hosts = hosts_override;
    if (devices_override > 0) g.devices_per_host = devices_override;
    if (g.devices_per_host == 0) {
      if (world_size == 0) {
        g.devices_per_host = 1;
      } else if (world_size % g.hosts != 0) {
        throw InputError(path +
                         ": devices_per_host: 0 (one device per MPI rank) needs a world "
                         "size that divides by hosts, but " +
                         std::to_string(world_size) + " rank(s) over " + std::to_string(g.hosts) +
                         " host(s) does not");
      } else {
        g.devices_per_host = world_size / g.hosts;
      }
    }
    if (g.hosts * g.devices_per_host > kMaxDevices) {
      throw InputError(path + ": cluster.hosts x cluster.devices_per_host = " +
                       std::to_string(g.hosts) + " x " + std::to_string(g.devices_per_host) +
                       " is more than " + std::to_string(kMaxDevices) + " devices");
    }
  }
  // The parser checked every field with its line; this is the planner's own check, kept as a
  // safety net so the two can never disagree silently.
  try {
    solver::validate(file.spec);
  } catch (const std::invalid_argument& e) {
    std::vector<std::string> lines;
    std::string rest = e.what();
    for (std::size_t at; (at = rest.find("; ")) != std::string::npos; rest = rest.substr(at + 2)) {
      lines.push_back(path + ": " + rest.substr(0, at));
    }
    lines.push_back(path + ": " + rest);
    throw InputError(lines);
  }
  return file.spec;
}

solver::ClusterSpec read_cluster_spec(const std::string& preset, std::int64_t hosts_override,
                                      std::int64_t devices_override, std::int64_t world_size) {
  const std::string path = preset_path(preset);
  return parse_cluster_spec(read_text(preset, path), path, hosts_override, devices_override,
                            world_size);
}

}  // namespace strata::app
