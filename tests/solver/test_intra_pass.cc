// Tests of the intra-op pass (solver/intra/intra_pass.h): known plans derived from the cost
// formulas (data parallelism for a small model with a large batch, Megatron tensor parallelism
// for a wide one), the memory model and budget, follower merging, restrict_to and the objective
// cross-check. Cluster: one host of 8 V100-like devices (NVLink), built here. No MPI.
#include <catch2/catch.hpp>
#include <cmath>

#include "solver/intra/intra_pass.h"
#include "solver/ir/gpt.h"
#include "test_clusters.h"

namespace strata::solver {
namespace {

ClusterSpec v100_host() { return test::v100_cluster(1, 8, "v100-host"); }

TrainingGraph gpt_training(const GptConfig& cfg, std::int64_t batch) {
  Graph g = build_gpt(cfg, batch);
  const TensorId loss = g.at("loss");
  return build_training_graph(g, loss, OptimizerSpec{});
}

StagePlacement on_host(std::int64_t d0, std::int64_t d1) {
  StagePlacement p;
  p.devices = d0 * d1;
  p.mesh = MeshShape{d0, d1};
  return p;
}

const Op& op_named(const TrainingGraph& tg, const std::string& name) {
  for (const Op& op : tg.graph.ops) {
    if (op.name == name) return op;
  }
  FAIL("no op " << name);
  return tg.graph.ops.front();
}
OpId id_of(const TrainingGraph& tg, const std::string& name) {
  return static_cast<OpId>(&op_named(tg, name) - tg.graph.ops.data());
}

double param_bytes(const TrainingGraph& tg) {
  double b = 0;
  for (TensorId p : tg.graph.tensors_with_role(TensorRole::kParameter)) {
    b += static_cast<double>(num_bytes(tg.graph.tensor(p)));
  }
  return b;
}

bool has_letter(const TrainingGraph& tg, const Op& op, char c) {
  for (const auto& [l, n] : index_extents(tg.graph, op)) {
    if (l == c) return true;
  }
  return false;
}

void check_objective(const IntraResult& r, std::int64_t micro_batches) {
  // (e) of the ILP: objective = time per micro-batch + tail / B, re-evaluated op by op.
  const double total = r.time_per_microbatch_s + r.tail_s / static_cast<double>(micro_batches);
  CHECK(r.ilp.objective_s == Approx(total).epsilon(1e-9));
}

}  // namespace

// GPT L=2, H=64, A=4, S=32, V=256, micro-batch 512 sequences, f32, one 1x8 mesh, B=1.
// Data parallelism: each device runs 64 sequences, no communication per micro-batch; per
// iteration one all-reduce of each parameter's gradient: ~ 28 collectives x (10 us + 8e-12 s/B x
// 2 x 7/8 x bytes) ~ 0.3 ms for ~0.2 MB of parameters. FLOPs ~ 6 x 16k tokens x ~0.12M params
// + attention ~ 1.4e10 -> 1.5 ms at 9.4 TFLOP/s per device when split 8 ways. Any tensor
// parallel split of a matmul (heads, columns, rows) leaves the [512,32,64] activations to be
// all-reduced / gathered every micro-batch: 4 MB each, >= 10 us + 56 us per collective and
// several per layer, plus the replicated elementwise ops; and compute not split over b runs
// 8x longer. So every matmul splits b over all 8 devices.
TEST_CASE("small GPT with a large batch plans data parallelism", "[intra_pass]") {
  GptConfig cfg;
  cfg.layers = 2, cfg.hidden = 64, cfg.heads = 4, cfg.seq_len = 32, cfg.vocab = 256;
  const TrainingGraph tg = gpt_training(cfg, 512);
  IntraOptions o;
  const IntraResult r = solve_intra_op(tg, 0, 4, v100_host(), on_host(1, 8), o);
  REQUIRE(r.status == SolveStatus::kOptimal);
  INFO(r.summary);
  CHECK(r.summary.rfind("dp8", 0) == 0);
  for (const auto& [id, s] : r.chosen) {
    const Op& op = tg.graph.ops[static_cast<std::size_t>(id)];
    if (op.kind == OpKind::kMatMul) {
      INFO(op.name << ": " << s.name);
      CHECK(s.axis_letter[1] == 'b');
    }
  }
  // One gradient collective per parameter per iteration: all-reduce (B = the gradient) or
  // reduce-scatter (B = the gradient) of every parameter, plus at most a scalar (8 bytes) per
  // parameter for a sharded sum of squares, nothing else.
  double grad_bytes = 0;
  for (const auto& [kind, bytes] : r.bytes_per_iteration) {
    INFO(kind << " " << bytes);
    if (kind == "all_reduce" || kind == "reduce_scatter") grad_bytes += bytes;
  }
  const double params = param_bytes(tg);
  CHECK(grad_bytes >= params);
  CHECK(grad_bytes <= params + 8.0 * 64);
  check_objective(r, 1);
  CHECK(r.static_memory_bytes + r.activation_memory_bytes <= 16.0 * 1024 * 1024 * 1024);
}

// GPT L=1, H=2560, A=32, S=1024, V=512, f16, global batch 8 = one micro-batch, 2x4 mesh.
// Data parallel over 8: gradient all-reduce of 78.7M f16 parameters (157 MB):
//   8e-12 x 2 x 7/8 x 157e6 = 2.2 ms per iteration.
// Megatron on the size-2 axis x dp4: per micro-batch 4 all-reduces (after attention and MLP in
// forward, of dx of c_attn and c_fc in backward) of [2,1024,2560] f16 = 10.5 MB over 2 devices:
//   4 x (10 us + 8e-12 x 2 x 1/2 x 10.5e6) = 0.38 ms, plus the gradient all-reduce of half the
//   parameters over 4: 8e-12 x 2 x 3/4 x 79e6 = 0.94 ms -> 1.3 ms < 2.2 ms; the replicated
//   elementwise work on the tp axis (~10 ops of 10.5 MB, ~25 us each) costs less than the gap.
// So the plan is dp x tp with Megatron's layouts: c_attn split by heads (column), attn c_proj
// by its head rows (output partial, all-reduced), c_fc by columns, mlp c_proj by rows.
TEST_CASE("wide GPT on one host plans Megatron tensor parallelism", "[intra_pass]") {
  GptConfig cfg;
  cfg.layers = 1, cfg.hidden = 2560, cfg.heads = 32, cfg.seq_len = 1024, cfg.vocab = 512;
  cfg.dtype = DType::kF16;
  const TrainingGraph tg = gpt_training(cfg, 8);
  IntraOptions o;
  o.dtype = "f16";
  const IntraResult r = solve_intra_op(tg, 0, 3, v100_host(), on_host(2, 4), o);
  REQUIRE(r.status == SolveStatus::kOptimal);
  INFO(r.summary);
  CHECK(r.summary.find("tp") != std::string::npos);
  CHECK(r.summary.find("dp") != std::string::npos);
  const Strategy& qkv = r.chosen.at(id_of(tg, "h.0.attn.qkv"));
  const Strategy& proj = r.chosen.at(id_of(tg, "h.0.attn.proj"));
  const Strategy& fc = r.chosen.at(id_of(tg, "h.0.mlp.fc"));
  const Strategy& mproj = r.chosen.at(id_of(tg, "h.0.mlp.proj"));
  INFO(qkv.name << " | " << proj.name << " | " << fc.name << " | " << mproj.name);
  // The tensor-parallel axis: the one splitting the heads of c_attn [H,3,A,D].
  const AxisSet tp = qkv.inputs[1].dims[2];
  REQUIRE((tp == kAxis0 || tp == kAxis1));
  const AxisSet dp = tp == kAxis0 ? kAxis1 : kAxis0;
  CHECK(qkv.inputs[1].dims[0] == kNoAxes);  // c_attn: column split (heads), rows whole
  CHECK(proj.inputs[1].dims[0] == tp);      // attn c_proj [A,D,H]: row split by heads
  CHECK(proj.outputs[0].partial == tp);     // -> all-reduce after attention
  CHECK(fc.inputs[1].dims[1] == tp);        // c_fc [H,4H]: column split
  CHECK(mproj.inputs[1].dims[0] == tp);     // mlp c_proj [4H,H]: row split
  CHECK(mproj.outputs[0].partial == tp);    // -> all-reduce after the MLP
  CHECK(qkv.inputs[0].dims[0] == dp);       // batch over the other axis
  check_objective(r, 1);
  CHECK(r.static_memory_bytes + r.activation_memory_bytes <= 16.0 * 1024 * 1024 * 1024);
}

// Memory: without a budget the small model's plan keeps parameters replicated (static S0 per
// device). With a budget of S0 / 2 + the activations, replicated storage no longer fits, so the
// plan must shard parameters/optimizer state (ZeRO, possible down to S0 / 8) or the weights.
TEST_CASE("a tight memory budget makes the plan shard more", "[intra_pass]") {
  GptConfig cfg;
  cfg.layers = 1, cfg.hidden = 64, cfg.heads = 4, cfg.seq_len = 16, cfg.vocab = 256;
  const TrainingGraph tg = gpt_training(cfg, 64);
  IntraOptions o;
  o.micro_batches = 4;
  const IntraResult loose = solve_intra_op(tg, 0, 3, v100_host(), on_host(1, 8), o);
  REQUIRE(loose.status == SolveStatus::kOptimal);
  CHECK(loose.static_memory_bytes + loose.activation_memory_bytes <= 16.0 * 1024 * 1024 * 1024);
  // AdamW f32: p + g + m + v = 16 bytes per parameter, replicated.
  CHECK(loose.static_memory_bytes == Approx(4 * param_bytes(tg)));
  o.memory_budget_bytes = loose.static_memory_bytes / 2 + loose.activation_memory_bytes;
  const IntraResult tight = solve_intra_op(tg, 0, 3, v100_host(), on_host(1, 8), o);
  REQUIRE(tight.status == SolveStatus::kOptimal);
  INFO(loose.summary << " -> " << tight.summary);
  CHECK(tight.static_memory_bytes < loose.static_memory_bytes);
  CHECK(tight.static_memory_bytes + tight.activation_memory_bytes <= o.memory_budget_bytes);
  CHECK(tight.time_per_microbatch_s + tight.tail_s / 4 >=
        loose.time_per_microbatch_s + loose.tail_s / 4 - 1e-12);
  check_objective(tight, 4);
  // Mixed precision: f32 compute with f64 master weights and AdamW state holds, per parameter,
  // 8 master + 8 gradient accumulator + 2 x 8 state + 4 compute copy = 36 bytes (9 x the f32
  // parameter bytes); bf16 with f32 masters 10 + 8 = 18 (9 x the bf16 parameter bytes).
  IntraOptions mixed = o;
  mixed.memory_budget_bytes = 0;
  mixed.master_dtype = "f64";
  const IntraResult wide = solve_intra_op(tg, 0, 3, v100_host(), on_host(1, 8), mixed);
  REQUIRE(wide.status == SolveStatus::kOptimal);
  CHECK(wide.static_memory_bytes == Approx(9 * param_bytes(tg)));
  mixed.master_dtype = "f32";  // not wider than the compute dtype: not mixed
  CHECK(solve_intra_op(tg, 0, 3, v100_host(), on_host(1, 8), mixed).static_memory_bytes ==
        Approx(loose.static_memory_bytes));
  // A budget below the smallest possible footprint is reported, not thrown.
  o.memory_budget_bytes = 1000;
  CHECK(solve_intra_op(tg, 0, 3, v100_host(), on_host(1, 8), o).status == SolveStatus::kInfeasible);
}

// Follower merging must not change the optimum: the same stage solved with one node per op and
// with followers merged gives the same objective (both exact solves), on a 2x2 mesh with
// 4 micro-batches (gradient collectives at 1/4) and with recomputation.
TEST_CASE("merging followers keeps the optimum", "[intra_pass]") {
  GptConfig cfg;
  cfg.layers = 1, cfg.hidden = 32, cfg.heads = 2, cfg.seq_len = 16, cfg.vocab = 64;
  const TrainingGraph tg = gpt_training(cfg, 16);
  struct Case {
    bool recompute;
    std::int64_t begin, end, d0, d1;
  };
  for (const Case& c : {Case{false, 1, 3, 2, 2}, Case{true, 1, 3, 2, 2}, Case{false, 0, 3, 1, 4}}) {
    IntraOptions o;
    o.micro_batches = 4;
    o.recompute = c.recompute;
    const bool recompute = c.recompute;
    const IntraResult merged =
        solve_intra_op(tg, c.begin, c.end, v100_host(), on_host(c.d0, c.d1), o);
    o.merge_followers = false;
    const IntraResult plain =
        solve_intra_op(tg, c.begin, c.end, v100_host(), on_host(c.d0, c.d1), o);
    REQUIRE(merged.status == SolveStatus::kOptimal);
    REQUIRE(plain.status == SolveStatus::kOptimal);
    INFO("layers " << c.begin << ".." << c.end << " mesh " << c.d0 << "x" << c.d1 << " recompute "
                   << recompute << ": " << merged.num_nodes << " vs " << plain.num_nodes
                   << " nodes; " << merged.summary << " / " << plain.summary);
    CHECK(merged.num_nodes < plain.num_nodes);
    CHECK(plain.num_nodes == plain.num_ops);
    CHECK(merged.ilp.objective_s == Approx(plain.ilp.objective_s).epsilon(1e-9));
    check_objective(merged, 4);
    check_objective(plain, 4);
  }
}

// restrict_to "data-parallel" on a 2x4 mesh: every forward/backward op with a batch index
// splits it over both axes (S01), every parameter is stored replicated; "zero3" stores every
// parameter split over all 8 devices; "megatron" keeps b on axis 0 and parameters replicated
// over axis 0.
TEST_CASE("restrict_to gives exactly the plan method", "[intra_pass]") {
  GptConfig cfg;
  cfg.layers = 1, cfg.hidden = 64, cfg.heads = 4, cfg.seq_len = 16, cfg.vocab = 256;
  const TrainingGraph tg = gpt_training(cfg, 16);
  IntraOptions o;
  o.restrict_to = "data-parallel";
  const IntraResult dp = solve_intra_op(tg, 0, 3, v100_host(), on_host(2, 4), o);
  REQUIRE(dp.status == SolveStatus::kOptimal);
  CHECK(dp.summary == "dp8");
  for (const auto& [id, s] : dp.chosen) {
    const Op& op = tg.graph.ops[static_cast<std::size_t>(id)];
    INFO(op.name << ": " << s.name);
    if (op.phase != OpPhase::kOptimizer && has_letter(tg, op, 'b')) {
      CHECK(s.axis_letter[0] == 'b');
      CHECK(s.axis_letter[1] == 'b');
    }
    if (op.kind == OpKind::kAdamW) CHECK(s.inputs[0].used_axes() == kNoAxes);
  }
  check_objective(dp, 1);

  o.restrict_to = "zero3";
  const IntraResult z3 = solve_intra_op(tg, 0, 3, v100_host(), on_host(2, 4), o);
  REQUIRE(z3.status == SolveStatus::kOptimal);
  for (const auto& [id, s] : z3.chosen) {
    const Op& op = tg.graph.ops[static_cast<std::size_t>(id)];
    if (op.kind == OpKind::kAdamW) {
      INFO(op.name << ": " << s.name);
      CHECK(axes_size(s.inputs[0].used_axes(), MeshShape{2, 4}) == 8);
    }
  }
  CHECK(z3.static_memory_bytes == Approx(dp.static_memory_bytes / 8));
  CHECK(z3.time_per_microbatch_s > dp.time_per_microbatch_s);  // all-gathers every use

  o.restrict_to = "megatron";
  const IntraResult mt = solve_intra_op(tg, 0, 3, v100_host(), on_host(2, 4), o);
  REQUIRE(mt.status == SolveStatus::kOptimal);
  for (const auto& [id, s] : mt.chosen) {
    const Op& op = tg.graph.ops[static_cast<std::size_t>(id)];
    INFO(op.name << ": " << s.name);
    if (op.phase != OpPhase::kOptimizer && has_letter(tg, op, 'b')) {
      CHECK(s.axis_letter[0] == 'b');
      CHECK(s.axis_letter[1] != 'b');
    }
    if (op.kind == OpKind::kAdamW) CHECK(s.axis_letter[0] == '\0');
  }
  o.restrict_to = "pipeline";
  CHECK_THROWS_AS(solve_intra_op(tg, 0, 3, v100_host(), on_host(2, 4), o), std::invalid_argument);
}

}  // namespace strata::solver

namespace strata::solver {

// with_recompute(r) must equal a stage built anew with options.recompute = r: compared through
// what the ILP sees (least memory, the least-time plan's time, tail and memory, and one
// memory-weighted plan), both ways, on a 2-D mesh with merging, and for zero2 (whose gathered
// copies have their own weights and memory terms).
TEST_CASE("with_recompute equals building the stage anew", "[intra_pass]") {
  GptConfig cfg;
  cfg.layers = 2, cfg.hidden = 64, cfg.heads = 4, cfg.seq_len = 32, cfg.vocab = 256;
  const TrainingGraph tg = gpt_training(cfg, 16);
  for (const std::string restrict : {"", "zero2"}) {
    for (const bool from : {false, true}) {
      IntraOptions o;
      o.micro_batches = 4;
      o.in_flight_microbatches = 3;
      o.restrict_to = restrict;
      o.recompute = from;
      const IntraStage built(tg, 1, 3, v100_host(), on_host(2, 4), o);
      o.recompute = !from;
      const IntraStage fresh(tg, 1, 3, v100_host(), on_host(2, 4), o);
      const IntraStage derived = built.with_recompute(!from);
      INFO("restrict_to '" << restrict << "', recompute " << from << " -> " << !from);
      CHECK(derived.least_memory_bytes() == fresh.least_memory_bytes());
      CHECK(derived.least_memory_bytes() != built.least_memory_bytes());
      for (const double lambda : {0.0, 1e-12}) {
        const IntraResult a = derived.solve_weighted(lambda), b = fresh.solve_weighted(lambda);
        REQUIRE(a.status == SolveStatus::kOptimal);
        REQUIRE(b.status == SolveStatus::kOptimal);
        CHECK(a.ilp.objective_s == Approx(b.ilp.objective_s).epsilon(1e-12));
        CHECK(a.time_per_microbatch_s == Approx(b.time_per_microbatch_s).epsilon(1e-12));
        CHECK(a.tail_s == Approx(b.tail_s).epsilon(1e-12));
        CHECK(a.activation_memory_bytes == b.activation_memory_bytes);
        CHECK(a.static_memory_bytes == b.static_memory_bytes);
        CHECK(a.strategy_name == b.strategy_name);
      }
      // Recomputation runs the forward twice: strictly slower at the least-time plan.
      const double t_built = built.solve_weighted(0).time_per_microbatch_s;
      const double t_derived = derived.solve_weighted(0).time_per_microbatch_s;
      CHECK((from ? t_built > t_derived : t_derived > t_built));
    }
  }
}

}  // namespace strata::solver
