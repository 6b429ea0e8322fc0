// Plan JSON encode/decode, validation and the broadcast framing (plan.h). The JSON is an
// nlohmann::ordered_json so keys come out in the documented order, and phases_s keeps the order
// the phases ran. Decoding reads untrusted bytes: nesting depth, keys per object (which also
// bounds ordered_json's linear key lookup), duplicate keys, counts and string lengths are checked
// while parsing or before anything is allocated from them; every failure (nlohmann's included)
// becomes one std::invalid_argument line. Pure C++: no MPI, CUDA, Kokkos, HDF5 or YAML here.
#include "solver/plan/plan.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <tuple>

namespace strata::solver {
namespace {

using ojson = nlohmann::ordered_json;

// Bounds on decoded content: far above any real plan, far below memory trouble.
constexpr std::size_t kMaxTextBytes = std::size_t{1} << 30;
constexpr int kMaxDepth = 16;
constexpr std::size_t kMaxKeysPerObject = 256;
constexpr std::size_t kMaxStringBytes = 1024;
constexpr std::size_t kMaxLayoutBytes = 64;
constexpr std::size_t kMaxStages = std::size_t{1} << 16;
constexpr std::size_t kMaxOps = std::size_t{1} << 22;
constexpr std::size_t kMaxOpTensors = std::size_t{1} << 12;
constexpr std::size_t kMaxGroups = 1024;
constexpr std::int64_t kMaxHosts = std::int64_t{1} << 20;
constexpr std::int64_t kMaxDevicesPerHost = std::int64_t{1} << 20;
constexpr std::int64_t kMaxDevices = std::int64_t{1} << 30;
constexpr std::int64_t kMaxLayers = std::int64_t{1} << 20;
constexpr std::int64_t kMaxBatch = std::int64_t{1} << 40;
constexpr std::int64_t kMaxCount = std::int64_t{1} << 62;
constexpr std::uint64_t kMaxFrameLength = std::uint64_t{1} << 30;

[[noreturn]] void fail(const std::string& problem) { throw std::invalid_argument(problem); }

// Untrusted text for a one-line message: control bytes as \xNN, at most 64 bytes.
std::string printable(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char* kHex = "0123456789ABCDEF";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

std::string join(const std::string& where, const std::string& key) {
  return where.empty() ? key : where + "." + key;
}
std::string at(const std::string& where, std::size_t i) {
  return where + "[" + std::to_string(i) + "]";
}

// ---- decoding helpers: each names the field it reads in its error ------------------------------

const ojson& as_object(const ojson& j, const std::string& what) {
  if (!j.is_object()) fail(what + ": must be an object");
  return j;
}

const ojson& as_array(const ojson& j, const std::string& what, std::size_t max_size) {
  if (!j.is_array()) fail(what + ": must be an array");
  if (j.size() > max_size) {
    fail(what + ": more than " + std::to_string(max_size) + " entries");
  }
  return j;
}

// Rejects keys outside `allowed` and reports the first missing one of `required`.
void check_keys(const ojson& obj, const std::vector<const char*>& allowed,
                const std::vector<const char*>& required, const std::string& where) {
  as_object(obj, where.empty() ? "root" : where);
  for (const auto& item : obj.items()) {
    const bool known =
        std::any_of(allowed.begin(), allowed.end(), [&](const char* k) { return item.key() == k; });
    if (!known) fail(join(where, printable(item.key())) + ": unknown key");
  }
  for (const char* key : required) {
    if (!obj.contains(key)) fail(join(where, key) + ": missing");
  }
}

const ojson& field(const ojson& obj, const char* key) { return obj.find(key).value(); }

std::int64_t as_int(const ojson& j, const std::string& what, std::int64_t lo, std::int64_t hi) {
  std::int64_t v = 0;
  if (j.is_number_unsigned()) {
    const auto u = j.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(hi)) {
      fail(what + ": " + std::to_string(u) + " is out of range [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "]");
    }
    v = static_cast<std::int64_t>(u);
  } else if (j.is_number_integer()) {
    v = j.get<std::int64_t>();
  } else {
    fail(what + ": must be an integer");
  }
  if (v < lo || v > hi) {
    fail(what + ": " + std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " +
         std::to_string(hi) + "]");
  }
  return v;
}

// Any finite JSON number (integers too: a hand-written 0 is fine). Ranges are validate()'s.
double as_double(const ojson& j, const std::string& what) {
  if (!j.is_number()) fail(what + ": must be a number");
  const double v = j.get<double>();
  if (!std::isfinite(v)) fail(what + ": must be finite");
  return v;
}

bool as_bool(const ojson& j, const std::string& what) {
  if (!j.is_boolean()) fail(what + ": must be true or false");
  return j.get<bool>();
}

std::string as_string(const ojson& j, const std::string& what,
                      std::size_t max_bytes = kMaxStringBytes) {
  if (!j.is_string()) fail(what + ": must be a string");
  const auto& s = j.get_ref<const std::string&>();
  if (s.size() > max_bytes) {
    fail(what + ": longer than " + std::to_string(max_bytes) + " bytes");
  }
  return s;
}

// [a, b] of two integers.
std::pair<std::int64_t, std::int64_t> as_int_pair(const ojson& j, const std::string& what,
                                                  std::int64_t lo, std::int64_t hi) {
  as_array(j, what, 2);
  if (j.size() != 2) fail(what + ": must be a pair [a, b]");
  return {as_int(j[0], at(what, 0), lo, hi), as_int(j[1], at(what, 1), lo, hi)};
}

Layout as_layout(const ojson& j, const std::string& what) {
  const std::string text = as_string(j, what, kMaxLayoutBytes);
  // Only the notation's characters reach parse_layout, so its message stays one printable line.
  if (text.find_first_not_of("RS01,|P-") != std::string::npos) {
    fail(what + ": '" + printable(text) + "' is not a layout (R, S0, S1, S01 per dim; |P0...)");
  }
  try {
    return parse_layout(text);
  } catch (const std::invalid_argument& e) {
    fail(what + ": " + e.what());
  }
}

// Parses JSON text with the structural limits checked during parsing, so nothing deep, wide or
// duplicated is ever built.
ojson parse_limited(const std::string& text) {
  if (text.size() > kMaxTextBytes) fail("text larger than 1 GiB");
  // Keys seen in each open object (innermost last). Arrays need no entry: a key always belongs
  // to the innermost open object.
  auto open = std::make_shared<std::vector<std::set<std::string>>>();
  const ojson::parser_callback_t limits = [open](int depth, ojson::parse_event_t event,
                                                 ojson& parsed) {
    if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
    switch (event) {
      case ojson::parse_event_t::object_start:
        open->emplace_back();
        break;
      case ojson::parse_event_t::object_end:
        if (!open->empty()) open->pop_back();
        break;
      case ojson::parse_event_t::key: {
        if (open->empty()) fail("key outside an object");
        auto& keys = open->back();
        const std::string& key = parsed.get_ref<const std::string&>();
        if (keys.size() >= kMaxKeysPerObject) {
          fail("an object has more than " + std::to_string(kMaxKeysPerObject) + " keys");
        }
        if (!keys.insert(key).second) fail("duplicate key '" + printable(key) + "'");
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return ojson::parse(text, limits);
  } catch (const ojson::exception& e) {
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    fail(msg);
  }
}

// Runs `body`, turning any error into one line starting with `prefix`.
template <typename F>
auto with_prefix(const char* prefix, F body) -> decltype(body()) {
  try {
    return body();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(prefix + std::string(e.what()));
  } catch (const std::out_of_range& e) {
    throw std::invalid_argument(prefix + std::string(e.what()));
  } catch (const ojson::exception& e) {  // nlohmann's own errors (same type for all its json)
    throw std::invalid_argument(prefix + std::string(e.what()));
  }
}

// ---- ClusterSpec -------------------------------------------------------------------------------

ojson link_to_json(const LinkSpec& link) {
  ojson j = ojson::object();
  j["alpha_s"] = link.alpha_s;
  j["beta_s_per_byte"] = link.beta_s_per_byte;
  return j;
}

ojson cluster_to_json(const ClusterSpec& cluster) {
  ojson groups = ojson::array();
  for (const HostGroup& g : cluster.groups) {
    ojson device = ojson::object();
    device["kind"] = g.device.kind;
    device["peak_flops"] = ojson::object();
    for (const auto& [dtype, flops] : g.device.peak_flops) device["peak_flops"][dtype] = flops;
    device["memory_bandwidth_bytes_per_s"] = g.device.memory_bandwidth_bytes_per_s;
    device["memory_bytes"] = g.device.memory_bytes;
    device["default_efficiency"] = g.device.default_efficiency;
    device["efficiency"] = ojson::object();
    for (const auto& [kind, value] : g.device.efficiency) device["efficiency"][kind] = value;
    ojson jg = ojson::object();
    jg["name"] = g.name;
    jg["hosts"] = g.hosts;
    jg["devices_per_host"] = g.devices_per_host;
    jg["device"] = std::move(device);
    jg["intra_host"] = link_to_json(g.intra_host);
    groups.push_back(std::move(jg));
  }
  ojson j = ojson::object();
  j["name"] = cluster.name;
  j["groups"] = std::move(groups);
  j["links"] = ojson::object();
  j["links"]["inter_host"] = link_to_json(cluster.inter_host);
  return j;
}

LinkSpec link_from_json(const ojson& j, const std::string& where) {
  check_keys(j, {"alpha_s", "beta_s_per_byte"}, {"alpha_s", "beta_s_per_byte"}, where);
  LinkSpec link;
  link.alpha_s = as_double(field(j, "alpha_s"), join(where, "alpha_s"));
  link.beta_s_per_byte = as_double(field(j, "beta_s_per_byte"), join(where, "beta_s_per_byte"));
  return link;
}

std::map<std::string, double> number_map(const ojson& j, const std::string& where) {
  as_object(j, where);
  std::map<std::string, double> out;
  for (const auto& item : j.items()) {
    const std::string what = join(where, printable(item.key()));
    if (item.key().empty() || item.key().size() > kMaxStringBytes) fail(what + ": bad name");
    out[item.key()] = as_double(item.value(), what);
  }
  return out;
}

// Shape bounds validate(ClusterSpec) does not have: they keep every device count in int64 and
// every later allocation reasonable.
void check_cluster_bounds(const ClusterSpec& cluster, const std::string& where) {
  if (cluster.groups.size() > kMaxGroups) {
    fail(join(where, "groups") + ": more than " + std::to_string(kMaxGroups) + " groups");
  }
  if (cluster.name.size() > kMaxStringBytes) fail(join(where, "name") + ": too long");
  std::int64_t total = 0;
  for (std::size_t g = 0; g < cluster.groups.size(); ++g) {
    const HostGroup& group = cluster.groups[g];
    const std::string w = join(where, at("groups", g));
    if (group.hosts < 1 || group.hosts > kMaxHosts) {
      fail(w + ".hosts: " + std::to_string(group.hosts) + " is out of range [1, " +
           std::to_string(kMaxHosts) + "]");
    }
    if (group.devices_per_host < 1 || group.devices_per_host > kMaxDevicesPerHost) {
      fail(w + ".devices_per_host: " + std::to_string(group.devices_per_host) +
           " is out of range [1, " + std::to_string(kMaxDevicesPerHost) + "]");
    }
    if (group.name.size() > kMaxStringBytes || group.device.kind.size() > kMaxStringBytes) {
      fail(w + ": name or device kind longer than " + std::to_string(kMaxStringBytes) + " bytes");
    }
    total += group.hosts * group.devices_per_host;  // <= 2^40 each, <= 2^50 in all
    if (total > kMaxDevices) {
      fail(join(where, "groups") + ": more than " + std::to_string(kMaxDevices) + " devices");
    }
  }
}

void validate_cluster(const ClusterSpec& cluster, const std::string& where) {
  check_cluster_bounds(cluster, where);
  try {
    validate(cluster);
  } catch (const std::invalid_argument& e) {
    fail(where.empty() ? std::string(e.what()) : where + ": " + e.what());
  }
}

ClusterSpec cluster_from_json(const ojson& j, const std::string& where) {
  check_keys(j, {"name", "groups", "links"}, {"name", "groups", "links"}, where);
  ClusterSpec cluster;
  cluster.name = as_string(field(j, "name"), join(where, "name"));
  const std::string gw = join(where, "groups");
  const ojson& groups = as_array(field(j, "groups"), gw, kMaxGroups);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const std::string w = at(gw, g);
    const ojson& jg = groups[g];
    check_keys(jg, {"name", "hosts", "devices_per_host", "device", "intra_host"},
               {"name", "hosts", "devices_per_host", "device", "intra_host"}, w);
    HostGroup group;
    group.name = as_string(field(jg, "name"), w + ".name");
    group.hosts = as_int(field(jg, "hosts"), w + ".hosts", 1, kMaxHosts);
    group.devices_per_host =
        as_int(field(jg, "devices_per_host"), w + ".devices_per_host", 1, kMaxDevicesPerHost);
    const std::string dw = w + ".device";
    const ojson& jd = field(jg, "device");
    check_keys(jd,
               {"kind", "peak_flops", "memory_bandwidth_bytes_per_s", "memory_bytes",
                "default_efficiency", "efficiency"},
               {"kind", "peak_flops", "memory_bandwidth_bytes_per_s", "memory_bytes"}, dw);
    group.device.kind = as_string(field(jd, "kind"), dw + ".kind");
    group.device.peak_flops = number_map(field(jd, "peak_flops"), dw + ".peak_flops");
    group.device.memory_bandwidth_bytes_per_s =
        as_double(field(jd, "memory_bandwidth_bytes_per_s"), dw + ".memory_bandwidth_bytes_per_s");
    group.device.memory_bytes = as_double(field(jd, "memory_bytes"), dw + ".memory_bytes");
    if (jd.contains("default_efficiency")) {
      group.device.default_efficiency =
          as_double(field(jd, "default_efficiency"), dw + ".default_efficiency");
    }
    if (jd.contains("efficiency")) {
      group.device.efficiency = number_map(field(jd, "efficiency"), dw + ".efficiency");
    }
    group.intra_host = link_from_json(field(jg, "intra_host"), w + ".intra_host");
    cluster.groups.push_back(std::move(group));
  }
  const std::string lw = join(where, "links");
  const ojson& links = field(j, "links");
  check_keys(links, {"inter_host"}, {"inter_host"}, lw);
  cluster.inter_host = link_from_json(field(links, "inter_host"), lw + ".inter_host");
  validate_cluster(cluster, where);
  return cluster;
}

// ---- Plan --------------------------------------------------------------------------------------

void check_nonneg(double v, const std::string& what) {
  if (!std::isfinite(v) || v < 0) fail(what + ": must be finite and >= 0");
}

void check_text(const std::string& s, const std::string& what, bool non_empty) {
  if (non_empty && s.empty()) fail(what + ": must not be empty");
  if (s.size() > kMaxStringBytes) {
    fail(what + ": longer than " + std::to_string(kMaxStringBytes) + " bytes");
  }
}

ojson layouts_to_json(const std::vector<Layout>& layouts) {
  ojson j = ojson::array();
  for (const Layout& l : layouts) j.push_back(to_string(l));
  return j;
}

ojson stage_to_json(const PlanStage& s) {
  ojson ops = ojson::array();
  for (const PlanOp& op : s.ops) {
    ojson jo = ojson::object();
    jo["op"] = op.op;
    jo["strategy"] = op.strategy;
    if (!op.input_layouts.empty()) jo["input_layouts"] = layouts_to_json(op.input_layouts);
    if (!op.output_layouts.empty()) jo["output_layouts"] = layouts_to_json(op.output_layouts);
    ops.push_back(std::move(jo));
  }
  const StagePrediction& p = s.predicted;
  ojson pred = ojson::object();
  pred["time_per_microbatch_s"] = p.time_per_microbatch_s;
  pred["forward_s"] = p.forward_s;
  pred["backward_s"] = p.backward_s;
  pred["transfer_s"] = p.transfer_s;
  pred["tail_s"] = p.tail_s;
  pred["memory_bytes_per_device"] = p.memory_bytes_per_device;
  pred["static_memory_bytes"] = p.static_memory_bytes;
  pred["activation_memory_bytes"] = p.activation_memory_bytes;
  ojson j = ojson::object();
  j["layers"] = ojson::array({s.layer_begin, s.layer_end});
  j["devices"] = s.devices;
  j["group"] = s.group;
  j["submesh"] = ojson::array({s.submesh.hosts, s.submesh.devices});
  j["logical_mesh"] = ojson::array({s.logical_mesh.d0, s.logical_mesh.d1});
  j["recompute"] = s.recompute;
  j["summary"] = s.summary;
  j["ops"] = std::move(ops);
  j["predicted"] = std::move(pred);
  return j;
}

ojson plan_to_json(const Plan& plan) {
  const BytesPerStep& b = plan.predicted.bytes_per_step;
  ojson bytes = ojson::object();
  bytes["all_reduce"] = b.all_reduce;
  bytes["all_gather"] = b.all_gather;
  bytes["reduce_scatter"] = b.reduce_scatter;
  bytes["all_to_all"] = b.all_to_all;
  bytes["p2p"] = b.p2p;
  ojson predicted = ojson::object();
  predicted["iteration_s"] = plan.predicted.iteration_s;
  predicted["tflops_per_device"] = plan.predicted.tflops_per_device;
  predicted["memory_bytes_per_device"] = plan.predicted.memory_bytes_per_device;
  predicted["bytes_per_step"] = std::move(bytes);
  ojson phases = ojson::object();
  for (const auto& [name, seconds] : plan.search.phases_s) phases[name] = seconds;
  ojson search = ojson::object();
  search["wall_s"] = plan.search.wall_s;
  search["ilps_solved"] = plan.search.ilps_solved;
  search["phases_s"] = std::move(phases);
  ojson stages = ojson::array();
  for (const PlanStage& s : plan.stages) stages.push_back(stage_to_json(s));
  ojson j = ojson::object();
  j["format"] = kPlanFormat;
  j["version"] = kPlanVersion;
  j["method"] = plan.method;
  j["model_hash"] = plan.model_hash;
  j["config_hash"] = plan.config_hash;
  j["cluster"] = cluster_to_json(plan.cluster);
  j["global_batch"] = plan.global_batch;
  j["micro_batches"] = plan.micro_batches;
  j["schedule"] = plan.schedule;
  j["stages"] = std::move(stages);
  j["predicted"] = std::move(predicted);
  j["search"] = std::move(search);
  return j;
}

// Pretty printing as dump(2), except that arrays of scalars stay on one line ("layers": [0, 12],
// "devices": [0, 1, 2, 3]), which keeps plan.json readable. Scalars are nlohmann's own dump, so
// numbers keep their round-trip digits and strings their escaping.
void pretty(const ojson& j, int indent, std::string& out) {
  const std::string pad(static_cast<std::size_t>(indent) + 2, ' ');
  if (j.is_object() && !j.empty()) {
    out += "{\n";
    bool first = true;
    for (const auto& item : j.items()) {
      out += first ? "" : ",\n";
      first = false;
      out += pad + ojson(item.key()).dump() + ": ";
      pretty(item.value(), indent + 2, out);
    }
    out += "\n" + std::string(static_cast<std::size_t>(indent), ' ') + "}";
  } else if (j.is_array() && !j.empty()) {
    const bool flat =
        std::none_of(j.begin(), j.end(), [](const ojson& e) { return e.is_structured(); });
    out += flat ? "[" : "[\n";
    for (std::size_t i = 0; i < j.size(); ++i) {
      if (i > 0) out += flat ? ", " : ",\n";
      if (!flat) out += pad;
      pretty(j[i], indent + 2, out);
    }
    out += flat ? "]" : "\n" + std::string(static_cast<std::size_t>(indent), ' ') + "]";
  } else {
    out += j.dump();
  }
}

std::string dump(const ojson& j, const char* who) {
  try {
    std::string out;
    pretty(j, 0, out);
    out += "\n";
    return out;
  } catch (const ojson::exception& e) {  // invalid UTF-8 in a string
    throw std::invalid_argument(std::string(who) + ": " + e.what());
  }
}

std::vector<Layout> layouts_from_json(const ojson& j, const std::string& what) {
  as_array(j, what, kMaxOpTensors);
  std::vector<Layout> out;
  out.reserve(j.size());
  for (std::size_t i = 0; i < j.size(); ++i) out.push_back(as_layout(j[i], at(what, i)));
  return out;
}

PlanStage stage_from_json(const ojson& j, const std::string& w) {
  check_keys(
      j,
      {"layers", "devices", "group", "submesh", "logical_mesh", "recompute", "summary", "ops",
       "predicted"},
      {"layers", "devices", "group", "submesh", "logical_mesh", "recompute", "ops", "predicted"},
      w);
  PlanStage s;
  std::tie(s.layer_begin, s.layer_end) =
      as_int_pair(field(j, "layers"), w + ".layers", 0, kMaxLayers);
  const ojson& devices =
      as_array(field(j, "devices"), w + ".devices", static_cast<std::size_t>(kMaxDevices));
  s.devices.reserve(devices.size());
  for (std::size_t i = 0; i < devices.size(); ++i) {
    s.devices.push_back(as_int(devices[i], at(w + ".devices", i), 0, kMaxDevices - 1));
  }
  s.group = as_int(field(j, "group"), w + ".group", 0, static_cast<std::int64_t>(kMaxGroups));
  std::tie(s.submesh.hosts, s.submesh.devices) =
      as_int_pair(field(j, "submesh"), w + ".submesh", 1, kMaxDevicesPerHost);
  std::tie(s.logical_mesh.d0, s.logical_mesh.d1) =
      as_int_pair(field(j, "logical_mesh"), w + ".logical_mesh", 1, kMaxDevices);
  s.recompute = as_bool(field(j, "recompute"), w + ".recompute");
  if (j.contains("summary")) s.summary = as_string(field(j, "summary"), w + ".summary");
  const ojson& ops = as_array(field(j, "ops"), w + ".ops", kMaxOps);
  s.ops.reserve(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const std::string ow = at(w + ".ops", i);
    const ojson& jo = ops[i];
    check_keys(jo, {"op", "strategy", "input_layouts", "output_layouts"}, {"op", "strategy"}, ow);
    PlanOp op;
    op.op = as_string(field(jo, "op"), ow + ".op");
    op.strategy = as_string(field(jo, "strategy"), ow + ".strategy");
    if (jo.contains("input_layouts")) {
      op.input_layouts = layouts_from_json(field(jo, "input_layouts"), ow + ".input_layouts");
    }
    if (jo.contains("output_layouts")) {
      op.output_layouts = layouts_from_json(field(jo, "output_layouts"), ow + ".output_layouts");
    }
    s.ops.push_back(std::move(op));
  }
  const std::string pw = w + ".predicted";
  const ojson& jp = field(j, "predicted");
  const std::vector<const char*> keys = {"time_per_microbatch_s",
                                         "forward_s",
                                         "backward_s",
                                         "transfer_s",
                                         "tail_s",
                                         "memory_bytes_per_device",
                                         "static_memory_bytes",
                                         "activation_memory_bytes"};
  check_keys(jp, keys, {"time_per_microbatch_s", "memory_bytes_per_device"}, pw);
  StagePrediction& p = s.predicted;
  double* slots[] = {&p.time_per_microbatch_s,
                     &p.forward_s,
                     &p.backward_s,
                     &p.transfer_s,
                     &p.tail_s,
                     &p.memory_bytes_per_device,
                     &p.static_memory_bytes,
                     &p.activation_memory_bytes};
  for (std::size_t k = 0; k < keys.size(); ++k) {
    if (jp.contains(keys[k])) *slots[k] = as_double(field(jp, keys[k]), join(pw, keys[k]));
  }
  return s;
}

Plan plan_from_json(const ojson& j) {
  check_keys(j,
             {"format", "version", "method", "model_hash", "config_hash", "cluster", "global_batch",
              "micro_batches", "schedule", "stages", "predicted", "search"},
             {"format", "version"}, "");
  // Format and version first: a newer plan says so rather than failing on a renamed field.
  const std::string format = as_string(field(j, "format"), "format");
  if (format != kPlanFormat) {
    fail("format: '" + printable(format) + "' is not '" + kPlanFormat + "'");
  }
  const std::int64_t version = as_int(field(j, "version"), "version", 1, kMaxCount);
  if (version != kPlanVersion) {
    fail("version: " + std::to_string(version) + " is newer than this Strata reads (" +
         std::to_string(kPlanVersion) + ")");
  }
  check_keys(j,
             {"format", "version", "method", "model_hash", "config_hash", "cluster", "global_batch",
              "micro_batches", "schedule", "stages", "predicted", "search"},
             {"method", "cluster", "global_batch", "micro_batches", "schedule", "stages",
              "predicted", "search"},
             "");
  Plan plan;
  plan.method = as_string(field(j, "method"), "method");
  if (j.contains("model_hash")) plan.model_hash = as_string(field(j, "model_hash"), "model_hash");
  if (j.contains("config_hash")) {
    plan.config_hash = as_string(field(j, "config_hash"), "config_hash");
  }
  plan.cluster = cluster_from_json(field(j, "cluster"), "cluster");
  plan.global_batch = as_int(field(j, "global_batch"), "global_batch", 1, kMaxBatch);
  plan.micro_batches = as_int(field(j, "micro_batches"), "micro_batches", 1, kMaxBatch);
  plan.schedule = as_string(field(j, "schedule"), "schedule");
  const ojson& stages = as_array(field(j, "stages"), "stages", kMaxStages);
  plan.stages.reserve(stages.size());
  for (std::size_t i = 0; i < stages.size(); ++i) {
    plan.stages.push_back(stage_from_json(stages[i], at("stages", i)));
  }

  const ojson& jp = field(j, "predicted");
  check_keys(jp, {"iteration_s", "tflops_per_device", "memory_bytes_per_device", "bytes_per_step"},
             {"iteration_s", "tflops_per_device", "memory_bytes_per_device", "bytes_per_step"},
             "predicted");
  plan.predicted.iteration_s = as_double(field(jp, "iteration_s"), "predicted.iteration_s");
  plan.predicted.tflops_per_device =
      as_double(field(jp, "tflops_per_device"), "predicted.tflops_per_device");
  const ojson& mem = as_array(field(jp, "memory_bytes_per_device"),
                              "predicted.memory_bytes_per_device", kMaxStages);
  for (std::size_t i = 0; i < mem.size(); ++i) {
    plan.predicted.memory_bytes_per_device.push_back(
        as_double(mem[i], at("predicted.memory_bytes_per_device", i)));
  }
  const ojson& jb = field(jp, "bytes_per_step");
  const std::vector<const char*> kinds = {"all_reduce", "all_gather", "reduce_scatter",
                                          "all_to_all", "p2p"};
  check_keys(jb, kinds, kinds, "predicted.bytes_per_step");
  BytesPerStep& b = plan.predicted.bytes_per_step;
  double* slots[] = {&b.all_reduce, &b.all_gather, &b.reduce_scatter, &b.all_to_all, &b.p2p};
  for (std::size_t k = 0; k < kinds.size(); ++k) {
    *slots[k] = as_double(field(jb, kinds[k]), join("predicted.bytes_per_step", kinds[k]));
  }

  const ojson& js = field(j, "search");
  check_keys(js, {"wall_s", "ilps_solved", "phases_s"}, {"wall_s", "ilps_solved", "phases_s"},
             "search");
  plan.search.wall_s = as_double(field(js, "wall_s"), "search.wall_s");
  plan.search.ilps_solved = as_int(field(js, "ilps_solved"), "search.ilps_solved", 0, kMaxCount);
  const ojson& phases = as_object(field(js, "phases_s"), "search.phases_s");
  for (const auto& item : phases.items()) {
    plan.search.phases_s.emplace_back(
        item.key(), as_double(item.value(), "search.phases_s." + printable(item.key())));
  }
  validate(plan);
  return plan;
}

std::string bytes_to_string(const std::uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace

const std::vector<std::string>& plan_methods() {
  static const std::vector<std::string> kMethods = {"auto",       "data-parallel", "zero2",
                                                    "zero3",      "megatron",      "megatron-best",
                                                    "intra-only", "inter-only",    "manual"};
  return kMethods;
}

void validate(const Plan& plan) {
  const auto& methods = plan_methods();
  if (std::find(methods.begin(), methods.end(), plan.method) == methods.end()) {
    fail("method: '" + printable(plan.method) +
         "' is not a plan method (auto, data-parallel, "
         "zero2, zero3, megatron, megatron-best, intra-only, inter-only, manual)");
  }
  check_text(plan.model_hash, "model_hash", false);
  check_text(plan.config_hash, "config_hash", false);
  validate_cluster(plan.cluster, "cluster");
  if (plan.global_batch < 1 || plan.global_batch > kMaxBatch) {
    fail("global_batch: " + std::to_string(plan.global_batch) + " is out of range [1, 2^40]");
  }
  if (plan.micro_batches < 1 || plan.micro_batches > plan.global_batch ||
      plan.global_batch % plan.micro_batches != 0) {
    fail("micro_batches: " + std::to_string(plan.micro_batches) + " must divide global_batch " +
         std::to_string(plan.global_batch));
  }
  if (plan.schedule != "1f1b" && plan.schedule != "gpipe") {
    fail("schedule: '" + printable(plan.schedule) + "' is not 1f1b or gpipe");
  }
  if (plan.stages.empty()) fail("stages: a plan needs at least one stage");
  if (plan.stages.size() > kMaxStages) fail("stages: too many");

  const std::int64_t total_devices = plan.cluster.total_devices();
  std::int64_t assigned = 0;
  std::int64_t next_layer = 0;
  for (std::size_t i = 0; i < plan.stages.size(); ++i) {
    const PlanStage& s = plan.stages[i];
    const std::string w = at("stages", i);
    if (s.layer_begin != next_layer) {
      fail(w + ".layers: begins at " + std::to_string(s.layer_begin) + ", expected " +
           std::to_string(next_layer) + " (stages must cover the layers contiguously from 0)");
    }
    if (s.layer_end <= s.layer_begin || s.layer_end > kMaxLayers) {
      fail(w + ".layers: [" + std::to_string(s.layer_begin) + ", " + std::to_string(s.layer_end) +
           ") is empty or out of range");
    }
    next_layer = s.layer_end;
    if (s.group < 0 || s.group >= static_cast<std::int64_t>(plan.cluster.groups.size())) {
      fail(w + ".group: " + std::to_string(s.group) + " is not a group of the cluster (it has " +
           std::to_string(plan.cluster.groups.size()) + ")");
    }
    const HostGroup& group = plan.cluster.groups[static_cast<std::size_t>(s.group)];
    if (s.submesh.hosts < 1 || s.submesh.hosts > group.hosts || s.submesh.devices < 1 ||
        s.submesh.devices > group.devices_per_host) {
      fail(w + ".submesh: [" + std::to_string(s.submesh.hosts) + ", " +
           std::to_string(s.submesh.devices) + "] does not fit group '" + printable(group.name) +
           "' (" + std::to_string(group.hosts) + " x " + std::to_string(group.devices_per_host) +
           ")");
    }
    const std::int64_t size = s.submesh.hosts * s.submesh.devices;
    if (s.logical_mesh.d0 < 1 || s.logical_mesh.d1 < 1 || s.logical_mesh.d0 > size ||
        s.logical_mesh.d1 > size || s.logical_mesh.d0 * s.logical_mesh.d1 != size) {
      fail(w + ".logical_mesh: [" + std::to_string(s.logical_mesh.d0) + ", " +
           std::to_string(s.logical_mesh.d1) + "] does not have the sub-mesh's " +
           std::to_string(size) + " devices");
    }
    if (static_cast<std::int64_t>(s.devices.size()) != size) {
      fail(w + ".devices: " + std::to_string(s.devices.size()) + " devices for a sub-mesh of " +
           std::to_string(size));
    }
    // The devices lie in the group and fill exactly submesh.hosts hosts, submesh.devices each.
    const std::int64_t first = plan.cluster.first_device_of_group(s.group);
    const std::int64_t end = first + group.hosts * group.devices_per_host;
    std::map<std::int64_t, std::int64_t> per_host;
    for (std::int64_t d : s.devices) {
      if (d < first || d >= end) {
        fail(w + ".devices: device " + std::to_string(d) + " is not in group '" +
             printable(group.name) + "' (ranks " + std::to_string(first) + "-" +
             std::to_string(end - 1) + ")");
      }
      ++per_host[(d - first) / group.devices_per_host];
    }
    std::vector<std::int64_t> sorted = s.devices;
    std::sort(sorted.begin(), sorted.end());
    const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
    if (dup != sorted.end()) {
      fail(w + ".devices: device " + std::to_string(*dup) + " appears twice");
    }
    bool shape_ok = static_cast<std::int64_t>(per_host.size()) == s.submesh.hosts;
    for (const auto& [host, count] : per_host) shape_ok = shape_ok && count == s.submesh.devices;
    if (!shape_ok) {
      fail(w + ".devices: do not span " + std::to_string(s.submesh.hosts) + " host(s) with " +
           std::to_string(s.submesh.devices) + " device(s) each, as submesh says");
    }
    assigned += size;
    check_text(s.summary, w + ".summary", false);
    for (std::size_t k = 0; k < s.ops.size(); ++k) {
      const PlanOp& op = s.ops[k];
      const std::string ow = at(w + ".ops", k);
      check_text(op.op, ow + ".op", true);
      check_text(op.strategy, ow + ".strategy", true);
      for (const Layout& l : op.input_layouts) {
        if (!is_valid(l)) fail(ow + ".input_layouts: invalid layout");
      }
      for (const Layout& l : op.output_layouts) {
        if (!is_valid(l)) fail(ow + ".output_layouts: invalid layout");
      }
    }
    const StagePrediction& p = s.predicted;
    const std::string pw = w + ".predicted.";
    check_nonneg(p.time_per_microbatch_s, pw + "time_per_microbatch_s");
    check_nonneg(p.forward_s, pw + "forward_s");
    check_nonneg(p.backward_s, pw + "backward_s");
    check_nonneg(p.transfer_s, pw + "transfer_s");
    check_nonneg(p.tail_s, pw + "tail_s");
    check_nonneg(p.memory_bytes_per_device, pw + "memory_bytes_per_device");
    check_nonneg(p.static_memory_bytes, pw + "static_memory_bytes");
    check_nonneg(p.activation_memory_bytes, pw + "activation_memory_bytes");
  }
  // Every device of the cluster in exactly one stage (a rank without a stage would idle, one in
  // two stages would deadlock).
  if (assigned != total_devices) {
    fail("stages: " + std::to_string(assigned) + " devices assigned; the cluster has " +
         std::to_string(total_devices) + " (every device belongs to exactly one stage)");
  }
  std::vector<std::pair<std::int64_t, std::size_t>> owner;  // (device, stage)
  owner.reserve(static_cast<std::size_t>(assigned));
  for (std::size_t i = 0; i < plan.stages.size(); ++i) {
    for (std::int64_t d : plan.stages[i].devices) owner.emplace_back(d, i);
  }
  std::sort(owner.begin(), owner.end());
  for (std::size_t k = 1; k < owner.size(); ++k) {
    if (owner[k].first == owner[k - 1].first) {
      fail(at("stages", owner[k].second) + ".devices: device " + std::to_string(owner[k].first) +
           " is also in stage " + std::to_string(owner[k - 1].second));
    }
  }

  const PlanPrediction& pr = plan.predicted;
  check_nonneg(pr.iteration_s, "predicted.iteration_s");
  check_nonneg(pr.tflops_per_device, "predicted.tflops_per_device");
  if (pr.memory_bytes_per_device.size() != plan.stages.size()) {
    fail("predicted.memory_bytes_per_device: " + std::to_string(pr.memory_bytes_per_device.size()) +
         " entries for " + std::to_string(plan.stages.size()) + " stages");
  }
  for (std::size_t i = 0; i < pr.memory_bytes_per_device.size(); ++i) {
    check_nonneg(pr.memory_bytes_per_device[i], at("predicted.memory_bytes_per_device", i));
  }
  const BytesPerStep& b = pr.bytes_per_step;
  check_nonneg(b.all_reduce, "predicted.bytes_per_step.all_reduce");
  check_nonneg(b.all_gather, "predicted.bytes_per_step.all_gather");
  check_nonneg(b.reduce_scatter, "predicted.bytes_per_step.reduce_scatter");
  check_nonneg(b.all_to_all, "predicted.bytes_per_step.all_to_all");
  check_nonneg(b.p2p, "predicted.bytes_per_step.p2p");
  check_nonneg(plan.search.wall_s, "search.wall_s");
  if (plan.search.ilps_solved < 0) fail("search.ilps_solved: must be >= 0");
  if (plan.search.phases_s.size() > kMaxKeysPerObject) {
    fail("search.phases_s: more than " + std::to_string(kMaxKeysPerObject) + " phases");
  }
  std::set<std::string> names;
  for (const auto& [name, seconds] : plan.search.phases_s) {
    check_text(name, "search.phases_s: a phase name", true);
    if (!names.insert(name).second) {
      fail("search.phases_s." + printable(name) + ": phase listed twice");
    }
    check_nonneg(seconds, "search.phases_s." + printable(name));
  }
}

std::string encode_plan_json(const Plan& plan) {
  with_prefix("encode_plan_json: ", [&] { validate(plan); });
  return dump(plan_to_json(plan), "encode_plan_json");
}

Plan decode_plan_json(const std::string& text) {
  return with_prefix("plan JSON: ", [&] { return plan_from_json(parse_limited(text)); });
}

std::string encode_cluster_json(const ClusterSpec& cluster) {
  with_prefix("encode_cluster_json: ", [&] { validate_cluster(cluster, ""); });
  return dump(cluster_to_json(cluster), "encode_cluster_json");
}

ClusterSpec decode_cluster_json(const std::string& text) {
  return with_prefix("cluster JSON: ", [&] { return cluster_from_json(parse_limited(text), ""); });
}

std::vector<std::uint8_t> frame_plan(const Plan& plan) {
  const std::string json = encode_plan_json(plan);
  std::vector<std::uint8_t> out(kPlanFrameHeaderBytes + json.size());
  for (int i = 0; i < 4; ++i) out[i] = static_cast<std::uint8_t>(kPlanFrameMagic[i]);
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<std::uint8_t>(kPlanFrameVersion >> (8 * i));
  const auto length = static_cast<std::uint64_t>(json.size());
  for (int i = 0; i < 8; ++i) out[8 + i] = static_cast<std::uint8_t>(length >> (8 * i));
  std::copy(json.begin(), json.end(), out.begin() + kPlanFrameHeaderBytes);
  return out;
}

Plan unframe_plan(const std::uint8_t* data, std::size_t size) {
  const std::string prefix = "plan frame: ";
  if (data == nullptr && size != 0) throw std::invalid_argument(prefix + "null data");
  if (size < kPlanFrameHeaderBytes) {
    throw std::invalid_argument(prefix + std::to_string(size) +
                                " bytes, shorter than the 16-byte header");
  }
  if (!std::equal(data, data + 4, kPlanFrameMagic,
                  [](std::uint8_t a, char b) { return a == static_cast<std::uint8_t>(b); })) {
    throw std::invalid_argument(prefix + "bad magic (expected \"STRP\")");
  }
  std::uint32_t version = 0;
  for (int i = 0; i < 4; ++i) version |= static_cast<std::uint32_t>(data[4 + i]) << (8 * i);
  if (version != kPlanFrameVersion) {
    throw std::invalid_argument(prefix + "version " + std::to_string(version) + ", expected " +
                                std::to_string(kPlanFrameVersion));
  }
  std::uint64_t length = 0;
  for (int i = 0; i < 8; ++i) length |= static_cast<std::uint64_t>(data[8 + i]) << (8 * i);
  const std::uint64_t payload = size - kPlanFrameHeaderBytes;
  if (length > kMaxFrameLength || length != payload) {
    throw std::invalid_argument(prefix + "length " + std::to_string(length) + " but " +
                                std::to_string(payload) + " bytes follow the header");
  }
  return decode_plan_json(bytes_to_string(data + kPlanFrameHeaderBytes, payload));
}

std::vector<std::int64_t> stage_devices(std::int64_t first_device, const SubmeshShape& submesh) {
  if (first_device < 0 || submesh.hosts < 1 || submesh.devices < 1) {
    throw std::invalid_argument("stage_devices: first_device " + std::to_string(first_device) +
                                ", submesh [" + std::to_string(submesh.hosts) + ", " +
                                std::to_string(submesh.devices) + "]");
  }
  std::vector<std::int64_t> devices(static_cast<std::size_t>(submesh.size()));
  for (std::size_t i = 0; i < devices.size(); ++i) {
    devices[i] = first_device + static_cast<std::int64_t>(i);
  }
  return devices;
}

Plan plan_from_stage_plan(const StagePlan& stage_plan, const ClusterSpec& cluster,
                          std::int64_t global_batch, const std::string& schedule,
                          const std::string& method) {
  const std::size_t q = stage_plan.stages.size();
  if (stage_plan.estimates.size() != q || stage_plan.first_device.size() != q) {
    throw std::invalid_argument("plan_from_stage_plan: " + std::to_string(q) + " stages, " +
                                std::to_string(stage_plan.estimates.size()) + " estimates, " +
                                std::to_string(stage_plan.first_device.size()) + " first devices");
  }
  Plan plan;
  plan.method = method;
  plan.cluster = cluster;
  plan.global_batch = global_batch;
  plan.micro_batches = stage_plan.micro_batches;
  plan.schedule = schedule;
  for (std::size_t i = 0; i < q; ++i) {
    const StageCandidate& c = stage_plan.stages[i];
    const StageEstimate& e = stage_plan.estimates[i];
    PlanStage s;
    s.layer_begin = c.layer_begin;
    s.layer_end = c.layer_end;
    s.devices = stage_devices(stage_plan.first_device[i], c.submesh);
    s.group = c.group;
    s.submesh = c.submesh;
    s.logical_mesh = c.mesh;
    s.recompute = c.recompute;
    s.predicted.time_per_microbatch_s = e.time_per_microbatch_s;
    s.predicted.tail_s = e.tail_s;
    s.predicted.static_memory_bytes = e.static_memory_bytes;
    s.predicted.activation_memory_bytes = e.activation_memory_bytes;
    s.predicted.memory_bytes_per_device = stage_memory_bytes(
        e, in_flight_microbatches(schedule, static_cast<std::int64_t>(i),
                                  static_cast<std::int64_t>(q), stage_plan.micro_batches));
    plan.predicted.memory_bytes_per_device.push_back(s.predicted.memory_bytes_per_device);
    plan.stages.push_back(std::move(s));
  }
  plan.predicted.iteration_s = stage_plan.iteration_s;
  return plan;
}

}  // namespace strata::solver
