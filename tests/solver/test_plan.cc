// Plan JSON, framing and reports (solver/plan/plan.h, report.h): lossless round trips (text and
// field by field), every DESIGN.md section 7 field present, key order, malformed JSON and frames
// rejected with one-line messages, a cheap mutation fuzz (decode or throw, never crash), the
// stage-DP bridge, the text table and a well-formed SVG with one rect per device.
#include <catch2/catch.hpp>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "solver/plan/plan.h"
#include "solver/plan/report.h"
#include "solver/plan/simulator.h"

using namespace strata::solver;
using nlohmann::json;

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// Two groups: "a100" 1 host x 4 devices (ranks 0-3), "v100" 2 hosts x 2 devices (ranks 4-7).
ClusterSpec sample_cluster() {
  ClusterSpec c;
  c.name = "test-hetero";
  HostGroup a;
  a.name = "a100";
  a.hosts = 1;
  a.devices_per_host = 4;
  a.device.kind = "A100-80GB";
  a.device.peak_flops = {{"bf16", 312e12}, {"f32", 19.5e12}};
  a.device.memory_bandwidth_bytes_per_s = 2039e9;
  a.device.memory_bytes = 80 * kGiB;
  a.device.default_efficiency = 0.5;
  a.device.efficiency = {{"matmul", 0.7}};
  a.intra_host = {1e-5, 4.35e-12};
  HostGroup v = a;
  v.name = "v100";
  v.hosts = 2;
  v.devices_per_host = 2;
  v.device.kind = "V100-16GB";
  v.device.peak_flops = {{"f16", 125e12}, {"f32", 15.7e12}};
  v.device.memory_bytes = 16 * kGiB;
  v.device.efficiency.clear();
  v.intra_host = {1e-5, 8e-12};
  c.groups = {a, v};
  c.inter_host = {3e-5, 8e-11};
  return c;
}

Plan sample_plan() {
  Plan p;
  p.method = "auto";
  p.model_hash = "sha256:abc";
  p.config_hash = "fnv1a:0123";
  p.cluster = sample_cluster();
  p.global_batch = 32;
  p.micro_batches = 8;
  p.schedule = "1f1b";
  PlanStage s0;
  s0.layer_begin = 0;
  s0.layer_end = 3;
  s0.devices = {0, 1, 2, 3};
  s0.group = 0;
  s0.submesh = {1, 4};
  s0.logical_mesh = {2, 2};
  s0.summary = "dp2 x tp2";
  s0.ops = {{"h.0.attn.qkv",
             "S0 x R -> S0,S1",
             {parse_layout("S0,R"), parse_layout("R,S1")},
             {parse_layout("S0,S1")}},
            {"h.0.attn.proj", "sum over tp", {}, {parse_layout("S0,R|P1")}},
            {"loss", "replicated", {}, {}}};
  s0.predicted = {0.1 + 0.2, 0.1, 0.2, 1.0 / 3.0, 0.05, 12.5 * kGiB, 10 * kGiB, 0.5 * kGiB};
  PlanStage s1;
  s1.layer_begin = 3;
  s1.layer_end = 5;
  s1.devices = {4, 5, 6, 7};
  s1.group = 1;
  s1.submesh = {2, 2};
  s1.logical_mesh = {4, 1};
  s1.recompute = true;
  s1.summary = "dp4";
  s1.ops = {{"h.1.mlp.fc", "S0 x R -> S0", {}, {}}};
  s1.predicted = {0.25, 0.0625, 0.1875, 0, 0.125, 15 * kGiB, 14 * kGiB, 0.5 * kGiB};
  p.stages = {s0, s1};
  p.predicted.iteration_s = 14.2;
  p.predicted.tflops_per_device = 48.1;
  p.predicted.memory_bytes_per_device = {12.5 * kGiB, 15 * kGiB};
  p.predicted.bytes_per_step = {1.5e9, 2.5e8, 2.5e8, 0, 6.4e7};
  p.search.wall_s = 3.1;
  p.search.ilps_solved = 212;
  p.search.phases_s = {{"clustering", 0.01}, {"ilp", 2.5}, {"dp", 0.5}};  // not alphabetical
  return p;
}

void check_same_cluster(const ClusterSpec& a, const ClusterSpec& b) {
  CHECK(a.name == b.name);
  REQUIRE(a.groups.size() == b.groups.size());
  for (std::size_t g = 0; g < a.groups.size(); ++g) {
    const HostGroup& x = a.groups[g];
    const HostGroup& y = b.groups[g];
    CHECK(x.name == y.name);
    CHECK(x.hosts == y.hosts);
    CHECK(x.devices_per_host == y.devices_per_host);
    CHECK(x.device.kind == y.device.kind);
    CHECK(x.device.peak_flops == y.device.peak_flops);
    CHECK(x.device.memory_bandwidth_bytes_per_s == y.device.memory_bandwidth_bytes_per_s);
    CHECK(x.device.memory_bytes == y.device.memory_bytes);
    CHECK(x.device.efficiency == y.device.efficiency);
    CHECK(x.device.default_efficiency == y.device.default_efficiency);
    CHECK(x.intra_host.alpha_s == y.intra_host.alpha_s);
    CHECK(x.intra_host.beta_s_per_byte == y.intra_host.beta_s_per_byte);
  }
  CHECK(a.inter_host.alpha_s == b.inter_host.alpha_s);
  CHECK(a.inter_host.beta_s_per_byte == b.inter_host.beta_s_per_byte);
}

void check_same_plan(const Plan& a, const Plan& b) {
  CHECK(a.method == b.method);
  CHECK(a.model_hash == b.model_hash);
  CHECK(a.config_hash == b.config_hash);
  check_same_cluster(a.cluster, b.cluster);
  CHECK(a.global_batch == b.global_batch);
  CHECK(a.micro_batches == b.micro_batches);
  CHECK(a.schedule == b.schedule);
  REQUIRE(a.stages.size() == b.stages.size());
  for (std::size_t i = 0; i < a.stages.size(); ++i) {
    const PlanStage& x = a.stages[i];
    const PlanStage& y = b.stages[i];
    CHECK(x.layer_begin == y.layer_begin);
    CHECK(x.layer_end == y.layer_end);
    CHECK(x.devices == y.devices);
    CHECK(x.group == y.group);
    CHECK(x.submesh.hosts == y.submesh.hosts);
    CHECK(x.submesh.devices == y.submesh.devices);
    CHECK(x.logical_mesh.d0 == y.logical_mesh.d0);
    CHECK(x.logical_mesh.d1 == y.logical_mesh.d1);
    CHECK(x.recompute == y.recompute);
    CHECK(x.summary == y.summary);
    REQUIRE(x.ops.size() == y.ops.size());
    for (std::size_t k = 0; k < x.ops.size(); ++k) {
      CHECK(x.ops[k].op == y.ops[k].op);
      CHECK(x.ops[k].strategy == y.ops[k].strategy);
      CHECK(x.ops[k].input_layouts == y.ops[k].input_layouts);
      CHECK(x.ops[k].output_layouts == y.ops[k].output_layouts);
    }
    // Exact (bit-identical) doubles: the JSON prints round-trip digits.
    CHECK(x.predicted.time_per_microbatch_s == y.predicted.time_per_microbatch_s);
    CHECK(x.predicted.forward_s == y.predicted.forward_s);
    CHECK(x.predicted.backward_s == y.predicted.backward_s);
    CHECK(x.predicted.transfer_s == y.predicted.transfer_s);
    CHECK(x.predicted.tail_s == y.predicted.tail_s);
    CHECK(x.predicted.memory_bytes_per_device == y.predicted.memory_bytes_per_device);
    CHECK(x.predicted.static_memory_bytes == y.predicted.static_memory_bytes);
    CHECK(x.predicted.activation_memory_bytes == y.predicted.activation_memory_bytes);
  }
  CHECK(a.predicted.iteration_s == b.predicted.iteration_s);
  CHECK(a.predicted.tflops_per_device == b.predicted.tflops_per_device);
  CHECK(a.predicted.memory_bytes_per_device == b.predicted.memory_bytes_per_device);
  CHECK(a.predicted.bytes_per_step.all_reduce == b.predicted.bytes_per_step.all_reduce);
  CHECK(a.predicted.bytes_per_step.all_gather == b.predicted.bytes_per_step.all_gather);
  CHECK(a.predicted.bytes_per_step.reduce_scatter == b.predicted.bytes_per_step.reduce_scatter);
  CHECK(a.predicted.bytes_per_step.all_to_all == b.predicted.bytes_per_step.all_to_all);
  CHECK(a.predicted.bytes_per_step.p2p == b.predicted.bytes_per_step.p2p);
  CHECK(a.search.wall_s == b.search.wall_s);
  CHECK(a.search.ilps_solved == b.search.ilps_solved);
  CHECK(a.search.phases_s == b.search.phases_s);
}

// Decoding `text` must throw std::invalid_argument with a one-line "plan JSON: " message that
// contains `needle`.
void check_rejected(const std::string& text, const std::string& needle) {
  INFO("expecting '" << needle << "'");
  try {
    decode_plan_json(text);
    FAIL("decoded: " << text.substr(0, 200));
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.rfind("plan JSON: ", 0) == 0);
    CHECK(msg.find('\n') == std::string::npos);
    CHECK(msg.find(needle) != std::string::npos);
  }
}

// The encoded sample as a mutable json tree (std::map-ordered; key order is irrelevant to the
// decoder).
json sample_json() { return json::parse(encode_plan_json(sample_plan())); }

// Tag balance of an XML-ish document: every <x ...> closed by </x> in order, <x/> and <?...?>
// self-contained. Returns "" or the first problem.
std::string tag_balance(const std::string& doc) {
  std::vector<std::string> open;
  std::size_t pos = 0;
  while ((pos = doc.find('<', pos)) != std::string::npos) {
    const std::size_t end = doc.find('>', pos);
    if (end == std::string::npos) return "unterminated tag";
    const std::string tag = doc.substr(pos + 1, end - pos - 1);
    pos = end + 1;
    if (tag.empty()) return "empty tag";
    if (tag[0] == '?' || tag[0] == '!') continue;
    if (tag.back() == '/') continue;
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return "mismatched </" + tag.substr(1);
      open.pop_back();
      continue;
    }
    open.push_back(tag.substr(0, tag.find(' ')));
  }
  return open.empty() ? "" : "unclosed <" + open.back();
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t pos = text.find(needle); pos != std::string::npos;
       pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

}  // namespace

TEST_CASE("plan JSON round trip is lossless", "[plan]") {
  const Plan p = sample_plan();
  const std::string text = encode_plan_json(p);
  const Plan q = decode_plan_json(text);
  check_same_plan(p, q);
  CHECK(encode_plan_json(q) == text);
  CHECK(encode_plan_json(p) == text);  // deterministic
  // Search phases keep their order (not alphabetical).
  REQUIRE(q.search.phases_s.size() == 3);
  CHECK(q.search.phases_s[0].first == "clustering");
  CHECK(q.search.phases_s[2].first == "dp");
  // Pretty, and the documented key order at the top.
  CHECK(text.find("\n  \"format\": \"strata-plan\",\n  \"version\": 1,\n  \"method\": \"auto\"") !=
        std::string::npos);
  CHECK(q.num_layers() == 5);
  CHECK(q.micro_batch_size() == 4);
}

TEST_CASE("plan JSON has every DESIGN.md section 7 field", "[plan]") {
  const json j = sample_json();
  for (const char* key :
       {"format", "version", "method", "cluster", "global_batch", "micro_batches", "schedule",
        "stages", "predicted", "search", "model_hash", "config_hash"}) {
    CHECK(j.contains(key));
  }
  CHECK(j["format"] == "strata-plan");
  CHECK(j["version"] == 1);
  const json& s = j["stages"][0];
  for (const char* key : {"layers", "devices", "logical_mesh", "recompute", "ops", "predicted",
                          "group", "submesh", "summary"}) {
    CHECK(s.contains(key));
  }
  CHECK(s["layers"] == json::array({0, 3}));
  CHECK(s["devices"] == json::array({0, 1, 2, 3}));
  CHECK(s["logical_mesh"] == json::array({2, 2}));
  CHECK(s["submesh"] == json::array({1, 4}));
  CHECK(s["ops"][0]["op"] == "h.0.attn.qkv");
  CHECK(s["ops"][0]["strategy"] == "S0 x R -> S0,S1");
  CHECK(s["ops"][0]["input_layouts"] == json::array({"S0,R", "R,S1"}));
  CHECK(s["ops"][1]["output_layouts"] == json::array({"S0,R|P1"}));
  CHECK_FALSE(s["ops"][2].contains("input_layouts"));  // optional: omitted when empty
  for (const char* key : {"time_per_microbatch_s", "memory_bytes_per_device", "tail_s",
                          "static_memory_bytes", "activation_memory_bytes"}) {
    CHECK(s["predicted"].contains(key));
  }
  const json& pr = j["predicted"];
  for (const char* key :
       {"iteration_s", "tflops_per_device", "memory_bytes_per_device", "bytes_per_step"}) {
    CHECK(pr.contains(key));
  }
  CHECK(pr["memory_bytes_per_device"].size() == 2);
  for (const char* key : {"all_reduce", "all_gather", "reduce_scatter", "all_to_all", "p2p"}) {
    CHECK(pr["bytes_per_step"].contains(key));
  }
  for (const char* key : {"wall_s", "ilps_solved", "phases_s"}) CHECK(j["search"].contains(key));
  const json& c = j["cluster"];
  CHECK(c["groups"][1]["name"] == "v100");
  CHECK(c["groups"][0]["device"]["peak_flops"]["bf16"] == 312e12);
  CHECK(c["links"]["inter_host"]["beta_s_per_byte"] == 8e-11);
}

TEST_CASE("cluster JSON round trip", "[plan]") {
  const ClusterSpec c = sample_cluster();
  const std::string text = encode_cluster_json(c);
  const ClusterSpec d = decode_cluster_json(text);
  check_same_cluster(c, d);
  CHECK(encode_cluster_json(d) == text);
  // Optional keys default as in ClusterSpec; invalid values rejected by validate(ClusterSpec).
  json j = json::parse(text);
  j["groups"][1]["device"].erase("efficiency");
  j["groups"][1]["device"].erase("default_efficiency");
  CHECK(decode_cluster_json(j.dump()).groups[1].device.default_efficiency == 1.0);
  j["groups"][0]["devices_per_host"] = 0;
  CHECK_THROWS_WITH(decode_cluster_json(j.dump()), Catch::StartsWith("cluster JSON: "));
  ClusterSpec bad = c;
  bad.groups[0].device.peak_flops["f8"] = 1;
  CHECK_THROWS_AS(encode_cluster_json(bad), std::invalid_argument);
}

TEST_CASE("malformed plan JSON is rejected with one line", "[plan]") {
  const auto mutate = [](auto edit) {
    json j = sample_json();
    edit(j);
    return j.dump();
  };
  check_rejected("", "parse error");
  check_rejected("{\"format\": \"strata-plan\",", "parse error");
  check_rejected("[1, 2, 3]", "root: must be an object");
  check_rejected(std::string(100, '[') + std::string(100, ']'), "nesting deeper");
  check_rejected("{\"format\": \"strata-plan\", \"format\": \"x\"}", "duplicate key");
  check_rejected(mutate([](json& j) { j["format"] = "strata-graph"; }), "format");
  check_rejected(mutate([](json& j) { j["version"] = 2; }), "newer");
  check_rejected(mutate([](json& j) { j["version"] = "1"; }), "version: must be an integer");
  check_rejected(mutate([](json& j) { j.erase("stages"); }), "stages: missing");
  check_rejected(mutate([](json& j) { j["colour"] = "blue"; }), "colour: unknown key");
  check_rejected(mutate([](json& j) { j["method"] = "best"; }), "method");
  check_rejected(mutate([](json& j) { j["micro_batches"] = 3; }), "must divide global_batch");
  check_rejected(mutate([](json& j) { j["global_batch"] = 1e30; }),
                 "global_batch: must be an integer");
  check_rejected(mutate([](json& j) { j["global_batch"] = 18446744073709551615ull; }),
                 "out of range");
  check_rejected(mutate([](json& j) { j["schedule"] = "zigzag"; }), "schedule");
  check_rejected(mutate([](json& j) { j["stages"] = json::array(); }), "at least one stage");
  check_rejected(mutate([](json& j) {
                   j["stages"][1]["layers"] = {4, 5};
                 }),
                 "stages[1].layers: begins at 4, expected 3");
  check_rejected(mutate([](json& j) { j["stages"][0]["layers"] = {0, 3, 5}; }), "stages[0].layers");
  check_rejected(mutate([](json& j) {
                   j["stages"][1]["devices"] = {3, 5, 6, 7};
                 }),
                 "stages[1].devices: device 3 is not in group 'v100'");
  check_rejected(mutate([](json& j) {
                   j["stages"][0]["devices"] = {0, 1, 2, 2};
                 }),
                 "appears twice");
  check_rejected(mutate([](json& j) {
                   j["stages"][0]["logical_mesh"] = {3, 1};
                 }),
                 "stages[0].logical_mesh");
  check_rejected(mutate([](json& j) {
                   j["stages"][1]["submesh"] = {1, 4};
                 }),
                 "does not fit group 'v100'");
  check_rejected(mutate([](json& j) {  // 2 devices on host 0 of v100 claimed as 2 hosts x 1
                   j["stages"][1]["devices"] = {4, 5};
                   j["stages"][1]["submesh"] = {2, 1};
                   j["stages"][1]["logical_mesh"] = {2, 1};
                 }),
                 "do not span 2 host(s)");
  check_rejected(mutate([](json& j) {  // one device left without a stage
                   j["stages"][1]["devices"] = {4, 5};
                   j["stages"][1]["submesh"] = {1, 2};
                   j["stages"][1]["logical_mesh"] = {1, 2};
                 }),
                 "every device belongs to exactly one stage");
  check_rejected(mutate([](json& j) { j["stages"][0]["predicted"]["time_per_microbatch_s"] = -1; }),
                 "time_per_microbatch_s: must be finite and >= 0");
  check_rejected(mutate([](json& j) { j["stages"][0]["predicted"]["tail_s"] = "fast"; }),
                 "tail_s: must be a number");
  check_rejected(mutate([](json& j) { j["stages"][0]["ops"][0]["input_layouts"][0] = "S2,R"; }),
                 "input_layouts[0]");
  check_rejected(mutate([](json& j) { j["stages"][0]["ops"][0]["output_layouts"][0] = "S0,S0"; }),
                 "used more than once");
  check_rejected(mutate([](json& j) { j["stages"][0]["ops"][0]["op"] = ""; }),
                 "ops[0].op: must not be empty");
  check_rejected(mutate([](json& j) { j["stages"][0]["recompute"] = 1; }),
                 "recompute: must be true or false");
  check_rejected(mutate([](json& j) { j["predicted"]["memory_bytes_per_device"] = {1.0}; }),
                 "1 entries for 2 stages");
  check_rejected(mutate([](json& j) { j["predicted"]["bytes_per_step"].erase("p2p"); }),
                 "bytes_per_step.p2p: missing");
  check_rejected(mutate([](json& j) { j["search"]["phases_s"]["ilp"] = -0.5; }),
                 "search.phases_s.ilp");
  check_rejected(
      mutate([](json& j) { j["cluster"]["groups"][0]["device"]["peak_flops"]["f8"] = 1; }),
      "unknown dtype");
  check_rejected(mutate([](json& j) { j["cluster"]["groups"][0]["hosts"] = 1LL << 40; }), "hosts");
  // Non-finite number literal, invalid UTF-8, control characters in a key.
  std::string text = sample_json().dump();
  std::string inf = text;
  inf.replace(inf.find("14.2"), 4, "1e999");
  check_rejected(inf, "number overflow");
  std::string utf = text;
  utf.replace(utf.find("dp2 x tp2"), 3, "\xff\xfe\x01");
  check_rejected(utf, "parse error");
  check_rejected("{\"format\": \"strata-plan\", \"version\": 1, \"a\\u0001\\n\": 1}",
                 "a\\x01\\x0A: unknown key");
}

TEST_CASE("plan decoding survives mutated bytes (decode or throw, never crash)", "[plan]") {
  const std::string text = sample_json().dump();
  std::mt19937 rng(12345);
  int decoded = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string t = text;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % t.size();
      switch (rng() % 4) {
        case 0:
          t[at] = static_cast<char>(rng() % 256);
          break;
        case 1:
          t.erase(at, 1 + rng() % 8);
          break;
        case 2:
          t.insert(at, 1, "{}[]\",:0-e"[rng() % 10]);
          break;
        default:
          t.resize(at);
          break;
      }
      if (t.empty()) break;
    }
    try {
      decode_plan_json(t);
      ++decoded;
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find('\n') == std::string::npos);
    }
  }
  CHECK(decoded < 3000);
}

TEST_CASE("plan framing round trip and bad frames", "[plan]") {
  const Plan p = sample_plan();
  const std::vector<std::uint8_t> frame = frame_plan(p);
  const std::string json_text = encode_plan_json(p);
  REQUIRE(frame.size() == 16 + json_text.size());
  CHECK(std::memcmp(frame.data(), "STRP", 4) == 0);
  CHECK(frame[4] == 1);  // u32 version 1, little-endian
  CHECK((frame[5] == 0 && frame[6] == 0 && frame[7] == 0));
  std::uint64_t length = 0;
  for (int i = 0; i < 8; ++i) length |= static_cast<std::uint64_t>(frame[8 + i]) << (8 * i);
  CHECK(length == json_text.size());
  check_same_plan(p, unframe_plan(frame.data(), frame.size()));

  const auto rejected = [](const std::vector<std::uint8_t>& f, const std::string& needle) {
    INFO(needle);
    CHECK_THROWS_WITH(unframe_plan(f.data(), f.size()),
                      Catch::StartsWith("plan frame: ") && Catch::Contains(needle));
  };
  auto bad = frame;
  bad[0] = 'X';
  rejected(bad, "magic");
  bad = frame;
  bad[4] = 2;
  rejected(bad, "version 2");
  bad = frame;
  bad.pop_back();
  rejected(bad, "length");
  bad = frame;
  bad.push_back(' ');
  rejected(bad, "length");
  bad = frame;
  bad[15] = 0x80;  // length 2^63 + ...
  rejected(bad, "length");
  rejected(std::vector<std::uint8_t>(frame.begin(), frame.begin() + 10), "shorter");
  CHECK_THROWS_AS(unframe_plan(nullptr, 0), std::invalid_argument);
  CHECK_THROWS_AS(unframe_plan(nullptr, 5), std::invalid_argument);
  // A valid frame around invalid JSON fails as the JSON does.
  std::vector<std::uint8_t> junk(frame.begin(), frame.begin() + 16);
  const std::string body = "{}";
  for (int i = 0; i < 8; ++i) junk[8 + i] = static_cast<std::uint8_t>(i == 0 ? body.size() : 0);
  junk.insert(junk.end(), body.begin(), body.end());
  CHECK_THROWS_WITH(unframe_plan(junk.data(), junk.size()), Catch::StartsWith("plan JSON: "));
}

TEST_CASE("encode_plan_json refuses invalid plans", "[plan]") {
  Plan p = sample_plan();
  p.stages[0].predicted.tail_s = std::nan("");
  CHECK_THROWS_WITH(encode_plan_json(p),
                    Catch::StartsWith("encode_plan_json: ") && Catch::Contains("tail_s"));
  p = sample_plan();
  p.search.phases_s.push_back({"ilp", 1.0});
  CHECK_THROWS_WITH(encode_plan_json(p), Catch::Contains("listed twice"));
  p = sample_plan();
  p.stages[1].devices = {3, 5, 6, 7};
  CHECK_THROWS_AS(frame_plan(p), std::invalid_argument);
  CHECK_NOTHROW(validate(sample_plan()));
}

TEST_CASE("plan_from_stage_plan bridges the stage DP's answer", "[plan]") {
  // 8 devices of one host: stage 0 = layers [0, 2) on (1, 4) as 2x2 at rank 0, stage 1 =
  // layers [2, 4) on (1, 4) as 1x4 at rank 4; B = 4, 1F1B: in-flight 2 and 1.
  ClusterSpec c = sample_cluster();
  c.groups.resize(1);
  c.groups[0].devices_per_host = 8;
  StagePlan sp;
  StageCandidate a;
  a.layer_begin = 0;
  a.layer_end = 2;
  a.submesh = {1, 4};
  a.mesh = {2, 2};
  StageCandidate b = a;
  b.layer_begin = 2;
  b.layer_end = 4;
  b.mesh = {1, 4};
  b.recompute = true;
  sp.stages = {a, b};
  sp.estimates = {{1.0, 0.5, 4 * kGiB, 1 * kGiB}, {1.5, 0.25, 3 * kGiB, 2 * kGiB}};
  sp.first_device = {0, 4};
  sp.micro_batches = 4;
  sp.iteration_s = 1.0 + 1.5 + 3 * 1.5 + 0.5;
  const Plan p = plan_from_stage_plan(sp, c, 16, "1f1b", "auto");
  REQUIRE_NOTHROW(validate(p));
  CHECK(p.stages[1].devices == std::vector<std::int64_t>{4, 5, 6, 7});
  CHECK(p.stages[1].recompute);
  CHECK(p.stages[0].predicted.memory_bytes_per_device == 4 * kGiB + 2 * kGiB);  // 2 in flight
  CHECK(p.stages[1].predicted.memory_bytes_per_device == 3 * kGiB + 1 * 2 * kGiB);
  CHECK(p.predicted.memory_bytes_per_device == std::vector<double>{6 * kGiB, 5 * kGiB});
  CHECK(p.predicted.iteration_s == 7.5);
  CHECK(p.micro_batch_size() == 4);
  const Plan q = decode_plan_json(encode_plan_json(p));
  check_same_plan(p, q);
  CHECK(stage_devices(8, {2, 4}) == std::vector<std::int64_t>{8, 9, 10, 11, 12, 13, 14, 15});
  CHECK_THROWS_AS(stage_devices(-1, {1, 1}), std::invalid_argument);
}

TEST_CASE("plan_table shows every stage and the totals", "[plan]") {
  const std::string t = plan_table(sample_plan());
  INFO(t);
  CHECK(t.find("stage  layers") == 0);
  CHECK(t.find("\n0      [0, 3)  0-3 ") != std::string::npos);
  CHECK(t.find("dp2 x tp2") != std::string::npos);
  CHECK(t.find("12.50 / 80.00") != std::string::npos);
  CHECK(t.find("15.00 / 16.00") != std::string::npos);
  CHECK(t.find("300.00 ms") != std::string::npos);  // 0.1 + 0.2 s per micro-batch
  CHECK(t.find("micro-batches: 8 x 4") != std::string::npos);
  CHECK(t.find("schedule: 1f1b") != std::string::npos);
  CHECK(t.find("iteration 14.200 s") != std::string::npos);
  CHECK(t.find("48.10 TFLOP/s") != std::string::npos);
  CHECK(t.find("all_reduce 1.40 GiB") != std::string::npos);
  CHECK(t.find("212 ILPs") != std::string::npos);
  CHECK(t.find("phase ilp: 2.500 s") != std::string::npos);
  CHECK(t.find("yes") != std::string::npos);  // stage 1 recomputes
  Plan over = sample_plan();
  over.stages[1].predicted.memory_bytes_per_device = 17 * kGiB;
  CHECK(plan_table(over).find("17.00 / 16.00 !") != std::string::npos);
  CHECK(plan_table(sample_plan()) == t);  // deterministic
}

TEST_CASE("plan_svg is well-formed with one rect per device", "[plan]") {
  Plan p = sample_plan();
  p.stages[0].summary = "dp2 <x> tp2 & \"q\"";
  const SimulationResult sim = simulate_plan(p);
  const std::string svg = plan_svg(p, sim);
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(tag_balance(svg).empty());
  CHECK(count(svg, "<svg ") == 1);
  CHECK(count(svg, "class=\"device\"") == 8);
  // One box per action: 2 stages x (8 forwards + 8 backwards + 1 optimizer).
  CHECK(count(svg, "<rect class=\"forward\"") == 16);
  CHECK(count(svg, "<rect class=\"backward\"") == 16);
  CHECK(count(svg, "<rect class=\"optimizer\"") == 2);
  CHECK(count(svg, "<rect class=\"lane\"") == 2);
  CHECK(svg.find("dp2 &lt;x&gt; tp2 &amp; &quot;q&quot;") != std::string::npos);
  CHECK(svg.find("<x>") == std::string::npos);
  CHECK(plan_svg(p, sim) == svg);  // deterministic
  SimulationResult wrong = sim;
  wrong.stages.pop_back();
  CHECK_THROWS_AS(plan_svg(p, wrong), std::invalid_argument);
  CHECK(xml_escape("a\x01<b>'") == "a&lt;b&gt;&apos;");
}
