// GPT-2 builder: the forward graph of Hugging Face's GPT2LMHeadModel (pre-LN blocks, MLP width 4H,
// tanh GELU, learned positions, final LN, LM head tied to wte, no dropout, LN eps 1e-5) with its
// parameter names and [in, out] layouts (DESIGN.md section 7). The attention's parameters and
// activations are factored by head (c_attn.weight [H,3,A,D], file_shape [H,3H]). Pure C++.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "solver/ir/graph.h"

namespace strata::solver {

struct GptConfig {
  std::int64_t layers = 2;    // transformer blocks L
  std::int64_t hidden = 64;   // H
  std::int64_t heads = 4;     // A; must divide H
  std::int64_t seq_len = 32;  // S, also the number of learned positions
  std::int64_t vocab = 256;   // V
  DType dtype = DType::kF32;  // parameter and activation dtype of the graph
  // fused: one `attention` op per block (kernels' chunked attention: no [S,S] tensor is stored,
  // the backward recomputes the scores); unfused: scores matmul, causal softmax, matmul, the
  // reference form. graph.meta "attention" records it; a graph without the key is unfused.
  bool fused_attention = true;
};

// Throws std::invalid_argument naming the field when a value is out of range.
void validate(const GptConfig& config);

// GptConfig::fused_attention of a GPT graph from its meta "attention" ("fused" | "unfused";
// absent: unfused, the form of graph versions before 4). Throws std::invalid_argument naming the
// value otherwise.
bool gpt_fused_attention(const Graph& graph);

// The forward graph for micro-batch size `batch`. Layers: 0 embedding, 1..L blocks, L+1 final LN,
// tied LM head and loss. Inputs "tokens" and "targets" (i32 [batch, S]); output "loss" ([]).
// graph.meta holds the config ("kind": "gpt", "layers", ...).
Graph build_gpt(const GptConfig& config, std::int64_t batch);

// GPT-2 init: normal(0, 0.02); attn.c_proj and mlp.c_proj weights normal(0, 0.02/sqrt(2L));
// biases 0; LayerNorm weight 1, bias 0. Returns the init std-dev for `name` (0 for biases) and
// whether it is a LayerNorm weight (value 1).
struct ParamInit {
  double stddev = 0.0;
  double constant = 0.0;  // value when stddev == 0
};
ParamInit gpt_param_init(const GptConfig& config, const std::string& name);

// `count` initial values of parameter `name`, drawn from a std::mt19937_64 seeded by
// (seed, FNV-1a hash of name) with a Box-Muller normal, so every parameter is reproducible alone
// and on any platform. Values as double; callers convert to the file dtype.
// Exactly: engine = mt19937_64(fnv1a64(name) ^ splitmix64(seed)); u = (engine() >> 11) * 2^-53;
// per pair of values r = sqrt(-2 ln(1 - u1)), v[i] = std r cos(2 pi u2),
// v[i+1] = std r sin(2 pi u2).
// Parameters with stddev 0 get `constant`. Throws std::invalid_argument for an unknown name.
std::vector<double> gpt_init_values(const GptConfig& config, const std::string& name,
                                    std::int64_t count, std::uint64_t seed);

}  // namespace strata::solver
