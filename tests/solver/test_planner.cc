// Planner-level known-answer tests (solver/plan/planner.h): plan_training on small clusters and
// tiny GPTs, each expected answer derived in its comment. No MPI.
#include <catch2/catch.hpp>
#include <set>
#include <stdexcept>
#include <string>

#include "solver/inter/stage_cost.h"
#include "solver/ir/autodiff.h"
#include "solver/plan/planner.h"

namespace strata::solver {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

HostGroup v100_group(std::int64_t hosts, std::int64_t devices) {
  HostGroup g;
  g.name = "group0";
  g.hosts = hosts;
  g.devices_per_host = devices;
  g.device.kind = "V100-16GB";
  g.device.peak_flops = {{"f16", 125e12}, {"f32", 15.7e12}, {"f64", 7.8e12}};
  g.device.memory_bandwidth_bytes_per_s = 900e9;
  g.device.memory_bytes = 16.0 * kGiB;
  g.device.efficiency = {{"matmul", 0.6}};
  g.device.default_efficiency = 0.5;
  g.intra_host = {1e-5, 1.0 / 150e9};  // NVLink, ~150 GB/s
  return g;
}

// One host of 8 V100s on NVLink.
ClusterSpec one_host8() {
  ClusterSpec c;
  c.name = "v100-1x8";
  c.groups = {v100_group(1, 8)};
  c.inter_host = {5e-5, 1.0 / 3.125e9};  // 25 Gb/s
  return c;
}

// `hosts` hosts of `devices` V100s joined by a very slow link (100 MB/s).
ClusterSpec slow_hosts(std::int64_t hosts, std::int64_t devices) {
  ClusterSpec c;
  c.name = "v100-slow";
  c.groups = {v100_group(hosts, devices)};
  c.inter_host = {1e-4, 1e-8};
  return c;
}

GptConfig small_gpt() {
  GptConfig m;
  m.layers = 2, m.hidden = 64, m.heads = 4, m.seq_len = 32, m.vocab = 256;
  return m;
}

PlannerOptions options(const std::string& method, std::int64_t global_batch,
                       std::int64_t micro_batches) {
  PlannerOptions o;
  o.method = method;
  o.global_batch = global_batch;
  o.micro_batches = micro_batches;
  return o;
}

}  // namespace

// (a) + (f): a 2-block GPT of H = 64 (~0.1 M parameters, ~0.4 MB of f32 gradients) with a batch
// of 256 sequences of 32 tokens, one micro-batch, on one host of 8. Per-device compute of the
// whole batch dominates; replicating the tiny parameters and all-reducing their gradients once
// per iteration over NVLink costs microseconds, so data parallelism over all 8 devices is the
// answer: one stage, mesh (8, 1), summary "dp8...", memory far below 16 GiB. Its ops are the
// whole training graph's, and data parallel must sync gradients: all-reduce (or reduce-scatter
// + all-gather) bytes > 0.
TEST_CASE("data parallel on one 8-device host", "[planner]") {
  const ClusterSpec cluster = one_host8();
  const Plan plan = plan_training(small_gpt(), cluster, options("data-parallel", 256, 1));
  REQUIRE(plan.stages.size() == 1);
  const PlanStage& s = plan.stages[0];
  CHECK(s.logical_mesh.d0 == 8);
  CHECK(s.logical_mesh.d1 == 1);
  CHECK(s.summary.rfind("dp8", 0) == 0);
  CHECK(s.layer_begin == 0);
  CHECK(s.layer_end == small_gpt().layers + 2);
  for (double m : plan.predicted.memory_bytes_per_device) {
    CHECK(m <= cluster.groups[0].device.memory_bytes);
  }
  CHECK(plan.predicted.iteration_s > 0);
  // (f)
  REQUIRE_FALSE(s.ops.empty());
  std::set<std::string> names;
  for (const PlanOp& op : s.ops) {
    CHECK(!op.op.empty());
    CHECK(!op.strategy.empty());
    names.insert(op.op);
  }
  CHECK(names.size() == s.ops.size());  // template names mapped 1:1 (exact range: 2 blocks)
  CHECK(names.count("h.0.attn.qkv") == 1);
  CHECK(names.count("h.1.attn.qkv") == 1);
  const BytesPerStep& b = plan.predicted.bytes_per_step;
  CHECK(b.all_reduce + b.reduce_scatter > 0);
  CHECK(b.p2p == 0);  // one stage: no boundary transfer
}

// (b) Megatron dp2 x tp4 x pp1 on 8 devices: the method fixes one stage (pp = 1) over the whole
// model on the whole host with logical mesh (dp, tp) = (2, 4).
TEST_CASE("megatron dp2 tp4 pp1 on one 8-device host", "[planner]") {
  PlannerOptions o = options("megatron", 64, 1);
  o.dp = 2, o.tp = 4, o.pp = 1;
  const Plan plan = plan_training(small_gpt(), one_host8(), o);
  REQUIRE(plan.stages.size() == 1);
  CHECK(plan.stages[0].logical_mesh.d0 == 2);
  CHECK(plan.stages[0].logical_mesh.d1 == 4);
  CHECK(plan.stages[0].devices.size() == 8);
  CHECK_FALSE(plan.stages[0].ops.empty());
}

// (c) 8 blocks of H = 1024 (~100 M parameters, ~400 MB of f32 gradients) on 2 hosts x 1 device
// joined by a slow link (1 GB/s, alpha 10 us), 16 micro-batches of 1 sequence of 64 tokens.
// One stage over both devices either moves gradients (data parallel: an all-reduce of ~400 MB,
// ~0.8 s) or activations of every op (tensor parallel) over the slow link, or replicates the
// whole computation ("rep2": no communication, but each device computes every micro-batch in
// full: ~6 x 100 M x 64 FLOP = ~39 GFLOP, ~4 ms at 15.7 TFLOP/s x 0.6). Two pipeline stages of
// 4 blocks each compute half (~2 ms) and send the boundary activation [1, 64, 1024] f32 =
// 256 KB forward and its gradient back (~0.27 ms each): ~2.5 ms per micro-batch. So auto
// pipelines. (With a 100 MB/s link the transfers cost ~5 ms per micro-batch and auto rightly
// picks rep2: a slow link alone does not make pipelining pay, compute per boundary byte must.)
TEST_CASE("auto pipelines over a slow inter-host link", "[planner]") {
  GptConfig m;
  m.layers = 8, m.hidden = 1024, m.heads = 8, m.seq_len = 64, m.vocab = 256;
  ClusterSpec cluster = slow_hosts(2, 1);
  cluster.inter_host = {1e-5, 1e-9};
  const Plan plan = plan_training(m, cluster, options("auto", 16, 16));
  CAPTURE(plan.stages.size(), plan.predicted.iteration_s, plan.stages[0].summary,
          plan.stages[0].logical_mesh.d0, plan.stages[0].logical_mesh.d1);
  REQUIRE(plan.stages.size() > 1);
  CHECK(plan.predicted.bytes_per_step.p2p > 0);
  // Every block's ops appear under their GPT-wide names, each exactly once across the stages.
  std::set<std::string> names;
  std::size_t count = 0;
  for (const PlanStage& s : plan.stages) {
    CHECK_FALSE(s.ops.empty());
    for (const PlanOp& op : s.ops) {
      if (names.count(op.op))
        UNSCOPED_INFO("duplicate " << op.op << " in layers " << s.layer_begin);
      names.insert(op.op), ++count;
    }
  }
  CHECK(names.size() == count);
  for (std::int64_t i = 0; i < m.layers; ++i) {
    CHECK(names.count("h." + std::to_string(i) + ".attn.qkv") == 1);
  }
  CHECK(names.count("h." + std::to_string(m.layers) + ".attn.qkv") == 0);
  // ... and they are exactly the ops of the model's training graph.
  Graph g = build_gpt(m, plan.micro_batch_size());
  const TensorId loss = g.at("loss");
  const TrainingGraph training = build_training_graph(g, loss, OptimizerSpec{});
  std::set<std::string> expected;
  for (const Op& op : training.graph.ops) expected.insert(op.name);
  for (const std::string& name : names) {
    CAPTURE(name);
    CHECK(expected.count(name) == 1);
  }
  CHECK(names.size() == expected.size());
}

// (d) A planned plan's JSON round-trips byte for byte and validates.
TEST_CASE("a planned plan round-trips through JSON", "[planner]") {
  PlannerOptions o = options("megatron", 64, 2);
  o.dp = 2, o.tp = 4, o.pp = 1;
  const Plan plan = plan_training(small_gpt(), one_host8(), o);
  REQUIRE_NOTHROW(validate(plan));
  const std::string text = encode_plan_json(plan);
  const Plan back = decode_plan_json(text);
  CHECK(encode_plan_json(back) == text);
  REQUIRE_NOTHROW(validate(back));
  CHECK(back.stages[0].ops.size() == plan.stages[0].ops.size());
}

// (e) Memory that the intra-op pass accepts but the pipeline schedule does not: with GPipe all B
// = 8 micro-batches of activations are in flight, while the intra-op ILP's memory row counts one.
// The data-parallel stage with recomputation needs static + 1 x activation in the ILP; a device
// of static + 2 x activation passes it, but the DP needs static + 8 x activation (and without
// recomputation more: activations only grow), so nothing fits and the DP's message names the
// stage and its GiB.
TEST_CASE("an infeasible request names the stage and GiB", "[planner]") {
  const GptConfig m = small_gpt();
  ClusterSpec c = one_host8();
  IntraOptions base;
  base.restrict_to = "data-parallel";
  base.force_batch_axis0 = true;
  IntraStageCostModel costs(m, OptimizerSpec{}, c, 64, base);
  StageCandidate cand;
  cand.layer_begin = 0, cand.layer_end = m.layers + 2;
  cand.submesh = SubmeshShape{1, 8};
  cand.mesh = LogicalMesh{8, 1};
  cand.micro_batch_size = 8;
  cand.recompute = true;
  const std::optional<StageEstimate> e = costs(cand);
  REQUIRE(e);
  REQUIRE(e->activation_memory_bytes > 0);
  c.groups[0].device.memory_bytes = e->static_memory_bytes + 2 * e->activation_memory_bytes;
  PlannerOptions o = options("data-parallel", 64, 8);
  o.schedule = "gpipe";
  try {
    plan_training(m, c, o);
    FAIL("expected std::invalid_argument");
  } catch (const std::invalid_argument& ex) {
    const std::string what = ex.what();
    CAPTURE(what);
    CHECK(what.find("stage") != std::string::npos);
    CHECK(what.find("GiB") != std::string::npos);
  }
}

// plan.recompute. The small GPT with 256 sequences on one host fits any plan many times over,
// and recomputing only adds a forward pass, so the free search ("auto") recomputes nowhere and
// "never" finds the same iteration time; "always" makes every stage recompute and is slower by
// the recomputed forward. A manual plan sets recomputation per stage and rejects the key; an
// unknown value is an error naming it.
TEST_CASE("plan.recompute forces recomputation on or off", "[planner]") {
  const GptConfig m = small_gpt();
  const auto recomputing = [](const Plan& p) {
    std::int64_t n = 0;
    for (const PlanStage& s : p.stages) n += s.recompute ? 1 : 0;
    return n;
  };
  for (const std::string method : {"auto", "megatron-best"}) {
    INFO(method);
    PlannerOptions o = options(method, 256, 0);
    const Plan free = plan_training(m, one_host8(), o);
    o.recompute = "never";
    const Plan never = plan_training(m, one_host8(), o);
    o.recompute = "always";
    const Plan always = plan_training(m, one_host8(), o);
    CHECK(recomputing(free) == 0);
    CHECK(recomputing(never) == 0);
    CHECK(never.predicted.iteration_s == Approx(free.predicted.iteration_s).epsilon(1e-12));
    CHECK(recomputing(always) == static_cast<std::int64_t>(always.stages.size()));
    CHECK(always.predicted.iteration_s > free.predicted.iteration_s);
  }
  PlannerOptions manual = options("manual", 256, 1);
  manual.stages = {ManualStage{0, m.layers + 2, 1, 8, 8, 1, false}};
  manual.recompute = "always";
  CHECK_THROWS_WITH(plan_training(m, one_host8(), manual),
                    Catch::Contains("plan.recompute") && Catch::Contains("manual"));
  PlannerOptions bad = options("auto", 256, 0);
  bad.recompute = "sometimes";
  CHECK_THROWS_WITH(plan_training(m, one_host8(), bad), Catch::Contains("'sometimes'"));
}

}  // namespace strata::solver
