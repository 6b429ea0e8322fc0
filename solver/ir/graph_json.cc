// Graph <-> JSON (graph_json.h). Decoding reads untrusted bytes (model files; it is fuzzed): every
// field's type is checked, counts, ranks, name lengths and nesting depth are bounded before
// anything is allocated from them, dims must be positive, and every failure (nlohmann's included)
// becomes one std::invalid_argument line starting "graph JSON: ". Pure C++ (nlohmann-json).
#include "solver/ir/graph_json.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

namespace strata::solver {
namespace {

using nlohmann::json;

// Bounds on decoded content (far above any real model, far below memory trouble).
constexpr std::size_t kMaxTextBytes = std::size_t{1} << 30;
constexpr int kMaxDepth = 16;
constexpr std::size_t kMaxTensors = std::size_t{1} << 22;
constexpr std::size_t kMaxOps = std::size_t{1} << 22;
constexpr std::size_t kMaxOpInputs = std::size_t{1} << 20;
constexpr std::size_t kMaxOpOutputs = 64;
constexpr std::size_t kMaxRank = 8;
constexpr std::size_t kMaxNameBytes = 1024;
constexpr std::size_t kMaxAttrs = 64;
constexpr std::size_t kMaxMeta = 1024;
constexpr std::size_t kMaxShared = 1024;
constexpr std::int64_t kMaxLayers = std::int64_t{1} << 20;
constexpr std::int64_t kMaxBatch = std::int64_t{1} << 40;

constexpr const char* kPrefix = "graph JSON: ";

[[noreturn]] void fail(const std::string& problem) {
  throw std::invalid_argument(kPrefix + problem);
}

const json& field(const json& obj, const char* key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) fail(where + ": missing field '" + key + "'");
  return *it;
}

std::int64_t as_int(const json& j, const std::string& what, std::int64_t lo, std::int64_t hi) {
  std::int64_t v = 0;
  if (j.is_number_unsigned()) {
    const auto u = j.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      fail(what + " = " + std::to_string(u) + " does not fit int64");
    }
    v = static_cast<std::int64_t>(u);
  } else if (j.is_number_integer()) {
    v = j.get<std::int64_t>();
  } else {
    fail(what + " must be an integer");
  }
  if (v < lo || v > hi) {
    fail(what + " = " + std::to_string(v) + " outside [" + std::to_string(lo) + ", " +
         std::to_string(hi) + "]");
  }
  return v;
}

const std::string& as_string(const json& j, const std::string& what,
                             std::size_t max_bytes = kMaxNameBytes) {
  if (!j.is_string()) fail(what + " must be a string");
  const auto& s = j.get_ref<const std::string&>();
  if (s.size() > max_bytes) fail(what + " longer than " + std::to_string(max_bytes) + " bytes");
  return s;
}

const std::string& as_name(const json& j, const std::string& what) {
  const std::string& s = as_string(j, what);
  if (s.empty()) fail(what + " is empty");
  return s;
}

const json& as_array(const json& j, const std::string& what, std::size_t max_size) {
  if (!j.is_array()) fail(what + " must be an array");
  if (j.size() > max_size) fail(what + " has more than " + std::to_string(max_size) + " entries");
  return j;
}

const json& as_object(const json& j, const std::string& what, std::size_t max_size) {
  if (!j.is_object()) fail(what + " must be an object");
  if (j.size() > max_size) fail(what + " has more than " + std::to_string(max_size) + " entries");
  return j;
}

// Runs `parse` and rewrites any error message to "graph JSON: <where>: <message>".
template <typename F>
auto with_context(const std::string& where, F parse) -> decltype(parse()) {
  try {
    return parse();
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    if (msg.rfind(kPrefix, 0) == 0) throw;
    fail(where.empty() ? msg : where + ": " + msg);
  }
}

json encode_attr(const AttrValue& v, const std::string& where) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) {
    if (!std::isfinite(*d))
      throw std::invalid_argument("encode_graph_json: " + where + " is not finite");
    return *d;
  }
  return std::get<std::string>(v);
}

AttrValue decode_attr(const json& j, const std::string& what) {
  if (j.is_number_integer()) {
    return as_int(j, what, std::numeric_limits<std::int64_t>::min(),
                  std::numeric_limits<std::int64_t>::max());
  }
  if (j.is_number_float()) {
    const double d = j.get<double>();
    if (!std::isfinite(d)) fail(what + " is not finite");
    return d;
  }
  if (j.is_string()) return as_string(j, what, 4096);
  fail(what + " must be an integer, a float or a string");
}

}  // namespace

std::string encode_graph_json(const Graph& graph) {
  std::vector<bool> produced(graph.tensors.size(), false);
  for (const Op& op : graph.ops) {
    for (TensorId id : op.outputs) produced.at(static_cast<std::size_t>(id)) = true;
  }
  json tensors = json::array();
  for (std::size_t i = 0; i < graph.tensors.size(); ++i) {
    if (produced[i]) continue;
    const Tensor& t = graph.tensors[i];
    json shape = json::array();
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
      shape.push_back(d == 0 && t.role == TensorRole::kInput ? std::int64_t{-1} : t.shape[d]);
    }
    json jt = {{"name", t.name},
               {"shape", shape},
               {"dtype", dtype_name(t.dtype)},
               {"role", role_name(t.role)},
               {"layer", t.layer}};
    if (!t.file_shape.empty()) jt["file_shape"] = t.file_shape;
    tensors.push_back(std::move(jt));
  }
  json ops = json::array();
  for (const Op& op : graph.ops) {
    json inputs = json::array(), outputs = json::array(), attrs = json::object();
    for (TensorId id : op.inputs) inputs.push_back(graph.tensor(id).name);
    for (TensorId id : op.outputs) outputs.push_back(graph.tensor(id).name);
    for (const auto& [key, value] : op.attrs) {
      attrs[key] = encode_attr(value, "op " + op.name + " attribute " + key);
    }
    json j = {{"name", op.name},
              {"kind", op_kind_name(op.kind)},
              {"inputs", inputs},
              {"outputs", outputs},
              {"attrs", attrs},
              {"layer", op.layer},
              {"phase", op_phase_name(op.phase)}};
    j["output_role"] =
        role_name(op.outputs.empty() ? TensorRole::kActivation : graph.tensor(op.outputs[0]).role);
    ops.push_back(std::move(j));
  }
  json shared = json::array();
  for (const SharedParameter& sp : graph.shared_parameters) {
    shared.push_back({{"tensor", graph.tensor(sp.tensor).name}, {"layers", sp.layers}});
  }
  json meta = json::object();
  for (const auto& [k, v] : graph.meta) meta[k] = v;
  const json root = {{"format", kGraphFormat},
                     {"version", kGraphVersion},
                     {"num_layers", graph.num_layers},
                     {"meta", meta},
                     {"tensors", tensors},
                     {"ops", ops},
                     {"shared_parameters", shared}};
  return root.dump();
}

Graph decode_graph_json(const std::string& text, std::int64_t batch) {
  if (batch < 1 || batch > kMaxBatch) fail("batch " + std::to_string(batch) + " out of range");
  if (text.size() > kMaxTextBytes) fail("text larger than 1 GiB");
  try {
    // Depth check during parsing: nothing deeper than the format needs is ever built.
    const json::parser_callback_t limit_depth = [](int depth, json::parse_event_t, json&) {
      if (depth > kMaxDepth) fail("nesting deeper than " + std::to_string(kMaxDepth));
      return true;
    };
    const json root = json::parse(text, limit_depth);
    as_object(root, "root", 64);
    const std::string& format = as_string(field(root, "format", "root"), "format");
    if (format != kGraphFormat) fail("format '" + format + "' is not '" + kGraphFormat + "'");
    const std::int64_t version = as_int(field(root, "version", "root"), "version", 1,
                                        std::numeric_limits<std::int64_t>::max());
    if (version > kGraphVersion) {
      fail("version " + std::to_string(version) + " is newer than supported " +
           std::to_string(kGraphVersion));
    }
    if (version < kOldestGraphVersion) {
      // Version 1 packed heads into composite dims ([B,S,3H] qkv); its ops no longer infer.
      fail("version " + std::to_string(version) + " is older than supported " +
           std::to_string(kOldestGraphVersion) +
           " (attention without factored head dims); re-create the model file");
    }

    Graph g;
    g.num_layers =
        static_cast<int>(as_int(field(root, "num_layers", "root"), "num_layers", 1, kMaxLayers));
    const auto layer_of = [&](const json& j, const std::string& where) {
      return static_cast<int>(as_int(j, where + ": layer", 0, g.num_layers - 1));
    };

    // ---- meta
    if (root.contains("meta")) {
      for (const auto& [k, v] : as_object(root["meta"], "meta", kMaxMeta).items()) {
        if (k.size() > kMaxNameBytes) fail("meta key too long");
        g.meta[k] = as_string(v, "meta '" + k + "'", 4096);
      }
    }

    // ---- source tensors (parameters, inputs)
    for (const json& jt : as_array(field(root, "tensors", "root"), "tensors", kMaxTensors)) {
      as_object(jt, "tensor", 64);
      Tensor t;
      t.name = as_name(field(jt, "name", "tensor"), "tensor name");
      const std::string where = "tensor '" + t.name + "'";
      t.dtype = with_context(where, [&] {
        return parse_dtype(as_string(field(jt, "dtype", where), where + ": dtype"));
      });
      t.role = with_context(
          where, [&] { return parse_role(as_string(field(jt, "role", where), where + ": role")); });
      t.layer = layer_of(field(jt, "layer", where), where);
      const json& shape = as_array(field(jt, "shape", where), where + ": shape", kMaxRank);
      for (std::size_t d = 0; d < shape.size(); ++d) {
        const std::string what = where + ": dim " + std::to_string(d);
        const std::int64_t n = as_int(shape[d], what, -1, std::numeric_limits<std::int64_t>::max());
        if (n == -1 && d == 0 && t.role == TensorRole::kInput) {
          t.shape.push_back(batch);
        } else if (n <= 0) {
          fail(what + " = " + std::to_string(n) + " must be positive" +
               (d == 0 && t.role == TensorRole::kInput ? " or -1 (batch)" : ""));
        } else {
          t.shape.push_back(n);
        }
      }
      if (jt.contains("file_shape")) {
        // An input's dim 0 is the batch, bound at decoding; a fixed file shape cannot follow it.
        if (t.role == TensorRole::kInput) fail(where + ": an input has no file_shape");
        const json& fs = as_array(jt["file_shape"], where + ": file_shape", kMaxRank);
        if (fs.empty()) fail(where + ": file_shape is empty (omit it to mean the shape)");
        for (std::size_t d = 0; d < fs.size(); ++d) {
          t.file_shape.push_back(as_int(fs[d], where + ": file_shape dim " + std::to_string(d), 1,
                                        std::numeric_limits<std::int64_t>::max()));
        }
      }
      if (g.find(t.name) != kNoTensor) fail("duplicate tensor name '" + t.name + "'");
      with_context(where, [&] { return g.add_tensor(std::move(t)); });
    }

    // ---- ops, in execution order; shape inference creates their outputs
    std::set<std::string> op_names;
    for (const json& jo : as_array(field(root, "ops", "root"), "ops", kMaxOps)) {
      as_object(jo, "op", 64);
      const std::string name = as_name(field(jo, "name", "op"), "op name");
      const std::string where = "op '" + name + "'";
      if (!op_names.insert(name).second) fail("duplicate op name '" + name + "'");
      const OpKind kind = with_context(where, [&] {
        return parse_op_kind(as_string(field(jo, "kind", where), where + ": kind"));
      });
      std::vector<TensorId> inputs;
      for (const json& ji :
           as_array(field(jo, "inputs", where), where + ": inputs", kMaxOpInputs)) {
        const std::string& in = as_name(ji, where + ": input name");
        const TensorId id = g.find(in);
        if (id == kNoTensor) fail(where + ": unknown input tensor '" + in + "'");
        inputs.push_back(id);
      }
      std::vector<std::string> outputs;
      for (const json& jn :
           as_array(field(jo, "outputs", where), where + ": outputs", kMaxOpOutputs)) {
        outputs.push_back(as_name(jn, where + ": output name"));
      }
      Attrs attrs;
      if (jo.contains("attrs")) {
        for (const auto& [k, v] : as_object(jo["attrs"], where + ": attrs", kMaxAttrs).items()) {
          if (k.empty() || k.size() > kMaxNameBytes) fail(where + ": bad attribute name");
          attrs[k] = decode_attr(v, where + ": attribute '" + k + "'");
        }
      }
      const int layer = layer_of(field(jo, "layer", where), where);
      OpPhase phase = OpPhase::kForward;
      if (jo.contains("phase")) {
        const std::string& p = as_string(jo["phase"], where + ": phase");
        if (p == "forward")
          phase = OpPhase::kForward;
        else if (p == "backward")
          phase = OpPhase::kBackward;
        else if (p == "optimizer")
          phase = OpPhase::kOptimizer;
        else
          fail(where + ": unknown phase '" + p + "'");
      }
      TensorRole role = TensorRole::kActivation;
      if (jo.contains("output_role")) {
        role = with_context(where, [&] {
          return parse_role(as_string(jo["output_role"], where + ": output_role"));
        });
      }
      // add_op names the op and its shapes in its own messages.
      const std::size_t listed = outputs.size();
      const OpId id = with_context("", [&] {
        return g.add_op(kind, name, std::move(inputs), std::move(attrs), layer, phase, role,
                        std::move(outputs));
      });
      const std::size_t made = g.ops[static_cast<std::size_t>(id)].outputs.size();
      if (made != listed) {
        fail(where + ": lists " + std::to_string(listed) + " outputs but the op has " +
             std::to_string(made));
      }
    }

    // ---- shared parameters
    if (root.contains("shared_parameters")) {
      for (const json& js : as_array(root["shared_parameters"], "shared_parameters", kMaxShared)) {
        as_object(js, "shared parameter", 16);
        const std::string& name =
            as_name(field(js, "tensor", "shared parameter"), "shared parameter tensor");
        const std::string where = "shared parameter '" + name + "'";
        SharedParameter sp;
        sp.tensor = g.find(name);
        if (sp.tensor == kNoTensor) fail(where + ": unknown tensor");
        if (g.tensor(sp.tensor).role != TensorRole::kParameter) fail(where + ": not a parameter");
        const json& layers = as_array(field(js, "layers", where), where + ": layers",
                                      static_cast<std::size_t>(g.num_layers));
        if (layers.empty()) fail(where + ": layers is empty");
        for (const json& jl : layers) {
          const int l = layer_of(jl, where);
          if (!sp.layers.empty() && l <= sp.layers.back()) {
            fail(where + ": layers must be strictly ascending");
          }
          sp.layers.push_back(l);
        }
        for (const SharedParameter& other : g.shared_parameters) {
          if (other.tensor == sp.tensor) fail(where + ": listed twice");
        }
        g.shared_parameters.push_back(std::move(sp));
      }
    }
    return g;
  } catch (const json::exception& e) {
    fail(std::string("malformed JSON: ") + e.what());
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    if (msg.rfind(kPrefix, 0) == 0) throw;
    fail(msg);
  } catch (const std::out_of_range& e) {
    fail(e.what());
  } catch (const std::overflow_error& e) {
    fail(e.what());
  } catch (const std::length_error& e) {
    fail(e.what());
  }
}

}  // namespace strata::solver
