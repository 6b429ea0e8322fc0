// Index maps: the letters of each op kind (GPT's conventions), operand parsing, and consistency
// with the tensors of a whole training graph (one letter per dim, one extent per letter).
#include <catch2/catch.hpp>
#include <map>

#include "solver/ir/autodiff.h"
#include "solver/ir/gpt.h"
#include "solver/ir/index_map.h"

using namespace strata::solver;

namespace {

GptConfig tiny(bool fused_attention = true) {
  GptConfig c;
  c.fused_attention = fused_attention;
  c.layers = 1;
  c.hidden = 8;
  c.heads = 2;
  c.seq_len = 4;
  c.vocab = 16;
  return c;
}

const Op& op_named(const Graph& g, const std::string& name) {
  for (const Op& op : g.ops) {
    if (op.name == name) return op;
  }
  throw std::runtime_error("no op " + name);
}

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE("operand_dims splits letters and groups", "[ir][index_map]") {
  // No op kind uses a group any more (tensors have factored shapes), but it still parses.
  CHECK(operand_dims("bs(pad)") == Strings{"b", "s", "pad"});
  CHECK(operand_dims("bspad") == Strings{"b", "s", "p", "a", "d"});
  CHECK(operand_dims("bsh") == Strings{"b", "s", "h"});
  CHECK(operand_dims("").empty());
  CHECK_THROWS_AS(operand_dims("bs(pa"), std::invalid_argument);
  CHECK_THROWS_AS(operand_dims("bs()"), std::invalid_argument);
  CHECK_THROWS_AS(operand_dims("b)s"), std::invalid_argument);
}

TEST_CASE("index maps of the GPT forward kinds", "[ir][index_map]") {
  const Graph g = build_gpt(tiny(/*fused_attention=*/false), 2);
  IndexMap m = index_map(g, op_named(g, "embed.wte"));
  CHECK(m.inputs == Strings{"bs", "vh"});
  CHECK(m.outputs == Strings{"bsh"});
  CHECK(m.gathered == "v");
  m = index_map(g, op_named(g, "embed.wpe"));
  CHECK(m.inputs == Strings{"bsh", "sh"});
  CHECK(m.outputs == Strings{"bsh"});
  m = index_map(g, op_named(g, "h.0.ln_1"));
  CHECK(m.inputs == Strings{"bsh", "h", "h"});
  CHECK(m.outputs == Strings{"bsh", "bs", "bs"});
  CHECK(m.normalized == "h");
  CHECK(m.reduced.empty());
  // heads (a) are a dim of their own from c_attn to c_proj: tensor parallelism splits a
  m = index_map(g, op_named(g, "h.0.attn.qkv"));
  CHECK(m.inputs == Strings{"bsk", "kpad"});
  CHECK(m.outputs == Strings{"bspad"});
  CHECK(m.reduced == "k");
  m = index_map(g, op_named(g, "h.0.attn.qkv_bias"));
  CHECK(m.inputs == Strings{"bspad", "pad"});
  CHECK(m.outputs == Strings{"bspad"});
  m = index_map(g, op_named(g, "h.0.attn.split"));
  CHECK(m.inputs == Strings{"bspad"});
  CHECK(m.outputs == Strings{"basd", "basd", "basd"});
  CHECK(m.reduced.empty());  // p selects the output: in no output and not summed, never split
  m = index_map(g, op_named(g, "h.0.attn.scores"));
  CHECK(m.inputs == Strings{"basd", "batd"});
  CHECK(m.outputs == Strings{"bast"});
  CHECK(m.reduced == "d");
  m = index_map(g, op_named(g, "h.0.attn.softmax"));  // causal: masks t > s, then normalises
  CHECK(m.inputs == Strings{"bast"});
  CHECK(m.normalized == "t");
  m = index_map(g, op_named(g, "h.0.attn.ctx"));
  CHECK(m.reduced == "t");
  // the fused form: t and d are normalised over (never split); s may be split
  const Graph fused = build_gpt(tiny(), 2);
  m = index_map(fused, op_named(fused, "h.0.attn.attention"));
  CHECK(m.inputs == Strings{"basd", "batd", "batd"});
  CHECK(m.outputs == Strings{"basd"});
  CHECK(m.normalized == "td");
  CHECK(m.reduced.empty());
  m = index_map(g, op_named(g, "h.0.attn.merge"));  // a pure permutation
  CHECK(m.inputs == Strings{"basd"});
  CHECK(m.outputs == Strings{"bsad"});
  CHECK(m.reduced.empty());
  m = index_map(g, op_named(g, "h.0.attn.proj"));
  CHECK(m.inputs == Strings{"bsad", "adn"});
  CHECK(m.outputs == Strings{"bsn"});
  CHECK(m.reduced == "ad");
  m = index_map(g, op_named(g, "h.0.attn.proj_bias"));
  CHECK(m.inputs == Strings{"bsn", "n"});
  m = index_map(g, op_named(g, "h.0.mlp.residual"));
  CHECK(m.inputs == Strings{"bsh", "bsh"});
  m = index_map(g, op_named(g, "lm_head"));
  CHECK(m.inputs == Strings{"bsh", "vh"});
  CHECK(m.outputs == Strings{"bsv"});
  CHECK(m.reduced == "h");
  m = index_map(g, op_named(g, "loss"));
  CHECK(m.inputs == Strings{"bsv", "bs"});
  CHECK(m.outputs == Strings{""});
  CHECK(m.normalized == "v");
  CHECK(m.reduced == "bs");
}

TEST_CASE("index maps agree with every tensor of a training graph", "[ir][index_map]") {
  for (bool fused : {true, false}) {
    const Graph fwd = build_gpt(tiny(fused), 2);
    const TrainingGraph tg = build_training_graph(fwd, fwd.at("loss"), OptimizerSpec{});
    const Graph& g = tg.graph;
    for (const Op& op : g.ops) {
      INFO("op " << op.name);
      const IndexMap m = index_map(g, op);
      for (const auto* operands : {&m.inputs, &m.outputs}) {
        for (const std::string& operand : *operands) CHECK(operand.find('(') == std::string::npos);
      }
      REQUIRE(m.inputs.size() == op.inputs.size());
      REQUIRE(m.outputs.size() == op.outputs.size());
      std::map<std::string, std::int64_t> extent;  // one extent per single letter
      std::string all_in, all_out;
      const auto check = [&](const std::string& operand, TensorId id) {
        const std::vector<std::string> dims = operand_dims(operand);
        const Shape& shape = g.tensor(id).shape;
        REQUIRE(dims.size() == shape.size());
        for (std::size_t d = 0; d < dims.size(); ++d) {
          REQUIRE(dims[d].size() == 1);  // every dim is one whole index: no composite dims
          auto [it, fresh] = extent.emplace(dims[d], shape[d]);
          CHECK(it->second == shape[d]);
        }
      };
      for (std::size_t i = 0; i < op.inputs.size(); ++i) {
        check(m.inputs[i], op.inputs[i]);
        all_in += m.inputs[i];
      }
      for (std::size_t i = 0; i < op.outputs.size(); ++i) {
        check(m.outputs[i], op.outputs[i]);
        all_out += m.outputs[i];
      }
      for (char c : m.reduced) {
        CHECK(all_in.find(c) != std::string::npos);
        CHECK(all_out.find(c) == std::string::npos);
      }
      for (char c : m.normalized) CHECK(all_in.find(c) != std::string::npos);
    }
    // backward kinds mirror forward: embedding_grad gathers over v, reduces b and s
    for (const Op& op : g.ops) {
      if (op.kind == OpKind::kEmbeddingGrad) {
        const IndexMap m = index_map(g, op);
        CHECK(m.outputs == Strings{"vh"});
        CHECK(m.gathered == "v");
        CHECK(m.reduced == "bs");
      }
      if (op.name == "h.0.attn.proj_bias.grad_bias") {  // reduce_sum keep 1: bsh -> h
        const IndexMap m = index_map(g, op);
        CHECK(m.inputs == Strings{"bsh"});
        CHECK(m.outputs == Strings{"h"});
        CHECK(m.reduced == "bs");
      }
      if (op.name == "h.0.attn.qkv_bias.grad_bias") {  // keep 3, the bias [3,A,D]: bsijh -> ijh
        const IndexMap m = index_map(g, op);
        CHECK(m.inputs == Strings{"bsijh"});
        CHECK(m.outputs == Strings{"ijh"});
        CHECK(m.reduced == "bs");
      }
      if (op.name == "h.0.attn.split.grad") {  // merge_heads of 3 parts: "bspad" out
        const IndexMap m = index_map(g, op);
        CHECK(m.inputs == Strings{"basd", "basd", "basd"});
        CHECK(m.outputs == Strings{"bspad"});
      }
      if (op.name == "h.0.attn.merge.grad") {  // split_heads of 1 part: "bsad" in
        const IndexMap m = index_map(g, op);
        CHECK(m.inputs == Strings{"bsad"});
        CHECK(m.outputs == Strings{"basd"});
      }
      if (op.kind == OpKind::kAdamW && op.name == "adamw:transformer.wte.weight") {
        const IndexMap m = index_map(g, op);  // elementwise over [V, H]; norm_scale "c"
        CHECK(m.inputs == Strings{"ij", "ij", "ij", "ij", "c"});
        CHECK(m.outputs.empty());
      }
      if (op.kind == OpKind::kAttentionGrad) {  // (q, k, v, dctx) -> (dq, dk, dv)
        const IndexMap m = index_map(g, op);
        CHECK(m.inputs == Strings{"basd", "batd", "batd", "basd"});
        CHECK(m.outputs == Strings{"basd", "batd", "batd"});
        CHECK(m.normalized == "td");
      }
    }
  }
}
