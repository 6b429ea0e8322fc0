// Graph JSON: round trip of a GPT graph (file shapes included), the batch dim written as -1 and
// rebound on decoding, and malformed inputs, each rejected with one std::invalid_argument line
// "graph JSON: ...".
// The last case mutates bytes of a valid text at random (a small in-test fuzzer).
#include <catch2/catch.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "solver/ir/gpt.h"
#include "solver/ir/graph_json.h"

using namespace strata::solver;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using nlohmann::json;

namespace {

Graph tiny_gpt(std::int64_t batch, bool fused_attention = true) {
  GptConfig c;
  c.fused_attention = fused_attention;
  c.layers = 1;
  c.hidden = 8;
  c.heads = 2;
  c.seq_len = 4;
  c.vocab = 16;
  return build_gpt(c, batch);
}

void require_same(const Graph& a, const Graph& b) {
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    const Tensor &x = a.tensors[i], &y = b.tensors[i];
    CHECK(x.name == y.name);
    CHECK(x.shape == y.shape);
    CHECK(x.dtype == y.dtype);
    CHECK(x.role == y.role);
    CHECK(x.layer == y.layer);
    CHECK(x.file_shape == y.file_shape);
  }
  REQUIRE(a.ops.size() == b.ops.size());
  for (std::size_t i = 0; i < a.ops.size(); ++i) {
    const Op &x = a.ops[i], &y = b.ops[i];
    CHECK(x.name == y.name);
    CHECK(x.kind == y.kind);
    CHECK(x.inputs == y.inputs);
    CHECK(x.outputs == y.outputs);
    CHECK(x.attrs == y.attrs);  // doubles round trip exactly (shortest repr)
    CHECK(x.layer == y.layer);
    CHECK(x.phase == y.phase);
  }
  CHECK(a.num_layers == b.num_layers);
  REQUIRE(a.shared_parameters.size() == b.shared_parameters.size());
  for (std::size_t i = 0; i < a.shared_parameters.size(); ++i) {
    CHECK(a.shared_parameters[i].tensor == b.shared_parameters[i].tensor);
    CHECK(a.shared_parameters[i].layers == b.shared_parameters[i].layers);
  }
  CHECK(a.meta == b.meta);
}

// Decodes `j` and requires a one-line invalid_argument containing `needle`.
void require_rejected(const json& j, const std::string& needle) {
  INFO("needle: " << needle);
  try {
    decode_graph_json(j.dump(), 2);
    FAIL("decoded without error");
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, StartsWith("graph JSON: ") && Contains(needle));
    CHECK(msg.find('\n') == std::string::npos);
  }
}

json& op_named(json& root, const std::string& name) {
  for (json& op : root["ops"]) {
    if (op["name"] == name) return op;
  }
  throw std::runtime_error("no op " + name);
}

json& tensor_named(json& root, const std::string& name) {
  for (json& t : root["tensors"]) {
    if (t["name"] == name) return t;
  }
  throw std::runtime_error("no tensor " + name);
}

}  // namespace

TEST_CASE("graph JSON round trip", "[ir][json]") {
  const Graph g = tiny_gpt(3);
  const std::string text = encode_graph_json(g);
  require_same(g, decode_graph_json(text, 3));
  // encoding is deterministic
  CHECK(encode_graph_json(decode_graph_json(text, 3)) == text);

  // the batch dim is stored as -1 and bound on decoding
  const json j = json::parse(text);
  CHECK(j["format"] == kGraphFormat);
  CHECK(j["version"] == kGraphVersion);
  for (const json& t : j["tensors"]) {
    if (t["name"] == "tokens") CHECK(t["shape"] == json::array({-1, 4}));
    // file_shape only where it differs from the shape (H 8, A 2, D 4)
    if (t["name"] == "transformer.h.0.attn.c_attn.weight") {
      CHECK(t["shape"] == json::array({8, 3, 2, 4}));
      CHECK(t["file_shape"] == json::array({8, 24}));
    }
    if (t["name"] == "transformer.h.0.attn.c_proj.weight") {
      CHECK(t["file_shape"] == json::array({8, 8}));
    }
    if (t["name"] == "transformer.wte.weight") CHECK_FALSE(t.contains("file_shape"));
  }
  const Graph g3 = decode_graph_json(text, 3);
  CHECK(g3.tensor(g3.at("transformer.h.0.attn.c_attn.bias")).file_shape == Shape{24});
  const Graph g5 = decode_graph_json(text, 5);
  CHECK(g5.tensor(g5.at("tokens")).shape == Shape{5, 4});
  CHECK(g5.tensor(g5.at("lm_head:out")).shape == Shape{5, 4, 16});
  require_same(tiny_gpt(5), g5);
  // activation shapes are not stored
  CHECK(text.find("h.0.mlp.fc:out\",\"shape") == std::string::npos);
  CHECK_THROWS_WITH(decode_graph_json(text, 0), StartsWith("graph JSON: ") && Contains("batch"));
}

TEST_CASE("graph JSON rejects malformed content", "[ir][json]") {
  const json good = json::parse(encode_graph_json(tiny_gpt(2)));
  const auto mutated = [&](const std::function<void(json&)>& change) {
    json j = good;
    change(j);
    return j;
  };

  // not JSON, empty, truncated, trailing garbage
  for (const std::string bad : {"", "{", "nul", "{\"format\": \"strata-graph\"", "{} x"}) {
    CHECK_THROWS_WITH(decode_graph_json(bad, 2), StartsWith("graph JSON: "));
  }
  CHECK_THROWS_WITH(decode_graph_json(good.dump().substr(0, 300), 2),
                    StartsWith("graph JSON: malformed JSON"));
  require_rejected(json::array({1, 2}), "root must be an object");
  require_rejected(mutated([](json& j) { j["format"] = "strata-plan"; }), "format 'strata-plan'");
  require_rejected(mutated([](json& j) { j["version"] = kGraphVersion + 1; }), "newer");
  // version 1 packed heads into composite dims; its attention ops no longer infer
  require_rejected(mutated([](json& j) { j["version"] = 1; }), "version 1 is older");
  // version 2 (attention as causal_mask + softmax) still reads
  CHECK_NOTHROW(decode_graph_json(mutated([](json& j) { j["version"] = 2; }).dump(), 2));
  // a version 3 file: the unfused attention and no meta "attention" key, which reads as unfused
  json v3 = json::parse(encode_graph_json(tiny_gpt(2, /*fused_attention=*/false)));
  v3["version"] = 3;
  v3["meta"].erase("attention");
  const Graph old = decode_graph_json(v3.dump(), 2);
  CHECK(!gpt_fused_attention(old));
  require_same(old, [] {
    Graph g = tiny_gpt(2, false);
    g.meta.erase("attention");
    return g;
  }());
  require_rejected(mutated([](json& j) { j["version"] = "1"; }), "version must be an integer");
  require_rejected(mutated([](json& j) { j.erase("ops"); }), "missing field 'ops'");
  require_rejected(mutated([](json& j) { j["num_layers"] = 0; }), "num_layers");
  require_rejected(mutated([](json& j) { op_named(j, "h.0.mlp.gelu")["kind"] = "relu"; }),
                   "unknown op kind 'relu'");
  require_rejected(
      mutated([](json& j) { op_named(j, "h.0.mlp.gelu")["inputs"] = json::array({"nope"}); }),
      "op 'h.0.mlp.gelu': unknown input tensor 'nope'");
  require_rejected(mutated([](json& j) { j["tensors"].push_back(j["tensors"][0]); }),
                   "duplicate tensor name 'transformer.wte.weight'");
  require_rejected(mutated([](json& j) { j["ops"].push_back(j["ops"][0]); }),
                   "duplicate op name 'embed.wte'");
  require_rejected(
      mutated([](json& j) { tensor_named(j, "transformer.wpe.weight")["shape"][0] = 0; }),
      "must be positive");
  require_rejected(
      mutated([](json& j) { tensor_named(j, "transformer.wpe.weight")["shape"][0] = -1; }),
      "must be positive");
  require_rejected(
      mutated([](json& j) { tensor_named(j, "transformer.wpe.weight")["shape"][1] = 1.5; }),
      "must be an integer");
  // 2^40 * 2^40 elements overflow int64
  require_rejected(mutated([](json& j) {
                     tensor_named(j, "transformer.wpe.weight")["shape"] =
                         json::array({std::int64_t{1} << 40, std::int64_t{1} << 40});
                   }),
                   "overflows int64");
  require_rejected(mutated([](json& j) {
                     tensor_named(j, "transformer.wpe.weight")["shape"] = json::array({4, 9});
                   }),
                   "op embed.wpe (position_embedding)");  // shapes that do not infer
  require_rejected(
      mutated([](json& j) { tensor_named(j, "transformer.wte.weight")["dtype"] = "f8"; }),
      "unknown dtype 'f8'");
  // file_shape: a reshape of the shape, positive dims, not on an input (its batch dim varies)
  const std::string c_attn = "transformer.h.0.attn.c_attn.weight";  // [8, 3, 2, 4] = 192
  require_rejected(mutated([&](json& j) {
                     tensor_named(j, c_attn)["file_shape"] = json::array({8, 23});
                   }),
                   "tensor 'transformer.h.0.attn.c_attn.weight': " + c_attn +
                       ": file_shape [8, 23] is not a reshape of shape [8, 3, 2, 4]");
  require_rejected(mutated([&](json& j) {
                     tensor_named(j, c_attn)["file_shape"] = json::array({-8, -24});
                   }),
                   "file_shape dim 0 = -8 outside");
  require_rejected(mutated([&](json& j) {
                     tensor_named(j, c_attn)["file_shape"] = json::array({0, 24});
                   }),
                   "file_shape dim 0 = 0 outside");
  require_rejected(mutated([&](json& j) { tensor_named(j, c_attn)["file_shape"] = "8x24"; }),
                   "file_shape must be an array");
  require_rejected(mutated([&](json& j) { tensor_named(j, c_attn)["file_shape"] = json::array(); }),
                   "file_shape is empty");
  require_rejected(
      mutated([&](json& j) {
        tensor_named(j, c_attn)["file_shape"] = json::array({1, 1, 1, 1, 1, 1, 1, 1, 1, 192});
      }),
      "file_shape has more than 8 entries");
  require_rejected(
      mutated([](json& j) { tensor_named(j, "tokens")["file_shape"] = json::array({8}); }),
      "tensor 'tokens': an input has no file_shape");
  require_rejected(
      mutated([](json& j) { op_named(j, "h.0.attn.split")["attrs"]["heads"] = json::array({2}); }),
      "attribute 'heads' must be an integer, a float or a string");
  require_rejected(mutated([](json& j) { op_named(j, "h.0.attn.split")["attrs"]["heads"] = 0; }),
                   "heads");  // never divides by zero
  require_rejected(mutated([](json& j) { op_named(j, "h.0.mlp.gelu")["layer"] = 99; }),
                   "layer = 99 outside");
  require_rejected(mutated([](json& j) { op_named(j, "h.0.mlp.gelu")["outputs"].push_back("x"); }),
                   "2 output names given for 1 outputs");
  require_rejected(mutated([](json& j) { j["shared_parameters"][0]["tensor"] = "tokens"; }),
                   "not a parameter");
  require_rejected(mutated([](json& j) {
                     j["shared_parameters"][0]["layers"] = json::array({2, 0});
                   }),
                   "strictly ascending");
  // deep nesting is refused while parsing, not after building a huge tree
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  CHECK_THROWS_WITH(decode_graph_json(deep, 2), Contains("nesting deeper"));
}

TEST_CASE("graph JSON survives random byte mutations", "[ir][json]") {
  const std::string text = encode_graph_json(tiny_gpt(2));
  std::mt19937_64 rng(12345);
  int decoded = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string t = text;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t pos = rng() % t.size();
      switch (rng() % 3) {
        case 0:
          t[pos] = static_cast<char>(rng() % 256);
          break;  // overwrite
        case 1:
          t.erase(pos, 1 + rng() % 8);
          break;  // delete
        default:
          t.insert(pos, 1, "0123456789-[]{}\",:e"[rng() % 19]);  // insert
      }
    }
    try {
      decode_graph_json(t, 2);
      ++decoded;  // e.g. a changed digit in meta
    } catch (const std::invalid_argument& e) {
      CHECK_THAT(std::string(e.what()), StartsWith("graph JSON: "));
    }
  }
  CHECK(decoded < 3000);
}
