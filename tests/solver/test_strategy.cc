// Strategy-enumeration tests on GPT ops (2 layers, H 64, 4 heads, S 32, V 256, batch 8) and tiny
// hand-built graphs: counts, layouts, partial outputs, vocab-parallel forms, size-1 axes,
// divisibility and determinism. Mesh 2x4 unless noted.
#include <catch2/catch.hpp>
#include <set>

#include "solver/intra/resharding.h"
#include "solver/intra/strategy.h"
#include "solver/ir/autodiff.h"
#include "solver/ir/flops.h"
#include "solver/ir/gpt.h"
#include "tests/solver/ir_test_util.h"

using namespace strata::solver;

namespace {

constexpr MeshShape kMesh{2, 4};

const TrainingGraph& gpt() {
  static const TrainingGraph tg = [] {
    GptConfig config;  // layers 2, hidden 64, heads 4, seq_len 32, vocab 256
    const Graph fwd = build_gpt(config, 8);
    return build_training_graph(fwd, fwd.at("loss"), OptimizerSpec{});
  }();
  return tg;
}

const Op& op_named(const Graph& g, const std::string& name) {
  for (const Op& op : g.ops) {
    if (op.name == name) return op;
  }
  FAIL("no op " << name);
  return g.ops.front();
}

const Strategy* find(const std::vector<Strategy>& ss, const std::string& name) {
  for (const Strategy& s : ss) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::vector<Strategy> strategies(const std::string& op, MeshShape mesh = kMesh) {
  const Graph& g = gpt().graph;
  return enumerate_strategies(g, op_named(g, op), mesh);
}

}  // namespace

TEST_CASE("strategy: matmul bsk,kn->bsn on 2x4", "[intra]") {
  // h.0.mlp.fc: x [8,32,64] (b s k), w [64,256] (k n). Letters b s k n all divide 2, 4 and 8:
  // 5 choices per axis (4 letters or none) = 25, the same letter twice being S01.
  const Graph& g = gpt().graph;
  const Op& op = op_named(g, "h.0.mlp.fc");
  const auto ss = enumerate_strategies(g, op, kMesh);
  REQUIRE(ss.size() == 25);
  const double flops = op_flops(g, op);  // 2 * 8 * 32 * 64 * 256 = 8388608
  CHECK(flops == 8388608.0);

  // Data parallel over all 8 devices: b on S01.
  const Strategy* dp = find(ss, "S01,R,R x R,R -> S01,R,R");
  REQUIRE(dp != nullptr);
  CHECK(dp->axis_letter == std::array<char, 2>{'b', 'b'});
  CHECK(dp->local_flops == flops / 8);
  // Megatron column split (w split on n) with data parallel on axis 0: no communication.
  const Strategy* col = find(ss, "S0,R,R x R,S1 -> S0,R,S1");
  REQUIRE(col != nullptr);
  CHECK(col->axis_letter == std::array<char, 2>{'b', 'n'});
  CHECK(col->comm.empty());
  CHECK(col->local_flops == flops / 8);
  // Megatron row split (w split on k): the output is partial over axis 1.
  const Strategy* row = find(ss, "S0,R,S1 x S1,R -> S0,R,R|P1");
  REQUIRE(row != nullptr);
  CHECK(row->outputs[0] == parse_layout("S0,R,R|P1"));
  // k over everything: output partial over both axes.
  CHECK(find(ss, "R,R,S01 x S01,R -> R,R,R|P01") != nullptr);
  // Only axis 1 used: the work is split 4 ways.
  const Strategy* n_only = find(ss, "R,R,R x R,S1 -> R,R,S1");
  REQUIRE(n_only != nullptr);
  CHECK(n_only->local_flops == flops / 4);
  // Fully replicated last, with the whole work.
  CHECK(ss.back().name == "R,R,R x R,R -> R,R,R");
  CHECK(ss.back().local_flops == flops);
  CHECK(ss.front().axis_letter == std::array<char, 2>{'b', 'b'});  // first letter on both axes
}

TEST_CASE("strategy: layernorm never splits h", "[intra]") {
  // h.0.ln_1: x [8,32,64] (b s h), w [64], b [64] -> y, mean [8,32], rstd [8,32].
  // Splittable: b, s (h is normalised): 3 x 3 = 9.
  const auto ss = strategies("h.0.ln_1");
  REQUIRE(ss.size() == 9);
  for (const Strategy& s : ss) {
    CHECK(s.inputs[1] == parse_layout("R"));
    CHECK(s.inputs[0].dims[2] == kNoAxes);
    CHECK(s.outputs[0].partial == kNoAxes);
  }
  CHECK(find(ss, "S0,S1,R x R x R -> S0,S1,R x S0,S1 x S0,S1") != nullptr);
  CHECK(ss.back().name == "R,R,R x R x R -> R,R,R x R,R x R,R");
  // Its gradient: a split leading index leaves dw, db partial.
  const auto gs = strategies("h.0.ln_1.grad");
  CHECK(gs.size() == 9);
  const Strategy* bg = find(gs, "S0,R,R x S0,R,R x R x S0,R x S0,R -> S0,R,R x R|P0 x R|P0");
  CHECK(bg != nullptr);
}

TEST_CASE("strategy: vocab-parallel embedding gives a partial output", "[intra]") {
  // embed.wte: tokens [8,32] (b s), table [256,64] (v h) -> [8,32,64] (b s h): 5 x 5 = 25.
  const auto ss = strategies("embed.wte");
  REQUIRE(ss.size() == 25);
  // Table rows split on axis 1: each device looks up its rows, zeros elsewhere -> partial.
  const Strategy* vp = find(ss, "S0,R x S1,R -> S0,R,R|P1");
  REQUIRE(vp != nullptr);
  CHECK(vp->axis_letter == std::array<char, 2>{'b', 'v'});
  CHECK(vp->comm.empty());
  // Hidden split of the table (Alpa's only embedding strategy).
  CHECK(find(ss, "R,R x R,S01 -> R,R,S01") != nullptr);
  // The gradient accumulates only its own rows: dtable split on v, no communication.
  const auto gs = strategies("embed.wte.grad");
  const Strategy* vg = find(gs, "R,R x R,R,R -> S1,R");
  REQUIRE(vg != nullptr);
  CHECK(vg->axis_letter == std::array<char, 2>{'\0', 'v'});
}

TEST_CASE("strategy: vocab-parallel cross-entropy carries row all-reduces", "[intra]") {
  // loss: logits [8,32,256] (b s v), targets [8,32] -> loss []; b, s, v splittable: 4 x 4 = 16.
  const auto ss = strategies("loss");
  REQUIRE(ss.size() == 16);
  // b on axis 0, v on axis 1: local rows = 8/2 * 32 = 128; f32 row max and row sum: B = 512
  // each, all-reduced over axis 1. b is summed (partial over 0), v's owner adds each token's
  // term (partial over 1).
  const Strategy* s = find(ss, "S0,R,S1 x S0,R -> -|P01");
  REQUIRE(s != nullptr);
  REQUIRE(s->comm.size() == 2);
  CHECK(s->comm[0].what == "row_max");
  CHECK(s->comm[1].what == "row_sum");
  for (const InternalComm& c : s->comm) {
    CHECK(c.kind == Collective::kAllReduce);
    CHECK(c.axis == 1);
    CHECK(c.bytes == 128 * 4);
  }
  // v over all devices: rows 8*32 = 256 (B = 1024), max then sum, each on axis 0 then axis 1.
  const Strategy* all = find(ss, "R,R,S01 x R,R -> -|P01");
  REQUIRE(all != nullptr);
  REQUIRE(all->comm.size() == 4);
  CHECK(all->comm[0].axis == 0);
  CHECK(all->comm[1].axis == 1);
  CHECK(all->comm[3].what == "row_sum");
  CHECK(all->comm[3].bytes == 1024);
  // Data parallel only: no internal communication, a partial loss.
  const Strategy* dp = find(ss, "S01,R,R x S01,R -> -|P01");
  REQUIRE(dp != nullptr);
  CHECK(dp->comm.empty());
  CHECK(ss.back().name == "R,R,R x R,R -> -");
  // The gradient: dlogits stays split on v, the same two all-reduces.
  const auto gs = strategies("loss.grad");
  const Strategy* g = find(gs, "S0,R,S1 x S0,R x - -> S0,R,S1");
  REQUIRE(g != nullptr);
  CHECK(g->comm.size() == 2);
}

TEST_CASE("strategy: head-parallel attention (Megatron) from the factored qkv", "[intra]") {
  // qkv: "bsk,kpad->bspad", ln1 [8,32,64], c_attn [64,3,4,16]. Heads a on axis 1, batch on 0:
  // column-parallel by head, no communication.
  const auto qkv = strategies("h.0.attn.qkv");
  const Strategy* col = find(qkv, "S0,R,R x R,R,S1,R -> S0,R,R,S1,R");
  REQUIRE(col != nullptr);
  CHECK(col->axis_letter == std::array<char, 2>{'b', 'a'});
  // split heads: "bspad" [8,32,3,4,16] -> 3 x "basd"; p (3 parts) is in no output: never split.
  const auto split = strategies("h.0.attn.split");
  for (const Strategy& s : split) {
    CHECK(s.axis_letter[0] != 'p');
    CHECK(s.axis_letter[1] != 'p');
  }
  CHECK(find(split, "S0,R,R,S1,R -> S0,S1,R,R x S0,S1,R,R x S0,S1,R,R") != nullptr);
  // The fused attention keeps a split (a batch-like index of q, k and v); it may split the
  // queries s (keys replicated), never the keys t or the head dim d.
  const auto att = strategies("h.0.attn.attention");
  CHECK(find(att, "S0,S1,R,R x S0,S1,R,R x S0,S1,R,R -> S0,S1,R,R") != nullptr);
  const Strategy* seq = find(att, "S0,R,S1,R x S0,R,R,R x S0,R,R,R -> S0,R,S1,R");
  REQUIRE(seq != nullptr);
  // Rule (h): 8 devices, but the 4 query blocks of S = 32 are uneven under the causal mask: the
  // last (rows 24..31) holds 8 (64 - 8 + 1) / 2 = 228 of the 528 pairs, not 132.
  const double att_flops = op_flops(gpt().graph, op_named(gpt().graph, "h.0.attn.attention"));
  CHECK(seq->local_flops == Approx(att_flops / 2 * 228.0 / 528.0));
  const Strategy* heads = find(att, "S0,S1,R,R x S0,S1,R,R x S0,S1,R,R -> S0,S1,R,R");
  CHECK(heads->local_flops == Approx(att_flops / 8));  // heads split evenly
  for (const Strategy& s : att) {
    for (char c : s.axis_letter) CHECK((c != 't' && c != 'd'));
  }
  // Its gradient with the queries split: dk, dv come out partial over that axis.
  CHECK(find(strategies("h.0.attn.attention.grad"),
             "S0,R,S1,R x S0,R,R,R x S0,R,R,R x S0,R,S1,R -> S0,R,S1,R x S0,R,R,R|P1 x "
             "S0,R,R,R|P1") != nullptr);
  // merge heads (parts 1): "basd" -> "bsad".
  CHECK(find(strategies("h.0.attn.merge"), "S0,S1,R,R -> S0,R,S1,R") != nullptr);
  // proj: "bsad,adn->bsn": a is summed, so the row-parallel output is partial over axis 1.
  const Strategy* row = find(strategies("h.0.attn.proj"), "S0,R,S1,R x S1,R,R -> S0,R,R|P1");
  REQUIRE(row != nullptr);
  const auto ext = index_extents(gpt().graph, op_named(gpt().graph, "h.0.attn.split"));
  CHECK(ext == std::vector<std::pair<char, std::int64_t>>{
                   {'b', 8}, {'s', 32}, {'p', 3}, {'a', 4}, {'d', 16}});
}

TEST_CASE("strategy: optimizer ops follow the parameter's storage layout", "[intra]") {
  const std::string w = "transformer.h.0.mlp.c_fc.weight";  // [64, 256]
  // adamw: p, g, m, v share one layout; norm_scale [2] stays replicated; no outputs.
  const auto ss = strategies("adamw:" + w);
  CHECK(ss.size() == 9);  // letters i, j (+ none) per axis
  const Strategy* zero = find(ss, "S0,R x S0,R x S0,R x S0,R x R -> ()");
  REQUIRE(zero != nullptr);
  CHECK(zero->outputs.empty());
  CHECK(ss.back().name == "R,R x R,R x R,R x R,R x R -> ()");
  // sum of squares of a split gradient: a scalar partial over the split axes.
  const auto sq = strategies("sumsq:" + w);
  CHECK(find(sq, "S0,S1 -> -|P01") != nullptr);
  // clipping works on scalars and the {norm, scale} pair: replicated only.
  const auto clip = strategies("clip_grad_norm");
  REQUIRE(clip.size() == 1);
  CHECK(clip[0].outputs[0] == parse_layout("R"));

  // ZeRO: the weight gradient of a data-parallel matmul comes out partial over axis 0; the
  // optimizer stores the parameter split on axis 0, so the gradient is reduce-scattered.
  // grad_b [64, 256] f32 = 65536 bytes: B = 65536.
  const auto gb = strategies("h.0.mlp.fc.grad_b");
  const Strategy* dp = nullptr;
  for (const Strategy& s : gb) {
    if (s.outputs[0] == parse_layout("R,R|P0") && s.inputs[0].dims[0] == kAxis0) dp = &s;
  }
  REQUIRE(dp != nullptr);
  const ReshardPlan p =
      plan_resharding({64, 256}, DType::kF32, dp->outputs[0], zero->inputs[1], kMesh);
  REQUIRE(p.steps.size() == 1);
  CHECK(p.steps[0].op == ReshardOp::kReduceScatter);
  CHECK(p.steps[0].axis == 0);
  CHECK(p.steps[0].bytes == 65536);
}

TEST_CASE("strategy: size-1 axes and divisibility", "[intra]") {
  // d1 == 1: only axis 0 is assigned: b, s, k, n or none = 5.
  const auto ss = strategies("h.0.mlp.fc", MeshShape{4, 1});
  REQUIRE(ss.size() == 5);
  for (const Strategy& s : ss) CHECK(s.axis_letter[1] == '\0');
  CHECK(ss[0].name == "S0,R,R x R,R -> S0,R,R");
  CHECK(ss.back().name == "R,R,R x R,R -> R,R,R");
  CHECK(strategies("h.0.mlp.fc", MeshShape{1, 1}).size() == 1);

  // Batch 2 on 2x4: b fits axis 0 only. Axis 0: b s k n none (5); axis 1: s k n none (4) -> 20.
  using namespace strata::solver::test;
  Graph g;
  const TensorId w = param(g, "w", {256, 1024});
  const TensorId x = activation(g, "x", {2, 128, 256});
  apply(g, OpKind::kMatMul, "mm", {x, w}, {{"equation", std::string("bsk,kn->bsn")}});
  const auto mm = enumerate_strategies(g, g.ops[0], kMesh);
  CHECK(mm.size() == 20);
  for (const Strategy& s : mm) CHECK(s.axis_letter[1] != 'b');
  CHECK(find(mm, "S0,R,R x R,R -> S0,R,R") != nullptr);
  CHECK(find(mm, "S01,R,R x R,R -> S01,R,R") == nullptr);
  // A 3-element dim never splits on a power-of-two mesh.
  Graph g3;
  const TensorId a = activation(g3, "a", {3, 8});
  apply(g3, OpKind::kGelu, "gelu", {a});
  // gelu "bh" on [3, 8]: b = 3 never divides; h on axis 0, axis 1, both, or none -> 4.
  CHECK(enumerate_strategies(g3, g3.ops[0], kMesh).size() == 4);
}

TEST_CASE("strategy: every GPT training op enumerates valid, unique strategies", "[intra]") {
  const Graph& g = gpt().graph;
  for (const MeshShape mesh : {kMesh, MeshShape{4, 1}, MeshShape{1, 2}, MeshShape{2, 2}}) {
    for (const Op& op : g.ops) {
      INFO(op.name << " on " << mesh.d0 << "x" << mesh.d1);
      const auto ss = enumerate_strategies(g, op, mesh);
      REQUIRE(!ss.empty());
      std::set<std::string> names;
      for (const Strategy& s : ss) {
        CHECK(names.insert(s.name).second);
        REQUIRE(s.inputs.size() == op.inputs.size());
        REQUIRE(s.outputs.size() == op.outputs.size());
        for (std::size_t i = 0; i < op.inputs.size(); ++i) {
          CHECK(s.inputs[i].partial == kNoAxes);
          CHECK_NOTHROW(check_layout(g.tensor(op.inputs[i]).shape, s.inputs[i], mesh));
        }
        for (std::size_t i = 0; i < op.outputs.size(); ++i) {
          CHECK_NOTHROW(check_layout(g.tensor(op.outputs[i]).shape, s.outputs[i], mesh));
        }
      }
      // The replicated strategy is last and does all the work.
      const Strategy& r = ss.back();
      CHECK(r.axis_letter == std::array<char, 2>{'\0', '\0'});
      CHECK(r.local_flops == op_flops(g, op));
      // Determinism.
      const auto again = enumerate_strategies(g, op, mesh);
      REQUIRE(again.size() == ss.size());
      for (std::size_t i = 0; i < ss.size(); ++i) CHECK(again[i].name == ss[i].name);
    }
  }
}
