// Stage-program tests (solver/plan/stage_program.h): build_stage_programs over a tiny GPT's real
// training graph, planned by plan_training for data-parallel, megatron and manual pipelines.
// Checked against references derived here from the graph itself (which stage holds which layer,
// which tensors a stage reads that another stage makes), and program_bytes_per_step against
// byte counts written out by hand in the comments. No MPI.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "solver/intra/cross_mesh.h"
#include "solver/ir/autodiff.h"
#include "solver/ir/gpt.h"
#include "solver/plan/planner.h"
#include "solver/plan/stage_program.h"
#include "test_clusters.h"

using namespace strata::solver;

namespace {

// L = 2 blocks, H = 16, A = 2 heads, S = 8, V = 32. Graph layers: 0 embedding, 1 and 2 the
// blocks, 3 final LN + tied head + loss.
GptConfig tiny_gpt() {
  GptConfig m;
  m.layers = 2, m.hidden = 16, m.heads = 2, m.seq_len = 8, m.vocab = 32;
  return m;
}

OptimizerSpec adamw_clipped() {
  OptimizerSpec o;
  o.kind = "adamw";
  o.weight_decay = 0.01;
  o.clip_grad_norm = 1.0;
  return o;
}

PlannerOptions options(const std::string& method, std::int64_t global_batch,
                       std::int64_t micro_batches) {
  PlannerOptions o;
  o.method = method;
  o.global_batch = global_batch;
  o.micro_batches = micro_batches;
  o.optimizer = adamw_clipped();
  return o;
}

// The training graph the runtime builds for `plan`: the forward graph at the plan's micro-batch
// size, with the same optimizer.
TrainingGraph training_for(const Plan& plan) {
  const Graph forward = build_gpt(tiny_gpt(), plan.micro_batch_size());
  return build_training_graph(forward, forward.at("loss"), adamw_clipped());
}

// Plans, each made once and shared by the test cases (planning is the slow part).
// data parallel over 1 host x 2 devices: one stage, mesh (2, 1); 8 sequences in 2 micro-batches.
const Plan& dp2_plan() {
  static const Plan plan =
      plan_training(tiny_gpt(), test::v100_cluster(1, 2), options("data-parallel", 8, 2));
  return plan;
}
// megatron dp1 x tp2 x pp2 on 1 host x 4: stages [0, 2) and [2, 4), each on mesh (1, 2).
const Plan& megatron_plan() {
  static const Plan plan = [] {
    PlannerOptions o = options("megatron", 8, 2);
    o.dp = 1, o.tp = 2, o.pp = 2;
    return plan_training(tiny_gpt(), test::v100_cluster(1, 4), o);
  }();
  return plan;
}
// manual: stages [0, 2) and [2, 4) on one device each (1 host x 2), 4 sequences in 2
// micro-batches of 2.
const Plan& manual_1x1_plan() {
  static const Plan plan = [] {
    PlannerOptions o = options("manual", 4, 2);
    o.stages = {ManualStage{0, 2, 1, 1, 1, 1, false}, ManualStage{2, 4, 1, 1, 1, 1, false}};
    return plan_training(tiny_gpt(), test::v100_cluster(1, 2), o);
  }();
  return plan;
}
// manual: stage [0, 3) on mesh (2, 1) with recomputation, stage [3, 4) (the head) on mesh (1, 2),
// 1 host x 4, 8 sequences in 4 micro-batches.
const Plan& manual_mixed_plan() {
  static const Plan plan = [] {
    PlannerOptions o = options("manual", 8, 4);
    o.stages = {ManualStage{0, 3, 1, 2, 2, 1, true}, ManualStage{3, 4, 1, 2, 1, 2, false}};
    return plan_training(tiny_gpt(), test::v100_cluster(1, 4), o);
  }();
  return plan;
}

// Stage holding `layer`, from the plan's layer ranges (independent of the code under test).
std::int64_t stage_of_layer(const Plan& plan, int layer) {
  for (std::size_t s = 0; s < plan.stages.size(); ++s)
    if (layer >= plan.stages[s].layer_begin && layer < plan.stages[s].layer_end)
      return static_cast<std::int64_t>(s);
  return -1;
}

OpId op_id(const Graph& g, const std::string& name) {
  for (std::size_t o = 0; o < g.ops.size(); ++o)
    if (g.ops[o].name == name) return static_cast<OpId>(o);
  FAIL("no op " << name);
  return -1;
}

// The structural invariants every program set must satisfy, checked against the graph.
void check_structure(const TrainingGraph& training, const Plan& plan, const ProgramSet& ps) {
  const Graph& g = training.graph;
  REQUIRE(ps.stages.size() == plan.stages.size());
  REQUIRE(ps.stage_of_op.size() == g.ops.size());
  REQUIRE(ps.bucket_of_op.size() == g.ops.size());
  REQUIRE(ps.layouts.size() == g.ops.size());

  const std::vector<char> accumulated = gradient_accumulated(g);
  CHECK(ps.accumulated == accumulated);

  // Every op in exactly one stage's bucket lists: the stage of its layer; lists in graph order.
  std::vector<int> seen(g.ops.size(), 0);
  for (const StageProgram& sp : ps.stages) {
    CHECK(sp.mesh.d0 == plan.stages[static_cast<std::size_t>(sp.stage)].logical_mesh.d0);
    CHECK(sp.mesh.d1 == plan.stages[static_cast<std::size_t>(sp.stage)].logical_mesh.d1);
    CHECK(sp.devices == plan.stages[static_cast<std::size_t>(sp.stage)].devices);
    const std::pair<const std::vector<OpId>*, OpBucket> lists[] = {
        {&sp.forward_ops, OpBucket::kForward},
        {&sp.backward_ops, OpBucket::kBackward},
        {&sp.iteration_ops, OpBucket::kIteration}};
    for (const auto& [list, bucket] : lists) {
      CHECK(std::is_sorted(list->begin(), list->end()));
      for (OpId id : *list) {
        const auto o = static_cast<std::size_t>(id);
        INFO(g.ops[o].name);
        ++seen[o];
        CHECK(ps.stage_of_op[o] == sp.stage);
        CHECK(ps.bucket_of_op[o] == bucket);
        CHECK(stage_of_layer(plan, g.ops[o].layer) == sp.stage);
      }
    }
  }
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    INFO(g.ops[o].name);
    CHECK(seen[o] == 1);
    // forward ops run per micro-batch; optimizer ops once per iteration
    if (g.ops[o].phase == OpPhase::kForward) CHECK(ps.bucket_of_op[o] == OpBucket::kForward);
    if (g.ops[o].phase == OpPhase::kOptimizer) CHECK(ps.bucket_of_op[o] == OpBucket::kIteration);
    // backward ops once per micro-batch, except those reading an accumulated gradient
    if (g.ops[o].phase == OpPhase::kBackward) {
      const bool reads_accumulated =
          std::any_of(g.ops[o].inputs.begin(), g.ops[o].inputs.end(),
                      [&](TensorId t) { return accumulated[static_cast<std::size_t>(t)] != 0; });
      CHECK(ps.bucket_of_op[o] == (reads_accumulated ? OpBucket::kIteration : OpBucket::kBackward));
    }
    CHECK(ps.layouts[o].inputs.size() == g.ops[o].inputs.size());
    CHECK(ps.layouts[o].outputs.size() == g.ops[o].outputs.size());
  }
  // The tied wte's gradient sum reads accumulated partials: once per iteration.
  CHECK(ps.bucket_of_op[static_cast<std::size_t>(op_id(g, "grad_acc:transformer.wte.weight#1"))] ==
        OpBucket::kIteration);

  // Tags unique and in MPI's portable range; sends / recvs are the transfers in order.
  std::set<int> tags;
  for (const Transfer& tr : ps.transfers) {
    CHECK(tr.tag >= 0);
    CHECK(tr.tag <= 32767);
    CHECK(tags.insert(tr.tag).second);
    CHECK(tr.src_stage != tr.dst_stage);
    CHECK(tr.src_layout.partial == kNoAxes);
    CHECK(tr.dst_layout.partial == kNoAxes);
    // What crosses is the landing layout of the reader's layout (cross_mesh.h).
    const MeshShape dst_mesh = ps.stage(tr.dst_stage).mesh;
    CHECK(tr.land_layout == landing_layout(g.tensor(tr.tensor).shape, tr.dst_layout, dst_mesh));
    CHECK(tr.src_layout == normalized(tr.src_layout, ps.stage(tr.src_stage).mesh));
    CHECK(tr.dst_layout == normalized(tr.dst_layout, dst_mesh));
  }
  for (const StageProgram& sp : ps.stages) {
    std::vector<int> sends, recvs;
    for (std::size_t i = 0; i < ps.transfers.size(); ++i) {
      if (ps.transfers[i].src_stage == sp.stage) sends.push_back(static_cast<int>(i));
      if (ps.transfers[i].dst_stage == sp.stage) recvs.push_back(static_cast<int>(i));
    }
    CHECK(sp.sends == sends);
    CHECK(sp.recvs == recvs);
  }

  // The tensors that cross, derived from the graph: an op of stage d reads a tensor made by an
  // op of stage s != d, or a parameter whose update op lives in stage s != d.
  std::vector<std::int64_t> made_in(g.tensors.size(), -1), owner(g.tensors.size(), -1);
  for (const Op& op : g.ops) {
    const std::int64_t s = stage_of_layer(plan, op.layer);
    for (TensorId t : op.outputs) made_in[static_cast<std::size_t>(t)] = s;
    if (op.kind == OpKind::kAdamW) owner[static_cast<std::size_t>(op.inputs[0])] = s;
  }
  std::set<std::tuple<TensorId, std::int64_t, std::int64_t>> expected, actual;
  for (const Op& op : g.ops) {
    const std::int64_t d = stage_of_layer(plan, op.layer);
    for (TensorId t : op.inputs) {
      const std::int64_t s = made_in[static_cast<std::size_t>(t)] >= 0
                                 ? made_in[static_cast<std::size_t>(t)]
                                 : owner[static_cast<std::size_t>(t)];
      if (s >= 0 && s != d) expected.insert({t, s, d});
    }
  }
  for (const Transfer& tr : ps.transfers) actual.insert({tr.tensor, tr.src_stage, tr.dst_stage});
  CHECK(actual == expected);
}

const Transfer* find_transfer(const ProgramSet& ps, TensorId t, std::int64_t src,
                              std::int64_t dst) {
  const Transfer* found = nullptr;
  for (const Transfer& tr : ps.transfers) {
    if (tr.tensor != t || tr.src_stage != src || tr.dst_stage != dst) continue;
    if (found != nullptr && found->time != tr.time) FAIL("two times for one tensor");
    found = &tr;
  }
  return found;
}

// The transfers of a two-stage GPT pipeline with stage 0 = layers [0, 2) (embedding, h.0) and
// stage 1 = layers [2, 4) (h.1, head).
void check_two_stage_transfers(const TrainingGraph& training, const ProgramSet& ps) {
  const Graph& g = training.graph;
  // The boundary activation: forward tensors made in stage 0 and read by forward ops of stage 1.
  std::set<TensorId> boundary;
  std::vector<std::int64_t> made_in(g.tensors.size(), -1);
  for (std::size_t o = 0; o < g.ops.size(); ++o)
    for (TensorId t : g.ops[o].outputs) made_in[static_cast<std::size_t>(t)] = ps.stage_of_op[o];
  for (std::size_t o = 0; o < g.ops.size(); ++o) {
    if (g.ops[o].phase != OpPhase::kForward || ps.stage_of_op[o] != 1) continue;
    for (TensorId t : g.ops[o].inputs)
      if (made_in[static_cast<std::size_t>(t)] == 0) boundary.insert(t);
  }
  // Only the residual stream leaves block h.0.
  REQUIRE(boundary.size() == 1);
  const TensorId act = *boundary.begin();
  CHECK(g.tensor(act).name == "h.0.mlp.residual:out");
  const Transfer* fwd = find_transfer(ps, act, 0, 1);
  REQUIRE(fwd != nullptr);
  CHECK(fwd->time == TransferTime::kForward);
  CHECK(fwd->per_microbatch());
  // Its gradient (made in stage 1, read by stage 0's backward) crosses back per micro-batch.
  const TensorId act_grad = g.at("grad:h.0.mlp.residual:out");
  const Transfer* bwd = find_transfer(ps, act_grad, 1, 0);
  REQUIRE(bwd != nullptr);
  CHECK(bwd->time == TransferTime::kBackward);
  // The tied wte: stored by stage 0 (its update op), read by the head's lm_head: once per step.
  const TensorId wte = g.at("transformer.wte.weight");
  CHECK(ps.owner_stage[static_cast<std::size_t>(wte)] == 0);
  const Transfer* param = find_transfer(ps, wte, 0, 1);
  REQUIRE(param != nullptr);
  CHECK(param->time == TransferTime::kStepStart);
  CHECK_FALSE(param->per_microbatch());
  CHECK(param->src_layout == ps.storage_layout.at(wte));
  CHECK(find_transfer(ps, wte, 1, 0) == nullptr);
  // The head's wte-gradient contribution: the input of the gradient sum made in stage 1,
  // accumulated over the micro-batches and sent once per iteration.
  const Op& acc = g.ops[static_cast<std::size_t>(op_id(g, "grad_acc:transformer.wte.weight#1"))];
  CHECK(ps.stage_of_op[static_cast<std::size_t>(op_id(g, "grad_acc:transformer.wte.weight#1"))] ==
        0);
  int from_head = 0;
  for (TensorId t : acc.inputs) {
    if (made_in[static_cast<std::size_t>(t)] != 1) continue;
    ++from_head;
    const Transfer* gt = find_transfer(ps, t, 1, 0);
    REQUIRE(gt != nullptr);
    CHECK(gt->time == TransferTime::kIteration);
    CHECK(g.tensor(t).shape == g.tensor(wte).shape);
  }
  CHECK(from_head == 1);
  // The clip (layer 0) gathers stage 1's sums of squares; norm_scale goes back to the updates.
  // (one per parameter of stage 1: h.1's 12 and ln_f's 2)
  int sums = 0;
  for (const Transfer& tr : ps.transfers) {
    const std::string& name = g.tensor(tr.tensor).name;
    if (name.rfind("sumsq:", 0) == 0) {
      ++sums;
      CHECK(tr.src_stage == 1);
      CHECK(tr.time == TransferTime::kIteration);
    }
  }
  CHECK(sums == 14);
  const Transfer* ns = find_transfer(ps, training.norm_scale, 0, 1);
  REQUIRE(ns != nullptr);
  CHECK(ns->time == TransferTime::kIteration);
}

// p2p bytes per step recounted from the pieces themselves (plan_cross_mesh from the source layout
// to the landing layout): per stage, the bytes its devices send, averaged over them, per
// micro-batch for activations and their gradients, once for the rest; summed over stages.
double p2p_from_pieces(const TrainingGraph& training, const ProgramSet& ps,
                       std::int64_t micro_batches) {
  double total = 0;
  for (const StageProgram& sp : ps.stages) {
    double sent = 0;
    for (const Transfer& tr : ps.transfers) {
      if (tr.src_stage != sp.stage) continue;
      const Tensor& t = training.graph.tensor(tr.tensor);
      std::int64_t elements = 0;
      for (const CrossMeshPiece& p : plan_cross_mesh(t.shape, tr.src_layout, sp.mesh,
                                                     tr.land_layout, ps.stage(tr.dst_stage).mesh)) {
        CHECK(p.src_rank < sp.mesh.num_devices());
        elements += p.elements();
      }
      const double bytes =
          static_cast<double>(elements * static_cast<std::int64_t>(dtype_size_bytes(t.dtype)));
      sent += tr.per_microbatch() ? static_cast<double>(micro_batches) * bytes : bytes;
    }
    total += sent / static_cast<double>(sp.mesh.num_devices());
  }
  return total;
}

}  // namespace

TEST_CASE("stage programs of a data-parallel plan: one stage, every op, no transfers",
          "[stage_program]") {
  const Plan& plan = dp2_plan();
  REQUIRE(plan.stages.size() == 1);
  REQUIRE(plan.stages[0].logical_mesh.d0 == 2);
  const TrainingGraph training = training_for(plan);
  const ProgramSet ps = build_stage_programs(training, plan);
  check_structure(training, plan, ps);
  CHECK(ps.transfers.empty());
  // The layouts come from the plan's op list, normalized on the stage's mesh.
  for (const PlanOp& op : plan.stages[0].ops) {
    const OpId id = op_id(training.graph, op.op);
    const OpLayouts& l = ps.layouts[static_cast<std::size_t>(id)];
    if (training.graph.ops[static_cast<std::size_t>(id)].kind == OpKind::kClipByGlobalNorm)
      continue;  // its inputs are forced replicated (one scalar per parameter)
    REQUIRE(l.inputs.size() == op.input_layouts.size());
    for (std::size_t i = 0; i < l.inputs.size(); ++i)
      CHECK(l.inputs[i] == normalized(op.input_layouts[i], MeshShape{2, 1}));
  }
}

TEST_CASE("stage programs of megatron dp1 x tp2 x pp2", "[stage_program]") {
  const Plan& plan = megatron_plan();
  REQUIRE(plan.stages.size() == 2);
  REQUIRE(plan.stages[0].layer_end == 2);
  const TrainingGraph training = training_for(plan);
  const ProgramSet ps = build_stage_programs(training, plan);
  check_structure(training, plan, ps);
  check_two_stage_transfers(training, ps);
  // The p2p the function counts is what the pieces carry.
  const BytesPerStep b = program_bytes_per_step(training, ps, plan.micro_batches);
  CHECK(b.p2p == Approx(p2p_from_pieces(training, ps, plan.micro_batches)));
  CHECK(b.p2p > 0);
}

TEST_CASE("stage programs of manual two-stage plans", "[stage_program]") {
  SECTION("one device per stage") {
    const Plan& plan = manual_1x1_plan();
    REQUIRE(plan.stages.size() == 2);
    const TrainingGraph training = training_for(plan);
    const ProgramSet ps = build_stage_programs(training, plan);
    check_structure(training, plan, ps);
    check_two_stage_transfers(training, ps);
  }
  SECTION("embedding and both blocks on (2, 1) with recomputation, head on (1, 2)") {
    const Plan& plan = manual_mixed_plan();
    REQUIRE(plan.stages.size() == 2);
    const TrainingGraph training = training_for(plan);
    const ProgramSet ps = build_stage_programs(training, plan);
    check_structure(training, plan, ps);
    CHECK(ps.stage(0).recompute);
    CHECK_FALSE(ps.stage(1).recompute);
    // The boundary is now the last block's output.
    const Graph& g = training.graph;
    const Transfer* act = find_transfer(ps, g.at("h.1.mlp.residual:out"), 0, 1);
    REQUIRE(act != nullptr);
    CHECK(act->time == TransferTime::kForward);
    const Transfer* wte = find_transfer(ps, g.at("transformer.wte.weight"), 0, 1);
    REQUIRE(wte != nullptr);
    CHECK(wte->time == TransferTime::kStepStart);
    const BytesPerStep b = program_bytes_per_step(training, ps, plan.micro_batches);
    CHECK(b.p2p == Approx(p2p_from_pieces(training, ps, plan.micro_batches)));
  }
}

// Data parallel on mesh (2, 1), 2 micro-batches: every parameter is replicated and its gradient
// partial over axis 0 (batch split); accumulated gradients are summed locally over the
// micro-batches and reduced once per step. Parameters of the tiny GPT (f32, 4 bytes each):
//   wte 32 x 16 = 512, wpe 8 x 16 = 128,
//   per block: ln_1 16 + 16, c_attn 16 x 48 + 48, c_proj 16 x 16 + 16, ln_2 16 + 16,
//              c_fc 16 x 64 + 64, mlp c_proj 64 x 16 + 16
//            = 32 + 816 + 272 + 32 + 1088 + 1040 = 3280,
//   ln_f 16 + 16 = 32;  total 512 + 128 + 2 x 3280 + 32 = 7232 elements = 28928 bytes,
//   of which wte 512 x 4 = 2048 bytes and the rest 6720 x 4 = 26880 bytes.
// No stage boundary: p2p 0.
constexpr double kAllGradBytes = 28928, kWteBytes = 2048, kOtherGradBytes = 26880;

// The DP plan with the tied wte's gradient sum left partial (the partial-add strategy,
// intra_pass.cc): then every accumulated gradient is all-reduced exactly once per step, B = the
// local buffer = the whole gradient: all_reduce = 28928 bytes, nothing else.
TEST_CASE("bytes per step of data parallel: one all-reduce of every gradient", "[stage_program]") {
  Plan plan = dp2_plan();
  const TrainingGraph training = training_for(plan);
  // The hand count matches the graph's parameters.
  std::int64_t params = 0;
  for (TensorId t : training.graph.tensors_with_role(TensorRole::kParameter))
    params += num_elements(training.graph.tensor(t).shape);
  REQUIRE(params == 7232);
  for (PlanOp& op : plan.stages[0].ops) {
    if (op.op != "grad_acc:transformer.wte.weight#1") continue;
    op.strategy = "R,R|P0 x R,R|P0 -> R,R|P0";
    op.input_layouts = {parse_layout("R,R|P0"), parse_layout("R,R|P0")};
    op.output_layouts = {parse_layout("R,R|P0")};
  }
  const ProgramSet ps = build_stage_programs(training, plan);
  const BytesPerStep b = program_bytes_per_step(training, ps, plan.micro_batches);
  CHECK(b.all_reduce == kAllGradBytes);
  CHECK(b.p2p == 0.0);
  CHECK(b.all_gather == 0.0);
  CHECK(b.reduce_scatter == 0.0);
  CHECK(b.all_to_all == 0.0);
  // Independent of the micro-batch count (all reductions are deferred to the iteration).
  CHECK(program_bytes_per_step(training, ps, 7).all_reduce == kAllGradBytes);
}

// The planner's own DP plan: every gradient but wte's is all-reduced once (26880 bytes); the
// tied wte's two partials (#0 from the head, #1 from the embedding) are reduced as the plan's
// gradient-sum op asks for them, hand-counted per layout it may record:
//   R,R|P0 (summed partial):  one all-reduce of the sum, B = 2048;
//   S0,R (sum split):         two reduce-scatters, B = 2048 each (the local buffer before),
//                             and one all-gather of the sum to R,R for sumsq / adamw, B = 2048;
//   R,R (sum replicated):     two all-reduces, B = 2048 each.
TEST_CASE("bytes per step of the planner's data-parallel plan", "[stage_program]") {
  const Plan& plan = dp2_plan();
  const TrainingGraph training = training_for(plan);
  const ProgramSet ps = build_stage_programs(training, plan);
  const BytesPerStep b = program_bytes_per_step(training, ps, plan.micro_batches);
  const PlanOp* acc = nullptr;
  for (const PlanOp& op : plan.stages[0].ops)
    if (op.op == "grad_acc:transformer.wte.weight#1") acc = &op;
  REQUIRE(acc != nullptr);
  REQUIRE(acc->input_layouts.size() == 2);
  const std::string in = to_string(normalized(acc->input_layouts[0], MeshShape{2, 1}));
  INFO("wte gradient sum reads " << in);
  REQUIRE(acc->input_layouts[1] == acc->input_layouts[0]);
  double ar = kOtherGradBytes, rs = 0, ag = 0;
  if (in == "R,R|P0") {
    ar += kWteBytes;
  } else if (in == "S0,R") {
    rs += 2 * kWteBytes, ag += kWteBytes;
  } else if (in == "R,R") {
    ar += 2 * kWteBytes;
  } else {
    FAIL("unexpected layout");
  }
  CHECK(b.all_reduce == ar);
  CHECK(b.reduce_scatter == rs);
  CHECK(b.all_gather == ag);
  CHECK(b.all_to_all == 0.0);
  CHECK(b.p2p == 0.0);
  // The plan's prediction is this function's answer.
  CHECK(plan.predicted.bytes_per_step.all_reduce == b.all_reduce);
  CHECK(plan.predicted.bytes_per_step.reduce_scatter == b.reduce_scatter);
  CHECK(plan.predicted.bytes_per_step.all_gather == b.all_gather);
}

// ZeRO on mesh (2, 1): every parameter is stored split over axis 0 and gathered to R before
// use. zero2 keeps the gathered copy for the iteration: each parameter is all-gathered once per
// step, B = the gathered tensor: all_gather = 28928 bytes whatever the micro-batch count.
// zero3 gathers again in every bucket execution that reads it, per micro-batch:
//   forward: every parameter once = 7232 elements;
//   backward: the ops that read parameters are the matmuls' grad_a (c_attn 768, attn c_proj
//     256, c_fc 1024, mlp c_proj 1024 per block = 3072, x 2 blocks = 6144; lm_head 512 for wte),
//     the layer norms' grads (ln_1, ln_2 weights 16 each per block, ln_f 16: 80) and the fused
//     bias + GELU's grad, which recomputes x + c_fc.bias (64 per block: 128):
//     6144 + 512 + 80 + 128 = 6864 elements;
//   all_gather = B x (7232 + 6864) x 4 = B x 56384 bytes; the updates read the stored shards.
// Both: each sum of squares over a sharded gradient is partial, all-reduced before the clip:
// 28 parameters x 8 bytes (f64 scalar) = 224 bytes; every gradient is reduce-scattered at least
// once (>= 28928 bytes).
TEST_CASE("bytes per step of ZeRO: zero2 gathers once per step, zero3 per use", "[stage_program]") {
  for (const char* method : {"zero2", "zero3"}) {
    INFO(method);
    const Plan plan = plan_training(tiny_gpt(), test::v100_cluster(1, 2), options(method, 8, 2));
    REQUIRE(plan.stages.size() == 1);
    const TrainingGraph training = training_for(plan);
    const ProgramSet ps = build_stage_programs(training, plan);
    check_structure(training, plan, ps);
    CHECK(ps.keep_gathered_parameters == (std::string(method) == "zero2"));
    for (const auto& [param, layout] : ps.storage_layout) {
      INFO(training.graph.tensor(param).name << " stored " << to_string(layout));
      CHECK(layout.dim_of_axis(0) >= 0);
    }
    for (std::int64_t b : {1, 2, 4}) {
      const BytesPerStep bytes = program_bytes_per_step(training, ps, b);
      const double gathered = std::string(method) == "zero2" ? 28928.0 : 56384.0 * b;
      CHECK(bytes.all_gather == gathered);
      CHECK(bytes.all_reduce == 224.0);
      CHECK(bytes.reduce_scatter >= 28928.0);
      CHECK(bytes.p2p == 0.0);
    }
  }
}

// Two stages of one device each, B = 2 micro-batches of 2 sequences. Every mesh is 1 x 1, so no
// collective runs and p2p is every transfer's whole tensor:
//   per micro-batch: the boundary activation h.0.mlp.residual:out [2, 8, 16] f32
//                    = 2 x 8 x 16 x 4 = 1024 bytes forward, its gradient 1024 bytes backward
//                    -> B x 2 x 1024 = 4096
//   per step:        wte [32, 16] f32 to the head = 2048; the head's wte-gradient contribution
//                    back = 2048; stage 1's sums of squares to the clip (layer 0), one f64 scalar
//                    per stage-1 parameter: h.1's 12 + ln_f's 2 = 14 x 8 = 112; the clip's
//                    norm_scale f64 [2] to stage 1's updates = 16
//                    -> 2048 + 2048 + 112 + 16 = 4224
//   total 4096 + 4224 = 8320 bytes.
TEST_CASE("bytes per step of a two-stage pipeline: activations, wte and scalars",
          "[stage_program]") {
  const Plan& plan = manual_1x1_plan();
  REQUIRE(plan.micro_batches == 2);
  REQUIRE(plan.micro_batch_size() == 2);
  const TrainingGraph training = training_for(plan);
  const Graph& g = training.graph;
  // The shapes the arithmetic uses.
  REQUIRE(g.tensor(g.at("h.0.mlp.residual:out")).shape == Shape{2, 8, 16});
  REQUIRE(g.tensor(g.at("transformer.wte.weight")).shape == Shape{32, 16});
  REQUIRE(g.tensor(training.norm_scale).shape == Shape{2});
  REQUIRE(g.tensor(training.norm_scale).dtype == DType::kF64);
  std::int64_t stage1_params = 0;
  for (TensorId t : g.tensors_with_role(TensorRole::kParameter))
    if (g.tensor(t).layer >= 2) ++stage1_params;
  REQUIRE(stage1_params == 14);

  const ProgramSet ps = build_stage_programs(training, plan);
  const BytesPerStep b = program_bytes_per_step(training, ps, plan.micro_batches);
  CHECK(b.p2p == 8320.0);
  CHECK(b.all_reduce == 0.0);
  CHECK(b.all_gather == 0.0);
  CHECK(b.reduce_scatter == 0.0);
  CHECK(b.all_to_all == 0.0);
  // With B micro-batches only the per-micro-batch part scales: B = 5 -> 5 x 2048 + 4224.
  CHECK(program_bytes_per_step(training, ps, 5).p2p == 5 * 2048.0 + 4224.0);
}

TEST_CASE("a plan whose op list lacks an op is refused, naming the op", "[stage_program]") {
  Plan plan = dp2_plan();
  const TrainingGraph training = training_for(plan);
  auto& ops = plan.stages[0].ops;
  const auto it =
      std::find_if(ops.begin(), ops.end(), [](const PlanOp& op) { return op.op == "h.1.mlp.fc"; });
  REQUIRE(it != ops.end());
  ops.erase(it);
  CHECK_THROWS_AS(build_stage_programs(training, plan), std::invalid_argument);
  CHECK_THROWS_WITH(build_stage_programs(training, plan), Catch::Contains("h.1.mlp.fc"));

  // A backward op too (its name is the forward op's plus a suffix).
  Plan plan2 = dp2_plan();
  auto& ops2 = plan2.stages[0].ops;
  const auto it2 = std::find_if(ops2.begin(), ops2.end(),
                                [](const PlanOp& op) { return op.op == "h.0.attn.qkv.grad_b"; });
  REQUIRE(it2 != ops2.end());
  ops2.erase(it2);
  CHECK_THROWS_AS(build_stage_programs(training, plan2), std::invalid_argument);
  CHECK_THROWS_WITH(build_stage_programs(training, plan2), Catch::Contains("h.0.attn.qkv.grad_b"));
}

TEST_CASE("plans that do not fit the graph are refused", "[stage_program]") {
  const TrainingGraph training = training_for(dp2_plan());
  const auto edit = [](const std::string& name, const std::function<void(PlanOp&)>& change) {
    Plan plan = dp2_plan();
    for (PlanOp& op : plan.stages[0].ops)
      if (op.op == name) change(op);
    return plan;
  };
  // no layouts recorded for an op with inputs
  CHECK_THROWS_AS(build_stage_programs(
                      training, edit("h.0.mlp.fc", [](PlanOp& op) { op.input_layouts.clear(); })),
                  std::invalid_argument);
  // a layout of the wrong rank (the matmul's input is [b, s, k])
  CHECK_THROWS_AS(
      build_stage_programs(
          training,
          edit("h.0.mlp.fc", [](PlanOp& op) { op.input_layouts[0] = parse_layout("R,R"); })),
      std::invalid_argument);
  // stages that stop before the head: its ops lie outside every stage
  Plan short_plan = dp2_plan();
  short_plan.stages[0].layer_end = 3;
  CHECK_THROWS_AS(build_stage_programs(training, short_plan), std::invalid_argument);
  CHECK_THROWS_WITH(build_stage_programs(training, short_plan),
                    Catch::Contains("outside every stage"));
}
