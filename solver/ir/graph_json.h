// Graph <-> JSON (the `/graph` string of model files, DESIGN.md section 7; docs/model-format.md).
// Encoded: parameters and inputs with shapes (inputs use -1 for the batch dim) and, for
// parameters stored in files under another shape, `file_shape` (tensor.h); ops by name with
// their input and output tensor names, attributes and layers, the shared parameters and meta.
// Version 2: factored head dims and file_shape; version 1 graphs are rejected as too old.
// Activation shapes are not stored: decoding re-runs shape inference, so a decoded graph is
// always consistent, and any inconsistency in the text is an error. Pure C++ (nlohmann-json).
#pragma once

#include <cstdint>
#include <string>

#include "solver/ir/graph.h"

namespace strata::solver {

inline constexpr const char* kGraphFormat = "strata-graph";
// Version 3: GPT's attention is one causal softmax (softmax with attr causal = 1) and its MLP's fc
// bias and GELU one gelu(x, bias), where version 2 had causal_mask + softmax and bias_add + gelu;
// version 2 graphs still read (both forms run). Version 1 does not.
// Version 4: the `attention` and `attention_grad` kinds (GPT's fused attention, meta "attention":
// "fused"); versions 2 and 3 still read, their GPT graphs being the unfused form.
inline constexpr int kGraphVersion = 4;
inline constexpr int kOldestGraphVersion = 2;

// Serialises the forward graph built for any batch; the input tensors' dim 0 is written as -1.
std::string encode_graph_json(const Graph& graph);

// Decodes and validates, binding the batch dim to `batch`. Throws std::invalid_argument with a
// one-line message ("graph JSON: op 'x': unknown input tensor 'y'") on any malformed content:
// bad JSON, wrong format, an older or newer version, unknown kinds, missing or duplicate names,
// shapes that do not infer, attribute types, dims <= 0 or whose product overflows int64, a
// file_shape on an input or with another element count than the shape.
Graph decode_graph_json(const std::string& text, std::int64_t batch);

}  // namespace strata::solver
