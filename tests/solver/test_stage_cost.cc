// Tests of the GPT stage cost function (solver/inter/stage_cost.h): per-layer composition
// against the whole-range intra-op optimum, caching of identical blocks, the boundary transfer,
// invalid candidates, and one run of the stage DP on top of it. No MPI.
#include <catch2/catch.hpp>
#include <memory>

#include "solver/cost/cost_model.h"
#include "solver/inter/stage_cost.h"
#include "test_clusters.h"

namespace strata::solver {
namespace {

ClusterSpec v100_host4() { return test::v100_cluster(1, 4, "v100-host4"); }

GptConfig tiny() {
  GptConfig cfg;
  cfg.layers = 2, cfg.hidden = 32, cfg.heads = 2, cfg.seq_len = 16, cfg.vocab = 64;
  return cfg;
}

StageCandidate candidate(std::int64_t begin, std::int64_t end, std::int64_t d0, std::int64_t d1) {
  StageCandidate c;
  c.layer_begin = begin, c.layer_end = end;
  c.submesh = SubmeshShape{1, d0 * d1};
  c.mesh = LogicalMesh{d0, d1};
  c.micro_batch_size = 16;
  return c;
}

// The training graph of `cfg` at micro-batch size `mbs` (what the cost model builds inside).
TrainingGraph training_graph(const GptConfig& cfg, std::int64_t mbs) {
  Graph g = build_gpt(cfg, mbs);
  const TensorId loss = g.at("loss");
  return build_training_graph(g, loss, OptimizerSpec{});
}

// One stage on the whole 1x4 host as logical mesh (1, 4).
StagePlacement host4_1x4() {
  StagePlacement placement;
  placement.devices = 4;
  placement.mesh = MeshShape{1, 4};
  return placement;
}

}  // namespace

// A 3-block GPT (H = 64, S = 32) with micro-batches of 128 sequences (B = 4) on 1x4:
// the whole model [0, 5) has k = 3 > max_whole_blocks + 1 = 2 blocks, so its cost is
// extrapolated from the exact ranges of 1 and 2 blocks, t(1) + 2 (t(2) - t(1)). The plan is
// data parallel along the batch (large batch, small model: test_intra_pass's first case), the
// same in every block, so the extrapolation equals the intra-op optimum of the whole range.
// (On 2x2 the optima of 1, 2 and 3 blocks trade per-micro-batch time against the tail
// differently, near ties, and the extrapolation is 1.2% above the whole-range optimum.)
TEST_CASE("extrapolated stage cost equals the whole-range optimum", "[stage_cost]") {
  GptConfig cfg = tiny();
  cfg.layers = 3, cfg.hidden = 64, cfg.heads = 4, cfg.seq_len = 32;
  Graph g = build_gpt(cfg, 128);
  const TensorId loss = g.at("loss");
  const TrainingGraph tg = build_training_graph(g, loss, OptimizerSpec{});
  for (const auto& [d0, d1] : {std::pair<std::int64_t, std::int64_t>{1, 4}}) {
    IntraStageCostModel model(cfg, OptimizerSpec{}, v100_host4(), 512, IntraOptions{});
    StageCandidate c = candidate(0, 5, d0, d1);
    c.micro_batch_size = 128;
    const std::optional<StageEstimate> e = model(c);
    REQUIRE(e);
    CHECK(model.ilp_solves() == 2);
    StagePlacement placement;
    placement.devices = 4;
    placement.mesh = MeshShape{d0, d1};
    IntraOptions o;
    o.micro_batches = 4;
    const IntraResult whole = solve_intra_op(tg, 0, 5, v100_host4(), placement, o);
    REQUIRE(whole.status == SolveStatus::kOptimal);
    INFO(d0 << "x" << d1 << " " << whole.summary);
    CHECK(e->time_per_microbatch_s == Approx(whole.time_per_microbatch_s).epsilon(1e-9));
    CHECK(e->tail_s == Approx(whole.tail_s).epsilon(1e-9));
    CHECK(e->static_memory_bytes == Approx(whole.static_memory_bytes).epsilon(1e-9));
    CHECK(e->activation_memory_bytes == Approx(whole.activation_memory_bytes).epsilon(1e-9));
  }
}

// Ranges with the same (embedding?, blocks, head?) share one ILP; longer ones reuse the two
// largest exact ranges; a stage that is not last pays the boundary transfer: [16, 16, 32] f32 =
// 32 KiB forward and its gradient back; the 1x4 sub-mesh fills its host, so the next stage is
// on another host: 2 x (50 us + 3.2e-10 x 32768) = 120.97 us.
TEST_CASE("ranges are cached and non-last stages pay the boundary transfer", "[stage_cost]") {
  GptConfig cfg = tiny();
  cfg.layers = 4;
  IntraStageCostModel model(cfg, OptimizerSpec{}, v100_host4(), 64, IntraOptions{});
  const std::optional<StageEstimate> one = model(candidate(1, 2, 1, 4));
  const std::optional<StageEstimate> one_b = model(candidate(3, 4, 1, 4));
  const std::optional<StageEstimate> two = model(candidate(1, 3, 1, 4));
  REQUIRE(one);
  REQUIRE(one_b);
  REQUIRE(two);
  CHECK(model.ilp_solves() == 2);
  const std::optional<StageEstimate> three = model(candidate(2, 5, 1, 4));
  REQUIRE(three);
  CHECK(model.ilp_solves() == 2);
  const double p2p = 2 * (5e-5 + 3.2e-10 * 16 * 16 * 32 * 4);
  const IntraResult r1 = model.solve_template(false, 1, false, candidate(1, 2, 1, 4), 0);
  const IntraResult r2 = model.solve_template(false, 2, false, candidate(1, 2, 1, 4), 0);
  CHECK(one->time_per_microbatch_s == Approx(r1.time_per_microbatch_s + p2p).epsilon(1e-12));
  CHECK(one_b->time_per_microbatch_s == Approx(one->time_per_microbatch_s).epsilon(1e-12));
  CHECK(two->time_per_microbatch_s == Approx(r2.time_per_microbatch_s + p2p).epsilon(1e-12));
  CHECK(three->time_per_microbatch_s ==
        Approx(2 * r2.time_per_microbatch_s - r1.time_per_microbatch_s + p2p).epsilon(1e-12));
  CHECK(model.ilp_solves() == 2);
  // Invalid: micro-batch size not dividing the batch, mesh not matching the sub-mesh.
  StageCandidate bad = candidate(1, 2, 1, 4);
  bad.micro_batch_size = 24;
  CHECK_FALSE(model(bad));
  bad = candidate(1, 2, 1, 4);
  bad.mesh = LogicalMesh{2, 4};
  CHECK_FALSE(model(bad));
}

// The stage DP runs on top of the cost function (a smoke test of the StageCostFn contract).
TEST_CASE("the stage DP plans a tiny GPT with the intra-op cost function", "[stage_cost]") {
  ClusterSpec cluster = v100_host4();
  cluster.groups[0].devices_per_host = 2;
  auto model =
      std::make_shared<IntraStageCostModel>(tiny(), OptimizerSpec{}, cluster, 64, IntraOptions{});
  StageDpOptions o;
  o.num_layers = 4;
  o.groups = {DeviceGroup{1, 2, 16.0 * 1024 * 1024 * 1024}};
  o.global_batch = 64;
  o.micro_batches = 4;
  o.allow_recompute = false;
  const StageDpResult r = plan_stages(o, IntraStageCostModel::as_function(model));
  REQUIRE(r.plan);
  CHECK(r.plan->iteration_s > 0);
  // Distinct ranges (embedding?, 0-2 blocks, head?) x the 3 logical meshes of 1 and 2 devices.
  CHECK(model->ilp_solves() <= 12 * 3);
}

namespace strata::solver {

// Memory variants: the whole 2-block tiny GPT on 1x4, with a device 10% too small for its
// least-time plan. Variant 0 is the least-time plan (whatever the device); variants 1, 2, ...
// are leaner and slower, and each is the exact least-time plan under a memory budget equal to
// its own memory (checked against the budgeted ILP of solve_intra_op). A device with room
// offers no variant beyond 0.
TEST_CASE("memory variants are the exact optima of their own budgets", "[stage_cost]") {
  const GptConfig cfg = tiny();
  const std::int64_t global_batch = 64;
  StageCandidate c = candidate(0, 4, 1, 4);
  IntraStageCostModel roomy(cfg, OptimizerSpec{}, v100_host4(), global_batch, IntraOptions{});
  const std::optional<StageEstimate> e0 = roomy(c);
  REQUIRE(e0);
  const double need = e0->static_memory_bytes + e0->activation_memory_bytes;
  c.variant = 1;
  CHECK_FALSE(roomy(c));

  ClusterSpec small = v100_host4();
  small.groups[0].device.memory_bytes = 0.9 * need;
  IntraStageCostModel tight(cfg, OptimizerSpec{}, small, global_batch, IntraOptions{});
  const TrainingGraph tg = training_graph(cfg, c.micro_batch_size);
  const StagePlacement placement = host4_1x4();
  const double B = static_cast<double>(global_batch / c.micro_batch_size);
  double previous_memory = need, previous_time = e0->time_per_microbatch_s;
  int variants = 0;
  for (std::int32_t v = 1; v < IntraStageCostModel::kMaxVariants; ++v) {
    c.variant = v;
    const std::optional<StageEstimate> e = tight(c);
    if (!e) break;
    ++variants;
    const double memory = e->static_memory_bytes + e->activation_memory_bytes;
    INFO("variant " << v << ": " << memory << " bytes, " << e->time_per_microbatch_s << " s");
    CHECK(memory < previous_memory);
    CHECK(e->time_per_microbatch_s + e->tail_s / B >= previous_time);
    IntraOptions budgeted;
    budgeted.micro_batches = global_batch / c.micro_batch_size;
    budgeted.memory_budget_bytes = memory;
    const IntraResult exact = solve_intra_op(tg, 0, 4, small, placement, budgeted);
    REQUIRE(exact.status == SolveStatus::kOptimal);
    CHECK(exact.ilp.objective_s == Approx(e->time_per_microbatch_s + e->tail_s / B).epsilon(1e-9));
    previous_memory = memory;
    previous_time = e->time_per_microbatch_s + e->tail_s / B;
  }
  CHECK(variants >= 1);
  c.variant = 0;
  const std::optional<StageEstimate> same = tight(c);
  REQUIRE(same);
  CHECK(same->time_per_microbatch_s == e0->time_per_microbatch_s);
}

}  // namespace strata::solver

// A leaner variant is the fastest plan on the stage's memory/time frontier that fits, where the
// model can find it. The whole tiny GPT as one stage on 1x4 keeps one micro-batch in flight, so
// variant 1 targets one micro-batch. The model computes a coarse frontier up front
// (kFrontierPoints vertices) and bisects only the gap before its leanest vertex (stage_cost.h):
// for device capacities in that gap (between the least memory and the coarse frontier's
// second-leanest vertex) variant 1 must cost exactly what the fastest fitting vertex of the full
// frontier (IntraStage::frontier with room for every vertex) costs; above it, it must fit and
// cost no less. With set_refine_every_gap it must be within kRefineGap of that vertex anywhere.
TEST_CASE("a leaner variant is the fastest frontier vertex that fits", "[stage_cost]") {
  const GptConfig cfg = tiny();
  const std::int64_t global_batch = 64;
  StageCandidate c = candidate(0, 4, 1, 4);
  c.variant = 1;
  const TrainingGraph tg = training_graph(cfg, c.micro_batch_size);
  const StagePlacement placement = host4_1x4();
  IntraOptions options;
  options.micro_batches = global_batch / c.micro_batch_size;
  const IntraStage stage(tg, 0, 4, v100_host4(), placement, options);
  const auto memory = [](const auto& r) {
    return r.static_memory_bytes + r.activation_memory_bytes;
  };
  const std::vector<IntraResult> full = stage.frontier(1000, IntraStage::Detail::kCosts);
  const std::vector<IntraResult> coarse =
      stage.frontier(IntraStageCostModel::kFrontierPoints, IntraStage::Detail::kCosts);
  REQUIRE(coarse.size() >= 3);
  REQUIRE(full.size() > coarse.size());  // else there is nothing to find
  const double least = memory(full.back());
  const double refined_up_to = memory(coarse[coarse.size() - 2]);
  const double B = static_cast<double>(options.micro_batches);
  int exact = 0;
  std::vector<double> capacities;  // 7 in the refined gap, 7 above it
  for (int i = 1; i < 8; ++i) {
    capacities.push_back(least + (refined_up_to - least) * i / 8.0);
    capacities.push_back(refined_up_to + (memory(full.front()) - refined_up_to) * i / 8.0);
  }
  for (const double capacity : capacities) {
    double best = -1;  // the fastest vertex that fits
    for (const IntraResult& r : full) {
      if (memory(r) <= capacity) {
        best = r.ilp.objective_s;
        break;
      }
    }
    REQUIRE(best > 0);
    ClusterSpec small = v100_host4();
    small.groups[0].device.memory_bytes = capacity;
    IntraStageCostModel model(cfg, OptimizerSpec{}, small, global_batch, IntraOptions{});
    const std::optional<StageEstimate> e = model(c);
    REQUIRE(e);
    INFO("capacity " << capacity << " of [" << least << ", " << memory(full.front()) << "], "
                     << full.size() << " vertices, gap refined below " << refined_up_to);
    const double cost = e->time_per_microbatch_s + e->tail_s / B;
    CHECK(memory(*e) <= capacity);
    if (capacity < refined_up_to) {
      CHECK(cost == Approx(best).epsilon(1e-9));
      ++exact;
    } else {
      CHECK(cost >= best * (1 - 1e-9));
    }
    // Bisecting every gap (small searches) finds the best vertex to within kRefineGap anywhere.
    IntraStageCostModel every(cfg, OptimizerSpec{}, small, global_batch, IntraOptions{});
    every.set_refine_every_gap(true);
    const std::optional<StageEstimate> f = every(c);
    REQUIRE(f);
    const double cost_every = f->time_per_microbatch_s + f->tail_s / B;
    CHECK(memory(*f) <= capacity);
    CHECK(cost_every >= best * (1 - 1e-9));
    CHECK(cost_every <= best * (1 + IntraStageCostModel::kRefineGap));
    CHECK(cost_every <= cost * (1 + 1e-12));
  }
  CHECK(exact == 7);
}

// Under GPipe a stage holds all B micro-batches in flight, under 1F1B the last (here the only)
// stage one. The whole tiny GPT as one stage on 1x4 with B = 4 micro-batches, on a device of the
// least-time plan's static memory plus two micro-batches of its activations: under 1F1B that plan
// fits (one in flight) and no leaner variant is offered; under GPipe it does not (four in
// flight), so variant 1 exists and is leaner with four in flight.
TEST_CASE("leaner variants follow the schedule's in-flight micro-batches", "[stage_cost]") {
  const GptConfig cfg = tiny();
  const std::int64_t global_batch = 64;
  StageCandidate c = candidate(0, 4, 1, 4);
  const std::optional<StageEstimate> e0 =
      IntraStageCostModel(cfg, OptimizerSpec{}, v100_host4(), global_batch, IntraOptions{})(c);
  REQUIRE(e0);
  REQUIRE(e0->activation_memory_bytes > 0);
  const double B = static_cast<double>(global_batch / c.micro_batch_size);
  ClusterSpec small = v100_host4();
  small.groups[0].device.memory_bytes = e0->static_memory_bytes + 2 * e0->activation_memory_bytes;
  c.variant = 1;
  IntraStageCostModel one_f_one_b(cfg, OptimizerSpec{}, small, global_batch, IntraOptions{});
  CHECK_FALSE(one_f_one_b(c));
  IntraStageCostModel gpipe(cfg, OptimizerSpec{}, small, global_batch, IntraOptions{});
  gpipe.set_schedule("gpipe");
  const std::optional<StageEstimate> e1 = gpipe(c);
  REQUIRE(e1);
  CHECK(e1->static_memory_bytes + B * e1->activation_memory_bytes <
        e0->static_memory_bytes + B * e0->activation_memory_bytes);
  CHECK_THROWS_AS(gpipe.set_schedule("interleaved"), std::invalid_argument);
}

}  // namespace strata::solver
