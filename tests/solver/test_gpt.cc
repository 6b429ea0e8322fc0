// GPT-2 builder: HF parameter names and shapes, parameter count (checked against HF GPT-2 small),
// layers, tied embedding, init rule and the reproducibility and statistics of gpt_init_values.
#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "solver/ir/gpt.h"

using namespace strata::solver;
using Catch::Matchers::Contains;

namespace {

std::int64_t parameter_count(const Graph& g) {
  std::int64_t n = 0;
  for (TensorId id : g.tensors_with_role(TensorRole::kParameter)) {
    n += num_elements(g.tensor(id).shape);
    // a file shape is a reshape: the same element count
    CHECK(num_elements(file_shape_of(g.tensor(id))) == num_elements(g.tensor(id).shape));
  }
  return n;
}

// Per block: ln_1 2H + c_attn (3H^2 + 3H) + c_proj (H^2 + H) + ln_2 2H + c_fc (4H^2 + 4H)
// + mlp.c_proj (4H^2 + H) = 12H^2 + 13H; plus wte VH, wpe SH and ln_f 2H.
std::int64_t expected_count(std::int64_t L, std::int64_t H, std::int64_t S, std::int64_t V) {
  return L * (12 * H * H + 13 * H) + V * H + S * H + 2 * H;
}

}  // namespace

TEST_CASE("gpt builder names and shapes parameters as HF GPT-2", "[ir][gpt]") {
  GptConfig c;                // L=2, H=64, A=4, S=32, V=256
  c.fused_attention = false;  // the reference form; the fused one: the next test
  const Graph g = build_gpt(c, 3);
  const auto shape = [&](const std::string& n) { return g.tensor(g.at(n)).shape; };
  const auto file_shape = [&](const std::string& n) { return file_shape_of(g.tensor(g.at(n))); };
  CHECK(shape("transformer.wte.weight") == Shape{256, 64});
  CHECK(shape("transformer.wpe.weight") == Shape{32, 64});
  CHECK(shape("transformer.h.1.ln_1.weight") == Shape{64});
  CHECK(shape("transformer.h.1.ln_1.bias") == Shape{64});
  // attention parameters are factored by head (A = 4, D = 16); their files keep HF's shapes
  CHECK(shape("transformer.h.1.attn.c_attn.weight") == Shape{64, 3, 4, 16});
  CHECK(shape("transformer.h.1.attn.c_attn.bias") == Shape{3, 4, 16});
  CHECK(shape("transformer.h.1.attn.c_proj.weight") == Shape{4, 16, 64});
  CHECK(shape("transformer.h.1.attn.c_proj.bias") == Shape{64});
  CHECK(file_shape("transformer.h.1.attn.c_attn.weight") == Shape{64, 192});
  CHECK(file_shape("transformer.h.1.attn.c_attn.bias") == Shape{192});
  CHECK(file_shape("transformer.h.1.attn.c_proj.weight") == Shape{64, 64});
  // every other parameter is stored as it is shaped
  for (const char* n : {"transformer.wte.weight", "transformer.h.1.attn.c_proj.bias",
                        "transformer.h.0.mlp.c_fc.weight", "transformer.ln_f.bias"}) {
    CHECK(g.tensor(g.at(n)).file_shape.empty());
    CHECK(file_shape(n) == shape(n));
  }
  CHECK(shape("transformer.h.0.ln_2.weight") == Shape{64});
  CHECK(shape("transformer.h.0.mlp.c_fc.weight") == Shape{64, 256});
  CHECK(shape("transformer.h.0.mlp.c_fc.bias") == Shape{256});
  CHECK(shape("transformer.h.0.mlp.c_proj.weight") == Shape{256, 64});
  CHECK(shape("transformer.h.0.mlp.c_proj.bias") == Shape{64});
  CHECK(shape("transformer.ln_f.weight") == Shape{64});
  CHECK(shape("tokens") == Shape{3, 32});
  CHECK(g.tensor(g.at("tokens")).dtype == DType::kI32);
  CHECK(g.tensor(g.at("targets")).role == TensorRole::kInput);
  CHECK(g.find("transformer.h.2.ln_1.weight") == kNoTensor);
  CHECK(g.find("lm_head.weight") == kNoTensor);  // tied to wte

  // 2 + 12 per block + 2 = 28 parameters; 2*(12*64^2 + 13*64) + 256*64 + 32*64 + 128
  //   = 2*(49152 + 832) + 16384 + 2048 + 128 = 99968 + 18560 = 118528
  CHECK(g.tensors_with_role(TensorRole::kParameter).size() == 28);
  CHECK(parameter_count(g) == 118528);
  CHECK(parameter_count(g) == expected_count(2, 64, 32, 256));

  // layers: 0 embedding, 1..L blocks, L+1 head; wte owned by 0 and shared with L+1
  CHECK(g.num_layers == 4);
  CHECK(g.tensor(g.at("transformer.wte.weight")).layer == 0);
  CHECK(g.tensor(g.at("transformer.h.1.mlp.c_fc.weight")).layer == 2);
  CHECK(g.tensor(g.at("transformer.ln_f.bias")).layer == 3);
  REQUIRE(g.shared_parameters.size() == 1);
  CHECK(g.shared_parameters[0].tensor == g.at("transformer.wte.weight"));
  CHECK(g.shared_parameters[0].layers == std::vector<int>{0, 3});

  // loss: scalar of the graph dtype, role loss, layer L+1
  const Tensor& loss = g.tensor(g.at("loss"));
  CHECK(loss.shape.empty());
  CHECK(loss.role == TensorRole::kLoss);
  CHECK(loss.dtype == DType::kF32);
  CHECK(loss.layer == 3);
  CHECK(g.meta.at("kind") == "gpt");
  CHECK(g.meta.at("heads") == "4");
  CHECK(g.meta.at("dtype") == "f32");

  // ops: 2 embedding + 17 per block (attention 11: ln_1 qkv bias split scores causal-softmax
  // ctx merge proj bias residual; MLP 6: ln_2 fc bias+gelu proj bias residual) + ln_f, lm_head,
  // loss = 2 + 34 + 3 = 39
  CHECK(g.ops.size() == 39);
  CHECK(g.ops.front().kind == OpKind::kEmbedding);
  CHECK(g.ops[1].kind == OpKind::kPositionEmbedding);
  CHECK(g.ops.back().kind == OpKind::kCrossEntropy);
  std::set<std::string> names;
  for (const Op& op : g.ops) {
    CHECK(names.insert(op.name).second);  // unique
    if (op.name.rfind("h.1.", 0) == 0) CHECK(op.layer == 2);
  }
  const Op& scores = g.ops[6];  // after embed.wte, embed.wpe, ln_1, qkv, qkv_bias, split
  CHECK(scores.name == "h.0.attn.scores");
  CHECK(attr_str(scores, "equation") == "basd,batd->bast");
  CHECK(attr_float(scores, "alpha") == Approx(1.0 / std::sqrt(16.0)));  // D = 64/4
  CHECK(g.tensor(scores.outputs[0]).shape == Shape{3, 4, 32, 32});
  // attention with heads as dims of their own (B = 3, S = 32, A = 4, D = 16, H = 64)
  const auto op_named = [&](const std::string& name) -> const Op& {
    for (const Op& op : g.ops) {
      if (op.name == name) return op;
    }
    FAIL("no op " << name);
    return g.ops.front();
  };
  CHECK(attr_int(op_named("h.1.attn.softmax"), "causal") == 1);
  CHECK(op_named("h.1.mlp.gelu").inputs.size() == 2);  // gelu(x + c_fc.bias)
  const Op& qkv = op_named("h.0.attn.qkv");
  CHECK(attr_str(qkv, "equation") == "bsk,kpad->bspad");
  CHECK(g.tensor(qkv.outputs[0]).shape == Shape{3, 32, 3, 4, 16});
  const Op& split = op_named("h.0.attn.split");
  CHECK(attr_int(split, "parts") == 3);
  CHECK(attr_int(split, "heads") == 4);
  REQUIRE(split.outputs.size() == 3);
  for (TensorId t : split.outputs) CHECK(g.tensor(t).shape == Shape{3, 4, 32, 16});
  const Op& merge = op_named("h.0.attn.merge");
  CHECK(attr_int(merge, "parts") == 1);
  CHECK(g.tensor(merge.outputs[0]).shape == Shape{3, 32, 4, 16});
  const Op& proj = op_named("h.0.attn.proj");
  CHECK(attr_str(proj, "equation") == "bsad,adn->bsn");
  CHECK(g.tensor(proj.outputs[0]).shape == Shape{3, 32, 64});
  const Op& head = g.ops[g.ops.size() - 2];
  CHECK(attr_str(head, "equation") == "bsh,vh->bsv");
  CHECK(g.tensor(head.outputs[0]).shape == Shape{3, 32, 256});
}

TEST_CASE("gpt builder: fused attention is one op over q, k, v", "[ir][gpt]") {
  GptConfig c;  // L=2, H=64, A=4, S=32, V=256; fused by default
  const Graph g = build_gpt(c, 3);
  CHECK(g.meta.at("attention") == "fused");
  CHECK(gpt_fused_attention(g));
  // ops: 2 embedding + 15 per block (scores, causal softmax, ctx become attention) + 3 = 35
  CHECK(g.ops.size() == 35);
  const Op& att = g.ops[6];  // after embed.wte, embed.wpe, ln_1, qkv, qkv_bias, split
  CHECK(att.name == "h.0.attn.attention");
  CHECK(att.kind == OpKind::kAttention);
  CHECK(attr_float(att, "scale") == Approx(1.0 / std::sqrt(16.0)));  // D = 64/4
  CHECK(attr_int(att, "causal") == 1);
  CHECK(att.inputs == g.ops[5].outputs);  // q, k, v of the split
  CHECK(g.tensor(att.outputs[0]).shape == Shape{3, 4, 32, 16});
  CHECK(g.ops[7].name == "h.0.attn.merge");
  // the same parameters as the unfused form
  c.fused_attention = false;
  const Graph ref = build_gpt(c, 3);
  CHECK(ref.meta.at("attention") == "unfused");
  CHECK(!gpt_fused_attention(ref));
  CHECK(ref.tensors_with_role(TensorRole::kParameter).size() ==
        g.tensors_with_role(TensorRole::kParameter).size());
  CHECK(parameter_count(ref) == parameter_count(g));
  Graph odd = g;
  odd.meta["attention"] = "flash";
  CHECK_THROWS_WITH(gpt_fused_attention(odd), Contains("'flash'"));
  odd.meta.erase("attention");  // graphs before version 4: unfused
  CHECK(!gpt_fused_attention(odd));
}

TEST_CASE("gpt parameter count matches HF GPT-2 small", "[ir][gpt]") {
  GptConfig c;
  c.layers = 12;
  c.hidden = 768;
  c.heads = 12;
  c.seq_len = 1024;
  c.vocab = 50257;
  // 12*(12*768^2 + 13*768) + 50257*768 + 1024*768 + 2*768
  //   = 85054464 + 38597376 + 786432 + 1536 = 124439808 (HF's GPT2LMHeadModel, tied head)
  CHECK(expected_count(12, 768, 1024, 50257) == 124439808);
  const Graph g = build_gpt(c, 1);
  CHECK(parameter_count(g) == 124439808);
  CHECK(g.num_layers == 14);
}

TEST_CASE("gpt config validation names the field", "[ir][gpt]") {
  GptConfig c;
  c.heads = 5;  // does not divide 64
  CHECK_THROWS_WITH(build_gpt(c, 1), Contains("heads"));
  c = GptConfig{};
  c.layers = 0;
  CHECK_THROWS_WITH(validate(c), Contains("layers"));
  c = GptConfig{};
  c.dtype = DType::kI32;
  CHECK_THROWS_WITH(validate(c), Contains("dtype"));
  CHECK_THROWS_WITH(build_gpt(GptConfig{}, 0), Contains("batch"));
  c = GptConfig{};
  c.dtype = DType::kF64;
  const Graph g = build_gpt(c, 1);
  CHECK(g.tensor(g.at("loss")).dtype == DType::kF64);
  CHECK(g.tensor(g.at("transformer.wte.weight")).dtype == DType::kF64);
}

TEST_CASE("gpt init rule", "[ir][gpt]") {
  GptConfig c;
  c.layers = 8;
  CHECK(gpt_param_init(c, "transformer.wte.weight").stddev == 0.02);
  CHECK(gpt_param_init(c, "transformer.wpe.weight").stddev == 0.02);
  CHECK(gpt_param_init(c, "transformer.h.3.attn.c_attn.weight").stddev == 0.02);
  CHECK(gpt_param_init(c, "transformer.h.3.mlp.c_fc.weight").stddev == 0.02);
  // 0.02 / sqrt(2 * 8) = 0.02 / 4 = 0.005
  CHECK(gpt_param_init(c, "transformer.h.7.attn.c_proj.weight").stddev == Approx(0.005));
  CHECK(gpt_param_init(c, "transformer.h.0.mlp.c_proj.weight").stddev == Approx(0.005));
  const ParamInit bias = gpt_param_init(c, "transformer.h.0.mlp.c_proj.bias");
  CHECK(bias.stddev == 0.0);
  CHECK(bias.constant == 0.0);
  const ParamInit lnw = gpt_param_init(c, "transformer.h.2.ln_2.weight");
  CHECK(lnw.stddev == 0.0);
  CHECK(lnw.constant == 1.0);
  CHECK(gpt_param_init(c, "transformer.ln_f.weight").constant == 1.0);
  CHECK(gpt_param_init(c, "transformer.ln_f.bias").constant == 0.0);
  CHECK_THROWS_WITH(gpt_param_init(c, "transformer.h.8.ln_1.weight"), Contains("h.8"));
  CHECK_THROWS_AS(gpt_param_init(c, "transformer.h.01.ln_1.weight"), std::invalid_argument);
  CHECK_THROWS_AS(gpt_param_init(c, "transformer.h.0.ln_3.weight"), std::invalid_argument);
  CHECK_THROWS_AS(gpt_param_init(c, "lm_head.weight"), std::invalid_argument);
}

TEST_CASE("gpt init values are reproducible and normal(0, std)", "[ir][gpt]") {
  GptConfig c;
  c.layers = 2;
  const std::string wte = "transformer.wte.weight";
  const std::int64_t n = 256 * 64;  // 16384 values
  const std::vector<double> a = gpt_init_values(c, wte, n, 7);
  const std::vector<double> b = gpt_init_values(c, wte, n, 7);
  CHECK(a == b);                              // same seed and name: bit-identical
  CHECK(a != gpt_init_values(c, wte, n, 8));  // other seed
  CHECK(a != gpt_init_values(c, "transformer.wpe.weight", n, 7));  // other name
  // a prefix of the sequence does not depend on the count
  const std::vector<double> head = gpt_init_values(c, wte, 11, 7);
  CHECK(std::vector<double>(a.begin(), a.begin() + 11) == head);

  double sum = 0, sq = 0;
  for (double v : a) {
    sum += v;
    sq += v * v;
  }
  const double mean = sum / static_cast<double>(n);
  const double stddev = std::sqrt(sq / static_cast<double>(n) - mean * mean);
  // standard error of the mean = 0.02 / sqrt(16384) = 1.6e-4: 5 sigma = 8e-4
  CHECK(std::abs(mean) < 8e-4);
  // standard error of the std ~ 0.02 / sqrt(2 * 16384) = 1.1e-4: allow 5e-4
  CHECK(stddev == Approx(0.02).margin(5e-4));

  // c_proj weights: std 0.02 / sqrt(4) = 0.01
  const std::vector<double> p = gpt_init_values(c, "transformer.h.1.mlp.c_proj.weight", n, 1);
  double pq = 0;
  for (double v : p) pq += v * v;
  CHECK(std::sqrt(pq / static_cast<double>(n)) == Approx(0.01).margin(3e-4));

  // constants
  for (double v : gpt_init_values(c, "transformer.h.0.ln_1.weight", 64, 3)) CHECK(v == 1.0);
  for (double v : gpt_init_values(c, "transformer.h.0.attn.c_attn.bias", 192, 3)) CHECK(v == 0.0);
  CHECK(gpt_init_values(c, wte, 0, 3).empty());
  CHECK_THROWS_AS(gpt_init_values(c, wte, -1, 3), std::invalid_argument);
}
