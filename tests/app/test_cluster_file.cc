// Cluster file tests: every preset under configs/clusters parses and validates; the shape
// overrides and "one device per rank" of DESIGN.md section 7; the multi-group form; and bad files,
// whose problems must be one line each naming file:line: key, all reported at once.
// Pure parsing (no MPI calls); files are read from the source tree or a temporary directory.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "app/cluster_file.h"
#include "app/errors.h"
#include "solver/cost/cost_model.h"
#include "test_support.h"

namespace strata::app {
namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

std::string preset_file(const std::string& name) {
  return std::string(STRATA_SOURCE_DIR) + "/configs/clusters/" + name + ".yaml";
}

// The problem lines of a cluster file that must fail (empty when it parses).
std::vector<std::string> problems_of(const std::string& text, std::int64_t hosts = 0,
                                     std::int64_t devices = 0, std::int64_t world = 0) {
  try {
    parse_cluster_spec(text, "c.yaml", hosts, devices, world);
  } catch (const InputError& e) {
    return e.problems();
  }
  return {};
}

std::string problem_of(const std::string& text, std::int64_t hosts = 0, std::int64_t devices = 0,
                       std::int64_t world = 0) {
  // Not REQUIRE: every check of a test case runs; a count other than 1 shows all problems.
  const auto problems = problems_of(text, hosts, devices, world);
  if (problems.size() == 1) return problems[0];
  std::string all = std::to_string(problems.size()) + " problems:";
  for (const auto& p : problems) all += " | " + p;
  return all;
}

// A valid single-group file, one key per line (line numbers in comments).
const char* const kGood =
    "name: good\n"                                                 // 1
    "hosts: 2\n"                                                   // 2
    "devices_per_host: 4\n"                                        // 3
    "device:\n"                                                    // 4
    "  kind: test-gpu\n"                                           // 5
    "  peak_flops: {f16: 1.0e14, f32: 1.0e13}\n"                   // 6
    "  memory_bandwidth_bytes_per_s: 1.0e12\n"                     // 7
    "  memory_bytes: 1.6e10\n"                                     // 8
    "  default_efficiency: 0.5\n"                                  // 9
    "  efficiency: {matmul: 0.6}\n"                                // 10
    "links:\n"                                                     // 11
    "  intra_host: {alpha_s: 1.0e-5, beta_s_per_byte: 1.0e-11}\n"  // 12
    "  inter_host: {alpha_s: 5.0e-5, beta_s_per_byte: 1.0e-9}\n";  // 13

// kGood with line `line` (1-based) replaced by `replacement` (which may hold several lines or
// none).
std::string good_with(int line, const std::string& replacement) {
  std::string out;
  std::string text = kGood;
  int n = 1;
  for (std::size_t start = 0; start < text.size(); ++n) {
    const std::size_t end = text.find('\n', start);
    if (n == line) {
      out += replacement;
    } else {
      out += text.substr(start, end - start + 1);
    }
    start = end + 1;
  }
  return out;
}

TEST_CASE("every preset under configs/clusters parses and validates", "[cluster]") {
  int count = 0;
  for (const auto& entry :
       fs::directory_iterator(std::string(STRATA_SOURCE_DIR) + "/configs/clusters")) {
    if (entry.path().extension() != ".yaml") continue;
    ++count;
    const std::string path = entry.path().string();
    INFO(path);
    solver::ClusterSpec spec;
    REQUIRE_NOTHROW(spec = read_cluster_spec(path, 0, 0, 0));
    CHECK_NOTHROW(solver::validate(spec));
    CHECK(spec.name == entry.path().stem().string());  // each file names itself
    CHECK(spec.total_devices() >= 1);
    ClusterPreset preset;
    REQUIRE_NOTHROW(preset = read_cluster_preset(path));
    CHECK_FALSE(preset.peak_flops.empty());
    // The whole cluster priced: a mesh over the first group's first host.
    const auto& g = spec.groups[0];
    CHECK_NOTHROW(solver::mesh_axis_links(spec, 0, 1, g.devices_per_host, 1, g.devices_per_host));
  }
  CHECK(count >= 5);
}

TEST_CASE("aws-p3.16xlarge is Alpa's benchmark cluster", "[cluster]") {
  const solver::ClusterSpec spec = read_cluster_spec(preset_file("aws-p3.16xlarge"), 0, 0, 0);
  REQUIRE(spec.groups.size() == 1);
  const auto& g = spec.groups[0];
  CHECK(g.hosts == 8);
  CHECK(g.devices_per_host == 8);
  CHECK(spec.total_devices() == 64);
  CHECK(g.device.kind == "V100-16GB");
  CHECK(g.device.peak_flops.at("f16") == 125.0e12);
  CHECK(g.device.peak_flops.at("f32") == 15.7e12);
  CHECK(g.device.peak_flops.at("f64") == 7.8e12);
  CHECK(g.device.peak_flops.count("bf16") == 0);  // Volta has no bf16
  CHECK(g.device.memory_bytes == 17179869184.0);
  CHECK(g.device.memory_bandwidth_bytes_per_s == 900.0e9);
  // 25 Gbps = 3.125e9 B/s between hosts: beta = 1 / 3.125e9 = 3.2e-10 s/B
  CHECK(spec.inter_host.beta_s_per_byte == Approx(1.0 / 3.125e9));
  // NVLink all-reduce bus bandwidth 1 / beta in the 100-130 GB/s range
  CHECK(1.0 / g.intra_host.beta_s_per_byte >= 100e9);
  CHECK(1.0 / g.intra_host.beta_s_per_byte <= 130e9);
  // bf16 cannot be priced on it
  CHECK_THROWS_AS(solver::compute_time_s(1e12, 0, g.device, "bf16", "matmul"),
                  std::invalid_argument);
}

TEST_CASE("shape overrides replace a single-group preset's shape", "[cluster]") {
  const std::string path = preset_file("aws-p3.16xlarge");
  solver::ClusterSpec spec = read_cluster_spec(path, 2, 0, 0);
  CHECK(spec.groups[0].hosts == 2);
  CHECK(spec.groups[0].devices_per_host == 8);
  spec = read_cluster_spec(path, 1, 4, 0);
  CHECK(spec.total_devices() == 4);
  spec = read_cluster_spec(path, 0, 2, 16);  // the world size does not matter here
  CHECK(spec.groups[0].hosts == 8);
  CHECK(spec.groups[0].devices_per_host == 2);
  CHECK_THROWS_WITH(read_cluster_spec(path, -1, 0, 0),
                    Contains("cluster.hosts: -1 is out of range"));
}

TEST_CASE("local-cpu: one device per rank", "[cluster]") {
  const std::string path = preset_file("local-cpu");
  // under MPI with 4 ranks: 1 x 4
  solver::ClusterSpec spec = read_cluster_spec(path, 0, 0, 4);
  CHECK(spec.groups[0].hosts == 1);
  CHECK(spec.groups[0].devices_per_host == 4);
  // not under MPI (strata plan): 1 x 1
  spec = read_cluster_spec(path, 0, 0, 0);
  CHECK(spec.total_devices() == 1);
  // cluster.hosts 2 with 4 ranks: 2 x 2
  spec = read_cluster_spec(path, 2, 0, 4);
  CHECK(spec.groups[0].hosts == 2);
  CHECK(spec.groups[0].devices_per_host == 2);
  // both set: the config wins, whatever the world size
  spec = read_cluster_spec(path, 1, 3, 0);
  CHECK(spec.total_devices() == 3);
  // 3 ranks cannot spread over 2 hosts
  CHECK_THROWS_WITH(read_cluster_spec(path, 2, 0, 3),
                    Contains("local-cpu.yaml: devices_per_host: 0") && Contains("3 rank(s)"));
  // the old reader's view still works
  const ClusterPreset preset = read_cluster_preset(path);
  CHECK(preset.hosts == 1);
  CHECK(preset.devices_per_host == 0);
  CHECK(preset.peak_flops.at("f32") == 1.0e11);
  CHECK(preset.peak_flops.at("f64") == 5.0e10);
}

TEST_CASE("presets are found by name under STRATA_CONFIG_DIR", "[cluster]") {
  const char* old = std::getenv("STRATA_CONFIG_DIR");
  const std::string saved = old ? old : "";
  setenv("STRATA_CONFIG_DIR", (std::string(STRATA_SOURCE_DIR) + "/configs").c_str(), 1);
  CHECK(read_cluster_spec("dgx-a100", 0, 0, 0).groups[0].device.kind == "A100-80GB");
  CHECK(read_cluster_spec("dgx-h100", 4, 0, 0).total_devices() == 32);
  CHECK(read_cluster_preset("local-cpu").name == "local-cpu");
  CHECK_THROWS_WITH(read_cluster_spec("no-such-cluster", 0, 0, 0),
                    Contains("cluster.preset 'no-such-cluster': no such preset file"));
  if (old) {
    setenv("STRATA_CONFIG_DIR", saved.c_str(), 1);
  } else {
    unsetenv("STRATA_CONFIG_DIR");
  }
}

TEST_CASE("a heterogeneous cluster file", "[cluster]") {
  const std::string path = preset_file("hetero-example");
  const solver::ClusterSpec spec = read_cluster_spec(path, 0, 0, 8);
  REQUIRE(spec.groups.size() == 2);
  CHECK(spec.groups[0].name == "a100");
  CHECK(spec.groups[1].name == "v100");
  CHECK(spec.total_devices() == 24);  // 1 x 8 + 2 x 8
  CHECK(spec.first_device_of_group(1) == 8);
  CHECK(spec.groups[1].device.peak_flops.count("bf16") == 0);
  // group 1, 2 hosts x 8 as 2 x 8: axis 0 crosses hosts, axis 1 is V100 NVLink
  const solver::MeshAxisLinks m = solver::mesh_axis_links(spec, 1, 2, 8, 2, 8);
  CHECK(m.crosses_hosts[0]);
  CHECK(m.axis[1].beta_s_per_byte == spec.groups[1].intra_host.beta_s_per_byte);
  // overrides do not apply
  CHECK_THROWS_WITH(read_cluster_spec(path, 2, 0, 0),
                    Contains("cluster.hosts: 2: overrides apply only to single-group presets"));
  // the runtime's view: 3 hosts x 8; f16 peak is the device-weighted mean
  // (8 x 312e12 + 16 x 125e12) / 24 = 4496e12 / 24 = 187.33e12; no bf16 (V100 lacks it)
  const ClusterPreset preset = read_cluster_preset(path);
  CHECK(preset.hosts == 3);
  CHECK(preset.devices_per_host == 8);
  CHECK(preset.peak_flops.at("f16") == Approx(187.333333e12));
  CHECK(preset.peak_flops.count("bf16") == 0);
}

TEST_CASE("a good file parses, with defaults", "[cluster]") {
  const solver::ClusterSpec spec = parse_cluster_spec(kGood, "c.yaml", 0, 0, 0);
  CHECK(spec.name == "good");
  CHECK(spec.groups[0].name == "group0");
  CHECK(spec.groups[0].device.efficiency.at("matmul") == 0.6);
  // name and default_efficiency are optional: name from the file stem, efficiency 1.0
  const solver::ClusterSpec bare = parse_cluster_spec(
      good_with(9, "").substr(std::string("name: good\n").size()), "/x/my-cluster.yaml", 0, 0, 0);
  CHECK(bare.name == "my-cluster");
  CHECK(bare.groups[0].device.default_efficiency == 1.0);
}

TEST_CASE("bad cluster files: one line each, naming file:line: key", "[cluster]") {
  // unknown keys, at any depth
  CHECK(problem_of(good_with(3, "devices_per_host: 4\nnodes: 2\n")) ==
        "c.yaml:4: nodes: unknown key (expected one of name, hosts, devices_per_host, device, "
        "links, groups)");
  // a misspelt required key: unknown, and the real one missing (file order)
  CHECK(problems_of(good_with(7, "  memory_bandwidth: 1.0e12\n")) ==
        std::vector<std::string>{
            "c.yaml:5: device.memory_bandwidth_bytes_per_s: missing (required: bytes per second "
            "of device memory)",
            "c.yaml:7: device.memory_bandwidth: unknown key (expected one of kind, peak_flops, "
            "memory_bandwidth_bytes_per_s, memory_bytes, default_efficiency, efficiency)"});
  CHECK(problem_of(good_with(12,
                             "  intra_host: {alpha_s: 1.0e-5, beta_s_per_byte: 1.0e-11, "
                             "gamma: 1}\n")) ==
        "c.yaml:12: links.intra_host.gamma: unknown key (expected one of alpha_s, "
        "beta_s_per_byte)");
  CHECK(problem_of(good_with(6, "  peak_flops: {f16: 1.0e14, fp32: 1.0e13}\n")) ==
        "c.yaml:6: device.peak_flops.fp32: unknown dtype (expected f64, f32, bf16 or f16)");
  CHECK(problem_of(good_with(10, "  efficiency: {matmull: 0.6}\n")) ==
        "c.yaml:10: device.efficiency.matmull: unknown op kind (expected an IR op kind such as "
        "matmul, layernorm, softmax)");
  // wrong types
  CHECK(problem_of(good_with(2, "hosts: eight\n")) ==
        "c.yaml:2: hosts: \"eight\" is not an integer");
  CHECK(problem_of(good_with(2, "hosts: 2.5\n")) == "c.yaml:2: hosts: \"2.5\" is not an integer");
  CHECK(problem_of(good_with(8, "  memory_bytes: [1, 2]\n")) ==
        "c.yaml:8: device.memory_bytes: a list is not a number");
  CHECK(problem_of("name: x\nhosts: 1\ndevices_per_host: 1\ndevice: V100\nlinks:\n"
                   "  intra_host: {alpha_s: 1.0e-5, beta_s_per_byte: 1.0e-11}\n"
                   "  inter_host: {alpha_s: 5.0e-5, beta_s_per_byte: 1.0e-9}\n") ==
        "c.yaml:4: device: must be a map (with kind, peak_flops, memory_bandwidth_bytes_per_s, "
        "memory_bytes, default_efficiency, efficiency), got \"V100\"");
  CHECK(problem_of(good_with(7, "  memory_bandwidth_bytes_per_s: .inf\n")) ==
        "c.yaml:7: device.memory_bandwidth_bytes_per_s: \".inf\" is not a finite number");
  // negative and out-of-range numbers
  CHECK(problem_of(good_with(2, "hosts: -2\n")) ==
        "c.yaml:2: hosts: -2 is out of range (must be >= 1 and <= 1048576)");
  CHECK(problem_of(good_with(12, "  intra_host: {alpha_s: -1.0e-5, beta_s_per_byte: 1.0e-11}\n")) ==
        "c.yaml:12: links.intra_host.alpha_s: -1.0e-5 is out of range (must be >= 0)");
  CHECK(problem_of(good_with(6, "  peak_flops: {f16: 0, f32: 1.0e13}\n")) ==
        "c.yaml:6: device.peak_flops.f16: 0 is out of range (must be > 0)");
  CHECK(problem_of(good_with(9, "  default_efficiency: 1.5\n")) ==
        "c.yaml:9: device.default_efficiency: 1.5 is out of range (must be > 0 and <= 1)");
  // missing parts: the line of the map that lacks them
  CHECK(problem_of("name: x\nhosts: 1\ndevices_per_host: 1\n"
                   "links:\n"
                   "  intra_host: {alpha_s: 1.0e-5, beta_s_per_byte: 1.0e-11}\n"
                   "  inter_host: {alpha_s: 5.0e-5, beta_s_per_byte: 1.0e-9}\n") ==
        "c.yaml:1: device: missing (required: {kind, peak_flops, memory_bandwidth_bytes_per_s, "
        "memory_bytes})");
  CHECK(problem_of(good_with(5, "")) ==
        "c.yaml:5: device.kind: missing (required: the device's name, e.g. V100-16GB)");
  CHECK(problem_of(good_with(13, "")) ==
        "c.yaml:12: links.inter_host: missing (required: {alpha_s, beta_s_per_byte} between "
        "hosts)");
  // duplicate keys
  CHECK(problem_of(good_with(3, "devices_per_host: 4\nhosts: 3\n")) ==
        "c.yaml:4: hosts: duplicate key (first given on line 2)");
  // YAML syntax and a non-map top level
  CHECK_THAT(problem_of("name: x\nhosts: [1, 2\n"),
             Contains("c.yaml:") && Contains("YAML syntax error"));
  CHECK(problem_of("- a\n- b\n") ==
        "c.yaml:1: the top level must be a map (name, hosts, devices_per_host, device, links; or "
        "name, groups, links), got a list");
}

TEST_CASE("every problem of a bad file is reported at once, in file order", "[cluster]") {
  const auto problems = problems_of(good_with(2, "hosts: 0\n") + "extra: 1\n");
  REQUIRE(problems.size() == 2);
  CHECK(problems[0] == "c.yaml:2: hosts: 0 is out of range (must be >= 1 and <= 1048576)");
  CHECK(problems[1] ==
        "c.yaml:14: extra: unknown key (expected one of name, hosts, devices_per_host, device, "
        "links, groups)");
}

TEST_CASE("odd inputs give problem lines, never crashes", "[cluster]") {
  for (const std::string& text : std::vector<std::string>{
           "", "~", "[", "{", "hosts: {a: b}\n", "? [a, b]\n: 1\n", "groups: {a: 1}\nlinks: 1\n",
           "groups: [1, [2], ~]\n", "device: &d {kind: *d}\n", "name: \"a\\x01b\"\nnme\x02: 1\n",
           std::string(2 << 20, '#')}) {
    INFO("text: " << text.substr(0, 80));
    const auto problems = problems_of(text);
    CHECK_FALSE(problems.empty());
    for (const auto& p : problems) {
      CHECK(p.rfind("c.yaml", 0) == 0);
      CHECK(p.find('\n') == std::string::npos);
      CHECK(p.find('\x02') == std::string::npos);
    }
  }
}

TEST_CASE("bad multi-group files", "[cluster]") {
  const std::string device =
      "    device: {kind: g, peak_flops: {f32: 1.0e12}, memory_bandwidth_bytes_per_s: 1.0e11, "
      "memory_bytes: 1.0e9}\n";
  const std::string link = "    intra_host: {alpha_s: 1.0e-6, beta_s_per_byte: 1.0e-11}\n";
  const std::string inter = "links:\n  inter_host: {alpha_s: 1.0e-5, beta_s_per_byte: 1.0e-9}\n";
  // lines: 1 groups; 2-4 group a's name, hosts, devices_per_host; 5-6 its device and link;
  // 7-9 group b's; 10-11 its device and link; 12-13 links.inter_host
  const std::string two_groups =
      "groups:\n"
      "  - name: a\n    hosts: 1\n    devices_per_host: 2\n" +
      device + link + "  - name: b\n    hosts: 2\n    devices_per_host: 4\n" + device + link +
      inter;
  const solver::ClusterSpec spec = parse_cluster_spec(two_groups, "/d/h.yaml", 0, 0, 0);
  CHECK(spec.name == "h");
  CHECK(spec.total_devices() == 10);  // 1 x 2 + 2 x 4
  // same name twice
  std::string dup = two_groups;
  dup.replace(dup.find("name: b"), 7, "name: a");
  CHECK(problem_of(dup) ==
        "c.yaml:7: groups[1].name: \"a\" is also the name of the group on line 2");
  // the single-group keys are not allowed beside groups
  CHECK(problem_of("hosts: 2\n" + two_groups) ==
        "c.yaml:1: hosts: not allowed with groups (each group has its own)");
  CHECK(problem_of(two_groups + "  intra_host: {alpha_s: 0, beta_s_per_byte: 0}\n") ==
        "c.yaml:14: links.intra_host: not allowed with groups (each group has its own intra_host)");
  // a group without a device; devices_per_host 0 is for single-group files only
  std::string no_device = two_groups;
  no_device.erase(no_device.find(device), device.size());
  CHECK(problem_of(no_device) ==
        "c.yaml:2: groups[0].device: missing (required: {kind, peak_flops, "
        "memory_bandwidth_bytes_per_s, memory_bytes})");
  std::string zero = two_groups;
  zero.replace(zero.find("devices_per_host: 4"), 19, "devices_per_host: 0");
  CHECK(problem_of(zero) ==
        "c.yaml:9: groups[1].devices_per_host: 0 is out of range (must be >= 1 and <= 1048576)");
  CHECK(problem_of("groups: []\n" + inter) ==
        "c.yaml:1: groups: must be a non-empty list of host groups, got a list");
}

TEST_CASE("a bad preset file is reported through read_cluster_spec with its path", "[cluster]") {
  test::TempDir dir("cluster");
  const std::string path = dir.file("broken.yaml");
  std::ofstream(path) << good_with(2, "hosts: -1\n");
  try {
    read_cluster_spec(path, 0, 0, 0);
    FAIL("a bad file was accepted");
  } catch (const InputError& e) {
    REQUIRE(e.problems().size() == 1);
    CHECK(e.problems()[0] == path + ":2: hosts: -1 is out of range (must be >= 1 and <= 1048576)");
  }
  CHECK_THROWS_AS(read_cluster_preset(path), InputError);
}

}  // namespace
}  // namespace strata::app
